//! EKS: Pod Identity associations, node groups (wait until gone), add-ons (wait), access entries,
//! then the cluster (wait until gone). A cluster that does not exist is success; one that never
//! finished creating is deleted as soon as EKS accepts it.

use std::collections::HashMap;

use aws_sdk_eks::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eks::types::{AddonStatus, ClusterStatus, NodegroupStatus};
use labflow_core::error::classify_sdk_error;
use labflow_core::StepError;

use crate::report::{Phase, Progress, Report};

/// What DescribeCluster says about the environment's cluster.
#[derive(Debug, Clone)]
pub(crate) struct ClusterView {
    pub status: ClusterStatus,
    pub endpoint: Option<String>,
    pub ca_base64: Option<String>,
    pub tags: HashMap<String, String>,
    /// `accessConfig.authenticationMode` (API, API_AND_CONFIG_MAP, CONFIG_MAP).
    pub authentication_mode: Option<String>,
}

impl ClusterView {
    /// Whether its Kubernetes API can hold workloads we must remove.
    pub fn serves_kubernetes(&self) -> bool {
        matches!(self.status, ClusterStatus::Active | ClusterStatus::Updating)
            && self.endpoint.as_deref().is_some_and(|e| !e.is_empty())
            && self.ca_base64.is_some()
    }
}

fn code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.as_service_error().and_then(|e| e.code())
}

fn not_found<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    code(err) == Some("ResourceNotFoundException")
}

/// Every item of a paginated list (the SDK's paginator follows nextToken); `None` when the
/// cluster is gone.
fn all_or_gone<T, E, R>(
    listed: Result<Vec<T>, SdkError<E, R>>,
    what: &str,
) -> Result<Option<Vec<T>>, StepError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + labflow_core::error::HasStatus,
{
    match listed {
        Ok(items) => Ok(Some(items)),
        Err(err) if not_found(&err) => Ok(None),
        Err(err) => Err(classify_sdk_error(what, err)),
    }
}

fn in_use<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(code(err), Some("ResourceInUseException"))
}

fn message<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> String {
    err.as_service_error()
        .and_then(|e| e.message())
        .unwrap_or("")
        .to_string()
}

pub(crate) async fn describe(
    eks: &aws_sdk_eks::Client,
    name: &str,
) -> Result<Option<ClusterView>, StepError> {
    match eks.describe_cluster().name(name).send().await {
        Ok(output) => Ok(output.cluster.map(|c| ClusterView {
            status: c.status.clone().unwrap_or(ClusterStatus::Creating),
            endpoint: c.endpoint.clone(),
            ca_base64: c
                .certificate_authority
                .as_ref()
                .and_then(|ca| ca.data.clone()),
            tags: c.tags.clone().unwrap_or_default(),
            authentication_mode: c
                .access_config
                .as_ref()
                .and_then(|a| a.authentication_mode.as_ref())
                .map(|m| m.as_str().to_string()),
        })),
        Err(err) if not_found(&err) => Ok(None),
        Err(err) => Err(classify_sdk_error(
            &format!("describing EKS cluster {name}"),
            err,
        )),
    }
}

/// Delete the cluster and what is in it, as far as one call goes.
pub(crate) async fn run(
    aws: &labflow_core::aws::AwsClients,
    name: &str,
    view: &ClusterView,
    report: &mut Report,
) -> Result<Progress, StepError> {
    let eks = &aws.eks;
    if view.status == ClusterStatus::Deleting {
        report.waiting(format!("EKS cluster {name} DELETING"));
        return Ok(Progress::Pending(Phase::Cluster));
    }
    // A cluster still CREATING has nothing inside yet; EKS decides when it can be deleted.
    if view.status != ClusterStatus::Creating {
        if let Some(progress) = pod_identities(eks, name, report).await? {
            return Ok(progress);
        }
        if let Some(progress) = nodegroups(eks, name, report).await? {
            return Ok(progress);
        }
        if let Some(progress) = addons(eks, name, report).await? {
            return Ok(progress);
        }
        access_entries(aws, name, report).await?;
    }
    match eks.delete_cluster().name(name).send().await {
        Ok(_) => {
            report.removed(format!("EKS cluster {name}"));
            report.waiting(format!("EKS cluster {name} DELETING"));
            Ok(Progress::Pending(Phase::Cluster))
        }
        Err(err) if not_found(&err) => Ok(Progress::Complete),
        Err(err) if in_use(&err) => {
            report.waiting(format!(
                "EKS cluster {name} ({}) cannot be deleted yet: {}",
                view.status.as_str(),
                message(&err)
            ));
            Ok(Progress::Pending(Phase::Cluster))
        }
        Err(err) => Err(classify_sdk_error(
            &format!("deleting EKS cluster {name}"),
            err,
        )),
    }
}

async fn pod_identities(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    report: &mut Report,
) -> Result<Option<Progress>, StepError> {
    let listed = eks
        .list_pod_identity_associations()
        .cluster_name(cluster)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await;
    let what = format!("listing Pod Identity associations of {cluster}");
    let Some(associations) = all_or_gone(listed, &what)? else {
        return Ok(None);
    };
    let ids: Vec<(String, String)> = associations
        .iter()
        .map(|a| {
            (
                a.association_id().unwrap_or_default().to_string(),
                format!(
                    "{}/{}",
                    a.namespace().unwrap_or_default(),
                    a.service_account().unwrap_or_default()
                ),
            )
        })
        .collect();
    for (id, account) in &ids {
        match eks
            .delete_pod_identity_association()
            .cluster_name(cluster)
            .association_id(id)
            .send()
            .await
        {
            Ok(_) => report.removed(format!("Pod Identity association {id} ({account})")),
            Err(err) if not_found(&err) => {}
            Err(err) => {
                return Err(classify_sdk_error(
                    &format!("deleting Pod Identity association {id}"),
                    err,
                ))
            }
        }
    }
    // Deletion is synchronous: nothing to wait for.
    Ok(None)
}

async fn nodegroups(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    report: &mut Report,
) -> Result<Option<Progress>, StepError> {
    let listed = eks
        .list_nodegroups()
        .cluster_name(cluster)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await;
    let Some(names) = all_or_gone(listed, &format!("listing node groups of {cluster}"))? else {
        return Ok(None);
    };
    if names.is_empty() {
        return Ok(None);
    }
    let mut failed = Vec::new();
    for name in &names {
        let status = match eks
            .describe_nodegroup()
            .cluster_name(cluster)
            .nodegroup_name(name)
            .send()
            .await
        {
            Ok(out) => out.nodegroup.map(|n| {
                let issues: Vec<String> = n
                    .health()
                    .map(|h| {
                        h.issues()
                            .iter()
                            .map(|i| i.message().unwrap_or_default().to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                (n.status.clone(), issues)
            }),
            Err(err) if not_found(&err) => continue,
            Err(err) => {
                return Err(classify_sdk_error(
                    &format!("describing node group {name}"),
                    err,
                ))
            }
        };
        let (status, issues) = status.unwrap_or((None, Vec::new()));
        match status {
            Some(NodegroupStatus::Deleting) => {
                report.waiting(format!("node group {name} DELETING"));
            }
            Some(NodegroupStatus::DeleteFailed) => {
                failed.push(format!(
                    "node group {name} DELETE_FAILED: {}",
                    issues.join("; ")
                ));
            }
            _ => match eks
                .delete_nodegroup()
                .cluster_name(cluster)
                .nodegroup_name(name)
                .send()
                .await
            {
                Ok(_) => {
                    report.removed(format!("node group {name}"));
                    report.waiting(format!("node group {name} DELETING"));
                }
                Err(err) if not_found(&err) => {}
                Err(err) if in_use(&err) => {
                    report.waiting(format!("node group {name} busy: {}", message(&err)))
                }
                Err(err) => {
                    return Err(classify_sdk_error(
                        &format!("deleting node group {name}"),
                        err,
                    ))
                }
            },
        }
    }
    if !failed.is_empty() {
        for f in &failed {
            report.leftover(f.clone());
        }
        return Err(StepError::ComponentFailed(format!(
            "teardown cannot finish: {}",
            failed.join("; ")
        )));
    }
    Ok(Some(Progress::Pending(Phase::Nodegroups)))
}

async fn addons(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    report: &mut Report,
) -> Result<Option<Progress>, StepError> {
    let listed = eks
        .list_addons()
        .cluster_name(cluster)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await;
    let Some(names) = all_or_gone(listed, &format!("listing add-ons of {cluster}"))? else {
        return Ok(None);
    };
    if names.is_empty() {
        return Ok(None);
    }
    for name in &names {
        let status = match eks
            .describe_addon()
            .cluster_name(cluster)
            .addon_name(name)
            .send()
            .await
        {
            Ok(out) => out.addon.and_then(|a| a.status),
            Err(err) if not_found(&err) => continue,
            Err(err) => {
                return Err(classify_sdk_error(
                    &format!("describing add-on {name}"),
                    err,
                ))
            }
        };
        if status == Some(AddonStatus::Deleting) {
            report.waiting(format!("add-on {name} DELETING"));
            continue;
        }
        match eks
            .delete_addon()
            .cluster_name(cluster)
            .addon_name(name)
            .send()
            .await
        {
            Ok(_) => {
                report.removed(format!("add-on {name}"));
                report.waiting(format!("add-on {name} DELETING"));
            }
            Err(err) if not_found(&err) => {}
            Err(err) if in_use(&err) => {
                report.waiting(format!("add-on {name} busy: {}", message(&err)))
            }
            Err(err) => return Err(classify_sdk_error(&format!("deleting add-on {name}"), err)),
        }
    }
    Ok(Some(Progress::Pending(Phase::Addons)))
}

/// Delete every access entry except the caller's own: it goes with the cluster, and keeping it
/// lets a re-run after a crash still look inside the cluster.
async fn access_entries(
    aws: &labflow_core::aws::AwsClients,
    cluster: &str,
    report: &mut Report,
) -> Result<(), StepError> {
    let eks = &aws.eks;
    let listed = eks
        .list_access_entries()
        .cluster_name(cluster)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await;
    let what = format!("listing access entries of {cluster}");
    let Some(principals) = all_or_gone(listed, &what)? else {
        return Ok(());
    };
    if principals.is_empty() {
        return Ok(());
    }
    let caller = aws
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| classify_sdk_error("finding the caller's identity", e))?
        .arn
        .unwrap_or_default();
    for principal in principals.iter().filter(|p| !is_same_principal(p, &caller)) {
        match eks
            .delete_access_entry()
            .cluster_name(cluster)
            .principal_arn(principal)
            .send()
            .await
        {
            Ok(_) => report.removed(format!("access entry {principal}")),
            Err(err) if not_found(&err) => {}
            Err(err) => {
                return Err(classify_sdk_error(
                    &format!("deleting access entry {principal}"),
                    err,
                ))
            }
        }
    }
    Ok(())
}

/// Whether an access entry's principal (an IAM role or user ARN) is the caller, whose identity
/// STS reports as an assumed-role session ARN when it runs as a role.
pub(crate) fn is_same_principal(principal_arn: &str, caller_arn: &str) -> bool {
    if principal_arn == caller_arn {
        return true;
    }
    // arn:aws:sts::<account>:assumed-role/<role name>/<session>
    let Some((prefix, rest)) = caller_arn.split_once(":assumed-role/") else {
        return false;
    };
    let Some((role, _session)) = rest.split_once('/') else {
        return false;
    };
    let account = prefix.rsplit(':').next().unwrap_or_default();
    let partition = prefix.split(':').nth(1).unwrap_or("aws");
    principal_arn.starts_with(&format!("arn:{partition}:iam::{account}:role/"))
        && principal_arn.ends_with(&format!("/{role}"))
}

#[cfg(test)]
mod tests {
    use super::is_same_principal;

    #[test]
    fn assumed_role_sessions_match_their_role() {
        let caller = "arn:aws:sts::123456789012:assumed-role/labflow-automation/teardown-fn";
        assert!(is_same_principal(
            "arn:aws:iam::123456789012:role/labflow-automation",
            caller
        ));
        assert!(is_same_principal(
            "arn:aws:iam::123456789012:role/service/labflow-automation",
            caller
        ));
        assert!(!is_same_principal(
            "arn:aws:iam::123456789012:role/labflow-automation-2",
            caller
        ));
        assert!(!is_same_principal(
            "arn:aws:iam::999999999999:role/labflow-automation",
            caller
        ));
        assert!(is_same_principal(
            "arn:aws:iam::123456789012:user/moto",
            "arn:aws:iam::123456789012:user/moto"
        ));
    }
}
