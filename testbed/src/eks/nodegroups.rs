//! Managed node group operations.

use super::clusters::minor;
use super::error::{EksError, EksResult};
use super::state::{ClusterRec, Pending, Res, State, Then, UpdateRec};
use super::util::{
    now_epoch, opt_str, paginate, req_str, string_list, string_map, update_doc, valid_name,
    validate_tags,
};
use super::Ctx;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Instant;

/// Add-ons and Pod Identity associations need a running control plane.
pub fn require_running(cluster: &ClusterRec, name: &str) -> EksResult<()> {
    match cluster.status() {
        "ACTIVE" | "UPDATING" => Ok(()),
        _ => Err(not_active(name)),
    }
}

/// The real API refuses a node group on a cluster that is not ACTIVE (even UPDATING) with
/// `InvalidRequestException: Cluster '<name>' is not in ACTIVE status`.
fn require_active(cluster: &ClusterRec, name: &str) -> EksResult<()> {
    match cluster.status() {
        "ACTIVE" => Ok(()),
        _ => Err(not_active(name)),
    }
}

fn not_active(name: &str) -> EksError {
    EksError::invalid_request(format!("Cluster '{name}' is not in ACTIVE status"))
}

fn not_found(ng: &str) -> EksError {
    EksError::not_found(format!("No node group found for name: {ng}."))
}

fn check_scaling(s: &Value) -> EksResult<()> {
    let get = |f: &str| s[f].as_i64().unwrap_or(0);
    let (min, max, desired) = (get("minSize"), get("maxSize"), get("desiredSize"));
    if min < 0 || max < 1 || min > max || desired < min || desired > max {
        return Err(EksError::invalid_parameter(format!(
            "Invalid scaling configuration: minSize {min}, maxSize {max}, desiredSize {desired}"
        )));
    }
    Ok(())
}

fn check_node_version(cluster: &ClusterRec, version: &str) -> EksResult<()> {
    let cluster_version = cluster.res.doc["version"].as_str().unwrap_or_default();
    match (minor(version), minor(cluster_version)) {
        (Some(v), Some(c)) if v <= c && v + 3 >= c => Ok(()),
        _ => Err(EksError::invalid_parameter(format!(
            "Requested Nodegroup version {version} is not compatible with cluster version {cluster_version}"
        ))),
    }
}

pub fn create(st: &mut State, ctx: &Ctx, cluster_name: &str, body: &Value) -> EksResult<Value> {
    let cluster = st.cluster_mut(cluster_name)?;
    require_active(cluster, cluster_name)?;
    let name = req_str(body, "nodegroupName")?;
    if !valid_name(name) {
        return Err(EksError::invalid_parameter(format!(
            "The nodegroup name {name} is invalid"
        )));
    }
    if cluster.nodegroups.contains_key(name) {
        return Err(EksError::in_use(format!(
            "NodeGroup already exists with name {name} and cluster name {cluster_name}"
        )));
    }
    let subnets = string_list(body, "subnets")?;
    if subnets.is_empty() {
        return Err(EksError::invalid_parameter("subnets is required"));
    }
    let role = req_str(body, "nodeRole")?;
    if !role.starts_with("arn:aws:iam::") {
        return Err(EksError::invalid_parameter(format!(
            "nodeRole {role} is not a valid IAM role ARN"
        )));
    }
    let scaling = match &body["scalingConfig"] {
        Value::Null => json!({"minSize": 1, "maxSize": 2, "desiredSize": 2}),
        s => {
            let mut s = s.clone();
            for (f, d) in [("minSize", 1), ("maxSize", 2), ("desiredSize", 2)] {
                if s[f].is_null() {
                    s[f] = json!(d);
                }
            }
            s
        }
    };
    check_scaling(&scaling)?;
    let version = opt_str(body, "version")
        .unwrap_or(cluster.res.doc["version"].as_str().unwrap_or_default())
        .to_string();
    check_node_version(cluster, &version)?;
    let tags = string_map(body, "tags")?;
    validate_tags(&tags, EksError::invalid_parameter)?;
    // "If you specify launchTemplate, then don't specify diskSize, or the node group deployment
    // will fail" and "... don't specify remoteAccess" (EKS API reference, CreateNodegroup); the
    // service answers InvalidParameterException.
    let launch_template = body["launchTemplate"].is_object();
    if launch_template && !body["diskSize"].is_null() {
        return Err(EksError::invalid_parameter(
            "Disk size must be specified within the launch template.",
        ));
    }
    if launch_template && !body["remoteAccess"].is_null() {
        return Err(EksError::invalid_parameter(
            "Remote access configuration cannot be specified with a launch template.",
        ));
    }
    let instance_types = match string_list(body, "instanceTypes")? {
        t if t.is_empty() => vec!["t3.medium".to_string()],
        t => t,
    };
    let mut doc = json!({
        "nodegroupName": name,
        "nodegroupArn": format!(
            "arn:aws:eks:{}:{}:nodegroup/{cluster_name}/{name}/{}",
            ctx.region, ctx.account_id, uuid::Uuid::new_v4()
        ),
        "clusterName": cluster_name,
        "version": version,
        "releaseVersion": opt_str(body, "releaseVersion").map(str::to_string)
            .unwrap_or_else(|| format!("{version}.0-20250101")),
        "createdAt": now_epoch(),
        "modifiedAt": now_epoch(),
        "status": "CREATING",
        "capacityType": opt_str(body, "capacityType").unwrap_or("ON_DEMAND"),
        "scalingConfig": scaling,
        "instanceTypes": instance_types,
        "subnets": subnets,
        "amiType": opt_str(body, "amiType").unwrap_or("AL2023_x86_64_STANDARD"),
        "nodeRole": role,
        "labels": string_map(body, "labels")?,
        "taints": body["taints"].as_array().cloned().unwrap_or_default(),
        "resources": {"autoScalingGroups": [{"name": format!("eks-{name}-{}", uuid::Uuid::new_v4())}]},
        // With a launch template the disk is the template's: DescribeNodegroup has no diskSize.
        "diskSize": if launch_template { Value::Null } else { json!(body["diskSize"].as_i64().unwrap_or(20)) },
        "health": {"issues": []},
        "updateConfig": if body["updateConfig"].is_object() { body["updateConfig"].clone() } else { json!({"maxUnavailable": 1}) },
        "tags": tags,
    });
    for passthrough in ["remoteAccess", "launchTemplate", "nodeRepairConfig"] {
        if body[passthrough].is_object() {
            doc[passthrough] = body[passthrough].clone();
        }
    }
    cluster.nodegroups.insert(
        name.to_string(),
        Res {
            doc: doc.clone(),
            pending: Pending::after(ctx.delays.nodegroup_create, Then::Active),
        },
    );
    Ok(json!({ "nodegroup": doc }))
}

pub fn describe(st: &State, cluster: &str, ng: &str) -> EksResult<Value> {
    let c = st.cluster(cluster)?;
    let r = c.nodegroups.get(ng).ok_or_else(|| not_found(ng))?;
    Ok(json!({ "nodegroup": r.doc }))
}

pub fn list(st: &State, cluster: &str, query: &HashMap<String, Vec<String>>) -> EksResult<Value> {
    let c = st.cluster(cluster)?;
    let names = c.nodegroups.keys().map(|n| json!(n)).collect();
    let (page, next) = paginate(names, query, 100)?;
    Ok(json!({ "nodegroups": page, "nextToken": next }))
}

pub fn delete(st: &mut State, ctx: &Ctx, cluster: &str, ng: &str) -> EksResult<Value> {
    let c = st.cluster_mut(cluster)?;
    let r = c.nodegroups.get_mut(ng).ok_or_else(|| not_found(ng))?;
    if r.status() == "DELETING" {
        return Err(EksError::in_use(format!(
            "Nodegroup {ng} is already being deleted"
        )));
    }
    r.set_status("DELETING");
    r.pending = Pending::after(ctx.delays.nodegroup_delete, Then::Remove);
    Ok(json!({ "nodegroup": r.doc }))
}

fn begin_update(
    st: &mut State,
    ctx: &Ctx,
    cluster: &str,
    ng: &str,
    update: Value,
) -> EksResult<Value> {
    let id = update["id"].as_str().unwrap_or_default().to_string();
    st.updates.insert(
        id,
        UpdateRec {
            doc: update.clone(),
            cluster: cluster.to_string(),
            nodegroup: Some(ng.to_string()),
            addon: None,
            done_at: Instant::now() + ctx.delays.update,
        },
    );
    Ok(json!({ "update": update }))
}

fn updatable<'a>(c: &'a mut ClusterRec, ng: &str) -> EksResult<&'a mut Res> {
    let r = c.nodegroups.get_mut(ng).ok_or_else(|| not_found(ng))?;
    match r.status() {
        "ACTIVE" | "DEGRADED" => Ok(r),
        other => Err(EksError::in_use(format!(
            "Nodegroup {ng} is currently in {other} state"
        ))),
    }
}

pub fn update_config(
    st: &mut State,
    ctx: &Ctx,
    cluster: &str,
    ng: &str,
    body: &Value,
) -> EksResult<Value> {
    let c = st.cluster_mut(cluster)?;
    let r = updatable(c, ng)?;
    let mut doc = r.doc.clone();
    let mut params: Vec<(&str, String)> = Vec::new();
    if body["labels"].is_object() {
        let add = string_map(&body["labels"], "addOrUpdateLabels")?;
        let remove = string_list(&body["labels"], "removeLabels")?;
        if let Some(labels) = doc["labels"].as_object_mut() {
            for k in &remove {
                labels.remove(k);
            }
            for (k, v) in &add {
                labels.insert(k.clone(), v.clone());
            }
        }
        if !add.is_empty() {
            params.push(("LabelsToAdd", Value::Object(add).to_string()));
        }
        if !remove.is_empty() {
            params.push(("LabelsToRemove", json!(remove).to_string()));
        }
    }
    if body["taints"].is_object() {
        let add = body["taints"]["addOrUpdateTaints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let remove = body["taints"]["removeTaints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut taints = doc["taints"].as_array().cloned().unwrap_or_default();
        taints.retain(|t| {
            !remove
                .iter()
                .chain(add.iter())
                .any(|x| x["key"] == t["key"] && x["effect"] == t["effect"])
        });
        taints.extend(add.iter().cloned());
        doc["taints"] = json!(taints);
        if !add.is_empty() {
            params.push(("TaintsToAdd", json!(add).to_string()));
        }
        if !remove.is_empty() {
            params.push(("TaintsToRemove", json!(remove).to_string()));
        }
    }
    if body["scalingConfig"].is_object() {
        for (field, param) in [
            ("minSize", "MinSize"),
            ("maxSize", "MaxSize"),
            ("desiredSize", "DesiredSize"),
        ] {
            if let Some(v) = body["scalingConfig"][field].as_i64() {
                doc["scalingConfig"][field] = json!(v);
                params.push((param, v.to_string()));
            }
        }
        check_scaling(&doc["scalingConfig"])?;
    }
    if body["updateConfig"].is_object() {
        doc["updateConfig"] = body["updateConfig"].clone();
        params.push(("MaxUnavailable", body["updateConfig"].to_string()));
    }
    if params.is_empty() || doc == r.doc {
        return Err(EksError::invalid_parameter("No changes needed"));
    }
    doc["modifiedAt"] = now_epoch();
    doc["status"] = json!("UPDATING");
    r.doc = doc;
    r.pending = Pending::after(ctx.delays.update, Then::Active);
    begin_update(st, ctx, cluster, ng, update_doc("ConfigUpdate", params))
}

pub fn update_version(
    st: &mut State,
    ctx: &Ctx,
    cluster: &str,
    ng: &str,
    body: &Value,
) -> EksResult<Value> {
    let c = st.cluster_mut(cluster)?;
    let cluster_version = c.res.doc["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let version = opt_str(body, "version")
        .unwrap_or(&cluster_version)
        .to_string();
    check_node_version(c, &version)?;
    let r = updatable(c, ng)?;
    let template = new_template_version(ng, &r.doc, &body["launchTemplate"])?;
    let release = opt_str(body, "releaseVersion")
        .map(str::to_string)
        .unwrap_or_else(|| format!("{version}.0-20250101"));
    if r.doc["version"] == version.as_str()
        && r.doc["releaseVersion"] == release.as_str()
        && template.is_none()
    {
        return Err(EksError::invalid_parameter(format!(
            "Nodegroup {ng} is already at version {version} and release version {release}"
        )));
    }
    r.doc["version"] = json!(version);
    r.doc["releaseVersion"] = json!(release);
    let mut params = vec![("Version", version), ("ReleaseVersion", release)];
    if let Some(template_version) = template {
        r.doc["launchTemplate"]["version"] = json!(template_version);
        params.push(("LaunchTemplateVersion", template_version));
    }
    r.doc["modifiedAt"] = now_epoch();
    r.set_status("UPDATING");
    r.pending = Pending::after(ctx.delays.update, Then::Active);
    let update = update_doc("VersionUpdate", params);
    begin_update(st, ctx, cluster, ng, update)
}

/// The launch template version an UpdateNodegroupVersion request moves to (`None`: the request
/// names no launch template, or the version it has). EKS's rules (UpdateNodegroupVersion API
/// reference): only a node group created from a launch template can be updated with one, and
/// "the launch template ID or name must match what was used when the node group was created";
/// a request naming both id and name is refused ("Either provide launch template ID or launch
/// template name in the request", aws-controllers-k8s/community#2645).
fn new_template_version(ng: &str, doc: &Value, requested: &Value) -> EksResult<Option<String>> {
    if requested.is_null() {
        return Ok(None);
    }
    let id = requested["id"].as_str();
    let name = requested["name"].as_str();
    if id.is_some() && name.is_some() {
        return Err(EksError::invalid_parameter(
            "Either provide launch template ID or launch template name in the request.",
        ));
    }
    let current = &doc["launchTemplate"];
    if !current.is_object() {
        return Err(EksError::invalid_parameter(format!(
            "Nodegroup {ng} was not created with a launch template, so it cannot be updated with one"
        )));
    }
    let same = match (id, name) {
        (Some(id), None) => current["id"].as_str() == Some(id),
        (None, Some(name)) => current["name"].as_str() == Some(name),
        _ => false,
    };
    if !same {
        return Err(EksError::invalid_parameter(format!(
            "The launch template ID or name must match the one Nodegroup {ng} was created with"
        )));
    }
    // Without a version EKS takes the template's default version, which is not simulated.
    let Some(version) = requested["version"].as_str() else {
        return Ok(None);
    };
    Ok((current["version"].as_str() != Some(version)).then(|| version.to_string()))
}
