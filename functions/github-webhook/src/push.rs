//! The parts of GitHub's `push` event payload the webhook needs.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct PushEvent {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub before: String,
    pub after: String,
    #[serde(default)]
    pub deleted: bool,
    pub repository: Repository,
    #[serde(default)]
    pub pusher: Option<Pusher>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    pub full_name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pusher {
    #[serde(default)]
    pub name: Option<String>,
}

/// A commit id: 40 (SHA-1) or 64 (SHA-256 repositories) lower-case hex digits.
pub fn is_sha(value: &str) -> bool {
    (value.len() == 40 || value.len() == 64)
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `owner/name` with GitHub's allowed characters (it is later put into API paths).
pub fn is_repository(value: &str) -> bool {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.len() <= 100
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    matches!(value.split_once('/'), Some((owner, name)) if ok_part(owner) && ok_part(name))
}
