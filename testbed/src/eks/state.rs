//! What the EKS simulator holds, and the clock-driven status transitions
//! (CREATING → ACTIVE, DELETING → gone, UPDATING → ACTIVE).

use super::addon_workloads;
use crate::gateway::{Gateway, Upstream};
use crate::kubesim::authz::{AccessLookup, Grant};
use crate::kubesim::{KubeSim, KubeSimOptions};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// What happens to a resource when its timer runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    Active,
    Remove,
}

#[derive(Debug, Clone, Copy)]
pub struct Pending {
    pub at: Instant,
    pub then: Then,
}

impl Pending {
    pub fn after(delay: Duration, then: Then) -> Option<Pending> {
        Some(Pending {
            at: Instant::now() + delay,
            then,
        })
    }
}

/// A resource document (the JSON shape DescribeX returns) and its pending transition.
#[derive(Debug, Clone)]
pub struct Res {
    pub doc: Value,
    pub pending: Option<Pending>,
}

impl Res {
    pub fn status(&self) -> &str {
        self.doc["status"].as_str().unwrap_or("")
    }

    pub fn set_status(&mut self, status: &str) {
        self.doc["status"] = json!(status);
    }

    pub fn arn(&self, field: &str) -> &str {
        self.doc[field].as_str().unwrap_or("")
    }
}

#[derive(Debug, Clone)]
pub struct AccessEntryRec {
    pub doc: Value,
    /// policy ARN → AssociatedAccessPolicy
    pub policies: BTreeMap<String, Value>,
}

pub struct ClusterRec {
    pub res: Res,
    pub nodegroups: BTreeMap<String, Res>,
    pub addons: BTreeMap<String, Res>,
    /// principal ARN → entry
    pub access_entries: BTreeMap<String, AccessEntryRec>,
    /// association id → PodIdentityAssociation
    pub pod_identity: BTreeMap<String, Value>,
    pub kubesim: Option<Arc<KubeSim>>,
    /// The endpoint forwarding to a real cluster, when the simulator has an upstream.
    pub gateway: Option<Arc<Gateway>>,
}

impl ClusterRec {
    pub fn status(&self) -> &str {
        self.res.status()
    }

    /// The control plane answers at `endpoint` with the CA `ca_base64`: ACTIVE.
    fn serve_at(&mut self, endpoint: String, ca_base64: String) {
        self.res.doc["endpoint"] = json!(endpoint);
        self.res.doc["certificateAuthority"] = json!({ "data": ca_base64 });
        self.res.set_status("ACTIVE");
    }

    /// The control plane could not start: FAILED with a health issue, as a broken one would.
    fn control_plane_failed(&mut self, name: &str, error: &dyn std::fmt::Display) {
        tracing::warn!(cluster = %name, error = %error, "eks: starting the cluster's control plane failed");
        self.res.set_status("FAILED");
        self.res.doc["health"] = json!({"issues": [{
            "code": "ClusterUnreachable",
            "message": format!("control plane failed to start: {error}"),
            "resourceIds": [name],
        }]});
    }

    pub fn auth_mode(&self) -> &str {
        self.res.doc["accessConfig"]["authenticationMode"]
            .as_str()
            .unwrap_or("CONFIG_MAP")
    }
}

pub struct UpdateRec {
    pub doc: Value,
    pub cluster: String,
    pub nodegroup: Option<String>,
    pub addon: Option<String>,
    pub done_at: Instant,
}

/// Access key id → the IAM principal (role or user ARN) EKS maps its tokens to: a role
/// session's tokens map to the role (EKS user guide, "Create access entries": the entry names
/// the role, not the session).
pub type Principals = Arc<RwLock<HashMap<String, String>>>;

/// cluster name → principal ARN → what its access entry grants; rebuilt after every change.
pub type AccessTables = Arc<RwLock<BTreeMap<String, BTreeMap<String, Grant>>>>;

#[derive(Default)]
pub struct State {
    /// The request faults each cluster's kubesim is started with (the simulator's own plan, so
    /// one plan covers the EKS API and every cluster).
    pub faults: crate::faults::FaultPlan,
    /// The real cluster behind every cluster's endpoint, if any (else each gets a kubesim).
    pub upstream: Option<Upstream>,
    pub clusters: BTreeMap<String, ClusterRec>,
    /// update id → update
    pub updates: BTreeMap<String, UpdateRec>,
    pub principals: Principals,
    pub access: AccessTables,
}

fn due(p: &Option<Pending>, now: Instant) -> Option<Then> {
    p.filter(|p| p.at <= now).map(|p| p.then)
}

impl State {
    /// Applies every transition whose time has come. Starting a cluster's control plane (its
    /// kubesim, or its gateway to the upstream cluster) is the only await.
    pub async fn advance(&mut self, credentials: &[(String, String)]) {
        let now = Instant::now();
        for upd in self.updates.values_mut() {
            if upd.doc["status"] == "InProgress" && upd.done_at <= now {
                upd.doc["status"] = json!("Successful");
            }
        }
        let mut gone = Vec::new();
        for (name, cluster) in self.clusters.iter_mut() {
            match due(&cluster.res.pending, now) {
                Some(Then::Remove) => {
                    gone.push(name.clone());
                    continue;
                }
                Some(Then::Active) => {
                    cluster.res.pending = None;
                    if cluster.kubesim.is_some() || cluster.gateway.is_some() {
                        cluster.res.set_status("ACTIVE");
                    } else if let Some(upstream) = &self.upstream {
                        match Gateway::start(name, credentials.to_vec(), upstream.clone()).await {
                            Ok(gateway) => {
                                cluster.serve_at(gateway.endpoint(), gateway.ca_base64());
                                cluster.gateway = Some(Arc::new(gateway));
                            }
                            Err(e) => cluster.control_plane_failed(name, &e),
                        }
                    } else {
                        let options = credentials.iter().fold(
                            KubeSimOptions::new(name.clone())
                                .with_faults(self.faults.clone())
                                .with_access(access_lookup(&self.principals, &self.access, name)),
                            |o, (id, secret)| o.with_credentials(id.clone(), secret.clone()),
                        );
                        match KubeSim::start(options).await {
                            Ok(sim) => {
                                cluster.serve_at(sim.endpoint(), sim.ca_base64());
                                cluster.kubesim = Some(Arc::new(sim));
                            }
                            Err(e) => cluster.control_plane_failed(name, &e),
                        }
                    }
                }
                None => {}
            }
            for map in [&mut cluster.nodegroups, &mut cluster.addons] {
                map.retain(|_, r| match due(&r.pending, now) {
                    Some(Then::Remove) => {
                        if let Some(kube) = &cluster.kubesim {
                            addon_workloads::removed(kube, &r.doc);
                        }
                        false
                    }
                    Some(Then::Active) => {
                        r.pending = None;
                        r.set_status("ACTIVE");
                        if let Some(kube) = &cluster.kubesim {
                            addon_workloads::installed(kube, &r.doc);
                        }
                        true
                    }
                    None => true,
                });
            }
        }
        for name in gone {
            // Dropping the record stops its kubesim.
            if let Some(cluster) = self.clusters.remove(&name) {
                tracing::info!(cluster = %name, "eks: cluster deleted");
                drop(cluster);
            }
            self.updates.retain(|_, u| u.cluster != name);
        }
        self.publish_access();
    }

    /// Rebuilds the access tables from the clusters' access entries.
    pub fn publish_access(&self) {
        let tables = self
            .clusters
            .iter()
            .map(|(name, cluster)| {
                let grants = cluster
                    .access_entries
                    .iter()
                    .map(|(principal, entry)| (principal.clone(), grant_of(entry)))
                    .collect();
                (name.clone(), grants)
            })
            .collect();
        if let Ok(mut t) = self.access.write() {
            *t = tables;
        }
    }

    pub fn cluster(&self, name: &str) -> super::error::EksResult<&ClusterRec> {
        self.clusters.get(name).ok_or_else(|| {
            super::error::EksError::not_found(format!("No cluster found for name: {name}."))
        })
    }

    pub fn cluster_mut(&mut self, name: &str) -> super::error::EksResult<&mut ClusterRec> {
        self.clusters.get_mut(name).ok_or_else(|| {
            super::error::EksError::not_found(format!("No cluster found for name: {name}."))
        })
    }
}

/// How `cluster`'s kubesim learns who may do what: the caller's principal, then its access entry
/// as the table holds it at the time of the request.
fn access_lookup(principals: &Principals, tables: &AccessTables, cluster: &str) -> AccessLookup {
    let principals = principals.clone();
    let tables = tables.clone();
    let cluster = cluster.to_string();
    Arc::new(move |access_key: &str| {
        let principal = principals.read().ok()?.get(access_key)?.clone();
        tables.read().ok()?.get(&cluster)?.get(&principal).cloned()
    })
}

fn grant_of(entry: &AccessEntryRec) -> Grant {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    Grant {
        username: entry.doc["username"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        groups: strings(&entry.doc["kubernetesGroups"]),
        policies: entry
            .policies
            .iter()
            .map(|(arn, assoc)| {
                let namespaces = if assoc["accessScope"]["type"] == "namespace" {
                    strings(&assoc["accessScope"]["namespaces"])
                } else {
                    Vec::new()
                };
                (arn.clone(), namespaces)
            })
            .collect(),
    }
}
