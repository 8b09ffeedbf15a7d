//! Shared by the eks_* and testbed_* tests: an `aws-sdk-eks` client on the simulator, an EKS
//! token made the way `aws eks get-token` makes it, a `kube::Client` built from what
//! DescribeCluster returns, and waiting on a condition with a deadline.
#![allow(dead_code)]

use anyhow::{bail, Context as _};
use aws_credential_types::Credentials;
use aws_sdk_eks::error::ProvideErrorMetadata;
use aws_sdk_eks::types::{AuthenticationMode, CreateAccessConfigRequest, VpcConfigRequest};
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use base64::Engine;
use std::time::{Duration, SystemTime};

pub const REGION: &str = "eu-west-1";
pub const ROLE: &str = "arn:aws:iam::123456789012:role/eks-cluster";
pub const NODE_ROLE: &str = "arn:aws:iam::123456789012:role/eks-node";

/// An EKS client on `endpoint` (plain HTTP loopback), signing with `credentials`.
pub fn eks_client(endpoint: &str, credentials: (&str, &str)) -> aws_sdk_eks::Client {
    let config = aws_sdk_eks::Config::builder()
        .http_client(labflow_testbed::controllers::aws::https_client())
        .behavior_version(aws_sdk_eks::config::BehaviorVersion::latest())
        .region(aws_sdk_eks::config::Region::new(REGION))
        .credentials_provider(Credentials::new(
            credentials.0,
            credentials.1,
            None,
            None,
            "eks-tests",
        ))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_eks::Client::from_conf(config)
}

/// The error code (`x-amzn-errortype`) a call failed with; fails the test when it succeeded.
pub fn code<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, E>,
) -> anyhow::Result<String> {
    match result {
        Ok(v) => bail!("expected an error, got {v:?}"),
        Err(e) => e
            .code()
            .map(str::to_string)
            .with_context(|| format!("error without a code: {e:?}")),
    }
}

/// A CreateCluster with the request labflow makes (API authentication mode, two subnets).
pub fn create_cluster(
    eks: &aws_sdk_eks::Client,
    name: &str,
) -> aws_sdk_eks::operation::create_cluster::builders::CreateClusterFluentBuilder {
    eks.create_cluster()
        .name(name)
        .role_arn(ROLE)
        .resources_vpc_config(
            VpcConfigRequest::builder()
                .subnet_ids("subnet-aaaa")
                .subnet_ids("subnet-bbbb")
                .build(),
        )
        .access_config(
            CreateAccessConfigRequest::builder()
                .authentication_mode(AuthenticationMode::Api)
                .bootstrap_cluster_creator_admin_permissions(false)
                .build(),
        )
}

/// Gives `principal` an access entry (if it has none) and `policy` at cluster scope.
pub async fn grant(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
    policy: &str,
) -> anyhow::Result<()> {
    let created = eks
        .create_access_entry()
        .cluster_name(cluster)
        .principal_arn(principal)
        .send()
        .await;
    if let Err(e) = created {
        if e.code() != Some("ResourceInUseException") {
            return Err(e.into());
        }
    }
    eks.associate_access_policy()
        .cluster_name(cluster)
        .principal_arn(principal)
        .policy_arn(format!("arn:aws:eks::aws:cluster-access-policy/{policy}"))
        .access_scope(
            aws_sdk_eks::types::AccessScope::builder()
                .r#type(aws_sdk_eks::types::AccessScopeType::Cluster)
                .build(),
        )
        .send()
        .await?;
    Ok(())
}

use crate::wait_support;

/// Polls `check` until it yields `Some`, failing after `within`.
pub use wait_support::until as wait_for;

/// The cluster's status, or `None` once DescribeCluster says ResourceNotFoundException.
pub async fn cluster_status(
    eks: &aws_sdk_eks::Client,
    name: &str,
) -> anyhow::Result<Option<String>> {
    match eks.describe_cluster().name(name).send().await {
        Ok(out) => Ok(out
            .cluster
            .and_then(|c| c.status)
            .map(|s| s.as_str().to_string())),
        Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Waits until the cluster reports `status`.
pub async fn wait_status(
    eks: &aws_sdk_eks::Client,
    name: &str,
    status: &str,
    within: Duration,
) -> anyhow::Result<()> {
    wait_for(&format!("cluster {name} {status}"), within, || async {
        Ok((cluster_status(eks, name).await?.as_deref() == Some(status)).then_some(()))
    })
    .await
}

/// Waits until DescribeCluster answers ResourceNotFoundException.
pub async fn wait_gone(
    eks: &aws_sdk_eks::Client,
    name: &str,
    within: Duration,
) -> anyhow::Result<()> {
    wait_for(&format!("cluster {name} gone"), within, || async {
        Ok(cluster_status(eks, name).await?.is_none().then_some(()))
    })
    .await
}

/// `k8s-aws-v1.` + base64url(presigned STS GetCallerIdentity URL) for `cluster`, as
/// `aws eks get-token` makes it: the `x-k8s-aws-id` header signed, 60 s expiry.
pub fn eks_token(cluster: &str, credentials: (&str, &str)) -> anyhow::Result<String> {
    let host = format!("sts.{REGION}.amazonaws.com");
    let url = format!("https://{host}/?Action=GetCallerIdentity&Version=2011-06-15");
    let identity = Credentials::new(credentials.0, credentials.1, None, None, "eks-tests").into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("sts")
        .time(SystemTime::now())
        .settings(settings)
        .build()?
        .into();
    let headers = [("host", host.as_str()), ("x-k8s-aws-id", cluster)];
    let request = SignableRequest::new("GET", &url, headers.into_iter(), SignableBody::Bytes(&[]))?;
    let (instructions, _) = sign(request, &params)?.into_parts();
    let mut signed = url::Url::parse(&url)?;
    for (k, v) in instructions.params() {
        signed.query_pairs_mut().append_pair(k, v);
    }
    Ok(format!(
        "k8s-aws-v1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signed.as_str())
    ))
}

/// A `kube::Client` built the way `aws eks update-kubeconfig` would: the endpoint and the
/// base64 CA exactly as DescribeCluster returned them, and `token` as the bearer.
pub async fn kube_client(
    endpoint: &str,
    ca_data: &str,
    token: &str,
) -> anyhow::Result<kube::Client> {
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "eks", "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "users": [{"name": "eks", "user": {"token": token}}],
        "contexts": [{"name": "eks", "context": {"cluster": "eks", "user": "eks"}}],
        "current-context": "eks",
    });
    let kubeconfig: kube::config::Kubeconfig = serde_json::from_value(kubeconfig)?;
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    config.read_timeout = Some(Duration::from_secs(5));
    Ok(kube::Client::try_from(config)?)
}

/// The endpoint and base64 CA of a cluster, as DescribeCluster returns them.
pub async fn endpoint_and_ca(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
) -> anyhow::Result<(String, String)> {
    let c = eks
        .describe_cluster()
        .name(cluster)
        .send()
        .await?
        .cluster
        .context("no cluster")?;
    let endpoint = c.endpoint.context("no endpoint")?;
    let ca = c
        .certificate_authority
        .and_then(|ca| ca.data)
        .context("no CA")?;
    Ok((endpoint, ca))
}

/// A name unique to this test run.
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..8])
}

/// aws-sdk (aws-lc) and kube (ring) both enable a rustls provider: pick one for the process.
pub fn rustls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
