//! The public path: ALB Ingresses into Istio gateways, and the controller that makes the ALBs.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Findings, Object, Rule, Tree};

pub const ALB_HTTPS_SNI: Rule = Rule {
    id: "alb-https-sni",
    summary: "an ALB Ingress re-encrypting (backend-protocol HTTPS) to an Istio gateway needs a `*` host on the gateway's TLS server: the ALB sends no SNI, and Istio matches the server's hosts as SNI names",
    source: "istio 1.30.3 pilot/pkg/model/gateway.go GetSNIHostsForServer and pilot/pkg/networking/core/listener.go isMatchAll; istio/istio#31421, istio/istio#35420",
};

pub const LB_CONTROLLER_VPC: Rule = Rule {
    id: "lb-controller-vpc",
    summary: "the AWS load balancer controller is given vpcId and region: it otherwise asks instance metadata, which pods cannot reach on nodes with an IMDSv2 hop limit of 1 (AL2023 managed node groups, labflow's launch template)",
    source: "kubernetes-sigs/aws-load-balancer-controller pkg/aws/cloud.go inferVPCID, issue #3695; EKS user guide, AL2023 AMIs: IMDSv2 with hop limit 1",
};

const ALB_CLASS: &str = "alb";
const BACKEND_PROTOCOL: &str = "alb.ingress.kubernetes.io/backend-protocol";

pub fn check(tree: &Tree<'_>, out: &mut Findings<'_>) {
    for ingress in tree.of_kind("networking.k8s.io", "Ingress") {
        check_alb_https_backends(tree, ingress, out);
    }
    for release in tree.releases_of("aws-load-balancer-controller") {
        let missing: Vec<&str> = ["vpcId", "region"]
            .into_iter()
            .filter(|key| {
                release
                    .values
                    .get(*key)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            })
            .collect();
        if !missing.is_empty() {
            out.report(
                release.object,
                &LB_CONTROLLER_VPC,
                format!(
                    "values set no {}: the controller then reads them from instance metadata, fails on nodes whose IMDSv2 hop limit is 1, and crash-loops",
                    missing.join(" or ")
                ),
            );
        }
    }
}

fn is_alb(ingress: &Object<'_>) -> bool {
    ingress.str_at("/spec/ingressClassName") == Some(ALB_CLASS)
        || ingress.annotation("kubernetes.io/ingress.class") == Some(ALB_CLASS)
}

/// A backend Service port, by number or by name.
#[derive(Debug, PartialEq)]
enum Port<'v> {
    Number(u64),
    Name(&'v str),
}

/// Every `(service, port)` the Ingress routes to.
fn backends<'v>(ingress: &'v Value) -> Vec<(&'v str, Port<'v>)> {
    let mut found = Vec::new();
    let mut add = |backend: &'v Value| {
        let Some(service) = backend.get("service") else {
            return;
        };
        let name = service.get("name").and_then(Value::as_str).unwrap_or("");
        let port = service.get("port");
        let port = match (
            port.and_then(|p| p.get("number")).and_then(Value::as_u64),
            port.and_then(|p| p.get("name")).and_then(Value::as_str),
        ) {
            (Some(number), _) => Port::Number(number),
            (None, Some(name)) => Port::Name(name),
            (None, None) => return,
        };
        found.push((name, port));
    };
    if let Some(backend) = ingress.pointer("/spec/defaultBackend") {
        add(backend);
    }
    for rule in ingress
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for path in rule
            .pointer("/http/paths")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(backend) = path.get("backend") {
                add(backend);
            }
        }
    }
    found
}

/// Pod labels, as a selector's `key: value` pairs.
type Labels = BTreeMap<String, String>;

fn labels(value: Option<&Value>) -> Labels {
    value
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// The pod labels behind Service `namespace/name`, when the tree says: a Service object's
/// selector, or an Istio `gateway` chart release of that name (its Service selects the pods by
/// the chart's selector labels). `None`: unknown, any gateway may be behind it.
fn service_pod_labels(tree: &Tree<'_>, namespace: &str, name: &str) -> Option<Labels> {
    if let Some(service) = tree
        .of_kind("", "Service")
        .find(|s| s.namespace() == namespace && s.name() == name)
    {
        return Some(labels(service.value.pointer("/spec/selector")));
    }
    // The chart's selector labels default to `app: <name>`, `istio: <name without istio->`
    // (istio 1.30.3 manifests/charts/gateway/templates/_helpers.tpl, gateway.selectorLabels).
    tree.releases_of("gateway")
        .find(|r| r.target_namespace() == namespace && r.release_name() == name)
        .map(|r| {
            let mut selected = Labels::from([
                ("app".to_owned(), name.to_owned()),
                (
                    "istio".to_owned(),
                    name.trim_start_matches("istio-").to_owned(),
                ),
            ]);
            selected.extend(labels(r.values.get("labels")));
            selected
        })
}

/// Does the Gateway's `spec.selector` select pods with `labels`?
fn selects(gateway: &Object<'_>, labels: &Labels) -> bool {
    gateway
        .value
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .is_some_and(|selector| {
            selector.iter().all(|(k, v)| {
                v.as_str()
                    .is_some_and(|v| labels.get(k).map(String::as_str) == Some(v))
            })
        })
}

/// The SNI names Istio gives a server's filter chain: each host without its `namespace/` part.
fn sni_hosts(server: &Value) -> Vec<&str> {
    server
        .get("hosts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|h| h.split_once('/').map_or(h, |(_, host)| host))
        .collect()
}

fn check_alb_https_backends(tree: &Tree<'_>, ingress: &Object<'_>, out: &mut Findings<'_>) {
    let https = ingress
        .annotation(BACKEND_PROTOCOL)
        .is_some_and(|p| p.eq_ignore_ascii_case("HTTPS"));
    if !is_alb(ingress) || !https {
        return;
    }
    for (service, port) in backends(&ingress.value) {
        let pod_labels = service_pod_labels(tree, ingress.namespace(), service);
        for gateway in tree.of_kind("networking.istio.io", "Gateway") {
            if pod_labels.as_ref().is_some_and(|l| !selects(gateway, l)) {
                continue;
            }
            let servers = gateway
                .value
                .pointer("/spec/servers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            for server in servers {
                let on_port = match &port {
                    Port::Number(n) => {
                        server.pointer("/port/number").and_then(Value::as_u64) == Some(*n)
                    }
                    Port::Name(name) => {
                        server.pointer("/port/name").and_then(Value::as_str) == Some(*name)
                    }
                };
                let hosts = sni_hosts(server);
                if !on_port || server.get("tls").is_none() || hosts.contains(&"*") {
                    continue;
                }
                out.report(
                    ingress,
                    &ALB_HTTPS_SNI,
                    format!(
                        "the ALB re-encrypts to {service}:{} without SNI, but Gateway {}/{} matches SNI {:?} on that port, so no filter chain takes the connection and every request gets 502 (target health checks still pass); add host `*` to that server, or use backend-protocol HTTP",
                        match port { Port::Number(n) => n.to_string(), Port::Name(n) => n.to_string() },
                        gateway.namespace(),
                        gateway.name(),
                        hosts,
                    ),
                );
            }
        }
    }
}
