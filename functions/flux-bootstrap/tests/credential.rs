//! Flux's Git credential (issue 26 item 2): each environment's own read-only credential goes into
//! the cluster, never the token that writes commit statuses; an `ssh://` source gets a deploy key
//! the (simulated) source-controller accepts; a missing or unset credential stops the step before
//! anything is applied.

mod support;

use std::time::Duration;

use anyhow::{ensure, Context as _};
use base64::Engine;
use labflow_core::contract::Action;
use labflow_flux_bootstrap::handle;
use labflow_testbed::controllers::{ControllerOptions, Controllers, FluxOptions};
use labflow_testbed::kubesim::store::Gvr;
use serde_json::Value;
use support::*;

const DEPLOY_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n";

fn gvr(group: &str, version: &str, plural: &str) -> Gvr {
    Gvr {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
    }
}

fn decoded(value: &Value) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.as_str().unwrap_or_default())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Every Secret in the cluster, decoded: what any cluster admin, or any manifest Flux applies
/// with its cluster-admin service account, can read.
fn readable_secrets(w: &World) -> anyhow::Result<Vec<(String, String, String)>> {
    let (_, secrets, _) = w
        .sim
        .store()
        .list(
            &gvr("", "v1", "secrets"),
            None,
            &Default::default(),
            &Default::default(),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut found = Vec::new();
    for secret in &secrets {
        let name = format!(
            "{}/{}",
            secret["metadata"]["namespace"].as_str().unwrap_or_default(),
            secret["metadata"]["name"].as_str().unwrap_or_default()
        );
        for (key, value) in secret["data"].as_object().into_iter().flatten() {
            found.push((name.clone(), key.clone(), decoded(value)));
        }
    }
    Ok(found)
}

fn flux_secret(w: &World) -> anyhow::Result<Value> {
    w.sim
        .store()
        .get(
            &gvr("", "v1", "secrets"),
            Some("flux-system"),
            "flux-system",
        )
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// The attack: read the Git credentials Flux was given and post `success` statuses with them.
/// Before issue 26 item 2 the Secret held the status token itself.
#[tokio::test]
async fn no_secret_in_the_cluster_holds_the_status_token() -> anyhow::Result<()> {
    let w = world("fb-cred", None).await?;
    let ctx = w.ctx()?;
    handle(&ctx, w.input(Action::Create)).await?;

    let secrets = readable_secrets(&w)?;
    ensure!(!secrets.is_empty(), "no Secret was read");
    let leaked: Vec<_> = secrets
        .iter()
        .filter(|(_, _, value)| value.contains(STATUS_TOKEN))
        .map(|(name, key, _)| format!("{name}[{key}]"))
        .collect();
    ensure!(
        leaked.is_empty(),
        "the status token is readable in the cluster: {leaked:?}"
    );
    let secret = flux_secret(&w)?;
    assert_eq!(decoded(&secret["data"]["username"]), "git");
    assert_eq!(decoded(&secret["data"]["password"]), TOKEN);

    // A rotated credential reaches the cluster on the next run.
    let rotated = "github_pat_LabflowReadOnlyRotated0b1c2d3e";
    put_secret(&w.aws, &credential_parameter("fb-cred"), rotated).await?;
    handle(&ctx, w.input(Action::Sync)).await?;
    assert_eq!(decoded(&flux_secret(&w)?["data"]["password"]), rotated);
    Ok(())
}

/// An `ssh://` source: the Secret carries a deploy key and github.com's published host keys, and
/// the simulated source-controller, which checks the keys the real one requires (testbed
/// `flux/git_auth.rs`), fetches with it. Token keys for an ssh:// source fail there with
/// "'identity' is required".
#[tokio::test]
async fn an_ssh_source_gets_a_deploy_key_the_source_controller_accepts() -> anyhow::Result<()> {
    let w = world("fb-ssh", None).await?;
    let url = "ssh://git@github.com/example/labflow-fb-ssh.git";
    let mut config = environment_config(
        "fb-ssh",
        &w.releases.url(&MANIFEST_PATH),
        &w.manifest_sha256,
    )?;
    config["flux"]["repository"]["url"] = url.into();
    put_config(&w.aws, "fb-ssh", &config).await?;
    put_secret(&w.aws, &credential_parameter("fb-ssh"), DEPLOY_KEY).await?;
    let repo = labflow_testbed::paths::repo_root().context("repo root")?;
    let _flux = Controllers::start(
        &w.sim,
        ControllerOptions::default().with_flux(FluxOptions::default().with_repository(url, repo)),
    );

    let out = handle(&w.ctx()?, w.input(Action::Create)).await?;
    ensure!(out.done, "{out:?}");
    let secret = flux_secret(&w)?;
    assert_eq!(decoded(&secret["data"]["identity"]), DEPLOY_KEY);
    assert_eq!(
        decoded(&secret["data"]["known_hosts"]),
        labflow_core::config::GITHUB_KNOWN_HOSTS
    );
    assert!(secret["data"].get("password").is_none(), "{secret}");

    let source = labflow_testkit::wait::until(
        "the GitRepository to fetch",
        Duration::from_secs(10),
        || async {
            let source = w
                .sim
                .store()
                .get(
                    &gvr("source.toolkit.fluxcd.io", "v1", "gitrepositories"),
                    Some("flux-system"),
                    "flux-system",
                )
                .ok();
            Ok(source.filter(|s| {
                s["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] != "Unknown")
                })
            }))
        },
    )
    .await?;
    let ready = source["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .context("Ready")?;
    assert_eq!(ready["status"], "True", "{ready}");
    Ok(())
}

/// No credential, or Terraform's placeholder still in it: InvalidInput naming the parameter,
/// and nothing applied in the cluster.
#[tokio::test]
async fn a_missing_or_unset_credential_stops_before_anything_is_applied() -> anyhow::Result<()> {
    let w = world("fb-nocred", None).await?;
    let parameter = credential_parameter("fb-nocred");
    w.aws.ssm.delete_parameter().name(&parameter).send().await?;
    let err = handle(&w.ctx()?, w.input(Action::Create))
        .await
        .expect_err("no credential");
    assert_eq!(err.name(), "labflow.InvalidInput");
    assert!(
        err.to_string()
            .contains(&format!("SSM parameter {parameter} does not exist")),
        "{err}"
    );

    put_secret(
        &w.aws,
        &parameter,
        "unset: put the real value with aws ssm put-parameter",
    )
    .await?;
    let err = handle(&w.ctx()?, w.input(Action::Create))
        .await
        .expect_err("placeholder");
    assert!(
        err.to_string()
            .contains("still holds Terraform's placeholder"),
        "{err}"
    );
    assert!(
        w.sim.requests().iter().all(|r| !is_write(r)),
        "something was applied"
    );
    Ok(())
}
