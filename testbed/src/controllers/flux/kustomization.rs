//! kustomize-controller: build the source at its revision, substitute, apply (server-side, field
//! manager `kustomize-controller`), record the inventory, prune, garbage-collect on deletion.

use super::super::objects::{self, ObjRef};
use super::build::{BuildInput, Tree};
use super::source::git_artifact;
use super::{
    injected_failure, log_err, unready_dependency, with_ready, AppliedKey, FluxController,
    FINALIZER, KUSTOMIZE_API, REQUESTED_AT, SOURCE_API,
};
use base64::Engine;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

const PRUNE: &str = "kustomize.toolkit.fluxcd.io/prune";

pub(super) fn reconcile_all(f: &mut FluxController) {
    for ks in f.kustomize.list(KUSTOMIZE_API, "Kustomization", None) {
        reconcile(f, &ks);
    }
}

fn inventory(obj: &Value) -> Vec<ObjRef> {
    obj.pointer("/status/inventory/entries")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| ObjRef::from_inventory(objects::s(e, "/id"), objects::s(e, "/v")))
                .collect()
        })
        .unwrap_or_default()
}

fn inventory_json(refs: &[ObjRef]) -> Value {
    let mut entries: Vec<(String, String)> = refs
        .iter()
        .map(|r| (r.inventory_id(), r.version().to_string()))
        .collect();
    entries.sort();
    entries.dedup();
    json!({"entries": entries.into_iter().map(|(id, v)| json!({"id": id, "v": v})).collect::<Vec<_>>()})
}

const RECONCILE: &str = "kustomize.toolkit.fluxcd.io/reconcile";
const OWNER_NAME: &str = "kustomize.toolkit.fluxcd.io/name";
const OWNER_NAMESPACE: &str = "kustomize.toolkit.fluxcd.io/namespace";

/// Whether garbage collection (prune or deletion) may delete a live object, as Flux's
/// `ssa.DeleteAll` decides: it must still carry this Kustomization's owner labels (another
/// Kustomization may have taken it over), and neither a label nor an annotation
/// `kustomize.toolkit.fluxcd.io/prune` / `reconcile` may say `disabled`.
fn deletable(ks: &Value, live: &Value) -> bool {
    let owned = objects::label(live, OWNER_NAME) == Some(objects::name(ks))
        && objects::label(live, OWNER_NAMESPACE) == objects::namespace(ks);
    let excluded = [PRUNE, RECONCILE].iter().any(|key| {
        objects::label(live, key) == Some("disabled")
            || objects::annotation(live, key) == Some("disabled")
    });
    owned && !excluded
}

/// `spec.deletionPolicy` (default MirrorPrune): whether deleting the Kustomization deletes its
/// inventory. A suspended Kustomization never does.
fn deletes_on_finalize(ks: &Value) -> bool {
    if ks.pointer("/spec/suspend") == Some(&Value::Bool(true)) {
        return false;
    }
    match objects::s(ks, "/spec/deletionPolicy") {
        "" | "MirrorPrune" => ks.pointer("/spec/prune") == Some(&Value::Bool(true)),
        "Delete" | "WaitForTermination" => true,
        _ => false,
    }
}

/// A Go duration as Flux's API writes them (`1h`, `10m`, `30s`, `1m30s`, `500ms`).
fn go_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        total += Duration::from_secs_f64(value * scale);
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// kustomize-controller's finalizer: delete what garbage collection may delete, then let go —
/// without waiting for it to disappear, unless `deletionPolicy: WaitForTermination` (which waits
/// up to `spec.timeout`, default the interval, and lets go anyway after that).
fn finalize(f: &mut FluxController, ks: &Value) {
    let client = f.kustomize.clone();
    if deletes_on_finalize(ks) {
        let mut remaining = 0;
        for r in inventory(ks) {
            let Some(live) = client.get(&r) else {
                continue;
            };
            if !deletable(ks, &live) {
                continue;
            }
            remaining += 1;
            if !objects::is_deleting(&live) {
                log_err("garbage collection", &live, client.delete(&r).map(|_| ()));
            }
        }
        if remaining > 0 && objects::s(ks, "/spec/deletionPolicy") == "WaitForTermination" {
            let timeout = go_duration(objects::s(ks, "/spec/timeout"))
                .or_else(|| go_duration(objects::s(ks, "/spec/interval")))
                .unwrap_or(Duration::from_secs(600));
            let since =
                chrono::DateTime::parse_from_rfc3339(objects::s(ks, "/metadata/deletionTimestamp"))
                    .map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).to_std())
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default();
            if since < timeout {
                return;
            }
            tracing::info!(kustomization = %ObjRef::of(ks).display(), "flux simulation: timed out waiting for garbage collection");
        }
    }
    f.applied.remove(objects::uid(ks));
    log_err(
        "removing finalizer",
        ks,
        client.remove_finalizer(ks, FINALIZER),
    );
}

fn reconcile(f: &mut FluxController, ks: &Value) {
    let client = f.kustomize.clone();
    let uid = objects::uid(ks).to_string();
    if objects::is_deleting(ks) {
        if objects::finalizers(ks).iter().any(|x| x == FINALIZER) {
            finalize(f, ks);
        }
        return;
    }
    if !objects::finalizers(ks).iter().any(|x| x == FINALIZER) {
        log_err("adding finalizer", ks, client.add_finalizer(ks, FINALIZER));
        return;
    }
    if ks.pointer("/spec/suspend") == Some(&Value::Bool(true)) {
        return;
    }
    if let Some(status) = injected_failure(&f.plan, ks) {
        log_err("status", ks, client.set_status(ks, status));
        return;
    }
    let own_ns = objects::namespace(ks).unwrap_or("default").to_string();
    let mut status = ks.get("status").cloned().unwrap_or_else(|| json!({}));
    let not_ready = |status: Value, reason: &str, message: &str| {
        with_ready(ks, status, "False", reason, message)
    };

    // The source artifact.
    let source_kind = objects::s(ks, "/spec/sourceRef/kind");
    let source_ns = ks
        .pointer("/spec/sourceRef/namespace")
        .and_then(Value::as_str)
        .unwrap_or(&own_ns);
    let source_ref = ObjRef::new(
        SOURCE_API,
        source_kind,
        Some(source_ns),
        objects::s(ks, "/spec/sourceRef/name"),
    );
    let source = client.get(&source_ref);
    let artifact = match (&source, source_kind) {
        (_, kind) if kind != "GitRepository" => Err(format!(
            "source kind {kind} is not supported by the testbed's Flux simulation"
        )),
        (None, _) => Err(format!("Source '{}' not found", source_ref.display())),
        (Some(src), _) => match git_artifact(f, src) {
            Some(a) if objects::is_ready(src) => Ok(a),
            _ => Err(format!(
                "Source artifact not found for '{}', retrying in 30s",
                source_ref.display()
            )),
        },
    };
    let (dir, sha, revision) = match artifact {
        Ok(a) => a,
        Err(message) => {
            log_err(
                "status",
                ks,
                client.set_status(ks, not_ready(status, "ArtifactFailed", &message)),
            );
            return;
        }
    };

    if let Some(message) = unready_dependency(&client, ks, KUSTOMIZE_API, "Kustomization") {
        log_err(
            "status",
            ks,
            client.set_status(ks, not_ready(status, "DependencyNotReady", &message)),
        );
        return;
    }

    // Post-build variables.
    let vars = match variables(f, ks, &own_ns) {
        Ok(v) => v,
        Err(message) => {
            status["lastAttemptedRevision"] = json!(revision);
            log_err(
                "status",
                ks,
                client.set_status(ks, not_ready(status, "BuildFailed", &message)),
            );
            return;
        }
    };
    let key = AppliedKey {
        revision: revision.clone(),
        generation: objects::generation(ks),
        requested_at: objects::annotation(ks, REQUESTED_AT)
            .unwrap_or("")
            .to_string(),
        vars: vars.as_ref().map_or(0, |v| {
            let sorted: BTreeMap<_, _> = v.iter().collect();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            sorted.hash(&mut h);
            h.finish()
        }),
    };
    if f.applied.get(&uid) != Some(&key) {
        if f.retry_after.get(&uid).is_some_and(|t| Instant::now() < *t) {
            return;
        }
        status["lastAttemptedRevision"] = json!(revision);
        match apply(f, ks, &dir, &sha, vars.as_ref()) {
            Ok(applied) => {
                // Prune what the new revision no longer has.
                if ks.pointer("/spec/prune") == Some(&Value::Bool(true)) {
                    for old in inventory(ks) {
                        if applied.contains(&old) {
                            continue;
                        }
                        if let Some(live) = client.get(&old) {
                            if deletable(ks, &live) {
                                log_err("prune", &live, client.delete(&old).map(|_| ()));
                            }
                        }
                    }
                }
                status["inventory"] = inventory_json(&applied);
                f.applied.insert(uid.clone(), key);
                f.retry_after.remove(&uid);
            }
            Err(message) => {
                f.retry_after
                    .insert(uid.clone(), Instant::now() + Duration::from_secs(1));
                tracing::info!(kustomization = %ObjRef::of(ks).display(), %message, "flux simulation: apply failed");
                log_err(
                    "status",
                    ks,
                    client.set_status(ks, not_ready(status, "ReconciliationFailed", &message)),
                );
                return;
            }
        }
    }

    // Ready once applied (and, with `wait`, once everything applied is healthy).
    status["observedGeneration"] = json!(objects::generation(ks));
    let waits = ks.pointer("/spec/wait") == Some(&Value::Bool(true));
    let unhealthy = if waits {
        let refs: Vec<ObjRef> = status
            .pointer("/inventory/entries")
            .and_then(Value::as_array)
            .map(|e| {
                e.iter()
                    .filter_map(|e| {
                        ObjRef::from_inventory(objects::s(e, "/id"), objects::s(e, "/v"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        refs.into_iter()
            .find(|r| !client.get(r).is_some_and(|o| healthy(&o)))
    } else {
        None
    };
    let status = match unhealthy {
        Some(r) => with_ready(
            ks,
            status,
            "Unknown",
            "Progressing",
            &format!("Health check in progress: waiting for {}", r.display()),
        ),
        None => {
            status["lastAppliedRevision"] = json!(revision);
            with_ready(
                ks,
                status,
                "True",
                "ReconciliationSucceeded",
                &format!("Applied revision: {revision}"),
            )
        }
    };
    log_err("status", ks, client.set_status(ks, status));
}

/// kstatus, roughly: Ready conditions at the current generation; Deployments available.
fn healthy(obj: &Value) -> bool {
    if objects::is_deleting(obj) {
        return false;
    }
    if objects::condition_status(obj, "Ready").is_some() {
        return objects::is_ready(obj);
    }
    if objects::s(obj, "/kind") == "Deployment" {
        let want = obj
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let available = obj
            .pointer("/status/availableReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let observed = obj
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64);
        return available >= want && observed == Some(objects::generation(obj));
    }
    true
}

/// `postBuild.substitute` over `postBuild.substituteFrom`; None when there is no postBuild.
fn variables(
    f: &FluxController,
    ks: &Value,
    ns: &str,
) -> Result<Option<HashMap<String, String>>, String> {
    let Some(post) = ks.pointer("/spec/postBuild").filter(|p| !p.is_null()) else {
        return Ok(None);
    };
    let mut vars = HashMap::new();
    if let Some(Value::Array(from)) = post.get("substituteFrom") {
        for src in from {
            let kind = objects::s(src, "/kind");
            let name = objects::s(src, "/name");
            let optional = src.get("optional") == Some(&Value::Bool(true));
            let obj = f.kustomize.get(&ObjRef::new("v1", kind, Some(ns), name));
            let Some(obj) = obj else {
                if optional {
                    continue;
                }
                return Err(format!(
                    "substitute from '{kind}/{name}' error: {}s \"{name}\" not found",
                    kind.to_lowercase()
                ));
            };
            if let Some(Value::Object(data)) = obj.get("data") {
                for (k, v) in data {
                    let v = v.as_str().unwrap_or_default();
                    let value = if kind == "Secret" {
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(v)
                            .map_err(|e| format!("substitute from 'Secret/{name}': {k}: {e}"))?;
                        String::from_utf8_lossy(&bytes).to_string()
                    } else {
                        v.to_string()
                    };
                    vars.insert(k.clone(), value);
                }
            }
            if let Some(Value::Object(data)) = obj.get("stringData") {
                for (k, v) in data {
                    vars.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
                }
            }
        }
    }
    if let Some(Value::Object(inline)) = post.get("substitute") {
        for (k, v) in inline {
            vars.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
        }
    }
    Ok(Some(vars))
}

/// Flux applies in stages: cluster definitions first, then everything else.
fn stage(obj: &Value) -> u8 {
    match objects::s(obj, "/kind") {
        "CustomResourceDefinition" => 0,
        "Namespace" => 1,
        "ClusterRole" | "ClusterRoleBinding" | "StorageClass" | "IngressClass"
        | "PriorityClass" => 2,
        _ => 3,
    }
}

fn apply(
    f: &FluxController,
    ks: &Value,
    dir: &std::path::Path,
    sha: &str,
    vars: Option<&HashMap<String, String>>,
) -> Result<Vec<ObjRef>, String> {
    let client = &f.kustomize;
    let namespaced = |api_version: &str, kind: &str| {
        client
            .resource(api_version, kind)
            .is_none_or(|rt| rt.namespaced)
    };
    let tree = Tree::open(&f.snapshots, dir, sha).map_err(|e| e.to_string())?;
    let input = BuildInput {
        vars,
        namespaced: &namespaced,
    };
    let mut built = tree
        .build(objects::s(ks, "/spec/path"), &input)
        .map_err(|e| format!("kustomize build failed: {e}"))?;
    built.sort_by_key(stage);
    let target_ns = ks
        .pointer("/spec/targetNamespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let ks_name = objects::name(ks);
    let ks_ns = objects::namespace(ks).unwrap_or("default");
    let mut applied = Vec::new();
    for mut obj in built {
        let api_version = objects::s(&obj, "/apiVersion").to_string();
        let kind = objects::s(&obj, "/kind").to_string();
        // Kinds a CRD applied in an earlier stage just registered are known by now.
        let Some(rt) = client.resource(&api_version, &kind) else {
            return Err(format!(
                "{kind}/{} dry-run failed: no matches for kind \"{kind}\" in version \"{api_version}\"",
                objects::name(&obj)
            ));
        };
        if rt.namespaced {
            if let Some(ns) = target_ns {
                obj["metadata"]["namespace"] = json!(ns);
            }
            if objects::namespace(&obj).is_none() {
                return Err(format!(
                    "{kind}/{} namespace not specified",
                    objects::name(&obj)
                ));
            }
        }
        obj["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] = json!(ks_name);
        obj["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/namespace"] = json!(ks_ns);
        let r = ObjRef::of(&obj);
        client
            .apply(&obj)
            .map_err(|e| format!("{} apply failed: {}", r.display(), e.message))?;
        applied.push(r);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(go_duration("1h0m0s"), Some(Duration::from_secs(3600)));
        assert_eq!(go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(go_duration(""), None);
        assert_eq!(go_duration("5x"), None);
    }

    #[test]
    fn deletion_policy() {
        let ks = |spec: Value| json!({"metadata": {"name": "a", "namespace": "flux-system"}, "spec": spec});
        assert!(deletes_on_finalize(&ks(json!({"prune": true}))));
        assert!(!deletes_on_finalize(&ks(json!({"prune": false}))));
        assert!(!deletes_on_finalize(&ks(
            json!({"prune": true, "suspend": true})
        )));
        assert!(deletes_on_finalize(&ks(
            json!({"prune": false, "deletionPolicy": "Delete"})
        )));
        assert!(!deletes_on_finalize(&ks(
            json!({"prune": true, "deletionPolicy": "Orphan"})
        )));
        let owned = |labels: Value, annotations: Value| json!({"metadata": {"name": "x", "labels": labels, "annotations": annotations}});
        let me = ks(json!({}));
        let mine = json!({OWNER_NAME: "a", OWNER_NAMESPACE: "flux-system"});
        assert!(deletable(&me, &owned(mine.clone(), json!({}))));
        assert!(!deletable(
            &me,
            &owned(
                json!({OWNER_NAME: "b", OWNER_NAMESPACE: "flux-system"}),
                json!({})
            )
        ));
        assert!(!deletable(&me, &owned(mine, json!({PRUNE: "disabled"}))));
    }
}
