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
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| StepError::InvalidInput(format!("kube config: {e}")))?;
    kube::Client::try_from(config).map_err(|e| StepError::InvalidInput(format!("kube client: {e}")))
}
