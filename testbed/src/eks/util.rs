//! Small helpers shared by the operation handlers.

use super::error::{EksError, EksResult};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Seconds since the epoch, as REST-JSON timestamps are written.
pub fn now_epoch() -> Value {
    let now = chrono::Utc::now();
    json!(now.timestamp_millis() as f64 / 1000.0)
}

/// `n` random lowercase hex characters.
pub fn rand_hex(n: usize) -> String {
    let mut s = String::new();
    while s.len() < n {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(n);
    s
}

pub fn query_map(raw: &str) -> HashMap<String, Vec<String>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()).into_owned() {
        map.entry(k).or_default().push(v);
    }
    map
}

pub fn q<'a>(query: &'a HashMap<String, Vec<String>>, key: &str) -> Option<&'a str> {
    query.get(key).and_then(|v| v.first()).map(String::as_str)
}

/// One page of `items` following `maxResults` / `nextToken` (an opaque offset).
pub fn paginate(
    items: Vec<Value>,
    query: &HashMap<String, Vec<String>>,
    max_limit: usize,
) -> EksResult<(Vec<Value>, Option<String>)> {
    let max = match q(query, "maxResults") {
        Some(m) => m
            .parse::<usize>()
            .ok()
            .filter(|m| (1..=max_limit).contains(m))
            .ok_or_else(|| {
                EksError::invalid_parameter(format!("maxResults must be between 1 and {max_limit}"))
            })?,
        None => max_limit,
    };
    let start = match q(query, "nextToken") {
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|s| *s <= items.len())
            .ok_or_else(|| EksError::invalid_parameter("The nextToken is invalid."))?,
        None => 0,
    };
    let end = (start + max).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items[start..end].to_vec(), next))
}

/// A required string member of the request body.
pub fn req_str<'a>(body: &'a Value, field: &str) -> EksResult<&'a str> {
    body[field]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| EksError::invalid_parameter(format!("{field} is required")))
}

pub fn opt_str<'a>(body: &'a Value, field: &str) -> Option<&'a str> {
    body[field].as_str()
}

/// A string → string map member (tags, labels), validated.
pub fn string_map(body: &Value, field: &str) -> EksResult<Map<String, Value>> {
    match &body[field] {
        Value::Null => Ok(Map::new()),
        Value::Object(m) if m.values().all(Value::is_string) => Ok(m.clone()),
        _ => Err(EksError::invalid_parameter(format!(
            "{field} must be a map of strings"
        ))),
    }
}

pub fn string_list(body: &Value, field: &str) -> EksResult<Vec<String>> {
    match &body[field] {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    EksError::invalid_parameter(format!("{field} must be a list of strings"))
                })
            })
            .collect(),
        _ => Err(EksError::invalid_parameter(format!(
            "{field} must be a list of strings"
        ))),
    }
}

/// Resource tags as EKS validates them: at most 50, keys 1-128 chars, values ≤ 256, no `aws:`.
pub fn validate_tags(tags: &Map<String, Value>, err: fn(String) -> EksError) -> EksResult<()> {
    if tags.len() > 50 {
        return Err(err("Too many tags: at most 50 are allowed".into()));
    }
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 || k.to_ascii_lowercase().starts_with("aws:") {
            return Err(err(format!("Invalid tag key: {k}")));
        }
        if v.as_str().is_some_and(|v| v.len() > 256) {
            return Err(err(format!("Invalid tag value for key {k}")));
        }
    }
    Ok(())
}

/// Names of clusters, node groups: 1-100 chars, start alphanumeric, then alphanumerics, `-`, `_`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    (1..=100).contains(&name.len())
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// An update record (the `Update` shape) for DescribeUpdate / ListUpdates.
pub fn update_doc(update_type: &str, params: Vec<(&str, String)>) -> Value {
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "status": "InProgress",
        "type": update_type,
        "params": params.into_iter().map(|(t, v)| json!({"type": t, "value": v})).collect::<Vec<_>>(),
        "createdAt": now_epoch(),
        "errors": [],
    })
}
