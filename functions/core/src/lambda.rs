//! Wiring a step's `handle` to the Lambda runtime: JSON logs, typed input (unknown fields are
//! `labflow.InvalidInput`), typed output, errors as the state machine's error names.

use std::future::Future;

use lambda_runtime::{service_fn, LambdaEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::StepError;

/// Decode a payload into a step's input type; a bad payload names the JSON path.
pub fn decode_input<I: DeserializeOwned>(payload: serde_json::Value) -> Result<I, StepError> {
    serde_path_to_error::deserialize(payload).map_err(|err| {
        let path = err.path().to_string();
        StepError::InvalidInput(format!(
            "invalid step input at {path}: {}",
            err.into_inner()
        ))
    })
}

/// Run `handler` as the Lambda's function until the runtime stops. Call once from `main` after the
/// clients are built (once per cold start).
pub async fn serve<I, O, F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned,
    O: Serialize,
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<O, StepError>>,
{
    let handler = &handler;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let input: I = decode_input(event.payload)?;
            let result = handler(input).await;
            if let Err(err) = &result {
                tracing::warn!(
                    error_type = err.name(),
                    message = err.message(),
                    "step failed"
                );
            }
            result
        },
    ))
    .await
}
