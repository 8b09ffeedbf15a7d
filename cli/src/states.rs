//! `labflow states run|lint`: run or lint an Amazon States Language definition locally.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use labflow_states::{
    Execution, ExecutionStatus, Executor, HistoryEvent, Listener, Options, RegistryInvoker,
    StateMachine, TaskInvoker,
};
use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub struct StatesArgs {
    #[command(subcommand)]
    pub command: StatesCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum StatesCommand {
    /// Run a definition locally (virtual clock) and print its output and history.
    Run(RunArgs),
    /// Lint a definition: unknown fields, transitions, Choice rules, Retry/Catch, paths, intrinsics.
    Lint(LintArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The state machine definition (ASL JSON).
    pub definition: PathBuf,
    /// Execution input (JSON file); `{}` when omitted.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Print one JSON document (status, output or error, history) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Stop the execution (States.Runtime) after this many state transitions.
    #[arg(long, default_value_t = 25_000)]
    pub max_transitions: u64,
    /// The state machine's name ($$.StateMachine.Name, and part of the ARNs in the context
    /// object); StartExecution's naming rules apply.
    #[arg(long, default_value = "local")]
    pub state_machine_name: String,
    /// The execution's name ($$.Execution.Name); default: the definition's file stem.
    #[arg(long)]
    pub execution_name: Option<String>,
    /// Seed for retry jitter, States.UUID and States.MathRandom.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stream history events to stderr as they happen.
    #[arg(long)]
    pub progress: bool,
}

#[derive(Debug, clap::Args)]
pub struct LintArgs {
    /// The state machine definition (ASL JSON).
    pub definition: PathBuf,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: StatesArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match args.command {
        StatesCommand::Lint(a) => lint(&a, &mut out),
        // No labflow functions are registered yet: Task states fail with a clear
        // Lambda.ResourceNotFoundException naming the resource.
        StatesCommand::Run(a) => run_with_invoker(&a, Arc::new(RegistryInvoker::new()), &mut out),
    }
}

/// Result of loading: the machine, or the lint findings already printed.
enum Loaded {
    Machine(StateMachine),
    Invalid,
}

fn load(path: &Path, as_json: bool, out: &mut dyn Write) -> anyhow::Result<Loaded> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    match labflow_states::lint(&value) {
        Ok(m) => Ok(Loaded::Machine(m)),
        Err(errs) => {
            if as_json {
                let list: Vec<Value> = errs
                    .0
                    .iter()
                    .map(|e| json!({ "at": e.at, "message": e.message }))
                    .collect();
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&json!({ "valid": false, "errors": list }))?
                )?;
            } else {
                for e in &errs.0 {
                    writeln!(out, "{}: {e}", path.display())?;
                }
                writeln!(out, "{} problem(s) in {}", errs.0.len(), path.display())?;
            }
            Ok(Loaded::Invalid)
        }
    }
}

/// `labflow states lint`.
pub fn lint(args: &LintArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match load(&args.definition, args.json, out)? {
        Loaded::Invalid => Ok(ExitCode::from(1)),
        Loaded::Machine(m) => {
            if args.json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&json!({ "valid": true, "errors": [] }))?
                )?;
            } else {
                writeln!(
                    out,
                    "{}: ok ({} states at the top level)",
                    args.definition.display(),
                    m.scope.states.len()
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `labflow states run` with the given invoker (the lifecycle plugs labflow's functions in here).
pub fn run_with_invoker(
    args: &RunArgs,
    invoker: Arc<dyn TaskInvoker>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let machine = match load(&args.definition, args.json, out)? {
        Loaded::Machine(m) => m,
        Loaded::Invalid => return Ok(ExitCode::from(1)),
    };
    let input: Value = match &args.input {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_str(&text).with_context(|| format!("{} is not JSON", p.display()))?
        }
        None => json!({}),
    };
    for r in machine.task_resources() {
        if !invoker.knows(&r) {
            eprintln!("warning: no task handler for {r:?}; Task states calling it will fail");
        }
    }
    let start = chrono::Utc::now();
    // Progress goes to stderr so stdout stays the report.
    let listener: Option<Listener> = args.progress.then(|| {
        let l: Listener = Arc::new(move |e: &HistoryEvent| eprintln!("{}", event_line(e, start)));
        l
    });
    let options = Options {
        max_transitions: args.max_transitions,
        seed: args.seed,
        start_time: start,
        execution_name: args.execution_name.clone().unwrap_or_else(|| {
            args.definition
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "local".into())
        }),
        state_machine_name: args.state_machine_name.clone(),
        listener,
        ..Options::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let execution = match runtime.block_on(
        Executor::new(machine, invoker)
            .with_options(options)
            .run(input),
    ) {
        Ok(e) => e,
        Err(e) => {
            // What StartExecution would refuse: bad usage or input.
            eprintln!("labflow states run: the execution cannot start: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    report(&execution, start, args.json, out)?;
    Ok(match execution.status {
        ExecutionStatus::Succeeded { .. } => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

fn event_line(e: &HistoryEvent, start: chrono::DateTime<chrono::Utc>) -> String {
    let offset = (e.timestamp - start).num_milliseconds() as f64 / 1000.0;
    let state = e.state.as_deref().unwrap_or("");
    let mut line = format!(
        "{:>4}  +{offset:>8.1}s  {:<24} {state}",
        e.id,
        e.kind.as_str()
    );
    if let Some(err) = e.details.get("error").and_then(Value::as_str) {
        let cause = e.details.get("cause").and_then(Value::as_str).unwrap_or("");
        line.push_str(&format!("  {err}: {cause}"));
    }
    if let Some(delay) = e
        .details
        .pointer("/retry/delaySeconds")
        .and_then(Value::as_f64)
    {
        line.push_str(&format!("  (retry in {delay} s)"));
    }
    if let Some(waited) = e.details.get("waitedSeconds").and_then(Value::as_f64) {
        line.push_str(&format!("  (waited {waited} s)"));
    }
    line
}

/// Prints the result: JSON, or history + output + status as text.
pub fn report(
    e: &Execution,
    start: chrono::DateTime<chrono::Utc>,
    as_json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if as_json {
        writeln!(out, "{}", serde_json::to_string_pretty(e)?)?;
        return Ok(());
    }
    writeln!(out, "history:")?;
    for ev in &e.history {
        writeln!(out, "{}", event_line(ev, start))?;
    }
    let secs = e.virtual_elapsed.as_secs_f64();
    match &e.status {
        ExecutionStatus::Succeeded { output } => {
            writeln!(out, "output:\n{}", serde_json::to_string_pretty(output)?)?;
            writeln!(
                out,
                "status: SUCCEEDED ({} transitions, {} history events, {secs} s virtual time)",
                e.transitions,
                e.history.len()
            )?;
        }
        ExecutionStatus::Failed { failure } | ExecutionStatus::TimedOut { failure } => {
            let word = if matches!(e.status, ExecutionStatus::TimedOut { .. }) {
                "TIMED_OUT"
            } else {
                "FAILED"
            };
            writeln!(
                out,
                "status: {word} {} ({} transitions, {} history events, {secs} s virtual time)",
                failure,
                e.transitions,
                e.history.len()
            )?;
        }
    }
    Ok(())
}
