//! labflow step `teardown`: nothing of the environment is left (DESIGN.md §1, §3, §5; issue 9).
//!
//! Every call re-observes the world and makes one bounded amount of progress, in this order:
//! 1. refuse a scheduled teardown of a `protected` environment (`labflow.InvalidInput`: the
//!    request is what is wrong) and a cluster without labflow's ownership tags (`labflow.NotOwned`);
//! 2. inside a reachable cluster: suspend the root GitRepository/Kustomization, delete the child
//!    Kustomizations unsuspended, leaves first, one at a time, each only when nothing is still
//!    terminating; sweep Ingresses, LoadBalancer Services and PVCs before the controllers go, and
//!    wait for the EBS CSI driver to delete the volumes of released PersistentVolumes;
//! 3. objects stuck terminating past the grace period: remove known-safe finalizers whose
//!    controller is gone, otherwise fail with `labflow.ComponentFailed` naming object + finalizer;
//! 4. uninstall Flux like `flux uninstall`;
//! 5. delete the Route53 records external-dns made for this environment (owner id), no others;
//! 6. EKS: Pod Identity associations, node groups (wait), add-ons (wait), access entries, cluster
//!    (wait until gone); a missing cluster is success;
//! 7. once the cluster is gone, sweep AWS for what its controllers left (load balancers, target
//!    groups, security groups, EBS volumes tagged for the cluster; issue 19 item 9);
//! 8. delete the published kubeconfig parameter.
//!
//! Nothing is remembered between calls: waits are measured from what the world records (an
//! object's `deletionTimestamp`, EKS statuses), and no call sleeps.

mod aws_sweep;
mod dns;
mod eks;
mod in_cluster;
mod kube_api;
mod own_access;
mod report;
mod stuck;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use labflow_core::aws::AwsClients;
use labflow_core::contract::{Action, StepInput};
use labflow_core::error::classify_sdk_error;
use labflow_core::ownership::is_owned;
use labflow_core::teardown_plan::{default_safe_finalizers, SafeFinalizer};
use labflow_core::{config, StepError};

use own_access::OwnAccess;
pub use report::{Output, Phase};

/// The step's input: the common step input (environment, action, source, execution ARN).
pub type Input = StepInput;

/// Every IAM action this step calls (the Terraform cross-check reads this list).
pub const AWS_OPERATIONS: &[&str] = &[
    "ssm:GetParameter",
    "ssm:DeleteParameter",
    "eks:DescribeCluster",
    "eks:ListPodIdentityAssociations",
    "eks:DeletePodIdentityAssociation",
    "eks:ListNodegroups",
    "eks:DescribeNodegroup",
    "eks:DeleteNodegroup",
    "eks:ListAddons",
    "eks:DescribeAddon",
    "eks:DeleteAddon",
    "eks:ListAccessEntries",
    "eks:DeleteAccessEntry",
    "eks:ListAssociatedAccessPolicies",
    "eks:CreateAccessEntry",
    "eks:AssociateAccessPolicy",
    "eks:DeleteCluster",
    "sts:GetCallerIdentity",
    "route53:ListResourceRecordSets",
    "route53:ChangeResourceRecordSets",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DeleteLoadBalancer",
    "elasticloadbalancing:DeleteTargetGroup",
    "ec2:DescribeSecurityGroups",
    "ec2:DeleteSecurityGroup",
    "ec2:DescribeVolumes",
    "ec2:DeleteVolume",
];

/// Permissions AWS checks without the function calling them itself: tags given on creation (its
/// own access entry).
pub const IMPLIED_PERMISSIONS: &[&str] = &["eks:TagResource"];

/// The current time (injectable, so tests can move past the grace period).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Tunables of teardown.
#[derive(Debug, Clone)]
pub struct TeardownOptions {
    /// How long an object may stay terminating before teardown looks at its finalizers.
    pub grace_period: chrono::Duration,
    /// Finalizers teardown may remove once their controller is gone.
    pub safe_finalizers: Vec<SafeFinalizer>,
    /// external-dns `txtPrefix` of the environments (infra/gitops sets `labflow-`).
    pub txt_prefix: String,
}

impl Default for TeardownOptions {
    fn default() -> Self {
        Self {
            grace_period: chrono::Duration::minutes(10),
            safe_finalizers: default_safe_finalizers(),
            txt_prefix: "labflow-".into(),
        }
    }
}

/// What `handle` needs: AWS clients (built once per cold start), a clock, the options, and for
/// tests an optional Kubernetes client used instead of one built from DescribeCluster.
#[derive(Clone)]
pub struct Ctx {
    pub aws: AwsClients,
    pub kube: Option<kube::Client>,
    pub clock: Clock,
    pub options: TeardownOptions,
}

impl Ctx {
    /// The production context: the system clock and default options.
    pub fn new(aws: AwsClients) -> Self {
        Self {
            aws,
            kube: None,
            clock: Arc::new(Utc::now),
            options: TeardownOptions::default(),
        }
    }
}

/// SSM parameter of the kubeconfig cluster-access publishes.
pub fn kubeconfig_parameter(environment: &str) -> String {
    format!("{}/kubeconfig", config::parameter_name(environment))
}

/// One teardown call. See the crate documentation for the order of work.
pub async fn handle(ctx: &Ctx, input: Input) -> Result<Output, StepError> {
    let environment = input.environment.as_str();
    config::check_environment_name(environment)?;
    if !matches!(input.action, Action::Teardown | Action::TeardownAll) {
        return Err(StepError::InvalidInput(format!(
            "teardown called for action {:?}; refusing to delete anything",
            input.action.as_str()
        )));
    }
    let config = config::load(
        &ctx.aws.ssm,
        environment,
        &config::Checks::teardown(ctx.aws.local_cloud()),
    )
    .await?;
    if config.protected && input.source.is_schedule() {
        return Err(StepError::InvalidInput(format!(
            "refusing to tear down environment {environment:?}: it is protected and the request came from the schedule"
        )));
    }
    let cluster_name = config.cluster.name.as_str();
    let mut report = report::Report::default();

    let cluster = eks::describe(&ctx.aws.eks, cluster_name).await?;
    if let Some(view) = &cluster {
        if !is_owned(environment, view.tags.iter()) {
            return Err(StepError::NotOwned(format!(
                "EKS cluster {cluster_name} lacks the tags labflow:environment={environment} and labflow:managed-by=labflow; refusing to delete it"
            )));
        }
    }

    if let Some(view) = cluster.as_ref().filter(|v| v.serves_kubernetes()) {
        let client = match &ctx.kube {
            Some(client) => Some(client.clone()),
            None => match own_access::ensure(
                &ctx.aws,
                cluster_name,
                view.authentication_mode.as_deref(),
                environment,
                &config,
            )
            .await?
            {
                OwnAccess::Present => Some(cluster_client(ctx, cluster_name, view).await?),
                // EKS honours a new entry within seconds; the state machine waits, then calls
                // again.
                OwnAccess::Granted { principal } => {
                    report.waiting(format!(
                        "the access entry teardown gave its role {principal} (cluster admin) to take effect"
                    ));
                    return Ok(report.finish(Phase::Workloads));
                }
                OwnAccess::Unavailable(reason) => {
                    report.leftover(format!(
                        "Kubernetes objects of {cluster_name} (load balancers, volumes) were not removed: {reason}"
                    ));
                    None
                }
            },
        };
        if let Some(client) = client {
            if let report::Progress::Pending(phase) =
                in_cluster::run(ctx, &client, &mut report).await?
            {
                return Ok(report.finish(phase));
            }
        }
    }

    if let report::Progress::Pending(phase) = dns::run(
        &ctx.aws.route53,
        &config.dns,
        &ctx.options.txt_prefix,
        &mut report,
    )
    .await?
    {
        return Ok(report.finish(phase));
    }

    if let Some(view) = &cluster {
        if let report::Progress::Pending(phase) =
            eks::run(&ctx.aws, cluster_name, view, &mut report).await?
        {
            return Ok(report.finish(phase));
        }
    }

    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&ctx.aws.config);
    let ec2 = ec2_query::Ec2::new(&ctx.aws.config)
        .map_err(|e| StepError::InvalidInput(format!("EC2 client: {e}")))?;
    if let report::Progress::Pending(phase) =
        aws_sweep::run(&elb, &ec2, cluster_name, &mut report).await?
    {
        return Ok(report.finish(phase));
    }

    delete_kubeconfig(&ctx.aws.ssm, environment, &mut report).await?;
    Ok(report.finish(Phase::Complete))
}

async fn cluster_client(
    ctx: &Ctx,
    cluster_name: &str,
    view: &eks::ClusterView,
) -> Result<kube::Client, StepError> {
    let (Some(endpoint), Some(ca)) = (&view.endpoint, &view.ca_base64) else {
        return Err(StepError::Transient(format!(
            "EKS cluster {cluster_name} has no endpoint yet"
        )));
    };
    let token =
        labflow_core::eks_token::generate_from_config(&ctx.aws.config, cluster_name).await?;
    labflow_core::kube_client::client_for(endpoint, ca, &token).await
}

async fn delete_kubeconfig(
    ssm: &aws_sdk_ssm::Client,
    environment: &str,
    report: &mut report::Report,
) -> Result<(), StepError> {
    let name = kubeconfig_parameter(environment);
    match ssm.delete_parameter().name(&name).send().await {
        Ok(_) => {
            report.removed(format!("SSM parameter {name}"));
            Ok(())
        }
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) =>
        {
            Ok(())
        }
        Err(err) => Err(classify_sdk_error(&format!("deleting {name}"), err)),
    }
}
