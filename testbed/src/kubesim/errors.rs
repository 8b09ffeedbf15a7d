//! API errors and the `Status` bodies the real API server answers with.

use serde_json::{json, Value};

/// One cause inside `Status.details.causes` (e.g. a field that failed validation).
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

/// An error answered to a client as a `Status` object.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    /// `Status.details` (boxed: errors travel through many `Result`s).
    pub details: Box<Details>,
}

/// `details.name`, `details.group`, `details.kind` and `details.causes`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Details {
    pub name: Option<String>,
    pub group: Option<String>,
    pub kind: Option<String>,
    pub causes: Vec<Cause>,
}

/// What the object is, for error messages: `deployments.apps "web"`.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub group: &'a str,
    pub plural: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
}

impl Subject<'_> {
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

impl ApiError {
    fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: Box::default(),
        }
    }

    fn about(mut self, subject: &Subject<'_>) -> Self {
        self.details.name = Some(subject.name.to_string());
        self.details.group = Some(subject.group.to_string());
        self.details.kind = Some(subject.plural.to_string());
        self
    }

    pub fn not_found(subject: &Subject<'_>) -> Self {
        let message = format!("{} \"{}\" not found", subject.qualified(), subject.name);
        Self::new(404, "NotFound", message).about(subject)
    }

    pub fn already_exists(subject: &Subject<'_>) -> Self {
        let message = format!(
            "{} \"{}\" already exists",
            subject.qualified(),
            subject.name
        );
        Self::new(409, "AlreadyExists", message).about(subject)
    }

    pub fn conflict(subject: &Subject<'_>) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
            subject.qualified(),
            subject.name
        );
        Self::new(409, "Conflict", message).about(subject)
    }

    /// A server-side apply field-ownership conflict.
    pub fn apply_conflict(subject: &Subject<'_>, conflicts: Vec<(String, String, String)>) -> Self {
        let n = conflicts.len();
        let lines: Vec<String> = conflicts
            .iter()
            .map(|(manager, api_version, field)| {
                format!("conflict with \"{manager}\" using {api_version}: {field}")
            })
            .collect();
        let message = if n == 1 {
            format!("Apply failed with 1 conflict: {}", lines.join(""))
        } else {
            format!("Apply failed with {n} conflicts: {}", lines.join("\n"))
        };
        let mut err = Self::new(409, "Conflict", message).about(subject);
        err.details.causes = conflicts
            .into_iter()
            .map(|(manager, api_version, field)| Cause {
                reason: "FieldManagerConflict".into(),
                message: format!("conflict with \"{manager}\" using {api_version}"),
                field,
            })
            .collect();
        err
    }

    /// 422 Invalid with one cause per field, worded like the real server.
    pub fn invalid(subject: &Subject<'_>, causes: Vec<Cause>) -> Self {
        let details: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let joined = if details.len() == 1 {
            details.join("")
        } else {
            format!("[{}]", details.join(", "))
        };
        let kind = if subject.group.is_empty() {
            subject.kind.to_string()
        } else {
            format!("{}.{}", subject.kind, subject.group)
        };
        let message = format!("{kind} \"{}\" is invalid: {joined}", subject.name);
        let mut err = Self::new(422, "Invalid", message).about(subject);
        err.details.kind = Some(subject.kind.to_string());
        err.details.causes = causes;
        err
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    pub fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml; got {content_type}"))
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// The JSON `Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        let d = &self.details;
        if d.name.is_some() || !d.causes.is_empty() {
            let mut details = serde_json::Map::new();
            if let Some(name) = &d.name {
                details.insert("name".into(), json!(name));
            }
            if let Some(group) = &d.group {
                if !group.is_empty() {
                    details.insert("group".into(), json!(group));
                }
            }
            if let Some(kind) = &d.kind {
                details.insert("kind".into(), json!(kind));
            }
            if !d.causes.is_empty() {
                let causes: Vec<Value> = d
                    .causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect();
                details.insert("causes".into(), Value::Array(causes));
            }
            status["details"] = Value::Object(details);
        }
        status
    }
}

/// The `Status` a successful immediate delete of a built-in answers with.
pub fn success_status(subject: &Subject<'_>, uid: &str) -> Value {
    let mut details = json!({"name": subject.name, "kind": subject.plural, "uid": uid});
    if !subject.group.is_empty() {
        details["group"] = json!(subject.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}
