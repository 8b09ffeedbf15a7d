//! Reading the AWS error code of an SDK error (to tell "not found" / "in use" from real failures).

use aws_sdk_eks::error::{ProvideErrorMetadata, SdkError};

/// The service's error code, when the call reached the service.
pub fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.as_service_error().and_then(|e| e.code())
}
