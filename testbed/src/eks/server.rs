//! A plain-HTTP loopback listener for the simulator (`AWS_ENDPOINT_URL_EKS`). The other AWS
//! services are the emulator's, at `AWS_ENDPOINT_URL`; there is no shared front door.

use super::{EksOptions, EksSim};
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The simulator on its own port. Stops when dropped.
pub struct EksServer {
    sim: EksSim,
    endpoint: String,
    task: JoinHandle<()>,
}

impl EksServer {
    pub async fn start(options: EksOptions) -> std::io::Result<EksServer> {
        let sim = EksSim::new(options);
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(serve(listener, sim.clone()));
        Ok(EksServer {
            sim,
            endpoint,
            task,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn sim(&self) -> &EksSim {
        &self.sim
    }
}

impl Drop for EksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, sim: EksSim) {
    let mut connections = JoinSet::new();
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "eks: accept failed");
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let sim = sim.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let sim = sim.clone();
                async move { Ok::<_, Infallible>(answer(&sim, req).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder.serve_connection(TokioIo::new(tcp), service).await {
                tracing::debug!(error = %e, "eks: connection ended");
            }
        });
    }
}

/// Reads a whole request and answers it through `sim`.
pub(crate) async fn answer(sim: &EksSim, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            tracing::debug!(error = %e, "eks: reading the request body failed");
            Bytes::new()
        }
    };
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    let caller = signing_access_key(&parts.headers);
    to_http(
        sim.handle_as(caller.as_deref(), parts.method.as_str(), path, query, &body)
            .await,
    )
}

/// The access key id of a SigV4 `Authorization` header
/// (`AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/eks/aws4_request, ...`). The signature is
/// not checked here: the emulator does not check them either.
fn signing_access_key(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let credential = value.split("Credential=").nth(1)?;
    let key = credential.split('/').next()?.trim();
    (!key.is_empty()).then(|| key.to_string())
}

pub(crate) fn to_http(r: super::EksResponse) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(r.body)));
    *resp.status_mut() =
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-amzn-requestid", id);
    }
    if let Some(t) = r.error_type {
        headers.insert("x-amzn-errortype", HeaderValue::from_static(t));
    }
    resp
}
