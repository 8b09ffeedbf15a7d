//! A GitHub push, simulated: the body GitHub sends, signed with the webhook secret from SSM,
//! handed to the github-webhook function as a Function URL request.

use anyhow::{anyhow, bail, Context as _};
use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use labflow_core::aws::AwsClients;
use labflow_github_webhook::{signature, Ctx, Reply, Secret};
use serde_json::{json, Value};

/// The execution the webhook started for a push.
pub struct Started {
    pub execution_arn: String,
    pub name: String,
    pub input: Value,
}

/// `owner/name` of a repository URL (`https://github.com/acme/labflow(.git)`, or the local
/// checkout's `file:///…/owner/name`), as the webhook binds it to the environment.
pub fn full_name(url: &str) -> String {
    labflow_core::config::RepositoryId::from_url(url)
        .map(|id| id.full_name)
        .unwrap_or_else(|| url.trim_end_matches('/').to_string())
}

/// Delivers a push of `sha` to `branch` and returns the execution it started.
pub async fn deliver(
    clients: &AwsClients,
    state_machine_arn: &str,
    repository_url: &str,
    branch: &str,
    sha: &str,
) -> anyhow::Result<Started> {
    let secret = clients
        .ssm
        .get_parameter()
        .name(labflow_github_webhook::SECRET_PARAMETER)
        .with_decryption(true)
        .send()
        .await
        .context("reading the webhook secret")?
        .parameter()
        .and_then(|p| p.value())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("the webhook secret parameter has no value"))?;
    let body = json!({
        "ref": format!("refs/heads/{branch}"),
        "before": "0000000000000000000000000000000000000000",
        "after": sha,
        "created": false,
        "deleted": false,
        "forced": false,
        "repository": {
            "full_name": full_name(repository_url),
            "clone_url": repository_url,
            "pushed_at": chrono::Utc::now().timestamp(),
        },
        "pusher": {"name": "labflow-local"},
        "head_commit": null,
        "commits": [],
    })
    .to_string();
    let delivery = uuid::Uuid::new_v4().to_string();
    let request: LambdaFunctionUrlRequest = serde_json::from_value(json!({
        "version": "2.0",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "x-github-event": "push",
            "x-github-delivery": delivery,
            "x-hub-signature-256": signature::sign(&Secret::new(secret), body.as_bytes()),
        },
        "requestContext": {
            "accountId": "anonymous",
            "requestId": delivery,
            "domainName": "localhost",
            "timeEpoch": chrono::Utc::now().timestamp_millis(),
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "labflow-local"}
        },
        "body": body,
        "isBase64Encoded": false,
    }))
    .context("building the Function URL request")?;
    let ctx = Ctx::new(
        clients,
        state_machine_arn,
        labflow_github_webhook::DEFAULT_SECRET_TTL,
    );
    let response = labflow_github_webhook::handle(&ctx, request).await;
    let text = response.body.unwrap_or_default();
    let reply: Reply = serde_json::from_str(&text)
        .with_context(|| format!("the webhook answered {}: {text}", response.status_code))?;
    let Some(execution_arn) = reply.execution_arn else {
        bail!(
            "the webhook started nothing ({}): {}",
            response.status_code,
            reply.reason.unwrap_or_default()
        );
    };
    let described = clients
        .sfn
        .describe_execution()
        .execution_arn(&execution_arn)
        .send()
        .await
        .context("DescribeExecution of the webhook's execution")?;
    let input: Value = serde_json::from_str(described.input().unwrap_or("{}"))
        .context("the execution input is not JSON")?;
    let name = described.name().unwrap_or_default().to_string();
    Ok(Started {
        execution_arn,
        name,
        input,
    })
}
