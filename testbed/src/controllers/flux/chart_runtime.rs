//! What some charts' workloads do on a real EKS node that a rendered chart does not show: the
//! release installs, but its pods never become ready, so helm-controller (which waits for the
//! release's resources, Flux's default) reports the install as failed.

use serde_json::Value;

/// A non-empty string value at the top of `values`.
fn string_value<'v>(values: Option<&'v Value>, key: &str) -> Option<&'v str> {
    values
        .and_then(|v| v.get(key))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Why a release of `chart` with `values` never becomes ready, if it would not.
pub(super) fn never_ready(chart: &str, values: Option<&Value>) -> Option<String> {
    let value = |key: &str| string_value(values, key);
    match chart {
        // The controller takes its VPC from `--aws-vpc-id` (chart value vpcId), else from
        // instance metadata; on nodes with an IMDSv2 hop limit of 1 (EKS AL2023 managed node
        // groups, labflow's launch template) pods cannot reach metadata and it exits at start:
        // kubernetes-sigs/aws-load-balancer-controller pkg/aws/cloud.go (NewCloud, inferVPCID),
        // issue #3695.
        "aws-load-balancer-controller" if value("vpcId").is_none() => Some(
            "context deadline exceeded: pod aws-load-balancer-controller is in CrashLoopBackOff: \
             failed to introspect vpcID from EC2Metadata or Node name, specify --aws-vpc-id \
             instead if EC2Metadata is unavailable"
                .to_string(),
        ),
        _ => None,
    }
}

/// The container arguments a chart renders from its values, where a simulated controller reads
/// its settings from them as the real one does from its command line.
pub(super) fn container_args(chart: &str, values: Option<&Value>) -> Vec<String> {
    let value = |key: &str| string_value(values, key);
    match chart {
        // eks-charts aws-load-balancer-controller templates/deployment.yaml: `--cluster-name`
        // always, `--aws-vpc-id` and `--aws-region` when vpcId / region are set.
        // `--default-tags` from the defaultTags map (helper convertMapToCsv: k=v joined by ",").
        "aws-load-balancer-controller" => {
            let default_tags = values
                .and_then(|v| v.get("defaultTags"))
                .and_then(Value::as_object)
                .map(|tags| {
                    tags.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .filter(|csv| !csv.is_empty());
            [
                ("--cluster-name", value("clusterName").map(str::to_string)),
                ("--aws-vpc-id", value("vpcId").map(str::to_string)),
                ("--aws-region", value("region").map(str::to_string)),
                ("--default-tags", default_tags),
            ]
            .into_iter()
            .filter_map(|(flag, v)| v.map(|v| format!("{flag}={v}")))
            .collect()
        }
        _ => Vec::new(),
    }
}
