//! What the AWS emulator still holds for a cluster, outside EKS: load balancers, target groups,
//! security groups and volumes carrying the cluster's name in a tag (the load balancer
//! controller's `elbv2.k8s.aws/cluster`, the EBS CSI driver's `KubernetesCluster`,
//! `kubernetes.io/cluster/<name>`, `ebs.csi.aws.com/cluster-name`, or any other). Read
//! independently of teardown's own sweep, so that a "left behind nothing" check does not trust
//! the code it checks.

use crate::controllers::AwsAccess;
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

    let mut arns: Vec<(String, String)> = Vec::new();
    let lbs = elb
        .describe_load_balancers()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| format!("DescribeLoadBalancers: {e:?}"))?;
    for lb in lbs {
        if let Some(arn) = lb.load_balancer_arn() {
            arns.push(("load balancer".into(), arn.to_string()));
        }
    }
    let tgs = elb
        .describe_target_groups()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| format!("DescribeTargetGroups: {e:?}"))?;
    for tg in tgs {
        if let Some(arn) = tg.target_group_arn() {
            arns.push(("target group".into(), arn.to_string()));
        }
    }
    for chunk in arns.chunks(20) {
        let out = elb
            .describe_tags()
            .set_resource_arns(Some(chunk.iter().map(|(_, a)| a.clone()).collect()))
            .send()
            .await
            .map_err(|e| format!("DescribeTags: {e:?}"))?;
        for desc in out.tag_descriptions() {
            let tags: BTreeMap<String, String> = desc
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            let arn = desc.resource_arn().unwrap_or_default();
            if names_cluster(&tags, cluster) {
                let kind = chunk
                    .iter()
                    .find(|(_, a)| a == arn)
                    .map_or("resource", |(k, _)| k.as_str());
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
