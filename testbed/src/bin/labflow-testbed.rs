//! `labflow-testbed`: the whole cloud on loopback from one command (DESIGN.md §6).
//!
//! Starts its own AWS emulator (moto from the repository's `.venv`), the EKS simulator with the
//! simulated controllers on every cluster that turns ACTIVE, and the fault control API; prints
//! the `export` lines a shell needs; runs until Ctrl-C or SIGTERM, then stops everything.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use labflow_testbed::controllers::{AwsAccess, ControllerOptions, ExternalDnsOptions, FluxOptions};
use labflow_testbed::eks::{EksDelays, EksOptions};
use labflow_testbed::{ControllersFor, Testbed, TestbedOptions};

/// Runs the labflow testbed (AWS emulator, EKS simulator, simulated controllers, fault control
/// API) until interrupted.
#[derive(Debug, Parser)]
#[command(name = "labflow-testbed", version)]
struct Args {
    /// Seconds a cluster, node group or add-on stays CREATING before it turns ACTIVE.
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    create_delay: f64,
    /// Seconds a cluster, node group or add-on stays DELETING before it is gone.
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    delete_delay: f64,
    /// Seconds an update stays InProgress (and the resource UPDATING).
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    update_delay: f64,
    /// The AWS region the simulator reports.
    #[arg(long, default_value = "eu-west-1")]
    region: String,
    /// A GitRepository URL and the local git checkout that stands for it (repeatable).
    #[arg(long = "repository", value_name = "URL=PATH")]
    repositories: Vec<String>,
    /// The pinned CRD cache: releases of charts that bring CRDs install them (default: the
    /// repository's `.cache/crds`, when present).
    #[arg(long, value_name = "DIR")]
    crd_dir: Option<PathBuf>,
    /// Create this Route53 hosted zone in the emulator and run external-dns on every cluster
    /// against it.
    #[arg(long, value_name = "DOMAIN")]
    dns_zone: Option<String>,
    /// external-dns `--txt-owner-id`.
    #[arg(long, default_value = "labflow-testbed")]
    dns_owner: String,
    /// Also write the `export` lines to this file (for `source`).
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Testbed(#[from] labflow_testbed::TestbedError),
    #[error("creating the hosted zone {0}: {1}")]
    Zone(String, String),
    #[error("reading the CRD cache {0}: {1}")]
    Crds(PathBuf, String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

fn seconds(what: &str, secs: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(secs).map_err(|e| Error::Usage(format!("--{what}: {e}")))
}

/// Single-quotes a value for a POSIX shell.
fn quote(v: &str) -> String {
    if v.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c))
    {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', r"'\''"))
    }
}

async fn create_zone(testbed: &Testbed, domain: &str) -> Result<String, Error> {
    let route53 = aws_sdk_route53::Client::new(&testbed.sdk_config().await);
    let zone = route53
        .create_hosted_zone()
        .name(domain)
        .caller_reference(uuid::Uuid::new_v4().to_string())
        .send()
        .await
        .map_err(|e| {
            Error::Zone(
                domain.to_string(),
                aws_sdk_route53::error::DisplayErrorContext(e).to_string(),
            )
        })?;
    zone.hosted_zone()
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
        .ok_or_else(|| Error::Zone(domain.to_string(), "no zone in the answer".into()))
}

async fn run(args: Args) -> Result<(), Error> {
    let delays = EksDelays::uniform(
        seconds("create-delay", args.create_delay)?,
        seconds("delete-delay", args.delete_delay)?,
        seconds("update-delay", args.update_delay)?,
    );
    let mut flux = FluxOptions::default();
    for r in &args.repositories {
        let (url, path) = r
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("--repository {r:?}: expected URL=PATH")))?;
        flux = flux.with_repository(url, path);
    }
    let crd_dir = args
        .crd_dir
        .clone()
        .or_else(|| labflow_testbed::paths::crd_cache_dir().filter(|d| d.is_dir()));
    if let Some(dir) = &crd_dir {
        let crds = labflow_testbed::releases::chart_crds(dir)
            .map_err(|e| Error::Crds(dir.clone(), e.to_string()))?;
        flux = flux.with_chart_crds(crds);
    }
    let eks = EksOptions {
        region: args.region.clone(),
        delays,
        ..EksOptions::default()
    };
    // external-dns needs the zone, which needs the emulator: filled in after the start.
    let dns: Arc<std::sync::Mutex<Option<ExternalDnsOptions>>> = Arc::default();
    let dns_for_clusters = dns.clone();
    // So is the AWS side of the load balancer controller and the EBS CSI driver.
    let aws: Arc<std::sync::Mutex<Option<AwsAccess>>> = Arc::default();
    let aws_for_clusters = aws.clone();
    let controllers: ControllersFor = Arc::new(move |_cluster: &str| {
        let mut c = ControllerOptions::default()
            .with_flux(flux.clone())
            .with_workloads();
        if let Some(a) = aws_for_clusters.lock().ok().and_then(|a| a.clone()) {
            c = c.with_aws_controllers(a);
        }
        if let Some(d) = dns_for_clusters.lock().ok().and_then(|d| d.clone()) {
            c = c.with_external_dns(d);
        }
        Some(c)
    });
    let testbed = Testbed::start(TestbedOptions {
        eks,
        controllers: Some(controllers),
        own_moto: true,
    })
    .await?;

    let mut vars: BTreeMap<&str, String> = testbed
        .env_vars()
        .into_iter()
        .filter_map(|(k, v)| match k.as_str() {
            "AWS_ENDPOINT_URL" => Some(("AWS_ENDPOINT_URL", v)),
            "AWS_ENDPOINT_URL_EKS" => Some(("AWS_ENDPOINT_URL_EKS", v)),
            "AWS_REGION" => Some(("AWS_REGION", v)),
            "AWS_ACCESS_KEY_ID" => Some(("AWS_ACCESS_KEY_ID", v)),
            "AWS_SECRET_ACCESS_KEY" => Some(("AWS_SECRET_ACCESS_KEY", v)),
            _ => None,
        })
        .collect();
    if let Ok(mut a) = aws.lock() {
        *a = Some(testbed.aws_access());
    }
    vars.insert("AWS_DEFAULT_REGION", testbed.region().to_string());
    vars.insert("LABFLOW_TESTBED_FAULTS_URL", testbed.control_endpoint());
    if let Some(domain) = &args.dns_zone {
        let zone = create_zone(&testbed, domain).await?;
        let (key, secret) = testbed.credentials();
        let mut options = ExternalDnsOptions::new(&testbed.aws_endpoint(), &zone, &args.dns_owner);
        options.region = testbed.region().to_string();
        options.access_key_id = key.to_string();
        options.secret_access_key = secret.to_string();
        if let Ok(mut d) = dns.lock() {
            *d = Some(options);
        }
        vars.insert("LABFLOW_TESTBED_HOSTED_ZONE_ID", zone);
    }

    let exports: String = vars
        .iter()
        .map(|(k, v)| format!("export {k}={}\n", quote(v)))
        .collect();
    if let Some(file) = &args.env_file {
        std::fs::write(file, &exports).map_err(|e| Error::Io(file.display().to_string(), e))?;
    }
    let mut out = std::io::stdout().lock();
    let written = out
        .write_all(exports.as_bytes())
        .and_then(|()| writeln!(out, "# labflow-testbed is running; Ctrl-C stops it"))
        .and_then(|()| out.flush());
    drop(out);
    written.map_err(|e| Error::Io("stdout".into(), e))?;

    wait_for_shutdown().await?;
    eprintln!("labflow-testbed: stopping");
    drop(testbed);
    Ok(())
}

async fn wait_for_shutdown() -> Result<(), Error> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())
            .map_err(|e| Error::Io("installing the SIGTERM handler".into(), e))?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map_err(|e| Error::Io("waiting for Ctrl-C".into(), e)),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .map_err(|e| Error::Io("waiting for Ctrl-C".into(), e))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("labflow-testbed: {e}");
            ExitCode::FAILURE
        }
    }
}
