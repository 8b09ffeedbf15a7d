//! Harness for end-to-end runs of the lifecycle: a local cloud (`labflow_cli::local`) started for
//! one test, seeded with environment configs written to a temporary directory, whose simulated
//! Flux reads a temporary clone of this repository (so a test can push new commits to it without
//! touching the checkout).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use labflow_cli::local::cloud::{CloudOptions, LocalCloud};
use labflow_cli::local::runner::{write_summary, RunReport, Session};
use labflow_states::ExecutionStatus;
use labflow_testbed::eks::EksDelays;
use serde_json::{json, Value};
use tempfile::TempDir;

/// Seconds the simulated EKS takes per create/delete/update.
pub const EKS_DELAY: Duration = Duration::from_millis(200);
/// The executions' `pollSeconds`.
pub const POLL_SECONDS: u32 = 1;
/// The longest one execution may take before the test gives up on it.
pub const RUN_LIMIT: Duration = Duration::from_secs(240);
/// The branch the example configs name.
pub const BRANCH: &str = "main";

/// The repository root (where `state-machine/` and `examples/` live).
pub fn repo_root() -> anyhow::Result<PathBuf> {
    labflow_testbed::paths::repo_root().ok_or_else(|| anyhow!("not inside the labflow repository"))
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .with_context(|| format!("running git {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "git {} in {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A throw-away bare clone of this repository with `main` at the checkout's HEAD commit: what
/// the simulated Flux reads. New commits go here, never into the checkout.
pub struct Repository {
    dir: TempDir,
}

impl Repository {
    pub fn clone_of(root: &Path) -> anyhow::Result<Repository> {
        let dir = tempfile::Builder::new()
            .prefix("labflow-e2e-repo-")
            .tempdir()?;
        let head = git(root, &["rev-parse", "HEAD^{commit}"])?;
        let target = dir.path().display().to_string();
        git(root, &["clone", "--bare", "--quiet", ".", &target])?;
        git(
            dir.path(),
            &["update-ref", &format!("refs/heads/{BRANCH}"), &head],
        )?;
        Ok(Repository { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The commit `branch` points at.
    pub fn sha(&self, branch: &str) -> anyhow::Result<String> {
        git(
            self.path(),
            &["rev-parse", &format!("refs/heads/{branch}^{{commit}}")],
        )
    }

    /// Adds an empty commit on top of `branch` (as a push would) and returns its sha.
    pub fn commit_empty(&self, branch: &str, message: &str) -> anyhow::Result<String> {
        let parent = self.sha(branch)?;
        let tree = format!("{parent}^{{tree}}");
        let sha = git(
            self.path(),
            &[
                "-c",
                "user.name=labflow e2e",
                "-c",
                "user.email=e2e@labflow.invalid",
                "commit-tree",
                &tree,
                "-p",
                &parent,
                "-m",
                message,
            ],
        )?;
        git(
            self.path(),
            &["update-ref", &format!("refs/heads/{branch}"), &sha, &parent],
        )?;
        Ok(sha)
    }
}

/// An environment config derived from `examples/environments/lab.json`.
pub struct EnvSpec {
    pub name: String,
    pub nightly_teardown: bool,
    pub protected: bool,
    /// Flux's install manifest (URL, sha256) in place of the example's release.
    pub flux_manifest: Option<(String, String)>,
    /// `healthDeadlineMinutes` in place of the example's.
    pub health_deadline_minutes: Option<u32>,
}

impl EnvSpec {
    pub fn new(name: &str) -> Self {
        EnvSpec {
            name: name.to_string(),
            nightly_teardown: true,
            protected: false,
            flux_manifest: None,
            health_deadline_minutes: None,
        }
    }

    pub fn health_deadline_minutes(mut self, minutes: u32) -> Self {
        self.health_deadline_minutes = Some(minutes);
        self
    }

    pub fn flux_manifest(mut self, url: &str, sha256: &str) -> Self {
        self.flux_manifest = Some((url.to_string(), sha256.to_string()));
        self
    }

    pub fn protected(mut self) -> Self {
        self.protected = true;
        self
    }

    /// The config: `lab.json` with its own cluster, domain and owner id; it keeps reading the
    /// lab's GitOps tree (`clusters/lab`), which is the one the repository has.
    pub fn config(&self, root: &Path) -> anyhow::Result<Value> {
        let path = root.join("examples/environments/lab.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut config: Value = serde_json::from_str(&text)?;
        let name = &self.name;
        if name != "lab" {
            config["cluster"]["name"] = json!(format!("labflow-{name}"));
            config["dns"]["domain"] = json!(format!("{name}.example.com"));
            config["dns"]["ownerId"] = json!(format!("labflow-{name}"));
            config["flux"]["repository"]["path"] = json!("./infra/gitops/clusters/lab");
        }
        if let Some((url, sha256)) = &self.flux_manifest {
            config["flux"]["manifestUrl"] = json!(url);
            config["flux"]["manifestSha256"] = json!(sha256);
        }
        if let Some(minutes) = self.health_deadline_minutes {
            config["healthDeadlineMinutes"] = json!(minutes);
        }
        config["nightlyTeardown"] = json!(self.nightly_teardown);
        config["protected"] = json!(self.protected);
        Ok(config)
    }
}

/// A running local cloud with a session on it.
pub struct Lab {
    pub session: Session,
    pub cloud: LocalCloud,
    pub repository: Repository,
    progress: Arc<Mutex<Vec<u8>>>,
    _configs: TempDir,
}

impl Lab {
    /// Starts a local cloud (its own AWS emulator, so tests never see each other's SSM
    /// parameters or executions) seeded with `envs`.
    pub async fn start(envs: &[EnvSpec]) -> anyhow::Result<Lab> {
        Lab::start_with(envs, None).await
    }

    /// [`Lab::start`] with `labflow local --kubeconfig`: the clusters' Kubernetes side is the
    /// cluster of `kubeconfig`, and nothing in it is simulated by the local cloud.
    pub async fn start_with(envs: &[EnvSpec], kubeconfig: Option<PathBuf>) -> anyhow::Result<Lab> {
        let root = repo_root()?;
        let repository = Repository::clone_of(&root)?;
        let configs = tempfile::Builder::new()
            .prefix("labflow-e2e-envs-")
            .tempdir()?;
        let mut environments = Vec::new();
        for env in envs {
            let file = configs.path().join(format!("{}.json", env.name));
            std::fs::write(&file, serde_json::to_string_pretty(&env.config(&root)?)?)?;
            environments.push(file);
        }
        let crd_dir = labflow_testbed::paths::crd_cache_dir()
            .filter(|d| d.is_dir())
            .ok_or_else(|| anyhow!("the Flux CRD cache is missing (hint: `make crds`)"))?;
        let definition = root.join("state-machine/lifecycle.asl.json");
        let cloud = LocalCloud::start(CloudOptions {
            environments,
            repository: repository.path().to_path_buf(),
            crd_dir,
            definition: definition.clone(),
            eks_delays: EksDelays::uniform(EKS_DELAY, EKS_DELAY, EKS_DELAY),
            own_moto: true,
            kubeconfig,
        })
        .await?;
        let text = std::fs::read_to_string(&definition)?;
        let session = Session::connect(cloud.endpoints.clone(), &text).await?;
        Ok(Lab {
            session,
            cloud,
            repository,
            progress: Arc::default(),
            _configs: configs,
        })
    }

    /// Progress lines and summaries of every run so far (for assertion messages).
    pub fn log(&self) -> String {
        let bytes = self.progress.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn sink(&self) -> Arc<Mutex<dyn Write + Send>> {
        self.progress.clone()
    }

    fn note(&self, line: &str) {
        if let Ok(mut w) = self.progress.lock() {
            let _ = writeln!(w, "== {line}");
        }
    }

    fn summarize(&self, report: &RunReport) {
        if let Ok(mut w) = self.progress.lock() {
            let _ = write_summary(&mut *w, report);
        }
    }

    /// Runs one execution (started in the emulator like `labflow local run`) to its end.
    pub async fn run(&self, input: Value) -> anyhow::Result<RunReport> {
        self.note(&format!("run {input}"));
        self.within_limit(self.session.run(input, self.sink()))
            .await
    }

    /// Waits for an execution's run to end (at most [`RUN_LIMIT`]) and logs its summary.
    async fn within_limit(
        &self,
        run: impl std::future::Future<Output = anyhow::Result<RunReport>>,
    ) -> anyhow::Result<RunReport> {
        let report = tokio::time::timeout(RUN_LIMIT, run).await.map_err(|_| {
            anyhow!(
                "the execution did not end within {RUN_LIMIT:?}:\n{}",
                self.log()
            )
        })??;
        self.summarize(&report);
        Ok(report)
    }

    /// Delivers a signed push of `sha` to the webhook and runs the execution it started.
    pub async fn push(&self, env: &str, sha: &str) -> anyhow::Result<(Value, RunReport)> {
        let url = self.repository_url(env).await?;
        let started = labflow_cli::local::push::deliver(
            &self.session.clients,
            &self.cloud.endpoints.state_machine_arn,
            &url,
            BRANCH,
            sha,
        )
        .await?;
        let mut input = started.input;
        input["pollSeconds"] = json!(POLL_SECONDS);
        self.note(&format!("push {sha} started {input}"));
        let report = self
            .within_limit(self.session.run_started(
                started.execution_arn,
                &started.name,
                input.clone(),
                self.sink(),
            ))
            .await?;
        Ok((input, report))
    }

    /// The repository URL an environment's config names.
    pub async fn repository_url(&self, env: &str) -> anyhow::Result<String> {
        let config = self.config(env).await?;
        config
            .pointer("/flux/repository/url")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| anyhow!("{env}: no flux.repository.url"))
    }

    /// The seeded config of an environment, from SSM.
    pub async fn config(&self, env: &str) -> anyhow::Result<Value> {
        let value = self
            .parameter(&format!("/labflow/environments/{env}"))
            .await?
            .ok_or_else(|| anyhow!("{env} is not configured"))?;
        Ok(serde_json::from_str(&value)?)
    }

    /// An SSM parameter's value, `None` when it does not exist.
    pub async fn parameter(&self, name: &str) -> anyhow::Result<Option<String>> {
        match self
            .session
            .clients
            .ssm
            .get_parameter()
            .name(name)
            .send()
            .await
        {
            Ok(out) => Ok(out.parameter().and_then(|p| p.value()).map(str::to_string)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                Ok(None)
            }
            Err(e) => Err(anyhow!("GetParameter {name}: {e:?}")),
        }
    }

    /// The lock of an environment (`/labflow/locks/<env>`), if held.
    pub async fn lock(&self, env: &str) -> anyhow::Result<Option<String>> {
        self.parameter(&format!("/labflow/locks/{env}")).await
    }

    /// What remains of an environment in the local cloud.
    pub async fn leftovers(&self, env: &str) -> anyhow::Result<Vec<String>> {
        labflow_cli::local::leftovers(&self.session, env).await
    }

    /// The EKS status of the environment's cluster (`None`: no such cluster).
    pub async fn cluster_status(&self, env: &str) -> anyhow::Result<Option<String>> {
        let config = self.config(env).await?;
        let name = config
            .pointer("/cluster/name")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("{env}: no cluster.name"))?;
        match self
            .session
            .clients
            .eks
            .describe_cluster()
            .name(name)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .cluster()
                .and_then(|c| c.status())
                .map(|s| s.as_str().to_string())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(anyhow!("DescribeCluster {name}: {e:?}")),
        }
    }

    /// An object in the cluster's kubesim, read directly (not through any labflow function).
    pub async fn object(
        &self,
        cluster: &str,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        use labflow_testbed::controllers::objects::{Client, ObjRef};
        let sim = self.cloud.testbed.eks().kubesim(cluster).await?;
        Client::new(sim.store(), "labflow-e2e").get(&ObjRef::new(
            api_version,
            kind,
            namespace,
            name,
        ))
    }
}

/// The execution's output when it succeeded.
pub fn output(report: &RunReport) -> Option<&Value> {
    match &report.execution.status {
        ExecutionStatus::Succeeded { output } => Some(output),
        _ => None,
    }
}

/// (error, cause) when the execution failed or timed out.
pub fn failure(report: &RunReport) -> Option<(&str, &str)> {
    match &report.execution.status {
        ExecutionStatus::Failed { failure } | ExecutionStatus::TimedOut { failure } => {
            Some((failure.name(), failure.cause_text()))
        }
        ExecutionStatus::Succeeded { .. } => None,
    }
}

/// An execution input of `action` on `env` started by a person.
pub fn console_input(action: &str, env: &str) -> Value {
    json!({
        "action": action,
        "environment": env,
        "source": {"kind": "console", "requestedBy": "labflow-e2e"},
        "pollSeconds": POLL_SECONDS,
    })
}

/// An execution input of `action` on `env` for a GitHub push of `sha`.
pub fn github_input(action: &str, env: &str, repository: &str, sha: &str) -> Value {
    json!({
        "action": action,
        "environment": env,
        "source": {
            "kind": "github",
            "repository": labflow_cli::local::push::full_name(repository),
            "branch": BRANCH,
            "sha": sha,
            "deliveryId": format!("e2e-{sha}"),
            "pusher": "labflow-e2e",
        },
        "pollSeconds": POLL_SECONDS,
    })
}
