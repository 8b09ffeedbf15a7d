//! The resource types kubesim serves: the built-in kinds and those CRDs register.

use serde_json::Value;
use std::collections::BTreeMap;

/// One served resource type (one REST collection), possibly at several versions.
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub group: String,
    /// Served versions, the preferred one first.
    pub versions: Vec<String>,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub status_subresource: bool,
    /// Whether `metadata.generation` is maintained (it is for spec-bearing kinds).
    pub generation: bool,
    /// For custom resources: the `openAPIV3Schema` of each version.
    pub schemas: BTreeMap<String, Value>,
    pub custom: bool,
}

impl ResourceType {
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{}", self.group, version)
        }
    }

    pub fn serves(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v == version)
    }
}

// (group, versions, plural, kind, namespaced, short names, status subresource, generation)
type Builtin = (
    &'static str,
    &'static [&'static str],
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    bool,
    bool,
);

#[rustfmt::skip]
const BUILTINS: &[Builtin] = &[
    ("", &["v1"], "namespaces", "Namespace", false, &["ns"], true, false),
    ("", &["v1"], "serviceaccounts", "ServiceAccount", true, &["sa"], false, false),
    ("", &["v1"], "configmaps", "ConfigMap", true, &["cm"], false, false),
    ("", &["v1"], "secrets", "Secret", true, &[], false, false),
    ("", &["v1"], "services", "Service", true, &["svc"], true, false),
    ("", &["v1"], "endpoints", "Endpoints", true, &["ep"], false, false),
    ("", &["v1"], "events", "Event", true, &["ev"], false, false),
    ("", &["v1"], "pods", "Pod", true, &["po"], true, false),
    ("", &["v1"], "persistentvolumeclaims", "PersistentVolumeClaim", true, &["pvc"], true, false),
    ("", &["v1"], "persistentvolumes", "PersistentVolume", false, &["pv"], true, false),
    ("", &["v1"], "resourcequotas", "ResourceQuota", true, &["quota"], true, false),
    ("", &["v1"], "limitranges", "LimitRange", true, &["limits"], false, false),
    ("", &["v1"], "nodes", "Node", false, &["no"], true, false),
    ("apps", &["v1"], "deployments", "Deployment", true, &["deploy"], true, true),
    ("apps", &["v1"], "statefulsets", "StatefulSet", true, &["sts"], true, true),
    ("apps", &["v1"], "daemonsets", "DaemonSet", true, &["ds"], true, true),
    ("apps", &["v1"], "replicasets", "ReplicaSet", true, &["rs"], true, true),
    ("apps", &["v1"], "controllerrevisions", "ControllerRevision", true, &[], false, false),
    ("batch", &["v1"], "jobs", "Job", true, &[], true, true),
    ("batch", &["v1"], "cronjobs", "CronJob", true, &["cj"], true, true),
    ("rbac.authorization.k8s.io", &["v1"], "clusterroles", "ClusterRole", false, &[], false, false),
    ("rbac.authorization.k8s.io", &["v1"], "clusterrolebindings", "ClusterRoleBinding", false, &[], false, false),
    ("rbac.authorization.k8s.io", &["v1"], "roles", "Role", true, &[], false, false),
    ("rbac.authorization.k8s.io", &["v1"], "rolebindings", "RoleBinding", true, &[], false, false),
    ("networking.k8s.io", &["v1"], "networkpolicies", "NetworkPolicy", true, &["netpol"], false, true),
    ("networking.k8s.io", &["v1"], "ingresses", "Ingress", true, &["ing"], true, true),
    ("networking.k8s.io", &["v1"], "ingressclasses", "IngressClass", false, &[], false, false),
    ("apiextensions.k8s.io", &["v1"], "customresourcedefinitions", "CustomResourceDefinition", false, &["crd", "crds"], true, true),
    ("coordination.k8s.io", &["v1"], "leases", "Lease", true, &[], false, false),
    ("events.k8s.io", &["v1"], "events", "Event", true, &["ev"], false, false),
    ("storage.k8s.io", &["v1"], "storageclasses", "StorageClass", false, &["sc"], false, false),
    ("storage.k8s.io", &["v1"], "csidrivers", "CSIDriver", false, &[], false, false),
    ("policy", &["v1"], "poddisruptionbudgets", "PodDisruptionBudget", true, &["pdb"], true, true),
    ("admissionregistration.k8s.io", &["v1"], "mutatingwebhookconfigurations", "MutatingWebhookConfiguration", false, &[], false, true),
    ("admissionregistration.k8s.io", &["v1"], "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", false, &[], false, true),
    ("autoscaling", &["v2", "v1"], "horizontalpodautoscalers", "HorizontalPodAutoscaler", true, &["hpa"], true, true),
    ("scheduling.k8s.io", &["v1"], "priorityclasses", "PriorityClass", false, &["pc"], false, false),
    ("discovery.k8s.io", &["v1"], "endpointslices", "EndpointSlice", true, &[], false, false),
    ("apiregistration.k8s.io", &["v1"], "apiservices", "APIService", false, &[], true, false),
];

/// All resource types currently served.
#[derive(Debug, Clone)]
pub struct Registry {
    types: Vec<ResourceType>,
}

impl Default for Registry {
    fn default() -> Self {
        let types = BUILTINS
            .iter()
            .map(
                |(group, versions, plural, kind, namespaced, short, status, generation)| {
                    ResourceType {
                        group: group.to_string(),
                        versions: versions.iter().map(|v| v.to_string()).collect(),
                        plural: plural.to_string(),
                        singular: kind.to_lowercase(),
                        kind: kind.to_string(),
                        namespaced: *namespaced,
                        short_names: short.iter().map(|s| s.to_string()).collect(),
                        categories: Vec::new(),
                        status_subresource: *status,
                        generation: *generation,
                        schemas: BTreeMap::new(),
                        custom: false,
                    }
                },
            )
            .collect();
        Registry { types }
    }
}

impl Registry {
    pub fn all(&self) -> &[ResourceType] {
        &self.types
    }

    pub fn by_plural(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.plural == plural && t.serves(version))
    }

    /// Looks a type up by `apiVersion` and `kind`.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        let (group, version) = split_api_version(api_version);
        self.types
            .iter()
            .find(|t| t.group == group && t.kind == kind && t.serves(version))
    }

    /// Adds or replaces the type a CRD defines.
    pub fn register(&mut self, rt: ResourceType) {
        self.types
            .retain(|t| !(t.group == rt.group && t.plural == rt.plural));
        self.types.push(rt);
    }

    pub fn unregister(&mut self, group: &str, plural: &str) {
        self.types
            .retain(|t| !(t.custom && t.group == group && t.plural == plural));
    }

    /// Every group with its served versions, preferred first (core group excluded).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for t in self.types.iter().filter(|t| !t.group.is_empty()) {
            match groups.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, versions)) => {
                    for v in &t.versions {
                        if !versions.contains(v) {
                            versions.push(v.clone());
                        }
                    }
                }
                None => groups.push((t.group.clone(), t.versions.clone())),
            }
        }
        for (_, versions) in groups.iter_mut() {
            versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        }
        groups
    }
}

pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

/// Kubernetes version ordering: GA > beta > alpha, then by number.
fn version_priority(v: &str) -> (u8, u32, u32) {
    let rest = v.strip_prefix('v').unwrap_or(v);
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let major = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    let (stage, minor) = if let Some(n) = tail.strip_prefix("beta") {
        (1, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (0, n.parse().unwrap_or(0))
    } else if tail.is_empty() {
        (2, 0)
    } else {
        (0, 0)
    };
    (stage, major, minor)
}

/// The resource type a CRD object defines, if it is well formed.
pub fn from_crd(crd: &Value) -> Option<ResourceType> {
    let spec = crd.get("spec")?;
    let names = spec.get("names")?;
    let str_list = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let plural = names.get("plural")?.as_str()?.to_string();
    let kind = names.get("kind")?.as_str()?.to_string();
    let mut versions = Vec::new();
    let mut schemas = BTreeMap::new();
    let mut status_subresource = false;
    for v in spec.get("versions")?.as_array()? {
        let name = v.get("name")?.as_str()?.to_string();
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        if v.pointer("/subresources/status").is_some() {
            status_subresource = true;
        }
        if let Some(schema) = v.pointer("/schema/openAPIV3Schema") {
            schemas.insert(name.clone(), schema.clone());
        }
        versions.push(name);
    }
    versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
    Some(ResourceType {
        group: spec.get("group")?.as_str()?.to_string(),
        versions,
        singular: names
            .get("singular")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| kind.to_lowercase()),
        plural,
        kind,
        namespaced: spec.get("scope").and_then(Value::as_str) != Some("Cluster"),
        short_names: str_list(names.get("shortNames")),
        categories: str_list(names.get("categories")),
        status_subresource,
        generation: true,
        schemas,
        custom: true,
    })
}
