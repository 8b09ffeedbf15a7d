//! The `configurationValues` ensure-cluster gives each add-on: the config's, plus what labflow
//! itself needs.
//!
//! The EBS CSI driver tags the volumes and snapshots it creates with its cluster only when told
//! the cluster's name (`controller.k8sTagClusterId`): `kubernetes.io/cluster/<id>=owned`,
//! `KubernetesCluster=<id>` and, from v1.58.0, `ebs.csi.aws.com/cluster-name=<id>`, the tag the
//! cluster-scoped IAM policy requires (kubernetes-sigs/aws-ebs-csi-driver
//! `pkg/driver/controller.go`, `docs/tagging.md`, CHANGELOG v1.58.0 / PR #2899). Without it a lost
//! cluster's volumes cannot be told from another lab's.

use labflow_core::config::AddonConfig;
use labflow_core::error::classify_sdk_error;
use labflow_core::versions::{addon_semver, ebs_csi_tags_cluster, EBS_CSI_CLUSTER_TAG_SINCE};
use labflow_core::StepError;
use serde_json::{json, Value};

pub const EBS_CSI_DRIVER: &str = "aws-ebs-csi-driver";

/// The configuration to install or keep, `None` = EKS's defaults.
pub fn desired(addon: &AddonConfig, cluster_name: &str) -> Option<Value> {
    let mut values = addon.configuration_values.clone();
    if addon.name == EBS_CSI_DRIVER {
        let values = values.get_or_insert_with(|| json!({}));
        if !values.get("controller").is_some_and(Value::is_object) {
            values["controller"] = json!({});
        }
        values["controller"]["k8sTagClusterId"] = json!(cluster_name);
    }
    values
}

/// The version to install or move to when the config pins none: `None` = EKS's default, except
/// for the EBS CSI driver, which must tag its volumes with the cluster (the cluster-scoped IAM
/// policy admits no others): when it is missing or older than v1.58.0, EKS's default for the
/// cluster's Kubernetes version if that is new enough, else the newest compatible version that is.
pub async fn unpinned_version(
    eks: &aws_sdk_eks::Client,
    addon: &AddonConfig,
    installed: Option<&str>,
    kubernetes_version: &str,
) -> Result<Option<String>, StepError> {
    if addon.version.is_some()
        || addon.name != EBS_CSI_DRIVER
        || installed.is_some_and(ebs_csi_tags_cluster)
    {
        return Ok(None);
    }
    let offered = eks
        .describe_addon_versions()
        .addon_name(&addon.name)
        .kubernetes_version(kubernetes_version)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| {
            classify_sdk_error(&format!("listing versions of add-on {}", addon.name), e)
        })?;
    let versions: Vec<(String, bool)> = offered
        .iter()
        .flat_map(|a| a.addon_versions())
        .filter_map(|v| {
            let default = v
                .compatibilities()
                .iter()
                .any(|c| c.cluster_version() == Some(kubernetes_version) && c.default_version());
            Some((v.addon_version()?.to_string(), default))
        })
        .collect();
    Ok(Some(pick_tagging_version(&versions).ok_or_else(|| {
        let (major, minor, patch) = EBS_CSI_CLUSTER_TAG_SINCE;
        StepError::InvalidInput(format!(
            "EKS offers no {EBS_CSI_DRIVER} v{major}.{minor}.{patch} or later for Kubernetes {kubernetes_version}; labflow needs one so the driver's volumes carry the cluster's tag"
        ))
    })?))
}

/// Among `(version, is EKS's default)`: the default if it tags volumes with the cluster, else the
/// newest that does.
fn pick_tagging_version(versions: &[(String, bool)]) -> Option<String> {
    let tagging = || versions.iter().filter(|(v, _)| ebs_csi_tags_cluster(v));
    tagging()
        .find(|(_, default)| *default)
        .or_else(|| tagging().max_by_key(|(v, _)| addon_semver(v)))
        .map(|(v, _)| v.clone())
}

/// Whether the add-on's current configuration (as DescribeAddon returns it, JSON or YAML text)
/// differs from `desired`. Only a configuration labflow sets is compared: `None` leaves the
/// add-on's as it is.
pub fn differs(desired: Option<&Value>, current: Option<&str>) -> bool {
    let Some(desired) = desired else {
        return false;
    };
    let current: Option<Value> = current
        .filter(|c| !c.trim().is_empty())
        .and_then(|c| serde_yaml_ng::from_str(c).ok());
    current.as_ref() != Some(desired)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addon(name: &str, values: Option<Value>) -> AddonConfig {
        AddonConfig {
            name: name.into(),
            version: None,
            configuration_values: values,
        }
    }

    #[test]
    fn the_ebs_driver_is_told_its_cluster_other_add_ons_keep_the_config() {
        let ebs = desired(&addon(EBS_CSI_DRIVER, None), "labflow-lab");
        assert_eq!(
            ebs,
            Some(json!({"controller": {"k8sTagClusterId": "labflow-lab"}}))
        );
        let merged = desired(
            &addon(
                EBS_CSI_DRIVER,
                Some(json!({"controller": {"replicaCount": 1}, "node": {}})),
            ),
            "labflow-lab",
        );
        assert_eq!(
            merged,
            Some(
                json!({"controller": {"replicaCount": 1, "k8sTagClusterId": "labflow-lab"}, "node": {}})
            )
        );
        assert_eq!(desired(&addon("coredns", None), "labflow-lab"), None);
        let coredns = json!({"replicaCount": 3});
        assert_eq!(
            desired(&addon("coredns", Some(coredns.clone())), "labflow-lab"),
            Some(coredns)
        );
    }

    #[test]
    fn the_default_ebs_version_when_it_tags_the_cluster_else_the_newest_that_does() {
        let v = |list: &[(&str, bool)]| {
            list.iter()
                .map(|(v, d)| (v.to_string(), *d))
                .collect::<Vec<_>>()
        };
        let old_default = v(&[
            ("v1.58.0-eksbuild.1", false),
            ("v1.60.0-eksbuild.1", false),
            ("v1.45.0-eksbuild.2", true),
        ]);
        assert_eq!(
            pick_tagging_version(&old_default).as_deref(),
            Some("v1.60.0-eksbuild.1")
        );
        let new_default = v(&[("v1.60.0-eksbuild.1", false), ("v1.59.0-eksbuild.1", true)]);
        assert_eq!(
            pick_tagging_version(&new_default).as_deref(),
            Some("v1.59.0-eksbuild.1")
        );
        assert_eq!(
            pick_tagging_version(&v(&[("v1.45.0-eksbuild.2", true)])),
            None
        );
    }

    #[test]
    fn json_or_yaml_of_the_same_configuration_is_no_change() {
        let want = json!({"controller": {"k8sTagClusterId": "labflow-lab"}});
        assert!(!differs(
            Some(&want),
            Some(r#"{"controller":{"k8sTagClusterId":"labflow-lab"}}"#)
        ));
        assert!(!differs(
            Some(&want),
            Some("controller:\n  k8sTagClusterId: labflow-lab\n")
        ));
        assert!(differs(Some(&want), Some("")));
        assert!(differs(Some(&want), None));
        assert!(differs(
            Some(&want),
            Some(r#"{"controller":{"k8sTagClusterId":"other"}}"#)
        ));
        assert!(!differs(None, Some(r#"{"anything": true}"#)));
    }
}
