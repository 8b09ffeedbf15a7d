//! EKS clusters for tests: the CreateCluster request ensure-cluster would make, once.

use aws_sdk_eks::operation::create_cluster::builders::CreateClusterFluentBuilder;
use aws_sdk_eks::types::{AuthenticationMode, CreateAccessConfigRequest, VpcConfigRequest};

/// The subnets of the example environment (examples/environments/lab.json).
pub const SUBNETS: [&str; 2] = ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"];

/// CreateCluster for `name` with `role_arn`, the example's subnets and authentication mode API
/// (labflow's default); the creator gets EKS's default cluster-admin entry. Add
/// [`owned_by`] for labflow's ownership tags.
pub fn create_cluster(
    eks: &aws_sdk_eks::Client,
    name: &str,
    role_arn: &str,
) -> CreateClusterFluentBuilder {
    eks.create_cluster()
        .name(name)
        .version("1.33")
        .role_arn(role_arn)
        .resources_vpc_config(
            VpcConfigRequest::builder()
                .set_subnet_ids(Some(SUBNETS.iter().map(|s| s.to_string()).collect()))
                .build(),
        )
        .access_config(
            CreateAccessConfigRequest::builder()
                .authentication_mode(AuthenticationMode::Api)
                .build(),
        )
}

/// The tags that make a cluster labflow's for `environment`.
pub fn owned_by(
    request: CreateClusterFluentBuilder,
    environment: &str,
) -> CreateClusterFluentBuilder {
    request
        .tags("labflow:environment", environment)
        .tags("labflow:managed-by", "labflow")
}
