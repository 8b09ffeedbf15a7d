//! `labflow lint`: the lifecycle definition (labflow-states' linter), the GitOps tree
//! (`labflow gitops lint`'s checks) and any environment configs given (labflow-core's config
//! validation, as the Lambdas run it against AWS today) in one report.
//!
//! The definition is linted as committed: its `${...}` placeholders (filled by Terraform's
//! templatefile) only stand for Task resources, which the linter accepts as given.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::anyhow;
use labflow_states::model::{Kind, Scope};
use labflow_states::LintError as AslFinding;

use crate::gitops::{self, LintError as GitopsError, LintReport};

/// The lifecycle definition, relative to the repository root.
pub const DEFAULT_DEFINITION: &str = "state-machine/lifecycle.asl.json";
/// The GitOps tree, relative to the repository root.
pub const DEFAULT_GITOPS: &str = "infra/gitops";

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 no problems; 1 problems found (each printed on one line \
naming the file and the state or object); 2 bad usage or input (a missing file or directory, \
no CRD cache)."
)]
pub struct LintArgs {
    /// The state machine definition; default `<repo>/state-machine/lifecycle.asl.json`.
    #[arg(long)]
    pub definition: Option<PathBuf>,
    /// The GitOps tree; default `<repo>/infra/gitops`.
    #[arg(long)]
    pub gitops: Option<PathBuf>,
    /// The verified CRD cache (`make crds`); default `$LABFLOW_CRD_CACHE`, else
    /// `<repo>/.cache/crds`.
    #[arg(long, env = "LABFLOW_CRD_CACHE")]
    pub crds: Option<PathBuf>,
    /// Environment config files (JSON) to validate as the Lambdas will in AWS: errors fail the
    /// lint; warnings (e.g. a Kubernetes version in EKS extended support) are printed.
    #[arg(long = "config", value_name = "FILE")]
    pub configs: Vec<PathBuf>,
    /// First list every real-cluster rule the GitOps lint checks, one line each with its source.
    #[arg(long, short)]
    pub verbose: bool,
}

/// What config validation found in one environment config file.
#[derive(Debug, Clone)]
pub struct ConfigReport {
    pub path: PathBuf,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Validate the environment config in `path` under `checks`; the environment is named after the
/// file (`lab.json` → `lab`), as `labflow local` names it.
pub fn lint_config(
    path: &Path,
    checks: &labflow_core::config::Checks,
) -> Result<ConfigReport, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut report = ConfigReport {
        path: path.to_path_buf(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if let Err(err) = labflow_core::config::check_environment_name(name) {
        report.errors.push(format!("file name: {}", err.message()));
    }
    match serde_json::from_str::<labflow_core::config::EnvironmentConfig>(&text) {
        Ok(config) => {
            let findings = labflow_core::config::check(&config, checks);
            report
                .errors
                .extend(findings.errors.iter().map(ToString::to_string));
            report
                .warnings
                .extend(findings.warnings.iter().map(ToString::to_string));
        }
        // Parse again for the path of what is wrong.
        Err(_) => match labflow_core::config::parse_with(name, &text, checks) {
            Err(err) => report.errors.push(err.message().to_string()),
            Ok(_) => report.errors.push("not an environment config".into()),
        },
    }
    Ok(report)
}

/// The repository root (as `labflow local` finds it), else the current directory.
pub fn repo_root_or_cwd() -> PathBuf {
    labflow_testbed::paths::repo_root()
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// What the definition's lint found.
#[derive(Debug, Clone)]
pub enum DefinitionReport {
    /// Valid; the number of states, nested ones included.
    Valid { states: usize },
    /// Not JSON at all.
    NotJson(String),
    /// Lint findings, each locating a state (`States.Name.Field`).
    Invalid(Vec<AslFinding>),
}

impl DefinitionReport {
    pub fn is_clean(&self) -> bool {
        matches!(self, DefinitionReport::Valid { .. })
    }

    /// One line per problem.
    pub fn problems(&self) -> Vec<String> {
        match self {
            DefinitionReport::Valid { .. } => Vec::new(),
            DefinitionReport::NotJson(message) => vec![format!("not JSON: {message}")],
            DefinitionReport::Invalid(findings) => findings.iter().map(|f| f.to_string()).collect(),
        }
    }
}

/// Both halves of `labflow lint`.
#[derive(Debug, Clone)]
pub struct Report {
    pub definition_path: PathBuf,
    pub definition: DefinitionReport,
    pub gitops_path: PathBuf,
    pub gitops: LintReport,
    /// The environment configs given with `--config`.
    pub configs: Vec<ConfigReport>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.definition.is_clean()
            && self.gitops.is_clean()
            && self.configs.iter().all(|c| c.errors.is_empty())
    }

    pub fn problem_count(&self) -> usize {
        self.definition.problems().len()
            + self.gitops.findings.len()
            + self.configs.iter().map(|c| c.errors.len()).sum::<usize>()
    }
}

impl fmt::Display for Report {
    /// One line per problem: `<file>: <where>: <what>`, then a summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let def = self.definition_path.display();
        for problem in self.definition.problems() {
            writeln!(f, "{def}: {problem}")?;
        }
        let tree = self.gitops_path.display().to_string();
        let tree = tree.trim_end_matches('/');
        for finding in &self.gitops.findings {
            writeln!(f, "{tree}/{finding}")?;
        }
        for config in &self.configs {
            let path = config.path.display();
            for error in &config.errors {
                writeln!(f, "{path}: {error}")?;
            }
            for warning in &config.warnings {
                writeln!(f, "{path}: warning: {warning}")?;
            }
        }
        let definition = match &self.definition {
            DefinitionReport::Valid { states } => format!("ok ({states} states)"),
            other => format!("{} problem(s)", other.problems().len()),
        };
        let verdict = if self.is_clean() { "ok" } else { "FAILED" };
        write!(
            f,
            "lint: {verdict}: definition {def}: {definition}; gitops {tree}: {} files, {} objects ({} validated against CRD schemas), {} finding(s)",
            self.gitops.files,
            self.gitops.objects,
            self.gitops.schema_validated,
            self.gitops.findings.len()
        )?;
        if !self.configs.is_empty() {
            let errors: usize = self.configs.iter().map(|c| c.errors.len()).sum();
            let warnings: usize = self.configs.iter().map(|c| c.warnings.len()).sum();
            write!(
                f,
                "; configs: {} checked, {errors} error(s), {warnings} warning(s)",
                self.configs.len()
            )?;
        }
        Ok(())
    }
}

/// Why `labflow lint` could not run at all (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Gitops(#[from] GitopsError),
}

/// Lints the definition file.
pub fn lint_definition(path: &Path) -> Result<DefinitionReport, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(err) => return Ok(DefinitionReport::NotJson(err.to_string())),
    };
    Ok(match labflow_states::lint(&value) {
        Ok(machine) => DefinitionReport::Valid {
            states: count_states(&machine.scope),
        },
        Err(errs) => DefinitionReport::Invalid(errs.0),
    })
}

fn count_states(scope: &Scope) -> usize {
    scope
        .states
        .values()
        .map(|s| {
            1 + match &s.kind {
                Kind::Map { processor, .. } => count_states(processor),
                Kind::Parallel { branches } => branches.iter().map(count_states).sum(),
                _ => 0,
            }
        })
        .sum()
}

/// Lints the definition and the GitOps tree (Kustomization paths resolved against `repo_root`).
pub fn lint(
    definition: &Path,
    gitops_dir: &Path,
    repo_root: &Path,
    crds: &Path,
) -> Result<Report, Error> {
    let definition_report = lint_definition(definition)?;
    let gitops_report = gitops::lint_with_root(gitops_dir, repo_root, crds)?;
    Ok(Report {
        definition_path: definition.to_path_buf(),
        definition: definition_report,
        gitops_path: gitops_dir.to_path_buf(),
        gitops: gitops_report,
        configs: Vec::new(),
    })
}

/// Shown relative to the current directory when it is under it.
fn display_path(path: PathBuf) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(path)
}

pub fn run(args: LintArgs) -> anyhow::Result<ExitCode> {
    let root = repo_root_or_cwd();
    let definition = display_path(
        args.definition
            .unwrap_or_else(|| root.join(DEFAULT_DEFINITION)),
    );
    let gitops_dir = display_path(args.gitops.unwrap_or_else(|| root.join(DEFAULT_GITOPS)));
    let tree_root = gitops::find_repo_root(&gitops_dir);
    let crds = args
        .crds
        .unwrap_or_else(|| tree_root.join(".cache").join("crds"));
    if !crds.is_dir() {
        return Err(anyhow!(
            "the CRD cache {} is missing (hint: `make crds`, or pass --crds)",
            crds.display()
        ));
    }
    let mut report = lint(&definition, &gitops_dir, &tree_root, &crds)
        .map_err(|e| anyhow!("{e} (hint: check --definition and --gitops)"))?;
    let checks = labflow_core::config::Checks::create(false);
    for path in args.configs {
        report
            .configs
            .push(lint_config(&display_path(path), &checks).map_err(|e| anyhow!("{e}"))?);
    }
    if args.verbose {
        gitops::print_rules();
    }
    println!("{report}");
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
