//! Semantic validation of an [`EnvironmentConfig`]: every problem at once, each with its JSON path.

use std::collections::BTreeSet;
use std::fmt;

use chrono::NaiveDate;
use serde_json::Value;

use super::model::*;
use crate::versions::{self, EksSupport};

/// One thing wrong with a config, at a JSON path such as `nodegroups[1].scaling.min`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The oldest Kubernetes minor version current Flux supports (DESIGN.md §5).
pub const MIN_KUBERNETES_MINOR: u32 = 33;

/// Tags labflow sets itself; config may not override them.
pub const TAG_ENVIRONMENT: &str = "labflow:environment";
pub const TAG_MANAGED_BY: &str = "labflow:managed-by";

/// What validation depends on besides the config itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    /// The day EKS's release calendar is read for (UTC).
    pub today: NaiveDate,
    /// The config is used against the local cloud (every AWS endpoint on loopback), where a
    /// loopback Flux manifest URL is reachable from the (simulated) cluster.
    pub local_cloud: bool,
    pub purpose: Purpose,
}

/// What the config is read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Create or sync the lab: every rule applies.
    Create,
    /// Tear it down: the rules about what would be created (the EKS version's support window,
    /// the Flux release pin) do not apply, so a config that went stale never keeps a lab up.
    Teardown,
}

impl Purpose {
    /// What an execution with `action` reads the config for.
    pub fn for_action(action: crate::contract::Action) -> Self {
        use crate::contract::Action;
        match action {
            Action::Teardown | Action::TeardownAll => Purpose::Teardown,
            Action::Create | Action::Sync => Purpose::Create,
        }
    }
}

impl Checks {
    /// Today, for creating a lab against real AWS, or against the local cloud.
    pub fn create(local_cloud: bool) -> Self {
        Self {
            today: chrono::Utc::now().date_naive(),
            local_cloud,
            purpose: Purpose::Create,
        }
    }

    /// Today, for tearing a lab down.
    pub fn teardown(local_cloud: bool) -> Self {
        Self {
            purpose: Purpose::Teardown,
            ..Self::create(local_cloud)
        }
    }

    /// The same checks for `purpose`.
    pub fn for_purpose(self, purpose: Purpose) -> Self {
        Self { purpose, ..self }
    }
}

/// Everything validation found: errors make a config unusable, warnings do not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

#[derive(Default)]
struct Problems {
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn require_non_empty(&mut self, path: &str, value: &str) {
        if value.trim().is_empty() {
            self.add(path, "must not be empty");
        }
    }

    fn require_arn(&mut self, path: &str, value: &str, service: &str, resource_prefix: &str) {
        if !is_arn(value, service, resource_prefix) {
            self.add(
                path,
                format!("must be an ARN like arn:aws:{service}::<account>:{resource_prefix}..., got {value:?}"),
            );
        }
    }
}

/// Check an ARN's partition/service/resource shape (not whether it exists).
fn is_arn(value: &str, service: &str, resource_prefix: &str) -> bool {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == service
        && parts[5].starts_with(resource_prefix)
        && parts[5].len() > resource_prefix.len()
}

fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

fn is_k8s_name(name: &str) -> bool {
    is_dns_label(name) && name.chars().all(|c| !c.is_ascii_uppercase())
}

/// Parse "1.33" into its minor number.
fn kubernetes_minor(version: &str) -> Option<u32> {
    let (major, minor) = version.split_once('.')?;
    if major != "1" {
        return None;
    }
    minor.parse().ok()
}

fn check_unique<'a>(
    problems: &mut Problems,
    prefix: &str,
    field: &str,
    names: impl Iterator<Item = &'a str>,
) {
    let mut seen = BTreeSet::new();
    for (i, name) in names.enumerate() {
        if !seen.insert(name) {
            problems.add(
                format!("{prefix}[{i}].{field}"),
                format!("duplicate {field} {name:?}"),
            );
        }
    }
}

/// Validate everything that serde's types cannot express, for use against real AWS today.
/// Returns every error found (warnings: [`check`]).
pub fn validate(config: &EnvironmentConfig) -> Vec<Problem> {
    check(config, &Checks::create(false)).errors
}

/// Every error and warning of `config` under `checks`.
pub fn check(config: &EnvironmentConfig, checks: &Checks) -> Findings {
    let mut p = Problems::default();
    let creating = checks.purpose == Purpose::Create;
    validate_cluster(&mut p, &config.cluster, creating.then_some(checks.today));
    validate_nodegroups(&mut p, config);
    validate_addons(&mut p, &config.addons, &config.cluster.name);
    validate_pod_identities(&mut p, &config.pod_identities);
    validate_access(&mut p, &config.access_principals, &config.cluster.role_arn);
    validate_flux(&mut p, &config.flux, creating, checks.local_cloud);
    validate_dns(&mut p, &config.dns);
    if config.health_deadline_minutes == 0 || config.health_deadline_minutes > 24 * 60 {
        p.add("healthDeadlineMinutes", "must be between 1 and 1440");
    }
    for key in config.tags.keys() {
        if key.starts_with("aws:") {
            p.add(format!("tags.{key}"), "the aws: prefix is reserved by AWS");
        } else if key == TAG_ENVIRONMENT || key == TAG_MANAGED_BY {
            p.add(
                format!("tags.{key}"),
                "is set by labflow and cannot be overridden",
            );
        }
    }
    Findings {
        errors: p.errors,
        warnings: p.warnings,
    }
}

/// `today`: check the version's EKS support window on that day (creating only).
fn validate_cluster(p: &mut Problems, cluster: &ClusterConfig, today: Option<NaiveDate>) {
    let name_ok = !cluster.name.is_empty()
        && cluster.name.len() <= 100
        && cluster
            .name
            .starts_with(|c: char| c.is_ascii_alphanumeric())
        && cluster
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        p.add(
            "cluster.name",
            "must be 1-100 letters, digits, '-' or '_', starting with a letter or digit",
        );
    }
    match kubernetes_minor(&cluster.version) {
        Some(minor) if minor >= MIN_KUBERNETES_MINOR => {
            if let Some(today) = today {
                check_eks_support(p, minor, today);
            }
        }
        Some(_) => p.add(
            "cluster.version",
            format!(
                "must be ≥ 1.{MIN_KUBERNETES_MINOR} (current Flux needs it), got {:?}",
                cluster.version
            ),
        ),
        None => p.add(
            "cluster.version",
            format!(
                "must look like \"1.{MIN_KUBERNETES_MINOR}\", got {:?}",
                cluster.version
            ),
        ),
    }
    p.require_arn("cluster.roleArn", &cluster.role_arn, "iam", "role/");
    if cluster.subnet_ids.len() < 2 {
        p.add(
            "cluster.subnetIds",
            "EKS needs at least 2 subnets (in different zones)",
        );
    }
    for (i, subnet) in cluster.subnet_ids.iter().enumerate() {
        if !subnet.starts_with("subnet-") {
            p.add(
                format!("cluster.subnetIds[{i}]"),
                format!("not a subnet id: {subnet:?}"),
            );
        }
    }
    check_unique(
        p,
        "cluster.subnetIds",
        "id",
        cluster.subnet_ids.iter().map(String::as_str),
    );
    for (i, sg) in cluster.security_group_ids.iter().enumerate() {
        if !sg.starts_with("sg-") {
            p.add(
                format!("cluster.securityGroupIds[{i}]"),
                format!("not a security group id: {sg:?}"),
            );
        }
    }
    let access = &cluster.endpoint_access;
    if !access.public && !access.private {
        p.add(
            "cluster.endpointAccess",
            "public and private access cannot both be off",
        );
    }
    if !access.public && !access.public_cidrs.is_empty() {
        p.add(
            "cluster.endpointAccess.publicCidrs",
            "given while public access is off",
        );
    }
    for (i, cidr) in access.public_cidrs.iter().enumerate() {
        if !is_ipv4_cidr(cidr) {
            p.add(
                format!("cluster.endpointAccess.publicCidrs[{i}]"),
                format!("not an IPv4 CIDR: {cidr:?}"),
            );
        }
    }
    p.require_arn("cluster.kmsKeyArn", &cluster.kms_key_arn, "kms", "key/");
    let mut seen = BTreeSet::new();
    for (i, log) in cluster.logging.iter().enumerate() {
        if !seen.insert(log) {
            p.add(
                format!("cluster.logging[{i}]"),
                format!("duplicate log type {:?}", log.as_eks()),
            );
        }
    }
}

fn is_ipv4_cidr(cidr: &str) -> bool {
    let Some((addr, len)) = cidr.split_once('/') else {
        return false;
    };
    addr.parse::<std::net::Ipv4Addr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= 32)
}

fn validate_nodegroups(p: &mut Problems, config: &EnvironmentConfig) {
    check_unique(
        p,
        "nodegroups",
        "name",
        config.nodegroups.iter().map(|n| n.name.as_str()),
    );
    for (i, ng) in config.nodegroups.iter().enumerate() {
        let at = |field: &str| format!("nodegroups[{i}].{field}");
        if !is_dns_label(&ng.name) {
            p.add(at("name"), "must be 1-63 letters, digits or '-'");
        }
        p.require_arn(&at("nodeRoleArn"), &ng.node_role_arn, "iam", "role/");
        for (j, subnet) in ng.subnet_ids.iter().enumerate() {
            if !config.cluster.subnet_ids.contains(subnet) {
                p.add(
                    format!("nodegroups[{i}].subnetIds[{j}]"),
                    format!("{subnet:?} is not one of cluster.subnetIds"),
                );
            }
        }
        if ng.instance_types.is_empty() {
            p.add(at("instanceTypes"), "must name at least one instance type");
        }
        for (j, it) in ng.instance_types.iter().enumerate() {
            if !it.contains('.') {
                p.add(
                    format!("nodegroups[{i}].instanceTypes[{j}]"),
                    format!("not an instance type: {it:?}"),
                );
            }
        }
        let s = ng.scaling;
        if s.max == 0 {
            p.add(at("scaling.max"), "must be ≥ 1");
        }
        if s.min > s.max {
            p.add(at("scaling.min"), "must be ≤ max");
        }
        if s.desired < s.min || s.desired > s.max {
            p.add(at("scaling.desired"), "must be between min and max");
        }
        if let Some(size) = ng.disk_size_gib {
            if !(20..=16384).contains(&size) {
                p.add(at("diskSizeGib"), "must be between 20 and 16384");
            }
        }
        if let Some(template) = &ng.launch_template {
            if !template.id.starts_with("lt-") {
                p.add(
                    at("launchTemplate.id"),
                    format!("not a launch template id: {:?}", template.id),
                );
            }
            if template.version.trim().is_empty() {
                p.add(at("launchTemplate.version"), "must not be empty");
            }
            // EKS refuses diskSize beside a launch template (CreateNodegroup API reference).
            if ng.disk_size_gib.is_some() {
                p.add(
                    at("diskSizeGib"),
                    "must not be set with a launch template: the disk size is the template's",
                );
            }
        }
        for (j, taint) in ng.taints.iter().enumerate() {
            if taint.key.trim().is_empty() {
                p.add(
                    format!("nodegroups[{i}].taints[{j}].key"),
                    "must not be empty",
                );
            }
        }
        for key in ng.labels.keys() {
            if key.trim().is_empty() {
                p.add(at("labels"), "label keys must not be empty");
            }
        }
    }
}

/// The managed add-ons labflow knows how to run a lab with.
pub const KNOWN_ADDONS: &[&str] = &[
    "vpc-cni",
    "coredns",
    "kube-proxy",
    "eks-pod-identity-agent",
    "aws-ebs-csi-driver",
    "metrics-server",
];

fn validate_addons(p: &mut Problems, addons: &[AddonConfig], cluster_name: &str) {
    check_unique(p, "addons", "name", addons.iter().map(|a| a.name.as_str()));
    for (i, addon) in addons.iter().enumerate() {
        if addon
            .configuration_values
            .as_ref()
            .is_some_and(|v| !v.is_object())
        {
            p.add(
                format!("addons[{i}].configurationValues"),
                "must be a JSON object (the add-on's configuration schema)",
            );
        }
        if addon.name == "aws-ebs-csi-driver" {
            check_ebs_cluster_tag(p, i, addon, cluster_name);
            if let Some(version) = addon
                .version
                .as_deref()
                .filter(|v| !versions::ebs_csi_tags_cluster(v))
            {
                let (major, minor, patch) = versions::EBS_CSI_CLUSTER_TAG_SINCE;
                p.add(
                    format!("addons[{i}].version"),
                    format!(
                        "{version} does not tag volumes with their cluster; labflow needs v{major}.{minor}.{patch} or later (its IAM policy admits only the cluster's own volumes), or leave the version out"
                    ),
                );
            }
        }
        if !KNOWN_ADDONS.contains(&addon.name.as_str()) {
            p.add(
                format!("addons[{i}].name"),
                format!(
                    "unknown add-on {:?} (known: {})",
                    addon.name,
                    KNOWN_ADDONS.join(", ")
                ),
            );
        }
        if let Some(version) = &addon.version {
            if !version.starts_with('v') {
                p.add(
                    format!("addons[{i}].version"),
                    format!("must look like v1.2.3-eksbuild.1, got {version:?}"),
                );
            }
        }
    }
}

/// ensure-cluster tells the EBS CSI driver its cluster (`controller.k8sTagClusterId`, see
/// `ensure-cluster/src/addon_config.rs`); a config naming another cluster there would tag this
/// lab's volumes as that lab's.
fn check_ebs_cluster_tag(p: &mut Problems, i: usize, addon: &AddonConfig, cluster_name: &str) {
    let tagged = addon
        .configuration_values
        .as_ref()
        .and_then(|v| v.pointer("/controller/k8sTagClusterId"));
    match tagged {
        None => {}
        Some(Value::String(id)) if id == cluster_name => {}
        Some(other) => p.add(
            format!("addons[{i}].configurationValues.controller.k8sTagClusterId"),
            format!("must be the cluster's name {cluster_name:?} (or left out: labflow sets it), got {other}"),
        ),
    }
}

fn validate_pod_identities(p: &mut Problems, ids: &[PodIdentityConfig]) {
    let mut seen = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        if !is_k8s_name(&id.namespace) {
            p.add(
                format!("podIdentities[{i}].namespace"),
                "must be a Kubernetes name",
            );
        }
        if id.service_account.trim().is_empty() {
            p.add(
                format!("podIdentities[{i}].serviceAccount"),
                "must not be empty",
            );
        }
        p.require_arn(
            &format!("podIdentities[{i}].roleArn"),
            &id.role_arn,
            "iam",
            "role/",
        );
        if !seen.insert((id.namespace.as_str(), id.service_account.as_str())) {
            p.add(
                format!("podIdentities[{i}]"),
                format!(
                    "duplicate association for {}/{}",
                    id.namespace, id.service_account
                ),
            );
        }
    }
}

/// The account of an ARN (`arn:partition:service:region:account:...`), when it names one.
fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// Access principals get cluster access: only from the account the lab lives in (the cluster
/// role's), never an outside account slipped into a config (issue 26 item 10).
fn validate_access(p: &mut Problems, principals: &[AccessPrincipal], cluster_role_arn: &str) {
    let own_account = arn_account(cluster_role_arn);
    check_unique(
        p,
        "accessPrincipals",
        "principalArn",
        principals.iter().map(|a| a.principal_arn.as_str()),
    );
    for (i, principal) in principals.iter().enumerate() {
        let arn = &principal.principal_arn;
        if arn.contains(":assumed-role/") {
            p.add(
                format!("accessPrincipals[{i}].principalArn"),
                "must be the role ARN, not an assumed-role session ARN",
            );
        } else if !(is_arn(arn, "iam", "role/") || is_arn(arn, "iam", "user/")) {
            p.add(
                format!("accessPrincipals[{i}].principalArn"),
                format!("not an IAM role or user ARN: {arn:?}"),
            );
        } else if own_account.is_some() && arn_account(arn) != own_account {
            p.add(
                format!("accessPrincipals[{i}].principalArn"),
                format!(
                    "is in account {:?}, not the lab's account {:?} (cluster.roleArn): access goes \
                     only to principals of the account the cluster lives in",
                    arn_account(arn).unwrap_or_default(),
                    own_account.unwrap_or_default()
                ),
            );
        }
        for (j, group) in principal.kubernetes_groups.iter().enumerate() {
            // CreateAccessEntry refuses these (EKS API reference, kubernetesGroups).
            if group.is_empty() || group.starts_with("system:") {
                p.add(
                    format!("accessPrincipals[{i}].kubernetesGroups[{j}]"),
                    format!("{group:?}: a group name, not empty and not starting with system:"),
                );
            }
        }
        for (j, policy) in principal.policies.iter().enumerate() {
            if !policy.starts_with("arn:aws:eks::aws:cluster-access-policy/") {
                p.add(
                    format!("accessPrincipals[{i}].policies[{j}]"),
                    format!("not an EKS access policy ARN: {policy:?}"),
                );
            }
        }
    }
}

/// Standard support is what labflow is for; extended support costs six times as much per
/// control-plane hour, and past it EKS creates no cluster ([`versions::EKS_VERSIONS`]).
fn check_eks_support(p: &mut Problems, minor: u32, today: NaiveDate) {
    let path = "cluster.version";
    let newest = versions::EKS_VERSIONS
        .iter()
        .rev()
        .find(|v| {
            matches!(
                versions::eks_support(v.minor, today),
                EksSupport::Standard { .. }
            )
        })
        .map(|v| format!("1.{}", v.minor))
        .unwrap_or_else(|| "a version in standard support".into());
    match versions::eks_support(minor, today) {
        EksSupport::Standard { .. } => {}
        EksSupport::Extended { ends } => p.warn(
            path,
            format!(
                "1.{minor} is in EKS extended support until {ends}: the control plane costs \
                 $0.60 per hour instead of $0.10; move to {newest}"
            ),
        ),
        EksSupport::Ended { ended } => p.add(
            path,
            format!(
                "1.{minor} reached the end of EKS extended support on {ended}: EKS creates no \
                 such cluster; use {newest}"
            ),
        ),
        EksSupport::EndedBefore { before } => p.add(
            path,
            format!("1.{minor} left EKS extended support before {before}; use {newest}"),
        ),
        EksSupport::NotYetReleased { release } => p.add(
            path,
            format!("1.{minor} is not released on EKS before {release}; use {newest}"),
        ),
        EksSupport::Unknown => p.warn(
            path,
            format!(
                "1.{minor} is newer than labflow's EKS release calendar (checked {}): \
                 `aws eks describe-cluster-versions` says whether EKS offers it",
                versions::eks_versions_checked()
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            ),
        ),
    }
}

/// The Flux release the config pins: where its `install.yaml` comes from, and its sha256.
fn validate_flux_pin(p: &mut Problems, flux: &FluxConfig, local_cloud: bool) {
    let pin = format!(
        "`labflow flux pin {} --config <this file>` downloads it and writes the URL and its sha256",
        flux.version
    );
    if crate::aws::is_loopback_url(&flux.manifest_url) {
        // A cluster in AWS cannot reach this machine's loopback; only the local cloud's
        // (simulated) cluster can.
        if !local_cloud {
            p.add(
                "flux.manifestUrl",
                format!("a loopback URL only serves the local cloud, not a cluster in AWS; {pin}"),
            );
        }
    } else if !flux.manifest_url.starts_with("https://") {
        p.add(
            "flux.manifestUrl",
            format!("must be an https:// URL; {pin}"),
        );
    }
    let sha = &flux.manifest_sha256;
    if sha.len() != 64
        || !sha
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    {
        p.add(
            "flux.manifestSha256",
            format!("must be 64 lower-case hex digits; {pin}"),
        );
    } else if sha.chars().all(|c| c == '0') {
        p.add(
            "flux.manifestSha256",
            format!("all zeros is a placeholder, not the sha256 of a Flux release; {pin}"),
        );
    }
}

/// `pin`: check the release pin (URL and sha256), which only matters when Flux is installed.
fn validate_flux(p: &mut Problems, flux: &FluxConfig, pin: bool, local_cloud: bool) {
    let semver = flux.version.split('.').collect::<Vec<_>>();
    let version_ok = semver.len() == 3 && semver.iter().all(|n| n.parse::<u32>().is_ok());
    if !version_ok {
        p.add(
            "flux.version",
            format!(
                "must be an exact version like {}, got {:?}",
                versions::FLUX_VERSION,
                flux.version
            ),
        );
    } else if semver[0] != "2" || semver[1].parse::<u32>().is_ok_and(|minor| minor < 7) {
        p.add(
            "flux.version",
            "must be ≥ 2.7 (the v1/v2 APIs labflow uses)",
        );
    }
    if pin {
        validate_flux_pin(p, flux, local_cloud);
    }
    let repo = &flux.repository;
    // file:// names a path on the machine that runs the source-controller: only the local
    // cloud's, where that machine is this one (issue 26 item 10).
    let local_file = local_cloud && repo.url.starts_with("file://");
    if !repo.url.starts_with("https://") && !repo.url.starts_with("ssh://") && !local_file {
        p.add("flux.repository.url", "must be an https:// or ssh:// URL");
    }
    p.require_non_empty("flux.repository.branch", &repo.branch);
    if let Some(path) = &repo.path {
        if !path.starts_with("./") || path.contains("..") {
            p.add(
                "flux.repository.path",
                "must be relative to the repository root (./...) without '..'",
            );
        }
    }
    for (field, message) in super::git_credential::problems(repo) {
        p.add(field, message);
    }
    if !is_flux_duration(&repo.interval) {
        p.add(
            "flux.repository.interval",
            format!("must be a duration like 1m or 30s, got {:?}", repo.interval),
        );
    }
}

fn is_flux_duration(value: &str) -> bool {
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &value[digits.len()..];
    !digits.is_empty()
        && digits.parse::<u64>().is_ok_and(|n| n > 0)
        && matches!(unit, "s" | "m" | "h")
}

fn validate_dns(p: &mut Problems, dns: &DnsConfig) {
    let zone = dns.hosted_zone_id.trim_start_matches("/hostedzone/");
    if zone.is_empty()
        || !zone
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        p.add(
            "dns.hostedZoneId",
            format!("not a Route53 hosted zone id: {:?}", dns.hosted_zone_id),
        );
    }
    let domain = dns.domain.trim_end_matches('.');
    if domain.split('.').count() < 2 || !domain.split('.').all(is_dns_label) {
        p.add("dns.domain", format!("not a domain name: {:?}", dns.domain));
    }
    if dns.owner_id.trim().is_empty() || dns.owner_id.contains(char::is_whitespace) {
        p.add("dns.ownerId", "must be non-empty without spaces");
    }
    if let Some(cert) = &dns.certificate_arn {
        p.require_arn("dns.certificateArn", cert, "acm", "certificate/");
    }
}
