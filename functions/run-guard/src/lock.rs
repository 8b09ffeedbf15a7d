//! The per-environment lock: SSM parameter `/labflow/locks/<env>` holding
//! `{"executionArn": "...", "acquiredAt": "<RFC 3339>"}`.
//!
//! Taking it is a conditional create (PutParameter without Overwrite): of two racing executions
//! exactly one succeeds, the other gets ParameterAlreadyExists and inspects the holder. A holder
//! that is no longer running (DescribeExecution) or older than the maximum age is stale and may be
//! taken over. Overwriting is not conditional in SSM, so a takeover first claims the marker
//! `/labflow/locks/<env>/takeover-<hash of the stale value>` with another conditional create: only
//! the claimant of that exact stale value overwrites the lock, after re-reading that the lock
//! still holds that value. The claimant overwrites before deleting its marker, so a slow second
//! claimant that gets the marker later finds a different value and backs off.
//!
//! Remaining gap: a holder older than the maximum age that is still running and releases in the
//! instant between our re-read and our overwrite, while a third execution creates the lock — SSM
//! offers no compare-and-swap to close it.

use chrono::{DateTime, SecondsFormat, Utc};
use labflow_core::error::classify_sdk_error;
use labflow_core::StepError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Ctx;
use labflow_core::contract::Action;

/// How often `acquire` re-evaluates when the lock changes under it before giving up with
/// `labflow.LockHeld` (the state machine retries that slowly).
const MAX_ROUNDS: usize = 4;

/// SSM parameter name of an environment's lock.
pub fn parameter_name(environment: &str) -> String {
    format!("/labflow/locks/{environment}")
}

/// The lock's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockHolder {
    pub execution_arn: String,
    /// RFC 3339, UTC.
    pub acquired_at: String,
}

impl LockHolder {
    fn now(execution_arn: &str) -> Self {
        Self {
            execution_arn: execution_arn.to_string(),
            acquired_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        }
    }

    fn to_json(&self) -> Result<String, StepError> {
        serde_json::to_string(self)
            .map_err(|err| StepError::InvalidInput(format!("cannot encode lock value: {err}")))
    }
}

/// A stale lock this execution replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TakeOver {
    /// The previous holder, when its value was readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_execution_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_acquired_at: Option<String>,
    pub reason: String,
}

/// A successful acquire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquired {
    pub holder: LockHolder,
    pub already_held: bool,
    pub taken_over: Option<TakeOver>,
}

/// Take the lock of `environment` for `execution_arn`, which runs `action`. A teardown preempts a
/// running create or sync (issue 19 item 10): waiting for it would leave the lab up (a nightly
/// teardown would give up after its retries) or block a person's teardown for hours; the
/// preempted execution is stopped (ABORTED: execution-ended posts its failure status, and its
/// own release leaves the new holder's lock alone).
pub async fn acquire(
    ctx: &Ctx,
    environment: &str,
    execution_arn: &str,
    action: Action,
) -> Result<Acquired, StepError> {
    let name = parameter_name(environment);
    for _ in 0..MAX_ROUNDS {
        let mine = LockHolder::now(execution_arn);
        if create(ctx, &name, &mine.to_json()?).await? {
            tracing::info!(environment, lock = %name, "lock acquired");
            return Ok(Acquired {
                holder: mine,
                already_held: false,
                taken_over: None,
            });
        }
        let Some(current) = read(ctx, &name).await? else {
            continue; // released between our create and our read: try again
        };
        let holder: Option<LockHolder> = serde_json::from_str(&current).ok();
        if let Some(holder) = &holder {
            if holder.execution_arn == execution_arn {
                tracing::info!(environment, "lock already held by this execution");
                return Ok(Acquired {
                    holder: holder.clone(),
                    already_held: true,
                    taken_over: None,
                });
            }
        }
        let stale_reason = match &holder {
            None => Some("the lock value is unreadable".to_string()),
            Some(holder) => match staleness(ctx, holder).await? {
                Standing::Stale(reason) => Some(reason),
                Standing::Running { action: held_for }
                    if action == Action::Teardown && preemptible(held_for.as_deref()) =>
                {
                    Some(preempt(ctx, holder, held_for.as_deref(), execution_arn).await?)
                }
                Standing::Running { .. } => None,
            },
        };
        let Some(reason) = stale_reason else {
            let holder = holder.unwrap_or_else(|| LockHolder {
                execution_arn: "unknown".into(),
                acquired_at: "unknown".into(),
            });
            return Err(StepError::LockHeld(format!(
                "environment {environment:?} is locked by running execution {} since {}",
                holder.execution_arn, holder.acquired_at
            )));
        };
        match take_over(ctx, &name, &current, &mine).await? {
            TakeOverResult::Done => {
                tracing::warn!(
                    environment,
                    previous = holder.as_ref().map(|h| h.execution_arn.as_str()).unwrap_or("unreadable"),
                    reason = %reason,
                    "stale lock taken over"
                );
                return Ok(Acquired {
                    holder: mine,
                    already_held: false,
                    taken_over: Some(TakeOver {
                        previous_execution_arn: holder.as_ref().map(|h| h.execution_arn.clone()),
                        previous_acquired_at: holder.as_ref().map(|h| h.acquired_at.clone()),
                        reason,
                    }),
                });
            }
            TakeOverResult::Changed => continue,
            TakeOverResult::Contended => {
                return Err(StepError::LockHeld(format!(
                    "environment {environment:?}: another execution is taking over the stale lock"
                )))
            }
        }
    }
    Err(StepError::LockHeld(format!(
        "environment {environment:?}: the lock kept changing hands; try again"
    )))
}

/// Delete the lock if `execution_arn` holds it. `Ok(None)` = released; `Ok(Some(why))` = left alone.
pub async fn release(
    ctx: &Ctx,
    environment: &str,
    execution_arn: &str,
) -> Result<Option<String>, StepError> {
    let name = parameter_name(environment);
    let Some(current) = read(ctx, &name).await? else {
        return Ok(Some("the environment is not locked".into()));
    };
    match serde_json::from_str::<LockHolder>(&current) {
        Ok(holder) if holder.execution_arn == execution_arn => {}
        Ok(holder) => {
            tracing::info!(environment, holder = %holder.execution_arn, "lock held by another execution; left alone");
            return Ok(Some(format!(
                "the lock is held by {}",
                holder.execution_arn
            )));
        }
        Err(_) => return Ok(Some("the lock value is unreadable; left alone".into())),
    }
    match ctx.ssm.delete_parameter().name(&name).send().await {
        Ok(_) => {}
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) => {}
        Err(err) => return Err(classify_sdk_error(&format!("deleting lock {name}"), err)),
    }
    tracing::info!(environment, "lock released");
    Ok(None)
}

/// Whether a lock holder still holds the lock rightfully.
enum Standing {
    /// It does not: why.
    Stale(String),
    /// It runs, for this action (its execution input's `action`, when readable).
    Running { action: Option<String> },
}

/// Executions a teardown may stop: those that build or change a lab. Another teardown (or
/// teardown-all) finishes the same job, so the newcomer waits for it.
fn preemptible(action: Option<&str>) -> bool {
    matches!(action, Some("create" | "sync"))
}

/// Stop the running `holder` for teardown `by`; the reason the lock is taken over.
async fn preempt(
    ctx: &Ctx,
    holder: &LockHolder,
    action: Option<&str>,
    by: &str,
) -> Result<String, StepError> {
    let stopped = ctx
        .sfn
        .stop_execution()
        .execution_arn(&holder.execution_arn)
        .error("labflow.Preempted")
        .cause(format!("teardown {by} took the environment's lock"))
        .send()
        .await;
    if let Err(err) = stopped {
        // Gone or ended since we looked: nothing to stop.
        let ended = err
            .as_service_error()
            .is_some_and(|e| e.is_execution_does_not_exist() || e.is_invalid_arn());
        if !ended {
            return Err(classify_sdk_error(
                "stopping the execution that holds the lock",
                err,
            ));
        }
    }
    tracing::warn!(holder = %holder.execution_arn, by, "running execution preempted by a teardown");
    Ok(format!(
        "preempted: teardown stopped the running {} execution {}",
        action.unwrap_or("?"),
        holder.execution_arn
    ))
}

/// Whether `holder` is stale, or still holds the lock rightfully.
async fn staleness(ctx: &Ctx, holder: &LockHolder) -> Result<Standing, StepError> {
    match DateTime::parse_from_rfc3339(&holder.acquired_at) {
        Ok(at) => {
            let age = Utc::now().signed_duration_since(at.with_timezone(&Utc));
            let max = chrono::Duration::from_std(ctx.lock_max_age).unwrap_or(chrono::Duration::MAX);
            if age > max {
                return Ok(Standing::Stale(format!(
                    "held for {} s, longer than the maximum of {} s",
                    age.num_seconds(),
                    ctx.lock_max_age.as_secs()
                )));
            }
        }
        Err(_) => {
            return Ok(Standing::Stale(
                "the lock's acquiredAt is unreadable".into(),
            ))
        }
    }
    let described = ctx
        .sfn
        .describe_execution()
        .execution_arn(&holder.execution_arn)
        .send()
        .await;
    match described {
        Ok(output) => {
            let status = output.status().as_str().to_string();
            if status == "RUNNING" || status == "PENDING_REDRIVE" {
                let action = output
                    .input()
                    .and_then(|i| serde_json::from_str::<serde_json::Value>(i).ok())
                    .and_then(|i| i["action"].as_str().map(str::to_string));
                Ok(Standing::Running { action })
            } else {
                Ok(Standing::Stale(format!(
                    "the holder is no longer running (status {status})"
                )))
            }
        }
        Err(err) => {
            let gone = err
                .as_service_error()
                .is_some_and(|e| e.is_execution_does_not_exist() || e.is_invalid_arn());
            if gone {
                Ok(Standing::Stale(
                    "the holding execution does not exist".into(),
                ))
            } else {
                Err(classify_sdk_error(
                    "describing the lock holder's execution",
                    err,
                ))
            }
        }
    }
}

enum TakeOverResult {
    Done,
    /// The lock no longer holds the stale value: re-evaluate.
    Changed,
    /// Someone else claimed this takeover.
    Contended,
}

async fn take_over(
    ctx: &Ctx,
    name: &str,
    stale: &str,
    mine: &LockHolder,
) -> Result<TakeOverResult, StepError> {
    let marker = format!(
        "{name}/takeover-{}",
        &hex::encode(Sha256::digest(stale.as_bytes()))[..16]
    );
    if !create(ctx, &marker, &mine.execution_arn).await? {
        return Ok(TakeOverResult::Contended);
    }
    let result = async {
        if read(ctx, name).await?.as_deref() != Some(stale) {
            return Ok(TakeOverResult::Changed);
        }
        ctx.ssm
            .put_parameter()
            .name(name)
            .value(mine.to_json()?)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|err| classify_sdk_error(&format!("taking over lock {name}"), err))?;
        Ok(TakeOverResult::Done)
    }
    .await;
    // The marker only guards this one takeover; remove it whatever happened.
    if let Err(err) = ctx.ssm.delete_parameter().name(&marker).send().await {
        if !err
            .as_service_error()
            .is_some_and(|e| e.is_parameter_not_found())
        {
            tracing::warn!(marker = %marker, "could not delete takeover marker");
        }
    }
    result
}

/// Conditional create: `true` if we created it, `false` if it already existed.
async fn create(ctx: &Ctx, name: &str, value: &str) -> Result<bool, StepError> {
    let result = ctx
        .ssm
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .description("labflow run lock (run-guard)")
        .overwrite(false)
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_parameter_already_exists()) =>
        {
            Ok(false)
        }
        Err(err) => Err(classify_sdk_error(&format!("creating {name}"), err)),
    }
}

/// A parameter's value, `None` if it does not exist.
async fn read(ctx: &Ctx, name: &str) -> Result<Option<String>, StepError> {
    match ctx.ssm.get_parameter().name(name).send().await {
        Ok(output) => Ok(Some(
            output
                .parameter()
                .and_then(|p| p.value())
                .unwrap_or_default()
                .to_string(),
        )),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) =>
        {
            Ok(None)
        }
        Err(err) => Err(classify_sdk_error(&format!("reading {name}"), err)),
    }
}
