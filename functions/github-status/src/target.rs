//! Which commit to mark: read leniently from the execution input.
//!
//! Lenient on purpose: `ReportFailure` also runs after run-guard rejected the execution input, and
//! a commit that started such an execution should still show why it failed. Only the fields the
//! status needs are read, and each is checked, because they end up in the API path.

use serde_json::Value;

/// The commit a status goes on, and the labels around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub owner: String,
    pub repo: String,
    pub sha: String,
    /// `None` for inputs without one (`teardown-all`); the context is then plain `labflow`.
    pub environment: Option<String>,
    /// The execution's action as written in the input (`sync`, `teardown`, ...).
    pub action: Option<String>,
}

impl Target {
    /// `labflow/<env>`: one status line per environment on the commit.
    pub fn context(&self) -> String {
        match &self.environment {
            Some(env) => format!("labflow/{env}"),
            None => "labflow".to_string(),
        }
    }
}

/// The target, or why there is none (the status is then skipped).
pub fn from_execution_input(input: &Value) -> Result<Target, String> {
    let source = input
        .get("source")
        .ok_or_else(|| "the execution input has no source".to_string())?;
    let kind = source.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != "github" {
        return Err(format!(
            "the execution was not started by a GitHub push (source kind {:?})",
            short(kind)
        ));
    }
    let sha = match source.get("sha").and_then(Value::as_str) {
        Some(sha) if !sha.is_empty() => sha,
        _ => return Err("the execution input names no commit sha".to_string()),
    };
    if !is_sha(sha) {
        return Err(format!("source.sha {:?} is not a commit id", short(sha)));
    }
    let repository = source
        .get("repository")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some((owner, repo)) = split_repository(repository) else {
        return Err(format!(
            "source.repository {:?} is not owner/name",
            short(repository)
        ));
    };
    let environment = input
        .get("environment")
        .and_then(Value::as_str)
        .filter(|env| labflow_core::config::check_environment_name(env).is_ok())
        .map(str::to_string);
    let action = input
        .get("action")
        .and_then(Value::as_str)
        .filter(|a| a.len() <= 32 && a.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
        .map(str::to_string);
    Ok(Target {
        owner: owner.to_string(),
        repo: repo.to_string(),
        sha: sha.to_string(),
        environment,
        action,
    })
}

/// A commit id: 40 (SHA-1) or 64 (SHA-256 repositories) lower-case hex digits, not all zero
/// (GitHub sends zeros for the missing side of a created or deleted branch).
pub fn is_sha(value: &str) -> bool {
    (value.len() == 40 || value.len() == 64)
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && value.bytes().any(|b| b != b'0')
}

/// `owner/name` with GitHub's characters only; `.` and `..` would walk the API path.
pub fn split_repository(value: &str) -> Option<(&str, &str)> {
    let ok = |part: &str| {
        !part.is_empty()
            && part.len() <= 100
            && part.bytes().any(|b| b != b'.')
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    let (owner, repo) = value.split_once('/')?;
    (ok(owner) && ok(repo)).then_some((owner, repo))
}

/// Echo at most a little of a bad value into a reason.
fn short(value: &str) -> String {
    value.chars().take(80).collect()
}
