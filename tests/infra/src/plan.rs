//! `terraform plan` of infra/terraform in a scratch copy, against the AWS emulator.
//!
//! What it needs from the machine: `terraform` (on PATH, or `$LABFLOW_TERRAFORM`) and the
//! hashicorp/aws provider in a filesystem mirror (`$LABFLOW_TF_PROVIDER_MIRROR`, or found in
//! Terraform's implied mirror directories and a few install roots). `terraform init` reads the
//! provider from that mirror only — the CLI configuration written here names no other source,
//! so nothing is downloaded.
//!
//! The configuration needs provider 6.x. When the mirror holds only 5.x, the scratch copy gets
//! exactly the rewrites in [`PROVIDER_5_REWRITES`]; anything else 5.x does not understand fails
//! `terraform validate`, as it should.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{functions, read, repo, InfraError};

/// Environment variable naming the terraform binary (default: `terraform` on PATH).
pub const TERRAFORM_ENV: &str = "LABFLOW_TERRAFORM";
/// Environment variable naming a provider filesystem mirror (the directory holding
/// `registry.terraform.io/`).
pub const MIRROR_ENV: &str = "LABFLOW_TF_PROVIDER_MIRROR";

const PROVIDER_DIR: &str = "registry.terraform.io/hashicorp/aws";

/// One textual change to the scratch copy that lets provider 5.x read a 6.x construct.
#[derive(Debug)]
pub struct Rewrite {
    pub file: &'static str,
    pub from: &'static str,
    /// `{version}` is replaced by the mirror's provider version.
    pub to: &'static str,
    pub why: &'static str,
}

/// The only differences between the real configuration and what is planned with provider 5.x.
/// Each must match exactly once, so a change to the configuration that makes one stale fails
/// loudly instead of planning something else.
pub const PROVIDER_5_REWRITES: &[Rewrite] = &[
    Rewrite {
        file: "versions.tf",
        from: r#"version = ">= 6.42.0, < 7.0.0""#,
        to: r#"version = "= {version}""#,
        why: "the mirror's provider is 5.x",
    },
    Rewrite {
        file: "main.tf",
        from: "data.aws_region.current.region",
        to: "data.aws_region.current.name",
        why: "provider 6.0 renamed aws_region's `name` attribute to `region`",
    },
    Rewrite {
        file: "webhook.tf",
        from: "invoked_via_function_url = true",
        to: "",
        why: "aws_lambda_permission.invoked_via_function_url exists from provider 6.x only",
    },
];

/// A provider version `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.').map(|p| p.parse::<u32>().ok());
        let version = Version(parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(version)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Terraform and the provider mirror found on this machine.
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub terraform: PathBuf,
    pub mirror: PathBuf,
    pub provider: Version,
}

impl Toolchain {
    pub fn discover() -> Result<Self, InfraError> {
        let terraform = find_terraform()?;
        let (mirror, provider) = find_mirror()?;
        Ok(Self {
            terraform,
            mirror,
            provider,
        })
    }
}

fn find_terraform() -> Result<PathBuf, InfraError> {
    if let Some(path) = std::env::var_os(TERRAFORM_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(InfraError::Invalid(format!(
                "{TERRAFORM_ENV}={} is not a file",
                path.display()
            )))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("terraform"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            InfraError::Invalid(format!(
                "terraform is missing: no `terraform` on PATH (install Terraform >= 1.6, or set \
                 {TERRAFORM_ENV} to its path)"
            ))
        })
}

/// `linux_amd64`, `darwin_arm64`, ...: the provider's platform directory for this machine.
fn platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("{}_{arch}", std::env::consts::OS)
}

/// Terraform's implied local mirror directories (CLI configuration docs, "Implied Local Mirror
/// Directories"), then install roots where images put mirrors of their own.
fn mirror_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if let Some(home) = &home {
        roots.push(home.join(".terraform.d/plugins"));
    }
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".local/share")));
    if let Some(data_home) = data_home {
        roots.push(data_home.join("terraform/plugins"));
    }
    let data_dirs = std::env::var("XDG_DATA_DIRS")
        .unwrap_or_else(|_| "/usr/local/share:/usr/share".to_string());
    roots.extend(
        data_dirs
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join("terraform/plugins")),
    );
    roots.extend(["/opt", "/usr/local/lib", "/usr/local/share", "/srv"].map(PathBuf::from));
    roots
}

/// Directories under `root` (depth-limited) that hold `registry.terraform.io/hashicorp/aws`.
fn mirrors_under(root: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    if root.join(PROVIDER_DIR).is_dir() {
        found.push(root.to_path_buf());
        return;
    }
    if depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            mirrors_under(&entry.path(), depth - 1, found);
        }
    }
}

/// The newest aws provider version with a binary for this platform in a mirror.
fn provider_in(mirror: &Path) -> Option<Version> {
    let platform = platform();
    std::fs::read_dir(mirror.join(PROVIDER_DIR))
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version = Version::parse(entry.file_name().to_str()?)?;
            let has_binary = std::fs::read_dir(entry.path().join(&platform))
                .ok()?
                .flatten()
                .any(|f| {
                    f.file_name()
                        .to_str()
                        .is_some_and(|n| n.starts_with("terraform-provider-aws_"))
                });
            has_binary.then_some(version)
        })
        .max()
}

fn find_mirror() -> Result<(PathBuf, Version), InfraError> {
    if let Some(dir) = std::env::var_os(MIRROR_ENV) {
        let dir = PathBuf::from(dir);
        return provider_in(&dir).map(|v| (dir.clone(), v)).ok_or_else(|| {
            InfraError::Invalid(format!(
                "{MIRROR_ENV}={} holds no {PROVIDER_DIR}/<version>/{}/terraform-provider-aws_*",
                dir.display(),
                platform()
            ))
        });
    }
    let mut found = Vec::new();
    for root in mirror_roots() {
        mirrors_under(&root, 3, &mut found);
    }
    found
        .into_iter()
        .filter_map(|dir| provider_in(&dir).map(|v| (dir, v)))
        .max_by_key(|(_, v)| *v)
        .ok_or_else(|| {
            InfraError::Invalid(format!(
                "the hashicorp/aws provider is missing: no filesystem mirror with \
                 {PROVIDER_DIR}/<version>/{}/terraform-provider-aws_* in Terraform's implied \
                 mirror directories, /opt, /usr/local or /srv; set {MIRROR_ENV} to the mirror \
                 directory (the one holding registry.terraform.io/)",
                platform()
            ))
        })
}

/// A scratch copy of the repository parts the module reads, initialised against the mirror.
#[derive(Debug)]
pub struct Scratch {
    _dir: tempfile::TempDir,
    root: PathBuf,
    toolchain: Toolchain,
    aws_endpoint: String,
    /// The rewrites applied (empty with a 6.x provider).
    pub rewrites: Vec<&'static Rewrite>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InfraError + '_ {
    move |source| InfraError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// An empty but valid zip archive (only the end-of-central-directory record).
const EMPTY_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

impl Scratch {
    /// Copy infra/terraform (the `.tf` files and `example.tfvars`) and the state machine
    /// definition it templates into a scratch directory with the same layout, write a
    /// placeholder zip per function where `make package` would put it, apply the 5.x rewrites
    /// if needed, then `terraform init` from the mirror and `terraform validate`.
    pub fn prepare(toolchain: Toolchain, aws_endpoint: &str) -> Result<Self, InfraError> {
        let dir = tempfile::Builder::new()
            .prefix("labflow-plan-")
            .tempdir()
            .map_err(io(Path::new("temp dir")))?;
        let root = dir.path().to_path_buf();
        let tf = root.join("infra/terraform");
        std::fs::create_dir_all(&tf).map_err(io(&tf))?;
        let source = repo::terraform_dir();
        for entry in std::fs::read_dir(&source).map_err(io(&source))?.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let keep = path.extension().is_some_and(|e| e == "tf") || name == "example.tfvars";
            if keep && path.is_file() {
                std::fs::copy(&path, tf.join(&name)).map_err(io(&path))?;
            }
        }
        let asl_dir = root.join("state-machine");
        std::fs::create_dir_all(&asl_dir).map_err(io(&asl_dir))?;
        let asl = repo::state_machine_file();
        std::fs::copy(&asl, asl_dir.join("lifecycle.asl.json")).map_err(io(&asl))?;

        // Where the module's default lambda_dist_dir points (../../dist/lambda).
        let dist = root.join("dist/lambda");
        std::fs::create_dir_all(&dist).map_err(io(&dist))?;
        for function in functions::discover(&repo::functions_dir())? {
            let zip = dist.join(format!("{}.zip", function.name));
            std::fs::write(&zip, EMPTY_ZIP).map_err(io(&zip))?;
        }

        let mut rewrites = Vec::new();
        if toolchain.provider.0 < 6 {
            for rewrite in PROVIDER_5_REWRITES {
                apply_rewrite(&tf, rewrite, toolchain.provider)?;
                rewrites.push(rewrite);
            }
        }

        let cli_config = root.join("terraform.rc");
        let config = format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path    = {}\n    include = [\"registry.terraform.io/hashicorp/aws\"]\n  }}\n}}\n",
            hcl_string(&toolchain.mirror.display().to_string())
        );
        std::fs::write(&cli_config, config).map_err(io(&cli_config))?;

        let scratch = Self {
            _dir: dir,
            root,
            toolchain,
            aws_endpoint: aws_endpoint.to_string(),
            rewrites,
        };
        scratch.terraform(&["init", "-input=false", "-no-color", "-backend=false"])?;
        scratch.terraform(&["validate", "-no-color"])?;
        Ok(scratch)
    }

    /// The module directory inside the scratch copy.
    pub fn module_dir(&self) -> PathBuf {
        self.root.join("infra/terraform")
    }

    /// The scratch root (holds `dist/lambda` with the placeholder zips).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `terraform plan` with these var files (applied in order) and `-var` values, then
    /// `terraform show -json` of the saved plan. `name` keeps concurrent plans apart.
    pub fn plan(
        &self,
        name: &str,
        var_files: &[PathBuf],
        vars: &BTreeMap<String, String>,
    ) -> Result<serde_json::Value, InfraError> {
        let out = self.root.join(format!("{name}.tfplan"));
        let mut args: Vec<String> = vec![
            "plan".into(),
            "-input=false".into(),
            "-no-color".into(),
            // No state to lock: plans of different variants run side by side in one directory.
            "-lock=false".into(),
            format!("-out={}", out.display()),
        ];
        args.extend(
            var_files
                .iter()
                .map(|f| format!("-var-file={}", f.display())),
        );
        args.extend(vars.iter().map(|(k, v)| format!("-var={k}={v}")));
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.terraform(&arg_refs)?;
        let out_arg = out.display().to_string();
        let json = self.terraform(&["show", "-json", "-no-color", &out_arg])?;
        serde_json::from_str(&json).map_err(|e| {
            InfraError::Invalid(format!("terraform show -json of {name}: not JSON: {e}"))
        })
    }

    /// `terraform apply -target=...` against a given emulator (its own, so the resources it
    /// creates meet no other test's), into a state file of its own; returns
    /// `terraform show -json` of that state. Used to read what only exists after apply, such as
    /// the rendered IAM policies.
    pub fn apply_targets(
        &self,
        name: &str,
        aws_endpoint: &str,
        var_files: &[PathBuf],
        targets: &[&str],
    ) -> Result<serde_json::Value, InfraError> {
        let state = self.root.join(format!("{name}.tfstate"));
        let mut args: Vec<String> = vec![
            "apply".into(),
            "-input=false".into(),
            "-no-color".into(),
            "-auto-approve".into(),
            format!("-state={}", state.display()),
        ];
        args.extend(
            var_files
                .iter()
                .map(|f| format!("-var-file={}", f.display())),
        );
        args.extend(targets.iter().map(|t| format!("-target={t}")));
        let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.terraform_at(&arg_refs, aws_endpoint)?;
        let state_arg = state.display().to_string();
        let json = self.terraform_at(&["show", "-json", "-no-color", &state_arg], aws_endpoint)?;
        serde_json::from_str(&json).map_err(|e| {
            InfraError::Invalid(format!("terraform show -json of {name}: not JSON: {e}"))
        })
    }

    /// Run terraform in the module directory against the scratch's emulator.
    pub fn terraform(&self, args: &[&str]) -> Result<String, InfraError> {
        self.terraform_at(args, &self.aws_endpoint)
    }

    /// Run terraform in the module directory with an environment of our own: the scratch CLI
    /// configuration, the emulator as every AWS endpoint, dummy credentials, and none of the
    /// caller's AWS_* / TF_* settings (a real profile must never be used by a test).
    fn terraform_at(&self, args: &[&str], aws_endpoint: &str) -> Result<String, InfraError> {
        let mut command = Command::new(&self.toolchain.terraform);
        command.args(args).current_dir(self.module_dir());
        let inherited: Vec<OsString> = std::env::vars_os()
            .map(|(k, _)| k)
            .filter(|k| {
                k.to_str()
                    .is_some_and(|k| k.starts_with("AWS_") || k.starts_with("TF_"))
            })
            .collect();
        for key in inherited {
            command.env_remove(key);
        }
        command
            .env("TF_CLI_CONFIG_FILE", self.root.join("terraform.rc"))
            .env("TF_DATA_DIR", self.module_dir().join(".terraform"))
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .env("AWS_ENDPOINT_URL", aws_endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        let output = command.output().map_err(io(&self.toolchain.terraform))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(InfraError::Terraform {
                command: format!("terraform {}", args.join(" ")),
                output: format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)),
            })
        }
    }
}

fn apply_rewrite(dir: &Path, rewrite: &Rewrite, version: Version) -> Result<(), InfraError> {
    let path = dir.join(rewrite.file);
    let text = read(&path)?;
    let count = text.matches(rewrite.from).count();
    if count != 1 {
        return Err(InfraError::Invalid(format!(
            "provider-5.x rewrite of {} ({}) expects `{}` exactly once, found {count} times: \
             update PROVIDER_5_REWRITES in tests/infra/src/plan.rs",
            rewrite.file, rewrite.why, rewrite.from
        )));
    }
    let to = rewrite.to.replace("{version}", &version.to_string());
    std::fs::write(&path, text.replace(rewrite.from, &to)).map_err(io(&path))
}

/// A string literal for the CLI configuration (HCL).
fn hcl_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(Version::parse("5.100.0"), Some(Version(5, 100, 0)));
        assert_eq!(Version::parse("6.1"), None);
        assert_eq!(Version::parse("6.1.0-beta"), None);
        assert!(Version(6, 0, 0) > Version(5, 100, 0));
    }

    #[test]
    fn every_rewrite_matches_the_real_configuration_once() {
        for rewrite in PROVIDER_5_REWRITES {
            let text = read(&repo::terraform_dir().join(rewrite.file)).expect("read");
            assert_eq!(
                text.matches(rewrite.from).count(),
                1,
                "{} in {}",
                rewrite.from,
                rewrite.file
            );
        }
    }
}
