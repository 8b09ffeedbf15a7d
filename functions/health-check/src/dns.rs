//! App DNS: the hosts the inventory's Ingresses ask external-dns for
//! (`external-dns.alpha.kubernetes.io/hostname`, comma-separated) must have an address record
//! (A, AAAA or CNAME) in the environment's Route53 zone.

use std::collections::BTreeSet;

use labflow_core::error::classify_sdk_error;
use labflow_core::StepError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const HOSTNAME_ANNOTATION: &str = "external-dns.alpha.kubernetes.io/hostname";

/// What the DNS check found.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsReport {
    pub hosted_zone_id: String,
    /// Hosts the Ingresses request.
    pub hosts: Vec<String>,
    /// Hosts without an address record in the zone.
    pub missing: Vec<String>,
}

/// Hosts requested by `ingresses`, lower-case, without trailing dot, sorted and unique.
pub fn requested_hosts<'a>(ingresses: impl IntoIterator<Item = &'a Value>) -> Vec<String> {
    let mut hosts = BTreeSet::new();
    for ingress in ingresses {
        let annotation = ingress
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(HOSTNAME_ANNOTATION))
            .and_then(Value::as_str)
            .unwrap_or("");
        for host in annotation.split(',') {
            let host = normalise(host);
            if !host.is_empty() {
                hosts.insert(host);
            }
        }
    }
    hosts.into_iter().collect()
}

fn normalise(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The hosts without an address record among `records` (normalised record names).
pub fn missing(hosts: &[String], records: &BTreeSet<String>) -> Vec<String> {
    hosts
        .iter()
        .filter(|h| !records.contains(*h))
        .cloned()
        .collect()
}

/// Names (normalised) of the zone's A, AAAA and CNAME records; every page of the listing.
pub async fn address_records(
    route53: &aws_sdk_route53::Client,
    zone_id: &str,
) -> Result<BTreeSet<String>, StepError> {
    use aws_sdk_route53::types::RrType;
    let mut names = BTreeSet::new();
    let mut next: Option<(String, Option<RrType>, Option<String>)> = None;
    // Route53 pages hold up to 300 records; a lab zone has a handful of pages at most.
    for _ in 0..1000 {
        let mut request = route53.list_resource_record_sets().hosted_zone_id(zone_id);
        if let Some((name, rr_type, identifier)) = next.take() {
            request = request
                .start_record_name(name)
                .set_start_record_type(rr_type)
                .set_start_record_identifier(identifier);
        }
        let page = request.send().await.map_err(|e| {
            classify_sdk_error(&format!("listing records of hosted zone {zone_id}"), e)
        })?;
        for set in page.resource_record_sets() {
            if matches!(set.r#type(), RrType::A | RrType::Aaaa | RrType::Cname) {
                // Route53 escapes `*` as \052 in names it returns.
                names.insert(normalise(&set.name().replace("\\052", "*")));
            }
        }
        if !page.is_truncated() {
            return Ok(names);
        }
        match page.next_record_name() {
            Some(name) => {
                next = Some((
                    name.to_string(),
                    page.next_record_type().cloned(),
                    page.next_record_identifier().map(str::to_string),
                ))
            }
            None => return Ok(names),
        }
    }
    Err(StepError::Transient(format!(
        "hosted zone {zone_id}: record listing did not end"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hosts_come_from_the_annotation_normalised() {
        let ingresses = [
            json!({"metadata": {"annotations": {HOSTNAME_ANNOTATION: "Podinfo.lab.example.com."}}}),
            json!({"metadata": {"annotations": {HOSTNAME_ANNOTATION: "bookinfo.lab.example.com, podinfo.lab.example.com"}}}),
            json!({"metadata": {"name": "no-dns"}}),
        ];
        assert_eq!(
            requested_hosts(&ingresses),
            ["bookinfo.lab.example.com", "podinfo.lab.example.com"]
        );
    }

    #[test]
    fn missing_hosts_are_those_without_records() {
        let hosts = vec!["a.example.com".to_string(), "b.example.com".to_string()];
        let records: BTreeSet<String> = ["a.example.com".to_string()].into();
        assert_eq!(missing(&hosts, &records), ["b.example.com"]);
        assert!(missing(&hosts[..1], &records).is_empty());
    }
}
