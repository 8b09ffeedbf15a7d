//! What EKS is: a managed control plane whose components are not scrapeable, and clusters whose
//! Kubernetes minor the add-ons must follow.

use serde_json::Value;

use super::{Findings, Rule, Tree};

pub const AUTOSCALER_VERSION: Rule = Rule {
    id: "autoscaler-version",
    summary: "cluster-autoscaler's image.tag comes from a cluster variable (the release for the cluster's Kubernetes minor), not the chart's default or a hand-written tag",
    source: "kubernetes/autoscaler cluster-autoscaler/README.md, Releases (\"use the latest Cluster Autoscaler release that corresponds to the minor version of Kubernetes\"); chart 9.59.0 values.yaml image.tag v1.35.0",
};

pub const CONTROL_PLANE_SCRAPE: Rule = Rule {
    id: "eks-control-plane-scrape",
    summary: "kube-prometheus-stack on EKS does not scrape the controller manager, scheduler, etcd or kube-proxy (not reachable on EKS): their Down alerts would fire forever",
    source: "prometheus-operator/prometheus-operator#2461; aws/containers-roadmap#1298 and #657; kube-prometheus-stack 87.14.0 README (KubeProxy: metrics bind 127.0.0.1:10249)",
};

/// The kube-prometheus-stack components EKS does not expose (each `<key>.enabled`, default true).
const HIDDEN_COMPONENTS: &[&str] = &[
    "kubeControllerManager",
    "kubeScheduler",
    "kubeEtcd",
    "kubeProxy",
];

pub fn check(tree: &Tree<'_>, out: &mut Findings<'_>) {
    for stack in tree.releases_of("kube-prometheus-stack") {
        let scraped: Vec<&str> = HIDDEN_COMPONENTS
            .iter()
            .copied()
            .filter(|component| stack.flag(&format!("/{component}/enabled"), true))
            .collect();
        if !scraped.is_empty() {
            out.report(
                stack.object,
                &CONTROL_PLANE_SCRAPE,
                format!(
                    "scrapes {} (enabled by default), which EKS does not expose: set {} to false",
                    scraped.join(", "),
                    scraped
                        .iter()
                        .map(|c| format!("{c}.enabled"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
    }
    for autoscaler in tree.releases_of("cluster-autoscaler") {
        // As written: the tag must be a cluster variable, which only substitution fills in.
        let written = autoscaler
            .object
            .doc
            .value
            .pointer("/spec/values/image/tag")
            .and_then(Value::as_str);
        let message = match written {
            None => format!(
                "image.tag is not set: chart {} runs its own default autoscaler release whatever the cluster's Kubernetes minor; set image.tag: ${{CLUSTER_AUTOSCALER_TAG}}",
                autoscaler.version
            ),
            Some(tag) if !tag.contains("${") => format!(
                "image.tag {tag} is written by hand: it matches one Kubernetes minor and silently stays behind when the cluster is upgraded; set image.tag: ${{CLUSTER_AUTOSCALER_TAG}}"
            ),
            Some(_) => continue,
        };
        out.report(autoscaler.object, &AUTOSCALER_VERSION, message);
    }
}
