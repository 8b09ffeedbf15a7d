//! The function crates (functions/<name>, except core) and the IAM actions each one declares in
//! src/lib.rs: `AWS_OPERATIONS` (what its code calls) and, optionally, `IMPLIED_PERMISSIONS`
//! (what AWS authorizes on its behalf during those calls, e.g. iam:PassRole). Read from the
//! source with syn, so a crate still being written fails with a message instead of breaking the
//! build of these tests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use syn::{Expr, Item, Lit};

use crate::{read, InfraError};

/// What the Lambda runtime needs in every function's role besides the crate's own calls
/// (infra/terraform/iam_lambdas.tf, local.lambda_runtime_actions): its log group, X-Ray, and
/// decrypting its environment and labflow's SecureStrings.
pub const RUNTIME_ACTIONS: &[&str] = &[
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "kms:Decrypt",
];

/// The library crate that is not a Lambda.
pub const NOT_A_FUNCTION: &str = "core";

#[derive(Debug, Clone)]
pub struct FunctionCrate {
    /// The directory name = the binary name = the Lambda's key in Terraform.
    pub name: String,
    pub dir: PathBuf,
}

/// Every crate under functions/ except core, sorted by name.
pub fn discover(functions_dir: &Path) -> Result<Vec<FunctionCrate>, InfraError> {
    let entries = std::fs::read_dir(functions_dir).map_err(|source| InfraError::Io {
        path: functions_dir.display().to_string(),
        source,
    })?;
    let mut crates: Vec<FunctionCrate> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .filter_map(|dir| {
            let name = dir.file_name()?.to_str()?.to_string();
            (name != NOT_A_FUNCTION).then_some(FunctionCrate { name, dir })
        })
        .collect();
    crates.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(crates)
}

impl FunctionCrate {
    /// Names of the `[[bin]]` targets in Cargo.toml.
    pub fn binaries(&self) -> Result<Vec<String>, InfraError> {
        let manifest = read(&self.dir.join("Cargo.toml"))?;
        Ok(bin_names(&manifest))
    }

    /// `AWS_OPERATIONS` ∪ `IMPLIED_PERMISSIONS` (the latter may be absent).
    pub fn declared_actions(&self) -> Result<DeclaredActions, InfraError> {
        let path = self.dir.join("src/lib.rs");
        let source = read(&path)?;
        declared_actions(&source, &path.display().to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredActions {
    pub operations: Vec<String>,
    pub implied: Vec<String>,
}

impl DeclaredActions {
    pub fn all(&self) -> BTreeSet<String> {
        self.operations
            .iter()
            .chain(&self.implied)
            .cloned()
            .collect()
    }

    /// Actions listed twice (in one list or across both).
    pub fn duplicates(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.operations
            .iter()
            .chain(&self.implied)
            .filter(|action| !seen.insert(action.as_str()))
            .cloned()
            .collect()
    }
}

/// Parse a lib.rs: `AWS_OPERATIONS` is required, `IMPLIED_PERMISSIONS` optional; both must be
/// `&[...]` of string literals so the list is visible without running code.
pub fn declared_actions(source: &str, path: &str) -> Result<DeclaredActions, InfraError> {
    let file = syn::parse_file(source).map_err(|err| InfraError::Rust {
        path: path.to_string(),
        message: err.to_string(),
    })?;
    let operations = const_str_list(&file, "AWS_OPERATIONS", path)?.ok_or_else(|| {
        InfraError::Invalid(format!(
            "{path} declares no `pub const AWS_OPERATIONS: &[&str]` (the IAM actions the function calls)"
        ))
    })?;
    let implied = const_str_list(&file, "IMPLIED_PERMISSIONS", path)?.unwrap_or_default();
    Ok(DeclaredActions {
        operations,
        implied,
    })
}

fn const_str_list(
    file: &syn::File,
    name: &str,
    path: &str,
) -> Result<Option<Vec<String>>, InfraError> {
    let Some(item) = file.items.iter().find_map(|item| match item {
        Item::Const(c) if c.ident == name => Some(c),
        _ => None,
    }) else {
        return Ok(None);
    };
    let not_literal = || {
        InfraError::Invalid(format!(
            "{path}: {name} must be `&[\"service:Action\", ...]` of string literals"
        ))
    };
    let Expr::Reference(reference) = item.expr.as_ref() else {
        return Err(not_literal());
    };
    let Expr::Array(array) = reference.expr.as_ref() else {
        return Err(not_literal());
    };
    array
        .elems
        .iter()
        .map(|elem| match elem {
            Expr::Lit(lit) => match &lit.lit {
                Lit::Str(s) => Ok(s.value()),
                _ => Err(not_literal()),
            },
            _ => Err(not_literal()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `name = "..."` inside `[[bin]]` sections of a Cargo.toml (enough TOML for manifests).
pub fn bin_names(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
            continue;
        }
        if !in_bin {
            continue;
        }
        if let Some(value) = line
            .strip_prefix("name")
            .map(str::trim_start)
            .and_then(|rest| rest.strip_prefix('='))
        {
            names.push(value.trim().trim_matches('"').to_string());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_lists() {
        let src = r#"
            pub const AWS_OPERATIONS: &[&str] = &["ssm:GetParameter", "eks:CreateCluster"];
            pub const IMPLIED_PERMISSIONS: &[&str] = &["iam:PassRole"];
        "#;
        let got = declared_actions(src, "lib.rs").unwrap();
        assert_eq!(got.operations, ["ssm:GetParameter", "eks:CreateCluster"]);
        assert_eq!(got.implied, ["iam:PassRole"]);
        assert!(got.duplicates().is_empty());
    }

    #[test]
    fn missing_list_is_an_error() {
        let err = declared_actions("pub fn handle() {}", "lib.rs").unwrap_err();
        assert!(err.to_string().contains("AWS_OPERATIONS"), "{err}");
    }

    #[test]
    fn computed_list_is_rejected() {
        let src = r#"
            const SSM: &str = "ssm:GetParameter";
            pub const AWS_OPERATIONS: &[&str] = &[SSM];
        "#;
        let err = declared_actions(src, "lib.rs").unwrap_err();
        assert!(err.to_string().contains("string literals"), "{err}");
    }

    #[test]
    fn duplicates_are_reported() {
        let src = r#"
            pub const AWS_OPERATIONS: &[&str] = &["iam:PassRole"];
            pub const IMPLIED_PERMISSIONS: &[&str] = &["iam:PassRole"];
        "#;
        let got = declared_actions(src, "lib.rs").unwrap();
        assert_eq!(got.duplicates(), ["iam:PassRole"]);
    }

    #[test]
    fn bin_names_only_from_bin_sections() {
        let manifest = "[package]\nname = \"labflow-x\"\n\n[[bin]]\nname = \"x\"\npath = \"src/main.rs\"\n\n[dependencies]\nname = \"nope\"\n";
        assert_eq!(bin_names(manifest), ["x"]);
    }
}
