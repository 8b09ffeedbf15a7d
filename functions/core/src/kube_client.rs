//! A `kube::Client` from (endpoint, base64 CA, bearer token): no kubeconfig file needed.

use base64::Engine;
use kube::config::{
    AuthInfo, Cluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo, NamedCluster,
    NamedContext,
};

use crate::eks_token::EksToken;
use crate::error::StepError;

/// Build a client for an EKS cluster's API server over rustls.
///
/// `ca_base64` is what DescribeCluster returns in `certificateAuthority.data` (base64 of PEM).
pub async fn client_for(
    endpoint: &str,
    ca_base64: &str,
    token: &EksToken,
) -> Result<kube::Client, StepError> {
    let pem = base64::engine::general_purpose::STANDARD
        .decode(ca_base64.trim())
        .map_err(|e| StepError::InvalidInput(format!("cluster CA is not base64: {e}")))?;
    if !String::from_utf8_lossy(&pem).contains("BEGIN CERTIFICATE") {
        return Err(StepError::InvalidInput(
            "cluster CA is not a PEM certificate".into(),
        ));
    }
    let endpoint_uri: http::Uri = endpoint.parse().map_err(|e| {
        StepError::InvalidInput(format!("cluster endpoint {endpoint:?} is not a URL: {e}"))
    })?;
    if endpoint_uri.scheme_str() != Some("https") {
        return Err(StepError::InvalidInput(format!(
            "cluster endpoint {endpoint:?} is not https"
        )));
    }
    // An in-memory kubeconfig keeps kube's own TLS/auth wiring (and its rustls setup) in charge.
    let kubeconfig = Kubeconfig {
        clusters: vec![NamedCluster {
            name: "eks".into(),
            cluster: Some(Cluster {
                server: Some(endpoint.to_string()),
                certificate_authority_data: Some(ca_base64.trim().to_string()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        auth_infos: vec![NamedAuthInfo {
            name: "labflow".into(),
            auth_info: Some(AuthInfo {
                token: Some(token.expose().to_string().into()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: "eks".into(),
            context: Some(Context {
                cluster: "eks".into(),
                user: Some("labflow".into()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        current_context: Some("eks".into()),
        ..Default::default()
    };
    // kube's rustls client uses the process-default crypto provider; with ring and aws-lc-rs
    // both linked (the AWS SDK brings the latter) none is chosen unless we install one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| StepError::InvalidInput(format!("kube config: {e}")))?;
    kube::Client::try_from(config).map_err(|e| StepError::InvalidInput(format!("kube client: {e}")))
}

/// Where a cluster's API server is and how to trust it, from DescribeCluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEndpoint {
    pub endpoint: String,
    pub ca_base64: String,
}

/// Look the cluster up in EKS. `Ok(None)` when it does not exist or is not ACTIVE with an endpoint.
pub async fn describe_endpoint(
    eks: &aws_sdk_eks::Client,
    cluster_name: &str,
) -> Result<Option<ClusterEndpoint>, StepError> {
    let response = eks.describe_cluster().name(cluster_name).send().await;
    let cluster = match response {
        Ok(output) => output.cluster,
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            return Ok(None)
        }
        Err(err) => {
            return Err(crate::error::classify_sdk_error(
                &format!("describing EKS cluster {cluster_name}"),
                err,
            ))
        }
    };
    let Some(cluster) = cluster else {
        return Ok(None);
    };
    let endpoint = cluster.endpoint().map(str::to_string);
    let ca = cluster
        .certificate_authority()
        .and_then(|ca| ca.data())
        .map(str::to_string);
    Ok(match (endpoint, ca) {
        (Some(endpoint), Some(ca_base64)) if !endpoint.is_empty() => Some(ClusterEndpoint {
            endpoint,
            ca_base64,
        }),
        _ => None,
    })
}

/// `given` (a test's client) or a client for the environment's cluster; a cluster without a
/// reachable endpoint yet is Transient, so the step is called again after its Wait.
pub async fn given_or_cluster_client(
    given: Option<&kube::Client>,
    aws: &crate::aws::AwsClients,
    cluster_name: &str,
) -> Result<kube::Client, StepError> {
    if let Some(client) = given {
        return Ok(client.clone());
    }
    cluster_client(aws, cluster_name).await?.ok_or_else(|| {
        StepError::Transient(format!(
            "EKS cluster {cluster_name} has no reachable API endpoint yet"
        ))
    })
}

/// A client for the environment's cluster with a fresh EKS token: DescribeCluster for the
/// endpoint and CA, a token from the Lambda's own credentials. `Ok(None)` if there is no
/// reachable cluster yet.
pub async fn cluster_client(
    aws: &crate::aws::AwsClients,
    cluster_name: &str,
) -> Result<Option<kube::Client>, StepError> {
    let Some(endpoint) = describe_endpoint(&aws.eks, cluster_name).await? else {
        return Ok(None);
    };
    let token = crate::eks_token::generate_from_config(&aws.config, cluster_name).await?;
    client_for(&endpoint.endpoint, &endpoint.ca_base64, &token)
        .await
        .map(Some)
}
