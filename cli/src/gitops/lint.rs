//! `labflow gitops lint`: run every check over a tree and collect the findings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::coverage::reach;
use super::flux;
use super::load::{load_file, parse_document, relative, yaml_files, Doc};
use super::real_cluster;
use super::report::{Check, Finding, LintReport, ObjectId};
use super::schema::{CrdError, CrdSet, Lookup};
use super::subst::substitute;
use super::vars::{self, CLUSTER_VARS_CONFIGMAP};

#[derive(Debug, thiserror::Error)]
pub enum LintError {
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Crds(#[from] CrdError),
}

/// The repository a tree belongs to: the nearest ancestor (or `dir` itself) holding `.git`; `dir`
/// when there is none. Kustomization paths are relative to it, as in the Flux source artifact.
pub fn find_repo_root(dir: &Path) -> PathBuf {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    absolute
        .ancestors()
        .find(|a| a.join(".git").exists())
        .map(Path::to_path_buf)
        .unwrap_or(absolute)
}

/// Lint the tree at `dir` (repository root found with [`find_repo_root`]) against the CRDs in
/// `crds` (the verified cache `make crds` fills).
pub fn lint(dir: &Path, crds: &Path) -> Result<LintReport, LintError> {
    lint_with_root(dir, &find_repo_root(dir), crds)
}

/// As [`lint`], with Kustomization paths resolved against `repo_root`.
pub fn lint_with_root(dir: &Path, repo_root: &Path, crds: &Path) -> Result<LintReport, LintError> {
    if !dir.is_dir() {
        return Err(LintError::NotADirectory(dir.to_path_buf()));
    }
    let mut crds = CrdSet::load(crds)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LintError::Io { path, source }
    };
    let dir = std::path::absolute(dir).map_err(io(dir))?;
    let repo_root = std::path::absolute(repo_root).map_err(io(repo_root))?;

    let mut report = LintReport::default();
    let mut findings = Vec::new();
    let files = yaml_files(&dir).map_err(io(&dir))?;
    report.files = files.len();
    let docs: Vec<Doc> = files
        .iter()
        .flat_map(|f| load_file(&dir, f, &mut findings))
        .collect();
    let objects: Vec<&Doc> = docs.iter().filter(|d| !d.is_kustomize_config()).collect();
    report.objects = objects.len();

    for doc in &objects {
        check_shape(doc, &mut findings);
    }
    let index = flux::build_index(&objects);
    let coverage = check_flux(&dir, &repo_root, &objects, &index, &mut findings);
    let mut substituted = Vec::with_capacity(objects.len());
    for doc in &objects {
        let (validated, value) = substitute_and_validate(doc, &coverage, &mut crds, &mut findings)?;
        if validated {
            report.schema_validated += 1;
        }
        substituted.push(real_cluster::Object {
            doc,
            value: value.unwrap_or_else(|| doc.value.clone()),
        });
    }
    real_cluster::check(&real_cluster::Tree::new(substituted), &mut findings);

    findings.sort();
    findings.dedup();
    report.findings = findings;
    Ok(report)
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

/// apiVersion, kind, metadata.name present; apiVersion not removed.
fn check_shape(doc: &Doc, findings: &mut Vec<Finding>) {
    for (field, present) in [
        ("apiVersion", !doc.api_version().is_empty()),
        ("kind", !doc.kind().is_empty()),
        ("metadata.name", !doc.name().is_empty()),
    ] {
        if !present {
            findings.push(finding(doc, Check::Parse, format!("{field} is missing")));
        }
    }
    if let Some((since, instead)) = super::apis::removed(doc.api_version()) {
        findings.push(finding(
            doc,
            Check::RemovedApi,
            format!(
                "apiVersion {} was removed in {since}; use {instead}",
                doc.api_version()
            ),
        ));
    }
}

/// A Kustomization applying a file, with the variables it substitutes (`None`: no postBuild).
type Applier = (ObjectId, Option<BTreeMap<String, String>>);

/// How one file is applied: by which Kustomizations, and which variables each substitutes.
#[derive(Debug, Default)]
struct Coverage {
    /// file -> for each Kustomization applying it: `None` (no postBuild) or its variable names.
    files: BTreeMap<PathBuf, Vec<Applier>>,
}

/// Entry points, Kustomization checks, HelmRelease checks, dependsOn cycles; returns which
/// Kustomization applies which file.
fn check_flux(
    dir: &Path,
    repo_root: &Path,
    objects: &[&Doc],
    index: &flux::Index,
    findings: &mut Vec<Finding>,
) -> Coverage {
    let mut coverage = Coverage::default();

    // The root Kustomization flux-bootstrap creates points at clusters/<env>; it has no postBuild.
    let clusters = dir.join("clusters");
    let envs: Vec<PathBuf> = std::fs::read_dir(&clusters)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    if envs.is_empty() {
        findings.push(Finding {
            file: "clusters".into(),
            line: 0,
            object: None,
            check: Check::Layout,
            message: "no clusters/<env>/ entry point (flux-bootstrap points the root Kustomization at one)".into(),
        });
    }
    let bootstrap_root = ObjectId {
        kind: "Kustomization".into(),
        namespace: Some("flux-system".into()),
        name: "flux-system".into(),
    };
    for env in &envs {
        for file in reach(env, dir, findings) {
            coverage
                .files
                .entry(file)
                .or_default()
                .push((bootstrap_root.clone(), None));
        }
    }

    let mut ks_graph = BTreeMap::new();
    let mut hr_graph = BTreeMap::new();
    for doc in objects {
        let node = format!("{}/{}", flux::namespace_of(doc), doc.name());
        match (doc.group(), doc.kind()) {
            ("kustomize.toolkit.fluxcd.io", "Kustomization") => {
                let deps = flux::check_kustomization(doc, index, findings);
                ks_graph.insert(node, (doc.id(), doc.file.clone(), doc.line, deps));
                if let Some(path) = check_path(doc, repo_root, findings) {
                    let vars = provided_vars(doc, objects);
                    for file in reach(&path, dir, findings) {
                        coverage
                            .files
                            .entry(file)
                            .or_default()
                            .push((doc.id(), vars.clone()));
                    }
                }
            }
            ("helm.toolkit.fluxcd.io", "HelmRelease") => {
                let deps = flux::check_helmrelease(doc, index, findings);
                hr_graph.insert(node, (doc.id(), doc.file.clone(), doc.line, deps));
            }
            ("source.toolkit.fluxcd.io", "OCIRepository") => {
                flux::check_oci_repository(doc, findings);
            }
            _ => {}
        }
    }
    flux::find_cycles(&ks_graph, findings);
    flux::find_cycles(&hr_graph, findings);
    coverage
}

/// `spec.path` must name a directory inside the repository; returns it.
fn check_path(doc: &Doc, repo_root: &Path, findings: &mut Vec<Finding>) -> Option<PathBuf> {
    let raw = doc
        .value
        .pointer("/spec/path")
        .and_then(Value::as_str)
        .unwrap_or("./");
    let target = repo_root.join(raw.trim_start_matches("./"));
    let inside = match (target.canonicalize(), repo_root.canonicalize()) {
        (Ok(t), Ok(root)) => t.starts_with(root),
        _ => false,
    };
    if !target.is_dir() || !inside {
        findings.push(finding(
            doc,
            Check::Path,
            format!(
                "spec.path `{raw}` does not exist in the repository ({})",
                repo_root.display()
            ),
        ));
        return None;
    }
    Some(target)
}

/// The variables a Kustomization substitutes, with the lint's sample values; `None` without
/// postBuild.
fn provided_vars(doc: &Doc, objects: &[&Doc]) -> Option<BTreeMap<String, String>> {
    let post = doc.value.pointer("/spec/postBuild")?;
    let mut vars = BTreeMap::new();
    if let Some(from) = post.get("substituteFrom").and_then(Value::as_array) {
        for source in from {
            let kind = source.get("kind").and_then(Value::as_str).unwrap_or("");
            let name = source.get("name").and_then(Value::as_str).unwrap_or("");
            if kind == "ConfigMap" && name == CLUSTER_VARS_CONFIGMAP {
                for var in vars::CLUSTER_VARS {
                    vars.insert(var.name.to_owned(), var.sample.to_owned());
                }
                continue;
            }
            // A ConfigMap/Secret defined in the tree: its data keys (values as written).
            let ns = flux::namespace_of(doc);
            let defined = objects
                .iter()
                .find(|o| o.kind() == kind && o.name() == name && flux::namespace_of(o) == ns);
            if let Some(data) = defined.and_then(|o| {
                o.value
                    .get("data")
                    .or_else(|| o.value.get("stringData"))
                    .and_then(Value::as_object)
            }) {
                for (key, value) in data {
                    let sample = value.as_str().unwrap_or("sample").to_owned();
                    vars.insert(key.clone(), sample);
                }
            }
        }
    }
    // Inline `substitute` wins over substituteFrom, as in Flux.
    if let Some(inline) = post.get("substitute").and_then(Value::as_object) {
        for (key, value) in inline {
            vars.insert(key.clone(), value.as_str().unwrap_or("").to_owned());
        }
    }
    Some(vars)
}

/// Check the document's variables under every Kustomization that applies it, then validate the
/// substituted object against its CRD. Returns whether a schema validation ran, and the object as
/// the cluster receives it (the first substituted variant that parses).
fn substitute_and_validate(
    doc: &Doc,
    coverage: &Coverage,
    crds: &mut CrdSet,
    findings: &mut Vec<Finding>,
) -> Result<(bool, Option<Value>), LintError> {
    let appliers = coverage
        .files
        .get(&doc.path)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if appliers.is_empty() {
        findings.push(finding(
            doc,
            Check::Layout,
            "no Kustomization applies this file (it is not reached from clusters/<env>/)".into(),
        ));
    }
    let disabled = doc
        .value
        .pointer("/metadata/annotations/kustomize.toolkit.fluxcd.io~1substitute")
        .and_then(Value::as_str)
        == Some("disabled");

    // Substituted texts to validate: one per distinct variable set (usually exactly one).
    let mut variants: Vec<String> = Vec::new();
    let no_vars = BTreeMap::new();
    for (applier, vars) in appliers {
        let (vars, substituting) = match vars {
            Some(vars) if !disabled => (vars, true),
            _ => (&no_vars, false),
        };
        let result = substitute(&doc.text, |name| vars.get(name).map(String::as_str));
        if substituting {
            for name in &result.unknown {
                findings.push(finding(
                    doc,
                    Check::Variable,
                    format!(
                        "${{{name}}} is not a cluster variable (applied by {applier}, which provides: {})",
                        vars.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            for expr in &result.malformed {
                findings.push(finding(
                    doc,
                    Check::Variable,
                    format!("`{expr}` is not a valid Flux variable expression"),
                ));
            }
            variants.push(result.text);
        } else {
            for name in &result.used {
                findings.push(finding(
                    doc,
                    Check::Variable,
                    format!("${{{name}}} is never substituted: {applier} has no postBuild substitution (or it is disabled)"),
                ));
            }
            variants.push(doc.text.clone());
        }
    }
    if variants.is_empty() {
        variants.push(doc.text.clone());
    }
    let variants: BTreeSet<String> = variants.into_iter().collect();

    let group = doc.group();
    let covered = crds.covers_group(group);
    let version = doc.api_version().rsplit_once('/').map_or("", |(_, v)| v);
    let mut applied = None;
    for text in &variants {
        let value = match parse_document(text) {
            Ok(Some(value)) => {
                applied.get_or_insert_with(|| value.clone());
                value
            }
            Ok(None) => continue,
            Err(err) => {
                findings.push(finding(
                    doc,
                    Check::Parse,
                    format!(
                        "does not parse after substituting the sample cluster variables: {err}"
                    ),
                ));
                continue;
            }
        };
        if !covered || super::apis::removed(doc.api_version()).is_some() {
            continue;
        }
        match crds.validate(group, version, doc.kind(), &value)? {
            Ok(messages) => {
                for message in messages.into_iter().take(20) {
                    findings.push(finding(
                        doc,
                        Check::Schema,
                        format!(
                            "does not match the {} CRD schema {message}",
                            doc.api_version()
                        ),
                    ));
                }
            }
            Err(Lookup::VersionNotServed { served }) => findings.push(finding(
                doc,
                Check::Schema,
                format!(
                    "apiVersion {} is not served by the pinned CRDs (served: {})",
                    doc.api_version(),
                    served.join(", ")
                ),
            )),
            Err(Lookup::UnknownKind) => findings.push(finding(
                doc,
                Check::Schema,
                format!("the pinned CRDs define no kind {} in {group}", doc.kind()),
            )),
        }
    }
    Ok((covered, applied))
}

/// Display helper for the CLI: `path` relative to the current directory when possible.
pub fn display_path(path: &Path) -> String {
    std::env::current_dir()
        .map(|cwd| relative(&cwd, path))
        .unwrap_or_else(|_| path.display().to_string())
}
