//! Execution history, shaped like Step Functions' GetExecutionHistory events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Event types, named as in GetExecutionHistory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    ExecutionStarted,
    ExecutionSucceeded,
    ExecutionFailed,
    ExecutionTimedOut,
    PassStateEntered,
    PassStateExited,
    TaskStateEntered,
    TaskScheduled,
    TaskStarted,
    TaskSucceeded,
    TaskFailed,
    TaskTimedOut,
    TaskStateExited,
    ChoiceStateEntered,
    ChoiceStateExited,
    WaitStateEntered,
    WaitStateExited,
    SucceedStateEntered,
    SucceedStateExited,
    FailStateEntered,
    ParallelStateEntered,
    ParallelStateStarted,
    ParallelStateSucceeded,
    ParallelStateFailed,
    ParallelStateExited,
    MapStateEntered,
    MapStateStarted,
    MapIterationStarted,
    MapIterationSucceeded,
    MapIterationFailed,
    MapIterationAborted,
    MapStateSucceeded,
    MapStateFailed,
    MapStateExited,
}

impl EventType {
    pub fn as_str(self) -> String {
        format!("{self:?}")
    }
}

/// One history event. `timestamp` is on the executor's virtual clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    pub id: u64,
    pub timestamp: DateTime<Utc>,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The state the event belongs to (none for execution-level events).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub state: Option<String>,
    /// Type-specific details (input, output, error, cause, resource, retry, ...).
    #[serde(skip_serializing_if = "Value::is_null", default)]
    pub details: Value,
}

/// Called for every event as it is recorded (e.g. to stream progress).
pub type Listener = std::sync::Arc<dyn Fn(&HistoryEvent) + Send + Sync>;
