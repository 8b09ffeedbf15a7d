//! TagResource / UntagResource / ListTagsForResource on any EKS ARN the simulator made.

use super::error::{EksError, EksResult};
use super::state::State;
use super::util::{string_map, validate_tags};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// The `tags` object of the resource with `arn`.
fn tags_of<'a>(st: &'a mut State, arn: &str) -> EksResult<&'a mut Value> {
    if !arn.starts_with("arn:aws:eks:") {
        return Err(EksError::bad_request(format!("Invalid ARN: {arn}")));
    }
    for c in st.clusters.values_mut() {
        if c.res.doc["arn"] == arn {
            return Ok(&mut c.res.doc["tags"]);
        }
        for r in c.nodegroups.values_mut() {
            if r.doc["nodegroupArn"] == arn {
                return Ok(&mut r.doc["tags"]);
            }
        }
        for r in c.addons.values_mut() {
            if r.doc["addonArn"] == arn {
                return Ok(&mut r.doc["tags"]);
            }
        }
        for e in c.access_entries.values_mut() {
            if e.doc["accessEntryArn"] == arn {
                return Ok(&mut e.doc["tags"]);
            }
        }
        for a in c.pod_identity.values_mut() {
            if a["associationArn"] == arn {
                return Ok(&mut a["tags"]);
            }
        }
    }
    Err(EksError::tag_not_found(format!(
        "Resource not found: {arn}"
    )))
}

pub fn tag(st: &mut State, arn: &str, body: &Value) -> EksResult<Value> {
    let add = string_map(body, "tags").map_err(|e| EksError::bad_request(e.message))?;
    validate_tags(&add, EksError::bad_request)?;
    let tags = tags_of(st, arn)?;
    let mut merged = tags.as_object().cloned().unwrap_or_default();
    merged.extend(add);
    validate_tags(&merged, EksError::bad_request)?;
    *tags = Value::Object(merged);
    Ok(json!({}))
}

pub fn untag(st: &mut State, arn: &str, query: &HashMap<String, Vec<String>>) -> EksResult<Value> {
    let keys = query.get("tagKeys").cloned().unwrap_or_default();
    if keys.is_empty() {
        return Err(EksError::bad_request("tagKeys is required"));
    }
    let tags = tags_of(st, arn)?;
    if let Some(map) = tags.as_object_mut() {
        for k in keys {
            map.remove(&k);
        }
    }
    Ok(json!({}))
}

pub fn list(st: &mut State, arn: &str) -> EksResult<Value> {
    let tags = tags_of(st, arn)?;
    let map: Map<String, Value> = tags.as_object().cloned().unwrap_or_default();
    Ok(json!({ "tags": map }))
}
