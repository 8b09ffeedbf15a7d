//! Objects that are terminating: wait for them during the grace period (measured from each
//! object's own `deletionTimestamp`, so no state is kept between calls); after it, remove a
//! finalizer only if it is on the known-safe list and its controller is gone, otherwise fail
//! with `labflow.ComponentFailed` naming the object and the finalizer.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::DynamicObject;
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{verbs, Discovery, Scope};
use kube::error::DiscoveryError;
use labflow_core::flux::inventory;
use labflow_core::teardown_plan::{finalizer_decision, FinalizerDecision};
use labflow_core::StepError;

use crate::kube_api;
use crate::report::Report;
use crate::Ctx;

/// One terminating object and its resource type.
pub(crate) struct Terminating {
    pub ar: ApiResource,
    pub obj: DynamicObject,
}

impl Terminating {
    fn label(&self) -> String {
        format!("{} {}", self.ar.kind, kube_api::describe(&self.obj))
    }
}

/// The objects of `list` that are terminating.
pub(crate) fn terminating(ar: &ApiResource, list: Vec<DynamicObject>) -> Vec<Terminating> {
    list.into_iter()
        .filter(|obj| obj.metadata.deletion_timestamp.is_some())
        .map(|obj| Terminating {
            ar: ar.clone(),
            obj,
        })
        .collect()
}

/// Deployments that run, by name and by `app.kubernetes.io/name` (how the safe list names
/// controllers).
pub(crate) async fn running_controllers(
    client: &kube::Client,
) -> Result<BTreeSet<String>, StepError> {
    let mut running = BTreeSet::new();
    for deployment in kube_api::list(client, &kube_api::deployments(), None).await? {
        if deployment.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Some(name) = &deployment.metadata.name {
            running.insert(name.clone());
        }
        if let Some(name) = deployment
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app.kubernetes.io/name"))
        {
            running.insert(name.clone());
        }
    }
    Ok(running)
}

/// Deal with terminating objects. Returns whether anything is still terminating (the caller
/// then waits instead of deleting more).
pub(crate) async fn settle(
    ctx: &Ctx,
    client: &kube::Client,
    items: Vec<Terminating>,
    report: &mut Report,
) -> Result<bool, StepError> {
    if items.is_empty() {
        return Ok(false);
    }
    let now = (ctx.clock)();
    let grace = ctx.options.grace_period;
    let mut overdue = Vec::new();
    for item in items {
        let since = kube_api::deletion_time(&item.obj);
        match since {
            Some(since) if now - since >= grace => overdue.push(item),
            _ => report.waiting(format!(
                "{} terminating (finalizers: {})",
                item.label(),
                list_or_none(&kube_api::finalizers(&item.obj))
            )),
        }
    }
    if overdue.is_empty() {
        return Ok(true);
    }
    // A namespace past the grace period waits on something inside it: find what.
    let mut stuck = Vec::new();
    for item in overdue {
        if item.ar.kind == "Namespace" && kube_api::finalizers(&item.obj).is_empty() {
            let name = item.obj.metadata.name.clone().unwrap_or_default();
            let inside = terminating_inside(client, &name).await?;
            if inside.is_empty() {
                report.waiting(format!(
                    "Namespace {name} terminating past the grace period; nothing inside holds a finalizer"
                ));
            }
            for inner in inside {
                match kube_api::deletion_time(&inner.obj) {
                    Some(since) if now - since >= grace => stuck.push(inner),
                    _ => report.waiting(format!("{} terminating", inner.label())),
                }
            }
        } else if item.ar.kind == "Kustomization" {
            // A Kustomization garbage-collecting waits on its inventory: name what holds it.
            let inside = terminating_in_inventory(client, &item.obj).await?;
            if inside.is_empty() {
                stuck.push(item);
            }
            for inner in inside {
                match kube_api::deletion_time(&inner.obj) {
                    Some(since) if now - since >= grace => stuck.push(inner),
                    _ => report.waiting(format!("{} terminating", inner.label())),
                }
            }
        } else {
            stuck.push(item);
        }
    }
    // The same object can be found directly and through a Kustomization's inventory.
    let mut seen = BTreeSet::new();
    stuck.retain(|item| seen.insert(item.label()));
    if stuck.is_empty() {
        return Ok(true);
    }
    let running = running_controllers(client).await?;
    let mut failures = Vec::new();
    for item in &stuck {
        for finalizer in kube_api::finalizers(&item.obj) {
            match finalizer_decision(&finalizer, &ctx.options.safe_finalizers, &running) {
                FinalizerDecision::Remove => {
                    if kube_api::remove_finalizer(client, &item.ar, &item.obj, &finalizer).await? {
                        report.removed(format!(
                            "finalizer {finalizer} of {} (its controller is gone)",
                            item.label()
                        ));
                    }
                }
                FinalizerDecision::ControllerRunning(controller) => failures.push(format!(
                    "{} is stuck terminating past the grace period on finalizer {finalizer} \
                     (its controller {controller} still runs but does not remove it)",
                    item.label()
                )),
                FinalizerDecision::NotSafe => failures.push(format!(
                    "{} is stuck terminating past the grace period on finalizer {finalizer}, \
                     which teardown does not remove (not on the known-safe list)",
                    item.label()
                )),
            }
        }
        if kube_api::finalizers(&item.obj).is_empty() {
            report.waiting(format!(
                "{} terminating past the grace period (no finalizers left)",
                item.label()
            ));
        }
    }
    if !failures.is_empty() {
        for failure in &failures {
            report.leftover(failure.clone());
        }
        return Err(StepError::ComponentFailed(format!(
            "teardown cannot finish: {}",
            failures.join("; ")
        )));
    }
    Ok(true)
}

/// Objects of a Kustomization's inventory that still exist, are terminating and hold finalizers
/// (only looked up for a Kustomization stuck past the grace period).
async fn terminating_in_inventory(
    client: &kube::Client,
    kustomization: &DynamicObject,
) -> Result<Vec<Terminating>, StepError> {
    let body = serde_json::json!({
        "status": kustomization.data.get("status").cloned().unwrap_or_default()
    });
    let Some(Ok(entries)) = inventory::entries(&body) else {
        return Ok(Vec::new());
    };
    let mut resources: BTreeMap<(String, String, String), Option<ApiResource>> = BTreeMap::new();
    let mut found = Vec::new();
    for entry in entries {
        let gvk_key = (
            entry.group.clone(),
            entry.version.clone(),
            entry.kind.clone(),
        );
        if !resources.contains_key(&gvk_key) {
            let gvk = GroupVersionKind::gvk(&entry.group, &entry.version, &entry.kind);
            let ar = match kube::discovery::pinned_kind(client, &gvk).await {
                Ok((ar, _)) => Some(ar),
                // A kind the server no longer serves has no objects left.
                Err(e) if not_served(&e) => None,
                // Anything else (throttling, a dropped connection) is not an answer: retry.
                Err(e) => return Err(labflow_core::error::classify_kube_error("API discovery", e)),
            };
            resources.insert(gvk_key.clone(), ar);
        }
        let Some(Some(ar)) = resources.get(&gvk_key) else {
            continue;
        };
        let namespace = (!entry.namespace.is_empty()).then_some(entry.namespace.as_str());
        if let Some(obj) = kube_api::get(client, ar, namespace, &entry.name).await? {
            if obj.metadata.deletion_timestamp.is_some() && !kube_api::finalizers(&obj).is_empty() {
                found.push(Terminating {
                    ar: ar.clone(),
                    obj,
                });
            }
        }
    }
    Ok(found)
}

/// Whether discovery failed because the group, version or kind is not served (any more).
fn not_served(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => status.code == 404,
        kube::Error::Discovery(
            DiscoveryError::MissingKind(_) | DiscoveryError::EmptyApiGroup(_),
        ) => true,
        _ => false,
    }
}

/// Terminating objects that hold finalizers inside a namespace, over every listable namespaced
/// resource the server serves (discovery: only done for a namespace stuck past the grace period).
async fn terminating_inside(
    client: &kube::Client,
    namespace: &str,
) -> Result<Vec<Terminating>, StepError> {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .map_err(|e| labflow_core::error::classify_kube_error("API discovery", e))?;
    let mut found = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if caps.scope != Scope::Namespaced || !caps.supports_operation(verbs::LIST) {
                continue;
            }
            let items = kube_api::list(client, &ar, Some(namespace)).await?;
            found.extend(
                terminating(&ar, items)
                    .into_iter()
                    .filter(|t| !kube_api::finalizers(&t.obj).is_empty()),
            );
        }
    }
    Ok(found)
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}
