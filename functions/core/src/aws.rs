//! AWS clients, built once per cold start from the environment.
//!
//! `aws-config` honours `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>` (that is how the
//! testbed redirects every service to loopback). The region must come from the environment
//! (`AWS_REGION`, which Lambda always sets); we never fall back to IMDS, which would hang for
//! seconds outside EC2.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::error::{classify_sdk_error, StepError};

/// The HTTPS client every AWS SDK client is built with: rustls with ring, the crypto back end
/// kube and reqwest use too, so the workspace builds one (the SDK's default client would add
/// aws-lc; see the workspace Cargo.toml).
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Every AWS client a step may need, sharing one configuration.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub config: SdkConfig,
    pub ssm: aws_sdk_ssm::Client,
    pub eks: aws_sdk_eks::Client,
    pub sts: aws_sdk_sts::Client,
    pub route53: aws_sdk_route53::Client,
    pub sfn: aws_sdk_sfn::Client,
}

impl AwsClients {
    /// Load the shared configuration from the environment and build every client.
    pub async fn from_env() -> Result<Self, StepError> {
        let region = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .map_err(|_| {
                StepError::InvalidInput(
                    "AWS_REGION is not set (labflow never asks IMDS for it)".into(),
                )
            })?;
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client())
            .region(Region::new(region))
            .load()
            .await;
        Ok(Self::from_config(config))
    }

    pub fn from_config(config: SdkConfig) -> Self {
        Self {
            ssm: aws_sdk_ssm::Client::new(&config),
            eks: aws_sdk_eks::Client::new(&config),
            sts: aws_sdk_sts::Client::new(&config),
            route53: aws_sdk_route53::Client::new(&config),
            sfn: aws_sdk_sfn::Client::new(&config),
            config,
        }
    }

    /// The same clients with EKS answered at `endpoint` (the testbed serves EKS apart from the
    /// other services; in Lambda, `AWS_ENDPOINT_URL_EKS` does this through `from_env`).
    pub fn with_eks_endpoint(mut self, endpoint: &str) -> Self {
        let eks = aws_sdk_eks::config::Builder::from(&self.config)
            .endpoint_url(endpoint)
            .build();
        self.eks = aws_sdk_eks::Client::from_conf(eks);
        self
    }

    /// Whether these clients talk to the local cloud: an endpoint override on loopback (in
    /// Lambda there is none; the SDK resolves AWS's own endpoints).
    pub fn local_cloud(&self) -> bool {
        self.config.endpoint_url().is_some_and(is_loopback_url)
    }

    /// Config checks for creating a lab with these clients.
    pub fn create_checks(&self) -> crate::config::Checks {
        crate::config::Checks::create(self.local_cloud())
    }

    pub fn region(&self) -> Result<&str, StepError> {
        self.config
            .region()
            .map(Region::as_ref)
            .ok_or_else(|| StepError::InvalidInput("no AWS region configured".into()))
    }
}

/// `http(s)://localhost...`, `http(s)://127.x.y.z...` or `http(s)://[::1]...`.
pub fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(bracketed) = host.strip_prefix('[') {
        bracketed.split(']').next()
    } else {
        host.split(':').next()
    }
    .unwrap_or_default();
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An SSM parameter's value (decrypted when `decrypt`), `None` when it does not exist; other
/// failures classified as [`StepError`]s.
pub async fn read_parameter(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
    decrypt: bool,
) -> Result<Option<String>, StepError> {
    match ssm
        .get_parameter()
        .name(name)
        .with_decryption(decrypt)
        .send()
        .await
    {
        Ok(out) => Ok(out.parameter().and_then(|p| p.value()).map(str::to_string)),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) =>
        {
            Ok(None)
        }
        Err(err) => Err(classify_sdk_error(
            &format!("reading SSM parameter {name}"),
            err,
        )),
    }
}
