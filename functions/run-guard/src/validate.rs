//! Validation of an execution input: schema, the environment exists, the action is allowed for
//! its source. Every problem is collected and reported in one `labflow.InvalidInput` message, so
//! whoever started the execution fixes everything at once.

use labflow_core::config;
use labflow_core::contract::{Action, ExecutionInput, Source};
use labflow_core::StepError;
use serde_json::Value;

/// Fields an execution input may have (see `labflow_core::contract::ExecutionInput`).
const KNOWN_FIELDS: &[&str] = &["action", "environment", "source", "pollSeconds", "force"];

/// Longest poll interval accepted; longer waits would make runs needlessly slow to notice progress.
const MAX_POLL_SECONDS: u64 = 3600;

/// A valid execution input.
#[derive(Debug, Clone, PartialEq)]
pub struct Valid {
    pub action: Action,
    /// `None` only for `teardown-all`.
    pub environment: Option<String>,
    pub input: ExecutionInput,
}

/// Check `value` completely; SSM errors other than "not configured" are `labflow.Transient`.
/// `local_cloud`: the clients talk to the local cloud (`AwsClients::local_cloud`).
pub async fn execution_input(
    ssm: &aws_sdk_ssm::Client,
    value: &Value,
    local_cloud: bool,
) -> Result<Valid, StepError> {
    let mut problems: Vec<String> = Vec::new();
    let Some(object) = value.as_object() else {
        return Err(invalid(&[
            "execution input must be a JSON object".to_string()
        ]));
    };
    for key in object.keys() {
        if !KNOWN_FIELDS.contains(&key.as_str()) {
            problems.push(format!("unknown field {key:?}"));
        }
    }

    let action = match object.get("action") {
        None => {
            problems.push("action is required".into());
            None
        }
        Some(raw) => match serde_json::from_value::<Action>(raw.clone()) {
            Ok(action) => Some(action),
            Err(_) => {
                problems.push(format!(
                    "action must be one of create, sync, teardown, teardown-all; got {raw}"
                ));
                None
            }
        },
    };

    let source = match object.get("source") {
        None => {
            problems.push("source is required".into());
            None
        }
        Some(raw) => match serde_json::from_value::<Source>(raw.clone()) {
            Ok(source) => Some(source),
            Err(err) => {
                problems.push(format!("source is invalid: {err}"));
                None
            }
        },
    };

    if let Some(raw) = object.get("pollSeconds") {
        match raw.as_u64() {
            Some(n) if (1..=MAX_POLL_SECONDS).contains(&n) => {}
            _ => problems.push(format!(
                "pollSeconds must be a whole number from 1 to {MAX_POLL_SECONDS}; got {raw}"
            )),
        }
    }

    let force = match object.get("force") {
        None => false,
        Some(Value::Bool(force)) => *force,
        Some(other) => {
            problems.push(format!("force must be true or false; got {other}"));
            false
        }
    };
    if force {
        if action.is_some_and(|a| a != Action::Teardown) {
            problems.push("force only applies to teardown".into());
        }
        if source
            .as_ref()
            .is_some_and(|s| !matches!(s, Source::Console { .. }))
        {
            problems.push(
                "force may only be set by a person (source.kind \"console\": the console or \
                 `labflow start --force`)"
                    .into(),
            );
        }
    }

    let environment = match (object.get("environment"), action) {
        (Some(_), Some(Action::TeardownAll)) => {
            problems.push("teardown-all takes no environment (it tears down every environment with nightly teardown on)".into());
            None
        }
        (None, Some(Action::TeardownAll)) | (None, None) => None,
        (None, Some(action)) => {
            problems.push(format!(
                "environment is required for action {}",
                action.as_str()
            ));
            None
        }
        (Some(Value::String(name)), _) => match config::check_environment_name(name) {
            Ok(()) => Some(name.clone()),
            Err(err) => {
                problems.push(err.message().to_string());
                None
            }
        },
        (Some(other), _) => {
            problems.push(format!("environment must be a string; got {other}"));
            None
        }
    };

    if let (Some(Action::TeardownAll), Some(source)) = (action, &source) {
        if !source.is_schedule() {
            problems.push(
                "teardown-all may only be started by the schedule (source.kind \"schedule\")"
                    .into(),
            );
        }
    }

    if let Some(name) = &environment {
        let purpose = action.map_or(config::Purpose::Create, config::Purpose::for_action);
        let checks = config::Checks::create(local_cloud).for_purpose(purpose);
        match config::load(ssm, name, &checks).await {
            Ok(config) => {
                // Issue 26 item 1: neither the schedule nor a branch deletion (nor a start that
                // did not ask for it) removes a protected environment.
                if matches!(action, Some(Action::Teardown)) && config.protected && !force {
                    problems.push(format!(
                        "environment {name:?} is protected: only a teardown forced from the \
                         console (\"force\": true) or `labflow start --action teardown --force` \
                         removes it"
                    ));
                }
            }
            Err(StepError::InvalidInput(message)) => problems.push(message),
            Err(other) => return Err(other),
        }
    }

    if !problems.is_empty() {
        return Err(invalid(&problems));
    }
    // Everything above passed, so the typed decode agrees; a failure here would be a gap in the
    // checks above and is still reported as bad input, never a panic.
    let input: ExecutionInput = serde_json::from_value(value.clone())
        .map_err(|err| invalid(&[format!("execution input is invalid: {err}")]))?;
    Ok(Valid {
        action: input.action,
        environment,
        input,
    })
}

fn invalid(problems: &[String]) -> StepError {
    StepError::InvalidInput(format!(
        "execution input is invalid: {}",
        problems.join("; ")
    ))
}
