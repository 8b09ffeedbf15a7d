//! A second door onto the testbed's EKS simulator that can "crash" the caller right after its
//! k-th write call: that write is handled by the simulator (the world changes), its answer is
//! never sent, and the test is told so it can drop the handler's future — a Lambda killed (or
//! timed out) after a write whose answer it never saw.
//!
//! The EKS simulator has no AWS-side fault hooks of its own (the testbed's front door, which
//! would consult the fault plan for AWS requests, does not exist yet), so this door calls the
//! very same simulator (`EksSim::handle`) and only decides when to stop answering. Nothing is
//! mocked: every request is answered by the simulator and recorded in its request log.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use labflow_testbed::eks::EksSim;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

struct Shared {
    sim: EksSim,
    /// Crash after this many write calls (counted since `arm`); `None`: answer everything.
    crash_after: Mutex<Option<usize>>,
    writes: AtomicUsize,
    crashed: Notify,
}

/// The crashing door. Stops listening when dropped.
pub struct CrashingEks {
    endpoint: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl CrashingEks {
    pub async fn start(sim: EksSim) -> std::io::Result<CrashingEks> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            sim,
            crash_after: Mutex::new(None),
            writes: AtomicUsize::new(0),
            crashed: Notify::new(),
        });
        let task = tokio::spawn(serve(listener, shared.clone()));
        Ok(CrashingEks {
            endpoint,
            shared,
            task,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// From now on, the `k`-th write call is handled and then never answered (nor is anything
    /// after it).
    pub fn arm(&self, k: usize) {
        self.shared.writes.store(0, Ordering::SeqCst);
        if let Ok(mut c) = self.shared.crash_after.lock() {
            *c = Some(k);
        }
    }

    /// Answer everything again.
    pub fn disarm(&self) {
        if let Ok(mut c) = self.shared.crash_after.lock() {
            *c = None;
        }
    }

    /// Resolves once the armed write has been handled (its answer withheld).
    pub async fn crashed(&self) {
        self.shared.crashed.notified().await;
    }
}

impl Drop for CrashingEks {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        let shared = shared.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(answer(&shared, req).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}

async fn answer(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let armed = shared.crash_after.lock().ok().and_then(|c| *c);
    // Once crashed, the caller is gone: nothing more is handled.
    if armed.is_some_and(|k| shared.writes.load(Ordering::SeqCst) >= k) {
        std::future::pending::<()>().await;
    }
    let response = shared
        .sim
        .handle(
            parts.method.as_str(),
            parts.uri.path(),
            parts.uri.query().unwrap_or(""),
            &body,
        )
        .await;
    // EKS reads are GETs (Describe*, List*); every write is a POST or DELETE.
    if parts.method != Method::GET {
        let n = shared.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if armed == Some(n) {
            shared.crashed.notify_one();
            std::future::pending::<()>().await;
        }
    }
    let mut resp = Response::new(Full::new(Bytes::from(response.body)));
    *resp.status_mut() =
        StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(
        "x-amzn-requestid",
        HeaderValue::from_static("crashing-door"),
    );
    if let Some(t) = response.error_type {
        headers.insert("x-amzn-errortype", HeaderValue::from_static(t));
    }
    resp
}
