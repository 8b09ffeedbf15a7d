//! Version tables labflow depends on, each with its source: the Flux releases (which controller
//! versions, and so which CRD schemas, each one installs) and the EKS Kubernetes release
//! calendar (standard and extended support windows).

use chrono::NaiveDate;

/// The Flux release labflow pins by default: the examples, the Terraform example and the tests
/// use it, and the GitOps lint, kubesim and the test bed's simulated release validate against the
/// CRDs its controllers ship (`scripts/fetch-crds.sh`, `../shared/crds/SOURCES.md`).
///
/// 2.9.4 is the only release whose notification-controller is v1.9.3 and the one whose
/// kustomize-controller (v1.9.4) and helm-controller (v1.6.3) match the pinned CRDs; see
/// [`FLUX_RELEASES`] for the one controller where the pinned CRDs are older.
pub const FLUX_VERSION: &str = "2.9.4";

/// What one Flux release installs: the controller release each `install.yaml` pulls its CRDs and
/// Deployment from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FluxRelease {
    /// e.g. "2.9.4" (tag `v2.9.4` of fluxcd/flux2)
    pub version: &'static str,
    /// `(controller, tag)`, e.g. `("source-controller", "v1.9.4")`.
    pub controllers: [(&'static str, &'static str); 4],
}

impl FluxRelease {
    /// The tag of `controller` this release installs.
    pub fn controller(&self, controller: &str) -> Option<&'static str> {
        self.controllers
            .iter()
            .find(|(name, _)| *name == controller)
            .map(|(_, tag)| *tag)
    }
}

/// Flux 2.9 releases and the controllers they install.
///
/// Source: fluxcd/flux2, `manifests/bases/<controller>/kustomization.yaml` at each tag (the
/// `https://github.com/fluxcd/<controller>/releases/download/<tag>/<controller>.crds.yaml`
/// resource `manifests/install` — and so the release's `install.yaml` — is built from), e.g.
/// `git show v2.9.4:manifests/bases/source-controller/kustomization.yaml`; v2.9.4 is commit
/// 889be9d6cc8afa8ed639e1e1ba4ab678e3b38d8c. The `*-controller/api` requirements in each tag's
/// go.mod agree.
pub const FLUX_RELEASES: &[FluxRelease] = &[
    FluxRelease {
        version: "2.9.0",
        controllers: [
            ("source-controller", "v1.9.1"),
            ("kustomize-controller", "v1.9.1"),
            ("helm-controller", "v1.6.1"),
            ("notification-controller", "v1.9.1"),
        ],
    },
    FluxRelease {
        version: "2.9.1",
        controllers: [
            ("source-controller", "v1.9.2"),
            ("kustomize-controller", "v1.9.2"),
            ("helm-controller", "v1.6.2"),
            ("notification-controller", "v1.9.2"),
        ],
    },
    FluxRelease {
        version: "2.9.2",
        controllers: [
            ("source-controller", "v1.9.3"),
            ("kustomize-controller", "v1.9.3"),
            ("helm-controller", "v1.6.2"),
            ("notification-controller", "v1.9.2"),
        ],
    },
    FluxRelease {
        version: "2.9.3",
        controllers: [
            ("source-controller", "v1.9.3"),
            ("kustomize-controller", "v1.9.4"),
            ("helm-controller", "v1.6.3"),
            ("notification-controller", "v1.9.2"),
        ],
    },
    FluxRelease {
        version: "2.9.4",
        controllers: [
            ("source-controller", "v1.9.4"),
            ("kustomize-controller", "v1.9.4"),
            ("helm-controller", "v1.6.3"),
            ("notification-controller", "v1.9.3"),
        ],
    },
];

/// The table entry of a Flux release, if labflow knows it.
pub fn flux_release(version: &str) -> Option<&'static FluxRelease> {
    FLUX_RELEASES.iter().find(|r| r.version == version)
}

/// The upstream download of a release's `install.yaml` (DESIGN.md §5; the release asset goreleaser
/// uploads, fluxcd/flux2 `.goreleaser.yml` `release.extra_files: output/install.yaml`).
pub fn flux_manifest_url(version: &str) -> String {
    format!("https://github.com/fluxcd/flux2/releases/download/v{version}/install.yaml")
}

/// A date in the EKS release calendar (UTC).
pub type CalendarDate = (i32, u32, u32);

/// One row of the Amazon EKS Kubernetes release calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EksVersion {
    /// e.g. 35 for "1.35"
    pub minor: u32,
    pub eks_release: CalendarDate,
    /// Extended support (and its billing) starts at 00:00 UTC of this day.
    pub end_of_standard_support: CalendarDate,
    /// From this day on, EKS creates no cluster of this version and upgrades existing ones.
    pub end_of_extended_support: CalendarDate,
}

/// When [`EKS_VERSIONS`] was last checked against its sources.
pub const EKS_VERSIONS_CHECKED: CalendarDate = (2026, 12, 3);

/// The Amazon EKS Kubernetes release calendar.
///
/// Source: "Understand the Kubernetes version lifecycle on EKS", section "Amazon EKS Kubernetes
/// release calendar" (https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html;
/// awsdocs/amazon-eks-user-guide `latest/ug/versioning/kubernetes-versions.adoc`, commit
/// 013856044148d6eeed4723027a45aa2180536bcb) for 1.29-1.34. 1.35 is not in that revision of the
/// page; its dates are those published by endoflife.date/amazon-eks and the aws-samples EKS
/// version calendar (verified 2026-04-24): released January 27, 2026, standard support to March
/// 27, 2027, extended support to March 27, 2028 (14 + 12 months, as the page's rule says).
pub const EKS_VERSIONS: &[EksVersion] = &[
    EksVersion {
        minor: 29,
        eks_release: (2024, 1, 23),
        end_of_standard_support: (2025, 3, 23),
        end_of_extended_support: (2026, 3, 23),
    },
    EksVersion {
        minor: 30,
        eks_release: (2024, 5, 23),
        end_of_standard_support: (2025, 7, 23),
        end_of_extended_support: (2026, 7, 23),
    },
    EksVersion {
        minor: 31,
        eks_release: (2024, 9, 26),
        end_of_standard_support: (2025, 11, 26),
        end_of_extended_support: (2026, 11, 26),
    },
    EksVersion {
        minor: 32,
        eks_release: (2025, 1, 23),
        end_of_standard_support: (2026, 3, 23),
        end_of_extended_support: (2027, 3, 23),
    },
    EksVersion {
        minor: 33,
        eks_release: (2025, 5, 29),
        end_of_standard_support: (2026, 7, 29),
        end_of_extended_support: (2027, 7, 29),
    },
    EksVersion {
        minor: 34,
        eks_release: (2025, 10, 2),
        end_of_standard_support: (2026, 12, 2),
        end_of_extended_support: (2027, 12, 2),
    },
    EksVersion {
        minor: 35,
        eks_release: (2026, 1, 27),
        end_of_standard_support: (2027, 3, 27),
        end_of_extended_support: (2028, 3, 27),
    },
];

/// The cluster-autoscaler release for each Kubernetes minor: the latest patch of the release
/// branch that matches it. The autoscaler simulates the scheduler of its own minor, so upstream
/// says to "always use the latest Cluster Autoscaler release that corresponds to the minor version
/// of Kubernetes" (kubernetes/autoscaler `cluster-autoscaler/README.md`, Releases); the chart
/// (9.59.0) ships v1.35.0 whatever the cluster runs. flux-bootstrap puts the tag for the cluster's
/// version into the cluster variable `CLUSTER_AUTOSCALER_TAG`; the GitOps tree sets `image.tag`
/// from it.
///
/// Source: the `cluster-autoscaler-1.<minor>.<patch>` tags of kubernetes/autoscaler, newest per
/// minor as of the repository snapshot of 2026-08-22 (images
/// `registry.k8s.io/autoscaling/cluster-autoscaler:<tag>`). Covers every row of [`EKS_VERSIONS`].
pub const CLUSTER_AUTOSCALER_RELEASES: &[(u32, &str)] = &[
    (29, "v1.29.5"),
    (30, "v1.30.7"),
    (31, "v1.31.5"),
    (32, "v1.32.7"),
    (33, "v1.33.6"),
    (34, "v1.34.5"),
    (35, "v1.35.2"),
];

/// The cluster-autoscaler image tag for Kubernetes `1.<minor>`.
pub fn cluster_autoscaler_tag(minor: u32) -> Option<&'static str> {
    CLUSTER_AUTOSCALER_RELEASES
        .iter()
        .find(|(m, _)| *m == minor)
        .map(|(_, tag)| *tag)
}

/// Where a Kubernetes version stands in EKS's lifecycle on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EksSupport {
    /// Not yet released on EKS on that day (per the table).
    NotYetReleased {
        release: NaiveDate,
    },
    Standard {
        ends: NaiveDate,
    },
    /// The control plane costs $0.60 per hour instead of $0.10 (EKS pricing page).
    Extended {
        ends: NaiveDate,
    },
    /// EKS refuses to create such a cluster.
    Ended {
        ended: NaiveDate,
    },
    /// Older than every row of [`EKS_VERSIONS`]: ended before the oldest row's end.
    EndedBefore {
        before: NaiveDate,
    },
    /// Newer than every row of [`EKS_VERSIONS`]: labflow cannot say.
    Unknown,
}

fn date((year, month, day): CalendarDate) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day)
}

/// The first aws-ebs-csi-driver release that tags the volumes and snapshots it creates with
/// `ebs.csi.aws.com/cluster-name` (when told its cluster), the tag the cluster-scoped IAM policy
/// `AmazonEBSCSIDriverEKSClusterScopedPolicy` requires (kubernetes-sigs/aws-ebs-csi-driver
/// CHANGELOG v1.58.0, PR #2899).
pub const EBS_CSI_CLUSTER_TAG_SINCE: (u64, u64, u64) = (1, 58, 0);

/// `(major, minor, patch)` of an EKS add-on version such as `v1.58.0-eksbuild.1`.
pub fn addon_semver(version: &str) -> Option<(u64, u64, u64)> {
    let core = version.strip_prefix('v')?.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let v = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(v)
}

/// Whether an aws-ebs-csi-driver add-on version tags volumes with its cluster's name.
pub fn ebs_csi_tags_cluster(version: &str) -> bool {
    addon_semver(version).is_some_and(|v| v >= EBS_CSI_CLUSTER_TAG_SINCE)
}

/// The support status of Kubernetes `1.<minor>` on EKS on `today`.
pub fn eks_support(minor: u32, today: NaiveDate) -> EksSupport {
    let Some(row) = EKS_VERSIONS.iter().find(|v| v.minor == minor) else {
        let oldest = EKS_VERSIONS.first();
        return match oldest.and_then(|v| date(v.end_of_extended_support)) {
            // Older than the table: its extended support ended before the table's oldest row's.
            Some(before) if oldest.is_some_and(|v| minor < v.minor) => {
                EksSupport::EndedBefore { before }
            }
            _ => EksSupport::Unknown,
        };
    };
    let (Some(release), Some(standard), Some(extended)) = (
        date(row.eks_release),
        date(row.end_of_standard_support),
        date(row.end_of_extended_support),
    ) else {
        return EksSupport::Unknown;
    };
    if today < release {
        EksSupport::NotYetReleased { release }
    } else if today < standard {
        EksSupport::Standard { ends: standard }
    } else if today < extended {
        EksSupport::Extended { ends: extended }
    } else {
        EksSupport::Ended { ended: extended }
    }
}

/// The date [`EKS_VERSIONS`] was checked, for messages.
pub fn eks_versions_checked() -> Option<NaiveDate> {
    date(EKS_VERSIONS_CHECKED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ebs_csi_versions_before_v1_58_do_not_tag_the_cluster() {
        assert_eq!(addon_semver("v1.58.0-eksbuild.1"), Some((1, 58, 0)));
        assert!(ebs_csi_tags_cluster("v1.58.0-eksbuild.1"));
        assert!(ebs_csi_tags_cluster("v2.0.1-eksbuild.3"));
        assert!(!ebs_csi_tags_cluster("v1.57.9-eksbuild.1"));
        assert!(!ebs_csi_tags_cluster("v1.45.0-eksbuild.2"));
        assert!(!ebs_csi_tags_cluster("latest"));
        assert_eq!(addon_semver("v1.2"), None);
    }
}
