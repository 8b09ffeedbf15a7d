//! labflow github-status: commit statuses on the pushed sha, linking to the execution.
//!
//! Not implemented yet (issue 10); the IAM the function will need is declared already so the
//! Terraform cross-check covers it.

/// The IAM actions the function calls: it reads the GitHub token from SSM.
pub const AWS_OPERATIONS: &[&str] = &["ssm:GetParameter"];
