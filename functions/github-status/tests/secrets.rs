//! Issue 10's cross-cutting check: every handler of github-webhook, github-status and run-guard,
//! run with a known GitHub token and webhook secret stored in the AWS emulator, never puts either
//! into an output, an error or a log line (logs captured from a tracing subscriber into a buffer).
//!
//! One test in this binary: it installs the process-wide subscriber.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use common::{answer, push_input, FakeGitHub, EXECUTION_ARN, SECRET, SHA, TOKEN};
use labflow_github_status::{CommitState, ErrorInfo};
use labflow_github_webhook::{signature, Secret};
use serde_json::{json, Value};
use tracing_subscriber::fmt::MakeWriter;

/// Everything the subscriber writes, shared with the test.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn text(&self) -> String {
        self.0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Write for Buffer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(data);
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Every output and error seen, as text.
#[derive(Default)]
struct Seen(Vec<(String, String)>);

impl Seen {
    fn record<T: std::fmt::Debug + serde::Serialize, E: std::fmt::Debug + std::fmt::Display>(
        &mut self,
        what: &str,
        result: &Result<T, E>,
    ) {
        let text = match result {
            Ok(out) => format!("{out:?} {}", serde_json::to_string(out).unwrap_or_default()),
            Err(err) => format!("{err:?} {err}"),
        };
        self.0.push((what.to_string(), text));
    }
}

fn function_url_request(headers: &[(&str, &str)], body: &str) -> Result<LambdaFunctionUrlRequest> {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    Ok(serde_json::from_value(json!({
        "version": "2.0",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous", "requestId": "r-1",
            "domainName": "abc.lambda-url.eu-west-1.on.aws", "timeEpoch": 1_700_000_000_000_i64,
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.1", "userAgent": "GitHub-Hookshot/1"}
        },
        "body": body,
        "isBase64Encoded": false,
    }))?)
}

fn signed(event: &str, delivery: &str, body: &str) -> Result<LambdaFunctionUrlRequest> {
    let sig = signature::sign(&Secret::new(SECRET), body.as_bytes());
    function_url_request(
        &[
            ("content-type", "application/json"),
            ("x-github-event", event),
            ("x-github-delivery", delivery),
            ("x-hub-signature-256", &sig),
        ],
        body,
    )
}

fn push_body(git_ref: &str, deleted: bool) -> String {
    json!({
        "ref": git_ref, "before": SHA, "after": if deleted { "0".repeat(40) } else { SHA.to_string() },
        "deleted": deleted,
        "repository": {"full_name": common::REPOSITORY, "pushed_at": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()},
        "pusher": {"name": "octocat"}, "commits": []
    })
    .to_string()
}

#[tokio::test]
async fn no_handler_leaks_the_token_or_the_webhook_secret() -> Result<()> {
    let logs = Buffer::default();
    // Our crates at the most verbose level; dependencies at the level the Lambdas run with.
    let filter = tracing_subscriber::EnvFilter::new(
        "info,labflow_core=trace,labflow_github_status=trace,labflow_github_webhook=trace,labflow_run_guard=trace",
    );
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(logs.clone())
        .try_init()
        .map_err(|e| anyhow::anyhow!("subscriber: {e}"))?;

    let clients = common::clients().await?;
    common::put(&clients, "/labflow/github/token", TOKEN, true).await?;
    common::put(&clients, "/labflow/github/webhook-secret", SECRET, true).await?;
    common::put(
        &clients,
        "/labflow/environments/lab",
        &common::EXAMPLE_CONFIG,
        false,
    )
    .await?;
    // A prefix environment: its Flux follows env/preview.
    let mut preview = labflow_testkit::config::example_config();
    preview["flux"]["repository"]["branch"] = json!("env/preview");
    common::put(
        &clients,
        "/labflow/environments/preview",
        &preview.to_string(),
        false,
    )
    .await?;
    common::put(
        &clients,
        "/labflow/webhook/routes",
        &json!({"routes": [
            {"branch": "main", "environment": "lab"},
            {"branch": "orphan", "environment": "ghost"},
            {"prefix": "env/", "environment": "*"},
        ]})
        .to_string(),
        false,
    )
    .await?;
    let state_machine = clients
        .sfn
        .create_state_machine()
        .name("secrets-sm")
        .definition(r#"{"StartAt":"Done","States":{"Done":{"Type":"Succeed"}}}"#)
        .role_arn("arn:aws:iam::123456789012:role/x")
        .send()
        .await?
        .state_machine_arn()
        .to_string();
    let mut seen = Seen::default();

    // github-webhook: every kind of delivery, good and bad.
    let webhook =
        labflow_github_webhook::Ctx::new(&clients, &state_machine, Duration::from_secs(300));
    let push = push_body("refs/heads/main", false);
    let wrong_sig = signature::sign(&Secret::new("not-the-secret"), push.as_bytes());
    let requests = vec![
        ("push", signed("push", "d-1", &push)?),
        ("redelivery", signed("push", "d-1", &push)?),
        (
            "ping",
            signed("ping", "d-2", r#"{"zen":"Keep it logically awesome."}"#)?,
        ),
        (
            "tag",
            signed("push", "d-3", &push_body("refs/tags/v1", false))?,
        ),
        (
            "unrouted",
            signed("push", "d-4", &push_body("refs/heads/other", false))?,
        ),
        (
            "deletion",
            signed("push", "d-5", &push_body("refs/heads/env/preview", true))?,
        ),
        (
            "prefix reaching an exact route",
            signed("push", "d-5b", &push_body("refs/heads/env/lab", true))?,
        ),
        (
            "orphan",
            signed("push", "d-6", &push_body("refs/heads/orphan", false))?,
        ),
        ("malformed", signed("push", "d-7", "{not json")?),
        (
            "bad signature",
            function_url_request(
                &[
                    ("content-type", "application/json"),
                    ("x-github-event", "push"),
                    ("x-github-delivery", "d-8"),
                    ("x-hub-signature-256", &wrong_sig),
                ],
                &push,
            )?,
        ),
        (
            "no signature",
            function_url_request(&[("x-github-event", "push")], &push)?,
        ),
    ];
    let mut statuses = Vec::new();
    for (what, request) in requests {
        let response = labflow_github_webhook::handle(&webhook, request).await;
        statuses.push((what, response.status_code));
        seen.record::<_, std::convert::Infallible>(
            &format!("webhook {what}"),
            &Ok(json!({"status": response.status_code, "body": response.body})),
        );
    }
    // The scenarios really ran (a leak check over nothing would prove nothing).
    assert_eq!(
        statuses,
        vec![
            ("push", 202),
            ("redelivery", 202),
            ("ping", 200),
            ("tag", 202),
            ("unrouted", 202),
            ("deletion", 202),
            ("prefix reaching an exact route", 403),
            ("orphan", 422),
            ("malformed", 400),
            ("bad signature", 401),
            ("no signature", 401),
        ]
    );

    // github-status: posted, retried then refused (GitHub echoing the token), exhausted, skipped.
    let github = FakeGitHub::start(vec![
        answer(502, &[], json!({"message": "Bad Gateway"})),
        answer(
            401,
            &[],
            json!({"message": format!("Bad credentials for {TOKEN}")}),
        ),
        answer(500, &[], json!({"message": format!("oops {TOKEN}")})),
        answer(500, &[], json!({"message": format!("oops {TOKEN}")})),
        answer(500, &[], json!({"message": format!("oops {TOKEN}")})),
        answer(500, &[], json!({"message": format!("oops {TOKEN}")})),
    ])
    .await?;
    let status = labflow_github_status::Ctx::new(&clients, Some(&github.url))?
        .with_retry(common::fast_retry());
    let failure = Some(ErrorInfo {
        error: Some("labflow.ComponentFailed".into()),
        cause: Some(
            r#"{"errorType":"labflow.ComponentFailed","errorMessage":"istiod Stalled"}"#.into(),
        ),
    });
    let status_inputs = [
        (
            "refused",
            CommitState::Pending,
            push_input("lab", "sync"),
            None,
        ),
        (
            "exhausted",
            CommitState::Failure,
            push_input("lab", "sync"),
            failure.clone(),
        ),
        (
            "posted",
            CommitState::Success,
            push_input("lab", "sync"),
            None,
        ),
        (
            "skipped",
            CommitState::Success,
            json!({"action": "teardown-all", "source": {"kind": "schedule"}}),
            None,
        ),
    ];
    let mut phases = Vec::new();
    for (what, state, execution_input, error) in status_inputs {
        let result = labflow_github_status::handle(
            &status,
            labflow_github_status::Input {
                state,
                execution_arn: EXECUTION_ARN.into(),
                execution_input,
                error,
            },
        )
        .await;
        phases.push((
            what,
            result
                .as_ref()
                .map(|o| o.phase.clone())
                .map_err(|e| e.name()),
        ));
        seen.record(&format!("status {what}"), &result);
    }
    assert_eq!(
        phases,
        vec![
            ("refused", Ok("refused".to_string())),
            ("exhausted", Err("labflow.Transient")),
            ("posted", Ok("posted".to_string())),
            ("skipped", Ok("skipped".to_string())),
        ]
    );
    // The token did reach GitHub, so its absence elsewhere means something.
    assert!(github
        .requests()
        .iter()
        .all(|r| r.header("authorization") == format!("Bearer {TOKEN}")));

    // run-guard: acquire, a second acquire (lock held), an invalid input, release, list.
    let guard = labflow_run_guard::Ctx::new(&clients, Duration::from_secs(3600));
    let holder = clients
        .sfn
        .start_execution()
        .state_machine_arn(&state_machine)
        .name("secrets-holder")
        .input("{}")
        .send()
        .await?
        .execution_arn()
        .to_string();
    let other = format!("{state_machine}:other").replace(":stateMachine:", ":execution:");
    let guard_inputs = vec![
        (
            "acquire",
            json!({"operation": "acquire", "executionArn": holder, "executionInput": push_input("lab", "sync")}),
        ),
        (
            "held",
            json!({"operation": "acquire", "executionArn": other, "executionInput": push_input("lab", "sync")}),
        ),
        (
            "invalid",
            json!({"operation": "acquire", "executionArn": holder,
                   "executionInput": {"action": "teardown-all", "environment": "ghost", "source": {"kind": "console"}, "extra": true}}),
        ),
        (
            "release",
            json!({"operation": "release", "executionArn": holder, "environment": "lab"}),
        ),
        ("list", json!({"operation": "list"})),
    ];
    let mut guard_results = Vec::new();
    for (what, payload) in guard_inputs {
        let input: labflow_run_guard::Input = labflow_core::lambda::decode_input(payload)
            .with_context(|| format!("run-guard {what}"))?;
        let result = labflow_run_guard::handle(&guard, input).await;
        guard_results.push((what, result.as_ref().map(|_| ()).map_err(|e| e.name())));
        seen.record(&format!("run-guard {what}"), &result);
    }
    assert_eq!(
        guard_results,
        vec![
            ("acquire", Ok(())),
            ("held", Err("labflow.LockHeld")),
            ("invalid", Err("labflow.InvalidInput")),
            ("release", Ok(())),
            ("list", Ok(())),
        ]
    );

    // The checks.
    let mut leaks = Vec::new();
    for (what, text) in &seen.0 {
        for (name, secret) in [("token", TOKEN), ("webhook secret", SECRET)] {
            if text.contains(secret) {
                leaks.push(format!("{what} output/error contains the {name}: {text}"));
            }
        }
    }
    let captured = logs.text();
    for line in captured.lines() {
        for (name, secret) in [("token", TOKEN), ("webhook secret", SECRET)] {
            if line.contains(secret) {
                leaks.push(format!("log line contains the {name}: {line}"));
            }
        }
    }
    if !leaks.is_empty() {
        bail!("secrets leaked:\n{}", leaks.join("\n"));
    }
    // The capture worked: each crate's handler logged through it.
    for expected in [
        "webhook answered",
        "commit status reported",
        "GitHub status request will be retried",
        "no commit to mark",
        "lock acquired",
        "lock released",
    ] {
        assert!(
            captured.contains(expected),
            "no {expected:?} in the logs:\n{captured}"
        );
    }
    assert!(captured.lines().count() >= 15, "{captured}");
    Ok(())
}
