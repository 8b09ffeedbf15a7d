//! helm-controller: a release is a Deployment labelled `app.kubernetes.io/instance=<release>` in
//! the target namespace, installed in `dependsOn` order and removed on uninstall.

use super::super::objects::{self, ObjRef};
use super::{
    chart_runtime, injected_failure, log_err, unready_dependency, with_ready, FluxController,
    FINALIZER, HELM_API, SOURCE_API,
};
use serde_json::{json, Value};

pub(super) fn reconcile_all(f: &mut FluxController) {
    for hr in f.helm.list(HELM_API, "HelmRelease", None) {
        reconcile(f, &hr);
    }
}

fn release_name(hr: &Value) -> String {
    if let Some(n) = hr
        .pointer("/spec/releaseName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        return n.to_string();
    }
    let name = objects::name(hr);
    let full = match hr
        .pointer("/spec/targetNamespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        Some(tns) => format!("{tns}-{name}"),
        None => name.to_string(),
    };
    // Helm's limit; helm-controller shortens longer names with a hash suffix.
    full.chars().take(53).collect()
}

fn target_namespace(hr: &Value) -> String {
    hr.pointer("/spec/targetNamespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| objects::namespace(hr))
        .unwrap_or("default")
        .to_string()
}

fn chart(hr: &Value) -> (String, String) {
    let name = hr.pointer("/spec/chart/spec/chart").and_then(Value::as_str);
    let version = hr
        .pointer("/spec/chart/spec/version")
        .and_then(Value::as_str);
    match name {
        Some(n) => (n.to_string(), version.unwrap_or("*").to_string()),
        None => (
            objects::s(hr, "/spec/chartRef/name").to_string(),
            "latest".to_string(),
        ),
    }
}

fn inventory(hr: &Value) -> Vec<ObjRef> {
    hr.pointer("/status/inventory/entries")
        .and_then(Value::as_array)
        .map(|e| {
            e.iter()
                .filter_map(|e| ObjRef::from_inventory(objects::s(e, "/id"), objects::s(e, "/v")))
                .collect()
        })
        .unwrap_or_default()
}

fn workload(hr: &Value, release: &str, namespace: &str) -> Value {
    let (chart, version) = chart(hr);
    let replicas = hr
        .pointer("/spec/values/replicaCount")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let labels = json!({
        "app.kubernetes.io/instance": release,
        "app.kubernetes.io/name": chart,
        "app.kubernetes.io/managed-by": "Helm",
        "helm.toolkit.fluxcd.io/name": objects::name(hr),
        "helm.toolkit.fluxcd.io/namespace": objects::namespace(hr).unwrap_or("default"),
    });
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": release,
            "namespace": namespace,
            "labels": labels,
            "annotations": {
                "meta.helm.sh/release-name": release,
                "meta.helm.sh/release-namespace": namespace,
            },
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/instance": release}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{
                    "name": chart,
                    "image": format!("registry.invalid/{chart}:{version}"),
                    "args": chart_runtime::container_args(&chart, hr.pointer("/spec/values")),
                }]},
            },
        },
    })
}

fn reconcile(f: &mut FluxController, hr: &Value) {
    let client = f.helm.clone();
    if objects::is_deleting(hr) {
        if !objects::finalizers(hr).iter().any(|x| x == FINALIZER) {
            return;
        }
        // A suspended release is deleted without `helm uninstall`, as helm-controller does.
        if hr.pointer("/spec/suspend") != Some(&Value::Bool(true)) {
            for r in inventory(hr) {
                log_err("uninstall", hr, client.delete(&r).map(|_| ()));
            }
        }
        log_err(
            "removing finalizer",
            hr,
            client.remove_finalizer(hr, FINALIZER),
        );
        return;
    }
    if !objects::finalizers(hr).iter().any(|x| x == FINALIZER) {
        log_err("adding finalizer", hr, client.add_finalizer(hr, FINALIZER));
        return;
    }
    if hr.pointer("/spec/suspend") == Some(&Value::Bool(true)) {
        return;
    }
    if let Some(status) = injected_failure(&f.plan, hr) {
        log_err("status", hr, client.set_status(hr, status));
        return;
    }
    let own_ns = objects::namespace(hr).unwrap_or("default").to_string();
    let status = hr.get("status").cloned().unwrap_or_else(|| json!({}));
    let not_ready = |status: Value, reason: &str, message: &str| {
        with_ready(hr, status, "False", reason, message)
    };

    // The chart's source must be Ready.
    let source = hr
        .pointer("/spec/chart/spec/sourceRef")
        .or_else(|| hr.pointer("/spec/chartRef"))
        .cloned()
        .unwrap_or(Value::Null);
    if !source.is_null() {
        let kind = objects::s(&source, "/kind");
        let ns = source
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or(&own_ns);
        let r = ObjRef::new(SOURCE_API, kind, Some(ns), objects::s(&source, "/name"));
        if !client.get(&r).is_some_and(|s| objects::is_ready(&s)) {
            let message = format!("could not get source: {} is not ready", r.display());
            log_err(
                "status",
                hr,
                client.set_status(hr, not_ready(status, "SourceNotReady", &message)),
            );
            return;
        }
    }
    if let Some(message) = unready_dependency(&client, hr, HELM_API, "HelmRelease") {
        log_err(
            "status",
            hr,
            client.set_status(hr, not_ready(status, "DependencyNotReady", &message)),
        );
        return;
    }

    let release = release_name(hr);
    let tns = target_namespace(hr);
    let (chart_name, version) = chart(hr);
    let ns_ref = ObjRef::new("v1", "Namespace", None, &tns);
    if client.get(&ns_ref).is_none() {
        if hr.pointer("/spec/install/createNamespace") == Some(&Value::Bool(true)) {
            log_err("creating namespace", hr, client.apply(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": tns}})).map(|_| ()));
        } else {
            let message = format!("Helm install failed for release {tns}/{release} with chart {chart_name}@{version}: create: failed to create: namespaces \"{tns}\" not found");
            log_err(
                "status",
                hr,
                client.set_status(hr, not_ready(status, "InstallFailed", &message)),
            );
            return;
        }
    }
    // The chart's CRDs, unless the release says to skip them (`install.crds: Skip`).
    let skip_crds = hr.pointer("/spec/install/crds").and_then(Value::as_str) == Some("Skip");
    let crds = f
        .options
        .chart_crds
        .get(&chart_name)
        .cloned()
        .unwrap_or_default();
    for crd in crds.iter().filter(|_| !skip_crds) {
        if let Err(e) = client.apply(crd) {
            let message = format!(
                "Helm install failed for release {tns}/{release} with chart {chart_name}@{version}: CustomResourceDefinition {}: {}",
                objects::name(crd),
                e.message
            );
            log_err(
                "status",
                hr,
                client.set_status(hr, not_ready(status, "InstallFailed", &message)),
            );
            return;
        }
    }
    let deployment = workload(hr, &release, &tns);
    let installed = ObjRef::of(&deployment);
    let first = inventory(hr).is_empty();
    if let Some(why) = chart_runtime::never_ready(&chart_name, hr.pointer("/spec/values")) {
        let message = format!(
            "Helm install failed for release {tns}/{release} with chart {chart_name}@{version}: {why}"
        );
        log_err(
            "status",
            hr,
            client.set_status(hr, not_ready(status, "InstallFailed", &message)),
        );
        return;
    }
    if let Err(e) = client.apply(&deployment) {
        let message = format!(
            "Helm install failed for release {tns}/{release} with chart {chart_name}@{version}: {}",
            e.message
        );
        log_err(
            "status",
            hr,
            client.set_status(hr, not_ready(status, "InstallFailed", &message)),
        );
        return;
    }
    // A renamed release or moved target namespace leaves the old workload behind otherwise.
    for old in inventory(hr) {
        if old != installed {
            log_err(
                "uninstall of the previous release",
                hr,
                client.delete(&old).map(|_| ()),
            );
        }
    }
    let previous = objects::s(hr, "/status/lastAttemptedReleaseAction");
    let observed = hr
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    let action = if first || previous.is_empty() {
        "install"
    } else if observed != Some(objects::generation(hr)) {
        "upgrade"
    } else {
        previous
    };
    let (reason, verb) = if action == "install" {
        ("InstallSucceeded", "install")
    } else {
        ("UpgradeSucceeded", "upgrade")
    };
    let mut status = status;
    status["observedGeneration"] = json!(objects::generation(hr));
    status["lastAttemptedGeneration"] = json!(objects::generation(hr));
    status["lastAttemptedRevision"] = json!(version);
    status["lastAttemptedReleaseAction"] = json!(action);
    status["storageNamespace"] = json!(tns);
    status["inventory"] =
        json!({"entries": [{"id": installed.inventory_id(), "v": installed.version()}]});
    let message = format!(
        "Helm {verb} succeeded for release {tns}/{release}.v1 with chart {chart_name}@{version}"
    );
    let mut status = with_ready(hr, status, "True", reason, &message);
    if let Some(Value::Array(conditions)) = status.get_mut("conditions") {
        objects::set_condition(
            conditions,
            "Released",
            "True",
            reason,
            &message,
            objects::generation(hr),
        );
    }
    log_err("status", hr, client.set_status(hr, status));
}
