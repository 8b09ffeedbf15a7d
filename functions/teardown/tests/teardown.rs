//! End-to-end tests of the teardown step on the testbed (issue "Step teardown: leave nothing
//! behind"): the real handler against moto, the EKS simulator and kubesim with simulated Flux,
//! AWS load balancer controller and external-dns.

mod support;

use std::time::Duration;

use anyhow::{bail, ensure, Context as _};
use kube::api::{DeleteParams, Patch, PatchParams};
use labflow_core::contract::Source;
use labflow_teardown::{handle, Ctx, Output, Phase};
use labflow_testbed::eks::{EksDelays, EksOptions, HealthIssue};
use labflow_testbed::faults::{Action, ObjectFaults, Rule, Side, STUCK_FINALIZER};
use labflow_testbed::TestbedOptions;
use serde_json::json;
use support::crash::Crash;
use support::*;

const GRACE_MINUTES: i64 = 10;

fn grace() -> chrono::Duration {
    chrono::Duration::minutes(GRACE_MINUTES)
}

/// Records of the zone that are neither this environment's registry entries nor its hosts.
fn foreign(
    lab: &Lab,
    records: &[(String, String, Vec<String>)],
) -> Vec<(String, String, Vec<String>)> {
    let marker = format!("external-dns/owner={},", lab.owner);
    let ours: Vec<String> = ["podinfo", "nlb", "stale"]
        .iter()
        .map(|h| format!("{h}.{}.", lab.domain))
        .collect();
    records
        .iter()
        .filter(|(name, _, values)| {
            !ours.contains(name) && !values.iter().any(|v| v.contains(&marker))
        })
        .cloned()
        .collect()
}

fn position(removed: &[String], what: &str) -> anyhow::Result<usize> {
    removed
        .iter()
        .position(|r| r == what)
        .with_context(|| format!("{what:?} not in {removed:#?}"))
}

// ---------------------------------------------------------------------------------------------
// 1. Everything goes, and only what is ours.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tears_down_everything_and_only_what_is_ours() -> anyhow::Result<()> {
    let lab = Lab::start("td-e2e").await?;
    lab.seed_foreign_records().await?;
    let before = zone_records(&lab.aws, &lab.zone_id).await?;
    let foreign_before = foreign(&lab, &before);
    ensure!(
        foreign_before
            .iter()
            .any(|(n, _, _)| n.starts_with("other.")),
        "the other environment's records are seeded: {foreign_before:#?}"
    );
    ensure!(
        !mentions_owner(&before, &lab.owner).is_empty(),
        "external-dns wrote registry entries of this environment: {before:#?}"
    );

    // Kept past the cluster's deletion, to see what was left in it (as on a cluster that is
    // kept, `labflow local down --kubeconfig`).
    let sim = lab
        .tb
        .eks()
        .kubesim(&lab.cluster)
        .await
        .context("no kubesim")?;
    sim.store()
        .put(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "someone-elses"}, "rules": []}),
        )
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;

    let clock = TestClock::default();
    let run = converge(&lab, &lab.ctx(&clock, grace()), None, 300).await?;

    let left = lab.leftovers().await?;
    ensure!(left.is_empty(), "left behind: {left:#?}");
    // Flux's cluster-scoped RBAC went with it (issue 19 item 7); RBAC labflow did not apply stays.
    let roles: Vec<String> = ["ClusterRole", "ClusterRoleBinding"]
        .iter()
        .flat_map(|kind| {
            sim.store()
                .list_objects("rbac.authorization.k8s.io/v1", kind, None)
        })
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    ensure!(
        roles == ["someone-elses"],
        "cluster RBAC after teardown: {roles:?}"
    );
    drop(sim);
    // The load balancers went because their controller processed the Ingress/Service
    // finalizers: nothing removed those finalizers by hand.
    let removed = run.removed();
    ensure!(
        !removed.iter().any(|r| r.contains("k8s.aws/resources")),
        "a load balancer finalizer was removed by teardown: {removed:#?}"
    );
    // Reverse dependsOn: apps (the Ingress, Service, PVC) before the controllers.
    let apps = position(&removed, "Kustomization flux-system/apps")?;
    let controllers = position(&removed, "Kustomization flux-system/controllers")?;
    ensure!(apps < controllers, "apps must go first: {removed:#?}");
    ensure!(
        run.seeded_stale_records
            && removed
                .iter()
                .any(|r| r.contains(&format!("stale.{}", lab.domain))),
        "records external-dns left behind are removed by owner id: {removed:#?}"
    );
    for part in [
        "node group general",
        "add-on aws-ebs-csi-driver",
        "EKS cluster td-e2e-cluster",
    ] {
        ensure!(
            removed.iter().any(|r| r == part),
            "{part} not removed: {removed:#?}"
        );
    }
    ensure!(
        removed
            .iter()
            .any(|r| r == &format!("access entry {ADMIN_PRINCIPAL}")),
        "access entry not removed: {removed:#?}"
    );
    let after = zone_records(&lab.aws, &lab.zone_id).await?;
    pretty_assertions::assert_eq!(foreign(&lab, &after), foreign_before);
    pretty_assertions::assert_eq!(after, foreign_before);

    // Called again on nothing: done at once, nothing deleted.
    let again = handle(&lab.ctx(&clock, grace()), lab.input()).await?;
    ensure!(again.done && again.removed.is_empty(), "{again:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. The naive order strands the Ingress; teardown does not paper over it.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn naive_order_strands_the_ingress() -> anyhow::Result<()> {
    let lab = Lab::start("td-naive").await?;
    let k = &lab.kube;
    // What a hand-run teardown does: stop the root, then delete in creation order.
    api(k, &kustomizations(), Some("flux-system"))
        .patch(
            "flux-system",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": true}})),
        )
        .await?;
    api(k, &kustomizations(), Some("flux-system"))
        .delete("controllers", &DeleteParams::background())
        .await?;
    labflow_testkit::wait::until(
        "the load balancer controller's Deployment gone",
        Duration::from_secs(20),
        || async {
            let list = api(k, &deployments(), None)
                .list(
                    &kube::api::ListParams::default()
                        .labels("app.kubernetes.io/name=aws-load-balancer-controller"),
                )
                .await?;
            Ok(list.items.is_empty().then_some(()))
        },
    )
    .await?;
    api(k, &kustomizations(), Some("flux-system"))
        .delete("apps", &DeleteParams::background())
        .await?;
    labflow_testkit::wait::until(
        "the Ingress terminating",
        Duration::from_secs(20),
        || async {
            Ok(get(k, &ingresses(), Some("web"), "podinfo")
                .await?
                .filter(|i| i.pointer("/metadata/deletionTimestamp").is_some()))
        },
    )
    .await?;
    // Well past the controllers' resync: nobody will remove the finalizer.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ingress = get(k, &ingresses(), Some("web"), "podinfo")
        .await?
        .context("the Ingress is gone after all")?;
    let finalizers = ingress
        .pointer("/metadata/finalizers")
        .cloned()
        .unwrap_or_default();
    ensure!(
        finalizers == json!(["ingress.k8s.aws/resources"]),
        "stuck on the load balancer finalizer: {ingress:#}"
    );
    let balancers = lab.controllers.load_balancers().list();
    ensure!(
        balancers.iter().any(|lb| lb.owner == "ingress/web/podinfo"),
        "the ALB is still there: {balancers:?}"
    );

    // Teardown on this cluster waits, then names the finalizer instead of removing it (that
    // would orphan the load balancer).
    let clock = TestClock::default();
    let ctx = lab.ctx(&clock, grace());
    let first = handle(&ctx, lab.input()).await?;
    ensure!(!first.done, "{first:?}");
    clock.advance(grace() + chrono::Duration::minutes(1));
    let err = match handle(&ctx, lab.input()).await {
        Ok(out) => bail!("expected ComponentFailed past the grace period, got {out:?}"),
        Err(err) => err,
    };
    ensure!(err.name() == "labflow.ComponentFailed", "{err:?}");
    let message = err.to_string();
    ensure!(
        message.contains("Ingress web/podinfo") && message.contains("ingress.k8s.aws/resources"),
        "names the Ingress and its finalizer: {message}"
    );
    ensure!(
        get(k, &ingresses(), Some("web"), "podinfo")
            .await?
            .is_some()
            && lab
                .controllers
                .load_balancers()
                .list()
                .iter()
                .any(|lb| lb.owner == "ingress/web/podinfo"),
        "teardown removed the finalizer and orphaned the ALB"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. Faults: a crash after every single write; HTTP 500 on the Nth write request.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn converges_after_a_crash_after_every_write() -> anyhow::Result<()> {
    let lab = Lab::start("td-crash").await?;
    lab.seed_foreign_records().await?;
    let foreign_before = foreign(&lab, &zone_records(&lab.aws, &lab.zone_id).await?);
    let crash = Crash::new();
    let clock = TestClock::default();
    let mut ctx = ctx(crash.aws_clients(&lab.aws), &clock, grace());
    ctx.kube = Some(crash.kube_client(lab.kube_config.clone())?);

    let run = converge(&lab, &ctx, Some(&crash), 400).await?;

    let left = lab.leftovers().await?;
    ensure!(left.is_empty(), "left behind: {left:#?}");
    pretty_assertions::assert_eq!(zone_records(&lab.aws, &lab.zone_id).await?, foreign_before);
    // Every write of the run but the last of each call was followed by a crash: both sides.
    let crashed_after = crash.crashed_after();
    ensure!(
        run.crashed_calls == crashed_after.len(),
        "{run:?} {crashed_after:#?}"
    );
    for what in [
        "kubernetes PATCH",
        "kubernetes DELETE",
        "aws EKS:Delete",
        "aws Route 53:ChangeResourceRecordSets",
        "aws SSM:DeleteParameter",
    ] {
        ensure!(
            crashed_after.iter().any(|w| w.starts_with(what)),
            "no crash after {what}: {crashed_after:#?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn converges_through_http_500_on_writes() -> anyhow::Result<()> {
    let lab = Lab::start("td-http500").await?;
    let kube_faults = lab
        .tb
        .eks()
        .kubesim(&lab.cluster)
        .await
        .context("no kubesim")?
        .faults();
    let eks_faults = lab.tb.eks().faults();
    // The 1st, 3rd, 5th, ... write of each kind fails with HTTP 500: every write teardown makes
    // fails once at least once per kind, and the retry that follows goes through.
    for n in (1..=41).step_by(2) {
        for method in ["PATCH", "DELETE"] {
            kube_faults.add(
                Rule::new(Side::Kubernetes, Action::Status { code: 500 })
                    .method(method)
                    .nth(n),
            );
        }
        for method in ["DELETE", "POST"] {
            eks_faults.add(
                Rule::new(Side::Aws, Action::Status { code: 500 })
                    .target("eks")
                    .method(method)
                    .nth(n),
            );
        }
    }
    let clock = TestClock::default();
    // Without SDK retries, so the handler sees every injected error (an unarmed crash switch).
    let ctx = ctx(Crash::new().aws_clients(&lab.aws), &clock, grace());

    let mut errors = Vec::new();
    let mut done = None;
    for _ in 0..400 {
        match handle(&ctx, lab.input()).await {
            Ok(out) if out.done => {
                done = Some(out);
                break;
            }
            Ok(_) => {}
            Err(err) if err.name() == "labflow.Transient" => errors.push(err.to_string()),
            Err(err) => bail!("teardown failed: {} {err}", err.name()),
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    ensure!(done.is_some(), "not done; errors: {errors:#?}");
    let left = lab.leftovers().await?;
    ensure!(left.is_empty(), "left behind: {left:#?}");
    // The kubesim may share the EKS simulator's plan: tell the rules apart by side.
    let fired = |plan: &labflow_testbed::faults::FaultPlan, side: Side| -> Vec<String> {
        plan.rules()
            .into_iter()
            .filter(|(_, rule, fired)| rule.side == side && *fired > 0)
            .map(|(_, rule, _)| format!("{:?} #{:?}", rule.method, rule.nth))
            .collect()
    };
    let (kube_fired, eks_fired) = (
        fired(&kube_faults, Side::Kubernetes),
        fired(&eks_faults, Side::Aws),
    );
    ensure!(
        kube_fired.iter().any(|f| f.contains("PATCH"))
            && kube_fired.iter().any(|f| f.contains("DELETE")),
        "Kubernetes writes failed: {kube_fired:?}"
    );
    ensure!(
        eks_fired.iter().any(|f| f.contains("DELETE")),
        "EKS writes failed: {eks_fired:?}"
    );
    ensure!(
        errors.len() >= kube_fired.len() + eks_fired.len(),
        "every injected 500 reached the handler as a transient error: {errors:#?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 4. A finalizer nobody removes ends the run, naming it, after the grace period.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stuck_custom_finalizer_fails_after_the_grace_period() -> anyhow::Result<()> {
    let lab = Lab::start("td-stuck").await?;
    {
        let sim = lab
            .tb
            .eks()
            .kubesim(&lab.cluster)
            .await
            .context("no kubesim")?;
        ObjectFaults::new(sim.store(), &sim.faults())
            .add_stuck_finalizer("ConfigMap", Some("web"), "settings")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let clock = TestClock::default();
    let ctx = lab.ctx(&clock, grace());
    // Within the grace period teardown waits on the ConfigMap and deletes nothing further.
    let mut waiting_calls = 0;
    let mut last: Option<Output> = None;
    for _ in 0..100 {
        let out = handle(&ctx, lab.input()).await?;
        ensure!(!out.done, "done with a ConfigMap stuck: {out:?}");
        let stuck_on_it = out.waiting_on.iter().any(|w| w.contains("web"));
        if stuck_on_it && out.removed.is_empty() {
            waiting_calls += 1;
            if waiting_calls == 3 {
                last = Some(out);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last = last.context("teardown never settled on waiting for web")?;
    ensure!(last.phase == Phase::Workloads, "{last:?}");
    ensure!(
        get(&lab.kube, &configmaps(), Some("web"), "settings")
            .await?
            .is_some_and(|c| c.pointer("/metadata/deletionTimestamp").is_some()),
        "the ConfigMap is terminating"
    );

    clock.advance(grace() + chrono::Duration::minutes(1));
    for attempt in 0..2 {
        let err = match handle(&ctx, lab.input()).await {
            Ok(out) => bail!("call {attempt} past the grace period: {out:?}"),
            Err(err) => err,
        };
        ensure!(err.name() == "labflow.ComponentFailed", "{err:?}");
        let message = err.to_string();
        ensure!(
            message.contains("ConfigMap web/settings") && message.contains(STUCK_FINALIZER),
            "names the object and the finalizer: {message}"
        );
    }
    // Nothing was forced: the finalizer is still there, the cluster still exists.
    let cm = get(&lab.kube, &configmaps(), Some("web"), "settings")
        .await?
        .context("ConfigMap gone")?;
    ensure!(
        cm.pointer("/metadata/finalizers")
            .is_some_and(|f| f == &json!([STUCK_FINALIZER])),
        "{cm:#}"
    );
    ensure!(
        lab.tb.eks().cluster_names().await.contains(&lab.cluster),
        "the cluster must not be deleted under a failed teardown"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 5. Clusters that never finished creating.

/// An environment with only an EKS cluster (and whatever `prepare` adds); its config in SSM.
async fn bare_environment(
    tb: &labflow_testbed::Testbed,
    env: &str,
    protected: bool,
) -> anyhow::Result<(labflow_core::aws::AwsClients, String)> {
    let aws = aws_clients(tb).await;
    let cluster = format!("{env}-cluster");
    let domain = format!("{env}.example.com");
    let zone_id = hosted_zone(&aws, &domain).await?;
    seed_unrelated_records(&aws, &zone_id, &domain).await?;
    put_config(
        &aws,
        env,
        &config(
            &cluster,
            &zone_id,
            &domain,
            &format!("{env}-owner"),
            protected,
        ),
    )
    .await?;
    Ok((aws, cluster))
}

async fn converge_bare(ctx: &Ctx, env: &str, max_calls: usize) -> anyhow::Result<Vec<Output>> {
    let mut outputs = Vec::new();
    for _ in 0..max_calls {
        let out = handle(ctx, input(env, console())).await?;
        let done = out.done;
        outputs.push(out);
        if done {
            return Ok(outputs);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("not done after {max_calls} calls: {:?}", outputs.last())
}

/// A lab whose create stopped between ensure-cluster (which makes clusters without
/// bootstrapClusterCreatorAdminPermissions) and cluster-access: nobody has an access entry, EKS
/// answers teardown's token with 401. Teardown gives itself access, removes the load balancer
/// inside, then everything (issue 19 item 5).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tears_down_a_cluster_nobody_was_given_access_to() -> anyhow::Result<()> {
    let tb = testbed().await?;
    let env = "td-noaccess";
    let (aws, cluster) = bare_environment(&tb, env, false).await?;
    aws.eks
        .create_cluster()
        .name(&cluster)
        .role_arn(ROLE)
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-0a1b2c3d4e5f60001")
                .subnet_ids("subnet-0a1b2c3d4e5f60002")
                .build(),
        )
        .access_config(
            aws_sdk_eks::types::CreateAccessConfigRequest::builder()
                .authentication_mode(aws_sdk_eks::types::AuthenticationMode::Api)
                .bootstrap_cluster_creator_admin_permissions(false)
                .build(),
        )
        .tags("labflow:environment", env)
        .tags("labflow:managed-by", "labflow")
        .send()
        .await?;
    let sim = labflow_testkit::wait::until("cluster ACTIVE", Duration::from_secs(10), || async {
        Ok(tb.eks().kubesim(&cluster).await)
    })
    .await?;
    // A LoadBalancer Service someone's workload made: its NLB costs money until it goes.
    for object in [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb", "namespace": "web"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}),
    ] {
        sim.store()
            .put(object)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    drop(sim);

    let clock = TestClock::default();
    let outputs = converge_bare(&ctx(aws.clone(), &clock, grace()), env, 50).await?;
    ensure!(
        outputs[0]
            .waiting_on
            .iter()
            .any(|w| w.contains("access entry teardown gave its role")),
        "teardown gave itself access first: {outputs:?}"
    );
    ensure!(
        outputs
            .iter()
            .any(|o| o.removed.iter().any(|r| r == "Service web/lb")),
        "the load balancer Service was removed: {outputs:?}"
    );
    let left = eks_leftovers(&aws, &cluster).await?;
    ensure!(left.is_empty(), "{left:?}");
    Ok(())
}

/// The cluster was deleted by hand (console, eksctl) while its load balancers and volume were
/// up: nothing inside the cluster can remove them any more, and they cost money and block
/// `terraform destroy` of the VPC. Teardown finds them by the tags the controllers gave them and
/// deletes them (issue 19 item 9).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sweeps_what_a_cluster_deleted_by_hand_left_in_aws() -> anyhow::Result<()> {
    let lab = Lab::start("td-sweep").await?;
    let made = lab.aws_resources().await?;
    let eks = &lab.aws.eks;
    eks.delete_nodegroup()
        .cluster_name(&lab.cluster)
        .nodegroup_name(NODEGROUP)
        .send()
        .await?;
    eks.delete_addon()
        .cluster_name(&lab.cluster)
        .addon_name(ADDON)
        .send()
        .await?;
    labflow_testkit::wait::until(
        "node group and add-on gone",
        Duration::from_secs(20),
        || async {
            let groups = eks
                .list_nodegroups()
                .cluster_name(&lab.cluster)
                .send()
                .await?;
            let addons = eks.list_addons().cluster_name(&lab.cluster).send().await?;
            Ok((groups.nodegroups().is_empty() && addons.addons().is_empty()).then_some(()))
        },
    )
    .await?;
    eks.delete_cluster().name(&lab.cluster).send().await?;
    labflow_testkit::wait::until("cluster gone", Duration::from_secs(20), || async {
        Ok((!lab.tb.eks().cluster_names().await.contains(&lab.cluster)).then_some(()))
    })
    .await?;
    let orphaned = lab.aws_resources().await?;
    ensure!(
        orphaned == made,
        "deleting the cluster removes none of it: {made:#?} vs {orphaned:#?}"
    );

    let clock = TestClock::default();
    let run = converge(&lab, &lab.ctx(&clock, grace()), None, 50).await?;
    let left = lab.leftovers().await?;
    ensure!(left.is_empty(), "left behind: {left:#?}");
    let removed: Vec<&String> = run.outputs.iter().flat_map(|o| &o.removed).collect();
    for kind in [
        "load balancer arn:",
        "target group arn:",
        "security group sg-",
        "EBS volume vol-",
    ] {
        ensure!(
            removed.iter().any(|r| r.starts_with(kind)),
            "the report names each deleted {kind}: {removed:#?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tears_down_a_cluster_still_creating() -> anyhow::Result<()> {
    init();
    let mut options = TestbedOptions {
        eks: EksOptions::default(),
        ..TestbedOptions::default()
    };
    options.eks.delays = EksDelays {
        cluster_create: Duration::from_secs(600),
        ..EksDelays::default()
    };
    let tb = labflow_testbed::Testbed::start(options).await?;
    let env = "td-creating";
    let (aws, cluster) = bare_environment(&tb, env, false).await?;
    aws.eks
        .create_cluster()
        .name(&cluster)
        .role_arn(ROLE)
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-0a1b2c3d4e5f60001")
                .subnet_ids("subnet-0a1b2c3d4e5f60002")
                .build(),
        )
        .tags("labflow:environment", env)
        .tags("labflow:managed-by", "labflow")
        .send()
        .await?;
    let status = aws.eks.describe_cluster().name(&cluster).send().await?;
    ensure!(
        status.cluster().and_then(|c| c.status())
            == Some(&aws_sdk_eks::types::ClusterStatus::Creating),
        "{status:?}"
    );
    let clock = TestClock::default();
    let outputs = converge_bare(&ctx(aws.clone(), &clock, grace()), env, 50).await?;
    ensure!(
        outputs[0]
            .removed
            .contains(&format!("EKS cluster {cluster}")),
        "deleted while CREATING: {outputs:?}"
    );
    let left = eks_leftovers(&aws, &cluster).await?;
    ensure!(left.is_empty(), "{left:?}");
    ensure!(!tb.eks().cluster_names().await.contains(&cluster));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tears_down_a_failed_cluster() -> anyhow::Result<()> {
    let tb = testbed().await?;
    let env = "td-failed";
    let (aws, cluster) = bare_environment(&tb, env, false).await?;
    create_cluster(&aws, env, &cluster, true).await?;
    create_cluster_parts(&aws, &cluster).await?;
    tb.eks()
        .force_cluster_status(
            &cluster,
            "FAILED",
            &[HealthIssue::new(
                "ClusterUnreachable",
                "control plane failed",
            )],
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let clock = TestClock::default();
    let outputs = converge_bare(&ctx(aws.clone(), &clock, grace()), env, 100).await?;
    let removed: Vec<&String> = outputs.iter().flat_map(|o| o.removed.iter()).collect();
    ensure!(
        removed.iter().any(|r| *r == "node group general")
            && removed
                .iter()
                .any(|r| *r == &format!("EKS cluster {cluster}")),
        "{removed:#?}"
    );
    let left = eks_leftovers(&aws, &cluster).await?;
    ensure!(left.is_empty(), "{left:?}");
    ensure!(!tb.eks().cluster_names().await.contains(&cluster));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 6. Refusals.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refuses_a_scheduled_teardown_of_a_protected_environment() -> anyhow::Result<()> {
    let tb = testbed().await?;
    let env = "td-protected";
    let (aws, cluster) = bare_environment(&tb, env, true).await?;
    create_cluster(&aws, env, &cluster, true).await?;
    let clock = TestClock::default();
    let ctx = ctx(aws.clone(), &clock, grace());
    let err = match handle(&ctx, input(env, Source::Schedule)).await {
        Ok(out) => bail!("a scheduled teardown of a protected environment ran: {out:?}"),
        Err(err) => err,
    };
    ensure!(err.name() == "labflow.InvalidInput", "{err:?}");
    ensure!(err.to_string().contains("protected"), "{err}");
    let left = eks_leftovers(&aws, &cluster).await?;
    ensure!(
        left == vec![
            format!("cluster {cluster} Some(Active)"),
            format!("access entry {}", tb.principal()),
        ],
        "nothing touched: {left:?}"
    );
    // A person may still tear it down.
    let out = handle(&ctx, input(env, console())).await?;
    ensure!(
        out.removed.contains(&format!("EKS cluster {cluster}")),
        "{out:?}"
    );
    Ok(())
}

/// On a cluster where someone else installed Flux, teardown removes nothing of it: no
/// controller, no CRD, no namespace (issue 19 item 6).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refuses_to_remove_a_flux_labflow_did_not_install() -> anyhow::Result<()> {
    let tb = testbed().await?;
    let env = "td-foreignflux";
    let (aws, cluster) = bare_environment(&tb, env, true).await?;
    create_cluster(&aws, env, &cluster, true).await?;
    let sim = tb.eks().kubesim(&cluster).await.context("no kubesim")?;
    for object in [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system",
            "labels": {"app.kubernetes.io/instance": "flux-system"}}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "kustomize-controller", "namespace": "flux-system"},
            "spec": {"selector": {"matchLabels": {"app": "k"}},
                "template": {"metadata": {"labels": {"app": "k"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}),
    ] {
        sim.store()
            .put(object)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    let clock = TestClock::default();
    let err = match handle(&ctx(aws.clone(), &clock, grace()), input(env, console())).await {
        Ok(out) => bail!("teardown went ahead on someone else's Flux: {out:?}"),
        Err(err) => err,
    };
    ensure!(err.name() == "labflow.NotOwned", "{err:?}");
    ensure!(err.to_string().contains("Namespace flux-system"), "{err}");
    ensure!(
        sim.store()
            .get_object(
                "apps/v1",
                "Deployment",
                Some("flux-system"),
                "kustomize-controller"
            )
            .is_some(),
        "their controller was deleted"
    );
    ensure!(
        eks_leftovers(&aws, &cluster)
            .await?
            .contains(&format!("cluster {cluster} Some(Active)")),
        "the cluster was touched"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refuses_a_cluster_without_ownership_tags() -> anyhow::Result<()> {
    let tb = testbed().await?;
    let env = "td-notowned";
    let (aws, cluster) = bare_environment(&tb, env, false).await?;
    create_cluster(&aws, env, &cluster, false).await?;
    aws.eks
        .create_nodegroup()
        .cluster_name(&cluster)
        .nodegroup_name(NODEGROUP)
        .node_role(NODE_ROLE)
        .subnets("subnet-0a1b2c3d4e5f60001")
        .send()
        .await?;
    let clock = TestClock::default();
    let ctx = ctx(aws.clone(), &clock, grace());
    for source in [console(), Source::Schedule] {
        let err = match handle(&ctx, input(env, source)).await {
            Ok(out) => bail!("teardown of a cluster that is not ours ran: {out:?}"),
            Err(err) => err,
        };
        ensure!(err.name() == "labflow.NotOwned", "{err:?}");
        ensure!(err.to_string().contains(&cluster), "{err}");
    }
    let left = eks_leftovers(&aws, &cluster).await?;
    ensure!(
        left == vec![
            format!("cluster {cluster} Some(Active)"),
            format!("node group {NODEGROUP}"),
            // EKS's own entry for the creator (bootstrapClusterCreatorAdminPermissions).
            format!("access entry {}", tb.principal()),
        ],
        "nothing touched: {left:?}"
    );
    let writes = tb.eks().write_requests();
    ensure!(
        !writes.iter().any(|w| w.operation.starts_with("Delete")),
        "{writes:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 7. Route53 as it really answers (issue 18 item 13).

/// A record of the environment disappears between teardown's listing and its DELETE (another
/// writer — external-dns finishing its own cleanup, a person — removed it). Route53 refuses the
/// whole batch with InvalidChangeBatch ("... but it was not found"; the testbed's rule layer
/// answers as Route53 does); teardown must list again and delete what is still there, not fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_record_that_vanishes_before_the_delete_does_not_fail_the_teardown() -> anyhow::Result<()>
{
    let tb = testbed().await?;
    let env = "td-vanish";
    let aws = aws_clients(&tb).await;
    let domain = format!("{env}.example.com");
    let owner = format!("{env}-owner");
    let zone_id = hosted_zone(&aws, &domain).await?;
    seed_unrelated_records(&aws, &zone_id, &domain).await?;
    for host in ["web", "api"] {
        seed_owned_record(&aws, &zone_id, &format!("{host}.{domain}"), &owner).await?;
    }
    put_config(
        &aws,
        env,
        &config(&format!("{env}-cluster"), &zone_id, &domain, &owner, false),
    )
    .await?;
    let before = zone_records(&aws, &zone_id).await?;
    // Two registry entries per host: `cname-` for the A ALIAS, `aaaa-` for the AAAA ALIAS.
    ensure!(mentions_owner(&before, &owner).len() == 4, "{before:#?}");

    tb.moto()
        .route53_faults()
        .vanish_before_next_change(&zone_id, &format!("web.{domain}"), "A");
    let clock = TestClock::default();
    let ctx = ctx(aws.clone(), &clock, grace());
    let out = handle(&ctx, input(env, console()))
        .await
        .map_err(|err| anyhow::anyhow!("teardown failed: {} {err}", err.name()))?;
    ensure!(out.done, "{out:?}");
    for gone in [
        format!("DNS A api.{domain}."),
        format!("DNS AAAA api.{domain}."),
        format!("DNS AAAA web.{domain}."),
        format!("DNS TXT labflow-cname-api.{domain}."),
        format!("DNS TXT labflow-aaaa-api.{domain}."),
        format!("DNS TXT labflow-cname-web.{domain}."),
        format!("DNS TXT labflow-aaaa-web.{domain}."),
    ] {
        ensure!(out.removed.contains(&gone), "{gone} not in {out:?}");
    }
    ensure!(
        !out.removed.contains(&format!("DNS A web.{domain}.")),
        "teardown did not delete what someone else removed: {out:?}"
    );
    let after = zone_records(&aws, &zone_id).await?;
    ensure!(mentions_owner(&after, &owner).is_empty(), "{after:#?}");
    let unrelated: Vec<_> = before
        .iter()
        .filter(|(name, _, values)| {
            !values.iter().any(|v| v.contains(&owner))
                && !name.starts_with("web.")
                && !name.starts_with("api.")
        })
        .cloned()
        .collect();
    pretty_assertions::assert_eq!(after, unrelated);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 8. The environment's own names only (issue 26 item 10).

/// A manifest in the lab (any Ingress host) can make its external-dns write a record outside the
/// environment's domain, in the shared zone, under the environment's owner id. Teardown deletes
/// only names in the environment's domain; the rest is not the environment's to remove.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn owned_records_outside_the_environments_domain_are_left_alone() -> anyhow::Result<()> {
    let tb = testbed().await?;
    let env = "td-outside";
    let aws = aws_clients(&tb).await;
    let zone = format!("{env}.example.com");
    let domain = format!("lab.{zone}");
    let owner = format!("{env}-owner");
    let zone_id = hosted_zone(&aws, &zone).await?;
    seed_owned_record(&aws, &zone_id, &format!("web.{domain}"), &owner).await?;
    seed_owned_record(&aws, &zone_id, &format!("www.{zone}"), &owner).await?;
    put_config(
        &aws,
        env,
        &config(&format!("{env}-cluster"), &zone_id, &domain, &owner, false),
    )
    .await?;
    let clock = TestClock::default();
    let ctx = ctx(aws.clone(), &clock, grace());
    let out = handle(&ctx, input(env, console()))
        .await
        .map_err(|err| anyhow::anyhow!("teardown failed: {} {err}", err.name()))?;
    ensure!(out.done, "{out:?}");
    ensure!(
        out.removed.contains(&format!("DNS A web.{domain}.")),
        "{out:?}"
    );
    let after = zone_records(&aws, &zone_id).await?;
    let names: Vec<&str> = after.iter().map(|(name, _, _)| name.as_str()).collect();
    ensure!(
        names.contains(&format!("www.{zone}.").as_str())
            && names.contains(&format!("labflow-cname-www.{zone}.").as_str()),
        "teardown deleted a record outside {domain}: {after:#?}"
    );
    ensure!(
        !names.iter().any(|n| n.ends_with(&format!("{domain}."))),
        "{after:#?}"
    );
    Ok(())
}
