//! Flux object checks: references resolve, dependsOn graphs are acyclic, charts are pinned.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::load::Doc;
use super::report::{Check, Finding, ObjectId};

/// `(kind, namespace, name)` of every object the tree (or flux-bootstrap) defines.
pub type Index = BTreeMap<(String, String, String), String>;

/// Objects that exist without being in the tree: flux-bootstrap creates them.
pub const BOOTSTRAP_OBJECTS: &[(&str, &str, &str)] = &[
    ("GitRepository", "flux-system", "flux-system"),
    ("Kustomization", "flux-system", "flux-system"),
    ("Secret", "flux-system", "flux-system"),
    (
        "ConfigMap",
        "flux-system",
        super::vars::CLUSTER_VARS_CONFIGMAP,
    ),
];

pub fn build_index(docs: &[&Doc]) -> Index {
    let mut index = Index::new();
    for (kind, ns, name) in BOOTSTRAP_OBJECTS {
        index.insert(
            ((*kind).to_owned(), (*ns).to_owned(), (*name).to_owned()),
            "(created by flux-bootstrap)".to_owned(),
        );
    }
    for doc in docs {
        index.insert(
            (
                doc.kind().to_owned(),
                namespace_of(doc).to_owned(),
                doc.name().to_owned(),
            ),
            doc.file.clone(),
        );
    }
    index
}

/// The namespace Flux resolves relative references in.
pub fn namespace_of(doc: &Doc) -> &str {
    doc.namespace().unwrap_or("default")
}

fn finding(doc: &Doc, check: Check, message: String) -> Finding {
    Finding {
        file: doc.file.clone(),
        line: doc.line,
        object: Some(doc.id()),
        check,
        message,
    }
}

/// A `{kind?, name, namespace?}` reference at `pointer`; `kinds` are the kinds Flux accepts there.
fn check_ref(
    doc: &Doc,
    index: &Index,
    reference: &Value,
    field: &str,
    default_kind: Option<&str>,
    kinds: &[&str],
    findings: &mut Vec<Finding>,
) -> Option<(String, String, String)> {
    let name = reference.get("name").and_then(Value::as_str).unwrap_or("");
    let kind = reference
        .get("kind")
        .and_then(Value::as_str)
        .or(default_kind)
        .unwrap_or("");
    let ns = reference
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or_else(|| namespace_of(doc));
    if name.is_empty() {
        findings.push(finding(
            doc,
            Check::Reference,
            format!("{field} has no name"),
        ));
        return None;
    }
    if !kinds.contains(&kind) {
        findings.push(finding(
            doc,
            Check::Reference,
            format!("{field} kind `{kind}` is not one of {}", kinds.join(", ")),
        ));
        return None;
    }
    let key = (kind.to_owned(), ns.to_owned(), name.to_owned());
    if !index.contains_key(&key) {
        findings.push(finding(
            doc,
            Check::Reference,
            format!("{field} {kind} {ns}/{name} does not exist in the tree (nor is it created by flux-bootstrap)"),
        ));
        return None;
    }
    Some(key)
}

/// Kustomization: sourceRef, dependsOn, postBuild.substituteFrom. Returns its dependsOn edges.
pub fn check_kustomization(doc: &Doc, index: &Index, findings: &mut Vec<Finding>) -> Vec<String> {
    let spec = doc.value.get("spec").cloned().unwrap_or(Value::Null);
    match spec.get("sourceRef") {
        Some(source) => {
            check_ref(
                doc,
                index,
                source,
                "spec.sourceRef",
                None,
                &[
                    "GitRepository",
                    "OCIRepository",
                    "Bucket",
                    "ExternalArtifact",
                ],
                findings,
            );
        }
        None => findings.push(finding(
            doc,
            Check::Reference,
            "spec.sourceRef is missing".into(),
        )),
    }
    if let Some(sources) = spec
        .pointer("/postBuild/substituteFrom")
        .and_then(Value::as_array)
    {
        for (i, source) in sources.iter().enumerate() {
            if source.get("optional").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            // substituteFrom is always in the Kustomization's own namespace.
            let mut local = source.clone();
            if let Some(obj) = local.as_object_mut() {
                obj.remove("namespace");
            }
            check_ref(
                doc,
                index,
                &local,
                &format!("spec.postBuild.substituteFrom[{i}]"),
                None,
                &["ConfigMap", "Secret"],
                findings,
            );
        }
    }
    depends_on(doc, index, "Kustomization", findings)
}

/// HelmRelease: chart source, chart version, dependsOn. Returns its dependsOn edges.
pub fn check_helmrelease(doc: &Doc, index: &Index, findings: &mut Vec<Finding>) -> Vec<String> {
    let spec = doc.value.get("spec").cloned().unwrap_or(Value::Null);
    match (spec.pointer("/chart/spec"), spec.get("chartRef")) {
        (Some(chart), None) => {
            if let Some(source) = chart.get("sourceRef") {
                check_ref(
                    doc,
                    index,
                    source,
                    "spec.chart.spec.sourceRef",
                    None,
                    &["HelmRepository", "GitRepository", "Bucket"],
                    findings,
                );
            }
            let chart_name = chart.get("chart").and_then(Value::as_str).unwrap_or("?");
            match chart.get("version").and_then(Value::as_str) {
                Some(version) if is_exact_version(version) => {}
                Some(version) => findings.push(finding(
                    doc,
                    Check::ChartVersion,
                    format!("chart `{chart_name}` version `{version}` is not an exact version (pin X.Y.Z, no ranges or wildcards)"),
                )),
                None => findings.push(finding(
                    doc,
                    Check::ChartVersion,
                    format!("chart `{chart_name}` has no version (Flux would take the latest, `*`)"),
                )),
            }
        }
        (None, Some(chart_ref)) => {
            check_ref(
                doc,
                index,
                chart_ref,
                "spec.chartRef",
                None,
                &["OCIRepository", "HelmChart", "ExternalArtifact"],
                findings,
            );
        }
        (Some(_), Some(_)) => findings.push(finding(
            doc,
            Check::Reference,
            "spec.chart and spec.chartRef are mutually exclusive".into(),
        )),
        (None, None) => findings.push(finding(
            doc,
            Check::Reference,
            "neither spec.chart nor spec.chartRef is set".into(),
        )),
    }
    depends_on(doc, index, "HelmRelease", findings)
}

/// OCIRepository: the artifact must be pinned (exact tag, exact semver or digest).
pub fn check_oci_repository(doc: &Doc, findings: &mut Vec<Finding>) {
    let reference = doc.value.pointer("/spec/ref");
    let get = |key: &str| reference.and_then(|r| r.get(key)).and_then(Value::as_str);
    if get("digest").is_some() {
        return;
    }
    let problem = match (get("semver"), get("tag")) {
        (Some(semver), _) if !is_exact_version(semver) => Some(format!(
            "spec.ref.semver `{semver}` is a range; pin an exact version"
        )),
        (Some(_), _) => None,
        (None, Some(tag)) if !is_exact_version(tag) => {
            Some(format!("spec.ref.tag `{tag}` is not an exact version"))
        }
        (None, Some(_)) => None,
        (None, None) => {
            Some("spec.ref has no tag, semver or digest (Flux would pull `latest`)".to_owned())
        }
    };
    if let Some(message) = problem {
        findings.push(finding(doc, Check::ChartVersion, message));
    }
}

/// `dependsOn` entries of `kind` objects; unresolved ones become findings.
fn depends_on(doc: &Doc, index: &Index, kind: &str, findings: &mut Vec<Finding>) -> Vec<String> {
    let mut edges = Vec::new();
    let deps = doc
        .value
        .pointer("/spec/dependsOn")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, dep) in deps.iter().enumerate() {
        if let Some((_, ns, name)) = check_ref(
            doc,
            index,
            dep,
            &format!("spec.dependsOn[{i}]"),
            Some(kind),
            &[kind],
            findings,
        ) {
            edges.push(format!("{ns}/{name}"));
        }
    }
    edges
}

/// Exact SemVer 2.0 (an optional leading `v`), no ranges, wildcards or `x`.
pub fn is_exact_version(version: &str) -> bool {
    let v = version.strip_prefix('v').unwrap_or(version);
    let (core, _build) = v.split_once('+').unwrap_or((v, ""));
    let (core, pre) = core
        .split_once('-')
        .map_or((core, None), |(c, p)| (c, Some(p)));
    let numeric = |part: &str| {
        !part.is_empty()
            && part.chars().all(|c| c.is_ascii_digit())
            && (part == "0" || !part.starts_with('0'))
    };
    let parts: Vec<&str> = core.split('.').collect();
    let pre_ok = pre.is_none_or(|p| {
        !p.is_empty()
            && p.split('.').all(|id| {
                !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    });
    parts.len() == 3 && parts.iter().all(|p| numeric(p)) && pre_ok
}

/// Report every cycle in a dependsOn graph (`node -> deps`, node = `ns/name`) once.
pub fn find_cycles(
    graph: &BTreeMap<String, (ObjectId, String, usize, Vec<String>)>,
    findings: &mut Vec<Finding>,
) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, (ObjectId, String, usize, Vec<String>)>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
        cycles: &mut Vec<Vec<String>>,
    ) {
        match marks.get(node) {
            Some(Mark::Done) => return,
            Some(Mark::Visiting) => {
                if let Some(start) = stack.iter().position(|n| n == node) {
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(node.to_owned());
                    cycles.push(cycle);
                }
                return;
            }
            None => {}
        }
        marks.insert(node.to_owned(), Mark::Visiting);
        stack.push(node.to_owned());
        if let Some((_, _, _, deps)) = graph.get(node) {
            for dep in deps {
                visit(dep, graph, marks, stack, cycles);
            }
        }
        stack.pop();
        marks.insert(node.to_owned(), Mark::Done);
    }
    let mut marks = BTreeMap::new();
    let mut cycles = Vec::new();
    for node in graph.keys() {
        visit(node, graph, &mut marks, &mut Vec::new(), &mut cycles);
    }
    let mut seen = BTreeSet::new();
    for cycle in cycles {
        let mut members: Vec<&String> = cycle.iter().skip(1).collect();
        members.sort();
        if !seen.insert(members.into_iter().cloned().collect::<Vec<_>>()) {
            continue;
        }
        if let Some((id, file, line, _)) = graph.get(&cycle[0]) {
            findings.push(Finding {
                file: file.clone(),
                line: *line,
                object: Some(id.clone()),
                check: Check::Cycle,
                message: format!("dependsOn cycle: {}", cycle.join(" -> ")),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_exact_version;

    #[test]
    fn exact_versions() {
        for ok in ["1.2.3", "v1.21.1", "0.0.1", "1.0.0-rc.1", "2.0.0+build.5"] {
            assert!(is_exact_version(ok), "{ok}");
        }
        for bad in [
            "1.2",
            "1.2.x",
            "*",
            "^1.2.3",
            "~1.2.3",
            ">=1.0.0",
            "1.2.*",
            "1.x",
            "",
            "latest",
            "01.2.3",
            "1.2.3 - 1.4.0",
        ] {
            assert!(!is_exact_version(bad), "{bad}");
        }
    }
}
