//! Everything inside the cluster (DESIGN.md §5): stop Flux from re-creating things, delete the
//! child Kustomizations unsuspended, leaves first, one at a time while every controller still
//! runs; sweep what no Kustomization removed (Ingresses, LoadBalancer Services, PVCs) before the
//! controllers go; then uninstall Flux like `flux uninstall`.

use kube::api::DynamicObject;
use kube::core::ApiResource;
use labflow_core::flux::{self, inventory};
use labflow_core::teardown_plan::{deletion_order, KustomizationNode, ObjectKey};
use labflow_core::StepError;
use serde_json::{json, Value};

use crate::kube_api;
use crate::report::{Phase, Progress, Report};
use crate::stuck::{self, Terminating};
use crate::Ctx;

/// The finalizer every Flux object carries while its controller runs.
pub const FLUX_FINALIZER: &str = "finalizers.fluxcd.io";

fn kustomizations() -> ApiResource {
    kube_api::resource(
        flux::KUSTOMIZE_GROUP,
        flux::KUSTOMIZE_VERSION,
        "Kustomization",
        "kustomizations",
    )
}
fn helmreleases() -> ApiResource {
    kube_api::resource(
        flux::HELM_GROUP,
        flux::HELM_VERSION,
        "HelmRelease",
        "helmreleases",
    )
}
fn gitrepositories() -> ApiResource {
    kube_api::resource(
        flux::SOURCE_GROUP,
        flux::SOURCE_VERSION,
        "GitRepository",
        "gitrepositories",
    )
}

fn root_key() -> ObjectKey {
    ObjectKey::new(flux::NAMESPACE, flux::BOOTSTRAP_NAME)
}

fn key_of(obj: &DynamicObject) -> ObjectKey {
    ObjectKey::new(
        obj.metadata.namespace.clone().unwrap_or_default(),
        obj.metadata.name.clone().unwrap_or_default(),
    )
}

/// A Flux CRD the cluster serves, as an API resource.
struct FluxKind {
    crd: DynamicObject,
    ar: ApiResource,
}

fn flux_kinds(crds: Vec<DynamicObject>) -> Vec<FluxKind> {
    crds.into_iter()
        .filter_map(|crd| {
            let spec = crd.data.get("spec")?;
            let group = spec.get("group")?.as_str()?;
            if !flux::is_flux_group(group) {
                return None;
            }
            let kind = spec.pointer("/names/kind")?.as_str()?;
            let plural = spec.pointer("/names/plural")?.as_str()?;
            let versions = spec.get("versions")?.as_array()?;
            let version = versions
                .iter()
                .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .or_else(|| versions.first())?
                .get("name")?
                .as_str()?;
            let ar = kube_api::resource(group, version, kind, plural);
            Some(FluxKind { crd, ar })
        })
        .collect()
}

/// Run the in-cluster part of teardown as far as it goes in one call.
pub(crate) async fn run(
    ctx: &Ctx,
    client: &kube::Client,
    report: &mut Report,
) -> Result<Progress, StepError> {
    let flux_kinds = flux_kinds(kube_api::list(client, &kube_api::crds(), None).await?);
    check_flux_is_ours(client, &flux_kinds).await?;
    let serves = |plural: &str, group: &str| {
        flux_kinds
            .iter()
            .any(|k| k.ar.plural == plural && k.ar.group == group)
    };
    let has_kustomizations = serves("kustomizations", flux::KUSTOMIZE_GROUP);
    let has_helmreleases = serves("helmreleases", flux::HELM_GROUP);

    // 1. Stop Flux from re-creating what we delete: suspend the root source and Kustomization only.
    if serves("gitrepositories", flux::SOURCE_GROUP) {
        suspend_root(client, &gitrepositories()).await?;
    }
    if has_kustomizations {
        suspend_root(client, &kustomizations()).await?;
    }

    // 2. Anything terminating is the previous deletion still in flight (or stuck).
    let kustomization_list = if has_kustomizations {
        kube_api::list(client, &kustomizations(), None).await?
    } else {
        Vec::new()
    };
    let helmrelease_list = if has_helmreleases {
        kube_api::list(client, &helmreleases(), None).await?
    } else {
        Vec::new()
    };
    let mut in_flight: Vec<Terminating> = Vec::new();
    in_flight.extend(stuck::terminating(
        &kustomizations(),
        kustomization_list.clone(),
    ));
    in_flight.extend(stuck::terminating(
        &helmreleases(),
        helmrelease_list.clone(),
    ));
    for ar in [
        kube_api::namespaces(),
        kube_api::ingresses(),
        kube_api::services(),
        kube_api::pvcs(),
        kube_api::pvs(),
    ] {
        let items = kube_api::list(client, &ar, None).await?;
        in_flight.extend(stuck::terminating(&ar, items));
    }
    if stuck::settle(ctx, client, in_flight, report).await? {
        return Ok(Progress::Pending(Phase::Workloads));
    }

    // 3. Child Kustomizations, one at a time, leaves first, never suspended.
    let children: Vec<&DynamicObject> = kustomization_list
        .iter()
        .filter(|k| key_of(k) != root_key())
        .collect();
    if !children.is_empty() {
        for hr in &helmrelease_list {
            unsuspend(client, &helmreleases(), hr).await?;
        }
        let nodes: Vec<KustomizationNode> = children.iter().map(|k| node(k)).collect();
        let order = deletion_order(&nodes);
        let Some(next_key) = order.first() else {
            return Ok(Progress::Pending(Phase::Workloads));
        };
        let Some(next) = children.iter().find(|k| &key_of(k) == next_key) else {
            return Ok(Progress::Pending(Phase::Workloads));
        };
        let is_foundation = nodes
            .iter()
            .find(|n| &n.key == next_key)
            .is_some_and(|n| n.depends_on.is_empty());
        // The layers nothing depends on hold the controllers: before they go, remove what
        // needs them (load balancers, volumes) even if no Kustomization listed it.
        if is_foundation && sweep(client, report).await? {
            return Ok(Progress::Pending(Phase::Sweep));
        }
        unsuspend(client, &kustomizations(), next).await?;
        if kube_api::delete(client, &kustomizations(), next).await? {
            report.removed(format!("Kustomization {next_key}"));
        }
        report.waiting(format!(
            "Kustomization {next_key} garbage-collecting its inventory"
        ));
        return Ok(Progress::Pending(Phase::Workloads));
    }

    // 4. Whatever no Kustomization removed, while the CSI driver (an EKS add-on) still runs.
    if sweep(client, report).await? {
        return Ok(Progress::Pending(Phase::Sweep));
    }

    // 5. Flux itself.
    uninstall_flux(client, flux_kinds, report).await
}

/// Teardown removes only the Flux labflow installed (issue 19 item 6): a cluster kept after the
/// teardown (`labflow local down --kubeconfig`) may run someone else's Flux, whose namespace and
/// CRDs do not carry the label flux-bootstrap puts on everything it applies.
async fn check_flux_is_ours(client: &kube::Client, kinds: &[FluxKind]) -> Result<(), StepError> {
    let (key, value) = labflow_core::ownership::MANAGED_BY_LABEL;
    let namespace = kube_api::list(client, &kube_api::namespaces(), None)
        .await?
        .into_iter()
        .find(|ns| ns.metadata.name.as_deref() == Some(flux::NAMESPACE));
    let foreign: Vec<String> = namespace
        .iter()
        .filter(|ns| !kube_api::is_labflows(ns))
        .map(|_| format!("Namespace {}", flux::NAMESPACE))
        .chain(
            kinds
                .iter()
                .filter(|k| !kube_api::is_labflows(&k.crd))
                .map(|k| format!("CustomResourceDefinition {}", kube_api::describe(&k.crd))),
        )
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    Err(StepError::NotOwned(format!(
        "Flux in this cluster was not installed by labflow ({} lack the label {key}={value}); teardown removes nothing of it",
        foreign.join(", ")
    )))
}

/// Flux's ClusterRoles and ClusterRoleBindings (cluster-reconciler-flux-system binds
/// cluster-admin) and health-check's reader role outlive the namespace; on a cluster that is
/// kept they must go too (issue 19 item 7). Only what labflow applied (its label).
async fn remove_cluster_rbac(
    client: &kube::Client,
    report: &mut Report,
) -> Result<Progress, StepError> {
    let mut found = false;
    for ar in [kube_api::cluster_role_bindings(), kube_api::cluster_roles()] {
        for obj in kube_api::list_labflows(client, &ar).await? {
            found = true;
            if kube_api::delete(client, &ar, &obj).await? {
                report.removed(format!("{} {}", ar.kind, kube_api::describe(&obj)));
            }
        }
    }
    Ok(if found {
        Progress::Pending(Phase::FluxUninstall)
    } else {
        Progress::Complete
    })
}

fn node(obj: &DynamicObject) -> KustomizationNode {
    let key = key_of(obj);
    let depends_on = kube_api::field(obj, "/spec/dependsOn")
        .and_then(Value::as_array)
        .map(|deps| {
            deps.iter()
                .filter_map(|d| {
                    let name = d.get("name")?.as_str()?;
                    let namespace = d
                        .get("namespace")
                        .and_then(Value::as_str)
                        .unwrap_or(&key.namespace);
                    Some(ObjectKey::new(namespace, name))
                })
                .collect()
        })
        .unwrap_or_default();
    let body = json!({"status": obj.data.get("status").cloned().unwrap_or(Value::Null)});
    let contains = match inventory::entries(&body) {
        Some(Ok(entries)) => entries
            .iter()
            .filter(|e| inventory::is_kustomization(e))
            .map(|e| ObjectKey::new(e.namespace.clone(), e.name.clone()))
            .collect(),
        _ => Vec::new(),
    };
    KustomizationNode {
        key,
        depends_on,
        contains,
    }
}

async fn suspend_root(client: &kube::Client, ar: &ApiResource) -> Result<(), StepError> {
    let objects = kube_api::list(client, ar, Some(flux::NAMESPACE)).await?;
    if let Some(root) = objects.iter().find(|o| key_of(o) == root_key()) {
        let suspended =
            kube_api::field(root, "/spec/suspend").and_then(Value::as_bool) == Some(true);
        if !suspended && root.metadata.deletion_timestamp.is_none() {
            kube_api::merge_patch(client, ar, root, json!({"spec": {"suspend": true}})).await?;
            tracing::info!(kind = %ar.kind, "suspended the root {}", root_key());
        }
    }
    Ok(())
}

/// A suspended Kustomization does not garbage-collect and a suspended HelmRelease skips the helm
/// uninstall: whatever is deleted must not be suspended.
async fn unsuspend(
    client: &kube::Client,
    ar: &ApiResource,
    obj: &DynamicObject,
) -> Result<(), StepError> {
    if kube_api::field(obj, "/spec/suspend").and_then(Value::as_bool) == Some(true)
        && key_of(obj) != root_key()
    {
        kube_api::merge_patch(client, ar, obj, json!({"spec": {"suspend": false}})).await?;
        tracing::info!(kind = %ar.kind, name = %kube_api::describe(obj), "resumed before deletion");
    }
    Ok(())
}

/// The EBS CSI driver's name and its controller Deployment in kube-system (the EKS add-on's,
/// aws-ebs-csi-driver chart templates/controller.yaml).
const EBS_CSI_DRIVER: &str = "ebs.csi.aws.com";
const EBS_CSI_CONTROLLER: &str = "ebs-csi-controller";

/// Delete every Ingress, LoadBalancer Service and PVC, and wait for released EBS volumes.
/// Returns whether anything is still going away.
async fn sweep(client: &kube::Client, report: &mut Report) -> Result<bool, StepError> {
    let mut found = false;
    for ar in [
        kube_api::ingresses(),
        kube_api::services(),
        kube_api::pvcs(),
    ] {
        for obj in kube_api::list(client, &ar, None).await? {
            if ar.kind == "Service"
                && kube_api::field(&obj, "/spec/type").and_then(Value::as_str)
                    != Some("LoadBalancer")
            {
                continue;
            }
            found = true;
            if kube_api::delete(client, &ar, &obj).await? {
                report.removed(format!("{} {}", ar.kind, kube_api::describe(&obj)));
            }
            report.waiting(format!(
                "{} {} going away",
                ar.kind,
                kube_api::describe(&obj)
            ));
        }
    }
    Ok(released_volumes(client, report).await? || found)
}

/// The EBS CSI driver (an EKS add-on, removed after the cluster's workloads) deletes the volume
/// of a released PersistentVolume with reclaim policy Delete, then the PersistentVolume: wait
/// for that while the driver runs. Without it the volume stays in AWS and the sweep after the
/// cluster removes it. Returns whether any is still waited for.
async fn released_volumes(client: &kube::Client, report: &mut Report) -> Result<bool, StepError> {
    let volumes: Vec<DynamicObject> = kube_api::list(client, &kube_api::pvs(), None)
        .await?
        .into_iter()
        .filter(|pv| {
            kube_api::field(pv, "/spec/csi/driver").and_then(Value::as_str) == Some(EBS_CSI_DRIVER)
                && kube_api::field(pv, "/spec/persistentVolumeReclaimPolicy")
                    .and_then(Value::as_str)
                    == Some("Delete")
        })
        .collect();
    if volumes.is_empty() {
        return Ok(false);
    }
    let driver_runs = kube_api::list(client, &kube_api::deployments(), Some("kube-system"))
        .await?
        .iter()
        .any(|d| d.metadata.name.as_deref() == Some(EBS_CSI_CONTROLLER));
    for pv in &volumes {
        let volume = kube_api::field(pv, "/spec/csi/volumeHandle")
            .and_then(Value::as_str)
            .unwrap_or("?");
        if driver_runs {
            report.waiting(format!(
                "PersistentVolume {} (EBS volume {volume}) being deleted by the EBS CSI driver",
                kube_api::describe(pv)
            ));
        } else {
            report.leftover(format!(
                "PersistentVolume {}: the EBS CSI driver ({EBS_CSI_CONTROLLER}) is not running; EBS volume {volume} is removed by the AWS sweep after the cluster",
                kube_api::describe(pv)
            ));
        }
    }
    Ok(driver_runs)
}

/// `flux uninstall`: controllers, then `finalizers.fluxcd.io` from what remains, then the CRDs,
/// then the namespace.
async fn uninstall_flux(
    client: &kube::Client,
    kinds: Vec<FluxKind>,
    report: &mut Report,
) -> Result<Progress, StepError> {
    let namespace_exists = kube_api::list(client, &kube_api::namespaces(), None)
        .await?
        .iter()
        .any(|ns| ns.metadata.name.as_deref() == Some(flux::NAMESPACE));
    if kinds.is_empty() && !namespace_exists {
        return remove_cluster_rbac(client, report).await;
    }
    if namespace_exists {
        let controllers =
            kube_api::list(client, &kube_api::deployments(), Some(flux::NAMESPACE)).await?;
        if !controllers.is_empty() {
            for deployment in &controllers {
                if kube_api::delete(client, &kube_api::deployments(), deployment).await? {
                    report.removed(format!("Deployment {}", kube_api::describe(deployment)));
                }
                report.waiting(format!(
                    "Deployment {} stopping",
                    kube_api::describe(deployment)
                ));
            }
            return Ok(Progress::Pending(Phase::FluxUninstall));
        }
    }
    for kind in &kinds {
        for obj in kube_api::list(client, &kind.ar, None).await? {
            if kube_api::remove_finalizer(client, &kind.ar, &obj, FLUX_FINALIZER).await? {
                report.removed(format!(
                    "finalizer {FLUX_FINALIZER} of {} {}",
                    kind.ar.kind,
                    kube_api::describe(&obj)
                ));
            }
        }
    }
    for kind in &kinds {
        if kind.crd.metadata.deletion_timestamp.is_none()
            && kube_api::delete(client, &kube_api::crds(), &kind.crd).await?
        {
            report.removed(format!(
                "CustomResourceDefinition {}",
                kube_api::describe(&kind.crd)
            ));
        }
        report.waiting(format!(
            "CustomResourceDefinition {} going away",
            kube_api::describe(&kind.crd)
        ));
    }
    if namespace_exists {
        let namespace = kube_api::list(client, &kube_api::namespaces(), None)
            .await?
            .into_iter()
            .find(|ns| ns.metadata.name.as_deref() == Some(flux::NAMESPACE));
        if let Some(namespace) = namespace {
            if namespace.metadata.deletion_timestamp.is_none()
                && kube_api::delete(client, &kube_api::namespaces(), &namespace).await?
            {
                report.removed(format!("Namespace {}", flux::NAMESPACE));
            }
            report.waiting(format!("Namespace {} going away", flux::NAMESPACE));
        }
    }
    Ok(Progress::Pending(Phase::FluxUninstall))
}
