//! Authentication: EKS tokens (a presigned STS GetCallerIdentity URL), checked the way
//! aws-iam-authenticator + STS would, by recomputing the SigV4 signature.

use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// How long a token is accepted after its X-Amz-Date (aws-iam-authenticator's rule).
const TOKEN_LIFETIME_SECS: i64 = 15 * 60;
/// How far in the future X-Amz-Date may be (clock skew).
const MAX_SKEW_SECS: i64 = 5 * 60;
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Who may call: the cluster name tokens must be bound to and the credentials the testbed issued.
#[derive(Clone, Default)]
pub struct AuthConfig {
    pub cluster_name: String,
    /// (access key id, secret access key)
    pub credentials: Vec<(String, String)>,
    /// A fixed bearer token also accepted (for a developer's kubeconfig); `None` = EKS tokens only.
    pub static_token: Option<String>,
    /// The access entries of the EKS cluster in front (see [`super::authz`]); `None` = a kubesim
    /// on its own, where every authenticated caller is cluster admin.
    pub access: Option<super::authz::AccessLookup>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("cluster_name", &self.cluster_name)
            .field("credentials", &self.credentials.len())
            .field("static_token", &self.static_token.is_some())
            .field("access", &self.access.is_some())
            .finish()
    }
}

/// Why a token was refused (logged, never answered: the client only sees 401).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("token is not an EKS token")]
    NotEks,
    #[error("token is not a valid presigned STS URL: {0}")]
    Malformed(String),
    #[error("unknown access key id")]
    UnknownKey,
    #[error("token expired")]
    Expired,
    #[error("signature does not match")]
    BadSignature,
}

/// The caller, once authenticated.
#[derive(Debug, Clone, PartialEq)]
pub enum Identity {
    AccessKey(String),
    StaticToken,
}

pub fn authenticate(
    config: &AuthConfig,
    authorization: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Identity, AuthError> {
    let token = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(AuthError::Missing)?;
    if let Some(expected) = &config.static_token {
        if constant_time_eq(token.as_bytes(), expected.as_bytes()) {
            return Ok(Identity::StaticToken);
        }
    }
    let encoded = token.strip_prefix("k8s-aws-v1.").ok_or(AuthError::NotEks)?;
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .map_err(|e| AuthError::Malformed(e.to_string()))?;
    let url = String::from_utf8(decoded).map_err(|e| AuthError::Malformed(e.to_string()))?;
    verify_presigned_url(config, &url, now)
}

fn verify_presigned_url(
    config: &AuthConfig,
    raw: &str,
    now: DateTime<Utc>,
) -> Result<Identity, AuthError> {
    let bad = |m: &str| AuthError::Malformed(m.to_string());
    let url = url::Url::parse(raw).map_err(|e| AuthError::Malformed(e.to_string()))?;
    if url.scheme() != "https" || url.path() != "/" || url.port().is_some() {
        return Err(bad("not https://sts.<region>.amazonaws.com/"));
    }
    let host = url.host_str().ok_or_else(|| bad("no host"))?.to_string();
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in url.query_pairs() {
        if params.insert(k.to_string(), v.to_string()).is_some() {
            return Err(bad("duplicate query parameter"));
        }
    }
    let get = |k: &str| params.get(k).map(String::as_str).ok_or_else(|| bad(k));
    if get("Action")? != "GetCallerIdentity" || get("Version")? != "2011-06-15" {
        return Err(bad("not GetCallerIdentity"));
    }
    if get("X-Amz-Algorithm")? != "AWS4-HMAC-SHA256" {
        return Err(bad("algorithm"));
    }
    let signed_headers: Vec<&str> = get("X-Amz-SignedHeaders")?.split(';').collect();
    if !signed_headers.contains(&"x-k8s-aws-id") || !signed_headers.contains(&"host") {
        return Err(bad("x-k8s-aws-id and host must be signed"));
    }
    if signed_headers
        .iter()
        .any(|h| *h != "host" && *h != "x-k8s-aws-id")
    {
        return Err(bad("unexpected signed header"));
    }
    let credential = get("X-Amz-Credential")?;
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, "aws4_request"] = parts.as_slice() else {
        return Err(bad("credential scope"));
    };
    if *service != "sts" {
        return Err(bad("service"));
    }
    let expected_host = if host == "sts.amazonaws.com" && *region == "us-east-1" {
        host.clone()
    } else {
        format!("sts.{region}.amazonaws.com")
    };
    if host != expected_host {
        return Err(bad("host does not match the credential region"));
    }
    let amz_date = get("X-Amz-Date")?;
    let signed_at = NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| bad("X-Amz-Date"))?
        .and_utc();
    if !amz_date.starts_with(date) {
        return Err(bad("credential date"));
    }
    let expires: i64 = get("X-Amz-Expires")?
        .parse()
        .map_err(|_| bad("X-Amz-Expires"))?;
    if !(1..=900).contains(&expires) {
        return Err(bad("X-Amz-Expires must be 1..=900"));
    }
    let age = now.signed_duration_since(signed_at).num_seconds();
    if !(-MAX_SKEW_SECS..=TOKEN_LIFETIME_SECS).contains(&age) {
        return Err(AuthError::Expired);
    }
    let secret = config
        .credentials
        .iter()
        .find(|(id, _)| id == access_key)
        .map(|(_, secret)| secret.as_str())
        .ok_or(AuthError::UnknownKey)?;
    let signature = get("X-Amz-Signature")?;

    let canonical_query: Vec<String> = params
        .iter()
        .filter(|(k, _)| k.as_str() != "X-Amz-Signature")
        .map(|(k, v)| format!("{}={}", aws_encode(k), aws_encode(v)))
        .collect();
    let mut sorted_query = canonical_query;
    sorted_query.sort();
    let mut header_lines = String::new();
    for h in &signed_headers {
        let value = if *h == "host" {
            host.as_str()
        } else {
            config.cluster_name.as_str()
        };
        header_lines.push_str(&format!("{h}:{value}\n"));
    }
    let scope = format!("{date}/{region}/sts/aws4_request");
    let signing_key = {
        let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
        let k_region = hmac(&k_date, region.as_bytes());
        let k_service = hmac(&k_region, b"sts");
        hmac(&k_service, b"aws4_request")
    };
    // botocore's presigner signs "UNSIGNED-PAYLOAD", the Go SDKs the hash of the empty body; STS
    // accepts both, so do we.
    for payload_hash in [EMPTY_SHA256, "UNSIGNED-PAYLOAD"] {
        let canonical_request = format!(
            "GET\n/\n{}\n{}\n{}\n{}",
            sorted_query.join("&"),
            header_lines,
            signed_headers.join(";"),
            payload_hash
        );
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let expected = hex::encode(hmac(&signing_key, string_to_sign.as_bytes()));
        if constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
            return Ok(Identity::AccessKey(access_key.to_string()));
        }
    }
    Err(AuthError::BadSignature)
}

/// SigV4 URI encoding: everything but unreserved characters, upper-case hex.
const AWS_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn aws_encode(s: &str) -> String {
    utf8_percent_encode(s, AWS_ENCODE).to_string()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
