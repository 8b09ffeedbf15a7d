//! flux-bootstrap against kubesim (real HTTPS, EKS token), moto SSM and a loopback release server.

mod support;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine;
use labflow_core::contract::Action;
use labflow_core::flux::cluster_vars;
use labflow_flux_bootstrap::handle;
use labflow_testbed::kubesim::store::Gvr;
use labflow_testbed::kubesim::RequestRecord;
use serde_json::Value;
use support::*;

fn gvr(group: &str, version: &str, plural: &str) -> Gvr {
    Gvr {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
    }
}

fn stored(w: &World, gvr: &Gvr, ns: Option<&str>, name: &str) -> anyhow::Result<Value> {
    w.sim
        .store()
        .get(gvr, ns, name)
        .map_err(|e| anyhow::anyhow!("{}/{name}: {e}", gvr.plural))
}

const STAGE_ONE: [&str; 4] = [
    "customresourcedefinitions",
    "namespaces",
    "clusterroles",
    "clusterrolebindings",
];

fn resource(r: &RequestRecord) -> &str {
    r.resource.as_deref().unwrap_or("")
}

#[tokio::test]
async fn checksum_mismatch_is_invalid_input_and_applies_nothing() -> anyhow::Result<()> {
    let wrong = "ab".repeat(32);
    let w = world("fb-checksum", Some(&wrong)).await?;
    let rv = w.sim.store().resource_version();
    let err = handle(&w.ctx()?, w.input(Action::Create))
        .await
        .expect_err("a manifest that does not match its pin must be refused");
    assert_eq!(err.name(), "labflow.InvalidInput", "{err}");
    assert!(err.message().contains(&w.manifest_sha256), "{err}");
    assert!(err.message().contains(&wrong), "{err}");
    // The manifest was fetched (the refusal is about its content, not its absence)...
    assert_eq!(w.releases.requests(), [MANIFEST_PATH.as_str()]);
    // ...and nothing reached the cluster.
    let writes: Vec<RequestRecord> = w.sim.requests().into_iter().filter(is_write).collect();
    assert!(
        writes.is_empty(),
        "writes after a checksum mismatch: {writes:?}"
    );
    assert_eq!(w.sim.store().resource_version(), rv);
    assert!(stored(&w, &gvr("", "v1", "namespaces"), None, "flux-system").is_err());
    Ok(())
}

#[tokio::test]
async fn create_installs_in_stages_then_a_second_run_changes_nothing() -> anyhow::Result<()> {
    let logs = LogCapture::default();
    logs.install()?;
    let w = world("fb-create", None).await?;
    let ctx = w.ctx()?;
    let manifest_objects = labflow_flux_bootstrap::manifest::parse(w.manifest.as_bytes())?.len();

    let first = handle(&ctx, w.input(Action::Create)).await?;
    assert!(first.done, "{first:?}");
    assert_eq!(first.phase, "installed");
    assert_eq!(first.flux_version, FLUX_VERSION);
    assert_eq!(first.path, "./infra/gitops/clusters/fb-create");
    // The manifest plus Secret, ConfigMap, GitRepository, root Kustomization and health-check's
    // reader ClusterRole and ClusterRoleBinding, all new.
    assert_eq!(first.applied as usize, manifest_objects + 6, "{first:?}");
    assert_eq!(first.unchanged, 0);

    // Every write is a server-side apply by `labflow`, cluster definitions first.
    let requests = w.sim.requests();
    let writes: Vec<&RequestRecord> = requests.iter().filter(|r| is_write(r)).collect();
    assert_eq!(writes.len(), manifest_objects + 6, "{writes:#?}");
    for r in &writes {
        assert_eq!(r.method, "PATCH", "{r:?}");
        assert!(r.query.contains("fieldManager=labflow"), "{r:?}");
        assert!(r.status < 300, "{r:?}");
    }
    let last_stage_one = writes
        .iter()
        .rposition(|r| STAGE_ONE.contains(&resource(r)))
        .context("no stage-1 writes")?;
    let first_stage_two = writes
        .iter()
        .position(|r| !STAGE_ONE.contains(&resource(r)))
        .context("no stage-2 writes")?;
    assert!(
        last_stage_one < first_stage_two,
        "cluster definitions must all be applied before the rest: {:?}",
        writes.iter().map(|r| resource(r)).collect::<Vec<_>>()
    );
    let crd_writes = writes
        .iter()
        .filter(|r| resource(r) == "customresourcedefinitions")
        .count();
    assert_eq!(crd_writes, 11, "the fixture carries Flux's 11 CRDs");
    // The CRDs are Established (the handler read that back before applying stage 2).
    let crds = w.sim.store().list(
        &gvr("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
        None,
        &Default::default(),
        &Default::default(),
    );
    let (_, crds, _) = crds.map_err(|e| anyhow::anyhow!("{e}"))?;
    for crd in &crds {
        let established = crd["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        });
        assert!(established, "{}", crd["metadata"]["name"]);
    }

    // The bootstrap objects.
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let secret = stored(
        &w,
        &gvr("", "v1", "secrets"),
        Some("flux-system"),
        "flux-system",
    )?;
    assert_eq!(secret["data"]["username"], b64("git"));
    assert_eq!(secret["data"]["password"], b64(TOKEN));
    assert_eq!(
        secret["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "labflow"
    );
    let managers: Vec<&str> = secret["metadata"]["managedFields"]
        .as_array()
        .map(|m| m.iter().filter_map(|e| e["manager"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(managers, ["labflow"]);

    let repo = stored(
        &w,
        &gvr("source.toolkit.fluxcd.io", "v1", "gitrepositories"),
        Some("flux-system"),
        "flux-system",
    )?;
    assert_eq!(
        repo["spec"]["url"],
        "https://github.com/example/labflow-fb-create"
    );
    assert_eq!(repo["spec"]["ref"]["branch"], "main");
    assert_eq!(repo["spec"]["secretRef"]["name"], "flux-system");
    assert_eq!(repo["spec"]["interval"], "1m");

    let root = stored(
        &w,
        &gvr("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
        Some("flux-system"),
        "flux-system",
    )?;
    assert_eq!(root["spec"]["path"], "./infra/gitops/clusters/fb-create");
    assert_eq!(root["spec"]["prune"], true);
    assert_eq!(root["spec"]["sourceRef"]["kind"], "GitRepository");
    assert_eq!(root["spec"]["sourceRef"]["name"], "flux-system");

    let vars = stored(
        &w,
        &gvr("", "v1", "configmaps"),
        Some("flux-system"),
        cluster_vars::CONFIGMAP,
    )?;
    let config =
        labflow_core::config::load(&w.aws.ssm, &w.environment, &w.aws.create_checks()).await?;
    let vpc_id = w
        .aws
        .eks
        .describe_cluster()
        .name(&config.cluster.name)
        .send()
        .await?
        .cluster
        .and_then(|c| c.resources_vpc_config)
        .and_then(|v| v.vpc_id)
        .context("no VPC")?;
    let expected = cluster_vars::values(&w.environment, &config, REGION, &vpc_id)?;
    assert!(vpc_id.starts_with("vpc-"), "{vpc_id}");
    assert_eq!(vars["data"], serde_json::to_value(&expected)?);
    assert_eq!(vars["data"]["DOMAIN"], "fb-create.example.com");

    // A second run: server-side apply no-ops, nothing in the cluster changes.
    w.sim.clear_requests();
    let rv = w.sim.store().resource_version();
    let started = Instant::now();
    let second = handle(&ctx, w.input(Action::Create)).await?;
    let took = started.elapsed();
    assert!(second.done, "{second:?}");
    assert_eq!(second.applied, 0, "{second:?}");
    assert_eq!(second.unchanged, first.applied);
    assert_eq!(
        w.sim.store().resource_version(),
        rv,
        "a repeated bootstrap changed an object"
    );
    let again = w.sim.requests();
    assert!(
        again
            .iter()
            .filter(|r| is_write(r))
            .all(|r| r.method == "PATCH"),
        "{again:#?}"
    );
    assert!(took < Duration::from_secs(5), "second run took {took:?}");

    // The token is in the Secret only: not in the outputs, not in the logs.
    let logged = logs.text();
    assert!(
        logged.contains("flux-bootstrap finished"),
        "logs were not captured"
    );
    for text in [
        serde_json::to_string(&first)?,
        serde_json::to_string(&second)?,
        logged,
    ] {
        assert!(!text.contains(TOKEN), "token leaked");
        assert!(!text.contains(&b64(TOKEN)), "token (base64) leaked");
    }
    Ok(())
}

#[tokio::test]
async fn sync_requests_a_reconcile_of_the_source_and_the_root() -> anyhow::Result<()> {
    let w = world("fb-sync", None).await?;
    let ctx = w.ctx()?;
    let created = handle(&ctx, w.input(Action::Create)).await?;
    assert!(created.reconcile_requested_at.is_none());
    w.sim.clear_requests();

    let synced = handle(&ctx, w.input(Action::Sync)).await?;
    assert!(synced.done);
    assert_eq!(synced.phase, "reconcile-requested");
    assert_eq!(synced.applied, 0, "{synced:?}");
    let at = synced
        .reconcile_requested_at
        .clone()
        .context("no requestedAt")?;
    chrono::DateTime::parse_from_rfc3339(&at)?;
    for (group, plural) in [
        ("source.toolkit.fluxcd.io", "gitrepositories"),
        ("kustomize.toolkit.fluxcd.io", "kustomizations"),
    ] {
        let obj = stored(
            &w,
            &gvr(group, "v1", plural),
            Some("flux-system"),
            "flux-system",
        )?;
        assert_eq!(
            obj["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"],
            at.as_str(),
            "{plural}"
        );
        // A merge patch by labflow (an Update entry next to its Apply), besides the no-op apply.
        let operations: Vec<(&str, &str)> = obj["metadata"]["managedFields"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|e| Some((e["manager"].as_str()?, e["operation"].as_str()?)))
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            operations.contains(&("labflow", "Update")),
            "{operations:?}"
        );
        assert!(operations.contains(&("labflow", "Apply")), "{operations:?}");
        let patches: Vec<RequestRecord> = w
            .sim
            .requests()
            .into_iter()
            .filter(|r| r.method == "PATCH" && resource(r) == plural)
            .collect();
        assert_eq!(patches.len(), 2, "{patches:#?}");
        assert!(patches
            .iter()
            .all(|r| r.query.contains("fieldManager=labflow")));
    }
    Ok(())
}

#[tokio::test]
async fn teardown_is_refused() -> anyhow::Result<()> {
    let w = world("fb-refuse", None).await?;
    let err = handle(&w.ctx()?, w.input(Action::Teardown))
        .await
        .expect_err("teardown is not flux-bootstrap's business");
    assert_eq!(err.name(), "labflow.InvalidInput");
    assert!(w.sim.requests().is_empty());
    assert!(w.releases.requests().is_empty());
    Ok(())
}

/// Every `${VAR}` the GitOps tree substitutes is a key of the ConfigMap flux-bootstrap writes.
#[test]
fn cluster_vars_cover_every_variable_of_the_gitops_tree() -> anyhow::Result<()> {
    let root = labflow_testbed::paths::repo_root()
        .context("repo root")?
        .join("infra/gitops");
    let mut used = std::collections::BTreeSet::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                let text = std::fs::read_to_string(&path)?;
                let mut rest = text.as_str();
                while let Some(i) = rest.find("${") {
                    let escaped = i > 0 && rest.as_bytes()[i - 1] == b'$';
                    let after = &rest[i + 2..];
                    let end = after.find('}').unwrap_or(after.len());
                    let name: String = after[..end]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !escaped && !name.is_empty() {
                        used.insert(name);
                    }
                    rest = after;
                }
            }
        }
    }
    assert!(used.contains("DOMAIN"), "scan found nothing: {used:?}");
    let unknown: Vec<&String> = used
        .iter()
        .filter(|v| !cluster_vars::KEYS.contains(&v.as_str()))
        .collect();
    assert!(unknown.is_empty(), "variables without a value: {unknown:?}");
    Ok(())
}
