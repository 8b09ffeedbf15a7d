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
