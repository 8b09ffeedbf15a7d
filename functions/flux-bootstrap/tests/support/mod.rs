//! Shared by flux-bootstrap's integration tests: moto (SSM) seeded with an environment config,
//! its read-only Flux credential and the status token, a kubesim reached with a real EKS token, the Flux install manifest fixture
//! served over loopback, and a log capture to prove the token never reaches the logs.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use labflow_core::aws::AwsClients;
use labflow_core::contract::{Action, Source, StepInput};
use labflow_flux_bootstrap::Ctx;
use labflow_testbed::eks::{EksOptions, EksServer};
use labflow_testbed::kubesim::{KubeSim, RequestRecord};
use labflow_testbed::releases::{flux_install_manifest, ReleaseServer};
use serde_json::Value;

pub const REGION: &str = "eu-west-1";
pub const ACCESS_KEY: &str = "AKIAFLUXBOOTSTRAPTEST";
pub const SECRET_KEY: &str = "flux-bootstrap/secret/key/for/tests/only";
/// The environment's read-only Flux credential the tests seed; it must never show up in an
/// output, an error or a log line.
pub const TOKEN: &str = "github_pat_LabflowReadOnlyTestToken7f3a9c21";
/// The token that writes commit statuses, where a deployment keeps it (github-status's
/// parameter). It must never reach a cluster (issue 26 item 2).
pub const STATUS_TOKEN: &str = "ghp_LabflowStatusTestToken7f3a9c21e8b64d05";
pub const STATUS_TOKEN_PARAMETER: &str = "/labflow/github/token";
/// The Flux release labflow pins (one version everywhere: issue 18 item 6).
pub const FLUX_VERSION: &str = labflow_core::versions::FLUX_VERSION;
/// Where the release server serves its `install.yaml`.
pub static MANIFEST_PATH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("/fluxcd/flux2/releases/download/v{FLUX_VERSION}/install.yaml")
});

/// One test's world: its own kubesim, the shared moto, the manifest server.
pub struct World {
    pub environment: String,
    /// The EKS simulator serving the cluster (DescribeCluster, EKS tokens, access entries).
    pub eks: EksServer,
    pub sim: Arc<KubeSim>,
    pub kube: kube::Client,
    pub aws: AwsClients,
    pub releases: ReleaseServer,
    pub manifest: String,
    pub manifest_sha256: String,
}

impl World {
    pub fn ctx(&self) -> anyhow::Result<Ctx> {
        Ok(Ctx::new(self.aws.clone())?.with_kube(self.kube.clone()))
    }

    pub fn input(&self, action: Action) -> StepInput {
        StepInput {
            environment: self.environment.clone(),
            action,
            source: Source::Console {
                requested_by: Some("tests".into()),
            },
            execution_arn: None,
        }
    }
}

pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(labflow_core::aws::https_client())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "tests",
        ))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// The CRD cache `make crds` fills; the shared reference copy when it is missing.
pub fn crd_dir() -> anyhow::Result<std::path::PathBuf> {
    let cache = labflow_testbed::paths::crd_cache_dir().context("no CRD cache location")?;
    if cache
        .join("kustomize-controller__kustomize.toolkit.fluxcd.io_kustomizations.yaml")
        .is_file()
    {
        return Ok(cache);
    }
    Ok(std::path::PathBuf::from("/work/shared/crds"))
}

/// The example environment config with this test's names, endpoints and manifest pin.
pub fn environment_config(
    environment: &str,
    manifest_url: &str,
    manifest_sha256: &str,
) -> anyhow::Result<Value> {
    let mut config: Value =
        serde_json::from_str(include_str!("../../../../examples/environments/lab.json"))?;
    config["cluster"]["name"] = format!("labflow-{environment}").into();
    config["flux"]["version"] = FLUX_VERSION.into();
    config["flux"]["manifestUrl"] = manifest_url.into();
    config["flux"]["manifestSha256"] = manifest_sha256.into();
    config["flux"]["repository"]["url"] =
        format!("https://github.com/example/labflow-{environment}").into();
    config["dns"]["domain"] = format!("{environment}.example.com").into();
    config["dns"]["ownerId"] = format!("labflow-{environment}").into();
    Ok(config)
}

pub async fn put_config(aws: &AwsClients, environment: &str, config: &Value) -> anyhow::Result<()> {
    aws.ssm
        .put_parameter()
        .name(labflow_core::config::parameter_name(environment))
        .value(config.to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await?;
    Ok(())
}

/// The environment's own Flux credential parameter (the default name).
pub fn credential_parameter(environment: &str) -> String {
    format!("/labflow/flux-credentials/{environment}")
}

pub async fn put_secret(aws: &AwsClients, name: &str, value: &str) -> anyhow::Result<()> {
    labflow_testkit::aws::put_parameter(&aws.ssm, name, value, true).await
}

/// Starts everything for `environment`; `sha256` overrides the manifest pin (None: the right one).
pub async fn world(environment: &str, sha256: Option<&str>) -> anyhow::Result<World> {
    let moto = tokio::task::spawn_blocking(labflow_testbed::moto::shared).await??;
    let aws = AwsClients::from_config(sdk_config(&moto.endpoint()).await);
    let manifest = flux_install_manifest(&crd_dir()?, FLUX_VERSION)?;
    let manifest_sha256 = labflow_flux_bootstrap::manifest::sha256_hex(manifest.as_bytes());
    let releases = ReleaseServer::start(HashMap::from([(
        MANIFEST_PATH.clone(),
        manifest.clone().into_bytes(),
    )]))
    .await?;
    let config = environment_config(
        environment,
        &releases.url(&MANIFEST_PATH),
        sha256.unwrap_or(&manifest_sha256),
    )?;
    put_config(&aws, environment, &config).await?;
    put_secret(&aws, STATUS_TOKEN_PARAMETER, STATUS_TOKEN).await?;
    put_secret(&aws, &credential_parameter(environment), TOKEN).await?;

    // The cluster as ensure-cluster leaves it, in the EKS simulator: its creator (these
    // credentials) is cluster admin.
    let eks = EksServer::start(EksOptions {
        credentials: (ACCESS_KEY.to_string(), SECRET_KEY.to_string()),
        ..EksOptions::default()
    })
    .await?;
    let aws = aws.with_eks_endpoint(eks.endpoint());
    let cluster = format!("labflow-{environment}");
    labflow_testkit::eks::create_cluster(
        &aws.eks,
        &cluster,
        "arn:aws:iam::123456789012:role/labflow-lab-eks",
    )
    .send()
    .await?;
    let sim = eks
        .sim()
        .kubesim(&cluster)
        .await
        .context("the cluster did not become ACTIVE")?;
    let kube = labflow_core::kube_client::cluster_client(&aws, &cluster)
        .await?
        .context("no endpoint")?;
    Ok(World {
        environment: environment.to_string(),
        eks,
        sim,
        kube,
        aws,
        releases,
        manifest,
        manifest_sha256,
    })
}

pub fn is_write(r: &RequestRecord) -> bool {
    matches!(
        r.verb.as_str(),
        "create" | "update" | "patch" | "delete" | "deletecollection"
    )
}

/// Everything logged by the process from `install` on (every target but the simulator's).
///
/// A process-wide subscriber, not a thread-local one: with tests running in parallel, a callsite
/// first hit on another thread (no subscriber there) can have its interest cached as "never",
/// and a thread-local subscriber then misses its events.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn install(&self) -> anyhow::Result<()> {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "trace,labflow_testbed=off",
            ))
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|e| anyhow::anyhow!("only one test per process may capture logs: {e}"))
    }

    pub fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).to_string()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
