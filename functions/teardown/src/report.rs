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
    /// What the cluster's controllers made in AWS and left there (load balancers, target
    /// groups, security groups, EBS volumes), found by tag once the cluster is gone.
    AwsSweep,
    /// The published kubeconfig parameter.
    Kubeconfig,
    /// Nothing of the environment remains.
    Complete,
}

/// At most this many entries per list in a report (the `*Omitted` fields count the rest): a
/// Step Functions state output over 256 KiB fails the execution with States.DataLimitExceeded,
/// which no Catch handles (Step Functions service quotas; "Error names" in the error-handling
/// guide). The log has every entry.
pub const MAX_LISTED: usize = 100;

/// The report of one teardown call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Output {
    /// True only when nothing of the environment remains (no Kubernetes workload holding cloud
    /// resources, no Flux, no owned DNS record, no cluster).
    pub done: bool,
    /// The phase this call ended in.
    pub phase: Phase,
    /// What this call deleted or asked to be deleted (`Kind namespace/name`, record names, ...),
    /// the first [`MAX_LISTED`].
    pub removed: Vec<String>,
    #[serde(default)]
    pub removed_omitted: usize,
    /// What is still going away; the state machine waits and calls again.
    pub waiting_on: Vec<String>,
    #[serde(default)]
    pub waiting_on_omitted: usize,
    /// What teardown found and will not remove, with the reason. Never empty when a part of
    /// the environment is known to stay behind.
    pub leftovers: Vec<String>,
    #[serde(default)]
    pub leftovers_omitted: usize,
}

/// The first [`MAX_LISTED`] entries and how many were left out.
fn bounded(mut list: Vec<String>) -> (Vec<String>, usize) {
    let omitted = list.len().saturating_sub(MAX_LISTED);
    list.truncate(MAX_LISTED);
    (list, omitted)
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
        let (removed, removed_omitted) = bounded(self.removed);
        let (waiting_on, waiting_on_omitted) = bounded(self.waiting_on);
        let (leftovers, leftovers_omitted) = bounded(self.leftovers);
        Output {
            done: phase == Phase::Complete,
            phase,
            removed,
            removed_omitted,
            waiting_on,
            waiting_on_omitted,
            leftovers,
            leftovers_omitted,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_lab_keeps_the_report_far_below_the_step_functions_payload_quota() {
        // A state output over 256 KiB fails the execution with States.DataLimitExceeded, which
        // no Catch handles (Step Functions service quotas; "Error names"): tearing down a lab of
        // 6,000 objects in one call must still report within bounds, saying how many it left out.
        let mut report = Report::default();
        for i in 0..6_000 {
            report.removed(format!(
                "Deployment tenant-{i:04}/podinfo-frontend-with-a-long-name"
            ));
            report.waiting(format!(
                "PersistentVolumeClaim tenant-{i:04}/data-postgres-0"
            ));
        }
        for i in 0..3_000 {
            report.leftover(format!("Service tenant-{i:04}/lb: not owned by labflow"));
        }
        let v = serde_json::to_value(report.finish(Phase::Workloads)).unwrap_or_default();
        let size = v.to_string().len();
        assert!(size < 64 * 1024, "report is {size} bytes");
        for (list, omitted, total) in [
            ("removed", "removedOmitted", 6_000),
            ("waitingOn", "waitingOnOmitted", 6_000),
            ("leftovers", "leftoversOmitted", 3_000),
        ] {
            let listed = v[list].as_array().map_or(0, Vec::len);
            assert!(listed > 0 && listed < total, "{list}: {listed}");
            assert_eq!(v[omitted], serde_json::json!(total - listed), "{omitted}");
        }
    }

    #[test]
    fn a_small_report_lists_everything_and_omits_nothing() {
        let mut report = Report::default();
        report.removed("EKS cluster labflow-lab");
        let v = serde_json::to_value(report.finish(Phase::Cluster)).unwrap_or_default();
        assert_eq!(v["removed"], serde_json::json!(["EKS cluster labflow-lab"]));
        assert_eq!(v["removedOmitted"], serde_json::json!(0));
    }
}
