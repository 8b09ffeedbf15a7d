//! The one condition wait of the testbed's own tests (the testbed cannot use labflow-testkit,
//! which depends on it): poll until `check` yields a value or `within` passes, naming what was
//! awaited when it does not.

use std::future::Future;
use std::time::Duration;

/// How often a condition is checked.
const POLL: Duration = Duration::from_millis(20);

pub async fn until<T, F, Fut>(what: &str, within: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + within;
    let mut interval = tokio::time::interval(POLL);
    loop {
        interval.tick().await;
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("{what}: not reached within {within:?}");
        }
    }
}
