//! Istio: policies the sidecar never sees, Helm settings the charts ignore, where images live.

use serde_json::Value;

use super::{strings_under, Findings, Rule, Tree};

pub const UNCAPTURED_PORT_POLICY: Rule = Rule {
    id: "uncaptured-port-policy",
    summary: "no AuthorizationPolicy rule is only about ports the sidecar never intercepts (15020, 15021, 15090): pilot-agent serves them outside Envoy's inbound capture, so the rule does nothing",
    source: "istio 1.30.3 manifests/charts/istio-control/istio-discovery/files/injection-template.yaml (istio-iptables -d 15090,15021,15020)",
};

pub const TEMPLATED_CRDS_POLICY: Rule = Rule {
    id: "templated-crds-policy",
    summary: "no Helm CRD policy (install/upgrade.crds) on a chart that ships its CRDs as templates (Istio base 1.24+): it has no effect",
    source: "istio releasenotes/notes/53318.yaml (1.24: CRDs templated by default); istio 1.30.3 manifests/charts/base has templates/crds.yaml and no crds/ directory",
};

pub const SAMPLE_IMAGE_REGISTRY: Rule = Rule {
    id: "istio-sample-registry",
    summary: "Istio sample images (Bookinfo) come from registry.istio.io/release, where Istio publishes them since 1.30, not Docker Hub (anonymous pull limits)",
    source: "istio/istio#59364; istio 1.30.3 samples/bookinfo/platform/kube/bookinfo.yaml; releasenotes/notes/use-registry-istio-io.yaml",
};

/// Inbound ports the injection template excludes from redirection (`-d`).
const UNCAPTURED_PORTS: &[&str] = &["15020", "15021", "15090"];
/// Istio's charts whose CRDs are templates, from the version that made them so.
const TEMPLATED_CRD_CHARTS: &[(&str, (u64, u64))] = &[("base", (1, 24))];
const DOCKER_HUB_SAMPLES: &[&str] = &["docker.io/istio/examples-", "istio/examples-"];

pub fn check(tree: &Tree<'_>, out: &mut Findings<'_>) {
    for policy in tree.of_kind("security.istio.io", "AuthorizationPolicy") {
        let rules = policy
            .value
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for (index, rule) in rules.enumerate() {
            let ports = rule_ports(rule);
            if !ports.is_empty() && ports.iter().all(|p| UNCAPTURED_PORTS.contains(p)) {
                out.report(
                    policy,
                    &UNCAPTURED_PORT_POLICY,
                    format!(
                        "rules[{index}] only matches port(s) {}, which the sidecar never intercepts: the policy allows or denies nothing there",
                        ports.join(", ")
                    ),
                );
            }
        }
    }
    for release in tree.releases() {
        let templated = TEMPLATED_CRD_CHARTS.iter().any(|(chart, since)| {
            release.chart == *chart && release.major_minor().is_some_and(|v| v >= *since)
        });
        let policies: Vec<&str> = ["install", "upgrade"]
            .into_iter()
            .filter(|phase| {
                release
                    .object
                    .value
                    .pointer(&format!("/spec/{phase}/crds"))
                    .is_some()
            })
            .collect();
        if templated && !policies.is_empty() {
            out.report(
                release.object,
                &TEMPLATED_CRDS_POLICY,
                format!(
                    "spec.{}.crds has no effect: chart {} {} ships its CRDs in templates/, which Helm installs and upgrades as ordinary resources",
                    policies.join(".crds and spec."),
                    release.chart,
                    release.version
                ),
            );
        }
    }
    for object in tree.objects() {
        let mut images = Vec::new();
        strings_under(&object.value, "image", &mut images);
        for image in images {
            if DOCKER_HUB_SAMPLES.iter().any(|p| image.starts_with(p)) {
                let name = image.rsplit('/').next().unwrap_or(image);
                out.report(
                    object,
                    &SAMPLE_IMAGE_REGISTRY,
                    format!(
                        "image {image} comes from Docker Hub; Istio publishes it as registry.istio.io/release/{name}"
                    ),
                );
            }
        }
    }
}

/// Every port a rule's `to` operations name (empty: the rule is not about ports).
fn rule_ports(rule: &Value) -> Vec<&str> {
    let operations = rule
        .get("to")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|to| to.get("operation"));
    let mut ports = Vec::new();
    for operation in operations {
        match operation.get("ports").and_then(Value::as_array) {
            Some(listed) => ports.extend(listed.iter().filter_map(Value::as_str)),
            // An operation without ports matches every port: the rule is not only about ours.
            None => return Vec::new(),
        }
    }
    ports
}
