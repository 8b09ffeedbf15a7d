//! The webhook against the AWS emulator: real signed payloads in, responses and the executions
//! started in the emulator's Step Functions out.

mod common;

use anyhow::Result;
use base64::Engine;
use common::{executions, push_body, reply, request, signed, SHA_A, SHA_B};
use labflow_github_webhook::{handle, signature, Outcome, Reply, Secret, MAX_BODY_BYTES};
use serde_json::json;

#[tokio::test]
async fn push_to_an_exact_route_starts_one_sync() -> Result<()> {
    let (ctx, clients, world) = common::ctx().await?;
    let body = push_body("refs/heads/main", SHA_B, SHA_A, false);
    let response = handle(&ctx, signed("push", "d-main-1", &body)?).await;
    assert_eq!(response.status_code, 202, "{:?}", response.body);
    let r = reply(&response)?;
    assert_eq!(r.outcome, Outcome::Started);
    assert_eq!(r.redelivery, Some(false));
    let started = executions(&clients, &ctx).await?;
    assert_eq!(started.len(), 1);
    assert_eq!(Some(&started[0].0), r.execution_arn.as_ref());
    assert_eq!(
        started[0].1,
        json!({"action": "sync", "environment": world.main_env, "source": {
            "kind": "github", "repository": common::REPOSITORY, "branch": "main", "sha": SHA_A,
            "deliveryId": "d-main-1", "pusher": "octocat"}})
    );
    // The input is exactly what run-guard and the other steps decode.
    let typed: labflow_core::contract::ExecutionInput =
        serde_json::from_value(started[0].1.clone())?;
    assert_eq!(typed.source.target_sha(), Some(SHA_A));
    Ok(())
}

#[tokio::test]
async fn redelivery_starts_no_second_execution() -> Result<()> {
    let (ctx, clients, _) = common::ctx().await?;
    let body = push_body("refs/heads/main", SHA_B, SHA_A, false);
    let first = reply(&handle(&ctx, signed("push", "d-redeliver", &body)?).await)?;
    let again = handle(&ctx, signed("push", "d-redeliver", &body)?).await;
    assert_eq!(again.status_code, 202);
    let again = reply(&again)?;
    assert_eq!(again.redelivery, Some(true));
    assert_eq!(again.execution_arn, first.execution_arn);
    assert_eq!(executions(&clients, &ctx).await?.len(), 1);

    // Still exactly once after the first execution finished.
    let arn = first.execution_arn.clone().unwrap_or_default();
    clients
        .sfn
        .stop_execution()
        .execution_arn(&arn)
        .send()
        .await?;
    let late = reply(&handle(&ctx, signed("push", "d-redeliver", &body)?).await)?;
    assert_eq!(
        (late.redelivery, late.execution_arn),
        (Some(true), Some(arn))
    );
    assert_eq!(executions(&clients, &ctx).await?.len(), 1);

    // A new delivery of another push is a new execution.
    let other = push_body("refs/heads/main", SHA_A, SHA_B, false);
    let second = reply(&handle(&ctx, signed("push", "d-redeliver-2", &other)?).await)?;
    assert_eq!(second.redelivery, Some(false));
    assert_eq!(executions(&clients, &ctx).await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn prefix_route_syncs_and_branch_deletion_tears_down() -> Result<()> {
    let (ctx, clients, world) = common::ctx().await?;
    let branch = format!("refs/heads/env/{}", world.prefix_env);
    let push = reply(
        &handle(
            &ctx,
            signed(
                "push",
                "d-prefix-1",
                &push_body(&branch, SHA_B, SHA_A, false),
            )?,
        )
        .await,
    )?;
    assert_eq!(
        (push.outcome, push.action),
        (Outcome::Started, Some(labflow_core::contract::Action::Sync))
    );
    assert_eq!(push.environment.as_deref(), Some(world.prefix_env.as_str()));

    let zero = "0".repeat(40);
    let response = handle(
        &ctx,
        signed(
            "push",
            "d-prefix-2",
            &push_body(&branch, SHA_A, &zero, true),
        )?,
    )
    .await;
    assert_eq!(response.status_code, 202);
    let deletion = reply(&response)?;
    assert_eq!(
        deletion.action,
        Some(labflow_core::contract::Action::Teardown)
    );
    let started = executions(&clients, &ctx).await?;
    assert_eq!(started.len(), 2);
    let teardown = started
        .iter()
        .find(|(arn, _)| Some(arn) == deletion.execution_arn.as_ref())
        .map(|(_, input)| input.clone())
        .unwrap_or_default();
    assert_eq!(teardown["action"], "teardown");
    assert_eq!(teardown["environment"], json!(world.prefix_env));
    // The deleted branch's last commit carries the status; the all-zero "after" is no commit.
    assert_eq!(teardown["source"]["sha"], SHA_A);
    Ok(())
}

#[tokio::test]
async fn deleting_an_exactly_routed_branch_tears_nothing_down() -> Result<()> {
    let (ctx, clients, _) = common::ctx().await?;
    let zero = "0".repeat(40);
    let response = handle(
        &ctx,
        signed(
            "push",
            "d-del-main",
            &push_body("refs/heads/main", SHA_A, &zero, true),
        )?,
    )
    .await;
    assert_eq!(response.status_code, 202);
    let r = reply(&response)?;
    assert_eq!(r.outcome, Outcome::Ignored);
    assert!(r.reason.unwrap_or_default().contains("prefix routes"));
    assert!(executions(&clients, &ctx).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn ping_tags_unrouted_branches_and_other_events() -> Result<()> {
    let (ctx, clients, _) = common::ctx().await?;
    let ping = handle(
        &ctx,
        signed(
            "ping",
            "d-ping",
            r#"{"zen":"Keep it logically awesome.","hook_id":1}"#,
        )?,
    )
    .await;
    assert_eq!(ping.status_code, 200);
    assert_eq!(reply(&ping)?.outcome, Outcome::Pong);

    let cases = [
        (
            "push",
            push_body("refs/tags/v1.0.0", SHA_B, SHA_A, false),
            "tag",
        ),
        (
            "push",
            push_body("refs/heads/feature/x", SHA_B, SHA_A, false),
            "not routed",
        ),
        (
            "push",
            push_body("refs/heads/env/", SHA_B, SHA_A, false),
            "not routed",
        ),
        (
            "issues",
            json!({"action": "opened"}).to_string(),
            "not handled",
        ),
    ];
    for (i, (event, body, reason)) in cases.iter().enumerate() {
        let response = handle(&ctx, signed(event, &format!("d-ign-{i}"), body)?).await;
        assert_eq!(response.status_code, 202, "{event}: {:?}", response.body);
        let r = reply(&response)?;
        assert_eq!(r.outcome, Outcome::Ignored);
        assert!(
            r.reason.as_deref().unwrap_or_default().contains(reason),
            "{r:?}"
        );
    }
    assert!(executions(&clients, &ctx).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn route_to_an_environment_without_config_is_422() -> Result<()> {
    let (ctx, clients, world) = common::ctx().await?;
    for (i, branch) in [
        "refs/heads/orphan".to_string(),
        format!("refs/heads/env/{}", common::unique("nocfg")),
    ]
    .iter()
    .enumerate()
    {
        let response = handle(
            &ctx,
            signed(
                "push",
                &format!("d-orphan-{i}"),
                &push_body(branch, SHA_B, SHA_A, false),
            )?,
        )
        .await;
        assert_eq!(response.status_code, 422, "{:?}", response.body);
        let r = reply(&response)?;
        assert!(r.reason.unwrap_or_default().contains("is not configured"));
    }
    let bad_name = handle(
        &ctx,
        signed(
            "push",
            "d-badname",
            &push_body("refs/heads/env/Not_Valid", SHA_B, SHA_A, false),
        )?,
    )
    .await;
    assert_eq!(bad_name.status_code, 422);
    assert!(reply(
        &handle(
            &ctx,
            signed(
                "push",
                "d-orphan-0",
                &push_body("refs/heads/orphan", SHA_B, SHA_A, false)
            )?
        )
        .await
    )?
    .environment
    .is_some_and(|e| e == world.orphan_env));
    assert!(executions(&clients, &ctx).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn bad_or_missing_signatures_are_401_and_start_nothing() -> Result<()> {
    let (ctx, clients, _) = common::ctx().await?;
    let body = push_body("refs/heads/main", SHA_B, SHA_A, false);
    let good = signature::sign(&Secret::new(common::SECRET), body.as_bytes());
    let wrong_secret = signature::sign(&Secret::new("not-the-secret"), body.as_bytes());
    let other_body = signature::sign(&Secret::new(common::SECRET), b"{}");
    let truncated = good[..good.len() - 2].to_string();
    let sha1_style = good.replacen("sha256=", "sha1=", 1);
    for sig in [
        Some(wrong_secret.as_str()),
        Some(other_body.as_str()),
        Some(truncated.as_str()),
        Some(sha1_style.as_str()),
        Some(""),
        None,
    ] {
        let mut headers = vec![
            ("content-type", "application/json"),
            ("x-github-event", "push"),
            ("x-github-delivery", "d-sig"),
        ];
        if let Some(sig) = sig {
            headers.push(("x-hub-signature-256", sig));
        }
        let response = handle(&ctx, request("POST", &headers, Some(&body), false)?).await;
        assert_eq!(response.status_code, 401, "signature {sig:?}");
        assert_eq!(reply(&response)?.outcome, Outcome::Rejected);
    }
    // Tampering with one byte of the body breaks the signature.
    let tampered = body.replace("octocat", "octocaT");
    let mut req = request(
        "POST",
        &[
            ("content-type", "application/json"),
            ("x-github-event", "push"),
            ("x-github-delivery", "d-sig"),
            ("x-hub-signature-256", &good),
        ],
        Some(&tampered),
        false,
    )?;
    assert_eq!(handle(&ctx, req.clone()).await.status_code, 401);
    req.body = Some(body.clone());
    assert_eq!(
        handle(&ctx, req).await.status_code,
        202,
        "the untampered body is accepted"
    );
    assert_eq!(executions(&clients, &ctx).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn oversize_malformed_and_wrong_method() -> Result<()> {
    let (ctx, clients, _) = common::ctx().await?;
    let huge = "x".repeat(MAX_BODY_BYTES + 1);
    let big = handle(&ctx, signed("push", "d-big", &huge)?).await;
    assert_eq!(big.status_code, 413);
    let encoded = base64::engine::general_purpose::STANDARD.encode(huge.as_bytes());
    let big64 = handle(
        &ctx,
        request("POST", &[("x-github-event", "push")], Some(&encoded), true)?,
    )
    .await;
    assert_eq!(big64.status_code, 413);

    let not_json = handle(&ctx, signed("push", "d-nj", "{\"ref\": ")?).await;
    assert_eq!(not_json.status_code, 400);
    let array = handle(&ctx, signed("push", "d-arr", "[1,2]")?).await;
    assert_eq!(array.status_code, 400);
    let missing_fields = handle(
        &ctx,
        signed("push", "d-mf", r#"{"ref":"refs/heads/main"}"#)?,
    )
    .await;
    assert_eq!(missing_fields.status_code, 400);

    let body = push_body("refs/heads/main", SHA_B, SHA_A, false);
    let sig = signature::sign(&Secret::new(common::SECRET), body.as_bytes());
    let form = request(
        "POST",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-github-event", "push"),
            ("x-github-delivery", "d-form"),
            ("x-hub-signature-256", &sig),
        ],
        Some(&body),
        false,
    )?;
    assert_eq!(handle(&ctx, form).await.status_code, 400);
    let no_delivery = request(
        "POST",
        &[
            ("content-type", "application/json"),
            ("x-github-event", "push"),
            ("x-hub-signature-256", &sig),
        ],
        Some(&body),
        false,
    )?;
    assert_eq!(handle(&ctx, no_delivery).await.status_code, 400);
    let get = request("GET", &[], None, false)?;
    assert_eq!(handle(&ctx, get).await.status_code, 405);
    assert!(executions(&clients, &ctx).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn base64_encoded_body_is_verified_on_the_decoded_bytes() -> Result<()> {
    let (ctx, clients, _) = common::ctx().await?;
    let body = push_body("refs/heads/main", SHA_B, SHA_A, false);
    let sig = signature::sign(&Secret::new(common::SECRET), body.as_bytes());
    let encoded = base64::engine::general_purpose::STANDARD.encode(body.as_bytes());
    let req = request(
        "POST",
        &[
            ("content-type", "application/json; charset=utf-8"),
            ("x-github-event", "push"),
            ("x-github-delivery", "d-b64"),
            ("x-hub-signature-256", &sig),
        ],
        Some(&encoded),
        true,
    )?;
    let response = handle(&ctx, req).await;
    assert_eq!(response.status_code, 202, "{:?}", response.body);
    assert_eq!(executions(&clients, &ctx).await?.len(), 1);
    Ok(())
}

/// Issue 18 item 12: GitHub sends payloads of up to 25 MB; a Function URL hands the function at
/// most 6 MB (Lambda's synchronous invocation payload quota), so everything up to that syncs and
/// only what Lambda itself could never deliver is refused, with the limit in the reason.
#[tokio::test]
async fn large_merge_push_syncs_and_only_what_a_function_url_cannot_deliver_is_413() -> Result<()> {
    let (ctx, clients, _) = common::ctx().await?;
    let big = common::push_body_with_commits("refs/heads/main", SHA_B, SHA_A, 1500);
    assert!(
        big.len() > 1024 * 1024 && big.len() < 6 * 1024 * 1024,
        "{} bytes",
        big.len()
    );
    let response = handle(&ctx, signed("push", "d-large-merge", &big)?).await;
    assert_eq!(response.status_code, 202, "{:?}", response.body);
    let r = reply(&response)?;
    assert_eq!((r.outcome, r.redelivery), (Outcome::Started, Some(false)));
    assert_eq!(executions(&clients, &ctx).await?.len(), 1);

    // Over what a Function URL delivers: refused, saying which limit.
    let huge = common::push_body_with_commits("refs/heads/main", SHA_A, SHA_B, 8000);
    assert!(huge.len() > 6 * 1024 * 1024, "{} bytes", huge.len());
    let response = handle(&ctx, signed("push", "d-huge-merge", &huge)?).await;
    assert_eq!(response.status_code, 413, "{:?}", response.body);
    let reason = reply(&response)?.reason.unwrap_or_default();
    assert!(
        reason.contains("6 MiB") && reason.contains("Function URL"),
        "{reason}"
    );
    assert_eq!(executions(&clients, &ctx).await?.len(), 1);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Issue 18 item 15: input checks.

/// A push of `branch` with a pusher name of `pusher`.
fn push_with(branch: &str, after: &str, deleted: bool, pusher: &str) -> String {
    let mut body: serde_json::Value =
        serde_json::from_str(&push_body(branch, SHA_B, after, deleted)).unwrap_or_default();
    body["pusher"]["name"] = json!(pusher);
    body.to_string()
}

#[tokio::test]
async fn branch_names_git_refuses_are_4xx_on_fixed_prefix_routes() -> Result<()> {
    let (ctx, clients, _) = common::ctx().await?;
    // `release/` routes to a fixed environment and copies the branch into the input verbatim.
    let long = format!("release/{}", "a".repeat(300));
    let refused = [
        "release/a..b",
        "release/with space",
        "release/tab\there",
        "release/ctl\u{1}x",
        "release/del\u{7f}x",
        "release/tilde~1",
        "release/caret^",
        "release/colon:x",
        "release/question?",
        "release/star*",
        "release/bracket[x",
        "release/back\\slash",
        "release/x.lock",
        "release/x.lock/y",
        "release/at@{1}",
        "release/trailing/",
        "release//double",
        "release/.hidden",
        "release/x/.hidden",
        "release/dot.",
        long.as_str(),
    ];
    for (i, branch) in refused.iter().enumerate() {
        let response = handle(
            &ctx,
            signed(
                "push",
                &format!("d-badref-{i}"),
                &push_body(&format!("refs/heads/{branch}"), SHA_B, SHA_A, false),
            )?,
        )
        .await;
        assert!(
            (400..500).contains(&response.status_code),
            "{branch:?}: {} {:?}",
            response.status_code,
            response.body
        );
        let r = reply(&response)?;
        assert_eq!(r.outcome, Outcome::Rejected, "{branch:?}");
        assert!(
            r.reason.as_deref().unwrap_or_default().contains("branch"),
            "{r:?}"
        );
    }
    assert!(executions(&clients, &ctx).await?.is_empty());
    // Names git accepts pass the name check and meet the next rule: the fixed environment's
    // Flux follows `main`, so a release/ push does not act on it (issue 26 item 1).
    for (i, branch) in ["release/v1.2", "release/feature/x-y_z", "release/@x"]
        .iter()
        .enumerate()
    {
        let response = handle(
            &ctx,
            signed(
                "push",
                &format!("d-goodref-{i}"),
                &push_body(&format!("refs/heads/{branch}"), SHA_B, SHA_A, false),
            )?,
        )
        .await;
        assert_eq!(response.status_code, 403, "{branch:?}: {:?}", response.body);
        let reason = reply(&response)?.reason.unwrap_or_default();
        assert!(reason.contains("follows branch"), "{branch:?}: {reason}");
    }
    Ok(())
}

#[tokio::test]
async fn an_all_zero_after_that_is_not_a_deletion_is_400() -> Result<()> {
    let (ctx, clients, _) = common::ctx().await?;
    let zero = "0".repeat(40);
    let response = handle(
        &ctx,
        signed(
            "push",
            "d-zero-after",
            &push_body("refs/heads/main", SHA_B, &zero, false),
        )?,
    )
    .await;
    assert_eq!(response.status_code, 400, "{:?}", response.body);
    assert!(reply(&response)?
        .reason
        .unwrap_or_default()
        .contains("deleted"));
    assert!(executions(&clients, &ctx).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn an_execution_input_over_256_kib_is_4xx_before_start_execution() -> Result<()> {
    let (ctx, clients, _) = common::ctx().await?;
    let body = push_with("refs/heads/main", SHA_A, false, &"p".repeat(300 * 1024));
    let response = handle(&ctx, signed("push", "d-big-input", &body)?).await;
    assert!(
        (400..500).contains(&response.status_code),
        "{} {:?}",
        response.status_code,
        response.body
    );
    let reason = reply(&response)?.reason.unwrap_or_default();
    assert!(reason.contains("262144"), "{reason}");
    assert!(executions(&clients, &ctx).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_header_with_a_non_ascii_value_is_invalid_not_missing() -> Result<()> {
    let (ctx, clients, _) = common::ctx().await?;
    let body = push_body("refs/heads/main", SHA_B, SHA_A, false);
    let sig = signature::sign(&Secret::new(common::SECRET), body.as_bytes());
    let base = [
        ("content-type", "application/json"),
        ("x-github-event", "push"),
        ("x-github-delivery", "d-ascii"),
        ("x-hub-signature-256", sig.as_str()),
    ];
    for (name, status) in [
        ("x-github-event", 400),
        ("x-github-delivery", 400),
        ("x-hub-signature-256", 401),
    ] {
        let headers: Vec<(&str, &str)> = base
            .iter()
            .map(|(k, v)| {
                if *k == name {
                    (*k, "d\u{e9}livr\u{e9}")
                } else {
                    (*k, *v)
                }
            })
            .collect();
        let response = handle(&ctx, request("POST", &headers, Some(&body), false)?).await;
        assert_eq!(response.status_code, status, "{name}: {:?}", response.body);
        let reason = reply(&response)?.reason.unwrap_or_default();
        assert!(
            reason.to_lowercase() == format!("invalid {name}"),
            "{name}: {reason}"
        );
    }
    assert!(executions(&clients, &ctx).await?.is_empty());
    Ok(())
}

/// GitHub may deliver the same event twice at once (a manual redelivery racing the original).
/// StartExecution with the same name and input is idempotent while the execution runs ("the
/// call succeeds and return[s] the same response as the original request",
/// https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html;
/// moto does the same: moto/stepfunctions/models.py, _handle_name_input_idempotency), so the
/// answer alone does not say who started it. Exactly one delivery may report a new execution.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicate_deliveries_start_once_and_only_the_starter_says_so() -> Result<()> {
    let (ctx, clients, _) = common::ctx().await?;
    let ctx = std::sync::Arc::new(ctx);
    let body = push_body("refs/heads/main", SHA_B, SHA_A, false);
    let mut tasks = tokio::task::JoinSet::new();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    for _ in 0..8 {
        let ctx = ctx.clone();
        let start = start.clone();
        let request = signed("push", "d-concurrent", &body)?;
        tasks.spawn(async move {
            start.wait().await;
            handle(&ctx, request).await
        });
    }
    let mut replies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let response = done?;
        assert_eq!(response.status_code, 202, "{:?}", response.body);
        replies.push(reply(&response)?);
    }
    let arns: std::collections::BTreeSet<_> =
        replies.iter().map(|r| r.execution_arn.clone()).collect();
    assert_eq!(arns.len(), 1, "{replies:?}");
    let new: Vec<_> = replies
        .iter()
        .filter(|r| r.redelivery == Some(false))
        .collect();
    assert_eq!(new.len(), 1, "exactly one started it: {replies:?}");
    assert_eq!(executions(&clients, &ctx).await?.len(), 1);
    Ok(())
}

// ---- who a push may reach (issue 26 item 1) ------------------------------------------------

/// Deliver a push (or a deletion) of `branch`; the reply's status and outcome, and how many
/// executions the state machine got.
async fn deliver(branch: &str, deleted: bool, delivery: &str) -> Result<(i64, Reply, usize)> {
    let (ctx, clients, _) = common::ctx().await?;
    let zero = "0".repeat(40);
    let (before, after) = if deleted {
        (SHA_A, zero.as_str())
    } else {
        (SHA_A, SHA_B)
    };
    let body = push_body(&format!("refs/heads/{branch}"), before, after, deleted);
    let response = handle(&ctx, signed("push", delivery, &body)?).await;
    let started = executions(&clients, &ctx).await?.len();
    Ok((response.status_code, reply(&response)?, started))
}

#[tokio::test]
async fn a_prefix_route_cannot_reach_an_environment_with_an_exact_route() -> Result<()> {
    // routes: main → main_env, env/ → *. Anyone who may push creates and deletes `env/<main_env>`.
    let world = common::world().await?;
    let branch = format!("env/{}", world.main_env);
    for (deleted, delivery) in [(false, "d-attack-push"), (true, "d-attack-delete")] {
        let (status, reply, started) = deliver(&branch, deleted, delivery).await?;
        assert_eq!(
            (status, reply.outcome, started),
            (403, Outcome::Rejected, 0),
            "{branch} (deleted: {deleted}) reached {}: {:?}",
            world.main_env,
            reply.reason
        );
        let reason = reply.reason.unwrap_or_default();
        assert!(reason.contains("exact route"), "{reason}");
    }
    Ok(())
}

#[tokio::test]
async fn a_push_acts_only_on_the_branch_the_environment_follows() -> Result<()> {
    // `release/` routes to main_env, whose Flux follows `main`: a sync for release/v1 would wait
    // for a revision that never comes, holding the lock.
    let world = common::world().await?;
    let (status, reply, started) = deliver("release/v1", false, "d-other-branch").await?;
    assert_eq!(
        (status, reply.outcome, started),
        (403, Outcome::Rejected, 0),
        "{:?}",
        reply.reason
    );
    let reason = reply.reason.unwrap_or_default();
    assert!(
        reason.contains(&format!("{:?} follows branch \"main\"", world.main_env)),
        "{reason}"
    );
    Ok(())
}

#[tokio::test]
async fn deleting_the_branch_of_a_protected_environment_tears_nothing_down() -> Result<()> {
    let clients = common::clients().await?;
    let env = common::unique("prot");
    common::seed_config(&clients, &env, &common::prefix_config(&env, true)).await?;
    let branch = format!("env/{env}");
    let (status, reply, started) = deliver(&branch, true, "d-protected-delete").await?;
    assert_eq!(
        (status, reply.outcome, started),
        (403, Outcome::Rejected, 0),
        "{:?}",
        reply.reason
    );
    assert!(reply.reason.unwrap_or_default().contains("protected"));
    // Pushes still sync it.
    let (status, reply, started) = deliver(&branch, false, "d-protected-push").await?;
    assert_eq!((status, reply.outcome, started), (202, Outcome::Started, 1));
    Ok(())
}

#[tokio::test]
async fn an_unauthenticated_request_learns_nothing_of_aws_when_the_secret_cannot_be_read(
) -> Result<()> {
    // The same emulator in a region where no secret is stored: reading it fails.
    let (ctx, _) = isolated("ap-southeast-2").await?;
    let body = push_body("refs/heads/main", SHA_A, SHA_B, false);
    let mut request = signed("push", "d-no-secret", &body)?;
    // Anyone can send this: the signature is made up.
    request
        .headers
        .insert("x-hub-signature-256", "sha256=00".parse()?);
    let response = handle(&ctx, request).await;
    assert_eq!(response.status_code, 500, "{:?}", response.body);
    let text = response.body.unwrap_or_default();
    for leak in [
        "/labflow/",
        "arn:",
        "123456789012",
        "ap-southeast-2",
        "ssm",
        "SSM",
    ] {
        assert!(!text.contains(leak), "the answer names {leak:?}: {text}");
    }
    Ok(())
}

// ---- which repository a push must come from (issue 26 item 5) ------------------------------

#[tokio::test]
async fn a_push_from_another_repository_signed_alike_does_not_reach_the_environment() -> Result<()>
{
    // An organisation webhook (or one secret on several repositories) signs every repository's
    // pushes with the same secret: a push to `main` of another repository, or of a repository of
    // the same name on another GitHub host, must not sync the environment that follows
    // `main` of example/labflow on github.com.
    let (ctx, clients, world) = common::ctx().await?;
    for (delivery, repository) in [
        (
            "d-other-repo",
            common::repository("github.com", "evil/labflow"),
        ),
        (
            "d-other-name",
            common::repository("github.com", "example/labflow-fork"),
        ),
        (
            "d-other-host",
            common::repository("ghe.corp.example", common::REPOSITORY),
        ),
    ] {
        let body = common::push_body_from(repository, "refs/heads/main", SHA_B, SHA_A, false);
        let response = handle(&ctx, signed("push", delivery, &body)?).await;
        let r = reply(&response)?;
        assert_eq!(
            (response.status_code, r.outcome),
            (403, Outcome::Rejected),
            "{delivery} reached {}: {:?}",
            world.main_env,
            r.reason
        );
        let reason = r.reason.unwrap_or_default();
        assert!(
            reason.contains("syncs repository \"example/labflow\""),
            "{reason}"
        );
    }
    assert_eq!(executions(&clients, &ctx).await?.len(), 0);
    // The repository's own push, its name in another case (GitHub names are case-insensitive),
    // still syncs.
    let body = common::push_body_from(
        common::repository("github.com", "Example/LabFlow"),
        "refs/heads/main",
        SHA_B,
        SHA_A,
        false,
    );
    let response = handle(&ctx, signed("push", "d-own-repo", &body)?).await;
    assert_eq!(response.status_code, 202, "{:?}", response.body);
    assert_eq!(executions(&clients, &ctx).await?.len(), 1);
    Ok(())
}

// ---- replays (issue 26 item 6) -------------------------------------------------------------

#[tokio::test]
async fn a_signed_body_replayed_under_a_new_delivery_id_starts_nothing() -> Result<()> {
    // X-GitHub-Delivery is not signed: whoever holds one signed body (a log, a proxy) can send it
    // again under a fresh id.
    let (ctx, clients, _) = common::ctx().await?;
    let body = push_body("refs/heads/main", SHA_B, SHA_A, false);
    let first = reply(&handle(&ctx, signed("push", "d-original", &body)?).await)?;
    assert_eq!(first.redelivery, Some(false));
    let replay = handle(&ctx, signed("push", "d-replayed-under-a-new-id", &body)?).await;
    assert_eq!(replay.status_code, 202, "{:?}", replay.body);
    let replay = reply(&replay)?;
    assert_eq!(replay.redelivery, Some(true), "{replay:?}");
    assert_eq!(replay.execution_arn, first.execution_arn);
    assert_eq!(executions(&clients, &ctx).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn pushes_older_than_githubs_redelivery_window_or_without_a_time_are_refused() -> Result<()> {
    let (ctx, clients, _) = common::ctx().await?;
    let day = 24 * 3600;
    let now = common::now_unix();
    let cases = [
        (
            "d-ten-days-old",
            json!(now - 10 * day),
            "older than GitHub's 3-day",
        ),
        (
            "d-four-days-old-iso",
            json!("2020-01-01T00:00:00Z"),
            "older than GitHub's 3-day",
        ),
        ("d-from-the-future", json!(now + day), "in the future"),
        ("d-no-time", serde_json::Value::Null, "pushed_at is missing"),
    ];
    for (delivery, pushed_at, why) in cases {
        let mut repository = common::repository("github.com", common::REPOSITORY);
        repository["pushed_at"] = pushed_at;
        let body = common::push_body_from(repository, "refs/heads/main", SHA_B, SHA_A, false);
        let response = handle(&ctx, signed("push", delivery, &body)?).await;
        let r = reply(&response)?;
        assert_eq!(
            (response.status_code, r.outcome),
            (400, Outcome::Rejected),
            "{delivery}: {:?}",
            r.reason
        );
        let reason = r.reason.unwrap_or_default();
        assert!(reason.contains(why), "{delivery}: {reason}");
    }
    assert_eq!(executions(&clients, &ctx).await?.len(), 0);
    // Within the window (a redelivery two days later) it acts; an ISO 8601 time is read too.
    for (delivery, pushed_at) in [
        ("d-two-days-old", json!(now - 2 * day)),
        (
            "d-iso-now",
            json!(chrono::DateTime::from_timestamp(now, 0)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default()),
        ),
    ] {
        let mut repository = common::repository("github.com", common::REPOSITORY);
        repository["pushed_at"] = pushed_at;
        let after = if delivery == "d-iso-now" {
            SHA_B
        } else {
            SHA_A
        };
        let body = common::push_body_from(repository, "refs/heads/main", SHA_A, after, false);
        let response = handle(&ctx, signed("push", delivery, &body)?).await;
        assert_eq!(response.status_code, 202, "{delivery}: {:?}", response.body);
    }
    assert_eq!(executions(&clients, &ctx).await?.len(), 2);
    Ok(())
}

// ---- the secret: rotation and Terraform's placeholder (issue 26 item 9) ---------------------

/// A webhook on the shared emulator in `region` (SSM parameters of its own), reading its secrets
/// afresh on every delivery.
async fn isolated(
    region: &'static str,
) -> Result<(labflow_github_webhook::Ctx, labflow_core::aws::AwsClients)> {
    let moto = labflow_testbed::moto::shared()?;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(labflow_core::aws::https_client())
        .endpoint_url(moto.endpoint())
        .region(aws_config::Region::new(region))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let clients = labflow_core::aws::AwsClients::from_config(config);
    let ctx = labflow_github_webhook::Ctx::new(
        &clients,
        format!("arn:aws:states:{region}:123456789012:stateMachine:x"),
        std::time::Duration::ZERO,
    );
    Ok((ctx, clients))
}

async fn put_secret(
    clients: &labflow_core::aws::AwsClients,
    name: &str,
    value: &str,
) -> Result<()> {
    clients
        .ssm
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await?;
    Ok(())
}

/// A ping signed with `secret`.
fn ping_signed_with(
    secret: &str,
) -> Result<aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest> {
    let body = r#"{"zen":"Design for failure."}"#;
    request(
        "POST",
        &[
            ("content-type", "application/json"),
            ("x-github-event", "ping"),
            ("x-github-delivery", "d-ping"),
            (
                "x-hub-signature-256",
                &signature::sign(&Secret::new(secret), body.as_bytes()),
            ),
        ],
        Some(body),
        false,
    )
}

#[tokio::test]
async fn during_a_rotation_the_previous_secret_is_accepted_until_it_is_deleted() -> Result<()> {
    let (ctx, clients) = isolated("ca-central-1").await?;
    let (old, new) = (
        "whsec-old-rotated-out-0123456789",
        "whsec-new-rotated-in-9876543210",
    );
    put_secret(&clients, labflow_github_webhook::SECRET_PARAMETER, new).await?;
    // Before GitHub has the new secret it still signs with the old one.
    assert_eq!(handle(&ctx, ping_signed_with(old)?).await.status_code, 401);
    put_secret(
        &clients,
        labflow_github_webhook::PREVIOUS_SECRET_PARAMETER,
        old,
    )
    .await?;
    assert_eq!(handle(&ctx, ping_signed_with(old)?).await.status_code, 200);
    assert_eq!(handle(&ctx, ping_signed_with(new)?).await.status_code, 200);
    assert_eq!(
        handle(&ctx, ping_signed_with("whsec-neither")?)
            .await
            .status_code,
        401
    );
    // Rotation done: the old secret verifies nothing any more.
    clients
        .ssm
        .delete_parameter()
        .name(labflow_github_webhook::PREVIOUS_SECRET_PARAMETER)
        .send()
        .await?;
    assert_eq!(handle(&ctx, ping_signed_with(old)?).await.status_code, 401);
    assert_eq!(handle(&ctx, ping_signed_with(new)?).await.status_code, 200);
    Ok(())
}

#[tokio::test]
async fn a_secret_still_holding_terraforms_placeholder_verifies_nothing() -> Result<()> {
    // Terraform stores a placeholder until the operator puts the real secret; the placeholder
    // is public (infra/terraform/ssm.tf), so anyone could sign with it.
    let (ctx, clients) = isolated("sa-east-1").await?;
    let tf = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/terraform/ssm.tf"
    ))?;
    let placeholder = tf
        .lines()
        .find_map(|line| line.trim().strip_prefix("secret_placeholder = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .ok_or_else(|| anyhow::anyhow!("no secret_placeholder in ssm.tf"))?;
    put_secret(
        &clients,
        labflow_github_webhook::SECRET_PARAMETER,
        placeholder,
    )
    .await?;
    let response = handle(&ctx, ping_signed_with(placeholder)?).await;
    assert_eq!(response.status_code, 500, "{:?}", response.body);
    assert_eq!(reply(&response)?.outcome, Outcome::Error);
    // The same for a previous secret left at a placeholder.
    put_secret(
        &clients,
        labflow_github_webhook::SECRET_PARAMETER,
        "whsec-real-0123456789",
    )
    .await?;
    put_secret(
        &clients,
        labflow_github_webhook::PREVIOUS_SECRET_PARAMETER,
        placeholder,
    )
    .await?;
    assert_eq!(
        handle(&ctx, ping_signed_with(placeholder)?)
            .await
            .status_code,
        500
    );
    Ok(())
}
