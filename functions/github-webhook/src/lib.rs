//! github-webhook: a verified GitHub push becomes exactly one Step Functions execution.
//!
//! Behind a Lambda Function URL. In order: only POST (405); a body larger than a Function URL
//! can deliver (6 MiB) → 413;
//! `X-Hub-Signature-256` checked against the secret in SSM before anything is parsed → 401;
//! wrong content type, missing or non-ASCII GitHub headers or a body that is not the expected
//! JSON → 400 (a push to a branch name git refuses, with an all-zero `after` that is no
//! deletion, or pushed longer ago than GitHub redelivers, too); an execution input over Step Functions' 256 KiB → 422.
//! Then `ping` → 200; `push` to a routed branch → execution (`sync`, or `teardown` for a deleted
//! branch on a prefix route) → 202 with the execution ARN; a route naming an environment without
//! config → 422; everything else → 202 ignored, with the reason. The body, the signature and the
//! secret are never logged or returned.

pub mod execution;
pub mod push;
pub mod reach;
pub mod routes;
pub mod signature;

use std::borrow::Cow;
use std::time::{Duration, Instant};

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::Engine;
use labflow_core::aws::AwsClients;
use labflow_core::config::{Checks, Purpose};
use labflow_core::contract::{Action, ExecutionInput, Source};
use labflow_core::StepError;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

pub use signature::Secret;

/// Exactly the IAM actions this function calls (checked against Terraform).
pub const AWS_OPERATIONS: &[&str] = &[
    "ssm:GetParameter",
    "states:DescribeExecution",
    "states:StartExecution",
];

/// StartExecution encrypts the input with the state machine's key, DescribeExecution decrypts
/// it (infra/terraform/iam_lambdas.tf, local.states_kms_condition).
pub const IMPLIED_PERMISSIONS: &[&str] = &["kms:Decrypt", "kms:GenerateDataKey"];

/// SSM parameter holding the webhook secret (SecureString).
pub const SECRET_PARAMETER: &str = "/labflow/github/webhook-secret";

/// SSM parameter holding the secret being rotated out (SecureString), only while a rotation
/// runs: deliveries signed with it are still accepted until it is deleted (issue 26 item 9;
/// README, "Rotating the webhook secret").
pub const PREVIOUS_SECRET_PARAMETER: &str = "/labflow/github/webhook-secret-previous";

/// Terraform's placeholder (public, in this repository): a secret that still holds it verifies
/// nothing.
pub use labflow_core::config::SECRET_PLACEHOLDER_PREFIX as PLACEHOLDER_PREFIX;

/// Largest body accepted: what a Function URL can hand the function at all. GitHub sends
/// payloads of up to 25 MB ("Payloads are capped at 25 MB",
/// https://docs.github.com/en/webhooks/webhook-events-and-payloads#payload-cap), a large merge
/// push with its commit list easily exceeds 1 MiB, and a Function URL (invoke mode BUFFERED)
/// invokes the function synchronously, whose request payload quota is 6 MB = 6,291,456 bytes
/// ("Invocation payload (request and response): 6 MB each for request and response
/// (synchronous)", https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html;
/// Lambda's own error says "Request must be smaller than 6291456 bytes"). The whole event
/// (headers, request context, body) must fit, so no body above this can ever arrive; a base64
/// encoded body (Function URLs encode non-text content types,
/// https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html#urls-payloads) arrives as
/// at most this many characters, i.e. at most 3/4 of it decoded.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// How the limit is named in 413 answers.
const BODY_LIMIT_REASON: &str =
    "the Lambda Function URL request payload limit (6 MiB, 6291456 bytes, synchronous invocation quota)";

/// How long the secret is reused before it is read again (rotation takes effect within this).
pub const DEFAULT_SECRET_TTL: Duration = Duration::from_secs(300);

/// Clients and settings, built once per cold start.
#[derive(Debug)]
pub struct Ctx {
    pub ssm: aws_sdk_ssm::Client,
    pub sfn: aws_sdk_sfn::Client,
    /// From `LABFLOW_STATE_MACHINE_ARN`.
    pub state_machine_arn: String,
    pub secret_ttl: Duration,
    /// The clients talk to the local cloud (config checks, `AwsClients::local_cloud`).
    pub local_cloud: bool,
    secrets: Mutex<Option<(Instant, Vec<Secret>)>>,
}

impl Ctx {
    pub fn new(
        clients: &AwsClients,
        state_machine_arn: impl Into<String>,
        secret_ttl: Duration,
    ) -> Self {
        Self {
            ssm: clients.ssm.clone(),
            sfn: clients.sfn.clone(),
            state_machine_arn: state_machine_arn.into(),
            secret_ttl,
            local_cloud: clients.local_cloud(),
            secrets: Mutex::new(None),
        }
    }

    pub fn from_env(clients: &AwsClients) -> Result<Self, StepError> {
        let arn = std::env::var("LABFLOW_STATE_MACHINE_ARN")
            .map_err(|_| StepError::InvalidInput("LABFLOW_STATE_MACHINE_ARN is not set".into()))?;
        if execution::execution_arn(&arn, "x").is_none() {
            return Err(StepError::InvalidInput(format!(
                "LABFLOW_STATE_MACHINE_ARN {arn:?} is not a state machine ARN"
            )));
        }
        Ok(Self::new(clients, arn, DEFAULT_SECRET_TTL))
    }

    /// The secrets a delivery may be signed with: the current one, then the previous one while
    /// a rotation runs; cached for `secret_ttl` (a rotation step takes effect within it).
    async fn secrets(&self) -> Result<Vec<Secret>, StepError> {
        let mut cached = self.secrets.lock().await;
        if let Some((at, secrets)) = cached.as_ref() {
            if at.elapsed() < self.secret_ttl {
                return Ok(secrets.clone());
            }
        }
        let current = labflow_core::aws::read_parameter(&self.ssm, SECRET_PARAMETER, true)
            .await?
            .ok_or_else(|| StepError::InvalidInput(format!("{SECRET_PARAMETER} is not set")))?;
        let mut secrets = vec![usable_secret(SECRET_PARAMETER, current)?];
        if let Some(previous) =
            labflow_core::aws::read_parameter(&self.ssm, PREVIOUS_SECRET_PARAMETER, true).await?
        {
            secrets.push(usable_secret(PREVIOUS_SECRET_PARAMETER, previous)?);
        }
        *cached = Some((Instant::now(), secrets.clone()));
        Ok(secrets)
    }
}

/// A stored secret that can verify deliveries: not empty, not Terraform's placeholder.
fn usable_secret(parameter: &str, value: String) -> Result<Secret, StepError> {
    if value.is_empty() {
        return Err(StepError::InvalidInput(format!("{parameter} is empty")));
    }
    if value.starts_with(PLACEHOLDER_PREFIX) {
        return Err(StepError::InvalidInput(format!(
            "{parameter} still holds Terraform's placeholder: put the real secret (README, Deploy to AWS)"
        )));
    }
    Ok(Secret::new(value.into_bytes()))
}

/// What the webhook did, as the JSON body of every response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reply {
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    /// The execution already existed (a redelivery): nothing new was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redelivery: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pong,
    Started,
    Ignored,
    Rejected,
    Error,
}

impl Reply {
    fn new(outcome: Outcome, reason: impl Into<String>) -> Self {
        Self {
            outcome,
            reason: Some(reason.into()),
            environment: None,
            action: None,
            execution_arn: None,
            redelivery: None,
        }
    }
}

/// An HTTP status and its reply.
type Answer = (u16, Reply);

fn reject(status: u16, reason: impl Into<String>) -> Answer {
    (status, Reply::new(Outcome::Rejected, reason))
}

fn ignore(reason: impl Into<String>) -> Answer {
    (202, Reply::new(Outcome::Ignored, reason))
}

/// A step error while serving: our configuration (500) or a passing AWS problem (503).
fn failed(err: &StepError) -> Answer {
    let status = if matches!(err, StepError::Transient(_)) {
        503
    } else {
        500
    };
    (status, Reply::new(Outcome::Error, err.message()))
}

/// Serve one Function URL request. Never panics on any input; errors become HTTP answers.
pub async fn handle(ctx: &Ctx, request: LambdaFunctionUrlRequest) -> LambdaFunctionUrlResponse {
    let delivery = header_for_log(&request, "x-github-delivery")
        .chars()
        .take(64)
        .collect::<String>();
    let event = header_for_log(&request, "x-github-event")
        .chars()
        .take(64)
        .collect::<String>();
    let (status, reply) = serve(ctx, &request).await;
    tracing::info!(
        delivery = %delivery,
        event = %event,
        status,
        outcome = ?reply.outcome,
        reason = reply.reason.as_deref().unwrap_or(""),
        environment = reply.environment.as_deref().unwrap_or(""),
        execution_arn = reply.execution_arn.as_deref().unwrap_or(""),
        "webhook answered"
    );
    response(status, &reply)
}

fn response(status: u16, reply: &Reply) -> LambdaFunctionUrlResponse {
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = i64::from(status);
    response.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response.body =
        Some(serde_json::to_string(reply).unwrap_or_else(|_| r#"{"outcome":"error"}"#.to_string()));
    response.is_base64_encoded = false;
    response
}

/// A header's value: `Ok(None)` when absent, `Err(NotText)` when present but not visible ASCII
/// (HTTP header values are ASCII text; RFC 9110 §5.5 leaves other octets "opaque data"), which
/// is answered as an invalid header, not a missing one.
fn header<'a>(
    request: &'a LambdaFunctionUrlRequest,
    name: &str,
) -> Result<Option<&'a str>, NotText> {
    match request.headers.get(name) {
        None => Ok(None),
        Some(value) => value.to_str().map(Some).map_err(|_| NotText),
    }
}

/// A header value that is not visible ASCII.
#[derive(Debug, Clone, Copy)]
struct NotText;

/// The header for logs: "-" when absent or not text.
fn header_for_log<'a>(request: &'a LambdaFunctionUrlRequest, name: &str) -> &'a str {
    header(request, name).ok().flatten().unwrap_or("-")
}

async fn serve(ctx: &Ctx, request: &LambdaFunctionUrlRequest) -> Answer {
    let method = request.request_context.http.method.as_deref().unwrap_or("");
    if !method.eq_ignore_ascii_case("POST") {
        return reject(405, "only POST is accepted");
    }
    let body = match raw_body(request) {
        Ok(body) => body,
        Err(answer) => return answer,
    };

    // Authenticate before looking at anything else in the request.
    let signature = match header(request, "x-hub-signature-256") {
        Ok(Some(signature)) => signature,
        Ok(None) => return reject(401, "missing X-Hub-Signature-256"),
        Err(NotText) => return reject(401, "invalid X-Hub-Signature-256"),
    };
    let secrets = match ctx.secrets().await {
        Ok(secrets) => secrets,
        // Nobody is authenticated yet: say nothing of AWS (its error text names accounts, ARNs
        // and parameters) to whoever sent this; the log has the error (issue 26 item 9).
        Err(err) => {
            tracing::error!(error = %err.message(), "reading the webhook secret");
            let status = if matches!(err, StepError::Transient(_)) {
                503
            } else {
                500
            };
            return (
                status,
                Reply::new(
                    Outcome::Error,
                    "the webhook cannot verify deliveries right now; its log says why",
                ),
            );
        }
    };
    if !secrets
        .iter()
        .any(|secret| signature::verify(secret, &body, signature))
    {
        return reject(401, "invalid signature");
    }

    let content_type = match header(request, "content-type") {
        Ok(value) => value.unwrap_or(""),
        Err(NotText) => return reject(400, "invalid Content-Type"),
    };
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return reject(400, "content type must be application/json");
    }
    let event = match header(request, "x-github-event") {
        Ok(Some(event)) => event,
        Ok(None) => return reject(400, "missing X-GitHub-Event"),
        Err(NotText) => return reject(400, "invalid X-GitHub-Event"),
    };
    let delivery_id = match header(request, "x-github-delivery") {
        Ok(Some(id)) if !id.trim().is_empty() => id,
        Ok(_) => return reject(400, "missing X-GitHub-Delivery"),
        Err(NotText) => return reject(400, "invalid X-GitHub-Delivery"),
    };
    // Pushes go straight into their struct: building a generic JSON tree of the whole payload
    // first doubled the webhook's CPU time per event (docs/performance.md).
    if event == "push" {
        return match serde_json::from_slice::<push::PushEvent>(&body) {
            Ok(push) => {
                let request_id = request.request_context.request_id.as_deref().unwrap_or("");
                on_push(ctx, delivery_id, request_id, &body, push).await
            }
            Err(_) if !is_json_object(&body) => reject(400, "body is not a JSON object"),
            Err(err) => reject(400, format!("not a push event payload: {err}")),
        };
    }
    if !is_json_object(&body) {
        return reject(400, "body is not a JSON object");
    }
    match event {
        "ping" => (200, Reply::new(Outcome::Pong, "pong")),
        other => ignore(format!(
            "event {:?} is not handled",
            other.chars().take(64).collect::<String>()
        )),
    }
}

/// Whether `body` is one JSON object (checked without keeping any of it).
fn is_json_object(body: &[u8]) -> bool {
    serde_json::from_slice::<std::collections::HashMap<String, serde::de::IgnoredAny>>(body).is_ok()
}

/// The body bytes: borrowed from the event as it is (no copy of a multi-MiB body), decoded from
/// base64 only when the Function URL encoded it.
fn raw_body(request: &LambdaFunctionUrlRequest) -> Result<Cow<'_, [u8]>, Answer> {
    let text = request.body.as_deref().unwrap_or("");
    // Encoded or not, the body travelled inside the event, so its text is what the limit bounds
    // (checked before decoding, so nothing huge is ever decoded).
    if text.len() > MAX_BODY_BYTES {
        return Err(reject(
            413,
            format!(
                "body of {} bytes is larger than {BODY_LIMIT_REASON}",
                text.len()
            ),
        ));
    }
    if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map(Cow::Owned)
            .map_err(|_| reject(400, "body is not valid base64"))
    } else {
        Ok(Cow::Borrowed(text.as_bytes()))
    }
}

async fn on_push(
    ctx: &Ctx,
    delivery_id: &str,
    request_id: &str,
    body: &[u8],
    push: push::PushEvent,
) -> Answer {
    if push.git_ref.starts_with("refs/tags/") {
        return ignore("tag pushes are not deployed");
    }
    let Some(branch) = push.git_ref.strip_prefix("refs/heads/") else {
        return ignore("not a branch push");
    };
    let branch = branch.to_string();
    if !push::is_repository(&push.repository.full_name) {
        return reject(400, "repository.full_name is not owner/name");
    }
    if let Err(stale) = push::freshness(&push.repository, std::time::SystemTime::now()) {
        return reject(400, stale);
    }
    let routes = match load_routes(ctx).await {
        Ok(Some(routes)) => routes,
        Ok(None) => {
            return ignore(format!(
                "branch {branch:?} is not routed (no routes configured)"
            ))
        }
        Err(err) => return failed(&err),
    };
    let Some(matched) = routes.route(&branch) else {
        return ignore(format!("branch {branch:?} is not routed"));
    };
    let (action, sha) = if push.deleted {
        if !matched.by_prefix {
            return ignore(format!(
                "branch {branch:?} was deleted; only branches on prefix routes tear their environment down"
            ));
        }
        (Action::Teardown, push.before.clone())
    } else if push::is_zero_sha(&push.after) {
        // The all-zero id is GitHub's "no commit": `after` of a push that deleted the ref, which
        // then says `deleted: true` (push event payload,
        // https://docs.github.com/en/webhooks/webhook-events-and-payloads#push). A push to an
        // existing branch always names its new head commit.
        return reject(
            400,
            "\"after\" is the all-zero commit id but \"deleted\" is false: no commit to sync",
        );
    } else {
        (Action::Sync, push.after.clone())
    };
    if !push::is_sha(&sha) {
        return reject(400, "the pushed commit id is not a hex sha");
    }
    let environment = matched.environment.clone();
    let unconfigured = |reason: String| {
        let mut reply = Reply::new(Outcome::Rejected, reason);
        reply.environment = Some(environment.clone());
        reply.action = Some(action);
        (422, reply)
    };
    if let Err(err) = labflow_core::config::check_environment_name(&environment) {
        return unconfigured(format!(
            "branch {branch:?} routes to an invalid environment name: {}",
            err.message()
        ));
    }
    // The branch goes into the execution input (and on into commit statuses) as it is: only a
    // name git itself accepts, and of bounded length.
    if let Err(problem) = push::check_branch_name(&branch) {
        let mut reply = Reply::new(
            Outcome::Rejected,
            format!(
                "branch {:?} is not a valid git branch name: {problem}",
                branch.chars().take(64).collect::<String>()
            ),
        );
        reply.environment = Some(environment.clone());
        return (400, reply);
    }
    let checks = Checks::create(ctx.local_cloud).for_purpose(Purpose::for_action(action));
    let config = match labflow_core::config::load(&ctx.ssm, &environment, &checks).await {
        Ok(config) => config,
        Err(StepError::InvalidInput(message)) => return unconfigured(message),
        Err(err) => return failed(&err),
    };
    if let Some(refused) = reach::refusal(
        &routes,
        &matched,
        &push.repository,
        &branch,
        action,
        &config,
    ) {
        let mut reply = Reply::new(Outcome::Rejected, refused);
        reply.environment = Some(environment.clone());
        reply.action = Some(action);
        return (403, reply);
    }
    let input = ExecutionInput {
        action,
        environment: Some(environment.clone()),
        source: Source::Github {
            repository: push.repository.full_name.clone(),
            branch,
            sha,
            delivery_id: delivery_id.chars().take(100).collect(),
            pusher: push.pusher.and_then(|p| p.name),
        },
        poll_seconds: None,
        force: false,
    };
    let input_json = match input.to_json() {
        Ok(json) => execution::distinct_input(json, request_id),
        Err(err) => {
            return failed(&StepError::InvalidInput(format!(
                "cannot encode input: {err}"
            )))
        }
    };
    // Step Functions refuses an execution input over 262,144 bytes of UTF-8 (StartExecution
    // `input`: "Length Constraints: Maximum length of 262144 ... expressed as bytes in UTF-8
    // encoding", https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html)
    // with a ValidationException: answer it as the client's problem, before calling.
    if input_json.len() > execution::MAX_INPUT_BYTES {
        let mut reply = Reply::new(
            Outcome::Rejected,
            format!(
                "the execution input would be {} bytes, over Step Functions' limit of {} bytes (256 KiB)",
                input_json.len(),
                execution::MAX_INPUT_BYTES
            ),
        );
        reply.environment = Some(environment);
        reply.action = Some(action);
        return (422, reply);
    }
    let name = execution::execution_name(body);
    match execution::start_once(&ctx.sfn, &ctx.state_machine_arn, &name, &input_json).await {
        Ok(started) => (
            202,
            Reply {
                outcome: Outcome::Started,
                reason: None,
                environment: Some(environment),
                action: Some(action),
                execution_arn: Some(started.execution_arn),
                redelivery: Some(started.redelivery),
            },
        ),
        Err(err) => failed(&err),
    }
}

async fn load_routes(ctx: &Ctx) -> Result<Option<routes::Routes>, StepError> {
    match labflow_core::aws::read_parameter(&ctx.ssm, routes::PARAMETER, false).await? {
        None => Ok(None),
        Some(text) => routes::Routes::parse(&text)
            .map(Some)
            .map_err(StepError::InvalidInput),
    }
}
