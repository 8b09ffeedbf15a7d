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
///
/// A failure says only the error's name: statuses are readable by everyone who can read the
/// repository, and a cause carries ARNs, account ids and cluster messages (issue 26 item 10).
/// The execution the status links to has the details, behind AWS sign-in.
pub fn description(state: CommitState, target: &Target, error: Option<&ErrorInfo>) -> String {
    let action = target.action.as_deref().unwrap_or("run");
    let env = target.environment.as_deref().unwrap_or("labflow");
    let text = match state {
        CommitState::Pending => format!("{action} of {env} running"),
        CommitState::Success if action.starts_with("teardown") => format!("{env} torn down"),
        CommitState::Success => format!("{action} done: {env} is healthy at this commit"),
        CommitState::Failure | CommitState::Error => format!(
            "{action} of {env} failed ({}); details in the linked execution",
            error_name(error)
        ),
    };
    truncate(&one_line(&text), MAX_DESCRIPTION_CHARS)
}

/// The error's name (`ComponentFailed`, `States.Timeout`, `Lambda.Unknown`), without labflow's
/// prefix; only a name made of the characters error names use, else `unknown error`.
fn error_name(error: Option<&ErrorInfo>) -> String {
    let name = error.and_then(|e| e.error.as_deref()).unwrap_or("");
    let name = name.strip_prefix("labflow.").unwrap_or(name);
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
    if plain {
        name.to_string()
    } else {
        "unknown error".to_string()
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
    fn a_failure_names_the_error_and_nothing_of_its_cause() {
        // What a cause carries: ARNs with the account id, cluster and AWS messages.
        let cause = serde_json::json!({"errorType": "labflow.Transient", "errorMessage":
            "DescribeCluster arn:aws:eks:eu-west-1:123456789012:cluster/labflow-lab: AccessDenied for \
             arn:aws:sts::123456789012:assumed-role/labflow-ensure-cluster/x"}).to_string();
        for (name, shown) in [
            ("labflow.Transient", "Transient"),
            ("States.Timeout", "States.Timeout"),
            ("Lambda.Unknown", "Lambda.Unknown"),
            ("arn:aws:iam::123456789012:role/x", "unknown error"),
            ("", "unknown error"),
        ] {
            let error = ErrorInfo {
                error: Some(name.into()),
                cause: Some(cause.clone()),
            };
            let text = description(CommitState::Failure, &target(), Some(&error));
            assert_eq!(
                text,
                format!("sync of lab failed ({shown}); details in the linked execution")
            );
            assert!(
                !text.contains("123456789012") && !text.contains("arn:"),
                "{text}"
            );
        }
        assert_eq!(
            description(CommitState::Error, &target(), None),
            "sync of lab failed (unknown error); details in the linked execution"
        );
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
