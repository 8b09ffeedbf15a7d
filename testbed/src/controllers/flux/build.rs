//! `kustomize build` as kustomize-controller runs it on a source artifact, for the subset of
//! kustomize a lab GitOps tree uses: `resources` (files and nested directories), `namespace`,
//! `commonLabels`/`labels`; a directory without a kustomization file gets one generated with
//! every manifest in it (sub-directories with their own kustomization file become resources),
//! as kustomize-controller does. Other kustomize features are refused with a build error rather
//! than silently ignored. Post-build substitution (`${VAR}`) is applied to every document whose
//! object is not annotated/labelled `kustomize.toolkit.fluxcd.io/substitute: disabled`.

use super::super::git::{GitError, Snapshots};
use super::substitute::substitute;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
const UNSUPPORTED: [&str; 14] = [
    "patches",
    "patchesStrategicMerge",
    "patchesJson6902",
    "configMapGenerator",
    "secretGenerator",
    "components",
    "helmCharts",
    "images",
    "replicas",
    "namePrefix",
    "nameSuffix",
    "replacements",
    "generators",
    "transformers",
];

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("kustomization path not found: {0}: no such file or directory")]
    PathNotFound(String),
    #[error("{0}: {1}")]
    Invalid(String, String),
    #[error("{file}: `{field}` is not supported by the testbed's kustomize simulation")]
    Unsupported { file: String, field: String },
}

/// One commit of one repository.
pub struct Tree<'a> {
    pub snapshots: &'a Snapshots,
    pub dir: &'a Path,
    pub sha: &'a str,
    files: Arc<BTreeSet<String>>,
}

/// Settings for one build.
pub struct BuildInput<'a> {
    /// Post-build variables; None: no substitution.
    pub vars: Option<&'a HashMap<String, String>>,
    /// Whether a kind is namespaced (for the `namespace` transformer).
    pub namespaced: &'a dyn Fn(&str, &str) -> bool,
}

fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn join(dir: &str, rel: &str) -> String {
    if dir.is_empty() {
        normalize(rel)
    } else {
        normalize(&format!("{dir}/{rel}"))
    }
}

fn is_yaml(path: &str) -> bool {
    path.ends_with(".yaml") || path.ends_with(".yml")
}

/// Splits a multi-document YAML file at `---` lines.
fn split_documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") {
            docs.push(String::new());
            continue;
        }
        if let Some(last) = docs.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    docs
}

fn substitution_disabled(obj: &Value) -> bool {
    let key = "kustomize.toolkit.fluxcd.io/substitute";
    ["annotations", "labels"].iter().any(|m| {
        obj.pointer(&format!("/metadata/{m}"))
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
            == Some("disabled")
    })
}

impl<'a> Tree<'a> {
    pub fn open(snapshots: &'a Snapshots, dir: &'a Path, sha: &'a str) -> Result<Self, BuildError> {
        let files = snapshots.files(dir, sha)?;
        Ok(Tree {
            snapshots,
            dir,
            sha,
            files,
        })
    }

    fn is_dir(&self, path: &str) -> bool {
        path.is_empty() || {
            let prefix = format!("{path}/");
            self.files
                .range(prefix.clone()..)
                .next()
                .is_some_and(|f| f.starts_with(&prefix))
        }
    }

    fn is_file(&self, path: &str) -> bool {
        self.files.contains(path)
    }

    fn kustomization_file(&self, dir: &str) -> Option<String> {
        KUSTOMIZATION_FILES
            .iter()
            .map(|f| join(dir, f))
            .find(|p| self.is_file(p))
    }

    /// The manifests `kustomize build <path>` yields, substituted.
    pub fn build(&self, path: &str, input: &BuildInput<'_>) -> Result<Vec<Value>, BuildError> {
        let path = normalize(path);
        if !self.is_dir(&path) {
            return Err(BuildError::PathNotFound(path));
        }
        match self.kustomization_file(&path) {
            Some(file) => self.build_kustomization(&path, &file, input),
            None => self.build_generated(&path, input),
        }
    }

    /// What kustomize-controller generates for a directory without a kustomization file.
    fn build_generated(&self, dir: &str, input: &BuildInput<'_>) -> Result<Vec<Value>, BuildError> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut out = Vec::new();
        let mut nested: BTreeSet<String> = BTreeSet::new();
        for file in self.files.iter().filter(|f| f.starts_with(&prefix)) {
            let rel = &file[prefix.len()..];
            // The shallowest sub-directory of this file that has its own kustomization file.
            let mut owner = None;
            let segments: Vec<&str> = rel.split('/').collect();
            for depth in 1..segments.len() {
                let sub = join(dir, &segments[..depth].join("/"));
                if self.kustomization_file(&sub).is_some() {
                    owner = Some(sub);
                    break;
                }
            }
            match owner {
                Some(sub) => {
                    nested.insert(sub);
                }
                None if is_yaml(file) => {
                    for doc in self.read_documents(file, input)? {
                        // kustomize-controller includes only Kubernetes manifests.
                        if doc.get("apiVersion").is_some() && doc.get("kind").is_some() {
                            out.push(doc);
                        }
                    }
                }
                None => {}
            }
        }
        for sub in nested {
            out.extend(self.build(&sub, input)?);
        }
        Ok(out)
    }

    fn read_documents(&self, file: &str, input: &BuildInput<'_>) -> Result<Vec<Value>, BuildError> {
        let text = self.snapshots.read(self.dir, self.sha, file)?;
        let mut out = Vec::new();
        for raw in split_documents(&text) {
            let parsed: Value = serde_yaml_ng::from_str(&raw)
                .map_err(|e| BuildError::Invalid(file.to_string(), e.to_string()))?;
            if parsed.is_null() {
                continue;
            }
            let value = match input.vars {
                Some(vars) if !substitution_disabled(&parsed) && raw.contains("${") => {
                    let text = substitute(&raw, vars);
                    serde_yaml_ng::from_str(&text).map_err(|e| {
                        BuildError::Invalid(file.to_string(), format!("after substitution: {e}"))
                    })?
                }
                _ => parsed,
            };
            match value {
                Value::Object(_) => out.push(value),
                // A `List` kind or stray scalars are not manifests kustomize accepts.
                other => {
                    return Err(BuildError::Invalid(
                        file.to_string(),
                        format!("not a Kubernetes object: {other}"),
                    ))
                }
            }
        }
        Ok(out)
    }

    fn build_kustomization(
        &self,
        dir: &str,
        file: &str,
        input: &BuildInput<'_>,
    ) -> Result<Vec<Value>, BuildError> {
        let text = self.snapshots.read(self.dir, self.sha, file)?;
        let k: Value = serde_yaml_ng::from_str(&text)
            .map_err(|e| BuildError::Invalid(file.to_string(), e.to_string()))?;
        for field in UNSUPPORTED {
            if k.get(field).is_some_and(|v| !v.is_null()) {
                return Err(BuildError::Unsupported {
                    file: file.to_string(),
                    field: field.to_string(),
                });
            }
        }
        let resources: Vec<String> = match k.get("resources") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => Vec::<String>::deserialize(v)
                .map_err(|e| BuildError::Invalid(file.to_string(), format!("resources: {e}")))?,
        };
        let mut out = Vec::new();
        for r in resources {
            if r.contains("://") || r.starts_with("github.com/") {
                return Err(BuildError::Unsupported {
                    file: file.to_string(),
                    field: format!("remote resource {r}"),
                });
            }
            let path = join(dir, &r);
            if self.is_file(&path) {
                out.extend(self.read_documents(&path, input)?);
            } else if self.is_dir(&path) {
                let Some(sub) = self.kustomization_file(&path) else {
                    return Err(BuildError::Invalid(
                        file.to_string(),
                        format!("unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in directory '{path}'"),
                    ));
                };
                out.extend(self.build_kustomization(&path, &sub, input)?);
            } else {
                return Err(BuildError::Invalid(
                    file.to_string(),
                    format!("accumulating resources: '{path}' does not exist"),
                ));
            }
        }
        let mut labels = serde_json::Map::new();
        if let Some(Value::Object(common)) = k.get("commonLabels") {
            labels.extend(common.clone());
        }
        if let Some(Value::Array(list)) = k.get("labels") {
            for entry in list {
                if let Some(Value::Object(pairs)) = entry.get("pairs") {
                    labels.extend(pairs.clone());
                }
            }
        }
        let namespace = k.get("namespace").and_then(Value::as_str);
        for obj in &mut out {
            if let Some(ns) = namespace {
                let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
                let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
                if (input.namespaced)(api_version, kind) {
                    obj["metadata"]["namespace"] = json!(ns);
                }
            }
            for (key, value) in &labels {
                obj["metadata"]["labels"][key] = value.clone();
            }
        }
        Ok(out)
    }
}
