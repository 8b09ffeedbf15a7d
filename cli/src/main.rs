//! `labflow`: the command-line entry point. Each subcommand is implemented in the library.
//!
//! Exit codes: 0 success, 1 the command ran and found a problem (lint errors, failed execution),
//! 2 bad usage or input (clap's own code for usage errors).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "labflow",
    version,
    about = "Ephemeral EKS + Istio + Flux labs, driven by a state machine",
    after_help = "Exit codes: 0 success; 1 the command ran and found a problem (lint findings, a \
failed execution); 2 bad usage or input (errors are one line with a hint)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run or lint Amazon States Language definitions locally.
    States(labflow_cli::states::StatesArgs),
    /// Lint the Flux (GitOps) tree the clusters sync.
    Gitops(labflow_cli::gitops::GitopsArgs),
    /// Run the lifecycle on this machine: AWS emulator, EKS simulator, simulated controllers.
    Local(labflow_cli::local::LocalArgs),
    /// Lint the lifecycle definition and the GitOps tree together (one report).
    Lint(labflow_cli::lint::LintArgs),
    /// Pin a Flux release: its install.yaml's URL and sha256, into configs and tfvars files.
    Flux(labflow_cli::flux_pin::FluxArgs),
    /// Print the state machine as a Mermaid flowchart, or write it into README.md.
    Diagram(labflow_cli::diagram::DiagramArgs),
    /// Start an execution of the lifecycle in AWS Step Functions.
    Start(labflow_cli::remote::start::StartArgs),
    /// Show recent executions of the lifecycle in AWS, or one execution in detail.
    Status(labflow_cli::remote::status::StatusArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::States(args) => labflow_cli::states::run(args),
        Command::Gitops(args) => labflow_cli::gitops::run(args),
        Command::Local(args) => labflow_cli::local::run(args),
        Command::Lint(args) => labflow_cli::lint::run(args),
        Command::Flux(args) => labflow_cli::flux_pin::run(args),
        Command::Diagram(args) => labflow_cli::diagram::run(args),
        Command::Start(args) => labflow_cli::remote::start::run(args),
        Command::Status(args) => labflow_cli::remote::status::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
