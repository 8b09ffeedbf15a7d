//! Fault injection (DESIGN.md §6): failing objects, stuck finalizers, HTTP errors on the Nth (or
//! every matching) request, hangs and latency — on the Kubernetes side (kubesim consults the plan
//! before handling a request) and on the AWS side (the EKS simulator does the same; the AWS
//! emulator, moto, is not covered). The control API ([`ControlServer`]) injects them over HTTP.
//!
//! ```no_run
//! use labflow_testbed::faults::{FaultPlan, Rule, Action, Side};
//! let plan = FaultPlan::new();
//! // the 3rd request to kubesim answers 429, once
//! plan.add(Rule::new(Side::Kubernetes, Action::Status { code: 429 }).nth(3));
//! ```

mod control;
mod objects;

pub use crate::fault_plan::{
    Action, FaultAction, FaultPlan, ObjectFailure, RequestInfo, Rule, RuleError, Side,
};
pub use control::{ControlServer, ControlStartError};
pub use objects::{ObjectFaultError, ObjectFaults, STUCK_FINALIZER};
