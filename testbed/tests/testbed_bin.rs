//! The one-call start: `labflow-testbed` prints the shell environment, serves the AWS SDK at
//! the printed endpoints and stops everything on SIGTERM.

mod testbed_support;
mod wait_support;

use anyhow::{bail, ensure, Context as _};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test]
async fn binary_prints_the_environment_serves_it_and_stops_on_sigterm() -> anyhow::Result<()> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_labflow-testbed"))
        .args(["--create-delay", "0.2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    // Read the exports on a thread (blocking reads), up to the "running" line.
    let reader = std::thread::spawn(move || -> anyhow::Result<BTreeMap<String, String>> {
        let mut vars = BTreeMap::new();
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            if line.starts_with("# labflow-testbed is running") {
                return Ok(vars);
            }
            let (k, v) = line
                .strip_prefix("export ")
                .and_then(|l| l.split_once('='))
                .with_context(|| format!("unexpected output line {line:?}"))?;
            vars.insert(k.to_string(), v.trim_matches('\'').to_string());
        }
        bail!("the binary ended its output before it was running")
    });
    let vars = match tokio::task::spawn_blocking(move || reader.join()).await? {
        Ok(v) => v,
        Err(_) => bail!("reader panicked"),
    };
    let vars = match vars {
        Ok(v) => v,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    for k in [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_EKS",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "LABFLOW_TESTBED_FAULTS_URL",
    ] {
        ensure!(vars.contains_key(k), "{k} not printed: {vars:?}");
    }

    // An SDK call with exactly what was printed.
    testbed_support::eks::rustls_provider();
    let eks = aws_sdk_eks::Client::from_conf(
        aws_sdk_eks::Config::builder()
            .http_client(labflow_testbed::controllers::aws::https_client())
            .behavior_version(aws_sdk_eks::config::BehaviorVersion::latest())
            .region(aws_sdk_eks::config::Region::new(vars["AWS_REGION"].clone()))
            .credentials_provider(aws_credential_types::Credentials::new(
                &vars["AWS_ACCESS_KEY_ID"],
                &vars["AWS_SECRET_ACCESS_KEY"],
                None,
                None,
                "env",
            ))
            .endpoint_url(&vars["AWS_ENDPOINT_URL_EKS"])
            .build(),
    );
    let listed = eks.list_clusters().send().await?;
    assert!(listed.clusters().is_empty());
    // The fault control API answers, and the AWS emulator is up.
    let (status, _) =
        testbed_support::control(&vars["LABFLOW_TESTBED_FAULTS_URL"], "GET", "/faults", None)
            .await?;
    assert_eq!(status, 200);
    let moto = vars["AWS_ENDPOINT_URL"]
        .strip_prefix("http://")
        .context("emulator endpoint")?
        .to_string();
    ensure!(std::net::TcpStream::connect(&moto).is_ok());

    // SIGTERM: a clean exit, and the emulator goes with it.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    ensure!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("did not stop within 10 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    ensure!(exit.success(), "exit status {exit}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(&moto).is_ok() {
        if Instant::now() > deadline {
            bail!("the AWS emulator still answers after the testbed stopped");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
