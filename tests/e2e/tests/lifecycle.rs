//! Whole lifecycle runs against the local cloud (issue "The lifecycle", Done when):
//! create → healthy → sync a new commit → healthy at it → teardown → nothing left; a failing
//! HelmRelease failing the execution, releasing the lock and reporting the failure to GitHub;
//! the nightly teardown-all sparing a protected environment.

use std::time::Duration;

use anyhow::Context as _;
use labflow_e2e_tests::{
    console_input, failure, github_input, output, EnvSpec, Lab, BRANCH, POLL_SECONDS,
};
use labflow_testbed::faults::{ObjectFailure, ObjectFaults};
use serde_json::{json, Value};

const KUSTOMIZE_API: &str = "kustomize.toolkit.fluxcd.io/v1";
const HELM_API: &str = "helm.toolkit.fluxcd.io/v2";

/// `lastAppliedRevision` of the root Kustomization, read from the cluster itself.
async fn applied_revision(lab: &Lab, cluster: &str) -> Option<String> {
    let root = lab
        .object(
            cluster,
            KUSTOMIZE_API,
            "Kustomization",
            Some("flux-system"),
            "flux-system",
        )
        .await?;
    root.pointer("/status/lastAppliedRevision")
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_sync_to_a_new_commit_then_teardown_leaves_nothing() -> anyhow::Result<()> {
    let lab = Lab::start(&[EnvSpec::new("lab")]).await?;
    let cluster = "labflow-lab";
    let url = lab.repository_url("lab").await?;
    let first = lab.repository.sha(BRANCH)?;

    // create: healthy at the branch's commit.
    let created = lab.run(github_input("create", "lab", &url, &first)).await?;
    let out =
        output(&created).with_context(|| format!("create did not succeed:\n{}", lab.log()))?;
    assert_eq!(out["health"]["healthy"], json!(true), "{}", lab.log());
    let want = format!("{BRANCH}@sha1:{first}");
    assert_eq!(out["health"]["revision"], json!(want), "{}", lab.log());
    assert_eq!(
        applied_revision(&lab, cluster).await.as_deref(),
        Some(want.as_str()),
        "the cluster's root Kustomization is not at the created commit\n{}",
        lab.log()
    );
    assert_eq!(lab.cluster_status("lab").await?.as_deref(), Some("ACTIVE"));
    assert!(
        created
            .statuses
            .iter()
            .any(|s| s.sha == first && s.state == "success"),
        "no success status for {first}\n{}",
        lab.log()
    );
    assert_eq!(lab.lock("lab").await?, None, "create left the lock held");
    // The run's summary reports its history events against Step Functions' quota (issue 18
    // item 10), counted as GetExecutionHistory lists them.
    let events = created.execution.history.len();
    assert!(events > 0);
    let reported = format!(
        "history events {events} of {}",
        labflow_states::limits::HISTORY_EVENTS
    );
    assert!(
        lab.log().contains(&reported),
        "no {reported:?} in\n{}",
        lab.log()
    );
    // Healthy means the lab answered through the simulated load balancers (issue 24 item 12),
    // and the summary shows each URL.
    for url in [
        "https://bookinfo.lab.example.com/productpage",
        "https://grafana.lab.example.com/login",
        "https://kiali.lab.example.com/kiali/",
        "https://podinfo.lab.example.com/",
    ] {
        let line = format!("url probe      ok {url} (HTTP 200)");
        assert!(lab.log().contains(&line), "no {line:?} in\n{}", lab.log());
    }

    // sync: a new commit on the branch, delivered as a signed push through the webhook.
    let second = lab
        .repository
        .commit_empty(BRANCH, "labflow e2e: a new commit")?;
    assert_ne!(first, second);
    let (input, synced) = lab.push("lab", &second).await?;
    assert_eq!(
        input["action"],
        json!("sync"),
        "the webhook's input: {input}"
    );
    assert_eq!(input["environment"], json!("lab"));
    assert_eq!(input["source"]["sha"], json!(second));
    let out = output(&synced).with_context(|| format!("sync did not succeed:\n{}", lab.log()))?;
    let want = format!("{BRANCH}@sha1:{second}");
    assert_eq!(out["health"]["healthy"], json!(true), "{}", lab.log());
    assert_eq!(out["health"]["revision"], json!(want), "{}", lab.log());
    assert_eq!(
        applied_revision(&lab, cluster).await.as_deref(),
        Some(want.as_str()),
        "the cluster's root Kustomization is not at the pushed commit\n{}",
        lab.log()
    );
    assert!(
        synced
            .statuses
            .iter()
            .any(|s| s.sha == second && s.state == "success"),
        "no success status for {second}\n{}",
        lab.log()
    );
    assert_eq!(lab.lock("lab").await?, None, "sync left the lock held");

    // The lab's Ingresses share one ALB (their IngressGroup): a real load balancer in the AWS
    // emulator, so "nothing left" below means teardown removed it.
    let made = labflow_testbed::aws_leftovers::tagged_for_cluster(
        &lab.cloud.testbed.aws_access(),
        cluster,
    )
    .await
    .map_err(anyhow::Error::msg)?;
    assert_eq!(
        made.iter()
            .filter(|r| r.starts_with("load balancer"))
            .count(),
        1,
        "{made:#?}"
    );

    // teardown: nothing of the environment is left.
    let torn = lab.run(console_input("teardown", "lab")).await?;
    assert!(torn.succeeded(), "teardown did not succeed:\n{}", lab.log());
    assert_eq!(
        lab.leftovers("lab").await?,
        Vec::<String>::new(),
        "{}",
        lab.log()
    );
    assert_eq!(lab.cluster_status("lab").await?, None);
    assert!(lab.cloud.testbed.eks().cluster_names().await.is_empty());
    assert_eq!(lab.lock("lab").await?, None, "teardown left the lock held");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_helm_release_fails_the_execution_releases_the_lock_and_reports_failure(
) -> anyhow::Result<()> {
    let lab = Lab::start(&[EnvSpec::new("lab")]).await?;
    let cluster = "labflow-lab";
    let (namespace, release) = ("kube-system", "metrics-server");
    let url = lab.repository_url("lab").await?;
    let sha = lab.repository.sha(BRANCH)?;

    // As soon as the cluster's API server exists, make the release fail on every reconcile
    // (before Flux has applied it: the controllers apply the mark when it appears).
    let eks = lab.cloud.testbed.eks().clone();
    let injector = tokio::spawn(async move {
        loop {
            if let Some(sim) = eks.kubesim(cluster).await {
                let faults = ObjectFaults::new(sim.store(), &sim.faults());
                return faults.fail(
                    ObjectFailure::new(
                        "HelmRelease",
                        Some(namespace),
                        release,
                        "install retries exhausted (injected by labflow e2e)",
                    )
                    .with_reason("InstallFailed"),
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });

    let report = lab.run(github_input("create", "lab", &url, &sha)).await?;
    injector.await??;
    let (error, cause) =
        failure(&report).with_context(|| format!("the execution did not fail:\n{}", lab.log()))?;
    assert_eq!(error, "labflow.ComponentFailed", "{}", lab.log());
    assert!(
        cause.contains(release),
        "the cause does not name {release}: {cause}"
    );

    // The release really is failed in the cluster.
    let hr = lab
        .object(cluster, HELM_API, "HelmRelease", Some(namespace), release)
        .await
        .with_context(|| format!("HelmRelease {namespace}/{release} not in the cluster"))?;
    let ready = condition(&hr, "Ready").context("no Ready condition")?;
    assert_eq!(ready["status"], json!("False"), "{hr}");
    assert_eq!(ready["reason"], json!("InstallFailed"), "{hr}");

    // The lock is released (the parameter is gone from SSM in the emulator).
    assert_eq!(
        lab.lock("lab").await?,
        None,
        "the failed execution left /labflow/locks/lab held\n{}",
        lab.log()
    );
    assert!(
        report
            .invocations
            .iter()
            .filter(|i| i.function == "run-guard")
            .count()
            >= 2,
        "run-guard was not called to acquire and release"
    );

    // GitHub got a pending status, then a failure status for the commit.
    let repository = labflow_cli::local::push::full_name(&url);
    let mine: Vec<_> = report
        .statuses
        .iter()
        .filter(|s| s.sha == sha && s.repository == repository)
        .collect();
    assert!(
        mine.iter().any(|s| s.state == "pending"),
        "no pending status\n{}",
        lab.log()
    );
    let last = mine.last().context("no commit status posted")?;
    assert_eq!(last.state, "failure", "{}", lab.log());

    // The FAILED event reaches execution-ended too, which leaves a failure the state machine
    // caught alone: its status is posted and its lock free already.
    let ended = report.ended.as_ref().context("no status-change delivery")?;
    assert!(
        !ended.lock_released && ended.commit_status.is_none(),
        "{ended:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nightly_teardown_all_spares_the_protected_environment() -> anyhow::Result<()> {
    let lab = Lab::start(&[EnvSpec::new("alpha"), EnvSpec::new("bravo").protected()]).await?;

    let (alpha, bravo) = tokio::join!(
        lab.run(console_input("create", "alpha")),
        lab.run(console_input("create", "bravo")),
    );
    assert!(alpha?.succeeded(), "create alpha failed:\n{}", lab.log());
    assert!(bravo?.succeeded(), "create bravo failed:\n{}", lab.log());
    assert_eq!(
        lab.cluster_status("alpha").await?.as_deref(),
        Some("ACTIVE")
    );
    assert_eq!(
        lab.cluster_status("bravo").await?.as_deref(),
        Some("ACTIVE")
    );

    let report = lab
        .run(json!({
            "action": "teardown-all",
            "source": {"kind": "schedule"},
            "pollSeconds": POLL_SECONDS,
        }))
        .await?;
    let out =
        output(&report).with_context(|| format!("teardown-all did not succeed:\n{}", lab.log()))?;
    assert_eq!(out["list"]["environments"], json!(["alpha"]), "{out}");
    let skipped = out["list"]["skipped"]
        .as_array()
        .context("no skipped list")?;
    assert!(
        skipped
            .iter()
            .any(|s| s["environment"] == "bravo" && s["reason"] == "protected"),
        "bravo not skipped as protected: {out}"
    );
    let teardowns = out["teardowns"].as_array().context("no teardowns")?;
    assert_eq!(teardowns.len(), 1, "{out}");
    assert_eq!(teardowns[0]["environment"], json!("alpha"), "{out}");

    // alpha is gone, bravo is untouched.
    assert_eq!(
        lab.leftovers("alpha").await?,
        Vec::<String>::new(),
        "{}",
        lab.log()
    );
    assert_eq!(lab.cluster_status("alpha").await?, None);
    assert_eq!(
        lab.cluster_status("bravo").await?.as_deref(),
        Some("ACTIVE")
    );
    assert!(
        lab.leftovers("bravo")
            .await?
            .contains(&"EKS cluster labflow-bravo".to_string()),
        "{}",
        lab.log()
    );
    assert!(
        applied_revision(&lab, "labflow-bravo").await.is_some(),
        "bravo's Flux is gone"
    );
    assert_eq!(lab.lock("alpha").await?, None);
    assert_eq!(lab.lock("bravo").await?, None);

    // Nor does a person's teardown that does not force it (issue 26 item 1).
    let refused = lab.run(console_input("teardown", "bravo")).await?;
    assert!(!refused.succeeded(), "an unforced teardown removed bravo");
    assert_eq!(
        lab.cluster_status("bravo").await?.as_deref(),
        Some("ACTIVE")
    );
    assert_eq!(lab.lock("bravo").await?, None);
    Ok(())
}

/// `healthDeadlineMinutes` holds: a push of a commit that never reaches the cluster (a sha the
/// repository does not have, so Flux never applies it) fails with labflow.DeadlineExceeded when
/// the deadline passes — not at the execution's TimeoutSeconds, four hours later — and the
/// failure path posts a failure status and releases the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lab_that_never_gets_healthy_fails_at_its_health_deadline() -> anyhow::Result<()> {
    let mut lab = Lab::start(&[EnvSpec::new("lab").health_deadline_minutes(1)]).await?;
    // The state machine's clock runs 20 times faster than the simulators' and polls every 10
    // virtual seconds: the one-minute deadline passes after six health checks.
    lab.session.set_time_scale(0.05);
    let url = lab.repository_url("lab").await?;
    let never = "0123456789abcdef0123456789abcdef01234567";
    let mut input = github_input("create", "lab", &url, never);
    input["pollSeconds"] = json!(10);
    let report = lab.run(input).await?;

    let (error, cause) =
        failure(&report).with_context(|| format!("the execution did not fail:\n{}", lab.log()))?;
    assert_eq!(error, "labflow.DeadlineExceeded", "{cause}\n{}", lab.log());
    let virtual_minutes = report.execution.virtual_elapsed.as_secs_f64() / 60.0;
    assert!(
        (1.0..30.0).contains(&virtual_minutes),
        "ended after {virtual_minutes:.1} virtual minutes, expected just past the 1-minute deadline"
    );
    assert_eq!(
        lab.lock("lab").await?,
        None,
        "the lock is still held\n{}",
        lab.log()
    );
    let repository = labflow_cli::local::push::full_name(&url);
    let last = report
        .statuses
        .iter()
        .rfind(|s| s.sha == never && s.repository == repository)
        .context("no commit status posted")?;
    assert_eq!(last.state, "failure", "{}", lab.log());
    Ok(())
}

/// An execution stopped by hand (StopExecution from the console) runs no Catch either: the
/// ABORTED status change, delivered to execution-ended as EventBridge does in AWS, frees the lock
/// and posts the failure status (issue 18 item 8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_stopped_by_hand_still_frees_its_lock_and_reports_failure(
) -> anyhow::Result<()> {
    let lab = Lab::start(&[EnvSpec::new("lab")]).await?;
    let url = lab.repository_url("lab").await?;
    let sha = "fedcba9876543210fedcba9876543210fedcba98";
    // Stopped once run-guard holds the lock (ensure-cluster then waits for the cluster).
    let stop_when_locked = async {
        labflow_testkit::wait::until(
            "the create taking the lock",
            Duration::from_secs(60),
            || lab.lock("lab"),
        )
        .await
        .with_context(|| lab.log())?;
        lab.session.stop_execution();
        anyhow::Ok(())
    };
    let (run, stopped) = tokio::join!(
        lab.run(github_input("create", "lab", &url, sha)),
        stop_when_locked
    );
    stopped?;
    let stopped = run
        .err()
        .with_context(|| format!("the execution was not stopped:\n{}", lab.log()))?;
    let message = stopped.to_string();
    assert!(
        message.contains("stopped by hand (execution-ended: cleaned-up, lock released: true)"),
        "{message}\n{}",
        lab.log()
    );
    assert_eq!(
        lab.lock("lab").await?,
        None,
        "the lock is still held\n{}",
        lab.log()
    );
    let repository = labflow_cli::local::push::full_name(&url);
    let statuses = lab.session.github.statuses();
    let last = statuses
        .iter()
        .rfind(|s| s.sha == sha && s.repository == repository)
        .context("no commit status posted")?;
    // A stop is the run's end, not the commit's fault: GitHub's `error`, a final state like
    // `failure` (github-status refines States.Aborted so).
    assert_eq!(last.state, "error", "{statuses:?}");
    assert!(last.description.contains("States.Aborted"), "{statuses:?}");
    Ok(())
}

/// A teardown does not wait behind a create (issue 19 item 10): run-guard stops the running
/// create (StopExecution), takes the lock and says so; the create ends ABORTED with its failure
/// status, and the teardown leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teardown_preempts_a_running_create() -> anyhow::Result<()> {
    let lab = Lab::start(&[EnvSpec::new("lab")]).await?;
    let url = lab.repository_url("lab").await?;
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let teardown_once_locked = async {
        labflow_testkit::wait::until(
            "the create taking the lock",
            Duration::from_secs(60),
            || lab.lock("lab"),
        )
        .await
        .with_context(|| lab.log())?;
        lab.run(console_input("teardown", "lab")).await
    };
    let (create, teardown) = tokio::join!(
        lab.run(github_input("create", "lab", &url, sha)),
        teardown_once_locked
    );
    let stopped = create
        .err()
        .with_context(|| format!("the create was not stopped:\n{}", lab.log()))?;
    assert!(
        stopped.to_string().contains("was stopped"),
        "{stopped}\n{}",
        lab.log()
    );
    let teardown = teardown?;
    let out = output(&teardown).with_context(|| format!("teardown failed:\n{}", lab.log()))?;
    let guard = &out["guard"];
    assert!(
        guard["takenOver"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("preempted")),
        "the teardown does not say it preempted the create: {guard}"
    );
    assert_eq!(lab.leftovers("lab").await?, Vec::<String>::new());
    assert_eq!(lab.lock("lab").await?, None, "{}", lab.log());
    let repository = labflow_cli::local::push::full_name(&url);
    let last = lab
        .session
        .github
        .statuses()
        .into_iter()
        .rfind(|s| s.sha == sha && s.repository == repository)
        .context("no commit status for the create")?;
    assert_eq!(last.state, "error", "{last:?}");
    Ok(())
}

/// An execution that exceeds its TimeoutSeconds ends at once, outside its failure path (no
/// Catch sees States.Timeout of the execution): EventBridge's status-change event, delivered to
/// execution-ended as in AWS, still frees the lock and posts the failure status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_execution_still_frees_its_lock_and_reports_failure() -> anyhow::Result<()> {
    // The health deadline (24 h, the most a config allows) lies beyond the execution's 4-hour
    // TimeoutSeconds, so the execution times out first.
    let mut lab = Lab::start(&[EnvSpec::new("lab").health_deadline_minutes(24 * 60)]).await?;
    // 4 virtual hours in seconds of real time, polling every 20 virtual minutes.
    lab.session.set_time_scale(0.001);
    let url = lab.repository_url("lab").await?;
    let never = "89abcdef0123456789abcdef0123456789abcdef";
    let mut input = github_input("create", "lab", &url, never);
    input["pollSeconds"] = json!(1200);
    let report = lab.run(input).await?;

    assert!(
        matches!(
            report.execution.status,
            labflow_states::ExecutionStatus::TimedOut { .. }
        ),
        "the execution did not time out:\n{}",
        lab.log()
    );
    assert_eq!(
        lab.lock("lab").await?,
        None,
        "the lock is still held\n{}",
        lab.log()
    );
    let repository = labflow_cli::local::push::full_name(&url);
    let last = report
        .statuses
        .iter()
        .rfind(|s| s.sha == never && s.repository == repository)
        .context("no commit status posted")?;
    assert_eq!(last.state, "failure", "{}", lab.log());
    let ended = report
        .ended
        .as_ref()
        .context("execution-ended was not given the status change")?;
    assert!(ended.lock_released, "{ended:?}");
    Ok(())
}
