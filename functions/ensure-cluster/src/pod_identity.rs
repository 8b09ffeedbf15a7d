//! Pod Identity associations for the controllers' service accounts.

use std::collections::BTreeMap;

use labflow_core::config::{EnvironmentConfig, PodIdentityConfig};
use labflow_core::error::classify_sdk_error;
use labflow_core::StepError;

use crate::aws_error::error_code;
use crate::cluster;
use crate::plan;
use crate::report::{Change, PodIdentityReport};

/// An existing association, as DescribePodIdentityAssociation reports it.
#[derive(Debug, Clone)]
pub struct ObservedAssociation {
    pub id: String,
    pub arn: Option<String>,
    pub role_arn: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// The association of each configured (namespace, service account), if any.
pub async fn observe<'a>(
    eks: &aws_sdk_eks::Client,
    cluster_name: &str,
    config: &'a EnvironmentConfig,
) -> Result<Vec<(&'a PodIdentityConfig, Option<ObservedAssociation>)>, StepError> {
    if config.pod_identities.is_empty() {
        return Ok(Vec::new());
    }
    let associations = eks
        .list_pod_identity_associations()
        .cluster_name(cluster_name)
        .max_results(100)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| {
            classify_sdk_error(
                &format!("listing Pod Identity associations of {cluster_name}"),
                e,
            )
        })?;
    let ids: BTreeMap<(String, String), String> = associations
        .iter()
        .filter_map(|a| {
            let key = (a.namespace()?.to_string(), a.service_account()?.to_string());
            Some((key, a.association_id()?.to_string()))
        })
        .collect();
    let mut found = Vec::new();
    for want in &config.pod_identities {
        let key = (want.namespace.clone(), want.service_account.clone());
        let observed = match ids.get(&key) {
            None => None,
            Some(id) => describe(eks, cluster_name, id).await?,
        };
        found.push((want, observed));
    }
    Ok(found)
}

async fn describe(
    eks: &aws_sdk_eks::Client,
    cluster_name: &str,
    id: &str,
) -> Result<Option<ObservedAssociation>, StepError> {
    let response = eks
        .describe_pod_identity_association()
        .cluster_name(cluster_name)
        .association_id(id)
        .send()
        .await;
    match response {
        Ok(out) => Ok(out.association.map(|a| ObservedAssociation {
            id: id.to_string(),
            arn: a.association_arn().map(str::to_string),
            role_arn: a.role_arn().map(str::to_string),
            tags: a
                .tags()
                .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        })),
        // Deleted between the list and the describe: treat as absent.
        Err(err) if error_code(&err) == Some("ResourceNotFoundException") => Ok(None),
        Err(err) => Err(classify_sdk_error(
            &format!("describing Pod Identity association {id}"),
            err,
        )),
    }
}

/// Refuse to touch associations labflow did not make.
pub fn check(
    environment: &str,
    observed: &[(&PodIdentityConfig, Option<ObservedAssociation>)],
) -> Result<(), StepError> {
    for (want, have) in observed {
        let Some(have) = have else { continue };
        if !labflow_core::ownership::is_owned(environment, &have.tags) {
            return Err(StepError::NotOwned(format!(
                "Pod Identity association {} for {}/{} exists without labflow's ownership tags; labflow does not adopt or modify it",
                have.id, want.namespace, want.service_account
            )));
        }
    }
    Ok(())
}

/// Create missing associations and point drifted ones at the configured role. Returns the
/// reports and whether nothing had to change.
pub async fn reconcile(
    eks: &aws_sdk_eks::Client,
    environment: &str,
    config: &EnvironmentConfig,
    observed: Vec<(&PodIdentityConfig, Option<ObservedAssociation>)>,
    changes: &mut Vec<Change>,
) -> Result<(Vec<PodIdentityReport>, bool), StepError> {
    let tags = labflow_core::ownership::tags(environment, config);
    let cluster_name = &config.cluster.name;
    let mut reports = Vec::new();
    let mut ready = true;
    for (want, have) in observed {
        let resource = format!("podIdentity/{}/{}", want.namespace, want.service_account);
        let association_id = match have {
            None => {
                let response = eks
                    .create_pod_identity_association()
                    .cluster_name(cluster_name)
                    .namespace(&want.namespace)
                    .service_account(&want.service_account)
                    .role_arn(&want.role_arn)
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await;
                ready = false;
                match response {
                    Ok(out) => {
                        changes.push(Change::new(&resource, "create", &want.role_arn));
                        out.association.and_then(|a| a.association_id)
                    }
                    // Made by a call whose answer was lost: the next call observes it.
                    Err(err) if error_code(&err) == Some("ResourceInUseException") => None,
                    Err(err) => {
                        return Err(classify_sdk_error(
                            &format!("creating Pod Identity association {resource}"),
                            err,
                        ))
                    }
                }
            }
            Some(have) => {
                if let Some(arn) = &have.arn {
                    cluster::tag(
                        eks,
                        &resource,
                        arn,
                        plan::missing_tags(&tags, &have.tags),
                        changes,
                    )
                    .await?;
                }
                if have.role_arn.as_deref() != Some(want.role_arn.as_str()) {
                    eks.update_pod_identity_association()
                        .cluster_name(cluster_name)
                        .association_id(&have.id)
                        .role_arn(&want.role_arn)
                        .send()
                        .await
                        .map_err(|e| {
                            classify_sdk_error(
                                &format!("updating Pod Identity association {resource}"),
                                e,
                            )
                        })?;
                    changes.push(Change::new(
                        &resource,
                        "update",
                        format!(
                            "role {} → {}",
                            have.role_arn.as_deref().unwrap_or("(none)"),
                            want.role_arn
                        ),
                    ));
                    ready = false;
                }
                Some(have.id)
            }
        };
        reports.push(PodIdentityReport {
            namespace: want.namespace.clone(),
            service_account: want.service_account.clone(),
            role_arn: want.role_arn.clone(),
            association_id,
        });
    }
    Ok((reports, ready))
}
