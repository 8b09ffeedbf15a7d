//! The HTTPS accept loop shared by kubesim and the EKS gateway: TLS with the cluster's
//! certificate, HTTP/1.1 or HTTP/2, one task per connection.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// Serves `handle` on every connection `listener` accepts until the task is aborted. `who`
/// names the server in logs.
pub(crate) async fn serve<H, Fut, B>(
    who: &'static str,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    handle: H,
) where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let acceptor = TlsAcceptor::from(tls);
    // Dropping the set (when this task is aborted) aborts every connection with it.
    let mut connections = JoinSet::new();
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "{who}: accept failed");
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let acceptor = acceptor.clone();
        let handle = handle.clone();
        connections.spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(e) => {
                    tracing::debug!(error = %e, "{who}: TLS handshake failed");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |req| {
                let response = handle(req);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder.serve_connection(TokioIo::new(tls), service).await {
                tracing::debug!(error = %e, "{who}: connection ended");
            }
        });
    }
}
