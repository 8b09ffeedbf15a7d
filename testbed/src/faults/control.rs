//! The fault control API: HTTP/1.1 + JSON on loopback.
//!
//! - `POST /faults` with a [`Rule`] → `201 {"id": N}`; `GET /faults` lists rules with how often
//!   each fired; `DELETE /faults/N` removes one; `DELETE /faults` removes every rule and failure.
//! - `POST /faults/objects/fail` `{"cluster"?, "kind", "namespace"?, "name", "reason"?, "message"}`
//!   makes an object fail; `POST /faults/objects/clear` (same identity) lifts it.
//! - `POST /faults/objects/stuck-finalizer` / `POST /faults/objects/release-finalizer`
//!   `{"cluster"?, "kind", "namespace"?, "name"}` add / remove [`super::STUCK_FINALIZER`].
//!
//! `cluster` names a kubesim registered with [`ControlServer::register_cluster`]; it may be left
//! out when exactly one is registered.

use super::{FaultPlan, ObjectFailure, ObjectFaults, Rule};
use crate::kubesim::Store;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum ControlStartError {
    #[error("binding a loopback port: {0}")]
    Bind(#[from] std::io::Error),
}

type Clusters = Arc<Mutex<BTreeMap<String, Store>>>;

/// A running control API. Stops when dropped.
pub struct ControlServer {
    endpoint: String,
    clusters: Clusters,
    task: JoinHandle<()>,
}

impl ControlServer {
    pub async fn start(plan: FaultPlan) -> Result<ControlServer, ControlStartError> {
        let clusters: Clusters = Arc::default();
        let ctx = Arc::new((plan, clusters.clone()));
        let (addr, task) = crate::http1::serve(move |req| {
            let ctx = ctx.clone();
            async move { handle(&ctx.0, &ctx.1, req).await }
        })
        .await?;
        tracing::info!(endpoint = %format!("http://{addr}"), "fault control API started");
        Ok(ControlServer {
            endpoint: format!("http://{addr}"),
            clusters,
            task,
        })
    }

    /// `http://127.0.0.1:<port>`
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// Makes a kubesim's objects reachable by object faults under a cluster name.
    pub fn register_cluster(&self, name: &str, store: &Store) {
        self.clusters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), store.clone());
    }

    pub fn unregister_cluster(&self, name: &str) {
        self.clusters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response<Full<Bytes>> {
    reply(status, json!({"error": message.to_string()}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectTarget {
    #[serde(default)]
    cluster: Option<String>,
    kind: String,
    #[serde(default)]
    namespace: Option<String>,
    name: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

fn store_for(clusters: &Clusters, name: Option<&str>) -> Result<Store, String> {
    let clusters = clusters.lock().unwrap_or_else(|p| p.into_inner());
    match name {
        Some(n) => clusters.get(n).cloned().ok_or(format!("no cluster {n:?}")),
        None if clusters.len() == 1 => Ok(clusters.values().next().cloned().ok_or("no cluster")?),
        None => Err(format!(
            "name the cluster: one of {:?}",
            clusters.keys().collect::<Vec<_>>()
        )),
    }
}

async fn handle(
    plan: &FaultPlan,
    clusters: &Clusters,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match (&method, path.as_str()) {
        (&Method::GET, "/faults") => {
            let rules: Vec<Value> = plan
                .rules()
                .into_iter()
                .map(|(id, rule, fired)| json!({"id": id, "rule": rule, "fired": fired}))
                .collect();
            let failures = serde_json::to_value(plan.failures()).unwrap_or(Value::Null);
            reply(
                StatusCode::OK,
                json!({"rules": rules, "failures": failures}),
            )
        }
        (&Method::POST, "/faults") => {
            let rule: Rule = match serde_json::from_slice(&body) {
                Ok(r) => r,
                Err(e) => return error(StatusCode::BAD_REQUEST, e),
            };
            if let Err(e) = rule.validate() {
                return error(StatusCode::BAD_REQUEST, e);
            }
            reply(StatusCode::CREATED, json!({"id": plan.add(rule)}))
        }
        (&Method::DELETE, "/faults") => {
            plan.clear();
            reply(StatusCode::OK, json!({}))
        }
        (&Method::DELETE, p) if p.starts_with("/faults/") && !p.starts_with("/faults/objects") => {
            match p["/faults/".len()..].parse::<u64>() {
                Ok(id) if plan.remove(id) => reply(StatusCode::OK, json!({"id": id})),
                Ok(id) => error(StatusCode::NOT_FOUND, format!("no rule {id}")),
                Err(e) => error(StatusCode::BAD_REQUEST, e),
            }
        }
        (&Method::POST, p) if p.starts_with("/faults/objects/") => {
            let target: ObjectTarget = match serde_json::from_slice(&body) {
                Ok(t) => t,
                Err(e) => return error(StatusCode::BAD_REQUEST, e),
            };
            let store = match store_for(clusters, target.cluster.as_deref()) {
                Ok(s) => s,
                Err(e) => return error(StatusCode::NOT_FOUND, e),
            };
            let faults = ObjectFaults::new(&store, plan);
            let ns = target.namespace.as_deref();
            let result = match &p["/faults/objects/".len()..] {
                "fail" => {
                    let mut failure = ObjectFailure::new(
                        &target.kind,
                        ns,
                        &target.name,
                        target.message.as_deref().unwrap_or("injected failure"),
                    );
                    if let Some(r) = &target.reason {
                        failure = failure.with_reason(r);
                    }
                    faults.fail(failure)
                }
                "clear" => {
                    faults.clear(&target.kind, ns, &target.name);
                    Ok(())
                }
                "stuck-finalizer" => faults.add_stuck_finalizer(&target.kind, ns, &target.name),
                "release-finalizer" => {
                    faults.release_stuck_finalizer(&target.kind, ns, &target.name)
                }
                other => {
                    return error(
                        StatusCode::NOT_FOUND,
                        format!("no such operation {other:?}"),
                    )
                }
            };
            match result {
                Ok(()) => reply(StatusCode::OK, json!({})),
                Err(super::ObjectFaultError::NotFound(what)) => {
                    error(StatusCode::NOT_FOUND, format!("{what} not found"))
                }
                Err(e) => error(StatusCode::CONFLICT, e),
            }
        }
        _ => error(StatusCode::NOT_FOUND, format!("no route {method} {path}")),
    }
}
