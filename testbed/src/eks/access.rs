//! Access entries and their associated access policies.

use super::error::{EksError, EksResult};
use super::state::{AccessEntryRec, ClusterRec, State};
use super::util::{
    now_epoch, opt_str, paginate, q, req_str, string_list, string_map, validate_tags,
};
use super::Ctx;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

/// The AWS-managed access policies (`arn:aws:eks::aws:cluster-access-policy/<name>`).
const ACCESS_POLICIES: &[&str] = &[
    "AmazonEKSClusterAdminPolicy",
    "AmazonEKSAdminPolicy",
    "AmazonEKSEditPolicy",
    "AmazonEKSViewPolicy",
    "AmazonEKSAdminViewPolicy",
    "AmazonEKSAutoNodePolicy",
    "AmazonEKSBlockStoragePolicy",
    "AmazonEKSComputePolicy",
    "AmazonEKSLoadBalancingPolicy",
    "AmazonEKSNetworkingPolicy",
];
const ENTRY_TYPES: &[&str] = &[
    "STANDARD",
    "EC2_LINUX",
    "EC2_WINDOWS",
    "FARGATE_LINUX",
    "EC2",
    "HYBRID_LINUX",
    "HYPERPOD_LINUX",
];

/// Access entries need the API authentication mode (DESIGN.md §5); the real API answers
/// InvalidRequestException otherwise.
fn with_api_mode<'a>(st: &'a mut State, cluster: &str) -> EksResult<&'a mut ClusterRec> {
    let c = st.cluster_mut(cluster)?;
    if c.auth_mode() == "CONFIG_MAP" {
        return Err(EksError::invalid_request(
            "The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP] to perform this operation.",
        ));
    }
    Ok(c)
}

fn not_found() -> EksError {
    EksError::not_found(
        "The specified principalArn could not be found. You can view your available access entries with 'list-access-entries'.",
    )
}

/// `(account, kind, name)` of an IAM role or user ARN; an assumed-role session ARN is refused.
fn parse_principal(arn: &str) -> Option<(&str, &str, &str)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (kind, path) = resource.split_once('/')?;
    if !matches!(kind, "role" | "user") || path.is_empty() {
        return None;
    }
    Some((account, kind, path.rsplit('/').next().unwrap_or(path)))
}

fn check_groups(groups: &[String]) -> EksResult<()> {
    if let Some(g) = groups.iter().find(|g| g.starts_with("system:")) {
        return Err(EksError::invalid_parameter(format!(
            "The kubernetesGroups {g} is invalid: groups with the system: prefix are not allowed"
        )));
    }
    Ok(())
}

pub fn create(st: &mut State, ctx: &Ctx, cluster: &str, body: &Value) -> EksResult<Value> {
    let c = with_api_mode(st, cluster)?;
    let principal = req_str(body, "principalArn")?;
    let Some((account, kind, name)) = parse_principal(principal) else {
        return Err(EksError::invalid_parameter(format!(
            "The specified principalArn is invalid: invalid principal {principal}"
        )));
    };
    if c.access_entries.contains_key(principal) {
        return Err(EksError::in_use(
            "The specified access entry resource is already in use on this cluster.",
        ));
    }
    let entry_type = opt_str(body, "type").unwrap_or("STANDARD");
    if !ENTRY_TYPES.contains(&entry_type) {
        return Err(EksError::invalid_parameter(format!(
            "The access entry type {entry_type} is invalid"
        )));
    }
    let groups = string_list(body, "kubernetesGroups")?;
    check_groups(&groups)?;
    let tags = string_map(body, "tags")?;
    validate_tags(&tags, EksError::invalid_parameter)?;
    let doc = entry_doc(
        ctx,
        cluster,
        principal,
        (account, kind, name),
        opt_str(body, "username"),
        &groups,
        &tags,
        entry_type,
    );
    c.access_entries.insert(
        principal.to_string(),
        AccessEntryRec {
            doc: doc.clone(),
            policies: BTreeMap::new(),
        },
    );
    Ok(json!({ "accessEntry": doc }))
}

pub fn describe(st: &mut State, cluster: &str, principal: &str) -> EksResult<Value> {
    let c = with_api_mode(st, cluster)?;
    let e = c.access_entries.get(principal).ok_or_else(not_found)?;
    Ok(json!({ "accessEntry": e.doc }))
}

pub fn list(
    st: &mut State,
    cluster: &str,
    query: &HashMap<String, Vec<String>>,
) -> EksResult<Value> {
    let c = with_api_mode(st, cluster)?;
    let policy = q(query, "associatedPolicyArn");
    let items = c
        .access_entries
        .iter()
        .filter(|(_, e)| policy.is_none_or(|p| e.policies.contains_key(p)))
        .map(|(p, _)| json!(p))
        .collect();
    let (page, next) = paginate(items, query, 100)?;
    Ok(json!({ "accessEntries": page, "nextToken": next }))
}

pub fn update(st: &mut State, cluster: &str, principal: &str, body: &Value) -> EksResult<Value> {
    let c = with_api_mode(st, cluster)?;
    let e = c.access_entries.get_mut(principal).ok_or_else(not_found)?;
    if !body["kubernetesGroups"].is_null() {
        let groups = string_list(body, "kubernetesGroups")?;
        check_groups(&groups)?;
        e.doc["kubernetesGroups"] = json!(groups);
    }
    if let Some(u) = opt_str(body, "username") {
        e.doc["username"] = json!(u);
    }
    e.doc["modifiedAt"] = now_epoch();
    Ok(json!({ "accessEntry": e.doc }))
}

pub fn delete(st: &mut State, cluster: &str, principal: &str) -> EksResult<Value> {
    let c = with_api_mode(st, cluster)?;
    c.access_entries.remove(principal).ok_or_else(not_found)?;
    Ok(json!({}))
}

pub fn associate(st: &mut State, cluster: &str, principal: &str, body: &Value) -> EksResult<Value> {
    let c = with_api_mode(st, cluster)?;
    let e = c.access_entries.get_mut(principal).ok_or_else(not_found)?;
    let policy = req_str(body, "policyArn")?;
    let known = policy
        .strip_prefix("arn:aws:eks::aws:cluster-access-policy/")
        .is_some_and(|n| ACCESS_POLICIES.contains(&n));
    if !known {
        return Err(EksError::invalid_parameter(format!(
            "The specified policyArn {policy} is invalid"
        )));
    }
    let scope = &body["accessScope"];
    let scope_type = req_str(scope, "type")?;
    let namespaces = string_list(scope, "namespaces")?;
    match (scope_type, namespaces.is_empty()) {
        ("cluster", true) | ("namespace", false) => {}
        ("cluster", false) => {
            return Err(EksError::invalid_parameter(
                "namespaces must be empty when the access scope type is cluster",
            ))
        }
        ("namespace", true) => {
            return Err(EksError::invalid_parameter(
                "namespaces are required when the access scope type is namespace",
            ))
        }
        _ => {
            return Err(EksError::invalid_parameter(format!(
                "Invalid access scope type {scope_type}"
            )))
        }
    }
    let now = now_epoch();
    let associated_at = e
        .policies
        .get(policy)
        .map(|p| p["associatedAt"].clone())
        .unwrap_or_else(|| now.clone());
    let assoc = json!({
        "policyArn": policy,
        "accessScope": {"type": scope_type, "namespaces": namespaces},
        "associatedAt": associated_at,
        "modifiedAt": now,
    });
    e.policies.insert(policy.to_string(), assoc.clone());
    Ok(json!({
        "clusterName": cluster,
        "principalArn": principal,
        "associatedAccessPolicy": assoc,
    }))
}

pub fn list_associated(
    st: &mut State,
    cluster: &str,
    principal: &str,
    query: &HashMap<String, Vec<String>>,
) -> EksResult<Value> {
    let c = with_api_mode(st, cluster)?;
    let e = c.access_entries.get(principal).ok_or_else(not_found)?;
    let (page, next) = paginate(e.policies.values().cloned().collect(), query, 100)?;
    Ok(json!({
        "clusterName": cluster,
        "principalArn": principal,
        "associatedAccessPolicies": page,
        "nextToken": next,
    }))
}

pub fn disassociate(
    st: &mut State,
    cluster: &str,
    principal: &str,
    policy: &str,
) -> EksResult<Value> {
    let c = with_api_mode(st, cluster)?;
    let e = c.access_entries.get_mut(principal).ok_or_else(not_found)?;
    e.policies.remove(policy).ok_or_else(|| {
        EksError::not_found(format!(
            "The specified policy {policy} is not associated with the access entry"
        ))
    })?;
    Ok(json!({}))
}

#[allow(clippy::too_many_arguments)]
fn entry_doc(
    ctx: &Ctx,
    cluster: &str,
    principal: &str,
    (account, kind, name): (&str, &str, &str),
    username: Option<&str>,
    groups: &[String],
    tags: &serde_json::Map<String, Value>,
    entry_type: &str,
) -> Value {
    let username = match username {
        Some(u) => u.to_string(),
        None if kind == "role" => {
            format!("arn:aws:sts::{account}:assumed-role/{name}/{{{{SessionName}}}}")
        }
        None => principal.to_string(),
    };
    json!({
        "clusterName": cluster,
        "principalArn": principal,
        "kubernetesGroups": groups,
        "accessEntryArn": format!(
            "arn:aws:eks:{}:{}:access-entry/{cluster}/{kind}/{account}/{name}/{}",
            ctx.region, ctx.account_id, uuid::Uuid::new_v4()
        ),
        "createdAt": now_epoch(),
        "modifiedAt": now_epoch(),
        "tags": tags,
        "username": username,
        "type": entry_type,
    })
}

/// The entry EKS makes for the creator of a cluster created with
/// `bootstrapClusterCreatorAdminPermissions` (the default): AmazonEKSClusterAdminPolicy at
/// cluster scope (EKS user guide, "Grant IAM users access to Kubernetes with EKS access
/// entries").
pub fn creator_entry(ctx: &Ctx, cluster: &str, creator: &str) -> AccessEntryRec {
    let parsed = parse_principal(creator).unwrap_or((ctx.account_id.as_str(), "user", creator));
    let doc = entry_doc(
        ctx,
        cluster,
        creator,
        parsed,
        None,
        &[],
        &serde_json::Map::new(),
        "STANDARD",
    );
    let policy = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";
    let now = now_epoch();
    let assoc = json!({
        "policyArn": policy,
        "accessScope": {"type": "cluster", "namespaces": []},
        "associatedAt": now,
        "modifiedAt": now,
    });
    AccessEntryRec {
        doc,
        policies: BTreeMap::from([(policy.to_string(), assoc)]),
    }
}
