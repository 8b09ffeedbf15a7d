//! Teardown planning (DESIGN.md §5): pure decisions the teardown step makes from observed state —
//! the order child Kustomizations are deleted in, which stuck finalizers may be removed, and which
//! Route53 records an environment's external-dns owns.

use std::collections::{BTreeMap, BTreeSet};

/// A Kubernetes object by namespace and name (namespace empty for cluster-scoped objects).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// What the deletion order needs to know about one Kustomization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KustomizationNode {
    pub key: ObjectKey,
    /// `spec.dependsOn`, namespaces resolved (a missing namespace means the object's own).
    pub depends_on: Vec<ObjectKey>,
    /// Kustomizations listed in this one's `status.inventory` (nested Kustomizations).
    pub contains: Vec<ObjectKey>,
}

/// The order to delete child Kustomizations in: leaves first. A Kustomization is deleted only
/// after every Kustomization that depends on it (reverse `dependsOn`) and every Kustomization it
/// created (its inventory) is gone, so workloads go while the controllers they need still run.
/// Ties are broken by key, so the order is deterministic. Nodes on a dependency cycle (which Flux
/// itself would never make Ready) come last, in key order, rather than blocking teardown.
pub fn deletion_order(nodes: &[KustomizationNode]) -> Vec<ObjectKey> {
    let present: BTreeSet<&ObjectKey> = nodes.iter().map(|n| &n.key).collect();
    // blockers[x] = the nodes that must be gone before x is deleted.
    let mut blockers: BTreeMap<&ObjectKey, BTreeSet<&ObjectKey>> =
        nodes.iter().map(|n| (&n.key, BTreeSet::new())).collect();
    for node in nodes {
        for dependency in &node.depends_on {
            if dependency != &node.key && present.contains(dependency) {
                if let Some(set) = blockers.get_mut(dependency) {
                    set.insert(&node.key);
                }
            }
        }
        for child in &node.contains {
            if child != &node.key && present.contains(child) {
                if let Some(set) = blockers.get_mut(&node.key) {
                    set.insert(child);
                }
            }
        }
    }
    let mut order = Vec::with_capacity(nodes.len());
    let mut remaining: BTreeSet<&ObjectKey> = present.clone();
    loop {
        let next = remaining
            .iter()
            .find(|key| {
                blockers
                    .get(*key)
                    .is_none_or(|set| set.iter().all(|b| !remaining.contains(b)))
            })
            .copied();
        match next {
            Some(key) => {
                remaining.remove(key);
                order.push(key.clone());
            }
            None => break,
        }
    }
    order.extend(remaining.into_iter().cloned());
    order
}

/// A finalizer teardown may remove from a stuck object, and the controller whose absence makes
/// that safe (its Deployment name or `app.kubernetes.io/name` label). Load-balancer finalizers are
/// never in this list: removing them orphans the load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeFinalizer {
    pub finalizer: String,
    /// The finalizer is removed only when no Deployment of this name runs anywhere.
    pub controller: String,
}

/// Finalizers that must never be removed by teardown, whatever the configuration says: the AWS
/// load balancer controller deletes the load balancer when it processes them.
pub const NEVER_REMOVE: &[&str] = &[
    "service.k8s.aws/resources",
    "ingress.k8s.aws/resources",
    "elbv2.k8s.aws/resources",
];

/// The finalizer of every Ingress in an explicit IngressGroup is this prefix plus the group's
/// name (aws-load-balancer-controller pkg/shared_constants ExplicitGroupFinalizerPrefix): never
/// removable either.
pub const GROUP_FINALIZER_PREFIX: &str = "group.ingress.k8s.aws/";

/// The default known-safe list: Kiali CRs once the Kiali operator is gone.
pub fn default_safe_finalizers() -> Vec<SafeFinalizer> {
    vec![SafeFinalizer {
        finalizer: "kiali.io/finalizer".into(),
        controller: "kiali-operator".into(),
    }]
}

/// What to do about one finalizer on an object that is stuck terminating past the grace period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalizerDecision {
    /// Known safe and its controller is gone: remove it.
    Remove,
    /// Known safe but its controller still runs: it should finish the job itself.
    ControllerRunning(String),
    /// Not on the known-safe list (or never removable): the object cannot be cleaned up.
    NotSafe,
}

/// Decide about `finalizer`, given the configured safe list and the controllers that run.
pub fn finalizer_decision(
    finalizer: &str,
    safe: &[SafeFinalizer],
    running_controllers: &BTreeSet<String>,
) -> FinalizerDecision {
    if NEVER_REMOVE.contains(&finalizer) || finalizer.starts_with(GROUP_FINALIZER_PREFIX) {
        return FinalizerDecision::NotSafe;
    }
    match safe.iter().find(|s| s.finalizer == finalizer) {
        None => FinalizerDecision::NotSafe,
        Some(s) if running_controllers.contains(&s.controller) => {
            FinalizerDecision::ControllerRunning(s.controller.clone())
        }
        Some(_) => FinalizerDecision::Remove,
    }
}

/// A Route53 record set, by name (lower case, no trailing dot) and type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId {
    pub name: String,
    pub record_type: String,
}

/// Route53 names end with a dot and escape some characters; compare them normalised.
pub fn normalize_record_name(name: &str) -> String {
    name.trim_end_matches('.')
        .replace("\\052", "*")
        .to_ascii_lowercase()
}

/// Whether `name` is `domain` or a name below it (record names as Route53 lists them: trailing
/// dot, `\052` for `*`, any case).
pub fn is_within_domain(name: &str, domain: &str) -> bool {
    let name = normalize_record_name(name);
    let domain = normalize_record_name(domain);
    !domain.is_empty() && (name == domain || name.ends_with(&format!(".{domain}")))
}

/// Whether a TXT record's value (the strings Route53 returns, quotes included) is an external-dns
/// registry entry owned by `owner_id`: `heritage=external-dns,external-dns/owner=<id>,...`.
pub fn is_owner_record(values: &[String], owner_id: &str) -> bool {
    values.iter().any(|value| {
        let text: String = value.split('"').collect::<Vec<_>>().concat();
        let mut heritage = false;
        let mut owner = None;
        for pair in text.split(',') {
            match pair.trim().split_once('=') {
                Some(("heritage", "external-dns")) => heritage = true,
                Some(("external-dns/owner", id)) => owner = Some(id),
                _ => {}
            }
        }
        heritage && owner == Some(owner_id)
    })
}

/// Record types external-dns writes registry entries for (the `<type>-` in its new TXT format).
const REGISTRY_TYPES: &[&str] = &["a", "aaaa", "cname", "ns", "mx", "srv", "naptr", "ptr"];

/// The records an external-dns TXT registry entry named `txt_name` owns, given the TXT prefix
/// external-dns runs with (`txtPrefix`, `labflow-` in infra/gitops). external-dns names its entry
/// `<prefix><type>-<first label>.<rest>` (new format) or `<prefix><first label>.<rest>` (old
/// format, owning every type at that name). Returns `(name, Some(type))` or `(name, None)` for
/// "every non-TXT type"; `None` when the name does not carry the prefix.
pub fn owned_by_txt(txt_name: &str, prefix: &str) -> Option<(String, Option<String>)> {
    let name = normalize_record_name(txt_name);
    let prefix = prefix.to_ascii_lowercase();
    let (first, rest) = match name.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (name.as_str(), None),
    };
    let unprefixed = first.strip_prefix(prefix.as_str())?;
    let join = |label: &str| match rest {
        Some(rest) => format!("{label}.{rest}"),
        None => label.to_string(),
    };
    for record_type in REGISTRY_TYPES {
        if let Some(label) = unprefixed.strip_prefix(&format!("{record_type}-")) {
            if !label.is_empty() {
                return Some((join(label), Some(record_type.to_ascii_uppercase())));
            }
        }
    }
    if unprefixed.is_empty() {
        return None;
    }
    Some((join(unprefixed), None))
}

/// Every record an environment owns in a zone: its external-dns TXT entries (value names
/// `owner_id`) and the records those entries own. `records` is the zone's listing as
/// `(id, TXT values)`; other records are never returned.
pub fn owned_records(
    records: &[(RecordId, Vec<String>)],
    owner_id: &str,
    txt_prefix: &str,
) -> Vec<RecordId> {
    let mut owned = BTreeSet::new();
    for (id, values) in records {
        if id.record_type != "TXT" || !is_owner_record(values, owner_id) {
            continue;
        }
        owned.insert(id.clone());
        let Some((name, record_type)) = owned_by_txt(&id.name, txt_prefix) else {
            continue;
        };
        for (other, other_values) in records {
            let same_name = normalize_record_name(&other.name) == name;
            let type_matches = match record_type.as_deref() {
                // external-dns files an A ALIAS under CNAME: "AWS Alias records are encoded as
                // type cname" (registry/txt/registry.go, v0.21.0; `a-` only from v0.22.0, PR
                // #6523, which leaves the old `cname-` entry in place). An alias record has no
                // values of its own.
                Some("CNAME") => {
                    other.record_type == "CNAME"
                        || (other.record_type == "A" && other_values.is_empty())
                }
                Some(t) => other.record_type == t,
                None => other.record_type != "TXT",
            };
            if same_name && type_matches {
                owned.insert(other.clone());
            }
        }
    }
    owned.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, depends_on: &[&str], contains: &[&str]) -> KustomizationNode {
        KustomizationNode {
            key: ObjectKey::new("flux-system", name),
            depends_on: depends_on
                .iter()
                .map(|d| ObjectKey::new("flux-system", *d))
                .collect(),
            contains: contains
                .iter()
                .map(|d| ObjectKey::new("flux-system", *d))
                .collect(),
        }
    }

    fn names(order: &[ObjectKey]) -> Vec<&str> {
        order.iter().map(|k| k.name.as_str()).collect()
    }

    #[test]
    fn reverse_depends_on_puts_leaves_first() {
        // The lab tree: controllers <- configs <- infra-apps <- monitoring <- apps.
        let nodes = vec![
            node("infra-controllers", &[], &[]),
            node("infra-configs", &["infra-controllers"], &[]),
            node("infra-apps", &["infra-configs"], &[]),
            node("monitoring", &["infra-apps"], &[]),
            node("apps", &["monitoring"], &[]),
        ];
        assert_eq!(
            names(&deletion_order(&nodes)),
            vec![
                "apps",
                "monitoring",
                "infra-apps",
                "infra-configs",
                "infra-controllers"
            ]
        );
    }

    #[test]
    fn diamond_and_missing_dependencies() {
        let nodes = vec![
            node("base", &[], &[]),
            node("left", &["base"], &[]),
            node("right", &["base", "not-there"], &[]),
            node("top", &["left", "right"], &[]),
        ];
        assert_eq!(
            names(&deletion_order(&nodes)),
            vec!["top", "left", "right", "base"]
        );
    }

    #[test]
    fn nested_kustomizations_go_before_their_parent() {
        let nodes = vec![
            node("apps", &[], &["podinfo", "bookinfo"]),
            node("bookinfo", &[], &[]),
            node("podinfo", &["bookinfo"], &[]),
        ];
        assert_eq!(
            names(&deletion_order(&nodes)),
            vec!["podinfo", "bookinfo", "apps"]
        );
    }

    #[test]
    fn a_cycle_does_not_block_teardown() {
        let nodes = vec![
            node("a", &["b"], &[]),
            node("b", &["a"], &[]),
            node("leaf", &["a"], &[]),
        ];
        let order = deletion_order(&nodes);
        assert_eq!(names(&order), vec!["leaf", "a", "b"]);
    }

    #[test]
    fn finalizer_policy() {
        let safe = default_safe_finalizers();
        let none = BTreeSet::new();
        let kiali_running: BTreeSet<String> = ["kiali-operator".to_string()].into();
        assert_eq!(
            finalizer_decision("kiali.io/finalizer", &safe, &none),
            FinalizerDecision::Remove
        );
        assert_eq!(
            finalizer_decision("kiali.io/finalizer", &safe, &kiali_running),
            FinalizerDecision::ControllerRunning("kiali-operator".into())
        );
        assert_eq!(
            finalizer_decision("example.com/other", &safe, &none),
            FinalizerDecision::NotSafe
        );
        // Even if someone configures a load-balancer finalizer as safe, it is never removed.
        let misconfigured = vec![SafeFinalizer {
            finalizer: "ingress.k8s.aws/resources".into(),
            controller: "aws-load-balancer-controller".into(),
        }];
        assert_eq!(
            finalizer_decision("ingress.k8s.aws/resources", &misconfigured, &none),
            FinalizerDecision::NotSafe
        );
        // Nor the finalizer of an Ingress in an explicit group (infra/gitops's Ingresses).
        let group = vec![SafeFinalizer {
            finalizer: "group.ingress.k8s.aws/labflow-lab".into(),
            controller: "aws-load-balancer-controller".into(),
        }];
        assert_eq!(
            finalizer_decision("group.ingress.k8s.aws/labflow-lab", &group, &none),
            FinalizerDecision::NotSafe
        );
    }

    #[test]
    fn owner_records_are_recognised_exactly() {
        let ours = vec![
            "\"heritage=external-dns,external-dns/owner=lab-owner,external-dns/resource=ingress/istio-ingress/podinfo\"".to_string(),
        ];
        assert!(is_owner_record(&ours, "lab-owner"));
        assert!(!is_owner_record(&ours, "lab"));
        assert!(!is_owner_record(&ours, "lab-owner-2"));
        let foreign = vec!["\"v=spf1 include:external-dns/owner=lab-owner\"".to_string()];
        assert!(!is_owner_record(&foreign, "lab-owner"));
    }

    #[test]
    fn txt_names_map_to_the_records_they_own() {
        assert_eq!(
            owned_by_txt("labflow-a-podinfo.lab.example.com.", "labflow-"),
            Some(("podinfo.lab.example.com".into(), Some("A".into())))
        );
        assert_eq!(
            owned_by_txt("labflow-cname-www.lab.example.com", "labflow-"),
            Some(("www.lab.example.com".into(), Some("CNAME".into())))
        );
        assert_eq!(
            owned_by_txt("labflow-podinfo.lab.example.com", "labflow-"),
            Some(("podinfo.lab.example.com".into(), None))
        );
        assert_eq!(owned_by_txt("podinfo.lab.example.com", "labflow-"), None);
    }

    #[test]
    fn names_within_a_domain() {
        assert!(is_within_domain("web.lab.example.com.", "lab.example.com"));
        assert!(is_within_domain("LAB.example.com.", "lab.example.com."));
        assert!(is_within_domain(
            "\\052.lab.example.com.",
            "lab.example.com"
        ));
        assert!(!is_within_domain("www.example.com.", "lab.example.com"));
        assert!(!is_within_domain("evillab.example.com.", "lab.example.com"));
        assert!(!is_within_domain("lab.example.com.", ""));
    }

    #[test]
    fn owned_records_never_include_other_records() {
        let txt = |name: &str, owner: &str| {
            (
                RecordId {
                    name: name.into(),
                    record_type: "TXT".into(),
                },
                vec![format!(
                    "\"heritage=external-dns,external-dns/owner={owner},external-dns/resource=ingress/a/b\""
                )],
            )
        };
        let record = |name: &str, t: &str| {
            (
                RecordId {
                    name: name.into(),
                    record_type: t.into(),
                },
                vec![],
            )
        };
        let plain_a = |name: &str| {
            (
                RecordId {
                    name: name.into(),
                    record_type: "A".into(),
                },
                vec!["192.0.2.1".to_string()],
            )
        };
        let zone = vec![
            txt("labflow-a-podinfo.example.com.", "lab"),
            record("podinfo.example.com.", "A"),
            record("podinfo.example.com.", "AAAA"),
            txt("labflow-a-bookinfo.example.com.", "other-lab"),
            record("bookinfo.example.com.", "A"),
            record("example.com.", "NS"),
            record("manual.example.com.", "A"),
            // What external-dns v0.21 writes for an Ingress's load balancer: A and AAAA ALIAS,
            // the A filed under `cname-`.
            txt("labflow-cname-web.example.com.", "lab"),
            txt("labflow-aaaa-web.example.com.", "lab"),
            record("web.example.com.", "A"),
            record("web.example.com.", "AAAA"),
            // A `cname-` entry does not own an A with addresses (not an alias).
            txt("labflow-cname-fixed.example.com.", "lab"),
            plain_a("fixed.example.com."),
        ];
        let owned = owned_records(&zone, "lab", "labflow-");
        let owned: Vec<(&str, &str)> = owned
            .iter()
            .map(|r| (r.name.as_str(), r.record_type.as_str()))
            .collect();
        assert_eq!(
            owned,
            vec![
                ("labflow-a-podinfo.example.com.", "TXT"),
                ("labflow-aaaa-web.example.com.", "TXT"),
                ("labflow-cname-fixed.example.com.", "TXT"),
                ("labflow-cname-web.example.com.", "TXT"),
                ("podinfo.example.com.", "A"),
                ("web.example.com.", "A"),
                ("web.example.com.", "AAAA"),
            ]
        );
    }
}
