//! Starting a function binary the way Lambda does: an empty environment except the variables
//! Lambda sets, the Runtime API at `AWS_LAMBDA_RUNTIME_API`, credentials and region from the
//! environment (so nothing asks IMDS or the network while starting).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::runtime_api::{Outcome, RuntimeApi};

/// Memory size the functions are deployed with (infra/terraform) and the cost model uses.
pub const MEMORY_MB: u32 = 256;
pub const REGION: &str = "eu-west-1";
pub const ACCOUNT: &str = "123456789012";

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("starting {0}: {1}")]
    Spawn(String, std::io::Error),
    #[error("{0} never asked for an invocation within {1:?}{2}")]
    NoNext(String, Duration, String),
}

/// The environment Lambda gives a function, for `function` with extra variables on top.
pub fn lambda_env(
    function: &str,
    runtime_api: &str,
    extra: &[(String, String)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", format!("labflow-{function}")),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", MEMORY_MB.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/labflow-{function}"),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/01/01/[$LATEST]0000000000000000".to_string(),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_string()),
        (
            "AWS_EXECUTION_ENV",
            "AWS_Lambda_provided.al2023".to_string(),
        ),
        ("AWS_REGION", REGION.to_string()),
        ("AWS_DEFAULT_REGION", REGION.to_string()),
        // Fake, well-formed credentials: Lambda passes the role's session in the environment.
        ("AWS_ACCESS_KEY_ID", "ASIABENCH00000000000".to_string()),
        (
            "AWS_SECRET_ACCESS_KEY",
            "bench-secret-access-key-not-real".to_string(),
        ),
        ("AWS_SESSION_TOKEN", "bench-session-token".to_string()),
        ("LAMBDA_TASK_ROOT", "/var/task".to_string()),
        ("_HANDLER", "bootstrap".to_string()),
        ("TZ", ":UTC".to_string()),
        ("LANG", "en_US.UTF-8".to_string()),
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_string()),
        // What the functions themselves read (infra/terraform sets these).
        (
            "LABFLOW_STATE_MACHINE_ARN",
            format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:labflow-lifecycle"),
        ),
        (
            "LABFLOW_AUTOMATION_ROLE_ARN",
            format!("arn:aws:iam::{ACCOUNT}:role/labflow-automation"),
        ),
        ("RUST_LOG", "info".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

/// A started function process.
pub struct Running {
    pub child: Child,
    pub spawned: Instant,
}

impl Running {
    /// Starts `binary` with exactly `env`; output goes to `log` (or nowhere).
    pub fn spawn(
        binary: &Path,
        env: &[(String, String)],
        log: Option<&PathBuf>,
    ) -> Result<Running, ProcessError> {
        let name = binary.display().to_string();
        let (out, err) = match log {
            Some(path) => {
                let file = File::create(path).map_err(|e| ProcessError::Spawn(name.clone(), e))?;
                let clone = file
                    .try_clone()
                    .map_err(|e| ProcessError::Spawn(name.clone(), e))?;
                (Stdio::from(file), Stdio::from(clone))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let spawned = Instant::now();
        let child = cmd.spawn().map_err(|e| ProcessError::Spawn(name, e))?;
        Ok(Running { child, spawned })
    }

    /// Peak resident set size so far (VmHWM), in KiB; None once the process is gone.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Never leave a function process behind, whatever path we left by.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One cold start: spawn, wait for the first `GET next`, read peak RSS, stop.
#[derive(Debug, Clone, Copy)]
pub struct ColdStart {
    pub to_first_next: Duration,
    pub peak_rss_kib: Option<u64>,
}

pub fn cold_start(
    api: &RuntimeApi,
    binary: &Path,
    env: &[(String, String)],
) -> Result<ColdStart, ProcessError> {
    api.reset();
    let running = Running::spawn(binary, env, None)?;
    let timeout = Duration::from_secs(20);
    let result = match api.wait_next(1, timeout) {
        Ok(at) => Ok(ColdStart {
            to_first_next: at.saturating_duration_since(running.spawned),
            peak_rss_kib: running.peak_rss_kib(),
        }),
        Err(init_error) => Err(ProcessError::NoNext(
            binary.display().to_string(),
            timeout,
            init_error
                .map(|o: Outcome| format!(" (init error: {})", String::from_utf8_lossy(&o.body)))
                .unwrap_or_default(),
        )),
    };
    running.stop();
    api.reset();
    result
}

pub fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    match values.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2,
    }
}
