//! Which IAM principal an identity is, for EKS access entries.
//!
//! Access entries name the IAM role, not the STS session (DESIGN.md §5). GetCallerIdentity
//! answers `arn:aws:sts::<account>:assumed-role/<role>/<session>`, which carries the role's name
//! but not its path; a role with a path (`role/labflow/automation`) can only be told from a
//! role ARN given elsewhere — the config's principals or a deployment variable — whose account
//! and name match.

use crate::StepError;

/// The IAM role ARN behind a caller identity ARN.
///
/// - `arn:<p>:sts::<acct>:assumed-role/<role>/<session>` → `arn:<p>:iam::<acct>:role/<role>`,
///   or the role ARN with a path from `known_roles` when one has the same account and name;
/// - an IAM user or role ARN is returned as is;
/// - anything else (root, federated user) cannot have an access entry: `labflow.InvalidInput`.
pub fn role_arn_from_caller(caller_arn: &str, known_roles: &[&str]) -> Result<String, StepError> {
    let parts: Vec<&str> = caller_arn.splitn(6, ':').collect();
    let invalid = || {
        StepError::InvalidInput(format!(
            "the automation identity {caller_arn} is not an IAM role or user, so it cannot have an EKS access entry"
        ))
    };
    if parts.len() != 6 || parts[0] != "arn" {
        return Err(invalid());
    }
    let (partition, service, account, resource) = (parts[1], parts[2], parts[4], parts[5]);
    match service {
        "iam" if resource.starts_with("role/") || resource.starts_with("user/") => {
            Ok(caller_arn.to_string())
        }
        "sts" => {
            let Some(rest) = resource.strip_prefix("assumed-role/") else {
                return Err(invalid());
            };
            let Some((role, _session)) = rest.split_once('/') else {
                return Err(invalid());
            };
            if role.is_empty() {
                return Err(invalid());
            }
            let with_path = known_roles.iter().find(|known| {
                let k: Vec<&str> = known.splitn(6, ':').collect();
                k.len() == 6
                    && k[1] == partition
                    && k[2] == "iam"
                    && k[4] == account
                    && k[5].starts_with("role/")
                    && k[5].rsplit('/').next() == Some(role)
            });
            Ok(match with_path {
                Some(known) => (*known).to_string(),
                None => format!("arn:{partition}:iam::{account}:role/{role}"),
            })
        }
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assumed_role_becomes_role_arn() {
        let arn = role_arn_from_caller(
            "arn:aws:sts::123456789012:assumed-role/labflow-automation/labflow-ensure-cluster",
            &[],
        )
        .expect("role");
        assert_eq!(arn, "arn:aws:iam::123456789012:role/labflow-automation");
    }

    #[test]
    fn a_known_role_with_a_path_wins() {
        let known = ["arn:aws:iam::123456789012:role/labflow/ci/labflow-automation"];
        let arn = role_arn_from_caller(
            "arn:aws:sts::123456789012:assumed-role/labflow-automation/session-1",
            &known,
        )
        .expect("role");
        assert_eq!(arn, known[0]);
        // Another account's role of the same name is not ours.
        let other = ["arn:aws:iam::999999999999:role/x/labflow-automation"];
        let arn = role_arn_from_caller(
            "arn:aws-cn:sts::123456789012:assumed-role/labflow-automation/s",
            &other,
        )
        .expect("role");
        assert_eq!(arn, "arn:aws-cn:iam::123456789012:role/labflow-automation");
    }

    #[test]
    fn users_pass_through_and_root_is_refused() {
        let user = "arn:aws:iam::123456789012:user/alice";
        assert_eq!(role_arn_from_caller(user, &[]).expect("user"), user);
        let err = role_arn_from_caller("arn:aws:iam::123456789012:root", &[]).expect_err("root");
        assert_eq!(err.name(), "labflow.InvalidInput");
        assert!(role_arn_from_caller("not-an-arn", &[]).is_err());
    }
}
