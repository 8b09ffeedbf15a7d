//! Server-side apply of arbitrary objects with field manager `labflow`, counting what changed.
//!
//! Before applying a batch, each kind in it is listed once (label `app.kubernetes.io/managed-by=
//! labflow`) to learn which objects are ours and their resourceVersions: an apply that leaves the
//! resourceVersion alone changed nothing. `force` is used only to take fields back on objects that
//! already carry our label; a conflict on anything else is `labflow.NotOwned`.

use std::collections::{BTreeMap, HashMap};

use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::ApiResource;
use labflow_core::error::classify_kube_error;
use labflow_core::flux::inventory::ObjectRef;
use labflow_core::flux::resources::{self, Scope};
use labflow_core::ownership::{FIELD_MANAGER, MANAGED_BY_LABEL};
use labflow_core::StepError;
use serde_json::Value;

use crate::objects::label_owned;

/// What a batch apply did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Objects created or changed.
    pub applied: u32,
    /// Objects the apply left as they were.
    pub unchanged: u32,
    /// The objects as the server returned them, in input order (Secrets left out).
    pub objects: Vec<Value>,
}

impl Applied {
    pub fn add(&mut self, other: Applied) {
        self.applied += other.applied;
        self.unchanged += other.unchanged;
        self.objects.extend(other.objects);
    }
}

type Kind = (String, String, String);

fn kind_of(obj: &Value) -> Kind {
    let r = ObjectRef::of(obj);
    (r.group, r.version, r.kind)
}

fn api(
    client: &kube::Client,
    ar: &ApiResource,
    scope: Scope,
    namespace: &str,
) -> Api<DynamicObject> {
    match scope {
        Scope::Cluster => Api::all_with(client.clone(), ar),
        Scope::Namespaced => {
            let ns = if namespace.is_empty() {
                "default"
            } else {
                namespace
            };
            Api::namespaced_with(client.clone(), ns, ar)
        }
    }
}

/// Apply `objects` (in order), each labelled as ours.
pub async fn apply(client: &kube::Client, objects: Vec<Value>) -> Result<Applied, StepError> {
    let mut kinds: BTreeMap<Kind, (ApiResource, Scope)> = BTreeMap::new();
    for obj in &objects {
        let kind = kind_of(obj);
        if let std::collections::btree_map::Entry::Vacant(slot) = kinds.entry(kind) {
            let (group, version, kind) = slot.key();
            let resolved = resources::resolve(client, group, version, kind).await?;
            slot.insert(resolved);
        }
    }
    let selector = format!("{}={}", MANAGED_BY_LABEL.0, MANAGED_BY_LABEL.1);
    let mut ours: HashMap<(Kind, String, String), String> = HashMap::new();
    for (kind, (ar, _)) in &kinds {
        let list = Api::<DynamicObject>::all_with(client.clone(), ar)
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| classify_kube_error(&format!("listing {}", ar.plural), e))?;
        for item in list.items {
            let key = (
                kind.clone(),
                item.metadata.namespace.clone().unwrap_or_default(),
                item.metadata.name.clone().unwrap_or_default(),
            );
            ours.insert(key, item.metadata.resource_version.unwrap_or_default());
        }
    }

    let mut result = Applied::default();
    for mut obj in objects {
        label_owned(&mut obj);
        let kind = kind_of(&obj);
        let Some((ar, scope)) = kinds.get(&kind) else {
            continue;
        };
        let r = ObjectRef::of(&obj);
        let namespace = if *scope == Scope::Namespaced && r.namespace.is_empty() {
            "default".to_string()
        } else if *scope == Scope::Cluster {
            String::new()
        } else {
            r.namespace.clone()
        };
        let api = api(client, ar, *scope, &namespace);
        let previous = ours.get(&(kind.clone(), namespace.clone(), r.name.clone()));
        let params = PatchParams::apply(FIELD_MANAGER);
        let live = match api.patch(&r.name, &params, &Patch::Apply(&obj)).await {
            Ok(live) => live,
            Err(kube::Error::Api(status)) if status.code == 409 => {
                if previous.is_none() {
                    return Err(StepError::NotOwned(format!(
                        "{r} conflicts with another field manager and is not labelled {}={}: {}",
                        MANAGED_BY_LABEL.0, MANAGED_BY_LABEL.1, status.message
                    )));
                }
                tracing::info!(object = %r, "taking back fields of an object labflow owns");
                api.patch(&r.name, &params.clone().force(), &Patch::Apply(&obj))
                    .await
                    .map_err(|e| classify_kube_error(&format!("applying {r} (force)"), e))?
            }
            Err(e) => return Err(classify_kube_error(&format!("applying {r}"), e)),
        };
        let unchanged =
            previous.is_some_and(|rv| live.metadata.resource_version.as_ref() == Some(rv));
        if unchanged {
            result.unchanged += 1;
        } else {
            tracing::info!(object = %r, "applied");
            result.applied += 1;
        }
        // Secrets are not kept: nothing downstream needs them, and they hold the Git token.
        if !(r.group.is_empty() && r.kind == "Secret") {
            let live = serde_json::to_value(&live)
                .map_err(|e| StepError::Transient(format!("reading back {r}: {e}")))?;
            result.objects.push(live);
        }
    }
    Ok(result)
}
