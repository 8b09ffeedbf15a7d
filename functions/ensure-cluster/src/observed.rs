//! What EKS says exists, as plain data: the planning functions compare these with the config
//! without touching the SDK, so they are pure and testable on their own.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_eks::types::{Addon, Cluster, Nodegroup};

/// A cluster as DescribeCluster reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedCluster {
    pub name: String,
    pub arn: Option<String>,
    pub status: String,
    pub version: Option<String>,
    pub endpoint: Option<String>,
    pub role_arn: Option<String>,
    pub subnet_ids: BTreeSet<String>,
    pub security_group_ids: BTreeSet<String>,
    pub endpoint_public: bool,
    pub endpoint_private: bool,
    pub public_cidrs: BTreeSet<String>,
    /// KMS keys of the envelope encryption (EKS now encrypts all API data with them).
    pub secrets_kms_keys: Vec<String>,
    /// Control-plane log types that are enabled (EKS names: "api", "controllerManager", ...).
    pub enabled_logs: BTreeSet<String>,
    /// `None` when EKS reports no access config (an old cluster: CONFIG_MAP).
    pub authentication_mode: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub health_issues: Vec<String>,
}

impl From<&Cluster> for ObservedCluster {
    fn from(c: &Cluster) -> Self {
        let vpc = c.resources_vpc_config();
        let mut enabled_logs = BTreeSet::new();
        if let Some(logging) = c.logging() {
            for setup in logging.cluster_logging() {
                if setup.enabled() == Some(true) {
                    enabled_logs.extend(setup.types().iter().map(|t| t.as_str().to_string()));
                }
            }
        }
        let secrets_kms_keys = c
            .encryption_config()
            .iter()
            .filter_map(|e| e.provider().and_then(|p| p.key_arn()))
            .map(str::to_string)
            .collect();
        let health_issues = c
            .health()
            .map(|h| {
                h.issues()
                    .iter()
                    .map(|i| {
                        issue_text(i.code().map(|c| c.as_str()), i.message(), i.resource_ids())
                    })
                    .collect()
            })
            .unwrap_or_default();
        ObservedCluster {
            name: c.name().unwrap_or_default().to_string(),
            arn: c.arn().map(str::to_string),
            status: c
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            version: c.version().map(str::to_string),
            endpoint: c.endpoint().filter(|e| !e.is_empty()).map(str::to_string),
            role_arn: c.role_arn().map(str::to_string),
            subnet_ids: vpc
                .map(|v| v.subnet_ids().iter().cloned().collect())
                .unwrap_or_default(),
            security_group_ids: vpc
                .map(|v| v.security_group_ids().iter().cloned().collect())
                .unwrap_or_default(),
            endpoint_public: vpc.is_some_and(|v| v.endpoint_public_access()),
            endpoint_private: vpc.is_some_and(|v| v.endpoint_private_access()),
            public_cidrs: vpc
                .map(|v| v.public_access_cidrs().iter().cloned().collect())
                .unwrap_or_default(),
            secrets_kms_keys,
            enabled_logs,
            authentication_mode: c
                .access_config()
                .and_then(|a| a.authentication_mode())
                .map(|m| m.as_str().to_string()),
            tags: to_btree(c.tags()),
            health_issues,
        }
    }
}

/// A managed node group as DescribeNodegroup reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedNodegroup {
    pub name: String,
    pub arn: Option<String>,
    pub status: String,
    pub version: Option<String>,
    pub node_role: Option<String>,
    pub subnets: BTreeSet<String>,
    pub instance_types: BTreeSet<String>,
    pub capacity_type: Option<String>,
    pub disk_size: Option<i32>,
    /// The launch template it was created from: (id, version).
    pub launch_template: Option<(Option<String>, Option<String>)>,
    pub min_size: Option<i32>,
    pub max_size: Option<i32>,
    pub desired_size: Option<i32>,
    pub labels: BTreeMap<String, String>,
    /// (key, value, effect as EKS names it)
    pub taints: BTreeSet<(String, Option<String>, String)>,
    pub tags: BTreeMap<String, String>,
    pub health_issues: Vec<String>,
}

impl From<&Nodegroup> for ObservedNodegroup {
    fn from(n: &Nodegroup) -> Self {
        let scaling = n.scaling_config();
        ObservedNodegroup {
            name: n.nodegroup_name().unwrap_or_default().to_string(),
            arn: n.nodegroup_arn().map(str::to_string),
            status: n
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            version: n.version().map(str::to_string),
            node_role: n.node_role().map(str::to_string),
            subnets: n.subnets().iter().cloned().collect(),
            instance_types: n.instance_types().iter().cloned().collect(),
            capacity_type: n.capacity_type().map(|c| c.as_str().to_string()),
            disk_size: n.disk_size(),
            launch_template: n
                .launch_template()
                .map(|t| (t.id().map(str::to_string), t.version().map(str::to_string))),
            min_size: scaling.and_then(|s| s.min_size()),
            max_size: scaling.and_then(|s| s.max_size()),
            desired_size: scaling.and_then(|s| s.desired_size()),
            labels: to_btree(n.labels()),
            taints: n
                .taints()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_string(),
                        t.value().map(str::to_string),
                        t.effect()
                            .map(|e| e.as_str().to_string())
                            .unwrap_or_default(),
                    )
                })
                .collect(),
            tags: to_btree(n.tags()),
            health_issues: n
                .health()
                .map(|h| {
                    h.issues()
                        .iter()
                        .map(|i| {
                            issue_text(i.code().map(|c| c.as_str()), i.message(), i.resource_ids())
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// A managed add-on as DescribeAddon reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedAddon {
    pub name: String,
    pub arn: Option<String>,
    pub status: String,
    pub version: Option<String>,
    /// `configurationValues` as EKS returns it (JSON or YAML text).
    pub configuration_values: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub health_issues: Vec<String>,
}

impl From<&Addon> for ObservedAddon {
    fn from(a: &Addon) -> Self {
        ObservedAddon {
            name: a.addon_name().unwrap_or_default().to_string(),
            arn: a.addon_arn().map(str::to_string),
            status: a
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            version: a.addon_version().map(str::to_string),
            configuration_values: a.configuration_values().map(str::to_string),
            tags: to_btree(a.tags()),
            health_issues: a
                .health()
                .map(|h| {
                    h.issues()
                        .iter()
                        .map(|i| {
                            issue_text(i.code().map(|c| c.as_str()), i.message(), i.resource_ids())
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

fn to_btree(map: Option<&std::collections::HashMap<String, String>>) -> BTreeMap<String, String> {
    map.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// One health issue as a line: `CODE: message [resource ids]`.
fn issue_text(code: Option<&str>, message: Option<&str>, resources: &[String]) -> String {
    let mut text = format!(
        "{}: {}",
        code.unwrap_or("Unknown"),
        message.unwrap_or("(no message)")
    );
    if !resources.is_empty() {
        text.push_str(&format!(" [{}]", resources.join(", ")));
    }
    text
}
