//! Test support: the shared AWS emulator, one routes document and secret per process, a state
//! machine per test, and signed Function URL requests.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Result;
use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use labflow_core::aws::AwsClients;
use labflow_github_webhook::{signature, Ctx, Reply, Secret};
use serde_json::{json, Value};
use tokio::sync::OnceCell;

pub const SECRET: &str = "whsec-KNOWN-webhook-5ecr3t-0123456789";
pub const TOKEN: &str = "ghp_KNOWNtoken0123456789abcdefghijklmnop";
/// The example config, pinned as `labflow flux pin` would (labflow-testkit).
pub static EXAMPLE_CONFIG: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(labflow_testkit::config::example_config_json);
pub const SHA_A: &str = "0123456789abcdef0123456789abcdef01234567";
pub const SHA_B: &str = "89abcdef0123456789abcdef0123456789abcdef";

/// Environments shared by all tests of a process (routes are one global parameter).
#[derive(Debug, Clone)]
pub struct World {
    /// Routed from `main` (exact route), configured.
    pub main_env: String,
    /// `env/` prefix routes: `env/<name>` → `<name>`; this one is configured.
    pub prefix_env: String,
    /// `orphan` routes to this environment, which has no config.
    pub orphan_env: String,
}

pub async fn clients() -> Result<AwsClients> {
    Ok(AwsClients::from_config(
        labflow_testkit::aws::shared_emulator().await?,
    ))
}

pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id() % 100_000,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

async fn put(clients: &AwsClients, name: &str, value: &str, secure: bool) -> Result<()> {
    labflow_testkit::aws::put_parameter(&clients.ssm, name, value, secure).await
}

/// The example config of an environment on the `env/` prefix route: its Flux follows
/// `env/<environment>`.
pub fn prefix_config(environment: &str, protected: bool) -> Value {
    let mut config = labflow_testkit::config::example_config();
    config["flux"]["repository"]["branch"] = json!(format!("env/{environment}"));
    config["protected"] = json!(protected);
    config
}

/// Store `config` as `environment`'s config.
pub async fn seed_config(clients: &AwsClients, environment: &str, config: &Value) -> Result<()> {
    put(
        clients,
        &format!("/labflow/environments/{environment}"),
        &config.to_string(),
        false,
    )
    .await
}

pub async fn world() -> Result<World> {
    static WORLD: OnceCell<World> = OnceCell::const_new();
    WORLD
        .get_or_try_init(|| async {
            let clients = clients().await?;
            let world = World {
                main_env: unique("main"),
                prefix_env: unique("feat"),
                orphan_env: unique("orphan"),
            };
            // The main environment's Flux follows `main` (the example's branch); the prefix
            // environment's follows its own branch, `env/<name>`.
            put(
                &clients,
                &format!("/labflow/environments/{}", world.main_env),
                &EXAMPLE_CONFIG,
                false,
            )
            .await?;
            seed_config(
                &clients,
                &world.prefix_env,
                &prefix_config(&world.prefix_env, false),
            )
            .await?;
            let routes = json!({"routes": [
                {"branch": "main", "environment": world.main_env},
                {"branch": "orphan", "environment": world.orphan_env},
                {"prefix": "env/", "environment": "*"},
                {"prefix": "release/", "environment": world.main_env},
            ]});
            put(
                &clients,
                "/labflow/webhook/routes",
                &routes.to_string(),
                false,
            )
            .await?;
            put(&clients, "/labflow/github/webhook-secret", SECRET, true).await?;
            put(&clients, "/labflow/github/token", TOKEN, true).await?;
            Ok::<_, anyhow::Error>(world)
        })
        .await
        .cloned()
}

/// A context with its own state machine, so each test counts only its own executions.
pub async fn ctx() -> Result<(Ctx, AwsClients, World)> {
    let world = world().await?;
    let clients = clients().await?;
    let out = clients
        .sfn
        .create_state_machine()
        .name(unique("sm"))
        .definition(r#"{"StartAt":"Done","States":{"Done":{"Type":"Succeed"}}}"#)
        .role_arn("arn:aws:iam::123456789012:role/x")
        .send()
        .await?;
    let ctx = Ctx::new(&clients, out.state_machine_arn(), Duration::from_secs(300));
    Ok((ctx, clients, world))
}

pub async fn executions(clients: &AwsClients, ctx: &Ctx) -> Result<Vec<(String, Value)>> {
    let out = clients
        .sfn
        .list_executions()
        .state_machine_arn(&ctx.state_machine_arn)
        .send()
        .await?;
    let mut all = Vec::new();
    for item in out.executions() {
        let described = clients
            .sfn
            .describe_execution()
            .execution_arn(item.execution_arn())
            .send()
            .await?;
        let input: Value = serde_json::from_str(described.input().unwrap_or("null"))?;
        all.push((item.execution_arn().to_string(), input));
    }
    Ok(all)
}

/// A Function URL request as Lambda delivers it.
pub fn request(
    method: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    base64: bool,
) -> Result<LambdaFunctionUrlRequest> {
    let mut header_map = serde_json::Map::new();
    for (k, v) in headers {
        header_map.insert(k.to_string(), json!(v));
    }
    let event = json!({
        "version": "2.0",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": header_map,
        "requestContext": {
            "accountId": "anonymous",
            "requestId": "r-1",
            "domainName": "abc.lambda-url.eu-west-1.on.aws",
            "timeEpoch": 1_700_000_000_000_i64,
            "http": {"method": method, "path": "/", "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "GitHub-Hookshot/1"}
        },
        "body": body,
        "isBase64Encoded": base64,
    });
    Ok(serde_json::from_value(event)?)
}

/// A correctly signed GitHub delivery.
pub fn signed(event: &str, delivery: &str, body: &str) -> Result<LambdaFunctionUrlRequest> {
    let sig = signature::sign(&Secret::new(SECRET), body.as_bytes());
    request(
        "POST",
        &[
            ("content-type", "application/json"),
            ("x-github-event", event),
            ("x-github-delivery", delivery),
            ("x-hub-signature-256", &sig),
        ],
        Some(body),
        false,
    )
}

/// The repository of the example config's Flux source (`https://github.com/example/labflow`):
/// the one whose pushes drive the test environments.
pub const REPOSITORY: &str = "example/labflow";

/// Now, in Unix seconds.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// The `repository` object of a push event from `full_name` on `host`, pushed now (push events
/// carry `pushed_at` in Unix seconds).
pub fn repository(host: &str, full_name: &str) -> Value {
    let name = full_name.rsplit('/').next().unwrap_or(full_name);
    json!({"id": 1, "name": name, "full_name": full_name, "private": true,
           "html_url": format!("https://{host}/{full_name}"), "pushed_at": now_unix()})
}

pub fn push_body(git_ref: &str, before: &str, after: &str, deleted: bool) -> String {
    push_body_from(
        repository("github.com", REPOSITORY),
        git_ref,
        before,
        after,
        deleted,
    )
}

/// A push event of `repository` (see [`repository`]).
pub fn push_body_from(
    repository: Value,
    git_ref: &str,
    before: &str,
    after: &str,
    deleted: bool,
) -> String {
    json!({
        "ref": git_ref,
        "before": before,
        "after": after,
        "created": false,
        "deleted": deleted,
        "forced": false,
        "repository": repository,
        "pusher": {"name": "octocat", "email": "octocat@example.com"},
        "head_commit": null,
        "commits": [],
    })
    .to_string()
}

pub fn reply(response: &LambdaFunctionUrlResponse) -> Result<Reply> {
    Ok(serde_json::from_str(
        response.body.as_deref().unwrap_or(""),
    )?)
}

/// A push of `commits` commits, each with a long message and file lists, the way GitHub sends a
/// large merge (up to 2,048 commits per push event, 25 MB per payload).
pub fn push_body_with_commits(git_ref: &str, before: &str, after: &str, commits: usize) -> String {
    let commit = |i: usize| {
        json!({
            "id": format!("{:040x}", i),
            "tree_id": format!("{:040x}", i + 1),
            "distinct": true,
            "message": format!("commit {i}: {}", "a long commit message line. ".repeat(30)),
            "timestamp": "2026-12-03T12:00:00Z",
            "url": format!("https://github.com/{REPOSITORY}/commit/{:040x}", i),
            "author": {"name": "Octo Cat", "email": "octocat@example.com", "username": "octocat"},
            "committer": {"name": "Octo Cat", "email": "octocat@example.com", "username": "octocat"},
            "added": (0..10).map(|f| format!("infra/gitops/apps/app-{i}/file-{f}.yaml")).collect::<Vec<_>>(),
            "removed": [],
            "modified": ["README.md"],
        })
    };
    json!({
        "ref": git_ref,
        "before": before,
        "after": after,
        "created": false,
        "deleted": false,
        "forced": false,
        "repository": repository("github.com", REPOSITORY),
        "pusher": {"name": "octocat", "email": "octocat@example.com"},
        "head_commit": commit(commits),
        "commits": (0..commits).map(commit).collect::<Vec<_>>(),
    })
    .to_string()
}
