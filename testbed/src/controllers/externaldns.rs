//! external-dns (AWS provider, `policy: sync`, TXT registry): for LoadBalancer Services and
//! Ingresses with a load balancer hostname, every host of `external-dns.alpha.kubernetes.io/hostname`
//! (comma-separated; for Ingresses also `spec.rules[].host`) inside the hosted zone gets what
//! external-dns v0.21.0 (chart 1.21.1, pinned in infra/gitops) writes for a load balancer
//! hostname: an A ALIAS and an AAAA ALIAS to it (provider/aws/aws.go adjustCNAMERecord,
//! adjustEndpointAndNewAaaaIfNeeded: a hostname target is a CNAME made an alias, and every alias
//! gets its AAAA twin since PR #5111), each with an ownership TXT record
//! `<txtPrefix><type>-<host>` — `cname-` for the A ALIAS, which the TXT registry files under
//! CNAME (registry/txt/registry.go: "AWS Alias records are encoded as type cname"; `a-` only
//! from v0.22.0, PR #6523), `aaaa-` for the AAAA — valued
//! `"heritage=external-dns,external-dns/owner=<owner>,external-dns/resource=<kind>/<ns>/<name>"`.
//! Ownership is read from `cname-`, `a-` and old-format (`<prefix><host>`, A only) entries.
//! Records it owns whose source is gone are deleted with their entries. Acts only while a Deployment labelled
//! `app.kubernetes.io/name=external-dns` exists. Writes go through aws-sdk-route53 to the AWS
//! emulator.

use super::loadbalancers::{is_alb_ingress, is_lb_service};
use super::objects::{self, Client};
use super::{is_kind, Reconciler};
use crate::kubesim::{ChangeEvent, Store};
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const HOSTNAME_ANNOTATION: &str = "external-dns.alpha.kubernetes.io/hostname";
pub const CONTROLLER_LABEL: &str = "external-dns";

/// Where external-dns writes.
#[derive(Debug, Clone)]
pub struct ExternalDnsOptions {
    /// The AWS endpoint (the emulator or the front door), e.g. `http://127.0.0.1:5000`.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The hosted zone id (`Z...` or `/hostedzone/Z...`).
    pub hosted_zone_id: String,
    /// `--txt-owner-id`.
    pub owner_id: String,
    /// `--txt-prefix` (infra/gitops's external-dns values: `labflow-`).
    pub txt_prefix: String,
}

impl ExternalDnsOptions {
    pub fn new(endpoint: &str, hosted_zone_id: &str, owner_id: &str) -> Self {
        ExternalDnsOptions {
            endpoint: endpoint.to_string(),
            region: "eu-west-1".to_string(),
            access_key_id: "testing".to_string(),
            secret_access_key: "testing".to_string(),
            hosted_zone_id: hosted_zone_id.to_string(),
            owner_id: owner_id.to_string(),
            txt_prefix: TXT_PREFIX.to_string(),
        }
    }
}

/// The `txtPrefix` infra/gitops gives external-dns (and teardown's default).
pub const TXT_PREFIX: &str = "labflow-";

/// The registry entry's name for a record of `record_type` (lower case) at `host` (an FQDN with
/// its trailing dot): registry/mapper/mapper.go ToTXTName, `<prefix><type>-<first label>.<rest>`.
fn txt_name(prefix: &str, record_type: &str, host: &str) -> String {
    format!("{}{record_type}-{host}", prefix.to_ascii_lowercase())
}

/// Which record a registry entry named `txt` owns: (host, A or AAAA), for the entries this
/// external-dns reads (`cname-` and `a-` own the A ALIAS, `aaaa-` the AAAA, an old-format entry
/// the A).
fn owned_by(prefix: &str, txt: &str) -> Option<(String, RrType)> {
    let rest = txt.strip_prefix(&prefix.to_ascii_lowercase())?;
    for (tag, record_type) in [
        ("cname-", RrType::A),
        ("aaaa-", RrType::Aaaa),
        ("a-", RrType::A),
    ] {
        if let Some(host) = rest.strip_prefix(tag) {
            return Some((host.to_string(), record_type));
        }
    }
    (!rest.is_empty()).then(|| (rest.to_string(), RrType::A))
}

/// A record external-dns wants: host → (load balancer hostname, owning resource).
type Desired = BTreeMap<String, (String, String)>;

pub(crate) struct ExternalDnsController {
    client: Client,
    options: ExternalDnsOptions,
    route53: aws_sdk_route53::Client,
    zone_name: Option<String>,
    last: Option<(Desired, Instant)>,
}

/// The canonical hosted zone of Elastic Load Balancing in a region (ALB, NLB).
fn elb_zone(region: &str, network: bool) -> &'static str {
    match (region, network) {
        ("us-east-1", false) => "Z35SXDOTRQ7X7K",
        ("us-east-1", true) => "Z26RNL4JYFTOTI",
        ("us-west-2", false) => "Z1H1FL5HABSF5",
        ("us-west-2", true) => "Z18D5FSROUN65G",
        ("eu-central-1", false) => "Z215JYRZR1TBD5",
        ("eu-central-1", true) => "Z3F0SRJ5LGBH90",
        (_, true) => "Z2IFOLAFXWLO4F",
        (_, false) => "Z32O12XQLNTSW2",
    }
}

fn fqdn(host: &str) -> String {
    format!("{}.", host.trim_end_matches('.').to_ascii_lowercase())
}

fn owner_value(owner: &str, resource: &str) -> String {
    format!("\"heritage=external-dns,external-dns/owner={owner},external-dns/resource={resource}\"")
}

impl ExternalDnsController {
    pub fn new(store: &Store, options: ExternalDnsOptions) -> Self {
        let config = aws_sdk_route53::Config::builder()
            .http_client(super::aws::https_client())
            .behavior_version(aws_sdk_route53::config::BehaviorVersion::latest())
            .endpoint_url(&options.endpoint)
            .region(aws_sdk_route53::config::Region::new(options.region.clone()))
            .credentials_provider(aws_credential_types::Credentials::new(
                &options.access_key_id,
                &options.secret_access_key,
                None,
                None,
                "labflow-testbed-external-dns",
            ))
            .build();
        ExternalDnsController {
            client: Client::new(store, "external-dns"),
            options,
            route53: aws_sdk_route53::Client::from_conf(config),
            zone_name: None,
            last: None,
        }
    }

    fn zone_id(&self) -> &str {
        self.options
            .hosted_zone_id
            .trim_start_matches("/hostedzone/")
    }

    fn desired(&self, zone: &str) -> Desired {
        let mut out = Desired::new();
        let mut add = |obj: &Value, kind: &str, extra: Vec<String>| {
            let Some(target) = obj
                .pointer("/status/loadBalancer/ingress/0/hostname")
                .and_then(Value::as_str)
            else {
                return;
            };
            let resource = format!(
                "{kind}/{}/{}",
                objects::namespace(obj).unwrap_or("default"),
                objects::name(obj)
            );
            let mut hosts: Vec<String> = objects::annotation(obj, HOSTNAME_ANNOTATION)
                .unwrap_or("")
                .split(',')
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect();
            hosts.extend(extra);
            for h in hosts {
                let name = fqdn(&h);
                // Only hosts inside the zone (external-dns's domain filter is the zone).
                if name == zone || name.ends_with(&format!(".{zone}")) {
                    out.entry(name)
                        .or_insert_with(|| (target.to_string(), resource.clone()));
                }
            }
        };
        for svc in self.client.list("v1", "Service", None) {
            if is_lb_service(&svc) {
                add(&svc, "service", Vec::new());
            }
        }
        for ing in self.client.list("networking.k8s.io/v1", "Ingress", None) {
            if is_alb_ingress(&ing) || ing.pointer("/status/loadBalancer/ingress").is_some() {
                let rules: Vec<String> = ing
                    .pointer("/spec/rules")
                    .and_then(Value::as_array)
                    .map(|r| {
                        r.iter()
                            .filter_map(|r| {
                                r.get("host").and_then(Value::as_str).map(str::to_string)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                add(&ing, "ingress", rules);
            }
        }
        out
    }

    async fn sync(&mut self) -> Result<(), String> {
        let zone = match &self.zone_name {
            Some(z) => z.clone(),
            None => {
                let out = self
                    .route53
                    .get_hosted_zone()
                    .id(self.zone_id())
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "GetHostedZone: {}",
                            aws_sdk_route53::error::DisplayErrorContext(e)
                        )
                    })?;
                let name = out
                    .hosted_zone()
                    .map(|z| fqdn(z.name()))
                    .ok_or("GetHostedZone: no zone")?;
                self.zone_name = Some(name.clone());
                name
            }
        };
        let desired = self.desired(&zone);
        if let Some((last, at)) = &self.last {
            if *last == desired && at.elapsed() < Duration::from_secs(2) {
                return Ok(());
            }
        }
        // The zone's records, and which hosts this owner holds (by the TXT registry).
        let mut records = Vec::new();
        let mut next: Option<(String, Option<RrType>)> = None;
        loop {
            let mut req = self
                .route53
                .list_resource_record_sets()
                .hosted_zone_id(self.zone_id());
            if let Some((name, rtype)) = next.take() {
                req = req.start_record_name(name).set_start_record_type(rtype);
            }
            let out = req.send().await.map_err(|e| {
                format!(
                    "ListResourceRecordSets: {}",
                    aws_sdk_route53::error::DisplayErrorContext(e)
                )
            })?;
            records.extend(out.resource_record_sets().iter().cloned());
            if !out.is_truncated() {
                break;
            }
            match out.next_record_name() {
                Some(n) => next = Some((n.to_string(), out.next_record_type().cloned())),
                None => break,
            }
        }
        let owner_marker = format!("external-dns/owner={},", self.options.owner_id);
        let prefix = self.options.txt_prefix.clone();
        let mut owned: BTreeMap<(String, RrType), ResourceRecordSet> = BTreeMap::new();
        for r in &records {
            if *r.r#type() == RrType::Txt
                && r.resource_records()
                    .iter()
                    .any(|v| v.value().contains(&owner_marker))
            {
                if let Some(key) = owned_by(&prefix, r.name()) {
                    owned.insert(key, r.clone());
                }
            }
        }
        let existing = |name: &str, t: RrType| {
            records
                .iter()
                .find(|r| fqdn(r.name()) == name && *r.r#type() == t)
                .cloned()
        };
        let upsert = |set: ResourceRecordSet| {
            Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(set)
                .build()
                .map_err(|e| e.to_string())
        };
        let mut changes = Vec::new();
        for (host, (target, resource)) in &desired {
            let a = existing(host, RrType::A);
            let held = owned.contains_key(&(host.clone(), RrType::A));
            if a.is_some() && !held {
                tracing::info!(%host, "external-dns: record exists and is not owned by us; skipping");
                continue;
            }
            let value = owner_value(&self.options.owner_id, resource);
            let network = target.contains(".elb.") && !target.ends_with(".elb.amazonaws.com");
            for (record_type, tag) in [(RrType::A, "cname"), (RrType::Aaaa, "aaaa")] {
                let entry = txt_name(&prefix, tag, host);
                let up_to_date = existing(host, record_type.clone())
                    .as_ref()
                    .and_then(|r| r.alias_target())
                    .is_some_and(|t| fqdn(t.dns_name()) == fqdn(target))
                    && existing(&entry, RrType::Txt)
                        .is_some_and(|t| t.resource_records().iter().any(|v| v.value() == value));
                if up_to_date {
                    continue;
                }
                let alias = AliasTarget::builder()
                    .hosted_zone_id(elb_zone(&self.options.region, network))
                    .dns_name(target)
                    .evaluate_target_health(true)
                    .build()
                    .map_err(|e| e.to_string())?;
                let record = ResourceRecordSet::builder()
                    .name(host)
                    .r#type(record_type)
                    .alias_target(alias)
                    .build()
                    .map_err(|e| e.to_string())?;
                let txt = ResourceRecordSet::builder()
                    .name(entry)
                    .r#type(RrType::Txt)
                    .ttl(300)
                    .resource_records(
                        ResourceRecord::builder()
                            .value(value.clone())
                            .build()
                            .map_err(|e| e.to_string())?,
                    )
                    .build()
                    .map_err(|e| e.to_string())?;
                changes.push(upsert(record)?);
                changes.push(upsert(txt)?);
            }
        }
        for ((host, record_type), txt) in &owned {
            if desired.contains_key(host) {
                continue;
            }
            let delete = |set: ResourceRecordSet| {
                Change::builder()
                    .action(ChangeAction::Delete)
                    .resource_record_set(set)
                    .build()
                    .map_err(|e| e.to_string())
            };
            if let Some(record) = existing(host, record_type.clone()) {
                changes.push(delete(record)?);
            }
            changes.push(delete(txt.clone())?);
        }
        if !changes.is_empty() {
            tracing::info!(changes = changes.len(), zone = %zone, "external-dns: applying changes");
            self.route53
                .change_resource_record_sets()
                .hosted_zone_id(self.zone_id())
                .change_batch(
                    ChangeBatch::builder()
                        .set_changes(Some(changes))
                        .build()
                        .map_err(|e| e.to_string())?,
                )
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "ChangeResourceRecordSets: {}",
                        aws_sdk_route53::error::DisplayErrorContext(e)
                    )
                })?;
        }
        self.last = Some((desired, Instant::now()));
        Ok(())
    }
}

impl Reconciler for ExternalDnsController {
    fn interested(&self, e: &ChangeEvent) -> bool {
        is_kind(e, "", &["services"])
            || is_kind(e, "networking.k8s.io", &["ingresses"])
            || is_kind(e, "apps", &["deployments"])
    }

    async fn pass(&mut self) {
        if !self.client.deployment_with_name_label(CONTROLLER_LABEL) {
            self.last = None;
            return;
        }
        if let Err(e) = self.sync().await {
            tracing::warn!(error = %e, "external-dns: sync failed");
        }
    }
}
