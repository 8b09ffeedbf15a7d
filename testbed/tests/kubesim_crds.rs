//! The real Flux 2.9, Istio 1.30 and cert-manager 1.21 CRDs (from the pinned cache `make crds`
//! fills) install, and their custom resources validate as on a real server.

mod kubesim_support;
mod wait_support;

use anyhow::{bail, ensure, Context as _};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kubesim_support::{api_error, cluster, eventually, unique, Cluster};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Instant;

fn load_crds() -> anyhow::Result<Vec<Value>> {
    let dir =
        labflow_testbed::paths::crd_cache_dir().context("no CRD cache location: run make crds")?;
    let mut files: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect(),
        Err(e) => bail!(
            "CRD cache {} is missing ({e}): run make crds",
            dir.display()
        ),
    };
    if files.is_empty() {
        bail!("CRD cache {} is empty: run make crds", dir.display());
    }
    files.sort();
    let mut crds = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value = Value::deserialize(doc).with_context(|| file.display().to_string())?;
            if value.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition") {
                crds.push(value);
            }
        }
    }
    Ok(crds)
}

fn crd_api(c: &Cluster) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        "customresourcedefinitions",
    );
    Api::all_with(c.client.clone(), &ar)
}

async fn install(c: &Cluster) -> anyhow::Result<usize> {
    let crds = load_crds()?;
    let api = crd_api(c);
    for crd in &crds {
        let name = crd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .context("CRD without a name")?;
        let obj: DynamicObject = serde_json::from_value(crd.clone())?;
        api.patch(
            name,
            &PatchParams::apply("kubesim-crd-test").force(),
            &Patch::Apply(&obj),
        )
        .await
        .with_context(|| format!("installing {name}"))?;
    }
    for crd in &crds {
        let name = crd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        eventually(60, || async {
            let live = api.get(&name).await?;
            let established = live
                .data
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Established" && c["status"] == "True")
                });
            Ok(established.then_some(()))
        })
        .await?;
    }
    Ok(crds.len())
}

fn api(
    c: &Cluster,
    ns: &str,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    Api::namespaced_with(
        c.client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural),
    )
}

fn object(v: Value) -> anyhow::Result<DynamicObject> {
    Ok(serde_json::from_value(v)?)
}

#[tokio::test]
async fn flux_istio_and_cert_manager_crds_validate_like_a_real_server() -> anyhow::Result<()> {
    let c = cluster().await?;
    let started = Instant::now();
    let installed = install(&c).await?;
    ensure!(installed >= 16, "only {installed} CRDs found in the cache");
    eprintln!("installed {installed} CRDs in {:?}", started.elapsed());

    let ns = unique("crds");
    let namespaces = Api::<k8s_openapi::api::core::v1::Namespace>::all(c.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await?;

    let helm = api(
        &c,
        &ns,
        "helm.toolkit.fluxcd.io",
        "v2",
        "HelmRelease",
        "helmreleases",
    );
    let release = object(json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "podinfo"},
        "spec": {
            "interval": "10m",
            "chart": {"spec": {"chart": "podinfo", "version": "6.x", "sourceRef": {"kind": "HelmRepository", "name": "podinfo"}}},
            "install": {"remediation": {"retries": 3}},
            "values": {"replicaCount": 2, "anything": {"goes": ["here"]}}
        }
    }))?;
    let created = helm
        .create(&PostParams::default(), &release)
        .await
        .context("a valid HelmRelease v2 is accepted")?;
    ensure!(
        created.data["spec"]["values"]["anything"]["goes"][0] == "here",
        "values preserved: {}",
        created.data
    );

    let bad_release = object(json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "broken"},
        "spec": {"interval": "10m", "chart": {"spec": {"chart": "podinfo", "sourceRef": {"kind": "GitHub", "name": "x"}}}}
    }))?;
    let err = api_error(helm.create(&PostParams::default(), &bad_release).await)?;
    ensure!(
        err.code == 422 && err.message.contains("spec.chart.spec.sourceRef.kind"),
        "{err:?}"
    );

    let kustomizations = api(
        &c,
        &ns,
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "Kustomization",
        "kustomizations",
    );
    let no_source = object(json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "apps"}, "spec": {"interval": "5m", "prune": true}
    }))?;
    let err = api_error(
        kustomizations
            .create(&PostParams::default(), &no_source)
            .await,
    )?;
    ensure!(
        err.code == 422 && err.message.contains("spec.sourceRef"),
        "{err:?}"
    );

    let peer = api(
        &c,
        &ns,
        "security.istio.io",
        "v1",
        "PeerAuthentication",
        "peerauthentications",
    );
    let strict = object(json!({
        "apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
        "metadata": {"name": "default"}, "spec": {"mtls": {"mode": "STRICT"}}
    }))?;
    peer.create(&PostParams::default(), &strict)
        .await
        .context("STRICT is accepted")?;
    let typo = object(json!({
        "apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
        "metadata": {"name": "typo"}, "spec": {"mtls": {"mode": "STRICTT"}}
    }))?;
    let err = api_error(peer.create(&PostParams::default(), &typo).await)?;
    ensure!(err.code == 422 && err.reason == "Invalid", "{err:?}");
    ensure!(err.message.contains("spec.mtls.mode"), "{}", err.message);
    ensure!(err.message.contains("STRICTT"), "{}", err.message);
    let fields: Vec<String> = err
        .details
        .map(|d| d.causes.into_iter().map(|c| c.field).collect())
        .unwrap_or_default();
    ensure!(fields.iter().any(|f| f == "spec.mtls.mode"), "{fields:?}");

    let certs = api(
        &c,
        &ns,
        "cert-manager.io",
        "v1",
        "Certificate",
        "certificates",
    );
    let cert = object(json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "web"},
        "spec": {"secretName": "web-tls", "dnsNames": ["web.example.com"], "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}}
    }))?;
    certs
        .create(&PostParams::default(), &cert)
        .await
        .context("a valid Certificate is accepted")?;
    let no_secret = object(json!({
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "broken"}, "spec": {"dnsNames": ["x"], "issuerRef": {"name": "le"}}
    }))?;
    let err = api_error(certs.create(&PostParams::default(), &no_secret).await)?;
    ensure!(
        err.code == 422 && err.message.contains("spec.secretName"),
        "{err:?}"
    );

    eprintln!("whole test in {:?}", started.elapsed());
    namespaces.delete(&ns, &Default::default()).await?;
    Ok(())
}
