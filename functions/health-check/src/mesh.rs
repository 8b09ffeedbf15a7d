//! The mesh security posture (infra/gitops/README.md, "Traffic and mesh security"), as pure rules:
//! a mesh-wide STRICT PeerAuthentication in `istio-system`, sidecar injection enabled on the app
//! namespaces, and a sidecar in every running app pod.
//!
//! What is checkable depends on what exists: in a cluster without app pods yet (or in the
//! simulation, which runs no pods) there is nothing to check sidecars on; the report says so
//! (`sidecarsChecked: false`) instead of claiming they are there.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Istio's root namespace: a PeerAuthentication without selector there applies mesh-wide.
pub const ROOT_NAMESPACE: &str = "istio-system";
/// The namespaces of the lab's apps (bookinfo, podinfo), which must be meshed.
pub const APP_NAMESPACES: [&str; 2] = ["bookinfo", "podinfo"];

/// What the mesh check found.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshReport {
    /// A PeerAuthentication in istio-system without selector has `mtls.mode: STRICT`.
    pub strict_peer_authentication: bool,
    /// App namespaces that exist with injection enabled.
    pub injected_namespaces: Vec<String>,
    /// Whether any running app pod existed to look for sidecars in.
    pub sidecars_checked: bool,
    /// Running app pods looked at.
    pub pods_checked: u32,
    /// `namespace/name` of running app pods without an Istio sidecar.
    pub pods_without_sidecar: Vec<String>,
    /// Why the posture does not hold (empty when it does).
    pub problems: Vec<String>,
}

impl MeshReport {
    pub fn holds(&self) -> bool {
        self.problems.is_empty()
    }
}

fn s<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// A mesh-wide STRICT policy: in the root namespace, no (or an empty) workload selector.
pub fn is_mesh_wide_strict(peer_authentication: &Value) -> bool {
    let mesh_wide = match peer_authentication.pointer("/spec/selector/matchLabels") {
        None | Some(Value::Null) => true,
        Some(Value::Object(labels)) => labels.is_empty(),
        Some(_) => false,
    };
    s(peer_authentication, "/metadata/namespace") == ROOT_NAMESPACE
        && mesh_wide
        && s(peer_authentication, "/spec/mtls/mode") == "STRICT"
}

/// Injection is on for a namespace: `istio-injection=enabled` or a revision label.
pub fn injection_enabled(namespace: &Value) -> bool {
    let label = |key: &str| {
        namespace
            .pointer("/metadata/labels")
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
    };
    label("istio-injection") == Some("enabled")
        || (label("istio-injection").is_none()
            && label("istio.io/rev").is_some_and(|r| !r.is_empty()))
}

/// A pod has a sidecar: an `istio-proxy` container (classic or native init-container sidecar) or
/// the injector's status annotation.
pub fn has_sidecar(pod: &Value) -> bool {
    let named_proxy = |pointer: &str| {
        pod.pointer(pointer)
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| s(c, "/name") == "istio-proxy"))
    };
    named_proxy("/spec/containers")
        || named_proxy("/spec/initContainers")
        || pod
            .pointer("/metadata/annotations")
            .and_then(|a| a.get("sidecar.istio.io/status"))
            .is_some()
}

/// Pods that must have a sidecar: running, not opted out with `sidecar.istio.io/inject: "false"`.
fn must_have_sidecar(pod: &Value) -> bool {
    let opted_out = pod
        .pointer("/metadata/annotations")
        .and_then(|a| a.get("sidecar.istio.io/inject"))
        .and_then(Value::as_str)
        == Some("false");
    let finished = matches!(s(pod, "/status/phase"), "Succeeded" | "Failed");
    !opted_out && !finished && pod.pointer("/metadata/deletionTimestamp").is_none()
}

/// Evaluate the posture. `peer_authentications: None` means the API is not served (Istio's CRDs
/// are not installed yet).
pub fn evaluate(
    peer_authentications: Option<&[Value]>,
    namespaces: &[Value],
    app_pods: &[Value],
) -> MeshReport {
    let mut report = MeshReport::default();
    match peer_authentications {
        None => report
            .problems
            .push("PeerAuthentication is not served (Istio CRDs not installed)".into()),
        Some(list) => {
            report.strict_peer_authentication = list.iter().any(is_mesh_wide_strict);
            if !report.strict_peer_authentication {
                report.problems.push(format!(
                    "no mesh-wide STRICT PeerAuthentication in {ROOT_NAMESPACE}"
                ));
            }
        }
    }
    for app in APP_NAMESPACES {
        match namespaces.iter().find(|n| s(n, "/metadata/name") == app) {
            None => report
                .problems
                .push(format!("namespace {app} does not exist")),
            Some(ns) if injection_enabled(ns) => report.injected_namespaces.push(app.to_string()),
            Some(_) => report.problems.push(format!(
                "namespace {app} has no istio-injection=enabled label"
            )),
        }
    }
    for pod in app_pods.iter().filter(|p| must_have_sidecar(p)) {
        report.pods_checked += 1;
        if !has_sidecar(pod) {
            report.pods_without_sidecar.push(format!(
                "{}/{}",
                s(pod, "/metadata/namespace"),
                s(pod, "/metadata/name")
            ));
        }
    }
    report.sidecars_checked = report.pods_checked > 0;
    if !report.pods_without_sidecar.is_empty() {
        report.problems.push(format!(
            "pods without an Istio sidecar: {}",
            report.pods_without_sidecar.join(", ")
        ));
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pa(ns: &str, mode: &str, selector: Value) -> Value {
        json!({"metadata": {"name": "default", "namespace": ns},
            "spec": {"selector": selector, "mtls": {"mode": mode}}})
    }

    fn ns(name: &str, labels: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}})
    }

    fn meshed_namespaces() -> Vec<Value> {
        vec![
            ns("bookinfo", json!({"istio-injection": "enabled"})),
            ns("podinfo", json!({"istio.io/rev": "1-30"})),
        ]
    }

    #[test]
    fn strict_must_be_mesh_wide_in_the_root_namespace() {
        assert!(is_mesh_wide_strict(&pa(
            "istio-system",
            "STRICT",
            Value::Null
        )));
        assert!(is_mesh_wide_strict(&pa(
            "istio-system",
            "STRICT",
            json!({"matchLabels": {}})
        )));
        assert!(!is_mesh_wide_strict(&pa(
            "istio-system",
            "PERMISSIVE",
            Value::Null
        )));
        assert!(!is_mesh_wide_strict(&pa("bookinfo", "STRICT", Value::Null)));
        assert!(!is_mesh_wide_strict(&pa(
            "istio-system",
            "STRICT",
            json!({"matchLabels": {"app": "x"}})
        )));
    }

    #[test]
    fn posture_holds_without_pods_and_says_sidecars_were_not_checked() {
        let pas = [pa("istio-system", "STRICT", Value::Null)];
        let report = evaluate(Some(&pas), &meshed_namespaces(), &[]);
        assert!(report.holds(), "{report:?}");
        assert!(!report.sidecars_checked);
        assert_eq!(report.injected_namespaces, ["bookinfo", "podinfo"]);
    }

    #[test]
    fn every_problem_is_reported() {
        let namespaces = vec![ns("bookinfo", json!({"istio-injection": "disabled"}))];
        let pods = vec![
            json!({"metadata": {"name": "a", "namespace": "bookinfo"}, "spec": {"containers": [{"name": "app"}]}, "status": {"phase": "Running"}}),
            json!({"metadata": {"name": "b", "namespace": "bookinfo"}, "spec": {"containers": [{"name": "app"}, {"name": "istio-proxy"}]}, "status": {"phase": "Running"}}),
            json!({"metadata": {"name": "c", "namespace": "bookinfo"}, "spec": {"initContainers": [{"name": "istio-proxy", "restartPolicy": "Always"}], "containers": [{"name": "app"}]}}),
            json!({"metadata": {"name": "job", "namespace": "bookinfo"}, "spec": {"containers": [{"name": "app"}]}, "status": {"phase": "Succeeded"}}),
            json!({"metadata": {"name": "out", "namespace": "bookinfo", "annotations": {"sidecar.istio.io/inject": "false"}}, "spec": {"containers": [{"name": "app"}]}}),
        ];
        let report = evaluate(None, &namespaces, &pods);
        assert!(!report.holds());
        assert_eq!(report.pods_checked, 3);
        assert_eq!(report.pods_without_sidecar, ["bookinfo/a"]);
        assert!(report.sidecars_checked);
        assert_eq!(report.problems.len(), 4, "{:?}", report.problems);
        assert!(report.problems[0].contains("not served"));
        assert!(report.problems[1].contains("bookinfo has no istio-injection"));
        assert!(report.problems[2].contains("podinfo does not exist"));
    }
}
