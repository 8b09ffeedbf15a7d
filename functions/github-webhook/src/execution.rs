//! Exactly-once starts: the execution name is a function of the signed body alone, so a GitHub
//! redelivery, and a stored body replayed under a new `X-GitHub-Delivery` (a header the
//! signature does not cover, so anyone holding one signed body can vary it), maps to the
//! execution already started (issue 26 item 6). Step Functions keeps a closed execution's name
//! taken for 90 days ("Execution names must be unique ... for 90 days",
//! https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html);
//! older payloads are refused as stale before this ([`crate::push::freshness`]).

use aws_sdk_sfn::Client;
use labflow_core::error::classify_sdk_error;
use labflow_core::StepError;
use sha2::{Digest, Sha256};

/// Step Functions execution names: at most 80 characters of `[0-9A-Za-z_-]`; here `gh-` and the
/// sha256 of the signed body (67 characters).
pub fn execution_name(body: &[u8]) -> String {
    format!("gh-{}", hex::encode(Sha256::digest(body)))
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

/// Step Functions' limit on an execution input: 262,144 bytes of UTF-8 (StartExecution `input`,
/// https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html).
pub const MAX_INPUT_BYTES: usize = 262_144;

/// `input` made unique to this request without changing its JSON value: a trailing run of 32
/// spaces and tabs (JSON whitespace, RFC 8259 §2) spelling a token derived from the Lambda
/// request id, the process and a counter.
///
/// Why: StartExecution "is idempotent ... if you call StartExecution with the same name and
/// input as a running execution, the call succeeds and return[s] the same response as the
/// original request. If the execution is closed or if the input is different, it returns a 400
/// ExecutionAlreadyExists error"
/// (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html).
/// Two deliveries of one event racing each other past the DescribeExecution check would both
/// get that success, and both would claim to have started the execution. With inputs that
/// differ per request, only the request that created the execution succeeds; the others get
/// ExecutionAlreadyExists, i.e. "already started". A retry of the same request by the SDK
/// resends the same bytes, so it still meets the idempotent success.
pub fn distinct_input(mut input: String, request_id: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = Sha256::new();
    hasher.update(request_id.as_bytes());
    hasher.update([0u8]);
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(NEXT.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.update(nanos.to_le_bytes());
    let digest = hasher.finalize();
    input.reserve(32);
    for byte in &digest[..4] {
        for bit in 0..8 {
            input.push(if byte >> bit & 1 == 1 { '\t' } else { ' ' });
        }
    }
    input
}

/// Start `name` with `input` unless it exists. A racing duplicate (another request that passed
/// the DescribeExecution check too) gets ExecutionAlreadyExists because its input differs (see
/// [`distinct_input`]), as does any start once the execution finished: both mean "already
/// started".
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
