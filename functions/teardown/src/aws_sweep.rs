//! After the cluster is gone: what its controllers made in AWS and nobody removed (the cluster
//! was unreachable, a controller had crashed, the cluster was deleted by hand) — load balancers,
//! target groups, security groups, EBS volumes — found by the tags the controllers put on them,
//! and deleted. Runs only once the cluster no longer exists, so no controller re-creates them.
//!
//! Tags (upstream sources, checked at the versions infra/gitops and ensure-cluster pin):
//! - AWS load balancer controller v3.4.2: `elbv2.k8s.aws/cluster=<cluster>` on every load
//!   balancer, target group and security group it makes (pkg/deploy/tracking/provider.go
//!   StackTags; the backend security group in pkg/networking/backend_sg_provider.go);
//! - EBS CSI driver v1.58.0+ with `controller.k8sTagClusterId` (set by ensure-cluster):
//!   `KubernetesCluster=<cluster>` and `ebs.csi.aws.com/cluster-name=<cluster>` on every volume
//!   (pkg/driver/controller.go).

use aws_sdk_elasticloadbalancingv2::Client as Elb;
use ec2_query::{Ec2, Ec2Error, Filter};
use labflow_core::error::classify_sdk_error;
use labflow_core::StepError;

use crate::report::{Phase, Progress, Report};

pub const LB_CLUSTER_TAG: &str = "elbv2.k8s.aws/cluster";
pub const VOLUME_CLUSTER_TAG: &str = "KubernetesCluster";

fn ec2_error(what: &str, e: Ec2Error) -> StepError {
    if e.is_retryable() {
        StepError::Transient(format!("{what}: {e}"))
    } else {
        StepError::InvalidInput(format!("{what}: {e}"))
    }
}

/// ARNs among `arns` (load balancers or target groups) tagged for `cluster`.
async fn tagged(elb: &Elb, arns: Vec<String>, cluster: &str) -> Result<Vec<String>, StepError> {
    let mut matching = Vec::new();
    // DescribeTags takes at most 20 ARNs (Elastic Load Balancing API reference).
    for chunk in arns.chunks(20) {
        let out = elb
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| classify_sdk_error("DescribeTags", e))?;
        for desc in out.tag_descriptions() {
            let ours = desc
                .tags()
                .iter()
                .any(|t| t.key() == Some(LB_CLUSTER_TAG) && t.value() == Some(cluster));
            if ours {
                matching.extend(desc.resource_arn().map(str::to_string));
            }
        }
    }
    Ok(matching)
}

/// Deletes one step's worth; `Pending` while anything was found (deletions take effect, or
/// are refused while something still depends on the resource, until the next call).
pub(crate) async fn run(
    elb: &Elb,
    ec2: &Ec2,
    cluster: &str,
    report: &mut Report,
) -> Result<Progress, StepError> {
    let mut found = false;

    let load_balancers: Vec<String> = elb
        .describe_load_balancers()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| classify_sdk_error("DescribeLoadBalancers", e))?
        .into_iter()
        .filter_map(|lb| lb.load_balancer_arn().map(str::to_string))
        .collect();
    let load_balancers = tagged(elb, load_balancers, cluster).await?;
    for arn in &load_balancers {
        found = true;
        elb.delete_load_balancer()
            .load_balancer_arn(arn)
            .send()
            .await
            .map_err(|e| classify_sdk_error("DeleteLoadBalancer", e))?;
        report.removed(format!("load balancer {arn}"));
    }
    // A target group still used by a listener is refused (ResourceInUse) until its load
    // balancer is gone: next call.
    if load_balancers.is_empty() {
        let target_groups: Vec<String> = elb
            .describe_target_groups()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| classify_sdk_error("DescribeTargetGroups", e))?
            .into_iter()
            .filter_map(|tg| tg.target_group_arn().map(str::to_string))
            .collect();
        for arn in tagged(elb, target_groups, cluster).await? {
            found = true;
            elb.delete_target_group()
                .target_group_arn(&arn)
                .send()
                .await
                .map_err(|e| classify_sdk_error("DeleteTargetGroup", e))?;
            report.removed(format!("target group {arn}"));
        }
    }

    let groups = ec2
        .describe_security_groups(&[Filter::new(format!("tag:{LB_CLUSTER_TAG}"), &[cluster])])
        .await
        .map_err(|e| ec2_error("DescribeSecurityGroups", e))?;
    for group in groups {
        found = true;
        match ec2.delete_security_group(&group.id).await {
            Ok(()) => report.removed(format!("security group {} ({})", group.id, group.name)),
            // The network interfaces of a load balancer being deleted still use it.
            Err(e) if e.code() == Some("DependencyViolation") => report.waiting(format!(
                "security group {} ({}): still in use by a load balancer going away",
                group.id, group.name
            )),
            Err(e) if e.code() == Some("InvalidGroup.NotFound") => {}
            Err(e) => return Err(ec2_error("DeleteSecurityGroup", e)),
        }
    }

    let volumes = ec2
        .describe_volumes(&[Filter::new(format!("tag:{VOLUME_CLUSTER_TAG}"), &[cluster])])
        .await
        .map_err(|e| ec2_error("DescribeVolumes", e))?;
    for volume in volumes {
        match volume.state.as_str() {
            "deleting" | "deleted" => {}
            // Attached to a node that is still terminating.
            "in-use" | "creating" => {
                found = true;
                report.waiting(format!("EBS volume {} ({})", volume.id, volume.state));
            }
            _ => {
                found = true;
                match ec2.delete_volume(&volume.id).await {
                    Ok(()) => report.removed(format!("EBS volume {}", volume.id)),
                    Err(e) if e.code() == Some("InvalidVolume.NotFound") => {}
                    Err(e) if e.code() == Some("VolumeInUse") => {
                        report.waiting(format!("EBS volume {} (in use)", volume.id))
                    }
                    Err(e) => return Err(ec2_error("DeleteVolume", e)),
                }
            }
        }
    }

    Ok(if found {
        Progress::Pending(Phase::AwsSweep)
    } else {
        Progress::Complete
    })
}
