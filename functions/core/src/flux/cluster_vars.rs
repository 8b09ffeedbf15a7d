//! The ConfigMap `flux-system/labflow-cluster-vars`: the cluster-specific values the GitOps tree
//! substitutes (`postBuild.substituteFrom`). The key list mirrors `cli/src/gitops/vars.rs` and
//! infra/gitops/README.md; flux-bootstrap's tests check it against the tree's `${VAR}`s.

use std::collections::BTreeMap;

use crate::config::EnvironmentConfig;
use crate::error::StepError;

/// Name of the ConfigMap (namespace [`super::NAMESPACE`]).
pub const CONFIGMAP: &str = "labflow-cluster-vars";

/// Every key the ConfigMap holds, no more, no less.
pub const KEYS: [&str; 10] = [
    "CLUSTER_NAME",
    "AWS_REGION",
    "DOMAIN",
    "HOSTED_ZONE_ID",
    "OWNER_ID",
    "CERT_ARN",
    "AVAILABILITY_ZONES",
    "ENVIRONMENT",
    "VPC_ID",
    "CLUSTER_AUTOSCALER_TAG",
];

/// The values for `environment`, running in `region` in VPC `vpc_id` (the cluster's: the load
/// balancer controller is given it rather than asking instance metadata, which pods cannot reach
/// once nodes allow one IMDSv2 hop; issue 26 item 4).
///
/// `CERT_ARN` is required: the tree's ALB Ingresses terminate TLS with it, and an empty value would
/// only fail later, inside the AWS load balancer controller.
pub fn values(
    environment: &str,
    config: &EnvironmentConfig,
    region: &str,
    vpc_id: &str,
) -> Result<BTreeMap<String, String>, StepError> {
    let cert_arn = config
        .dns
        .certificate_arn
        .clone()
        .filter(|arn| !arn.is_empty())
        .ok_or_else(|| {
            StepError::InvalidInput(format!(
                "environment {environment:?}: dns.certificateArn is required (the GitOps tree's Ingresses use CERT_ARN)"
            ))
        })?;
    let version = &config.cluster.version;
    let autoscaler = version
        .strip_prefix("1.")
        .and_then(|minor| minor.parse().ok())
        .and_then(crate::versions::cluster_autoscaler_tag)
        .ok_or_else(|| {
            StepError::InvalidInput(format!(
                "environment {environment:?}: labflow knows no cluster-autoscaler release for Kubernetes {version} (known: {})",
                crate::versions::CLUSTER_AUTOSCALER_RELEASES
                    .iter()
                    .map(|(minor, _)| format!("1.{minor}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    // A YAML list is substituted from this value, so it must be a JSON array string.
    let zones = serde_json::to_string(&config.cluster.availability_zones)
        .map_err(|e| StepError::InvalidInput(format!("availability zones: {e}")))?;
    let values = [
        ("CLUSTER_NAME", config.cluster.name.clone()),
        ("AWS_REGION", region.to_string()),
        ("DOMAIN", config.dns.domain.clone()),
        ("HOSTED_ZONE_ID", config.dns.hosted_zone_id.clone()),
        ("OWNER_ID", config.dns.owner_id.clone()),
        ("CERT_ARN", cert_arn),
        ("AVAILABILITY_ZONES", zones),
        ("ENVIRONMENT", environment.to_string()),
        ("VPC_ID", vpc_id.to_string()),
        ("CLUSTER_AUTOSCALER_TAG", autoscaler.to_string()),
    ];
    Ok(values
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> EnvironmentConfig {
        let json = labflow_testkit::config::example_config_json();
        crate::config::parse("lab", &json).expect("example config is valid")
    }

    #[test]
    fn values_cover_exactly_the_keys() {
        let values = values("lab", &example(), "eu-west-1", "vpc-0123456789abcdef0")
            .expect("complete config");
        let keys: Vec<&str> = values.keys().map(String::as_str).collect();
        let mut expected = KEYS.to_vec();
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(values["CLUSTER_NAME"], "labflow-lab");
        assert_eq!(values["AWS_REGION"], "eu-west-1");
        assert_eq!(values["ENVIRONMENT"], "lab");
        assert_eq!(
            values["AVAILABILITY_ZONES"],
            r#"["eu-west-1a","eu-west-1b","eu-west-1c"]"#
        );
        assert_eq!(values["HOSTED_ZONE_ID"], "Z0123456789ABCDEFGHIJ");
        assert_eq!(values["VPC_ID"], "vpc-0123456789abcdef0");
        // The example cluster runs 1.35: the autoscaler release of that minor (issue 24 item 7).
        assert_eq!(config_minor(&example()), "35");
        assert_eq!(values["CLUSTER_AUTOSCALER_TAG"], "v1.35.2");
    }

    fn config_minor(config: &EnvironmentConfig) -> &str {
        config.cluster.version.trim_start_matches("1.")
    }

    #[test]
    fn the_autoscaler_follows_the_cluster_minor_and_refuses_an_unknown_one() {
        let mut config = example();
        config.cluster.version = "1.33".into();
        let known = values("lab", &config, "eu-west-1", "vpc-0").expect("known minor");
        assert_eq!(known["CLUSTER_AUTOSCALER_TAG"], "v1.33.6");
        config.cluster.version = "1.99".into();
        let err = values("lab", &config, "eu-west-1", "vpc-0").expect_err("unknown minor");
        assert_eq!(err.name(), "labflow.InvalidInput");
        assert!(
            err.message().contains("cluster-autoscaler"),
            "{}",
            err.message()
        );
    }

    /// Every Kubernetes minor EKS offers has an autoscaler release in the table.
    #[test]
    fn every_eks_version_has_an_autoscaler_release() {
        for row in crate::versions::EKS_VERSIONS {
            let tag = crate::versions::cluster_autoscaler_tag(row.minor)
                .unwrap_or_else(|| panic!("no cluster-autoscaler release for 1.{}", row.minor));
            assert!(tag.starts_with(&format!("v1.{}.", row.minor)), "{tag}");
        }
    }

    /// Issue 24 item 10: the domain and zone id reach Ingress hosts and Route53 calls as given.
    #[test]
    fn domain_and_zone_id_are_normalised() {
        let json = labflow_testkit::config::example_config_json()
            .replace("\"lab.example.com\"", "\"Lab.Example.com.\"")
            .replace(
                "\"Z0123456789ABCDEFGHIJ\"",
                "\"/hostedzone/Z0123456789ABCDEFGHIJ\"",
            );
        assert!(
            json.contains("Lab.Example.com."),
            "the example names the domain"
        );
        assert!(json.contains("/hostedzone/"), "the example names the zone");
        let config = crate::config::parse("lab", &json).expect("still a valid config");
        let values =
            values("lab", &config, "eu-west-1", "vpc-0123456789abcdef0").expect("complete config");
        assert_eq!(values["DOMAIN"], "lab.example.com");
        assert_eq!(values["HOSTED_ZONE_ID"], "Z0123456789ABCDEFGHIJ");
    }

    #[test]
    fn missing_certificate_is_invalid_input() {
        let mut config = example();
        config.dns.certificate_arn = None;
        let err = values("lab", &config, "eu-west-1", "vpc-0123456789abcdef0")
            .expect_err("CERT_ARN required");
        assert_eq!(err.name(), "labflow.InvalidInput");
        assert!(err.message().contains("certificateArn"));
    }
}
