//! A loopback stand-in for the GitHub commit-status API, so github-status runs its real code in
//! local runs: `POST /repos/{owner}/{repo}/statuses/{sha}` answers 201 like GitHub and the
//! statuses are kept for the run's summary. Anything else is 404, as GitHub answers.

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// One commit status as GitHub would show it.
#[derive(Debug, Clone)]
pub struct CommitStatus {
    pub repository: String,
    pub sha: String,
    pub state: String,
    pub context: String,
    pub description: String,
}

#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<CommitStatus>>>);

/// The running stand-in; it stops when dropped.
pub struct GithubStandIn {
    url: String,
    recorded: Recorded,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for GithubStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl GithubStandIn {
    pub async fn start() -> anyhow::Result<GithubStandIn> {
        let recorded = Recorded::default();
        let app = Router::new()
            .route("/repos/{owner}/{repo}/statuses/{sha}", post(create_status))
            .with_state(recorded.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the GitHub API stand-in on loopback")?;
        let url = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(GithubStandIn {
            url,
            recorded,
            server,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Statuses posted so far, oldest first.
    pub fn statuses(&self) -> Vec<CommitStatus> {
        self.recorded
            .0
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }
}

async fn create_status(
    State(recorded): State<Recorded>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
    let state = text("state");
    // GitHub's own validation of the one field that must be one of four values.
    if !matches!(state, "error" | "failure" | "pending" | "success") {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(
                json!({"message": "Validation Failed", "errors": [{"field": "state", "code": "invalid"}]}),
            ),
        );
    }
    let status = CommitStatus {
        repository: format!("{owner}/{repo}"),
        sha: sha.clone(),
        state: state.to_string(),
        context: text("context").to_string(),
        description: text("description").to_string(),
    };
    let reply = json!({
        "state": status.state,
        "context": status.context,
        "description": status.description,
        "target_url": body.get("target_url"),
    });
    if let Ok(mut all) = recorded.0.lock() {
        all.push(status);
    }
    (StatusCode::CREATED, Json(reply))
}
