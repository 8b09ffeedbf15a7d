//! Thin helpers over kubesim's store for the simulated controllers: objects are addressed by
//! apiVersion + kind (as manifests and Flux references name them), writes carry a field manager.

use crate::kubesim::resources::{split_api_version, ResourceType};
use crate::kubesim::store::{DeleteOptions, Gvr, PatchType, WriteOptions};
use crate::kubesim::{ApiError, Store};
use serde_json::{json, Value};

/// An object's identity, as Flux inventories and references name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjRef {
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Self {
        ObjRef {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.filter(|n| !n.is_empty()).map(str::to_string),
            name: name.to_string(),
        }
    }

    pub fn of(obj: &Value) -> Self {
        ObjRef::new(
            s(obj, "/apiVersion"),
            s(obj, "/kind"),
            obj.pointer("/metadata/namespace").and_then(Value::as_str),
            s(obj, "/metadata/name"),
        )
    }

    pub fn group(&self) -> &str {
        split_api_version(&self.api_version).0
    }

    pub fn version(&self) -> &str {
        split_api_version(&self.api_version).1
    }

    /// Flux's inventory id: `<namespace>_<name>_<group>_<kind>`.
    pub fn inventory_id(&self) -> String {
        format!(
            "{}_{}_{}_{}",
            self.namespace.as_deref().unwrap_or(""),
            self.name,
            self.group(),
            self.kind
        )
    }

    /// The reverse of [`ObjRef::inventory_id`] with the entry's version.
    pub fn from_inventory(id: &str, version: &str) -> Option<Self> {
        // Names, namespaces and kinds hold no '_'; groups neither (DNS subdomains).
        let parts: Vec<&str> = id.split('_').collect();
        let [ns, name, group, kind] = parts.as_slice() else {
            return None;
        };
        let api_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Some(ObjRef::new(&api_version, kind, Some(ns), name))
    }

    pub fn display(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

/// A string at a JSON pointer, or "".
pub fn s<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

pub fn name(obj: &Value) -> &str {
    s(obj, "/metadata/name")
}

pub fn namespace(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
}

pub fn uid(obj: &Value) -> &str {
    s(obj, "/metadata/uid")
}

pub fn generation(obj: &Value) -> i64 {
    obj.pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null())
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

/// The store, addressed by apiVersion + kind, writing as one field manager.
#[derive(Clone)]
pub struct Client {
    store: Store,
    manager: String,
}

impl Client {
    pub fn new(store: &Store, manager: &str) -> Self {
        Client {
            store: store.clone(),
            manager: manager.to_string(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn resource(&self, api_version: &str, kind: &str) -> Option<ResourceType> {
        self.store.registry().by_kind(api_version, kind).cloned()
    }

    fn gvr(&self, api_version: &str, kind: &str) -> Result<(Gvr, ResourceType), ApiError> {
        let rt = self.resource(api_version, kind).ok_or_else(|| {
            ApiError::bad_request(format!(
                "no matches for kind \"{kind}\" in version \"{api_version}\""
            ))
        })?;
        let version = split_api_version(api_version).1.to_string();
        Ok((
            Gvr {
                group: rt.group.clone(),
                version,
                plural: rt.plural.clone(),
            },
            rt,
        ))
    }

    fn ns<'a>(rt: &ResourceType, r: &'a ObjRef) -> Option<&'a str> {
        if rt.namespaced {
            r.namespace.as_deref()
        } else {
            None
        }
    }

    /// The object, or None when it (or its kind) does not exist.
    pub fn get(&self, r: &ObjRef) -> Option<Value> {
        let (gvr, rt) = self.gvr(&r.api_version, &r.kind).ok()?;
        self.store.get(&gvr, Self::ns(&rt, r), &r.name).ok()
    }

    /// Every object of a kind (all namespaces when `ns` is None); empty when the kind is unknown.
    pub fn list(&self, api_version: &str, kind: &str, ns: Option<&str>) -> Vec<Value> {
        let Ok((gvr, _)) = self.gvr(api_version, kind) else {
            return Vec::new();
        };
        self.store
            .list(&gvr, ns, &Default::default(), &Default::default())
            .map(|(_, items, _)| items)
            .unwrap_or_default()
    }

    /// Server-side apply (forced, as Flux's controllers apply).
    pub fn apply(&self, obj: &Value) -> Result<Value, ApiError> {
        let r = ObjRef::of(obj);
        let (gvr, rt) = self.gvr(&r.api_version, &r.kind)?;
        let opts = WriteOptions {
            manager: self.manager.clone(),
            force: true,
            ..Default::default()
        };
        self.store
            .patch(
                &gvr,
                Self::ns(&rt, &r),
                &r.name,
                PatchType::Apply,
                obj,
                &opts,
            )
            .map(|o| o.object)
    }

    /// A JSON merge patch of the object (`status == true`: of its status subresource).
    pub fn merge(&self, r: &ObjRef, patch: &Value, status: bool) -> Result<Value, ApiError> {
        let (gvr, rt) = self.gvr(&r.api_version, &r.kind)?;
        let subresource = (status && rt.status_subresource).then(|| "status".to_string());
        let opts = WriteOptions {
            manager: self.manager.clone(),
            subresource,
            ..Default::default()
        };
        self.store
            .patch(
                &gvr,
                Self::ns(&rt, r),
                &r.name,
                PatchType::Merge,
                patch,
                &opts,
            )
            .map(|o| o.object)
    }

    /// Replaces `.status` wholesale when it differs from what is stored.
    pub fn set_status(&self, obj: &Value, status: Value) -> Result<(), ApiError> {
        if obj.get("status") == Some(&status) {
            return Ok(());
        }
        let r = ObjRef::of(obj);
        let (gvr, rt) = self.gvr(&r.api_version, &r.kind)?;
        let mut body = obj.clone();
        body["status"] = status;
        if let Some(m) = body.pointer_mut("/metadata").and_then(Value::as_object_mut) {
            // Last writer wins: the controllers re-derive status from what is stored anyway.
            m.remove("managedFields");
            m.remove("resourceVersion");
        }
        let subresource = rt.status_subresource.then(|| "status".to_string());
        let opts = WriteOptions {
            manager: self.manager.clone(),
            subresource,
            ..Default::default()
        };
        self.store
            .replace(&gvr, Self::ns(&rt, &r), &r.name, body, &opts)
            .map(|_| ())
    }

    /// Sets the finalizers (optimistic: fails with a conflict when the object moved on).
    pub fn set_finalizers(&self, obj: &Value, finalizers: &[String]) -> Result<(), ApiError> {
        let r = ObjRef::of(obj);
        let patch = json!({"metadata": {
            "finalizers": finalizers,
            "resourceVersion": s(obj, "/metadata/resourceVersion"),
        }});
        self.merge(&r, &patch, false).map(|_| ())
    }

    pub fn add_finalizer(&self, obj: &Value, finalizer: &str) -> Result<(), ApiError> {
        let mut list = finalizers(obj);
        if list.iter().any(|f| f == finalizer) {
            return Ok(());
        }
        list.push(finalizer.to_string());
        self.set_finalizers(obj, &list)
    }

    pub fn remove_finalizer(&self, obj: &Value, finalizer: &str) -> Result<(), ApiError> {
        let list = finalizers(obj);
        if !list.iter().any(|f| f == finalizer) {
            return Ok(());
        }
        let kept: Vec<String> = list.into_iter().filter(|f| f != finalizer).collect();
        self.set_finalizers(obj, &kept)
    }

    /// Deletes the object; Ok(false) when it was not there.
    pub fn delete(&self, r: &ObjRef) -> Result<bool, ApiError> {
        let (gvr, rt) = self.gvr(&r.api_version, &r.kind)?;
        match self
            .store
            .delete(&gvr, Self::ns(&rt, r), &r.name, &DeleteOptions::default())
        {
            Ok(_) => Ok(true),
            Err(e) if e.code == 404 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether a Deployment exists (the stand-in for "this controller runs").
    pub fn deployment_exists(&self, namespace: &str, name: &str) -> bool {
        self.get(&ObjRef::new("apps/v1", "Deployment", Some(namespace), name))
            .is_some()
    }

    /// Whether any Deployment carries `app.kubernetes.io/name=<app>`, in any namespace.
    pub fn deployment_with_name_label(&self, app: &str) -> bool {
        self.list("apps/v1", "Deployment", None)
            .iter()
            .any(|d| label(d, "app.kubernetes.io/name") == Some(app))
    }
}

/// A metav1.Condition list with one condition set; lastTransitionTime moves only when the status
/// does (as the real helpers do), so rewriting an unchanged condition is a no-op.
pub fn set_condition(
    conditions: &mut Vec<Value>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    observed_generation: i64,
) {
    let previous = conditions.iter().find(|c| s(c, "/type") == type_).cloned();
    let time = match &previous {
        Some(p) if s(p, "/status") == status => s(p, "/lastTransitionTime").to_string(),
        _ => chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    };
    let condition = json!({
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": observed_generation,
        "lastTransitionTime": time,
    });
    match conditions.iter_mut().find(|c| s(c, "/type") == type_) {
        Some(c) => *c = condition,
        None => conditions.push(condition),
    }
}

pub fn remove_condition(conditions: &mut Vec<Value>, type_: &str) {
    conditions.retain(|c| s(c, "/type") != type_);
}

pub fn conditions(obj: &Value) -> Vec<Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The status of one condition type ("True", "False", "Unknown"), if present.
pub fn condition_status<'a>(obj: &'a Value, type_: &str) -> Option<&'a str> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| s(c, "/type") == type_)
        .map(|c| s(c, "/status"))
}

/// Ready=True at the current generation (Flux's own notion of a ready dependency).
pub fn is_ready(obj: &Value) -> bool {
    condition_status(obj, "Ready") == Some("True")
        && obj
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64)
            == Some(generation(obj))
}

/// The conditions an object made to fail shows, keeping transition times of unchanged ones.
pub fn failed_conditions(
    failure: &crate::fault_plan::ObjectFailure,
    existing: &[Value],
    generation: i64,
) -> Vec<Value> {
    let mut conditions = existing.to_vec();
    remove_condition(&mut conditions, "Reconciling");
    set_condition(
        &mut conditions,
        "Ready",
        "False",
        &failure.reason,
        &failure.message,
        generation,
    );
    set_condition(
        &mut conditions,
        "Stalled",
        "True",
        &failure.reason,
        &failure.message,
        generation,
    );
    conditions
}
