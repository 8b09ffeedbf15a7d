//! The objects that point Flux at the environment: the Git credentials Secret, the GitRepository,
//! the root Kustomization and the cluster-variables ConfigMap. Pure builders.

use std::collections::BTreeMap;

use base64::Engine;
use labflow_core::config::EnvironmentConfig;
use labflow_core::flux::{self, cluster_vars};
use serde_json::{json, Value};

use crate::credential::GitCredential;

/// The `flux-system` Secret with the keys source-controller reads for the credential's transport
/// (fluxcd/pkg `git/options.go`): `username`/`password` for a token over HTTPS, `identity` and
/// `known_hosts` for a deploy key over SSH. It holds the secret: it is only ever sent to the API
/// server, never logged or returned.
pub fn git_secret(credential: &GitCredential) -> Value {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let data = match credential {
        GitCredential::Token(token) => json!({"username": b64("git"), "password": b64(token)}),
        GitCredential::DeployKey {
            identity,
            known_hosts,
        } => json!({"identity": b64(identity), "known_hosts": b64(known_hosts)}),
    };
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": flux::BOOTSTRAP_NAME, "namespace": flux::NAMESPACE},
        "type": "Opaque",
        "data": data
    })
}

pub fn git_repository(config: &EnvironmentConfig) -> Value {
    let repo = &config.flux.repository;
    json!({
        "apiVersion": format!("{}/{}", flux::SOURCE_GROUP, flux::SOURCE_VERSION),
        "kind": "GitRepository",
        "metadata": {"name": flux::BOOTSTRAP_NAME, "namespace": flux::NAMESPACE},
        "spec": {
            "interval": repo.interval,
            "url": repo.url,
            "ref": {"branch": repo.branch},
            "secretRef": {"name": flux::BOOTSTRAP_NAME}
        }
    })
}

pub fn root_kustomization(environment: &str, config: &EnvironmentConfig) -> Value {
    let repo = &config.flux.repository;
    json!({
        "apiVersion": format!("{}/{}", flux::KUSTOMIZE_GROUP, flux::KUSTOMIZE_VERSION),
        "kind": "Kustomization",
        "metadata": {"name": flux::BOOTSTRAP_NAME, "namespace": flux::NAMESPACE},
        "spec": {
            "interval": repo.interval,
            "path": repo.path_for(environment),
            "prune": true,
            "sourceRef": {"kind": "GitRepository", "name": flux::BOOTSTRAP_NAME}
        }
    })
}

pub fn cluster_vars(values: &BTreeMap<String, String>) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": cluster_vars::CONFIGMAP, "namespace": flux::NAMESPACE},
        "data": values
    })
}

/// Add labflow's ownership label to an object (DESIGN.md §4).
pub fn label_owned(obj: &mut Value) {
    let (key, value) = labflow_core::ownership::MANAGED_BY_LABEL;
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    let metadata = &mut obj["metadata"];
    if !metadata.get("labels").is_some_and(Value::is_object) {
        metadata["labels"] = json!({});
    }
    metadata["labels"][key] = json!(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> EnvironmentConfig {
        let json = labflow_testkit::config::example_config_json();
        labflow_core::config::parse("lab", &json).expect("example config is valid")
    }

    #[test]
    fn git_secret_holds_token_auth() {
        let secret = git_secret(&GitCredential::Token("ghp_example".into()));
        assert_eq!(secret["data"]["username"], "Z2l0");
        let password = secret["data"]["password"].as_str().unwrap_or_default();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(password)
            .expect("base64");
        assert_eq!(decoded, b"ghp_example");
    }

    #[test]
    fn repository_and_root_kustomization_follow_the_config() {
        let config = example();
        let repo = git_repository(&config);
        assert_eq!(repo["spec"]["url"], "https://github.com/example/labflow");
        assert_eq!(repo["spec"]["ref"]["branch"], "main");
        assert_eq!(repo["spec"]["secretRef"]["name"], "flux-system");
        let root = root_kustomization("lab", &config);
        assert_eq!(root["spec"]["path"], "./infra/gitops/clusters/lab");
        assert_eq!(root["spec"]["prune"], true);
        assert_eq!(root["spec"]["sourceRef"]["name"], "flux-system");
        assert_eq!(root["apiVersion"], "kustomize.toolkit.fluxcd.io/v1");
    }

    #[test]
    fn ownership_label_is_added_without_losing_labels() {
        let mut obj = json!({"metadata": {"name": "x", "labels": {"a": "b"}}});
        label_owned(&mut obj);
        assert_eq!(obj["metadata"]["labels"]["a"], "b");
        assert_eq!(
            obj["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "labflow"
        );
    }
}
