//! Exactly-once starts: the execution name is a function of the delivery id and the body hash,
//! so a GitHub redelivery (same id, same body) maps to the execution already started. The body
//! hash is included because the delivery id header is not covered by the signature.

use aws_sdk_sfn::Client;
use labflow_core::error::classify_sdk_error;
use labflow_core::StepError;
use sha2::{Digest, Sha256};

/// Step Functions execution names: at most 80 characters of `[0-9A-Za-z_-]`.
pub fn execution_name(delivery_id: &str, body: &[u8]) -> String {
    let readable: String = delivery_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(36)
        .collect();
    let mut hasher = Sha256::new();
    hasher.update(delivery_id.as_bytes());
    hasher.update([0u8]);
    hasher.update(body);
    let digest = hex::encode(hasher.finalize());
    format!("gh-{readable}-{}", &digest[..24])
}

/// `arn:aws:states:r:a:stateMachine:NAME` + name → `arn:aws:states:r:a:execution:NAME:name`.
pub fn execution_arn(state_machine_arn: &str, name: &str) -> Option<String> {
    let (head, machine) = state_machine_arn.split_once(":stateMachine:")?;
    Some(format!("{head}:execution:{machine}:{name}"))
}

/// The execution's ARN and whether it already existed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub execution_arn: String,
    pub redelivery: bool,
}

/// Start `name` with `input` unless it exists. StartExecution is itself idempotent for the same
/// name and input while the execution runs; once it finished, or for a racing duplicate, AWS
/// answers ExecutionAlreadyExists, which also means "already started".
pub async fn start_once(
    sfn: &Client,
    state_machine_arn: &str,
    name: &str,
    input: &str,
) -> Result<Started, StepError> {
    let known_arn = execution_arn(state_machine_arn, name).ok_or_else(|| {
        StepError::InvalidInput(format!(
            "LABFLOW_STATE_MACHINE_ARN {state_machine_arn:?} is not a state machine ARN"
        ))
    })?;
    match sfn
        .describe_execution()
        .execution_arn(&known_arn)
        .send()
        .await
    {
        Ok(_) => {
            return Ok(Started {
                execution_arn: known_arn,
                redelivery: true,
            })
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_execution_does_not_exist()) => {}
        Err(err) => return Err(classify_sdk_error("describing the execution", err)),
    }
    let started = sfn
        .start_execution()
        .state_machine_arn(state_machine_arn)
        .name(name)
        .input(input)
        .send()
        .await;
    match started {
        Ok(out) => Ok(Started {
            execution_arn: out.execution_arn().to_string(),
            redelivery: false,
        }),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_execution_already_exists()) =>
        {
            Ok(Started {
                execution_arn: known_arn,
                redelivery: true,
            })
        }
        Err(err) => Err(classify_sdk_error("starting the execution", err)),
    }
}
