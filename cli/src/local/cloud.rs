//! The local cloud: the testbed (AWS emulator, EKS simulator, simulated controllers) seeded the
//! way Terraform seeds a real account — environment configs, secrets, webhook routes, the
//! Route53 zone and the state machine — plus a loopback stand-in for Flux's release downloads.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context as _};
use aws_sdk_ssm::types::ParameterType;
use labflow_core::config::CREDENTIAL_PARAMETER_PREFIX;
use labflow_testbed::controllers::{
    AwsAccess, ControllerOptions, ExternalDnsOptions, FluxOptions, LoadBalancerOptions,
};
use labflow_testbed::eks::{EksDelays, EksOptions};
use labflow_testbed::gateway::Upstream;
use labflow_testbed::releases::{flux_install_manifest, ReleaseServer};
use labflow_testbed::{ControllersFor, Testbed, TestbedOptions};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Name of the state machine registered in the emulator (Terraform names it the same way).
pub const STATE_MACHINE_NAME: &str = "labflow-lifecycle";
/// Fake GitHub token stored where flux-bootstrap and github-status read the real one.
const LOCAL_GITHUB_TOKEN: &str = "local-only-placeholder-not-a-github-token";
const LOCAL_FLUX_CREDENTIAL: &str = "local-only-placeholder-not-a-git-credential";
/// The ASL placeholders Terraform fills, and the Lambda names behind them.
pub const FUNCTIONS: &[(&str, &str)] = &[
    ("RunGuardArn", "run-guard"),
    ("EnsureClusterArn", "ensure-cluster"),
    ("ClusterAccessArn", "cluster-access"),
    ("FluxBootstrapArn", "flux-bootstrap"),
    ("HealthCheckArn", "health-check"),
    ("TeardownArn", "teardown"),
    ("GithubStatusArn", "github-status"),
];

/// How to start the local cloud.
#[derive(Debug, Clone)]
pub struct CloudOptions {
    /// Environment config files (JSON, the shape of `/labflow/environments/<env>`); the file stem
    /// is the environment name.
    pub environments: Vec<PathBuf>,
    /// The git checkout whose commits the simulated Flux reads for every configured repository.
    pub repository: PathBuf,
    /// The pinned Flux CRDs (the cache `make crds` fills).
    pub crd_dir: PathBuf,
    /// The lifecycle definition.
    pub definition: PathBuf,
    pub eks_delays: EksDelays,
    /// Own a moto process (CLI) instead of the test process's shared one.
    pub own_moto: bool,
    /// A real cluster for the Kubernetes side (see [`LocalCloud::start`]); `None` = kubesim.
    pub kubeconfig: Option<PathBuf>,
}

/// What a client needs to reach the local cloud (written to the state file by the daemon).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    pub aws: String,
    pub eks: String,
    pub region: String,
    /// The testbed's fixed credentials (not secrets: they only exist on loopback).
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Set when the credentials are an STS role session (the functions' identity).
    #[serde(default)]
    pub session_token: Option<String>,
    pub account_id: String,
    pub state_machine_arn: String,
    /// Environment name → hosted zone id created for it.
    pub environments: BTreeMap<String, String>,
    pub repository: PathBuf,
    /// The kubeconfig whose cluster stands behind the EKS endpoints (`None`: kubesims).
    #[serde(default)]
    pub kubeconfig: Option<String>,
    /// `127.0.0.1:<port>` where the simulated load balancers answer HTTP (`None` on a real
    /// cluster, whose load balancers are not simulated).
    #[serde(default)]
    pub load_balancers: Option<String>,
}

/// The running local cloud. Dropping it stops everything.
pub struct LocalCloud {
    pub testbed: Testbed,
    _releases: ReleaseServer,
    pub endpoints: Endpoints,
}

/// An environment config as read from a file, with the fields the seeding rewrites.
struct EnvFile {
    name: String,
    config: Value,
}

impl LocalCloud {
    pub async fn start(options: CloudOptions) -> anyhow::Result<LocalCloud> {
        // A real cluster runs real Flux and real controllers: simulate none of them there.
        let simulate_controllers = options.kubeconfig.is_none();
        let envs = read_environments(&options.environments, simulate_controllers)?;
        let external_dns: Arc<Mutex<HashMap<String, ExternalDnsOptions>>> = Arc::default();
        let repository = options.repository.clone();
        let repos: Vec<String> = envs
            .iter()
            .filter_map(|e| e.config.pointer("/flux/repository/url")?.as_str())
            .map(str::to_string)
            .collect();
        let dns_for_clusters = external_dns.clone();
        let upstream = match &options.kubeconfig {
            Some(path) => Some(
                Upstream::from_kubeconfig(path)
                    .await
                    .context("using --kubeconfig")?,
            ),
            None => None,
        };
        let eks = EksOptions {
            delays: options.eks_delays,
            upstream,
            ..EksOptions::default()
        };
        let region = eks.region.clone();
        let account_id = eks.account_id.clone();
        let chart_crds = labflow_testbed::releases::chart_crds(&options.crd_dir)
            .context("reading the CRDs the lab's charts install")?;
        // The AWS side of the simulated controllers needs the emulator: set once it runs.
        let aws_access: Arc<Mutex<Option<AwsAccess>>> = Arc::default();
        let aws_for_clusters = aws_access.clone();
        let controllers: ControllersFor = Arc::new(move |cluster: &str| {
            let dns = dns_for_clusters
                .lock()
                .ok()
                .and_then(|m| m.get(cluster).cloned());
            let aws = aws_for_clusters.lock().ok().and_then(|a| a.clone());
            Some(simulated_controllers(
                &chart_crds,
                &repos,
                &repository,
                dns,
                aws,
            ))
        });
        let testbed = Testbed::start(TestbedOptions {
            eks,
            controllers: simulate_controllers.then_some(controllers),
            own_moto: options.own_moto,
        })
        .await
        .context("starting the testbed")?;
        if let Ok(mut a) = aws_access.lock() {
            *a = Some(testbed.aws_access());
        }
        let sdk = testbed.sdk_config().await;
        // The functions run as a role session, as a Lambda would; the clusters trust it.
        let session = testbed
            .role_session(
                &format!("arn:aws:iam::{account_id}:role/{AUTOMATION_ROLE}"),
                "labflow-local",
            )
            .await
            .context("starting the functions' role session")?;

        let releases = serve_flux_releases(&options.crd_dir, &envs).await?;
        let ssm = aws_sdk_ssm::Client::new(&sdk);
        let route53 = aws_sdk_route53::Client::new(&sdk);
        let mut zones = BTreeMap::new();
        let mut routes = Vec::new();
        for env in envs {
            let EnvFile { name, mut config } = env;
            // A real cluster gets the real Flux release the config names (URL and sha256 as
            // written); kubesim gets the loopback copy its simulated Flux understands.
            if simulate_controllers {
                let version = str_at(&config, "/flux/version")?;
                let manifest = releases.1.get(&version).context("manifest served")?;
                pin_release(
                    &mut config,
                    &releases.0.url(&release_path(&version)),
                    manifest,
                );
            }
            let domain = str_at(&config, "/dns/domain")?;
            let zone = create_zone(&route53, &domain).await?;
            config["dns"]["hostedZoneId"] = json!(zone);
            let cluster = str_at(&config, "/cluster/name")?;
            let owner = str_at(&config, "/dns/ownerId")?;
            let mut dns = ExternalDnsOptions::new(&testbed.aws_endpoint(), &zone, &owner);
            dns.region = region.clone();
            if let Ok(mut m) = external_dns.lock() {
                m.insert(cluster, dns);
            }
            let branch = str_at(&config, "/flux/repository/branch")?;
            if !routes.iter().any(|r: &Value| r["branch"] == json!(branch)) {
                routes.push(json!({"branch": branch, "environment": name}));
            }
            put(
                &ssm,
                &format!("/labflow/environments/{name}"),
                &config.to_string(),
                ParameterType::String,
            )
            .await?;
            // Each environment's own read-only Flux credential (issue 26 item 2). Real Flux on a
            // real cluster clones the real repository: it needs a real one.
            let credential = std::env::var("LABFLOW_FLUX_CREDENTIAL")
                .ok()
                .filter(|t| !simulate_controllers && !t.is_empty())
                .unwrap_or_else(|| LOCAL_FLUX_CREDENTIAL.to_string());
            let parameter = config
                .pointer("/flux/repository/credentialParameter")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("{CREDENTIAL_PARAMETER_PREFIX}{name}"));
            put(&ssm, &parameter, &credential, ParameterType::SecureString).await?;
            zones.insert(name, zone);
        }
        routes.push(json!({"prefix": "env/", "environment": "*"}));
        put(
            &ssm,
            labflow_github_webhook::routes::PARAMETER,
            &json!({ "routes": routes }).to_string(),
            ParameterType::String,
        )
        .await?;
        // The status token; github-status posts nowhere real from the local cloud.
        let github_token = std::env::var("LABFLOW_GITHUB_TOKEN")
            .ok()
            .filter(|t| !simulate_controllers && !t.is_empty())
            .unwrap_or_else(|| LOCAL_GITHUB_TOKEN.to_string());
        put(
            &ssm,
            labflow_github_status::TOKEN_PARAMETER,
            &github_token,
            ParameterType::SecureString,
        )
        .await?;
        put(
            &ssm,
            labflow_github_webhook::SECRET_PARAMETER,
            &uuid::Uuid::new_v4().to_string(),
            ParameterType::SecureString,
        )
        .await?;
        let state_machine_arn =
            register_state_machine(&sdk, &options.definition, &region, &account_id).await?;
        let endpoints = Endpoints {
            aws: testbed.aws_endpoint(),
            eks: testbed.eks_endpoint().to_string(),
            region,
            access_key_id: session.access_key_id().to_string(),
            secret_access_key: session.secret_access_key().to_string(),
            session_token: session.session_token().map(str::to_string),
            account_id,
            state_machine_arn,
            environments: zones,
            repository: options.repository.clone(),
            kubeconfig: options.kubeconfig.as_ref().map(|p| p.display().to_string()),
            load_balancers: simulate_controllers.then(|| testbed.alb_front_addr().to_string()),
        };
        Ok(LocalCloud {
            testbed,
            _releases: releases.0,
            endpoints,
        })
    }
}

/// What runs in a lab cluster, simulated: Flux reading `checkout` for every URL in `repos`
/// (installing the charts' CRDs), workloads, the load balancer controller (with `aws`, making
/// its load balancers in the AWS emulator, and the EBS CSI driver its volumes) and, given a
/// zone, external-dns.
pub fn simulated_controllers(
    chart_crds: &BTreeMap<String, Vec<Value>>,
    repos: &[String],
    checkout: &Path,
    dns: Option<ExternalDnsOptions>,
    aws: Option<AwsAccess>,
) -> ControllerOptions {
    let mut flux = FluxOptions::default().with_chart_crds(chart_crds.clone());
    for url in repos {
        flux = flux.with_repository(url.clone(), checkout.to_path_buf());
    }
    let controllers = ControllerOptions::default()
        .with_flux(flux)
        .with_workloads();
    let controllers = match aws {
        Some(aws) => controllers.with_aws_controllers(aws),
        None => controllers.with_load_balancers(LoadBalancerOptions::default()),
    };
    match dns {
        Some(dns) => controllers.with_external_dns(dns),
        None => controllers,
    }
}

/// The role the functions run as (Terraform gives each Lambda one), and the emulator's STS
/// session of it: so the functions see `assumed-role/...` from GetCallerIdentity, as in Lambda.
pub const AUTOMATION_ROLE: &str = "labflow-automation";

/// Point `config`'s Flux pin at a release `url` serves, with `manifest`'s sha256.
fn pin_release(config: &mut Value, url: &str, manifest: &[u8]) {
    config["flux"]["manifestUrl"] = json!(url);
    config["flux"]["manifestSha256"] = json!(hex::encode(Sha256::digest(manifest)));
}

/// `local_release`: each config's Flux pin will be replaced by the loopback release the
/// simulated Flux understands, so the pin as written is not checked.
fn read_environments(files: &[PathBuf], local_release: bool) -> anyhow::Result<Vec<EnvFile>> {
    if files.is_empty() {
        bail!("no environment config given");
    }
    let mut envs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading environment config {}", file.display()))?;
        let config: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", file.display()))?;
        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| anyhow!("{}: no usable file name", file.display()))?
            .to_string();
        labflow_core::config::check_environment_name(&name)
            .map_err(|e| anyhow!("{}: {e}", file.display()))?;
        let mut checked = config.clone();
        if local_release {
            pin_release(&mut checked, "http://127.0.0.1/install.yaml", b"");
        }
        let checks = labflow_core::config::Checks::create(true);
        labflow_core::config::parse_with(&name, &checked.to_string(), &checks)
            .map_err(|e| anyhow!("{}: {e}", file.display()))?;
        envs.push(EnvFile { name, config });
    }
    Ok(envs)
}

fn str_at(config: &Value, pointer: &str) -> anyhow::Result<String> {
    config
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow!("environment config lacks {pointer}"))
}

fn release_path(version: &str) -> String {
    format!("/fluxcd/flux2/releases/download/v{version}/install.yaml")
}

/// Serves an install manifest for every Flux version the configs name (built from the pinned
/// CRDs: the real release cannot be downloaded here).
async fn serve_flux_releases(
    crd_dir: &Path,
    envs: &[EnvFile],
) -> anyhow::Result<(ReleaseServer, HashMap<String, Vec<u8>>)> {
    let mut manifests = HashMap::new();
    let mut files = HashMap::new();
    for env in envs {
        let version = str_at(&env.config, "/flux/version")?;
        if manifests.contains_key(&version) {
            continue;
        }
        let manifest = flux_install_manifest(crd_dir, &version)
            .with_context(|| format!("building the Flux {version} install manifest"))?
            .into_bytes();
        files.insert(release_path(&version), manifest.clone());
        manifests.insert(version, manifest);
    }
    let server = ReleaseServer::start(files)
        .await
        .context("starting the release server")?;
    Ok((server, manifests))
}

async fn create_zone(route53: &aws_sdk_route53::Client, domain: &str) -> anyhow::Result<String> {
    let out = route53
        .create_hosted_zone()
        .name(domain)
        .caller_reference(uuid::Uuid::new_v4().to_string())
        .send()
        .await
        .with_context(|| format!("creating the Route53 zone {domain}"))?;
    let id = out
        .hosted_zone()
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
        .ok_or_else(|| anyhow!("CreateHostedZone returned no zone"))?;
    Ok(id)
}

async fn put(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
    value: &str,
    kind: ParameterType,
) -> anyhow::Result<()> {
    ssm.put_parameter()
        .name(name)
        .value(value)
        .r#type(kind)
        .overwrite(true)
        .send()
        .await
        .with_context(|| format!("writing SSM parameter {name}"))?;
    Ok(())
}

/// Registers the lifecycle in the emulator's Step Functions with the placeholders filled as
/// Terraform's templatefile does, so the webhook can start executions and run-guard can
/// describe them.
async fn register_state_machine(
    sdk: &aws_config::SdkConfig,
    definition: &Path,
    region: &str,
    account: &str,
) -> anyhow::Result<String> {
    let mut text = std::fs::read_to_string(definition)
        .with_context(|| format!("reading {}", definition.display()))?;
    for (placeholder, function) in FUNCTIONS {
        text = text.replace(
            &format!("${{{placeholder}}}"),
            &lambda_arn(region, account, function),
        );
    }
    let sfn = aws_sdk_sfn::Client::new(sdk);
    let out = sfn
        .create_state_machine()
        .name(STATE_MACHINE_NAME)
        .definition(text)
        .role_arn(format!("arn:aws:iam::{account}:role/labflow-states"))
        .send()
        .await
        .context("registering the state machine in the AWS emulator")?;
    Ok(out.state_machine_arn().to_string())
}

pub fn lambda_arn(region: &str, account: &str, function: &str) -> String {
    format!("arn:aws:lambda:{region}:{account}:function:labflow-{function}")
}
