//! The AWS emulator: a `moto_server` process from the repo's `.venv`, on a free loopback port.
//!
//! SSM, Route53, STS, IAM, Step Functions and Scheduler go here (DESIGN.md §6). One server per
//! [`Moto`] value; dropping it kills the process. Clients reach it through
//! [`crate::aws_proxy::AwsProxy`], which enforces the rules where moto is more lenient than AWS
//! (Route53 change batches), so [`Moto::endpoint`] is the proxy's address.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::aws_proxy::{AwsProxy, Route53Faults};
use crate::paths;

/// Why the emulator could not be started.
#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error("the AWS emulator is not installed: no {0} (run `make test` or `make venv` first)")]
    NotInstalled(PathBuf),
    #[error("could not find the repository's .venv (run `make test` or `make venv` first)")]
    NoVenv,
    #[error("could not start the AWS emulator: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("the AWS emulator did not answer on {addr} within {waited:?}")]
    NotReady { addr: SocketAddr, waited: Duration },
    #[error("the AWS emulator exited early with {0}")]
    Exited(std::process::ExitStatus),
}

/// Runs moto's server in-process with a watchdog that exits as soon as the parent (the test
/// process) is gone, so a crashed or killed test run leaves no server behind.
const LAUNCHER: &str = r#"
import os, sys, threading, time
parent = os.getppid()
def watchdog():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=watchdog, daemon=True).start()
from moto.server import main
main(["-H", sys.argv[1], "-p", sys.argv[2]])
"#;

/// The emulator shared by everything in this process: started on first use, stopped when the
/// process exits (the watchdog above), so each test binary runs exactly one.
pub fn shared() -> Result<&'static Moto, MotoError> {
    static SHARED: std::sync::OnceLock<Moto> = std::sync::OnceLock::new();
    static START: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if let Some(moto) = SHARED.get() {
        return Ok(moto);
    }
    let _guard = START
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(moto) = SHARED.get() {
        return Ok(moto);
    }
    let moto = Moto::start()?;
    Ok(SHARED.get_or_init(|| moto))
}

/// A running moto server behind its rule layer. Dropping it stops both.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// moto's own address.
    addr: SocketAddr,
    proxy: AwsProxy,
}

impl Moto {
    /// Start `moto_server` from the venv on a free loopback port and wait until it answers.
    pub fn start() -> Result<Self, MotoError> {
        let venv = paths::venv_dir().ok_or(MotoError::NoVenv)?;
        let python = venv.join("bin").join("python");
        if !venv.join("bin").join("moto_server").is_file() {
            return Err(MotoError::NotInstalled(
                venv.join("bin").join("moto_server"),
            ));
        }
        let port = free_port().map_err(MotoError::Spawn)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut child = Command::new(&python)
            .args(["-c", LAUNCHER, "127.0.0.1", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(MotoError::Spawn)?;
        let waited = Duration::from_secs(30);
        let deadline = Instant::now() + waited;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(MotoError::Exited(status));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(MotoError::NotReady { addr, waited });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let proxy = match AwsProxy::start(addr) {
            Ok(proxy) => proxy,
            Err(err) => {
                let _ = child.kill();
                return Err(MotoError::Spawn(err));
            }
        };
        Ok(Self { child, addr, proxy })
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL`: the rule layer in front of moto.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.proxy.addr())
    }

    /// The address clients use (the rule layer's).
    pub fn addr(&self) -> SocketAddr {
        self.proxy.addr()
    }

    /// moto's own address, bypassing the rules (for the emulator's control API).
    pub fn emulator_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Faults injected on the Route53 path (see [`Route53Faults`]).
    pub fn route53_faults(&self) -> &Route53Faults {
        self.proxy.route53_faults()
    }

    /// Reset all emulated state (moto's `/moto-api/reset`), so a test can start from nothing.
    pub fn reset(&self) -> std::io::Result<()> {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(self.addr)?;
        write!(
            stream,
            "POST /moto-api/reset HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.addr
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        if response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200") {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "moto reset answered: {}",
                response.lines().next().unwrap_or("")
            )))
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port the OS says is free right now (bind to :0, read it, release it).
pub fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}
