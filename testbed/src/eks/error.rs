//! EKS API errors: the error type travels as the `x-amzn-errortype` header, the text as
//! `{"message": ...}`, with the HTTP status the real service uses.

/// An error answer of the EKS API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({status}): {message}")]
pub struct EksError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl EksError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        EksError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "ResourceNotFoundException", message)
    }

    pub fn in_use(message: impl Into<String>) -> Self {
        Self::new(409, "ResourceInUseException", message)
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidParameterException", message)
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidRequestException", message)
    }

    /// Tag operations use the generic REST errors, not the EKS-specific ones.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequestException", message)
    }

    pub fn tag_not_found(message: impl Into<String>) -> Self {
        Self::new(404, "NotFoundException", message)
    }

    pub fn unknown_operation(method: &str, path: &str) -> Self {
        Self::new(
            404,
            "UnknownOperationException",
            format!("no EKS operation for {method} {path}"),
        )
    }

    /// An injected fault: the error type the service would send with that status, so the SDK
    /// classifies it the same way (429 throttling, 5xx transient, both retried).
    pub fn injected(status: u16, message: String) -> Self {
        let code = match status {
            429 => "ThrottlingException",
            503 => "ServiceUnavailableException",
            400..=499 => "InvalidRequestException",
            _ => "ServerException",
        };
        Self::new(status, code, message)
    }

    pub fn server(message: impl Into<String>) -> Self {
        Self::new(500, "ServerException", message)
    }
}

pub type EksResult<T> = Result<T, EksError>;
