//! The AWS load balancer controller: LoadBalancer Services (NLB) and Ingresses of class `alb`
//! (ALB) get a load balancer, its hostname in `status.loadBalancer.ingress[]`, and a finalizer
//! that is removed — with the load balancer — only while the controller's Deployment
//! (`app.kubernetes.io/name=aws-load-balancer-controller`, any namespace) exists. Without it a
//! deleted Service/Ingress stays Terminating, as in a cluster whose controller was uninstalled
//! first. (Every LoadBalancer Service is treated as the controller's; the in-tree cloud provider
//! is not simulated.)
//!
//! Ingresses of one explicit group (`alb.ingress.kubernetes.io/group.name`) share one load
//! balancer and carry the finalizer `group.ingress.k8s.aws/<group>`; an Ingress without a group
//! has its own and `ingress.k8s.aws/resources` (aws-load-balancer-controller v3.4.2
//! pkg/shared_constants: ExplicitGroupFinalizerPrefix, ImplicitGroupFinalizer). A group's load
//! balancer goes when its last member does.
//!
//! Given [`LoadBalancerOptions::aws`], the load balancers, target groups and security groups are
//! real resources in the AWS emulator ([`super::lb_aws`]), made with the settings the controller
//! reads from its command line (`--cluster-name`, `--aws-vpc-id`, `--default-tags`): what a
//! teardown leaves behind stays there. Without it they exist only in [`LoadBalancers`].

use super::aws::AwsAccess;
use super::lb_aws::{resource_name, AwsSide, ControllerSettings, Stack};
use super::objects::{self, Client, ObjRef};
use super::{is_kind, Reconciler};
use crate::kubesim::{ChangeEvent, Store};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

pub const SERVICE_FINALIZER: &str = "service.k8s.aws/resources";
pub const INGRESS_FINALIZER: &str = "ingress.k8s.aws/resources";
pub const GROUP_FINALIZER_PREFIX: &str = "group.ingress.k8s.aws/";
pub const GROUP_ANNOTATION: &str = "alb.ingress.kubernetes.io/group.name";
pub const CONTROLLER_LABEL: &str = "aws-load-balancer-controller";

#[derive(Debug, Clone)]
pub struct LoadBalancerOptions {
    pub region: String,
    /// Make the load balancers in the AWS emulator (None: only in [`LoadBalancers`]).
    pub aws: Option<AwsAccess>,
}

impl Default for LoadBalancerOptions {
    fn default() -> Self {
        LoadBalancerOptions {
            region: "eu-west-1".to_string(),
            aws: None,
        }
    }
}

impl LoadBalancerOptions {
    /// Real load balancers in the emulator behind `aws`.
    pub fn with_aws(mut self, aws: AwsAccess) -> Self {
        self.region = aws.region.clone();
        self.aws = Some(aws);
        self
    }
}

/// A load balancer as one Service or Ingress sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadBalancer {
    /// `k8s-<ns>-<name>-<hash>` (`k8s-<group>-<hash>` for a group), as the controller names them.
    pub name: String,
    pub dns_name: String,
    /// `application` (Ingress) or `network` (Service).
    pub kind: String,
    /// `ingress/<ns>/<name>` or `service/<ns>/<name>`.
    pub owner: String,
}

/// The load balancers that exist, one entry per Service/Ingress, readable from tests (e.g.
/// "teardown left none behind") and by the simulated ALB front.
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

    pub(crate) fn insert(&self, lb: LoadBalancer) {
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

pub fn is_alb_ingress(ing: &Value) -> bool {
    objects::s(ing, "/spec/ingressClassName") == "alb"
        || objects::annotation(ing, "kubernetes.io/ingress.class") == Some("alb")
}

pub fn is_lb_service(svc: &Value) -> bool {
    objects::s(svc, "/spec/type") == "LoadBalancer"
}

/// One Service or Ingress the controller looks at.
struct Member {
    obj: Value,
    owner: String,
    finalizer: String,
    wanted: bool,
    stack: Stack,
}

fn is_internal(obj: &Value) -> bool {
    objects::annotation(obj, "alb.ingress.kubernetes.io/scheme") == Some("internal")
        || objects::annotation(obj, "service.beta.kubernetes.io/aws-load-balancer-scheme")
            == Some("internal")
}

/// The Services an Ingress sends to: (namespace, name, port) of every rule's and the default
/// backend.
fn ingress_backends(ing: &Value) -> Vec<(String, i32)> {
    let mut backends = Vec::new();
    let mut add = |b: Option<&Value>| {
        if let Some(svc) = b.and_then(|b| b.pointer("/service")) {
            let port = svc
                .pointer("/port/number")
                .and_then(Value::as_i64)
                .unwrap_or(80);
            backends.push((objects::s(svc, "/name").to_string(), port as i32));
        }
    };
    add(ing.pointer("/spec/defaultBackend"));
    for rule in ing
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
            add(path.get("backend"));
        }
    }
    backends.sort();
    backends.dedup();
    backends
}

fn member(kind: &str, obj: Value, cluster: &str) -> Member {
    let ns = objects::namespace(&obj).unwrap_or("default").to_string();
    let name = objects::name(&obj).to_string();
    let owner = format!("{kind}/{ns}/{name}");
    let internal = is_internal(&obj);
    let scheme = if internal {
        "internal"
    } else {
        "internet-facing"
    };
    if kind == "ingress" {
        let group = objects::annotation(&obj, GROUP_ANNOTATION)
            .filter(|g| !g.is_empty())
            .map(str::to_string);
        let (id, lb_name, finalizer) = match &group {
            Some(g) => (
                g.clone(),
                resource_name(&[g], &format!("{cluster}{g}{scheme}")),
                format!("{GROUP_FINALIZER_PREFIX}{g}"),
            ),
            None => (
                format!("{ns}/{name}"),
                resource_name(&[&ns, &name], &format!("{cluster}{ns}/{name}{scheme}")),
                INGRESS_FINALIZER.to_string(),
            ),
        };
        let targets = ingress_backends(&obj)
            .into_iter()
            .map(|(svc, port)| (format!("{ns}/{name}-{svc}:{port}"), ns.clone(), svc, port))
            .collect();
        Member {
            wanted: is_alb_ingress(&obj),
            obj,
            owner,
            finalizer,
            stack: Stack {
                prefix: "ingress.k8s.aws",
                id,
                name: lb_name,
                internal,
                network: false,
                targets,
            },
        }
    } else {
        let targets = obj
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("port").and_then(Value::as_i64))
            .map(|port| {
                (
                    format!("{ns}/{name}:{port}"),
                    ns.clone(),
                    name.clone(),
                    port as i32,
                )
            })
            .collect();
        let uid = objects::uid(&obj).to_string();
        Member {
            wanted: is_lb_service(&obj),
            finalizer: SERVICE_FINALIZER.to_string(),
            stack: Stack {
                prefix: "service.k8s.aws",
                id: format!("{ns}/{name}"),
                name: resource_name(&[&ns, &name], &format!("{cluster}{uid}{scheme}")),
                internal,
                network: true,
                targets,
            },
            obj,
            owner,
        }
    }
}

pub(crate) struct LoadBalancerController {
    client: Client,
    options: LoadBalancerOptions,
    balancers: LoadBalancers,
    aws: Option<AwsSide>,
    /// DNS name of each stack's load balancer, by `<prefix>/<stack id>`, once made.
    made: BTreeMap<String, String>,
}

impl LoadBalancerController {
    pub fn new(store: &Store, options: LoadBalancerOptions, balancers: LoadBalancers) -> Self {
        let aws = options.aws.as_ref().and_then(|a| match AwsSide::new(a) {
            Ok(side) => Some(side),
            Err(e) => {
                tracing::warn!(error = %e, "load balancer controller: no AWS side");
                None
            }
        });
        LoadBalancerController {
            client: Client::new(store, "aws-load-balancer-controller"),
            options,
            balancers,
            aws,
            made: BTreeMap::new(),
        }
    }

    /// The controller's command line, from its Deployment (None: not installed, or, with an AWS
    /// side, started without the cluster name or VPC it cannot run without).
    fn settings(&self) -> Option<ControllerSettings> {
        let deployment = self
            .client
            .list("apps/v1", "Deployment", None)
            .into_iter()
            .find(|d| objects::label(d, "app.kubernetes.io/name") == Some(CONTROLLER_LABEL))?;
        let args: Vec<String> = deployment
            .pointer("/spec/template/spec/containers/0/args")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        match (&self.aws, ControllerSettings::from_args(&args)) {
            (Some(_), settings) => settings,
            (None, Some(settings)) => Some(settings),
            // Without an AWS side, nothing needs the command line.
            (None, None) => Some(ControllerSettings {
                cluster_name: String::new(),
                vpc_id: String::new(),
                default_tags: BTreeMap::new(),
            }),
        }
    }

    fn stack_key(stack: &Stack) -> String {
        format!("{}/{}", stack.prefix, stack.id)
    }

    /// The stack's load balancer DNS name, making it where needed.
    async fn ensure(&mut self, settings: &ControllerSettings, stack: &Stack) -> Option<String> {
        let key = Self::stack_key(stack);
        if let Some(dns) = self.made.get(&key) {
            return Some(dns.clone());
        }
        let dns = match &self.aws {
            Some(aws) => match aws.ensure(settings, stack).await {
                Ok(created) => created.dns_name,
                Err(e) => {
                    tracing::warn!(stack = %key, error = %e, "load balancer controller: reconcile");
                    return None;
                }
            },
            None => {
                let region = &self.options.region;
                let hash = &stack.name[stack.name.len().saturating_sub(10)..];
                if stack.network {
                    format!("{}.elb.{region}.amazonaws.com", stack.name)
                } else {
                    format!(
                        "{}-{}.{region}.elb.amazonaws.com",
                        stack.name,
                        u32::from_str_radix(&hash[..7.min(hash.len())], 16).unwrap_or(0)
                    )
                }
            }
        };
        self.made.insert(key, dns.clone());
        Some(dns)
    }

    /// Deletes the stack's resources; false when AWS refused (try again next pass).
    async fn delete(&mut self, settings: &ControllerSettings, stack: &Stack, last: bool) -> bool {
        if let Some(aws) = &self.aws {
            if let Err(e) = aws.delete(settings, stack, last).await {
                tracing::warn!(stack = %Self::stack_key(stack), error = %e, "load balancer controller: delete");
                return false;
            }
        }
        self.made.remove(&Self::stack_key(stack));
        true
    }
}

impl Reconciler for LoadBalancerController {
    fn interested(&self, e: &ChangeEvent) -> bool {
        is_kind(e, "", &["services"])
            || is_kind(e, "networking.k8s.io", &["ingresses"])
            || is_kind(e, "apps", &["deployments"])
    }

    async fn pass(&mut self) {
        let Some(settings) = self.settings() else {
            return;
        };
        let mut members = Vec::new();
        for svc in self.client.list("v1", "Service", None) {
            let m = member("service", svc, &settings.cluster_name);
            let has = objects::finalizers(&m.obj).contains(&m.finalizer);
            if m.wanted || has {
                members.push(m);
            }
        }
        for ing in self.client.list("networking.k8s.io/v1", "Ingress", None) {
            let m = member("ingress", ing, &settings.cluster_name);
            let has = objects::finalizers(&m.obj)
                .iter()
                .any(|f| f == INGRESS_FINALIZER || f.starts_with(GROUP_FINALIZER_PREFIX));
            if m.wanted || has {
                members.push(m);
            }
        }
        let live: BTreeSet<String> = members
            .iter()
            .filter(|m| m.wanted && !objects::is_deleting(&m.obj))
            .map(|m| Self::stack_key(&m.stack))
            .collect();
        for m in &members {
            let what = ObjRef::of(&m.obj).display();
            let has_finalizer = objects::finalizers(&m.obj).contains(&m.finalizer);
            if objects::is_deleting(&m.obj) || !m.wanted {
                if !has_finalizer {
                    continue;
                }
                let key = Self::stack_key(&m.stack);
                if !live.contains(&key) && !self.delete(&settings, &m.stack, live.is_empty()).await
                {
                    continue;
                }
                self.balancers.remove(&m.owner);
                if let Err(e) = self.client.remove_finalizer(&m.obj, &m.finalizer) {
                    tracing::debug!(object = %what, error = %e, "load balancer controller: finalizer");
                }
                continue;
            }
            if !has_finalizer {
                if let Err(e) = self.client.add_finalizer(&m.obj, &m.finalizer) {
                    tracing::debug!(object = %what, error = %e, "load balancer controller: finalizer");
                }
                continue;
            }
            let Some(dns_name) = self.ensure(&settings, &m.stack).await else {
                continue;
            };
            self.balancers.insert(LoadBalancer {
                name: m.stack.name.clone(),
                dns_name: dns_name.clone(),
                kind: if m.stack.network {
                    "network"
                } else {
                    "application"
                }
                .to_string(),
                owner: m.owner.clone(),
            });
            let mut status = m.obj.get("status").cloned().unwrap_or_else(|| json!({}));
            status["loadBalancer"] = json!({"ingress": [{"hostname": dns_name}]});
            if let Err(e) = self.client.set_status(&m.obj, status) {
                tracing::debug!(object = %what, error = %e, "load balancer controller: status");
            }
        }
    }
}

#[cfg(test)]
mod aws_side_tests {
    use super::*;
    use crate::controllers::lb_aws::{self, load_balancer_arns, tags_of};
    use aws_sdk_elasticloadbalancingv2::Client as Elb;
    use ec2_query::Ec2;

    fn put(store: &Store, obj: Value) -> Value {
        store.put(obj).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn controller(args: &[String]) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "aws-load-balancer-controller", "namespace": "kube-system",
                "labels": {"app.kubernetes.io/name": CONTROLLER_LABEL}},
            "spec": {"selector": {"matchLabels": {"app": "lbc"}},
                "template": {"metadata": {"labels": {"app": "lbc"}},
                    "spec": {"containers": [{"name": "c", "image": "x", "args": args}]}}}})
    }

    /// As the real controller: nothing without its cluster name and VPC (it exits), no load
    /// balancer where no subnet carries the role tag (subnet_resolver.go), and in a VPC whose
    /// subnets do, an ALB in the emulator with the stack's tags.
    #[tokio::test]
    async fn makes_tagged_load_balancers_only_with_its_settings_and_tagged_subnets() {
        let moto = tokio::task::spawn_blocking(crate::moto::shared)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        let aws = AwsAccess::new(&moto.endpoint(), "eu-west-1");
        let tagged = crate::network::create(&aws)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let ec2 = Ec2::new(&aws.sdk_config("test")).unwrap_or_else(|e| panic!("{e}"));
        let untagged = ec2
            .create_vpc("10.1.0.0/16")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        ec2.create_subnet(&untagged, "10.1.0.0/20", "eu-west-1a", &BTreeMap::new())
            .await
            .unwrap_or_else(|e| panic!("{e}"));

        let store = Store::new();
        for ns in ["kube-system", "web"] {
            put(
                &store,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            );
        }
        put(
            &store,
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "app", "namespace": "web"},
            "spec": {"ingressClassName": "alb", "rules": [{"host": "app.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}}]}}),
        );
        let client = Client::new(&store, "test");
        let ingress = || {
            client
                .get(&ObjRef::new(
                    "networking.k8s.io/v1",
                    "Ingress",
                    Some("web"),
                    "app",
                ))
                .unwrap_or_default()
        };
        let ours = || async {
            let arns = load_balancer_arns(&Elb::new(&aws.sdk_config("test")))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            tags_of(&Elb::new(&aws.sdk_config("test")), &arns)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .into_iter()
                .filter(|(_, tags)| {
                    tags.get(lb_aws::CLUSTER_TAG).map(String::as_str) == Some("lbc-lab")
                })
                .collect::<Vec<_>>()
        };
        let mut lbc = LoadBalancerController::new(
            &store,
            LoadBalancerOptions::default().with_aws(aws.clone()),
            LoadBalancers::default(),
        );

        put(&store, controller(&["--cluster-name=lbc-lab".to_string()]));
        lbc.pass().await;
        assert!(
            objects::finalizers(&ingress()).is_empty(),
            "acted without its VPC"
        );

        put(
            &store,
            controller(&[
                "--cluster-name=lbc-lab".to_string(),
                format!("--aws-vpc-id={untagged}"),
            ]),
        );
        lbc.pass().await;
        lbc.pass().await;
        assert!(hostname_of(&ingress()).is_none(), "{:?}", ingress());
        assert!(
            ours().await.is_empty(),
            "a load balancer without role-tagged subnets"
        );

        put(
            &store,
            controller(&[
                "--cluster-name=lbc-lab".to_string(),
                format!("--aws-vpc-id={}", tagged.vpc_id),
            ]),
        );
        lbc.pass().await;
        let made = ours().await;
        assert_eq!(made.len(), 1, "{made:?}");
        assert_eq!(
            made[0].1.get("ingress.k8s.aws/stack").map(String::as_str),
            Some("web/app")
        );
        assert_eq!(
            made[0]
                .1
                .get("ingress.k8s.aws/resource")
                .map(String::as_str),
            Some("LoadBalancer")
        );
        assert!(hostname_of(&ingress()).is_some(), "{:?}", ingress());
    }

    fn hostname_of(obj: &Value) -> Option<String> {
        obj.pointer("/status/loadBalancer/ingress/0/hostname")
            .and_then(Value::as_str)
            .map(str::to_string)
    }
}
