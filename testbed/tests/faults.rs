//! Every fault kind, injected through the control API (HTTP) of a whole testbed and observed by
//! real clients: Kubernetes-side HTTP 429/500 on the Nth matching request and latency (kube::Client),
//! a failing HelmRelease and a stuck finalizer, and EKS API 500/throttling on the Nth request and
//! latency (aws-sdk-eks).

mod controllers_support;
mod testbed_support;
mod wait_support;

use anyhow::{bail, ensure, Context as _};
use aws_sdk_eks::error::ProvideErrorMetadata;
use controllers_support::{api, apply_yaml, cond, eventually, get, ready};
use kube::api::{DeleteParams, PostParams};
use labflow_testbed::controllers::{ControllerOptions, FluxOptions};
use labflow_testbed::ControllersFor;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testbed_support::{add_rule, control};

fn api_status(e: kube::Error) -> anyhow::Result<(u16, String)> {
    match e {
        kube::Error::Api(s) => Ok((s.code, s.reason)),
        other => bail!("expected an API error, got {other}"),
    }
}

#[tokio::test]
async fn kubernetes_request_faults_status_on_nth_request_and_latency() -> anyhow::Result<()> {
    let cl = testbed_support::cluster("kfaults", None).await?;
    let base = cl.testbed.control_endpoint();
    let c = cl.client(true).await?;
    let no_retry = cl.client(false).await?;
    let sim = cl.kubesim().await?;
    let cms = api(&c, "v1", "ConfigMap", Some("default"));
    apply_yaml(
        &c,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: default\ndata:\n  a: b\n",
    )
    .await?;

    // HTTP 500 on the 2nd GET of the ConfigMap, once: kube does not retry a 500.
    let id = add_rule(
        &base,
        json!({"side": "kubernetes", "target": cl.name, "method": "GET",
               "path": "^/api/v1/namespaces/default/configmaps/settings$", "nth": 2,
               "action": {"type": "status", "code": 500}}),
    )
    .await?;
    cms.get("settings").await?;
    let err = cms
        .get("settings")
        .await
        .err()
        .context("2nd GET must fail")?;
    assert_eq!(api_status(err)?, (500, "InternalError".to_string()));
    cms.get("settings").await?;
    // Other requests are not counted: a list is a different path.
    cms.list(&Default::default()).await?;
    let (status, listed) = control(&base, "GET", "/faults", None).await?;
    assert_eq!(status, 200);
    assert_eq!(listed["rules"][0]["id"], json!(id));
    assert_eq!(listed["rules"][0]["fired"], json!(1));
    assert_eq!(
        control(&base, "DELETE", &format!("/faults/{id}"), None)
            .await?
            .0,
        200
    );

    // HTTP 429 (API Priority and Fairness) on the next matching request: with Retry-After: 1
    // kube's default retry waits and succeeds; without retries the caller sees TooManyRequests.
    add_rule(
        &base,
        json!({"side": "kubernetes", "method": "GET", "path": "/configmaps/settings$", "nth": 1,
               "action": {"type": "status", "code": 429}}),
    )
    .await?;
    sim.clear_requests();
    let started = Instant::now();
    cms.get("settings").await?;
    ensure!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After not honoured: {:?}",
        started.elapsed()
    );
    let statuses: Vec<u16> = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/configmaps/settings"))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [429, 200]);
    add_rule(
        &base,
        json!({"side": "kubernetes", "method": "GET", "path": "/configmaps/settings$", "times": 1,
               "action": {"type": "status", "code": 429}}),
    )
    .await?;
    let err = api(&no_retry, "v1", "ConfigMap", Some("default"))
        .get("settings")
        .await
        .err()
        .context("throttled GET must fail without retries")?;
    assert_eq!(api_status(err)?, (429, "TooManyRequests".to_string()));
    api(&no_retry, "v1", "ConfigMap", Some("default"))
        .get("settings")
        .await
        .context("fired once only")?;

    // Latency: writes to ConfigMaps answer 400 ms late, and still succeed.
    add_rule(
        &base,
        json!({"side": "kubernetes", "method": "POST", "path": "/configmaps$",
               "action": {"type": "delay", "millis": 400}}),
    )
    .await?;
    let started = Instant::now();
    let cm: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "late", "namespace": "default"}, "data": {"x": "y"}}))?;
    cms.create(&PostParams::default(), &cm).await?;
    ensure!(started.elapsed() >= Duration::from_millis(400));
    ensure!(cms.get_opt("late").await?.is_some());

    // A rule for another cluster does not touch this one; clearing removes everything.
    add_rule(
        &base,
        json!({"side": "kubernetes", "target": "some-other-cluster",
               "action": {"type": "status", "code": 500}}),
    )
    .await?;
    cms.get("late").await?;
    assert_eq!(control(&base, "DELETE", "/faults", None).await?.0, 200);
    let (_, listed) = control(&base, "GET", "/faults", None).await?;
    assert_eq!(listed["rules"], json!([]));
    // Invalid rules are refused up front.
    let (status, body) = control(
        &base,
        "POST",
        "/faults",
        Some(json!({"side": "kubernetes", "path": "(", "action": {"type": "hang"}})),
    )
    .await?;
    assert_eq!(status, 400, "{body}");
    Ok(())
}

const HELM_CRDS: &[&str] = &[
    "source-controller__source.toolkit.fluxcd.io_helmrepositories.yaml",
    "helm-controller__helm.toolkit.fluxcd.io_helmreleases.yaml",
];

const RELEASE: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: podinfo\n  namespace: apps\nspec:\n  interval: 1h\n  url: https://stefanprodan.github.io/podinfo\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: podinfo\n  namespace: apps\nspec:\n  interval: 1h\n  chart:\n    spec:\n      chart: podinfo\n      version: 6.7.0\n      sourceRef:\n        kind: HelmRepository\n        name: podinfo\n";

async fn helm_release(c: &kube::Client) -> anyhow::Result<Option<Value>> {
    get(
        c,
        "helm.toolkit.fluxcd.io/v2",
        "HelmRelease",
        Some("apps"),
        "podinfo",
    )
    .await
}

#[tokio::test]
async fn object_faults_failing_release_and_stuck_finalizer() -> anyhow::Result<()> {
    let controllers: ControllersFor = Arc::new(|_: &str| {
        Some(
            ControllerOptions::default()
                .with_flux(FluxOptions::default().without_controller_gate())
                .with_workloads(),
        )
    });
    let cl = testbed_support::cluster("ofaults", Some(controllers)).await?;
    let base = cl.testbed.control_endpoint();
    let c = cl.client(true).await?;
    let crds = labflow_testbed::paths::crd_cache_dir().context("CRD cache")?;
    for file in HELM_CRDS {
        let text = std::fs::read_to_string(crds.join(file))
            .with_context(|| format!("{file} (run make crds)"))?;
        apply_yaml(&c, &text).await?;
    }
    eventually(10, "Flux CRDs served", || async {
        Ok(api(&c, "helm.toolkit.fluxcd.io/v2", "HelmRelease", None)
            .list(&Default::default())
            .await
            .is_ok()
            .then_some(()))
    })
    .await?;
    apply_yaml(&c, RELEASE).await?;
    eventually(15, "HelmRelease ready", || async {
        Ok(helm_release(&c).await?.filter(ready))
    })
    .await?;

    // Failing object: the release goes Stalled with the injected reason and message.
    let target = json!({"cluster": cl.name, "kind": "HelmRelease", "namespace": "apps",
                        "name": "podinfo", "reason": "InstallFailed",
                        "message": "injected: chart install failed"});
    let (status, body) =
        control(&base, "POST", "/faults/objects/fail", Some(target.clone())).await?;
    assert_eq!(status, 200, "{body}");
    let failed = eventually(10, "HelmRelease stalled", || async {
        Ok(helm_release(&c)
            .await?
            .filter(|h| cond(h, "Stalled").is_some_and(|s| s["status"] == "True")))
    })
    .await?;
    let ready_cond = cond(&failed, "Ready").context("Ready")?;
    assert_eq!(ready_cond["status"], "False");
    assert_eq!(ready_cond["reason"], "InstallFailed");
    assert_eq!(ready_cond["message"], "injected: chart install failed");
    let (_, listed) = control(&base, "GET", "/faults", None).await?;
    assert_eq!(listed["failures"][0]["name"], "podinfo");
    // It stays failed across reconciles (a spec change forces one).
    api(&c, "helm.toolkit.fluxcd.io/v2", "HelmRelease", Some("apps"))
        .patch(
            "podinfo",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now"}}}),
            ),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let still = helm_release(&c).await?.context("release")?;
    ensure!(!ready(&still), "failure lifted by a reconcile");
    // Cleared: the controller reports the real state again.
    let (status, _) = control(&base, "POST", "/faults/objects/clear", Some(target)).await?;
    assert_eq!(status, 200);
    eventually(10, "HelmRelease ready again", || async {
        Ok(helm_release(&c).await?.filter(ready))
    })
    .await?;

    // Stuck finalizer: deleting leaves the object Terminating until the finalizer is released.
    apply_yaml(
        &c,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  namespace: default\n",
    )
    .await?;
    let held = json!({"kind": "ConfigMap", "namespace": "default", "name": "held"});
    let (status, body) = control(
        &base,
        "POST",
        "/faults/objects/stuck-finalizer",
        Some(held.clone()),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let cms = api(&c, "v1", "ConfigMap", Some("default"));
    cms.delete("held", &DeleteParams::default()).await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let obj = get(&c, "v1", "ConfigMap", Some("default"), "held")
        .await?
        .context("deleted despite the stuck finalizer")?;
    ensure!(obj.pointer("/metadata/deletionTimestamp").is_some());
    assert_eq!(
        obj["metadata"]["finalizers"],
        json!([labflow_testbed::faults::STUCK_FINALIZER])
    );
    let (status, _) = control(
        &base,
        "POST",
        "/faults/objects/release-finalizer",
        Some(held),
    )
    .await?;
    assert_eq!(status, 200);
    eventually(10, "ConfigMap gone", || async {
        Ok(get(&c, "v1", "ConfigMap", Some("default"), "held")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    // An object that does not exist is a 404.
    let (status, _) = control(
        &base,
        "POST",
        "/faults/objects/stuck-finalizer",
        Some(json!({"kind": "ConfigMap", "namespace": "default", "name": "nope"})),
    )
    .await?;
    assert_eq!(status, 404);
    Ok(())
}

#[tokio::test]
async fn eks_api_faults_status_on_nth_request_throttling_and_latency() -> anyhow::Result<()> {
    let cl = testbed_support::cluster("efaults", None).await?;
    let base = cl.testbed.control_endpoint();
    let sim = cl.testbed.eks();
    let no_retry = aws_sdk_eks::Client::from_conf(
        cl.eks
            .config()
            .to_builder()
            .retry_config(aws_sdk_eks::config::retry::RetryConfig::disabled())
            .build(),
    );

    // HTTP 500 on the 2nd DescribeCluster: ServerException for a caller without retries.
    add_rule(
        &base,
        json!({"side": "aws", "target": "eks", "operation": "DescribeCluster", "nth": 2,
               "action": {"type": "status", "code": 500}}),
    )
    .await?;
    no_retry.describe_cluster().name(&cl.name).send().await?;
    let err = no_retry
        .describe_cluster()
        .name(&cl.name)
        .send()
        .await
        .err()
        .context("2nd DescribeCluster must fail")?;
    assert_eq!(err.code(), Some("ServerException"));
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
    no_retry.describe_cluster().name(&cl.name).send().await?;

    // Throttling on the next ListClusters: the SDK's standard retry absorbs it...
    add_rule(
        &base,
        json!({"side": "aws", "target": "eks", "operation": "ListClusters", "nth": 1,
               "action": {"type": "status", "code": 429}}),
    )
    .await?;
    sim.clear_requests();
    let listed = cl.eks.list_clusters().send().await?;
    assert_eq!(listed.clusters(), std::slice::from_ref(&cl.name));
    let log: Vec<(String, u16, Option<String>)> = sim
        .requests()
        .into_iter()
        .map(|r| (r.operation, r.status, r.error))
        .collect();
    assert_eq!(
        log,
        [
            (
                "ListClusters".to_string(),
                429,
                Some("ThrottlingException".to_string())
            ),
            ("ListClusters".to_string(), 200, None)
        ]
    );
    // ...and a caller without retries sees ThrottlingException.
    add_rule(
        &base,
        json!({"side": "aws", "operation": "ListClusters", "times": 1,
               "action": {"type": "status", "code": 429}}),
    )
    .await?;
    let err = no_retry
        .list_clusters()
        .send()
        .await
        .err()
        .context("throttled")?;
    assert_eq!(err.code(), Some("ThrottlingException"));
    no_retry.list_clusters().send().await?;

    // Latency on the EKS API.
    add_rule(
        &base,
        json!({"side": "aws", "target": "eks", "operation": "ListNodegroups", "times": 1,
               "action": {"type": "delay", "millis": 300}}),
    )
    .await?;
    let started = Instant::now();
    no_retry
        .list_nodegroups()
        .cluster_name(&cl.name)
        .send()
        .await?;
    ensure!(started.elapsed() >= Duration::from_millis(300));

    // AWS-side rules do not touch the cluster's API server, and vice versa.
    add_rule(
        &base,
        json!({"side": "aws", "action": {"type": "status", "code": 500}}),
    )
    .await?;
    let c = cl.client(false).await?;
    api(&c, "v1", "Namespace", None)
        .list(&Default::default())
        .await?;
    ensure!(no_retry.list_clusters().send().await.is_err());
    assert_eq!(control(&base, "DELETE", "/faults", None).await?.0, 200);
    add_rule(
        &base,
        json!({"side": "kubernetes", "action": {"type": "status", "code": 500}}),
    )
    .await?;
    no_retry.list_clusters().send().await?;
    Ok(())
}
