//! health-check end to end against the testbed: the EKS simulator's cluster (its kubesim reached
//! over HTTPS with a real EKS token), the simulated Flux reading this repository's own
//! `infra/gitops` at the checkout's commit, the workload / load balancer / external-dns
//! controllers, moto for SSM and Route53 — after the real flux-bootstrap installed Flux.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use labflow_core::aws::AwsClients;
use labflow_core::contract::{Action, Source, StepInput};
use labflow_core::StepError;
use labflow_health_check::{handle, Ctx, FailedObject, Input, Output, Prober};
use labflow_testbed::controllers::{
    ControllerOptions, ExternalDnsOptions, FluxOptions, LoadBalancerOptions,
};
use labflow_testbed::faults::{ObjectFailure, ObjectFaults};
use labflow_testbed::kubesim::KubeSim;
use labflow_testbed::releases::{flux_install_manifest, ReleaseServer};
use labflow_testbed::{ControllersFor, Testbed, TestbedOptions};
use serde_json::{json, Value};

/// The environment whose GitOps entry point exists in the tree (`infra/gitops/clusters/lab`).
const ENV: &str = "lab";
const CLUSTER: &str = "labflow-lab";
/// The Flux release labflow pins (one version everywhere: issue 18 item 6).
const FLUX_VERSION: &str = labflow_core::versions::FLUX_VERSION;
/// Where the release server serves its `install.yaml`.
static MANIFEST_PATH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("/fluxcd/flux2/releases/download/v{FLUX_VERSION}/install.yaml")
});
/// The URL the GitRepository names; the simulated source-controller serves it from the checkout.
const REPO_URL: &str = "https://github.com/example/labflow";
const HEALTHY_WITHIN: Duration = Duration::from_secs(90);
/// health-check's own role: its access entry has only the Kubernetes group of the reader
/// ClusterRole, as Terraform configures it (issue 26 item 7).
const HEALTH_CHECK_ROLE: &str = "arn:aws:iam::123456789012:role/labflow-health-check";

/// One test's world. Every test owns its moto (the environment name is fixed by the tree).
struct World {
    tb: Testbed,
    _releases: ReleaseServer,
    /// The test's own clients (the cluster's creator: cluster admin).
    aws: AwsClients,
    /// health-check's clients: a session of [`HEALTH_CHECK_ROLE`].
    reader: AwsClients,
    kube: Arc<KubeSim>,
    /// `git rev-parse HEAD` of the checkout the simulated Flux reads.
    head: String,
}

impl World {
    /// health-check as it runs on the local cloud: its URL probes reach the simulated ALBs.
    fn ctx(&self) -> Ctx {
        Ctx::new(self.reader.clone()).with_prober(Prober::via(self.tb.alb_front_addr()))
    }

    fn faults(&self) -> ObjectFaults {
        ObjectFaults::new(self.kube.store(), &self.kube.faults())
    }
}

fn repo_root() -> anyhow::Result<PathBuf> {
    labflow_testbed::paths::repo_root().context("repo root")
}

fn git_head(repo: &std::path::Path) -> anyhow::Result<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["rev-parse", "HEAD"])
        .output()?;
    anyhow::ensure!(out.status.success(), "git rev-parse HEAD failed");
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// The CRD cache `make crds` fills; the shared reference copy when it is missing.
fn crd_dir() -> anyhow::Result<PathBuf> {
    let cache = labflow_testbed::paths::crd_cache_dir().context("no CRD cache location")?;
    if cache
        .join("kustomize-controller__kustomize.toolkit.fluxcd.io_kustomizations.yaml")
        .is_file()
    {
        return Ok(cache);
    }
    Ok(PathBuf::from("/work/shared/crds"))
}

/// A push of `sha` to main, as github-webhook hands it over.
fn push(sha: &str) -> Source {
    Source::Github {
        repository: "example/labflow".into(),
        branch: "main".into(),
        sha: sha.into(),
        delivery_id: "0b7c3f2e-health-check-test".into(),
        pusher: Some("tests".into()),
    }
}

fn input(source: Source) -> Input {
    Input::from(StepInput {
        environment: ENV.into(),
        action: Action::Sync,
        source,
        execution_arn: None,
    })
}

/// The testbed with Flux pointed at this checkout, a Route53 zone for external-dns, the
/// environment config in SSM, an ACTIVE cluster and Flux installed by flux-bootstrap.
/// `failure` is injected before Flux applies anything.
async fn world(failure: Option<ObjectFailure>) -> anyhow::Result<World> {
    let repo = repo_root()?;
    let head = git_head(&repo)?;
    let crds = crd_dir()?;
    let chart_crds = labflow_testbed::releases::chart_crds(&crds)?;
    let dns: Arc<Mutex<Option<ExternalDnsOptions>>> = Arc::default();
    let dns_for_cluster = dns.clone();
    let checkout = repo.clone();
    let controllers: ControllersFor = Arc::new(move |_cluster: &str| {
        let flux = FluxOptions::default()
            .with_chart_crds(chart_crds.clone())
            .with_repository(REPO_URL, checkout.clone());
        let mut c = ControllerOptions::default()
            .with_flux(flux)
            .with_workloads()
            .with_load_balancers(LoadBalancerOptions::default());
        if let Some(d) = dns_for_cluster.lock().ok().and_then(|d| d.clone()) {
            c = c.with_external_dns(d);
        }
        Some(c)
    });
    let tb = Testbed::start(TestbedOptions {
        controllers: Some(controllers),
        own_moto: true,
        ..Default::default()
    })
    .await?;
    let aws = AwsClients::from_config(tb.sdk_config().await).with_eks_endpoint(tb.eks_endpoint());
    // Before the cluster exists: its kubesim trusts the credentials known when it starts.
    let session = tb
        .role_session(HEALTH_CHECK_ROLE, "labflow-health-check")
        .await?;
    let reader_sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(labflow_core::aws::https_client())
        .region(aws_config::Region::new(tb.region().to_string()))
        .credentials_provider(session)
        .endpoint_url(tb.aws_endpoint())
        .load()
        .await;
    let reader = AwsClients::from_config(reader_sdk).with_eks_endpoint(tb.eks_endpoint());

    // The zone Terraform would create; external-dns writes the app hosts into it.
    let config_text = include_str!("../../../examples/environments/lab.json");
    let mut config: Value = serde_json::from_str(config_text)?;
    let domain = config["dns"]["domain"]
        .as_str()
        .context("dns.domain")?
        .to_string();
    let zone = aws
        .route53
        .create_hosted_zone()
        .name(&domain)
        .caller_reference(format!("health-{}", std::process::id()))
        .send()
        .await?
        .hosted_zone()
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
        .context("no zone")?;
    let mut dns_options = ExternalDnsOptions::new(&tb.aws_endpoint(), &zone, "labflow-lab");
    dns_options.region = tb.region().to_string();
    *dns.lock().map_err(|_| anyhow!("poisoned"))? = Some(dns_options);

    // Flux's install manifest (built from the pinned CRDs), served on loopback and pinned.
    let manifest = flux_install_manifest(&crds, FLUX_VERSION)?;
    let sha256 = labflow_flux_bootstrap::manifest::sha256_hex(manifest.as_bytes());
    let releases = ReleaseServer::start(HashMap::from([(
        MANIFEST_PATH.clone(),
        manifest.into_bytes(),
    )]))
    .await?;
    config["flux"]["manifestUrl"] = json!(releases.url(&MANIFEST_PATH));
    config["flux"]["manifestSha256"] = json!(sha256);
    config["flux"]["repository"]["url"] = json!(REPO_URL);
    config["dns"]["hostedZoneId"] = json!(zone);
    for (name, value, kind) in [
        (
            labflow_core::config::parameter_name(ENV),
            config.to_string(),
            aws_sdk_ssm::types::ParameterType::String,
        ),
        (
            format!("{}{ENV}", labflow_core::config::CREDENTIAL_PARAMETER_PREFIX),
            "github_pat_HealthCheckTestReadOnlyToken".to_string(),
            aws_sdk_ssm::types::ParameterType::SecureString,
        ),
    ] {
        aws.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(kind)
            .overwrite(true)
            .send()
            .await?;
    }

    // The cluster, as ensure-cluster leaves it.
    labflow_testkit::eks::owned_by(
        labflow_testkit::eks::create_cluster(
            &aws.eks,
            CLUSTER,
            config["cluster"]["roleArn"].as_str().context("roleArn")?,
        ),
        ENV,
    )
    .send()
    .await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let kube = loop {
        if let Some(kube) = tb.eks().kubesim(CLUSTER).await {
            if tb.clusters_with_controllers().iter().any(|c| c == CLUSTER) {
                break kube;
            }
        }
        if Instant::now() > deadline {
            bail!("the cluster did not become ACTIVE with controllers");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // health-check's entry as cluster-access makes it from Terraform's config: a group, no
    // access policy.
    aws.eks
        .create_access_entry()
        .cluster_name(CLUSTER)
        .principal_arn(HEALTH_CHECK_ROLE)
        .kubernetes_groups(labflow_core::reader::GROUP)
        .send()
        .await?;
    let w = World {
        tb,
        _releases: releases,
        aws,
        reader,
        kube,
        head,
    };
    if let Some(failure) = failure {
        w.faults().fail(failure)?;
    }

    // Flux, installed the way the state machine does it (DescribeCluster + EKS token).
    let bootstrap = labflow_flux_bootstrap::Ctx::new(w.aws.clone())?;
    let installed = labflow_flux_bootstrap::handle(
        &bootstrap,
        StepInput {
            environment: ENV.into(),
            action: Action::Create,
            source: push(&w.head),
            execution_arn: None,
        },
    )
    .await
    .map_err(|e| anyhow!("flux-bootstrap: {}: {}", e.name(), e.message()))?;
    anyhow::ensure!(installed.done, "{installed:?}");
    Ok(w)
}

/// Calls health-check the way the state machine does (Wait, call again) until `stop` says so
/// or the deadline passes. Returns every answer, the last one being the one `stop` accepted.
async fn poll(
    w: &World,
    source: &Source,
    within: Duration,
    stop: impl Fn(&Result<Output, StepError>) -> bool,
) -> anyhow::Result<Vec<Result<Output, StepError>>> {
    let ctx = w.ctx();
    let deadline = Instant::now() + within;
    let mut answers = Vec::new();
    loop {
        let call = Instant::now();
        let answer = handle(&ctx, input(source.clone())).await;
        let took = call.elapsed();
        anyhow::ensure!(took < Duration::from_secs(10), "one call took {took:?}");
        let done = stop(&answer);
        answers.push(answer);
        if done {
            return Ok(answers);
        }
        if Instant::now() > deadline {
            let last = answers.last().map(|a| match a {
                Ok(o) => serde_json::to_string_pretty(o).unwrap_or_default(),
                Err(e) => format!("{}: {}", e.name(), e.message()),
            });
            bail!(
                "no stop after {within:?} ({} calls); last: {}",
                answers.len(),
                last.unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn phases(answers: &[Result<Output, StepError>]) -> Vec<String> {
    answers
        .iter()
        .map(|a| match a {
            Ok(o) => o.phase.clone(),
            Err(e) => e.name().to_string(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_checks_reach_healthy_at_the_checkouts_commit() -> anyhow::Result<()> {
    let w = world(None).await?;
    let target = format!("main@sha1:{}", w.head);
    let answers = poll(&w, &push(&w.head), HEALTHY_WITHIN, |a| {
        a.is_err() || a.as_ref().is_ok_and(|o| o.done)
    })
    .await?;
    let seen = phases(&answers);
    // On the way nothing errs and nothing claims to be done early.
    for a in &answers[..answers.len() - 1] {
        let o = a
            .as_ref()
            .map_err(|e| anyhow!("{}: {} (phases {seen:?})", e.name(), e.message()))?;
        assert!(!o.done && !o.healthy && o.phase != "healthy", "{o:?}");
    }
    let last = answers
        .last()
        .context("no answer")?
        .as_ref()
        .map_err(|e| anyhow!("{}: {} (phases {seen:?})", e.name(), e.message()))?;
    assert!(last.done && last.healthy, "{seen:?}");
    assert_eq!(last.phase, "healthy");
    assert_eq!(last.revision.as_deref(), Some(target.as_str()));
    assert_eq!(last.target_revision.as_deref(), Some(target.as_str()));
    assert!(
        last.failed.is_empty() && last.pending.is_empty(),
        "{last:?}"
    );
    assert_eq!(last.counts.failed, 0);
    assert_eq!(last.counts.in_progress, 0);
    // The whole tree of the lab: layers, releases, namespaces, ingresses, ...
    assert!(last.counts.current > 30, "{:?}", last.counts);
    assert!(last.controller_problems.is_empty());
    assert!(last.mesh.strict_peer_authentication, "{:?}", last.mesh);
    assert_eq!(last.mesh.injected_namespaces, ["bookinfo", "podinfo"]);
    assert!(last.mesh.holds());
    // The hosts the Ingresses ask external-dns for are in the zone.
    assert!(!last.dns.hosts.is_empty(), "{:?}", last.dns);
    assert!(
        last.dns
            .hosts
            .iter()
            .all(|h| h.ends_with("lab.example.com")),
        "{:?}",
        last.dns
    );
    assert!(last.dns.missing.is_empty(), "{:?}", last.dns);
    // The lab answers: each public URL the tree marks was requested and its app answered.
    let urls: Vec<&str> = last.urls.iter().map(|u| u.url.as_str()).collect();
    assert_eq!(
        urls,
        [
            "https://bookinfo.lab.example.com/productpage",
            "https://grafana.lab.example.com/login",
            "https://kiali.lab.example.com/kiali/",
            "https://podinfo.lab.example.com/"
        ],
        "{:?}",
        last.urls
    );
    assert!(
        last.urls.iter().all(|u| u.ok && u.status == Some(200)),
        "{:?}",
        last.urls
    );

    // What Flux applied is the checkout's commit, in every Kustomization of the tree.
    let kustomizations = labflow_health_check::observe::list_all(
        &w.kube_client().await?,
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "Kustomization",
    )
    .await
    .map_err(|e| anyhow!("{e}"))?
    .context("Kustomizations not served")?;
    assert!(kustomizations.len() >= 6, "{}", kustomizations.len());
    for k in &kustomizations {
        assert_eq!(
            k.pointer("/status/lastAppliedRevision"),
            Some(&json!(target)),
            "{}",
            k["metadata"]["name"]
        );
    }

    // Without a push target (console run), the applied revision must match what was fetched.
    let console = handle(
        &w.ctx(),
        input(Source::Console {
            requested_by: Some("tests".into()),
        }),
    )
    .await
    .map_err(|e| anyhow!("{}: {}", e.name(), e.message()))?;
    assert!(console.done, "{console:?}");
    assert_eq!(console.revision.as_deref(), Some(target.as_str()));
    assert_eq!(console.target_revision, None);

    // All of that with read-only access: health-check's identity can read no Secret (the Git
    // credentials live in one) and write nothing (issue 26 item 7).
    let reader = labflow_core::kube_client::cluster_client(&w.reader, CLUSTER)
        .await
        .map_err(|e| anyhow!("{e}"))?
        .context("no endpoint")?;
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(reader.clone(), "flux-system");
    let secret = secrets.get("flux-system").await;
    assert!(
        matches!(&secret, Err(kube::Error::Api(s)) if s.code == 403),
        "health-check read the Git credentials: {:?}",
        secret.map(|s| s.metadata.name)
    );
    let kustomizations = kube::Api::<kube::api::DynamicObject>::namespaced_with(
        reader,
        "flux-system",
        &kube::core::ApiResource {
            group: "kustomize.toolkit.fluxcd.io".into(),
            version: "v1".into(),
            api_version: "kustomize.toolkit.fluxcd.io/v1".into(),
            kind: "Kustomization".into(),
            plural: "kustomizations".into(),
        },
    );
    let suspend = kustomizations
        .patch(
            "flux-system",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"suspend": true}})),
        )
        .await;
    assert!(
        matches!(&suspend, Err(kube::Error::Api(s)) if s.code == 403),
        "health-check suspended Flux: {suspend:?}"
    );
    Ok(())
}

impl World {
    /// A client of the cluster as the step gets one (DescribeCluster + EKS token).
    async fn kube_client(&self) -> anyhow::Result<kube::Client> {
        labflow_core::kube_client::cluster_client(&self.aws, CLUSTER)
            .await
            .map_err(|e| anyhow!("{e}"))?
            .context("no endpoint")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_helm_release_is_reported_exactly() -> anyhow::Result<()> {
    let message = "Helm install failed for release podinfo/podinfo with chart podinfo@6.14.1: context deadline exceeded";
    let failure = ObjectFailure::new("HelmRelease", Some("podinfo"), "podinfo", message)
        .with_reason("InstallFailed");
    let w = world(Some(failure)).await?;
    let target = format!("main@sha1:{}", w.head);

    // At the target revision a failed object is the end of the wait: labflow.ComponentFailed.
    let answers = poll(&w, &push(&w.head), HEALTHY_WITHIN, |a| {
        a.is_err() || a.as_ref().is_ok_and(|o| o.done)
    })
    .await?;
    let seen = phases(&answers);
    let err = match answers.last() {
        Some(Err(e)) => e,
        other => bail!("expected labflow.ComponentFailed, got {other:?} ({seen:?})"),
    };
    assert_eq!(err.name(), "labflow.ComponentFailed", "{err}");
    assert_eq!(
        err.message(),
        format!(
            "1 Flux component(s) failed at {target}: HelmRelease podinfo/podinfo (InstallFailed): {message}"
        )
    );
    for a in &answers[..answers.len() - 1] {
        let o = a
            .as_ref()
            .map_err(|e| anyhow!("{}: {} ({seen:?})", e.name(), e.message()))?;
        assert!(!o.done, "{o:?}");
    }

    // Before the target revision is applied the same failure is reported, not raised.
    let ahead = "f".repeat(40);
    let report = handle(&w.ctx(), input(push(&ahead)))
        .await
        .map_err(|e| anyhow!("{}: {}", e.name(), e.message()))?;
    assert!(!report.done && !report.healthy);
    assert_eq!(report.phase, "waiting-revision");
    assert_eq!(
        report.failed,
        [FailedObject {
            kind: "HelmRelease".into(),
            namespace: "podinfo".into(),
            name: "podinfo".into(),
            reason: "InstallFailed".into(),
            message: message.into(),
        }]
    );
    assert_eq!(report.counts.failed, 1);

    // The failure lifted, the release recovers and the lab becomes healthy.
    assert!(w.faults().clear("HelmRelease", Some("podinfo"), "podinfo"));
    let answers = poll(&w, &push(&w.head), HEALTHY_WITHIN, |a| {
        a.as_ref().is_ok_and(|o| o.done)
    })
    .await?;
    let last = answers
        .last()
        .and_then(|a| a.as_ref().ok())
        .context("no answer")?;
    assert_eq!(last.phase, "healthy");
    assert!(last.failed.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_ahead_of_the_applied_revision_is_not_healthy() -> anyhow::Result<()> {
    let w = world(None).await?;
    let applied = format!("main@sha1:{}", w.head);
    poll(&w, &push(&w.head), HEALTHY_WITHIN, |a| {
        a.as_ref().is_ok_and(|o| o.done)
    })
    .await?;

    // A newer push Flux has not applied (the checkout has no such commit).
    let ahead: String = w
        .head
        .chars()
        .rev()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect();
    assert_ne!(ahead, w.head);
    let target = format!("main@sha1:{ahead}");
    for _ in 0..3 {
        let o = handle(&w.ctx(), input(push(&ahead)))
            .await
            .map_err(|e| anyhow!("{}: {}", e.name(), e.message()))?;
        assert!(!o.done && !o.healthy, "{o:?}");
        assert_eq!(o.phase, "waiting-revision");
        assert_eq!(o.revision.as_deref(), Some(applied.as_str()));
        assert_eq!(o.target_revision.as_deref(), Some(target.as_str()));
        assert!(o.failed.is_empty(), "{o:?}");
        // Every Kustomization fed by the bootstrap source is behind the target.
        assert!(o.counts.in_progress >= 6, "{:?}", o.counts);
        assert!(
            o.pending.iter().any(|p| p.kind == "Kustomization"
                && p.name == "flux-system"
                && p.reason == "RevisionNotApplied"),
            "{:?}",
            o.pending
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Issue 24 item 12: a lab whose every object is Ready but whose route is broken is not healthy.
/// The gateway's TLS server matching SNI names again (the ALB sends none) makes each URL a 502,
/// and the report names the URL and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lab_whose_urls_do_not_answer_is_not_healthy() -> anyhow::Result<()> {
    let w = world(None).await?;
    poll(&w, &push(&w.head), HEALTHY_WITHIN, |a| {
        a.is_err() || a.as_ref().is_ok_and(|o| o.done)
    })
    .await?;
    let istio = |plural: &str, kind: &str| kube::core::ApiResource {
        group: "networking.istio.io".into(),
        version: "v1".into(),
        api_version: "networking.istio.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    };

    // No route for a host behind the gateway (its VirtualService now claims another host): that
    // URL gets Envoy's 404, the other still answers.
    let routes = kube::Api::<kube::api::DynamicObject>::namespaced_with(
        w.kube_client().await?,
        "podinfo",
        &istio("virtualservices", "VirtualService"),
    );
    let mut route = routes.get("podinfo").await?;
    route.data["spec"]["hosts"] = json!(["elsewhere.lab.example.com"]);
    route.metadata.managed_fields = None;
    routes
        .replace("podinfo", &kube::api::PostParams::default(), &route)
        .await?;
    let unrouted = handle(&w.ctx(), input(push(&w.head)))
        .await
        .map_err(|e| anyhow!("{}: {}", e.name(), e.message()))?;
    assert_eq!(unrouted.phase, "waiting-urls", "{unrouted:?}");
    let by_url: Vec<(&str, Option<u16>)> = unrouted
        .urls
        .iter()
        .map(|u| (u.url.as_str(), u.status))
        .collect();
    assert_eq!(
        by_url,
        [
            ("https://bookinfo.lab.example.com/productpage", Some(200)),
            ("https://grafana.lab.example.com/login", Some(200)),
            ("https://kiali.lab.example.com/kiali/", Some(200)),
            ("https://podinfo.lab.example.com/", Some(404)),
        ]
    );

    let gateways = kube::Api::<kube::api::DynamicObject>::namespaced_with(
        w.kube_client().await?,
        "istio-ingress",
        &istio("gateways", "Gateway"),
    );
    let mut gateway = gateways.get("labflow-gateway").await?;
    let servers = gateway
        .data
        .pointer_mut("/spec/servers")
        .and_then(Value::as_array_mut)
        .context("gateway servers")?;
    for server in servers.iter_mut().filter(|s| s.get("tls").is_some()) {
        server["hosts"] = json!(["*/*.lab.example.com"]);
    }
    gateway.metadata.managed_fields = None;
    gateways
        .replace(
            "labflow-gateway",
            &kube::api::PostParams::default(),
            &gateway,
        )
        .await?;

    let broken = handle(&w.ctx(), input(push(&w.head)))
        .await
        .map_err(|e| anyhow!("{}: {}", e.name(), e.message()))?;
    assert!(!broken.done && !broken.healthy, "{broken:?}");
    assert_eq!(broken.phase, "waiting-urls");
    assert_eq!(broken.urls.len(), 4, "{:?}", broken.urls);
    for url in &broken.urls {
        assert!(!url.ok && url.status == Some(502), "{url:?}");
        let problem = url.problem.as_deref().unwrap_or("");
        assert!(problem.contains("no SNI"), "{url:?}");
    }
    Ok(())
}
