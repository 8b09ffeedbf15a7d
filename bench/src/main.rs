//! `labflow-bench`: whole-process figures for every Lambda binary (cold start to the first
//! `GET next`, first invocation against the testbed, peak RSS, zip size) and per-lifecycle
//! figures from a local run (transitions, invocations, GB-s, Kubernetes/EKS requests per step,
//! cost). `make bench` packages the functions and runs this; docs/performance.md has the results.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use clap::Parser;
use labflow_bench::budgets::{self, Verdict};
use labflow_bench::process::{self, cold_start, lambda_env, median, Running};
use labflow_bench::runtime_api::{OutcomeKind, RuntimeApi};
use labflow_bench::FUNCTIONS;
use labflow_cli::local::cloud::{CloudOptions, LocalCloud};
use labflow_cli::local::github::GithubStandIn;
use labflow_cli::local::runner::Session;
use labflow_testbed::eks::{EksDelays, EksSim};
use labflow_testbed::kubesim::KubeSim;
use serde_json::{json, Value};

#[derive(Debug, Parser)]
#[command(
    about = "Cold start, first invocation, peak RSS, zip size and lifecycle cost of every labflow Lambda"
)]
struct Args {
    /// Directory of `<function>.zip` files (`make package`); binaries are the zips' `bootstrap`.
    #[arg(long, default_value = "dist/lambda")]
    zips: PathBuf,
    /// Take the binaries from here instead (`<dir>/<function>` or `<dir>/<function>/bootstrap`).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Cold starts per function (the median is reported); one extra warm-up start is discarded.
    #[arg(long, default_value_t = 21)]
    starts: usize,
    /// Skip the first invocations against the testbed.
    #[arg(long)]
    skip_invoke: bool,
    /// Skip the create + teardown lifecycle run.
    #[arg(long)]
    skip_lifecycle: bool,
    /// Seconds the simulated EKS takes per transition in the lifecycle run (`labflow local`'s default).
    #[arg(long, default_value_t = 3.0)]
    eks_delay: f64,
    /// Exit 1 when any budget is broken by more than 2x.
    #[arg(long)]
    check: bool,
}

/// One row of the budget table.
struct Judged {
    what: String,
    measured: String,
    budget: String,
    verdict: Verdict,
}

#[derive(Default)]
struct FunctionFigures {
    zip_bytes: Option<u64>,
    cold_median_ms: Option<f64>,
    cold_min_ms: Option<f64>,
    cold_max_ms: Option<f64>,
    rss_at_next_kib: Option<u64>,
    invocation: Option<Invoked>,
    problem: Option<String>,
}

struct Invoked {
    latency_ms: f64,
    peak_rss_kib: Option<u64>,
    summary: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("labflow-bench: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> anyhow::Result<bool> {
    let root = repo_root()?;
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    print_machine();

    let binaries = resolve_binaries(&args, tmp.path())?;
    let mut figures: BTreeMap<&str, FunctionFigures> = BTreeMap::new();
    for f in FUNCTIONS {
        let zip = args.zips.join(format!("{f}.zip"));
        figures.entry(f).or_default().zip_bytes = std::fs::metadata(&zip).ok().map(|m| m.len());
    }

    // Cold starts: the baseline process first, then every function, each started the same way.
    let baseline = std::env::current_exe()
        .context("locating this binary")?
        .with_file_name("runtime-baseline");
    if !baseline.is_file() {
        bail!(
            "{} is missing (cargo build --workspace --bins)",
            baseline.display()
        );
    }
    let starts = args.starts.max(1);
    println!("\n## Cold start (process start → first GET /2018-06-01/runtime/invocation/next), {starts} starts each\n");
    let (baseline_ms, _, _, _) = cold_starts("runtime-baseline", &baseline, starts)
        .context("cold-starting the baseline process")?;
    println!(
        "  {:<16} median {:>7.2} ms",
        "runtime-baseline", baseline_ms
    );
    for (f, binary) in &binaries {
        let entry = figures.entry(f).or_default();
        match cold_starts(f, binary, starts) {
            Ok((med, min, max, rss)) => {
                println!(
                    "  {f:<16} median {med:>7.2} ms  (min {min:.2}, max {max:.2})  {:>5.1}x baseline  RSS at first next {}",
                    med / baseline_ms,
                    kib(rss)
                );
                entry.cold_median_ms = Some(med);
                entry.cold_min_ms = Some(min);
                entry.cold_max_ms = Some(max);
                entry.rss_at_next_kib = rss;
            }
            Err(err) => {
                println!("  {f:<16} FAILED: {err:#}");
                entry.problem = Some(format!("{err:#}"));
            }
        }
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;

    if !args.skip_invoke && !binaries.is_empty() {
        println!("\n## First invocation against the testbed (moto + EKS simulator + kubesim), lifecycle order\n");
        match first_invocations(&rt, &root, &binaries, tmp.path()) {
            Ok(results) => {
                for (f, inv) in results {
                    println!(
                        "  {f:<16} {:>8.1} ms  peak RSS {:>9}  → {}",
                        inv.latency_ms,
                        kib(inv.peak_rss_kib),
                        inv.summary
                    );
                    figures.entry(f).or_default().invocation = Some(inv);
                }
            }
            Err(err) => println!("  FAILED: {err:#}"),
        }
    }

    let lifecycle = if args.skip_lifecycle {
        None
    } else {
        println!("\n## One lifecycle: create (healthy) + teardown, `labflow local` settings (EKS delay {} s, poll 1 s)\n", args.eks_delay);
        match rt.block_on(lifecycle(&root, tmp.path(), args.eks_delay)) {
            Ok(l) => Some(l),
            Err(err) => {
                println!("  FAILED: {err:#}");
                None
            }
        }
    };

    // Budgets.
    let mut judged = Vec::new();
    println!("\n## Function figures\n");
    println!(
        "  {:<16} {:>10} {:>12} {:>10} {:>14} {:>10}",
        "function", "zip", "cold start", "RSS@next", "1st invocation", "peak RSS"
    );
    for f in FUNCTIONS {
        let Some(x) = figures.get(f) else { continue };
        println!(
            "  {:<16} {:>10} {:>12} {:>10} {:>14} {:>10}",
            f,
            x.zip_bytes
                .map(|b| format!("{:.2} MiB", b as f64 / 1048576.0))
                .unwrap_or("-".into()),
            x.cold_median_ms
                .map(|m| format!("{m:.2} ms"))
                .unwrap_or("-".into()),
            kib(x.rss_at_next_kib),
            x.invocation
                .as_ref()
                .map(|i| format!("{:.1} ms", i.latency_ms))
                .unwrap_or("-".into()),
            kib(x.invocation.as_ref().and_then(|i| i.peak_rss_kib)),
        );
        if let Some(b) = x.zip_bytes {
            judged.push(Judged {
                what: format!("{f} zip"),
                measured: format!("{:.2} MiB", b as f64 / 1048576.0),
                budget: "≤ 8 MiB".into(),
                verdict: Verdict::at_most(b as f64, budgets::ZIP_BYTES as f64),
            });
        }
        if let Some(m) = x.cold_median_ms {
            // Judged as a ratio to the baseline process of this run (see budgets.rs).
            let ratio = m / baseline_ms;
            judged.push(Judged {
                what: format!("{f} cold start"),
                measured: format!("{m:.2} ms = {ratio:.1}x baseline"),
                budget: format!(
                    "≤ 25 ms ≈ {:.0}x baseline",
                    budgets::COLD_START_OVER_BASELINE
                ),
                verdict: Verdict::at_most(ratio, budgets::COLD_START_OVER_BASELINE),
            });
        }
        let rss = x
            .invocation
            .as_ref()
            .and_then(|i| i.peak_rss_kib)
            .or(x.rss_at_next_kib);
        if let Some(r) = rss {
            judged.push(Judged {
                what: format!("{f} peak RSS"),
                measured: kib(Some(r)),
                budget: "≤ 48 MiB".into(),
                verdict: Verdict::at_most(r as f64, budgets::PEAK_RSS_KIB as f64),
            });
        }
        if let Some(p) = &x.problem {
            judged.push(Judged {
                what: format!("{f} runs"),
                measured: p.clone(),
                budget: "starts".into(),
                verdict: Verdict::Broken,
            });
        }
    }
    if let Some(l) = &lifecycle {
        judged.push(Judged {
            what: "lifecycle transitions".into(),
            measured: l.transitions.to_string(),
            budget: "≤ 150".into(),
            verdict: Verdict::at_most(l.transitions as f64, budgets::LIFECYCLE_TRANSITIONS as f64),
        });
        // 25,000 events end an execution on AWS; one lifecycle should stay far below.
        judged.push(Judged {
            what: "history events per execution".into(),
            measured: l.history_events.to_string(),
            budget: format!("≤ {}", labflow_states::limits::HISTORY_EVENTS / 10),
            verdict: Verdict::at_most(
                l.history_events as f64,
                (labflow_states::limits::HISTORY_EVENTS / 10) as f64,
            ),
        });
        judged.push(Judged {
            what: "lifecycle cost".into(),
            measured: format!("${:.6}", l.cost_usd),
            budget: "≤ $0.01".into(),
            verdict: Verdict::at_most(l.cost_usd, budgets::LIFECYCLE_COST_USD),
        });
    }
    println!("\n## Budgets (broken = more than 2x over)\n");
    for j in &judged {
        println!(
            "  {:<28} {:<34} {:<24} {}",
            j.what,
            j.measured,
            j.budget,
            j.verdict.label()
        );
    }
    println!("\n  webhook events/s, EKS token, health evaluation, ASL transitions/s: `cargo bench` (see docs/performance.md)");
    let broken = judged.iter().any(|j| j.verdict == Verdict::Broken);
    Ok(!(args.check && broken))
}

fn kib(v: Option<u64>) -> String {
    v.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
        .unwrap_or("-".into())
}

fn print_machine() {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "# labflow-bench on {model}, {cores} cores, {mem} RAM, Linux {} ({} {})",
        kernel.trim(),
        std::env::consts::ARCH,
        chrono::Utc::now().format("%Y-%m-%d")
    );
}

fn repo_root() -> anyhow::Result<PathBuf> {
    let mut dir = std::env::current_dir().context("reading the current directory")?;
    loop {
        if dir.join("state-machine/lifecycle.asl.json").is_file() {
            return Ok(dir);
        }
        if !dir.pop() {
            bail!("run labflow-bench inside the labflow repository");
        }
    }
}

/// (function, binary) for every function found.
fn resolve_binaries(args: &Args, tmp: &Path) -> anyhow::Result<Vec<(&'static str, PathBuf)>> {
    let mut out = Vec::new();
    for f in FUNCTIONS {
        if let Some(dir) = &args.bin_dir {
            let candidates = [dir.join(f), dir.join(f).join("bootstrap")];
            match candidates.into_iter().find(|p| p.is_file()) {
                Some(p) => out.push((*f, p)),
                None => println!("  (no binary for {f} in {})", dir.display()),
            }
            continue;
        }
        let zip = args.zips.join(format!("{f}.zip"));
        if !zip.is_file() {
            println!("  (no {}: run `make package`)", zip.display());
            continue;
        }
        let target = tmp.join(f);
        let unzipped = std::process::Command::new("unzip")
            .arg("-p")
            .arg(&zip)
            .arg("bootstrap")
            .output()
            .with_context(|| format!("running unzip on {}", zip.display()))?;
        if !unzipped.status.success() || unzipped.stdout.is_empty() {
            bail!("{} has no bootstrap", zip.display());
        }
        std::fs::write(&target, &unzipped.stdout)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
        out.push((*f, target));
    }
    Ok(out)
}

/// (median, min, max) ms and the peak RSS at the first `next` of the last start.
fn cold_starts(
    function: &str,
    binary: &Path,
    starts: usize,
) -> anyhow::Result<(f64, f64, f64, Option<u64>)> {
    let api = RuntimeApi::start(&format!(
        "arn:aws:lambda:{}:{}:function:labflow-{function}",
        process::REGION,
        process::ACCOUNT
    ))?;
    let env = lambda_env(function, &api.address(), &[]);
    // Warm-up start, discarded: the first exec after unzipping pays for reading the file.
    cold_start(&api, binary, &env)?;
    let mut times = Vec::new();
    let mut rss = None;
    for _ in 0..starts {
        let c = cold_start(&api, binary, &env)?;
        times.push(c.to_first_next);
        rss = c.peak_rss_kib.or(rss);
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let min = times.iter().copied().min().map(ms).unwrap_or(0.0);
    let max = times.iter().copied().max().map(ms).unwrap_or(0.0);
    Ok((ms(median(&mut times)), min, max, rss))
}

/// A clone of the checkout's `main`: the simulated Flux follows the branch head of the
/// repository it is given, so a commit landing mid-run would move the target under the run.
fn snapshot(root: &Path, tmp: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let dir = tmp.join(name);
    let status = std::process::Command::new("git")
        .args(["clone", "--quiet", "--local", "--branch", "main"])
        .arg(root)
        .arg(&dir)
        .status()
        .context("running git clone")?;
    if !status.success() {
        bail!("git clone of {} failed", root.display());
    }
    Ok(dir)
}

fn cloud_options(root: &Path, repo: &Path, delay: f64) -> anyhow::Result<CloudOptions> {
    let crd_dir = labflow_testbed::paths::crd_cache_dir()
        .filter(|d| d.is_dir())
        .ok_or_else(|| anyhow!("the Flux CRD cache is missing (make crds)"))?;
    let d = Duration::from_secs_f64(delay);
    Ok(CloudOptions {
        environments: vec![root.join("examples/environments/lab.json")],
        repository: repo.to_path_buf(),
        crd_dir,
        definition: root.join("state-machine/lifecycle.asl.json"),
        eks_delays: EksDelays::uniform(d, d, d),
        own_moto: true,
        // None: a kubesim per cluster (not a real cluster behind the EKS endpoints).
        kubeconfig: None,
    })
}

fn github_source(sha: &str) -> Value {
    json!({
        "kind": "github",
        "repository": "example/labflow",
        "branch": "main",
        "sha": sha,
        "deliveryId": format!("bench-{}", uuid::Uuid::new_v4()),
        "pusher": "labflow-bench",
    })
}

/// Runs each function once on a representative event, in lifecycle order against one local
/// cloud; steps that poll are driven to `done` (unmeasured) so the next step finds its world.
fn first_invocations(
    rt: &tokio::runtime::Runtime,
    root: &Path,
    binaries: &[(&'static str, PathBuf)],
    tmp: &Path,
) -> anyhow::Result<Vec<(&'static str, Invoked)>> {
    let repo = snapshot(root, tmp, "repo-invoke")?;
    let cloud = rt.block_on(LocalCloud::start(cloud_options(root, &repo, 0.3)?))?;
    let github = rt.block_on(GithubStandIn::start())?;
    let e = cloud.endpoints.clone();
    let sha = labflow_cli::local::git_sha(&repo, "main")?;
    let sdk = rt.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(labflow_core::aws::https_client())
            .region(aws_config::Region::new(e.region.clone()))
            .credentials_provider(aws_credential_types::Credentials::new(
                e.access_key_id.clone(),
                e.secret_access_key.clone(),
                e.session_token.clone(),
                None,
                "labflow-bench",
            ))
            .endpoint_url(&e.aws)
            .load(),
    );
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let secret = rt
        .block_on(
            ssm.get_parameter()
                .name(labflow_github_webhook::SECRET_PARAMETER)
                .with_decryption(true)
                .send(),
        )
        .context("reading the webhook secret")?
        .parameter()
        .and_then(|p| p.value())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no webhook secret"))?;
    let create_input = json!({
        "action": "create", "environment": "lab", "source": github_source(&sha), "pollSeconds": 1
    });
    let execution_arn = rt
        .block_on(
            sfn.start_execution()
                .state_machine_arn(&e.state_machine_arn)
                .name(format!(
                    "bench-create-{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                ))
                .input(create_input.to_string())
                .send(),
        )
        .context("StartExecution")?
        .execution_arn()
        .to_string();
    let step = |action: &str| json!({"environment": "lab", "action": action, "source": create_input["source"], "executionArn": execution_arn});
    let push_body = json!({
        "ref": "refs/heads/main", "before": "0000000000000000000000000000000000000000", "after": sha,
        "created": false, "deleted": false, "forced": false,
        "repository": {"full_name": "example/labflow", "clone_url": "https://github.com/example/labflow"},
        "pusher": {"name": "labflow-bench"}, "head_commit": null, "commits": [],
    })
    .to_string();
    let delivery = uuid::Uuid::new_v4().to_string();
    let webhook_event = json!({
        "version": "2.0", "rawPath": "/", "rawQueryString": "",
        "headers": {
            "content-type": "application/json", "x-github-event": "push", "x-github-delivery": delivery,
            "x-hub-signature-256": labflow_github_webhook::signature::sign(
                &labflow_github_webhook::Secret::new(secret), push_body.as_bytes()),
        },
        "requestContext": {
            "accountId": "anonymous", "requestId": delivery, "domainName": "localhost",
            "timeEpoch": chrono::Utc::now().timestamp_millis(),
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "GitHub-Hookshot/bench"}
        },
        "body": push_body, "isBase64Encoded": false,
    });
    let events: Vec<(&str, Value, bool)> = vec![
        ("github-webhook", webhook_event, false),
        (
            "run-guard",
            json!({"operation": "acquire", "executionArn": execution_arn, "executionInput": create_input}),
            false,
        ),
        (
            "github-status",
            json!({"state": "pending", "executionArn": execution_arn, "executionInput": create_input}),
            false,
        ),
        ("ensure-cluster", step("create"), true),
        ("cluster-access", step("create"), true),
        ("flux-bootstrap", step("create"), true),
        ("health-check", step("create"), false),
        ("teardown", step("teardown"), false),
    ];
    let extra = vec![
        ("AWS_ENDPOINT_URL".to_string(), e.aws.clone()),
        ("AWS_ENDPOINT_URL_EKS".to_string(), e.eks.clone()),
        ("AWS_REGION".to_string(), e.region.clone()),
        ("AWS_DEFAULT_REGION".to_string(), e.region.clone()),
        ("AWS_ACCESS_KEY_ID".to_string(), e.access_key_id.clone()),
        (
            "AWS_SECRET_ACCESS_KEY".to_string(),
            e.secret_access_key.clone(),
        ),
        (
            "AWS_SESSION_TOKEN".to_string(),
            e.session_token.clone().unwrap_or_default(),
        ),
        (
            "LABFLOW_STATE_MACHINE_ARN".to_string(),
            e.state_machine_arn.clone(),
        ),
        ("GITHUB_API_URL".to_string(), github.url().to_string()),
    ];
    let mut out = Vec::new();
    for (f, event, drive) in events {
        let Some((_, binary)) = binaries.iter().find(|(name, _)| *name == f) else {
            continue;
        };
        let api = RuntimeApi::start(&labflow_cli::local::cloud::lambda_arn(
            &e.region,
            &e.account_id,
            f,
        ))?;
        let env = lambda_env(f, &api.address(), &extra);
        let log = tmp.join(format!("{f}.log"));
        let inv = invoke_once(&api, binary, &env, &event, drive, &log)
            .with_context(|| format!("{f} (its log: {})", log.display()))?;
        out.push((f, inv));
    }
    drop(cloud);
    Ok(out)
}

fn invoke_once(
    api: &RuntimeApi,
    binary: &Path,
    env: &[(String, String)],
    event: &Value,
    drive_to_done: bool,
    log: &PathBuf,
) -> anyhow::Result<Invoked> {
    let running = Running::spawn(binary, env, Some(log))?;
    let timeout = Duration::from_secs(120);
    api.wait_next(1, Duration::from_secs(20))
        .map_err(|_| anyhow!("never asked for an invocation"))?;
    let id = api.push_event(event);
    let (delivered, outcome) = api
        .wait_outcome(&id, timeout)
        .ok_or_else(|| anyhow!("no response within {timeout:?}"))?;
    let latency_ms = outcome
        .at
        .saturating_duration_since(delivered)
        .as_secs_f64()
        * 1000.0;
    let mut peak = running.peak_rss_kib();
    let body: Value = serde_json::from_slice(&outcome.body).unwrap_or(Value::Null);
    let summary = summarize(&outcome.kind, &body);
    if outcome.kind == OutcomeKind::Response && drive_to_done {
        let mut last = body;
        // Unmeasured follow-up calls, like the state machine's polls, until the step is done.
        for _ in 0..400 {
            if last["done"] == json!(true) {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
            let id = api.push_event(event);
            let (_, o) = api
                .wait_outcome(&id, timeout)
                .ok_or_else(|| anyhow!("no response to a follow-up call"))?;
            if o.kind != OutcomeKind::Response {
                bail!(
                    "a follow-up call failed: {}",
                    String::from_utf8_lossy(&o.body)
                );
            }
            last = serde_json::from_slice(&o.body).unwrap_or(Value::Null);
        }
        if last["done"] != json!(true) {
            bail!("never reported done: {last}");
        }
        peak = running.peak_rss_kib().or(peak);
    }
    running.stop();
    api.reset();
    Ok(Invoked {
        latency_ms,
        peak_rss_kib: peak,
        summary,
    })
}

fn summarize(kind: &OutcomeKind, body: &Value) -> String {
    match kind {
        OutcomeKind::Response => {
            let mut parts = Vec::new();
            for key in [
                "statusCode",
                "done",
                "phase",
                "healthy",
                "posted",
                "skipped",
            ] {
                if let Some(v) = body.get(key) {
                    parts.push(format!("{key}={v}"));
                }
            }
            if let Some(b) = body.get("body").and_then(Value::as_str) {
                if let Ok(reply) = serde_json::from_str::<Value>(b) {
                    parts.push(format!("outcome={}", reply["outcome"]));
                }
            }
            parts.join(" ")
        }
        OutcomeKind::Error => format!("error {}", body.get("errorType").unwrap_or(&Value::Null)),
        OutcomeKind::InitError => "init error".into(),
    }
}

struct Lifecycle {
    transitions: u64,
    /// The larger execution's history (the 25,000-event quota is per execution).
    history_events: usize,
    cost_usd: f64,
}

/// Per step name: calls, Kubernetes API requests, EKS API requests.
type StepCounts = BTreeMap<String, (u64, usize, usize)>;

/// The progress sink of the run: echoes each line and charges the Kubernetes and EKS requests
/// made since the previous line to the step the line reports (steps run one at a time).
struct CountingSink {
    buf: Vec<u8>,
    kube: Arc<Mutex<Option<Arc<KubeSim>>>>,
    eks: EksSim,
    seen: (usize, usize),
    counts: Arc<Mutex<StepCounts>>,
}

impl Write for CountingSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line).to_string();
            let shown: String = line.trim_end().chars().take(160).collect();
            println!("  {shown}");
            let kube = self
                .kube
                .lock()
                .ok()
                .and_then(|k| k.as_ref().map(|k| k.requests().len()))
                .unwrap_or(0);
            let eks = self.eks.requests().len();
            // "[   6.5s] FluxBootstrap          done=..." — the state name is the second field.
            let state = line
                .split(']')
                .nth(1)
                .and_then(|r| r.split_whitespace().next());
            if let (Some(state), Ok(mut counts)) = (state, self.counts.lock()) {
                if !state.contains('=') && state != "execution" {
                    let c = counts.entry(state.to_string()).or_default();
                    c.0 += 1;
                    c.1 += kube.saturating_sub(self.seen.0);
                    c.2 += eks.saturating_sub(self.seen.1);
                }
            }
            self.seen = (kube, eks);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn lifecycle(root: &Path, tmp: &Path, eks_delay: f64) -> anyhow::Result<Lifecycle> {
    let repo = snapshot(root, tmp, "repo-lifecycle")?;
    let cloud = LocalCloud::start(cloud_options(root, &repo, eks_delay)?).await?;
    let definition = std::fs::read_to_string(root.join("state-machine/lifecycle.asl.json"))?;
    let session = Session::connect(cloud.endpoints.clone(), &definition).await?;
    let sha = labflow_cli::local::git_sha(&repo, "main")?;
    let eks = cloud.testbed.eks().clone();
    let kube: Arc<Mutex<Option<Arc<KubeSim>>>> = Arc::default();
    // Keep a handle on the cluster's kubesim once it exists, so its request log outlives the
    // cluster's deletion at the end of teardown.
    let watcher = {
        let (eks, kube) = (eks.clone(), kube.clone());
        tokio::spawn(async move {
            loop {
                if let Some(k) = eks.kubesim("labflow-lab").await {
                    if let Ok(mut slot) = kube.lock() {
                        *slot = Some(k);
                    }
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let counts: Arc<Mutex<StepCounts>> = Arc::default();
    let sink = Arc::new(Mutex::new(CountingSink {
        buf: Vec::new(),
        kube: kube.clone(),
        eks: eks.clone(),
        seen: (0, 0),
        counts: counts.clone(),
    }));
    let create = json!({"action": "create", "environment": "lab", "source": github_source(&sha), "pollSeconds": 1});
    let up = session.run(create, sink.clone()).await?;
    let teardown = json!({"action": "teardown", "environment": "lab",
        "source": {"kind": "console", "requestedBy": "labflow-bench"}, "pollSeconds": 1});
    let down = session.run(teardown, sink).await?;
    watcher.abort();
    if !up.succeeded() || !down.succeeded() {
        bail!("the lifecycle did not succeed");
    }
    let mut per_function: BTreeMap<&str, (u64, f64)> = BTreeMap::new();
    for r in [&up, &down] {
        for i in &r.invocations {
            let e = per_function.entry(i.function).or_default();
            e.0 += 1;
            e.1 += i.duration.as_secs_f64() * 1000.0;
        }
    }
    println!();
    for (name, r) in [("create", &up), ("teardown", &down)] {
        let c = &r.cost;
        println!(
            "  {name:<9} {:>5.1} s  transitions {:>3}  history events {:>4}  lambda calls {:>3}  {:.3} GB-s  ${:.6} (Step Functions ${:.6} + Lambda ${:.6})",
            r.wall.as_secs_f64(), c.state_transitions, r.execution.history.len(), c.lambda_invocations, c.lambda_gb_seconds,
            c.total_usd, c.step_functions_usd, c.lambda_usd
        );
    }
    let transitions = up.cost.state_transitions + down.cost.state_transitions;
    let history_events = up.execution.history.len().max(down.execution.history.len());
    let cost_usd = up.cost.total_usd + down.cost.total_usd;
    println!(
        "  total     transitions {transitions}  lambda calls {}  {:.3} GB-s  ${cost_usd:.6}",
        up.cost.lambda_invocations + down.cost.lambda_invocations,
        up.cost.lambda_gb_seconds + down.cost.lambda_gb_seconds
    );
    println!("\n  {:<16} {:>6} {:>12}", "function", "calls", "mean ms");
    for (f, (n, ms)) in &per_function {
        println!("  {f:<16} {n:>6} {:>12.1}", ms / *n as f64);
    }
    println!(
        "\n  {:<22} {:>6} {:>10} {:>8} {:>10} {:>8}",
        "step (state)", "calls", "k8s reqs", "per call", "EKS reqs", "per call"
    );
    if let Ok(counts) = counts.lock() {
        for (state, (n, k, e)) in counts.iter() {
            let n1 = (*n).max(1) as f64;
            println!(
                "  {state:<22} {n:>6} {k:>10} {:>8.1} {e:>10} {:>8.1}",
                *k as f64 / n1,
                *e as f64 / n1
            );
        }
    }
    Ok(Lifecycle {
        transitions,
        history_events,
        cost_usd,
    })
}
