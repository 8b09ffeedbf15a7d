//! What the AWS emulator still holds for a cluster, outside EKS: load balancers, target groups,
//! security groups and volumes carrying the cluster's name in a tag (the load balancer
//! controller's `elbv2.k8s.aws/cluster`, the EBS CSI driver's `KubernetesCluster`,
//! `kubernetes.io/cluster/<name>`, `ebs.csi.aws.com/cluster-name`, or any other). Read
//! independently of teardown's own sweep, so that a "left behind nothing" check does not trust
//! the code it checks.

use crate::controllers::{lb_aws, AwsAccess};
use ec2_query::Ec2;
use std::collections::BTreeMap;

fn names_cluster(tags: &BTreeMap<String, String>, cluster: &str) -> bool {
    tags.iter()
        .any(|(k, v)| v == cluster || k.ends_with(&format!("/{cluster}")))
}

/// One line per resource, e.g. `load balancer k8s-web-podinfo-0a1b2c3d4e (arn:...)`.
pub async fn tagged_for_cluster(aws: &AwsAccess, cluster: &str) -> Result<Vec<String>, String> {
    let config = aws.sdk_config("labflow-leftovers");
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let ec2 = Ec2::new(&config).map_err(|e| e.to_string())?;
    let mut left = Vec::new();

    let error = |e: lb_aws::AwsSideError| e.to_string();
    for (kind, arns) in [
        (
            "load balancer",
            lb_aws::load_balancer_arns(&elb).await.map_err(error)?,
        ),
        (
            "target group",
            lb_aws::target_group_arns(&elb).await.map_err(error)?,
        ),
    ] {
        for (arn, tags) in lb_aws::tags_of(&elb, &arns).await.map_err(error)? {
            if names_cluster(&tags, cluster) {
                left.push(format!("{kind} {arn}"));
            }
        }
    }
    for group in ec2
        .describe_security_groups(&[])
        .await
        .map_err(|e| e.to_string())?
    {
        if names_cluster(&group.tags, cluster) {
            left.push(format!("security group {} ({})", group.id, group.name));
        }
    }
    for volume in ec2.describe_volumes(&[]).await.map_err(|e| e.to_string())? {
        if names_cluster(&volume.tags, cluster) {
            left.push(format!("volume {} ({})", volume.id, volume.state));
        }
    }
    Ok(left)
}
