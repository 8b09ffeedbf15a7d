//! The REST verbs: a routed request in, a reply out.

use super::discovery;
use super::errors::{success_status, ApiError, Subject};
use super::routes::Route;
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{DeleteOptions, FieldValidation, PatchType, Store, WriteOptions};
use super::watch::{self, WatchRequest};
use base64::Engine;
use bytes::Bytes;
use futures::stream::BoxStream;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

pub enum Reply {
    Json {
        status: u16,
        body: Value,
        warnings: Vec<String>,
    },
    Text(&'static str),
    Stream(BoxStream<'static, Bytes>),
}

impl Reply {
    fn ok(body: Value) -> Self {
        Reply::Json {
            status: 200,
            body,
            warnings: Vec::new(),
        }
    }
}

pub struct Request<'a> {
    pub method: &'a str,
    pub route: Route,
    pub query: HashMap<String, String>,
    pub content_type: &'a str,
    pub user_agent: &'a str,
    pub body: &'a [u8],
    pub server_address: &'a str,
}

/// The audit verb of a request (get, list, watch, create, update, patch, delete, deletecollection).
pub fn verb(method: &str, route: &Route, query: &HashMap<String, String>) -> &'static str {
    let named = matches!(route, Route::Resource { name: Some(_), .. });
    let resource = matches!(route, Route::Resource { .. });
    match method {
        "GET" if resource && !named && is_true(query.get("watch")) => "watch",
        "GET" if resource && !named => "list",
        "GET" => "get",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" if resource && !named => "deletecollection",
        "DELETE" => "delete",
        _ => "unknown",
    }
}

fn is_true(v: Option<&String>) -> bool {
    matches!(v.map(String::as_str), Some("true") | Some("1"))
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

fn write_options(req: &Request<'_>, subresource: Option<&str>) -> Result<WriteOptions, ApiError> {
    let field_validation = match req.query.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation must be one of Ignore, Warn or Strict, got {other}"
            )))
        }
    };
    let dry_run = match req.query.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unsupported dry run value: {other}"
            )))
        }
    };
    let manager = match req.query.get("fieldManager") {
        Some(m) if !m.is_empty() => m.clone(),
        // The real server names unnamed managers after the user agent's first segment.
        _ if req.content_type.starts_with("application/apply-patch") => String::new(),
        _ => req
            .user_agent
            .split('/')
            .next()
            .unwrap_or("unknown")
            .to_string(),
    };
    Ok(WriteOptions {
        manager,
        dry_run,
        field_validation,
        subresource: subresource.map(str::to_string),
        force: is_true(req.query.get("force")),
    })
}

fn delete_options(req: &Request<'_>) -> Result<DeleteOptions, ApiError> {
    let body: Value = if req.body.is_empty() {
        json!({})
    } else {
        parse_json(req.body)?
    };
    let dry_run_body = body
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v == "All"));
    Ok(DeleteOptions {
        dry_run: dry_run_body || req.query.get("dryRun").map(String::as_str) == Some("All"),
        precondition_uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        precondition_rv: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

fn selectors(query: &HashMap<String, String>) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels =
        LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))?;
    let fields =
        FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or(""))?;
    Ok((labels, fields))
}

fn list_body(
    kind: &str,
    api_version: &str,
    rv: u64,
    items: Vec<Value>,
    query: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let start: usize = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => base64::engine::general_purpose::STANDARD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ApiError::bad_request("invalid continue token"))?,
        None => 0,
    };
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(start).take(limit).collect();
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    let next = start.saturating_add(page.len());
    if next < total {
        metadata["continue"] =
            json!(base64::engine::general_purpose::STANDARD.encode(next.to_string()));
        metadata["remainingItemCount"] = json!(total - next);
    }
    Ok(
        json!({"kind": format!("{kind}List"), "apiVersion": api_version, "metadata": metadata, "items": page}),
    )
}

pub fn handle(store: &Store, req: Request<'_>) -> Result<Reply, ApiError> {
    let registry = || store.registry();
    match (&req.route, req.method) {
        (Route::Version, "GET") => Ok(Reply::ok(discovery::version())),
        (Route::Health, "GET") => Ok(Reply::Text("ok")),
        (Route::Api, "GET") => Ok(Reply::ok(discovery::core_versions(req.server_address))),
        (Route::Apis, "GET") => Ok(Reply::ok(discovery::group_list(&registry()))),
        (Route::Group(g), "GET") => discovery::group(&registry(), g)
            .map(Reply::ok)
            .ok_or_else(ApiError::path_not_found),
        (Route::ResourceList { group, version }, "GET") => {
            discovery::resource_list(&registry(), group, version)
                .map(Reply::ok)
                .ok_or_else(ApiError::path_not_found)
        }
        (Route::Resource { .. }, _) => resource(store, &req),
        (Route::Unknown, _) => Err(ApiError::path_not_found()),
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn resource(store: &Store, req: &Request<'_>) -> Result<Reply, ApiError> {
    let Route::Resource {
        gvr,
        namespace,
        name,
        subresource,
    } = &req.route
    else {
        return Err(ApiError::path_not_found());
    };
    let ns = namespace.as_deref();
    let sub = subresource.as_deref();
    let rt = store
        .registry()
        .by_plural(&gvr.group, &gvr.version, &gvr.plural)
        .cloned()
        .ok_or_else(ApiError::path_not_found)?;
    if let Some(sub) = sub {
        if sub != "status" || !rt.status_subresource {
            return Err(ApiError::path_not_found());
        }
    }
    if namespace.is_some() && !rt.namespaced {
        return Err(ApiError::path_not_found());
    }
    match (req.method, name.as_deref()) {
        ("GET", Some(name)) => Ok(Reply::ok(store.get(gvr, ns, name)?)),
        ("GET", None) if is_true(req.query.get("watch")) => {
            let (labels, fields) = selectors(&req.query)?;
            let from_rv =
                match req.query.get("resourceVersion").filter(|r| !r.is_empty()) {
                    Some(rv) => Some(rv.parse().map_err(|_| {
                        ApiError::bad_request(format!("invalid resourceVersion {rv}"))
                    })?),
                    None => None,
                };
            let timeout = req
                .query
                .get("timeoutSeconds")
                .and_then(|t| t.parse().ok())
                .map(Duration::from_secs)
                .unwrap_or(Duration::from_secs(1800));
            let request = WatchRequest {
                gvr: gvr.clone(),
                namespace: namespace.clone(),
                labels,
                fields,
                from_rv,
                timeout,
            };
            Ok(Reply::Stream(Box::pin(watch::stream(store, request))))
        }
        ("GET", None) => {
            let (labels, fields) = selectors(&req.query)?;
            let (rt, items, rv) = store.list(gvr, ns, &labels, &fields)?;
            Ok(Reply::ok(list_body(
                &rt.kind,
                &rt.api_version(&gvr.version),
                rv,
                items,
                &req.query,
            )?))
        }
        ("POST", None) if sub.is_none() => {
            let outcome =
                store.create(gvr, ns, parse_json(req.body)?, &write_options(req, None)?)?;
            Ok(Reply::Json {
                status: 201,
                body: outcome.object,
                warnings: outcome.warnings,
            })
        }
        ("PUT", Some(name)) => {
            let outcome = store.replace(
                gvr,
                ns,
                name,
                parse_json(req.body)?,
                &write_options(req, sub)?,
            )?;
            Ok(Reply::Json {
                status: 200,
                body: outcome.object,
                warnings: outcome.warnings,
            })
        }
        ("PATCH", Some(name)) => {
            let media = req.content_type.split(';').next().unwrap_or("").trim();
            let (patch_type, body) = match media {
                "application/merge-patch+json" => (PatchType::Merge, parse_json(req.body)?),
                "application/json-patch+json" => (PatchType::Json, parse_json(req.body)?),
                "application/strategic-merge-patch+json" if !rt.custom => {
                    (PatchType::Strategic, parse_json(req.body)?)
                }
                "application/apply-patch+yaml" => {
                    let text = std::str::from_utf8(req.body)
                        .map_err(|e| ApiError::bad_request(e.to_string()))?;
                    let value: Value = serde_yaml_ng::from_str(text)
                        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
                    (PatchType::Apply, value)
                }
                other => return Err(ApiError::unsupported_media_type(other)),
            };
            let outcome =
                store.patch(gvr, ns, name, patch_type, &body, &write_options(req, sub)?)?;
            let status = if outcome.created { 201 } else { 200 };
            Ok(Reply::Json {
                status,
                body: outcome.object,
                warnings: outcome.warnings,
            })
        }
        ("DELETE", Some(name)) if sub.is_none() => {
            let outcome = store.delete(gvr, ns, name, &delete_options(req)?)?;
            if outcome.removed && !rt.custom {
                let uid = super::meta::meta_str(&outcome.object, "uid")
                    .unwrap_or("")
                    .to_string();
                let subject = Subject {
                    group: &rt.group,
                    plural: &rt.plural,
                    kind: &rt.kind,
                    name,
                };
                return Ok(Reply::ok(success_status(&subject, &uid)));
            }
            Ok(Reply::ok(outcome.object))
        }
        ("DELETE", None) if sub.is_none() => {
            let (labels, fields) = selectors(&req.query)?;
            let (rt, items, rv) =
                store.delete_collection(gvr, ns, &labels, &fields, &delete_options(req)?)?;
            Ok(Reply::ok(list_body(
                &rt.kind,
                &rt.api_version(&gvr.version),
                rv,
                items,
                &HashMap::new(),
            )?))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}
