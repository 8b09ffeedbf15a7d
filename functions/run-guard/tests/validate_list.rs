//! Execution input validation (every problem at once) and the teardown-all list, against the
//! AWS emulator's SSM.

mod common;

use std::time::Duration;

use anyhow::{bail, Result};
use labflow_core::StepError;
use labflow_run_guard::{handle, AcquireInput, Input, ListInput, Output};
use serde_json::{json, Value};

const EXEC: &str = "arn:aws:states:eu-west-1:123456789012:execution:labflow-lifecycle:run-1";

async fn acquire(ctx: &labflow_run_guard::Ctx, input: Value) -> Result<Output, StepError> {
    handle(
        ctx,
        Input::Acquire(AcquireInput {
            execution_arn: EXEC.into(),
            execution_input: input,
        }),
    )
    .await
}

fn invalid(result: Result<Output, StepError>) -> Result<String> {
    match result {
        Err(StepError::InvalidInput(msg)) => Ok(msg),
        other => bail!("expected InvalidInput, got {other:?}"),
    }
}

#[tokio::test]
async fn every_problem_is_reported_in_one_message() -> Result<()> {
    let (ctx, _) = common::ctx(Duration::from_secs(60)).await?;
    let msg = invalid(
        acquire(
            &ctx,
            json!({"action": "explode", "environment": "Bad_Name", "colour": "red", "pollSeconds": 0}),
        )
        .await,
    )?;
    for fragment in [
        "unknown field \"colour\"",
        "action must be one of",
        "source is required",
        "pollSeconds",
        "Bad_Name",
    ] {
        assert!(msg.contains(fragment), "missing {fragment:?} in: {msg}");
    }
    Ok(())
}

#[tokio::test]
async fn missing_environment_config_is_invalid_input() -> Result<()> {
    let (ctx, _) = common::ctx(Duration::from_secs(60)).await?;
    let env = common::unique("absent");
    let msg = invalid(
        acquire(
            &ctx,
            json!({"action": "create", "environment": env, "source": {"kind": "console"}}),
        )
        .await,
    )?;
    assert!(msg.contains("is not configured"), "{msg}");
    let msg = invalid(
        acquire(
            &ctx,
            json!({"action": "sync", "source": {"kind": "console"}}),
        )
        .await,
    )?;
    assert!(msg.contains("environment is required"), "{msg}");
    Ok(())
}

#[tokio::test]
async fn teardown_all_only_from_the_schedule_and_without_lock() -> Result<()> {
    let (ctx, _) = common::ctx(Duration::from_secs(60)).await?;
    let msg = invalid(
        acquire(
            &ctx,
            json!({"action": "teardown-all", "source": {"kind": "console", "requestedBy": "me"}}),
        )
        .await,
    )?;
    assert!(msg.contains("only be started by the schedule"), "{msg}");
    let msg = invalid(
        acquire(
            &ctx,
            json!({"action": "teardown-all", "environment": "lab", "source": {"kind": "schedule"}}),
        )
        .await,
    )?;
    assert!(msg.contains("takes no environment"), "{msg}");
    let Output::Acquire(out) = acquire(
        &ctx,
        json!({"action": "teardown-all", "source": {"kind": "schedule"}}),
    )
    .await?
    else {
        bail!("wrong output")
    };
    assert_eq!(out.phase, "validated");
    assert!(out.lock_parameter.is_none());
    Ok(())
}

#[tokio::test]
async fn a_protected_environment_is_torn_down_only_when_a_person_forces_it() -> Result<()> {
    let (ctx, clients) = common::ctx(Duration::from_secs(60)).await?;
    let env = common::unique("prot");
    common::put_config(&clients, &env, |v| v["protected"] = json!(true)).await?;
    let github = json!({"kind": "github", "repository": "acme/labflow", "branch": "env/x",
        "sha": "0123456789abcdef0123456789abcdef01234567", "deliveryId": "d-1"});
    // Issue 26 item 1: the schedule, a branch deletion and an unforced console start all refuse.
    for source in [
        json!({"kind": "schedule"}),
        github.clone(),
        json!({"kind": "console"}),
    ] {
        let msg = invalid(
            acquire(
                &ctx,
                json!({"action": "teardown", "environment": env, "source": source}),
            )
            .await,
        )?;
        assert!(msg.contains("is protected"), "{source}: {msg}");
    }
    // Only a person may force, and only a teardown.
    let msg = invalid(
        acquire(
            &ctx,
            json!({"action": "teardown", "environment": env, "source": github, "force": true}),
        )
        .await,
    )?;
    assert!(msg.contains("force may only be set"), "{msg}");
    let msg = invalid(
        acquire(
            &ctx,
            json!({"action": "create", "environment": env, "source": {"kind": "console"}, "force": true}),
        )
        .await,
    )?;
    assert!(msg.contains("force only applies to teardown"), "{msg}");
    let out = acquire(
        &ctx,
        json!({"action": "teardown", "environment": env, "source": {"kind": "console"}, "force": true}),
    )
    .await?;
    assert!(
        matches!(out, Output::Acquire(ref o) if o.phase == "locked"),
        "{out:?}"
    );
    Ok(())
}

#[tokio::test]
async fn bad_execution_arn_and_unknown_operation_fields_are_rejected() -> Result<()> {
    let (ctx, _) = common::ctx(Duration::from_secs(60)).await?;
    let result = handle(
        &ctx,
        Input::Acquire(AcquireInput {
            execution_arn: "not-an-arn".into(),
            execution_input: json!({}),
        }),
    )
    .await;
    assert!(invalid(result)?.contains("not a Step Functions execution ARN"));
    let decoded: Result<Input, StepError> = labflow_core::lambda::decode_input(
        json!({"operation": "release", "executionArn": EXEC, "extra": 1}),
    );
    assert!(
        matches!(decoded, Err(StepError::InvalidInput(ref m)) if m.contains("extra")),
        "{decoded:?}"
    );
    let decoded: Input = labflow_core::lambda::decode_input(json!({"operation": "list"}))?;
    assert_eq!(decoded, Input::List(ListInput {}));
    Ok(())
}

#[tokio::test]
async fn list_returns_nightly_unprotected_environments_and_skips_the_rest() -> Result<()> {
    let (ctx, clients) = common::ctx(Duration::from_secs(60)).await?;
    let nightly = common::unique("nightly");
    let prot = common::unique("protnightly");
    let off = common::unique("daytime");
    common::put_config(&clients, &nightly, |v| v["nightlyTeardown"] = json!(true)).await?;
    common::put_config(&clients, &prot, |v| {
        v["nightlyTeardown"] = json!(true);
        v["protected"] = json!(true);
    })
    .await?;
    common::put_config(&clients, &off, |v| v["nightlyTeardown"] = json!(false)).await?;
    // A published kubeconfig lives below the config: not an environment.
    common::put(
        &clients,
        &format!("/labflow/environments/{nightly}/kubeconfig"),
        "apiVersion: v1",
    )
    .await?;
    let broken = common::unique("broken");
    common::put(
        &clients,
        &format!("/labflow/environments/{broken}"),
        "{not json",
    )
    .await?;

    let Output::List(out) = handle(&ctx, Input::List(ListInput {})).await? else {
        bail!("wrong output")
    };
    assert!(out.environments.contains(&nightly), "{out:?}");
    assert!(
        !out.environments.contains(&prot) && !out.environments.contains(&off),
        "{out:?}"
    );
    assert!(!out.environments.iter().any(|e| e.contains('/')), "{out:?}");
    let reason = |env: &str| {
        out.skipped
            .iter()
            .find(|s| s.environment == env)
            .map(|s| s.reason.clone())
    };
    assert_eq!(reason(&prot).as_deref(), Some("protected"));
    assert_eq!(reason(&off).as_deref(), Some("nightly teardown is off"));
    assert!(
        reason(&broken).is_some_and(|r| r.contains("invalid")),
        "{out:?}"
    );
    let mut sorted = out.environments.clone();
    sorted.sort();
    assert_eq!(sorted, out.environments);
    Ok(())
}
