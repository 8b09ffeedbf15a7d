//! The EKS simulator in front of a "real" cluster given by a kubeconfig (what `labflow local
//! --kubeconfig` uses for kind/k3d): clusters get their own HTTPS endpoint and CA, accept only
//! EKS tokens, and forward to the upstream cluster with the kubeconfig's credentials.
//!
//! The upstream here is a standalone kubesim with a static bearer token, reached only through a
//! kubeconfig file, the way a kind cluster would be; nothing else of it is shared with the
//! simulator.

mod eks_support;
mod wait_support;

use anyhow::Context as _;
use eks_support::{create_cluster, eks_client, unique, wait_status};
use futures::{StreamExt, TryStreamExt};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use labflow_testbed::eks::{EksDelays, EksOptions, EksServer};
use labflow_testbed::gateway::Upstream;
use labflow_testbed::kubesim::{KubeSim, KubeSimOptions};
use std::time::Duration;

const UPSTREAM_TOKEN: &str = "kind-admin-token-for-tests";
const DELAY: Duration = Duration::from_millis(100);

fn config_map(name: &str) -> anyhow::Result<ConfigMap> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"written": "through the gateway"},
    }))?)
}

/// A kubeconfig file for `upstream` (server, CA, static token), as `kind get kubeconfig` gives.
fn write_kubeconfig(
    dir: &std::path::Path,
    upstream: &KubeSim,
) -> anyhow::Result<std::path::PathBuf> {
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kind-lab", "cluster": {"server": upstream.endpoint(), "certificate-authority-data": upstream.ca_base64()}}],
        "users": [{"name": "kind-lab", "user": {"token": UPSTREAM_TOKEN}}],
        "contexts": [{"name": "kind-lab", "context": {"cluster": "kind-lab", "user": "kind-lab"}}],
        "current-context": "kind-lab",
    });
    let path = dir.join("kubeconfig");
    std::fs::write(&path, serde_yaml_ng::to_string(&kubeconfig)?)?;
    Ok(path)
}

#[tokio::test]
async fn clusters_forward_to_the_kubeconfig_cluster_with_eks_tokens_only() -> anyhow::Result<()> {
    eks_support::rustls_provider();
    let upstream =
        KubeSim::start(KubeSimOptions::new("kind-lab").with_static_token(UPSTREAM_TOKEN)).await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = write_kubeconfig(dir.path(), &upstream)?;
    let options = EksOptions {
        delays: EksDelays::uniform(DELAY, DELAY, DELAY),
        upstream: Some(Upstream::from_kubeconfig(&kubeconfig).await?),
        ..Default::default()
    };
    let (key, secret) = options.credentials.clone();
    let server = EksServer::start(options).await?;
    let eks = eks_client(server.endpoint(), (&key, &secret));
    let name = unique("gw");
    create_cluster(&eks, &name).send().await?;
    wait_status(&eks, &name, "ACTIVE", Duration::from_secs(10)).await?;
    let (endpoint, ca) = eks_support::endpoint_and_ca(&eks, &name).await?;
    assert_ne!(
        endpoint,
        upstream.endpoint(),
        "the cluster has its own endpoint"
    );
    assert_ne!(ca, upstream.ca_base64(), "and its own CA");

    // Writes through the EKS endpoint land in the upstream cluster.
    let token = eks_support::eks_token(&name, (&key, &secret))?;
    let client = eks_support::kube_client(&endpoint, &ca, &token).await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    config_maps
        .create(&PostParams::default(), &config_map("through-gateway")?)
        .await?;
    let upstream_maps: Api<ConfigMap> = {
        let upstream_config = kube::config::Kubeconfig::read_from(&kubeconfig)?;
        let config =
            kube::Config::from_custom_kubeconfig(upstream_config, &Default::default()).await?;
        Api::namespaced(kube::Client::try_from(config)?, "default")
    };
    let stored = upstream_maps.get("through-gateway").await?;
    assert_eq!(
        stored
            .data
            .and_then(|d| d.get("written").cloned())
            .as_deref(),
        Some("through the gateway")
    );

    // Upstream errors come back as the upstream answered them.
    match config_maps.get("missing").await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 404);
            assert_eq!(status.reason, "NotFound");
        }
        other => anyhow::bail!("expected 404 from the upstream cluster, got {other:?}"),
    }

    // A watch is streamed as events happen upstream, not when the answer ends.
    let mut events = config_maps
        .watch(&WatchParams::default().timeout(20), "0")
        .await?
        .boxed();
    upstream_maps
        .create(&PostParams::default(), &config_map("made-upstream")?)
        .await?;
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = events.try_next().await? {
            if let WatchEvent::Added(cm) = event {
                if cm.metadata.name.as_deref() == Some("made-upstream") {
                    return anyhow::Ok(true);
                }
            }
        }
        anyhow::Ok(false)
    })
    .await
    .context("no watch event within 10 s")??;
    assert!(seen, "the watch ended without the upstream ConfigMap");

    // Tokens the endpoint does not accept never reach the upstream cluster.
    let before = upstream.requests().len();
    let other_cluster = eks_support::eks_token("some-other-cluster", (&key, &secret))?;
    let refused = eks_support::kube_client(&endpoint, &ca, &other_cluster).await?;
    match Api::<ConfigMap>::namespaced(refused.clone(), "default")
        .get("through-gateway")
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 401),
        other => anyhow::bail!("expected 401 for another cluster's token, got {other:?}"),
    }
    let upstream_token = eks_support::kube_client(&endpoint, &ca, UPSTREAM_TOKEN).await?;
    match Api::<ConfigMap>::namespaced(upstream_token, "default")
        .get("through-gateway")
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 401),
        other => anyhow::bail!("expected 401 for a non-EKS token, got {other:?}"),
    }
    assert_eq!(
        upstream.requests().len(),
        before,
        "refused requests were forwarded"
    );

    // Deleting the cluster takes its endpoint away; the upstream cluster stays.
    eks.delete_cluster().name(&name).send().await?;
    eks_support::wait_gone(&eks, &name, Duration::from_secs(10)).await?;
    assert!(
        config_maps.get("through-gateway").await.is_err(),
        "the endpoint still answers after the cluster is gone"
    );
    upstream_maps.get("through-gateway").await?;
    Ok(())
}

#[tokio::test]
async fn unreadable_kubeconfig_names_the_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("no-such-kubeconfig");
    let err = Upstream::from_kubeconfig(&missing)
        .await
        .err()
        .context("a missing kubeconfig was accepted")?;
    assert!(
        err.to_string().contains("no-such-kubeconfig"),
        "error does not name the file: {err}"
    );
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, "clusters: [this is not a kubeconfig")?;
    let err = Upstream::from_kubeconfig(&garbage)
        .await
        .err()
        .context("an unparsable kubeconfig was accepted")?;
    assert!(err.to_string().contains("garbage"), "{err}");
    Ok(())
}
