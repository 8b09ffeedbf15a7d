//! ensure-cluster end to end against the testbed: the EKS simulator (non-zero CREATING /
//! UPDATING delays, real REST-JSON protocol through aws-sdk-eks) and moto for SSM.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context as _};
use labflow_ensure_cluster::handle;
use labflow_testbed::eks::HealthIssue;
use pretty_assertions::assert_eq;
use serde_json::{json, Value};
use support::crashing_eks::CrashingEks;
use support::*;

const CONVERGE: Duration = Duration::from_secs(20);

fn count(ops: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for op in ops {
        *m.entry(op.clone()).or_default() += 1;
    }
    m
}

/// The writes a clean run of the lab config makes: the cluster, then (once it is ACTIVE) five
/// add-ons, one node group and five Pod Identity associations.
fn clean_run_writes() -> BTreeMap<String, usize> {
    [
        ("CreateCluster", 1),
        ("CreateAddon", 5),
        ("CreateNodegroup", 1),
        ("CreatePodIdentityAssociation", 5),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_from_nothing_and_a_second_run_changes_nothing() -> anyhow::Result<()> {
    let tb = testbed().await?;
    let ctx = ctx(&tb, tb.eks_endpoint()).await;
    let env = unique_env("fresh");
    seed(&ctx, &env, &lab_config(&env)?).await?;

    let run = converge(&ctx, &env, CONVERGE).await?;
    let first = &run.outputs[0];
    assert_eq!(first.phase, labflow_ensure_cluster::Phase::ClusterCreating);
    assert!(!first.done);
    assert_eq!(first.changes.len(), 1, "{:?}", first.changes);
    assert_eq!(first.changes[0].action, "create");
    // EKS takes its time: the state machine had to come back more than once.
    let waits = run.outputs.iter().filter(|o| !o.done).count();
    assert!(waits >= 3, "only {waits} calls before done");
    assert_eq!(count(&write_ops(&tb)), clean_run_writes());

    let last = run.last().ok_or_else(|| anyhow!("no output"))?;
    assert!(last.done && last.changes.is_empty());
    assert_eq!(last.phase, labflow_ensure_cluster::Phase::Ready);
    assert_eq!(last.cluster.status, "ACTIVE");
    assert_eq!(last.cluster.version.as_deref(), Some("1.35"));
    assert!(last
        .cluster
        .endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("https://")));
    assert_eq!(last.nodegroups.len(), 1);
    assert_eq!(last.nodegroups[0].status, "ACTIVE");
    assert_eq!(last.addons.len(), 5);
    assert!(last.addons.iter().all(|a| a.status == "ACTIVE"));
    assert_eq!(last.pod_identities.len(), 5);
    assert!(last.pod_identities.iter().all(|p| p
        .association_id
        .as_deref()
        .is_some_and(|id| id.starts_with("a-"))));

    // What EKS now holds is what the config says.
    let snap = snapshot(&ctx.aws.eks, &env).await?;
    let cluster = &snap["cluster"];
    assert_eq!(cluster["status"], "ACTIVE");
    assert_eq!(cluster["authenticationMode"], "API");
    assert_eq!(
        cluster["encryptionKeys"],
        json!(["arn:aws:kms:eu-west-1:123456789012:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"])
    );
    assert_eq!(
        cluster["logging"],
        json!([
            ["api", true],
            ["audit", true],
            ["authenticator", true],
            ["controllerManager", false],
            ["scheduler", false]
        ])
    );
    assert_eq!(
        cluster["tags"],
        json!({"labflow:environment": "<env>", "labflow:managed-by": "labflow", "team": "platform", "cost-center": "labs"})
    );
    let ng = &snap["nodegroups"][0];
    assert_eq!(ng["scaling"], json!([1, 4, 2]));
    assert_eq!(ng["capacityType"], "SPOT");
    assert_eq!(ng["labels"], json!({"labflow.dev/pool": "general"}));
    assert_eq!(ng["subnets"], cluster["subnets"]);
    assert_eq!(ng["tags"], cluster["tags"]);
    let sas: Vec<&str> = snap["podIdentities"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["serviceAccount"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(sas.len(), 5, "{sas:?}");
    assert!(sas.contains(&"ebs-csi-controller-sa") && sas.contains(&"external-dns"));

    // A second full run: done at once, no write call of any kind.
    tb.eks().clear_requests();
    let again = converge(&ctx, &env, CONVERGE).await?;
    assert_eq!(again.outputs.len(), 1);
    assert!(again.changes().is_empty(), "{:?}", again.changes());
    assert_eq!(write_ops(&tb), Vec::<String>::new());
    ensure!(
        !tb.eks().requests().is_empty(),
        "the second run did not even look"
    );
    assert_eq!(snapshot(&ctx.aws.eks, &env).await?, snap);

    // The report as the state machine reads it: `$.cluster.done` at the top, camelCase.
    let json = serde_json::to_value(last)?;
    assert_eq!(json["done"], true);
    assert_eq!(json["phase"], "ready");
    assert_eq!(json["cluster"]["status"], "ACTIVE");
    assert!(json["podIdentities"][0]["serviceAccount"].is_string());
    assert!(json["podIdentities"][0]["associationId"].is_string());
    assert_eq!(json["nodegroups"][0]["desiredSize"], 2);
    assert_eq!(json["changes"], json!([]));
    let first_json = serde_json::to_value(first)?;
    assert_eq!(first_json["done"], false);
    assert_eq!(first_json["phase"], "cluster-creating");
    Ok(())
}

/// Creates a cluster the way someone else would (not through labflow).
async fn create_foreign_cluster(
    eks: &aws_sdk_eks::Client,
    config: &Value,
    tags: &[(&str, &str)],
    subnets: Option<Vec<String>>,
) -> anyhow::Result<()> {
    use aws_sdk_eks::types::{AuthenticationMode, CreateAccessConfigRequest, VpcConfigRequest};
    let c = &config["cluster"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut request = eks
        .create_cluster()
        .name(c["name"].as_str().unwrap_or_default())
        .version(c["version"].as_str().unwrap_or_default())
        .role_arn(c["roleArn"].as_str().unwrap_or_default())
        .resources_vpc_config(
            VpcConfigRequest::builder()
                .set_subnet_ids(Some(subnets.unwrap_or_else(|| strings(&c["subnetIds"]))))
                .set_security_group_ids(Some(strings(&c["securityGroupIds"])))
                .build(),
        )
        .access_config(
            CreateAccessConfigRequest::builder()
                .authentication_mode(AuthenticationMode::ApiAndConfigMap)
                .build(),
        );
    for (k, v) in tags {
        request = request.tags(*k, *v);
    }
    request.send().await.context("creating a foreign cluster")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_our_tags_is_refused_and_left_alone() -> anyhow::Result<()> {
    let tb = testbed().await?;
    let ctx = ctx(&tb, tb.eks_endpoint()).await;
    for (case, tags) in [
        ("untagged", vec![("team", "someone-else")]),
        (
            "other-env",
            vec![
                ("labflow:environment", "another-environment"),
                ("labflow:managed-by", "labflow"),
            ],
        ),
    ] {
        let env = unique_env(case);
        let config = lab_config(&env)?;
        seed(&ctx, &env, &config).await?;
        create_foreign_cluster(&ctx.aws.eks, &config, &tags, None).await?;
        // Both while it is CREATING and once it is ACTIVE.
        for _ in 0..2 {
            tb.eks().clear_requests();
            let err = handle(&ctx, input(&env)?)
                .await
                .err()
                .ok_or_else(|| anyhow!("{case}: a foreign cluster was accepted"))?;
            assert_eq!(err.name(), "labflow.NotOwned", "{case}: {err}");
            assert!(err.message().contains(&cluster_name(&env)), "{err}");
            assert_eq!(write_ops(&tb), Vec::<String>::new(), "{case}");
            tokio::time::sleep(delays().cluster_create + Duration::from_millis(200)).await;
        }
        let snap = snapshot(&ctx.aws.eks, &env).await?;
        assert_eq!(snap["addons"], json!([]));
        assert_eq!(snap["nodegroups"], json!([]));
        assert_eq!(snap["podIdentities"], json!([]));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immutable_drift_is_invalid_input_naming_each_difference() -> anyhow::Result<()> {
    let tb = testbed().await?;
    let ctx = ctx(&tb, tb.eks_endpoint()).await;

    // A cluster of ours that was made with other subnets (found before anything else is done).
    let env = unique_env("subnets");
    let config = lab_config(&env)?;
    seed(&ctx, &env, &config).await?;
    create_foreign_cluster(
        &ctx.aws.eks,
        &config,
        &[
            ("labflow:environment", env.as_str()),
            ("labflow:managed-by", "labflow"),
        ],
        Some(vec!["subnet-other-1".into(), "subnet-other-2".into()]),
    )
    .await?;
    tb.eks().clear_requests();
    let err = handle(&ctx, input(&env)?)
        .await
        .err()
        .ok_or_else(|| anyhow!("drift accepted"))?;
    assert_eq!(err.name(), "labflow.InvalidInput", "{err}");
    let msg = err.message();
    for needle in [
        "cluster.subnetIds",
        "subnet-other-1",
        "subnet-0a1b2c3d4e5f60003",
        // Created without secrets encryption.
        "cluster.kmsKeyArn",
    ] {
        assert!(msg.contains(needle), "{needle} missing from: {msg}");
    }
    assert_eq!(write_ops(&tb), Vec::<String>::new());

    // A converged environment whose config now names other immutable settings.
    let env = unique_env("drift");
    let mut config = lab_config(&env)?;
    seed(&ctx, &env, &config).await?;
    converge(&ctx, &env, CONVERGE).await?;
    let before = snapshot(&ctx.aws.eks, &env).await?;

    config["cluster"]["subnetIds"] = json!(["subnet-0a1b2c3d4e5f60001", "subnet-new"]);
    config["cluster"]["securityGroupIds"] = json!(["sg-new"]);
    seed(&ctx, &env, &config).await?;
    tb.eks().clear_requests();
    let err = handle(&ctx, input(&env)?)
        .await
        .err()
        .ok_or_else(|| anyhow!("cluster drift accepted"))?;
    assert_eq!(err.name(), "labflow.InvalidInput", "{err}");
    for needle in [
        "cluster.subnetIds",
        "subnet-new",
        "cluster.securityGroupIds",
        "sg-new",
    ] {
        assert!(
            err.message().contains(needle),
            "{needle} missing from: {err}"
        );
    }
    assert!(!err.message().contains("kmsKeyArn"), "{err}");

    let mut config = lab_config(&env)?;
    config["nodegroups"][0]["instanceTypes"] = json!(["c7g.large"]);
    config["nodegroups"][0]["capacityType"] = json!("ON_DEMAND");
    // A mutable change alongside must not be made while the immutable one is refused.
    config["nodegroups"][0]["scaling"]["desired"] = json!(3);
    seed(&ctx, &env, &config).await?;
    let err = handle(&ctx, input(&env)?)
        .await
        .err()
        .ok_or_else(|| anyhow!("node group drift accepted"))?;
    assert_eq!(err.name(), "labflow.InvalidInput", "{err}");
    for needle in [
        "nodegroups[spot-general].instanceTypes",
        "c7g.large",
        "nodegroups[spot-general].capacityType",
        "ON_DEMAND",
    ] {
        assert!(
            err.message().contains(needle),
            "{needle} missing from: {err}"
        );
    }
    assert_eq!(write_ops(&tb), Vec::<String>::new());
    assert_eq!(snapshot(&ctx.aws.eks, &env).await?, before);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutable_drift_is_reconciled_and_reported() -> anyhow::Result<()> {
    let tb = testbed().await?;
    let ctx = ctx(&tb, tb.eks_endpoint()).await;
    let env = unique_env("mutable");
    let mut config = lab_config(&env)?;
    // Two minors below the target, which EKS still creates (in extended support).
    config["cluster"]["version"] = json!("1.33");
    seed(&ctx, &env, &config).await?;
    converge(&ctx, &env, CONVERGE).await?;

    config["cluster"]["version"] = json!("1.35");
    config["cluster"]["logging"] = json!(["api", "scheduler"]);
    config["tags"]["owner"] = json!("qa");
    config["nodegroups"][0]["scaling"] = json!({"min": 2, "max": 5, "desired": 3});
    config["nodegroups"][0]["labels"] = json!({"labflow.dev/pool": "big"});
    seed(&ctx, &env, &config).await?;
    tb.eks().clear_requests();
    let run = converge(&ctx, &env, CONVERGE).await?;
    let changes = run.changes();
    let cluster = format!("cluster/{}", cluster_name(&env));
    for expected in [
        format!("{cluster} tag set tags [owner]"),
        format!("{cluster} update-config logging → enable [scheduler], disable [audit, authenticator]"),
        format!("{cluster} update-version Kubernetes version → 1.34"),
        format!("{cluster} update-version Kubernetes version → 1.35"),
        "nodegroup/spot-general tag set tags [owner]".to_string(),
        "nodegroup/spot-general update-config scaling → min 2, max 5, desired 3; labels set [labflow.dev/pool=big]".to_string(),
        "nodegroup/spot-general update-version Kubernetes version → 1.35".to_string(),
        "addon/vpc-cni tag set tags [owner]".to_string(),
        "podIdentity/external-dns/external-dns tag set tags [owner]".to_string(),
    ] {
        assert!(
            changes.contains(&expected),
            "{expected:?} not among the reported changes:\n{}",
            changes.join("\n")
        );
    }
    // EKS upgrades one minor at a time, and one cluster update at a time.
    let ops = write_ops(&tb);
    let c = count(&ops);
    assert_eq!(c.get("UpdateClusterVersion"), Some(&2), "{ops:?}");
    assert_eq!(c.get("UpdateClusterConfig"), Some(&1), "{ops:?}");
    assert_eq!(c.get("UpdateNodegroupConfig"), Some(&1), "{ops:?}");
    assert_eq!(c.get("UpdateNodegroupVersion"), Some(&1), "{ops:?}");
    // Cluster + node group + 5 add-ons + 5 associations got the new tag.
    assert_eq!(c.get("TagResource"), Some(&12), "{ops:?}");
    assert!(!c
        .keys()
        .any(|op| op.starts_with("Create") || op.starts_with("Delete")));
    // Every write is reported, and only writes.
    assert_eq!(changes.len(), ops.len(), "{changes:#?}\n{ops:?}");

    let snap = snapshot(&ctx.aws.eks, &env).await?;
    assert_eq!(snap["cluster"]["version"], "1.35");
    assert_eq!(
        snap["cluster"]["logging"],
        json!([
            ["api", true],
            ["audit", false],
            ["authenticator", false],
            ["controllerManager", false],
            ["scheduler", true]
        ])
    );
    assert_eq!(snap["cluster"]["tags"]["owner"], "qa");
    let ng = &snap["nodegroups"][0];
    assert_eq!(ng["scaling"], json!([2, 5, 3]));
    assert_eq!(ng["version"], "1.35");
    assert_eq!(ng["labels"], json!({"labflow.dev/pool": "big"}));
    assert_eq!(ng["tags"]["owner"], "qa");

    tb.eks().clear_requests();
    let again = converge(&ctx, &env, CONVERGE).await?;
    assert_eq!(again.outputs.len(), 1);
    assert_eq!(write_ops(&tb), Vec::<String>::new());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_nodegroup_or_cluster_is_component_failed_with_the_issues() -> anyhow::Result<()> {
    let tb = testbed().await?;
    let ctx = ctx(&tb, tb.eks_endpoint()).await;
    let env = unique_env("failed");
    seed(&ctx, &env, &lab_config(&env)?).await?;
    converge(&ctx, &env, CONVERGE).await?;
    let name = cluster_name(&env);

    let mut issue = HealthIssue::new(
        "AsgInstanceLaunchFailures",
        "Could not launch Spot Instances. UnfulfillableCapacity",
    );
    issue.resource_ids = vec!["eks-spot-general-asg".into()];
    let issues = [
        issue,
        HealthIssue::new(
            "Ec2SubnetInvalidConfiguration",
            "One or more Amazon EC2 Subnets do not automatically assign public IP addresses",
        ),
    ];
    tb.eks()
        .force_nodegroup_status(&name, "spot-general", "CREATE_FAILED", &issues)
        .await?;
    tb.eks().clear_requests();
    let err = handle(&ctx, input(&env)?)
        .await
        .err()
        .ok_or_else(|| anyhow!("a failed node group was accepted"))?;
    assert_eq!(err.name(), "labflow.ComponentFailed", "{err}");
    for needle in [
        "spot-general",
        "CREATE_FAILED",
        "AsgInstanceLaunchFailures: Could not launch Spot Instances. UnfulfillableCapacity [eks-spot-general-asg]",
        "Ec2SubnetInvalidConfiguration: One or more Amazon EC2 Subnets",
    ] {
        assert!(err.message().contains(needle), "{needle} missing from: {err}");
    }
    assert_eq!(write_ops(&tb), Vec::<String>::new());

    tb.eks()
        .force_cluster_status(
            &name,
            "FAILED",
            &[HealthIssue::new(
                "KmsKeyNotFound",
                "We were unable to find the KMS key for envelope encryption",
            )],
        )
        .await?;
    let err = handle(&ctx, input(&env)?)
        .await
        .err()
        .ok_or_else(|| anyhow!("a failed cluster was accepted"))?;
    assert_eq!(err.name(), "labflow.ComponentFailed", "{err}");
    for needle in [
        name.as_str(),
        "FAILED",
        "KmsKeyNotFound: We were unable to find the KMS key",
    ] {
        assert!(
            err.message().contains(needle),
            "{needle} missing from: {err}"
        );
    }
    assert_eq!(write_ops(&tb), Vec::<String>::new());
    Ok(())
}

/// Runs the handler until the door has passed its armed write, then drops the call mid-flight.
async fn run_until_crash(
    ctx: &labflow_ensure_cluster::Ctx,
    door: &CrashingEks,
    env: &str,
) -> anyhow::Result<usize> {
    let mut calls = 0;
    loop {
        calls += 1;
        tokio::select! {
            result = handle(ctx, input(env)?) => {
                let output = result.map_err(|e| anyhow!("{}: {}", e.name(), e.message()))?;
                if output.done {
                    bail!("done after {calls} calls without reaching the armed write");
                }
            }
            () = door.crashed() => return Ok(calls),
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_any_write_is_recovered_by_the_next_run() -> anyhow::Result<()> {
    let tb = testbed().await?;
    let plain = ctx(&tb, tb.eks_endpoint()).await;

    // The reference: a clean run, and how many writes it takes.
    let clean_env = unique_env("clean");
    seed(&plain, &clean_env, &lab_config(&clean_env)?).await?;
    converge(&plain, &clean_env, CONVERGE).await?;
    let clean = snapshot(&plain.aws.eks, &clean_env).await?;
    let n = tb.eks().write_requests().len();
    assert_eq!(n, clean_run_writes().values().sum::<usize>());

    let mut runs = tokio::task::JoinSet::new();
    for k in 1..=n {
        let env = unique_env(&format!("crash{k}"));
        let door = CrashingEks::start(tb.eks().clone()).await?;
        let ctx = ctx(&tb, door.endpoint()).await;
        seed(&ctx, &env, &lab_config(&env)?).await?;
        runs.spawn(async move {
            door.arm(k);
            let calls = run_until_crash(&ctx, &door, &env)
                .await
                .with_context(|| format!("k={k}"))?;
            door.disarm();
            let recovery = converge(&ctx, &env, CONVERGE)
                .await
                .with_context(|| format!("recovering from a crash after write {k}"))?;
            let snap = snapshot(&ctx.aws.eks, &env).await?;
            anyhow::Ok((k, calls, recovery.changes(), snap))
        });
    }
    let mut seen = Vec::new();
    while let Some(joined) = runs.join_next().await {
        let (k, calls, changes, snap) = joined??;
        assert_eq!(
            snap, clean,
            "after a crash following write {k} (call {calls}) and a re-run ({changes:?})"
        );
        seen.push(k);
    }
    seen.sort();
    assert_eq!(seen, (1..=n).collect::<Vec<_>>());
    Ok(())
}

/// A node group configured with a launch template (Terraform's: IMDSv2 only, one hop) is created
/// from it, and without a disk size of its own, which EKS would refuse (issue 26 item 4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodegroups_start_from_the_configured_launch_template() -> anyhow::Result<()> {
    let tb = testbed().await?;
    let ctx = ctx(&tb, tb.eks_endpoint()).await;
    let env = unique_env("lt");
    let mut config = lab_config(&env)?;
    let nodegroup = config["nodegroups"][0]
        .as_object_mut()
        .ok_or_else(|| anyhow!("no node group in the lab config"))?;
    nodegroup.remove("diskSizeGib");
    nodegroup.insert(
        "launchTemplate".into(),
        serde_json::json!({"id": "lt-0123456789abcdef0", "version": "3"}),
    );
    let name = config["nodegroups"][0]["name"]
        .as_str()
        .ok_or_else(|| anyhow!("node group name"))?
        .to_string();
    seed(&ctx, &env, &config).await?;
    converge(&ctx, &env, CONVERGE).await?;
    let described = describe_nodegroup(&ctx, &env, &name).await?;
    let template = described
        .launch_template
        .ok_or_else(|| anyhow!("created without the launch template"))?;
    assert_eq!(template.id.as_deref(), Some("lt-0123456789abcdef0"));
    assert_eq!(template.version.as_deref(), Some("3"));
    assert_eq!(described.disk_size, None);

    // EKS refuses another template, or id and name together (UpdateNodegroupVersion API
    // reference; aws-controllers-k8s/community#2645).
    for (id, template_name) in [
        (Some("lt-0fffffffffffffff0"), None),
        (Some("lt-0123456789abcdef0"), Some("nodes")),
    ] {
        let refused = ctx
            .aws
            .eks
            .update_nodegroup_version()
            .cluster_name(cluster_name(&env))
            .nodegroup_name(&name)
            .launch_template(
                aws_sdk_eks::types::LaunchTemplateSpecification::builder()
                    .set_id(id.map(str::to_string))
                    .set_name(template_name.map(str::to_string))
                    .version("4")
                    .build(),
            )
            .send()
            .await;
        let (code, message) = refused
            .err()
            .map(|e| {
                let meta = aws_sdk_eks::error::ProvideErrorMetadata::meta(&e);
                (
                    meta.code().unwrap_or_default().to_string(),
                    meta.message().unwrap_or_default().to_string(),
                )
            })
            .unwrap_or_default();
        assert_eq!(
            code, "InvalidParameterException",
            "{id:?} {template_name:?}"
        );
        assert!(
            message.contains("launch template"),
            "refused for another reason: {message}"
        );
    }

    // A new template version (Terraform changed the template): the node group is moved to it.
    config["nodegroups"][0]["launchTemplate"]["version"] = serde_json::json!("4");
    seed(&ctx, &env, &config).await?;
    tb.eks().clear_requests();
    let run = converge(&ctx, &env, CONVERGE).await?;
    let expected =
        format!("nodegroup/{name} update-version launch template lt-0123456789abcdef0 → version 4");
    assert!(
        run.changes().contains(&expected),
        "{expected:?} not among:\n{}",
        run.changes().join("\n")
    );
    assert_eq!(
        count(&write_ops(&tb)).get("UpdateNodegroupVersion"),
        Some(&1)
    );
    let moved = describe_nodegroup(&ctx, &env, &name)
        .await?
        .launch_template
        .and_then(|t| t.version);
    assert_eq!(moved.as_deref(), Some("4"));

    // Another template altogether cannot be reached: refused before any write, naming the field.
    config["nodegroups"][0]["launchTemplate"]["id"] = serde_json::json!("lt-0fffffffffffffff0");
    seed(&ctx, &env, &config).await?;
    tb.eks().clear_requests();
    let err = handle(&ctx, input(&env)?)
        .await
        .err()
        .ok_or_else(|| anyhow!("a different launch template was accepted"))?;
    assert_eq!(err.name(), "labflow.InvalidInput", "{err}");
    assert!(
        err.message()
            .contains(&format!("nodegroups[{name}].launchTemplate.id")),
        "{err}"
    );
    assert_eq!(write_ops(&tb), Vec::<String>::new());
    Ok(())
}

async fn describe_nodegroup(
    ctx: &labflow_ensure_cluster::Ctx,
    env: &str,
    name: &str,
) -> anyhow::Result<aws_sdk_eks::types::Nodegroup> {
    ctx.aws
        .eks
        .describe_nodegroup()
        .cluster_name(cluster_name(env))
        .nodegroup_name(name)
        .send()
        .await?
        .nodegroup
        .ok_or_else(|| anyhow!("no node group {name}"))
}

async fn ebs_driver(
    ctx: &labflow_ensure_cluster::Ctx,
    env: &str,
) -> anyhow::Result<aws_sdk_eks::types::Addon> {
    ctx.aws
        .eks
        .describe_addon()
        .cluster_name(cluster_name(env))
        .addon_name("aws-ebs-csi-driver")
        .send()
        .await?
        .addon
        .context("no add-on in DescribeAddon")
}

async fn ebs_driver_configuration(
    ctx: &labflow_ensure_cluster::Ctx,
    env: &str,
) -> anyhow::Result<Value> {
    let addon = ctx
        .aws
        .eks
        .describe_addon()
        .cluster_name(cluster_name(env))
        .addon_name("aws-ebs-csi-driver")
        .send()
        .await?
        .addon
        .context("no add-on in DescribeAddon")?;
    let text = addon
        .configuration_values()
        .context("the EBS CSI driver add-on has no configuration values")?;
    Ok(serde_json::from_str(text)?)
}

/// The EBS CSI driver is told its cluster (`controller.k8sTagClusterId`) and runs a version that
/// writes the cluster tag (≥ v1.58.0), so its volumes carry the tag the cluster-scoped IAM policy
/// requires (kubernetes-sigs/aws-ebs-csi-driver docs/tagging.md, CHANGELOG v1.58.0); a
/// configuration or an older version set outside labflow is put back, and an unchanged one is
/// not written again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ebs_csi_driver_is_told_its_cluster_and_kept_so() -> anyhow::Result<()> {
    let tb = testbed().await?;
    let ctx = ctx(&tb, tb.eks_endpoint()).await;
    let env = unique_env("ebstag");
    seed(&ctx, &env, &lab_config(&env)?).await?;
    converge(&ctx, &env, CONVERGE).await?;
    let cluster = cluster_name(&env);
    assert_eq!(
        ebs_driver_configuration(&ctx, &env).await?,
        json!({"controller": {"k8sTagClusterId": cluster}})
    );
    // The simulated EKS default (v1.45.0) predates the cluster tag: the newest offered version
    // that writes it is installed instead.
    assert_eq!(
        ebs_driver(&ctx, &env).await?.addon_version(),
        Some("v1.60.0-eksbuild.1")
    );

    ctx.aws
        .eks
        .update_addon()
        .cluster_name(&cluster)
        .addon_name("aws-ebs-csi-driver")
        .configuration_values(r#"{"controller": {"k8sTagClusterId": "someone-else"}}"#)
        .addon_version("v1.46.0-eksbuild.1")
        .send()
        .await?;
    tb.eks().clear_requests();
    let run = converge(&ctx, &env, CONVERGE).await?;
    let changes = run.changes();
    assert!(
        changes.contains(
            &"addon/aws-ebs-csi-driver update version v1.46.0-eksbuild.1 → v1.60.0-eksbuild.1, configuration values"
                .to_string()
        ),
        "{changes:#?}"
    );
    assert_eq!(
        ebs_driver(&ctx, &env).await?.addon_version(),
        Some("v1.60.0-eksbuild.1")
    );
    assert_eq!(
        ebs_driver_configuration(&ctx, &env).await?,
        json!({"controller": {"k8sTagClusterId": cluster}})
    );
    tb.eks().clear_requests();
    converge(&ctx, &env, CONVERGE).await?;
    assert_eq!(write_ops(&tb), Vec::<String>::new());
    Ok(())
}
