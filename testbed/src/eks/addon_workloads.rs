//! What a managed add-on runs inside the cluster once it is ACTIVE, so that the simulated
//! controllers can act only while it runs (as the real ones do) and read their settings from
//! its command line. Only add-ons whose in-cluster workload something simulates are listed.

use crate::controllers::objects::{Client, ObjRef};
use crate::kubesim::KubeSim;
use serde_json::{json, Value};

/// The EBS CSI driver's controller Deployment (`kube-system/ebs-csi-controller`, labelled
/// `app.kubernetes.io/name=aws-ebs-csi-driver`: aws-ebs-csi-driver charts/aws-ebs-csi-driver
/// templates/controller.yaml, which the EKS add-on renders).
pub const EBS_CSI_CONTROLLER: &str = "ebs-csi-controller";
pub const EBS_CSI_ADDON: &str = "aws-ebs-csi-driver";

fn config_values(addon: &Value) -> Value {
    addon["configurationValues"]
        .as_str()
        .and_then(|text| serde_yaml_ng::from_str::<Value>(text).ok())
        .unwrap_or(Value::Null)
}

/// The Deployment `addon` runs, if it is one the testbed simulates.
fn workload(addon: &Value) -> Option<Value> {
    if addon["addonName"] != EBS_CSI_ADDON {
        return None;
    }
    let values = config_values(addon);
    // controller.k8sTagClusterId becomes `--k8s-tag-cluster-id` of the ebs-plugin container;
    // controller.extraCreateMetadata (default true) `--extra-create-metadata` of csi-provisioner
    // (chart templates/controller.yaml; values.yaml).
    let mut plugin_args = vec!["controller".to_string()];
    if let Some(id) = values
        .pointer("/controller/k8sTagClusterId")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
    {
        plugin_args.push(format!("--k8s-tag-cluster-id={id}"));
    }
    let mut provisioner_args = vec!["--csi-address=$(ADDRESS)".to_string()];
    if values.pointer("/controller/extraCreateMetadata") != Some(&Value::Bool(false)) {
        provisioner_args.push("--extra-create-metadata".to_string());
    }
    let labels = json!({
        "app": EBS_CSI_CONTROLLER,
        "app.kubernetes.io/name": EBS_CSI_ADDON,
        "app.kubernetes.io/managed-by": "EKS",
    });
    Some(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": EBS_CSI_CONTROLLER, "namespace": "kube-system", "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": EBS_CSI_CONTROLLER}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [
                    {"name": "ebs-plugin", "image": "registry.invalid/aws-ebs-csi-driver", "args": plugin_args},
                    {"name": "csi-provisioner", "image": "registry.invalid/csi-provisioner", "args": provisioner_args},
                ]},
            },
        },
    }))
}

/// `addon` became ACTIVE (created or updated): its workload runs with its configuration.
pub fn installed(kube: &KubeSim, addon: &Value) {
    if let Some(deployment) = workload(addon) {
        if let Err(e) = Client::new(kube.store(), "eks").apply(&deployment) {
            tracing::warn!(error = %e.message, "eks: add-on workload");
        }
    }
}

/// `addon` was deleted: its workload stops.
pub fn removed(kube: &KubeSim, addon: &Value) {
    if let Some(deployment) = workload(addon) {
        if let Err(e) = Client::new(kube.store(), "eks").delete(&ObjRef::of(&deployment)) {
            tracing::warn!(error = %e.message, "eks: add-on workload");
        }
    }
}
