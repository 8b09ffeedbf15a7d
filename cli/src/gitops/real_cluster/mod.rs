//! What a real EKS cluster enforces that no CRD schema says: a tree can validate object by object
//! and still give a lab that does not work (an ALB that gets 502 from every request, a log store
//! nothing ships to, alerts that fire forever). Each rule is general — it reads what the objects
//! mean (routes, issuers, chart values), not our file names — and names its upstream source;
//! `labflow lint --verbose` prints them.
//!
//! Rules see the tree as the cluster receives it: every object after substitution of the sample
//! cluster variables. Chart values are a release's `valuesFrom` ConfigMaps and Secrets found in
//! the tree, then its `spec.values` ([`values`]).

mod certificates;
mod consoles;
mod eks;
mod ingress;
mod logs;
mod mesh;
mod tracing;
mod values;

use serde_json::Value;

use super::load::Doc;
use super::report::{Check, Finding};

/// One real-cluster rule: an id findings start with, what it checks, and where that comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub id: &'static str,
    pub summary: &'static str,
    pub source: &'static str,
}

/// Every rule, in the order `--verbose` prints them.
pub const RULES: &[&Rule] = &[
    &ingress::ALB_HTTPS_SNI,
    &ingress::LB_CONTROLLER_VPC,
    &certificates::ACME_PRODUCTION,
    &tracing::KIALI_TRACING_PATH,
    &tracing::JAEGER_COLLECTOR_HEADLESS,
    &tracing::JAEGER_METRICS_PORT,
    &logs::LOKI_LOG_SHIPPER,
    &logs::LOKI_RETENTION,
    &eks::AUTOSCALER_VERSION,
    &eks::CONTROL_PLANE_SCRAPE,
    &mesh::UNCAPTURED_PORT_POLICY,
    &mesh::TEMPLATED_CRDS_POLICY,
    &mesh::SAMPLE_IMAGE_REGISTRY,
    &consoles::GRAFANA_DEFAULT_PASSWORD,
];

/// One object as the cluster receives it.
pub struct Object<'a> {
    pub doc: &'a Doc,
    /// After substitution of the sample cluster variables.
    pub value: Value,
}

impl Object<'_> {
    fn is(&self, group: &str, kind: &str) -> bool {
        self.doc.group() == group && self.doc.kind() == kind
    }

    fn namespace(&self) -> &str {
        self.doc.namespace().unwrap_or("default")
    }

    fn name(&self) -> &str {
        self.doc.name()
    }

    fn str_at(&self, pointer: &str) -> Option<&str> {
        self.value.pointer(pointer).and_then(Value::as_str)
    }

    fn annotation(&self, key: &str) -> Option<&str> {
        self.value
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
    }
}

/// A HelmRelease, with what the rules ask of it.
pub struct Release<'a> {
    pub object: &'a Object<'a>,
    /// `spec.chart.spec.chart`
    pub chart: &'a str,
    /// `spec.chart.spec.version`
    pub version: &'a str,
    /// `spec.valuesFrom` (as far as the tree holds them), then `spec.values`.
    pub values: Value,
}

impl Release<'_> {
    /// The Helm release name: `spec.releaseName`, else the object's name.
    fn release_name(&self) -> &str {
        self.object
            .str_at("/spec/releaseName")
            .unwrap_or_else(|| self.object.name())
    }

    /// The namespace the chart installs into: `spec.targetNamespace`, else the object's.
    fn target_namespace(&self) -> &str {
        self.object
            .str_at("/spec/targetNamespace")
            .unwrap_or_else(|| self.object.namespace())
    }

    /// The chart version's `(major, minor)`, when it is a plain version.
    fn major_minor(&self) -> Option<(u64, u64)> {
        major_minor(self.version)
    }

    fn value(&self, pointer: &str) -> Option<&Value> {
        self.values.pointer(pointer)
    }

    /// A boolean value, `default` when unset (as the chart's values.yaml would give it).
    fn flag(&self, pointer: &str, default: bool) -> bool {
        self.value(pointer)
            .and_then(Value::as_bool)
            .unwrap_or(default)
    }
}

/// The tree as the cluster receives it.
pub struct Tree<'a> {
    objects: Vec<Object<'a>>,
}

impl<'a> Tree<'a> {
    pub fn new(objects: Vec<Object<'a>>) -> Self {
        Tree { objects }
    }

    fn objects(&self) -> impl Iterator<Item = &Object<'a>> {
        self.objects.iter()
    }

    fn of_kind<'s>(
        &'s self,
        group: &'s str,
        kind: &'s str,
    ) -> impl Iterator<Item = &'s Object<'a>> + 's {
        self.objects.iter().filter(move |o| o.is(group, kind))
    }

    fn releases(&self) -> impl Iterator<Item = Release<'_>> {
        self.of_kind("helm.toolkit.fluxcd.io", "HelmRelease")
            .map(|object| Release {
                object,
                chart: object.str_at("/spec/chart/spec/chart").unwrap_or(""),
                version: object.str_at("/spec/chart/spec/version").unwrap_or(""),
                values: values::effective(&self.objects, object),
            })
    }

    /// The releases of chart `chart`.
    fn releases_of<'s>(&'s self, chart: &'s str) -> impl Iterator<Item = Release<'s>> + 's {
        self.releases().filter(move |r| r.chart == chart)
    }
}

/// Run every rule over `tree`.
pub fn check(tree: &Tree<'_>, findings: &mut Vec<Finding>) {
    let mut out = Findings { findings };
    ingress::check(tree, &mut out);
    certificates::check(tree, &mut out);
    tracing::check(tree, &mut out);
    logs::check(tree, &mut out);
    eks::check(tree, &mut out);
    mesh::check(tree, &mut out);
    consoles::check(tree, &mut out);
}

/// Where rules report: each finding is `Check::RealCluster`, its message starting with the rule id.
struct Findings<'f> {
    findings: &'f mut Vec<Finding>,
}

impl Findings<'_> {
    fn report(&mut self, object: &Object<'_>, rule: &Rule, message: impl Into<String>) {
        self.findings.push(Finding {
            file: object.doc.file.clone(),
            line: object.doc.line,
            object: Some(object.doc.id()),
            check: Check::RealCluster,
            message: format!("{}: {} (source: {})", rule.id, message.into(), rule.source),
        });
    }
}

/// `(major, minor)` of `1.30.3`, `v1.35.0`, `4.1.0`.
fn major_minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.trim_start_matches('v').split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Every string under a key named `key`, anywhere in `value` (e.g. every container `image`).
fn strings_under<'v>(value: &'v Value, key: &str, out: &mut Vec<&'v str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s) if k == key => out.push(s),
                    _ => strings_under(v, key, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| strings_under(v, key, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_split_into_major_and_minor() {
        assert_eq!(major_minor("1.30.3"), Some((1, 30)));
        assert_eq!(major_minor("v1.35.0"), Some((1, 35)));
        assert_eq!(major_minor("4.1.0"), Some((4, 1)));
        assert_eq!(major_minor(">=4.0.0"), None);
    }

    #[test]
    fn rule_ids_are_unique_and_every_rule_cites_a_source() {
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len());
        for rule in RULES {
            assert!(
                !rule.summary.is_empty() && rule.source.len() > 10,
                "{rule:?}"
            );
        }
    }
}
