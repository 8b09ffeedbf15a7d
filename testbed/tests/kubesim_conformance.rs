//! Conformance suite: drives the API only through kube::Client. Runs against kubesim, or
//! unchanged against a real API server when LABFLOW_CONFORMANCE_KUBECONFIG is set, so it asserts
//! only what a real server does.

mod kubesim_support;
mod wait_support;

use anyhow::{ensure, Context as _};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, ValidationDirective, WatchEvent, WatchParams,
};
use kube::core::Status;
use kubesim_support::{api_error, cluster, eventually, unique, Cluster};
use serde_json::{json, Value};

const GROUP: &str = "conformance.labflow.dev";

async fn namespace(c: &Cluster, prefix: &str) -> anyhow::Result<String> {
    let name = unique(prefix);
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    Api::<Namespace>::all(c.client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(name)
}

async fn drop_namespace(c: &Cluster, name: &str) -> anyhow::Result<()> {
    Api::<Namespace>::all(c.client.clone())
        .delete(name, &DeleteParams::default())
        .await?;
    Ok(())
}

fn cm(name: &str, labels: Value, data: Value) -> anyhow::Result<ConfigMap> {
    Ok(serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": data}),
    )?)
}

fn widget_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, "v1", "Widget"), "widgets")
}

/// Installs the test CRD (idempotently: a real cluster may already have it) and waits until
/// it is Established.
async fn widget_crd(c: &Cluster) -> anyhow::Result<Api<DynamicObject>> {
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{GROUP}")},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wdg"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["mode"],
                            "properties": {
                                "mode": {"type": "string", "enum": ["STRICT", "PERMISSIVE"]},
                                "replicas": {"type": "integer", "minimum": 0},
                                "port": {"x-kubernetes-int-or-string": true},
                                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                                "note": {"type": "string", "nullable": true},
                                "level": {"type": "string", "default": "basic"}
                            }
                        },
                        "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
                    }
                }}
            }]
        }
    });
    let crds = Api::<DynamicObject>::all_with(c.client.clone(), &crd_resource());
    let crd: DynamicObject = serde_json::from_value(crd)?;
    crds.patch(
        &format!("widgets.{GROUP}"),
        &PatchParams::apply("conformance-setup").force(),
        &Patch::Apply(&crd),
    )
    .await?;
    eventually(30, || async {
        let crd = crds.get(&format!("widgets.{GROUP}")).await?;
        let established = crd
            .data
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            });
        Ok(established.then_some(()))
    })
    .await?;
    Ok(Api::all_with(c.client.clone(), &widget_resource()))
}

fn crd_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        "customresourcedefinitions",
    )
}

fn widget(name: &str, spec: Value) -> anyhow::Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": format!("{GROUP}/v1"), "kind": "Widget", "metadata": {"name": name}, "spec": spec
    }))?)
}

#[tokio::test]
async fn discovery_serves_builtin_and_custom_kinds() -> anyhow::Result<()> {
    let c = cluster().await?;
    let version = c.client.apiserver_version().await?;
    ensure!(version.major == "1", "major version {}", version.major);
    widget_crd(&c).await?;
    let discovery = eventually(30, || async {
        let d = kube::Discovery::new(c.client.clone()).run().await?;
        Ok(d.has_group(GROUP).then_some(d))
    })
    .await?;
    let (deploy, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
        .context("apps/v1 Deployment is discoverable")?;
    ensure!(deploy.plural == "deployments" && caps.scope == kube::discovery::Scope::Namespaced);
    let (ns, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Namespace"))
        .context("v1 Namespace")?;
    ensure!(ns.plural == "namespaces" && caps.scope == kube::discovery::Scope::Cluster);
    let (crd, _) = discovery
        .resolve_gvk(&GroupVersionKind::gvk(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
        ))
        .context("CRDs are discoverable")?;
    ensure!(crd.plural == "customresourcedefinitions");
    let (w, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk(GROUP, "v1", "Widget"))
        .context("Widget registered")?;
    ensure!(w.plural == "widgets" && caps.scope == kube::discovery::Scope::Namespaced);
    ensure!(
        caps.subresources.iter().any(|(r, _)| r.plural == "status"),
        "status subresource listed"
    );
    for (group, version, kind) in [
        ("networking.k8s.io", "v1", "Ingress"),
        ("networking.k8s.io", "v1", "NetworkPolicy"),
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"),
        ("policy", "v1", "PodDisruptionBudget"),
        ("storage.k8s.io", "v1", "StorageClass"),
        (
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
        ),
        ("autoscaling", "v2", "HorizontalPodAutoscaler"),
        ("coordination.k8s.io", "v1", "Lease"),
        ("", "v1", "ResourceQuota"),
    ] {
        ensure!(
            discovery
                .resolve_gvk(&GroupVersionKind::gvk(group, version, kind))
                .is_some(),
            "{group}/{version} {kind}"
        );
    }
    Ok(())
}

/// Every namespace gets the cluster CA as ConfigMap kube-root-ca.crt (kube-controller-manager's
/// root CA publisher; EKS runs it), soon after it is created.
#[tokio::test]
async fn every_namespace_gets_the_root_ca_configmap() -> anyhow::Result<()> {
    let c = cluster().await?;
    let ns = namespace(&c, "rootca").await?;
    let api = Api::<ConfigMap>::namespaced(c.client.clone(), &ns);
    let published = eventually(10, || async { Ok(api.get_opt("kube-root-ca.crt").await?) })
        .await
        .with_context(|| format!("no kube-root-ca.crt in {ns}"))?;
    let ca = published
        .data
        .as_ref()
        .and_then(|d| d.get("ca.crt"))
        .context("ca.crt")?;
    ensure!(ca.contains("BEGIN CERTIFICATE"), "{ca}");
    if let Some(sim) = &c.sim {
        ensure!(*ca == sim.ca_pem(), "the cluster's own CA");
    }
    drop_namespace(&c, &ns).await
}

#[tokio::test]
async fn crud_uid_timestamps_and_optimistic_concurrency() -> anyhow::Result<()> {
    let c = cluster().await?;
    let ns = namespace(&c, "crud").await?;
    let api = Api::<ConfigMap>::namespaced(c.client.clone(), &ns);
    let created = api
        .create(
            &PostParams::default(),
            &cm("one", json!({}), json!({"k": "v"}))?,
        )
        .await?;
    let uid = created.metadata.uid.clone().context("uid set")?;
    ensure!(
        created.metadata.creation_timestamp.is_some(),
        "creationTimestamp set"
    );
    let rv1 = created
        .metadata
        .resource_version
        .clone()
        .context("resourceVersion set")?;

    let again = api_error(
        api.create(&PostParams::default(), &cm("one", json!({}), json!({}))?)
            .await,
    )?;
    ensure!(
        again.code == 409 && again.reason == "AlreadyExists",
        "{again:?}"
    );

    let mut fresh = api.get("one").await?;
    ensure!(fresh.metadata.uid.as_deref() == Some(uid.as_str()));
    fresh.data = Some([("k".to_string(), "v2".to_string())].into());
    let updated = api.replace("one", &PostParams::default(), &fresh).await?;
    ensure!(
        updated.metadata.resource_version.as_deref() != Some(rv1.as_str()),
        "resourceVersion moved"
    );

    // The same stale copy again: the server refuses it.
    let stale = api_error(api.replace("one", &PostParams::default(), &fresh).await)?;
    ensure!(stale.code == 409 && stale.reason == "Conflict", "{stale:?}");
    ensure!(
        stale.message.contains("the object has been modified"),
        "{}",
        stale.message
    );

    let list = api.list(&ListParams::default()).await?;
    ensure!(
        list.metadata
            .resource_version
            .as_deref()
            .is_some_and(|rv| !rv.is_empty()),
        "list resourceVersion"
    );
    // The root CA publisher's kube-root-ca.crt may or may not be there yet: not counted.
    let ours: Vec<_> = list
        .items
        .iter()
        .filter(|cm| cm.metadata.name.as_deref() != Some("kube-root-ca.crt"))
        .collect();
    ensure!(ours.len() == 1, "{ours:?}");

    api.delete("one", &DeleteParams::default()).await?;
    let gone = api_error(api.get("one").await)?;
    ensure!(gone.code == 404 && gone.reason == "NotFound", "{gone:?}");
    ensure!(
        gone.details
            .as_ref()
            .is_some_and(|d| d.name == "one" && d.kind == "configmaps"),
        "{gone:?}"
    );
    let missing = api_error(api.delete("one", &DeleteParams::default()).await)?;
    ensure!(missing.code == 404);

    let invalid = api_error(
        api.create(
            &PostParams::default(),
            &cm("Not_Valid", json!({}), json!({}))?,
        )
        .await,
    )?;
    ensure!(
        invalid.code == 422 && invalid.reason == "Invalid",
        "{invalid:?}"
    );

    // dryRun: answered, not stored.
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    api.create(&dry, &cm("dry", json!({}), json!({}))?).await?;
    ensure!(
        api_error(api.get("dry").await)?.code == 404,
        "dry-run create stored nothing"
    );
    drop_namespace(&c, &ns).await
}

fn deployment(name: &str, image: &str, replicas: i32) -> anyhow::Result<Deployment> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image}]}
            }
        }
    }))?)
}

#[tokio::test]
async fn generation_moves_on_spec_changes_only() -> anyhow::Result<()> {
    let c = cluster().await?;
    let ns = namespace(&c, "gen").await?;
    let api = Api::<Deployment>::namespaced(c.client.clone(), &ns);
    let d = api
        .create(&PostParams::default(), &deployment("web", "nginx:1", 1)?)
        .await?;
    ensure!(
        d.metadata.generation == Some(1),
        "{:?}",
        d.metadata.generation
    );
    let labelled = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await?;
    ensure!(
        labelled.metadata.generation == Some(1),
        "metadata change keeps generation"
    );
    let scaled = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await?;
    ensure!(
        scaled.metadata.generation == Some(2),
        "spec change bumps generation"
    );
    let status = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observedGeneration": 2, "replicas": 3}})),
        )
        .await?;
    ensure!(
        status.metadata.generation == Some(2),
        "status change keeps generation"
    );
    ensure!(status.status.as_ref().and_then(|s| s.observed_generation) == Some(2));
    // Status sent to the main resource is ignored.
    let ignored = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observedGeneration": 9}})),
        )
        .await?;
    ensure!(
        ignored.status.as_ref().and_then(|s| s.observed_generation) == Some(2),
        "main resource ignores status"
    );
    // Strategic merge patch merges containers by name; a container the live list lacks comes
    // first (`kubectl patch --type strategic` adding `third` to `[side, nginx]` gives
    // `third, side, nginx`; apimachinery strategicpatch mergeSortedSlice).
    let patched = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox"}]}}}})),
        )
        .await?;
    let names: Vec<String> = patched
        .spec
        .and_then(|s| s.template.spec)
        .map(|s| s.containers.into_iter().map(|c| c.name).collect())
        .unwrap_or_default();
    ensure!(names == ["side", "main"], "{names:?}");
    drop_namespace(&c, &ns).await
}

#[tokio::test]
async fn label_and_field_selectors() -> anyhow::Result<()> {
    let c = cluster().await?;
    let ns = namespace(&c, "sel").await?;
    let api = Api::<ConfigMap>::namespaced(c.client.clone(), &ns);
    for (name, labels) in [
        ("a", json!({"app": "web", "tier": "front"})),
        ("b", json!({"app": "web", "tier": "back"})),
        ("c", json!({"app": "db"})),
    ] {
        api.create(&PostParams::default(), &cm(name, labels, json!({}))?)
            .await?;
    }
    let names = |sel: &'static str, field: bool| {
        let api = api.clone();
        async move {
            let lp = if field {
                ListParams::default().fields(sel)
            } else {
                ListParams::default().labels(sel)
            };
            let mut names: Vec<String> = api
                .list(&lp)
                .await?
                .items
                .into_iter()
                .filter_map(|i| i.metadata.name)
                .collect();
            names.sort();
            anyhow::Ok(
                names
                    .into_iter()
                    .filter(|n| n != "kube-root-ca.crt")
                    .collect::<Vec<_>>(),
            )
        }
    };
    ensure!(names("app=web", false).await? == ["a", "b"]);
    ensure!(names("app==web,tier!=back", false).await? == ["a"]);
    ensure!(names("tier in (front,back)", false).await? == ["a", "b"]);
    ensure!(names("app notin (web)", false).await? == ["c"]);
    ensure!(names("tier", false).await? == ["a", "b"]);
    ensure!(names("!tier", false).await? == ["c"]);
    ensure!(names("metadata.name=b", true).await? == ["b"]);
    ensure!(names("metadata.name!=b", true).await? == ["a", "c"]);
    let everywhere = Api::<ConfigMap>::all(c.client.clone())
        .list(
            &ListParams::default()
                .fields(&format!("metadata.namespace={ns}"))
                .labels("app"),
        )
        .await?;
    ensure!(everywhere.items.len() == 3, "{}", everywhere.items.len());
    drop_namespace(&c, &ns).await
}

#[tokio::test]
async fn server_side_apply_ownership_conflicts_and_force() -> anyhow::Result<()> {
    let c = cluster().await?;
    let ns = namespace(&c, "ssa").await?;
    let api = Api::<ConfigMap>::namespaced(c.client.clone(), &ns);
    let applied = |data: Value| -> anyhow::Result<Value> {
        Ok(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": data}),
        )
    };
    // Create-if-absent.
    let first = api
        .patch(
            "cfg",
            &PatchParams::apply("alice"),
            &Patch::Apply(applied(json!({"x": "1", "y": "2"}))?),
        )
        .await?;
    ensure!(first.data == Some([("x".into(), "1".into()), ("y".into(), "2".into())].into()));
    let managers: Vec<String> = first
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    ensure!(managers == ["alice"], "{managers:?}");

    // Same value: shared ownership, no conflict.
    api.patch(
        "cfg",
        &PatchParams::apply("bob"),
        &Patch::Apply(applied(json!({"x": "1"}))?),
    )
    .await?;
    // Different value of a field alice owns: conflict.
    let conflict = api_error(
        api.patch(
            "cfg",
            &PatchParams::apply("carol"),
            &Patch::Apply(applied(json!({"y": "9"}))?),
        )
        .await,
    )?;
    ensure!(
        conflict.code == 409 && conflict.reason == "Conflict",
        "{conflict:?}"
    );
    ensure!(conflict.message.contains("alice"), "{}", conflict.message);
    let causes = conflict.details.map(|d| d.causes).unwrap_or_default();
    ensure!(
        causes.iter().any(|c| c.field.contains("data.y")),
        "{causes:?}"
    );
    // Forced: carol takes y over.
    let forced = api
        .patch(
            "cfg",
            &PatchParams::apply("carol").force(),
            &Patch::Apply(applied(json!({"y": "9"}))?),
        )
        .await?;
    ensure!(
        forced
            .data
            .as_ref()
            .and_then(|d| d.get("y"))
            .map(String::as_str)
            == Some("9")
    );
    // Alice stops applying x, but bob still owns it: it stays. Carol stops applying y: it goes.
    api.patch(
        "cfg",
        &PatchParams::apply("alice"),
        &Patch::Apply(applied(json!({}))?),
    )
    .await?;
    let after = api
        .patch(
            "cfg",
            &PatchParams::apply("carol"),
            &Patch::Apply(applied(json!({}))?),
        )
        .await?;
    let data = after.data.unwrap_or_default();
    ensure!(
        data.get("x").map(String::as_str) == Some("1") && !data.contains_key("y"),
        "{data:?}"
    );

    // An Update by another manager also owns what it changed.
    api.patch(
        "cfg",
        &PatchParams {
            field_manager: Some("editor".into()),
            ..Default::default()
        },
        &Patch::Merge(json!({"data": {"x": "edited"}})),
    )
    .await?;
    let clash = api_error(
        api.patch(
            "cfg",
            &PatchParams::apply("bob"),
            &Patch::Apply(applied(json!({"x": "1"}))?),
        )
        .await,
    )?;
    ensure!(
        clash.code == 409 && clash.message.contains("editor"),
        "{clash:?}"
    );

    // Stale resourceVersion in an applied configuration.
    let mut stale = applied(json!({"z": "1"}))?;
    stale["metadata"]["resourceVersion"] = json!(first.metadata.resource_version);
    let stale_err = api_error(
        api.patch("cfg", &PatchParams::apply("dave"), &Patch::Apply(stale))
            .await,
    )?;
    ensure!(stale_err.code == 409, "{stale_err:?}");
    drop_namespace(&c, &ns).await
}

#[tokio::test]
async fn merge_and_json_patches() -> anyhow::Result<()> {
    let c = cluster().await?;
    let ns = namespace(&c, "patch").await?;
    let api = Api::<ConfigMap>::namespaced(c.client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &cm("p", json!({"a": "1"}), json!({"k": "v", "drop": "me"}))?,
    )
    .await?;
    let merged = api
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"b": "2"}}, "data": {"drop": null}})),
        )
        .await?;
    ensure!(merged
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.len() == 2));
    ensure!(merged
        .data
        .as_ref()
        .is_some_and(|d| !d.contains_key("drop")));
    let patch: json_patch_types::Patch = serde_json::from_value(json!([
        {"op": "add", "path": "/data/n", "value": "new"},
        {"op": "replace", "path": "/data/k", "value": "w"},
        {"op": "remove", "path": "/metadata/labels/a"}
    ]))?;
    let jsoned = api
        .patch("p", &PatchParams::default(), &Patch::<()>::Json(patch))
        .await?;
    let data = jsoned.data.unwrap_or_default();
    ensure!(
        data.get("n").map(String::as_str) == Some("new")
            && data.get("k").map(String::as_str) == Some("w")
    );
    ensure!(jsoned.metadata.labels.is_some_and(|l| !l.contains_key("a")));
    let failing: json_patch_types::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/data/k", "value": "nope"}]))?;
    ensure!(
        api.patch("p", &PatchParams::default(), &Patch::<()>::Json(failing))
            .await
            .is_err(),
        "failed test op"
    );
    drop_namespace(&c, &ns).await
}

/// kube re-exports json-patch's types; name them once here.
mod json_patch_types {
    pub use json_patch::Patch;
}

#[tokio::test]
async fn custom_resources_status_subresource_and_generation() -> anyhow::Result<()> {
    let c = cluster().await?;
    let widgets = widget_crd(&c).await?;
    let ns = namespace(&c, "cr").await?;
    let api = Api::<DynamicObject>::namespaced_with(c.client.clone(), &ns, &widget_resource());
    let mut w = widget("w1", json!({"mode": "STRICT", "port": "http"}))?;
    w.data["status"] = json!({"phase": "Ignored"});
    let created = api.create(&PostParams::default(), &w).await?;
    ensure!(
        created
            .data
            .get("status")
            .is_none_or(|s| s.get("phase").is_none()),
        "status dropped on create"
    );
    ensure!(created.metadata.generation == Some(1));
    ensure!(
        created.data["spec"]["level"] == "basic",
        "schema default applied: {}",
        created.data
    );

    let with_status = api
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}})),
        )
        .await?;
    ensure!(with_status.data["status"]["phase"] == "Ready");
    ensure!(
        with_status.metadata.generation == Some(1),
        "status write keeps generation"
    );
    let main = api
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}, "status": {"phase": "Nope"}})),
        )
        .await?;
    ensure!(
        main.data["status"]["phase"] == "Ready",
        "main resource ignores status"
    );
    ensure!(
        main.metadata.generation == Some(2),
        "spec change bumps generation"
    );
    let all = widgets
        .list(&ListParams::default().fields(&format!("metadata.namespace={ns}")))
        .await?;
    ensure!(all.items.len() == 1);
    drop_namespace(&c, &ns).await
}

#[tokio::test]
async fn custom_resources_validate_against_the_schema() -> anyhow::Result<()> {
    let c = cluster().await?;
    widget_crd(&c).await?;
    let ns = namespace(&c, "val").await?;
    let api = Api::<DynamicObject>::namespaced_with(c.client.clone(), &ns, &widget_resource());
    let field_of = |s: &Status| {
        s.details
            .as_ref()
            .map(|d| d.causes.iter().map(|c| c.field.clone()).collect::<Vec<_>>())
            .unwrap_or_default()
    };

    let bad_enum = api_error(
        api.create(
            &PostParams::default(),
            &widget("bad", json!({"mode": "STRICTT"}))?,
        )
        .await,
    )?;
    ensure!(
        bad_enum.code == 422 && bad_enum.reason == "Invalid",
        "{bad_enum:?}"
    );
    ensure!(
        bad_enum.message.contains("spec.mode"),
        "{}",
        bad_enum.message
    );
    ensure!(
        field_of(&bad_enum).contains(&"spec.mode".to_string()),
        "{bad_enum:?}"
    );

    let missing = api_error(
        api.create(
            &PostParams::default(),
            &widget("bad", json!({"replicas": 1}))?,
        )
        .await,
    )?;
    ensure!(
        missing.code == 422 && field_of(&missing).contains(&"spec.mode".to_string()),
        "{missing:?}"
    );

    let wrong_type = api_error(
        api.create(
            &PostParams::default(),
            &widget("bad", json!({"mode": "STRICT", "replicas": "two"}))?,
        )
        .await,
    )?;
    ensure!(
        wrong_type.code == 422 && field_of(&wrong_type).contains(&"spec.replicas".to_string()),
        "{wrong_type:?}"
    );

    let below = api_error(
        api.create(
            &PostParams::default(),
            &widget("bad", json!({"mode": "STRICT", "replicas": -1}))?,
        )
        .await,
    )?;
    ensure!(
        below.code == 422 && field_of(&below).contains(&"spec.replicas".to_string()),
        "{below:?}"
    );

    // int-or-string, nullable and preserve-unknown-fields are accepted.
    let ok = api
        .create(&PostParams::default(), &widget("ok", json!({"mode": "PERMISSIVE", "port": 8080, "note": null, "extra": {"any": {"thing": 1}}}))?)
        .await?;
    ensure!(
        ok.data["spec"]["extra"]["any"]["thing"] == 1,
        "preserved: {}",
        ok.data
    );

    // Unknown fields in an update: pruned by default, refused with fieldValidation=Strict.
    let pruned = api
        .patch(
            "ok",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"bogus": true}})),
        )
        .await?;
    ensure!(
        pruned.data["spec"].get("bogus").is_none(),
        "unknown field pruned: {}",
        pruned.data
    );
    let strict = PatchParams {
        field_validation: Some(ValidationDirective::Strict),
        ..PatchParams::default()
    };
    let refused = api_error(
        api.patch(
            "ok",
            &strict,
            &Patch::Merge(json!({"spec": {"bogus": true}})),
        )
        .await,
    )?;
    ensure!(
        refused.code == 400 && refused.message.contains("bogus"),
        "{refused:?}"
    );
    // Server-side apply needs a typed patch: an undeclared field is a 500 whatever
    // fieldValidation says (kubernetes/kubernetes#105916).
    for validation in [None, Some(ValidationDirective::Strict)] {
        let params = PatchParams {
            field_validation: validation,
            ..PatchParams::apply("val")
        };
        let typed = api_error(
            api.patch(
                "ok",
                &params,
                &Patch::Apply(widget("ok", json!({"mode": "PERMISSIVE", "bogus": true}))?),
            )
            .await,
        )?;
        ensure!(
            typed.code == 500
                && typed
                    .message
                    .contains("failed to create typed patch object")
                && typed
                    .message
                    .contains(".spec.bogus: field not declared in schema"),
            "{typed:?}"
        );
    }
    drop_namespace(&c, &ns).await
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() -> anyhow::Result<()> {
    let c = cluster().await?;
    let ns = namespace(&c, "fin").await?;
    let api = Api::<ConfigMap>::namespaced(c.client.clone(), &ns);
    let mut held = cm("held", json!({}), json!({}))?;
    held.metadata.finalizers = Some(vec!["conformance.labflow.dev/hold".into()]);
    api.create(&PostParams::default(), &held).await?;
    api.delete("held", &DeleteParams::default()).await?;
    let deleting = api.get("held").await?;
    ensure!(
        deleting.metadata.deletion_timestamp.is_some(),
        "deletionTimestamp set"
    );
    let add = api
        .patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": ["conformance.labflow.dev/hold", "another/one"]}})))
        .await;
    ensure!(
        api_error(add)?.code == 422,
        "no new finalizers while deleting"
    );
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await?;
    eventually(30, || async {
        Ok(api.get_opt("held").await?.is_none().then_some(()))
    })
    .await?;
    drop_namespace(&c, &ns).await
}

#[tokio::test]
async fn namespace_deletion_cascades_and_waits_for_finalizers() -> anyhow::Result<()> {
    let c = cluster().await?;
    let ns = namespace(&c, "casc").await?;
    let cms = Api::<ConfigMap>::namespaced(c.client.clone(), &ns);
    let secrets = Api::<Secret>::namespaced(c.client.clone(), &ns);
    let mut held = cm("held", json!({}), json!({}))?;
    held.metadata.finalizers = Some(vec!["conformance.labflow.dev/hold".into()]);
    cms.create(&PostParams::default(), &held).await?;
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"a": "b"}}))?;
    secrets.create(&PostParams::default(), &secret).await?;

    let namespaces = Api::<Namespace>::all(c.client.clone());
    namespaces.delete(&ns, &DeleteParams::default()).await?;
    let terminating = namespaces.get(&ns).await?;
    ensure!(terminating.status.and_then(|s| s.phase).as_deref() == Some("Terminating"));
    let refused = api_error(
        cms.create(&PostParams::default(), &cm("late", json!({}), json!({}))?)
            .await,
    )?;
    ensure!(
        refused.code == 403 && refused.reason == "Forbidden",
        "{refused:?}"
    );

    eventually(60, || async {
        Ok(secrets.get_opt("s").await?.is_none().then_some(()))
    })
    .await?;
    let still = eventually(60, || async {
        Ok(cms
            .get_opt("held")
            .await?
            .filter(|c| c.metadata.deletion_timestamp.is_some()))
    })
    .await?;
    ensure!(still.metadata.finalizers.is_some());
    ensure!(
        namespaces.get_opt(&ns).await?.is_some(),
        "namespace waits for the finalizer"
    );
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await?;
    eventually(120, || async {
        Ok(namespaces.get_opt(&ns).await?.is_none().then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn watch_streams_added_modified_deleted() -> anyhow::Result<()> {
    let c = cluster().await?;
    let ns = namespace(&c, "watch").await?;
    let api = Api::<ConfigMap>::namespaced(c.client.clone(), &ns);
    let rv = api
        .list(&ListParams::default())
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let mut stream = api
        .watch(
            &WatchParams::default().labels("watched=yes").timeout(30),
            &rv,
        )
        .await?
        .boxed();
    api.create(
        &PostParams::default(),
        &cm("w", json!({"watched": "yes"}), json!({"v": "1"}))?,
    )
    .await?;
    api.create(&PostParams::default(), &cm("other", json!({}), json!({}))?)
        .await?;
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await?;
    api.delete("w", &DeleteParams::default()).await?;
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let next =
            tokio::time::timeout(std::time::Duration::from_secs(20), stream.try_next()).await??;
        match next {
            Some(WatchEvent::Added(o)) => seen.push(("ADDED", o.metadata.name, o.data)),
            Some(WatchEvent::Modified(o)) => seen.push(("MODIFIED", o.metadata.name, o.data)),
            Some(WatchEvent::Deleted(o)) => seen.push(("DELETED", o.metadata.name, o.data)),
            Some(WatchEvent::Bookmark(_)) => {}
            Some(WatchEvent::Error(e)) => anyhow::bail!("watch error {e:?}"),
            None => anyhow::bail!("watch ended early"),
        }
    }
    let types: Vec<&str> = seen.iter().map(|(t, _, _)| *t).collect();
    ensure!(types == ["ADDED", "MODIFIED", "DELETED"], "{types:?}");
    ensure!(
        seen.iter().all(|(_, n, _)| n.as_deref() == Some("w")),
        "selector applied"
    );
    ensure!(
        seen[1]
            .2
            .as_ref()
            .and_then(|d| d.get("v"))
            .map(String::as_str)
            == Some("2")
    );
    drop_namespace(&c, &ns).await
}

#[tokio::test]
async fn crds_report_established_and_stored_versions() -> anyhow::Result<()> {
    let c = cluster().await?;
    widget_crd(&c).await?;
    let crd = Api::<DynamicObject>::all_with(c.client.clone(), &crd_resource())
        .get(&format!("widgets.{GROUP}"))
        .await?;
    ensure!(
        crd.data["status"]["storedVersions"] == json!(["v1"]),
        "{}",
        crd.data["status"]
    );
    ensure!(crd.data["status"]["acceptedNames"]["kind"] == "Widget");
    let bad: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "wrongname.conformance.labflow.dev"},
        "spec": {"group": GROUP, "scope": "Namespaced", "names": {"plural": "gadgets", "kind": "Gadget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object"}}}]}
    }))?;
    let err = api_error(
        Api::<DynamicObject>::all_with(c.client.clone(), &crd_resource())
            .create(&PostParams::default(), &bad)
            .await,
    )?;
    ensure!(err.code == 422 && err.reason == "Invalid", "{err:?}");
    Ok(())
}

#[tokio::test]
async fn authentication_refuses_bad_tokens() -> anyhow::Result<()> {
    use kubesim_support::{eks_token, TokenSpec};
    let c = cluster().await?;
    let ten_minutes_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let mut refused = vec![
        ("garbage", "not-a-token".to_string()),
        ("eks prefix, bad base64", "k8s-aws-v1.!!!".to_string()),
        (
            "expired",
            eks_token(&TokenSpec {
                signed_at: an_hour_ago,
                ..Default::default()
            })?,
        ),
        (
            "wrong cluster",
            eks_token(&TokenSpec {
                cluster: "another-cluster",
                ..Default::default()
            })?,
        ),
        (
            "wrong secret",
            eks_token(&TokenSpec {
                secret_key: "not-the-secret",
                ..Default::default()
            })?,
        ),
        (
            "unknown key",
            eks_token(&TokenSpec {
                access_key: "AKIAUNKNOWN000000000",
                ..Default::default()
            })?,
        ),
    ];
    let tampered = eks_token(&TokenSpec::default())?.replace("k8s-aws-v1.", "");
    let url = String::from_utf8(base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        tampered,
    )?)?;
    let url = url.replace("eu-west-1", "us-west-2");
    refused.push((
        "tampered region",
        format!(
            "k8s-aws-v1.{}",
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, url)
        ),
    ));
    for (what, token) in refused {
        let client = c.client_with_token(&token)?;
        let result = Api::<Namespace>::all(client)
            .list(&ListParams::default())
            .await;
        let status = api_error(result).with_context(|| what.to_string())?;
        ensure!(
            status.code == 401 && status.reason == "Unauthorized",
            "{what}: {status:?}"
        );
    }
    if !c.is_real() {
        // Tokens aws-iam-authenticator accepts: up to 15 minutes old, either payload hash.
        for (what, spec) in [
            (
                "ten minutes old",
                TokenSpec {
                    signed_at: ten_minutes_ago,
                    ..Default::default()
                },
            ),
            (
                "UNSIGNED-PAYLOAD",
                TokenSpec {
                    unsigned_payload: true,
                    ..Default::default()
                },
            ),
        ] {
            let client = c.client_with_token(&eks_token(&spec)?)?;
            Api::<Namespace>::all(client)
                .list(&ListParams::default())
                .await
                .with_context(|| what.to_string())?;
        }
    }
    Ok(())
}

/// The real-cluster mode, end to end: this suite, in a process of its own (no kubesim started
/// there, so nothing else installs a TLS provider), against a kubesim reached only through a
/// kubeconfig file, as it would reach a kind cluster.
#[tokio::test]
async fn real_cluster_mode_runs_through_a_kubeconfig_file() -> anyhow::Result<()> {
    use labflow_testbed::kubesim::{KubeSim, KubeSimOptions};
    let token = format!("conformance-{}", unique("token"));
    let sim = KubeSim::start(KubeSimOptions::new("conformance").with_static_token(&token)).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("kubeconfig.yaml");
    std::fs::write(&path, sim.kubeconfig(&token))?;
    let exe = std::env::current_exe()?;
    let run = tokio::process::Command::new(exe)
        .args(["--skip", "real_cluster_mode_runs_through_a_kubeconfig_file"])
        .env(kubesim_support::KUBECONFIG_VAR, &path)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&run.stdout);
    ensure!(
        run.status.success(),
        "the suite in real-cluster mode failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // It really ran the suite against this kubesim.
    ensure!(stdout.contains("test result: ok"), "{stdout}");
    ensure!(
        sim.requests()
            .iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/configmaps")),
        "no request reached the kubesim"
    );
    Ok(())
}
