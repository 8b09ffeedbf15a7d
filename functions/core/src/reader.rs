//! What health-check may read in a cluster, and nothing more (issue 26 item 7): get/list/watch
//! on the kinds a lab's Flux tree holds, never a Secret, never a write.
//!
//! EKS access policies cannot say this (AmazonEKSViewPolicy reads no custom resources,
//! AmazonEKSAdminViewPolicy reads Secrets too; EKS user guide, "Review access policy
//! permissions"), so health-check's access entry names the Kubernetes group [`GROUP`] and
//! flux-bootstrap applies the ClusterRole and ClusterRoleBinding below (EKS user guide, "Create
//! an access entry using Kubernetes groups").

use serde_json::{json, Value};

/// The Kubernetes group of health-check's access entry, and the name of its ClusterRole and
/// ClusterRoleBinding.
pub const GROUP: &str = "labflow-health-check";

/// Core (`""`) resources health-check may read: everything but Secrets.
pub const CORE_RESOURCES: &[&str] = &[
    "configmaps",
    "endpoints",
    "events",
    "limitranges",
    "namespaces",
    "nodes",
    "persistentvolumeclaims",
    "persistentvolumes",
    "pods",
    "replicationcontrollers",
    "resourcequotas",
    "serviceaccounts",
    "services",
];

/// API groups whose every resource health-check may read: Kubernetes' own and those of the
/// add-ons a lab's tree installs. A kind of any other group is reported as not readable.
pub const API_GROUPS: &[&str] = &[
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apps",
    "autoscaling",
    "batch",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "gateway.networking.k8s.io",
    "source.toolkit.fluxcd.io",
    "kustomize.toolkit.fluxcd.io",
    "helm.toolkit.fluxcd.io",
    "notification.toolkit.fluxcd.io",
    "image.toolkit.fluxcd.io",
    "networking.istio.io",
    "security.istio.io",
    "telemetry.istio.io",
    "extensions.istio.io",
    "cert-manager.io",
    "acme.cert-manager.io",
    "monitoring.coreos.com",
    "elbv2.k8s.aws",
    "externaldns.k8s.io",
    "kiali.io",
];

const READ: [&str; 3] = ["get", "list", "watch"];

/// The ClusterRole [`GROUP`].
pub fn cluster_role() -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": GROUP},
        "rules": [
            {"apiGroups": [""], "resources": CORE_RESOURCES, "verbs": READ},
            {"apiGroups": API_GROUPS, "resources": ["*"], "verbs": READ},
        ]
    })
}

/// Binds the ClusterRole [`GROUP`] to the Kubernetes group [`GROUP`].
pub fn cluster_role_binding() -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": GROUP},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": GROUP},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": GROUP}]
    })
}

/// Whether the ClusterRole lets health-check list `kind` of `group` (`plural` as the API serves it).
pub fn may_read(group: &str, plural: &str) -> bool {
    if group.is_empty() {
        CORE_RESOURCES.contains(&plural)
    } else {
        API_GROUPS.contains(&group)
    }
}
