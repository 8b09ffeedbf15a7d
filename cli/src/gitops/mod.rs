//! `labflow gitops`: checks on the Flux tree the clusters sync (infra/gitops).
//!
//! The lint is a library function ([`lint`]) so tests call it directly; the subcommand prints its
//! findings, one line each naming file and object, and exits 1 when there are any.

mod apis;
mod coverage;
mod flux;
mod lint;
mod load;
pub mod real_cluster;
pub mod report;
mod schema;
mod subst;
pub mod vars;

use std::path::PathBuf;
use std::process::ExitCode;

pub use lint::{find_repo_root, lint, lint_with_root, LintError};
pub use report::{Check, Finding, LintReport, ObjectId};
pub use schema::CrdError;

#[derive(Debug, clap::Args)]
pub struct GitopsArgs {
    #[command(subcommand)]
    command: GitopsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum GitopsCommand {
    /// Check a GitOps tree: YAML, API versions, paths, references, pinned charts, cluster
    /// variables, and the CRD schemas of every Flux, Istio and cert-manager object.
    Lint {
        /// The tree, e.g. infra/gitops.
        dir: PathBuf,
        /// The verified CRD cache (`make crds`); default `$LABFLOW_CRD_CACHE`, else
        /// `<repo>/.cache/crds`.
        #[arg(long, env = "LABFLOW_CRD_CACHE")]
        crds: Option<PathBuf>,
        /// Where Kustomization `spec.path`s start; default: the git repository holding the tree.
        #[arg(long)]
        repo_root: Option<PathBuf>,
        /// First list every real-cluster rule checked, one line each with its source.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Print the cluster variables flux-bootstrap provides (key, sample value, source).
    Vars,
}

/// `<repo>/.cache/crds` of the repository we are run from, else of the tree's repository.
fn default_crd_cache(tree_repo: &std::path::Path) -> PathBuf {
    let from_cwd = std::env::current_dir()
        .ok()
        .map(|cwd| find_repo_root(&cwd).join(".cache").join("crds"))
        .filter(|dir| dir.is_dir());
    from_cwd.unwrap_or_else(|| tree_repo.join(".cache").join("crds"))
}

/// The real-cluster rules, one line each: `rule <id>: <what> (source: <where>)`.
pub fn print_rules() {
    for rule in real_cluster::RULES {
        println!(
            "rule {}: {} (source: {})",
            rule.id, rule.summary, rule.source
        );
    }
}

pub fn run(args: GitopsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        GitopsCommand::Lint {
            dir,
            crds,
            repo_root,
            verbose,
        } => {
            if verbose {
                print_rules();
            }
            let repo_root = repo_root.unwrap_or_else(|| find_repo_root(&dir));
            let crds = crds.unwrap_or_else(|| default_crd_cache(&repo_root));
            let report = lint_with_root(&dir, &repo_root, &crds)?;
            for finding in &report.findings {
                println!("{finding}");
            }
            let verdict = if report.is_clean() { "ok" } else { "FAILED" };
            eprintln!(
                "gitops lint {}: {verdict}: {} files, {} objects ({} validated against CRD schemas), {} findings",
                lint::display_path(&dir),
                report.files,
                report.objects,
                report.schema_validated,
                report.findings.len()
            );
            Ok(if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        GitopsCommand::Vars => {
            for var in vars::CLUSTER_VARS {
                println!("{}\t{}\t{}", var.name, var.sample, var.source);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
