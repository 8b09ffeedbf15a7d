//! Deployments become Available at once (the scheduler, kubelet and replica sets in one step).

use super::objects::{self, Client};
use super::{is_kind, Reconciler};
use crate::faults::FaultPlan;
use crate::kubesim::{ChangeEvent, Store};
use serde_json::{json, Value};

pub(crate) struct WorkloadController {
    client: Client,
    plan: FaultPlan,
}

impl WorkloadController {
    pub fn new(store: &Store, plan: FaultPlan) -> Self {
        WorkloadController {
            client: Client::new(store, "kube-controller-manager"),
            plan,
        }
    }

    fn reconcile(&self, d: &Value) {
        if objects::is_deleting(d) {
            return;
        }
        let generation = objects::generation(d);
        let replicas = d
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let mut conditions = objects::conditions(d);
        let failure = self
            .plan
            .failure("Deployment", objects::namespace(d), objects::name(d));
        let status = match failure {
            Some(f) => {
                // A failing rollout: nothing available, progress deadline exceeded.
                objects::set_condition(
                    &mut conditions,
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    &f.message,
                    generation,
                );
                objects::set_condition(
                    &mut conditions,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    &f.message,
                    generation,
                );
                json!({
                    "observedGeneration": generation,
                    "replicas": replicas,
                    "updatedReplicas": replicas,
                    "unavailableReplicas": replicas,
                    "conditions": conditions,
                })
            }
            None => {
                let name = objects::name(d);
                objects::set_condition(
                    &mut conditions,
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                    generation,
                );
                objects::set_condition(
                    &mut conditions,
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    &format!(
                        "ReplicaSet \"{name}-{}\" has successfully progressed.",
                        &objects::uid(d).replace('-', "")[..10.min(objects::uid(d).len())]
                    ),
                    generation,
                );
                json!({
                    "observedGeneration": generation,
                    "replicas": replicas,
                    "readyReplicas": replicas,
                    "availableReplicas": replicas,
                    "updatedReplicas": replicas,
                    "conditions": conditions,
                })
            }
        };
        // Deployment conditions carry lastUpdateTime too and no observedGeneration.
        let status = strip_observed(status);
        if let Err(e) = self.client.set_status(d, status) {
            tracing::debug!(deployment = %objects::ObjRef::of(d).display(), error = %e, "workloads: status");
        }
    }
}

fn strip_observed(mut status: Value) -> Value {
    if let Some(Value::Array(conditions)) = status.get_mut("conditions") {
        for c in conditions {
            if let Some(m) = c.as_object_mut() {
                m.remove("observedGeneration");
                let t = m.get("lastTransitionTime").cloned().unwrap_or(Value::Null);
                m.insert("lastUpdateTime".into(), t);
            }
        }
    }
    status
}

impl Reconciler for WorkloadController {
    fn interested(&self, e: &ChangeEvent) -> bool {
        is_kind(e, "apps", &["deployments"])
    }

    async fn pass(&mut self) {
        for d in self.client.list("apps/v1", "Deployment", None) {
            self.reconcile(&d);
        }
    }
}
