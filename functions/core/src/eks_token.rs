//! The EKS bearer token (DESIGN.md §5), as `aws eks get-token` makes it.
//!
//! A SigV4 query-presigned `GET https://sts.<region>.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15`
//! with the `x-k8s-aws-id: <cluster>` header signed and `X-Amz-Expires=60`, then
//! `k8s-aws-v1.` + base64url (no padding) of the URL. The query string is laid out in botocore's
//! order (operation parameters, then the auth parameters, then the signature) so the token is
//! byte-identical to the reference client's.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use base64::Engine;
use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// How long the presigned URL says it is valid; the API server accepts tokens 15 minutes from
/// X-Amz-Date regardless, so callers refresh before [`EksToken::refresh_after`].
pub const PRESIGN_EXPIRES_SECONDS: u64 = 60;
/// Token lifetime accepted by the EKS API server, counted from its signing time.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Refresh one minute before the API server would reject the token.
pub const TOKEN_REFRESH_AFTER: Duration = Duration::from_secs(14 * 60);

const TOKEN_PREFIX: &str = "k8s-aws-v1.";

/// RFC 3986 unreserved characters stay; everything else is percent-encoded (as SigV4 and
/// botocore's `percent_encode` do).
const AWS_QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A bearer token for one cluster. Its `Debug` hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct EksToken {
    token: String,
    /// When the API server stops accepting it (signing time + 15 minutes).
    pub expires_at: DateTime<Utc>,
    /// When a caller should get a new one.
    pub refresh_after: DateTime<Utc>,
}

impl std::fmt::Debug for EksToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EksToken")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl EksToken {
    /// The token value, for an `Authorization: Bearer` header only. Never log it.
    pub fn expose(&self) -> &str {
        &self.token
    }

    pub fn needs_refresh(&self, now: DateTime<Utc>) -> bool {
        now >= self.refresh_after
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid token input: {0}")]
    Input(String),
    #[error("could not sign the STS request: {0}")]
    Signing(String),
}

/// Make a token for `cluster_name` in `region` with `credentials`, signed at `now`.
pub fn generate(
    credentials: &Credentials,
    cluster_name: &str,
    region: &str,
    now: SystemTime,
) -> Result<EksToken, TokenError> {
    if cluster_name.is_empty() {
        return Err(TokenError::Input("cluster name is empty".into()));
    }
    if region.is_empty()
        || !region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(TokenError::Input(format!("not a region: {region:?}")));
    }
    let host = format!("sts.{region}.amazonaws.com");
    let operation = "Action=GetCallerIdentity&Version=2011-06-15";
    let url = format!("https://{host}/?{operation}");

    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(PRESIGN_EXPIRES_SECONDS));
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| TokenError::Signing(e.to_string()))?
        .into();
    let headers = [("host", host.as_str()), ("x-k8s-aws-id", cluster_name)];
    let signable = SignableRequest::new("GET", &url, headers.into_iter(), SignableBody::Bytes(&[]))
        .map_err(|e| TokenError::Signing(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| TokenError::Signing(e.to_string()))?
        .into_parts();

    let signed: Vec<(&str, &str)> = instructions
        .params()
        .iter()
        .map(|(k, v)| (*k, v.as_ref()))
        .collect();
    let find = |key: &str| signed.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let mut query = String::from(operation);
    for key in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Security-Token",
        "X-Amz-Signature",
    ] {
        if let Some(value) = find(key) {
            query.push('&');
            query.push_str(key);
            query.push('=');
            query.extend(utf8_percent_encode(value, AWS_QUERY));
        }
    }
    if find("X-Amz-Signature").is_none() {
        return Err(TokenError::Signing(
            "aws-sigv4 returned no signature".into(),
        ));
    }
    let presigned = format!("https://{host}/?{query}");
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(presigned.as_bytes())
    );
    let signed_at: DateTime<Utc> = now.into();
    let lifetime = chrono::Duration::from_std(TOKEN_LIFETIME)
        .map_err(|e| TokenError::Signing(e.to_string()))?;
    let refresh = chrono::Duration::from_std(TOKEN_REFRESH_AFTER)
        .map_err(|e| TokenError::Signing(e.to_string()))?;
    Ok(EksToken {
        token,
        expires_at: signed_at + lifetime,
        refresh_after: signed_at + refresh,
    })
}

/// Resolve credentials from the shared AWS config and make a token signed now.
pub async fn generate_from_config(
    config: &aws_config::SdkConfig,
    cluster_name: &str,
) -> Result<EksToken, crate::error::StepError> {
    use crate::error::StepError;
    use aws_credential_types::provider::ProvideCredentials;
    let provider = config
        .credentials_provider()
        .ok_or_else(|| StepError::InvalidInput("no AWS credentials provider configured".into()))?;
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| StepError::Transient(format!("loading AWS credentials: {e}")))?;
    let region = config
        .region()
        .map(|r| r.as_ref().to_string())
        .ok_or_else(|| StepError::InvalidInput("no AWS region configured".into()))?;
    generate(&credentials, cluster_name, &region, SystemTime::now())
        .map_err(|e| StepError::InvalidInput(e.to_string()))
}
