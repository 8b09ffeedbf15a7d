//! App DNS: the hosts the inventory's Ingresses ask external-dns for
//! (`external-dns.alpha.kubernetes.io/hostname`, comma-separated) must have an address record
//! (A, AAAA or CNAME) in the environment's Route53 zone, and, once the Ingress has a load
//! balancer, point at it (an alias or CNAME to its hostname): a record left pointing at a load
//! balancer that is gone resolves to nothing (issue 19 item 8).

use std::collections::{BTreeMap, BTreeSet};

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
    /// Hosts whose records point elsewhere than their Ingress's load balancer
    /// (`host -> target (load balancer: lb)`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub misrouted: Vec<String>,
}

/// A requested host and the load balancer hostname of its Ingress, once it has one.
pub type Requested = BTreeMap<String, Option<String>>;

/// Hosts requested by `ingresses` (lower-case, without trailing dot) with their Ingress's load
/// balancer hostname (`status.loadBalancer.ingress[0].hostname`).
pub fn requested_hosts<'a>(ingresses: impl IntoIterator<Item = &'a Value>) -> Requested {
    let mut hosts = Requested::new();
    for ingress in ingresses {
        let annotation = ingress
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(HOSTNAME_ANNOTATION))
            .and_then(Value::as_str)
            .unwrap_or("");
        let load_balancer = ingress
            .pointer("/status/loadBalancer/ingress/0/hostname")
            .and_then(Value::as_str)
            .map(normalise)
            .filter(|h| !h.is_empty());
        for host in annotation.split(',') {
            let host = normalise(host);
            if !host.is_empty() {
                let entry = hosts.entry(host).or_insert(None);
                if entry.is_none() {
                    *entry = load_balancer.clone();
                }
            }
        }
    }
    hosts
}

fn normalise(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// An alias target as Route53 may return it for a load balancer: `dualstack.` in front when the
/// alias was made for both address families (Route53 developer guide, "Value/route traffic to
/// for alias records": ELB).
fn alias_target(name: &str) -> String {
    let name = normalise(name);
    name.strip_prefix("dualstack.")
        .map(str::to_string)
        .unwrap_or(name)
}

/// Record name → what its address records point at (alias targets, CNAME values, addresses).
pub type Records = BTreeMap<String, BTreeSet<String>>;

/// The hosts without an address record among `records`.
pub fn missing(hosts: &Requested, records: &Records) -> Vec<String> {
    hosts
        .keys()
        .filter(|h| !records.contains_key(*h))
        .cloned()
        .collect()
}

/// The hosts whose records exist but none points at their Ingress's load balancer.
pub fn misrouted(hosts: &Requested, records: &Records) -> Vec<String> {
    hosts
        .iter()
        .filter_map(|(host, load_balancer)| {
            let targets = records.get(host)?;
            let load_balancer = load_balancer.as_ref()?;
            (!targets.contains(load_balancer)).then(|| {
                format!(
                    "{host} -> {} (load balancer: {load_balancer})",
                    targets.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            })
        })
        .collect()
}

/// The zone's A, AAAA and CNAME records by normalised name, with their targets; every page of
/// the listing.
pub async fn address_records(
    route53: &aws_sdk_route53::Client,
    zone_id: &str,
) -> Result<Records, StepError> {
    use aws_sdk_route53::types::RrType;
    let mut names = Records::new();
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
                let targets = names
                    .entry(normalise(&set.name().replace("\\052", "*")))
                    .or_default();
                if let Some(alias) = set.alias_target() {
                    targets.insert(alias_target(alias.dns_name()));
                }
                targets.extend(set.resource_records().iter().map(|r| normalise(r.value())));
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
    fn hosts_come_from_the_annotation_normalised_with_their_load_balancer() {
        let ingresses = [
            json!({"metadata": {"annotations": {HOSTNAME_ANNOTATION: "Podinfo.lab.example.com."}},
                "status": {"loadBalancer": {"ingress": [{"hostname": "k8s-a.elb.amazonaws.com"}]}}}),
            json!({"metadata": {"annotations": {HOSTNAME_ANNOTATION: "bookinfo.lab.example.com, podinfo.lab.example.com"}}}),
            json!({"metadata": {"name": "no-dns"}}),
        ];
        let hosts = requested_hosts(&ingresses);
        assert_eq!(
            hosts.keys().collect::<Vec<_>>(),
            ["bookinfo.lab.example.com", "podinfo.lab.example.com"]
        );
        assert_eq!(
            hosts["podinfo.lab.example.com"].as_deref(),
            Some("k8s-a.elb.amazonaws.com")
        );
        assert_eq!(hosts["bookinfo.lab.example.com"], None);
    }

    #[test]
    fn records_must_exist_and_point_at_the_ingress_load_balancer() {
        let hosts: Requested = [
            (
                "a.example.com".to_string(),
                Some("lb-new.elb.amazonaws.com".to_string()),
            ),
            ("b.example.com".to_string(), None),
            (
                "c.example.com".to_string(),
                Some("lb-c.elb.amazonaws.com".to_string()),
            ),
        ]
        .into();
        let records: Records = [
            (
                "a.example.com".to_string(),
                ["lb-old.elb.amazonaws.com".to_string()].into(),
            ),
            (
                "c.example.com".to_string(),
                [alias_target("dualstack.LB-C.elb.amazonaws.com.")].into(),
            ),
        ]
        .into();
        assert_eq!(missing(&hosts, &records), ["b.example.com"]);
        assert_eq!(
            misrouted(&hosts, &records),
            ["a.example.com -> lb-old.elb.amazonaws.com (load balancer: lb-new.elb.amazonaws.com)"]
        );
    }
}
