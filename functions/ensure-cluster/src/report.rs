//! The step's report (its Lambda output): camelCase JSON, no secrets.

use serde::{Deserialize, Serialize};

/// What one call of ensure-cluster found and did.
///
/// ```json
/// {"done": false, "phase": "nodegroups",
///  "cluster": {"name": "labflow-lab", "arn": "arn:aws:eks:...", "status": "ACTIVE",
///              "endpoint": "https://...", "version": "1.33"},
///  "nodegroups": [{"name": "spot-general", "status": "CREATING", ...}],
///  "addons": [{"name": "vpc-cni", "status": "ACTIVE", "version": "v1.19.0-eksbuild.1"}],
///  "podIdentities": [{"namespace": "kube-system", "serviceAccount": "...", "roleArn": "...", "associationId": "a-1"}],
///  "changes": [{"resource": "nodegroup/spot-general", "action": "create", "detail": "..."}]}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    /// True when everything matches the config and is ACTIVE, and this call changed nothing.
    pub done: bool,
    /// What the environment is waiting for.
    pub phase: Phase,
    pub cluster: ClusterReport,
    /// The configured node groups (only once the cluster is ACTIVE).
    pub nodegroups: Vec<NodegroupReport>,
    /// The configured add-ons (only once the cluster is ACTIVE).
    pub addons: Vec<AddonReport>,
    /// The configured Pod Identity associations (only once the cluster is ACTIVE).
    pub pod_identities: Vec<PodIdentityReport>,
    /// Every write this call made to AWS, in order. Empty when the world already matched.
    pub changes: Vec<Change>,
}

/// Where the environment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The cluster is being created (or was just asked to be).
    ClusterCreating,
    /// An update of the cluster is in progress.
    ClusterUpdating,
    /// A previous cluster of this name is still being deleted.
    ClusterDeleting,
    /// Waiting for node groups to be created or updated.
    Nodegroups,
    /// Waiting for add-ons to be created, updated or healthy.
    Addons,
    /// Pod Identity associations were just created or updated.
    PodIdentities,
    /// Everything is as configured.
    Ready,
}

/// The cluster as EKS reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterReport {
    pub name: String,
    pub arn: Option<String>,
    /// EKS status: CREATING, ACTIVE, UPDATING, DELETING, FAILED, PENDING.
    pub status: String,
    /// The API server URL (once EKS has one).
    pub endpoint: Option<String>,
    /// Kubernetes minor version, e.g. "1.33".
    pub version: Option<String>,
}

/// A configured node group as EKS reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodegroupReport {
    pub name: String,
    /// EKS status (CREATING, ACTIVE, UPDATING, ...), or "ABSENT" before creation.
    pub status: String,
    pub version: Option<String>,
    pub desired_size: Option<i32>,
    pub min_size: Option<i32>,
    pub max_size: Option<i32>,
    /// AWS's health issues, `CODE: message [resources]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_issues: Vec<String>,
}

/// A configured managed add-on as EKS reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddonReport {
    pub name: String,
    /// EKS status (CREATING, ACTIVE, DEGRADED, ...), or "ABSENT" before creation.
    pub status: String,
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_issues: Vec<String>,
}

/// A configured Pod Identity association.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodIdentityReport {
    pub namespace: String,
    pub service_account: String,
    pub role_arn: String,
    /// EKS's id for it (absent if the create call's answer was lost).
    pub association_id: Option<String>,
}

/// One write made to AWS (resources `cluster/<name>`, `nodegroup/<name>`, `addon/<name>`,
/// `podIdentity/<ns>/<sa>`).
pub use labflow_core::contract::Change;
