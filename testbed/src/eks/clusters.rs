//! Cluster operations: Create/Describe/List/Delete, UpdateClusterConfig, UpdateClusterVersion,
//! ListUpdates, DescribeUpdate.

use super::error::{EksError, EksResult};
use super::state::{ClusterRec, Pending, Res, State, Then, UpdateRec};
use super::util::{
    now_epoch, opt_str, paginate, q, rand_hex, req_str, string_list, string_map, update_doc,
    valid_name, validate_tags,
};
use super::Ctx;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

/// Kubernetes versions the simulated EKS offers (standard + extended support), as EKS did on
/// 2026-12-03: "On the end of extended support date, you can no longer create new Amazon EKS
/// clusters with the unsupported version" (EKS user guide, "Understand the Kubernetes version
/// lifecycle on EKS", release calendar: 1.30 ended 2026-07-23, 1.31 on 2026-11-26).
pub const SUPPORTED_VERSIONS: &[&str] = &["1.32", "1.33", "1.34", "1.35"];
/// The version used when CreateCluster names none.
pub const DEFAULT_VERSION: &str = "1.34";
const LOG_TYPES: &[&str] = &[
    "api",
    "audit",
    "authenticator",
    "controllerManager",
    "scheduler",
];
const AUTH_MODES: &[&str] = &["CONFIG_MAP", "API", "API_AND_CONFIG_MAP"];

pub fn minor(version: &str) -> Option<u32> {
    version.strip_prefix("1.")?.parse().ok()
}

fn check_version(version: &str) -> EksResult<()> {
    if SUPPORTED_VERSIONS.contains(&version) {
        Ok(())
    } else {
        Err(EksError::invalid_parameter(format!(
            "unsupported Kubernetes version {version}"
        )))
    }
}

/// The enabled log types after applying `logging.clusterLogging` entries to `current`.
fn apply_logging(current: &BTreeSet<String>, logging: &Value) -> EksResult<BTreeSet<String>> {
    let mut enabled = current.clone();
    let entries = match &logging["clusterLogging"] {
        Value::Array(a) => a.clone(),
        Value::Null => Vec::new(),
        _ => {
            return Err(EksError::invalid_parameter(
                "logging.clusterLogging must be a list",
            ))
        }
    };
    for entry in entries {
        let on = entry["enabled"].as_bool().unwrap_or(false);
        for t in string_list(&entry, "types")? {
            if !LOG_TYPES.contains(&t.as_str()) {
                return Err(EksError::invalid_parameter(format!(
                    "Invalid log type: {t}. Valid types are {}",
                    LOG_TYPES.join(", ")
                )));
            }
            if on {
                enabled.insert(t);
            } else {
                enabled.remove(&t);
            }
        }
    }
    Ok(enabled)
}

fn logging_doc(enabled: &BTreeSet<String>) -> Value {
    let disabled: Vec<&str> = LOG_TYPES
        .iter()
        .copied()
        .filter(|t| !enabled.contains(*t))
        .collect();
    let mut out = Vec::new();
    if !enabled.is_empty() {
        out.push(json!({"types": enabled, "enabled": true}));
    }
    if !disabled.is_empty() {
        out.push(json!({"types": disabled, "enabled": false}));
    }
    json!({"clusterLogging": out})
}

fn enabled_logs(doc: &Value) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    if let Some(entries) = doc["logging"]["clusterLogging"].as_array() {
        for e in entries.iter().filter(|e| e["enabled"] == true) {
            if let Some(types) = e["types"].as_array() {
                set.extend(types.iter().filter_map(Value::as_str).map(str::to_string));
            }
        }
    }
    set
}

fn vpc_doc(req: &Value, vpc_id: Option<&str>) -> EksResult<Value> {
    let subnets = string_list(req, "subnetIds")?;
    if subnets.len() < 2 {
        return Err(EksError::invalid_parameter(
            "Subnets specified must be in at least two different AZs",
        ));
    }
    let public = req["endpointPublicAccess"].as_bool().unwrap_or(true);
    let private = req["endpointPrivateAccess"].as_bool().unwrap_or(false);
    if !public && !private {
        return Err(EksError::invalid_parameter(
            "Either endpointPublicAccess or endpointPrivateAccess must be true",
        ));
    }
    let cidrs = match string_list(req, "publicAccessCidrs")? {
        c if c.is_empty() => vec!["0.0.0.0/0".to_string()],
        c => c,
    };
    Ok(json!({
        "subnetIds": subnets,
        "securityGroupIds": string_list(req, "securityGroupIds")?,
        "clusterSecurityGroupId": format!("sg-{}", rand_hex(17)),
        "vpcId": vpc_id.map_or_else(|| format!("vpc-{}", rand_hex(17)), str::to_string),
        "endpointPublicAccess": public,
        "endpointPrivateAccess": private,
        "publicAccessCidrs": cidrs,
    }))
}

fn encryption_doc(body: &Value) -> EksResult<Value> {
    let list = match &body["encryptionConfig"] {
        Value::Null => return Ok(json!([])),
        Value::Array(a) => a.clone(),
        _ => {
            return Err(EksError::invalid_parameter(
                "encryptionConfig must be a list",
            ))
        }
    };
    if list.len() > 1 {
        return Err(EksError::invalid_parameter(
            "Only one encryptionConfig is allowed",
        ));
    }
    for e in &list {
        if string_list(e, "resources")? != ["secrets"] {
            return Err(EksError::invalid_parameter(
                "encryptionConfig resources must be [\"secrets\"]",
            ));
        }
        if !e["provider"]["keyArn"]
            .as_str()
            .is_some_and(|k| k.starts_with("arn:aws:kms:"))
        {
            return Err(EksError::invalid_parameter(
                "encryptionConfig provider.keyArn must be a KMS key ARN",
            ));
        }
    }
    Ok(Value::Array(list))
}

/// CreateCluster; `creator` is the calling principal, if known.
pub fn create(st: &mut State, ctx: &Ctx, body: &Value, creator: Option<&str>) -> EksResult<Value> {
    let name = req_str(body, "name")?;
    if !valid_name(name) {
        return Err(EksError::invalid_parameter(format!(
            "The cluster name {name} is invalid"
        )));
    }
    if st.clusters.contains_key(name) {
        return Err(EksError::in_use(format!(
            "Cluster already exists with name: {name}"
        )));
    }
    let role = req_str(body, "roleArn")?;
    if !role.starts_with("arn:aws:iam::") {
        return Err(EksError::invalid_parameter(format!(
            "roleArn {role} is not a valid IAM role ARN"
        )));
    }
    if !body["resourcesVpcConfig"].is_object() {
        return Err(EksError::invalid_parameter(
            "resourcesVpcConfig is required",
        ));
    }
    let vpc = vpc_doc(&body["resourcesVpcConfig"], ctx.vpc_id.as_deref())?;
    let version = opt_str(body, "version").unwrap_or(DEFAULT_VERSION);
    check_version(version)?;
    // The API's documented default is CONFIG_MAP; labflow always sets it explicitly.
    let mode = opt_str(&body["accessConfig"], "authenticationMode").unwrap_or("CONFIG_MAP");
    if !AUTH_MODES.contains(&mode) {
        return Err(EksError::invalid_parameter(format!(
            "Invalid authenticationMode {mode}"
        )));
    }
    let bootstrap = body["accessConfig"]["bootstrapClusterCreatorAdminPermissions"]
        .as_bool()
        .unwrap_or(true);
    if mode == "CONFIG_MAP" && !bootstrap {
        return Err(EksError::invalid_parameter(
            "bootstrapClusterCreatorAdminPermissions must be true if cluster authentication mode is set to CONFIG_MAP",
        ));
    }
    let logs = apply_logging(&BTreeSet::new(), &body["logging"])?;
    let encryption = encryption_doc(body)?;
    let knc = &body["kubernetesNetworkConfig"];
    let ip_family = opt_str(knc, "ipFamily").unwrap_or("ipv4");
    if !["ipv4", "ipv6"].contains(&ip_family) {
        return Err(EksError::invalid_parameter(format!(
            "Invalid ipFamily {ip_family}"
        )));
    }
    let tags = string_map(body, "tags")?;
    validate_tags(&tags, EksError::invalid_parameter)?;
    let id = uuid::Uuid::new_v4().to_string();
    let mut doc = json!({
        "name": name,
        "arn": format!("arn:aws:eks:{}:{}:cluster/{name}", ctx.region, ctx.account_id),
        "createdAt": now_epoch(),
        "version": version,
        "roleArn": role,
        "resourcesVpcConfig": vpc,
        "kubernetesNetworkConfig": {
            "serviceIpv4Cidr": opt_str(knc, "serviceIpv4Cidr").unwrap_or("10.100.0.0/16"),
            "ipFamily": ip_family,
        },
        "logging": logging_doc(&logs),
        "identity": {"oidc": {"issuer": format!(
            "https://oidc.eks.{}.amazonaws.com/id/{}", ctx.region, rand_hex(32).to_uppercase()
        )}},
        "status": "CREATING",
        "certificateAuthority": {},
        "platformVersion": "eks.1",
        "tags": tags,
        "encryptionConfig": encryption,
        "id": id,
        "health": {"issues": []},
        "accessConfig": {
            "bootstrapClusterCreatorAdminPermissions": bootstrap,
            "authenticationMode": mode,
        },
        "upgradePolicy": {"supportType": opt_str(&body["upgradePolicy"], "supportType").unwrap_or("EXTENDED")},
    });
    if let Some(token) = opt_str(body, "clientRequestToken") {
        doc["clientRequestToken"] = json!(token);
    }
    for passthrough in [
        "zonalShiftConfig",
        "computeConfig",
        "storageConfig",
        "remoteNetworkConfig",
    ] {
        if body[passthrough].is_object() {
            doc[passthrough] = body[passthrough].clone();
        }
    }
    if let Some(p) = body["deletionProtection"].as_bool() {
        doc["deletionProtection"] = json!(p);
    }
    // "bootstrapClusterCreatorAdminPermissions: Specifies whether or not the cluster creator
    // IAM principal was set as a cluster admin access entry during cluster creation time. The
    // default value is true." (EKS API reference, CreateAccessConfigRequest.)
    let mut access_entries = BTreeMap::new();
    if let (true, Some(creator)) = (bootstrap, creator) {
        access_entries.insert(
            creator.to_string(),
            super::access::creator_entry(ctx, name, creator),
        );
    }
    st.clusters.insert(
        name.to_string(),
        ClusterRec {
            res: Res {
                doc: doc.clone(),
                pending: Pending::after(ctx.delays.cluster_create, Then::Active),
            },
            nodegroups: BTreeMap::new(),
            addons: BTreeMap::new(),
            access_entries,
            pod_identity: BTreeMap::new(),
            kubesim: None,
            gateway: None,
        },
    );
    tracing::info!(cluster = %name, "eks: cluster created");
    Ok(json!({ "cluster": doc }))
}

pub fn describe(st: &State, name: &str) -> EksResult<Value> {
    Ok(json!({ "cluster": st.cluster(name)?.res.doc }))
}

pub fn list(st: &State, query: &HashMap<String, Vec<String>>) -> EksResult<Value> {
    let names = st.clusters.keys().map(|n| json!(n)).collect();
    let (page, next) = paginate(names, query, 100)?;
    Ok(json!({ "clusters": page, "nextToken": next }))
}

pub fn delete(st: &mut State, ctx: &Ctx, name: &str) -> EksResult<Value> {
    let cluster = st.cluster_mut(name)?;
    match cluster.status() {
        "DELETING" => {
            return Err(EksError::in_use(format!(
                "Cluster {name} is currently being deleted"
            )))
        }
        "UPDATING" => {
            return Err(EksError::in_use(format!(
                "Cannot delete because cluster {name} currently has an update in progress"
            )))
        }
        _ => {}
    }
    if cluster.res.doc["deletionProtection"] == true {
        return Err(EksError::invalid_request(format!(
            "Cluster {name} has deletion protection enabled"
        )));
    }
    if !cluster.nodegroups.is_empty() {
        return Err(EksError::in_use("Cluster has nodegroups attached"));
    }
    // Add-ons go with the cluster (they do not block deletion).
    for addon in cluster.addons.values_mut() {
        addon.set_status("DELETING");
        addon.pending = None;
    }
    cluster.res.set_status("DELETING");
    cluster.res.pending = Pending::after(ctx.delays.cluster_delete, Then::Remove);
    Ok(json!({ "cluster": cluster.res.doc }))
}

fn require_updatable(cluster: &ClusterRec, name: &str) -> EksResult<()> {
    match cluster.status() {
        "ACTIVE" => Ok(()),
        "UPDATING" => Err(EksError::in_use(format!(
            "An update is already in progress for cluster {name}"
        ))),
        other => Err(EksError::in_use(format!(
            "Cluster {name} is in {other} state"
        ))),
    }
}

fn start_update(st: &mut State, ctx: &Ctx, name: &str, update: Value) -> EksResult<Value> {
    let cluster = st.cluster_mut(name)?;
    cluster.res.set_status("UPDATING");
    cluster.res.pending = Pending::after(ctx.delays.update, Then::Active);
    let id = update["id"].as_str().unwrap_or_default().to_string();
    st.updates.insert(
        id,
        UpdateRec {
            doc: update.clone(),
            cluster: name.to_string(),
            nodegroup: None,
            addon: None,
            done_at: Instant::now() + ctx.delays.update,
        },
    );
    Ok(json!({ "update": update }))
}

/// The sections UpdateClusterConfig accepts; exactly one may be given per call.
const CONFIG_SECTIONS: &[&str] = &[
    "resourcesVpcConfig",
    "logging",
    "accessConfig",
    "upgradePolicy",
    "zonalShiftConfig",
    "computeConfig",
    "kubernetesNetworkConfig",
    "storageConfig",
    "remoteNetworkConfig",
    "deletionProtection",
];

pub fn update_config(st: &mut State, ctx: &Ctx, name: &str, body: &Value) -> EksResult<Value> {
    let cluster = st.cluster_mut(name)?;
    require_updatable(cluster, name)?;
    let given: Vec<&str> = CONFIG_SECTIONS
        .iter()
        .copied()
        .filter(|s| !body[*s].is_null())
        .collect();
    let section = match given.as_slice() {
        [one] => *one,
        [] => return Err(EksError::invalid_parameter("No changes needed")),
        _ => {
            return Err(EksError::invalid_parameter(
                "Only one type of update can be allowed.",
            ))
        }
    };
    let doc = &mut cluster.res.doc;
    let update = match section {
        "logging" => {
            let current = enabled_logs(doc);
            let next = apply_logging(&current, &body["logging"])?;
            if next == current {
                return Err(EksError::invalid_parameter(
                    "No changes needed for the logging config provided",
                ));
            }
            doc["logging"] = logging_doc(&next);
            update_doc(
                "LoggingUpdate",
                vec![(
                    "ClusterLogging",
                    doc["logging"]["clusterLogging"].to_string(),
                )],
            )
        }
        "resourcesVpcConfig" => {
            let req = &body["resourcesVpcConfig"];
            let cur = doc["resourcesVpcConfig"].clone();
            let public = req["endpointPublicAccess"]
                .as_bool()
                .unwrap_or(cur["endpointPublicAccess"] == true);
            let private = req["endpointPrivateAccess"]
                .as_bool()
                .unwrap_or(cur["endpointPrivateAccess"] == true);
            if !public && !private {
                return Err(EksError::invalid_parameter(
                    "Either endpointPublicAccess or endpointPrivateAccess must be true",
                ));
            }
            let mut next = cur.clone();
            next["endpointPublicAccess"] = json!(public);
            next["endpointPrivateAccess"] = json!(private);
            for list in ["publicAccessCidrs", "subnetIds", "securityGroupIds"] {
                if !req[list].is_null() {
                    next[list] = json!(string_list(req, list)?);
                }
            }
            if next == cur {
                return Err(EksError::invalid_parameter(format!(
                    "Cluster is already at the desired configuration with endpointPrivateAccess: {private} , endpointPublicAccess: {public}, and Public Endpoint Restrictions: {}",
                    next["publicAccessCidrs"]
                )));
            }
            let kind = if next["subnetIds"] != cur["subnetIds"]
                || next["securityGroupIds"] != cur["securityGroupIds"]
            {
                "VpcConfigUpdate"
            } else {
                "EndpointAccessUpdate"
            };
            doc["resourcesVpcConfig"] = next.clone();
            update_doc(
                kind,
                vec![
                    ("EndpointPublicAccess", public.to_string()),
                    ("EndpointPrivateAccess", private.to_string()),
                    ("PublicAccessCidrs", next["publicAccessCidrs"].to_string()),
                ],
            )
        }
        "accessConfig" => {
            let current = doc["accessConfig"]["authenticationMode"]
                .as_str()
                .unwrap_or("CONFIG_MAP")
                .to_string();
            let Some(mode) = opt_str(&body["accessConfig"], "authenticationMode") else {
                return Err(EksError::invalid_parameter(
                    "authenticationMode is required",
                ));
            };
            if mode == current {
                return Err(EksError::invalid_parameter(
                    "No changes needed for the authenticationMode provided",
                ));
            }
            // Only one-way steps are allowed: CONFIG_MAP → API_AND_CONFIG_MAP → API.
            let allowed = matches!(
                (current.as_str(), mode),
                ("CONFIG_MAP", "API_AND_CONFIG_MAP") | ("API_AND_CONFIG_MAP", "API")
            );
            if !allowed {
                return Err(EksError::invalid_parameter(format!(
                    "Unsupported authentication mode update from {current} to {mode}"
                )));
            }
            doc["accessConfig"]["authenticationMode"] = json!(mode);
            update_doc(
                "AccessConfigUpdate",
                vec![("AuthenticationMode", mode.to_string())],
            )
        }
        other => {
            doc[other] = body[other].clone();
            update_doc("ConfigUpdate", vec![(other, body[other].to_string())])
        }
    };
    start_update(st, ctx, name, update)
}

pub fn update_version(st: &mut State, ctx: &Ctx, name: &str, body: &Value) -> EksResult<Value> {
    let version = req_str(body, "version")?.to_string();
    let cluster = st.cluster_mut(name)?;
    require_updatable(cluster, name)?;
    let current = cluster.res.doc["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    check_version(&version)?;
    if minor(&version) != minor(&current).map(|m| m + 1) {
        return Err(EksError::invalid_parameter(format!(
            "Unsupported Kubernetes minor version update from {current} to {version}"
        )));
    }
    cluster.res.doc["version"] = json!(version);
    cluster.res.doc["platformVersion"] = json!("eks.1");
    let update = update_doc(
        "VersionUpdate",
        vec![("Version", version), ("PlatformVersion", "eks.1".into())],
    );
    start_update(st, ctx, name, update)
}

pub fn list_updates(
    st: &State,
    name: &str,
    query: &HashMap<String, Vec<String>>,
) -> EksResult<Value> {
    st.cluster(name)?;
    let ng = q(query, "nodegroupName");
    let addon = q(query, "addonName");
    let ids = st
        .updates
        .iter()
        .filter(|(_, u)| {
            u.cluster == name && u.nodegroup.as_deref() == ng && u.addon.as_deref() == addon
        })
        .map(|(id, _)| json!(id))
        .collect();
    let (page, next) = paginate(ids, query, 100)?;
    Ok(json!({ "updateIds": page, "nextToken": next }))
}

pub fn describe_update(
    st: &State,
    name: &str,
    id: &str,
    query: &HashMap<String, Vec<String>>,
) -> EksResult<Value> {
    st.cluster(name)?;
    let update = st.updates.get(id).filter(|u| {
        u.cluster == name
            && u.nodegroup.as_deref() == q(query, "nodegroupName")
            && u.addon.as_deref() == q(query, "addonName")
    });
    match update {
        Some(u) => Ok(json!({ "update": u.doc })),
        None => Err(EksError::not_found(format!("No update found for ID: {id}"))),
    }
}
