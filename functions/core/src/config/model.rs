//! The environment config stored at `/labflow/environments/<env>` (JSON, camelCase).
//!
//! Unknown fields are rejected everywhere: a typo in Terraform must fail loudly, not be ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One lab environment: everything the steps need to create, sync and destroy it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentConfig {
    pub cluster: ClusterConfig,
    #[serde(default)]
    pub nodegroups: Vec<NodegroupConfig>,
    #[serde(default)]
    pub addons: Vec<AddonConfig>,
    #[serde(default)]
    pub pod_identities: Vec<PodIdentityConfig>,
    #[serde(default)]
    pub access_principals: Vec<AccessPrincipal>,
    pub flux: FluxConfig,
    pub dns: DnsConfig,
    /// How long health-check may wait for the lab to become healthy.
    #[serde(default = "default_health_deadline_minutes")]
    pub health_deadline_minutes: u32,
    /// Whether the nightly `teardown-all` includes this environment.
    #[serde(default)]
    pub nightly_teardown: bool,
    /// Protected environments refuse teardown from the schedule.
    #[serde(default)]
    pub protected: bool,
    /// Extra tags on every AWS resource (the ownership tags are always added).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

fn default_health_deadline_minutes() -> u32 {
    30
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterConfig {
    pub name: String,
    /// Kubernetes minor version, e.g. "1.33".
    pub version: String,
    pub role_arn: String,
    pub subnet_ids: Vec<String>,
    /// The zones of `subnet_ids`, passed to the GitOps tree as `AVAILABILITY_ZONES`.
    #[serde(default)]
    pub availability_zones: Vec<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    #[serde(default)]
    pub endpoint_access: EndpointAccess,
    /// KMS key for envelope encryption of Kubernetes secrets.
    pub kms_key_arn: String,
    /// Control-plane log types to enable.
    #[serde(default = "default_logging")]
    pub logging: Vec<LogType>,
    #[serde(default)]
    pub authentication_mode: AuthenticationMode,
}

fn default_logging() -> Vec<LogType> {
    vec![LogType::Api, LogType::Audit, LogType::Authenticator]
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointAccess {
    #[serde(default = "yes")]
    pub public: bool,
    #[serde(default = "yes")]
    pub private: bool,
    #[serde(default)]
    pub public_cidrs: Vec<String>,
}

fn yes() -> bool {
    true
}

impl Default for EndpointAccess {
    fn default() -> Self {
        Self {
            public: true,
            private: true,
            public_cidrs: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LogType {
    Api,
    Audit,
    Authenticator,
    ControllerManager,
    Scheduler,
}

impl LogType {
    /// The name EKS uses in its logging configuration.
    pub fn as_eks(self) -> &'static str {
        match self {
            LogType::Api => "api",
            LogType::Audit => "audit",
            LogType::Authenticator => "authenticator",
            LogType::ControllerManager => "controllerManager",
            LogType::Scheduler => "scheduler",
        }
    }
}

/// Access entries need API or API_AND_CONFIG_MAP (DESIGN.md §5); CONFIG_MAP alone is not allowed.
/// The default is API: with API_AND_CONFIG_MAP the aws-auth ConfigMap stays a second way into
/// the cluster, outside the access entries labflow reconciles (issue 26 item 7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthenticationMode {
    #[default]
    Api,
    ApiAndConfigMap,
}

impl AuthenticationMode {
    pub fn as_eks(self) -> &'static str {
        match self {
            AuthenticationMode::Api => "API",
            AuthenticationMode::ApiAndConfigMap => "API_AND_CONFIG_MAP",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodegroupConfig {
    pub name: String,
    pub node_role_arn: String,
    /// Defaults to the cluster's subnets.
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    pub instance_types: Vec<String>,
    #[serde(default)]
    pub capacity_type: CapacityType,
    pub scaling: Scaling,
    #[serde(default)]
    pub disk_size_gib: Option<u32>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub taints: Vec<Taint>,
    /// The EC2 launch template the nodes start from (Terraform's: IMDSv2 only, one hop, so pods
    /// cannot take the node role's credentials from instance metadata). The disk size is then
    /// the template's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_template: Option<LaunchTemplateRef>,
}

/// An EC2 launch template by id and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LaunchTemplateRef {
    pub id: String,
    pub version: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CapacityType {
    #[default]
    OnDemand,
    Spot,
}

impl CapacityType {
    pub fn as_eks(self) -> &'static str {
        match self {
            CapacityType::OnDemand => "ON_DEMAND",
            CapacityType::Spot => "SPOT",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scaling {
    pub min: u32,
    pub max: u32,
    pub desired: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Taint {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
    pub effect: TaintEffect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaintEffect {
    NoSchedule,
    NoExecute,
    PreferNoSchedule,
}

impl TaintEffect {
    pub fn as_eks(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NO_SCHEDULE",
            TaintEffect::NoExecute => "NO_EXECUTE",
            TaintEffect::PreferNoSchedule => "PREFER_NO_SCHEDULE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddonConfig {
    pub name: String,
    /// Exact add-on version (e.g. `v1.19.0-eksbuild.1`); absent = EKS's default for the cluster.
    #[serde(default)]
    pub version: Option<String>,
    /// The add-on's configuration (CreateAddon/UpdateAddon `configurationValues`, a JSON object
    /// following the add-on's schema: `aws eks describe-addon-configuration`); absent = EKS's
    /// defaults, and whatever is set is left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_values: Option<serde_json::Value>,
}

/// An EKS Pod Identity association for a controller's service account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodIdentityConfig {
    pub namespace: String,
    pub service_account: String,
    pub role_arn: String,
}

/// An IAM principal given access to the cluster through an access entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessPrincipal {
    pub principal_arn: String,
    /// Access policies to associate at cluster scope. When both these and `kubernetesGroups`
    /// are empty: AmazonEKSClusterAdminPolicy.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Kubernetes groups of the access entry, for RBAC bindings in the cluster (e.g.
    /// [`crate::reader::GROUP`] for health-check's read-only access).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubernetes_groups: Vec<String>,
}

pub const CLUSTER_ADMIN_POLICY: &str =
    "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";

impl AccessPrincipal {
    /// The policies to associate: the configured ones, or cluster admin when the principal has
    /// neither policies nor Kubernetes groups.
    pub fn effective_policies(&self) -> Vec<String> {
        if self.policies.is_empty() && self.kubernetes_groups.is_empty() {
            vec![CLUSTER_ADMIN_POLICY.to_string()]
        } else {
            self.policies.clone()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FluxConfig {
    /// Flux release, e.g. "2.9.4".
    pub version: String,
    /// Where `install.yaml` is downloaded from.
    pub manifest_url: String,
    /// Lower-case hex sha256 of `install.yaml`.
    pub manifest_sha256: String,
    pub repository: GitRepositoryConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitRepositoryConfig {
    pub url: String,
    pub branch: String,
    /// Path of the environment's entry point; default `./infra/gitops/clusters/<env>`.
    #[serde(default)]
    pub path: Option<String>,
    /// Flux reconcile interval, e.g. "1m".
    #[serde(default = "default_interval")]
    pub interval: String,
    /// SSM SecureString with Flux's read-only Git credential; default
    /// `/labflow/flux-credentials/<env>` (config/git_credential.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_parameter: Option<String>,
    /// known_hosts lines for an `ssh://` source; default: GitHub's published keys on github.com.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<String>,
}

fn default_interval() -> String {
    "1m".to_string()
}

impl GitRepositoryConfig {
    pub fn path_for(&self, environment: &str) -> String {
        self.path
            .clone()
            .unwrap_or_else(|| format!("./infra/gitops/clusters/{environment}"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsConfig {
    pub hosted_zone_id: String,
    pub domain: String,
    /// external-dns `txtOwnerId`: records with this owner belong to the environment.
    pub owner_id: String,
    /// ACM certificate for the app hosts (used by the ALB Ingresses).
    #[serde(default)]
    pub certificate_arn: Option<String>,
}
