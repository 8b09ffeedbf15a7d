//! A Kustomization's inventory (`status.inventory.entries`): what it applied, as
//! `{id: "<namespace>_<name>_<group>_<kind>", v: "<version>"}` (namespace empty for cluster-scoped
//! objects, group empty for the core API group).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One object, as an inventory names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub group: String,
    pub version: String,
    pub kind: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    /// Parse an inventory id with its version. Kubernetes names, namespaces, groups and kinds
    /// never contain `_`, so the id splits unambiguously into four parts.
    pub fn parse(id: &str, version: &str) -> Result<Self, InventoryError> {
        let parts: Vec<&str> = id.split('_').collect();
        match parts.as_slice() {
            [namespace, name, group, kind] if !name.is_empty() && !kind.is_empty() => Ok(Self {
                group: (*group).to_string(),
                version: version.to_string(),
                kind: (*kind).to_string(),
                namespace: (*namespace).to_string(),
                name: (*name).to_string(),
            }),
            _ => Err(InventoryError(id.to_string())),
        }
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The key this object has in a list of objects of its kind.
    pub fn key(&self) -> (String, String) {
        (self.namespace.clone(), self.name.clone())
    }

    /// The reference to a live object (namespace empty when cluster-scoped).
    pub fn of(obj: &Value) -> Self {
        let text = |p: &str| {
            obj.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let api_version = text("/apiVersion");
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version),
        };
        Self {
            group,
            version,
            kind: text("/kind"),
            namespace: text("/metadata/namespace"),
            name: text("/metadata/name"),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed inventory id {0:?} (expected <namespace>_<name>_<group>_<kind>)")]
pub struct InventoryError(pub String);

/// The entries of a Kustomization's inventory; `None` when it has no inventory yet.
pub fn entries(kustomization: &Value) -> Option<Result<Vec<ObjectRef>, InventoryError>> {
    let entries = kustomization
        .pointer("/status/inventory/entries")?
        .as_array()?;
    Some(
        entries
            .iter()
            .map(|e| {
                let id = e.get("id").and_then(Value::as_str).unwrap_or("");
                let v = e.get("v").and_then(Value::as_str).unwrap_or("");
                ObjectRef::parse(id, v)
            })
            .collect(),
    )
}

/// Whether a reference names a Flux Kustomization (whose own inventory must be followed).
pub fn is_kustomization(r: &ObjectRef) -> bool {
    r.group == super::KUSTOMIZE_GROUP && r.kind == "Kustomization"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_namespaced_cluster_scoped_and_core_ids() {
        let hr = ObjectRef::parse("podinfo_podinfo_helm.toolkit.fluxcd.io_HelmRelease", "v2")
            .expect("valid id");
        assert_eq!(hr.namespace, "podinfo");
        assert_eq!(hr.group, "helm.toolkit.fluxcd.io");
        assert_eq!(hr.api_version(), "helm.toolkit.fluxcd.io/v2");
        assert_eq!(hr.to_string(), "HelmRelease/podinfo/podinfo");
        let ns = ObjectRef::parse("_bookinfo__Namespace", "v1").expect("valid id");
        assert_eq!(ns.namespace, "");
        assert_eq!(ns.group, "");
        assert_eq!(ns.api_version(), "v1");
        assert_eq!(ns.to_string(), "Namespace/bookinfo");
    }

    #[test]
    fn rejects_malformed_ids() {
        for bad in [
            "",
            "a_b_c",
            "a_b_c_d_e",
            "ns__apps_Deployment",
            "ns_name_apps_",
        ] {
            assert!(ObjectRef::parse(bad, "v1").is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn reads_entries_and_knows_when_there_is_no_inventory() {
        let k = json!({"status": {"inventory": {"entries": [
            {"id": "flux-system_apps_kustomize.toolkit.fluxcd.io_Kustomization", "v": "v1"},
            {"id": "_gp3_storage.k8s.io_StorageClass", "v": "v1"}]}}});
        let refs = entries(&k).expect("has inventory").expect("valid");
        assert_eq!(refs.len(), 2);
        assert!(is_kustomization(&refs[0]));
        assert!(!is_kustomization(&refs[1]));
        assert!(entries(&json!({"status": {}})).is_none());
    }

    #[test]
    fn reference_of_a_live_object() {
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "n"}});
        let r = ObjectRef::of(&obj);
        assert_eq!(
            (r.group.as_str(), r.version.as_str(), r.key()),
            ("apps", "v1", ("n".into(), "d".into()))
        );
    }
}
