//! The EKS simulator: the REST-JSON EKS API as `aws-sdk-eks` speaks it (DESIGN.md §6).
//!
//! Clusters, node groups, add-ons, access entries + associated access policies, Pod Identity
//! associations, updates and tags, with the real error types and HTTP statuses. Statuses move
//! CREATING → ACTIVE, DELETING → gone and UPDATING → ACTIVE after configurable delays
//! ([`EksDelays`], zero by default: the create answer says CREATING, the next call sees ACTIVE).
//! Every ACTIVE cluster is served by its own [`KubeSim`] whose HTTPS endpoint and CA
//! DescribeCluster returns; it accepts EKS tokens signed with the simulator's credentials.
//! AWS-side request faults ([`FaultPlan`] rules with `Side::Aws`, target `eks`) are answered
//! before the operation runs, with the error types the SDK classifies as throttling/transient.
//! Each cluster's kubesim checks its requests against the same plan (`Side::Kubernetes` rules,
//! target = cluster name).
//!
//! Clients reach it through `AWS_ENDPOINT_URL_EKS` (its own loopback port, [`EksServer`]);
//! every other AWS service goes to the emulator at `AWS_ENDPOINT_URL`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), std::io::Error> {
//! use labflow_testbed::eks::{EksOptions, EksServer};
//! let server = EksServer::start(EksOptions::default()).await?;
//! println!("AWS_ENDPOINT_URL_EKS={}", server.endpoint());
//! # Ok(()) }
//! ```

mod access;
mod addon_workloads;
mod addons;
mod clusters;
pub mod error;
mod nodegroups;
mod pod_identity;
pub mod route;
mod server;
mod state;
mod tags;
mod util;

pub use clusters::{DEFAULT_VERSION, SUPPORTED_VERSIONS};
pub use error::EksError;
pub use server::EksServer;

use crate::faults::{FaultAction, FaultPlan, RequestInfo};
use crate::kubesim::KubeSim;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long each transition takes. All zero by default (tests); the demo uses a few seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EksDelays {
    pub cluster_create: Duration,
    pub cluster_delete: Duration,
    pub nodegroup_create: Duration,
    pub nodegroup_delete: Duration,
    pub addon_create: Duration,
    pub addon_delete: Duration,
    /// UPDATING → ACTIVE and update InProgress → Successful.
    pub update: Duration,
}

impl EksDelays {
    /// `create` for every CREATING → ACTIVE, `delete` for every DELETING → gone.
    pub fn uniform(create: Duration, delete: Duration, update: Duration) -> Self {
        EksDelays {
            cluster_create: create,
            cluster_delete: delete,
            nodegroup_create: create,
            nodegroup_delete: delete,
            addon_create: create,
            addon_delete: delete,
            update,
        }
    }
}

/// Options of the simulator.
#[derive(Debug, Clone)]
pub struct EksOptions {
    pub region: String,
    pub account_id: String,
    pub delays: EksDelays,
    /// (access key id, secret access key) the clusters' kubesims accept EKS tokens from.
    pub credentials: (String, String),
    /// The IAM principal those credentials are (the emulator's default identity).
    pub principal: String,
    /// Request faults for the EKS API (rules with side `Aws`/`Any`, target `eks` or none).
    pub faults: FaultPlan,
    /// A real cluster to serve as every cluster's Kubernetes side: ACTIVE clusters then get a
    /// [`Gateway`](crate::gateway::Gateway) to it as their endpoint instead of a kubesim.
    pub upstream: Option<crate::gateway::Upstream>,
    /// The VPC every cluster reports (`resourcesVpcConfig.vpcId`). EKS derives it from the
    /// cluster's subnets; the environment configs of tests and the demo name placeholder subnets
    /// that the emulator does not hold, so the testbed names the one VPC it creates in the
    /// emulator (None: a made-up id).
    pub vpc_id: Option<String>,
}

impl Default for EksOptions {
    fn default() -> Self {
        EksOptions {
            region: "eu-west-1".into(),
            account_id: "123456789012".into(),
            delays: EksDelays::default(),
            credentials: ("AKIATESTBED000000001".into(), "testbed-secret".into()),
            // moto's STS answers `user/moto` for credentials it did not issue.
            principal: "arn:aws:iam::123456789012:user/moto".into(),
            faults: FaultPlan::new(),
            upstream: None,
            vpc_id: None,
        }
    }
}

/// What the handlers need from the options.
pub(crate) struct Ctx {
    pub region: String,
    pub account_id: String,
    pub delays: EksDelays,
    pub vpc_id: Option<String>,
}

/// One answered EKS API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EksRequestRecord {
    /// The operation name (`CreateCluster`, ...), or `Unknown`.
    pub operation: String,
    pub method: String,
    /// The raw path as sent (labels percent-encoded).
    pub path: String,
    pub status: u16,
    /// The error type when the answer was an error.
    pub error: Option<String>,
}

impl EksRequestRecord {
    /// Anything but Describe/List: a call that may change the world.
    pub fn is_write(&self) -> bool {
        !(self.operation.starts_with("Describe") || self.operation.starts_with("List"))
    }
}

/// An answer of the simulator, ready to be written as HTTP.
#[derive(Debug, Clone)]
pub struct EksResponse {
    pub status: u16,
    /// `x-amzn-errortype` for errors.
    pub error_type: Option<&'static str>,
    pub body: Vec<u8>,
}

/// A health issue to report on a cluster, node group or add-on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthIssue {
    pub code: String,
    pub message: String,
    pub resource_ids: Vec<String>,
}

impl HealthIssue {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        HealthIssue {
            code: code.into(),
            message: message.into(),
            resource_ids: Vec::new(),
        }
    }

    fn to_json(&self) -> Value {
        json!({"code": self.code, "message": self.message, "resourceIds": self.resource_ids})
    }
}

struct Inner {
    ctx: Ctx,
    /// Credentials the clusters' kubesims accept; more can be trusted later (see
    /// [`EksSim::trust_credentials`]).
    credentials: Mutex<Vec<(String, String)>>,
    /// Who each access key id is (shared with the state's access lookups).
    principals: state::Principals,
    faults: FaultPlan,
    state: tokio::sync::Mutex<state::State>,
    log: Mutex<Vec<EksRequestRecord>>,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

impl Inner {
    fn trusted(&self) -> Vec<(String, String)> {
        self.credentials
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut t) = self.ticker.lock() {
            if let Some(t) = t.take() {
                t.abort();
            }
        }
    }
}

/// The simulator (no listener of its own; [`EksServer`] serves it over HTTP). Cloning gives
/// another handle on the same state; everything stops when the last handle is dropped.
#[derive(Clone)]
pub struct EksSim {
    inner: Arc<Inner>,
}

impl EksSim {
    /// A new, empty simulator. Must be called inside a Tokio runtime: a background tick applies
    /// due transitions (and starts kubesims) even when nobody is asking.
    pub fn new(options: EksOptions) -> EksSim {
        let principals: state::Principals = Default::default();
        if let Ok(mut p) = principals.write() {
            p.insert(options.credentials.0.clone(), options.principal.clone());
        }
        let inner = Arc::new(Inner {
            ctx: Ctx {
                region: options.region,
                account_id: options.account_id,
                delays: options.delays,
                vpc_id: options.vpc_id,
            },
            credentials: Mutex::new(vec![options.credentials]),
            principals: principals.clone(),
            state: tokio::sync::Mutex::new(state::State {
                faults: options.faults.clone(),
                upstream: options.upstream,
                principals,
                ..state::State::default()
            }),
            faults: options.faults,
            log: Mutex::new(Vec::new()),
            ticker: Mutex::new(None),
        });
        let weak = Arc::downgrade(&inner);
        let ticker = tokio::spawn(tick(weak));
        if let Ok(mut t) = inner.ticker.lock() {
            *t = Some(ticker);
        }
        EksSim { inner }
    }

    /// Also accept EKS tokens signed with these credentials in clusters that become ACTIVE from
    /// now on — e.g. a role session the emulator's STS issued, as a Lambda would hold. They are
    /// `principal` (the role of a session): what its access entry allows, they may do.
    pub fn trust_credentials(&self, access_key_id: &str, secret_access_key: &str, principal: &str) {
        if let Ok(mut c) = self.inner.credentials.lock() {
            let pair = (access_key_id.to_string(), secret_access_key.to_string());
            if !c.contains(&pair) {
                c.push(pair);
            }
        }
        if let Ok(mut p) = self.inner.principals.write() {
            p.insert(access_key_id.to_string(), principal.to_string());
        }
    }

    /// Answers one EKS API request. `path` is the raw path, `query` the raw query string.
    pub async fn handle(&self, method: &str, path: &str, query: &str, body: &[u8]) -> EksResponse {
        self.handle_as(None, method, path, query, body).await
    }

    /// [`EksSim::handle`] for a caller known by the access key id that signed the request
    /// (CreateCluster gives its principal cluster admin unless told otherwise).
    pub async fn handle_as(
        &self,
        access_key_id: Option<&str>,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> EksResponse {
        let op = route::parse(method, path);
        let name = op.as_ref().map_or("Unknown", route::Op::name);
        let injected = self
            .inner
            .faults
            .check(&RequestInfo::aws("eks", method, path, Some(name)));
        if let Some(action) = &injected {
            action.wait().await;
        }
        let result = match (&op, injected) {
            (_, Some(FaultAction::Respond { code, message })) => {
                Err(EksError::injected(code, message))
            }
            (Some(op), _) => self.dispatch(access_key_id, op, query, body).await,
            (None, _) => Err(EksError::unknown_operation(method, path)),
        };
        let (response, error) = match result {
            Ok(value) => (
                EksResponse {
                    status: 200,
                    error_type: None,
                    body: strip_nulls(value).to_string().into_bytes(),
                },
                None,
            ),
            Err(e) => (
                EksResponse {
                    status: e.status,
                    error_type: Some(e.code),
                    body: json!({"message": e.message}).to_string().into_bytes(),
                },
                Some(e.code.to_string()),
            ),
        };
        let record = EksRequestRecord {
            operation: name.to_string(),
            method: method.to_string(),
            path: path.to_string(),
            status: response.status,
            error,
        };
        tracing::debug!(operation = %record.operation, status = record.status, "eks request");
        if let Ok(mut log) = self.inner.log.lock() {
            log.push(record);
        }
        response
    }

    async fn dispatch(
        &self,
        access_key_id: Option<&str>,
        op: &route::Op,
        query: &str,
        body: &[u8],
    ) -> Result<Value, EksError> {
        use route::Op::*;
        let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(body)
                .map_err(|e| EksError::invalid_parameter(format!("malformed JSON body: {e}")))?
        };
        let query = util::query_map(query);
        let ctx = &self.inner.ctx;
        let mut st = self.inner.state.lock().await;
        st.advance(&self.inner.trusted()).await;
        let st = &mut *st;
        let caller = access_key_id.and_then(|key| {
            self.inner
                .principals
                .read()
                .ok()
                .and_then(|p| p.get(key).cloned())
        });
        let result = match op {
            CreateCluster => clusters::create(st, ctx, &body, caller.as_deref()),
            ListClusters => clusters::list(st, &query),
            DescribeAddonVersions => addons::versions(&query),
            DescribeCluster(c) => clusters::describe(st, c),
            DeleteCluster(c) => clusters::delete(st, ctx, c),
            UpdateClusterConfig(c) => clusters::update_config(st, ctx, c, &body),
            UpdateClusterVersion(c) => clusters::update_version(st, ctx, c, &body),
            ListUpdates(c) => clusters::list_updates(st, c, &query),
            DescribeUpdate(c, id) => clusters::describe_update(st, c, id, &query),
            TagResource(arn) => tags::tag(st, arn, &body),
            UntagResource(arn) => tags::untag(st, arn, &query),
            ListTagsForResource(arn) => tags::list(st, arn),
            CreateNodegroup(c) => nodegroups::create(st, ctx, c, &body),
            ListNodegroups(c) => nodegroups::list(st, c, &query),
            DescribeNodegroup(c, n) => nodegroups::describe(st, c, n),
            DeleteNodegroup(c, n) => nodegroups::delete(st, ctx, c, n),
            UpdateNodegroupConfig(c, n) => nodegroups::update_config(st, ctx, c, n, &body),
            UpdateNodegroupVersion(c, n) => nodegroups::update_version(st, ctx, c, n, &body),
            CreateAddon(c) => addons::create(st, ctx, c, &body),
            ListAddons(c) => addons::list(st, c, &query),
            DescribeAddon(c, a) => addons::describe(st, c, a),
            DeleteAddon(c, a) => addons::delete(st, ctx, c, a),
            UpdateAddon(c, a) => addons::update(st, ctx, c, a, &body),
            CreateAccessEntry(c) => access::create(st, ctx, c, &body),
            ListAccessEntries(c) => access::list(st, c, &query),
            DescribeAccessEntry(c, p) => access::describe(st, c, p),
            UpdateAccessEntry(c, p) => access::update(st, c, p, &body),
            DeleteAccessEntry(c, p) => access::delete(st, c, p),
            AssociateAccessPolicy(c, p) => access::associate(st, c, p, &body),
            ListAssociatedAccessPolicies(c, p) => access::list_associated(st, c, p, &query),
            DisassociateAccessPolicy(c, p, pol) => access::disassociate(st, c, p, pol),
            CreatePodIdentityAssociation(c) => pod_identity::create(st, ctx, c, &body),
            ListPodIdentityAssociations(c) => pod_identity::list(st, c, &query),
            DescribePodIdentityAssociation(c, id) => pod_identity::describe(st, c, id),
            UpdatePodIdentityAssociation(c, id) => pod_identity::update(st, c, id, &body),
            DeletePodIdentityAssociation(c, id) => pod_identity::delete(st, c, id),
        };
        st.publish_access();
        result
    }

    /// The fault plan EKS API requests are checked against (shared with whoever holds a clone).
    pub fn faults(&self) -> FaultPlan {
        self.inner.faults.clone()
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<EksRequestRecord> {
        self.inner.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The requests that may have changed something (not Describe/List).
    pub fn write_requests(&self) -> Vec<EksRequestRecord> {
        self.requests()
            .into_iter()
            .filter(EksRequestRecord::is_write)
            .collect()
    }

    pub fn clear_requests(&self) {
        if let Ok(mut log) = self.inner.log.lock() {
            log.clear();
        }
    }

    /// The kubesim serving `cluster` (once it is ACTIVE; gone when the cluster is deleted).
    pub async fn kubesim(&self, cluster: &str) -> Option<Arc<KubeSim>> {
        let mut st = self.inner.state.lock().await;
        st.advance(&self.inner.trusted()).await;
        st.clusters.get(cluster).and_then(|c| c.kubesim.clone())
    }

    /// Names of the clusters that exist (in any status).
    pub async fn cluster_names(&self) -> Vec<String> {
        let mut st = self.inner.state.lock().await;
        st.advance(&self.inner.trusted()).await;
        st.clusters.keys().cloned().collect()
    }

    /// Test hook: puts a cluster into `status` (e.g. `FAILED`) with `issues`, cancelling any
    /// pending transition, so it stays there.
    pub async fn force_cluster_status(
        &self,
        cluster: &str,
        status: &str,
        issues: &[HealthIssue],
    ) -> Result<(), EksError> {
        let mut st = self.inner.state.lock().await;
        st.advance(&self.inner.trusted()).await;
        let c = st.cluster_mut(cluster)?;
        c.res.pending = None;
        c.res.set_status(status);
        c.res.doc["health"] =
            json!({"issues": issues.iter().map(HealthIssue::to_json).collect::<Vec<_>>()});
        Ok(())
    }

    /// Test hook: puts a node group into `status` (`CREATE_FAILED`, `DEGRADED`, ...) with `issues`.
    pub async fn force_nodegroup_status(
        &self,
        cluster: &str,
        nodegroup: &str,
        status: &str,
        issues: &[HealthIssue],
    ) -> Result<(), EksError> {
        let mut st = self.inner.state.lock().await;
        st.advance(&self.inner.trusted()).await;
        let c = st.cluster_mut(cluster)?;
        let r = c.nodegroups.get_mut(nodegroup).ok_or_else(|| {
            EksError::not_found(format!("No node group found for name: {nodegroup}."))
        })?;
        r.pending = None;
        r.set_status(status);
        r.doc["health"] =
            json!({"issues": issues.iter().map(HealthIssue::to_json).collect::<Vec<_>>()});
        Ok(())
    }

    /// Test hook: puts an add-on into `status` (`CREATE_FAILED`, `DEGRADED`, ...) with `issues`.
    pub async fn force_addon_status(
        &self,
        cluster: &str,
        addon: &str,
        status: &str,
        issues: &[HealthIssue],
    ) -> Result<(), EksError> {
        let mut st = self.inner.state.lock().await;
        st.advance(&self.inner.trusted()).await;
        let c = st.cluster_mut(cluster)?;
        let r = c.addons.get_mut(addon).ok_or_else(|| {
            EksError::not_found(format!("No addon: {addon} found in cluster: {cluster}"))
        })?;
        r.pending = None;
        r.set_status(status);
        r.doc["health"] =
            json!({"issues": issues.iter().map(HealthIssue::to_json).collect::<Vec<_>>()});
        Ok(())
    }
}

/// Applies due transitions every 100 ms while the simulator exists.
async fn tick(inner: Weak<Inner>) {
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    loop {
        interval.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let mut st = inner.state.lock().await;
        st.advance(&inner.trusted()).await;
    }
}

/// Optional members the service omits instead of sending `null`.
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}
