//! An EKS cluster endpoint in front of a real Kubernetes cluster (kind, k3d, ...): what the EKS
//! simulator serves instead of a kubesim when it is given an upstream kubeconfig.
//!
//! Callers see what an EKS endpoint is: HTTPS with the cluster's own CA, authenticated with EKS
//! tokens (checked exactly as kubesim checks them). An accepted request is forwarded, unchanged
//! apart from its credentials, to the upstream cluster with the kubeconfig's credentials, and its
//! answer (watch streams included) is passed back as it comes. A refused request never reaches
//! the upstream cluster.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::kubesim::auth::{self, AuthConfig};
use crate::kubesim::errors::ApiError;
use crate::kubesim::tls;

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// The largest request body forwarded (the real API server's limit is 3 MiB per object).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Request headers passed on; everything else (authorization above all) is the gateway's.
const FORWARDED_REQUEST_HEADERS: &[header::HeaderName] =
    &[header::ACCEPT, header::CONTENT_TYPE, header::USER_AGENT];

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("kubeconfig {path}: {source}")]
    Client {
        path: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("binding a loopback port: {0}")]
    Bind(#[from] std::io::Error),
}

/// The real cluster the gateways forward to.
#[derive(Clone)]
pub struct Upstream {
    client: kube::Client,
    /// The API server URL, for logs and messages.
    pub server: String,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// The current context of the kubeconfig at `path` (the credentials it holds, exec plugins
    /// included, are used as they are; nothing is written back).
    pub async fn from_kubeconfig(path: &Path) -> Result<Upstream, GatewayError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let shown = path.display().to_string();
        let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|source| {
            GatewayError::Kubeconfig {
                path: shown.clone(),
                source,
            }
        })?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|source| GatewayError::Kubeconfig {
                path: shown.clone(),
                source,
            })?;
        let server = config.cluster_url.to_string();
        let client = kube::Client::try_from(config).map_err(|source| GatewayError::Client {
            path: shown,
            source,
        })?;
        Ok(Upstream { client, server })
    }
}

/// A running gateway. Stops serving when dropped.
pub struct Gateway {
    endpoint: String,
    ca_pem: String,
    task: JoinHandle<()>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Context {
    auth: AuthConfig,
    upstream: Upstream,
}

impl Gateway {
    /// Serves HTTPS on a free loopback port with a fresh CA, accepting EKS tokens for
    /// `cluster_name` signed with one of `credentials`.
    pub async fn start(
        cluster_name: &str,
        credentials: Vec<(String, String)>,
        upstream: Upstream,
    ) -> Result<Gateway, GatewayError> {
        let tls = tls::generate(cluster_name)?;
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let endpoint = format!("https://{}", listener.local_addr()?);
        let ctx = Arc::new(Context {
            auth: AuthConfig {
                cluster_name: cluster_name.to_string(),
                credentials,
                static_token: None,
                // The upstream cluster's own RBAC decides; access entries are not consulted.
                access: None,
            },
            upstream,
        });
        tracing::info!(%endpoint, cluster = %cluster_name, upstream = %ctx.upstream.server, "eks: cluster endpoint forwards to a real cluster");
        let task = tokio::spawn(crate::https::serve(
            "gateway",
            listener,
            tls.server_config,
            move |req| {
                let ctx = ctx.clone();
                async move { handle(&ctx, req).await }
            },
        ));
        Ok(Gateway {
            endpoint,
            ca_pem: tls.ca_pem,
            task,
        })
    }

    /// `https://127.0.0.1:<port>`
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The CA as EKS's DescribeCluster returns it (`certificateAuthority.data`): base64 of the PEM.
    pub fn ca_base64(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes())
    }
}

fn status_response(err: &ApiError) -> Response<Body> {
    let body = Full::new(Bytes::from(err.to_status().to_string()))
        .map_err(|never: Infallible| match never {})
        .boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() =
        StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

async fn handle(ctx: &Context, req: Request<Incoming>) -> Response<Body> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(e) = auth::authenticate(&ctx.auth, authorization, chrono::Utc::now()) {
        tracing::info!(reason = %e, path = %req.uri().path(), "gateway: request refused (401)");
        return status_response(&ApiError::unauthorized());
    }
    let (parts, body) = req.into_parts();
    let body = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return status_response(&ApiError::bad_request(format!(
                "reading the request body: {e}"
            )))
        }
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_string(), ToString::to_string);
    let mut forward = Request::builder().method(parts.method).uri(path_and_query);
    for name in FORWARDED_REQUEST_HEADERS {
        for value in parts.headers.get_all(name) {
            forward = forward.header(name, value);
        }
    }
    let forward = match forward.body(kube::client::Body::from(body.to_vec())) {
        Ok(r) => r,
        Err(e) => return status_response(&ApiError::bad_request(e.to_string())),
    };
    match ctx.upstream.client.send(forward).await {
        Ok(answer) => {
            let (parts, body) = answer.into_parts();
            // Streamed as it comes: a watch is an answer that never ends.
            let mut resp = Response::new(body.map_err(std::io::Error::other).boxed_unsync());
            *resp.status_mut() = parts.status;
            for (name, value) in parts.headers.iter() {
                if name != header::CONNECTION && name != header::TRANSFER_ENCODING {
                    resp.headers_mut().append(name, value.clone());
                }
            }
            resp
        }
        Err(e) => {
            tracing::warn!(error = %e, upstream = %ctx.upstream.server, "gateway: upstream unreachable");
            status_response(&ApiError::service_unavailable(format!(
                "the upstream cluster {} did not answer: {e}",
                ctx.upstream.server
            )))
        }
    }
}
