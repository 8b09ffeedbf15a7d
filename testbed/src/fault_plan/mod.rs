//! The fault plan: what to inject (request rules, failing objects), shared by every simulator
//! that consults it (kubesim, the EKS simulator, the simulated controllers). It depends on none
//! of them, so each can depend on it; [`crate::faults`] builds the tools on top (object faults on
//! a kubesim, the HTTP control API) and re-exports these types.

mod failure;
mod rules;

pub use failure::ObjectFailure;
pub use rules::{Action, FaultAction, RequestInfo, Rule, RuleError, Side};

use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct Inner {
    next_id: u64,
    rules: Vec<(u64, rules::RuleState)>,
    failures: Vec<ObjectFailure>,
}

/// The faults in force. Cheap to clone; every clone sees the same plan.
#[derive(Clone, Default)]
pub struct FaultPlan {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for FaultPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("FaultPlan")
            .field("rules", &inner.rules.len())
            .field("failures", &inner.failures.len())
            .finish()
    }
}

impl FaultPlan {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Rules are plain data; a panic elsewhere leaves them usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a request rule; returns its id (for [`FaultPlan::remove`]).
    pub fn add(&self, rule: Rule) -> u64 {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.rules.push((id, rules::RuleState::new(rule)));
        id
    }

    pub fn remove(&self, id: u64) -> bool {
        let mut inner = self.lock();
        let before = inner.rules.len();
        inner.rules.retain(|(i, _)| *i != id);
        inner.rules.len() != before
    }

    /// Removes every request rule and object failure.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.rules.clear();
        inner.failures.clear();
    }

    /// The rules in force with how often each has fired.
    pub fn rules(&self) -> Vec<(u64, Rule, u64)> {
        self.lock()
            .rules
            .iter()
            .map(|(id, r)| (*id, r.rule.clone(), r.fired))
            .collect()
    }

    /// What to do with a request: the first rule that fires decides (rules are checked in the
    /// order they were added; every matching rule counts the request).
    pub fn check(&self, request: &RequestInfo) -> Option<FaultAction> {
        let mut inner = self.lock();
        let mut decided = None;
        for (_, state) in inner.rules.iter_mut() {
            if let Some(action) = state.offer(request) {
                if decided.is_none() {
                    decided = Some(action);
                }
            }
        }
        decided
    }

    /// Marks an object as failed: the simulated controllers report Ready=False / Stalled=True
    /// with this reason and message on every reconcile until [`FaultPlan::clear_failure`].
    pub fn fail_object(&self, failure: ObjectFailure) {
        let mut inner = self.lock();
        inner.failures.retain(|f| !f.same_object(&failure));
        inner.failures.push(failure);
    }

    pub fn clear_failure(&self, kind: &str, namespace: Option<&str>, name: &str) -> bool {
        let mut inner = self.lock();
        let before = inner.failures.len();
        inner.failures.retain(|f| !f.matches(kind, namespace, name));
        inner.failures.len() != before
    }

    /// The failure injected for an object, if any.
    pub fn failure(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<ObjectFailure> {
        self.lock()
            .failures
            .iter()
            .find(|f| f.matches(kind, namespace, name))
            .cloned()
    }

    pub fn failures(&self) -> Vec<ObjectFailure> {
        self.lock().failures.clone()
    }
}
