//! Readiness as `flux` and kstatus compute it (DESIGN.md §5), over plain JSON objects.
//!
//! Order of the generic rules: `deletionTimestamp` → Terminating; `status.observedGeneration`
//! ≠ `metadata.generation` → InProgress; `Reconciling=True` → InProgress; `Stalled=True` → Failed.
//! Then the kind-specific rules of kstatus for the built-in workload kinds, then the `Ready`
//! condition: `True` → Current, anything else → InProgress. A Flux object without a `Ready`
//! condition has not been reconciled yet (InProgress); any other object without conditions or
//! kind-specific rules is Current once it exists (kstatus's rule for ConfigMaps, Roles, ...).
//!
//! `Ready=False` alone is *not* Failed: Flux retries such objects (a HelmRelease whose first
//! install hits a webhook that is not up yet recovers by itself). Flux marks an object it gave up
//! on with `Stalled=True` (e.g. a HelmRelease whose remediation retries are exhausted).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kstatus status of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub enum Status {
    Current,
    InProgress,
    Failed,
    Terminating,
    /// The object is listed in an inventory but does not exist.
    NotFound,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Current => "Current",
            Status::InProgress => "InProgress",
            Status::Failed => "Failed",
            Status::Terminating => "Terminating",
            Status::NotFound => "NotFound",
        }
    }
}

/// A status with the reason and message that explain it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    pub status: Status,
    pub reason: String,
    pub message: String,
}

impl Assessment {
    fn new(status: Status, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }

    fn current() -> Self {
        Self::new(Status::Current, "Current", "resource is current")
    }

    fn in_progress(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Status::InProgress, reason, message)
    }

    /// The assessment of an inventory entry whose object is missing.
    pub fn not_found() -> Self {
        Self::new(
            Status::NotFound,
            "NotFound",
            "listed in the inventory but not found in the cluster",
        )
    }
}

/// One entry of `status.conditions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition<'a> {
    pub status: &'a str,
    pub reason: &'a str,
    pub message: &'a str,
}

/// The condition of `type_`, if the object reports it.
pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<Condition<'a>> {
    let conditions = obj.pointer("/status/conditions")?.as_array()?;
    let found = conditions
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))?;
    let text = |key: &str| found.get(key).and_then(Value::as_str).unwrap_or("");
    Some(Condition {
        status: text("status"),
        reason: text("reason"),
        message: text("message"),
    })
}

fn condition_is(obj: &Value, type_: &str, status: &str) -> Option<Assessment> {
    condition(obj, type_)
        .filter(|c| c.status == status)
        .map(|c| Assessment::new(Status::Current, c.reason, c.message))
}

fn int(obj: &Value, pointer: &str) -> Option<i64> {
    obj.pointer(pointer).and_then(Value::as_i64)
}

fn api_group(obj: &Value) -> &str {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    match api_version.split_once('/') {
        Some((group, _)) => group,
        None => "",
    }
}

/// Assess one object by the rules above.
pub fn assess(obj: &Value) -> Assessment {
    if obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return Assessment::new(
            Status::Terminating,
            "Terminating",
            "resource is being deleted",
        );
    }
    let generation = int(obj, "/metadata/generation");
    let observed = int(obj, "/status/observedGeneration");
    if let (Some(generation), Some(observed)) = (generation, observed) {
        if generation != observed {
            return Assessment::in_progress(
                "LatestGenerationNotObserved",
                format!("generation {generation} not observed yet (observed {observed})"),
            );
        }
    }
    if let Some(mut a) = condition_is(obj, "Reconciling", "True") {
        a.status = Status::InProgress;
        return a;
    }
    if let Some(mut a) = condition_is(obj, "Stalled", "True") {
        a.status = Status::Failed;
        return a;
    }
    let group = api_group(obj);
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let flux = super::is_flux_group(group);
    if flux && generation.is_some() && observed.is_none() {
        return Assessment::in_progress("NotObserved", "not reconciled by its controller yet");
    }
    if let Some(a) = builtin(group, kind, obj) {
        return a;
    }
    match condition(obj, "Ready") {
        Some(c) if c.status == "True" => Assessment::new(Status::Current, c.reason, c.message),
        Some(c) => Assessment::in_progress(
            if c.reason.is_empty() {
                "NotReady"
            } else {
                c.reason
            },
            c.message,
        ),
        None if flux => Assessment::in_progress("NotReady", "no Ready condition yet"),
        None => Assessment::current(),
    }
}

/// kstatus's rules for the built-in kinds that have a meaningful status.
fn builtin(group: &str, kind: &str, obj: &Value) -> Option<Assessment> {
    match (group, kind) {
        ("apps", "Deployment") => Some(deployment(obj)),
        ("apps", "StatefulSet") => Some(statefulset(obj)),
        ("apps", "DaemonSet") => Some(daemonset(obj)),
        ("apps", "ReplicaSet") => Some(replicaset(obj)),
        ("", "Pod") => Some(pod(obj)),
        ("", "PersistentVolumeClaim") => Some(pvc(obj)),
        ("", "Service") => Some(service(obj)),
        ("batch", "Job") => Some(job(obj)),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => Some(crd(obj)),
        _ => None,
    }
}

fn deployment(obj: &Value) -> Assessment {
    if let Some(c) = condition(obj, "Progressing") {
        if c.status == "False" && c.reason == "ProgressDeadlineExceeded" {
            return Assessment::new(Status::Failed, c.reason, c.message);
        }
    }
    let desired = int(obj, "/spec/replicas").unwrap_or(1);
    let replicas = int(obj, "/status/replicas").unwrap_or(0);
    let updated = int(obj, "/status/updatedReplicas").unwrap_or(0);
    let available = int(obj, "/status/availableReplicas").unwrap_or(0);
    if updated < desired {
        return Assessment::in_progress("LessUpdated", format!("updated: {updated}/{desired}"));
    }
    if replicas > updated {
        return Assessment::in_progress(
            "ExtraPods",
            format!("pending termination: {}", replicas - updated),
        );
    }
    if available < desired {
        return Assessment::in_progress(
            "LessAvailable",
            format!("available: {available}/{desired}"),
        );
    }
    if let Some(c) = condition(obj, "Available") {
        if c.status != "True" {
            return Assessment::in_progress("DeploymentNotAvailable", c.message);
        }
    }
    Assessment::new(
        Status::Current,
        "Current",
        format!("Deployment is available. Replicas: {replicas}"),
    )
}

fn statefulset(obj: &Value) -> Assessment {
    let desired = int(obj, "/spec/replicas").unwrap_or(1);
    let ready = int(obj, "/status/readyReplicas").unwrap_or(0);
    let current = int(obj, "/status/currentReplicas").unwrap_or(0);
    let updated = int(obj, "/status/updatedReplicas").unwrap_or(current);
    if ready < desired {
        return Assessment::in_progress("LessReady", format!("ready: {ready}/{desired}"));
    }
    if updated < desired {
        return Assessment::in_progress("LessUpdated", format!("updated: {updated}/{desired}"));
    }
    Assessment::new(
        Status::Current,
        "Current",
        format!("All replicas scheduled as expected. Replicas: {ready}"),
    )
}

fn daemonset(obj: &Value) -> Assessment {
    let desired = int(obj, "/status/desiredNumberScheduled").unwrap_or(0);
    let updated = int(obj, "/status/updatedNumberScheduled").unwrap_or(0);
    let available = int(obj, "/status/numberAvailable").unwrap_or(0);
    if obj.pointer("/status/desiredNumberScheduled").is_none() {
        return Assessment::in_progress("NoDesiredNumber", "desiredNumberScheduled not set yet");
    }
    if updated < desired {
        return Assessment::in_progress("LessUpdated", format!("updated: {updated}/{desired}"));
    }
    if available < desired {
        return Assessment::in_progress(
            "LessAvailable",
            format!("available: {available}/{desired}"),
        );
    }
    Assessment::current()
}

fn replicaset(obj: &Value) -> Assessment {
    let desired = int(obj, "/spec/replicas").unwrap_or(1);
    let available = int(obj, "/status/availableReplicas").unwrap_or(0);
    if available < desired {
        return Assessment::in_progress(
            "LessAvailable",
            format!("available: {available}/{desired}"),
        );
    }
    Assessment::current()
}

fn pod(obj: &Value) -> Assessment {
    match obj.pointer("/status/phase").and_then(Value::as_str) {
        Some("Succeeded") => Assessment::current(),
        Some("Failed") => Assessment::new(Status::Failed, "PodFailed", "pod has failed"),
        Some("Running") => match condition(obj, "Ready") {
            Some(c) if c.status == "True" => Assessment::current(),
            _ => Assessment::in_progress("PodNotReady", "pod is running but not ready"),
        },
        phase => Assessment::in_progress(
            "PodNotRunning",
            format!("pod phase: {}", phase.unwrap_or("unknown")),
        ),
    }
}

fn pvc(obj: &Value) -> Assessment {
    match obj.pointer("/status/phase").and_then(Value::as_str) {
        Some("Bound") => Assessment::current(),
        phase => Assessment::in_progress(
            "NotBound",
            format!("PVC phase: {}", phase.unwrap_or("unknown")),
        ),
    }
}

fn service(obj: &Value) -> Assessment {
    if obj.pointer("/spec/type").and_then(Value::as_str) != Some("LoadBalancer") {
        return Assessment::current();
    }
    let has_ingress = obj
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .is_some_and(|i| !i.is_empty());
    if has_ingress {
        Assessment::current()
    } else {
        Assessment::in_progress("NoIPAssigned", "load balancer has no address yet")
    }
}

fn job(obj: &Value) -> Assessment {
    if let Some(c) = condition(obj, "Failed").filter(|c| c.status == "True") {
        return Assessment::new(Status::Failed, c.reason, c.message);
    }
    if condition(obj, "Complete").is_some_and(|c| c.status == "True") {
        return Assessment::current();
    }
    Assessment::in_progress("JobInProgress", "job has not completed")
}

fn crd(obj: &Value) -> Assessment {
    if let Some(c) = condition(obj, "NamesAccepted").filter(|c| c.status == "False") {
        return Assessment::new(Status::Failed, c.reason, c.message);
    }
    match condition(obj, "Established") {
        Some(c) if c.status == "True" => Assessment::current(),
        _ => Assessment::in_progress("NotEstablished", "CRD is not established yet"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hr(generation: i64, status: Value) -> Value {
        json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "podinfo", "namespace": "podinfo", "generation": generation},
            "status": status
        })
    }

    fn cond(type_: &str, status: &str, reason: &str) -> Value {
        json!({"type": type_, "status": status, "reason": reason, "message": format!("{type_} {reason}")})
    }

    #[test]
    fn deletion_timestamp_wins_over_everything() {
        let mut obj = hr(
            1,
            json!({"observedGeneration": 1, "conditions": [cond("Ready", "True", "Succeeded")]}),
        );
        obj["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(assess(&obj).status, Status::Terminating);
    }

    #[test]
    fn outdated_observed_generation_is_in_progress_even_if_ready() {
        let obj = hr(
            2,
            json!({"observedGeneration": 1, "conditions": [cond("Ready", "True", "Succeeded")]}),
        );
        let a = assess(&obj);
        assert_eq!(a.status, Status::InProgress);
        assert_eq!(a.reason, "LatestGenerationNotObserved");
    }

    #[test]
    fn reconciling_is_in_progress_and_beats_stalled() {
        let obj = hr(
            1,
            json!({"observedGeneration": 1, "conditions": [
            cond("Reconciling", "True", "Progressing"), cond("Stalled", "True", "RetriesExceeded")]}),
        );
        assert_eq!(assess(&obj).status, Status::InProgress);
    }

    #[test]
    fn stalled_is_failed_with_its_reason() {
        let obj = hr(
            1,
            json!({"observedGeneration": 1, "conditions": [
            cond("Ready", "False", "InstallFailed"), cond("Stalled", "True", "RetriesExceeded")]}),
        );
        let a = assess(&obj);
        assert_eq!(a.status, Status::Failed);
        assert_eq!(a.reason, "RetriesExceeded");
        assert_eq!(a.message, "Stalled RetriesExceeded");
    }

    #[test]
    fn ready_true_is_current_ready_false_is_in_progress() {
        let ok = hr(
            3,
            json!({"observedGeneration": 3, "conditions": [cond("Ready", "True", "InstallSucceeded")]}),
        );
        assert_eq!(assess(&ok).status, Status::Current);
        let retrying = hr(
            3,
            json!({"observedGeneration": 3, "conditions": [cond("Ready", "False", "InstallFailed")]}),
        );
        let a = assess(&retrying);
        assert_eq!(a.status, Status::InProgress);
        assert_eq!(a.reason, "InstallFailed");
    }

    #[test]
    fn flux_object_without_status_is_in_progress() {
        let fresh = hr(1, json!({}));
        assert_eq!(assess(&fresh).status, Status::InProgress);
        let mut no_status = hr(1, json!(null));
        no_status.as_object_mut().map(|o| o.remove("status"));
        assert_eq!(assess(&no_status).status, Status::InProgress);
    }

    #[test]
    fn plain_objects_are_current_when_they_exist() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
        assert_eq!(assess(&cm).status, Status::Current);
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}, "status": {"phase": "Active"}});
        assert_eq!(assess(&ns).status, Status::Current);
    }

    #[test]
    fn deployment_rules() {
        let dep = |spec: i64, status: Value| {
            json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "generation": 1},
            "spec": {"replicas": spec}, "status": status})
        };
        let available = dep(
            2,
            json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2,
            "conditions": [cond("Available", "True", "MinimumReplicasAvailable")]}),
        );
        assert_eq!(assess(&available).status, Status::Current);
        let rolling = dep(
            2,
            json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2}),
        );
        assert_eq!(assess(&rolling).reason, "ExtraPods");
        let starting = dep(
            2,
            json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}),
        );
        assert_eq!(assess(&starting).status, Status::InProgress);
        let no_status = dep(1, json!({}));
        assert_eq!(assess(&no_status).status, Status::InProgress);
        let stuck = dep(
            1,
            json!({"observedGeneration": 1, "conditions": [cond("Progressing", "False", "ProgressDeadlineExceeded")]}),
        );
        assert_eq!(assess(&stuck).status, Status::Failed);
        let scaled_to_zero = dep(0, json!({"observedGeneration": 1}));
        assert_eq!(assess(&scaled_to_zero).status, Status::Current);
    }

    #[test]
    fn load_balancer_service_waits_for_an_address() {
        let mut svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gw"},
            "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {}}});
        assert_eq!(assess(&svc).status, Status::InProgress);
        svc["status"]["loadBalancer"]["ingress"] = json!([{"hostname": "k8s-x.elb.amazonaws.com"}]);
        assert_eq!(assess(&svc).status, Status::Current);
        let cluster_ip = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "c"}, "spec": {"type": "ClusterIP"}});
        assert_eq!(assess(&cluster_ip).status, Status::Current);
    }

    #[test]
    fn workloads_jobs_pods_pvcs_and_crds() {
        let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"},
            "spec": {"replicas": 2}, "status": {"readyReplicas": 1, "currentReplicas": 2, "updatedReplicas": 2}});
        assert_eq!(assess(&sts).status, Status::InProgress);
        let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "d"},
            "status": {"desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3}});
        assert_eq!(assess(&ds).status, Status::Current);
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
            "status": {"conditions": [cond("Failed", "True", "BackoffLimitExceeded")]}});
        assert_eq!(assess(&job).status, Status::Failed);
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "status": {"phase": "Running", "conditions": [cond("Ready", "True", "")]}});
        assert_eq!(assess(&pod).status, Status::Current);
        let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "v"}, "status": {"phase": "Pending"}});
        assert_eq!(assess(&pvc).status, Status::InProgress);
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "a.b"},
            "status": {"conditions": [cond("Established", "True", "InitialNamesAccepted")]}});
        assert_eq!(assess(&crd).status, Status::Current);
        let pending_crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "a.b"}});
        assert_eq!(assess(&pending_crd).status, Status::InProgress);
    }
}
