//! The ClusterRole flux-bootstrap gives health-check reads every kind the lab's GitOps tree
//! applies (health-check lists each one) and no Secret (issue 26 item 7).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use labflow_core::reader;
use serde::Deserialize as _;

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            yaml_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    Ok(())
}

#[test]
fn the_reader_role_covers_every_kind_of_the_gitops_tree_and_no_secret() -> anyhow::Result<()> {
    let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/gitops");
    let mut files = Vec::new();
    yaml_files(&tree, &mut files)?;
    let mut kinds = std::collections::BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file)?;
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = serde_json::Value::deserialize(doc)
                .with_context(|| format!("parsing {}", file.display()))?;
            let (Some(api_version), Some(kind)) =
                (value["apiVersion"].as_str(), value["kind"].as_str())
            else {
                continue;
            };
            // kustomization.yaml files are read by kustomize, not applied.
            if api_version.starts_with("kustomize.config.k8s.io/") {
                continue;
            }
            let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
            kinds.insert((group.to_string(), kind.to_string()));
        }
    }
    assert!(kinds.len() > 10, "the tree was read: {kinds:?}");
    for (group, kind) in &kinds {
        // Core kinds of the tree are all regular plurals (Namespace, Service, ServiceAccount).
        let plural = format!("{}s", kind.to_lowercase());
        assert!(
            reader::may_read(group, &plural),
            "health-check could not list {kind} ({group:?}): add it to labflow-core reader.rs"
        );
    }
    assert!(!reader::may_read("", "secrets"));
    let role = reader::cluster_role();
    let rules = role["rules"].as_array().context("rules")?;
    for rule in rules {
        assert_eq!(rule["verbs"], serde_json::json!(["get", "list", "watch"]));
        let groups = rule["apiGroups"].as_array().context("apiGroups")?;
        assert!(!groups.contains(&serde_json::json!("*")), "{rule}");
        if groups.contains(&serde_json::json!("")) {
            assert!(
                !rule["resources"]
                    .as_array()
                    .context("resources")?
                    .iter()
                    .any(|r| r == "secrets" || r == "*"),
                "{rule}"
            );
        }
    }
    Ok(())
}
