//! EKS Pod Identity associations.

use super::error::{EksError, EksResult};
use super::nodegroups::require_running;
use super::state::{ClusterRec, State};
use super::util::{now_epoch, opt_str, paginate, q, rand_hex, req_str, string_map, validate_tags};
use super::Ctx;
use serde_json::{json, Value};
use std::collections::HashMap;

fn not_found(id: &str) -> EksError {
    EksError::not_found(format!("Association {id} not found"))
}

/// Adds an association to `cluster`, returning its ARN. `owner` is the add-on that owns it.
pub fn insert(
    cluster: &mut ClusterRec,
    ctx: &Ctx,
    cluster_name: &str,
    body: &Value,
    owner: Option<&str>,
) -> EksResult<String> {
    let namespace = req_str(body, "namespace")?;
    let sa = req_str(body, "serviceAccount")?;
    let role = req_str(body, "roleArn")?;
    if !role.starts_with("arn:aws:iam::") || !role.contains(":role/") {
        return Err(EksError::invalid_parameter(format!(
            "roleArn {role} is not a valid IAM role ARN"
        )));
    }
    if let Some(existing) = cluster
        .pod_identity
        .values()
        .find(|a| a["namespace"] == namespace && a["serviceAccount"] == sa)
    {
        return Err(EksError::in_use(format!(
            "Association already exists: {}",
            existing["associationId"].as_str().unwrap_or_default()
        )));
    }
    let tags = string_map(body, "tags")?;
    validate_tags(&tags, EksError::invalid_parameter)?;
    let id = format!("a-{}", rand_hex(17));
    let arn = format!(
        "arn:aws:eks:{}:{}:podidentityassociation/{cluster_name}/{id}",
        ctx.region, ctx.account_id
    );
    let mut doc = json!({
        "clusterName": cluster_name,
        "namespace": namespace,
        "serviceAccount": sa,
        "roleArn": role,
        "associationArn": arn,
        "associationId": id,
        "tags": tags,
        "createdAt": now_epoch(),
        "modifiedAt": now_epoch(),
        "disableSessionTags": body["disableSessionTags"].as_bool().unwrap_or(false),
    });
    if let Some(owner) = owner {
        doc["ownerArn"] = json!(owner);
    }
    if let Some(target) = opt_str(body, "targetRoleArn") {
        doc["targetRoleArn"] = json!(target);
        doc["externalId"] = json!(uuid::Uuid::new_v4().to_string());
    }
    cluster.pod_identity.insert(id, doc);
    Ok(arn)
}

pub fn create(st: &mut State, ctx: &Ctx, cluster_name: &str, body: &Value) -> EksResult<Value> {
    let cluster = st.cluster_mut(cluster_name)?;
    require_running(cluster, cluster_name)?;
    let arn = insert(cluster, ctx, cluster_name, body, None)?;
    let doc = cluster
        .pod_identity
        .values()
        .find(|a| a["associationArn"] == arn.as_str())
        .cloned()
        .ok_or_else(|| EksError::server("association vanished"))?;
    Ok(json!({ "association": doc }))
}

pub fn describe(st: &State, cluster: &str, id: &str) -> EksResult<Value> {
    let c = st.cluster(cluster)?;
    let doc = c.pod_identity.get(id).ok_or_else(|| not_found(id))?;
    Ok(json!({ "association": doc }))
}

pub fn list(st: &State, cluster: &str, query: &HashMap<String, Vec<String>>) -> EksResult<Value> {
    let c = st.cluster(cluster)?;
    let ns = q(query, "namespace");
    let sa = q(query, "serviceAccount");
    let items = c
        .pod_identity
        .values()
        .filter(|a| ns.is_none_or(|ns| a["namespace"] == ns))
        .filter(|a| sa.is_none_or(|sa| a["serviceAccount"] == sa))
        .map(|a| {
            let mut s = json!({});
            for f in [
                "clusterName",
                "namespace",
                "serviceAccount",
                "associationArn",
                "associationId",
                "ownerArn",
            ] {
                if !a[f].is_null() {
                    s[f] = a[f].clone();
                }
            }
            s
        })
        .collect();
    let (page, next) = paginate(items, query, 100)?;
    Ok(json!({ "associations": page, "nextToken": next }))
}

pub fn update(st: &mut State, cluster: &str, id: &str, body: &Value) -> EksResult<Value> {
    let c = st.cluster_mut(cluster)?;
    let doc = c.pod_identity.get_mut(id).ok_or_else(|| not_found(id))?;
    if let Some(role) = opt_str(body, "roleArn") {
        if !role.starts_with("arn:aws:iam::") || !role.contains(":role/") {
            return Err(EksError::invalid_parameter(format!(
                "roleArn {role} is not a valid IAM role ARN"
            )));
        }
        doc["roleArn"] = json!(role);
    }
    if let Some(d) = body["disableSessionTags"].as_bool() {
        doc["disableSessionTags"] = json!(d);
    }
    if let Some(t) = opt_str(body, "targetRoleArn") {
        doc["targetRoleArn"] = json!(t);
    }
    doc["modifiedAt"] = now_epoch();
    Ok(json!({ "association": doc }))
}

pub fn delete(st: &mut State, cluster: &str, id: &str) -> EksResult<Value> {
    let c = st.cluster_mut(cluster)?;
    let doc = c.pod_identity.get(id).ok_or_else(|| not_found(id))?;
    if doc["ownerArn"].is_string() {
        return Err(EksError::invalid_request(format!(
            "Association {id} is owned by an add-on; update or delete the add-on instead"
        )));
    }
    let doc = c.pod_identity.remove(id).ok_or_else(|| not_found(id))?;
    Ok(json!({ "association": doc }))
}
