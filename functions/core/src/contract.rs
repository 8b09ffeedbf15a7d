//! The step contract (DESIGN.md §3): execution input, the common step input, and what every step
//! report carries. Payloads are camelCase JSON; unknown fields are an error; no secrets inside.

use serde::{Deserialize, Serialize};

/// What an execution is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Create the environment (or converge it) and wait until healthy.
    Create,
    /// Like create, for a new commit: request a reconcile and wait for that revision.
    Sync,
    /// Destroy one environment.
    Teardown,
    /// Destroy every environment with nightly teardown on (schedule only).
    TeardownAll,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Sync => "sync",
            Action::Teardown => "teardown",
            Action::TeardownAll => "teardown-all",
        }
    }
}

/// Who started the execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum Source {
    /// A verified GitHub push (from github-webhook).
    #[serde(rename_all = "camelCase")]
    Github {
        repository: String,
        branch: String,
        sha: String,
        delivery_id: String,
        #[serde(default)]
        pusher: Option<String>,
    },
    /// The nightly EventBridge schedule.
    Schedule,
    /// A person, through the console or `labflow start`.
    #[serde(rename_all = "camelCase")]
    Console {
        #[serde(default)]
        requested_by: Option<String>,
    },
}

impl Source {
    /// The commit an execution must reach, when it came from a push.
    pub fn target_sha(&self) -> Option<&str> {
        match self {
            Source::Github { sha, .. } => Some(sha),
            _ => None,
        }
    }

    pub fn is_schedule(&self) -> bool {
        matches!(self, Source::Schedule)
    }
}

/// The execution input every state machine run starts with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutionInput {
    pub action: Action,
    /// Required for every action except `teardown-all`.
    #[serde(default)]
    pub environment: Option<String>,
    pub source: Source,
    /// Seconds between polls of a looping step (default in the state machine).
    #[serde(default)]
    pub poll_seconds: Option<u32>,
    /// A teardown of a protected environment, asked for by a person (console source only).
    #[serde(default, skip_serializing_if = "is_false")]
    pub force: bool,
}

fn is_false(value: &bool) -> bool {
    !value
}

impl ExecutionInput {
    /// The input as sent to StartExecution: JSON with absent optional fields left out rather
    /// than sent as `null` (the console shows this JSON).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_value(self)
            .map(without_nulls)
            .map(|v| v.to_string())
    }
}

fn without_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

/// What every step gets: the environment, the action and its source (the state machine passes
/// these through from the execution input).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepInput {
    pub environment: String,
    pub action: Action,
    pub source: Source,
    /// `$$.Execution.Id`, for locks, links and status reports.
    #[serde(default)]
    pub execution_arn: Option<String>,
}

/// One write a step made to AWS, as its report lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// What was written, `<kind>/<name>` (e.g. `nodegroup/spot-general`).
    pub resource: String,
    /// The verb, e.g. `create`, `update-version`, `tag`, `delete`.
    pub action: String,
    /// What changed, for people.
    pub detail: String,
}

impl Change {
    pub fn new(
        resource: impl Into<String>,
        action: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Change {
            resource: resource.into(),
            action: action.into(),
            detail: detail.into(),
        }
    }
}
