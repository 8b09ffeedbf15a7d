//! `POST /repos/{owner}/{repo}/statuses/{sha}` with bounded retries.
//!
//! 2xx → posted. 5xx, connection errors, and rate limits (429, or 403 with `Retry-After`,
//! `x-ratelimit-remaining: 0` or a "secondary rate limit" message) are retried with backoff, or
//! after the wait GitHub asks for when that fits the policy; otherwise they end as
//! `labflow.Transient` so the state machine's Retry takes over. Any other answer is GitHub
//! refusing the request (bad token, no access, 422 validation): reported, never retried.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use labflow_core::StepError;
use reqwest::header::{HeaderMap, ACCEPT, RETRY_AFTER};
use serde::Serialize;

use crate::describe::{truncate, CommitState};
use crate::target::Target;

/// The GitHub token. Its `Debug` never shows the value and it has no `Display`.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// `text` with every occurrence of the token replaced (for anything GitHub sends back).
    pub fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.0, "<redacted>")
        }
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// How hard one call tries before leaving it to the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Requests per call, including the first.
    pub max_attempts: u32,
    /// Backoff before the second request; doubles each time.
    pub base_delay: Duration,
    /// No single wait is longer; a rate limit asking for more ends the call as transient.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Four requests, 1 s → 2 s → 4 s: well inside the 60 s budget of one call.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// The JSON body GitHub expects.
#[derive(Debug, Clone, Serialize)]
pub struct StatusBody {
    pub state: CommitState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_url: Option<String>,
    pub description: String,
    pub context: String,
}

/// How the request ended, short of a transient error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    /// GitHub stored the status.
    Created { status: u16, attempts: u32 },
    /// GitHub refused it (4xx other than rate limits); `reason` is GitHub's message.
    Refused {
        status: u16,
        reason: String,
        attempts: u32,
    },
}

/// What to do with one non-2xx answer.
enum Verdict {
    /// Try again after this wait (`None`: the policy's backoff).
    Retry {
        wait: Option<Duration>,
        why: String,
    },
    Refuse {
        status: u16,
        reason: String,
    },
}

/// Post `body` on `target`'s commit.
pub async fn post_status(
    http: &reqwest::Client,
    api_url: &str,
    token: &Token,
    policy: &RetryPolicy,
    target: &Target,
    body: &StatusBody,
) -> Result<Posted, StepError> {
    let url = format!(
        "{}/repos/{}/{}/statuses/{}",
        api_url.trim_end_matches('/'),
        target.owner,
        target.repo,
        target.sha
    );
    let attempts = policy.max_attempts.max(1);
    let mut last = String::new();
    for attempt in 1..=attempts {
        let sent = http
            .post(&url)
            .bearer_auth(&token.0)
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .json(body)
            .send()
            .await;
        let verdict = match sent {
            Err(err) => Verdict::Retry {
                wait: None,
                why: token.redact(&format!("request failed: {err}")),
            },
            Ok(response) => {
                let status = response.status().as_u16();
                if response.status().is_success() {
                    return Ok(Posted::Created {
                        status,
                        attempts: attempt,
                    });
                }
                let headers = response.headers().clone();
                // An unreadable error body still leaves the status code to go on.
                let text = response.text().await.unwrap_or_default();
                judge(status, &headers, &token.redact(&text))
            }
        };
        match verdict {
            Verdict::Refuse { status, reason } => {
                return Ok(Posted::Refused {
                    status,
                    reason,
                    attempts: attempt,
                });
            }
            Verdict::Retry { wait, why } => {
                let wait = match wait {
                    Some(asked) if asked > policy.max_delay => {
                        return Err(StepError::Transient(format!(
                            "GitHub: {why}; it asks to wait {} s, longer than one call waits",
                            asked.as_secs()
                        )));
                    }
                    Some(asked) => asked,
                    None => policy.backoff(attempt),
                };
                tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, reason = %why, "GitHub status request will be retried");
                last = why;
                if attempt < attempts {
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
    Err(StepError::Transient(format!(
        "GitHub: {last} (gave up after {attempts} attempts)"
    )))
}

fn judge(status: u16, headers: &HeaderMap, body: &str) -> Verdict {
    let message = github_message(body);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if status >= 500 {
        return Verdict::Retry {
            wait: None,
            why: format!("HTTP {status}: {message}"),
        };
    }
    let retry_after = header(RETRY_AFTER.as_str()).and_then(|v| v.parse::<u64>().ok());
    let exhausted = header("x-ratelimit-remaining") == Some("0");
    let secondary = message.to_ascii_lowercase().contains("rate limit");
    if status == 429 || (status == 403 && (retry_after.is_some() || exhausted || secondary)) {
        let wait = if let Some(seconds) = retry_after {
            Some(Duration::from_secs(seconds))
        } else if exhausted {
            header("x-ratelimit-reset")
                .and_then(|v| v.parse::<u64>().ok())
                .map(|reset| Duration::from_secs(reset.saturating_sub(now_epoch())))
        } else {
            None
        };
        return Verdict::Retry {
            wait,
            why: format!("rate limited (HTTP {status}): {message}"),
        };
    }
    Verdict::Refuse {
        status,
        reason: truncate(&format!("HTTP {status}: {message}"), 300),
    }
}

/// GitHub's error text: `message` plus each `errors[].message` (or code), else the raw body.
fn github_message(body: &str) -> String {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return truncate(body.trim(), 200);
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = json.get("message").and_then(|m| m.as_str()) {
        parts.push(m.to_string());
    }
    if let Some(errors) = json.get("errors").and_then(|e| e.as_array()) {
        for e in errors {
            let text = e
                .get("message")
                .or_else(|| e.get("code"))
                .and_then(|m| m.as_str())
                .unwrap_or("");
            if !text.is_empty() {
                parts.push(text.to_string());
            }
        }
    }
    if parts.is_empty() {
        truncate(body.trim(), 200)
    } else {
        truncate(&parts.join("; "), 250)
    }
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
