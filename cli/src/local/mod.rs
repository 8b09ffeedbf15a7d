//! `labflow local up|sync|down|run`: the whole lifecycle on one machine — the AWS emulator,
//! the EKS simulator with a kubesim per cluster and simulated controllers, and the lifecycle
//! definition run by labflow-states calling every Lambda's handler in-process.

pub mod cloud;
pub mod cost;
pub mod daemon;
pub mod github;
pub mod kept_cluster;
pub mod push;
pub mod runner;
pub mod steps;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use labflow_testbed::eks::EksDelays;
use serde_json::{json, Value};

use cloud::CloudOptions;
use runner::{write_summary, RunReport, Session};

#[derive(Debug, clap::Args)]
pub struct LocalArgs {
    #[command(subcommand)]
    pub command: LocalCommand,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Where the local cloud keeps its state file and log.
    #[arg(long, global = true, default_value = ".cache/labflow-local")]
    pub state_dir: PathBuf,
    /// Directory of environment configs (`<env>.json`) to seed the local cloud with.
    #[arg(long, global = true, default_value = "examples/environments")]
    pub environments: PathBuf,
    /// Seconds the simulated EKS takes to create or delete a cluster, node group or add-on.
    #[arg(long, global = true, default_value_t = 3.0)]
    pub eks_delay: f64,
    /// Seconds between a step's polls (the execution input's `pollSeconds`).
    #[arg(long, global = true, default_value_t = 1)]
    pub poll_seconds: u32,
    /// A real Kubernetes cluster (kind, k3d, ...) for the Kubernetes side instead of kubesim: the
    /// simulated EKS clusters' endpoints forward to its current context, and real Flux installs
    /// there (no simulated controllers). Only read when the local cloud starts.
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum LocalCommand {
    /// Start the local cloud and create the environment (healthy at the branch's commit).
    Up(EnvArg),
    /// Deliver a signed GitHub push of the branch's commit and run the execution it starts.
    Sync(EnvArg),
    /// Tear the environment down, then stop the local cloud.
    Down(DownArgs),
    /// Run an execution input (JSON file) against the local cloud (started if needed).
    Run {
        #[arg(long)]
        input: PathBuf,
    },
    /// Host the local cloud in the foreground (what `up` starts in the background).
    #[command(hide = true)]
    Serve,
}

#[derive(Debug, Clone, clap::Args)]
pub struct EnvArg {
    /// The environment (a config file `<env>.json` in --environments).
    #[arg(long = "env", default_value = "lab")]
    pub environment: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// Tear the environment down even though its config says `protected`.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: LocalArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(dispatch(args))
}

async fn dispatch(args: LocalArgs) -> anyhow::Result<ExitCode> {
    let root = repo_root()?;
    let common = absolutize(&root, args.common);
    match args.command {
        LocalCommand::Serve => {
            // The daemon's stdout/stderr is the cloud log: simulated controllers log what they do.
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .with_ansi(false)
                .try_init();
            let options = cloud_options(&root, &common, true)?;
            daemon::serve(&common.state_dir, options).await?;
            Ok(ExitCode::SUCCESS)
        }
        LocalCommand::Up(env) => {
            check_configured(&common, &env.environment)?;
            let running = start_or_join(&common)?;
            let session = connect(&root, &running.endpoints).await?;
            let sha = branch_sha(&root, &session, &env.environment).await?;
            let input = json!({
                "action": "create",
                "environment": env.environment,
                "source": github_source(&session, &env.environment, &sha).await?,
                "pollSeconds": common.poll_seconds,
            });
            println!(
                "labflow local up: creating {:?} at {} (local cloud: AWS {}, EKS {})",
                env.environment,
                short(&sha),
                running.endpoints.aws,
                running.endpoints.eks
            );
            finish(session.run(input, stdout_sink()).await?)
        }
        LocalCommand::Sync(env) => {
            check_configured(&common, &env.environment)?;
            let running = daemon::find(&common.state_dir).ok_or_else(not_running)?;
            let session = connect(&root, &running.endpoints).await?;
            let (url, branch) = repository_of(&session, &env.environment).await?;
            let sha = git_sha(&root, &branch)?;
            println!(
                "labflow local sync: delivering a signed push of {branch}@{} to the webhook",
                short(&sha)
            );
            let started = push::deliver(
                &session.clients,
                &running.endpoints.state_machine_arn,
                &url,
                &branch,
                &sha,
            )
            .await?;
            let mut input = started.input;
            // The webhook starts executions with the deployed default poll interval; the local
            // run polls faster (the override the definition reads from its input).
            input["pollSeconds"] = json!(common.poll_seconds);
            finish(
                session
                    .run_started(started.execution_arn, &started.name, input, stdout_sink())
                    .await?,
            )
        }
        LocalCommand::Down(DownArgs { env, force }) => {
            check_configured(&common, &env.environment)?;
            let Some(running) = daemon::find(&common.state_dir) else {
                println!("labflow local down: no local cloud is running; nothing to tear down");
                return Ok(ExitCode::SUCCESS);
            };
            let session = connect(&root, &running.endpoints).await?;
            let input = json!({
                "action": "teardown",
                "environment": env.environment,
                "source": {"kind": "console", "requestedBy": "labflow local down"},
                "pollSeconds": common.poll_seconds,
                "force": force,
            });
            println!("labflow local down: tearing {:?} down", env.environment);
            let report = session.run(input, stdout_sink()).await?;
            let leftovers = leftovers(&session, &env.environment).await?;
            let code = finish(report)?;
            if leftovers.is_empty() {
                println!(
                    "left behind    nothing (no cluster, node group, add-on, DNS record, load balancer, target group, security group or volume of {:?})",
                    env.environment
                );
            } else {
                println!("left behind    {}", leftovers.join(", "));
            }
            daemon::stop(&common.state_dir)?;
            println!("local cloud stopped");
            if leftovers.is_empty() {
                Ok(code)
            } else {
                Ok(ExitCode::from(1))
            }
        }
        LocalCommand::Run { input } => {
            let text = std::fs::read_to_string(&input)
                .with_context(|| format!("reading {}", input.display()))?;
            let value: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", input.display()))?;
            let running = start_or_join(&common)?;
            let session = connect(&root, &running.endpoints).await?;
            finish(session.run(value, stdout_sink()).await?)
        }
    }
}

fn not_running() -> anyhow::Error {
    anyhow!("no local cloud is running (hint: `labflow local up` starts one)")
}

fn stdout_sink() -> Arc<Mutex<dyn Write + Send>> {
    Arc::new(Mutex::new(std::io::stdout()))
}

fn finish(report: RunReport) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    write_summary(&mut out, &report)?;
    Ok(if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

fn repo_root() -> anyhow::Result<PathBuf> {
    labflow_testbed::paths::repo_root()
        .ok_or_else(|| anyhow!("not inside the labflow repository (no Cargo.toml with state-machine/ above the current directory)"))
}

fn absolutize(root: &Path, mut c: Common) -> Common {
    if c.state_dir.is_relative() {
        c.state_dir = root.join(&c.state_dir);
    }
    if c.environments.is_relative() {
        c.environments = root.join(&c.environments);
    }
    // Relative to where the user typed it, like any path argument.
    if let Some(k) = c.kubeconfig.take() {
        c.kubeconfig = Some(std::path::absolute(&k).unwrap_or(k));
    }
    c
}

fn definition_path(root: &Path) -> PathBuf {
    root.join("state-machine/lifecycle.asl.json")
}

fn cloud_options(root: &Path, common: &Common, own_moto: bool) -> anyhow::Result<CloudOptions> {
    let mut environments = Vec::new();
    let entries = std::fs::read_dir(&common.environments)
        .with_context(|| format!("reading {}", common.environments.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            environments.push(path);
        }
    }
    environments.sort();
    let crd_dir = labflow_testbed::paths::crd_cache_dir()
        .ok_or_else(|| anyhow!("the Flux CRD cache is missing (hint: `make crds`)"))?;
    if !(common.eks_delay.is_finite() && common.eks_delay >= 0.0) {
        bail!("--eks-delay must be a non-negative number of seconds");
    }
    let delay = Duration::from_secs_f64(common.eks_delay);
    Ok(CloudOptions {
        environments,
        repository: root.to_path_buf(),
        crd_dir,
        definition: definition_path(root),
        eks_delays: EksDelays::uniform(delay, delay, delay),
        own_moto,
        kubeconfig: common.kubeconfig.clone(),
    })
}

fn check_configured(common: &Common, env: &str) -> anyhow::Result<()> {
    let file = common.environments.join(format!("{env}.json"));
    if !file.is_file() {
        bail!(
            "environment {env:?} is not configured (no {}); hint: --env NAME with a config in {}",
            file.display(),
            common.environments.display()
        );
    }
    Ok(())
}

/// Joins the running local cloud, or starts one in the background.
fn start_or_join(common: &Common) -> anyhow::Result<daemon::Running> {
    if let Some(running) = daemon::find(&common.state_dir) {
        let wanted = common.kubeconfig.as_ref().map(|p| p.display().to_string());
        if common.kubeconfig.is_some() && running.endpoints.kubeconfig != wanted {
            bail!(
                "a local cloud is already running with {}; hint: `labflow local down` it first",
                running
                    .endpoints
                    .kubeconfig
                    .as_deref()
                    .map_or("kubesim".to_string(), |k| format!("--kubeconfig {k}"))
            );
        }
        return Ok(running);
    }
    let mut args = vec![
        "--environments".to_string(),
        common.environments.display().to_string(),
        "--eks-delay".to_string(),
        common.eks_delay.to_string(),
    ];
    match &common.kubeconfig {
        Some(kubeconfig) => {
            if !kubeconfig.is_file() {
                bail!(
                    "--kubeconfig {}: no such file (hint: `kind get kubeconfig > FILE`)",
                    kubeconfig.display()
                );
            }
            println!(
                "starting the local cloud (AWS emulator, EKS simulator in front of the cluster of {})…",
                kubeconfig.display()
            );
            args.push("--kubeconfig".to_string());
            args.push(kubeconfig.display().to_string());
        }
        None => {
            println!("starting the local cloud (AWS emulator, EKS simulator, controllers)…")
        }
    }
    daemon::spawn(&common.state_dir, &args)
}

async fn connect(root: &Path, endpoints: &cloud::Endpoints) -> anyhow::Result<Session> {
    let path = definition_path(root);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Session::connect(endpoints.clone(), &text).await
}

/// The repository URL and branch of an environment, from its seeded config.
async fn repository_of(session: &Session, env: &str) -> anyhow::Result<(String, String)> {
    let checks = session.clients.create_checks();
    let config = labflow_core::config::load(&session.clients.ssm, env, &checks)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    Ok((
        config.flux.repository.url.clone(),
        config.flux.repository.branch.clone(),
    ))
}

async fn branch_sha(root: &Path, session: &Session, env: &str) -> anyhow::Result<String> {
    let (_, branch) = repository_of(session, env).await?;
    git_sha(root, &branch)
}

async fn github_source(session: &Session, env: &str, sha: &str) -> anyhow::Result<Value> {
    let (url, branch) = repository_of(session, env).await?;
    Ok(json!({
        "kind": "github",
        "repository": push::full_name(&url),
        "branch": branch,
        "sha": sha,
        "deliveryId": format!("local-{}", uuid::Uuid::new_v4()),
        "pusher": "labflow-local",
    }))
}

/// The commit the simulated Flux sees for `branch` (the local checkout stands for the remote).
pub fn git_sha(root: &Path, branch: &str) -> anyhow::Result<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "--verify", "--quiet"])
        .arg(format!("refs/heads/{branch}^{{commit}}"))
        .output()
        .context("running git")?;
    let sha = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || sha.len() != 40 {
        bail!(
            "branch {branch:?} does not exist in {} (the simulated Flux reads the configured branch from this checkout)",
            root.display()
        );
    }
    Ok(sha)
}

/// What of the environment still exists in the local cloud after a teardown.
pub async fn leftovers(session: &Session, env: &str) -> anyhow::Result<Vec<String>> {
    let checks = labflow_core::config::Checks::teardown(session.clients.local_cloud());
    let config = labflow_core::config::load(&session.clients.ssm, env, &checks)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let mut left = Vec::new();
    let cluster = &config.cluster.name;
    let clusters = session
        .clients
        .eks
        .list_clusters()
        .send()
        .await
        .context("ListClusters")?;
    if clusters.clusters().iter().any(|c| c == cluster) {
        left.push(format!("EKS cluster {cluster}"));
    }
    let zone = &config.dns.hosted_zone_id;
    let records = session
        .clients
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .context("ListResourceRecordSets")?;
    let owner = format!("external-dns/owner={}", config.dns.owner_id);
    for r in records.resource_record_sets() {
        let kind = r.r#type().as_str();
        if kind == "NS" || kind == "SOA" {
            continue;
        }
        let owned = r
            .resource_records()
            .iter()
            .any(|v| v.value().contains(&owner));
        let under_domain = r.name().trim_end_matches('.').ends_with(&config.dns.domain);
        if owned || under_domain {
            left.push(format!("Route53 {kind} {}", r.name()));
        }
    }
    // What the cluster's controllers made in AWS: load balancers, target groups, security
    // groups, volumes (issue 19 item 9).
    let aws = labflow_testbed::controllers::AwsAccess::new(
        &session.endpoints.aws,
        &session.endpoints.region,
    );
    left.extend(
        labflow_testbed::aws_leftovers::tagged_for_cluster(&aws, cluster)
            .await
            .map_err(|e| anyhow!("listing what the AWS emulator holds for {cluster}: {e}"))?,
    );
    // A cluster given with --kubeconfig outlives the teardown: what labflow put there counts.
    if let Some(path) = &session.endpoints.kubeconfig {
        left.extend(kept_cluster::leftovers(Path::new(path)).await?);
    }
    Ok(left)
}
