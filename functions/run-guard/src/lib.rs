//! run-guard: the first and last step of every execution.
//!
//! - `acquire` validates the execution input (schema, the environment exists, the action is
//!   allowed for its source) and reports every problem in one `labflow.InvalidInput` message; then
//!   it takes the environment's lock `/labflow/locks/<env>` (see [`lock`]).
//! - `release` deletes the lock only if this execution holds it.
//! - `list` names the environments the nightly `teardown-all` destroys.
//!
//! `teardown-all` itself takes no lock: the state machine's Map over [`ListOutput::environments`]
//! calls `acquire` once per environment with `{action: "teardown", environment, source: schedule}`.

pub mod list;
pub mod lock;
pub mod validate;

use std::time::Duration;

use labflow_core::aws::AwsClients;
use labflow_core::contract::Action;
use labflow_core::StepError;
use serde::{Deserialize, Serialize};

pub use list::ListOutput;
pub use lock::{LockHolder, TakeOver};

/// Exactly the IAM actions this function calls (checked against Terraform).
pub const AWS_OPERATIONS: &[&str] = &[
    "ssm:GetParameter",
    "ssm:PutParameter",
    "ssm:DeleteParameter",
    "ssm:GetParametersByPath",
    "states:DescribeExecution",
    "states:StopExecution",
];

/// DescribeExecution decrypts the execution's data with the state machine's key
/// (infra/terraform/iam_lambdas.tf, local.states_kms_condition).
pub const IMPLIED_PERMISSIONS: &[&str] = &["kms:Decrypt"];

/// A lock older than this is taken over even if its holder still runs (a stuck execution must
/// not block an environment forever). Override with `LABFLOW_LOCK_MAX_AGE_SECONDS`.
pub const DEFAULT_LOCK_MAX_AGE: Duration = Duration::from_secs(6 * 3600);

/// Clients and settings, built once per cold start.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub ssm: aws_sdk_ssm::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub lock_max_age: Duration,
    /// The clients talk to the local cloud (config checks, `AwsClients::local_cloud`).
    pub local_cloud: bool,
}

impl Ctx {
    pub fn new(clients: &AwsClients, lock_max_age: Duration) -> Self {
        Self {
            ssm: clients.ssm.clone(),
            sfn: clients.sfn.clone(),
            lock_max_age,
            local_cloud: clients.local_cloud(),
        }
    }

    /// Settings from the Lambda environment.
    pub fn from_env(clients: &AwsClients) -> Result<Self, StepError> {
        let max_age = match std::env::var("LABFLOW_LOCK_MAX_AGE_SECONDS") {
            Ok(text) => Duration::from_secs(text.trim().parse().map_err(|_| {
                StepError::InvalidInput(format!(
                    "LABFLOW_LOCK_MAX_AGE_SECONDS must be a whole number of seconds, got {text:?}"
                ))
            })?),
            Err(_) => DEFAULT_LOCK_MAX_AGE,
        };
        Ok(Self::new(clients, max_age))
    }
}

/// What the state machine asks run-guard to do (`operation` selects it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "operation", rename_all = "camelCase")]
pub enum Input {
    Acquire(AcquireInput),
    Release(ReleaseInput),
    List(ListInput),
}

/// `{"operation": "acquire", "executionArn": "$$.Execution.Id", "executionInput": <$$.Execution.Input>}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AcquireInput {
    /// The execution asking for the lock (`$$.Execution.Id`).
    pub execution_arn: String,
    /// The execution input, validated here (kept untyped so every problem can be reported).
    pub execution_input: serde_json::Value,
}

/// `{"operation": "release", "executionArn": "...", "environment": "lab"}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseInput {
    pub execution_arn: String,
    /// Absent for executions that hold no lock (`teardown-all`): nothing to release.
    #[serde(default)]
    pub environment: Option<String>,
}

/// `{"operation": "list"}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListInput {}

/// The report of any operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Output {
    Acquire(AcquireOutput),
    Release(ReleaseOutput),
    List(ListOutput),
}

/// `acquire`'s report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AcquireOutput {
    pub done: bool,
    /// `locked` (lock taken or already ours) or `validated` (`teardown-all`: no lock).
    pub phase: String,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_parameter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquired_at: Option<String>,
    /// This execution already held the lock (a retried acquire).
    #[serde(default)]
    pub already_held: bool,
    /// Set when a stale lock was taken over: whose, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_over: Option<TakeOver>,
}

/// `release`'s report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseOutput {
    pub done: bool,
    /// `released` or `not-held`.
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Why nothing was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Run one operation.
pub async fn handle(ctx: &Ctx, input: Input) -> Result<Output, StepError> {
    match input {
        Input::Acquire(input) => acquire(ctx, input).await.map(Output::Acquire),
        Input::Release(input) => release(ctx, input).await.map(Output::Release),
        Input::List(_) => list::list(&ctx.ssm, ctx.local_cloud)
            .await
            .map(Output::List),
    }
}

async fn acquire(ctx: &Ctx, input: AcquireInput) -> Result<AcquireOutput, StepError> {
    check_execution_arn(&input.execution_arn)?;
    let valid =
        validate::execution_input(&ctx.ssm, &input.execution_input, ctx.local_cloud).await?;
    let Some(environment) = valid.environment else {
        tracing::info!(
            action = valid.action.as_str(),
            "execution input valid; no lock for this action"
        );
        return Ok(AcquireOutput {
            done: true,
            phase: "validated".into(),
            action: valid.action,
            environment: None,
            lock_parameter: None,
            acquired_at: None,
            already_held: false,
            taken_over: None,
        });
    };
    let acquired = lock::acquire(ctx, &environment, &input.execution_arn, valid.action).await?;
    Ok(AcquireOutput {
        done: true,
        phase: "locked".into(),
        action: valid.action,
        lock_parameter: Some(lock::parameter_name(&environment)),
        environment: Some(environment),
        acquired_at: Some(acquired.holder.acquired_at.clone()),
        already_held: acquired.already_held,
        taken_over: acquired.taken_over,
    })
}

async fn release(ctx: &Ctx, input: ReleaseInput) -> Result<ReleaseOutput, StepError> {
    check_execution_arn(&input.execution_arn)?;
    let Some(environment) = input.environment else {
        return Ok(ReleaseOutput {
            done: true,
            phase: "not-held".into(),
            environment: None,
            reason: Some("no environment: this execution holds no lock".into()),
        });
    };
    labflow_core::config::check_environment_name(&environment)?;
    let outcome = lock::release(ctx, &environment, &input.execution_arn).await?;
    Ok(ReleaseOutput {
        done: true,
        phase: if outcome.is_none() {
            "released"
        } else {
            "not-held"
        }
        .into(),
        environment: Some(environment),
        reason: outcome,
    })
}

/// Execution ARNs are written into the lock and compared; reject anything that is not one.
fn check_execution_arn(arn: &str) -> Result<(), StepError> {
    let parts: Vec<&str> = arn.split(':').collect();
    let ok = parts.len() >= 8
        && parts[0] == "arn"
        && parts[2] == "states"
        && (parts[5] == "execution" || parts[5] == "express")
        && parts.iter().all(|p| !p.is_empty());
    if ok {
        Ok(())
    } else {
        Err(StepError::InvalidInput(format!(
            "executionArn {arn:?} is not a Step Functions execution ARN"
        )))
    }
}
