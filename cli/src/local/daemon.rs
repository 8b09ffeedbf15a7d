//! The local cloud outlives one command (`up`, then `sync`, then `down`): a background
//! `labflow local serve` process hosts it and writes its endpoints to a state file; the other
//! commands read that file and talk to it over loopback.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};

use super::cloud::{CloudOptions, Endpoints, LocalCloud};

const STATE_FILE: &str = "cloud.json";
const STOP_FILE: &str = "stop";
const LOG_FILE: &str = "cloud.log";
/// How long a fresh cloud may take to start (moto's first start imports a lot of Python).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The state file: who serves, and where.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Running {
    pub pid: u32,
    pub endpoints: Endpoints,
}

/// Runs the cloud in this process until Ctrl-C, SIGTERM or `down` asks it to stop.
pub async fn serve(state_dir: &Path, options: CloudOptions) -> anyhow::Result<()> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let _ = std::fs::remove_file(state_dir.join(STOP_FILE));
    let cloud = LocalCloud::start(options).await?;
    let running = Running {
        pid: std::process::id(),
        endpoints: cloud.endpoints.clone(),
    };
    let state = state_dir.join(STATE_FILE);
    let tmp = state_dir.join(format!("{STATE_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&running)?)?;
    std::fs::rename(&tmp, &state)?;
    tracing::info!(aws = %running.endpoints.aws, eks = %running.endpoints.eks, "local cloud up");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let stop_file = state_dir.join(STOP_FILE);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if stop_file.exists() {
                    break;
                }
            }
        }
    }
    let _ = std::fs::remove_file(&state);
    let _ = std::fs::remove_file(&stop_file);
    drop(cloud);
    tracing::info!("local cloud stopped");
    Ok(())
}

/// The running cloud, if its state file exists and its endpoints answer.
pub fn find(state_dir: &Path) -> Option<Running> {
    let text = std::fs::read(state_dir.join(STATE_FILE)).ok()?;
    let running: Running = serde_json::from_slice(&text).ok()?;
    let alive = [&running.endpoints.aws, &running.endpoints.eks]
        .iter()
        .all(|url| reachable(url));
    alive.then_some(running)
}

fn reachable(url: &str) -> bool {
    let Some(addr) = url
        .strip_prefix("http://")
        .and_then(|hostport| hostport.trim_end_matches('/').parse().ok())
    else {
        return false;
    };
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

/// Starts `labflow local serve` in the background (its own process group, so a Ctrl-C aimed
/// at this command leaves the lab running) and waits for its state file.
pub fn spawn(state_dir: &Path, serve_args: &[String]) -> anyhow::Result<Running> {
    use std::os::unix::process::CommandExt as _;
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let _ = std::fs::remove_file(state_dir.join(STATE_FILE));
    let log_path = state_dir.join(LOG_FILE);
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let exe = std::env::current_exe().context("locating the labflow binary")?;
    let mut child = Command::new(exe)
        .args(["local", "serve", "--state-dir"])
        .arg(state_dir)
        .args(serve_args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("starting `labflow local serve`")?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(running) = find(state_dir) {
            return Ok(running);
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "the local cloud exited during start ({status}); its log {}:\n{}",
                log_path.display(),
                tail(&log_path, 20)
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!(
                "the local cloud did not start within {}s; its log {}:\n{}",
                START_TIMEOUT.as_secs(),
                log_path.display(),
                tail(&log_path, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Asks the serving process to stop and waits until it has.
pub fn stop(state_dir: &Path) -> anyhow::Result<bool> {
    if find(state_dir).is_none() {
        let _ = std::fs::remove_file(state_dir.join(STATE_FILE));
        return Ok(false);
    }
    std::fs::write(state_dir.join(STOP_FILE), b"")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while state_dir.join(STATE_FILE).exists() {
        if Instant::now() > deadline {
            bail!(
                "the local cloud did not stop within 20s (see {})",
                state_dir.join(LOG_FILE).display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(true)
}

fn tail(path: &PathBuf, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
