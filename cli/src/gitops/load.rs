//! Reading the tree: every `*.yaml` / `*.yml` file, split into documents, each parsed on its own
//! so a finding can name the object it is about.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::report::{Check, Finding, ObjectId};

/// One YAML document of one file.
#[derive(Debug, Clone)]
pub struct Doc {
    /// Path relative to the linted directory, with `/` separators (stable in messages).
    pub file: String,
    /// Absolute path of the file.
    pub path: PathBuf,
    /// 1-based line where the document starts.
    pub line: usize,
    /// The document's text, as written (variables unsubstituted).
    pub text: String,
    /// The parsed document (never `Null`: empty documents are dropped).
    pub value: Value,
}

impl Doc {
    pub fn api_version(&self) -> &str {
        self.value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    pub fn group(&self) -> &str {
        match self.api_version().rsplit_once('/') {
            Some((group, _)) => group,
            None => "",
        }
    }

    pub fn name(&self) -> &str {
        self.value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn namespace(&self) -> Option<&str> {
        self.value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }

    /// Is this a kustomize build file (`kustomization.yaml`) rather than a cluster object?
    pub fn is_kustomize_config(&self) -> bool {
        self.group() == "kustomize.config.k8s.io"
    }

    pub fn id(&self) -> ObjectId {
        ObjectId {
            kind: if self.kind().is_empty() {
                "(no kind)".to_owned()
            } else {
                self.kind().to_owned()
            },
            namespace: self.namespace().map(str::to_owned),
            name: if self.name().is_empty() {
                "(no name)".to_owned()
            } else {
                self.name().to_owned()
            },
        }
    }
}

/// Every YAML file under `dir`, sorted, skipping hidden directories.
pub fn yaml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current)? {
            let entry = entry?;
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                if !hidden {
                    stack.push(path);
                }
            } else if is_yaml(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

pub fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml") | Some("yml")
    )
}

/// Split a file into its documents: `(first line, text)`. A line that is `---` (optionally followed
/// by a space and content, as YAML allows) starts a new document.
pub fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut start = 1;
    let mut current = String::new();
    for (index, line) in text.lines().enumerate() {
        let is_separator = line
            .strip_prefix("---")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace));
        if is_separator {
            docs.push((start, std::mem::take(&mut current)));
            start = index + 2;
            let rest = line.trim_start_matches("---").trim();
            if !rest.is_empty() {
                current.push_str(rest);
                current.push('\n');
            }
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs.push((start, current));
    docs
}

/// Parse one document; `Ok(None)` for an empty one (only comments or whitespace).
pub fn parse_document(text: &str) -> Result<Option<Value>, String> {
    let value: Value = serde_yaml_ng::from_str(text).map_err(|err| err.to_string())?;
    Ok(if value.is_null() { None } else { Some(value) })
}

/// Load the file's documents; parse failures become findings (the file's other documents still
/// load).
pub fn load_file(dir: &Path, path: &Path, findings: &mut Vec<Finding>) -> Vec<Doc> {
    let file = relative(dir, path);
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => {
            findings.push(Finding {
                file,
                line: 0,
                object: None,
                check: Check::Parse,
                message: format!("cannot read the file: {err}"),
            });
            return Vec::new();
        }
    };
    let mut docs = Vec::new();
    for (line, chunk) in split_documents(&text) {
        // Pad with the preceding lines so parser errors carry the file's line numbers.
        let padded = format!("{}{chunk}", "\n".repeat(line.saturating_sub(1)));
        match parse_document(&padded) {
            Ok(Some(value)) => {
                if !value.is_object() {
                    findings.push(Finding {
                        file: file.clone(),
                        line: 0,
                        object: None,
                        check: Check::Parse,
                        message: format!(
                            "the document at line {line} is not a mapping (a Kubernetes object)"
                        ),
                    });
                    continue;
                }
                docs.push(Doc {
                    file: file.clone(),
                    path: path.to_path_buf(),
                    line,
                    text: chunk,
                    value,
                });
            }
            Ok(None) => {}
            Err(err) => findings.push(Finding {
                file: file.clone(),
                line,
                object: guess_object(&chunk),
                check: Check::Parse,
                message: format!("the document at line {line} does not parse as YAML: {err}"),
            }),
        }
    }
    docs
}

/// Best effort for a document that does not parse: its top-level `kind` and `metadata.name` /
/// `metadata.namespace`, read line by line, so the finding can still name the object.
fn guess_object(text: &str) -> Option<ObjectId> {
    let mut kind = None;
    let mut name = None;
    let mut namespace = None;
    let mut in_metadata = false;
    for line in text.lines() {
        let unquote = |v: &str| v.trim().trim_matches(|c| c == '"' || c == '\'').to_owned();
        if let Some(v) = line.strip_prefix("kind:") {
            kind = Some(unquote(v));
        }
        if !line.starts_with(' ') && !line.is_empty() {
            in_metadata = line.starts_with("metadata:");
        } else if in_metadata {
            if let Some(v) = line.strip_prefix("  name:") {
                name = Some(unquote(v));
            } else if let Some(v) = line.strip_prefix("  namespace:") {
                namespace = Some(unquote(v));
            }
        }
    }
    Some(ObjectId {
        kind: kind?,
        namespace,
        name: name?,
    })
}

/// `path` relative to `base`, `/`-separated; the full path when it is not below `base`.
pub fn relative(base: &Path, path: &Path) -> String {
    let Ok(rel) = path.strip_prefix(base) else {
        return path.display().to_string();
    };
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
