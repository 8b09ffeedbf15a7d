//! Maps method + path to an EKS operation. Path labels arrive percent-encoded (ARNs contain
//! `:` and `/`), so the path is split on `/` before decoding each segment.

use percent_encoding::percent_decode_str;

/// One EKS operation with its path labels (decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    CreateCluster,
    ListClusters,
    DescribeAddonVersions,
    DescribeCluster(String),
    DeleteCluster(String),
    UpdateClusterConfig(String),
    UpdateClusterVersion(String),
    ListUpdates(String),
    DescribeUpdate(String, String),
    TagResource(String),
    UntagResource(String),
    ListTagsForResource(String),
    CreateNodegroup(String),
    ListNodegroups(String),
    DescribeNodegroup(String, String),
    DeleteNodegroup(String, String),
    UpdateNodegroupConfig(String, String),
    UpdateNodegroupVersion(String, String),
    CreateAddon(String),
    ListAddons(String),
    DescribeAddon(String, String),
    DeleteAddon(String, String),
    UpdateAddon(String, String),
    CreateAccessEntry(String),
    ListAccessEntries(String),
    DescribeAccessEntry(String, String),
    UpdateAccessEntry(String, String),
    DeleteAccessEntry(String, String),
    AssociateAccessPolicy(String, String),
    ListAssociatedAccessPolicies(String, String),
    DisassociateAccessPolicy(String, String, String),
    CreatePodIdentityAssociation(String),
    ListPodIdentityAssociations(String),
    DescribePodIdentityAssociation(String, String),
    UpdatePodIdentityAssociation(String, String),
    DeletePodIdentityAssociation(String, String),
}

impl Op {
    /// The operation name as the API reference spells it (for the request log).
    pub fn name(&self) -> &'static str {
        match self {
            Op::CreateCluster => "CreateCluster",
            Op::ListClusters => "ListClusters",
            Op::DescribeAddonVersions => "DescribeAddonVersions",
            Op::DescribeCluster(_) => "DescribeCluster",
            Op::DeleteCluster(_) => "DeleteCluster",
            Op::UpdateClusterConfig(_) => "UpdateClusterConfig",
            Op::UpdateClusterVersion(_) => "UpdateClusterVersion",
            Op::ListUpdates(_) => "ListUpdates",
            Op::DescribeUpdate(..) => "DescribeUpdate",
            Op::TagResource(_) => "TagResource",
            Op::UntagResource(_) => "UntagResource",
            Op::ListTagsForResource(_) => "ListTagsForResource",
            Op::CreateNodegroup(_) => "CreateNodegroup",
            Op::ListNodegroups(_) => "ListNodegroups",
            Op::DescribeNodegroup(..) => "DescribeNodegroup",
            Op::DeleteNodegroup(..) => "DeleteNodegroup",
            Op::UpdateNodegroupConfig(..) => "UpdateNodegroupConfig",
            Op::UpdateNodegroupVersion(..) => "UpdateNodegroupVersion",
            Op::CreateAddon(_) => "CreateAddon",
            Op::ListAddons(_) => "ListAddons",
            Op::DescribeAddon(..) => "DescribeAddon",
            Op::DeleteAddon(..) => "DeleteAddon",
            Op::UpdateAddon(..) => "UpdateAddon",
            Op::CreateAccessEntry(_) => "CreateAccessEntry",
            Op::ListAccessEntries(_) => "ListAccessEntries",
            Op::DescribeAccessEntry(..) => "DescribeAccessEntry",
            Op::UpdateAccessEntry(..) => "UpdateAccessEntry",
            Op::DeleteAccessEntry(..) => "DeleteAccessEntry",
            Op::AssociateAccessPolicy(..) => "AssociateAccessPolicy",
            Op::ListAssociatedAccessPolicies(..) => "ListAssociatedAccessPolicies",
            Op::DisassociateAccessPolicy(..) => "DisassociateAccessPolicy",
            Op::CreatePodIdentityAssociation(_) => "CreatePodIdentityAssociation",
            Op::ListPodIdentityAssociations(_) => "ListPodIdentityAssociations",
            Op::DescribePodIdentityAssociation(..) => "DescribePodIdentityAssociation",
            Op::UpdatePodIdentityAssociation(..) => "UpdatePodIdentityAssociation",
            Op::DeletePodIdentityAssociation(..) => "DeletePodIdentityAssociation",
        }
    }

    /// Read-only operations (Describe/List) change nothing.
    pub fn is_read(&self) -> bool {
        let name = self.name();
        name.starts_with("Describe") || name.starts_with("List")
    }
}

/// The operation for `method` + raw (still percent-encoded) `path`, if EKS has one.
pub fn parse(method: &str, path: &str) -> Option<Op> {
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let o = |v: &str| v.to_string();
    let op = match (method, s.as_slice()) {
        ("POST", ["clusters"]) => Op::CreateCluster,
        ("GET", ["clusters"]) => Op::ListClusters,
        ("GET", ["addons", "supported-versions"]) => Op::DescribeAddonVersions,
        ("GET", ["clusters", c]) => Op::DescribeCluster(o(c)),
        ("DELETE", ["clusters", c]) => Op::DeleteCluster(o(c)),
        ("POST", ["clusters", c, "update-config"]) => Op::UpdateClusterConfig(o(c)),
        ("POST", ["clusters", c, "updates"]) => Op::UpdateClusterVersion(o(c)),
        ("GET", ["clusters", c, "updates"]) => Op::ListUpdates(o(c)),
        ("GET", ["clusters", c, "updates", u]) => Op::DescribeUpdate(o(c), o(u)),
        ("POST", ["tags", arn]) => Op::TagResource(o(arn)),
        ("DELETE", ["tags", arn]) => Op::UntagResource(o(arn)),
        ("GET", ["tags", arn]) => Op::ListTagsForResource(o(arn)),
        ("POST", ["clusters", c, "node-groups"]) => Op::CreateNodegroup(o(c)),
        ("GET", ["clusters", c, "node-groups"]) => Op::ListNodegroups(o(c)),
        ("GET", ["clusters", c, "node-groups", n]) => Op::DescribeNodegroup(o(c), o(n)),
        ("DELETE", ["clusters", c, "node-groups", n]) => Op::DeleteNodegroup(o(c), o(n)),
        ("POST", ["clusters", c, "node-groups", n, "update-config"]) => {
            Op::UpdateNodegroupConfig(o(c), o(n))
        }
        ("POST", ["clusters", c, "node-groups", n, "update-version"]) => {
            Op::UpdateNodegroupVersion(o(c), o(n))
        }
        ("POST", ["clusters", c, "addons"]) => Op::CreateAddon(o(c)),
        ("GET", ["clusters", c, "addons"]) => Op::ListAddons(o(c)),
        ("GET", ["clusters", c, "addons", a]) => Op::DescribeAddon(o(c), o(a)),
        ("DELETE", ["clusters", c, "addons", a]) => Op::DeleteAddon(o(c), o(a)),
        ("POST", ["clusters", c, "addons", a, "update"]) => Op::UpdateAddon(o(c), o(a)),
        ("POST", ["clusters", c, "access-entries"]) => Op::CreateAccessEntry(o(c)),
        ("GET", ["clusters", c, "access-entries"]) => Op::ListAccessEntries(o(c)),
        ("GET", ["clusters", c, "access-entries", p]) => Op::DescribeAccessEntry(o(c), o(p)),
        ("POST", ["clusters", c, "access-entries", p]) => Op::UpdateAccessEntry(o(c), o(p)),
        ("DELETE", ["clusters", c, "access-entries", p]) => Op::DeleteAccessEntry(o(c), o(p)),
        ("POST", ["clusters", c, "access-entries", p, "access-policies"]) => {
            Op::AssociateAccessPolicy(o(c), o(p))
        }
        ("GET", ["clusters", c, "access-entries", p, "access-policies"]) => {
            Op::ListAssociatedAccessPolicies(o(c), o(p))
        }
        ("DELETE", ["clusters", c, "access-entries", p, "access-policies", pol]) => {
            Op::DisassociateAccessPolicy(o(c), o(p), o(pol))
        }
        ("POST", ["clusters", c, "pod-identity-associations"]) => {
            Op::CreatePodIdentityAssociation(o(c))
        }
        ("GET", ["clusters", c, "pod-identity-associations"]) => {
            Op::ListPodIdentityAssociations(o(c))
        }
        ("GET", ["clusters", c, "pod-identity-associations", id]) => {
            Op::DescribePodIdentityAssociation(o(c), o(id))
        }
        ("POST", ["clusters", c, "pod-identity-associations", id]) => {
            Op::UpdatePodIdentityAssociation(o(c), o(id))
        }
        ("DELETE", ["clusters", c, "pod-identity-associations", id]) => {
            Op::DeletePodIdentityAssociation(o(c), o(id))
        }
        _ => return None,
    };
    Some(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_arn_labels_per_segment() {
        let op = parse(
            "DELETE",
            "/clusters/lab/access-entries/arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fadmin/access-policies/arn%3Aaws%3Aeks%3A%3Aaws%3Acluster-access-policy%2FAmazonEKSClusterAdminPolicy",
        );
        assert_eq!(
            op,
            Some(Op::DisassociateAccessPolicy(
                "lab".into(),
                "arn:aws:iam::123456789012:role/admin".into(),
                "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy".into()
            ))
        );
        assert_eq!(parse("PUT", "/clusters"), None);
        assert!(parse("GET", "/clusters/lab").is_some_and(|o| o.is_read()));
    }
}
