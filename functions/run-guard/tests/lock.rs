//! The lock against the AWS emulator: races, takeovers, release rules.

mod common;

use std::time::Duration;

use anyhow::{bail, Result};
use labflow_core::StepError;
use labflow_run_guard::{handle, AcquireInput, Input, Output, ReleaseInput};
use serde_json::json;

const HOUR: Duration = Duration::from_secs(3600);

fn acquire_input(execution_arn: &str, env: &str) -> Input {
    Input::Acquire(AcquireInput {
        execution_arn: execution_arn.to_string(),
        execution_input: json!({"action": "sync", "environment": env, "source": {"kind": "console"}}),
    })
}

fn release_input(execution_arn: &str, env: &str) -> Input {
    Input::Release(ReleaseInput {
        execution_arn: execution_arn.to_string(),
        environment: Some(env.to_string()),
    })
}

fn holder(value: &str) -> Result<String> {
    let v: serde_json::Value = serde_json::from_str(value)?;
    Ok(v["executionArn"].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn acquire_then_release_round_trip() -> Result<()> {
    let (ctx, clients) = common::ctx(HOUR).await?;
    let env = common::unique("rt");
    common::put_config(&clients, &env, |_| {}).await?;
    let sm = common::state_machine(&clients).await?;
    let me = common::start(&clients, &sm).await?;

    let Output::Acquire(out) = handle(&ctx, acquire_input(&me, &env)).await? else {
        bail!("wrong output")
    };
    assert_eq!(out.phase, "locked");
    assert!(!out.already_held && out.taken_over.is_none());
    let lock_name = format!("/labflow/locks/{env}");
    assert_eq!(out.lock_parameter.as_deref(), Some(lock_name.as_str()));
    let value = common::get(&clients, &lock_name).await?.unwrap_or_default();
    assert_eq!(holder(&value)?, me);
    assert!(value.contains("acquiredAt"));

    // A retried acquire by the holder is idempotent.
    let Output::Acquire(again) = handle(&ctx, acquire_input(&me, &env)).await? else {
        bail!("wrong output")
    };
    assert!(again.already_held);

    let Output::Release(rel) = handle(&ctx, release_input(&me, &env)).await? else {
        bail!("wrong output")
    };
    assert_eq!(rel.phase, "released");
    assert_eq!(common::get(&clients, &lock_name).await?, None);

    // Releasing again is harmless.
    let Output::Release(rel) = handle(&ctx, release_input(&me, &env)).await? else {
        bail!("wrong output")
    };
    assert_eq!(rel.phase, "not-held");
    Ok(())
}

#[tokio::test]
async fn two_concurrent_acquires_exactly_one_wins() -> Result<()> {
    let (ctx, clients) = common::ctx(HOUR).await?;
    let sm = common::state_machine(&clients).await?;
    for round in 0..5 {
        let env = common::unique(&format!("race{round}"));
        common::put_config(&clients, &env, |_| {}).await?;
        let a = common::start(&clients, &sm).await?;
        let b = common::start(&clients, &sm).await?;
        let (ra, rb) = tokio::join!(
            handle(&ctx, acquire_input(&a, &env)),
            handle(&ctx, acquire_input(&b, &env))
        );
        let wins = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {ra:?} / {rb:?}");
        let loser = if ra.is_ok() { &rb } else { &ra };
        match loser {
            Err(StepError::LockHeld(msg)) => assert!(msg.contains(&env), "{msg}"),
            other => bail!("loser got {other:?}"),
        }
        let winner = if ra.is_ok() { &a } else { &b };
        let value = common::get(&clients, &format!("/labflow/locks/{env}"))
            .await?
            .unwrap_or_default();
        assert_eq!(&holder(&value)?, winner);
    }
    Ok(())
}

#[tokio::test]
async fn lock_held_by_a_running_execution_is_refused() -> Result<()> {
    let (ctx, clients) = common::ctx(HOUR).await?;
    let env = common::unique("held");
    common::put_config(&clients, &env, |_| {}).await?;
    let sm = common::state_machine(&clients).await?;
    let first = common::start(&clients, &sm).await?;
    let second = common::start(&clients, &sm).await?;
    handle(&ctx, acquire_input(&first, &env)).await?;
    match handle(&ctx, acquire_input(&second, &env)).await {
        Err(StepError::LockHeld(msg)) => assert!(msg.contains(&first), "{msg}"),
        other => bail!("expected LockHeld, got {other:?}"),
    }
    Ok(())
}

/// A teardown does not wait behind a create or sync (issue 19 item 10): it stops the running
/// holder and takes the lock, saying so; it does wait behind another teardown.
#[tokio::test]
async fn a_teardown_preempts_a_running_sync_but_waits_for_a_teardown() -> Result<()> {
    let (ctx, clients) = common::ctx(HOUR).await?;
    let env = common::unique("preempt");
    common::put_config(&clients, &env, |_| {}).await?;
    let sm = common::state_machine(&clients).await?;
    let sync_input = json!({"action": "sync", "environment": env, "source": {"kind": "console"}});
    let teardown_input =
        json!({"action": "teardown", "environment": env, "source": {"kind": "console"}});
    let syncing = common::start_with(&clients, &sm, &sync_input.to_string()).await?;
    handle(&ctx, acquire_input(&syncing, &env)).await?;

    let teardown = common::start_with(&clients, &sm, &teardown_input.to_string()).await?;
    let acquire_teardown = |arn: &str| {
        Input::Acquire(AcquireInput {
            execution_arn: arn.to_string(),
            execution_input: teardown_input.clone(),
        })
    };
    let Output::Acquire(out) = handle(&ctx, acquire_teardown(&teardown)).await? else {
        bail!("wrong output")
    };
    let taken = out
        .taken_over
        .ok_or_else(|| anyhow::anyhow!("no takeover reported"))?;
    assert_eq!(
        taken.previous_execution_arn.as_deref(),
        Some(syncing.as_str())
    );
    assert!(
        taken.reason.contains("preempted") && taken.reason.contains("sync"),
        "{}",
        taken.reason
    );
    let status = clients
        .sfn
        .describe_execution()
        .execution_arn(&syncing)
        .send()
        .await?;
    assert_eq!(status.status().as_str(), "ABORTED");
    let lock_name = format!("/labflow/locks/{env}");
    assert_eq!(
        holder(&common::get(&clients, &lock_name).await?.unwrap_or_default())?,
        teardown
    );

    // A second teardown waits for the first; so does a sync.
    let another = common::start_with(&clients, &sm, &teardown_input.to_string()).await?;
    match handle(&ctx, acquire_teardown(&another)).await {
        Err(StepError::LockHeld(msg)) => assert!(msg.contains(&teardown), "{msg}"),
        other => bail!("expected LockHeld, got {other:?}"),
    }
    let later_sync = common::start_with(&clients, &sm, &sync_input.to_string()).await?;
    match handle(&ctx, acquire_input(&later_sync, &env)).await {
        Err(StepError::LockHeld(msg)) => assert!(msg.contains(&teardown), "{msg}"),
        other => bail!("expected LockHeld, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn lock_of_a_stopped_execution_is_taken_over() -> Result<()> {
    let (ctx, clients) = common::ctx(HOUR).await?;
    let env = common::unique("stale");
    common::put_config(&clients, &env, |_| {}).await?;
    let sm = common::state_machine(&clients).await?;
    let old = common::start(&clients, &sm).await?;
    let new = common::start(&clients, &sm).await?;
    handle(&ctx, acquire_input(&old, &env)).await?;
    clients
        .sfn
        .stop_execution()
        .execution_arn(&old)
        .send()
        .await?;

    let Output::Acquire(out) = handle(&ctx, acquire_input(&new, &env)).await? else {
        bail!("wrong output")
    };
    let taken = out
        .taken_over
        .ok_or_else(|| anyhow::anyhow!("no takeover reported"))?;
    assert_eq!(taken.previous_execution_arn.as_deref(), Some(old.as_str()));
    assert!(
        taken.reason.contains("no longer running"),
        "{}",
        taken.reason
    );
    let lock_name = format!("/labflow/locks/{env}");
    assert_eq!(
        holder(&common::get(&clients, &lock_name).await?.unwrap_or_default())?,
        new
    );

    // The takeover marker is gone.
    let under = clients
        .ssm
        .get_parameters_by_path()
        .path(&lock_name)
        .recursive(true)
        .send()
        .await?;
    assert!(under.parameters().is_empty(), "{:?}", under.parameters());

    // The old execution's release must not remove the new holder's lock.
    let Output::Release(rel) = handle(&ctx, release_input(&old, &env)).await? else {
        bail!("wrong output")
    };
    assert_eq!(rel.phase, "not-held");
    assert_eq!(
        holder(&common::get(&clients, &lock_name).await?.unwrap_or_default())?,
        new
    );
    Ok(())
}

#[tokio::test]
async fn lock_older_than_max_age_is_taken_over_even_if_running() -> Result<()> {
    let (ctx, clients) = common::ctx(HOUR).await?;
    let env = common::unique("old");
    common::put_config(&clients, &env, |_| {}).await?;
    let sm = common::state_machine(&clients).await?;
    let old = common::start(&clients, &sm).await?;
    let new = common::start(&clients, &sm).await?;
    let lock_name = format!("/labflow/locks/{env}");
    let two_hours_ago = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
    common::put(
        &clients,
        &lock_name,
        &json!({"executionArn": old, "acquiredAt": two_hours_ago}).to_string(),
    )
    .await?;

    let Output::Acquire(out) = handle(&ctx, acquire_input(&new, &env)).await? else {
        bail!("wrong output")
    };
    let taken = out
        .taken_over
        .ok_or_else(|| anyhow::anyhow!("no takeover reported"))?;
    assert!(
        taken.reason.contains("longer than the maximum"),
        "{}",
        taken.reason
    );
    assert_eq!(
        holder(&common::get(&clients, &lock_name).await?.unwrap_or_default())?,
        new
    );
    Ok(())
}

#[tokio::test]
async fn concurrent_takeovers_of_one_stale_lock_exactly_one_wins() -> Result<()> {
    let (ctx, clients) = common::ctx(HOUR).await?;
    let sm = common::state_machine(&clients).await?;
    for round in 0..4 {
        let env = common::unique(&format!("takeover{round}"));
        common::put_config(&clients, &env, |_| {}).await?;
        let dead = common::start(&clients, &sm).await?;
        clients
            .sfn
            .stop_execution()
            .execution_arn(&dead)
            .send()
            .await?;
        let lock_name = format!("/labflow/locks/{env}");
        common::put(
            &clients,
            &lock_name,
            &json!({"executionArn": dead, "acquiredAt": chrono::Utc::now().to_rfc3339()})
                .to_string(),
        )
        .await?;
        let a = common::start(&clients, &sm).await?;
        let b = common::start(&clients, &sm).await?;
        let (ra, rb) = tokio::join!(
            handle(&ctx, acquire_input(&a, &env)),
            handle(&ctx, acquire_input(&b, &env))
        );
        let oks = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
        assert_eq!(oks, 1, "round {round}: {ra:?} / {rb:?}");
        let winner = if ra.is_ok() { &a } else { &b };
        assert_eq!(
            &holder(&common::get(&clients, &lock_name).await?.unwrap_or_default())?,
            winner
        );
    }
    Ok(())
}

#[tokio::test]
async fn release_by_a_non_holder_does_nothing() -> Result<()> {
    let (ctx, clients) = common::ctx(HOUR).await?;
    let env = common::unique("nonholder");
    common::put_config(&clients, &env, |_| {}).await?;
    let sm = common::state_machine(&clients).await?;
    let holder_arn = common::start(&clients, &sm).await?;
    let other = common::start(&clients, &sm).await?;
    handle(&ctx, acquire_input(&holder_arn, &env)).await?;
    let Output::Release(rel) = handle(&ctx, release_input(&other, &env)).await? else {
        bail!("wrong output")
    };
    assert_eq!(rel.phase, "not-held");
    assert!(rel.reason.unwrap_or_default().contains(&holder_arn));
    let value = common::get(&clients, &format!("/labflow/locks/{env}"))
        .await?
        .unwrap_or_default();
    assert_eq!(holder(&value)?, holder_arn);
    Ok(())
}
