//! The Flux install manifest: download, sha256 check, multi-document YAML, and the split into
//! the two apply stages.

use labflow_core::StepError;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `install.yaml` of Flux 2.7 is about 1 MiB; anything far larger is not what we pinned.
const MAX_MANIFEST_BYTES: usize = 16 * 1024 * 1024;

/// Kinds applied in stage 1 ("cluster definitions"): CRDs so the Flux kinds exist, Namespaces so
/// namespaced objects have a home, and cluster-wide RBAC. ClusterRoleBindings go with the
/// ClusterRoles: they only reference ServiceAccounts by name (which need not exist yet), and the
/// controllers started in stage 2 need them from their first request.
const STAGE_ONE_KINDS: [(&str, &str); 4] = [
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("", "Namespace"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
];

/// Download `url` with `http`. 4xx is a configuration problem; anything else is transient.
pub async fn download(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, StepError> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| StepError::Transient(format!("downloading {url}: {e}")))?;
    let status = response.status();
    if status.is_client_error() {
        return Err(StepError::InvalidInput(format!(
            "downloading {url}: HTTP {status}"
        )));
    }
    if !status.is_success() {
        return Err(StepError::Transient(format!(
            "downloading {url}: HTTP {status}"
        )));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| StepError::Transient(format!("downloading {url}: {e}")))?;
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(StepError::InvalidInput(format!(
            "{url} is {} bytes, more than the {MAX_MANIFEST_BYTES} accepted",
            bytes.len()
        )));
    }
    Ok(bytes.to_vec())
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Refuse anything but the pinned content.
pub fn verify(bytes: &[u8], expected: &str, url: &str) -> Result<(), StepError> {
    let actual = sha256_hex(bytes);
    if actual.eq_ignore_ascii_case(expected.trim()) {
        Ok(())
    } else {
        Err(StepError::InvalidInput(format!(
            "{url} has sha256 {actual}, but flux.manifestSha256 pins {}; nothing was applied",
            expected.trim()
        )))
    }
}

/// Every object of a multi-document YAML stream; empty documents are skipped. Each object must
/// have an apiVersion, a kind and a name.
pub fn parse(bytes: &[u8]) -> Result<Vec<Value>, StepError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| StepError::InvalidInput(format!("install manifest is not UTF-8: {e}")))?;
    let mut objects = Vec::new();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(document).map_err(|e| {
            StepError::InvalidInput(format!("install manifest document {index}: {e}"))
        })?;
        if value.is_null() {
            continue;
        }
        let has = |pointer: &str| {
            value
                .pointer(pointer)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        };
        if !(has("/apiVersion") && has("/kind") && has("/metadata/name")) {
            return Err(StepError::InvalidInput(format!(
                "install manifest document {index} lacks apiVersion, kind or metadata.name"
            )));
        }
        objects.push(value);
    }
    if objects.is_empty() {
        return Err(StepError::InvalidInput(
            "install manifest contains no objects".into(),
        ));
    }
    Ok(objects)
}

/// Whether an object belongs to stage 1.
pub fn is_stage_one(obj: &Value) -> bool {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let (group, _) = labflow_core::flux::resources::split_api_version(api_version);
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    STAGE_ONE_KINDS.contains(&(group, kind))
}

/// (stage 1, stage 2), each in manifest order.
pub fn split(objects: Vec<Value>) -> (Vec<Value>, Vec<Value>) {
    objects.into_iter().partition(is_stage_one)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "---
apiVersion: v1
kind: Namespace
metadata:
  name: flux-system
---
# a comment-only document is skipped
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gitrepositories.source.toolkit.fluxcd.io
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: source-controller
  namespace: flux-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: cluster-reconciler-flux-system
";

    #[test]
    fn parses_and_splits_into_stages() {
        let objects = parse(MANIFEST.as_bytes()).expect("valid manifest");
        assert_eq!(objects.len(), 4);
        let (one, two) = split(objects);
        let kinds = |v: &[Value]| -> Vec<String> {
            v.iter()
                .map(|o| o["kind"].as_str().unwrap_or("").to_string())
                .collect()
        };
        assert_eq!(
            kinds(&one),
            [
                "Namespace",
                "CustomResourceDefinition",
                "ClusterRoleBinding"
            ]
        );
        assert_eq!(kinds(&two), ["Deployment"]);
    }

    #[test]
    fn rejects_objects_without_identity_and_empty_streams() {
        let err = parse(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n").expect_err("no name");
        assert_eq!(err.name(), "labflow.InvalidInput");
        assert!(parse(b"---\n---\n").is_err());
        assert!(parse(b"a: [unclosed").is_err());
    }

    #[test]
    fn checksum_must_match() {
        let bytes = MANIFEST.as_bytes();
        let good = sha256_hex(bytes);
        assert_eq!(good.len(), 64);
        assert!(verify(bytes, &good, "u").is_ok());
        assert!(verify(bytes, &good.to_uppercase(), "u").is_ok());
        let err = verify(bytes, &"0".repeat(64), "https://x/install.yaml").expect_err("mismatch");
        assert_eq!(err.name(), "labflow.InvalidInput");
        assert!(err.message().contains(&good), "{}", err.message());
    }
}
