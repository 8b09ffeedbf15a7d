//! `labflow lint` (definition + GitOps tree) and `labflow diagram`, through the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn definition() -> PathBuf {
    repo().join("state-machine/lifecycle.asl.json")
}

fn labflow(args: &[&str]) -> Result<(i32, String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_labflow"))
        .args(args)
        .current_dir(repo())
        .output()
        .context("spawning labflow")?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn path_arg(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// Every state name of a definition, nested ones (Map ItemProcessor, Parallel branches) included.
fn state_names(scope: &Value, out: &mut Vec<String>) {
    let Some(states) = scope.get("States").and_then(Value::as_object) else {
        return;
    };
    for (name, state) in states {
        out.push(name.clone());
        for key in ["ItemProcessor", "Iterator"] {
            if let Some(inner) = state.get(key) {
                state_names(inner, out);
            }
        }
        if let Some(branches) = state.get("Branches").and_then(Value::as_array) {
            branches.iter().for_each(|b| state_names(b, out));
        }
    }
}

fn lifecycle() -> Result<Value> {
    let text = std::fs::read_to_string(definition())?;
    Ok(serde_json::from_str(&text)?)
}

#[test]
fn lint_of_the_real_tree_passes() -> Result<()> {
    let (code, stdout, stderr) = labflow(&["lint"])?;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("lint: ok"), "{stdout}");
    assert!(stdout.contains("lifecycle.asl.json: ok ("), "{stdout}");
    Ok(())
}

#[test]
fn lint_of_a_broken_definition_fails_naming_the_state() -> Result<()> {
    let mut def = lifecycle()?;
    let next = def
        .pointer_mut("/States/EnsureCluster/Next")
        .context("lifecycle has States.EnsureCluster.Next")?;
    *next = Value::String("NoSuchState".into());
    let dir = tempfile::tempdir()?;
    let broken = dir.path().join("broken.asl.json");
    std::fs::write(&broken, serde_json::to_string_pretty(&def)?)?;

    let gitops = repo().join("infra/gitops");
    let (code, stdout, stderr) = labflow(&[
        "lint",
        "--definition",
        path_arg(&broken),
        "--gitops",
        path_arg(&gitops),
    ])?;
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    let line = stdout
        .lines()
        .find(|l| l.contains("broken.asl.json") && l.contains("EnsureCluster"))
        .with_context(|| format!("no finding naming EnsureCluster in:\n{stdout}"))?;
    assert!(line.contains("NoSuchState"), "{line}");
    assert!(stdout.contains("lint: FAILED"), "{stdout}");

    // The library reports the same, with the GitOps half clean.
    let report = labflow_cli::lint::lint(
        &broken,
        &gitops,
        &repo(),
        &repo().join(".cache").join("crds"),
    )?;
    assert!(!report.is_clean());
    assert!(report.gitops.is_clean(), "{report}");
    assert!(report
        .definition
        .problems()
        .iter()
        .any(|p| p.contains("States.EnsureCluster")));
    Ok(())
}

#[test]
fn lint_of_a_missing_gitops_tree_is_bad_input() -> Result<()> {
    let (code, _, stderr) = labflow(&["lint", "--gitops", "no/such/dir"])?;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no/such/dir"), "{stderr}");
    Ok(())
}

#[test]
fn diagram_shows_every_state_and_edge_kind() -> Result<()> {
    let (code, stdout, stderr) = labflow(&["diagram"])?;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("flowchart TD\n"), "{stdout}");
    let mut names = Vec::new();
    state_names(&lifecycle()?, &mut names);
    assert!(names.len() > 30, "{names:?}");
    for name in &names {
        assert!(
            stdout.contains(&format!("\"{name}\"")) || stdout.contains(&format!("\"{name} (")),
            "state {name} missing from:\n{stdout}"
        );
    }
    // Catch edges: dashed, labelled with the errors.
    assert!(stdout.contains("-. \"States.ALL\" .->"), "{stdout}");
    // Choice edges: labelled with their rule, and the default.
    assert!(stdout.contains("\"action = teardown-all\""), "{stdout}");
    assert!(stdout.contains("\"cluster.done\""), "{stdout}");
    assert!(stdout.contains("-- \"default\" -->"), "{stdout}");
    // The Map is a subgraph holding its processor.
    assert!(
        stdout.contains("subgraph s_TeardownEach[\"TeardownEach (Map)\"]"),
        "{stdout}"
    );
    Ok(())
}

#[test]
fn diagram_writes_only_the_marked_readme_block() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let readme = dir.path().join("README.md");
    let before = "# Title\n\nintro\n\n## The state machine\n\n<!-- state-machine-diagram:start -->\nold\n<!-- state-machine-diagram:end -->\n\ntail\n";
    std::fs::write(&readme, before)?;
    let (code, _, stderr) = labflow(&["diagram", "--readme", path_arg(&readme), "--check-readme"])?;
    assert_eq!(code, 1, "stale diagram must be reported: {stderr}");
    let (code, _, stderr) = labflow(&["diagram", "--readme", path_arg(&readme), "--write-readme"])?;
    assert_eq!(code, 0, "{stderr}");
    let after = std::fs::read_to_string(&readme)?;
    assert!(after.starts_with("# Title\n\nintro\n\n## The state machine\n\n<!-- state-machine-diagram:start -->\n```mermaid\nflowchart TD\n"), "{after}");
    assert!(
        after.ends_with("```\n<!-- state-machine-diagram:end -->\n\ntail\n"),
        "{after}"
    );
    assert!(!after.contains("\nold\n"), "{after}");
    let (code, _, stderr) = labflow(&["diagram", "--readme", path_arg(&readme), "--check-readme"])?;
    assert_eq!(code, 0, "{stderr}");

    std::fs::write(&readme, "# no markers\n")?;
    let (code, _, stderr) = labflow(&["diagram", "--readme", path_arg(&readme), "--write-readme"])?;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    Ok(())
}

#[test]
fn readme_diagram_is_up_to_date() -> Result<()> {
    let (code, _, stderr) = labflow(&["diagram", "--check-readme"])?;
    assert_eq!(code, 0, "{stderr}");
    Ok(())
}

#[test]
fn lint_of_an_environment_config_reports_errors_and_warnings() -> Result<()> {
    let example = repo().join("examples/environments/lab.json");
    // As committed: the Flux pin is the placeholder, refused with how to fix it.
    let (code, stdout, stderr) = labflow(&["lint", "--config", path_arg(&example)])?;
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains("lab.json: environment \"lab\" config is invalid")
            || stdout.contains("lab.json: flux.manifestSha256: all zeros is a placeholder"),
        "{stdout}"
    );
    assert!(stdout.contains("labflow flux pin"), "{stdout}");
    assert!(
        stdout.contains("configs: 1 checked, 1 error(s), 0 warning(s)"),
        "{stdout}"
    );

    // Pinned, on a version in EKS extended support today: a warning, exit 0.
    let today = chrono::Utc::now().date_naive();
    let extended = labflow_core::versions::EKS_VERSIONS
        .iter()
        .map(|v| v.minor)
        .filter(|minor| *minor >= labflow_core::config::MIN_KUBERNETES_MINOR)
        .find(|minor| {
            matches!(
                labflow_core::versions::eks_support(*minor, today),
                labflow_core::versions::EksSupport::Extended { .. }
            )
        })
        .context("no version of the EKS table is in extended support today: update the table")?;
    let dir = tempfile::tempdir()?;
    let pinned = dir.path().join("lab.json");
    let mut config = labflow_testkit::config::example_config();
    config["cluster"]["version"] = serde_json::json!(format!("1.{extended}"));
    std::fs::write(&pinned, serde_json::to_string_pretty(&config)?)?;
    let (code, stdout, stderr) = labflow(&["lint", "--config", path_arg(&pinned)])?;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains(&format!(
            "warning: cluster.version: 1.{extended} is in EKS extended support"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("0 error(s), 1 warning(s)"), "{stdout}");
    Ok(())
}
