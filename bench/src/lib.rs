//! labflow-bench: the measuring half of `make bench` (see docs/performance.md).
//!
//! - [`runtime_api`]: a loopback Lambda Runtime API stand-in that timestamps every request;
//! - [`process`]: starting a function binary with exactly the environment Lambda gives it;
//! - [`budgets`]: the targets and the ratio checks the budget test and `--check` apply;
//! - [`webhook_pipeline`]: the webhook's CPU path (shared with the crate's criterion bench).

pub mod budgets;
pub mod process;
pub mod runtime_api;

#[path = "../../functions/github-webhook/benches/pipeline.rs"]
pub mod webhook_pipeline;

/// Every Lambda, in lifecycle order (the first invocations run in this order against one
/// testbed, each leaving the world the next one needs).
pub const FUNCTIONS: &[&str] = &[
    "github-webhook",
    "run-guard",
    "github-status",
    "ensure-cluster",
    "cluster-access",
    "flux-bootstrap",
    "health-check",
    "teardown",
];
