//! Where the simulated AWS controllers (load balancer controller, external-dns, EBS CSI driver)
//! reach the AWS emulator, as the real ones reach AWS through their Pod Identity role.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// The HTTPS client of every AWS SDK client the testbed and its tests make: rustls with ring,
/// like the rest of the workspace (no second crypto back end; see the workspace Cargo.toml).
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The AWS endpoint and credentials a simulated controller calls with.
#[derive(Debug, Clone)]
pub struct AwsAccess {
    /// The emulator, e.g. `http://127.0.0.1:5000`.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl AwsAccess {
    /// The emulator at `endpoint` with the test credentials moto accepts.
    pub fn new(endpoint: &str, region: &str) -> Self {
        AwsAccess {
            endpoint: endpoint.to_string(),
            region: region.to_string(),
            access_key_id: "testing".to_string(),
            secret_access_key: "testing".to_string(),
        }
    }

    /// An SDK configuration for the emulator (no credential chain, no profile files).
    pub fn sdk_config(&self, who: &'static str) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(https_client())
            .region(Region::new(self.region.clone()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                    &self.access_key_id,
                    &self.secret_access_key,
                    None,
                    None,
                    who,
                )),
            )
            .build()
    }
}
