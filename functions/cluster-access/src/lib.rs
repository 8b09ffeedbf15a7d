//! Step cluster-access (DESIGN.md §1, §3, §5): the automation role and the configured principals
//! have EKS access entries with their access policies at cluster scope, and nobody else has one
//! of labflow's (access taken from the config is revoked: policies disassociated, entries
//! deleted); the Kubernetes API
//! answers `/version` to a fresh EKS token over TLS verified with the cluster's CA; a kubeconfig
//! for people (exec plugin, no secret) is published to SSM.
//!
//! An API that is unreachable or refuses us right after access was granted is `done: false`
//! (access entries take a while to propagate), until the deadline; then
//! `labflow.DeadlineExceeded`. Nothing sleeps: the state machine waits between calls.

mod access;
pub mod kubeconfig;
pub mod principal;
mod probe;
pub mod report;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use labflow_core::aws::AwsClients;
use labflow_core::config;
use labflow_core::error::classify_sdk_error;
use labflow_core::StepError;

pub use probe::PROBE_TIMEOUT;
pub use report::{Change, Input, Output, Phase, PrincipalReport};

/// The IAM actions this function calls (the Terraform policy is checked against this list).
pub const AWS_OPERATIONS: &[&str] = &[
    "ssm:GetParameter",
    "ssm:PutParameter",
    "sts:GetCallerIdentity",
    "eks:DescribeCluster",
    "eks:DescribeAccessEntry",
    "eks:CreateAccessEntry",
    "eks:UpdateAccessEntry",
    "eks:ListAssociatedAccessPolicies",
    "eks:AssociateAccessPolicy",
    "eks:DisassociateAccessPolicy",
    "eks:ListAccessEntries",
    "eks:DeleteAccessEntry",
];

/// Permissions AWS checks without the function calling them itself: tags given on creation
/// (access entries, the kubeconfig parameter).
pub const IMPLIED_PERMISSIONS: &[&str] = &["eks:TagResource", "ssm:AddTagsToResource"];

/// How long access may take to propagate after the latest grant, when the input names no
/// deadline.
pub const ACCESS_PROPAGATION: Duration = Duration::from_secs(10 * 60);

/// Environment variable with the automation role's ARN as IAM knows it (with its path); lets the
/// step name a role with a path, which the STS session ARN does not show.
pub const AUTOMATION_ROLE_ENV: &str = "LABFLOW_AUTOMATION_ROLE_ARN";

/// A source of "now" (tests move it).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What a call needs, built once per cold start.
#[derive(Clone)]
pub struct Ctx {
    pub aws: AwsClients,
    pub clock: Clock,
    /// The automation role's full ARN if the deployment knows it (see [`AUTOMATION_ROLE_ENV`]).
    pub automation_role_arn: Option<String>,
}

impl Ctx {
    /// Real clock, automation role ARN from the environment.
    pub fn new(aws: AwsClients) -> Self {
        Ctx {
            aws,
            clock: Arc::new(Utc::now),
            automation_role_arn: std::env::var(AUTOMATION_ROLE_ENV)
                .ok()
                .filter(|v| !v.trim().is_empty()),
        }
    }
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("aws", &self.aws)
            .field("automation_role_arn", &self.automation_role_arn)
            .finish_non_exhaustive()
    }
}

/// One cluster-access call.
pub async fn handle(ctx: &Ctx, input: Input) -> Result<Output, StepError> {
    let environment = input.environment.as_str();
    config::check_environment_name(environment)?;
    let config = config::load(&ctx.aws.ssm, environment, &ctx.aws.create_checks()).await?;
    let name = config.cluster.name.as_str();
    let eks = &ctx.aws.eks;
    let now = (ctx.clock)();
    let parameter = kubeconfig::parameter_name(environment);
    let mut changes = Vec::new();

    let cluster = match eks.describe_cluster().name(name).send().await {
        Ok(out) => out.cluster,
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            None
        }
        Err(err) => {
            return Err(classify_sdk_error(
                &format!("describing EKS cluster {name}"),
                err,
            ))
        }
    };
    let Some(cluster) = cluster else {
        return Err(StepError::InvalidInput(format!(
            "EKS cluster {name} does not exist (ensure-cluster runs before cluster-access)"
        )));
    };
    let tags: std::collections::BTreeMap<String, String> = cluster
        .tags()
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    if !labflow_core::ownership::is_owned(environment, &tags) {
        return Err(StepError::NotOwned(format!(
            "EKS cluster {name} exists without the tags labflow:environment={environment} and labflow:managed-by=labflow; labflow does not grant access to it"
        )));
    }
    let status = cluster
        .status()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    let endpoint = cluster
        .endpoint()
        .filter(|e| !e.is_empty())
        .map(str::to_string);
    let ca = cluster
        .certificate_authority()
        .and_then(|c| c.data())
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let not_ready = |reason: String| Output {
        done: false,
        phase: Phase::ClusterNotReady,
        endpoint: endpoint.clone(),
        kubernetes_version: None,
        kubeconfig_parameter: parameter.clone(),
        automation_role_arn: None,
        principals: Vec::new(),
        waiting_for: Some(reason),
        deadline: input.deadline,
        changes: Vec::new(),
    };
    match status.as_str() {
        "ACTIVE" | "UPDATING" => {}
        "CREATING" | "PENDING" => {
            return Ok(not_ready(format!("cluster {name} is {status}")));
        }
        other => {
            return Err(StepError::ComponentFailed(format!(
                "EKS cluster {name} is {other}; access cannot be granted"
            )))
        }
    }
    let (Some(endpoint), Some(ca)) = (endpoint.clone(), ca) else {
        return Ok(not_ready(format!(
            "cluster {name} has no endpoint or CA yet"
        )));
    };
    let mode = cluster
        .access_config()
        .and_then(|a| a.authentication_mode())
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "CONFIG_MAP".to_string());
    if mode == "CONFIG_MAP" {
        return Err(StepError::InvalidInput(format!(
            "EKS cluster {name} uses authentication mode CONFIG_MAP; access entries need API or API_AND_CONFIG_MAP (ensure-cluster sets it)"
        )));
    }

    let caller = ctx
        .aws
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| classify_sdk_error("asking STS who the automation identity is", e))?;
    let caller_arn = caller
        .arn()
        .ok_or_else(|| StepError::Transient("STS GetCallerIdentity returned no ARN".to_string()))?;
    let mut known: Vec<&str> = config
        .access_principals
        .iter()
        .map(|p| p.principal_arn.as_str())
        .collect();
    if let Some(arn) = &ctx.automation_role_arn {
        known.insert(0, arn.as_str());
    }
    let automation_role = labflow_core::principal::role_arn_from_caller(caller_arn, &known)?;
    let grants = principal::grants(&config.access_principals, &automation_role);

    let entry_tags = labflow_core::ownership::tags(environment, &config);
    let mut automation_granted_at = None;
    for grant in &grants {
        let granted_at = access::ensure(eks, name, grant, &entry_tags, now, &mut changes).await?;
        if grant.principal_arn == automation_role {
            automation_granted_at = granted_at;
        }
    }
    access::revoke_unlisted(eks, name, environment, &grants, &mut changes).await?;

    let region = ctx.aws.region()?.to_string();
    let rendered = kubeconfig::render(environment, name, &region, &endpoint, &ca)?;
    kubeconfig::publish(
        &ctx.aws.ssm,
        environment,
        &rendered,
        &entry_tags,
        &mut changes,
    )
    .await?;

    let propagation = chrono::Duration::from_std(ACCESS_PROPAGATION)
        .map_err(|e| StepError::InvalidInput(format!("propagation window: {e}")))?;
    let deadline = input
        .deadline
        .unwrap_or_else(|| automation_granted_at.unwrap_or(now) + propagation);
    let principals = grants
        .iter()
        .map(|g| PrincipalReport {
            principal_arn: g.principal_arn.clone(),
            policies: g.policies.clone(),
            kubernetes_groups: g.kubernetes_groups.clone(),
        })
        .collect();
    let mut output = Output {
        done: false,
        phase: Phase::AccessPropagating,
        endpoint: Some(endpoint.clone()),
        kubernetes_version: None,
        kubeconfig_parameter: parameter,
        automation_role_arn: Some(automation_role),
        principals,
        waiting_for: None,
        deadline: Some(deadline),
        changes,
    };
    match probe::version(&ctx.aws, name, &endpoint, &ca).await? {
        probe::Probe::Answered { git_version } => {
            output.done = true;
            output.phase = Phase::Ready;
            output.kubernetes_version = Some(git_version);
        }
        probe::Probe::NotYet { reason } => {
            if now >= deadline {
                return Err(StepError::DeadlineExceeded(format!(
                    "the Kubernetes API of {name} still does not answer the automation role at {}, past the deadline {}: {reason}",
                    now.to_rfc3339(),
                    deadline.to_rfc3339()
                )));
            }
            tracing::info!(cluster = name, %reason, "waiting for access");
            output.waiting_for = Some(reason);
        }
    }
    tracing::info!(
        cluster = name,
        done = output.done,
        changes = output.changes.len(),
        "cluster-access"
    );
    Ok(output)
}
