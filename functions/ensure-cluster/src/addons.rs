//! Managed add-ons: observe every configured one, then create, tag, update or wait.

use aws_sdk_eks::types::ResolveConflicts;
use labflow_core::config::{AddonConfig, EnvironmentConfig};
use labflow_core::error::classify_sdk_error;
use labflow_core::StepError;
use serde_json::Value;

use crate::addon_config;
use crate::aws_error::error_code;
use crate::cluster;
use crate::nodegroups::issues_text;
use crate::observed::ObservedAddon;
use crate::plan;
use crate::report::{AddonReport, Change};

/// Statuses that will not recover by waiting. DEGRADED is not among them: an add-on such as
/// coredns is DEGRADED until nodes exist to run it, so it is waited for (and reported).
const FAILED: &[&str] = &["CREATE_FAILED", "UPDATE_FAILED", "DELETE_FAILED"];

/// DescribeAddon for each configured add-on (`None` = not installed).
pub async fn observe<'a>(
    eks: &aws_sdk_eks::Client,
    cluster_name: &str,
    config: &'a EnvironmentConfig,
) -> Result<Vec<(&'a AddonConfig, Option<ObservedAddon>)>, StepError> {
    let mut found = Vec::new();
    for addon in &config.addons {
        let response = eks
            .describe_addon()
            .cluster_name(cluster_name)
            .addon_name(&addon.name)
            .send()
            .await;
        let observed = match response {
            Ok(out) => out.addon.as_ref().map(ObservedAddon::from),
            Err(err) if error_code(&err) == Some("ResourceNotFoundException") => None,
            Err(err) => {
                return Err(classify_sdk_error(
                    &format!("describing add-on {}", addon.name),
                    err,
                ))
            }
        };
        found.push((addon, observed));
    }
    Ok(found)
}

/// Refusals and failures before anything is changed.
pub fn check(
    environment: &str,
    config: &EnvironmentConfig,
    observed: &[(&AddonConfig, Option<ObservedAddon>)],
) -> Result<(), StepError> {
    let mut failed = Vec::new();
    for (_, have) in observed {
        let Some(have) = have else { continue };
        if !labflow_core::ownership::is_owned(environment, &have.tags) {
            return Err(StepError::NotOwned(format!(
                "add-on {} of cluster {} exists without the tags labflow:environment={environment} and labflow:managed-by=labflow; labflow does not adopt or modify it",
                have.name, config.cluster.name
            )));
        }
        if FAILED.contains(&have.status.as_str()) {
            failed.push(format!(
                "add-on {} is {}: {}",
                have.name,
                have.status,
                issues_text(&have.health_issues)
            ));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(StepError::ComponentFailed(failed.join("; ")))
    }
}

/// Install what is missing, move versions that differ. Returns the reports and whether every
/// add-on is ACTIVE at the configured version.
pub async fn reconcile(
    eks: &aws_sdk_eks::Client,
    environment: &str,
    config: &EnvironmentConfig,
    observed: Vec<(&AddonConfig, Option<ObservedAddon>)>,
    changes: &mut Vec<Change>,
) -> Result<(Vec<AddonReport>, bool), StepError> {
    let tags = labflow_core::ownership::tags(environment, config);
    let cluster_name = &config.cluster.name;
    let mut reports = Vec::new();
    let mut ready = true;
    for (want, have) in observed {
        let resource = format!("addon/{}", want.name);
        let configuration = addon_config::desired(want, cluster_name);
        let installed = have.as_ref().and_then(|h| h.version.as_deref());
        let version =
            match addon_config::unpinned_version(eks, want, installed, &config.cluster.version)
                .await?
            {
                Some(resolved) => Some(resolved),
                None => want.version.clone(),
            };
        let Some(have) = have else {
            let request = eks
                .create_addon()
                .cluster_name(cluster_name)
                .addon_name(&want.name)
                .set_addon_version(version.clone())
                .set_configuration_values(configuration.as_ref().map(Value::to_string))
                // The managed add-on replaces the self-managed copy EKS bootstraps.
                .resolve_conflicts(ResolveConflicts::Overwrite)
                .set_tags(Some(tags.clone()));
            let status = match request.send().await {
                Ok(out) => out
                    .addon
                    .and_then(|a| a.status)
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "CREATING".to_string()),
                Err(err) if error_code(&err) == Some("ResourceInUseException") => {
                    "CREATING".to_string()
                }
                Err(err) => {
                    return Err(classify_sdk_error(
                        &format!("creating add-on {}", want.name),
                        err,
                    ))
                }
            };
            changes.push(Change::new(
                &resource,
                "create",
                format!("version {}", version.as_deref().unwrap_or("(EKS default)")),
            ));
            ready = false;
            reports.push(AddonReport {
                name: want.name.clone(),
                status,
                version: version.clone(),
                health_issues: Vec::new(),
            });
            continue;
        };
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
        let version_differs = version
            .as_ref()
            .is_some_and(|v| have.version.as_ref() != Some(v));
        let configuration_differs =
            addon_config::differs(configuration.as_ref(), have.configuration_values.as_deref());
        if have.status == "ACTIVE" && (version_differs || configuration_differs) {
            let mut what = Vec::new();
            if version_differs {
                what.push(format!(
                    "version {} → {}",
                    have.version.as_deref().unwrap_or("(unknown)"),
                    version.as_deref().unwrap_or_default()
                ));
            }
            if configuration_differs {
                what.push("configuration values".to_string());
            }
            let what = what.join(", ");
            let response = eks
                .update_addon()
                .cluster_name(cluster_name)
                .addon_name(&want.name)
                .set_addon_version(version.clone().filter(|_| version_differs))
                .set_configuration_values(
                    configuration
                        .as_ref()
                        .filter(|_| configuration_differs)
                        .map(Value::to_string),
                )
                .resolve_conflicts(ResolveConflicts::Overwrite)
                .send()
                .await;
            match response {
                Ok(_) => changes.push(Change::new(&resource, "update", what)),
                Err(err) if error_code(&err) == Some("ResourceInUseException") => {}
                Err(err) => {
                    return Err(classify_sdk_error(
                        &format!("updating add-on {} ({what})", want.name),
                        err,
                    ))
                }
            }
            ready = false;
        } else if have.status != "ACTIVE" {
            ready = false;
        }
        reports.push(AddonReport {
            name: have.name.clone(),
            status: have.status.clone(),
            version: have.version.clone(),
            health_issues: have.health_issues.clone(),
        });
    }
    Ok((reports, ready))
}
