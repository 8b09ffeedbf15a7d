//! What the status says: its state, a one-line description and the link to the execution.

use serde::{Deserialize, Serialize};

use crate::target::Target;

/// GitHub's limit on a status description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 140;

/// A commit status state, as GitHub spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommitState {
    Pending,
    Success,
    Failure,
    Error,
}

/// The Catch output the state machine passes for failures: `{"Error": ..., "Cause": ...}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    #[serde(rename = "Error", default)]
    pub error: Option<String>,
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

/// Errors meaning the commit's environment did not come up (GitHub `failure`); any other error
/// means the run itself broke (bad input, lock, AWS or Lambda trouble) and is posted as `error`.
const COMMIT_FAILURES: &[&str] = &[
    "labflow.ComponentFailed",
    "labflow.DeadlineExceeded",
    "States.Timeout",
];

/// The state to post: `failure` is refined to `error` when the run broke rather than the commit.
pub fn state_to_post(requested: CommitState, error: Option<&ErrorInfo>) -> CommitState {
    match requested {
        CommitState::Failure => {
            let name = error.and_then(|e| e.error.as_deref()).unwrap_or("");
            if COMMIT_FAILURES.contains(&name) {
                CommitState::Failure
            } else {
                CommitState::Error
            }
        }
        other => other,
    }
}

/// The one-line description of where the run is, at most [`MAX_DESCRIPTION_CHARS`].
pub fn description(state: CommitState, target: &Target, error: Option<&ErrorInfo>) -> String {
    let action = target.action.as_deref().unwrap_or("run");
    let env = target.environment.as_deref().unwrap_or("labflow");
    let text = match state {
        CommitState::Pending => format!("{action} of {env} running"),
        CommitState::Success if action.starts_with("teardown") => format!("{env} torn down"),
        CommitState::Success => format!("{action} done: {env} is healthy at this commit"),
        CommitState::Failure | CommitState::Error => {
            format!("{action} of {env} failed: {}", error_summary(error))
        }
    };
    truncate(&one_line(&text), MAX_DESCRIPTION_CHARS)
}

/// `ComponentFailed: <message>` from the error name and cause. A Lambda's Cause is the JSON of
/// its error (`{"errorType", "errorMessage"}`); a local run passes the message itself.
fn error_summary(error: Option<&ErrorInfo>) -> String {
    let Some(error) = error else {
        return "no error details".to_string();
    };
    let name = error.error.as_deref().unwrap_or("unknown error");
    let name = name.strip_prefix("labflow.").unwrap_or(name);
    let cause = error.cause.as_deref().unwrap_or("");
    let message = match serde_json::from_str::<serde_json::Value>(cause) {
        Ok(json) => json
            .get("errorMessage")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| cause.to_string()),
        Err(_) => cause.to_string(),
    };
    if message.trim().is_empty() {
        name.to_string()
    } else {
        format!("{name}: {message}")
    }
}

/// The Step Functions console page of an execution, or `None` when the ARN is not one.
pub fn console_url(execution_arn: &str) -> Option<String> {
    let parts: Vec<&str> = execution_arn.split(':').collect();
    let ok = parts.len() >= 8
        && parts[0] == "arn"
        && parts[2] == "states"
        && (parts[5] == "execution" || parts[5] == "express")
        && parts.iter().all(|p| !p.is_empty())
        && execution_arn
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_./".contains(&b));
    if !ok {
        return None;
    }
    let region = parts[3];
    let host = if parts[1] == "aws-cn" {
        format!("{region}.console.amazonaws.cn")
    } else {
        format!("{region}.console.aws.amazon.com")
    };
    Some(format!(
        "https://{host}/states/home?region={region}#/v2/executions/details/{execution_arn}"
    ))
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `max` characters (not bytes), ending in `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            owner: "acme".into(),
            repo: "labflow".into(),
            sha: "0123456789abcdef0123456789abcdef01234567".into(),
            environment: Some("lab".into()),
            action: Some("sync".into()),
        }
    }

    #[test]
    fn lambda_cause_json_gives_the_message_and_the_description_is_capped() {
        let long = "x ".repeat(200);
        let cause = serde_json::json!({"errorType": "labflow.ComponentFailed", "errorMessage": format!("HelmRelease istio-system/istiod is Stalled:\n{long}")}).to_string();
        let error = ErrorInfo {
            error: Some("labflow.ComponentFailed".into()),
            cause: Some(cause),
        };
        let text = description(CommitState::Failure, &target(), Some(&error));
        assert!(
            text.starts_with(
                "sync of lab failed: ComponentFailed: HelmRelease istio-system/istiod is Stalled: x x"
            ),
            "{text}"
        );
        assert_eq!(text.chars().count(), MAX_DESCRIPTION_CHARS);
        assert!(text.ends_with('…'));
        assert!(!text.contains('\n'));
    }

    #[test]
    fn failure_is_refined_to_error_unless_the_environment_failed() {
        let info = |name: &str| ErrorInfo {
            error: Some(name.into()),
            cause: None,
        };
        assert_eq!(
            state_to_post(
                CommitState::Failure,
                Some(&info("labflow.DeadlineExceeded"))
            ),
            CommitState::Failure
        );
        assert_eq!(
            state_to_post(CommitState::Failure, Some(&info("labflow.InvalidInput"))),
            CommitState::Error
        );
        assert_eq!(
            state_to_post(CommitState::Failure, None),
            CommitState::Error
        );
        assert_eq!(
            state_to_post(CommitState::Success, None),
            CommitState::Success
        );
    }

    #[test]
    fn console_url_uses_the_executions_region_and_rejects_non_arns() {
        let arn = "arn:aws:states:eu-central-1:123456789012:execution:labflow-lifecycle:abc-1";
        assert_eq!(
            console_url(arn).as_deref(),
            Some("https://eu-central-1.console.aws.amazon.com/states/home?region=eu-central-1#/v2/executions/details/arn:aws:states:eu-central-1:123456789012:execution:labflow-lifecycle:abc-1")
        );
        assert_eq!(console_url("not-an-arn"), None);
        assert_eq!(
            console_url("arn:aws:states:eu-west-1:1:execution:sm:a\"><script>"),
            None
        );
    }
}
