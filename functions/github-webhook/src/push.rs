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
    /// `https://<host>/<owner>/<name>`: tells github.com from a GitHub Enterprise host.
    #[serde(default)]
    pub html_url: Option<String>,
    /// When the push happened: covered by the signature, unlike the delivery headers.
    #[serde(default)]
    pub pushed_at: Option<Timestamp>,
}

/// A push event's `repository.pushed_at`: Unix seconds, as push events send it, or an ISO 8601
/// string, as the repository object elsewhere does (octokit/webhooks schema of `push`:
/// `pushed_at` is `integer | string | null`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Timestamp {
    Unix(i64),
    Text(String),
}

impl Timestamp {
    fn unix_seconds(&self) -> Option<i64> {
        match self {
            Self::Unix(seconds) => Some(*seconds),
            Self::Text(text) => chrono::DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.timestamp()),
        }
    }
}

/// How old a push may be: GitHub redelivers a delivery for 3 days ("You can redeliver
/// deliveries from the past 3 days", https://docs.github.com/en/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks),
/// plus an hour of slack. Anything older is a replay of a stored body, not GitHub; younger
/// replays are caught by the body-bound execution name, which Step Functions keeps for 90 days.
pub const MAX_PUSH_AGE_SECONDS: i64 = 3 * 24 * 3600 + 3600;

/// How far in the future a push may claim to be (clock skew between GitHub and AWS).
pub const MAX_PUSH_SKEW_SECONDS: i64 = 300;

/// Whether the push is recent enough to act on; why not, otherwise.
pub fn freshness(repository: &Repository, now: std::time::SystemTime) -> Result<(), String> {
    let Some(pushed_at) = repository
        .pushed_at
        .as_ref()
        .and_then(Timestamp::unix_seconds)
    else {
        return Err(
            "repository.pushed_at is missing or not a time: a push cannot be checked for replay"
                .into(),
        );
    };
    let now = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default();
    let age = now.saturating_sub(pushed_at);
    if age > MAX_PUSH_AGE_SECONDS {
        return Err(format!(
            "the push is {} hours old (repository.pushed_at), older than GitHub's 3-day \
             redelivery window: a replayed delivery is not acted on",
            age / 3600
        ));
    }
    if age < -MAX_PUSH_SKEW_SECONDS {
        return Err(format!(
            "repository.pushed_at is {} seconds in the future",
            -age
        ));
    }
    Ok(())
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

/// The all-zero commit id GitHub sends as `after` of a deletion (and `before` of a creation).
pub fn is_zero_sha(value: &str) -> bool {
    is_sha(value) && value.bytes().all(|b| b == b'0')
}

/// Longest branch name accepted (bytes). Git sets no limit of its own, but a loose ref is a file
/// whose name most file systems cap at 255 bytes, and the name travels into the execution input
/// and commit statuses.
pub const MAX_BRANCH_BYTES: usize = 255;

/// Whether `branch` (the part after `refs/heads/`) is a name git accepts, by the rules of
/// `git check-ref-format` (https://git-scm.com/docs/git-check-ref-format) and its `--branch`
/// mode; the first rule broken, otherwise.
pub fn check_branch_name(branch: &str) -> Result<(), String> {
    if branch.is_empty() {
        return Err("it is empty".into());
    }
    if branch.len() > MAX_BRANCH_BYTES {
        return Err(format!(
            "it is {} bytes long, more than {MAX_BRANCH_BYTES}",
            branch.len()
        ));
    }
    // 9. "They cannot be the single character @."
    if branch == "@" {
        return Err("it is the single character @".into());
    }
    // --branch: "the name cannot begin with a dash" (it would read as an option).
    if branch.starts_with('-') {
        return Err("it begins with a dash".into());
    }
    // 4. "no ASCII control characters (i.e. bytes whose values are lower than \040, or \177
    // DEL), space, tilde ~, caret ^, or colon :"; 5. "question-mark ?, asterisk *, or open
    // bracket ["; 10. "They cannot contain a \."
    if let Some(c) = branch
        .chars()
        .find(|c| c.is_ascii_control() || " ~^:?*[\\".contains(*c))
    {
        return Err(format!("it contains {c:?}"));
    }
    // 3. "They cannot have two consecutive dots .. anywhere."
    if branch.contains("..") {
        return Err("it contains \"..\"".into());
    }
    // 8. "They cannot contain a sequence @{."
    if branch.contains("@{") {
        return Err("it contains \"@{\"".into());
    }
    // 6. "They cannot begin or end with a slash / or contain multiple consecutive slashes."
    if branch.starts_with('/') || branch.ends_with('/') || branch.contains("//") {
        return Err("it begins or ends with a slash or contains \"//\"".into());
    }
    // 7. "They cannot end with a dot ."
    if branch.ends_with('.') {
        return Err("it ends with a dot".into());
    }
    // 1. "no slash-separated component can begin with a dot . or end with the sequence .lock"
    for component in branch.split('/') {
        if component.starts_with('.') {
            return Err(format!("its component {component:?} begins with a dot"));
        }
        if component.ends_with(".lock") {
            return Err(format!("its component {component:?} ends with \".lock\""));
        }
    }
    Ok(())
}
