//! An object made to fail: the simulated controllers report it Failed (kstatus: Ready=False,
//! Stalled=True) with the given reason and message.

use serde::{Deserialize, Serialize};

/// An object made to fail. Kind + namespace + name identify it (any API version).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectFailure {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// A condition reason (`[A-Za-z][A-Za-z0-9_,:]*`), e.g. `InstallFailed`.
    #[serde(default = "default_reason")]
    pub reason: String,
    pub message: String,
}

fn default_reason() -> String {
    "InjectedFailure".to_string()
}

impl ObjectFailure {
    pub fn new(kind: &str, namespace: Option<&str>, name: &str, message: &str) -> Self {
        ObjectFailure {
            kind: kind.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            reason: default_reason(),
            message: message.to_string(),
        }
    }

    pub fn with_reason(mut self, reason: &str) -> Self {
        self.reason = reason.to_string();
        self
    }

    pub fn matches(&self, kind: &str, namespace: Option<&str>, name: &str) -> bool {
        self.kind == kind && self.namespace.as_deref() == namespace && self.name == name
    }

    pub(crate) fn same_object(&self, other: &ObjectFailure) -> bool {
        self.matches(&other.kind, other.namespace.as_deref(), &other.name)
    }
}
