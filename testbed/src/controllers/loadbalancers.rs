//! The AWS load balancer controller: LoadBalancer Services (NLB) and Ingresses of class `alb`
//! (ALB) get a load balancer on the simulated AWS side, its hostname in
//! `status.loadBalancer.ingress[]`, and a finalizer that is removed — with the load balancer —
//! only while the controller's Deployment (`app.kubernetes.io/name=aws-load-balancer-controller`,
//! any namespace) exists. Without it a deleted Service/Ingress stays Terminating, as in a cluster
//! whose controller was uninstalled first. (Every LoadBalancer Service is treated as the
//! controller's; the in-tree cloud provider is not simulated.)

use super::objects::{self, Client, ObjRef};
use super::{is_kind, Reconciler};
use crate::kubesim::{ChangeEvent, Store};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub const SERVICE_FINALIZER: &str = "service.k8s.aws/resources";
pub const INGRESS_FINALIZER: &str = "ingress.k8s.aws/resources";
pub const CONTROLLER_LABEL: &str = "aws-load-balancer-controller";

#[derive(Debug, Clone)]
pub struct LoadBalancerOptions {
    pub region: String,
}

impl Default for LoadBalancerOptions {
    fn default() -> Self {
        LoadBalancerOptions {
            region: "eu-west-1".to_string(),
        }
    }
}

/// A load balancer on the simulated AWS side.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadBalancer {
    /// `k8s-<ns>-<name>-<hash>`, as the controller names them.
    pub name: String,
    pub dns_name: String,
    /// `application` (Ingress) or `network` (Service).
    pub kind: String,
    /// `ingress/<ns>/<name>` or `service/<ns>/<name>`.
    pub owner: String,
}

/// The load balancers that exist, readable from tests (e.g. "teardown left none behind").
#[derive(Debug, Clone, Default)]
pub struct LoadBalancers {
    inner: Arc<Mutex<BTreeMap<String, LoadBalancer>>>,
}

impl LoadBalancers {
    pub fn list(&self) -> Vec<LoadBalancer> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn insert(&self, lb: LoadBalancer) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(lb.owner.clone(), lb);
    }

    fn remove(&self, owner: &str) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(owner);
    }
}

pub(crate) struct LoadBalancerController {
    client: Client,
    options: LoadBalancerOptions,
    balancers: LoadBalancers,
}

fn truncate(s: &str) -> String {
    s.chars().take(8).collect()
}

pub fn is_alb_ingress(ing: &Value) -> bool {
    objects::s(ing, "/spec/ingressClassName") == "alb"
        || objects::annotation(ing, "kubernetes.io/ingress.class") == Some("alb")
}

pub fn is_lb_service(svc: &Value) -> bool {
    objects::s(svc, "/spec/type") == "LoadBalancer"
}

impl LoadBalancerController {
    pub fn new(store: &Store, options: LoadBalancerOptions, balancers: LoadBalancers) -> Self {
        LoadBalancerController {
            client: Client::new(store, "aws-load-balancer-controller"),
            options,
            balancers,
        }
    }

    fn balancer(&self, kind: &str, obj: &Value) -> LoadBalancer {
        let ns = objects::namespace(obj).unwrap_or("default");
        let name = objects::name(obj);
        let owner = format!("{kind}/{ns}/{name}");
        let hash = hex::encode(Sha256::digest(
            format!("{owner}/{}", objects::uid(obj)).as_bytes(),
        ));
        let lb_name = format!("k8s-{}-{}-{}", truncate(ns), truncate(name), &hash[..10]);
        let region = &self.options.region;
        let (dns_name, lb_kind) = if kind == "ingress" {
            (
                format!(
                    "{lb_name}-{}.{region}.elb.amazonaws.com",
                    u32::from_str_radix(&hash[10..17], 16).unwrap_or(0)
                ),
                "application",
            )
        } else {
            (format!("{lb_name}.elb.{region}.amazonaws.com"), "network")
        };
        LoadBalancer {
            name: lb_name,
            dns_name,
            kind: lb_kind.to_string(),
            owner,
        }
    }

    fn reconcile(&self, kind: &str, finalizer: &str, obj: &Value, wanted: bool) {
        let has_finalizer = objects::finalizers(obj).iter().any(|f| f == finalizer);
        let lb = self.balancer(kind, obj);
        let what = ObjRef::of(obj).display();
        if objects::is_deleting(obj) || !wanted {
            if has_finalizer {
                self.balancers.remove(&lb.owner);
                if let Err(e) = self.client.remove_finalizer(obj, finalizer) {
                    tracing::debug!(object = %what, error = %e, "load balancer controller: finalizer");
                }
            }
            return;
        }
        if !has_finalizer {
            if let Err(e) = self.client.add_finalizer(obj, finalizer) {
                tracing::debug!(object = %what, error = %e, "load balancer controller: finalizer");
            }
            return;
        }
        self.balancers.insert(lb.clone());
        let mut status = obj.get("status").cloned().unwrap_or_else(|| json!({}));
        status["loadBalancer"] = json!({"ingress": [{"hostname": lb.dns_name}]});
        if let Err(e) = self.client.set_status(obj, status) {
            tracing::debug!(object = %what, error = %e, "load balancer controller: status");
        }
    }
}

impl Reconciler for LoadBalancerController {
    fn interested(&self, e: &ChangeEvent) -> bool {
        is_kind(e, "", &["services"])
            || is_kind(e, "networking.k8s.io", &["ingresses"])
            || is_kind(e, "apps", &["deployments"])
    }

    async fn pass(&mut self) {
        if !self.client.deployment_with_name_label(CONTROLLER_LABEL) {
            return;
        }
        for svc in self.client.list("v1", "Service", None) {
            let has = objects::finalizers(&svc)
                .iter()
                .any(|f| f == SERVICE_FINALIZER);
            if is_lb_service(&svc) || has {
                self.reconcile("service", SERVICE_FINALIZER, &svc, is_lb_service(&svc));
            }
        }
        for ing in self.client.list("networking.k8s.io/v1", "Ingress", None) {
            let has = objects::finalizers(&ing)
                .iter()
                .any(|f| f == INGRESS_FINALIZER);
            if is_alb_ingress(&ing) || has {
                self.reconcile("ingress", INGRESS_FINALIZER, &ing, is_alb_ingress(&ing));
            }
        }
    }
}
