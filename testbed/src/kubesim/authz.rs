//! Authorization as an EKS cluster does it: an authenticated IAM principal may do what the
//! access policies associated with its access entry allow, plus what Kubernetes RBAC grants the
//! entry's username and `kubernetesGroups`. A principal without an access entry is not
//! authenticated at all (401), like EKS (issue 19 item 5).
//!
//! Sources: EKS user guide, "Review access policy permissions"
//! (awsdocs/amazon-eks-user-guide latest/ug/manage-access/k8s-access/access-policy-reference.adoc)
//! for the policies' rules; Kubernetes RBAC (kubernetes.io/docs/reference/access-authn-authz/rbac,
//! plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go) for bindings, aggregation and the
//! discovery / `/version` paths every authenticated user may read (`system:discovery`,
//! `system:public-info-viewer` bound to `system:authenticated`).
//!
//! Not simulated: AmazonEKSAdminPolicy, AmazonEKSEditPolicy and the service policies grant
//! nothing here; the aws-auth ConfigMap of API_AND_CONFIG_MAP clusters is not read.

use std::sync::Arc;

use serde_json::Value;

use super::errors::ApiError;
use super::selectors::{FieldSelector, LabelSelector};
use super::store::{Gvr, Store};

const POLICY_PREFIX: &str = "arn:aws:eks::aws:cluster-access-policy/";

/// What an access entry gives its principal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grant {
    /// The Kubernetes username RBAC sees.
    pub username: String,
    /// The entry's `kubernetesGroups`.
    pub groups: Vec<String>,
    /// Associated access policies: (policy ARN, namespaces; empty = cluster scope).
    pub policies: Vec<(String, Vec<String>)>,
}

impl Grant {
    /// Everything (a developer's static token, a kubesim without EKS in front of it).
    pub fn cluster_admin(username: impl Into<String>) -> Grant {
        Grant {
            username: username.into(),
            groups: Vec::new(),
            policies: vec![(
                format!("{POLICY_PREFIX}AmazonEKSClusterAdminPolicy"),
                vec![],
            )],
        }
    }
}

/// Access key id of a verified EKS token → the grant of its principal's access entry, or `None`
/// when the principal has no entry (EKS answers 401).
pub type AccessLookup = Arc<dyn Fn(&str) -> Option<Grant> + Send + Sync>;

/// One request as the authorizer sees it.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    /// `pods`, or `pods/log` for a subresource.
    pub resource: String,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

struct Rule<'a> {
    groups: &'a [&'a str],
    resources: &'a [&'a str],
    verbs: &'a [&'a str],
}

const READ: &[&str] = &["get", "list", "watch"];

/// AmazonEKSViewPolicy, row by row as the EKS user guide lists it.
const VIEW_POLICY: &[Rule<'static>] = &[
    Rule {
        groups: &["apps"],
        resources: &[
            "controllerrevisions",
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "statefulsets",
            "statefulsets/scale",
            "statefulsets/status",
        ],
        verbs: READ,
    },
    Rule {
        groups: &["autoscaling"],
        resources: &[
            "horizontalpodautoscalers",
            "horizontalpodautoscalers/status",
        ],
        verbs: READ,
    },
    Rule {
        groups: &["batch"],
        resources: &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
        verbs: READ,
    },
    Rule {
        groups: &["discovery.k8s.io"],
        resources: &["endpointslices"],
        verbs: READ,
    },
    Rule {
        groups: &["extensions"],
        resources: &[
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "ingresses",
            "ingresses/status",
            "networkpolicies",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "replicationcontrollers/scale",
        ],
        verbs: READ,
    },
    Rule {
        groups: &["networking.k8s.io"],
        resources: &["ingresses", "ingresses/status", "networkpolicies"],
        verbs: READ,
    },
    Rule {
        groups: &["policy"],
        resources: &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        verbs: READ,
    },
    Rule {
        groups: &[""],
        resources: &[
            "configmaps",
            "endpoints",
            "persistentvolumeclaims",
            "persistentvolumeclaims/status",
            "pods",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "serviceaccounts",
            "services",
            "services/status",
            "bindings",
            "events",
            "limitranges",
            "namespaces/status",
            "pods/log",
            "pods/status",
            "replicationcontrollers/status",
            "resourcequotas",
            "resourcequotas/status",
            "namespaces",
        ],
        verbs: READ,
    },
];

/// AmazonEKSAdminViewPolicy: read everything, Secrets included.
const ADMIN_VIEW_POLICY: &[Rule<'static>] = &[Rule {
    groups: &["*"],
    resources: &["*"],
    verbs: READ,
}];

/// AmazonEKSClusterAdminPolicy: everything.
const CLUSTER_ADMIN_POLICY: &[Rule<'static>] = &[Rule {
    groups: &["*"],
    resources: &["*"],
    verbs: &["*"],
}];

fn policy_rules(policy_arn: &str) -> &'static [Rule<'static>] {
    match policy_arn.strip_prefix(POLICY_PREFIX) {
        Some("AmazonEKSClusterAdminPolicy") => CLUSTER_ADMIN_POLICY,
        Some("AmazonEKSAdminViewPolicy") => ADMIN_VIEW_POLICY,
        Some("AmazonEKSViewPolicy") => VIEW_POLICY,
        _ => &[],
    }
}

fn covers(list: &[&str], value: &str) -> bool {
    list.iter().any(|v| *v == "*" || *v == value)
}

fn rule_allows(rule: &Rule<'_>, attrs: &Attributes<'_>) -> bool {
    covers(rule.verbs, attrs.verb)
        && covers(rule.groups, attrs.group)
        && covers(rule.resources, &attrs.resource)
}

/// Allowed, or 403 with the apiserver's message.
pub fn authorize(store: &Store, grant: &Grant, attrs: &Attributes<'_>) -> Result<(), ApiError> {
    let by_policy = grant.policies.iter().any(|(policy, namespaces)| {
        let in_scope = namespaces.is_empty()
            || attrs
                .namespace
                .is_some_and(|ns| namespaces.iter().any(|n| n == ns));
        in_scope
            && policy_rules(policy)
                .iter()
                .any(|rule| rule_allows(rule, attrs))
    });
    if by_policy || rbac_allows(store, grant, attrs) {
        return Ok(());
    }
    Err(ApiError::forbidden(forbidden_message(
        &grant.username,
        attrs,
    )))
}

/// `pods "x" is forbidden: User "u" cannot get resource "pods" in API group "" in the namespace "n"`
fn forbidden_message(username: &str, attrs: &Attributes<'_>) -> String {
    let (resource, sub) = match attrs.resource.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (attrs.resource.as_str(), None),
    };
    let qualified = if attrs.group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{}", attrs.group)
    };
    let object = match attrs.name {
        Some(name) => format!("{qualified} \"{name}\""),
        None => qualified,
    };
    let sub = sub
        .map(|s| format!(": subresource \"{s}\""))
        .unwrap_or_default();
    let place = match attrs.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    format!(
        "{object} is forbidden: User \"{username}\" cannot {} resource \"{resource}\" in API group \"{}\" {place}{sub}",
        attrs.verb, attrs.group
    )
}

fn rbac_gvr(plural: &str) -> Gvr {
    Gvr {
        group: "rbac.authorization.k8s.io".into(),
        version: "v1".into(),
        plural: plural.into(),
    }
}

fn list(store: &Store, plural: &str, namespace: Option<&str>) -> Vec<Value> {
    store
        .list(
            &rbac_gvr(plural),
            namespace,
            &LabelSelector::default(),
            &FieldSelector::default(),
        )
        .map(|(_, items, _)| items)
        .unwrap_or_default()
}

fn binds(binding: &Value, grant: &Grant) -> bool {
    binding["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| match s["kind"].as_str() {
            // Every authenticated user is in system:authenticated.
            Some("Group") => s["name"].as_str().is_some_and(|name| {
                name == "system:authenticated" || grant.groups.iter().any(|g| g == name)
            }),
            Some("User") => s["name"].as_str() == Some(grant.username.as_str()),
            _ => false,
        })
}

/// The rules of a ClusterRole, those of the ClusterRoles its aggregationRule selects included.
fn cluster_role_rules(cluster_roles: &[Value], name: &str) -> Vec<Value> {
    let Some(role) = cluster_roles
        .iter()
        .find(|r| r["metadata"]["name"].as_str() == Some(name))
    else {
        return Vec::new();
    };
    let mut rules: Vec<Value> = role["rules"].as_array().cloned().unwrap_or_default();
    for selector in role["aggregationRule"]["clusterRoleSelectors"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(wanted) = selector["matchLabels"].as_object() else {
            continue;
        };
        for other in cluster_roles {
            let labels = &other["metadata"]["labels"];
            if wanted.iter().all(|(k, v)| &labels[k] == v) {
                rules.extend(other["rules"].as_array().cloned().unwrap_or_default());
            }
        }
    }
    rules
}

fn rbac_rule_allows(rule: &Value, attrs: &Attributes<'_>) -> bool {
    let strings = |key: &str| -> Vec<&str> {
        rule[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    };
    let names = strings("resourceNames");
    let name_ok = names.is_empty() || attrs.name.is_some_and(|n| names.contains(&n));
    covers(&strings("verbs"), attrs.verb)
        && covers(&strings("apiGroups"), attrs.group)
        && covers(&strings("resources"), &attrs.resource)
        && name_ok
}

fn rbac_allows(store: &Store, grant: &Grant, attrs: &Attributes<'_>) -> bool {
    let cluster_roles = list(store, "clusterroles", None);
    let mut rules: Vec<Value> = Vec::new();
    for binding in list(store, "clusterrolebindings", None) {
        if binds(&binding, grant) && binding["roleRef"]["kind"] == "ClusterRole" {
            if let Some(name) = binding["roleRef"]["name"].as_str() {
                rules.extend(cluster_role_rules(&cluster_roles, name));
            }
        }
    }
    if let Some(ns) = attrs.namespace {
        let roles = list(store, "roles", Some(ns));
        for binding in list(store, "rolebindings", Some(ns)) {
            if !binds(&binding, grant) {
                continue;
            }
            let Some(name) = binding["roleRef"]["name"].as_str() else {
                continue;
            };
            match binding["roleRef"]["kind"].as_str() {
                Some("ClusterRole") => rules.extend(cluster_role_rules(&cluster_roles, name)),
                Some("Role") => rules.extend(
                    roles
                        .iter()
                        .filter(|r| r["metadata"]["name"].as_str() == Some(name))
                        .flat_map(|r| r["rules"].as_array().cloned().unwrap_or_default()),
                ),
                _ => {}
            }
        }
    }
    rules.iter().any(|rule| rbac_rule_allows(rule, attrs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs<'a>(
        verb: &'a str,
        group: &'a str,
        resource: &str,
        ns: Option<&'a str>,
    ) -> Attributes<'a> {
        Attributes {
            verb,
            group,
            resource: resource.to_string(),
            namespace: ns,
            name: None,
        }
    }

    fn viewer() -> Grant {
        Grant {
            username: "viewer".into(),
            groups: vec![],
            policies: vec![(format!("{POLICY_PREFIX}AmazonEKSViewPolicy"), vec![])],
        }
    }

    #[test]
    fn the_view_policy_reads_pods_but_not_secrets_or_custom_resources() {
        let store = Store::new();
        let grant = viewer();
        assert!(authorize(&store, &grant, &attrs("list", "", "pods", Some("a"))).is_ok());
        let secrets = authorize(
            &store,
            &grant,
            &attrs("get", "", "secrets", Some("flux-system")),
        )
        .expect_err("secrets");
        assert_eq!(secrets.code, 403);
        assert!(authorize(&store, &grant, &attrs("delete", "", "pods", Some("a"))).is_err());
        assert!(authorize(
            &store,
            &grant,
            &attrs(
                "list",
                "kustomize.toolkit.fluxcd.io",
                "kustomizations",
                None
            )
        )
        .is_err());
    }

    #[test]
    fn namespace_scoped_policies_stop_at_their_namespaces() {
        let store = Store::new();
        let grant = Grant {
            username: "u".into(),
            groups: vec![],
            policies: vec![(
                format!("{POLICY_PREFIX}AmazonEKSClusterAdminPolicy"),
                vec!["team".into()],
            )],
        };
        assert!(authorize(&store, &grant, &attrs("delete", "", "pods", Some("team"))).is_ok());
        assert!(authorize(&store, &grant, &attrs("delete", "", "pods", Some("other"))).is_err());
        assert!(authorize(&store, &grant, &attrs("list", "", "namespaces", None)).is_err());
    }

    #[test]
    fn groups_get_what_their_bindings_give_aggregation_included() {
        let store = Store::new();
        let put = |v: Value| store.put(v).expect("stored");
        put(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "reader"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "reader"}}]},
            "rules": []}),
        );
        put(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "flux-view", "labels": {"agg": "reader"}},
            "rules": [{"apiGroups": ["kustomize.toolkit.fluxcd.io"], "resources": ["*"], "verbs": ["get", "list"]}]}),
        );
        put(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "readers"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "reader"},
            "subjects": [{"kind": "Group", "name": "labflow-readers"}]}),
        );
        let mut grant = viewer();
        let kustomizations = attrs(
            "list",
            "kustomize.toolkit.fluxcd.io",
            "kustomizations",
            None,
        );
        assert!(authorize(&store, &grant, &kustomizations).is_err());
        grant.groups.push("labflow-readers".into());
        assert!(authorize(&store, &grant, &kustomizations).is_ok());
        let err = authorize(
            &store,
            &grant,
            &attrs(
                "delete",
                "kustomize.toolkit.fluxcd.io",
                "kustomizations",
                Some("flux-system"),
            ),
        )
        .expect_err("no delete");
        assert!(
            err.message.contains("cannot delete resource \"kustomizations\" in API group \"kustomize.toolkit.fluxcd.io\" in the namespace \"flux-system\""),
            "{}",
            err.message
        );
    }
}
