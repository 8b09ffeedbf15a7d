//! Shared by the controllers_* and faults_* tests: kubesim with the real Flux CRDs, a
//! kube::Client with an EKS token, fixture git repositories, polling.
#![allow(dead_code)]

use anyhow::{bail, Context as _};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use base64::Engine;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use labflow_testbed::kubesim::store::{Gvr, WriteOptions};
use labflow_testbed::kubesim::{KubeSim, KubeSimOptions};
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

pub const CLUSTER: &str = "controllers";
pub const ACCESS_KEY: &str = "AKIACONTROLLERSTEST1";
pub const SECRET_KEY: &str = "controllers/secret/key/for/tests/only/00";
pub const REGION: &str = "eu-west-1";

/// `k8s-aws-v1.` + base64url(presigned STS GetCallerIdentity URL), as `aws eks get-token` makes it.
pub fn eks_token() -> anyhow::Result<String> {
    let host = format!("sts.{REGION}.amazonaws.com");
    let url = format!("https://{host}/?Action=GetCallerIdentity&Version=2011-06-15");
    let identity = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "tests").into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("sts")
        .time(SystemTime::now())
        .settings(settings)
        .build()?
        .into();
    let headers = [("host", host.as_str()), ("x-k8s-aws-id", CLUSTER)];
    let request = SignableRequest::new("GET", &url, headers.into_iter(), SignableBody::Bytes(&[]))?;
    let (instructions, _) = sign(request, &params)?.into_parts();
    let mut signed = url::Url::parse(&url)?;
    for (k, v) in instructions.params() {
        signed.query_pairs_mut().append_pair(k, v);
    }
    Ok(format!(
        "k8s-aws-v1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signed.as_str())
    ))
}

pub struct Sim {
    pub sim: KubeSim,
    pub client: kube::Client,
    pub config: kube::Config,
}

fn pem_to_der(pem: &str) -> anyhow::Result<Vec<u8>> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    Ok(base64::engine::general_purpose::STANDARD.decode(body)?)
}

/// kubesim plus a client; `flux_crds` installs Flux's CRDs straight into the store.
pub async fn start(flux_crds: bool) -> anyhow::Result<Sim> {
    // aws-sdk (aws-lc) and kube (ring) both enable a rustls provider: pick one for the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = KubeSim::start(KubeSimOptions::new(CLUSTER).with_credentials(ACCESS_KEY, SECRET_KEY))
        .await?;
    if flux_crds {
        install_flux_crds(&sim)?;
    }
    let mut config = kube::Config::new(sim.endpoint().parse()?);
    config.root_cert = Some(vec![pem_to_der(&sim.ca_pem())?]);
    config.auth_info.token = Some(eks_token()?.into());
    config.read_timeout = Some(Duration::from_secs(5));
    let client = kube::Client::try_from(config.clone())?;
    Ok(Sim {
        sim,
        client,
        config,
    })
}

fn install_flux_crds(sim: &KubeSim) -> anyhow::Result<()> {
    let cache = labflow_testbed::paths::crd_cache_dir().context("no CRD cache location")?;
    let dir = if cache.is_dir() {
        cache
    } else {
        Path::new("/work/shared/crds").to_path_buf()
    };
    let gvr = Gvr {
        group: "apiextensions.k8s.io".into(),
        version: "v1".into(),
        plural: "customresourcedefinitions".into(),
    };
    let mut n = 0;
    for file in [
        "source-controller__source.toolkit.fluxcd.io_gitrepositories.yaml",
        "source-controller__source.toolkit.fluxcd.io_helmrepositories.yaml",
        "source-controller__source.toolkit.fluxcd.io_ocirepositories.yaml",
        "kustomize-controller__kustomize.toolkit.fluxcd.io_kustomizations.yaml",
        "helm-controller__helm.toolkit.fluxcd.io_helmreleases.yaml",
    ] {
        let text = std::fs::read_to_string(dir.join(file))
            .with_context(|| format!("{file} (run make crds)"))?;
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let crd = Value::deserialize(doc)?;
            if crd.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition") {
                sim.store()
                    .create(
                        &gvr,
                        None,
                        crd,
                        &WriteOptions {
                            manager: "test".into(),
                            ..Default::default()
                        },
                    )
                    .map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
                n += 1;
            }
        }
    }
    if n != 5 {
        bail!("expected 5 Flux CRDs, found {n}");
    }
    Ok(())
}

pub fn api(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let plural = format!("{}s", kind.to_lowercase())
        .replace("ingresss", "ingresses")
        .replace("repositorys", "repositories");
    let ar = ApiResource::from_gvk_with_plural(&gvk, &plural);
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// Server-side applies every document of a YAML string through the API.
pub async fn apply_yaml(client: &kube::Client, yaml: &str) -> anyhow::Result<()> {
    for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
        let v = Value::deserialize(doc)?;
        if v.is_null() {
            continue;
        }
        let api_version = v["apiVersion"].as_str().context("apiVersion")?;
        let kind = v["kind"].as_str().context("kind")?;
        let name = v["metadata"]["name"].as_str().context("name")?;
        let ns = v["metadata"]["namespace"].as_str();
        let obj: DynamicObject = serde_json::from_value(v.clone())?;
        api(client, api_version, kind, ns)
            .patch(
                name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(&obj),
            )
            .await
            .with_context(|| format!("applying {kind} {name}"))?;
    }
    Ok(())
}

/// The object as JSON, or None when it does not exist.
pub async fn get(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
    ns: Option<&str>,
    name: &str,
) -> anyhow::Result<Option<Value>> {
    Ok(api(client, api_version, kind, ns)
        .get_opt(name)
        .await?
        .map(serde_json::to_value)
        .transpose()?)
}

pub fn cond<'a>(obj: &'a Value, t: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == t)
}

pub fn ready(obj: &Value) -> bool {
    cond(obj, "Ready").is_some_and(|c| c["status"] == "True")
}

use crate::wait_support;

/// Polls `check` until it returns Some, for at most `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    wait_support::until(what, Duration::from_secs(secs), check).await
}

/// `git` in a directory (test fixture repos).
pub fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!("git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A git repository on branch `main` with the files of `tree` (path → content), committed.
pub fn fixture_repo(tree: &[(&str, &str)]) -> anyhow::Result<(tempfile::TempDir, String)> {
    let dir = tempfile::tempdir()?;
    git(dir.path(), &["init", "-q", "-b", "main"])?;
    let sha = commit(dir.path(), tree, "fixture")?;
    Ok((dir, sha))
}

/// Writes the files and commits them; returns the new commit.
pub fn commit(dir: &Path, tree: &[(&str, &str)], message: &str) -> anyhow::Result<String> {
    for (path, content) in tree {
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, content)?;
    }
    git(dir, &["add", "-A"])?;
    git(dir, &["commit", "-q", "-m", message])?;
    git(dir, &["rev-parse", "HEAD"])
}

/// Deployments standing for running controllers.
pub fn controller_deployments(names: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (ns, name) in names {
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    app.kubernetes.io/name: {name}\nspec:\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n      - name: c\n        image: example.invalid/{name}:1\n"
        ));
    }
    out
}
