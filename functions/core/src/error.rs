//! The error taxonomy of DESIGN.md §3: each variant is an error *name* the state machine matches.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// A step's failure. Its [`name`](StepError::name) becomes the Lambda `errorType`, which
/// Step Functions' Retry/Catch match on; the message becomes `errorMessage`/`Cause`.
/// Messages never contain secrets or tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// Bad input or configuration: fail, never retry.
    #[error("{0}")]
    InvalidInput(String),
    /// Throttling, 5xx, time-outs, connection errors: retry with backoff.
    #[error("{0}")]
    Transient(String),
    /// Another execution holds the environment's lock: retry slowly.
    #[error("{0}")]
    LockHeld(String),
    /// The resource lacks labflow's ownership tags: refuse to touch it.
    #[error("{0}")]
    NotOwned(String),
    /// A component (cluster, node group, Flux object) failed.
    #[error("{0}")]
    ComponentFailed(String),
    /// A deadline passed before the goal was reached.
    #[error("{0}")]
    DeadlineExceeded(String),
}

impl StepError {
    /// The error name the state machine matches on.
    pub fn name(&self) -> &'static str {
        match self {
            StepError::InvalidInput(_) => "labflow.InvalidInput",
            StepError::Transient(_) => "labflow.Transient",
            StepError::LockHeld(_) => "labflow.LockHeld",
            StepError::NotOwned(_) => "labflow.NotOwned",
            StepError::ComponentFailed(_) => "labflow.ComponentFailed",
            StepError::DeadlineExceeded(_) => "labflow.DeadlineExceeded",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            StepError::InvalidInput(m)
            | StepError::Transient(m)
            | StepError::LockHeld(m)
            | StepError::NotOwned(m)
            | StepError::ComponentFailed(m)
            | StepError::DeadlineExceeded(m) => m,
        }
    }

    /// All names, for the state machine and its lint.
    pub const ALL_NAMES: [&'static str; 6] = [
        "labflow.InvalidInput",
        "labflow.Transient",
        "labflow.LockHeld",
        "labflow.NotOwned",
        "labflow.ComponentFailed",
        "labflow.DeadlineExceeded",
    ];
}

impl From<StepError> for lambda_runtime::Diagnostic {
    fn from(err: StepError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: err.name().to_string(),
            error_message: err.message().to_string(),
        }
    }
}

/// AWS error codes that mean "slow down and try again".
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "PriorRequestNotComplete",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "EC2ThrottledException",
];

/// AWS error codes for server-side trouble.
const SERVER_CODES: &[&str] = &[
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "InternalServerException",
    "ServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

/// Classify an AWS SDK error: throttling, 5xx, time-outs and connection errors are
/// `labflow.Transient`; anything else is `labflow.InvalidInput` (retrying will not help), with the
/// AWS error code and message so the execution history says what went wrong.
pub fn classify_sdk_error<E, R>(context: &str, err: SdkError<E, R>) -> StepError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HasStatus,
{
    match &err {
        SdkError::TimeoutError(_) => StepError::Transient(format!("{context}: timed out")),
        SdkError::DispatchFailure(failure) => {
            StepError::Transient(format!("{context}: connection error: {failure:?}"))
        }
        SdkError::ResponseError(response) => {
            let status = response.raw().status_code();
            StepError::Transient(format!("{context}: unreadable response (HTTP {status})"))
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            let message = service.err().message().unwrap_or("");
            let status = service.raw().status_code();
            let text = format!("{context}: {code} (HTTP {status}): {message}");
            if THROTTLING_CODES.contains(&code)
                || SERVER_CODES.contains(&code)
                || status == 429
                || status >= 500
            {
                StepError::Transient(text)
            } else {
                StepError::InvalidInput(text)
            }
        }
        SdkError::ConstructionFailure(_) => {
            StepError::InvalidInput(format!("{context}: could not build the request: {err}"))
        }
        _ => StepError::Transient(format!("{context}: {err}")),
    }
}

/// The HTTP status of a raw response (lets [`classify_sdk_error`] stay generic over the
/// SDK's response type).
pub trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// Classify a Kubernetes client error the same way.
pub fn classify_kube_error(context: &str, err: kube::Error) -> StepError {
    match &err {
        kube::Error::Api(status) => {
            let code = status.code;
            let text = format!("{context}: {} ({code}): {}", status.reason, status.message);
            // Server-side apply of a field the CRD's schema does not declare: a 500 that no
            // retry mends (kubernetes/kubernetes#105916) — what we send does not fit the
            // installed CRD.
            if code == 500
                && status
                    .message
                    .contains("failed to create typed patch object")
            {
                return StepError::InvalidInput(text);
            }
            if code == 429 || code >= 500 || code == 401 || code == 403 {
                StepError::Transient(text)
            } else {
                StepError::InvalidInput(text)
            }
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::HttpError(_) => {
            StepError::Transient(format!("{context}: connection error: {err}"))
        }
        _ => StepError::Transient(format!("{context}: {err}")),
    }
}

#[cfg(test)]
mod kube_error_tests {
    use super::*;

    fn api_error(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(message, "InternalError")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn a_typed_patch_failure_is_not_worth_retrying_other_500s_are() {
        let typed = classify_kube_error(
            "applying GitRepository flux-system/flux-system",
            api_error(500, "failed to create typed patch object (flux-system/flux-system; source.toolkit.fluxcd.io/v1, Kind=GitRepository): .spec.bogus: field not declared in schema"),
        );
        assert_eq!(typed.name(), "labflow.InvalidInput");
        assert!(typed.to_string().contains(".spec.bogus"), "{typed}");
        let other =
            classify_kube_error("listing pods", api_error(500, "etcdserver: leader changed"));
        assert_eq!(other.name(), "labflow.Transient");
    }
}
