//! The AWS side of the simulated load balancer controller: the load balancers, target groups and
//! security groups it makes in the AWS emulator, tagged as the real controller (v3.4.2, shipped
//! by chart 3.4.2) tags them, so that what a teardown leaves behind is visible there.
//!
//! Upstream, kubernetes-sigs/aws-load-balancer-controller v3.4.2:
//! - every resource gets `elbv2.k8s.aws/cluster=<cluster>` and `<prefix>/stack=<stack id>`, plus
//!   `<prefix>/resource=<id>` and the `--default-tags` (pkg/deploy/tracking/provider.go
//!   StackTags/ResourceTags); the prefix is `ingress.k8s.aws` or `service.k8s.aws`; the stack id
//!   is the group name of an explicit IngressGroup, else `<namespace>/<name>`
//!   (pkg/model/core/stack_id.go, pkg/ingress/group.go);
//! - resource ids `LoadBalancer`, `ManagedLBSecurityGroup`, and for target groups
//!   `<ingNs>/<ingName>-<svc>:<port>` or `<svcNs>/<svc>:<port>`
//!   (ingress|service/model_build_*.go);
//! - the shared backend security group `k8s-traffic-<cluster>-<hash>` carries only
//!   `elbv2.k8s.aws/cluster` and `elbv2.k8s.aws/resource=backend-sg`
//!   (pkg/networking/backend_sg_provider.go);
//! - subnets are discovered in the VPC by `kubernetes.io/role/elb` (internet-facing) or
//!   `kubernetes.io/role/internal-elb`, value `""` or `"1"` (pkg/networking/subnet_resolver.go).
//!
//! Not simulated: listeners and rules, target registration, security group rules.

use super::aws::AwsAccess;
use aws_sdk_elasticloadbalancingv2::types::{
    LoadBalancerSchemeEnum, LoadBalancerTypeEnum, ProtocolEnum, Tag as ElbTag, TargetTypeEnum,
};
use aws_sdk_elasticloadbalancingv2::Client as Elb;
use ec2_query::{Ec2, Filter};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const CLUSTER_TAG: &str = "elbv2.k8s.aws/cluster";

/// What the controller reads from its command line (chart templates/deployment.yaml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerSettings {
    pub cluster_name: String,
    pub vpc_id: String,
    pub default_tags: BTreeMap<String, String>,
}

impl ControllerSettings {
    /// From the container arguments `--cluster-name=`, `--aws-vpc-id=`, `--default-tags=k=v,...`.
    /// None without a cluster name or VPC (the real controller exits: see chart_runtime).
    pub fn from_args(args: &[String]) -> Option<Self> {
        let arg = |flag: &str| {
            args.iter()
                .find_map(|a| a.strip_prefix(&format!("{flag}=")))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let default_tags = arg("--default-tags")
            .map(|list| {
                list.split(',')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Some(ControllerSettings {
            cluster_name: arg("--cluster-name")?,
            vpc_id: arg("--aws-vpc-id")?,
            default_tags,
        })
    }
}

/// One stack: the load balancer of an Ingress group or of a Service, and what goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    /// `ingress.k8s.aws` or `service.k8s.aws`.
    pub prefix: &'static str,
    /// The group name, or `<namespace>/<name>`.
    pub id: String,
    pub name: String,
    pub internal: bool,
    pub network: bool,
    /// (resource id, backend namespace, backend Service, port) of each target group.
    pub targets: Vec<(String, String, String, i32)>,
}

/// The created load balancer.
#[derive(Debug, Clone)]
pub struct Created {
    pub arn: String,
    pub dns_name: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AwsSideError(pub String);

fn err(what: &str, e: impl std::fmt::Debug) -> AwsSideError {
    AwsSideError(format!("{what}: {e:?}"))
}

/// `k8s-<a8>-<b8>-<hash10>` (or `k8s-<a17>-<hash10>`), alphanumerics only, as the controller
/// names load balancers, target groups and managed security groups.
pub fn resource_name(parts: &[&str], hashed: &str) -> String {
    let clean = |s: &str, n: usize| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .take(n)
            .collect()
    };
    let hash = hex::encode(Sha256::digest(hashed.as_bytes()));
    let width = if parts.len() == 1 { 17 } else { 8 };
    let mut name = "k8s".to_string();
    for part in parts {
        name.push('-');
        name.push_str(&clean(part, width));
    }
    format!("{name}-{}", &hash[..10])
}

pub struct AwsSide {
    elb: Elb,
    ec2: Ec2,
}

impl AwsSide {
    pub fn new(access: &AwsAccess) -> Result<Self, AwsSideError> {
        let config = access.sdk_config("labflow-testbed-aws-load-balancer-controller");
        Ok(AwsSide {
            elb: Elb::new(&config),
            ec2: Ec2::new(&config).map_err(|e| err("EC2 client", e))?,
        })
    }

    fn tags(
        settings: &ControllerSettings,
        stack: &Stack,
        resource: &str,
    ) -> BTreeMap<String, String> {
        let mut tags = settings.default_tags.clone();
        tags.insert(CLUSTER_TAG.into(), settings.cluster_name.clone());
        tags.insert(format!("{}/stack", stack.prefix), stack.id.clone());
        tags.insert(format!("{}/resource", stack.prefix), resource.into());
        tags
    }

    fn elb_tags(tags: &BTreeMap<String, String>) -> Vec<ElbTag> {
        tags.iter()
            .map(|(k, v)| ElbTag::builder().key(k).value(v).build())
            .collect()
    }

    async fn subnets(
        &self,
        settings: &ControllerSettings,
        internal: bool,
    ) -> Result<Vec<String>, AwsSideError> {
        let role = if internal {
            "kubernetes.io/role/internal-elb"
        } else {
            "kubernetes.io/role/elb"
        };
        let subnets: Vec<String> = self
            .ec2
            .describe_subnets(&[
                Filter::new("vpc-id", &[&settings.vpc_id]),
                Filter::new(format!("tag:{role}"), &["", "1"]),
            ])
            .await
            .map_err(|e| err("DescribeSubnets", e))?
            .into_iter()
            .map(|s| s.id)
            .collect();
        if subnets.is_empty() {
            // The controller's event text (subnet_resolver.go).
            return Err(AwsSideError(format!(
                "couldn't auto-discover subnets: unable to resolve at least one subnet (tag {role} in {})",
                settings.vpc_id
            )));
        }
        Ok(subnets)
    }

    /// A security group by name in the VPC, created with `tags` if missing.
    async fn security_group(
        &self,
        settings: &ControllerSettings,
        name: &str,
        description: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, AwsSideError> {
        let found = self
            .ec2
            .describe_security_groups(&[
                Filter::new("vpc-id", &[&settings.vpc_id]),
                Filter::new("group-name", &[name]),
            ])
            .await
            .map_err(|e| err("DescribeSecurityGroups", e))?;
        if let Some(group) = found.into_iter().next() {
            return Ok(group.id);
        }
        self.ec2
            .create_security_group(name, description, &settings.vpc_id, tags)
            .await
            .map_err(|e| err("CreateSecurityGroup", e))
    }

    fn backend_sg_name(settings: &ControllerSettings) -> String {
        let hash = hex::encode(Sha256::digest(settings.cluster_name.as_bytes()));
        format!("k8s-traffic-{}-{}", settings.cluster_name, &hash[..10])
    }

    /// The stack's load balancer, target groups and managed security group, created where
    /// missing (found by name, as the controller finds its own after a restart).
    pub async fn ensure(
        &self,
        settings: &ControllerSettings,
        stack: &Stack,
    ) -> Result<Created, AwsSideError> {
        let existing = self
            .elb
            .describe_load_balancers()
            .names(&stack.name)
            .send()
            .await;
        let lb = match existing {
            Ok(out) => out.load_balancers().first().cloned(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_load_balancer_not_found_exception()) =>
            {
                None
            }
            Err(e) => return Err(err("DescribeLoadBalancers", e)),
        };
        let lb = match lb {
            Some(lb) => lb,
            None => {
                let subnets = self.subnets(settings, stack.internal).await?;
                let mut backend_tags = settings.default_tags.clone();
                backend_tags.insert(CLUSTER_TAG.into(), settings.cluster_name.clone());
                backend_tags.insert("elbv2.k8s.aws/resource".into(), "backend-sg".into());
                let backend = self
                    .security_group(
                        settings,
                        &Self::backend_sg_name(settings),
                        "[k8s] Shared Backend SecurityGroup for LoadBalancer",
                        &backend_tags,
                    )
                    .await?;
                let managed = self
                    .security_group(
                        settings,
                        &stack.name,
                        "[k8s] Managed SecurityGroup for LoadBalancer",
                        &Self::tags(settings, stack, "ManagedLBSecurityGroup"),
                    )
                    .await?;
                let out = self
                    .elb
                    .create_load_balancer()
                    .name(&stack.name)
                    .set_subnets(Some(subnets))
                    .security_groups(managed)
                    .security_groups(backend)
                    .scheme(if stack.internal {
                        LoadBalancerSchemeEnum::Internal
                    } else {
                        LoadBalancerSchemeEnum::InternetFacing
                    })
                    .r#type(if stack.network {
                        LoadBalancerTypeEnum::Network
                    } else {
                        LoadBalancerTypeEnum::Application
                    })
                    .set_tags(Some(Self::elb_tags(&Self::tags(
                        settings,
                        stack,
                        "LoadBalancer",
                    ))))
                    .send()
                    .await
                    .map_err(|e| err("CreateLoadBalancer", e))?;
                out.load_balancers()
                    .first()
                    .cloned()
                    .ok_or_else(|| AwsSideError("CreateLoadBalancer returned nothing".into()))?
            }
        };
        for (resource, namespace, service, port) in &stack.targets {
            self.ensure_target_group(settings, stack, resource, namespace, service, *port)
                .await?;
        }
        Ok(Created {
            arn: lb.load_balancer_arn().unwrap_or_default().to_string(),
            dns_name: lb.dns_name().unwrap_or_default().to_string(),
        })
    }

    async fn ensure_target_group(
        &self,
        settings: &ControllerSettings,
        stack: &Stack,
        resource: &str,
        namespace: &str,
        service: &str,
        port: i32,
    ) -> Result<(), AwsSideError> {
        let name = resource_name(
            &[namespace, service],
            &format!("{}{}{resource}", settings.cluster_name, stack.id),
        );
        match self.elb.describe_target_groups().names(&name).send().await {
            Ok(_) => return Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_target_group_not_found_exception()) => {}
            Err(e) => return Err(err("DescribeTargetGroups", e)),
        }
        self.elb
            .create_target_group()
            .name(&name)
            .protocol(if stack.network {
                ProtocolEnum::Tcp
            } else {
                ProtocolEnum::Http
            })
            .port(port)
            .vpc_id(&settings.vpc_id)
            .target_type(TargetTypeEnum::Ip)
            .set_tags(Some(Self::elb_tags(&Self::tags(settings, stack, resource))))
            .send()
            .await
            .map_err(|e| err("CreateTargetGroup", e))?;
        Ok(())
    }

    /// Deletes every resource of the stack (found by its tags, as the controller does), and the
    /// backend security group when `last` (no other stack of the cluster remains).
    pub async fn delete(
        &self,
        settings: &ControllerSettings,
        stack: &Stack,
        last: bool,
    ) -> Result<(), AwsSideError> {
        let wanted = [
            (CLUSTER_TAG.to_string(), settings.cluster_name.clone()),
            (format!("{}/stack", stack.prefix), stack.id.clone()),
        ];
        let matching = |tagged: Vec<(String, BTreeMap<String, String>)>| -> Vec<String> {
            tagged
                .into_iter()
                .filter(|(_, tags)| wanted.iter().all(|(k, v)| tags.get(k) == Some(v)))
                .map(|(arn, _)| arn)
                .collect()
        };
        let lbs = load_balancer_arns(&self.elb).await?;
        for arn in matching(tags_of(&self.elb, &lbs).await?) {
            self.elb
                .delete_load_balancer()
                .load_balancer_arn(arn)
                .send()
                .await
                .map_err(|e| err("DeleteLoadBalancer", e))?;
        }
        let tgs = target_group_arns(&self.elb).await?;
        for arn in matching(tags_of(&self.elb, &tgs).await?) {
            self.elb
                .delete_target_group()
                .target_group_arn(arn)
                .send()
                .await
                .map_err(|e| err("DeleteTargetGroup", e))?;
        }
        let backend = Self::backend_sg_name(settings);
        let filters = if last {
            vec![
                Filter::new(format!("tag:{CLUSTER_TAG}"), &[&settings.cluster_name]),
                Filter::new("group-name", &[&stack.name, &backend]),
            ]
        } else {
            vec![
                Filter::new(format!("tag:{CLUSTER_TAG}"), &[&settings.cluster_name]),
                Filter::new(format!("tag:{}/stack", stack.prefix), &[&stack.id]),
            ]
        };
        let groups = self
            .ec2
            .describe_security_groups(&filters)
            .await
            .map_err(|e| err("DescribeSecurityGroups", e))?;
        for group in groups {
            self.ec2
                .delete_security_group(&group.id)
                .await
                .map_err(|e| err("DeleteSecurityGroup", e))?;
        }
        Ok(())
    }
}

/// Every load balancer's ARN.
pub(crate) async fn load_balancer_arns(elb: &Elb) -> Result<Vec<String>, AwsSideError> {
    let all = elb
        .describe_load_balancers()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| err("DescribeLoadBalancers", e))?;
    Ok(all
        .iter()
        .filter_map(|lb| lb.load_balancer_arn().map(str::to_string))
        .collect())
}

/// Every target group's ARN.
pub(crate) async fn target_group_arns(elb: &Elb) -> Result<Vec<String>, AwsSideError> {
    let all = elb
        .describe_target_groups()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| err("DescribeTargetGroups", e))?;
    Ok(all
        .iter()
        .filter_map(|tg| tg.target_group_arn().map(str::to_string))
        .collect())
}

/// The tags of each load balancer or target group in `arns`.
pub(crate) async fn tags_of(
    elb: &Elb,
    arns: &[String],
) -> Result<Vec<(String, BTreeMap<String, String>)>, AwsSideError> {
    let mut all = Vec::new();
    // DescribeTags takes at most 20 ARNs (ELBv2 API reference).
    for chunk in arns.chunks(20) {
        let out = elb
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| err("DescribeTags", e))?;
        for desc in out.tag_descriptions() {
            let tags = desc
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            all.push((desc.resource_arn().unwrap_or_default().to_string(), tags));
        }
    }
    Ok(all)
}
