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
