//! Desired (config) versus observed (EKS): the differences, as pure functions.
//!
//! Immutable differences are returned as human-readable lines (the caller fails with
//! `labflow.InvalidInput` naming every one); mutable ones become the next update to make.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use labflow_core::config::{ClusterConfig, LaunchTemplateRef, NodegroupConfig};

use crate::observed::{ObservedCluster, ObservedNodegroup};

/// EKS's default when public access is on and no CIDRs are given.
const OPEN_CIDR: &str = "0.0.0.0/0";

/// Parse "1.33" into 33.
pub fn minor(version: &str) -> Option<u32> {
    let (major, minor) = version.split_once('.')?;
    if major != "1" {
        return None;
    }
    minor.parse().ok()
}

/// Authentication modes ordered by what EKS allows: only moves up (CONFIG_MAP → API_AND_CONFIG_MAP
/// → API) are possible.
fn auth_rank(mode: &str) -> u8 {
    match mode {
        "API" => 2,
        "API_AND_CONFIG_MAP" => 1,
        _ => 0,
    }
}

fn set_text(set: &BTreeSet<String>) -> String {
    let items: Vec<&str> = set.iter().map(String::as_str).collect();
    format!("[{}]", items.join(", "))
}

/// Settings of an existing cluster that cannot be changed in place (or only by recreating it).
pub fn cluster_immutable_drift(want: &ClusterConfig, have: &ObservedCluster) -> Vec<String> {
    let mut drift = Vec::new();
    if let Some(role) = &have.role_arn {
        if role != &want.role_arn {
            drift.push(format!(
                "cluster.roleArn: cluster has {role}, config says {}",
                want.role_arn
            ));
        }
    }
    let subnets: BTreeSet<String> = want.subnet_ids.iter().cloned().collect();
    if subnets != have.subnet_ids {
        drift.push(format!(
            "cluster.subnetIds: cluster has {}, config says {}",
            set_text(&have.subnet_ids),
            set_text(&subnets)
        ));
    }
    let groups: BTreeSet<String> = want.security_group_ids.iter().cloned().collect();
    if groups != have.security_group_ids {
        drift.push(format!(
            "cluster.securityGroupIds: cluster has {}, config says {}",
            set_text(&have.security_group_ids),
            set_text(&groups)
        ));
    }
    if !have.secrets_kms_keys.iter().any(|k| k == &want.kms_key_arn) {
        let has = if have.secrets_kms_keys.is_empty() {
            "no secrets encryption".to_string()
        } else {
            format!(
                "secrets encrypted with {}",
                have.secrets_kms_keys.join(", ")
            )
        };
        drift.push(format!(
            "cluster.kmsKeyArn: cluster has {has}, config says {}",
            want.kms_key_arn
        ));
    }
    let have_mode = have.authentication_mode.as_deref().unwrap_or("CONFIG_MAP");
    let want_mode = want.authentication_mode.as_eks();
    if auth_rank(want_mode) < auth_rank(have_mode) {
        drift.push(format!(
            "cluster.authenticationMode: cluster has {have_mode}, config says {want_mode} (EKS cannot move back)"
        ));
    }
    if let (Some(have_v), Some(want_minor)) = (&have.version, minor(&want.version)) {
        if minor(have_v).is_some_and(|h| h > want_minor) {
            drift.push(format!(
                "cluster.version: cluster runs {have_v}, config says {} (EKS cannot downgrade)",
                want.version
            ));
        }
    }
    drift
}

/// One update of an ACTIVE cluster. EKS runs one update at a time, so at most one is made per call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterUpdate {
    AccessConfig {
        mode: String,
    },
    EndpointAccess {
        public: bool,
        private: bool,
        public_cidrs: Vec<String>,
    },
    Logging {
        enable: BTreeSet<String>,
        disable: BTreeSet<String>,
    },
    /// One minor version up (EKS upgrades one minor at a time).
    Version {
        to: String,
    },
}

impl ClusterUpdate {
    /// What the report says about it.
    pub fn describe(&self) -> String {
        match self {
            ClusterUpdate::AccessConfig { mode } => format!("authentication mode → {mode}"),
            ClusterUpdate::EndpointAccess {
                public,
                private,
                public_cidrs,
            } => format!(
                "endpoint access → public {public}, private {private}, public CIDRs [{}]",
                public_cidrs.join(", ")
            ),
            ClusterUpdate::Logging { enable, disable } => format!(
                "logging → enable {}, disable {}",
                set_text(enable),
                set_text(disable)
            ),
            ClusterUpdate::Version { to } => format!("Kubernetes version → {to}"),
        }
    }
}

/// The next mutable change an ACTIVE cluster needs, in the order that matters most for the lab:
/// access first (cluster-access depends on it), then endpoint access, logging, version.
pub fn next_cluster_update(want: &ClusterConfig, have: &ObservedCluster) -> Option<ClusterUpdate> {
    let have_mode = have.authentication_mode.as_deref().unwrap_or("CONFIG_MAP");
    let want_mode = want.authentication_mode.as_eks();
    if auth_rank(want_mode) > auth_rank(have_mode) {
        return Some(ClusterUpdate::AccessConfig {
            mode: want_mode.to_string(),
        });
    }

    let access = &want.endpoint_access;
    let want_cidrs: BTreeSet<String> = if access.public_cidrs.is_empty() {
        [OPEN_CIDR.to_string()].into()
    } else {
        access.public_cidrs.iter().cloned().collect()
    };
    // CIDRs only mean something while public access is on.
    let cidrs_differ = access.public && want_cidrs != have.public_cidrs;
    if access.public != have.endpoint_public
        || access.private != have.endpoint_private
        || cidrs_differ
    {
        return Some(ClusterUpdate::EndpointAccess {
            public: access.public,
            private: access.private,
            public_cidrs: if access.public {
                want_cidrs.into_iter().collect()
            } else {
                Vec::new()
            },
        });
    }

    let want_logs: BTreeSet<String> = want
        .logging
        .iter()
        .map(|l| l.as_eks().to_string())
        .collect();
    if want_logs != have.enabled_logs {
        return Some(ClusterUpdate::Logging {
            enable: want_logs.difference(&have.enabled_logs).cloned().collect(),
            disable: have.enabled_logs.difference(&want_logs).cloned().collect(),
        });
    }

    let have_minor = have.version.as_deref().and_then(minor);
    if let (Some(h), Some(w)) = (have_minor, minor(&want.version)) {
        if w > h {
            return Some(ClusterUpdate::Version {
                to: format!("1.{}", h + 1),
            });
        }
    }
    None
}

/// Tags to add or change so that a resource carries every desired tag. Tags someone else added
/// stay: labflow cannot tell them from tags it should remove.
pub fn missing_tags(
    want: &HashMap<String, String>,
    have: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    want.iter()
        .filter(|(k, v)| have.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Node group settings that EKS cannot change in place.
pub fn nodegroup_immutable_drift(
    want: &NodegroupConfig,
    cluster_subnets: &[String],
    have: &ObservedNodegroup,
) -> Vec<String> {
    let at = |field: &str| format!("nodegroups[{}].{field}", want.name);
    let mut drift = Vec::new();
    if let Some(role) = &have.node_role {
        if role != &want.node_role_arn {
            drift.push(format!(
                "{}: node group has {role}, config says {}",
                at("nodeRoleArn"),
                want.node_role_arn
            ));
        }
    }
    let subnets: BTreeSet<String> = effective_subnets(want, cluster_subnets)
        .into_iter()
        .collect();
    if subnets != have.subnets {
        drift.push(format!(
            "{}: node group has {}, config says {}",
            at("subnetIds"),
            set_text(&have.subnets),
            set_text(&subnets)
        ));
    }
    let types: BTreeSet<String> = want.instance_types.iter().cloned().collect();
    if types != have.instance_types {
        drift.push(format!(
            "{}: node group has {}, config says {}",
            at("instanceTypes"),
            set_text(&have.instance_types),
            set_text(&types)
        ));
    }
    let want_capacity = want.capacity_type.as_eks();
    if let Some(capacity) = &have.capacity_type {
        if capacity != want_capacity {
            drift.push(format!(
                "{}: node group has {capacity}, config says {want_capacity}",
                at("capacityType")
            ));
        }
    }
    // EKS updates a node group's launch template version, never the template itself, and only
    // when the node group was created from one (UpdateNodegroupVersion API reference).
    let have_template = have.launch_template.as_ref().map(|(id, _)| id.as_deref());
    let want_template = want.launch_template.as_ref().map(|t| t.id.as_str());
    match (have_template, want_template) {
        (Some(have_id), Some(want_id)) if have_id != Some(want_id) => drift.push(format!(
            "{}: node group was created from launch template {}, config says {want_id}; EKS only moves a node group to another version of its own template",
            at("launchTemplate.id"),
            have_id.unwrap_or("(by name)")
        )),
        (None, Some(want_id)) => drift.push(format!(
            "{}: node group was created without a launch template, config says {want_id}; EKS cannot add one to an existing node group",
            at("launchTemplate")
        )),
        (Some(_), None) => drift.push(format!(
            "{}: node group was created from a launch template, config names none; EKS cannot remove it",
            at("launchTemplate")
        )),
        _ => {}
    }
    if let (Some(want_disk), Some(have_disk)) = (want.disk_size_gib, have.disk_size) {
        if i64::from(want_disk) != i64::from(have_disk) {
            drift.push(format!(
                "{}: node group has {have_disk}, config says {want_disk}",
                at("diskSizeGib")
            ));
        }
    }
    drift
}

/// The launch template version to move the node group to: the configured one, when the node
/// group runs another version of the same template.
pub fn launch_template_update<'a>(
    want: &'a NodegroupConfig,
    have: &ObservedNodegroup,
) -> Option<&'a LaunchTemplateRef> {
    let want_template = want.launch_template.as_ref()?;
    let (have_id, have_version) = have.launch_template.as_ref()?;
    (have_id.as_deref() == Some(want_template.id.as_str())
        && have_version.as_deref() != Some(want_template.version.as_str()))
    .then_some(want_template)
}

/// The subnets a node group runs in: its own, or the cluster's.
pub fn effective_subnets(want: &NodegroupConfig, cluster_subnets: &[String]) -> Vec<String> {
    if want.subnet_ids.is_empty() {
        cluster_subnets.to_vec()
    } else {
        want.subnet_ids.clone()
    }
}

/// An in-place update of a node group's scaling, labels and taints (one UpdateNodegroupConfig).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodegroupConfigUpdate {
    /// (min, max, desired) when scaling differs.
    pub scaling: Option<(u32, u32, u32)>,
    pub add_labels: BTreeMap<String, String>,
    pub remove_labels: BTreeSet<String>,
    /// (key, value, EKS effect)
    pub add_taints: BTreeSet<(String, Option<String>, String)>,
    pub remove_taints: BTreeSet<(String, Option<String>, String)>,
}

impl NodegroupConfigUpdate {
    pub fn is_empty(&self) -> bool {
        self.scaling.is_none()
            && self.add_labels.is_empty()
            && self.remove_labels.is_empty()
            && self.add_taints.is_empty()
            && self.remove_taints.is_empty()
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some((min, max, desired)) = self.scaling {
            parts.push(format!("scaling → min {min}, max {max}, desired {desired}"));
        }
        if !self.add_labels.is_empty() {
            let labels: Vec<String> = self
                .add_labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            parts.push(format!("labels set [{}]", labels.join(", ")));
        }
        if !self.remove_labels.is_empty() {
            parts.push(format!("labels removed {}", set_text(&self.remove_labels)));
        }
        let taint = |(k, v, e): &(String, Option<String>, String)| {
            format!("{k}={}:{e}", v.as_deref().unwrap_or(""))
        };
        if !self.add_taints.is_empty() {
            let t: Vec<String> = self.add_taints.iter().map(taint).collect();
            parts.push(format!("taints set [{}]", t.join(", ")));
        }
        if !self.remove_taints.is_empty() {
            let t: Vec<String> = self.remove_taints.iter().map(taint).collect();
            parts.push(format!("taints removed [{}]", t.join(", ")));
        }
        parts.join("; ")
    }
}

/// Scaling, label and taint differences of a node group.
pub fn nodegroup_config_update(
    want: &NodegroupConfig,
    have: &ObservedNodegroup,
) -> NodegroupConfigUpdate {
    let mut update = NodegroupConfigUpdate::default();
    let s = want.scaling;
    let as_i32 = |n: u32| i32::try_from(n).ok();
    if have.min_size != as_i32(s.min)
        || have.max_size != as_i32(s.max)
        || have.desired_size != as_i32(s.desired)
    {
        update.scaling = Some((s.min, s.max, s.desired));
    }
    for (k, v) in &want.labels {
        if have.labels.get(k) != Some(v) {
            update.add_labels.insert(k.clone(), v.clone());
        }
    }
    for k in have.labels.keys() {
        if !want.labels.contains_key(k) {
            update.remove_labels.insert(k.clone());
        }
    }
    let want_taints: BTreeSet<(String, Option<String>, String)> = want
        .taints
        .iter()
        .map(|t| {
            (
                t.key.clone(),
                t.value.clone(),
                t.effect.as_eks().to_string(),
            )
        })
        .collect();
    update.add_taints = want_taints.difference(&have.taints).cloned().collect();
    // A taint whose key and effect stay but whose value changes is updated, not removed.
    update.remove_taints = have
        .taints
        .iter()
        .filter(|(k, _, e)| !want_taints.iter().any(|(wk, _, we)| wk == k && we == e))
        .cloned()
        .collect();
    update
}

#[cfg(test)]
mod tests {
    use super::*;
    use labflow_core::config::{
        AuthenticationMode, CapacityType, EndpointAccess, LogType, Scaling, Taint, TaintEffect,
    };

    fn want() -> ClusterConfig {
        ClusterConfig {
            name: "c".into(),
            version: "1.34".into(),
            role_arn: "arn:aws:iam::1:role/r".into(),
            subnet_ids: vec!["subnet-a".into(), "subnet-b".into()],
            availability_zones: vec![],
            security_group_ids: vec!["sg-1".into()],
            endpoint_access: EndpointAccess::default(),
            kms_key_arn: "arn:aws:kms:eu-west-1:1:key/k".into(),
            logging: vec![LogType::Api, LogType::Audit],
            authentication_mode: AuthenticationMode::ApiAndConfigMap,
        }
    }

    fn matching() -> ObservedCluster {
        ObservedCluster {
            name: "c".into(),
            status: "ACTIVE".into(),
            version: Some("1.34".into()),
            role_arn: Some("arn:aws:iam::1:role/r".into()),
            subnet_ids: ["subnet-b".to_string(), "subnet-a".to_string()].into(),
            security_group_ids: ["sg-1".to_string()].into(),
            endpoint_public: true,
            endpoint_private: true,
            public_cidrs: [OPEN_CIDR.to_string()].into(),
            secrets_kms_keys: vec!["arn:aws:kms:eu-west-1:1:key/k".into()],
            enabled_logs: ["api".to_string(), "audit".to_string()].into(),
            authentication_mode: Some("API_AND_CONFIG_MAP".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_matching_cluster_has_no_drift() {
        assert!(cluster_immutable_drift(&want(), &matching()).is_empty());
        assert_eq!(next_cluster_update(&want(), &matching()), None);
    }

    #[test]
    fn immutable_drift_names_every_difference() {
        let mut have = matching();
        have.subnet_ids.insert("subnet-z".into());
        have.security_group_ids.clear();
        have.secrets_kms_keys = vec![];
        have.role_arn = Some("arn:aws:iam::1:role/other".into());
        have.authentication_mode = Some("API".into());
        have.version = Some("1.35".into());
        let drift = cluster_immutable_drift(&want(), &have);
        let text = drift.join("\n");
        for field in [
            "cluster.subnetIds",
            "cluster.securityGroupIds",
            "cluster.kmsKeyArn",
            "cluster.roleArn",
            "cluster.authenticationMode",
            "cluster.version",
        ] {
            assert!(text.contains(field), "{field} missing from {text}");
        }
        assert_eq!(drift.len(), 6);
    }

    #[test]
    fn mutable_updates_come_one_at_a_time_in_order() {
        let mut have = matching();
        have.authentication_mode = Some("CONFIG_MAP".into());
        have.enabled_logs = ["api".to_string(), "scheduler".to_string()].into();
        have.version = Some("1.32".into());
        assert_eq!(
            next_cluster_update(&want(), &have),
            Some(ClusterUpdate::AccessConfig {
                mode: "API_AND_CONFIG_MAP".into()
            })
        );
        have.authentication_mode = Some("API_AND_CONFIG_MAP".into());
        assert_eq!(
            next_cluster_update(&want(), &have),
            Some(ClusterUpdate::Logging {
                enable: ["audit".to_string()].into(),
                disable: ["scheduler".to_string()].into(),
            })
        );
        have.enabled_logs = ["api".to_string(), "audit".to_string()].into();
        // Two minors behind: one step now, the next on a later call.
        assert_eq!(
            next_cluster_update(&want(), &have),
            Some(ClusterUpdate::Version { to: "1.33".into() })
        );
    }

    #[test]
    fn endpoint_access_compares_effective_cidrs() {
        let mut want = want();
        want.endpoint_access.public_cidrs = vec!["10.0.0.0/8".into()];
        let update = next_cluster_update(&want, &matching());
        assert_eq!(
            update,
            Some(ClusterUpdate::EndpointAccess {
                public: true,
                private: true,
                public_cidrs: vec!["10.0.0.0/8".into()]
            })
        );
        // Public access off: the CIDRs EKS still reports do not matter.
        want.endpoint_access = EndpointAccess {
            public: false,
            private: true,
            public_cidrs: vec![],
        };
        let mut have = matching();
        have.endpoint_public = false;
        assert_eq!(next_cluster_update(&want, &have), None);
    }

    fn nodegroup() -> NodegroupConfig {
        NodegroupConfig {
            name: "ng".into(),
            node_role_arn: "arn:aws:iam::1:role/node".into(),
            subnet_ids: vec![],
            instance_types: vec!["m5.large".into()],
            capacity_type: CapacityType::Spot,
            scaling: Scaling {
                min: 1,
                max: 3,
                desired: 2,
            },
            disk_size_gib: None,
            labels: [("pool".to_string(), "general".to_string())].into(),
            taints: vec![Taint {
                key: "dedicated".into(),
                value: Some("lab".into()),
                effect: TaintEffect::NoSchedule,
            }],
            launch_template: None,
        }
    }

    #[test]
    fn nodegroup_drift_splits_immutable_and_mutable() {
        let have = ObservedNodegroup {
            name: "ng".into(),
            node_role: Some("arn:aws:iam::1:role/node".into()),
            subnets: ["subnet-a".to_string()].into(),
            instance_types: ["m5.xlarge".to_string()].into(),
            capacity_type: Some("SPOT".into()),
            min_size: Some(1),
            max_size: Some(3),
            desired_size: Some(1),
            labels: [
                ("pool".to_string(), "old".to_string()),
                ("stale".to_string(), "x".to_string()),
            ]
            .into(),
            taints: [
                (
                    "dedicated".to_string(),
                    Some("old".to_string()),
                    "NO_SCHEDULE".to_string(),
                ),
                ("gone".to_string(), None, "NO_EXECUTE".to_string()),
            ]
            .into(),
            ..Default::default()
        };
        let cluster_subnets = vec!["subnet-a".to_string(), "subnet-b".to_string()];
        let drift = nodegroup_immutable_drift(&nodegroup(), &cluster_subnets, &have);
        assert_eq!(drift.len(), 2, "{drift:?}");
        assert!(drift[0].contains("nodegroups[ng].subnetIds"));
        assert!(drift[1].contains("nodegroups[ng].instanceTypes"));

        let update = nodegroup_config_update(&nodegroup(), &have);
        assert_eq!(update.scaling, Some((1, 3, 2)));
        assert_eq!(
            update.add_labels,
            [("pool".to_string(), "general".to_string())].into()
        );
        assert_eq!(update.remove_labels, ["stale".to_string()].into());
        assert_eq!(update.add_taints.len(), 1);
        assert_eq!(
            update.remove_taints,
            [("gone".to_string(), None, "NO_EXECUTE".to_string())].into()
        );
    }

    #[test]
    fn missing_tags_ignores_foreign_tags() {
        let want: HashMap<String, String> = [("a".to_string(), "1".to_string())].into();
        let have: BTreeMap<String, String> = [
            ("a".to_string(), "0".to_string()),
            ("b".to_string(), "2".to_string()),
        ]
        .into();
        assert_eq!(
            missing_tags(&want, &have),
            [("a".to_string(), "1".to_string())].into()
        );
    }
}
