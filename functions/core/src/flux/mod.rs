//! The Flux model labflow relies on (DESIGN.md §5): names, API versions, revisions, inventories,
//! the kstatus readiness rules and the cluster variables flux-bootstrap writes.
//!
//! Everything here is a pure function over `serde_json::Value` objects, so the rules are unit
//! tested without a cluster and shared by flux-bootstrap, health-check and teardown.

pub mod cluster_vars;
pub mod inventory;
pub mod kstatus;
pub mod resources;

/// The namespace Flux is installed into and where its bootstrap objects live.
pub const NAMESPACE: &str = "flux-system";
/// Name of the Secret, GitRepository and root Kustomization (as `flux bootstrap` names them).
pub const BOOTSTRAP_NAME: &str = "flux-system";
/// The annotation whose change makes a Flux controller reconcile now.
pub const RECONCILE_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";

pub const SOURCE_GROUP: &str = "source.toolkit.fluxcd.io";
pub const SOURCE_VERSION: &str = "v1";
pub const KUSTOMIZE_GROUP: &str = "kustomize.toolkit.fluxcd.io";
pub const KUSTOMIZE_VERSION: &str = "v1";
pub const HELM_GROUP: &str = "helm.toolkit.fluxcd.io";
pub const HELM_VERSION: &str = "v2";

/// The controller Deployments a working Flux needs (the default components of `install.yaml`;
/// notification-controller is optional for labflow).
pub const CONTROLLERS: [&str; 3] = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
];

/// The revision a Kustomization reports once it applied `sha` of `branch`
/// (`status.lastAppliedRevision`, Flux ≥ 2.0 format).
pub fn revision_for(branch: &str, sha: &str) -> String {
    format!("{branch}@sha1:{sha}")
}

/// Whether a Flux object belongs to one of Flux's API groups (`*.toolkit.fluxcd.io`).
pub fn is_flux_group(group: &str) -> bool {
    group.ends_with(".toolkit.fluxcd.io")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_has_the_flux_2_format() {
        assert_eq!(
            revision_for("main", "0123456789abcdef0123456789abcdef01234567"),
            "main@sha1:0123456789abcdef0123456789abcdef01234567"
        );
    }

    #[test]
    fn flux_groups_are_recognised() {
        assert!(is_flux_group(HELM_GROUP));
        assert!(is_flux_group(SOURCE_GROUP));
        assert!(!is_flux_group("apps"));
        assert!(!is_flux_group("fluxcd.io"));
    }
}
