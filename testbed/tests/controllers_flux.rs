//! The Flux simulation on a fixture GitOps tree: a root Kustomization creating two child
//! Kustomizations in dependsOn order and a HelmRelease, variables from a ConfigMap, inventories,
//! garbage collection on deletion (not for a suspended child), revision changes and the
//! controller gate.

mod controllers_support;
mod wait_support;

use anyhow::{ensure, Context as _};
use controllers_support::*;
use labflow_testbed::controllers::{ControllerOptions, Controllers, FluxOptions};
use labflow_testbed::faults::{ObjectFailure, ObjectFaults};
use serde_json::Value;

const URL: &str = "https://github.com/acme/lab-gitops";
const KS: &str = "kustomize.toolkit.fluxcd.io/v1";
const HR: &str = "helm.toolkit.fluxcd.io/v2";

fn tree() -> Vec<(&'static str, &'static str)> {
    vec![
        ("clusters/lab/infra.yaml", "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: infra\n  namespace: flux-system\nspec:\n  interval: 10m\n  path: ./infra\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n  postBuild:\n    substitute:\n      GREETING: hi\n    substituteFrom:\n    - kind: ConfigMap\n      name: cluster-vars\n    - kind: Secret\n      name: optional-vars\n      optional: true\n"),
        ("clusters/lab/apps.yaml", "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: apps\n  namespace: flux-system\nspec:\n  interval: 10m\n  dependsOn:\n  - name: infra\n  path: ./apps\n  prune: true\n  targetNamespace: default\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n"),
        ("infra/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- namespace.yaml\n- vars.yaml\n- charts\n"),
        ("infra/namespace.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: infra\n"),
        ("infra/vars.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: infra\ndata:\n  region: ${CLUSTER_REGION}\n  greeting: ${GREETING:=hello}\n  missing: \"[${NOT_SET}]\"\n  defaulted: ${OTHER:=fallback}\n  escaped: $${CLUSTER_REGION}\n"),
        ("infra/charts/kustomization.yaml", "resources:\n- repo.yaml\n- release.yaml\n"),
        ("infra/charts/repo.yaml", "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: podinfo\n  namespace: infra\nspec:\n  interval: 1h\n  url: https://stefanprodan.github.io/podinfo\n"),
        ("infra/charts/release.yaml", "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: podinfo\n  namespace: infra\nspec:\n  interval: 1h\n  chart:\n    spec:\n      chart: podinfo\n      version: 6.7.0\n      sourceRef:\n        kind: HelmRepository\n        name: podinfo\n"),
        ("apps/web/deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: example.invalid/web:1\n"),
        ("apps/web/notes.txt", "not a manifest"),
        ("apps/config.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  mode: demo\n"),
    ]
}

const BOOTSTRAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cluster-vars\n  namespace: flux-system\ndata:\n  CLUSTER_REGION: eu-west-1\n  GREETING: overridden-by-inline\n---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 1m\n  url: https://github.com/acme/lab-gitops.git\n  ref:\n    branch: main\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: flux-system\n  namespace: flux-system\nspec:\n  interval: 10m\n  path: ./clusters/lab\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n";

fn flux_deployments() -> String {
    controller_deployments(&[
        ("flux-system", "source-controller"),
        ("flux-system", "kustomize-controller"),
        ("flux-system", "helm-controller"),
    ])
}

/// Flux alone (no other controllers) on a fresh kubesim, its root Kustomization at `path` of
/// `repo`, with no cluster variables.
async fn flux_on(repo: &std::path::Path, path: &str) -> anyhow::Result<(Sim, Controllers)> {
    let s = start(true).await?;
    let controllers = Controllers::start(
        &s.sim,
        ControllerOptions::default().with_flux(FluxOptions::default().with_repository(URL, repo)),
    );
    apply_yaml(&s.client, &flux_deployments()).await?;
    apply_yaml(
        &s.client,
        &BOOTSTRAP
            .replace("./clusters/lab", path)
            .replace("  CLUSTER_REGION: eu-west-1\n", ""),
    )
    .await?;
    Ok((s, controllers))
}

async fn ks(c: &kube::Client, name: &str) -> anyhow::Result<Option<Value>> {
    get(c, KS, "Kustomization", Some("flux-system"), name).await
}

fn inventory_ids(obj: &Value) -> Vec<String> {
    obj.pointer("/status/inventory/entries")
        .and_then(Value::as_array)
        .map(|e| {
            e.iter()
                .filter_map(|e| e["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn applies_tree_in_dependency_order_substitutes_and_garbage_collects() -> anyhow::Result<()> {
    let (repo, sha) = fixture_repo(&tree())?;
    let s = start(true).await?;
    let c = &s.client;
    let plan = s.sim.faults();
    // infra fails at first: apps must wait for it (dependsOn), then follow once it recovers.
    let faults = ObjectFaults::new(s.sim.store(), &plan);
    faults.fail(
        ObjectFailure::new(
            "Kustomization",
            Some("flux-system"),
            "infra",
            "injected: infra broken",
        )
        .with_reason("HealthCheckFailed"),
    )?;
    let _controllers = Controllers::start(
        &s.sim,
        ControllerOptions::default()
            .with_flux(FluxOptions::default().with_repository(URL, repo.path()))
            .with_workloads(),
    );
    apply_yaml(c, &flux_deployments()).await?;
    apply_yaml(c, BOOTSTRAP).await?;
    let revision = format!("main@sha1:{sha}");

    let git_repo = eventually(10, "GitRepository ready", || async {
        Ok(get(
            c,
            "source.toolkit.fluxcd.io/v1",
            "GitRepository",
            Some("flux-system"),
            "flux-system",
        )
        .await?
        .filter(ready))
    })
    .await?;
    assert_eq!(
        git_repo["status"]["artifact"]["revision"],
        revision.as_str()
    );
    assert!(git_repo["metadata"]["finalizers"]
        .to_string()
        .contains("finalizers.fluxcd.io"));

    // infra is Stalled with the injected message; apps waits on it.
    let infra = eventually(10, "infra stalled", || async {
        Ok(ks(c, "infra")
            .await?
            .filter(|k| cond(k, "Stalled").is_some_and(|x| x["status"] == "True")))
    })
    .await?;
    assert_eq!(
        cond(&infra, "Ready").context("Ready")?["message"],
        "injected: infra broken"
    );
    let apps = eventually(10, "apps waiting for infra", || async {
        Ok(ks(c, "apps")
            .await?
            .filter(|k| cond(k, "Ready").is_some_and(|x| x["reason"] == "DependencyNotReady")))
    })
    .await?;
    assert_eq!(
        cond(&apps, "Ready").context("Ready")?["message"],
        "dependency 'flux-system/infra' is not ready"
    );
    assert!(
        get(c, "apps/v1", "Deployment", Some("default"), "web")
            .await?
            .is_none(),
        "apps applied before its dependency"
    );
    assert!(
        get(c, "v1", "ConfigMap", Some("infra"), "settings")
            .await?
            .is_none(),
        "failed infra was applied"
    );

    ensure!(faults.clear("Kustomization", Some("flux-system"), "infra"));
    let apps = eventually(15, "apps ready", || async {
        Ok(ks(c, "apps").await?.filter(ready))
    })
    .await?;
    let infra = ks(c, "infra").await?.context("infra")?;
    assert!(ready(&infra));
    let infra_ready = cond(&infra, "Ready").context("Ready")?["lastTransitionTime"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let apps_ready = cond(&apps, "Ready").context("Ready")?["lastTransitionTime"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        infra_ready <= apps_ready,
        "apps ready ({apps_ready}) before infra ({infra_ready})"
    );
    for k in [&infra, &apps] {
        assert_eq!(k["status"]["lastAppliedRevision"], revision.as_str());
        assert_eq!(k["status"]["lastAttemptedRevision"], revision.as_str());
        assert_eq!(
            k["status"]["observedGeneration"],
            k["metadata"]["generation"]
        );
    }
    let root = eventually(10, "root ready", || async {
        Ok(ks(c, "flux-system").await?.filter(ready))
    })
    .await?;
    assert_eq!(root["status"]["lastAppliedRevision"], revision.as_str());
    assert_eq!(
        inventory_ids(&root),
        vec![
            "flux-system_apps_kustomize.toolkit.fluxcd.io_Kustomization",
            "flux-system_infra_kustomize.toolkit.fluxcd.io_Kustomization",
        ]
    );
    assert_eq!(
        inventory_ids(&infra),
        vec![
            "_infra__Namespace",
            "infra_podinfo_helm.toolkit.fluxcd.io_HelmRelease",
            "infra_podinfo_source.toolkit.fluxcd.io_HelmRepository",
            "infra_settings__ConfigMap",
        ]
    );
    // No kustomization.yaml: every manifest, nested directories included, notes.txt skipped;
    // targetNamespace applies to all of them.
    assert_eq!(
        inventory_ids(&apps),
        vec![
            "default_web-config__ConfigMap",
            "default_web_apps_Deployment"
        ]
    );

    let settings = get(c, "v1", "ConfigMap", Some("infra"), "settings")
        .await?
        .context("settings")?;
    assert_eq!(settings["data"]["region"], "eu-west-1");
    assert_eq!(
        settings["data"]["greeting"], "hi",
        "inline substitute wins over substituteFrom"
    );
    assert_eq!(
        settings["data"]["missing"], "[]",
        "unset variable without default becomes empty"
    );
    assert_eq!(settings["data"]["defaulted"], "fallback");
    assert_eq!(settings["data"]["escaped"], "${CLUSTER_REGION}");
    assert_eq!(
        settings["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"],
        "infra"
    );
    assert!(settings["metadata"]["managedFields"]
        .to_string()
        .contains("kustomize-controller"));

    let hr = eventually(10, "HelmRelease ready", || async {
        Ok(get(c, HR, "HelmRelease", Some("infra"), "podinfo")
            .await?
            .filter(ready))
    })
    .await?;
    assert_eq!(
        cond(&hr, "Ready").context("Ready")?["reason"],
        "InstallSucceeded"
    );
    let workload = get(c, "apps/v1", "Deployment", Some("infra"), "podinfo")
        .await?
        .context("release workload")?;
    assert_eq!(
        workload["metadata"]["labels"]["app.kubernetes.io/instance"],
        "podinfo"
    );
    let web = eventually(10, "web available", || async {
        Ok(get(c, "apps/v1", "Deployment", Some("default"), "web")
            .await?
            .filter(|d| d["status"]["availableReplicas"] == 1))
    })
    .await?;
    assert_eq!(
        web["status"]["conditions"][1]["reason"],
        "NewReplicaSetAvailable"
    );

    // A new commit dropping a file: applied on the revision change and pruned.
    let sha2 = {
        std::fs::remove_file(repo.path().join("apps/config.yaml"))?;
        commit(
            repo.path(),
            &[(
                "apps/web/extra.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata: {}\n",
            )],
            "second",
        )?
    };
    let revision2 = format!("main@sha1:{sha2}");
    eventually(10, "apps at the new revision", || async {
        Ok(ks(c, "apps")
            .await?
            .filter(|k| k["status"]["lastAppliedRevision"] == revision2.as_str()))
    })
    .await?;
    eventually(5, "dropped ConfigMap pruned", || async {
        Ok(get(c, "v1", "ConfigMap", Some("default"), "web-config")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    assert!(get(c, "v1", "ConfigMap", Some("default"), "extra")
        .await?
        .is_some());

    // Suspend apps, then delete the root (apps' objects live in `default`, which no
    // Kustomization owns, so only garbage collection could remove them): infra and apps are garbage-collected; infra's
    // content goes with it, the suspended apps leaves its workloads behind.
    let patch = serde_json::json!({"spec": {"suspend": true}});
    api(c, KS, "Kustomization", Some("flux-system"))
        .patch(
            "apps",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await?;
    api(c, KS, "Kustomization", Some("flux-system"))
        .delete("flux-system", &Default::default())
        .await?;
    eventually(15, "root gone", || async {
        Ok(ks(c, "flux-system").await?.is_none().then_some(()))
    })
    .await?;
    // Flux's finalizer issues the deletes and lets go without waiting for them (no
    // WaitForTermination), so the children may still be finalizing when the root is gone.
    eventually(15, "children garbage-collected", || async {
        Ok((ks(c, "infra").await?.is_none() && ks(c, "apps").await?.is_none()).then_some(()))
    })
    .await?;
    eventually(
        15,
        "infra content garbage-collected, helm release uninstalled",
        || async {
            let settings = get(c, "v1", "ConfigMap", Some("infra"), "settings").await?;
            let release = get(c, HR, "HelmRelease", Some("infra"), "podinfo").await?;
            let workload = get(c, "apps/v1", "Deployment", Some("infra"), "podinfo").await?;
            Ok((settings.is_none() && release.is_none() && workload.is_none()).then_some(()))
        },
    )
    .await?;
    assert!(
        get(c, "apps/v1", "Deployment", Some("default"), "web")
            .await?
            .is_some(),
        "suspended Kustomization garbage-collected"
    );
    Ok(())
}

#[tokio::test]
async fn requested_reconcile_reapplies_and_controllers_gate() -> anyhow::Result<()> {
    let (repo, sha) = fixture_repo(&[("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\n  namespace: default\ndata:\n  v: \"1\"\n")])?;
    let (s, _controllers) = flux_on(repo.path(), "./app").await?;
    let c = &s.client;
    eventually(10, "root ready", || async {
        Ok(ks(c, "flux-system").await?.filter(ready))
    })
    .await?;
    assert_eq!(
        ks(c, "flux-system").await?.context("root")?["status"]["lastAppliedRevision"],
        format!("main@sha1:{sha}").as_str()
    );

    // Drift is corrected on a requested reconcile (and not before: no interval simulated).
    let cms = api(c, "v1", "ConfigMap", Some("default"));
    cms.delete("one", &Default::default()).await?;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(cms.get_opt("one").await?.is_none());
    let at = "2030-01-01T00:00:00Z";
    let patch =
        serde_json::json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": at}}});
    api(c, KS, "Kustomization", Some("flux-system"))
        .patch(
            "flux-system",
            &Default::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await?;
    eventually(10, "reconcile handled", || async {
        Ok(ks(c, "flux-system")
            .await?
            .filter(|k| k["status"]["lastHandledReconcileAt"] == at))
    })
    .await?;
    assert!(
        cms.get_opt("one").await?.is_some(),
        "requested reconcile did not re-apply"
    );

    // Without kustomize-controller nothing reconciles: a deleted Kustomization stays Terminating.
    api(c, "apps/v1", "Deployment", Some("flux-system"))
        .delete("kustomize-controller", &Default::default())
        .await?;
    api(c, KS, "Kustomization", Some("flux-system"))
        .delete("flux-system", &Default::default())
        .await?;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let stuck = ks(c, "flux-system")
        .await?
        .context("Kustomization vanished without its controller")?;
    assert!(stuck["metadata"]["deletionTimestamp"].is_string());
    assert!(cms.get_opt("one").await?.is_some());
    // The controller comes back: garbage collection completes.
    apply_yaml(c, &flux_deployments()).await?;
    eventually(10, "root gone", || async {
        Ok(ks(c, "flux-system").await?.is_none().then_some(()))
    })
    .await?;
    assert!(cms.get_opt("one").await?.is_none());
    Ok(())
}

/// Issue 24 item 2: the AWS load balancer controller without an explicit `vpcId` never becomes
/// ready (it cannot read instance metadata on hop-limit-1 nodes); with one, it installs.
#[tokio::test]
async fn a_load_balancer_controller_without_vpc_id_never_becomes_ready() -> anyhow::Result<()> {
    let release = |name: &str, values: &str| {
        format!(
            "apiVersion: {HR}\nkind: HelmRelease\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  interval: 1h\n  chart:\n    spec:\n      chart: aws-load-balancer-controller\n      version: 3.4.2\n      sourceRef:\n        kind: HelmRepository\n        name: eks\n  values:\n    clusterName: lab\n    region: eu-west-1\n{values}"
        )
    };
    let blind = release("lbc-blind", "");
    let told = release("lbc-told", "    vpcId: vpc-0123456789abcdef0\n");
    let repository = "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: eks\n  namespace: default\nspec:\n  interval: 1h\n  url: https://aws.github.io/eks-charts\n";
    let (repo, _sha) = fixture_repo(&[
        ("lb/repository.yaml", repository),
        ("lb/blind.yaml", &blind),
        ("lb/told.yaml", &told),
    ])?;
    let (s, _controllers) = flux_on(repo.path(), "./lb").await?;
    let c = &s.client;
    eventually(10, "lbc-told installed", || async {
        Ok(get(c, HR, "HelmRelease", Some("default"), "lbc-told")
            .await?
            .filter(ready))
    })
    .await?;
    let blind = eventually(10, "lbc-blind failed", || async {
        Ok(get(c, HR, "HelmRelease", Some("default"), "lbc-blind")
            .await?
            .filter(|hr| cond(hr, "Ready").is_some_and(|r| r["reason"] == "InstallFailed")))
    })
    .await?;
    let message = cond(&blind, "Ready").context("Ready")?["message"].to_string();
    ensure!(
        message.contains("failed to introspect vpcID"),
        "unexpected message: {message}"
    );
    ensure!(
        get(c, "apps/v1", "Deployment", Some("default"), "lbc-blind")
            .await?
            .is_none(),
        "a release that never became ready counts as installed"
    );
    Ok(())
}

/// The GitRepository `flux-system` once it has a Ready condition with `reason`.
async fn source_with_reason(c: &kube::Client, reason: &str) -> anyhow::Result<Value> {
    eventually(
        10,
        &format!("GitRepository Ready reason {reason}"),
        || async {
            Ok(get(
                c,
                "source.toolkit.fluxcd.io/v1",
                "GitRepository",
                Some("flux-system"),
                "flux-system",
            )
            .await?
            .filter(|r| cond(r, "Ready").is_some_and(|x| x["reason"] == reason)))
        },
    )
    .await
}

/// source-controller checks a GitRepository's Secret before it fetches (fluxcd/source-controller
/// `getAuthOpts`, fluxcd/pkg `git/options.go`): a missing Secret, or an `ssh://` source whose Secret
/// lacks `identity` or `known_hosts`, fails with reason AuthenticationFailed and its message.
#[tokio::test]
async fn a_git_source_needs_a_secret_that_suits_its_transport() -> anyhow::Result<()> {
    let (repo, _) = fixture_repo(&tree())?;
    let ssh = "ssh://git@github.com/acme/lab-gitops.git";
    let s = start(true).await?;
    let c = &s.client;
    let _controllers = Controllers::start(
        &s.sim,
        ControllerOptions::default().with_flux(
            FluxOptions::default()
                .with_repository(URL, repo.path())
                .with_repository(ssh, repo.path()),
        ),
    );
    apply_yaml(c, &flux_deployments()).await?;
    let with_secret = BOOTSTRAP.replace(
        "    branch: main\n",
        "    branch: main\n  secretRef:\n    name: flux-system\n",
    );
    apply_yaml(c, &with_secret).await?;
    let missing = source_with_reason(c, "AuthenticationFailed").await?;
    assert_eq!(
        cond(&missing, "Ready").context("Ready")?["message"],
        "failed to get secret 'flux-system/flux-system': secrets \"flux-system\" not found"
    );

    // HTTPS token auth (what labflow writes for an https:// source) fetches.
    let token_secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: flux-system\n  namespace: flux-system\nstringData:\n  username: git\n  password: read-only-token\n";
    apply_yaml(c, token_secret).await?;
    source_with_reason(c, "Succeeded").await?;

    // The same Secret for an ssh:// source: no identity, so no fetch.
    apply_yaml(
        c,
        &with_secret.replace("https://github.com/acme/lab-gitops.git", ssh),
    )
    .await?;
    let no_identity = source_with_reason(c, "AuthenticationFailed").await?;
    assert_eq!(
        cond(&no_identity, "Ready").context("Ready")?["message"],
        "failed to configure authentication options: invalid 'ssh' auth option: 'identity' is required"
    );
    api(c, "v1", "Secret", Some("flux-system"))
        .delete("flux-system", &Default::default())
        .await?;
    let identity_only = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: flux-system\n  namespace: flux-system\ntype: Opaque\ndata:\n  identity: a2V5\n";
    apply_yaml(c, identity_only).await?;
    let want = "failed to configure authentication options: invalid 'ssh' auth option: 'known_hosts' is required";
    eventually(10, "known_hosts required", || async {
        let r = get(
            c,
            "source.toolkit.fluxcd.io/v1",
            "GitRepository",
            Some("flux-system"),
            "flux-system",
        )
        .await?;
        Ok(r.filter(|r| {
            cond(r, "Ready").is_some_and(|x| x["message"] == want && x["status"] == "False")
        }))
    })
    .await?;
    Ok(())
}
