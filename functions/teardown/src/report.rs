//! What one teardown call reports (the step contract of DESIGN.md §3).

use serde::{Deserialize, Serialize};

/// Where teardown is: the first part of the environment that still exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Flux-managed workloads: child Kustomizations, leaves first, while every controller runs.
    Workloads,
    /// Ingresses, LoadBalancer Services and PVCs no Kustomization removed.
    Sweep,
    /// Flux itself: controllers, `finalizers.fluxcd.io`, CRDs, the `flux-system` namespace.
    FluxUninstall,
    /// Route53 records external-dns made for this environment.
    Dns,
    /// EKS Pod Identity associations.
    PodIdentity,
    /// EKS managed node groups.
    Nodegroups,
    /// EKS managed add-ons.
    Addons,
    /// EKS access entries.
    AccessEntries,
    /// The EKS cluster itself.
    Cluster,
    /// The published kubeconfig parameter.
    Kubeconfig,
    /// Nothing of the environment remains.
    Complete,
}

/// The report of one teardown call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Output {
    /// True only when nothing of the environment remains (no Kubernetes workload holding cloud
    /// resources, no Flux, no owned DNS record, no cluster).
    pub done: bool,
    /// The phase this call ended in.
    pub phase: Phase,
    /// What this call deleted or asked to be deleted (`Kind namespace/name`, record names, ...).
    pub removed: Vec<String>,
    /// What is still going away; the state machine waits and calls again.
    pub waiting_on: Vec<String>,
    /// What teardown found and will not remove, with the reason. Never empty when a part of
    /// the environment is known to stay behind.
    pub leftovers: Vec<String>,
}

/// Accumulates one call's report.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub removed: Vec<String>,
    pub waiting_on: Vec<String>,
    pub leftovers: Vec<String>,
}

impl Report {
    pub fn removed(&mut self, what: impl Into<String>) {
        let what = what.into();
        tracing::info!(removed = %what, "teardown");
        self.removed.push(what);
    }

    pub fn waiting(&mut self, what: impl Into<String>) {
        self.waiting_on.push(what.into());
    }

    pub fn leftover(&mut self, what: impl Into<String>) {
        let what = what.into();
        tracing::warn!(leftover = %what, "teardown");
        self.leftovers.push(what);
    }

    pub fn finish(self, phase: Phase) -> Output {
        Output {
            done: phase == Phase::Complete,
            phase,
            removed: self.removed,
            waiting_on: self.waiting_on,
            leftovers: self.leftovers,
        }
    }
}

/// How far a phase got in this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Nothing of this phase is left: go on to the next.
    Complete,
    /// Work was started or is in flight: report and let the state machine wait.
    Pending(Phase),
}
