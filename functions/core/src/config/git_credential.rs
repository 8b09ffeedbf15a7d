//! Where Flux's Git credential lives and what it must look like (issue 26 item 2).
//!
//! Each environment's Flux clones with its own read-only credential, kept in its own SSM
//! SecureString: a fine-grained token with *Contents: read* on the one repository for an
//! `https://` source, or the private key of a read-only deploy key for an `ssh://` source. It is
//! planted in the cluster (Secret `flux-system/flux-system`), where anything running as cluster
//! admin can read it; so it must never be the token that writes commit statuses
//! (`/labflow/github/token`), which stays in the Lambdas.

use super::{GitRepositoryConfig, RepositoryId};

/// Every environment's Flux credential is a parameter below this path: flux-bootstrap may read
/// these and no other secret.
pub const CREDENTIAL_PARAMETER_PREFIX: &str = "/labflow/flux-credentials/";

/// How the value Terraform stores before the real secret is put begins (infra/terraform/ssm.tf,
/// `secret_placeholder`). It is public, in this repository: a secret that still holds it is
/// not set.
pub const SECRET_PLACEHOLDER_PREFIX: &str = "unset:";

/// github.com's SSH host keys, as GitHub publishes them (docs.github.com, "GitHub's SSH key
/// fingerprints"): the `known_hosts` of an `ssh://` source on github.com unless the config gives
/// its own.
pub const GITHUB_KNOWN_HOSTS: &str = "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n\
github.com ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=\n";

/// How Flux reaches the repository, by the URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitTransport {
    /// `https://` (or `http://`): token as the basic-auth password.
    Https,
    /// `ssh://`: deploy key (`identity`) and the host's keys (`known_hosts`).
    Ssh,
    /// `file://`, the local cloud's checkout: the simulated source-controller reads it directly.
    File,
}

impl GitRepositoryConfig {
    /// The SSM parameter holding this environment's Flux credential.
    pub fn credential_parameter_for(&self, environment: &str) -> String {
        self.credential_parameter
            .clone()
            .unwrap_or_else(|| format!("{CREDENTIAL_PARAMETER_PREFIX}{environment}"))
    }

    pub fn transport(&self) -> GitTransport {
        match self
            .url
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase())
        {
            Some(s) if s == "ssh" => GitTransport::Ssh,
            Some(s) if s == "file" => GitTransport::File,
            _ => GitTransport::Https,
        }
    }

    /// `known_hosts` for an `ssh://` source: the config's, else GitHub's own for github.com;
    /// `None` when neither applies (config validation refuses that).
    pub fn known_hosts(&self) -> Option<String> {
        if let Some(lines) = &self.known_hosts {
            return Some(lines.clone());
        }
        let host = RepositoryId::from_url(&self.url)?.host?;
        (host == "github.com").then(|| GITHUB_KNOWN_HOSTS.to_string())
    }
}

/// Problems with `credentialParameter` and `knownHosts`, as `(field, message)`.
pub(super) fn problems(repo: &GitRepositoryConfig) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    if let Some(parameter) = &repo.credential_parameter {
        let rest = parameter.strip_prefix(CREDENTIAL_PARAMETER_PREFIX);
        let ok = rest.is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        });
        if !ok {
            problems.push((
                "flux.repository.credentialParameter",
                format!(
                    "must be an SSM parameter name {CREDENTIAL_PARAMETER_PREFIX}<name> (letters, digits, '_', '.', '-'): flux-bootstrap may read no other secret, got {parameter:?}"
                ),
            ));
        }
    }
    match (repo.transport(), &repo.known_hosts) {
        (GitTransport::Ssh, Some(lines)) => {
            let entries: Vec<&str> = lines
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect();
            if entries.is_empty() || entries.iter().any(|l| l.split_whitespace().count() < 3) {
                problems.push((
                    "flux.repository.knownHosts",
                    "must be known_hosts lines: `<host> <key type> <base64 key>`".to_string(),
                ));
            }
        }
        (GitTransport::Ssh, None) if repo.known_hosts().is_none() => problems.push((
            "flux.repository.knownHosts",
            "required for an ssh:// repository not on github.com: the host's keys as known_hosts lines (ssh-keyscan output, checked against the host's published fingerprints)".to_string(),
        )),
        (GitTransport::Https | GitTransport::File, Some(_)) => problems.push((
            "flux.repository.knownHosts",
            "only an ssh:// repository uses host keys".to_string(),
        )),
        _ => {}
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(url: &str) -> GitRepositoryConfig {
        GitRepositoryConfig {
            url: url.to_string(),
            branch: "main".to_string(),
            path: None,
            interval: "1m".to_string(),
            credential_parameter: None,
            known_hosts: None,
        }
    }

    #[test]
    fn each_environment_has_its_own_parameter_by_default() {
        let r = repo("https://github.com/acme/labflow");
        assert_eq!(
            r.credential_parameter_for("lab"),
            "/labflow/flux-credentials/lab"
        );
        assert!(problems(&r).is_empty());
    }

    #[test]
    fn the_status_token_or_any_other_secret_is_refused_as_the_credential() {
        for parameter in [
            "/labflow/github/token",
            "/labflow/flux-credentials/",
            "/labflow/flux-credentials/../github/token",
            "/labflow/flux-credentials/a/b",
        ] {
            let mut r = repo("https://github.com/acme/labflow");
            r.credential_parameter = Some(parameter.to_string());
            let found = problems(&r);
            assert_eq!(found.len(), 1, "{parameter}: {found:?}");
            assert_eq!(found[0].0, "flux.repository.credentialParameter");
        }
        let mut shared = repo("https://github.com/acme/labflow");
        shared.credential_parameter = Some("/labflow/flux-credentials/previews".into());
        assert!(problems(&shared).is_empty());
    }

    #[test]
    fn ssh_sources_need_host_keys_github_com_has_them_built_in() {
        let github = repo("ssh://git@github.com/acme/labflow.git");
        assert_eq!(github.transport(), GitTransport::Ssh);
        assert_eq!(github.known_hosts().as_deref(), Some(GITHUB_KNOWN_HOSTS));
        assert!(problems(&github).is_empty());

        let mut enterprise = repo("ssh://git@git.example.com/acme/labflow.git");
        assert_eq!(problems(&enterprise)[0].0, "flux.repository.knownHosts");
        enterprise.known_hosts = Some("git.example.com ssh-ed25519 AAAAC3Nza".into());
        assert!(problems(&enterprise).is_empty());
        enterprise.known_hosts = Some("git.example.com".into());
        assert_eq!(problems(&enterprise).len(), 1);

        let mut https = repo("https://github.com/acme/labflow");
        https.known_hosts = Some(GITHUB_KNOWN_HOSTS.into());
        assert_eq!(problems(&https)[0].0, "flux.repository.knownHosts");
    }
}
