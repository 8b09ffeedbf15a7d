//! A stand-in for GitHub's release downloads: a loopback HTTP server that serves files by path,
//! and a small Flux `install.yaml` (the real Flux CRDs from the pinned cache, the `flux-system`
//! namespace, the controllers' service accounts and Deployments) to serve from it.
//!
//! The real `install.yaml` is ~10k lines of controllers we simulate anyway; what matters for the
//! steps is the shape: CRDs that must be Established before the rest, a namespace, cluster roles,
//! and Deployments whose presence the simulated Flux controllers require.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The Flux CRD files of the pinned cache that `install.yaml` carries.
const FLUX_CRD_FILES: &[&str] = &[
    "source-controller__source.toolkit.fluxcd.io_gitrepositories.yaml",
    "source-controller__source.toolkit.fluxcd.io_helmrepositories.yaml",
    "source-controller__source.toolkit.fluxcd.io_helmcharts.yaml",
    "source-controller__source.toolkit.fluxcd.io_ocirepositories.yaml",
    "source-controller__source.toolkit.fluxcd.io_buckets.yaml",
    "source-controller__source.toolkit.fluxcd.io_externalartifacts.yaml",
    "kustomize-controller__kustomize.toolkit.fluxcd.io_kustomizations.yaml",
    "helm-controller__helm.toolkit.fluxcd.io_helmreleases.yaml",
    "notification-controller__notification.toolkit.fluxcd.io_alerts.yaml",
    "notification-controller__notification.toolkit.fluxcd.io_providers.yaml",
    "notification-controller__notification.toolkit.fluxcd.io_receivers.yaml",
];

/// The controllers `flux install` deploys.
pub const FLUX_CONTROLLERS: &[&str] = &[
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
];

/// Charts of the lab's stack that bring CRDs, and the pinned CRD files they bring (Istio's
/// `base` chart carries all of Istio's CRDs; cert-manager renders its own with `crds.enabled`).
const CHART_CRD_FILES: &[(&str, &[&str])] = &[
    ("base", &["istio__crd-all.gen.yaml"]),
    (
        "cert-manager",
        &[
            "cert-manager__cert-manager.io_certificaterequests.yaml",
            "cert-manager__cert-manager.io_certificates.yaml",
            "cert-manager__cert-manager.io_clusterissuers.yaml",
            "cert-manager__cert-manager.io_issuers.yaml",
        ],
    ),
];

/// Chart name → the CRDs its release installs, from the pinned cache (for
/// `FluxOptions::with_chart_crds`).
pub fn chart_crds(
    crd_dir: &Path,
) -> Result<std::collections::BTreeMap<String, Vec<serde_json::Value>>, ReleaseError> {
    use serde::Deserialize as _;
    let mut out = std::collections::BTreeMap::new();
    for (chart, files) in CHART_CRD_FILES {
        let mut crds = Vec::new();
        for file in *files {
            let text = read_crd(crd_dir, file)?;
            for doc in serde_yaml_ng::Deserializer::from_str(&text) {
                let value = serde_json::Value::deserialize(doc).map_err(|e| {
                    ReleaseError::Yaml(crd_dir.join(file).display().to_string(), e.to_string())
                })?;
                if value.get("kind").and_then(serde_json::Value::as_str)
                    == Some("CustomResourceDefinition")
                {
                    crds.push(value);
                }
            }
        }
        out.insert((*chart).to_string(), crds);
    }
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("{0} is not valid YAML: {1}")]
    Yaml(String, String),
    #[error("CRD cache {0} is missing {1} (run `make crds`)")]
    MissingCrd(String, String),
    #[error("reading {0}: {1}")]
    Read(String, #[source] std::io::Error),
    #[error("binding the release server: {0}")]
    Bind(#[source] std::io::Error),
}

/// One file of the pinned CRD cache; a missing one says the cache is incomplete.
fn read_crd(crd_dir: &Path, file: &str) -> Result<String, ReleaseError> {
    let path = crd_dir.join(file);
    if !path.is_file() {
        return Err(ReleaseError::MissingCrd(
            crd_dir.display().to_string(),
            file.to_string(),
        ));
    }
    std::fs::read_to_string(&path).map_err(|e| ReleaseError::Read(path.display().to_string(), e))
}

/// A Flux `install.yaml` for `version`, built from the pinned CRD cache in `crd_dir`.
pub fn flux_install_manifest(crd_dir: &Path, version: &str) -> Result<String, ReleaseError> {
    let mut docs = Vec::new();
    for file in FLUX_CRD_FILES {
        let text = read_crd(crd_dir, file)?;
        docs.push(text.trim().trim_start_matches("---").trim().to_string());
    }
    let labels = format!(
        "    app.kubernetes.io/instance: flux-system\n    app.kubernetes.io/part-of: flux\n    app.kubernetes.io/version: v{version}\n"
    );
    docs.push(format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n  labels:\n{labels}    pod-security.kubernetes.io/warn: restricted\n"
    ));
    docs.push(format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: crd-controller-flux-system\n  labels:\n{labels}rules:\n- apiGroups: [\"source.toolkit.fluxcd.io\", \"kustomize.toolkit.fluxcd.io\", \"helm.toolkit.fluxcd.io\", \"notification.toolkit.fluxcd.io\"]\n  resources: [\"*\"]\n  verbs: [\"*\"]\n"
    ));
    docs.push(format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: cluster-reconciler-flux-system\n  labels:\n{labels}roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin\nsubjects:\n- kind: ServiceAccount\n  name: kustomize-controller\n  namespace: flux-system\n- kind: ServiceAccount\n  name: helm-controller\n  namespace: flux-system\n"
    ));
    for controller in FLUX_CONTROLLERS {
        docs.push(format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {controller}\n  namespace: flux-system\n  labels:\n{labels}"
        ));
        docs.push(format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {controller}\n  namespace: flux-system\n  labels:\n{labels}    control-plane: controller\n    app.kubernetes.io/component: {controller}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {controller}\n  template:\n    metadata:\n      labels:\n        app: {controller}\n    spec:\n      serviceAccountName: {controller}\n      containers:\n      - name: manager\n        image: ghcr.io/fluxcd/{controller}:v{version}\n"
        ));
    }
    Ok(docs.join("\n---\n"))
}

/// Serves fixed files over HTTP on loopback, and records what was asked for.
pub struct ReleaseServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl ReleaseServer {
    /// Serve `files` (URL path → body) on a free loopback port.
    pub async fn start(files: HashMap<String, Vec<u8>>) -> Result<Self, ReleaseError> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(ReleaseError::Bind)?;
        let addr = listener.local_addr().map_err(ReleaseError::Bind)?;
        let files = Arc::new(files);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let files = files.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let files = files.clone();
                        let log = log.clone();
                        async move {
                            let path = req.uri().path().to_string();
                            if let Ok(mut seen) = log.lock() {
                                seen.push(path.clone());
                            }
                            let response = match files.get(&path) {
                                Some(body) => Response::new(Full::new(Bytes::from(body.clone()))),
                                None => {
                                    let mut not_found =
                                        Response::new(Full::new(Bytes::from_static(b"Not Found")));
                                    *not_found.status_mut() = StatusCode::NOT_FOUND;
                                    not_found
                                }
                            };
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            requests,
            task,
        })
    }

    /// `http://127.0.0.1:<port>` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Paths requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for ReleaseServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
