//! Flux's Git credential for one environment (issue 26 item 2): read from the environment's own
//! SSM SecureString (`flux.repository.credentialParameter`, default
//! `/labflow/flux-credentials/<env>`), checked against the source URL's transport, never quoted in
//! an error or a log line.

use labflow_core::aws::read_parameter;
use labflow_core::config::{GitRepositoryConfig, GitTransport, SECRET_PLACEHOLDER_PREFIX};
use labflow_core::StepError;

/// What Flux clones with. Debug never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum GitCredential {
    /// A read-only token, sent as the basic-auth password over HTTPS.
    Token(String),
    /// A read-only deploy key and the host keys it is used against.
    DeployKey {
        identity: String,
        known_hosts: String,
    },
}

impl std::fmt::Debug for GitCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::DeployKey { .. } => f.write_str("DeployKey(<redacted>)"),
        }
    }
}

const HOW_TO_SET: &str = "README.md, Deploy to AWS, step 4";

/// Reads and checks the environment's credential.
pub async fn load(
    ssm: &aws_sdk_ssm::Client,
    environment: &str,
    repo: &GitRepositoryConfig,
) -> Result<GitCredential, StepError> {
    let parameter = repo.credential_parameter_for(environment);
    let value = read_parameter(ssm, &parameter, true).await?.ok_or_else(|| {
        StepError::InvalidInput(format!(
            "SSM parameter {parameter} does not exist: put the environment's read-only Git credential there ({HOW_TO_SET})"
        ))
    })?;
    from_value(&parameter, repo, &value)
}

/// The credential a stored value stands for, given the source's transport.
pub fn from_value(
    parameter: &str,
    repo: &GitRepositoryConfig,
    value: &str,
) -> Result<GitCredential, StepError> {
    let value = value.trim();
    let invalid = |what: &str| StepError::InvalidInput(format!("SSM parameter {parameter} {what}"));
    if value.is_empty() {
        return Err(invalid("is empty"));
    }
    if value.starts_with(SECRET_PLACEHOLDER_PREFIX) {
        return Err(invalid(&format!(
            "still holds Terraform's placeholder: put the environment's read-only Git credential there ({HOW_TO_SET})"
        )));
    }
    let private_key = value.starts_with("-----BEGIN ") && value.contains("PRIVATE KEY-----");
    match repo.transport() {
        GitTransport::Ssh => {
            if !private_key {
                return Err(invalid(
                    "must hold the private key of a read-only deploy key (PEM, as ssh-keygen writes it): flux.repository.url is an ssh:// URL",
                ));
            }
            let known_hosts = repo.known_hosts().ok_or_else(|| {
                StepError::InvalidInput(
                    "flux.repository.knownHosts: required for an ssh:// repository not on github.com"
                        .into(),
                )
            })?;
            Ok(GitCredential::DeployKey {
                identity: format!("{value}\n"),
                known_hosts,
            })
        }
        GitTransport::Https | GitTransport::File => {
            if private_key {
                return Err(invalid(
                    "holds a private key, but flux.repository.url is not an ssh:// URL: use the repository's ssh:// URL with a deploy key, or store a read-only token",
                ));
            }
            if value.contains(char::is_whitespace) {
                return Err(invalid(
                    "must hold one read-only token (no spaces or line breaks)",
                ));
            }
            Ok(GitCredential::Token(value.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----";

    fn repo(url: &str) -> GitRepositoryConfig {
        let json = format!(r#"{{"url": "{url}", "branch": "main"}}"#);
        serde_json::from_str(&json).expect("a repository config")
    }

    fn message(result: Result<GitCredential, StepError>) -> String {
        match result {
            Err(StepError::InvalidInput(m)) => m,
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    #[test]
    fn a_token_for_https_and_a_deploy_key_for_ssh() {
        let https = repo("https://github.com/acme/labflow");
        assert_eq!(
            from_value("/p", &https, " github_pat_ro \n").ok(),
            Some(GitCredential::Token("github_pat_ro".into()))
        );
        let ssh = repo("ssh://git@github.com/acme/labflow.git");
        let Ok(GitCredential::DeployKey {
            identity,
            known_hosts,
        }) = from_value("/p", &ssh, KEY)
        else {
            panic!("no deploy key");
        };
        assert_eq!(identity, format!("{KEY}\n"));
        assert!(known_hosts.starts_with("github.com ssh-ed25519 "));
    }

    #[test]
    fn mismatches_and_placeholders_are_refused_without_quoting_the_value() {
        let https = repo("https://github.com/acme/labflow");
        let ssh = repo("ssh://git@github.com/acme/labflow.git");
        let cases = [
            (&https, KEY, "not an ssh:// URL"),
            (
                &ssh,
                "github_pat_secret",
                "private key of a read-only deploy key",
            ),
            (&https, "two words", "one read-only token"),
            (
                &https,
                "unset: put the real value",
                "Terraform's placeholder",
            ),
            (&https, "  ", "is empty"),
        ];
        for (repo, value, expected) in cases {
            let m = message(from_value("/labflow/flux-credentials/lab", repo, value));
            assert!(m.contains(expected), "{m}");
            assert!(
                m.starts_with("SSM parameter /labflow/flux-credentials/lab "),
                "{m}"
            );
            for secret in ["b3BlbnNzaC1rZXktdjEAAAAA", "github_pat_secret", "two words"] {
                assert!(!m.contains(secret), "{m}");
            }
        }
        assert_eq!(
            format!("{:?}", GitCredential::Token("github_pat_secret".into())),
            "Token(<redacted>)"
        );
    }
}
