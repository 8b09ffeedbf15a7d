//! `labflow status`: recent executions of the lifecycle (ListExecutions + DescribeExecution for
//! each one's environment and action), and for one execution its current state, failure and last
//! history events (GetExecutionHistory).

use std::io::Write;
use std::process::ExitCode;

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use serde_json::Value;

use super::{aws_error, console_link, MachineArgs, RemoteError, When};

#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Exit codes: 0 ok (and the execution shown in detail, if any, is running or \
succeeded); 1 the execution shown in detail failed, timed out or was aborted; 2 bad usage or input \
(unknown state machine or execution, AWS refused the call)."
)]
pub struct StatusArgs {
    /// Only executions of this environment (read from each execution's input); the most recent
    /// one is also shown in detail.
    #[arg(long = "env")]
    pub environment: Option<String>,
    /// Show this execution in detail instead of listing.
    #[arg(long, conflicts_with = "environment")]
    pub execution: Option<String>,
    /// How many executions to list.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// How many of the last history events to show for an execution in detail.
    #[arg(long, default_value_t = 15)]
    pub events: usize,
    #[command(flatten)]
    pub machine: MachineArgs,
}

/// Executions listed at most while looking for `--env` matches.
const MAX_SCANNED: usize = 200;

/// One execution as the list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub execution_arn: String,
    pub name: String,
    pub status: String,
    pub start: String,
    pub stop: Option<String>,
    pub environment: Option<String>,
    pub action: Option<String>,
    pub source: Option<String>,
    pub input: Option<Value>,
}

/// One execution in detail.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    pub summary: Summary,
    /// The state entered last (still running in it, or where it ended).
    pub state: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// The last events, oldest first, one line each.
    pub events: Vec<String>,
}

impl Detail {
    pub fn failed(&self) -> bool {
        matches!(
            self.summary.status.as_str(),
            "FAILED" | "TIMED_OUT" | "ABORTED"
        )
    }
}

fn from_input(
    input: Option<&str>,
) -> (
    Option<Value>,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    let Some(value) = input.and_then(|s| serde_json::from_str::<Value>(s).ok()) else {
        return (None, None, None, None);
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let environment = text(value.get("environment"));
    let action = text(value.get("action"));
    let source = text(value.pointer("/source/kind"));
    (Some(value), environment, action, source)
}

/// DescribeExecution as a [`Summary`].
pub async fn describe(sfn: &aws_sdk_sfn::Client, arn: &str) -> Result<Summary, RemoteError> {
    let out = sfn
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .map_err(|e| aws_error("describing the execution", e))?;
    let (input, environment, action, source) = from_input(out.input());
    Ok(Summary {
        execution_arn: out.execution_arn().to_string(),
        name: out.name().unwrap_or_default().to_string(),
        status: out.status().as_str().to_string(),
        start: When(out.start_date()).to_string(),
        stop: out.stop_date().map(|d| When(d).to_string()),
        environment,
        action,
        source,
        input,
    })
}

/// The most recent executions (newest first), at most `limit`, of `environment` if given.
pub async fn list(
    sfn: &aws_sdk_sfn::Client,
    state_machine_arn: &str,
    environment: Option<&str>,
    limit: usize,
) -> Result<Vec<Summary>, RemoteError> {
    let mut items = Vec::new();
    let mut pages = sfn
        .list_executions()
        .state_machine_arn(state_machine_arn)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("listing executions", e))?;
        items.extend(page.executions().iter().cloned());
        if items.len() >= MAX_SCANNED {
            break;
        }
    }
    // AWS lists newest first; emulators may not.
    items.sort_by(|a, b| b.start_date().cmp(a.start_date()));
    let mut out = Vec::new();
    for item in items.iter().take(MAX_SCANNED) {
        if out.len() >= limit {
            break;
        }
        // Executions this CLI started carry the environment in their name: skip the describe
        // call for names that cannot match.
        if let Some(env) = environment {
            let cli_name = item.name().starts_with("cli-");
            if cli_name && !item.name().starts_with(&format!("cli-{env}-")) {
                continue;
            }
        }
        let summary = describe(sfn, item.execution_arn()).await?;
        if environment.is_none() || summary.environment.as_deref() == environment {
            out.push(summary);
        }
    }
    Ok(out)
}

/// One history event as a line: `id  time  type  detail`.
fn event_line(e: &HistoryEvent) -> String {
    let mut line = format!(
        "{:>5}  {}  {}",
        e.id(),
        When(e.timestamp()),
        e.r#type().as_str()
    );
    if let Some(name) = state_name(e) {
        line.push_str(&format!("  {name}"));
    }
    if let Some(d) = e.task_scheduled_event_details() {
        line.push_str(&format!("  {}:{}", d.resource_type(), d.resource()));
    }
    if let Some((error, cause)) = failure_of(e) {
        line.push_str(&format!("  {error}: {}", one_line(&cause, 200)));
    }
    line
}

fn state_name(e: &HistoryEvent) -> Option<&str> {
    e.state_entered_event_details()
        .map(|d| d.name())
        .or_else(|| e.state_exited_event_details().map(|d| d.name()))
}

/// Error and cause of a failure event of any kind.
fn failure_of(e: &HistoryEvent) -> Option<(String, String)> {
    macro_rules! pick {
        ($($details:ident),* $(,)?) => {
            $(
                if let Some(d) = e.$details() {
                    return Some((
                        d.error().unwrap_or_default().to_string(),
                        d.cause().unwrap_or_default().to_string(),
                    ));
                }
            )*
        };
    }
    pick!(
        execution_failed_event_details,
        execution_aborted_event_details,
        execution_timed_out_event_details,
        task_failed_event_details,
        task_timed_out_event_details,
        task_start_failed_event_details,
        task_submit_failed_event_details,
        lambda_function_failed_event_details,
        lambda_function_timed_out_event_details,
        lambda_function_start_failed_event_details,
        lambda_function_schedule_failed_event_details,
        map_run_failed_event_details,
        evaluation_failed_event_details,
    );
    None
}

fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let mut s: String = flat.chars().take(max - 1).collect();
    s.push('…');
    s
}

/// DescribeExecution + the last `events` history events.
pub async fn detail(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
    events: usize,
) -> Result<Detail, RemoteError> {
    let summary = describe(sfn, arn).await?;
    let out = sfn
        .get_execution_history()
        .execution_arn(arn)
        .reverse_order(true)
        .max_results(events.clamp(1, 1000) as i32)
        .include_execution_data(false)
        .send()
        .await
        .map_err(|e| aws_error("reading the execution history", e))?;
    let mut history: Vec<HistoryEvent> = out.events().to_vec();
    // Newest first by id whatever order the service answered in, then the last `events`.
    history.sort_by_key(|e| std::cmp::Reverse(e.id()));
    history.truncate(events.max(1));
    let state = history.iter().find_map(|e| {
        e.state_entered_event_details()
            .map(|d| d.name().to_string())
    });
    let (mut error, mut cause) = (None, None);
    if matches!(summary.status.as_str(), "FAILED" | "TIMED_OUT" | "ABORTED") {
        if let Some((e, c)) = history.iter().find_map(failure_of) {
            error = Some(e).filter(|s| !s.is_empty());
            cause = Some(c).filter(|s| !s.is_empty());
        }
    }
    history.reverse();
    Ok(Detail {
        summary,
        state,
        error,
        cause,
        events: history.iter().map(event_line).collect(),
    })
}

fn write_list(
    out: &mut dyn Write,
    state_machine_arn: &str,
    environment: Option<&str>,
    items: &[Summary],
) -> std::io::Result<()> {
    writeln!(out, "state machine {state_machine_arn}")?;
    if items.is_empty() {
        match environment {
            Some(env) => writeln!(out, "no executions of environment {env}")?,
            None => writeln!(out, "no executions")?,
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:<21} {:<10} {:<16} {:<12} {:<9} NAME",
        "STARTED", "STATUS", "ENV", "ACTION", "SOURCE"
    )?;
    for s in items {
        writeln!(
            out,
            "{:<21} {:<10} {:<16} {:<12} {:<9} {}",
            s.start,
            s.status,
            s.environment.as_deref().unwrap_or("-"),
            s.action.as_deref().unwrap_or("-"),
            s.source.as_deref().unwrap_or("-"),
            s.name
        )?;
    }
    Ok(())
}

fn write_detail(out: &mut dyn Write, d: &Detail) -> std::io::Result<()> {
    let s = &d.summary;
    writeln!(out, "execution   {}", s.execution_arn)?;
    writeln!(out, "status      {}", s.status)?;
    writeln!(
        out,
        "input       env {}, action {}, source {}",
        s.environment.as_deref().unwrap_or("-"),
        s.action.as_deref().unwrap_or("-"),
        s.source.as_deref().unwrap_or("-")
    )?;
    match &s.stop {
        Some(stop) => writeln!(out, "time        {} .. {stop}", s.start)?,
        None => writeln!(out, "time        started {}", s.start)?,
    }
    if let Some(state) = &d.state {
        let word = if s.status == ExecutionStatus::Running.as_str() {
            "current state"
        } else {
            "last state"
        };
        writeln!(out, "{word:<11} {state}")?;
    }
    if let Some(error) = &d.error {
        writeln!(out, "error       {error}")?;
    }
    if let Some(cause) = &d.cause {
        writeln!(out, "cause       {}", one_line(cause, 400))?;
    }
    writeln!(out, "console     {}", console_link(&s.execution_arn))?;
    writeln!(out, "last events:")?;
    for line in &d.events {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

/// Runs `labflow status` with `sfn`, writing the report to `out`; returns the exit code.
pub async fn report(
    sfn: &aws_sdk_sfn::Client,
    region: &str,
    args: &StatusArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    if let Some(arn) = &args.execution {
        if !arn.starts_with("arn:") || !arn.contains(":execution:") {
            return Err(RemoteError::Usage(format!(
                "--execution {arn:?} is not an execution ARN (hint: `labflow start` prints it; arn:aws:states:<region>:<account>:execution:<machine>:<name>)"
            ))
            .into());
        }
        let d = detail(sfn, arn, args.events).await?;
        write_detail(out, &d)?;
        return Ok(if d.failed() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    let machine = super::resolve_state_machine(sfn, region, &args.machine).await?;
    let env = args.environment.as_deref();
    let items = list(sfn, &machine, env, args.limit.max(1)).await?;
    write_list(out, &machine, env, &items)?;
    if let (Some(_), Some(latest)) = (env, items.first()) {
        let d = detail(sfn, &latest.execution_arn, args.events).await?;
        writeln!(out)?;
        write_detail(out, &d)?;
        if d.failed() {
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let (sfn, region) = super::client_from_env().await?;
        let mut out = std::io::stdout().lock();
        report(&sfn, &region, &args, &mut out).await
    })
}
