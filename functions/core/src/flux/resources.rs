//! Plural names and scopes of the kinds labflow applies or checks, so that the common case needs
//! no discovery requests. Kinds not listed here are resolved through discovery by the caller.

use kube::core::{ApiResource, GroupVersionKind};

use crate::error::{classify_kube_error, StepError};

/// Whether a kind is namespaced or cluster-scoped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Namespaced,
    Cluster,
}

/// (group, kind, plural, scope) of well-known kinds.
const KNOWN: &[(&str, &str, &str, Scope)] = &[
    ("", "Namespace", "namespaces", Scope::Cluster),
    ("", "ConfigMap", "configmaps", Scope::Namespaced),
    ("", "Secret", "secrets", Scope::Namespaced),
    ("", "Service", "services", Scope::Namespaced),
    ("", "ServiceAccount", "serviceaccounts", Scope::Namespaced),
    ("", "Pod", "pods", Scope::Namespaced),
    (
        "",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        Scope::Namespaced,
    ),
    ("", "ResourceQuota", "resourcequotas", Scope::Namespaced),
    ("", "LimitRange", "limitranges", Scope::Namespaced),
    ("apps", "Deployment", "deployments", Scope::Namespaced),
    ("apps", "StatefulSet", "statefulsets", Scope::Namespaced),
    ("apps", "DaemonSet", "daemonsets", Scope::Namespaced),
    ("apps", "ReplicaSet", "replicasets", Scope::Namespaced),
    ("batch", "Job", "jobs", Scope::Namespaced),
    ("batch", "CronJob", "cronjobs", Scope::Namespaced),
    (
        "networking.k8s.io",
        "Ingress",
        "ingresses",
        Scope::Namespaced,
    ),
    (
        "networking.k8s.io",
        "NetworkPolicy",
        "networkpolicies",
        Scope::Namespaced,
    ),
    (
        "networking.k8s.io",
        "IngressClass",
        "ingressclasses",
        Scope::Cluster,
    ),
    (
        "policy",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        Scope::Namespaced,
    ),
    (
        "storage.k8s.io",
        "StorageClass",
        "storageclasses",
        Scope::Cluster,
    ),
    (
        "rbac.authorization.k8s.io",
        "ClusterRole",
        "clusterroles",
        Scope::Cluster,
    ),
    (
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        "clusterrolebindings",
        Scope::Cluster,
    ),
    (
        "rbac.authorization.k8s.io",
        "Role",
        "roles",
        Scope::Namespaced,
    ),
    (
        "rbac.authorization.k8s.io",
        "RoleBinding",
        "rolebindings",
        Scope::Namespaced,
    ),
    (
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        Scope::Cluster,
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        Scope::Cluster,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        Scope::Cluster,
    ),
    (
        "source.toolkit.fluxcd.io",
        "GitRepository",
        "gitrepositories",
        Scope::Namespaced,
    ),
    (
        "source.toolkit.fluxcd.io",
        "HelmRepository",
        "helmrepositories",
        Scope::Namespaced,
    ),
    (
        "source.toolkit.fluxcd.io",
        "HelmChart",
        "helmcharts",
        Scope::Namespaced,
    ),
    (
        "source.toolkit.fluxcd.io",
        "OCIRepository",
        "ocirepositories",
        Scope::Namespaced,
    ),
    (
        "source.toolkit.fluxcd.io",
        "Bucket",
        "buckets",
        Scope::Namespaced,
    ),
    (
        "kustomize.toolkit.fluxcd.io",
        "Kustomization",
        "kustomizations",
        Scope::Namespaced,
    ),
    (
        "helm.toolkit.fluxcd.io",
        "HelmRelease",
        "helmreleases",
        Scope::Namespaced,
    ),
    (
        "notification.toolkit.fluxcd.io",
        "Alert",
        "alerts",
        Scope::Namespaced,
    ),
    (
        "notification.toolkit.fluxcd.io",
        "Provider",
        "providers",
        Scope::Namespaced,
    ),
    (
        "notification.toolkit.fluxcd.io",
        "Receiver",
        "receivers",
        Scope::Namespaced,
    ),
    (
        "security.istio.io",
        "PeerAuthentication",
        "peerauthentications",
        Scope::Namespaced,
    ),
    (
        "security.istio.io",
        "AuthorizationPolicy",
        "authorizationpolicies",
        Scope::Namespaced,
    ),
    (
        "networking.istio.io",
        "Gateway",
        "gateways",
        Scope::Namespaced,
    ),
    (
        "networking.istio.io",
        "VirtualService",
        "virtualservices",
        Scope::Namespaced,
    ),
    (
        "networking.istio.io",
        "DestinationRule",
        "destinationrules",
        Scope::Namespaced,
    ),
    (
        "telemetry.istio.io",
        "Telemetry",
        "telemetries",
        Scope::Namespaced,
    ),
    (
        "cert-manager.io",
        "Certificate",
        "certificates",
        Scope::Namespaced,
    ),
    (
        "cert-manager.io",
        "ClusterIssuer",
        "clusterissuers",
        Scope::Cluster,
    ),
    ("cert-manager.io", "Issuer", "issuers", Scope::Namespaced),
];

/// The API resource and scope of a well-known kind at `version`.
pub fn known(group: &str, version: &str, kind: &str) -> Option<(ApiResource, Scope)> {
    KNOWN
        .iter()
        .find(|(g, k, _, _)| *g == group && *k == kind)
        .map(|(g, k, plural, scope)| {
            let gvk = GroupVersionKind::gvk(g, version, k);
            (ApiResource::from_gvk_with_plural(&gvk, plural), *scope)
        })
}

/// The API resource and scope of any kind: the table above, else one discovery request for the
/// kind's group-version (a constant number of requests per kind, never per object).
pub async fn resolve(
    client: &kube::Client,
    group: &str,
    version: &str,
    kind: &str,
) -> Result<(ApiResource, Scope), StepError> {
    if let Some(found) = known(group, version, kind) {
        return Ok(found);
    }
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (ar, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| classify_kube_error(&format!("discovering {kind}.{group}/{version}"), e))?;
    let scope = match caps.scope {
        kube::discovery::Scope::Cluster => Scope::Cluster,
        kube::discovery::Scope::Namespaced => Scope::Namespaced,
    };
    Ok((ar, scope))
}

/// Split an `apiVersion` into (group, version); the core group is empty.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_kinds_resolve_with_version_and_scope() {
        let (ar, scope) = known("helm.toolkit.fluxcd.io", "v2", "HelmRelease").expect("known");
        assert_eq!(ar.api_version, "helm.toolkit.fluxcd.io/v2");
        assert_eq!(ar.plural, "helmreleases");
        assert_eq!(scope, Scope::Namespaced);
        let (ar, scope) = known("", "v1", "Namespace").expect("known");
        assert_eq!((ar.api_version.as_str(), scope), ("v1", Scope::Cluster));
        assert!(known("example.com", "v1", "Widget").is_none());
    }

    #[test]
    fn api_versions_split() {
        assert_eq!(split_api_version("apps/v1"), ("apps", "v1"));
        assert_eq!(split_api_version("v1"), ("", "v1"));
    }
}
