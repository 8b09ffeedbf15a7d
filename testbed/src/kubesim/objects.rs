//! The Rust-side object API (by apiVersion + kind), for simulated controllers, faults and tests.
//! Writes go through the same rules as HTTP writes, with field manager `kubesim`.

use super::errors::ApiError;
use super::meta;
use super::resources::split_api_version;
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{DeleteOptions, Gvr, PatchType, Store, WriteOptions};
use serde_json::{json, Value};

const MANAGER: &str = "kubesim";

fn opts(subresource: Option<&str>) -> WriteOptions {
    WriteOptions {
        manager: MANAGER.into(),
        subresource: subresource.map(str::to_string),
        ..Default::default()
    }
}

impl Store {
    /// The REST collection of an apiVersion + kind, if served.
    pub fn gvr(&self, api_version: &str, kind: &str) -> Result<Gvr, ApiError> {
        let (group, version) = split_api_version(api_version);
        let registry = self.registry();
        let rt = registry.by_kind(api_version, kind).ok_or_else(|| {
            ApiError::bad_request(format!(
                "no kind \"{kind}\" is registered for version \"{api_version}\""
            ))
        })?;
        Ok(Gvr {
            group: group.into(),
            version: version.into(),
            plural: rt.plural.clone(),
        })
    }

    pub fn get_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let gvr = self.gvr(api_version, kind).ok()?;
        self.get(&gvr, namespace, name).ok()
    }

    /// All objects of a kind (in one namespace, or everywhere with `None`).
    pub fn list_objects(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Vec<Value> {
        let Ok(gvr) = self.gvr(api_version, kind) else {
            return Vec::new();
        };
        self.list(
            &gvr,
            namespace,
            &LabelSelector::default(),
            &FieldSelector::default(),
        )
        .map(|(_, items, _)| items)
        .unwrap_or_default()
    }

    /// Creates the object, or replaces it unconditionally if it exists.
    pub fn put(&self, mut obj: Value) -> Result<Value, ApiError> {
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let gvr = self.gvr(&api_version, &kind)?;
        let ns = meta::meta_str(&obj, "namespace").map(str::to_string);
        let name = meta::name(&obj).to_string();
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        match self.get(&gvr, ns.as_deref(), &name) {
            Ok(_) => self
                .replace(&gvr, ns.as_deref(), &name, obj, &opts(None))
                .map(|o| o.object),
            Err(_) => self
                .create(&gvr, ns.as_deref(), obj, &opts(None))
                .map(|o| o.object),
        }
    }

    /// Deletes like `kubectl delete`: with pending finalizers the object only gets a
    /// deletionTimestamp.
    pub fn delete_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), ApiError> {
        let gvr = self.gvr(api_version, kind)?;
        self.delete(&gvr, namespace, name, &DeleteOptions::default())
            .map(|_| ())
    }

    /// Replaces `status` through the status subresource (or the object, for kinds without one).
    pub fn set_status(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        status: Value,
    ) -> Result<Value, ApiError> {
        let gvr = self.gvr(api_version, kind)?;
        let has_sub = self
            .registry()
            .by_kind(api_version, kind)
            .is_some_and(|t| t.status_subresource);
        let mut obj = self.get(&gvr, namespace, name)?;
        obj["status"] = status;
        let sub = has_sub.then_some("status");
        self.replace(&gvr, namespace, name, obj, &opts(sub))
            .map(|o| o.object)
    }

    pub fn add_finalizer(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        finalizer: &str,
    ) -> Result<Value, ApiError> {
        let gvr = self.gvr(api_version, kind)?;
        let obj = self.get(&gvr, namespace, name)?;
        let mut finalizers = meta::finalizers(&obj);
        if !finalizers.iter().any(|f| f == finalizer) {
            finalizers.push(finalizer.to_string());
        }
        let patch = json!({"metadata": {"finalizers": finalizers}});
        self.patch(&gvr, namespace, name, PatchType::Merge, &patch, &opts(None))
            .map(|o| o.object)
    }

    /// Removes a finalizer; the object goes if it was the last one and it is being deleted.
    pub fn remove_finalizer(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        finalizer: &str,
    ) -> Result<(), ApiError> {
        let gvr = self.gvr(api_version, kind)?;
        let obj = self.get(&gvr, namespace, name)?;
        let finalizers: Vec<String> = meta::finalizers(&obj)
            .into_iter()
            .filter(|f| f != finalizer)
            .collect();
        let patch = json!({"metadata": {"finalizers": finalizers}});
        self.patch(&gvr, namespace, name, PatchType::Merge, &patch, &opts(None))
            .map(|_| ())
    }
}
