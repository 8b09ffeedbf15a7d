//! Object faults: a failing object (kstatus Failed: Ready=False, Stalled=True) and a finalizer
//! nobody removes.

use super::{FaultPlan, ObjectFailure};
use crate::controllers::objects::{self, Client, ObjRef};
use crate::kubesim::{ApiError, Store};
use serde_json::json;

/// The finalizer [`ObjectFaults::add_stuck_finalizer`] adds: no controller ever removes it.
pub const STUCK_FINALIZER: &str = "testbed.labflow.dev/stuck";

const MANAGER: &str = "labflow-testbed-faults";

#[derive(Debug, thiserror::Error)]
pub enum ObjectFaultError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}: {1}")]
    Api(String, ApiError),
}

/// Object faults on one kubesim.
#[derive(Clone)]
pub struct ObjectFaults {
    client: Client,
    plan: FaultPlan,
}

impl ObjectFaults {
    pub fn new(store: &Store, plan: &FaultPlan) -> Self {
        ObjectFaults {
            client: Client::new(store, MANAGER),
            plan: plan.clone(),
        }
    }

    fn find(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<serde_json::Value> {
        let registry = self.client.store().registry();
        let rt = registry.all().iter().find(|t| t.kind == kind)?.clone();
        let api_version = rt.api_version(rt.versions.first()?);
        self.client
            .get(&ObjRef::new(&api_version, kind, namespace, name))
    }

    /// Makes the object fail now and on every later reconcile until [`ObjectFaults::clear`].
    /// The object need not exist yet: controllers apply the mark when it appears.
    pub fn fail(&self, failure: ObjectFailure) -> Result<(), ObjectFaultError> {
        self.plan.fail_object(failure.clone());
        let Some(obj) = self.find(&failure.kind, failure.namespace.as_deref(), &failure.name)
        else {
            return Ok(());
        };
        let mut status = obj.get("status").cloned().unwrap_or_else(|| json!({}));
        status["conditions"] = json!(objects::failed_conditions(
            &failure,
            &objects::conditions(&obj),
            objects::generation(&obj)
        ));
        status["observedGeneration"] = json!(objects::generation(&obj));
        self.client
            .set_status(&obj, status)
            .map_err(|e| ObjectFaultError::Api(ObjRef::of(&obj).display(), e))
    }

    /// Lifts the failure; the simulated controllers report the object's real state again.
    pub fn clear(&self, kind: &str, namespace: Option<&str>, name: &str) -> bool {
        self.plan.clear_failure(kind, namespace, name)
    }

    /// Adds [`STUCK_FINALIZER`] to the object: deleting it leaves it Terminating until released.
    pub fn add_stuck_finalizer(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), ObjectFaultError> {
        let what = format!("{kind} {}/{name}", namespace.unwrap_or(""));
        let obj = self
            .find(kind, namespace, name)
            .ok_or_else(|| ObjectFaultError::NotFound(what.clone()))?;
        self.client
            .add_finalizer(&obj, STUCK_FINALIZER)
            .map_err(|e| ObjectFaultError::Api(what, e))
    }

    /// Removes [`STUCK_FINALIZER`] again (a Terminating object then goes away).
    pub fn release_stuck_finalizer(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), ObjectFaultError> {
        let what = format!("{kind} {}/{name}", namespace.unwrap_or(""));
        let obj = self
            .find(kind, namespace, name)
            .ok_or_else(|| ObjectFaultError::NotFound(what.clone()))?;
        self.client
            .remove_finalizer(&obj, STUCK_FINALIZER)
            .map_err(|e| ObjectFaultError::Api(what, e))
    }
}
