//! Managed add-on operations.

use super::error::{EksError, EksResult};
use super::nodegroups::require_running;
use super::pod_identity;
use super::state::{Pending, Res, State, Then, UpdateRec};
use super::util::{now_epoch, opt_str, paginate, req_str, string_map, update_doc, validate_tags};
use super::Ctx;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Instant;

/// Add-ons the simulated EKS offers, with the version installed when none is named.
pub const SUPPORTED_ADDONS: &[(&str, &str)] = &[
    ("vpc-cni", "v1.20.0-eksbuild.1"),
    ("coredns", "v1.12.1-eksbuild.2"),
    ("kube-proxy", "v1.33.0-eksbuild.2"),
    ("eks-pod-identity-agent", "v1.3.7-eksbuild.2"),
    ("aws-ebs-csi-driver", "v1.45.0-eksbuild.2"),
    ("aws-efs-csi-driver", "v2.1.9-eksbuild.1"),
    ("snapshot-controller", "v8.2.0-eksbuild.1"),
    ("metrics-server", "v0.8.0-eksbuild.1"),
    ("amazon-cloudwatch-observability", "v4.1.0-eksbuild.1"),
    ("eks-node-monitoring-agent", "v1.3.0-eksbuild.2"),
    ("cert-manager", "v1.18.2-eksbuild.1"),
    ("external-dns", "v0.18.0-eksbuild.1"),
];

/// Versions offered besides the default, newest first. EKS's default for a Kubernetes version
/// often lags the newest build (DescribeAddonVersions marks one `defaultVersion` per cluster
/// version; EKS user guide, "Updating an Amazon EKS add-on"), so the simulated default of the EBS
/// CSI driver stays older than the first release that tags volumes with its cluster (v1.58.0).
const NEWER_VERSIONS: &[(&str, &[&str])] = &[(
    "aws-ebs-csi-driver",
    &[
        "v1.60.0-eksbuild.1",
        "v1.58.0-eksbuild.1",
        "v1.46.0-eksbuild.1",
    ],
)];

/// Refuses a version the catalogue does not offer, as EKS does: CreateAddon / UpdateAddon answer
/// InvalidParameterException for an `addonVersion` DescribeAddonVersions does not list (EKS API
/// reference, CreateAddon "Errors"; user guide, "Update an Amazon EKS add-on": the version must be
/// one DescribeAddonVersions returns for the cluster).
fn check_offered(addon: &str, version: Option<&str>) -> EksResult<()> {
    let Some(version) = version else {
        return Ok(());
    };
    let default = SUPPORTED_ADDONS
        .iter()
        .find(|(n, _)| *n == addon)
        .map(|(_, d)| *d);
    let newer = NEWER_VERSIONS
        .iter()
        .find(|(n, _)| *n == addon)
        .map(|(_, v)| *v)
        .unwrap_or_default();
    if default == Some(version) || newer.contains(&version) {
        Ok(())
    } else {
        Err(EksError::invalid_parameter(format!(
            "Addon version specified is not supported: {version} of {addon}"
        )))
    }
}

/// Kubernetes versions every simulated add-on version is compatible with.
const CLUSTER_VERSIONS: &[&str] = &["1.33", "1.34", "1.35"];

/// DescribeAddonVersions (`GET /addons/supported-versions?addonName=&kubernetesVersion=`): each
/// add-on's versions, newest first, with their compatible cluster versions and which one is the
/// default (the response shape of the EKS API reference).
pub fn versions(query: &HashMap<String, Vec<String>>) -> EksResult<Value> {
    let name = super::util::q(query, "addonName");
    let kubernetes = super::util::q(query, "kubernetesVersion");
    if kubernetes.is_some_and(|k| !CLUSTER_VERSIONS.contains(&k)) {
        return Ok(json!({ "addons": [] }));
    }
    let compatible = |default: bool| -> Vec<Value> {
        CLUSTER_VERSIONS
            .iter()
            .filter(|v| kubernetes.is_none_or(|k| k == **v))
            .map(|v| json!({"clusterVersion": v, "platformVersions": ["*"], "defaultVersion": default}))
            .collect()
    };
    let addons: Vec<Value> = SUPPORTED_ADDONS
        .iter()
        .filter(|(n, _)| name.is_none_or(|want| want == *n))
        .map(|(n, default)| {
            let newer = NEWER_VERSIONS
                .iter()
                .find(|(a, _)| a == n)
                .map(|(_, v)| *v)
                .unwrap_or_default();
            let mut versions: Vec<Value> = newer
                .iter()
                .map(|v| json!({"addonVersion": v, "architecture": ["amd64", "arm64"], "compatibilities": compatible(false)}))
                .collect();
            versions.push(json!({"addonVersion": default, "architecture": ["amd64", "arm64"], "compatibilities": compatible(true)}));
            json!({"addonName": n, "type": "storage", "addonVersions": versions, "owner": "aws", "publisher": "eks"})
        })
        .collect();
    let (page, next) = paginate(addons, query, 100)?;
    Ok(json!({ "addons": page, "nextToken": next }))
}

fn not_found(cluster: &str, addon: &str) -> EksError {
    EksError::not_found(format!("No addon: {addon} found in cluster: {cluster}"))
}

pub fn create(st: &mut State, ctx: &Ctx, cluster_name: &str, body: &Value) -> EksResult<Value> {
    let cluster = st.cluster_mut(cluster_name)?;
    require_running(cluster, cluster_name)?;
    let name = req_str(body, "addonName")?;
    let version = cluster.res.doc["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Some((_, default_version)) = SUPPORTED_ADDONS.iter().find(|(n, _)| *n == name) else {
        return Err(EksError::invalid_parameter(format!(
            "Addon {name} specified is not supported in {version} cluster version"
        )));
    };
    if cluster.addons.contains_key(name) {
        return Err(EksError::in_use("Addon already exists."));
    }
    check_offered(name, opt_str(body, "addonVersion"))?;
    let tags = string_map(body, "tags")?;
    validate_tags(&tags, EksError::invalid_parameter)?;
    if let Some(cfg) = opt_str(body, "configurationValues") {
        if serde_yaml_ng::from_str::<serde_yaml_ng::Value>(cfg).is_err() {
            return Err(EksError::invalid_parameter(
                "configurationValues is not valid JSON or YAML",
            ));
        }
    }
    let arn = format!(
        "arn:aws:eks:{}:{}:addon/{cluster_name}/{name}/{}",
        ctx.region,
        ctx.account_id,
        uuid::Uuid::new_v4()
    );
    let mut doc = json!({
        "addonName": name,
        "clusterName": cluster_name,
        "status": "CREATING",
        "addonVersion": opt_str(body, "addonVersion").unwrap_or(default_version),
        "health": {"issues": []},
        "addonArn": arn,
        "createdAt": now_epoch(),
        "modifiedAt": now_epoch(),
        "tags": tags,
        "podIdentityAssociations": [],
    });
    for field in ["serviceAccountRoleArn", "configurationValues"] {
        if let Some(v) = opt_str(body, field) {
            doc[field] = json!(v);
        }
    }
    let mut pias = Vec::new();
    for assoc in body["podIdentityAssociations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let sa = req_str(assoc, "serviceAccount")?;
        let role = req_str(assoc, "roleArn")?;
        let req = json!({"namespace": "kube-system", "serviceAccount": sa, "roleArn": role});
        pias.push(pod_identity::insert(
            cluster,
            ctx,
            cluster_name,
            &req,
            Some(&arn),
        )?);
    }
    doc["podIdentityAssociations"] = json!(pias);
    cluster.addons.insert(
        name.to_string(),
        Res {
            doc: doc.clone(),
            pending: Pending::after(ctx.delays.addon_create, Then::Active),
        },
    );
    Ok(json!({ "addon": doc }))
}

pub fn describe(st: &State, cluster: &str, addon: &str) -> EksResult<Value> {
    let c = st.cluster(cluster)?;
    let r = c
        .addons
        .get(addon)
        .ok_or_else(|| not_found(cluster, addon))?;
    Ok(json!({ "addon": r.doc }))
}

pub fn list(st: &State, cluster: &str, query: &HashMap<String, Vec<String>>) -> EksResult<Value> {
    let c = st.cluster(cluster)?;
    let names = c.addons.keys().map(|n| json!(n)).collect();
    let (page, next) = paginate(names, query, 100)?;
    Ok(json!({ "addons": page, "nextToken": next }))
}

pub fn delete(st: &mut State, ctx: &Ctx, cluster: &str, addon: &str) -> EksResult<Value> {
    let c = st.cluster_mut(cluster)?;
    let r = c
        .addons
        .get_mut(addon)
        .ok_or_else(|| not_found(cluster, addon))?;
    if r.status() == "DELETING" {
        return Err(EksError::in_use(format!(
            "Addon {addon} is already being deleted"
        )));
    }
    r.set_status("DELETING");
    r.pending = Pending::after(ctx.delays.addon_delete, Then::Remove);
    let arn = r.arn("addonArn").to_string();
    let doc = r.doc.clone();
    // The add-on's own Pod Identity associations go with it.
    c.pod_identity.retain(|_, a| a["ownerArn"] != arn.as_str());
    Ok(json!({ "addon": doc }))
}

pub fn update(
    st: &mut State,
    ctx: &Ctx,
    cluster: &str,
    addon: &str,
    body: &Value,
) -> EksResult<Value> {
    let c = st.cluster_mut(cluster)?;
    let r = c
        .addons
        .get_mut(addon)
        .ok_or_else(|| not_found(cluster, addon))?;
    match r.status() {
        "ACTIVE" | "DEGRADED" | "UPDATE_FAILED" | "CREATE_FAILED" => {}
        other => {
            return Err(EksError::in_use(format!(
                "Addon {addon} is currently in {other} state"
            )))
        }
    }
    check_offered(addon, opt_str(body, "addonVersion"))?;
    let mut params = Vec::new();
    for (field, param) in [
        ("addonVersion", "AddonVersion"),
        ("serviceAccountRoleArn", "ServiceAccountRoleArn"),
        ("resolveConflicts", "ResolveConflicts"),
        ("configurationValues", "ConfigurationValues"),
    ] {
        if let Some(v) = opt_str(body, field) {
            if field != "resolveConflicts" {
                r.doc[field] = json!(v);
            }
            params.push((param, v.to_string()));
        }
    }
    r.doc["modifiedAt"] = now_epoch();
    r.set_status("UPDATING");
    r.pending = Pending::after(ctx.delays.update, Then::Active);
    let update = update_doc("AddonUpdate", params);
    st.updates.insert(
        update["id"].as_str().unwrap_or_default().to_string(),
        UpdateRec {
            doc: update.clone(),
            cluster: cluster.to_string(),
            nodegroup: None,
            addon: Some(addon.to_string()),
            done_at: Instant::now() + ctx.delays.update,
        },
    );
    Ok(json!({ "update": update }))
}
