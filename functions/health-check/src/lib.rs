//! health-check: is the lab really running, at the revision this execution is about?
//! (DESIGN.md §1, §5)
//!
//! Healthy means all of:
//! - the root Kustomization `flux-system/flux-system` has applied `<branch>@sha1:<target sha>`
//!   (when the execution came from a push; otherwise the revision its GitRepository fetched), and
//!   so has every child Kustomization fed by the same GitRepository;
//! - every object in its inventory, transitively through child Kustomizations, is Current by the
//!   kstatus rules of [`labflow_core::flux::kstatus`] (Secrets are counted, never read);
//! - Flux's controller Deployments are Available;
//! - the mesh posture holds ([`mesh`]): STRICT mTLS mesh-wide, injection on the app namespaces,
//!   a sidecar in every running app pod (`mesh.sidecarsChecked` says whether any pod existed);
//! - every host the inventory's Ingresses request from external-dns has an address record in the
//!   environment's Route53 zone ([`dns`]);
//! - the lab answers: each public URL its Ingresses mark for probing returns 200 with its app's
//!   marker ([`probe`]; requested last, once all of the above holds).
//!
//! Any Failed object once the target revision is applied → `labflow.ComponentFailed` naming each
//! one; anything still progressing → `done: false` (the state machine Waits and calls again); not
//! healthy `healthDeadlineMinutes` after `startedAt` (when the input carries it) →
//! `labflow.DeadlineExceeded`.
//!
//! Cost per call: one list per kind in the tree plus Kustomizations, GitRepositories,
//! Deployments, Namespaces and PeerAuthentications (each once, cluster-wide), pods in the two
//! app namespaces, and the zone's record listing — never a GET per object.

pub mod dns;
pub mod evaluate;
pub mod mesh;
pub mod observe;
pub mod probe;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use labflow_core::aws::AwsClients;
use labflow_core::config;
use labflow_core::contract::{Action, Source, StepInput};
use labflow_core::flux::inventory::ObjectRef;
use labflow_core::flux::{self, BOOTSTRAP_NAME, NAMESPACE};
use labflow_core::StepError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use dns::DnsReport;
pub use evaluate::{Counts, FailedObject, PendingObject};
pub use mesh::MeshReport;
pub use probe::{Prober, UrlProbe};

/// Exactly the IAM actions this function calls (checked against Terraform).
pub const AWS_OPERATIONS: &[&str] = &[
    "ssm:GetParameter",
    "eks:DescribeCluster",
    "route53:ListResourceRecordSets",
];

/// At most this many pending / failed objects are listed in the output (`counts` has the
/// totals, `*Omitted` how many were left out): a Step Functions state output over 256 KiB fails
/// the execution with States.DataLimitExceeded, which no Catch handles (Step Functions service
/// quotas; "Error names" in the error-handling guide).
pub const MAX_LISTED: usize = 50;

/// Each listed object's Flux message is cut to this many characters (a kustomize build error
/// can quote whole manifests).
pub const MAX_MESSAGE_CHARS: usize = 512;

/// The step input plus, optionally, when the wait for health began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Input {
    pub environment: String,
    pub action: Action,
    pub source: Source,
    #[serde(default)]
    pub execution_arn: Option<String>,
    /// When the health wait began (RFC 3339; the state machine's StartHealthWait passes its
    /// `$$.State.EnteredTime`). With it, the step fails with labflow.DeadlineExceeded once
    /// `healthDeadlineMinutes` have passed.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// When this check was entered (`$$.State.EnteredTime` of the HealthCheck state), so the
    /// deadline is measured on one clock, the state machine's; without it, this Lambda's clock.
    #[serde(default)]
    pub checked_at: Option<DateTime<Utc>>,
}

impl From<StepInput> for Input {
    fn from(step: StepInput) -> Self {
        Self {
            environment: step.environment,
            action: step.action,
            source: step.source,
            execution_arn: step.execution_arn,
            started_at: None,
            checked_at: None,
        }
    }
}

/// Clients, built once per cold start.
#[derive(Clone)]
pub struct Ctx {
    pub aws: AwsClients,
    /// A client to use instead of DescribeCluster + EKS token (tests).
    pub kube: Option<kube::Client>,
    /// How the lab's public URLs are requested (the Internet, or the local cloud's load
    /// balancers).
    pub prober: Prober,
}

impl Ctx {
    pub fn new(aws: AwsClients) -> Self {
        Self {
            aws,
            kube: None,
            prober: Prober::internet(),
        }
    }

    pub fn with_prober(mut self, prober: Prober) -> Self {
        self.prober = prober;
        self
    }

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

/// The report of one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    /// Healthy: the state machine moves on. `false`: Wait and call again.
    pub done: bool,
    pub healthy: bool,
    /// What is being waited for: `flux-not-installed`, `waiting-root`, `waiting-revision`,
    /// `progressing`, `waiting-controllers`, `waiting-mesh`, `waiting-dns`, `waiting-urls`, or
    /// `healthy`.
    pub phase: String,
    /// The root Kustomization's `status.lastAppliedRevision`.
    pub revision: Option<String>,
    /// `<branch>@sha1:<sha>` this execution waits for (push executions only).
    pub target_revision: Option<String>,
    /// The root Kustomization and its tree, by kstatus status.
    pub counts: Counts,
    /// Objects not Current yet (the first [`MAX_LISTED`]).
    pub pending: Vec<PendingObject>,
    /// Pending objects not listed.
    #[serde(default)]
    pub pending_omitted: usize,
    /// Failed objects (reported before the target revision is applied; an error after), the
    /// first [`MAX_LISTED`].
    pub failed: Vec<FailedObject>,
    /// Failed objects not listed.
    #[serde(default)]
    pub failed_omitted: usize,
    /// Why Flux's own controllers are not ready (empty when they are).
    pub controller_problems: Vec<String>,
    pub mesh: MeshReport,
    pub dns: DnsReport,
    /// The lab's public URLs and what each answered (requested only once all else is healthy).
    #[serde(default)]
    pub urls: Vec<UrlProbe>,
}

pub async fn handle(ctx: &Ctx, input: Input) -> Result<Output, StepError> {
    let environment = input.environment.as_str();
    config::check_environment_name(environment)?;
    if !matches!(input.action, Action::Create | Action::Sync) {
        return Err(StepError::InvalidInput(format!(
            "health-check runs for create and sync, not {}",
            input.action.as_str()
        )));
    }
    let config = config::load(&ctx.aws.ssm, environment, &ctx.aws.create_checks()).await?;
    let target = input
        .source
        .target_sha()
        .map(|sha| flux::revision_for(&config.flux.repository.branch, sha));
    let client = ctx.kube_client(&config.cluster.name).await?;

    let mut output = Output {
        done: false,
        healthy: false,
        phase: String::new(),
        revision: None,
        target_revision: target.clone(),
        counts: Counts::default(),
        pending: Vec::new(),
        pending_omitted: 0,
        failed: Vec::new(),
        failed_omitted: 0,
        controller_problems: Vec::new(),
        mesh: MeshReport::default(),
        dns: DnsReport {
            hosted_zone_id: config.dns.hosted_zone_id.clone(),
            ..Default::default()
        },
        urls: Vec::new(),
    };

    let Some(kustomizations) = observe::list_all(
        &client,
        flux::KUSTOMIZE_GROUP,
        flux::KUSTOMIZE_VERSION,
        "Kustomization",
    )
    .await?
    else {
        output.phase = "flux-not-installed".into();
        return finish(output, &input, &config);
    };
    let Some(root) = evaluate::root(&kustomizations).cloned() else {
        output.phase = "waiting-root".into();
        return finish(output, &input, &config);
    };
    output.revision = root
        .pointer("/status/lastAppliedRevision")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    let refs = evaluate::tree(&kustomizations);

    // One list per kind: the tree's kinds plus what the other checks need.
    let mut listed = evaluate::Listed::default();
    listed.insert_all(flux::KUSTOMIZE_GROUP, "Kustomization", kustomizations);
    let mut kinds: BTreeMap<(String, String), String> = BTreeMap::new();
    for (group, version, kind) in [
        (flux::SOURCE_GROUP, flux::SOURCE_VERSION, "GitRepository"),
        ("apps", "v1", "Deployment"),
        ("", "v1", "Namespace"),
        ("security.istio.io", "v1", "PeerAuthentication"),
    ] {
        kinds.insert((group.into(), kind.into()), version.into());
    }
    for r in &refs {
        kinds
            .entry((r.group.clone(), r.kind.clone()))
            .or_insert_with(|| r.version.clone());
    }
    let mut unserved = Vec::new();
    for ((group, kind), version) in &kinds {
        if group == flux::KUSTOMIZE_GROUP && kind == "Kustomization" {
            continue;
        }
        if group.is_empty() && kind == "Secret" {
            listed.unread.insert((group.clone(), kind.clone()));
            continue;
        }
        match observe::list_kind(&client, group, version, kind).await? {
            observe::Listing::Items(items) => listed.insert_all(group, kind, items),
            observe::Listing::Unserved => unserved.push((group.clone(), kind.clone())),
            // A kind of a group the reader role does not name: its objects count as their
            // Kustomization's Ready says, like Secrets, which health-check never reads.
            observe::Listing::Forbidden(message) => {
                tracing::warn!(group = %group, kind = %kind, %message, "kind not readable");
                listed.unread.insert((group.clone(), kind.clone()));
            }
        }
    }

    let tree = evaluate::assess_tree(&root, &refs, &listed, target.as_deref());
    list_tree(&mut output, tree);

    let revision_reached = match &target {
        Some(target) => output.revision.as_deref() == Some(target.as_str()),
        None => {
            let fetched = listed
                .get(&bootstrap_ref(flux::SOURCE_GROUP, "GitRepository"))
                .and_then(|g| g.pointer("/status/artifact/revision"))
                .and_then(Value::as_str);
            output.revision.is_some()
                && (fetched.is_none() || fetched == output.revision.as_deref())
        }
    };

    let flux_deployments: Vec<Value> = listed
        .by_kind
        .get(&("apps".to_string(), "Deployment".to_string()))
        .map(|m| {
            m.iter()
                .filter(|((ns, _), _)| ns == NAMESPACE)
                .map(|(_, d)| d.clone())
                .collect()
        })
        .unwrap_or_default();
    output.controller_problems = evaluate::controller_problems(&flux_deployments);

    let all = |group: &str, kind: &str| -> Vec<Value> {
        listed
            .by_kind
            .get(&(group.to_string(), kind.to_string()))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    };
    let peer_authentications = (!unserved.contains(&(
        "security.istio.io".to_string(),
        "PeerAuthentication".to_string(),
    )))
    .then(|| all("security.istio.io", "PeerAuthentication"));
    let mut app_pods = Vec::new();
    for namespace in mesh::APP_NAMESPACES {
        if let Some(pods) = observe::list_in(&client, namespace, "", "v1", "Pod").await? {
            app_pods.extend(pods);
        }
    }
    output.mesh = mesh::evaluate(
        peer_authentications.as_deref(),
        &all("", "Namespace"),
        &app_pods,
    );

    let ingresses: Vec<&Value> = refs
        .iter()
        .filter(|r| r.group == "networking.k8s.io" && r.kind == "Ingress")
        .filter_map(|r| listed.get(r))
        .collect();
    let probe_targets = probe::targets(ingresses.iter().copied());
    let requested = dns::requested_hosts(ingresses);
    output.dns.hosts = requested.keys().cloned().collect();
    if !requested.is_empty() {
        let records = dns::address_records(&ctx.aws.route53, &config.dns.hosted_zone_id).await?;
        output.dns.missing = dns::missing(&requested, &records);
        output.dns.misrouted = dns::misrouted(&requested, &records);
    }

    if revision_reached && !output.failed.is_empty() {
        return Err(StepError::ComponentFailed(failure_message(
            output.revision.as_deref().unwrap_or(""),
            &output.failed,
            output.failed.len() + output.failed_omitted,
        )));
    }
    output.phase = if !revision_reached {
        "waiting-revision"
    } else if output.counts.in_progress > 0 {
        "progressing"
    } else if !output.controller_problems.is_empty() {
        "waiting-controllers"
    } else if !output.mesh.holds() {
        "waiting-mesh"
    } else if !output.dns.missing.is_empty() || !output.dns.misrouted.is_empty() {
        "waiting-dns"
    } else {
        // Healthy means the lab answers: the public URLs last, once everything serving them is.
        for target in &probe_targets {
            output.urls.push(ctx.prober.probe(target).await);
        }
        if output.urls.iter().all(UrlProbe::passes) {
            "healthy"
        } else {
            "waiting-urls"
        }
    }
    .into();
    finish(output, &input, &config)
}

fn bootstrap_ref(group: &str, kind: &str) -> ObjectRef {
    ObjectRef {
        group: group.into(),
        version: String::new(),
        kind: kind.into(),
        namespace: NAMESPACE.into(),
        name: BOOTSTRAP_NAME.into(),
    }
}

/// Mark the report healthy, or enforce the deadline.
fn finish(
    mut output: Output,
    input: &Input,
    config: &config::EnvironmentConfig,
) -> Result<Output, StepError> {
    output.healthy = output.phase == "healthy";
    output.done = output.healthy;
    if !output.healthy {
        if let Some(started) = input.started_at {
            let deadline =
                started + chrono::Duration::minutes(i64::from(config.health_deadline_minutes));
            if input.checked_at.unwrap_or_else(Utc::now) > deadline {
                return Err(StepError::DeadlineExceeded(deadline_message(
                    &output, started, config,
                )));
            }
        }
    }
    tracing::info!(
        phase = %output.phase,
        current = output.counts.current,
        in_progress = output.counts.in_progress,
        failed = output.counts.failed,
        "health-check"
    );
    Ok(output)
}

/// Puts the tree's assessment into the output, bounded (see [`MAX_LISTED`]).
fn list_tree(output: &mut Output, tree: evaluate::TreeReport) {
    output.counts = tree.counts;
    output.pending_omitted = tree.pending.len().saturating_sub(MAX_LISTED);
    output.failed_omitted = tree.failed.len().saturating_sub(MAX_LISTED);
    output.pending = tree
        .pending
        .into_iter()
        .take(MAX_LISTED)
        .map(|mut p| {
            p.message = cut(&p.message);
            p
        })
        .collect();
    output.failed = tree
        .failed
        .into_iter()
        .take(MAX_LISTED)
        .map(|mut f| {
            f.message = cut(&f.message);
            f
        })
        .collect();
}

fn cut(message: &str) -> String {
    if message.chars().count() <= MAX_MESSAGE_CHARS {
        return message.to_string();
    }
    let mut s: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
    s.push('…');
    s
}

fn describe(kind: &str, namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        format!("{kind} {name}")
    } else {
        format!("{kind} {namespace}/{name}")
    }
}

/// `labflow.ComponentFailed`'s message: the failed objects listed (at most [`MAX_LISTED`], each
/// message cut) with their reason and message, out of `total`.
pub fn failure_message(revision: &str, failed: &[FailedObject], total: usize) -> String {
    let listed: Vec<String> = failed
        .iter()
        .take(MAX_LISTED)
        .map(|f| {
            format!(
                "{} ({}): {}",
                describe(&f.kind, &f.namespace, &f.name),
                f.reason,
                cut(&f.message)
            )
        })
        .collect();
    let total = total.max(failed.len());
    let more = total - listed.len();
    let tail = if more > 0 {
        format!("; and {more} more")
    } else {
        String::new()
    };
    format!(
        "{total} Flux component(s) failed at {revision}: {}{tail}",
        listed.join("; ")
    )
}

fn deadline_message(
    output: &Output,
    started: DateTime<Utc>,
    config: &config::EnvironmentConfig,
) -> String {
    let mut message = format!(
        "not healthy {} minutes after {}: phase {}",
        config.health_deadline_minutes,
        started.to_rfc3339(),
        output.phase
    );
    if let Some(p) = output.pending.first() {
        message.push_str(&format!(
            "; {} object(s) not current, e.g. {} ({}): {}",
            output.counts.in_progress,
            describe(&p.kind, &p.namespace, &p.name),
            p.reason,
            p.message
        ));
    }
    for problem in output
        .controller_problems
        .iter()
        .chain(&output.mesh.problems)
    {
        message.push_str("; ");
        message.push_str(problem);
    }
    if !output.dns.missing.is_empty() {
        message.push_str(&format!(
            "; no DNS record for {}",
            output.dns.missing.join(", ")
        ));
    }
    if !output.dns.misrouted.is_empty() {
        message.push_str(&format!(
            "; DNS records not pointing at their load balancer: {}",
            output.dns.misrouted.join("; ")
        ));
    }
    for url in output.urls.iter().filter(|u| !u.passes()) {
        message.push_str(&format!(
            "; {} does not answer as its app: {}",
            url.url,
            url.problem.as_deref().unwrap_or("")
        ));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_output() -> Output {
        Output {
            done: false,
            healthy: false,
            phase: String::new(),
            revision: None,
            target_revision: None,
            counts: Counts::default(),
            pending: Vec::new(),
            pending_omitted: 0,
            failed: Vec::new(),
            failed_omitted: 0,
            controller_problems: Vec::new(),
            mesh: MeshReport::default(),
            dns: DnsReport::default(),
            urls: Vec::new(),
        }
    }

    #[test]
    fn a_large_failing_lab_keeps_the_report_far_below_the_step_functions_payload_quota() {
        // Step Functions fails a state whose output is over 256 KiB with
        // States.DataLimitExceeded, which no Catch handles (service quotas; error handling):
        // 3,000 failed HelmReleases with long Flux messages must not get there.
        let long = "install retries exhausted: ".to_string() + &"x".repeat(4_000);
        let mut tree = evaluate::TreeReport::default();
        for i in 0..3_000 {
            tree.failed.push(FailedObject {
                kind: "HelmRelease".into(),
                namespace: "apps".into(),
                name: format!("release-{i:04}"),
                reason: "InstallFailed".into(),
                message: long.clone(),
            });
        }
        tree.counts.failed = 3_000;
        let mut output = empty_output();
        list_tree(&mut output, tree);
        let v = serde_json::to_value(&output).unwrap_or_default();
        let size = v.to_string().len();
        assert!(size < 64 * 1024, "report is {size} bytes");
        assert_eq!(v["failed"].as_array().map(Vec::len), Some(MAX_LISTED));
        assert_eq!(v["failedOmitted"], serde_json::json!(3_000 - MAX_LISTED));
        assert_eq!(v["counts"]["failed"], serde_json::json!(3_000));
        // The error raised with them is bounded too (it becomes $.error, a state output).
        let message = failure_message("main@sha1:abc", &output.failed, 3_000);
        assert!(
            message.len() < 64 * 1024,
            "message is {} bytes",
            message.len()
        );
        assert!(
            message.starts_with("3000 Flux component(s) failed"),
            "{}",
            &message[..80]
        );
        assert!(message.ends_with(&format!("; and {} more", 3_000 - MAX_LISTED)));
    }
}
