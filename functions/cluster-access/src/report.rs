//! The step's input and report: camelCase JSON, no secrets or tokens.

use chrono::{DateTime, Utc};
use labflow_core::contract::{Action, Source};
use serde::{Deserialize, Serialize};

/// The common step input plus an optional deadline.
///
/// ```json
/// {"environment": "lab", "action": "create", "source": {"kind": "console"},
///  "executionArn": "arn:aws:states:...", "deadline": "2025-01-01T12:10:00Z"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Input {
    pub environment: String,
    pub action: Action,
    pub source: Source,
    /// `$$.Execution.Id`.
    #[serde(default)]
    pub execution_arn: Option<String>,
    /// Until when an unreachable or refusing API counts as "access still propagating"
    /// (`done: false`); after it, `labflow.DeadlineExceeded`. Absent: the automation role's
    /// latest grant (access entry creation or policy association, as EKS reports it) plus
    /// [`crate::ACCESS_PROPAGATION`]. The report echoes the deadline in force, so the state
    /// machine may pass it back.
    #[serde(default)]
    pub deadline: Option<DateTime<Utc>>,
}

/// What one call of cluster-access found and did.
///
/// ```json
/// {"done": true, "phase": "ready", "endpoint": "https://...", "kubernetesVersion": "v1.33.1",
///  "kubeconfigParameter": "/labflow/environments/lab/kubeconfig",
///  "automationRoleArn": "arn:aws:iam::123456789012:role/labflow-automation",
///  "principals": [{"principalArn": "...", "policies": ["arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"]}],
///  "deadline": "2025-01-01T12:10:00Z", "changes": []}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    /// True once the Kubernetes API answered `/version` to the automation role.
    pub done: bool,
    pub phase: Phase,
    /// The API server URL.
    pub endpoint: Option<String>,
    /// The API server's `gitVersion` (e.g. `v1.33.1-eks-...`), once it answered.
    pub kubernetes_version: Option<String>,
    /// The SSM parameter holding the kubeconfig for people.
    pub kubeconfig_parameter: String,
    /// The automation role's ARN (from STS GetCallerIdentity).
    pub automation_role_arn: Option<String>,
    /// Every principal with an access entry and its cluster-scoped policies.
    pub principals: Vec<PrincipalReport>,
    /// Why the API is not answering yet (when `done` is false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// The deadline in force (see [`Input::deadline`]).
    pub deadline: Option<DateTime<Utc>>,
    /// Every write this call made, in order.
    pub changes: Vec<Change>,
}

/// Where the step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The cluster is not ACTIVE yet.
    ClusterNotReady,
    /// Access is granted; the API does not answer us yet.
    AccessPropagating,
    /// The API answered `/version`.
    Ready,
}

/// A principal given access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalReport {
    pub principal_arn: String,
    pub policies: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubernetes_groups: Vec<String>,
}

/// One write made to AWS (resources `accessEntry/<principal ARN>`, `ssmParameter/<name>`).
pub use labflow_core::contract::Change;
