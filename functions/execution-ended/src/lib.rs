//! execution-ended: the clean-up of executions that end without running their own.
//!
//! The lifecycle's failure path (ReportFailure → ReleaseAfterFailure) runs only for errors a
//! Catch sees. An execution that exceeds its `TimeoutSeconds`, is stopped from the console or the
//! CLI, or fails with an error no `States.ALL` catches (States.DataLimitExceeded, States.Runtime)
//! ends at once: no commit status, and the environment's lock stays held until it goes stale.
//! Step Functions publishes every execution's status change to EventBridge ("Step Functions
//! Execution Status Change", docs.aws.amazon.com/step-functions/latest/dg/eventbridge-integration.html;
//! fields in docs.aws.amazon.com/step-functions/latest/dg/cw-events.html); a rule on `TIMED_OUT`,
//! `ABORTED` and `FAILED` of the lifecycle state machine invokes this function
//! (infra/terraform/execution_ended.tf), which does what the failure path would have done:
//!
//! - reads the execution's input (DescribeExecution: the event's copy is left out above 256 KiB);
//! - releases the environment's lock if that execution still holds it (run-guard's release);
//! - posts a failure commit status (github-status) — for `FAILED` only when the lock was still
//!   held, since a failure the state machine caught has posted its own status and freed the lock.
//!
//! Events of other state machines and other statuses are ignored. Re-delivery converges: the
//! lock is released once, the status is the same.

use labflow_core::aws::AwsClients;
use labflow_core::contract::ExecutionInput;
use labflow_core::error::classify_sdk_error;
use labflow_core::StepError;
use labflow_github_status::{CommitState, ErrorInfo};
use serde::{Deserialize, Serialize};

/// Exactly the IAM actions this function calls (checked against Terraform); github-status's
/// and run-guard's calls made through their libraries are listed here too.
pub const AWS_OPERATIONS: &[&str] = &[
    "ssm:GetParameter",
    "ssm:DeleteParameter",
    "states:DescribeExecution",
];

/// DescribeExecution decrypts the execution's data with the state machine's key
/// (infra/terraform/iam_lambdas.tf, local.states_kms_condition).
pub const IMPLIED_PERMISSIONS: &[&str] = &["kms:Decrypt"];

/// The EventBridge `detail-type` of Step Functions status changes.
pub const DETAIL_TYPE: &str = "Step Functions Execution Status Change";

/// The statuses the rule forwards: every end but success.
pub const ENDED_STATUSES: &[&str] = &["FAILED", "TIMED_OUT", "ABORTED"];

/// The EventBridge envelope, read leniently (EventBridge may add fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    pub detail: Detail,
}

/// The event's `detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Detail {
    pub execution_arn: String,
    pub state_machine_arn: String,
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
}

impl StatusChange {
    /// The event EventBridge delivers for an execution that ended with `status`.
    pub fn new(
        execution_arn: &str,
        state_machine_arn: &str,
        status: &str,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> Self {
        StatusChange {
            detail_type: DETAIL_TYPE.to_string(),
            source: "aws.states".to_string(),
            detail: Detail {
                execution_arn: execution_arn.to_string(),
                state_machine_arn: state_machine_arn.to_string(),
                status: status.to_string(),
                error: error.map(str::to_string),
                cause: cause.map(str::to_string),
            },
        }
    }
}

/// What was done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    /// `ignored` or `cleaned-up`.
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The lock was still held by the execution and is now free.
    pub lock_released: bool,
    /// Why the lock was left alone, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    /// github-status's report, when a status was posted (or attempted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_status: Option<labflow_github_status::Output>,
}

impl Output {
    fn ignored(reason: impl Into<String>) -> Self {
        Output {
            phase: "ignored".into(),
            reason: Some(reason.into()),
            environment: None,
            lock_released: false,
            lock: None,
            commit_status: None,
        }
    }
}

/// Clients, built once per cold start.
pub struct Ctx {
    pub sfn: aws_sdk_sfn::Client,
    pub run_guard: labflow_run_guard::Ctx,
    pub github_status: labflow_github_status::Ctx,
    /// The lifecycle state machine (`LABFLOW_STATE_MACHINE_ARN`); other machines' events are
    /// ignored.
    pub state_machine_arn: String,
}

impl Ctx {
    pub fn new(
        clients: &AwsClients,
        state_machine_arn: impl Into<String>,
        github_api: Option<&str>,
    ) -> Result<Self, StepError> {
        Ok(Ctx {
            sfn: clients.sfn.clone(),
            run_guard: labflow_run_guard::Ctx::new(
                clients,
                labflow_run_guard::DEFAULT_LOCK_MAX_AGE,
            ),
            github_status: labflow_github_status::Ctx::new(clients, github_api)?,
            state_machine_arn: state_machine_arn.into(),
        })
    }

    /// From the Lambda environment: `LABFLOW_STATE_MACHINE_ARN`, `GITHUB_API_URL` (optional).
    pub fn from_env(clients: &AwsClients) -> Result<Self, StepError> {
        let arn = std::env::var("LABFLOW_STATE_MACHINE_ARN")
            .ok()
            .filter(|a| a.starts_with("arn:") && a.contains(":stateMachine:"))
            .ok_or_else(|| {
                StepError::InvalidInput(
                    "LABFLOW_STATE_MACHINE_ARN is not set to a state machine ARN".into(),
                )
            })?;
        let api = std::env::var("GITHUB_API_URL")
            .ok()
            .filter(|u| !u.trim().is_empty());
        Self::new(clients, arn, api.as_deref())
    }
}

/// The error the commit status reports for an execution that ended with `detail.status`.
fn error_of(detail: &Detail) -> ErrorInfo {
    let (error, cause) = match detail.status.as_str() {
        // The names Step Functions records for these ends (ExecutionTimedOut / ExecutionAborted).
        "TIMED_OUT" => (
            "States.Timeout",
            "the execution exceeded its TimeoutSeconds",
        ),
        "ABORTED" => ("States.Aborted", "the execution was stopped"),
        _ => (
            "States.Runtime",
            "the execution failed outside its failure path",
        ),
    };
    ErrorInfo {
        error: Some(detail.error.clone().unwrap_or_else(|| error.to_string())),
        cause: Some(detail.cause.clone().unwrap_or_else(|| cause.to_string())),
    }
}

/// Handle one status-change event (see the crate docs).
pub async fn handle(ctx: &Ctx, event: StatusChange) -> Result<Output, StepError> {
    if event.detail_type != DETAIL_TYPE || event.source != "aws.states" {
        return Ok(Output::ignored(format!(
            "not a Step Functions status change ({} from {})",
            event.detail_type, event.source
        )));
    }
    let detail = &event.detail;
    if detail.state_machine_arn != ctx.state_machine_arn {
        return Ok(Output::ignored(format!(
            "an execution of {}, not of the lifecycle",
            detail.state_machine_arn
        )));
    }
    if !ENDED_STATUSES.contains(&detail.status.as_str()) {
        return Ok(Output::ignored(format!("status {}", detail.status)));
    }

    let described = ctx
        .sfn
        .describe_execution()
        .execution_arn(&detail.execution_arn)
        .send()
        .await
        .map_err(|e| {
            classify_sdk_error(&format!("describing execution {}", detail.execution_arn), e)
        })?;
    let input_text = described.input().unwrap_or("{}");
    let input: serde_json::Value = serde_json::from_str(input_text).unwrap_or_default();
    // Lenient: an input run-guard refused still names its environment, or none.
    let environment = serde_json::from_value::<ExecutionInput>(input.clone())
        .ok()
        .and_then(|i| i.environment)
        .or_else(|| input["environment"].as_str().map(str::to_string))
        .filter(|e| labflow_core::config::check_environment_name(e).is_ok());

    let mut output = Output {
        phase: "cleaned-up".into(),
        reason: None,
        environment: environment.clone(),
        lock_released: false,
        lock: None,
        commit_status: None,
    };
    if let Some(env) = &environment {
        match labflow_run_guard::lock::release(&ctx.run_guard, env, &detail.execution_arn).await? {
            None => output.lock_released = true,
            Some(why) => output.lock = Some(why),
        }
    }
    // A caught failure went through ReportFailure and ReleaseAfterFailure: its status is posted
    // and its lock free. Only an environment-less FAILED run is ambiguous; posting again is
    // harmless (same state, same context).
    let post = detail.status != "FAILED" || output.lock_released || environment.is_none();
    if post {
        let report = labflow_github_status::handle(
            &ctx.github_status,
            labflow_github_status::Input {
                state: CommitState::Failure,
                execution_arn: detail.execution_arn.clone(),
                execution_input: input,
                error: Some(error_of(detail)),
            },
        )
        .await?;
        output.commit_status = Some(report);
    } else {
        output.reason = Some("the execution's failure path already reported it".into());
    }
    tracing::info!(
        execution_arn = %detail.execution_arn,
        status = %detail.status,
        environment = environment.as_deref().unwrap_or(""),
        lock_released = output.lock_released,
        posted = output.commit_status.as_ref().is_some_and(|s| s.posted),
        "execution ended outside its failure path"
    );
    Ok(output)
}
