//! The lab's consoles (Grafana, Kiali) are reachable on the lab's domain: each must ask for
//! credentials nobody can look up.

use super::{Findings, Rule, Tree};

pub const GRAFANA_DEFAULT_PASSWORD: Rule = Rule {
    id: "grafana-default-password",
    summary: "kube-prometheus-stack's Grafana does not keep the admin password the chart publishes (prom-operator): an empty grafana.adminPassword makes the grafana chart generate one, or name grafana.admin.existingSecret",
    source: "prometheus-community/helm-charts kube-prometheus-stack values.yaml (grafana.adminPassword: prom-operator); grafana/helm-charts grafana templates/_config.tpl (an empty adminPassword gets a generated one)",
};

const PUBLISHED_PASSWORD: &str = "prom-operator";

pub fn check(tree: &Tree<'_>, out: &mut Findings<'_>) {
    for stack in tree.releases_of("kube-prometheus-stack") {
        if !stack.flag("/grafana/enabled", true) {
            continue;
        }
        let own_secret = stack
            .value("/grafana/admin/existingSecret")
            .and_then(|v| v.as_str())
            .is_some_and(|s| !s.is_empty());
        let password = stack
            .value("/grafana/adminPassword")
            .and_then(|v| v.as_str());
        if own_secret || password.is_some_and(|p| p != PUBLISHED_PASSWORD) {
            continue;
        }
        out.report(
            stack.object,
            &GRAFANA_DEFAULT_PASSWORD,
            format!(
                "Grafana's admin password is the chart's published default {PUBLISHED_PASSWORD:?}: set grafana.adminPassword: \"\" (a generated one, in Secret {}/{}-grafana) or grafana.admin.existingSecret",
                stack.target_namespace(),
                stack.release_name()
            ),
        );
    }
}
