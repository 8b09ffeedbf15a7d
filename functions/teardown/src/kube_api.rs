//! Small Kubernetes helpers over dynamic objects: list, delete and patch by API resource, with
//! "already gone" treated as success.

use chrono::{DateTime, Utc};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use labflow_core::error::classify_kube_error;
use labflow_core::StepError;
use serde_json::Value;

/// An API resource from its parts.
pub fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

pub fn namespaces() -> ApiResource {
    resource("", "v1", "Namespace", "namespaces")
}
pub fn services() -> ApiResource {
    resource("", "v1", "Service", "services")
}
pub fn pvcs() -> ApiResource {
    resource("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims")
}
pub fn pvs() -> ApiResource {
    resource("", "v1", "PersistentVolume", "persistentvolumes")
}
pub fn ingresses() -> ApiResource {
    resource("networking.k8s.io", "v1", "Ingress", "ingresses")
}
pub fn deployments() -> ApiResource {
    resource("apps", "v1", "Deployment", "deployments")
}
pub fn crds() -> ApiResource {
    resource(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
    )
}

pub fn cluster_roles() -> ApiResource {
    resource(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
    )
}
pub fn cluster_role_bindings() -> ApiResource {
    resource(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
    )
}

/// Whether labflow applied the object (flux-bootstrap labels everything it applies).
pub fn is_labflows(obj: &DynamicObject) -> bool {
    let (key, value) = labflow_core::ownership::MANAGED_BY_LABEL;
    obj.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .is_some_and(|v| v == value)
}

fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404)
}

fn api(client: &kube::Client, ar: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace {
        Some(ns) if !ns.is_empty() => Api::namespaced_with(client.clone(), ns, ar),
        _ => Api::all_with(client.clone(), ar),
    }
}

/// Every object of a resource, in all namespaces (or in `namespace`). A resource type the server
/// does not know (its CRD is gone) has no objects.
pub async fn list(
    client: &kube::Client,
    ar: &ApiResource,
    namespace: Option<&str>,
) -> Result<Vec<DynamicObject>, StepError> {
    list_with(client, ar, namespace, &ListParams::default()).await
}

/// The cluster-wide objects of a resource labflow applied.
pub async fn list_labflows(
    client: &kube::Client,
    ar: &ApiResource,
) -> Result<Vec<DynamicObject>, StepError> {
    let (key, value) = labflow_core::ownership::MANAGED_BY_LABEL;
    let params = ListParams::default().labels(&format!("{key}={value}"));
    list_with(client, ar, None, &params).await
}

async fn list_with(
    client: &kube::Client,
    ar: &ApiResource,
    namespace: Option<&str>,
    params: &ListParams,
) -> Result<Vec<DynamicObject>, StepError> {
    match api(client, ar, namespace).list(params).await {
        Ok(list) => Ok(list.items),
        Err(err) if is_not_found(&err) => Ok(Vec::new()),
        Err(err) => Err(classify_kube_error(&format!("listing {}", ar.plural), err)),
    }
}

/// One object, or `None` when it (or its resource type) does not exist.
pub async fn get(
    client: &kube::Client,
    ar: &ApiResource,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<DynamicObject>, StepError> {
    match api(client, ar, namespace).get_opt(name).await {
        Ok(obj) => Ok(obj),
        Err(err) if is_not_found(&err) => Ok(None),
        Err(err) => Err(classify_kube_error(
            &format!("reading {} {name}", ar.kind),
            err,
        )),
    }
}

/// Delete one object (background propagation, like kubectl). `Ok(false)` if it was already gone.
pub async fn delete(
    client: &kube::Client,
    ar: &ApiResource,
    obj: &DynamicObject,
) -> Result<bool, StepError> {
    let name = obj.metadata.name.clone().unwrap_or_default();
    let namespace = obj.metadata.namespace.as_deref();
    match api(client, ar, namespace)
        .delete(&name, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(true),
        Err(err) if is_not_found(&err) => Ok(false),
        Err(err) => Err(classify_kube_error(
            &format!("deleting {} {}", ar.kind, describe(obj)),
            err,
        )),
    }
}

/// JSON merge patch of one object. `Ok(false)` if it was already gone.
pub async fn merge_patch(
    client: &kube::Client,
    ar: &ApiResource,
    obj: &DynamicObject,
    patch: Value,
) -> Result<bool, StepError> {
    let name = obj.metadata.name.clone().unwrap_or_default();
    let namespace = obj.metadata.namespace.as_deref();
    match api(client, ar, namespace)
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(true),
        Err(err) if is_not_found(&err) => Ok(false),
        Err(err) => Err(classify_kube_error(
            &format!("patching {} {}", ar.kind, describe(obj)),
            err,
        )),
    }
}

/// Remove `finalizer` from an object's `metadata.finalizers`, keeping the others.
pub async fn remove_finalizer(
    client: &kube::Client,
    ar: &ApiResource,
    obj: &DynamicObject,
    finalizer: &str,
) -> Result<bool, StepError> {
    let finalizers = obj.metadata.finalizers.clone().unwrap_or_default();
    if !finalizers.iter().any(|f| f == finalizer) {
        return Ok(false);
    }
    let kept: Vec<&String> = finalizers.iter().filter(|f| *f != finalizer).collect();
    merge_patch(
        client,
        ar,
        obj,
        serde_json::json!({"metadata": {"finalizers": kept}}),
    )
    .await
}

/// `namespace/name`, or `name` for cluster-scoped objects.
pub fn describe(obj: &DynamicObject) -> String {
    let name = obj.metadata.name.as_deref().unwrap_or("?");
    match obj.metadata.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// When the object was asked to be deleted, if it was. Read through JSON so this does not depend
/// on the time type k8s-openapi wraps.
pub fn deletion_time(obj: &DynamicObject) -> Option<DateTime<Utc>> {
    let ts = obj.metadata.deletion_timestamp.as_ref()?;
    let text = serde_json::to_value(ts).ok()?;
    DateTime::parse_from_rfc3339(text.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub fn finalizers(obj: &DynamicObject) -> Vec<String> {
    obj.metadata.finalizers.clone().unwrap_or_default()
}

/// A field of the object's body (`/spec/...`, `/status/...`).
pub fn field<'a>(obj: &'a DynamicObject, pointer: &str) -> Option<&'a Value> {
    obj.data.pointer(pointer)
}
