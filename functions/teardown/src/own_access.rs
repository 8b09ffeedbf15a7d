//! Teardown's own way into the cluster (issue 19 item 5). ensure-cluster creates clusters
//! without `bootstrapClusterCreatorAdminPermissions`, and cluster-access grants the functions
//! their entries; a lab whose create failed between the two has none, and EKS answers our token
//! with 401. Teardown then grants itself cluster admin (an access entry tagged as labflow's)
//! before it looks inside, or, where access entries cannot exist (authentication mode
//! CONFIG_MAP), says that it cannot.

use std::collections::HashMap;

use aws_sdk_eks::error::ProvideErrorMetadata;
use aws_sdk_eks::types::{AccessScope, AccessScopeType};
use labflow_core::config::{EnvironmentConfig, CLUSTER_ADMIN_POLICY};
use labflow_core::error::classify_sdk_error;
use labflow_core::StepError;

/// What teardown found of its own access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OwnAccess {
    /// Its role has an access entry (made by cluster-access or an earlier teardown).
    Present,
    /// It has just made one for its role (`principal`); EKS takes a moment to honour it.
    Granted { principal: String },
    /// No access entry can exist: in-cluster work is impossible.
    Unavailable(String),
}

/// Make sure teardown's role has an access entry with cluster admin on `cluster`.
pub(crate) async fn ensure(
    aws: &labflow_core::aws::AwsClients,
    cluster: &str,
    authentication_mode: Option<&str>,
    environment: &str,
    config: &EnvironmentConfig,
) -> Result<OwnAccess, StepError> {
    if authentication_mode.is_none_or(|m| m == "CONFIG_MAP") {
        return Ok(OwnAccess::Unavailable(format!(
            "EKS cluster {cluster} uses authentication mode CONFIG_MAP: no access entry can give teardown access"
        )));
    }
    let caller = aws
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| classify_sdk_error("finding the caller's identity", e))?;
    let caller_arn = caller.arn().unwrap_or_default();
    // The config names the functions' roles with their paths (Terraform's access principals).
    let known: Vec<&str> = config
        .access_principals
        .iter()
        .map(|p| p.principal_arn.as_str())
        .collect();
    let principal = labflow_core::principal::role_arn_from_caller(caller_arn, &known)?;
    let eks = &aws.eks;
    match eks
        .list_associated_access_policies()
        .cluster_name(cluster)
        .principal_arn(&principal)
        .send()
        .await
    {
        Ok(out) => {
            let admin = out.associated_access_policies().iter().any(|p| {
                p.policy_arn() == Some(CLUSTER_ADMIN_POLICY)
                    && p.access_scope().and_then(|s| s.r#type()) == Some(&AccessScopeType::Cluster)
            });
            if admin {
                return Ok(OwnAccess::Present);
            }
            // An entry without cluster admin (an earlier call that stopped between the two
            // writes): give it the policy.
            associate_admin(eks, cluster, &principal).await?;
            return Ok(OwnAccess::Granted { principal });
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(err) => {
            return Err(classify_sdk_error(
                &format!("reading teardown's access on {cluster}"),
                err,
            ))
        }
    }
    let tags: HashMap<String, String> = labflow_core::ownership::tags(environment, config);
    match eks
        .create_access_entry()
        .cluster_name(cluster)
        .principal_arn(&principal)
        .set_tags(Some(tags))
        .send()
        .await
    {
        Ok(_) => {}
        // Made by a call whose answer was lost.
        Err(err) if err.code() == Some("ResourceInUseException") => {}
        Err(err) => {
            return Err(classify_sdk_error(
                &format!("creating teardown's access entry on {cluster}"),
                err,
            ))
        }
    }
    associate_admin(eks, cluster, &principal).await?;
    Ok(OwnAccess::Granted { principal })
}

async fn associate_admin(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    principal: &str,
) -> Result<(), StepError> {
    eks.associate_access_policy()
        .cluster_name(cluster)
        .principal_arn(principal)
        .policy_arn(CLUSTER_ADMIN_POLICY)
        .access_scope(
            AccessScope::builder()
                .r#type(AccessScopeType::Cluster)
                .build(),
        )
        .send()
        .await
        .map_err(|e| {
            classify_sdk_error(&format!("giving teardown cluster admin on {cluster}"), e)
        })?;
    Ok(())
}
