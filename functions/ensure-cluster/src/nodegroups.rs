//! Managed node groups: observe every configured one, then create, tag, update or wait.

use std::collections::HashMap;

use aws_sdk_eks::types::{
    CapacityTypes, LaunchTemplateSpecification, NodegroupScalingConfig, Taint as EksTaint,
    TaintEffect as EksTaintEffect, UpdateLabelsPayload, UpdateTaintsPayload,
};
use labflow_core::config::{EnvironmentConfig, LaunchTemplateRef, NodegroupConfig};
use labflow_core::error::classify_sdk_error;
use labflow_core::StepError;

use crate::aws_error::error_code;
use crate::cluster;
use crate::observed::ObservedNodegroup;
use crate::plan::{self, NodegroupConfigUpdate};
use crate::report::{Change, NodegroupReport};

/// Statuses that mean the node group failed and will not recover by waiting.
const FAILED: &[&str] = &["CREATE_FAILED", "DELETE_FAILED", "DEGRADED"];

/// DescribeNodegroup for each configured node group (`None` = does not exist).
pub async fn observe<'a>(
    eks: &aws_sdk_eks::Client,
    cluster_name: &str,
    config: &'a EnvironmentConfig,
) -> Result<Vec<(&'a NodegroupConfig, Option<ObservedNodegroup>)>, StepError> {
    let mut found = Vec::new();
    for ng in &config.nodegroups {
        let response = eks
            .describe_nodegroup()
            .cluster_name(cluster_name)
            .nodegroup_name(&ng.name)
            .send()
            .await;
        let observed = match response {
            Ok(out) => out.nodegroup.as_ref().map(ObservedNodegroup::from),
            Err(err) if error_code(&err) == Some("ResourceNotFoundException") => None,
            Err(err) => {
                return Err(classify_sdk_error(
                    &format!("describing node group {}", ng.name),
                    err,
                ))
            }
        };
        found.push((ng, observed));
    }
    Ok(found)
}

/// Refusals and failures, before anything is changed: foreign node groups, immutable drift,
/// failed node groups.
pub fn check(
    environment: &str,
    config: &EnvironmentConfig,
    observed: &[(&NodegroupConfig, Option<ObservedNodegroup>)],
    drift: &mut Vec<String>,
) -> Result<(), StepError> {
    let mut failed = Vec::new();
    for (want, have) in observed {
        let Some(have) = have else { continue };
        if !labflow_core::ownership::is_owned(environment, &have.tags) {
            return Err(StepError::NotOwned(format!(
                "node group {} of cluster {} exists without the tags labflow:environment={environment} and labflow:managed-by=labflow; labflow does not adopt or modify it",
                have.name, config.cluster.name
            )));
        }
        drift.extend(plan::nodegroup_immutable_drift(
            want,
            &config.cluster.subnet_ids,
            have,
        ));
        if FAILED.contains(&have.status.as_str()) {
            failed.push(format!(
                "node group {} is {}: {}",
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

pub fn issues_text(issues: &[String]) -> String {
    if issues.is_empty() {
        "AWS reports no health issues".to_string()
    } else {
        issues.join("; ")
    }
}

/// Create what is missing, reconcile what drifted. Returns the reports and whether every node
/// group is ACTIVE and as configured.
pub async fn reconcile(
    eks: &aws_sdk_eks::Client,
    environment: &str,
    config: &EnvironmentConfig,
    cluster_version: Option<&str>,
    observed: Vec<(&NodegroupConfig, Option<ObservedNodegroup>)>,
    changes: &mut Vec<Change>,
) -> Result<(Vec<NodegroupReport>, bool), StepError> {
    let tags = labflow_core::ownership::tags(environment, config);
    let mut reports = Vec::new();
    let mut ready = true;
    for (want, have) in observed {
        let resource = format!("nodegroup/{}", want.name);
        let Some(have) = have else {
            let status = create(eks, config, want, &tags).await?;
            changes.push(Change::new(
                &resource,
                "create",
                format!(
                    "{} × {} ({}), scaling {}-{} desired {}",
                    want.capacity_type.as_eks(),
                    want.instance_types.join("/"),
                    want.name,
                    want.scaling.min,
                    want.scaling.max,
                    want.scaling.desired
                ),
            ));
            ready = false;
            reports.push(NodegroupReport {
                name: want.name.clone(),
                status,
                version: None,
                desired_size: i32::try_from(want.scaling.desired).ok(),
                min_size: i32::try_from(want.scaling.min).ok(),
                max_size: i32::try_from(want.scaling.max).ok(),
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
        if have.status == "ACTIVE" {
            let update = plan::nodegroup_config_update(want, &have);
            let outdated = match (have.version.as_deref(), cluster_version) {
                (Some(ng), Some(cl)) => plan::minor(ng)
                    .zip(plan::minor(cl))
                    .is_some_and(|(n, c)| n < c),
                _ => false,
            };
            let template = plan::launch_template_update(want, &have);
            if !update.is_empty() {
                if update_config(eks, &config.cluster.name, &want.name, &update).await? {
                    changes.push(Change::new(&resource, "update-config", update.describe()));
                }
                ready = false;
            } else if let (true, Some(to)) = (outdated, cluster_version) {
                // Node groups follow the control plane after a version upgrade.
                if update_version(eks, &config.cluster.name, &want.name, Some(to), None).await? {
                    changes.push(Change::new(
                        &resource,
                        "update-version",
                        format!("Kubernetes version → {to}"),
                    ));
                }
                ready = false;
            } else if let Some(template) = template {
                // A new launch template version (e.g. Terraform changed the metadata options):
                // EKS replaces the nodes, draining each first.
                if update_version(eks, &config.cluster.name, &want.name, None, Some(template))
                    .await?
                {
                    changes.push(Change::new(
                        &resource,
                        "update-version",
                        format!(
                            "launch template {} → version {}",
                            template.id, template.version
                        ),
                    ));
                }
                ready = false;
            }
        } else {
            ready = false;
        }
        reports.push(NodegroupReport {
            name: have.name.clone(),
            status: have.status.clone(),
            version: have.version.clone(),
            desired_size: have.desired_size,
            min_size: have.min_size,
            max_size: have.max_size,
            health_issues: have.health_issues.clone(),
        });
    }
    Ok((reports, ready))
}

fn scaling(want: &NodegroupConfig) -> NodegroupScalingConfig {
    let clamp = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    NodegroupScalingConfig::builder()
        .min_size(clamp(want.scaling.min))
        .max_size(clamp(want.scaling.max))
        .desired_size(clamp(want.scaling.desired))
        .build()
}

fn eks_taint(key: &str, value: Option<&str>, effect: &str) -> EksTaint {
    EksTaint::builder()
        .key(key)
        .set_value(value.map(str::to_string))
        .effect(EksTaintEffect::from(effect))
        .build()
}

/// CreateNodegroup; returns the status to report ("CREATING", or what EKS says).
async fn create(
    eks: &aws_sdk_eks::Client,
    config: &EnvironmentConfig,
    want: &NodegroupConfig,
    tags: &HashMap<String, String>,
) -> Result<String, StepError> {
    let mut request = eks
        .create_nodegroup()
        .cluster_name(&config.cluster.name)
        .nodegroup_name(&want.name)
        .node_role(&want.node_role_arn)
        .set_subnets(Some(plan::effective_subnets(
            want,
            &config.cluster.subnet_ids,
        )))
        .set_instance_types(Some(want.instance_types.clone()))
        .capacity_type(CapacityTypes::from(want.capacity_type.as_eks()))
        .scaling_config(scaling(want))
        .set_tags(Some(tags.clone()));
    if let Some(size) = want.disk_size_gib {
        request = request.disk_size(i32::try_from(size).unwrap_or(i32::MAX));
    }
    if let Some(template) = &want.launch_template {
        request = request.launch_template(
            LaunchTemplateSpecification::builder()
                .id(&template.id)
                .version(&template.version)
                .build(),
        );
    }
    if !want.labels.is_empty() {
        request = request.set_labels(Some(want.labels.clone().into_iter().collect()));
    }
    for taint in &want.taints {
        request = request.taints(eks_taint(
            &taint.key,
            taint.value.as_deref(),
            taint.effect.as_eks(),
        ));
    }
    match request.send().await {
        Ok(out) => Ok(out
            .nodegroup
            .and_then(|n| n.status)
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "CREATING".to_string())),
        // Created by a call whose answer was lost: the next call observes it.
        Err(err) if error_code(&err) == Some("ResourceInUseException") => {
            Ok("CREATING".to_string())
        }
        Err(err) => Err(classify_sdk_error(
            &format!("creating node group {}", want.name),
            err,
        )),
    }
}

/// UpdateNodegroupConfig; `Ok(false)` when another update is in progress.
async fn update_config(
    eks: &aws_sdk_eks::Client,
    cluster_name: &str,
    name: &str,
    update: &NodegroupConfigUpdate,
) -> Result<bool, StepError> {
    let mut request = eks
        .update_nodegroup_config()
        .cluster_name(cluster_name)
        .nodegroup_name(name);
    if let Some((min, max, desired)) = update.scaling {
        let clamp = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        request = request.scaling_config(
            NodegroupScalingConfig::builder()
                .min_size(clamp(min))
                .max_size(clamp(max))
                .desired_size(clamp(desired))
                .build(),
        );
    }
    if !update.add_labels.is_empty() || !update.remove_labels.is_empty() {
        request = request.labels(
            UpdateLabelsPayload::builder()
                .set_add_or_update_labels(
                    (!update.add_labels.is_empty())
                        .then(|| update.add_labels.clone().into_iter().collect()),
                )
                .set_remove_labels(
                    (!update.remove_labels.is_empty())
                        .then(|| update.remove_labels.iter().cloned().collect()),
                )
                .build(),
        );
    }
    if !update.add_taints.is_empty() || !update.remove_taints.is_empty() {
        let taints = |set: &std::collections::BTreeSet<(String, Option<String>, String)>| {
            set.iter()
                .map(|(k, v, e)| eks_taint(k, v.as_deref(), e))
                .collect::<Vec<_>>()
        };
        request = request.taints(
            UpdateTaintsPayload::builder()
                .set_add_or_update_taints(
                    (!update.add_taints.is_empty()).then(|| taints(&update.add_taints)),
                )
                .set_remove_taints(
                    (!update.remove_taints.is_empty()).then(|| taints(&update.remove_taints)),
                )
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => Ok(true),
        Err(err) if error_code(&err) == Some("ResourceInUseException") => Ok(false),
        Err(err) => Err(classify_sdk_error(
            &format!("updating node group {name} ({})", update.describe()),
            err,
        )),
    }
}

/// UpdateNodegroupVersion to the cluster's Kubernetes version or to another version of the node
/// group's launch template (by id only: EKS refuses id and name together); `Ok(false)` when an
/// update is in progress.
async fn update_version(
    eks: &aws_sdk_eks::Client,
    cluster_name: &str,
    name: &str,
    version: Option<&str>,
    template: Option<&LaunchTemplateRef>,
) -> Result<bool, StepError> {
    let response = eks
        .update_nodegroup_version()
        .cluster_name(cluster_name)
        .nodegroup_name(name)
        .set_version(version.map(str::to_string))
        .set_launch_template(template.map(|t| {
            LaunchTemplateSpecification::builder()
                .id(&t.id)
                .version(&t.version)
                .build()
        }))
        .send()
        .await;
    let to = match (version, template) {
        (Some(version), _) => version.to_string(),
        (None, Some(t)) => format!("launch template {} version {}", t.id, t.version),
        (None, None) => "its latest AMI".to_string(),
    };
    match response {
        Ok(_) => Ok(true),
        Err(err) if error_code(&err) == Some("ResourceInUseException") => Ok(false),
        Err(err) => Err(classify_sdk_error(
            &format!("upgrading node group {name} to {to}"),
            err,
        )),
    }
}
