//! Route53: delete the records external-dns made for this environment — its TXT registry entries
//! naming our owner id and the records they own — and never any other record.

use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecordSet, RrType};
use labflow_core::config::DnsConfig;
use labflow_core::error::classify_sdk_error;
use labflow_core::teardown_plan::{is_within_domain, owned_records, RecordId};
use labflow_core::StepError;

use crate::report::{Phase, Progress, Report};

/// Route53 accepts at most 1,000 changes per batch; more are removed on the next call.
const MAX_CHANGES: usize = 1000;

/// How many times one call lists the zone and sends its batch when Route53 refuses the batch
/// because the zone changed in between.
const ATTEMPTS: usize = 3;

pub(crate) async fn run(
    route53: &aws_sdk_route53::Client,
    dns: &DnsConfig,
    txt_prefix: &str,
    report: &mut Report,
) -> Result<Progress, StepError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(record_sets) = list_zone(route53, &dns.hosted_zone_id).await? else {
            // No zone, no records of ours.
            return Ok(Progress::Complete);
        };
        let ids: Vec<(RecordId, Vec<String>)> = record_sets
            .iter()
            .map(|set| {
                let values = set
                    .resource_records()
                    .iter()
                    .map(|r| r.value().to_string())
                    .collect();
                (id_of(set), values)
            })
            .collect();
        let mut owned = owned_records(&ids, &dns.owner_id, txt_prefix);
        // Any Ingress host in the lab makes its external-dns write a name under our owner id,
        // wherever in the shared zone: only names in the environment's domain are ours to
        // remove (issue 26 item 10).
        owned.retain(|id| {
            let ours = is_within_domain(&id.name, &dns.domain);
            if !ours {
                tracing::warn!(
                    record = %id.name,
                    domain = %dns.domain,
                    "owned record outside the environment's domain: left alone"
                );
            }
            ours
        });
        if owned.is_empty() {
            return Ok(Progress::Complete);
        }
        // Delete the owned records before their registry entries, in one atomic batch: if it
        // fails, nothing changed and a new listing sees the zone as it is.
        let mut doomed: Vec<&ResourceRecordSet> = record_sets
            .iter()
            .filter(|set| owned.contains(&id_of(set)))
            .collect();
        doomed.sort_by_key(|set| set.r#type() == &RrType::Txt);
        doomed.truncate(MAX_CHANGES);
        match delete(route53, &dns.hosted_zone_id, &doomed).await {
            Ok(()) => {}
            // A DELETE must name a record set that exists with exactly its current values, or
            // Route53 refuses the whole batch with InvalidChangeBatch ("Tried to delete resource
            // record set [...] but it was not found" / "... but the values provided do not
            // match the current values"; "Route 53 validates the changes in the request and
            // then either makes all or none of the changes",
            // https://docs.aws.amazon.com/Route53/latest/APIReference/API_ChangeResourceRecordSets.html).
            // external-dns (still finishing its own cleanup) or a person may change a record
            // between our listing and our batch: list again and retry, a bounded number of
            // times, then leave it to the state machine's retry.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_invalid_change_batch()) =>
            {
                let refused = classify_sdk_error(
                    &format!(
                        "deleting records in hosted zone {} (it changed while we deleted)",
                        dns.hosted_zone_id
                    ),
                    err,
                );
                if attempt < ATTEMPTS {
                    tracing::warn!(
                        zone = %dns.hosted_zone_id,
                        attempt,
                        error = %refused.message(),
                        "Route53 refused the batch; listing the zone again"
                    );
                    continue;
                }
                return Err(StepError::Transient(refused.message().to_string()));
            }
            Err(err) => {
                return Err(classify_sdk_error(
                    &format!("deleting records in hosted zone {}", dns.hosted_zone_id),
                    err,
                ))
            }
        }
        for set in &doomed {
            let id = id_of(set);
            report.removed(format!("DNS {} {}", id.record_type, id.name));
        }
        if owned.len() > doomed.len() {
            report.waiting(format!(
                "{} more DNS records owned by {}",
                owned.len() - doomed.len(),
                dns.owner_id
            ));
            return Ok(Progress::Pending(Phase::Dns));
        }
        return Ok(Progress::Complete);
    }
}

type DeleteError = aws_sdk_route53::error::SdkError<
    aws_sdk_route53::operation::change_resource_record_sets::ChangeResourceRecordSetsError,
    aws_sdk_route53::config::http::HttpResponse,
>;

/// One ChangeResourceRecordSets deleting `doomed` exactly as listed.
async fn delete(
    route53: &aws_sdk_route53::Client,
    zone_id: &str,
    doomed: &[&ResourceRecordSet],
) -> Result<(), DeleteError> {
    let mut changes = Vec::with_capacity(doomed.len());
    for set in doomed {
        let change = Change::builder()
            .action(ChangeAction::Delete)
            .resource_record_set((*set).clone())
            .build()
            .map_err(DeleteError::construction_failure)?;
        changes.push(change);
    }
    let batch = ChangeBatch::builder()
        .comment("labflow teardown: records owned by this environment")
        .set_changes(Some(changes))
        .build()
        .map_err(DeleteError::construction_failure)?;
    route53
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(batch)
        .send()
        .await
        .map(|_| ())
}

fn id_of(set: &ResourceRecordSet) -> RecordId {
    RecordId {
        name: set.name().to_string(),
        record_type: set.r#type().as_str().to_string(),
    }
}

/// Every record set of the zone; `None` when the zone does not exist.
async fn list_zone(
    route53: &aws_sdk_route53::Client,
    zone_id: &str,
) -> Result<Option<Vec<ResourceRecordSet>>, StepError> {
    let mut sets = Vec::new();
    let mut start: Option<(String, RrType, Option<String>)> = None;
    loop {
        let mut request = route53.list_resource_record_sets().hosted_zone_id(zone_id);
        if let Some((name, record_type, identifier)) = start.take() {
            request = request
                .start_record_name(name)
                .start_record_type(record_type)
                .set_start_record_identifier(identifier);
        }
        let page = match request.send().await {
            Ok(page) => page,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_hosted_zone()) =>
            {
                return Ok(None)
            }
            Err(err) => {
                return Err(classify_sdk_error(
                    &format!("listing records of hosted zone {zone_id}"),
                    err,
                ))
            }
        };
        sets.extend(page.resource_record_sets().iter().cloned());
        match (
            page.is_truncated(),
            page.next_record_name(),
            page.next_record_type(),
        ) {
            (true, Some(name), Some(record_type)) => {
                start = Some((
                    name.to_string(),
                    record_type.clone(),
                    page.next_record_identifier().map(str::to_string),
                ))
            }
            _ => return Ok(Some(sets)),
        }
    }
}
