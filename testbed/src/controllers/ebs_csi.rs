//! The EBS CSI driver's controller side (ebs-plugin with the external-provisioner sidecar):
//! a claim of a StorageClass whose provisioner is `ebs.csi.aws.com` gets an EBS volume in the AWS
//! emulator and a PersistentVolume bound to it; when the claim is gone, a PersistentVolume with
//! reclaim policy Delete goes with its volume. It acts only while the driver's controller
//! Deployment (`kube-system/ebs-csi-controller`, made by the simulated EKS add-on) exists, and
//! reads its settings from that Deployment's arguments, as the real one does: without it, a
//! released volume stays in the account.
//!
//! Upstream, kubernetes-sigs/aws-ebs-csi-driver v1.58.0 (pkg/driver/controller.go,
//! pkg/cloud/cloud.go): every volume is tagged `CSIVolumeName=<pv>` and
//! `ebs.csi.aws.com/cluster=true`; with the provisioner's `--extra-create-metadata` (chart
//! default) also `kubernetes.io/created-for/pvc/name`, `.../pvc/namespace`, `.../pv/name`; with
//! `--k8s-tag-cluster-id=<id>` also `kubernetes.io/cluster/<id>=owned`, `KubernetesCluster=<id>`,
//! `ebs.csi.aws.com/cluster-name=<id>` and `Name=<id>-dynamic-<pv>`. The provisioner puts
//! `external-provisioner.volume.kubernetes.io/finalizer` on the volumes it makes
//! (kubernetes-csi/external-provisioner, controller.go).
//!
//! Simplified: a `WaitForFirstConsumer` claim is provisioned once the scheduler would have chosen
//! a node (the `volume.kubernetes.io/selected-node` annotation; no pods are simulated), in the
//! StorageClass's first allowed zone; volumes are never attached.

use super::aws::AwsAccess;
use super::is_kind;
use super::objects::{self, Client, ObjRef};
use super::Reconciler;
use crate::kubesim::{ChangeEvent, Store};
use ec2_query::{Ec2, Filter};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const DRIVER: &str = "ebs.csi.aws.com";
pub const CONTROLLER: &str = "ebs-csi-controller";
pub const PROVISIONER_FINALIZER: &str = "external-provisioner.volume.kubernetes.io/finalizer";
const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";

/// Where the driver makes its volumes.
#[derive(Debug, Clone)]
pub struct EbsCsiOptions {
    pub aws: AwsAccess,
}

/// What the driver reads from its Deployment's arguments.
struct Settings {
    cluster_id: Option<String>,
    extra_create_metadata: bool,
}

pub(crate) struct EbsCsiController {
    client: Client,
    ec2: Option<Ec2>,
    region: String,
}

/// GiB for a quantity such as `1Gi`, `500Mi`, `10G` (rounded up, at least 1).
fn gib(quantity: &str) -> u64 {
    let digits: String = quantity.chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = digits.parse().unwrap_or(1);
    let bytes = match &quantity[digits.len()..] {
        "Ki" => n << 10,
        "Mi" => n << 20,
        "Gi" => n << 30,
        "Ti" => n << 40,
        "K" | "k" => n * 1_000,
        "M" => n * 1_000_000,
        "G" => n * 1_000_000_000,
        "T" => n * 1_000_000_000_000,
        _ => n,
    };
    bytes.div_ceil(1 << 30).max(1)
}

impl EbsCsiController {
    pub fn new(store: &Store, options: EbsCsiOptions) -> Self {
        let config = options.aws.sdk_config("labflow-testbed-ebs-csi-driver");
        let ec2 = match Ec2::new(&config) {
            Ok(ec2) => Some(ec2),
            Err(e) => {
                tracing::warn!(error = %e, "ebs csi driver: no EC2 client");
                None
            }
        };
        EbsCsiController {
            client: Client::new(store, "ebs-csi-controller"),
            ec2,
            region: options.aws.region,
        }
    }

    fn settings(&self) -> Option<Settings> {
        let deployment = self.client.get(&ObjRef::new(
            "apps/v1",
            "Deployment",
            Some("kube-system"),
            CONTROLLER,
        ))?;
        let args = |container: &str| -> Vec<String> {
            deployment
                .pointer("/spec/template/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|c| c["name"] == container)
                .flat_map(|c| c["args"].as_array().cloned().unwrap_or_default())
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect()
        };
        Some(Settings {
            cluster_id: args("ebs-plugin")
                .iter()
                .find_map(|a| a.strip_prefix("--k8s-tag-cluster-id=").map(str::to_string)),
            extra_create_metadata: args("csi-provisioner")
                .iter()
                .any(|a| a == "--extra-create-metadata"),
        })
    }

    /// The claim's StorageClass: the named one, or the default class for a claim naming none.
    fn storage_class(&self, pvc: &Value) -> Option<Value> {
        let classes = self.client.list("storage.k8s.io/v1", "StorageClass", None);
        match pvc
            .pointer("/spec/storageClassName")
            .and_then(Value::as_str)
        {
            Some(name) => classes.into_iter().find(|c| objects::name(c) == name),
            None => classes.into_iter().find(|c| {
                objects::annotation(c, "storageclass.kubernetes.io/is-default-class")
                    == Some("true")
            }),
        }
    }

    fn zone(&self, class: &Value) -> String {
        class
            .pointer("/allowedTopologies/0/matchLabelExpressions/0/values/0")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}a", self.region))
    }

    fn tags(settings: &Settings, pv: &str, pvc: &Value) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::from([
            ("CSIVolumeName".to_string(), pv.to_string()),
            (format!("{DRIVER}/cluster"), "true".to_string()),
        ]);
        if settings.extra_create_metadata {
            tags.insert(
                "kubernetes.io/created-for/pvc/name".into(),
                objects::name(pvc).into(),
            );
            tags.insert(
                "kubernetes.io/created-for/pvc/namespace".into(),
                objects::namespace(pvc).unwrap_or("default").into(),
            );
            tags.insert("kubernetes.io/created-for/pv/name".into(), pv.into());
        }
        if let Some(id) = &settings.cluster_id {
            tags.insert(format!("kubernetes.io/cluster/{id}"), "owned".into());
            tags.insert("KubernetesCluster".into(), id.clone());
            tags.insert(format!("{DRIVER}/cluster-name"), id.clone());
            tags.insert("Name".into(), format!("{id}-dynamic-{pv}"));
        }
        tags
    }

    async fn provision(&self, ec2: &Ec2, settings: &Settings, pvc: &Value, class: &Value) {
        let what = ObjRef::of(pvc).display();
        let pv = format!("pvc-{}", objects::uid(pvc));
        let size = gib(objects::s(pvc, "/spec/resources/requests/storage"));
        // The driver's CreateVolume is idempotent per volume name (a client token); here the
        // name tag finds a volume made before a restart.
        let found = ec2
            .describe_volumes(&[Filter::new("tag:CSIVolumeName", &[&pv])])
            .await;
        let volume = match found {
            Ok(list) if !list.is_empty() => list[0].id.clone(),
            Ok(_) => {
                let parameters = class.get("parameters").cloned().unwrap_or(Value::Null);
                let volume_type = parameters["type"].as_str().unwrap_or("gp3");
                let encrypted = parameters["encrypted"].as_str() == Some("true");
                match ec2
                    .create_volume(
                        &self.zone(class),
                        size,
                        volume_type,
                        encrypted,
                        &Self::tags(settings, &pv, pvc),
                    )
                    .await
                {
                    Ok(id) => id,
                    Err(e) => {
                        tracing::warn!(claim = %what, error = %e, "ebs csi driver: CreateVolume");
                        return;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(claim = %what, error = %e, "ebs csi driver: DescribeVolumes");
                return;
            }
        };
        let object = json!({
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": pv,
                "annotations": {"pv.kubernetes.io/provisioned-by": DRIVER},
                "finalizers": [PROVISIONER_FINALIZER],
            },
            "spec": {
                "capacity": {"storage": format!("{size}Gi")},
                "accessModes": pvc.pointer("/spec/accessModes").cloned().unwrap_or_else(|| json!(["ReadWriteOnce"])),
                "persistentVolumeReclaimPolicy": class["reclaimPolicy"].as_str().unwrap_or("Delete"),
                "storageClassName": objects::name(class),
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": objects::namespace(pvc).unwrap_or("default"),
                    "name": objects::name(pvc),
                    "uid": objects::uid(pvc),
                },
                "csi": {"driver": DRIVER, "volumeHandle": volume, "fsType": "ext4"},
            },
        });
        let bound = self.client.apply(&object).and_then(|pv_obj| {
            self.client
                .set_status(&pv_obj, json!({"phase": "Bound"}))?;
            let claim = self.client.merge(
                &ObjRef::of(pvc),
                &json!({"spec": {"volumeName": pv}}),
                false,
            )?;
            self.client.set_status(
                &claim,
                json!({"phase": "Bound", "accessModes": object["spec"]["accessModes"], "capacity": object["spec"]["capacity"]}),
            )
        });
        if let Err(e) = bound {
            tracing::warn!(claim = %what, error = %e.message, "ebs csi driver: binding");
        }
    }

    /// A volume whose claim is gone: Delete removes volume and PV, Retain leaves both Released.
    async fn release(&self, ec2: &Ec2, pv: &Value) {
        let what = objects::name(pv).to_string();
        let deleting = objects::is_deleting(pv);
        if !deleting && objects::s(pv, "/spec/persistentVolumeReclaimPolicy") != "Delete" {
            if objects::s(pv, "/status/phase") != "Released" {
                if let Err(e) = self.client.set_status(pv, json!({"phase": "Released"})) {
                    tracing::debug!(volume = %what, error = %e.message, "ebs csi driver: status");
                }
            }
            return;
        }
        let volume = objects::s(pv, "/spec/csi/volumeHandle");
        match ec2.delete_volume(volume).await {
            Ok(()) => {}
            Err(e) if e.code() == Some("InvalidVolume.NotFound") => {}
            Err(e) => {
                tracing::warn!(volume = %what, error = %e, "ebs csi driver: DeleteVolume");
                return;
            }
        }
        let removed = self
            .client
            .remove_finalizer(pv, PROVISIONER_FINALIZER)
            .and_then(|_| self.client.delete(&ObjRef::of(pv)).map(|_| ()));
        if let Err(e) = removed {
            tracing::debug!(volume = %what, error = %e.message, "ebs csi driver: PersistentVolume");
        }
    }
}

impl Reconciler for EbsCsiController {
    fn interested(&self, e: &ChangeEvent) -> bool {
        is_kind(e, "", &["persistentvolumeclaims", "persistentvolumes"])
            || is_kind(e, "apps", &["deployments"])
            || is_kind(e, "storage.k8s.io", &["storageclasses"])
    }

    async fn pass(&mut self) {
        let (Some(settings), Some(ec2)) = (self.settings(), self.ec2.clone()) else {
            return;
        };
        let claims = self.client.list("v1", "PersistentVolumeClaim", None);
        for pvc in &claims {
            if objects::is_deleting(pvc) || !objects::s(pvc, "/spec/volumeName").is_empty() {
                continue;
            }
            let Some(class) = self.storage_class(pvc) else {
                continue;
            };
            if objects::s(&class, "/provisioner") != DRIVER {
                continue;
            }
            if objects::s(&class, "/volumeBindingMode") == "WaitForFirstConsumer"
                && objects::annotation(pvc, SELECTED_NODE).is_none()
            {
                continue;
            }
            self.provision(&ec2, &settings, pvc, &class).await;
        }
        for pv in self.client.list("v1", "PersistentVolume", None) {
            if objects::s(&pv, "/spec/csi/driver") != DRIVER {
                continue;
            }
            let claim_uid = objects::s(&pv, "/spec/claimRef/uid");
            let bound = claims
                .iter()
                .any(|c| objects::uid(c) == claim_uid && !objects::is_deleting(c));
            if bound && !objects::is_deleting(&pv) {
                continue;
            }
            self.release(&ec2, &pv).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::gib;

    #[test]
    fn quantities_round_up_to_whole_gib() {
        assert_eq!(gib("1Gi"), 1);
        assert_eq!(gib("500Mi"), 1);
        assert_eq!(gib("1500Mi"), 2);
        assert_eq!(gib("10G"), 10);
        assert_eq!(gib("20Gi"), 20);
    }
}

#[cfg(test)]
mod driver_tests {
    use super::*;
    use crate::kubesim::Store;
    use ec2_query::Volume;

    async fn emulator() -> AwsAccess {
        let moto = tokio::task::spawn_blocking(crate::moto::shared)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        AwsAccess::new(&moto.endpoint(), "eu-west-1")
    }

    fn put(store: &Store, obj: Value) -> Value {
        store.put(obj).unwrap_or_else(|e| panic!("{e:?}"))
    }

    async fn volumes_of(aws: &AwsAccess, pv: &str) -> Vec<Volume> {
        let ec2 = Ec2::new(&aws.sdk_config("test")).unwrap_or_else(|e| panic!("{e}"));
        ec2.describe_volumes(&[Filter::new("tag:CSIVolumeName", &[pv])])
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// No driver, no volume; with the add-on's controller, a volume tagged as v1.58.0 tags it
    /// and a bound PersistentVolume; the claim gone, the volume goes (reclaim policy Delete).
    #[tokio::test]
    async fn provisions_and_deletes_volumes_only_while_the_driver_runs() {
        let aws = emulator().await;
        let store = Store::new();
        put(
            &store,
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "gp3"}, "provisioner": DRIVER, "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate", "parameters": {"type": "gp3"}}),
        );
        for ns in ["csi-test", "kube-system"] {
            put(
                &store,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            );
        }
        let claim = put(
            &store,
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "csi-test"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "gp3",
                "resources": {"requests": {"storage": "2Gi"}}}}),
        );
        let pv = format!("pvc-{}", objects::uid(&claim));
        let mut driver = EbsCsiController::new(&store, EbsCsiOptions { aws: aws.clone() });

        driver.pass().await;
        assert!(
            volumes_of(&aws, &pv).await.is_empty(),
            "provisioned without the driver"
        );

        put(
            &store,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": CONTROLLER, "namespace": "kube-system"},
            "spec": {"selector": {"matchLabels": {"app": CONTROLLER}},
                "template": {"metadata": {"labels": {"app": CONTROLLER}}, "spec": {"containers": [
                    {"name": "ebs-plugin", "image": "x", "args": ["controller", "--k8s-tag-cluster-id=csi-lab"]},
                    {"name": "csi-provisioner", "image": "x", "args": ["--extra-create-metadata"]}]}}}}),
        );
        driver.pass().await;
        let made = volumes_of(&aws, &pv).await;
        assert_eq!(made.len(), 1, "{made:?}");
        assert_eq!(made[0].size_gib, 2);
        for (key, value) in [
            ("ebs.csi.aws.com/cluster", "true"),
            ("KubernetesCluster", "csi-lab"),
            ("ebs.csi.aws.com/cluster-name", "csi-lab"),
            ("kubernetes.io/cluster/csi-lab", "owned"),
            ("kubernetes.io/created-for/pvc/name", "data"),
            ("kubernetes.io/created-for/pvc/namespace", "csi-test"),
        ] {
            assert_eq!(
                made[0].tags.get(key).map(String::as_str),
                Some(value),
                "{key}: {made:?}"
            );
        }
        let client = Client::new(&store, "test");
        let bound = client
            .get(&ObjRef::new("v1", "PersistentVolume", None, &pv))
            .unwrap_or_default();
        assert_eq!(objects::s(&bound, "/spec/csi/volumeHandle"), made[0].id);

        if let Err(e) = client.delete(&ObjRef::of(&claim)) {
            panic!("{e:?}");
        }
        driver.pass().await;
        assert!(
            volumes_of(&aws, &pv).await.is_empty(),
            "the volume outlived its claim"
        );
        assert!(client
            .get(&ObjRef::new("v1", "PersistentVolume", None, &pv))
            .is_none());
    }
}
