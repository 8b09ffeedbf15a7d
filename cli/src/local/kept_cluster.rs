//! What labflow left in a cluster that outlives the teardown (`labflow local down --kubeconfig`):
//! the cluster-scoped objects flux-bootstrap applied — the `flux-system` namespace, Flux's CRDs,
//! ClusterRoles and ClusterRoleBindings, health-check's reader role — all carrying labflow's label
//! (issue 19 item 7). Namespaced objects go with their namespace.

use std::path::Path;

use anyhow::Context as _;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};

const CLUSTER_SCOPED: &[(&str, &str, &str, &str)] = &[
    ("", "v1", "Namespace", "namespaces"),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
    ),
];

/// `Kind name` of every cluster-scoped object labflow applied that is still in the cluster of
/// the kubeconfig at `path`.
pub async fn leftovers(path: &Path) -> anyhow::Result<Vec<String>> {
    // kube's TLS needs a process-wide provider (ring and aws-lc-rs are both linked).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .with_context(|| format!("using {}", path.display()))?;
    let client = kube::Client::try_from(config)?;
    let (key, value) = labflow_core::ownership::MANAGED_BY_LABEL;
    let ours = ListParams::default().labels(&format!("{key}={value}"));
    let mut left = Vec::new();
    for (group, version, kind, plural) in CLUSTER_SCOPED {
        let ar =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        let list = Api::<DynamicObject>::all_with(client.clone(), &ar)
            .list(&ours)
            .await
            .with_context(|| format!("listing {plural} in {}", path.display()))?;
        left.extend(
            list.items
                .into_iter()
                .filter_map(|o| o.metadata.name)
                .map(|name| format!("{kind} {name}")),
        );
    }
    Ok(left)
}
