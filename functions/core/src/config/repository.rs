//! Which GitHub repository an environment belongs to, derived from its Flux source URL.
//!
//! Pushes that drive an environment and commit statuses posted for it must concern that
//! repository and no other (issue 26 item 5): an organisation webhook or a secret shared by
//! several repositories delivers pushes of every repository signed alike, and an execution
//! input names whatever repository its author wrote.

/// A repository as GitHub names it: `owner/name` on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryId {
    /// Lower-case host (`github.com`, a GitHub Enterprise host); `None` for a `file://` URL
    /// (the local cloud's checkout), which names no host.
    pub host: Option<String>,
    /// `owner/name`, as written in the URL (without `.git`).
    pub full_name: String,
}

impl RepositoryId {
    /// The repository named by a Flux source URL: `https://host/owner/name(.git)`,
    /// `ssh://git@host(:port)/owner/name(.git)` or `file:///…/owner/name`. `None` when the URL
    /// does not end in two path segments.
    pub fn from_url(url: &str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        let (authority, path) = match scheme.to_ascii_lowercase().as_str() {
            "https" | "http" | "ssh" => rest.split_once('/')?,
            "file" => ("", rest),
            _ => return None,
        };
        let host = if authority.is_empty() {
            None
        } else {
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let host = host.split(':').next().unwrap_or_default();
            if host.is_empty() {
                return None;
            }
            Some(host.to_ascii_lowercase())
        };
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let path = path.trim_end_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        let mut segments = path.rsplit('/');
        let name = segments.next().filter(|s| !s.is_empty())?;
        let owner = segments.next().filter(|s| !s.is_empty())?;
        Some(Self {
            host,
            full_name: format!("{owner}/{name}"),
        })
    }

    /// Whether GitHub's `full_name` (and, when known on both sides, the host of the repository's
    /// URL as GitHub sends it, e.g. `repository.html_url`) name this repository. GitHub's owner
    /// and repository names are case-insensitive (`Acme/LabFlow` and `acme/labflow` are one
    /// repository), hosts are too (RFC 3986 §3.2.2).
    pub fn matches(&self, full_name: &str, url: Option<&str>) -> bool {
        if !self.full_name.eq_ignore_ascii_case(full_name) {
            return false;
        }
        match (&self.host, url.and_then(Self::from_url)) {
            (Some(ours), Some(theirs)) => theirs.host.as_deref() == Some(ours.as_str()),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(host: Option<&str>, full_name: &str) -> Option<RepositoryId> {
        Some(RepositoryId {
            host: host.map(str::to_string),
            full_name: full_name.to_string(),
        })
    }

    #[test]
    fn the_url_forms_flux_accepts_name_their_repository() {
        let gh = Some("github.com");
        for url in [
            "https://github.com/acme/labflow",
            "https://github.com/acme/labflow.git",
            "https://github.com/acme/labflow/",
            "https://GitHub.com/acme/labflow",
            "ssh://git@github.com/acme/labflow.git",
            "ssh://git@github.com:22/acme/labflow",
        ] {
            assert_eq!(RepositoryId::from_url(url), id(gh, "acme/labflow"), "{url}");
        }
        assert_eq!(
            RepositoryId::from_url("https://ghe.corp.example/platform/labs.git"),
            id(Some("ghe.corp.example"), "platform/labs")
        );
        assert_eq!(
            RepositoryId::from_url("file:///work/checkouts/labflow"),
            id(None, "checkouts/labflow")
        );
    }

    #[test]
    fn urls_without_owner_and_name_name_nothing() {
        for url in [
            "https://github.com/",
            "https://github.com/acme",
            "git@github.com:acme/labflow",
            "ftp://github.com/acme/labflow",
            "",
        ] {
            assert_eq!(RepositoryId::from_url(url), None, "{url}");
        }
    }

    #[test]
    fn another_repository_or_host_does_not_match() {
        let ours = RepositoryId::from_url("https://github.com/acme/labflow").unwrap();
        assert!(ours.matches("acme/labflow", None));
        assert!(ours.matches("Acme/LabFlow", Some("https://github.com/Acme/LabFlow")));
        assert!(!ours.matches("acme/other", None));
        assert!(!ours.matches("evil/labflow", Some("https://github.com/evil/labflow")));
        assert!(!ours.matches(
            "acme/labflow",
            Some("https://ghe.corp.example/acme/labflow")
        ));
        // A local checkout has no host: the name decides.
        let local = RepositoryId::from_url("file:///tmp/x/acme/labflow").unwrap();
        assert!(local.matches("acme/labflow", Some("https://github.com/acme/labflow")));
    }
}
