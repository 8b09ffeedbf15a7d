//! The HTTPS server: TLS, authentication, request log, and replies.

use super::auth::{self, AuthConfig};
use super::errors::ApiError;
use super::handlers::{self, Reply};
use super::requests::{RequestLog, RequestRecord};
use super::routes;
use super::store::Store;
use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The largest request body accepted (the real server's limit is 3 MiB per object).
const MAX_BODY: usize = 8 * 1024 * 1024;

pub struct Context {
    pub store: Store,
    pub auth: AuthConfig,
    pub requests: RequestLog,
    pub server_address: String,
    pub faults: crate::fault_plan::FaultPlan,
}

pub async fn serve(listener: TcpListener, tls: Arc<rustls::ServerConfig>, ctx: Arc<Context>) {
    crate::https::serve("kubesim", listener, tls, move |req| {
        let ctx = ctx.clone();
        async move { handle(&ctx, req).await }
    })
    .await
}

fn json_response(status: u16, body: &serde_json::Value, warnings: &[String]) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())).boxed_unsync());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append("Warning", v);
        }
    }
    resp
}

fn error_response(err: &ApiError) -> Response<Body> {
    json_response(err.code, &err.to_status(), &[])
}

/// An injected HTTP error. A 429 looks like API Priority and Fairness rejecting the request:
/// `Retry-After: 1` and `details.retryAfterSeconds: 1`, which clients (kube-rs, client-go)
/// honour before retrying.
fn injected_response(code: u16, message: &str) -> Response<Body> {
    let mut status = kube_error(code, message).to_status();
    if code == 429 {
        status["details"] = serde_json::json!({"retryAfterSeconds": 1});
    }
    let mut resp = json_response(code, &status, &[]);
    if code == 429 {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

async fn handle(ctx: &Context, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let query: HashMap<String, String> = url::form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect();
    let header = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let user_agent = header(header::USER_AGENT).unwrap_or_default();
    let content_type = header(header::CONTENT_TYPE).unwrap_or_default();
    let authorization = header(header::AUTHORIZATION);
    let route = routes::parse(&path);
    let verb = handlers::verb(&method, &route, &query);
    let (resource, namespace) = match &route {
        routes::Route::Resource { gvr, namespace, .. } => {
            (Some(gvr.plural.clone()), namespace.clone())
        }
        _ => (None, None),
    };
    let mut record = RequestRecord {
        method: method.clone(),
        path: path.clone(),
        query: raw_query,
        verb: verb.to_string(),
        resource,
        namespace,
        status: 0,
        user_agent: user_agent.clone(),
    };

    let identity = auth::authenticate(&ctx.auth, authorization.as_deref(), chrono::Utc::now());
    let allowed = match identity {
        Err(e) => {
            tracing::info!(reason = %e, path = %path, "kubesim: request refused (401)");
            Err(ApiError::unauthorized())
        }
        Ok(identity) => authorize(ctx, &identity, &route, verb),
    };
    let response = match allowed {
        Err(err) => error_response(&err),
        Ok(()) => {
            let info =
                crate::fault_plan::RequestInfo::kubernetes(&ctx.auth.cluster_name, &method, &path);
            if let Some(action) = ctx.faults.check(&info) {
                if let crate::fault_plan::FaultAction::Respond { code, message } = &action {
                    let resp = injected_response(*code, message);
                    record.status = resp.status().as_u16();
                    ctx.requests.push(record);
                    return resp;
                }
                action.wait().await;
            }
            let body = match http_body_util::Limited::new(req.into_body(), MAX_BODY)
                .collect()
                .await
            {
                Ok(collected) => collected.to_bytes(),
                Err(e) => {
                    let resp = error_response(&ApiError::bad_request(format!(
                        "reading the request body: {e}"
                    )));
                    record.status = resp.status().as_u16();
                    ctx.requests.push(record);
                    return resp;
                }
            };
            let request = handlers::Request {
                method: &method,
                route,
                query,
                content_type: &content_type,
                user_agent: &user_agent,
                body: &body,
                server_address: &ctx.server_address,
            };
            match handlers::handle(&ctx.store, request) {
                Ok(Reply::Json {
                    status,
                    body,
                    warnings,
                }) => json_response(status, &body, &warnings),
                Ok(Reply::Text(text)) => {
                    Response::new(Full::new(Bytes::from_static(text.as_bytes())).boxed_unsync())
                }
                Ok(Reply::Stream(stream)) => {
                    let frames = stream.map(|b| Ok::<_, Infallible>(Frame::data(b)));
                    let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(frames)));
                    resp.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    resp
                }
                Err(err) => error_response(&err),
            }
        }
    };
    record.status = response.status().as_u16();
    ctx.requests.push(record);
    response
}

/// What the caller may do: everything without EKS access entries in front (a kubesim on its
/// own, a developer's static token); otherwise its access entry decides, and a principal
/// without one is not authenticated: EKS answers 401 (EKS user guide, "Grant IAM users access
/// to Kubernetes with EKS access entries": an IAM principal needs an access entry, or an aws-auth
/// mapping, to authenticate; issue 19 item 5 saw the 401 on a cluster made without creator
/// admin permissions).
fn authorize(
    ctx: &Context,
    identity: &auth::Identity,
    route: &routes::Route,
    verb: &str,
) -> Result<(), ApiError> {
    let (Some(lookup), auth::Identity::AccessKey(key)) = (&ctx.auth.access, identity) else {
        return Ok(());
    };
    let Some(grant) = lookup(key) else {
        tracing::info!(access_key = %key, "kubesim: no access entry for the caller (401)");
        return Err(ApiError::unauthorized());
    };
    // Discovery and /version: system:discovery and system:public-info-viewer are bound to
    // system:authenticated (bootstrappolicy/policy.go).
    let routes::Route::Resource {
        gvr,
        namespace,
        name,
        subresource,
    } = route
    else {
        return Ok(());
    };
    let resource = match subresource {
        Some(sub) => format!("{}/{sub}", gvr.plural),
        None => gvr.plural.clone(),
    };
    let attrs = super::authz::Attributes {
        verb,
        group: &gvr.group,
        resource,
        namespace: namespace.as_deref(),
        name: name.as_deref(),
    };
    super::authz::authorize(&ctx.store, &grant, &attrs)
}

/// The Kubernetes `Status` error an injected HTTP status is answered with.
fn kube_error(code: u16, message: &str) -> super::ApiError {
    let reason = match code {
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        409 => "Conflict",
        _ => "Unknown",
    };
    super::ApiError {
        code,
        reason: reason.to_string(),
        message: message.to_string(),
        details: Box::default(),
    }
}
