//! The Rust side of kubesim: the store handle, change events and the request log.

mod kubesim_support;
mod wait_support;

use anyhow::{ensure, Context as _};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use kubesim_support::sim_cluster;
use labflow_testbed::kubesim::EventType;
use serde_json::json;

#[tokio::test]
async fn store_handle_events_and_request_log() -> anyhow::Result<()> {
    let c = sim_cluster().await?;
    let sim = c.sim.as_ref().context("sim_cluster always runs kubesim")?;
    let store = sim.store();
    let mut events = store.subscribe();
    store.put(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seed", "namespace": "default"}, "data": {"a": "1"}}))?;
    let event = events.recv().await?;
    ensure!(
        event.event_type == EventType::Added
            && event.name == "seed"
            && event.resource == "configmaps"
    );

    let api = Api::<ConfigMap>::namespaced(c.client.clone(), "default");
    sim.clear_requests();
    let seen = api.get("seed").await?;
    ensure!(
        seen.data.and_then(|d| d.get("a").cloned()).as_deref() == Some("1"),
        "kube sees what the handle wrote"
    );
    api.list(&ListParams::default()).await?;
    api.list(&ListParams::default()).await?;
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "via-api"}}))?;
    api.create(&PostParams::default(), &cm).await?;
    let log = sim.requests();
    let count = |verb: &str| {
        log.iter()
            .filter(|r| r.verb == verb && r.resource.as_deref() == Some("configmaps"))
            .count()
    };
    ensure!(
        (count("get"), count("list"), count("create")) == (1, 2, 1),
        "{log:?}"
    );
    ensure!(
        log.iter()
            .all(|r| r.status < 300 && r.namespace.as_deref() == Some("default")),
        "{log:?}"
    );

    // Finalizers and status through the handle.
    store.add_finalizer(
        "v1",
        "ConfigMap",
        Some("default"),
        "via-api",
        "example.com/hold",
    )?;
    store.delete_object("v1", "ConfigMap", Some("default"), "via-api")?;
    let held = store
        .get_object("v1", "ConfigMap", Some("default"), "via-api")
        .context("held by its finalizer")?;
    ensure!(held.pointer("/metadata/deletionTimestamp").is_some());
    store.remove_finalizer(
        "v1",
        "ConfigMap",
        Some("default"),
        "via-api",
        "example.com/hold",
    )?;
    ensure!(store
        .get_object("v1", "ConfigMap", Some("default"), "via-api")
        .is_none());

    store.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}))?;
    store.put(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "apps"}, "spec": {"replicas": 1}}))?;
    let with_status = store.set_status(
        "apps/v1",
        "Deployment",
        Some("apps"),
        "web",
        json!({"availableReplicas": 1}),
    )?;
    ensure!(
        with_status["status"]["availableReplicas"] == 1
            && with_status["metadata"]["generation"] == 1
    );
    ensure!(store.list_objects("apps/v1", "Deployment", None).len() == 1);
    Ok(())
}
