//! The AWS side of a test: SDK config for the process's shared AWS emulator, and SSM seeding.

use anyhow::Context as _;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_ssm::types::ParameterType;

/// The region every test uses.
pub const REGION: &str = "eu-west-1";

/// SDK config for the shared emulator of this test process (started on first use): region
/// [`REGION`], static test credentials.
pub async fn shared_emulator() -> anyhow::Result<SdkConfig> {
    let moto = labflow_testbed::moto::shared().context("starting the AWS emulator")?;
    Ok(aws_config::defaults(BehaviorVersion::latest())
        .http_client(labflow_testbed::controllers::aws::https_client())
        .endpoint_url(moto.endpoint())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await)
}

/// Puts (overwriting) an SSM parameter, a SecureString when `secure`.
pub async fn put_parameter(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
    value: &str,
    secure: bool,
) -> anyhow::Result<()> {
    let kind = if secure {
        ParameterType::SecureString
    } else {
        ParameterType::String
    };
    ssm.put_parameter()
        .name(name)
        .value(value)
        .r#type(kind)
        .overwrite(true)
        .send()
        .await
        .with_context(|| format!("put {name}"))?;
    Ok(())
}
