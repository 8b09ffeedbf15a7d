//! Shared by the ensure-cluster integration tests: the testbed, an environment config seeded into
//! SSM (moto), the step input as the state machine passes it, a loop that calls the handler like
//! the state machine does (Wait between calls, a deadline), and a snapshot of what EKS holds.

#![allow(dead_code)]

pub mod crashing_eks;

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use labflow_core::aws::AwsClients;
use labflow_ensure_cluster::{handle, Ctx, Input, Output};
use labflow_testbed::eks::{EksDelays, EksOptions};
use labflow_testbed::{Testbed, TestbedOptions};
use serde_json::{json, Value};

/// Non-zero EKS transitions: every create, update and delete takes a while, as in AWS.
pub fn delays() -> EksDelays {
    EksDelays::uniform(
        Duration::from_millis(250),
        Duration::from_millis(200),
        Duration::from_millis(150),
    )
}

pub async fn testbed() -> anyhow::Result<Testbed> {
    Ok(Testbed::start(TestbedOptions {
        eks: EksOptions {
            delays: delays(),
            ..Default::default()
        },
        ..Default::default()
    })
    .await?)
}

/// Clients for the testbed (EKS at `eks_endpoint`: the simulator, or a door in front of it).
pub async fn ctx(tb: &Testbed, eks_endpoint: &str) -> Ctx {
    Ctx {
        aws: AwsClients::from_config(tb.sdk_config().await).with_eks_endpoint(eks_endpoint),
    }
}

/// A fresh environment name (moto is shared by every test of the binary).
pub fn unique_env(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..8])
}

/// The cluster name an environment's config uses.
pub fn cluster_name(env: &str) -> String {
    format!("labflow-{env}")
}

/// examples/environments/lab.json, made this environment's.
pub fn lab_config(env: &str) -> anyhow::Result<Value> {
    let mut config = labflow_testkit::config::example_config();
    config["cluster"]["name"] = json!(cluster_name(env));
    config["dns"]["ownerId"] = json!(format!("labflow-{env}"));
    Ok(config)
}

/// Writes `/labflow/environments/<env>` (as Terraform would).
pub async fn seed(ctx: &Ctx, env: &str, config: &Value) -> anyhow::Result<()> {
    ctx.aws
        .ssm
        .put_parameter()
        .name(format!("/labflow/environments/{env}"))
        .value(config.to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .context("seeding the environment config")?;
    Ok(())
}

/// The step input exactly as the state machine's Parameters build it.
pub fn input(env: &str) -> anyhow::Result<Input> {
    Ok(serde_json::from_value(json!({
        "environment": env,
        "action": "create",
        "source": {"kind": "console", "requestedBy": "test"},
        "executionArn": "arn:aws:states:eu-west-1:123456789012:execution:labflow-lifecycle:test",
    }))?)
}

/// What a run of calls produced.
#[derive(Debug, Default)]
pub struct Run {
    pub outputs: Vec<Output>,
}

impl Run {
    pub fn last(&self) -> Option<&Output> {
        self.outputs.last()
    }

    /// Every change reported across the run, as `resource action detail`.
    pub fn changes(&self) -> Vec<String> {
        self.outputs
            .iter()
            .flat_map(|o| o.changes.iter())
            .map(|c| format!("{} {} {}", c.resource, c.action, c.detail))
            .collect()
    }
}

/// Calls the handler the way the state machine does — again and again with a short Wait in
/// between — until it reports `done`, failing on the first error or at the deadline.
pub async fn converge(ctx: &Ctx, env: &str, within: Duration) -> anyhow::Result<Run> {
    let deadline = Instant::now() + within;
    let mut run = Run::default();
    loop {
        let call = Instant::now();
        let output = handle(ctx, input(env)?)
            .await
            .map_err(|e| anyhow!("{}: {}", e.name(), e.message()))?;
        // A call never waits for AWS (DESIGN.md §3): it must come back quickly.
        let took = call.elapsed();
        if took > Duration::from_secs(5) {
            bail!("one call took {took:?}");
        }
        let done = output.done;
        run.outputs.push(output);
        if done {
            return Ok(run);
        }
        if Instant::now() > deadline {
            bail!(
                "not done after {within:?} ({} calls); last: {:?}",
                run.outputs.len(),
                run.last()
            );
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
}

/// What EKS holds for a cluster, with everything EKS generates (ARNs, ids, times, endpoint)
/// left out and the environment's names replaced by placeholders, so that two environments
/// built from the same config compare equal.
pub async fn snapshot(eks: &aws_sdk_eks::Client, env: &str) -> anyhow::Result<Value> {
    let name = cluster_name(env);
    let cluster = eks
        .describe_cluster()
        .name(&name)
        .send()
        .await?
        .cluster
        .ok_or_else(|| anyhow!("no cluster in DescribeCluster"))?;
    let vpc = cluster.resources_vpc_config();
    let mut logs: Vec<(String, bool)> = cluster
        .logging()
        .map(|l| {
            l.cluster_logging()
                .iter()
                .flat_map(|s| {
                    s.types()
                        .iter()
                        .map(|t| (t.as_str().to_string(), s.enabled() == Some(true)))
                        .collect::<Vec<_>>()
                })
                .collect()
        })
        .unwrap_or_default();
    logs.sort();
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    let tags = |t: Option<&std::collections::HashMap<String, String>>| {
        t.map(|t| {
            t.iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect::<serde_json::Map<_, _>>()
        })
        .unwrap_or_default()
    };
    let mut nodegroups = Vec::new();
    let ng_names = eks.list_nodegroups().cluster_name(&name).send().await?;
    for ng in ng_names.nodegroups() {
        let n = eks
            .describe_nodegroup()
            .cluster_name(&name)
            .nodegroup_name(ng)
            .send()
            .await?
            .nodegroup
            .ok_or_else(|| anyhow!("no node group {ng}"))?;
        let s = n.scaling_config();
        let mut taints: Vec<String> = n
            .taints()
            .iter()
            .map(|t| format!("{:?}={:?}:{:?}", t.key(), t.value(), t.effect()))
            .collect();
        taints.sort();
        nodegroups.push(json!({
            "name": n.nodegroup_name(),
            "status": n.status().map(|s| s.as_str()),
            "version": n.version(),
            "nodeRole": n.node_role(),
            "subnets": sorted(n.subnets()),
            "instanceTypes": sorted(n.instance_types()),
            "capacityType": n.capacity_type().map(|c| c.as_str()),
            "scaling": [s.and_then(|s| s.min_size()), s.and_then(|s| s.max_size()), s.and_then(|s| s.desired_size())],
            "labels": tags(n.labels()),
            "taints": taints,
            "tags": tags(n.tags()),
        }));
    }
    let mut addons = Vec::new();
    let addon_names = eks.list_addons().cluster_name(&name).send().await?;
    for a in addon_names.addons() {
        let d = eks
            .describe_addon()
            .cluster_name(&name)
            .addon_name(a)
            .send()
            .await?
            .addon
            .ok_or_else(|| anyhow!("no add-on {a}"))?;
        addons.push(json!({
            "name": d.addon_name(),
            "status": d.status().map(|s| s.as_str()),
            "version": d.addon_version(),
            "tags": tags(d.tags()),
        }));
    }
    let mut pod_identities = Vec::new();
    let list = eks
        .list_pod_identity_associations()
        .cluster_name(&name)
        .send()
        .await?;
    for a in list.associations() {
        let d = eks
            .describe_pod_identity_association()
            .cluster_name(&name)
            .association_id(a.association_id().unwrap_or_default())
            .send()
            .await?
            .association
            .ok_or_else(|| anyhow!("no association"))?;
        pod_identities.push(json!({
            "namespace": d.namespace(),
            "serviceAccount": d.service_account(),
            "roleArn": d.role_arn(),
            "tags": tags(d.tags()),
        }));
    }
    pod_identities.sort_by_key(|v| v.to_string());
    let snapshot = json!({
        "cluster": {
            "status": cluster.status().map(|s| s.as_str()),
            "version": cluster.version(),
            "roleArn": cluster.role_arn(),
            "subnets": vpc.map(|v| sorted(v.subnet_ids())),
            "securityGroups": vpc.map(|v| sorted(v.security_group_ids())),
            "endpointPublic": vpc.map(|v| v.endpoint_public_access()),
            "endpointPrivate": vpc.map(|v| v.endpoint_private_access()),
            "publicCidrs": vpc.map(|v| sorted(v.public_access_cidrs())),
            "encryptionKeys": cluster.encryption_config().iter().map(|e| e.provider().and_then(|p| p.key_arn())).collect::<Vec<_>>(),
            "logging": logs,
            "authenticationMode": cluster.access_config().and_then(|a| a.authentication_mode()).map(|m| m.as_str()),
            "tags": tags(cluster.tags()),
        },
        "nodegroups": nodegroups,
        "addons": addons,
        "podIdentities": pod_identities,
    });
    // Cluster name first: it contains the environment name.
    let text = snapshot
        .to_string()
        .replace(&name, "<cluster>")
        .replace(env, "<env>");
    Ok(serde_json::from_str(&text)?)
}

/// Names of the write operations in the simulator's log, in order.
pub fn write_ops(tb: &Testbed) -> Vec<String> {
    tb.eks()
        .write_requests()
        .into_iter()
        .map(|r| r.operation)
        .collect()
}
