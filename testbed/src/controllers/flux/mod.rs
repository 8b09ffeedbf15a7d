//! The Flux simulation: source-controller (GitRepository from a local checkout, once its Secret
//! passes the real controller's checks (`git_auth.rs`); HelmRepository,
//! OCIRepository, HelmChart, Bucket become Ready), kustomize-controller (build, substitute, apply,
//! inventory, prune, garbage collection on deletion) and helm-controller (a Deployment labelled
//! `app.kubernetes.io/instance=<release>` stands for the chart's workloads).
//!
//! Each controller acts only while its Deployment exists in the Flux namespace (unless
//! [`FluxOptions::require_controllers`] is off), so tests can show what uninstalling Flux does.
//! Kustomizations are applied when their source revision, generation or
//! `reconcile.fluxcd.io/requestedAt` changes (no periodic drift correction: the interval is
//! not simulated).

mod build;
mod chart_runtime;
mod git_auth;
mod helmrelease;
mod kustomization;
mod source;
mod substitute;

pub use build::BuildError;

use super::objects::{self, Client, ObjRef};
use super::{git::Snapshots, is_kind, Reconciler};
use crate::faults::FaultPlan;
use crate::kubesim::{ChangeEvent, Store};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Instant;

pub const FINALIZER: &str = "finalizers.fluxcd.io";
pub const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";
pub const SOURCE_API: &str = "source.toolkit.fluxcd.io/v1";
pub const KUSTOMIZE_API: &str = "kustomize.toolkit.fluxcd.io/v1";
pub const HELM_API: &str = "helm.toolkit.fluxcd.io/v2";

/// How the Flux simulation behaves.
#[derive(Debug, Clone)]
pub struct FluxOptions {
    /// GitRepository URL → local git checkout whose commits stand for the remote's.
    pub repositories: BTreeMap<String, PathBuf>,
    /// Act only while `<namespace>/source-controller`, `kustomize-controller` and
    /// `helm-controller` Deployments exist (default: true).
    pub require_controllers: bool,
    /// Where Flux's Deployments live (default `flux-system`).
    pub namespace: String,
    /// Chart name → CRDs a release of it installs (as Helm does from the chart; never removed
    /// on uninstall, as Helm leaves CRDs behind).
    pub chart_crds: BTreeMap<String, Vec<Value>>,
}

impl Default for FluxOptions {
    fn default() -> Self {
        FluxOptions {
            repositories: BTreeMap::new(),
            require_controllers: true,
            namespace: "flux-system".to_string(),
            chart_crds: BTreeMap::new(),
        }
    }
}

impl FluxOptions {
    pub fn with_repository(mut self, url: impl Into<String>, checkout: impl Into<PathBuf>) -> Self {
        self.repositories.insert(url.into(), checkout.into());
        self
    }

    /// Releases of these charts install these CRDs (see `releases::chart_crds`).
    pub fn with_chart_crds(mut self, crds: BTreeMap<String, Vec<Value>>) -> Self {
        self.chart_crds.extend(crds);
        self
    }

    /// Run whether or not Flux's Deployments exist.
    pub fn without_controller_gate(mut self) -> Self {
        self.require_controllers = false;
        self
    }

    /// The checkout for a repository URL (a trailing `/` or `.git` does not matter).
    pub fn checkout(&self, url: &str) -> Option<&PathBuf> {
        let trim = |u: &str| u.trim_end_matches('/').trim_end_matches(".git").to_string();
        let want = trim(url);
        self.repositories
            .iter()
            .find(|(u, _)| trim(u) == want)
            .map(|(_, p)| p)
    }
}

/// What a Kustomization was last applied for.
#[derive(Debug, Clone, PartialEq)]
struct AppliedKey {
    revision: String,
    generation: i64,
    requested_at: String,
    vars: u64,
}

pub(crate) struct FluxController {
    source: Client,
    kustomize: Client,
    helm: Client,
    options: FluxOptions,
    plan: FaultPlan,
    snapshots: Snapshots,
    applied: HashMap<String, AppliedKey>,
    /// Failed applies are retried after a short back-off, not on every event.
    retry_after: HashMap<String, Instant>,
}

impl FluxController {
    pub fn new(store: &Store, plan: FaultPlan, options: FluxOptions) -> Self {
        FluxController {
            source: Client::new(store, "source-controller"),
            kustomize: Client::new(store, "kustomize-controller"),
            helm: Client::new(store, "helm-controller"),
            options,
            plan,
            snapshots: Snapshots::default(),
            applied: HashMap::new(),
            retry_after: HashMap::new(),
        }
    }

    fn running(&self, controller: &str) -> bool {
        !self.options.require_controllers
            || self
                .source
                .deployment_exists(&self.options.namespace, controller)
    }
}

impl Reconciler for FluxController {
    fn interested(&self, e: &ChangeEvent) -> bool {
        e.group.ends_with(".toolkit.fluxcd.io")
            || is_kind(e, "", &["configmaps", "secrets", "namespaces"])
            || is_kind(e, "apps", &["deployments"])
            || is_kind(e, "apiextensions.k8s.io", &["customresourcedefinitions"])
    }

    async fn pass(&mut self) {
        if self.running("source-controller") {
            source::reconcile_all(self);
        }
        if self.running("kustomize-controller") {
            kustomization::reconcile_all(self);
        }
        if self.running("helm-controller") {
            helmrelease::reconcile_all(self);
        }
    }
}

/// The status of an object the fault plan makes fail, if it does.
fn injected_failure(plan: &FaultPlan, obj: &Value) -> Option<Value> {
    let kind = objects::s(obj, "/kind");
    let failure = plan.failure(kind, objects::namespace(obj), objects::name(obj))?;
    let mut status = obj.get("status").cloned().unwrap_or_else(|| json!({}));
    status["conditions"] = json!(objects::failed_conditions(
        &failure,
        &objects::conditions(obj),
        objects::generation(obj)
    ));
    status["observedGeneration"] = json!(objects::generation(obj));
    Some(status)
}

/// A Flux status with Ready (and Reconciling/Stalled cleared) set.
fn with_ready(obj: &Value, mut status: Value, ready: &str, reason: &str, message: &str) -> Value {
    let generation = objects::generation(obj);
    let mut conditions = objects::conditions(obj);
    objects::remove_condition(&mut conditions, "Stalled");
    if ready == "Unknown" {
        objects::set_condition(
            &mut conditions,
            "Reconciling",
            "True",
            reason,
            message,
            generation,
        );
    } else {
        objects::remove_condition(&mut conditions, "Reconciling");
    }
    objects::set_condition(&mut conditions, "Ready", ready, reason, message, generation);
    status["conditions"] = json!(conditions);
    if let Some(at) = objects::annotation(obj, REQUESTED_AT) {
        status["lastHandledReconcileAt"] = json!(at);
    }
    status
}

fn log_err<E: std::fmt::Display>(what: &str, obj: &Value, result: Result<(), E>) {
    if let Err(e) = result {
        tracing::debug!(object = %objects::ObjRef::of(obj).display(), error = %e, "flux simulation: {what}");
    }
}

/// The message for the first `spec.dependsOn` entry of `obj` (objects of the same kind) that is
/// not Ready or is being deleted, as kustomize-controller and helm-controller report it.
fn unready_dependency(client: &Client, obj: &Value, api: &str, kind: &str) -> Option<String> {
    let own_ns = objects::namespace(obj).unwrap_or("default");
    let deps = obj.pointer("/spec/dependsOn")?.as_array()?;
    deps.iter().find_map(|dep| {
        let dep_ns = dep
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or(own_ns);
        let dep_name = objects::s(dep, "/name");
        let r = ObjRef::new(api, kind, Some(dep_ns), dep_name);
        let ready = client
            .get(&r)
            .is_some_and(|d| objects::is_ready(&d) && !objects::is_deleting(&d));
        (!ready).then(|| format!("dependency '{dep_ns}/{dep_name}' is not ready"))
    })
}
