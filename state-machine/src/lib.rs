//! labflow-states: Amazon States Language model, linter and local executor.
//!
//! [`load`] lints a definition into a [`StateMachine`] (every unsupported feature is a load-time
//! error); [`Executor`] runs it with the real ASL semantics on a virtual clock, calling Task
//! states through a [`TaskInvoker`] and recording a GetExecutionHistory-like history.

pub mod choice;
pub mod error;
pub mod exec;
pub mod history;
pub mod intrinsic;
pub mod invoker;
pub mod lint;
pub mod model;
pub mod path;
pub mod rng;
pub mod template;

pub use error::{limits, validate_name, Failure, LintError, LintErrors, LoadError, StartError};
pub use exec::{json_len, Execution, ExecutionStatus, Executor, Options};
pub use history::{EventType, HistoryEvent, Listener};
pub use invoker::{RegistryInvoker, TaskError, TaskInvoker};
pub use lint::{lint, load};
pub use model::StateMachine;
