//! Reading the cluster: one list call per kind, cluster-wide (or per app namespace for pods),
//! never a GET per object.

use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use labflow_core::error::classify_kube_error;
use labflow_core::flux::resources::{self, Scope};
use labflow_core::StepError;
use serde_json::Value;

/// What listing a kind found.
#[derive(Debug)]
pub enum Listing {
    Items(Vec<Value>),
    /// The kind is not served (its CRD is not installed).
    Unserved,
    /// Our identity may not list it: health-check reads through the ClusterRole of
    /// [`labflow_core::reader`], which names the API groups a lab's tree uses.
    Forbidden(String),
}

/// Every object of a kind, in all namespaces. `Ok(None)` when the kind is not served (its CRD
/// is not installed); a kind we may not list is an error.
pub async fn list_all(
    client: &kube::Client,
    group: &str,
    version: &str,
    kind: &str,
) -> Result<Option<Vec<Value>>, StepError> {
    match list_kind(client, group, version, kind).await? {
        Listing::Items(items) => Ok(Some(items)),
        Listing::Unserved => Ok(None),
        Listing::Forbidden(message) => Err(StepError::ComponentFailed(format!(
            "health-check may not list {kind} ({message}); flux-bootstrap binds the ClusterRole {} to its access entry's group",
            labflow_core::reader::GROUP
        ))),
    }
}

/// [`list_all`], telling a kind we may not read from the other failures.
pub async fn list_kind(
    client: &kube::Client,
    group: &str,
    version: &str,
    kind: &str,
) -> Result<Listing, StepError> {
    let ar = match resources::resolve(client, group, version, kind).await {
        Ok((ar, _)) => ar,
        Err(_) if resources::known(group, version, kind).is_none() => {
            // Discovery does not know the kind: not served (yet).
            return Ok(Listing::Unserved);
        }
        Err(e) => return Err(e),
    };
    let api = Api::<DynamicObject>::all_with(client.clone(), &ar);
    match api.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) if status.code == 403 => {
            Ok(Listing::Forbidden(status.message))
        }
        other => Ok(match items(other, &ar)? {
            Some(items) => Listing::Items(items),
            None => Listing::Unserved,
        }),
    }
}

/// Every object of a namespaced kind in one namespace.
pub async fn list_in(
    client: &kube::Client,
    namespace: &str,
    group: &str,
    version: &str,
    kind: &str,
) -> Result<Option<Vec<Value>>, StepError> {
    let (ar, scope) = resources::resolve(client, group, version, kind).await?;
    let api = match scope {
        Scope::Namespaced => Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &ar),
        Scope::Cluster => Api::<DynamicObject>::all_with(client.clone(), &ar),
    };
    items(api.list(&ListParams::default()).await, &ar)
}

fn items(
    result: Result<kube::core::ObjectList<DynamicObject>, kube::Error>,
    ar: &ApiResource,
) -> Result<Option<Vec<Value>>, StepError> {
    let kind = ar.kind.as_str();
    let list = match result {
        Ok(list) => list,
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(None),
        Err(e) => return Err(classify_kube_error(&format!("listing {kind}"), e)),
    };
    list.items
        .into_iter()
        .map(|item| {
            let mut value = serde_json::to_value(item)
                .map_err(|e| StepError::Transient(format!("reading a {kind}: {e}")))?;
            // List items need not carry apiVersion/kind on the wire; the kstatus rules need them.
            if value.get("kind").is_none_or(Value::is_null) {
                value["kind"] = Value::String(ar.kind.clone());
            }
            if value.get("apiVersion").is_none_or(Value::is_null) {
                value["apiVersion"] = Value::String(ar.api_version.clone());
            }
            Ok(value)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}
