//! Step ensure-cluster (DESIGN.md §1, §3): the environment's EKS cluster exists, is ACTIVE and is
//! configured as the environment config says — authentication mode, secrets encryption, logging,
//! endpoint access, version, ownership tags — with its managed add-ons, node groups and Pod
//! Identity associations.
//!
//! Each call observes, makes the next bounded bit of progress and returns a report; it never
//! waits for AWS. Order of a call:
//! 1. load the config; DescribeCluster;
//! 2. absent → CreateCluster, return;
//! 3. not ours → `labflow.NotOwned`; immutable drift → `labflow.InvalidInput` naming each
//!    difference; FAILED → `labflow.ComponentFailed` with AWS's health issues;
//! 4. not ACTIVE → report and return; tags drifted → TagResource; one mutable difference →
//!    one UpdateClusterConfig / UpdateClusterVersion, return (EKS runs one update at a time);
//! 5. observe every add-on, node group and Pod Identity association, refuse / fail as in 3, then
//!    create what is missing and reconcile what drifted, all in this call.
//!
//! `done` is true only when a call found everything as configured and changed nothing.

mod addon_config;
mod addons;
mod aws_error;
mod cluster;
mod nodegroups;
pub mod observed;
pub mod plan;
mod pod_identity;
pub mod report;

use labflow_core::aws::AwsClients;
use labflow_core::config;
use labflow_core::contract::StepInput;
use labflow_core::StepError;

pub use report::{
    AddonReport, Change, ClusterReport, NodegroupReport, Output, Phase, PodIdentityReport,
};

/// The IAM actions this function calls (the Terraform policy is checked against this list).
pub const AWS_OPERATIONS: &[&str] = &[
    "ssm:GetParameter",
    "eks:DescribeCluster",
    "eks:CreateCluster",
    "eks:UpdateClusterConfig",
    "eks:UpdateClusterVersion",
    "eks:TagResource",
    "eks:DescribeNodegroup",
    "eks:CreateNodegroup",
    "eks:UpdateNodegroupConfig",
    "eks:UpdateNodegroupVersion",
    "eks:DescribeAddon",
    "eks:CreateAddon",
    "eks:UpdateAddon",
    "eks:DescribeAddonVersions",
    "eks:ListPodIdentityAssociations",
    "eks:DescribePodIdentityAssociation",
    "eks:CreatePodIdentityAssociation",
    "eks:UpdatePodIdentityAssociation",
];

/// Permissions EKS checks on the caller's behalf without the function calling them itself:
/// passing the cluster, node and controller roles, granting EKS use of the secrets KMS key, and,
/// in an account that never used EKS, creating the service-linked roles AWSServiceRoleForAmazonEKS
/// and AWSServiceRoleForAmazonEKSNodegroup on the first CreateCluster / CreateNodegroup (EKS user
/// guide, "Using roles for Amazon EKS clusters" / "... node groups"); and reading the node
/// groups' launch template versions, which EKS does with the caller's permissions when a node
/// group is created from or moved to one (UpdateNodegroupVersion answers InvalidRequestException
/// "You are not authorized to describe the launch template version" without it: AWS re:Post
/// QUCe-6r8biRj-GJQdakFnSXw).
pub const IMPLIED_PERMISSIONS: &[&str] = &[
    "iam:PassRole",
    "kms:DescribeKey",
    "kms:CreateGrant",
    "iam:CreateServiceLinkedRole",
    "ec2:DescribeLaunchTemplateVersions",
];

/// The step's input: the common step input (the state machine passes it through unchanged).
pub type Input = StepInput;

/// What a call needs, built once per cold start.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub aws: AwsClients,
}

/// One ensure-cluster call.
pub async fn handle(ctx: &Ctx, input: Input) -> Result<Output, StepError> {
    let environment = input.environment.as_str();
    config::check_environment_name(environment)?;
    let config = config::load(&ctx.aws.ssm, environment, &ctx.aws.create_checks()).await?;
    let eks = &ctx.aws.eks;
    let name = config.cluster.name.as_str();
    let tags = labflow_core::ownership::tags(environment, &config);
    let mut changes = Vec::new();

    let Some(found) = cluster::describe(eks, name).await? else {
        let created = cluster::create(eks, &config, &tags).await?;
        changes.push(Change::new(
            format!("cluster/{name}"),
            "create",
            format!(
                "Kubernetes {}, {} subnets, authentication {}, secrets encrypted with {}",
                config.cluster.version,
                config.cluster.subnet_ids.len(),
                config.cluster.authentication_mode.as_eks(),
                config.cluster.kms_key_arn
            ),
        ));
        tracing::info!(cluster = name, "cluster creation requested");
        return Ok(waiting(
            Phase::ClusterCreating,
            cluster::report(name, created.as_ref()),
            changes,
        ));
    };
    let have = observed::ObservedCluster::from(&found);
    let report = cluster::report(name, Some(&found));

    if !labflow_core::ownership::is_owned(environment, &have.tags) {
        return Err(StepError::NotOwned(format!(
            "EKS cluster {name} exists without the tags labflow:environment={environment} and labflow:managed-by=labflow; labflow does not adopt or modify it"
        )));
    }
    let drift = plan::cluster_immutable_drift(&config.cluster, &have);
    if !drift.is_empty() {
        return Err(immutable(name, drift));
    }
    match have.status.as_str() {
        "ACTIVE" => {}
        "FAILED" => {
            return Err(StepError::ComponentFailed(format!(
                "EKS cluster {name} is FAILED: {}",
                nodegroups::issues_text(&have.health_issues)
            )))
        }
        "CREATING" => return Ok(waiting(Phase::ClusterCreating, report, changes)),
        "DELETING" => return Ok(waiting(Phase::ClusterDeleting, report, changes)),
        // UPDATING, PENDING, or a status newer than this code: wait for ACTIVE.
        _ => return Ok(waiting(Phase::ClusterUpdating, report, changes)),
    }

    if let Some(arn) = &have.arn {
        cluster::tag(
            eks,
            &format!("cluster/{name}"),
            arn,
            plan::missing_tags(&tags, &have.tags),
            &mut changes,
        )
        .await?;
    }
    if let Some(update) = plan::next_cluster_update(&config.cluster, &have) {
        if cluster::update(eks, name, &update).await? {
            changes.push(Change::new(
                format!("cluster/{name}"),
                if matches!(update, plan::ClusterUpdate::Version { .. }) {
                    "update-version"
                } else {
                    "update-config"
                },
                update.describe(),
            ));
        }
        return Ok(waiting(Phase::ClusterUpdating, report, changes));
    }

    // The cluster is as configured; now everything inside it. Observe all first so that a
    // refusal or a failure is reported before anything is changed.
    let ng_observed = nodegroups::observe(eks, name, &config).await?;
    let addon_observed = addons::observe(eks, name, &config).await?;
    let pi_observed = pod_identity::observe(eks, name, &config).await?;
    let mut drift = Vec::new();
    nodegroups::check(environment, &config, &ng_observed, &mut drift)?;
    if !drift.is_empty() {
        return Err(immutable(name, drift));
    }
    addons::check(environment, &config, &addon_observed)?;
    pod_identity::check(environment, &pi_observed)?;

    // Add-ons first: the CNI should be the managed one before nodes join.
    let (addon_reports, addons_ready) =
        addons::reconcile(eks, environment, &config, addon_observed, &mut changes).await?;
    let (ng_reports, nodegroups_ready) = nodegroups::reconcile(
        eks,
        environment,
        &config,
        have.version.as_deref(),
        ng_observed,
        &mut changes,
    )
    .await?;
    let (pi_reports, pod_identities_ready) =
        pod_identity::reconcile(eks, environment, &config, pi_observed, &mut changes).await?;

    let phase = if !nodegroups_ready {
        Phase::Nodegroups
    } else if !addons_ready {
        Phase::Addons
    } else if !pod_identities_ready {
        Phase::PodIdentities
    } else if !changes.is_empty() {
        // Only tags changed: report where we are, done on the next call.
        Phase::ClusterUpdating
    } else {
        Phase::Ready
    };
    let done = phase == Phase::Ready;
    tracing::info!(
        cluster = name,
        done,
        phase = ?phase,
        changes = changes.len(),
        "ensure-cluster"
    );
    Ok(Output {
        done,
        phase,
        cluster: report,
        nodegroups: ng_reports,
        addons: addon_reports,
        pod_identities: pi_reports,
        changes,
    })
}

fn immutable(name: &str, drift: Vec<String>) -> StepError {
    StepError::InvalidInput(format!(
        "EKS cluster {name} differs from the config in settings that cannot be changed in place (recreate the environment or fix the config): {}",
        drift.join("; ")
    ))
}

fn waiting(phase: Phase, cluster: ClusterReport, changes: Vec<Change>) -> Output {
    Output {
        done: false,
        phase,
        cluster,
        nodegroups: Vec::new(),
        addons: Vec::new(),
        pod_identities: Vec::new(),
        changes,
    }
}
