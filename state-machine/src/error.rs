//! Errors: lint findings (load time) and ASL failures (run time).

use std::fmt;

/// Error names defined by the Amazon States Language.
pub mod names {
    pub const ALL: &str = "States.ALL";
    pub const RUNTIME: &str = "States.Runtime";
    pub const TIMEOUT: &str = "States.Timeout";
    pub const TASK_FAILED: &str = "States.TaskFailed";
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
    pub const PARAMETER_PATH_FAILURE: &str = "States.ParameterPathFailure";
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    pub const BRANCH_FAILED: &str = "States.BranchFailed";
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
}

/// Step Functions quotas the executor enforces ("Step Functions service quotas",
/// docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html).
pub mod limits {
    /// "Maximum input or output size for a task, activity, or state execution: 256 KiB of data
    /// as a UTF-8 encoded string" — also the execution input (StartExecution `input`, max length
    /// 262144) and output.
    pub const PAYLOAD_BYTES: usize = 256 * 1024;
    /// "Maximum execution history size: 25,000 events in a single state machine execution
    /// history." The event that would be the 25,000th is the ExecutionFailed event.
    pub const HISTORY_EVENTS: u64 = 25_000;
    /// State machine and execution names: 1 to 80 characters (StartExecution `name`).
    pub const NAME_CHARS: usize = 80;
}

/// One problem found in a definition, located by a dotted path such as `States.Foo.Next`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintError {
    pub at: String,
    pub message: String,
}

impl fmt::Display for LintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.at, self.message)
        }
    }
}

/// Every problem found in a definition (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LintErrors(pub Vec<LintError>);

impl fmt::Display for LintErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Why a definition could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("definition is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("definition is invalid:\n{0}")]
    Invalid(#[from] LintErrors),
}

/// An ASL error raised while running: a name the Retry/Catch rules match on, and a cause.
/// Both are `None` only when a Fail state has no Error/Cause: the execution then ends with
/// error and cause null, as on AWS (the Fail state's fields are optional, ASL spec "Fail State").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    #[serde(rename = "Error")]
    pub error: Option<String>,
    #[serde(rename = "Cause")]
    pub cause: Option<String>,
}

impl Failure {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Failure {
            error: Some(error.into()),
            cause: Some(cause.into()),
        }
    }

    pub fn runtime(cause: impl Into<String>) -> Self {
        Failure::new(names::RUNTIME, cause)
    }

    pub fn data_limit(cause: impl Into<String>) -> Self {
        Failure::new(names::DATA_LIMIT_EXCEEDED, cause)
    }

    /// The error name, `""` when there is none.
    pub fn name(&self) -> &str {
        self.error.as_deref().unwrap_or("")
    }

    /// The cause, `""` when there is none.
    pub fn cause_text(&self) -> &str {
        self.cause.as_deref().unwrap_or("")
    }

    pub fn is(&self, name: &str) -> bool {
        self.error.as_deref() == Some(name)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.error, &self.cause) {
            (None, None) => f.write_str("(no error name or cause)"),
            _ => write!(f, "{}: {}", self.name(), self.cause_text()),
        }
    }
}

/// Whether a Retrier/Catcher's ErrorEquals list matches `error` (`None`: a Fail state without
/// Error, matched by States.ALL only).
///
/// States.Runtime and States.DataLimitExceeded are terminal: nothing catches or retries them
/// ("Error names", docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html:
/// States.ALL "can't catch the States.DataLimitExceeded terminal error or Runtime error types";
/// "A States.Runtime error isn't retriable, and will always cause the execution to fail").
/// States.ALL matches every other error; States.TaskFailed every other except States.Timeout.
pub fn error_matches(error_equals: &[String], error: Option<&str>) -> bool {
    let Some(error) = error else {
        return error_equals.iter().any(|e| e == names::ALL);
    };
    if error == names::RUNTIME || error == names::DATA_LIMIT_EXCEEDED {
        return false;
    }
    error_equals.iter().any(|e| {
        e == error || e == names::ALL || (e == names::TASK_FAILED && error != names::TIMEOUT)
    })
}

/// Why an execution could not start (what StartExecution refuses).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error("InvalidName: {what} name {name:?} {reason}")]
    InvalidName {
        what: &'static str,
        name: String,
        reason: String,
    },
    #[error(
        "the execution input is {bytes} bytes; Step Functions accepts at most {} (256 KiB)",
        limits::PAYLOAD_BYTES
    )]
    InputTooLarge { bytes: usize },
}

/// Checks a state machine or execution name the way StartExecution / CreateStateMachine do:
/// 1-80 characters, none of whitespace, `< > { } [ ]`, `? *`, `" # % \ ^ | ~ ` $ & , ; : /`,
/// control characters (U+0000-001F, U+007F-009F), U+FFFE-FFFF or surrogates
/// (StartExecution API reference, `name`).
pub fn validate_name(what: &'static str, name: &str) -> Result<(), StartError> {
    let bad = |reason: String| StartError::InvalidName {
        what,
        name: name.to_owned(),
        reason,
    };
    let n = name.chars().count();
    if n == 0 || n > limits::NAME_CHARS {
        return Err(bad(format!(
            "must be 1 to {} characters, it has {n}",
            limits::NAME_CHARS
        )));
    }
    const SPECIAL: &str = "<>{}[]?*\"#%\\^|~`$&,;:/";
    if let Some(c) = name.chars().find(|c| {
        c.is_whitespace()
            || SPECIAL.contains(*c)
            || matches!(*c as u32, 0x00..=0x1f | 0x7f..=0x9f | 0xfffe..=0xffff)
    }) {
        return Err(bad(format!("must not contain {c:?}")));
    }
    Ok(())
}
