//! The lab network in the AWS emulator: one VPC with two public subnets tagged for the load
//! balancer controller's subnet discovery (`kubernetes.io/role/elb=1`), as
//! infra/terraform/network.tf makes it. The EKS simulator reports this VPC for every cluster,
//! so the simulated controllers make their load balancers and security groups in it.

use crate::controllers::AwsAccess;
use ec2_query::Ec2;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
}

/// Creates the network in the emulator behind `aws`.
pub async fn create(aws: &AwsAccess) -> Result<Network, ec2_query::Ec2Error> {
    let ec2 = Ec2::new(&aws.sdk_config("labflow-testbed"))?;
    let vpc_id = ec2.create_vpc("10.0.0.0/16").await?;
    let tags = BTreeMap::from([("kubernetes.io/role/elb".to_string(), "1".to_string())]);
    let mut subnet_ids = Vec::new();
    for (cidr, zone) in [("10.0.0.0/20", "a"), ("10.0.16.0/20", "b")] {
        let zone = format!("{}{zone}", aws.region);
        subnet_ids.push(ec2.create_subnet(&vpc_id, cidr, &zone, &tags).await?);
    }
    Ok(Network { vpc_id, subnet_ids })
}
