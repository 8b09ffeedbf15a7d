//! The CPU path of one webhook delivery, from the Lambda event's JSON to the execution input,
//! composed from the crate's public pieces in the order `handle` runs them: decode the Function
//! URL event, verify `X-Hub-Signature-256`, check headers, parse the push, parse the routes
//! document and route the branch, parse + validate the environment config, build and encode the
//! execution input and its name. What `handle` adds on top is I/O only: SSM GetParameter for the
//! routes and the config (the secret is cached) and StartExecution.
//!
//! Shared by `benches/webhook.rs` and labflow-bench's budget test (`#[path]`-included there).

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use hmac::{Hmac, Mac};
use labflow_core::contract::{Action, ExecutionInput, Source};
use labflow_github_webhook::push::{is_repository, is_sha, PushEvent};
use labflow_github_webhook::routes::Routes;
use labflow_github_webhook::{execution, signature, Secret};
use serde_json::{json, Value};
use sha2::Sha256;

pub const SECRET: &str = "bench-webhook-secret-0123456789abcdef";
pub const SHA: &str = "9d9bfee6a2d35515d56712a50005fc08ccb6f0f4";

/// The routes `labflow local` seeds (one exact route and the prefix route).
pub const ROUTES: &str =
    r#"{"routes":[{"branch":"main","environment":"lab"},{"prefix":"env/","environment":"*"}]}"#;

/// The example lab's config (what SSM returns for `/labflow/environments/lab`).
/// Pinned as `labflow flux pin` would (labflow-testkit).
pub static LAB_CONFIG: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(labflow_testkit::config::example_config_json);

/// A push body the size of a real one: GitHub includes the commits, the repository object and
/// the pusher; ~7 KB for a push of three commits.
pub fn push_body() -> String {
    let commit = |i: usize| {
        json!({
            "id": format!("{SHA:.39}{i}"), "tree_id": SHA, "distinct": true,
            "message": format!("infra: bump podinfo to 6.9.{i}\n\nSigned-off-by: dev <dev@example.com>"),
            "timestamp": "2026-11-30T03:12:47Z",
            "url": format!("https://github.com/example/labflow/commit/{SHA}"),
            "author": {"name": "dev", "email": "dev@example.com", "username": "dev"},
            "committer": {"name": "dev", "email": "dev@example.com", "username": "dev"},
            "added": [], "removed": [],
            "modified": ["infra/gitops/apps/podinfo/release.yaml", "infra/gitops/apps/podinfo/values.yaml"]
        })
    };
    let mut repository = serde_json::Map::new();
    repository.insert("full_name".into(), json!("example/labflow"));
    repository.insert("name".into(), json!("labflow"));
    repository.insert(
        "clone_url".into(),
        json!("https://github.com/example/labflow.git"),
    );
    // The real repository object carries ~90 fields, mostly URLs.
    for i in 0..60 {
        repository.insert(
            format!("field_{i}_url"),
            json!(format!(
                "https://api.github.com/repos/example/labflow/thing{i}{{/id}}"
            )),
        );
    }
    json!({
        "ref": "refs/heads/main",
        "before": "0000000000000000000000000000000000000000",
        "after": SHA,
        "created": false, "deleted": false, "forced": false,
        "base_ref": Value::Null,
        "compare": "https://github.com/example/labflow/compare/000000000000...9d9bfee6a2d3",
        "commits": [commit(1), commit(2), commit(3)],
        "head_commit": commit(3),
        "repository": repository,
        "pusher": {"name": "dev", "email": "dev@example.com"},
        "sender": {"login": "dev", "id": 1, "type": "User", "site_admin": false}
    })
    .to_string()
}

/// The Lambda event (Function URL request) JSON for `body`, signed with [`SECRET`].
pub fn event_json(body: &str) -> String {
    json!({
        "version": "2.0",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "user-agent": "GitHub-Hookshot/abc123",
            "x-github-event": "push",
            "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "x-github-hook-id": "292430182",
            "x-hub-signature-256": signature::sign(&Secret::new(SECRET), body.as_bytes()),
        },
        "requestContext": {
            "accountId": "anonymous", "requestId": "bench", "domainName": "x.lambda-url.eu-west-1.on.aws",
            "timeEpoch": 1_764_472_367_000_i64,
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                     "sourceIp": "140.82.115.1", "userAgent": "GitHub-Hookshot/abc123"}
        },
        "body": body,
        "isBase64Encoded": false,
    })
    .to_string()
}

/// What the handler would start.
#[derive(Debug)]
pub struct Decision {
    pub environment: String,
    pub action: Action,
    pub execution_name: String,
    pub input_json: String,
}

/// Verify + route + decide for one delivery (the event as the runtime hands it over).
pub fn verify_route_decide(
    secret: &Secret,
    event: &[u8],
    routes_doc: &str,
    config_doc: &str,
) -> Result<Decision, &'static str> {
    let request: LambdaFunctionUrlRequest =
        serde_json::from_slice(event).map_err(|_| "not a Function URL event")?;
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    if request.request_context.http.method.as_deref() != Some("POST") {
        return Err("only POST");
    }
    let body = request.body.as_deref().unwrap_or("").as_bytes();
    let signature_header = header("x-hub-signature-256").ok_or("unsigned")?;
    if !signature::verify(secret, body, signature_header) {
        return Err("invalid signature");
    }
    let media_type = header("content-type")
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("");
    if !media_type.trim().eq_ignore_ascii_case("application/json") {
        return Err("content type");
    }
    let event_name = header("x-github-event").ok_or("no event")?;
    let delivery = header("x-github-delivery").ok_or("no delivery")?;
    if event_name != "push" {
        return Err("not a push");
    }
    let push: PushEvent = serde_json::from_slice(body).map_err(|_| "not a push payload")?;
    let branch = push
        .git_ref
        .strip_prefix("refs/heads/")
        .ok_or("not a branch")?;
    if !is_repository(&push.repository.full_name) {
        return Err("repository");
    }
    let routes = Routes::parse(routes_doc).map_err(|_| "routes")?;
    let matched = routes.route(branch).ok_or("not routed")?;
    let (action, sha) = if push.deleted {
        (Action::Teardown, push.before.clone())
    } else {
        (Action::Sync, push.after.clone())
    };
    if !is_sha(&sha) {
        return Err("sha");
    }
    labflow_core::config::check_environment_name(&matched.environment).map_err(|_| "name")?;
    labflow_core::config::parse(&matched.environment, config_doc).map_err(|_| "config")?;
    let input = ExecutionInput {
        action,
        environment: Some(matched.environment.clone()),
        source: Source::Github {
            repository: push.repository.full_name.clone(),
            branch: branch.to_string(),
            sha,
            delivery_id: delivery.to_string(),
            pusher: push.pusher.and_then(|p| p.name),
        },
        poll_seconds: None,
        force: false,
    };
    let input_json = input.to_json().map_err(|_| "encode")?;
    Ok(Decision {
        environment: matched.environment,
        action,
        execution_name: execution::execution_name(body),
        input_json,
    })
}

/// The baseline: HMAC-SHA256 of the same body and a constant-time compare with the expected
/// digest, nothing else. A verified event can never be cheaper than this.
pub fn hmac_baseline(secret: &[u8], body: &[u8], expected: &[u8]) -> bool {
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(body);
            mac.verify_slice(expected).is_ok()
        }
        Err(_) => false,
    }
}
