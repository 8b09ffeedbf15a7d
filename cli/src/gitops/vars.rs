//! The cluster variables: the one list of keys flux-bootstrap writes into the ConfigMap
//! `flux-system/labflow-cluster-vars`, which the GitOps tree substitutes through
//! `postBuild.substituteFrom`. The lint reads this list; infra/gitops/README.md documents it.

/// The ConfigMap (namespace `flux-system`) that holds the cluster variables.
pub const CLUSTER_VARS_CONFIGMAP: &str = "labflow-cluster-vars";

/// One cluster variable: its key, a realistic sample value (used by the lint to fill the tree
/// before schema validation) and where its value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterVar {
    pub name: &'static str,
    pub sample: &'static str,
    pub source: &'static str,
}

/// Every key of `labflow-cluster-vars`, no more, no less.
pub const CLUSTER_VARS: &[ClusterVar] = &[
    ClusterVar {
        name: "CLUSTER_NAME",
        sample: "labflow-lab",
        source: "cluster.name",
    },
    ClusterVar {
        name: "AWS_REGION",
        sample: "eu-west-1",
        source: "the region the environment runs in",
    },
    ClusterVar {
        name: "DOMAIN",
        sample: "lab.example.com",
        source: "dns.domain (apps are <app>.<DOMAIN>)",
    },
    ClusterVar {
        name: "HOSTED_ZONE_ID",
        sample: "Z0123456789ABCDEFGHIJ",
        source: "dns.hostedZoneId",
    },
    ClusterVar {
        name: "OWNER_ID",
        sample: "labflow-lab",
        source: "dns.ownerId (external-dns txtOwnerId)",
    },
    ClusterVar {
        name: "CERT_ARN",
        sample:
            "arn:aws:acm:eu-west-1:123456789012:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
        source: "dns.certificateArn (ACM certificate for *.<DOMAIN>)",
    },
    ClusterVar {
        name: "AVAILABILITY_ZONES",
        sample: r#"["eu-west-1a","eu-west-1b","eu-west-1c"]"#,
        source: "cluster.availabilityZones, as a JSON array string",
    },
    ClusterVar {
        name: "ENVIRONMENT",
        sample: "lab",
        source: "the environment name",
    },
    ClusterVar {
        name: "VPC_ID",
        sample: "vpc-0123456789abcdef0",
        source: "the cluster's VPC (DescribeCluster resourcesVpcConfig.vpcId)",
    },
    ClusterVar {
        name: "CLUSTER_AUTOSCALER_TAG",
        sample: "v1.35.2",
        source: "the cluster-autoscaler release for cluster.version's minor (labflow-core versions::CLUSTER_AUTOSCALER_RELEASES)",
    },
];

/// The sample value of a cluster variable, if `name` is one.
pub fn sample(name: &str) -> Option<&'static str> {
    CLUSTER_VARS
        .iter()
        .find(|v| v.name == name)
        .map(|v| v.sample)
}

/// The keys, in documented order.
pub fn names() -> impl Iterator<Item = &'static str> {
    CLUSTER_VARS.iter().map(|v| v.name)
}
