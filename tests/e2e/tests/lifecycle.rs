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
    Ok(())
}
