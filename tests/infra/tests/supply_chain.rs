//! Python tools come from PyPI pinned by hash (issue 26 item 11): every requirements-*.txt the
//! Makefile and scripts install is a lock in which each package has an exact version and at
//! least one sha256, so pip's hash-checking mode refuses a file that changed on PyPI; each
//! lock pins what its requirements-*.in asks for.

use std::collections::BTreeMap;

use anyhow::{ensure, Context, Result};
use labflow_infra_tests::repo;

/// `name -> (version, hashes)` of a lock, and its problems.
fn parse_lock(text: &str) -> (BTreeMap<String, (String, usize)>, Vec<String>) {
    let mut packages = BTreeMap::new();
    let mut problems = Vec::new();
    // Continuation lines (`\`) belong to the requirement above them.
    let joined = text.replace("\\\n", " ");
    for line in joined.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('-') {
            problems.push(format!(
                "option line {line:?} (only requirements belong in a lock)"
            ));
            continue;
        }
        let requirement = line.split_whitespace().next().unwrap_or_default();
        let Some((name, version)) = requirement.split_once("==") else {
            problems.push(format!("{requirement:?} is not pinned with =="));
            continue;
        };
        let hashes = line.matches("--hash=sha256:").count();
        if hashes == 0 {
            problems.push(format!("{requirement} has no sha256 hash"));
        }
        packages.insert(name.to_ascii_lowercase(), (version.to_string(), hashes));
    }
    (packages, problems)
}

#[test]
fn every_python_requirement_is_pinned_by_hash() -> Result<()> {
    let root = repo::root();
    let mut checked = 0;
    for name in ["dev", "checkov", "infra"] {
        let lock = root.join(format!("requirements-{name}.txt"));
        let text = std::fs::read_to_string(&lock)
            .with_context(|| format!("reading {}", lock.display()))?;
        let (packages, problems) = parse_lock(&text);
        ensure!(
            problems.is_empty(),
            "{}: {}",
            lock.display(),
            problems.join("; ")
        );
        let source = root.join(format!("requirements-{name}.in"));
        let wanted = std::fs::read_to_string(&source)
            .with_context(|| format!("reading {}", source.display()))?;
        for line in wanted.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (package, version) = line
                .split_once("==")
                .with_context(|| format!("{}: {line:?} is not pinned", source.display()))?;
            let package = package
                .split('[')
                .next()
                .unwrap_or(package)
                .to_ascii_lowercase();
            let locked = packages.get(&package).map(|(v, _)| v.as_str());
            ensure!(
                locked == Some(version),
                "{} asks for {package}=={version}, {} has {locked:?}: run `make lock`",
                source.display(),
                lock.display()
            );
        }
        checked += packages.len();
    }
    ensure!(checked > 50, "only {checked} packages in the locks");
    Ok(())
}

#[test]
fn an_unhashed_or_unpinned_requirement_is_found() {
    let (_, problems) = parse_lock(
        "a==1.0 \\\n    --hash=sha256:00\nb==2.0\nc>=3\n--index-url https://example.invalid\n",
    );
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("b==2.0"));
    assert!(problems[1].contains("\"c>=3\""));
    assert!(problems[2].contains("option line"));
}
