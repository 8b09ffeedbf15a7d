//! The pure part of the health check: walk the root Kustomization's inventory transitively and
//! assess every object with the kstatus rules of labflow-core.

use std::collections::{BTreeSet, HashMap, HashSet};

use labflow_core::flux::inventory::{self, ObjectRef};
use labflow_core::flux::kstatus::{self, Assessment, Status};
use labflow_core::flux::{self, BOOTSTRAP_NAME, NAMESPACE};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// (group, kind)
pub type KindKey = (String, String);
/// (namespace, name)
pub type NameKey = (String, String);

/// Objects listed from the cluster, by kind.
#[derive(Debug, Default)]
pub struct Listed {
    pub by_kind: HashMap<KindKey, HashMap<NameKey, Value>>,
    /// Kinds deliberately not read (Secrets: their content is none of our business); their
    /// inventory entries count as Current.
    pub unread: BTreeSet<KindKey>,
}

impl Listed {
    pub fn insert_all(&mut self, group: &str, kind: &str, items: Vec<Value>) {
        let entry = self
            .by_kind
            .entry((group.to_string(), kind.to_string()))
            .or_default();
        for item in items {
            let r = ObjectRef::of(&item);
            entry.insert(r.key(), item);
        }
    }

    pub fn get(&self, r: &ObjectRef) -> Option<&Value> {
        self.by_kind
            .get(&(r.group.clone(), r.kind.clone()))
            .and_then(|m| m.get(&r.key()))
    }
}

/// An object that is not Current yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingObject {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub status: Status,
    pub reason: String,
    pub message: String,
}

/// An object that failed (kstatus Failed: Stalled, a failed Job, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedObject {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub current: u32,
    /// InProgress, Terminating and NotFound.
    pub in_progress: u32,
    pub failed: u32,
}

/// The assessment of the root Kustomization and its tree.
#[derive(Debug, Clone, Default)]
pub struct TreeReport {
    pub counts: Counts,
    pub pending: Vec<PendingObject>,
    pub failed: Vec<FailedObject>,
}

fn is_root(k: &Value) -> bool {
    let r = ObjectRef::of(k);
    r.namespace == NAMESPACE && r.name == BOOTSTRAP_NAME
}

/// The root Kustomization `flux-system/flux-system`, if it exists.
pub fn root(kustomizations: &[Value]) -> Option<&Value> {
    kustomizations.iter().find(|k| is_root(k))
}

/// Every object in the root's inventory, transitively through child Kustomizations (each object
/// once, in discovery order; the root itself is not included). Malformed inventory ids are skipped with a warning.
pub fn tree(kustomizations: &[Value]) -> Vec<ObjectRef> {
    let by_key: HashMap<NameKey, &Value> = kustomizations
        .iter()
        .map(|k| (ObjectRef::of(k).key(), k))
        .collect();
    let mut out = Vec::new();
    let mut seen: HashSet<ObjectRef> = HashSet::new();
    let mut queue: Vec<&Value> = root(kustomizations).into_iter().collect();
    let mut visited: HashSet<NameKey> = queue.iter().map(|k| ObjectRef::of(k).key()).collect();
    while let Some(k) = queue.pop() {
        let entries = match inventory::entries(k) {
            None => continue,
            Some(Ok(entries)) => entries,
            Some(Err(e)) => {
                tracing::warn!(kustomization = %ObjectRef::of(k), error = %e, "skipping inventory");
                continue;
            }
        };
        for r in entries {
            let is_the_root = inventory::is_kustomization(&r)
                && r.namespace == NAMESPACE
                && r.name == BOOTSTRAP_NAME;
            if is_the_root {
                continue;
            }
            if inventory::is_kustomization(&r) && visited.insert(r.key()) {
                if let Some(child) = by_key.get(&r.key()) {
                    queue.push(child);
                }
            }
            if seen.insert(r.clone()) {
                out.push(r);
            }
        }
    }
    out
}

/// A Kustomization fed by the bootstrap GitRepository must have applied `target` (when set).
fn revision_assessment(k: &Value, target: Option<&str>) -> Option<Assessment> {
    let target = target?;
    let source = k.pointer("/spec/sourceRef")?;
    let source_ns = source
        .get("namespace")
        .and_then(Value::as_str)
        .or_else(|| k.pointer("/metadata/namespace").and_then(Value::as_str))
        .unwrap_or("");
    let from_bootstrap = source.get("kind").and_then(Value::as_str) == Some("GitRepository")
        && source.get("name").and_then(Value::as_str) == Some(BOOTSTRAP_NAME)
        && source_ns == NAMESPACE;
    let applied = k
        .pointer("/status/lastAppliedRevision")
        .and_then(Value::as_str)
        .unwrap_or("");
    (from_bootstrap && applied != target).then(|| Assessment {
        status: Status::InProgress,
        reason: "RevisionNotApplied".into(),
        message: format!(
            "last applied {:?}, waiting for {target}",
            if applied.is_empty() {
                "nothing"
            } else {
                applied
            }
        ),
    })
}

fn assess_object(r: &ObjectRef, obj: &Value, target: Option<&str>) -> Assessment {
    let assessment = kstatus::assess(obj);
    if assessment.status == Status::Current && inventory::is_kustomization(r) {
        if let Some(behind) = revision_assessment(obj, target) {
            return behind;
        }
    }
    assessment
}

/// Assess the root and every object of `refs` against the listed objects.
pub fn assess_tree(
    root: &Value,
    refs: &[ObjectRef],
    listed: &Listed,
    target: Option<&str>,
) -> TreeReport {
    let mut report = TreeReport::default();
    let root_ref = ObjectRef::of(root);
    let mut record = |r: &ObjectRef, a: Assessment| match a.status {
        Status::Current => report.counts.current += 1,
        Status::Failed => {
            report.counts.failed += 1;
            report.failed.push(FailedObject {
                kind: r.kind.clone(),
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                reason: a.reason,
                message: a.message,
            });
        }
        status => {
            report.counts.in_progress += 1;
            report.pending.push(PendingObject {
                kind: r.kind.clone(),
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                status,
                reason: a.reason,
                message: a.message,
            });
        }
    };
    record(&root_ref, assess_object(&root_ref, root, target));
    for r in refs {
        let assessment = if listed.unread.contains(&(r.group.clone(), r.kind.clone())) {
            Assessment {
                status: Status::Current,
                reason: "NotRead".into(),
                message: "content not read".into(),
            }
        } else {
            match listed.get(r) {
                Some(obj) => assess_object(r, obj, target),
                None => Assessment::not_found(),
            }
        };
        record(r, assessment);
    }
    report
}

/// Problems with Flux's own controllers: each of [`flux::CONTROLLERS`] must exist and be
/// Available, and so must any other Deployment in `flux-system`.
pub fn controller_problems(flux_deployments: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for name in flux::CONTROLLERS {
        if !flux_deployments
            .iter()
            .any(|d| ObjectRef::of(d).name == name)
        {
            problems.push(format!("Deployment {NAMESPACE}/{name} does not exist"));
        }
    }
    for d in flux_deployments {
        let a = kstatus::assess(d);
        if a.status != Status::Current {
            problems.push(format!(
                "Deployment {NAMESPACE}/{} is {}: {}",
                ObjectRef::of(d).name,
                a.status.as_str(),
                a.message
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TARGET: &str = "main@sha1:abc";

    fn ks(name: &str, revision: &str, entries: &[(&str, &str)], ready: &str) -> Value {
        let entries: Vec<Value> = entries
            .iter()
            .map(|(id, v)| json!({"id": id, "v": v}))
            .collect();
        json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "namespace": "flux-system", "generation": 1},
            "spec": {"sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
            "status": {"observedGeneration": 1, "lastAppliedRevision": revision,
                "conditions": [{"type": "Ready", "status": ready, "reason": "R", "message": "m"}],
                "inventory": {"entries": entries}}
        })
    }

    fn hr(name: &str, stalled: bool) -> Value {
        let conditions = if stalled {
            json!([{"type": "Ready", "status": "False", "reason": "InstallFailed", "message": "boom"},
                   {"type": "Stalled", "status": "True", "reason": "InstallFailed", "message": "boom"}])
        } else {
            json!([{"type": "Ready", "status": "True", "reason": "InstallSucceeded", "message": "ok"}])
        };
        json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": name, "namespace": "apps", "generation": 1},
            "status": {"observedGeneration": 1, "conditions": conditions}})
    }

    fn setup() -> (Vec<Value>, Listed) {
        let kustomizations = vec![
            ks(
                "flux-system",
                TARGET,
                &[
                    (
                        "flux-system_infra_kustomize.toolkit.fluxcd.io_Kustomization",
                        "v1",
                    ),
                    (
                        "flux-system_apps_kustomize.toolkit.fluxcd.io_Kustomization",
                        "v1",
                    ),
                ],
                "True",
            ),
            ks(
                "infra",
                TARGET,
                &[
                    ("apps_podinfo_helm.toolkit.fluxcd.io_HelmRelease", "v2"),
                    ("apps_creds__Secret", "v1"),
                    // a cycle back to the root must not loop
                    (
                        "flux-system_flux-system_kustomize.toolkit.fluxcd.io_Kustomization",
                        "v1",
                    ),
                ],
                "True",
            ),
            ks(
                "apps",
                TARGET,
                &[
                    ("apps_bookinfo_helm.toolkit.fluxcd.io_HelmRelease", "v2"),
                    ("_apps__Namespace", "v1"),
                ],
                "True",
            ),
        ];
        let mut listed = Listed::default();
        listed.insert_all(
            "kustomize.toolkit.fluxcd.io",
            "Kustomization",
            kustomizations.clone(),
        );
        listed.insert_all(
            "helm.toolkit.fluxcd.io",
            "HelmRelease",
            vec![hr("podinfo", false), hr("bookinfo", false)],
        );
        listed.insert_all(
            "",
            "Namespace",
            vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}})],
        );
        listed.unread.insert(("".into(), "Secret".into()));
        (kustomizations, listed)
    }

    #[test]
    fn walks_the_tree_transitively_once() {
        let (kustomizations, _) = setup();
        let refs = tree(&kustomizations);
        let names: Vec<String> = refs.iter().map(ToString::to_string).collect();
        assert_eq!(refs.len(), 6, "{names:?}");
        assert!(names.contains(&"HelmRelease/apps/bookinfo".to_string()));
        assert!(names.contains(&"Secret/apps/creds".to_string()));
    }

    #[test]
    fn everything_current_at_the_target() {
        let (kustomizations, listed) = setup();
        let root = root(&kustomizations).expect("root");
        let report = assess_tree(root, &tree(&kustomizations), &listed, Some(TARGET));
        assert_eq!(
            report.counts,
            Counts {
                current: 7,
                in_progress: 0,
                failed: 0
            }
        );
        assert!(report.pending.is_empty() && report.failed.is_empty());
    }

    #[test]
    fn a_stalled_release_is_the_one_failure() {
        let (kustomizations, mut listed) = setup();
        listed.insert_all(
            "helm.toolkit.fluxcd.io",
            "HelmRelease",
            vec![hr("podinfo", true)],
        );
        let root = root(&kustomizations).expect("root");
        let report = assess_tree(root, &tree(&kustomizations), &listed, Some(TARGET));
        assert_eq!(report.counts.failed, 1);
        assert_eq!(report.failed[0].name, "podinfo");
        assert_eq!(report.failed[0].reason, "InstallFailed");
    }

    #[test]
    fn a_child_behind_the_target_and_missing_objects_are_pending() {
        let (mut kustomizations, mut listed) = setup();
        kustomizations[2]["status"]["lastAppliedRevision"] = json!("main@sha1:old");
        listed.insert_all(
            "kustomize.toolkit.fluxcd.io",
            "Kustomization",
            kustomizations.clone(),
        );
        listed
            .by_kind
            .remove(&("".to_string(), "Namespace".to_string()));
        let root = root(&kustomizations).expect("root");
        let report = assess_tree(root, &tree(&kustomizations), &listed, Some(TARGET));
        let reasons: Vec<(&str, &str)> = report
            .pending
            .iter()
            .map(|p| (p.name.as_str(), p.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [("apps", "RevisionNotApplied"), ("apps", "NotFound")]
        );
        assert_eq!(report.counts.in_progress, 2);
        // Without a target sha the applied revision is not compared.
        let report = assess_tree(root, &tree(&kustomizations), &listed, None);
        assert_eq!(report.counts.in_progress, 1);
    }

    #[test]
    fn controllers_must_exist_and_be_available() {
        let dep = |name: &str, available: i64| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "flux-system"}, "spec": {"replicas": 1},
            "status": {"replicas": 1, "updatedReplicas": 1, "availableReplicas": available}})
        };
        let all = vec![
            dep("source-controller", 1),
            dep("kustomize-controller", 1),
            dep("helm-controller", 1),
        ];
        assert!(controller_problems(&all).is_empty());
        let broken = vec![dep("source-controller", 0), dep("kustomize-controller", 1)];
        let problems = controller_problems(&broken);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("helm-controller does not exist"));
        assert!(problems[1].contains("source-controller is InProgress"));
    }
}
