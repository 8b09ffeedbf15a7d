//! labflow github-status: commit statuses on the pushed sha, linking to the execution.
//!
//! The state machine calls it three ways (state-machine/lifecycle.asl.json, `Report*` states):
//! `{"state": "pending" | "success" | "failure", "executionArn": $$.Execution.Id,
//!   "executionInput": $$.Execution.Input[, "error": {"Error", "Cause"}]}`.
//! It posts a status on `source.sha` of `source.repository` with context `labflow/<env>`, a
//! one-line description and a link to the execution in the console. Executions without a
//! GitHub sha, or naming a repository other than the one their environment's config syncs, are
//! skipped; GitHub refusing the status (4xx) is reported in the output, never an
//! error; 5xx and rate limits are retried (see [`github`]). The token is read from SSM and never
//! logged or returned.

pub mod describe;
pub mod github;
pub mod target;

use std::time::{Duration, Instant};

use labflow_core::aws::AwsClients;
use labflow_core::StepError;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

pub use describe::{CommitState, ErrorInfo};
pub use github::{RetryPolicy, Token};

/// Exactly the IAM actions this function calls (checked against Terraform).
pub const AWS_OPERATIONS: &[&str] = &["ssm:GetParameter"];

/// SSM parameter holding the GitHub token (SecureString).
pub const TOKEN_PARAMETER: &str = "/labflow/github/token";

/// The public GitHub API; `GITHUB_API_URL` overrides it (GitHub Enterprise, local stand-ins).
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// How long the token is reused before it is read again (rotation takes effect within this).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(300);

/// One request's time limit: a hung connection must not eat the call's budget.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Clients and settings, built once per cold start.
#[derive(Debug)]
pub struct Ctx {
    pub ssm: aws_sdk_ssm::Client,
    /// Base URL of the GitHub REST API, without a trailing slash.
    pub api_url: String,
    pub http: reqwest::Client,
    pub retry: RetryPolicy,
    pub token_ttl: Duration,
    token: Mutex<Option<(Instant, Token)>>,
}

impl Ctx {
    /// `api_url` defaults to [`DEFAULT_API_URL`].
    pub fn new(clients: &AwsClients, api_url: Option<&str>) -> Result<Self, StepError> {
        let api_url = api_url.unwrap_or(DEFAULT_API_URL).trim_end_matches('/');
        match reqwest::Url::parse(api_url) {
            Ok(url) if matches!(url.scheme(), "https" | "http") && url.host().is_some() => {}
            _ => {
                return Err(StepError::InvalidInput(format!(
                    "GitHub API URL {api_url:?} is not an http(s) URL"
                )))
            }
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("labflow-github-status/", env!("CARGO_PKG_VERSION")))
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|err| StepError::InvalidInput(format!("cannot build HTTP client: {err}")))?;
        Ok(Self {
            ssm: clients.ssm.clone(),
            api_url: api_url.to_string(),
            http,
            retry: RetryPolicy::default(),
            token_ttl: DEFAULT_TOKEN_TTL,
            token: Mutex::new(None),
        })
    }

    /// Settings from the Lambda environment (`GITHUB_API_URL`).
    pub fn from_env(clients: &AwsClients) -> Result<Self, StepError> {
        let url = std::env::var("GITHUB_API_URL")
            .ok()
            .filter(|u| !u.trim().is_empty());
        Self::new(clients, url.as_deref())
    }

    /// The same context with another retry policy (tests use millisecond delays).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The GitHub token, cached for `token_ttl`.
    async fn token(&self) -> Result<Token, StepError> {
        let mut cached = self.token.lock().await;
        if let Some((at, token)) = cached.as_ref() {
            if at.elapsed() < self.token_ttl {
                return Ok(token.clone());
            }
        }
        let value = labflow_core::aws::read_parameter(&self.ssm, TOKEN_PARAMETER, true)
            .await?
            .ok_or_else(|| StepError::InvalidInput(format!("{TOKEN_PARAMETER} is not set")))?;
        let value = value.trim();
        if value.is_empty() {
            return Err(StepError::InvalidInput(format!(
                "{TOKEN_PARAMETER} is empty"
            )));
        }
        let token = Token::new(value);
        *cached = Some((Instant::now(), token.clone()));
        Ok(token)
    }
}

impl Ctx {
    /// Why `target` is not a commit of its environment's configured repository; `None` when it
    /// is. The config is read as plain JSON, not validated: a failure report of a run whose
    /// config was refused should still reach the commit.
    async fn unbound(&self, target: &target::Target) -> Result<Option<String>, StepError> {
        let Some(environment) = &target.environment else {
            return Ok(Some(
                "the execution names no environment, so no repository to bind its status to"
                    .to_string(),
            ));
        };
        let name = labflow_core::config::parameter_name(environment);
        let Some(text) = labflow_core::aws::read_parameter(&self.ssm, &name, false).await? else {
            return Ok(Some(format!(
                "environment {environment:?} has no config naming its repository"
            )));
        };
        let url = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|config| {
                config
                    .pointer("/flux/repository/url")
                    .and_then(|u| u.as_str())
                    .map(str::to_string)
            });
        let Some(ours) = url
            .as_deref()
            .and_then(labflow_core::config::RepositoryId::from_url)
        else {
            return Ok(Some(format!(
                "environment {environment:?} has no owner/name in its config's repository URL"
            )));
        };
        let named = format!("{}/{}", target.owner, target.repo);
        if ours.matches(&named, None) {
            Ok(None)
        } else {
            Ok(Some(format!(
                "the execution names repository {named:?}, but environment {environment:?} syncs \
                 {:?}: no status on another repository",
                ours.full_name
            )))
        }
    }
}

/// What the state machine passes (see the crate docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Input {
    pub state: CommitState,
    /// `$$.Execution.Id`: linked from the status.
    pub execution_arn: String,
    /// `$$.Execution.Input`, read leniently (it may be the input run-guard rejected).
    pub execution_input: serde_json::Value,
    /// The caught error, for `failure`.
    #[serde(default)]
    pub error: Option<ErrorInfo>,
}

/// The report. `posted` says whether GitHub stored the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Output {
    pub done: bool,
    /// `posted`, `refused` (GitHub answered 4xx) or `skipped` (no commit to mark).
    pub phase: String,
    pub posted: bool,
    /// Why nothing was posted, when skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The state posted (or attempted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<CommitState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    /// GitHub's HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// GitHub's reason for refusing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Requests made.
    #[serde(default)]
    pub attempts: u32,
}

impl Output {
    fn skipped(reason: String) -> Self {
        Self {
            done: true,
            phase: "skipped".into(),
            posted: false,
            skipped: Some(reason),
            state: None,
            context: None,
            description: None,
            target_url: None,
            repository: None,
            sha: None,
            status: None,
            reason: None,
            attempts: 0,
        }
    }
}

/// Post the status for one report of the state machine.
pub async fn handle(ctx: &Ctx, input: Input) -> Result<Output, StepError> {
    let target = match target::from_execution_input(&input.execution_input) {
        Ok(target) => target,
        Err(reason) => {
            tracing::info!(reason = %reason, "no commit to mark; status skipped");
            return Ok(Output::skipped(reason));
        }
    };
    // The execution input is whatever its author wrote (the console takes any JSON): a status
    // goes only on a commit of the repository the environment's config syncs (issue 26 item 5).
    if let Some(reason) = ctx.unbound(&target).await? {
        tracing::warn!(reason = %reason, "commit not in the environment's repository; status skipped");
        return Ok(Output::skipped(reason));
    }
    let error = input.error.as_ref();
    let state = describe::state_to_post(input.state, error);
    let target_url = describe::console_url(&input.execution_arn);
    if target_url.is_none() {
        tracing::warn!(execution_arn = %input.execution_arn, "not an execution ARN; status posted without a link");
    }
    let body = github::StatusBody {
        state,
        target_url,
        description: describe::description(state, &target, error),
        context: target.context(),
    };
    let token = ctx.token().await?;
    let posted =
        github::post_status(&ctx.http, &ctx.api_url, &token, &ctx.retry, &target, &body).await?;
    let mut output = Output {
        done: true,
        phase: String::new(),
        posted: false,
        skipped: None,
        state: Some(state),
        context: Some(body.context),
        description: Some(body.description),
        target_url: body.target_url,
        repository: Some(format!("{}/{}", target.owner, target.repo)),
        sha: Some(target.sha),
        status: None,
        reason: None,
        attempts: 0,
    };
    match posted {
        github::Posted::Created { status, attempts } => {
            output.phase = "posted".into();
            output.posted = true;
            output.status = Some(status);
            output.attempts = attempts;
        }
        github::Posted::Refused {
            status,
            reason,
            attempts,
        } => {
            output.phase = "refused".into();
            output.status = Some(status);
            output.reason = Some(reason);
            output.attempts = attempts;
        }
    }
    tracing::info!(
        repository = output.repository.as_deref().unwrap_or(""),
        sha = output.sha.as_deref().unwrap_or(""),
        context = output.context.as_deref().unwrap_or(""),
        state = ?state,
        phase = %output.phase,
        status = output.status.unwrap_or(0),
        reason = output.reason.as_deref().unwrap_or(""),
        attempts = output.attempts,
        "commit status reported"
    );
    Ok(output)
}
