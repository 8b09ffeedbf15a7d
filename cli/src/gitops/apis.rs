//! API versions the target platform no longer serves: Kubernetes >= 1.33, Flux 2.7+ (v1 sources
//! and Kustomizations, v2 HelmReleases only), cert-manager >= 1.7.

/// `(apiVersion, removed in, replacement)`.
const REMOVED: &[(&str, &str, &str)] = &[
    // Flux: 2.7 serves only the GA versions of the core APIs.
    (
        "source.toolkit.fluxcd.io/v1beta1",
        "Flux 2.7",
        "source.toolkit.fluxcd.io/v1",
    ),
    (
        "source.toolkit.fluxcd.io/v1beta2",
        "Flux 2.7",
        "source.toolkit.fluxcd.io/v1",
    ),
    (
        "kustomize.toolkit.fluxcd.io/v1beta1",
        "Flux 2.7",
        "kustomize.toolkit.fluxcd.io/v1",
    ),
    (
        "kustomize.toolkit.fluxcd.io/v1beta2",
        "Flux 2.7",
        "kustomize.toolkit.fluxcd.io/v1",
    ),
    (
        "helm.toolkit.fluxcd.io/v2beta1",
        "Flux 2.7",
        "helm.toolkit.fluxcd.io/v2",
    ),
    (
        "helm.toolkit.fluxcd.io/v2beta2",
        "Flux 2.7",
        "helm.toolkit.fluxcd.io/v2",
    ),
    (
        "notification.toolkit.fluxcd.io/v1beta1",
        "Flux 2.7",
        "notification.toolkit.fluxcd.io/v1 (Receiver) or v1beta3 (Alert, Provider)",
    ),
    (
        "notification.toolkit.fluxcd.io/v1beta2",
        "Flux 2.7",
        "notification.toolkit.fluxcd.io/v1 (Receiver) or v1beta3 (Alert, Provider)",
    ),
    (
        "image.toolkit.fluxcd.io/v1beta1",
        "Flux 2.7",
        "image.toolkit.fluxcd.io/v1",
    ),
    // Kubernetes: every beta API removed up to 1.33.
    (
        "extensions/v1beta1",
        "Kubernetes 1.22",
        "apps/v1, networking.k8s.io/v1",
    ),
    ("apps/v1beta1", "Kubernetes 1.16", "apps/v1"),
    ("apps/v1beta2", "Kubernetes 1.16", "apps/v1"),
    (
        "networking.k8s.io/v1beta1",
        "Kubernetes 1.22",
        "networking.k8s.io/v1",
    ),
    (
        "policy/v1beta1",
        "Kubernetes 1.25",
        "policy/v1 (PodSecurityPolicy: Pod Security Admission)",
    ),
    ("autoscaling/v2beta1", "Kubernetes 1.25", "autoscaling/v2"),
    ("autoscaling/v2beta2", "Kubernetes 1.26", "autoscaling/v2"),
    ("batch/v1beta1", "Kubernetes 1.25", "batch/v1"),
    ("batch/v2alpha1", "Kubernetes 1.21", "batch/v1"),
    (
        "discovery.k8s.io/v1beta1",
        "Kubernetes 1.25",
        "discovery.k8s.io/v1",
    ),
    (
        "events.k8s.io/v1beta1",
        "Kubernetes 1.25",
        "events.k8s.io/v1",
    ),
    (
        "rbac.authorization.k8s.io/v1beta1",
        "Kubernetes 1.22",
        "rbac.authorization.k8s.io/v1",
    ),
    (
        "rbac.authorization.k8s.io/v1alpha1",
        "Kubernetes 1.22",
        "rbac.authorization.k8s.io/v1",
    ),
    (
        "storage.k8s.io/v1beta1",
        "Kubernetes 1.27",
        "storage.k8s.io/v1",
    ),
    (
        "admissionregistration.k8s.io/v1beta1",
        "Kubernetes 1.22",
        "admissionregistration.k8s.io/v1",
    ),
    (
        "apiextensions.k8s.io/v1beta1",
        "Kubernetes 1.22",
        "apiextensions.k8s.io/v1",
    ),
    (
        "apiregistration.k8s.io/v1beta1",
        "Kubernetes 1.22",
        "apiregistration.k8s.io/v1",
    ),
    (
        "scheduling.k8s.io/v1beta1",
        "Kubernetes 1.22",
        "scheduling.k8s.io/v1",
    ),
    (
        "scheduling.k8s.io/v1alpha1",
        "Kubernetes 1.22",
        "scheduling.k8s.io/v1",
    ),
    (
        "certificates.k8s.io/v1beta1",
        "Kubernetes 1.22",
        "certificates.k8s.io/v1",
    ),
    (
        "coordination.k8s.io/v1beta1",
        "Kubernetes 1.22",
        "coordination.k8s.io/v1",
    ),
    ("node.k8s.io/v1beta1", "Kubernetes 1.25", "node.k8s.io/v1"),
    (
        "flowcontrol.apiserver.k8s.io/v1beta1",
        "Kubernetes 1.26",
        "flowcontrol.apiserver.k8s.io/v1",
    ),
    (
        "flowcontrol.apiserver.k8s.io/v1beta2",
        "Kubernetes 1.29",
        "flowcontrol.apiserver.k8s.io/v1",
    ),
    (
        "flowcontrol.apiserver.k8s.io/v1beta3",
        "Kubernetes 1.32",
        "flowcontrol.apiserver.k8s.io/v1",
    ),
    // cert-manager 1.7 removed everything but v1.
    (
        "cert-manager.io/v1alpha2",
        "cert-manager 1.7",
        "cert-manager.io/v1",
    ),
    (
        "cert-manager.io/v1alpha3",
        "cert-manager 1.7",
        "cert-manager.io/v1",
    ),
    (
        "cert-manager.io/v1beta1",
        "cert-manager 1.7",
        "cert-manager.io/v1",
    ),
    (
        "acme.cert-manager.io/v1alpha2",
        "cert-manager 1.7",
        "acme.cert-manager.io/v1",
    ),
    (
        "acme.cert-manager.io/v1alpha3",
        "cert-manager 1.7",
        "acme.cert-manager.io/v1",
    ),
    (
        "acme.cert-manager.io/v1beta1",
        "cert-manager 1.7",
        "acme.cert-manager.io/v1",
    ),
];

/// If `api_version` is removed: `(removed in, use instead)`.
pub fn removed(api_version: &str) -> Option<(&'static str, &'static str)> {
    REMOVED
        .iter()
        .find(|(v, _, _)| *v == api_version)
        .map(|(_, since, instead)| (*since, *instead))
}

#[cfg(test)]
mod tests {
    use super::removed;

    #[test]
    fn current_versions_pass_and_old_ones_do_not() {
        assert!(removed("helm.toolkit.fluxcd.io/v2").is_none());
        assert!(removed("networking.k8s.io/v1").is_none());
        assert_eq!(
            removed("helm.toolkit.fluxcd.io/v2beta2").map(|r| r.1),
            Some("helm.toolkit.fluxcd.io/v2")
        );
        assert_eq!(
            removed("policy/v1beta1").map(|r| r.0),
            Some("Kubernetes 1.25")
        );
    }
}
