//! Logs: Loki stores what a shipper sends it, and deletes it only when retention really runs.

use serde_json::Value;

use super::{Findings, Release, Rule, Tree};

pub const LOKI_LOG_SHIPPER: Rule = Rule {
    id: "loki-log-shipper",
    summary: "a tree with Loki also ships logs to it (Loki collects nothing itself), with a maintained shipper: Promtail is end-of-life, Grafana Alloy replaces it",
    source: "https://grafana.com/docs/loki/latest/send-data/ ; https://grafana.com/docs/loki/latest/send-data/promtail/ (Promtail deprecated, EOL March 2, 2026)",
};

pub const LOKI_RETENTION: Rule = Rule {
    id: "loki-retention",
    summary: "a Loki retention_period takes effect only with compactor.retention_enabled, and Loki refuses to start with retention enabled but no compactor.delete_request_store",
    source: "https://grafana.com/docs/loki/latest/operations/storage/retention/ ; grafana/loki v3.6.7 pkg/compactor/config.go (\"compactor.delete-request-store should be configured when retention is enabled\")",
};

/// Charts that ship pod logs to Loki.
const SHIPPERS: &[&str] = &[
    "alloy",
    "k8s-monitoring",
    "fluent-bit",
    "vector",
    "opentelemetry-collector",
];
const END_OF_LIFE_SHIPPERS: &[&str] = &["promtail", "grafana-agent"];

pub fn check(tree: &Tree<'_>, out: &mut Findings<'_>) {
    let shipped = tree
        .releases()
        .any(|r| SHIPPERS.contains(&r.chart) || END_OF_LIFE_SHIPPERS.contains(&r.chart));
    for release in tree.releases() {
        if END_OF_LIFE_SHIPPERS.contains(&release.chart) {
            out.report(
                release.object,
                &LOKI_LOG_SHIPPER,
                format!(
                    "chart {} is end-of-life (no fixes, no images for new nodes); ship logs with Grafana Alloy (chart alloy)",
                    release.chart
                ),
            );
        }
    }
    for loki in tree.releases_of("loki") {
        if !shipped {
            out.report(
                loki.object,
                &LOKI_LOG_SHIPPER,
                format!(
                    "nothing ships logs to this Loki (no release of {}): it stays empty",
                    SHIPPERS.join(", ")
                ),
            );
        }
        check_retention(&loki, out);
    }
}

fn check_retention(loki: &Release<'_>, out: &mut Findings<'_>) {
    let period = loki
        .value("/loki/limits_config/retention_period")
        .and_then(Value::as_str);
    let enabled = loki.flag("/loki/compactor/retention_enabled", false);
    let store = loki
        .value("/loki/compactor/delete_request_store")
        .and_then(Value::as_str);
    if let (Some(period), false) = (period, enabled) {
        out.report(
            loki.object,
            &LOKI_RETENTION,
            format!(
                "limits_config.retention_period {period} has no effect without loki.compactor.retention_enabled: true: logs are never deleted and the volume fills"
            ),
        );
    }
    if enabled && store.is_none() {
        out.report(
            loki.object,
            &LOKI_RETENTION,
            "loki.compactor.retention_enabled without loki.compactor.delete_request_store: Loki refuses to start",
        );
    }
}
