//! `labflow start`: StartExecution of the lifecycle with the execution input run-guard validates
//! (`labflow_core::contract::ExecutionInput`).
//!
//! A person starts create, sync and teardown as source `console`. run-guard accepts
//! `teardown-all` only from the nightly schedule, so `--action teardown-all` starts exactly what
//! the schedule starts (`{"action": "teardown-all", "source": {"kind": "schedule"}}`): the nightly
//! teardown, now.

use std::process::ExitCode;

use labflow_core::contract::{Action, ExecutionInput, Source};

use super::{aws_error, console_link, MachineArgs, RemoteError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ActionArg {
    Create,
    Sync,
    Teardown,
    TeardownAll,
}

impl From<ActionArg> for Action {
    fn from(a: ActionArg) -> Action {
        match a {
            ActionArg::Create => Action::Create,
            ActionArg::Sync => Action::Sync,
            ActionArg::Teardown => Action::Teardown,
            ActionArg::TeardownAll => Action::TeardownAll,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Exit codes: 0 the execution was started (its ARN and console link are \
printed); 2 bad usage or input (missing or invalid --env, unknown state machine, AWS refused the \
call). run-guard validates the input again when the execution starts."
)]
pub struct StartArgs {
    /// The environment (`/labflow/environments/<env>`); required except for teardown-all.
    #[arg(long = "env")]
    pub environment: Option<String>,
    /// What to do. teardown-all runs the nightly teardown now (as the schedule starts it).
    #[arg(long, value_enum)]
    pub action: ActionArg,
    /// Seconds between a looping step's polls (the state machine's default when omitted).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub poll_seconds: Option<u32>,
    /// With --action teardown: tear the environment down even though its config says
    /// `protected` (nothing else removes a protected environment).
    #[arg(long)]
    pub force: bool,
    /// Who asked (recorded in the input as source.requestedBy); default `$USER`.
    #[arg(long)]
    pub requested_by: Option<String>,
    #[command(flatten)]
    pub machine: MachineArgs,
}

/// The execution input for a start, checked as run-guard will check its shape.
pub fn execution_input(args: &StartArgs) -> Result<ExecutionInput, RemoteError> {
    let action = Action::from(args.action);
    let environment = match (action, &args.environment) {
        (Action::TeardownAll, Some(_)) => {
            return Err(RemoteError::Usage(
                "teardown-all takes no --env (hint: it tears down every environment with nightly teardown on; use --action teardown --env <env> for one)".into(),
            ))
        }
        (Action::TeardownAll, None) => None,
        (_, None) => {
            return Err(RemoteError::Usage(format!(
                "--action {} needs --env (hint: the environment's name, as in /labflow/environments/<env>)",
                action.as_str()
            )))
        }
        (_, Some(env)) => {
            labflow_core::config::check_environment_name(env).map_err(|e| {
                RemoteError::Usage(format!(
                    "{} (hint: e.g. --env lab)",
                    e.message()
                ))
            })?;
            Some(env.clone())
        }
    };
    if args.force && action != Action::Teardown {
        return Err(RemoteError::Usage(
            "--force only applies to --action teardown (hint: it tears down a protected environment)"
                .into(),
        ));
    }
    let source = if action == Action::TeardownAll {
        Source::Schedule
    } else {
        let requested_by = args
            .requested_by
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| std::env::var("USERNAME").ok())
            .filter(|s| !s.trim().is_empty());
        Source::Console { requested_by }
    };
    Ok(ExecutionInput {
        action,
        environment,
        source,
        poll_seconds: args.poll_seconds,
        force: args.force,
    })
}

/// The input as sent: JSON with absent optional fields left out (the console shows it).
pub fn input_json(input: &ExecutionInput) -> Result<String, RemoteError> {
    input
        .to_json()
        .map_err(|e| RemoteError::Usage(format!("cannot encode the execution input: {e}")))
}

/// `cli-<env>-<action>-<UTC timestamp>-<4 hex>`: at most 80 characters of `[0-9A-Za-z_-]`, and
/// the environment can be read back from it (`all` for teardown-all).
pub fn execution_name(input: &ExecutionInput, now: chrono::DateTime<chrono::Utc>) -> String {
    let env = input.environment.as_deref().unwrap_or("all");
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "cli-{env}-{}-{}-{}",
        input.action.as_str(),
        now.format("%Y%m%dT%H%M%SZ"),
        &suffix[..4]
    )
}

/// What `start` started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub execution_arn: String,
    pub name: String,
    pub input: String,
    pub console_link: String,
}

/// Starts one execution of `state_machine_arn` with `input`.
pub async fn start(
    sfn: &aws_sdk_sfn::Client,
    state_machine_arn: &str,
    input: &ExecutionInput,
) -> Result<Started, RemoteError> {
    let name = execution_name(input, chrono::Utc::now());
    let json = input_json(input)?;
    let out = sfn
        .start_execution()
        .state_machine_arn(state_machine_arn)
        .name(&name)
        .input(&json)
        .send()
        .await
        .map_err(|e| aws_error("starting the execution", e))?;
    let arn = out.execution_arn().to_string();
    Ok(Started {
        console_link: console_link(&arn),
        execution_arn: arn,
        name,
        input: json,
    })
}

pub fn run(args: StartArgs) -> anyhow::Result<ExitCode> {
    let input = execution_input(&args)?;
    let runtime = super::runtime()?;
    let started = runtime.block_on(async {
        let (sfn, region) = super::client_from_env().await?;
        let machine = super::resolve_state_machine(&sfn, &region, &args.machine).await?;
        start(&sfn, &machine, &input).await
    })?;
    println!("{}", started.execution_arn);
    println!("{}", started.console_link);
    eprintln!(
        "started {} with input {} (follow it: labflow status --execution {})",
        started.name, started.input, started.execution_arn
    );
    Ok(ExitCode::SUCCESS)
}
