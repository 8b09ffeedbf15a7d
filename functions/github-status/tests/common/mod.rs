//! Test support: the shared AWS emulator holding the token, and a local HTTP server standing in
//! for the GitHub API that records every request and answers from a script.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use labflow_core::aws::AwsClients;
use labflow_github_status::{Ctx, RetryPolicy};
use serde_json::{json, Value};

pub const TOKEN: &str = "ghp_KNOWNtoken0123456789abcdefghijklmnop";
pub const SECRET: &str = "whsec-KNOWN-webhook-5ecr3t-0123456789";
pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
pub const EXECUTION_ARN: &str =
    "arn:aws:states:eu-west-1:123456789012:execution:labflow-lifecycle:push-abc";
/// The example config, pinned as `labflow flux pin` would (labflow-testkit).
pub static EXAMPLE_CONFIG: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(labflow_testkit::config::example_config_json);

pub async fn clients() -> Result<AwsClients> {
    Ok(AwsClients::from_config(
        labflow_testkit::aws::shared_emulator().await?,
    ))
}

pub async fn put(clients: &AwsClients, name: &str, value: &str, secure: bool) -> Result<()> {
    labflow_testkit::aws::put_parameter(&clients.ssm, name, value, secure).await
}

/// Retries in milliseconds so the suite stays fast.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(200),
    }
}

/// The repository of the example config's Flux source: the one statuses may go to.
pub const REPOSITORY: &str = "example/labflow";

/// Environments the tests post for, each configured with the example config.
pub const CONFIGURED: &[&str] = &["lab", "feat-x"];

/// A context on the emulator (token and [`CONFIGURED`] configs stored) and `github`.
pub async fn ctx(github: &FakeGitHub) -> Result<Ctx> {
    let clients = clients().await?;
    put(&clients, "/labflow/github/token", TOKEN, true).await?;
    for environment in CONFIGURED {
        put(
            &clients,
            &labflow_core::config::parameter_name(environment),
            &EXAMPLE_CONFIG,
            false,
        )
        .await?;
    }
    Ok(Ctx::new(&clients, Some(&github.url))?.with_retry(fast_retry()))
}

/// The execution input github-webhook starts a push with.
pub fn push_input(environment: &str, action: &str) -> Value {
    json!({
        "action": action,
        "environment": environment,
        "source": {
            "kind": "github",
            "repository": REPOSITORY,
            "branch": "main",
            "sha": SHA,
            "deliveryId": "d-1",
            "pusher": "octocat"
        }
    })
}

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A scripted answer: status, headers, JSON body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

pub fn answer(status: u16, headers: &[(&str, &str)], body: Value) -> Answer {
    Answer {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body,
    }
}

#[derive(Default)]
struct State {
    script: Mutex<VecDeque<Answer>>,
    requests: Mutex<Vec<Recorded>>,
}

/// The GitHub API stand-in. Answers the script in order, then `201 Created`.
pub struct FakeGitHub {
    pub url: String,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeGitHub {
    pub async fn start(script: Vec<Answer>) -> Result<Self> {
        let state = Arc::new(State {
            script: Mutex::new(script.into()),
            requests: Mutex::new(Vec::new()),
        });
        let shared = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move { serve(&state, method, uri, headers, body) }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, state, server })
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

fn serve(state: &State, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let parsed = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Ok(mut requests) = state.requests.lock() {
        requests.push(Recorded {
            method: method.to_string(),
            path: uri.path().to_string(),
            headers,
            body: parsed.clone(),
        });
    }
    let next = state.script.lock().ok().and_then(|mut s| s.pop_front());
    let answer = next.unwrap_or_else(|| {
        answer(
            201,
            &[],
            json!({"id": 1, "state": parsed["state"], "context": parsed["context"]}),
        )
    });
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(answer.body)).into_response();
    for (k, v) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(&v),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
