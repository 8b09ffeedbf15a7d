//! Shared by the kubesim test files: a kube::Client on kubesim (or on a real cluster given by
//! `LABFLOW_CONFORMANCE_KUBECONFIG`), and an EKS token generator built on aws-sigv4.
#![allow(dead_code)]

use anyhow::Context as _;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use base64::Engine;
use labflow_testbed::kubesim::{KubeSim, KubeSimOptions};
use std::time::{Duration, SystemTime};

pub const CLUSTER: &str = "conformance";
pub const ACCESS_KEY: &str = "AKIAKUBESIMTEST00001";
pub const SECRET_KEY: &str = "kubesim/secret/key/for/tests/only/000000";
pub const REGION: &str = "eu-west-1";

/// Where the suite runs: kubesim (with its handle) or a real API server.
pub struct Cluster {
    pub client: kube::Client,
    pub config: kube::Config,
    pub sim: Option<KubeSim>,
}

impl Cluster {
    pub fn is_real(&self) -> bool {
        self.sim.is_none()
    }

    /// A client for the same server with another bearer token.
    pub fn client_with_token(&self, token: &str) -> anyhow::Result<kube::Client> {
        let mut config = self.config.clone();
        config.auth_info = kube::config::AuthInfo {
            token: Some(token.to_string().into()),
            ..Default::default()
        };
        Ok(kube::Client::try_from(config)?)
    }
}

/// How an EKS token is signed.
pub struct TokenSpec<'a> {
    pub cluster: &'a str,
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub region: &'a str,
    pub signed_at: SystemTime,
    pub unsigned_payload: bool,
}

impl Default for TokenSpec<'_> {
    fn default() -> Self {
        TokenSpec {
            cluster: CLUSTER,
            access_key: ACCESS_KEY,
            secret_key: SECRET_KEY,
            region: REGION,
            signed_at: SystemTime::now(),
            unsigned_payload: false,
        }
    }
}

/// `k8s-aws-v1.` + base64url(presigned STS GetCallerIdentity URL), as aws-iam-authenticator makes it.
pub fn eks_token(spec: &TokenSpec<'_>) -> anyhow::Result<String> {
    let host = format!("sts.{}.amazonaws.com", spec.region);
    let url = format!("https://{host}/?Action=GetCallerIdentity&Version=2011-06-15");
    let identity = Credentials::new(
        spec.access_key,
        spec.secret_key,
        None,
        None,
        "kubesim-tests",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(spec.region)
        .name("sts")
        .time(spec.signed_at)
        .settings(settings)
        .build()?
        .into();
    let body = if spec.unsigned_payload {
        SignableBody::UnsignedPayload
    } else {
        SignableBody::Bytes(&[])
    };
    let headers = [("host", host.as_str()), ("x-k8s-aws-id", spec.cluster)];
    let request = SignableRequest::new("GET", &url, headers.into_iter(), body)?;
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

fn pem_to_der(pem: &str) -> anyhow::Result<Vec<u8>> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    Ok(base64::engine::general_purpose::STANDARD.decode(body)?)
}

/// kubesim, or the real cluster of `LABFLOW_CONFORMANCE_KUBECONFIG`.
pub async fn cluster() -> anyhow::Result<Cluster> {
    if let Some(path) = std::env::var_os(KUBECONFIG_VAR) {
        return kubeconfig_cluster(std::path::Path::new(&path)).await;
    }
    sim_cluster().await
}

/// The variable naming the kubeconfig of a real cluster to run the suite against.
pub const KUBECONFIG_VAR: &str = "LABFLOW_CONFORMANCE_KUBECONFIG";

/// The cluster of the kubeconfig file at `path` (its current context), as `kubectl` would use it.
pub async fn kubeconfig_cluster(path: &std::path::Path) -> anyhow::Result<Cluster> {
    // kube::Client uses rustls' process-wide provider; with ring and aws-lc-rs both linked (the
    // AWS SDK brings the latter) there is none until one is installed, and the first TLS
    // handshake panics. kubesim installs ring when it starts; a real cluster has no kubesim.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let client = kube::Client::try_from(config.clone())?;
    Ok(Cluster {
        client,
        config,
        sim: None,
    })
}

/// Always kubesim (for tests of kubesim's own Rust handle).
pub async fn sim_cluster() -> anyhow::Result<Cluster> {
    let sim = KubeSim::start(KubeSimOptions::new(CLUSTER).with_credentials(ACCESS_KEY, SECRET_KEY))
        .await?;
    let mut config = kube::Config::new(sim.endpoint().parse()?);
    config.root_cert = Some(vec![pem_to_der(&sim.ca_pem())?]);
    config.auth_info.token = Some(eks_token(&TokenSpec::default())?.into());
    let client = kube::Client::try_from(config.clone())?;
    Ok(Cluster {
        client,
        config,
        sim: Some(sim),
    })
}

/// A fresh namespace name, unique per test run (tests may run against a shared real cluster).
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..8])
}

use crate::wait_support;

/// Polls `check` until it returns Some, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    wait_support::until("condition", Duration::from_secs(secs), check).await
}

/// The API error a kube call failed with (code, reason, message, causes' fields).
pub fn api_error<T: std::fmt::Debug>(
    result: Result<T, kube::Error>,
) -> anyhow::Result<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => Ok(*status),
        other => anyhow::bail!("expected an API error, got {other:?}"),
    }
}
