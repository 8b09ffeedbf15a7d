//! Shared by controllers_aws, faults and the binary test: a whole Testbed, an EKS cluster made
//! through the EKS API, a kube::Client built from DescribeCluster, and a plain HTTP client for
//! the fault control API.
#![allow(dead_code)]

use anyhow::{bail, Context as _};
use labflow_testbed::{ControllersFor, Testbed, TestbedOptions};
use serde_json::Value;
use std::time::Duration;

#[path = "../eks_support/mod.rs"]
pub mod eks;

/// A testbed with one ACTIVE cluster.
pub struct Cluster {
    pub testbed: Testbed,
    pub eks: aws_sdk_eks::Client,
    pub name: String,
    pub endpoint: String,
    pub ca: String,
}

impl Cluster {
    /// A kube::Client for the cluster (a fresh EKS token); `retry` is kube's default retry of
    /// 429/503/504.
    pub async fn client(&self, retry: bool) -> anyhow::Result<kube::Client> {
        let token = eks::eks_token(&self.name, self.testbed.credentials())?;
        let kubeconfig = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "eks", "cluster": {"server": self.endpoint, "certificate-authority-data": self.ca}}],
            "users": [{"name": "eks", "user": {"token": token}}],
            "contexts": [{"name": "eks", "context": {"cluster": "eks", "user": "eks"}}],
            "current-context": "eks",
        });
        let kubeconfig: kube::config::Kubeconfig = serde_json::from_value(kubeconfig)?;
        let mut config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        config.read_timeout = Some(Duration::from_secs(10));
        config.default_retry = retry;
        Ok(kube::Client::try_from(config)?)
    }

    pub async fn kubesim(
        &self,
    ) -> anyhow::Result<std::sync::Arc<labflow_testbed::kubesim::KubeSim>> {
        self.testbed
            .eks()
            .kubesim(&self.name)
            .await
            .context("no kubesim for the cluster")
    }
}

/// Starts a testbed (shared moto) with `controllers` and creates an ACTIVE cluster through the
/// EKS API.
pub async fn cluster(prefix: &str, controllers: Option<ControllersFor>) -> anyhow::Result<Cluster> {
    eks::rustls_provider();
    let testbed = Testbed::start(TestbedOptions {
        controllers,
        ..TestbedOptions::default()
    })
    .await?;
    let eks_client = eks::eks_client(testbed.eks_endpoint(), testbed.credentials());
    let name = eks::unique(prefix);
    eks::create_cluster(&eks_client, &name).send().await?;
    eks::wait_status(&eks_client, &name, "ACTIVE", Duration::from_secs(10)).await?;
    eks::grant(
        &eks_client,
        &name,
        testbed.principal(),
        "AmazonEKSClusterAdminPolicy",
    )
    .await?;
    let described = eks_client.describe_cluster().name(&name).send().await?;
    let c = described.cluster.context("cluster")?;
    let endpoint = c.endpoint.context("endpoint")?;
    let ca = c
        .certificate_authority
        .and_then(|a| a.data)
        .context("certificateAuthority")?;
    Ok(Cluster {
        testbed,
        eks: eks_client,
        name,
        endpoint,
        ca,
    })
}

/// One HTTP/1.1 request to the fault control API: (status, JSON body).
pub async fn control(
    base: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = base
        .strip_prefix("http://")
        .context("control endpoint is http://")?;
    let mut stream = tokio::net::TcpStream::connect(authority).await?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8(response)?;
    let (head, payload) = text.split_once("\r\n\r\n").context("HTTP response")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .context("status line")?
        .parse()?;
    let json = if payload.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(payload).with_context(|| format!("control API body {payload:?}"))?
    };
    Ok((status, json))
}

/// POST /faults; returns the rule id.
pub async fn add_rule(base: &str, rule: Value) -> anyhow::Result<u64> {
    let (status, body) = control(base, "POST", "/faults", Some(rule)).await?;
    if status != 201 {
        bail!("POST /faults answered {status}: {body}");
    }
    body["id"].as_u64().context("rule id")
}
