//! Known-answer test: our EKS token is byte-identical to the one botocore's presigner (the client
//! behind `aws eks get-token`) makes for the same credentials, cluster, region and time. The
//! expected value is computed in this run by botocore from the repo's `.venv`.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use aws_credential_types::Credentials;
use labflow_core::eks_token;

fn botocore_token(cluster: &str, region: &str, creds: &Credentials, epoch: u64) -> Result<String> {
    let venv = labflow_testbed::paths::venv_dir().context("no .venv: run make test")?;
    let python = venv.join("bin").join("python");
    if !python.is_file() {
        bail!("{} is missing: run make test", python.display());
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/eks_get_token.py"
    );
    let output = Command::new(python)
        .arg(script)
        .args([
            cluster,
            region,
            creds.access_key_id(),
            creds.secret_access_key(),
        ])
        .arg(creds.session_token().unwrap_or("-"))
        .arg(epoch.to_string())
        .output()
        .context("running botocore")?;
    if !output.status.success() {
        bail!(
            "botocore failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_string())
}

fn check(cluster: &str, region: &str, creds: Credentials, epoch: u64) -> Result<()> {
    let expected = botocore_token(cluster, region, &creds, epoch)?;
    let at = UNIX_EPOCH + Duration::from_secs(epoch);
    let ours = eks_token::generate(&creds, cluster, region, at)?;
    pretty_assertions::assert_eq!(ours.expose(), expected);
    Ok(())
}

#[test]
fn token_matches_botocore_without_session_token() -> Result<()> {
    let creds = Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        None,
        None,
        "test",
    );
    check("labflow-lab", "eu-west-1", creds, 1_700_000_000)
}

#[test]
fn token_matches_botocore_with_session_token() -> Result<()> {
    // A session token with the characters that need percent-encoding (+ / =).
    let creds = Credentials::new(
        "ASIAEXAMPLEKEYID0001",
        "secret/with+special=chars",
        Some("IQoJb3JpZ2luX2VjE+/session/token==".to_string()),
        None,
        "test",
    );
    check("my_cluster-2", "us-east-1", creds, 1_764_000_123)
}

#[test]
fn token_shape_and_expiry() -> Result<()> {
    use base64::Engine;
    let creds = Credentials::new("AKID", "SECRET", None, None, "test");
    let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let token = eks_token::generate(&creds, "c1", "eu-central-1", at)?;
    let encoded = token
        .expose()
        .strip_prefix("k8s-aws-v1.")
        .context("prefix")?;
    assert!(!encoded.contains('='), "no padding");
    let url = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded)?)?;
    assert!(url.starts_with(
        "https://sts.eu-central-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"
    ));
    assert!(url.contains("X-Amz-Expires=60"));
    assert!(url.contains("X-Amz-SignedHeaders=host%3Bx-k8s-aws-id"));
    let signed_at: chrono::DateTime<chrono::Utc> = at.into();
    assert_eq!(token.expires_at - signed_at, chrono::Duration::minutes(15));
    assert_eq!(
        token.refresh_after - signed_at,
        chrono::Duration::minutes(14)
    );
    assert!(!token.needs_refresh(signed_at + chrono::Duration::minutes(13)));
    assert!(token.needs_refresh(signed_at + chrono::Duration::minutes(14)));
    assert!(
        !format!("{token:?}").contains(token.expose()),
        "Debug must not print the token"
    );
    Ok(())
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let creds = Credentials::new("AKID", "SECRET", None, None, "test");
    assert!(eks_token::generate(&creds, "", "eu-west-1", SystemTime::now()).is_err());
    assert!(eks_token::generate(&creds, "c", "eu west 1", SystemTime::now()).is_err());
}
