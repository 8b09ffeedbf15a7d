//! flux-bootstrap: installs Flux at the pinned version and points it at the environment
//! (DESIGN.md §1, §5).
//!
//! One call:
//! 1. loads the environment config and checks the cluster variables can be built;
//! 2. downloads `install.yaml` from `flux.manifestUrl` and verifies `flux.manifestSha256`
//!    (mismatch → `labflow.InvalidInput`, nothing applied);
//! 3. server-side applies stage 1 (CRDs, Namespaces, ClusterRoles, ClusterRoleBindings); while a
//!    CRD is not Established it returns `done: false`, phase `waiting-crds` — call again;
//! 4. applies stage 2 (the rest of the manifest) and the bootstrap objects: Secret
//!    `flux-system/flux-system` (the environment's read-only Git credential from SSM, never the
//!    status token: issue 26 item 2), ConfigMap `flux-system/labflow-cluster-vars`,
//!    GitRepository and root Kustomization `flux-system/flux-system`;
//! 5. on `sync`, annotates the GitRepository and root Kustomization with
//!    `reconcile.fluxcd.io/requestedAt` so Flux fetches the new commit now.
//!
//! Everything is applied with field manager `labflow` and label
//! `app.kubernetes.io/managed-by=labflow`; a second call changes nothing and reports it
//! (`applied: 0`). The Git credential never appears in logs, output or errors.

pub mod apply;
pub mod credential;
pub mod manifest;
pub mod objects;

use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use labflow_core::aws::AwsClients;
use labflow_core::config;
use labflow_core::contract::Action;
use labflow_core::error::classify_kube_error;
use labflow_core::flux::{self, cluster_vars, kstatus, resources};
use labflow_core::ownership::FIELD_MANAGER;
use labflow_core::StepError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub use labflow_core::contract::StepInput as Input;

/// Exactly the IAM actions this function calls (checked against Terraform). Reading the
/// SecureString credential also needs `kms:Decrypt` on its key, which SSM calls on our behalf.
pub const AWS_OPERATIONS: &[&str] = &["ssm:GetParameter", "eks:DescribeCluster"];

/// Clients, built once per cold start.
#[derive(Clone)]
pub struct Ctx {
    pub aws: AwsClients,
    /// Downloads the install manifest (rustls).
    pub http: reqwest::Client,
    /// A client to use instead of DescribeCluster + EKS token (tests).
    pub kube: Option<kube::Client>,
}

impl Ctx {
    pub fn new(aws: AwsClients) -> Result<Self, StepError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!(
                "labflow-flux-bootstrap/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| StepError::InvalidInput(format!("building the HTTP client: {e}")))?;
        Ok(Self {
            aws,
            http,
            kube: None,
        })
    }

    /// Talk to this cluster instead of looking the environment's cluster up in EKS.
    pub fn with_kube(mut self, client: kube::Client) -> Self {
        self.kube = Some(client);
        self
    }

    async fn kube_client(&self, cluster_name: &str) -> Result<kube::Client, StepError> {
        labflow_core::kube_client::given_or_cluster_client(
            self.kube.as_ref(),
            &self.aws,
            cluster_name,
        )
        .await
    }
}

/// What a call did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    /// Flux is installed and pointed at the environment (and, on `sync`, a reconcile was
    /// requested). `false`: call again after a Wait.
    pub done: bool,
    /// `waiting-crds` (stage 1 applied, a CRD is not Established yet), `installed` or
    /// `reconcile-requested` (on `sync`).
    pub phase: String,
    /// The Flux version configured (`flux.version`).
    pub flux_version: String,
    /// The root Kustomization's path in the repository.
    pub path: String,
    /// Objects this call created or changed.
    pub applied: u32,
    /// Objects this call applied without any change.
    pub unchanged: u32,
    /// CRDs not Established yet (phase `waiting-crds` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_crds: Vec<String>,
    /// The `reconcile.fluxcd.io/requestedAt` value set on `sync`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile_requested_at: Option<String>,
}

pub async fn handle(ctx: &Ctx, input: Input) -> Result<Output, StepError> {
    let environment = input.environment.as_str();
    config::check_environment_name(environment)?;
    if !matches!(input.action, Action::Create | Action::Sync) {
        return Err(StepError::InvalidInput(format!(
            "flux-bootstrap runs for create and sync, not {}",
            input.action.as_str()
        )));
    }
    let config = config::load(&ctx.aws.ssm, environment, &ctx.aws.create_checks()).await?;
    let region = ctx.aws.region()?;
    let path = config.flux.repository.path_for(environment);

    let url = &config.flux.manifest_url;
    let bytes = manifest::download(&ctx.http, url).await?;
    manifest::verify(&bytes, &config.flux.manifest_sha256, url)?;
    let vpc_id = cluster_vpc(&ctx.aws, &config.cluster.name).await?;
    let vars = cluster_vars::values(environment, &config, region, &vpc_id)?;
    // Read before anything is applied: a missing credential stops the step with nothing changed.
    let credential = credential::load(&ctx.aws.ssm, environment, &config.flux.repository).await?;
    let (mut stage_one, stage_two) = manifest::split(manifest::parse(&bytes)?);
    // health-check reads through its access entry's Kubernetes group (issue 26 item 7); RBAC is
    // cluster-scoped, so it goes with the cluster definitions.
    stage_one.push(labflow_core::reader::cluster_role());
    stage_one.push(labflow_core::reader::cluster_role_binding());

    let client = ctx.kube_client(&config.cluster.name).await?;
    let mut done = apply::apply(&client, stage_one).await?;
    let pending_crds = unestablished_crds(&done.objects);
    let mut output = Output {
        done: false,
        phase: "waiting-crds".into(),
        flux_version: config.flux.version.clone(),
        path,
        applied: 0,
        unchanged: 0,
        pending_crds: Vec::new(),
        reconcile_requested_at: None,
    };
    if !pending_crds.is_empty() {
        tracing::info!(pending = pending_crds.len(), "CRDs not established yet");
        output.applied = done.applied;
        output.unchanged = done.unchanged;
        output.pending_crds = pending_crds;
        return Ok(output);
    }

    let mut rest = stage_two;
    rest.push(objects::git_secret(&credential));
    drop(credential);
    rest.push(objects::cluster_vars(&vars));
    rest.push(objects::git_repository(&config));
    rest.push(objects::root_kustomization(environment, &config));
    done.add(apply::apply(&client, rest).await?);
    output.applied = done.applied;
    output.unchanged = done.unchanged;
    output.done = true;
    output.phase = "installed".into();

    if input.action == Action::Sync {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        request_reconcile(&client, &now).await?;
        output.phase = "reconcile-requested".into();
        output.reconcile_requested_at = Some(now);
    }
    tracing::info!(
        applied = output.applied,
        unchanged = output.unchanged,
        phase = %output.phase,
        "flux-bootstrap finished"
    );
    Ok(output)
}

/// The cluster's VPC (`resourcesVpcConfig.vpcId`), for the load balancer controller.
async fn cluster_vpc(aws: &AwsClients, cluster: &str) -> Result<String, StepError> {
    let described = aws
        .eks
        .describe_cluster()
        .name(cluster)
        .send()
        .await
        .map_err(|e| {
            labflow_core::error::classify_sdk_error(&format!("describing EKS cluster {cluster}"), e)
        })?;
    described
        .cluster()
        .and_then(|c| c.resources_vpc_config())
        .and_then(|v| v.vpc_id())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or_else(|| StepError::Transient(format!("EKS cluster {cluster} reports no VPC yet")))
}

/// Names of the CRDs among `objects` that are not Established.
fn unestablished_crds(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition"))
        .filter(|o| kstatus::assess(o).status != kstatus::Status::Current)
        .map(|o| {
            o.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// Merge-patch `reconcile.fluxcd.io/requestedAt` onto the GitRepository and root Kustomization.
async fn request_reconcile(client: &kube::Client, now: &str) -> Result<(), StepError> {
    let patch = json!({"metadata": {"annotations": {flux::RECONCILE_ANNOTATION: now}}});
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..Default::default()
    };
    for (group, version, kind) in [
        (flux::SOURCE_GROUP, flux::SOURCE_VERSION, "GitRepository"),
        (
            flux::KUSTOMIZE_GROUP,
            flux::KUSTOMIZE_VERSION,
            "Kustomization",
        ),
    ] {
        let (ar, _) = resources::resolve(client, group, version, kind).await?;
        Api::<DynamicObject>::namespaced_with(client.clone(), flux::NAMESPACE, &ar)
            .patch(flux::BOOTSTRAP_NAME, &params, &Patch::Merge(&patch))
            .await
            .map_err(|e| {
                classify_kube_error(
                    &format!(
                        "requesting a reconcile of {kind} {}/{}",
                        flux::NAMESPACE,
                        flux::BOOTSTRAP_NAME
                    ),
                    e,
                )
            })?;
    }
    Ok(())
}
