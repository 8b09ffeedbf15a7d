//! `labflow local --kubeconfig`: the lifecycle against a cluster the local cloud does not own.
//!
//! The "real" cluster here is a kubesim with a static token, known to the local cloud only
//! through a kubeconfig file, with Flux and the lab's controllers running *in it* (simulated,
//! as they would run in kind) — the local cloud simulates nothing there. Flux's install manifest
//! comes from a release server of the test's own, as GitHub's release download would. This
//! proves the whole path: EKS endpoints that forward to the cluster, access with EKS tokens,
//! Flux bootstrapped into it, health read from it, and a teardown that empties it.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use labflow_cli::local::cloud::simulated_controllers;
use labflow_e2e_tests::{console_input, output, EnvSpec, Lab, BRANCH};
use labflow_testbed::controllers::objects::{Client, ObjRef};
use labflow_testbed::controllers::{AwsAccess, Controllers, ExternalDnsOptions};
use labflow_testbed::kubesim::{KubeSim, KubeSimOptions};
use labflow_testbed::releases::{chart_crds, flux_install_manifest, ReleaseServer};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const TOKEN: &str = "kind-lab-admin-token";
const CLUSTER: &str = "labflow-lab";

fn object(
    cluster: &KubeSim,
    api_version: &str,
    kind: &str,
    ns: Option<&str>,
    name: &str,
) -> Option<Value> {
    Client::new(cluster.store(), "labflow-e2e").get(&ObjRef::new(api_version, kind, ns, name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_teardown_on_a_cluster_given_by_kubeconfig() -> anyhow::Result<()> {
    let real = KubeSim::start(KubeSimOptions::new("kind-lab").with_static_token(TOKEN)).await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kind-lab", "cluster": {"server": real.endpoint(), "certificate-authority-data": real.ca_base64()}}],
            "users": [{"name": "kind-lab", "user": {"token": TOKEN}}],
            "contexts": [{"name": "kind-lab", "context": {"cluster": "kind-lab", "user": "kind-lab"}}],
            "current-context": "kind-lab",
        })
        .to_string(),
    )?;

    // Flux's release, served the way GitHub serves install.yaml.
    let crd_dir = labflow_testbed::paths::crd_cache_dir()
        .filter(|d| d.is_dir())
        .context("the Flux CRD cache is missing (hint: `make crds`)")?;
    let root = labflow_e2e_tests::repo_root()?;
    let example: Value = serde_json::from_str(&std::fs::read_to_string(
        root.join("examples/environments/lab.json"),
    )?)?;
    let version = example
        .pointer("/flux/version")
        .and_then(Value::as_str)
        .context("no flux.version")?;
    let manifest = flux_install_manifest(&crd_dir, version)?.into_bytes();
    let sha256 = hex::encode(Sha256::digest(&manifest));
    let releases =
        ReleaseServer::start(HashMap::from([("/install.yaml".to_string(), manifest)])).await?;
    let env = EnvSpec::new("lab").flux_manifest(&releases.url("/install.yaml"), &sha256);
    let lab = Lab::start_with(&[env], Some(kubeconfig)).await?;

    // What runs in the real cluster (not the local cloud's doing): Flux reading the
    // repository, the lab's controllers, external-dns writing the environment's zone.
    let url = lab.repository_url("lab").await?;
    let zone = lab
        .cloud
        .endpoints
        .environments
        .get("lab")
        .context("no zone for lab")?;
    let config = lab.config("lab").await?;
    let owner = config
        .pointer("/dns/ownerId")
        .and_then(Value::as_str)
        .context("no dns.ownerId")?;
    let dns = ExternalDnsOptions::new(&lab.cloud.endpoints.aws, zone, owner);
    let _in_cluster = Controllers::start(
        &real,
        simulated_controllers(
            &chart_crds(&crd_dir)?,
            std::slice::from_ref(&url),
            lab.repository.path(),
            Some(dns),
            Some(AwsAccess::new(
                &lab.cloud.endpoints.aws,
                &lab.cloud.endpoints.region,
            )),
        ),
    );

    let sha = lab.repository.sha(BRANCH)?;
    let mut create = console_input("create", "lab");
    create["source"] = json!({
        "kind": "github",
        "repository": labflow_cli::local::push::full_name(&url),
        "branch": BRANCH,
        "sha": sha,
        "deliveryId": format!("e2e-kubeconfig-{sha}"),
        "pusher": "labflow-e2e",
    });
    let created = lab.run(create).await?;
    let out =
        output(&created).with_context(|| format!("create did not succeed:\n{}", lab.log()))?;
    assert_eq!(out["health"]["healthy"], json!(true), "{}", lab.log());
    // Nothing routes the lab's hosts to a cluster the local cloud does not simulate: its URLs
    // are reported as not probed, with the reason, rather than holding the gate forever.
    let line = "url probe      not probed https://bookinfo.lab.example.com/productpage (not requested): the cluster comes from --kubeconfig";
    assert!(lab.log().contains(line), "no {line:?} in\n{}", lab.log());
    assert!(
        lab.cloud.testbed.eks().kubesim(CLUSTER).await.is_none(),
        "a kubesim was started although a kubeconfig was given"
    );
    // Flux went into the real cluster, through the EKS endpoint, and reports the commit.
    let root_ks = object(
        &real,
        "kustomize.toolkit.fluxcd.io/v1",
        "Kustomization",
        Some("flux-system"),
        "flux-system",
    )
    .context("no root Kustomization in the kubeconfig's cluster")?;
    assert_eq!(
        root_ks.pointer("/status/lastAppliedRevision"),
        Some(&json!(format!("{BRANCH}@sha1:{sha}"))),
        "{}",
        lab.log()
    );
    assert!(
        releases
            .requests()
            .iter()
            .any(|r| r.contains("/install.yaml")),
        "flux-bootstrap did not download the configured release"
    );

    let torn = lab.run(console_input("teardown", "lab")).await?;
    output(&torn).with_context(|| format!("teardown did not succeed:\n{}", lab.log()))?;
    let left = lab.leftovers("lab").await?;
    assert!(left.is_empty(), "left behind: {left:?}\n{}", lab.log());
    // The real cluster is emptied of what labflow put there; it keeps running.
    tokio::time::timeout(Duration::from_secs(30), async {
        while object(&real, "v1", "Namespace", None, "flux-system").is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .context("flux-system is still in the kubeconfig's cluster after teardown")?;
    assert!(object(&real, "v1", "Namespace", None, "default").is_some());
    Ok(())
}
