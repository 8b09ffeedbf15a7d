//! `labflow start` and `labflow status`: the lifecycle state machine in real AWS Step Functions.
//!
//! Region and credentials come from the standard AWS environment (AWS_REGION, AWS_PROFILE,
//! AWS_ACCESS_KEY_ID, ...); AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_SFN redirect the calls (the tests
//! point them at the AWS emulator).

pub mod start;
pub mod status;

use std::fmt;

use anyhow::anyhow;
use aws_sdk_sfn::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sfn::primitives::DateTime;

/// Exactly the IAM actions `labflow start` and `labflow status` call; Terraform's operator
/// policy (infra/terraform/iam_operator.tf) grants these and nothing else (checked by
/// tests/infra against the rendered policy).
pub const AWS_OPERATIONS: &[&str] = &[
    "states:DescribeExecution",
    "states:GetExecutionHistory",
    "states:ListExecutions",
    "states:ListStateMachines",
    "states:StartExecution",
];

/// What AWS checks on the caller's behalf during those calls: the state machine's data is
/// encrypted with labflow's key (infra/terraform/state_machine.tf).
pub const IMPLIED_PERMISSIONS: &[&str] = &["kms:Decrypt", "kms:GenerateDataKey"];

/// The state machine Terraform deploys.
pub const DEFAULT_STATE_MACHINE_NAME: &str = "labflow-lifecycle";

/// Which state machine: an ARN, else a name looked up with ListStateMachines.
#[derive(Debug, Clone, clap::Args)]
pub struct MachineArgs {
    /// The state machine's ARN (skips the lookup by name).
    #[arg(long, conflicts_with = "state_machine_name")]
    pub state_machine_arn: Option<String>,
    /// The state machine's name, looked up in the configured account and region.
    #[arg(long, default_value = DEFAULT_STATE_MACHINE_NAME)]
    pub state_machine_name: String,
}

/// Why a command against AWS could not do its job (exit 2: input or environment is wrong).
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("no AWS region configured (hint: set AWS_REGION or AWS_PROFILE)")]
    NoRegion,
    #[error("no state machine named {name:?} in {region} (hint: pass --state-machine-arn, or check AWS_REGION / AWS_PROFILE)")]
    NoStateMachine { name: String, region: String },
    #[error("{0}")]
    Usage(String),
    #[error("{what}: {message} (hint: {hint})")]
    Aws {
        what: String,
        message: String,
        hint: &'static str,
    },
}

/// An SDK error as one line, with a hint that fits its kind.
pub fn aws_error<E>(what: &str, err: aws_sdk_sfn::error::SdkError<E>) -> RemoteError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_sfn::error::SdkError;
    let hint = match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            "is the endpoint reachable? check AWS_REGION and AWS_ENDPOINT_URL"
        }
        SdkError::ServiceError(e) => match e.err().code() {
            Some(
                "AccessDeniedException"
                | "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "ExpiredTokenException",
            ) => "check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID) and their permissions",
            Some("ExecutionDoesNotExist" | "StateMachineDoesNotExist" | "InvalidArn") => {
                "check the ARN and the region it is in"
            }
            _ => "see the AWS error above",
        },
        _ => "check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID) and AWS_REGION",
    };
    let message = match &err {
        SdkError::ServiceError(e) => {
            let meta = e.err();
            match (meta.code(), meta.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_string(),
                _ => DisplayErrorContext(&err).to_string(),
            }
        }
        _ => DisplayErrorContext(&err).to_string(),
    };
    RemoteError::Aws {
        what: what.to_string(),
        message: message.replace('\n', " "),
        hint,
    }
}

/// A Step Functions client from the standard AWS environment.
pub async fn client_from_env() -> Result<(aws_sdk_sfn::Client, String), RemoteError> {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(labflow_core::aws::https_client())
        .load()
        .await;
    let region = config
        .region()
        .map(|r| r.to_string())
        .ok_or(RemoteError::NoRegion)?;
    Ok((aws_sdk_sfn::Client::new(&config), region))
}

/// The state machine's ARN: as given, or found by name.
pub async fn resolve_state_machine(
    sfn: &aws_sdk_sfn::Client,
    region: &str,
    args: &MachineArgs,
) -> Result<String, RemoteError> {
    if let Some(arn) = &args.state_machine_arn {
        if !arn.starts_with("arn:") || !arn.contains(":stateMachine:") {
            return Err(RemoteError::Usage(format!(
                "--state-machine-arn {arn:?} is not a state machine ARN (hint: arn:aws:states:<region>:<account>:stateMachine:<name>)"
            )));
        }
        return Ok(arn.clone());
    }
    let mut pages = sfn.list_state_machines().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("listing state machines", e))?;
        if let Some(found) = page
            .state_machines()
            .iter()
            .find(|m| m.name() == args.state_machine_name)
        {
            return Ok(found.state_machine_arn().to_string());
        }
    }
    Err(RemoteError::NoStateMachine {
        name: args.state_machine_name.clone(),
        region: region.to_string(),
    })
}

/// The region an ARN names (`arn:aws:states:<region>:...`).
pub fn arn_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// The Step Functions console page of an execution.
pub fn console_link(execution_arn: &str) -> String {
    let region = arn_region(execution_arn).unwrap_or("us-east-1");
    format!(
        "https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"
    )
}

/// An SDK timestamp as `2025-01-31 12:00:05Z`.
pub struct When<'a>(pub &'a DateTime);

impl fmt::Display for When<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match chrono::DateTime::from_timestamp(self.0.secs(), self.0.subsec_nanos()) {
            Some(t) => write!(f, "{}", t.format("%Y-%m-%d %H:%M:%SZ")),
            None => write!(f, "{}", self.0),
        }
    }
}

/// A tokio runtime for one command.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow!("starting the async runtime: {e}"))
}
