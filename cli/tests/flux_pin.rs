//! `labflow flux pin`: against a loopback release server, on copies of the committed example
//! config and example.tfvars.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use labflow_core::config::Checks;
use labflow_testbed::releases::{flux_install_manifest, ReleaseServer};
use serde_json::Value;
use sha2::{Digest, Sha256};

const VERSION: &str = labflow_core::versions::FLUX_VERSION;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Files {
    _dir: tempfile::TempDir,
    config: PathBuf,
    tfvars: PathBuf,
}

/// Copies of the committed examples, as a user's would start.
fn example_files() -> Result<Files> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("lab.json");
    let tfvars = dir.path().join("my.tfvars");
    std::fs::copy(repo().join("examples/environments/lab.json"), &config)?;
    std::fs::copy(repo().join("infra/terraform/example.tfvars"), &tfvars)?;
    Ok(Files {
        _dir: dir,
        config,
        tfvars,
    })
}

fn manifest() -> Result<Vec<u8>> {
    let crds = labflow_testbed::paths::crd_cache_dir().context("no CRD cache: run make crds")?;
    Ok(flux_install_manifest(&crds, VERSION)?.into_bytes())
}

async fn release_server(install: Vec<u8>, checksums: Option<String>) -> Result<ReleaseServer> {
    let mut files = HashMap::from([(format!("/v{VERSION}/install.yaml"), install)]);
    if let Some(list) = checksums {
        files.insert(
            format!("/v{VERSION}/flux_{VERSION}_checksums.txt"),
            list.into_bytes(),
        );
    }
    Ok(ReleaseServer::start(files).await?)
}

async fn pin(server: &ReleaseServer, files: &Files) -> Result<(i32, String, String)> {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_labflow"))
        .args(["flux", "pin", VERSION, "--config"])
        .arg(&files.config)
        .arg("--tfvars")
        .arg(&files.tfvars)
        .arg("--releases")
        .arg(server.url(""))
        .output()
        .await
        .context("spawning labflow")?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn read(path: &Path) -> Result<String> {
    Ok(std::fs::read_to_string(path)?)
}

fn changed_lines(before: &str, after: &str) -> Vec<String> {
    after
        .lines()
        .filter(|line| !before.lines().any(|b| b == *line))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn pins_the_example_config_and_tfvars_to_the_downloaded_release() -> Result<()> {
    let install = manifest()?;
    let sha = hex::encode(Sha256::digest(&install));
    let checksums = format!(
        "{}  flux_{VERSION}_linux_amd64.tar.gz\n{sha}  install.yaml\n",
        "ab".repeat(32)
    );
    let server = release_server(install, Some(checksums)).await?;
    let files = example_files()?;
    let (config_before, tfvars_before) = (read(&files.config)?, read(&files.tfvars)?);

    // Before: the placeholder is refused, saying how to get the value.
    let err = labflow_core::config::parse_with("lab", &config_before, &Checks::create(true))
        .expect_err("the placeholder passed");
    assert!(
        err.message().contains("labflow flux pin"),
        "{}",
        err.message()
    );

    let (code, stdout, stderr) = pin(&server, &files).await?;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains(&format!("sha256 {sha}")), "{stdout}");
    assert!(stderr.contains("checked against"), "{stderr}");
    let url = server.url(&format!("/v{VERSION}/install.yaml"));

    // The config: the pinned values, everything else as it was, in place.
    let config_after = read(&files.config)?;
    let after: Value = serde_json::from_str(&config_after)?;
    assert_eq!(after["flux"]["manifestSha256"], sha.as_str());
    assert_eq!(after["flux"]["manifestUrl"], url.as_str());
    assert_eq!(after["flux"]["version"], VERSION);
    let mut expected: Value = serde_json::from_str(&config_before)?;
    expected["flux"]["manifestSha256"] = after["flux"]["manifestSha256"].clone();
    expected["flux"]["manifestUrl"] = after["flux"]["manifestUrl"].clone();
    assert_eq!(after, expected);
    assert_eq!(
        changed_lines(&config_before, &config_after).len(),
        2,
        "more than the two pinned lines changed:\n{config_after}"
    );
    // A loopback release serves the local cloud, and only it.
    labflow_core::config::parse_with("lab", &config_after, &Checks::create(true))
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    assert!(labflow_core::config::parse("lab", &config_after).is_err());

    // The tfvars file: comments and layout kept, the three values pinned.
    let tfvars_after = read(&files.tfvars)?;
    assert!(
        tfvars_after.contains(&format!("manifest_sha256 = \"{sha}\"")),
        "{tfvars_after}"
    );
    assert!(
        tfvars_after.contains(&format!("manifest_url    = \"{url}\"")),
        "{tfvars_after}"
    );
    assert!(tfvars_after.contains("# The seed's lab environment."));
    assert_eq!(
        changed_lines(&tfvars_before, &tfvars_after).len(),
        2,
        "{tfvars_after}"
    );
    assert_eq!(
        server.requests(),
        vec![
            format!("/v{VERSION}/install.yaml"),
            format!("/v{VERSION}/flux_{VERSION}_checksums.txt")
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_digest_the_release_checksums_contradict_writes_nothing() -> Result<()> {
    let server = release_server(
        manifest()?,
        Some(format!("{}  install.yaml\n", "0f".repeat(32))),
    )
    .await?;
    let files = example_files()?;
    let before = (read(&files.config)?, read(&files.tfvars)?);
    let (code, stdout, stderr) = pin(&server, &files).await?;
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("but the release's"), "{stderr}");
    assert_eq!((read(&files.config)?, read(&files.tfvars)?), before);
    Ok(())
}

#[tokio::test]
async fn what_is_not_a_flux_manifest_is_not_pinned() -> Result<()> {
    let server = release_server(
        b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n".to_vec(),
        None,
    )
    .await?;
    let files = example_files()?;
    let before = read(&files.config)?;
    let (code, _, stderr) = pin(&server, &files).await?;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("is not a Flux install manifest"),
        "{stderr}"
    );
    assert_eq!(read(&files.config)?, before);
    Ok(())
}

#[tokio::test]
async fn a_release_that_does_not_exist_says_so() -> Result<()> {
    let server = ReleaseServer::start(HashMap::new()).await?;
    let files = example_files()?;
    let (code, _, stderr) = pin(&server, &files).await?;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("HTTP 404"), "{stderr}");
    Ok(())
}
