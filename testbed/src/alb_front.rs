//! The data plane of the simulated ALBs: one loopback HTTP listener that answers a request for
//! `Host: <app host>` the way the lab's route would on AWS — ALB listener rule (Ingress) →
//! target (the Service behind it) → Istio gateway server → VirtualService → the app — and says
//! where it broke when it does. The rules it models, each with its source:
//!
//! - No Ingress rule for the host and path: the ALB's default action answers 404 (the load
//!   balancer controller gives every listener a fixed-response 404 default action;
//!   aws-load-balancer-controller docs, "Ingress annotations", default actions).
//! - No load balancer provisioned for the Ingress yet: on AWS its host does not resolve at all;
//!   this single listener has to answer something, and says 503 with the reason.
//! - ALB → target over HTTPS (`backend-protocol: HTTPS`): the ALB opens TLS without SNI, and an
//!   Istio gateway TLS server matches its hosts as SNI names unless one is exactly `*`; without
//!   one no filter chain takes the connection, and the ALB answers 502 (istio pilot
//!   `GetSNIHostsForServer`, listener.go `isMatchAll`; istio/istio#31421; ELB docs,
//!   "Troubleshoot your Application Load Balancers", HTTP 502: the target closed the connection
//!   during the TLS handshake). Plain HTTP to a TLS server, or TLS to a plain one, is a 502 too.
//! - No VirtualService bound to the gateway for the host: Envoy answers 404 (route not found).
//! - No ready workload behind the destination Service: 503 (Envoy "no healthy upstream").
//! - Otherwise the app answers 200 with what that app serves (Bookinfo's product page title,
//!   Podinfo's greeting), so a probe can check it reached the right app.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::controllers::objects::Client;
use crate::controllers::LoadBalancers;
use crate::kubesim::Store;

/// What the simulated route answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    fn new(status: u16, body: impl Into<String>) -> Self {
        Answer {
            status,
            body: body.into(),
        }
    }
}

/// The clusters whose load balancers the listener stands for: each cluster's objects and the
/// load balancers its controller made, read at each request.
pub type Clusters = Arc<dyn Fn() -> Vec<(Store, LoadBalancers)> + Send + Sync>;

/// The listener. Stops when dropped.
pub struct AlbFront {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl AlbFront {
    /// Listen on a loopback port for the load balancers of `clusters`.
    pub async fn start(clusters: Clusters) -> std::io::Result<AlbFront> {
        let (addr, task) = crate::http1::serve(move |req: Request<Incoming>| {
            let host = req
                .headers()
                .get(hyper::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("")
                .to_string();
            let answer = route(&clusters, &host, req.uri().path());
            async move {
                Response::builder()
                    .status(answer.status)
                    .body(Full::new(Bytes::from(answer.body)))
                    .unwrap_or_default()
            }
        })
        .await?;
        Ok(AlbFront { addr, task })
    }

    /// Where every simulated ALB listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for AlbFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The answer of the cluster whose Ingresses claim `host` and `path`.
fn route(clusters: &Clusters, host: &str, path: &str) -> Answer {
    let bare = host.split(':').next().unwrap_or(host);
    for (store, balancers) in clusters() {
        let client = Client::new(&store, "alb-front");
        if ingress_rule(&client, bare, path).is_some() {
            return answer(&client, &balancers, host, path);
        }
    }
    Answer::new(404, format!("no ALB listener rule for {bare}{path}"))
}

fn str_at<'v>(value: &'v Value, pointer: &str) -> &'v str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn namespace(value: &Value) -> &str {
    match str_at(value, "/metadata/namespace") {
        "" => "default",
        ns => ns,
    }
}

fn name(value: &Value) -> &str {
    str_at(value, "/metadata/name")
}

fn labels(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Does `pattern` (a host, `*.suffix` or `*`) match `host`?
fn host_matches(pattern: &str, host: &str) -> bool {
    pattern == "*"
        || pattern.eq_ignore_ascii_case(host)
        || pattern
            .strip_prefix("*.")
            .is_some_and(|suffix| host.to_ascii_lowercase().ends_with(&format!(".{suffix}")))
}

/// The Ingress rule for `host` and `path`: (Ingress, backend service, backend port).
fn ingress_rule(client: &Client, host: &str, path: &str) -> Option<(Value, String, u64)> {
    let mut best: Option<(usize, Value, String, u64)> = None;
    for ingress in client.list("networking.k8s.io/v1", "Ingress", None) {
        let alb = str_at(&ingress, "/spec/ingressClassName") == "alb"
            || str_at(
                &ingress,
                "/metadata/annotations/kubernetes.io~1ingress.class",
            ) == "alb";
        if !alb {
            continue;
        }
        let rules = ingress.pointer("/spec/rules").and_then(Value::as_array);
        for rule in rules.into_iter().flatten() {
            if !host_matches(str_at(rule, "/host"), host) {
                continue;
            }
            let paths = rule.pointer("/http/paths").and_then(Value::as_array);
            for p in paths.into_iter().flatten() {
                let prefix = str_at(p, "/path");
                let hit = match str_at(p, "/pathType") {
                    "Exact" => path == prefix,
                    _ => path.starts_with(prefix.trim_end_matches('/')) || prefix == "/",
                };
                let service = str_at(p, "/backend/service/name").to_string();
                let port = p
                    .pointer("/backend/service/port/number")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if hit && best.as_ref().is_none_or(|(len, ..)| prefix.len() > *len) {
                    best = Some((prefix.len(), ingress.clone(), service, port));
                }
            }
        }
    }
    best.map(|(_, ingress, service, port)| (ingress, service, port))
}

/// The pods a Service in `ns` sends to, by their labels: a Service object's selector, or the
/// Istio `gateway` chart's Service of that release (selector `app: <name>`, `istio: <name
/// without istio->`, plus `values.labels`; istio 1.30.3 manifests/charts/gateway
/// templates/_helpers.tpl).
fn gateway_pod_labels(
    client: &Client,
    ns: &str,
    service: &str,
) -> Option<BTreeMap<String, String>> {
    let release = client
        .list("helm.toolkit.fluxcd.io/v2", "HelmRelease", None)
        .into_iter()
        .find(|hr| {
            str_at(hr, "/spec/chart/spec/chart") == "gateway"
                && [str_at(hr, "/spec/releaseName"), name(hr)].contains(&service)
                && [str_at(hr, "/spec/targetNamespace"), namespace(hr)].contains(&ns)
        })?;
    let mut pod = BTreeMap::from([
        ("app".to_string(), service.to_string()),
        (
            "istio".to_string(),
            service.trim_start_matches("istio-").to_string(),
        ),
    ]);
    pod.extend(labels(release.pointer("/spec/values/labels")));
    Some(pod)
}

/// What the workload behind Service `ns/service` answers, if it is ready.
fn app_answer(client: &Client, ns: &str, service: &str) -> Answer {
    // A chart's Service is named after its release (podinfo's fullname is the release name), a
    // subchart's `<release>-<subchart>` (kube-prometheus-stack's Grafana: `<release>-grafana`).
    let of_release = |release: &str| {
        !release.is_empty()
            && (service == release
                || service
                    .strip_prefix(release)
                    .is_some_and(|rest| rest.starts_with('-')))
    };
    let release = client
        .list("helm.toolkit.fluxcd.io/v2", "HelmRelease", None)
        .into_iter()
        .find(|hr| {
            [str_at(hr, "/spec/releaseName"), name(hr)]
                .into_iter()
                .any(of_release)
                && [str_at(hr, "/spec/targetNamespace"), namespace(hr)].contains(&ns)
        });
    let selector = client
        .list("v1", "Service", Some(ns))
        .into_iter()
        .find(|s| name(s) == service)
        .map(|s| labels(s.pointer("/spec/selector")));
    let deployments = client.list("apps/v1", "Deployment", Some(ns));
    let backing: Vec<&Value> = match (&selector, &release) {
        (Some(selector), _) => deployments
            .iter()
            .filter(|d| {
                selects(
                    selector,
                    &labels(d.pointer("/spec/template/metadata/labels")),
                )
            })
            .collect(),
        (None, Some(hr)) => {
            let instance = [str_at(hr, "/spec/releaseName"), name(hr)]
                .into_iter()
                .find(|n| !n.is_empty())
                .unwrap_or("");
            deployments
                .iter()
                .filter(|d| str_at(d, "/metadata/labels/app.kubernetes.io~1instance") == instance)
                .collect()
        }
        (None, None) => Vec::new(),
    };
    let ready = backing.iter().find(|d| {
        d.pointer("/status/availableReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            > 0
    });
    let Some(deployment) = ready else {
        return Answer::new(503, format!("no healthy upstream: {ns}/{service}"));
    };
    let mut images = Vec::new();
    let containers = deployment
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array);
    for c in containers.into_iter().flatten() {
        images.push(str_at(c, "/image"));
    }
    let chart = release
        .as_ref()
        .map(|hr| str_at(hr, "/spec/chart/spec/chart"))
        .unwrap_or("");
    // What the real apps serve: Bookinfo's product page (samples/bookinfo productpage.py
    // template: <title>Simple Bookstore App</title>); Podinfo's API root (stefanprodan/podinfo
    // pkg/api/http/info.go: {"hostname", "version", "message": "greetings from podinfo v…"}).
    if images
        .iter()
        .any(|i| i.contains("examples-bookinfo-productpage"))
    {
        Answer::new(
            200,
            "<html><head><title>Simple Bookstore App</title></head></html>",
        )
    } else if chart == "kube-prometheus-stack" && service.ends_with("-grafana") {
        // Grafana's pages render public/views/index.html, titled with the app title "Grafana"
        // (grafana/grafana pkg/api/index.go); /login is one of them.
        Answer::new(
            200,
            "<!DOCTYPE html><html><head><title>Grafana</title></head></html>",
        )
    } else if chart == "kiali-server" {
        // Kiali's console (kiali/kiali-frontend public/index.html: <title>Kiali</title>) under
        // its web root /kiali; the token login is part of the page.
        Answer::new(
            200,
            "<!DOCTYPE html><html><head><title>Kiali</title></head></html>",
        )
    } else if chart == "podinfo" {
        Answer::new(
            200,
            format!(
                r#"{{"hostname":"{}","message":"greetings from podinfo"}}"#,
                name(deployment)
            ),
        )
    } else {
        Answer::new(200, format!("simulated workload {ns}/{}", name(deployment)))
    }
}

/// The simulated route for a request to `host` (port ignored) and `path`.
pub fn answer(client: &Client, balancers: &LoadBalancers, host: &str, path: &str) -> Answer {
    let host = host.split(':').next().unwrap_or(host);
    let Some((ingress, service, port)) = ingress_rule(client, host, path) else {
        return Answer::new(404, format!("no ALB listener rule for {host}{path}"));
    };
    let ns = namespace(&ingress).to_string();
    let owner = format!("ingress/{ns}/{}", name(&ingress));
    if !balancers.list().iter().any(|lb| lb.owner == owner) {
        return Answer::new(
            503,
            format!("no load balancer for Ingress {ns}/{}", name(&ingress)),
        );
    }
    let https = str_at(
        &ingress,
        "/metadata/annotations/alb.ingress.kubernetes.io~1backend-protocol",
    )
    .eq_ignore_ascii_case("HTTPS");
    let Some(pods) = gateway_pod_labels(client, &ns, &service) else {
        return app_answer(client, &ns, &service);
    };
    let gateways: Vec<Value> = client
        .list("networking.istio.io/v1", "Gateway", None)
        .into_iter()
        .filter(|g| selects(&labels(g.pointer("/spec/selector")), &pods))
        .collect();
    let server = gateways.iter().find_map(|g| {
        let servers = g.pointer("/spec/servers").and_then(Value::as_array)?;
        servers
            .iter()
            .find(|s| s.pointer("/port/number").and_then(Value::as_u64) == Some(port))
            .map(|s| (g, s))
    });
    let Some((gateway, server)) = server else {
        return Answer::new(502, format!("nothing listens on {ns}/{service}:{port}"));
    };
    let tls = server.get("tls").is_some();
    if https != tls {
        return Answer::new(
            502,
            format!(
                "protocol mismatch: the ALB speaks {} to a {} gateway server on port {port}",
                if https { "TLS" } else { "plain HTTP" },
                if tls { "TLS" } else { "plain" }
            ),
        );
    }
    if tls {
        let sni_match_all = server
            .get("hosts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|h| h.split_once('/').map_or(h, |(_, host)| host) == "*");
        if !sni_match_all {
            return Answer::new(
                502,
                format!("TLS handshake failed: the ALB sends no SNI and Gateway {}/{} port {port} has no `*` host", namespace(gateway), name(gateway)),
            );
        }
    }
    let gateway_ref = format!("{}/{}", namespace(gateway), name(gateway));
    let route = client
        .list("networking.istio.io/v1", "VirtualService", None)
        .into_iter()
        .find(|vs| {
            let bound = vs
                .pointer("/spec/gateways")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .any(|g| {
                    g == gateway_ref || (g == name(gateway) && namespace(vs) == namespace(gateway))
                });
            let hosts = vs.pointer("/spec/hosts").and_then(Value::as_array);
            bound
                && hosts
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .any(|h| host_matches(h, host))
        });
    let Some(vs) = route else {
        return Answer::new(
            404,
            format!("gateway {gateway_ref}: no VirtualService for {host}"),
        );
    };
    let destination = str_at(&vs, "/spec/http/0/route/0/destination/host");
    let mut parts = destination.split('.');
    let dest_service = parts.next().unwrap_or("");
    let dest_ns = parts.next().unwrap_or_else(|| namespace(&vs)).to_string();
    app_answer(client, &dest_ns, dest_service)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::LoadBalancer;
    use serde_json::json;

    fn put(store: &Store, obj: Value) {
        if let Err(e) = store.put(obj) {
            panic!("{e:?}");
        }
    }

    fn deployment() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "app", "namespace": "web"},
            "spec": {"selector": {"matchLabels": {"app": "app"}},
                "template": {"metadata": {"labels": {"app": "app"}},
                    "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]}}},
        })
    }

    /// An ALB with no load balancer yet, then one in front of a workload not yet ready: 503
    /// both times, as the ALB answers with no healthy target (Elastic Load Balancing user guide,
    /// "Troubleshoot your Application Load Balancers": HTTP 503 when the target groups have no
    /// registered or healthy targets); 200 once the workload is ready.
    #[test]
    fn answers_503_until_a_load_balancer_and_a_ready_workload_exist() {
        let store = Store::new();
        put(
            &store,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}),
        );
        put(
            &store,
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "app", "namespace": "web"},
                "spec": {"ingressClassName": "alb", "rules": [{"host": "app.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}}]}}),
        );
        put(
            &store,
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app", "namespace": "web"},
                "spec": {"selector": {"app": "app"}, "ports": [{"port": 80}]}}),
        );
        put(&store, deployment());
        let client = Client::new(&store, "test");
        let balancers = LoadBalancers::default();

        let no_lb = answer(&client, &balancers, "app.example.com", "/");
        assert_eq!(no_lb.status, 503, "{no_lb:?}");
        assert!(no_lb.body.contains("no load balancer"), "{no_lb:?}");

        balancers.insert(LoadBalancer {
            name: "k8s-web-app-0123456789".into(),
            dns_name: "k8s-web-app-0123456789-1.eu-west-1.elb.amazonaws.com".into(),
            kind: "application".into(),
            owner: "ingress/web/app".into(),
        });
        let not_ready = answer(&client, &balancers, "app.example.com", "/");
        assert_eq!(not_ready.status, 503, "{not_ready:?}");
        assert!(
            not_ready.body.contains("no healthy upstream"),
            "{not_ready:?}"
        );

        let stored = client
            .get(&crate::controllers::objects::ObjRef::new(
                "apps/v1",
                "Deployment",
                Some("web"),
                "app",
            ))
            .unwrap_or_default();
        if let Err(e) = client.set_status(&stored, json!({"availableReplicas": 1})) {
            panic!("{e:?}");
        }
        let ready = answer(&client, &balancers, "app.example.com", "/");
        assert_eq!(ready.status, 200, "{ready:?}");
    }
}
