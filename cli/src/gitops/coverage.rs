//! Which files a Flux Kustomization applies: kustomize's view of a directory. With a
//! `kustomization.yaml`, its `resources` (files and directories, recursively); without one, every
//! manifest below the directory (what kustomize-controller generates).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::load::{is_yaml, parse_document, relative, yaml_files};
use super::report::{Check, Finding};

const KUSTOMIZE_FILES: &[&str] = &["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The manifest files applied for `dir`. Missing `resources` entries become findings, reported
/// against the kustomization file relative to `lint_dir`.
pub fn reach(dir: &Path, lint_dir: &Path, findings: &mut Vec<Finding>) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut visiting = BTreeSet::new();
    reach_into(dir, lint_dir, findings, &mut out, &mut visiting);
    out
}

fn reach_into(
    dir: &Path,
    lint_dir: &Path,
    findings: &mut Vec<Finding>,
    out: &mut BTreeSet<PathBuf>,
    visiting: &mut BTreeSet<PathBuf>,
) {
    if !visiting.insert(dir.to_path_buf()) {
        return;
    }
    let Some(config) = KUSTOMIZE_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
    else {
        if let Ok(files) = yaml_files(dir) {
            out.extend(files);
        }
        return;
    };
    let file = relative(lint_dir, &config);
    let parsed = std::fs::read_to_string(&config)
        .map_err(|e| e.to_string())
        .and_then(|text| parse_document(&text));
    let value = match parsed {
        Ok(Some(value)) => value,
        // An unreadable/unparsable file is already reported by the loader.
        Ok(None) | Err(_) => return,
    };
    let entries = ["resources", "components"]
        .iter()
        .filter_map(|key| value.get(*key).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str);
    for entry in entries {
        if entry.contains("://") || entry.starts_with("github.com/") {
            // Remote bases are fetched by kustomize at build time; nothing to check locally.
            continue;
        }
        let target = dir.join(entry);
        if target.is_dir() {
            reach_into(&target, lint_dir, findings, out, visiting);
        } else if target.is_file() {
            if is_yaml(&target) {
                out.insert(target);
            }
        } else {
            findings.push(Finding {
                file: file.clone(),
                line: 0,
                object: None,
                check: Check::Path,
                message: format!("resources entry `{entry}` does not exist"),
            });
        }
    }
}
