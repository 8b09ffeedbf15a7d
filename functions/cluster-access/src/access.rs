//! Access entries and their cluster-scoped access policies.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_eks::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eks::types::{AccessScope, AccessScopeType};
use chrono::{DateTime, Utc};
use labflow_core::error::classify_sdk_error;
use labflow_core::StepError;

use crate::principal::Grant;
use crate::report::Change;

fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.as_service_error().and_then(|e| e.code())
}

/// Make sure `grant.principal_arn` has an access entry and every policy of the grant at cluster
/// scope. Returns when the principal's access was last granted (entry creation or policy
/// association), as far as EKS reports it — the start of the propagation wait.
pub async fn ensure(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    grant: &Grant,
    tags: &HashMap<String, String>,
    now: DateTime<Utc>,
    changes: &mut Vec<Change>,
) -> Result<Option<DateTime<Utc>>, StepError> {
    let principal = grant.principal_arn.as_str();
    let resource = format!("accessEntry/{principal}");
    let mut granted_at: Option<DateTime<Utc>>;

    let described = eks
        .describe_access_entry()
        .cluster_name(cluster)
        .principal_arn(principal)
        .send()
        .await;
    match described {
        Ok(out) => {
            granted_at = out
                .access_entry()
                .and_then(|e| e.created_at())
                .and_then(to_chrono);
            let mut current: Vec<String> = out
                .access_entry()
                .map(|e| e.kubernetes_groups().to_vec())
                .unwrap_or_default();
            current.sort();
            let mut wanted = grant.kubernetes_groups.clone();
            wanted.sort();
            if current != wanted {
                // UpdateAccessEntry replaces the whole list (EKS API reference).
                eks.update_access_entry()
                    .cluster_name(cluster)
                    .principal_arn(principal)
                    .set_kubernetes_groups(Some(grant.kubernetes_groups.clone()))
                    .send()
                    .await
                    .map_err(|e| {
                        classify_sdk_error(
                            &format!("updating the Kubernetes groups of {principal}"),
                            e,
                        )
                    })?;
                changes.push(Change::new(
                    &resource,
                    "update-groups",
                    format!("kubernetesGroups {current:?} -> {wanted:?}"),
                ));
                granted_at = Some(now);
            }
        }
        Err(err) if code(&err) == Some("ResourceNotFoundException") => {
            let created = eks
                .create_access_entry()
                .cluster_name(cluster)
                .principal_arn(principal)
                .set_kubernetes_groups(
                    (!grant.kubernetes_groups.is_empty()).then(|| grant.kubernetes_groups.clone()),
                )
                .set_tags(Some(tags.clone()))
                .send()
                .await;
            match created {
                Ok(out) => {
                    changes.push(Change::new(&resource, "create", "type STANDARD"));
                    granted_at = Some(
                        out.access_entry()
                            .and_then(|e| e.created_at())
                            .and_then(to_chrono)
                            .unwrap_or(now),
                    );
                }
                // Made by a call whose answer was lost.
                Err(err) if code(&err) == Some("ResourceInUseException") => granted_at = Some(now),
                Err(err) => {
                    return Err(classify_sdk_error(
                        &format!("creating the access entry for {principal}"),
                        err,
                    ))
                }
            }
        }
        Err(err) => {
            return Err(classify_sdk_error(
                &format!("describing the access entry for {principal}"),
                err,
            ))
        }
    }

    let (associated, associated_at) = cluster_scoped_policies(eks, cluster, principal).await?;
    granted_at = granted_at.max(associated_at);
    // A policy taken from the principal in the config is taken from it in the cluster too.
    for policy in associated.iter().filter(|p| !grant.policies.contains(*p)) {
        match eks
            .disassociate_access_policy()
            .cluster_name(cluster)
            .principal_arn(principal)
            .policy_arn(policy)
            .send()
            .await
        {
            Ok(_) => changes.push(Change::new(
                &resource,
                "disassociate-policy",
                format!("{policy}: not in the config"),
            )),
            // Gone since the listing (a call whose answer was lost).
            Err(err) if code(&err) == Some("ResourceNotFoundException") => {}
            Err(err) => {
                return Err(classify_sdk_error(
                    &format!("disassociating {policy} from {principal}"),
                    err,
                ))
            }
        }
    }
    for policy in &grant.policies {
        if associated.contains(policy) {
            continue;
        }
        eks.associate_access_policy()
            .cluster_name(cluster)
            .principal_arn(principal)
            .policy_arn(policy)
            .access_scope(
                AccessScope::builder()
                    .r#type(AccessScopeType::Cluster)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                classify_sdk_error(&format!("associating {policy} with {principal}"), e)
            })?;
        changes.push(Change::new(
            &resource,
            "associate-policy",
            format!("{policy} at cluster scope"),
        ));
        granted_at = Some(now);
    }
    Ok(granted_at)
}

/// Delete the access entries labflow made for `environment` (its ownership tags) whose principal
/// is none of `keep`: a principal taken from the config loses its access (issue 26 item 7).
/// Entries without our tags — EKS's own for node roles, the cluster creator's, someone's made by
/// hand — are not ours to delete.
pub async fn revoke_unlisted(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    environment: &str,
    keep: &[Grant],
    changes: &mut Vec<Change>,
) -> Result<(), StepError> {
    let listed: Vec<String> = eks
        .list_access_entries()
        .cluster_name(cluster)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| classify_sdk_error("listing the cluster's access entries", e))?;
    for principal in listed
        .iter()
        .filter(|p| !keep.iter().any(|g| &g.principal_arn == *p))
    {
        let described = eks
            .describe_access_entry()
            .cluster_name(cluster)
            .principal_arn(principal)
            .send()
            .await;
        let tags: std::collections::BTreeMap<String, String> = match described {
            Ok(out) => out
                .access_entry()
                .and_then(|e| e.tags())
                .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            Err(err) if code(&err) == Some("ResourceNotFoundException") => continue,
            Err(err) => {
                return Err(classify_sdk_error(
                    &format!("describing the access entry for {principal}"),
                    err,
                ))
            }
        };
        if !labflow_core::ownership::is_owned(environment, &tags) {
            continue;
        }
        match eks
            .delete_access_entry()
            .cluster_name(cluster)
            .principal_arn(principal)
            .send()
            .await
        {
            Ok(_) => changes.push(Change::new(
                format!("accessEntry/{principal}"),
                "delete",
                "not in accessPrincipals",
            )),
            Err(err) if code(&err) == Some("ResourceNotFoundException") => {}
            Err(err) => {
                return Err(classify_sdk_error(
                    &format!("deleting the access entry for {principal}"),
                    err,
                ))
            }
        }
    }
    Ok(())
}

/// The policies associated with a principal at cluster scope, and the latest association time.
async fn cluster_scoped_policies(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
) -> Result<(BTreeSet<String>, Option<DateTime<Utc>>), StepError> {
    let mut policies = BTreeSet::new();
    let mut latest: Option<DateTime<Utc>> = None;
    let associated = eks
        .list_associated_access_policies()
        .cluster_name(cluster)
        .principal_arn(principal)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| {
            classify_sdk_error(&format!("listing the access policies of {principal}"), e)
        })?;
    for p in &associated {
        let cluster_scope = p
            .access_scope()
            .and_then(|s| s.r#type())
            .is_some_and(|t| *t == AccessScopeType::Cluster);
        if let (true, Some(arn)) = (cluster_scope, p.policy_arn()) {
            policies.insert(arn.to_string());
            latest = latest.max(p.associated_at().and_then(to_chrono));
        }
    }
    Ok((policies, latest))
}

fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}
