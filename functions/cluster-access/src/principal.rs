//! Which IAM principals get access entries: the configured ones plus the automation role itself
//! (named by [`labflow_core::principal::role_arn_from_caller`]).

use labflow_core::config::{AccessPrincipal, CLUSTER_ADMIN_POLICY};

/// A principal, the access policies it must have at cluster scope and its entry's Kubernetes
/// groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub principal_arn: String,
    pub policies: Vec<String>,
    pub kubernetes_groups: Vec<String>,
}

/// The configured principals, each with what the config gives it, plus the automation role
/// (this function's own) with cluster admin when the config does not name it — one identity
/// running every step, as `labflow local` does, must install Flux. A deployment that names
/// each function's role (the Terraform) decides each one's access itself: read-only for
/// cluster-access and health-check (issue 26 item 7).
pub fn grants(configured: &[AccessPrincipal], automation_role: &str) -> Vec<Grant> {
    let mut grants: Vec<Grant> = configured
        .iter()
        .map(|p| Grant {
            principal_arn: p.principal_arn.clone(),
            policies: p.effective_policies(),
            kubernetes_groups: p.kubernetes_groups.clone(),
        })
        .collect();
    if !grants.iter().any(|g| g.principal_arn == automation_role) {
        grants.push(Grant {
            principal_arn: automation_role.to_string(),
            policies: vec![CLUSTER_ADMIN_POLICY.to_string()],
            kubernetes_groups: Vec::new(),
        });
    }
    grants
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIEW: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy";

    fn principal(arn: &str, policies: &[&str], groups: &[&str]) -> AccessPrincipal {
        AccessPrincipal {
            principal_arn: arn.into(),
            policies: policies.iter().map(|p| p.to_string()).collect(),
            kubernetes_groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn an_unnamed_automation_role_is_admin_a_named_one_gets_what_the_config_says() {
        let configured = vec![principal("arn:aws:iam::1:role/people", &[], &[])];
        let grants1 = grants(&configured, "arn:aws:iam::1:role/auto");
        assert_eq!(grants1.len(), 2);
        assert_eq!(grants1[0].policies, vec![CLUSTER_ADMIN_POLICY.to_string()]);
        assert_eq!(grants1[1].principal_arn, "arn:aws:iam::1:role/auto");
        assert_eq!(grants1[1].policies, vec![CLUSTER_ADMIN_POLICY.to_string()]);

        let configured = vec![
            principal("arn:aws:iam::1:role/auto", &[VIEW], &[]),
            principal("arn:aws:iam::1:role/health", &[], &["labflow-health-check"]),
        ];
        let grants2 = grants(&configured, "arn:aws:iam::1:role/auto");
        assert_eq!(grants2.len(), 2);
        assert_eq!(grants2[0].policies, vec![VIEW.to_string()]);
        assert!(
            grants2[1].policies.is_empty(),
            "groups only: no access policy"
        );
        assert_eq!(grants2[1].kubernetes_groups, vec!["labflow-health-check"]);
    }
}
