//! Waiting in tests on a condition, never on a clock: poll until `check` yields a value or the
//! deadline passes, and say what was awaited when it does.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is checked.
const POLL: Duration = Duration::from_millis(50);

/// The value `check` yields first, or an error naming `what` once `within` has passed (the
/// last error `check` returned, if any, is the error's source).
pub async fn until<T, F, Fut>(what: &str, within: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + within;
    let mut interval = tokio::time::interval(POLL);
    loop {
        interval.tick().await;
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            anyhow::bail!("{what}: not within {within:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn returns_the_first_value_and_names_what_timed_out() {
        let calls = AtomicUsize::new(0);
        let third = until("the third call", Duration::from_secs(5), || async {
            Ok((calls.fetch_add(1, Ordering::SeqCst) == 2).then_some("done"))
        })
        .await;
        assert_eq!(third.ok(), Some("done"));
        let never = until(
            "a condition that never holds",
            Duration::from_millis(120),
            || async { Ok(None::<()>) },
        )
        .await;
        let message = never.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.starts_with("a condition that never holds"),
            "{message}"
        );
    }
}
