//! github-status against a local stand-in for the GitHub API (token from the AWS emulator).

mod common;

use anyhow::{bail, Result};
use common::{answer, push_input, FakeGitHub, EXECUTION_ARN, SHA, TOKEN};
use labflow_core::StepError;
use labflow_github_status::{handle, CommitState, ErrorInfo, Input};
use serde_json::{json, Value};

fn input(state: CommitState, execution_input: Value, error: Option<ErrorInfo>) -> Input {
    Input {
        state,
        execution_arn: EXECUTION_ARN.to_string(),
        execution_input,
        error,
    }
}

const CONSOLE_URL: &str = "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/arn:aws:states:eu-west-1:123456789012:execution:labflow-lifecycle:push-abc";

#[tokio::test]
async fn pending_is_posted_on_the_pushed_commit_with_token_context_and_link() -> Result<()> {
    let github = FakeGitHub::start(vec![]).await?;
    let ctx = common::ctx(&github).await?;
    let out = handle(
        &ctx,
        input(CommitState::Pending, push_input("lab", "sync"), None),
    )
    .await?;
    assert!(out.posted && out.done, "{out:?}");
    assert_eq!(out.phase, "posted");
    assert_eq!(out.status, Some(201));
    assert_eq!(out.attempts, 1);

    let requests = github.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.path,
        format!("/repos/{}/statuses/{SHA}", common::REPOSITORY)
    );
    assert_eq!(r.header("authorization"), format!("Bearer {TOKEN}"));
    assert_eq!(r.header("accept"), "application/vnd.github+json");
    assert_eq!(r.header("x-github-api-version"), "2022-11-28");
    assert!(r.header("user-agent").starts_with("labflow-github-status/"));
    assert!(r.header("content-type").starts_with("application/json"));
    assert_eq!(
        r.body,
        json!({
            "state": "pending",
            "context": "labflow/lab",
            "description": "sync of lab running",
            "target_url": CONSOLE_URL,
        })
    );
    // The report says what was posted and never carries the token.
    assert_eq!(out.target_url.as_deref(), Some(CONSOLE_URL));
    assert!(!serde_json::to_string(&out)?.contains(TOKEN));
    Ok(())
}

#[tokio::test]
async fn server_errors_are_retried_until_github_accepts() -> Result<()> {
    let github = FakeGitHub::start(vec![
        answer(502, &[], json!({"message": "Bad Gateway"})),
        answer(503, &[], json!({"message": "Service Unavailable"})),
    ])
    .await?;
    let ctx = common::ctx(&github).await?;
    let out = handle(
        &ctx,
        input(CommitState::Success, push_input("lab", "sync"), None),
    )
    .await?;
    assert!(out.posted, "{out:?}");
    assert_eq!(out.attempts, 3);
    let requests = github.requests();
    assert_eq!(requests.len(), 3);
    // Every retry sends the same status.
    for r in &requests {
        assert_eq!(r.body["state"], "success");
        assert_eq!(
            r.body["description"],
            "sync done: lab is healthy at this commit"
        );
    }
    Ok(())
}

#[tokio::test]
async fn persistent_server_errors_end_as_transient_after_the_bounded_attempts() -> Result<()> {
    let github = FakeGitHub::start(vec![answer(500, &[], json!({"message": "boom"})); 10]).await?;
    let ctx = common::ctx(&github).await?;
    match handle(
        &ctx,
        input(CommitState::Pending, push_input("lab", "sync"), None),
    )
    .await
    {
        Err(StepError::Transient(msg)) => {
            assert!(
                msg.contains("HTTP 500") && msg.contains("4 attempts"),
                "{msg}"
            )
        }
        other => bail!("expected Transient, got {other:?}"),
    }
    assert_eq!(github.requests().len(), 4);
    Ok(())
}

#[tokio::test]
async fn validation_error_422_is_reported_not_thrown_and_not_retried() -> Result<()> {
    let github = FakeGitHub::start(vec![answer(
        422,
        &[],
        json!({
            "message": "Validation Failed",
            "errors": [{"resource": "Status", "code": "custom",
                        "message": "This SHA and context has reached the maximum number of statuses."}],
            "documentation_url": "https://docs.github.com/rest/commits/statuses#create-a-commit-status"
        }),
    )])
    .await?;
    let ctx = common::ctx(&github).await?;
    let out = handle(
        &ctx,
        input(CommitState::Pending, push_input("lab", "sync"), None),
    )
    .await?;
    assert!(!out.posted, "{out:?}");
    assert_eq!(out.phase, "refused");
    assert_eq!(out.status, Some(422));
    let reason = out.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("Validation Failed") && reason.contains("maximum number of statuses"),
        "{reason}"
    );
    assert_eq!(github.requests().len(), 1);
    Ok(())
}

#[tokio::test]
async fn forbidden_without_rate_limit_signs_is_refused_but_rate_limits_are_retried() -> Result<()> {
    let reset_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        .to_string();
    let github = FakeGitHub::start(vec![
        answer(
            429,
            &[("retry-after", "0")],
            json!({"message": "too many"}),
        ),
        answer(
            403,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset_now),
            ],
            json!({"message": "API rate limit exceeded"}),
        ),
        answer(
            403,
            &[],
            json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}),
        ),
    ])
    .await?;
    let ctx = common::ctx(&github).await?;
    let out = handle(
        &ctx,
        input(CommitState::Pending, push_input("lab", "sync"), None),
    )
    .await?;
    assert!(out.posted, "{out:?}");
    assert_eq!(out.attempts, 4);

    // A plain 403 is a permission problem: reported once, not retried.
    let github = FakeGitHub::start(vec![answer(
        403,
        &[("x-ratelimit-remaining", "4999")],
        json!({"message": "Resource not accessible by personal access token"}),
    )])
    .await?;
    let ctx = common::ctx(&github).await?;
    let out = handle(
        &ctx,
        input(CommitState::Pending, push_input("lab", "sync"), None),
    )
    .await?;
    assert_eq!((out.posted, out.status), (false, Some(403)), "{out:?}");
    assert!(out
        .reason
        .unwrap_or_default()
        .contains("Resource not accessible"));
    assert_eq!(github.requests().len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_rate_limit_asking_for_a_long_wait_is_left_to_the_state_machine() -> Result<()> {
    let github = FakeGitHub::start(vec![answer(
        403,
        &[("retry-after", "3600")],
        json!({"message": "secondary rate limit"}),
    )])
    .await?;
    let ctx = common::ctx(&github).await?;
    let started = std::time::Instant::now();
    match handle(
        &ctx,
        input(CommitState::Pending, push_input("lab", "sync"), None),
    )
    .await
    {
        Err(StepError::Transient(msg)) => assert!(msg.contains("3600"), "{msg}"),
        other => bail!("expected Transient, got {other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(github.requests().len(), 1);
    Ok(())
}

#[tokio::test]
async fn executions_without_a_sha_are_skipped_without_calling_github() -> Result<()> {
    let github = FakeGitHub::start(vec![]).await?;
    let ctx = common::ctx(&github).await?;
    let mut no_sha = push_input("lab", "sync");
    if let Some(source) = no_sha["source"].as_object_mut() {
        source.remove("sha");
    }
    let mut zero_sha = push_input("lab", "teardown");
    zero_sha["source"]["sha"] = json!("0".repeat(40));
    let cases = [
        (
            json!({"action": "sync", "environment": "lab", "source": {"kind": "console"}}),
            "not started by a GitHub push",
        ),
        (
            json!({"action": "teardown-all", "source": {"kind": "schedule"}}),
            "not started by a GitHub push",
        ),
        (no_sha, "no commit sha"),
        (zero_sha, "not a commit id"),
        (json!({"action": "sync"}), "no source"),
        (json!("not even an object"), "no source"),
    ];
    for (execution_input, why) in cases {
        for state in [
            CommitState::Pending,
            CommitState::Success,
            CommitState::Failure,
        ] {
            let out = handle(&ctx, input(state, execution_input.clone(), None)).await?;
            assert_eq!(out.phase, "skipped", "{execution_input}: {out:?}");
            assert!(!out.posted);
            let skipped = out.skipped.unwrap_or_default();
            assert!(skipped.contains(why), "{execution_input}: {skipped}");
        }
    }
    assert!(github.requests().is_empty(), "{:?}", github.requests());
    Ok(())
}

#[tokio::test]
async fn failure_names_the_error_not_its_cause_and_run_errors_post_error() -> Result<()> {
    let github = FakeGitHub::start(vec![]).await?;
    let ctx = common::ctx(&github).await?;
    // A Lambda's Cause is the JSON of its error; a Flux message names what broke.
    let cause = json!({
        "errorType": "labflow.ComponentFailed",
        "errorMessage": "HelmRelease istio-system/istiod is Stalled: install retries exhausted",
    })
    .to_string();
    let out = handle(
        &ctx,
        input(
            CommitState::Failure,
            push_input("lab", "sync"),
            Some(ErrorInfo {
                error: Some("labflow.ComponentFailed".into()),
                cause: Some(cause),
            }),
        ),
    )
    .await?;
    assert!(out.posted);
    assert_eq!(out.state, Some(CommitState::Failure));
    // The run broke (an AWS error whose text names the account), not the commit → `error`.
    let aws_cause = "AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/labflow-ensure-cluster/x is not authorized to perform: eks:CreateCluster";
    let out = handle(
        &ctx,
        input(
            CommitState::Failure,
            push_input("lab", "sync"),
            Some(ErrorInfo {
                error: Some("labflow.Transient".into()),
                cause: Some(aws_cause.into()),
            }),
        ),
    )
    .await?;
    assert_eq!(out.state, Some(CommitState::Error));

    let requests = github.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body["state"], "failure");
    assert_eq!(
        requests[0].body["description"],
        "sync of lab failed (ComponentFailed); details in the linked execution"
    );
    assert_eq!(requests[0].body["context"], "labflow/lab");
    assert_eq!(requests[0].body["target_url"], CONSOLE_URL);
    assert_eq!(requests[1].body["state"], "error");
    assert_eq!(
        requests[1].body["description"],
        "sync of lab failed (Transient); details in the linked execution"
    );
    Ok(())
}

#[tokio::test]
async fn statuses_go_only_to_the_repository_the_environment_syncs() -> Result<()> {
    // The console starts an execution with any input: one naming another repository (or an
    // environment without config, or none) must not get a status posted with our token.
    let github = FakeGitHub::start(vec![]).await?;
    let ctx = common::ctx(&github).await?;
    let mut other_repository = push_input("lab", "sync");
    other_repository["source"]["repository"] = json!("victim/production");
    let mut no_environment = push_input("lab", "teardown-all");
    if let Some(input) = no_environment.as_object_mut() {
        input.remove("environment");
    }
    let cases = [
        (other_repository, "syncs \"example/labflow\""),
        (push_input("ghost", "sync"), "has no config"),
        (no_environment, "names no environment"),
    ];
    for (execution_input, why) in cases {
        for state in [
            CommitState::Pending,
            CommitState::Success,
            CommitState::Failure,
        ] {
            let out = handle(&ctx, input(state, execution_input.clone(), None)).await?;
            assert_eq!(out.phase, "skipped", "{execution_input}: {out:?}");
            let skipped = out.skipped.unwrap_or_default();
            assert!(skipped.contains(why), "{execution_input}: {skipped}");
        }
    }
    assert!(github.requests().is_empty(), "{:?}", github.requests());
    // The configured repository, its name in another case, is the same repository.
    let mut same = push_input("lab", "sync");
    same["source"]["repository"] = json!("Example/LabFlow");
    let out = handle(&ctx, input(CommitState::Pending, same, None)).await?;
    assert!(out.posted, "{out:?}");
    Ok(())
}

#[tokio::test]
async fn teardown_success_after_a_branch_deletion_says_torn_down() -> Result<()> {
    let github = FakeGitHub::start(vec![]).await?;
    let ctx = common::ctx(&github).await?;
    let out = handle(
        &ctx,
        input(CommitState::Success, push_input("feat-x", "teardown"), None),
    )
    .await?;
    assert!(out.posted);
    let requests = github.requests();
    assert_eq!(requests[0].body["description"], "feat-x torn down");
    assert_eq!(requests[0].body["context"], "labflow/feat-x");
    Ok(())
}

#[tokio::test]
async fn github_echoing_the_token_is_redacted_from_the_report() -> Result<()> {
    let github = FakeGitHub::start(vec![answer(
        401,
        &[],
        json!({"message": format!("Bad credentials: Bearer {TOKEN}")}),
    )])
    .await?;
    let ctx = common::ctx(&github).await?;
    let out = handle(
        &ctx,
        input(CommitState::Pending, push_input("lab", "sync"), None),
    )
    .await?;
    assert_eq!(out.status, Some(401));
    let reason = out.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("Bad credentials: Bearer <redacted>"),
        "{reason}"
    );
    assert!(!serde_json::to_string(&out)?.contains(TOKEN));
    Ok(())
}

/// The Report* states of the real state machine decode into `Input` (the ASL and this crate
/// agree on the shape).
#[test]
fn the_state_machines_report_parameters_decode_into_input() -> Result<()> {
    let asl: Value =
        serde_json::from_str(include_str!("../../../state-machine/lifecycle.asl.json"))?;
    let mut seen = Vec::new();
    for (name, state) in asl["States"].as_object().into_iter().flatten() {
        if state["Resource"] != "${GithubStatusArn}" {
            continue;
        }
        let Some(params) = state["Parameters"].as_object() else {
            bail!("{name} has no Parameters");
        };
        // Stand in for each path the way Step Functions resolves it.
        let mut payload = serde_json::Map::new();
        for (key, value) in params {
            match key.strip_suffix(".$") {
                Some("executionArn") => payload.insert("executionArn".into(), json!(EXECUTION_ARN)),
                Some("executionInput") => {
                    payload.insert("executionInput".into(), push_input("lab", "sync"))
                }
                Some("error") => payload.insert(
                    "error".into(),
                    json!({"Error": "labflow.Transient", "Cause": "x"}),
                ),
                Some(other) => bail!("{name}: unexpected path parameter {other}"),
                None => payload.insert(key.clone(), value.clone()),
            };
        }
        let decoded: Input = labflow_core::lambda::decode_input(Value::Object(payload))
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        seen.push((name.clone(), decoded.state));
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        vec![
            ("ReportFailure".to_string(), CommitState::Failure),
            ("ReportPending".to_string(), CommitState::Pending),
            ("ReportSuccess".to_string(), CommitState::Success),
        ]
    );
    Ok(())
}
