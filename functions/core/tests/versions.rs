//! One Flux version everywhere: the version the examples and the defaults configure must be the
//! release whose controllers ship the CRD schemas the GitOps lint, kubesim and the test bed's
//! simulated release validate against (the pins of `scripts/fetch-crds.sh`, and of
//! `../shared/crds/SOURCES.md` where that folder exists).

use std::collections::BTreeMap;
use std::path::PathBuf;

use labflow_core::versions::{self, FLUX_VERSION};
use serde_json::Value;

const EXAMPLE: &str = include_str!("../../../examples/environments/lab.json");
const EXAMPLE_TFVARS: &str = include_str!("../../../infra/terraform/example.tfvars");
const FETCH_CRDS: &str = include_str!("../../../scripts/fetch-crds.sh");

const FLUX_CONTROLLERS: [&str; 4] = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
];

/// Pinned CRDs that are older than the controller release the Flux version installs, where the
/// schemas were checked to be the same: `(controller, pinned tag, shipped tag)`.
///
/// source-controller: the pins (SOURCES.md) take its CRDs from v1.9.1, while Flux 2.9.4 installs
/// v1.9.4 (no flux2 release installs source-controller v1.9.1 together with kustomize-controller
/// v1.9.4, helm-controller v1.6.3 and notification-controller v1.9.3). In fluxcd/source-controller,
/// `git diff v1.9.1 release/v1.9.x -- config/crd/bases api` (branch at c4adb7f9) changes only
/// metadata: each CRD gains the annotation `kustomize.toolkit.fluxcd.io/substitute: disabled`
/// (commit 5702b62f "Disable variable substition in CRDs"); no schema field changed. Re-pin the
/// CRDs from v1.9.4 when the shared set is refreshed, and drop this entry (the test then says so).
const KNOWN_SCHEMA_EQUIVALENT_DRIFT: &[(&str, &str, &str)] =
    &[("source-controller", "v1.9.1", "v1.9.4")];

/// `controller → tag` of the Flux CRD pins in `text`, rows `name|fluxcd/<controller>|<tag>|...`
/// (fetch-crds.sh) or `| fluxcd/<controller> | <tag> | ...` (SOURCES.md).
fn pinned_tags(text: &str, separator: char) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('"')
            .split(separator)
            .map(str::trim)
            .collect();
        let Some(at) = cells.iter().position(|c| c.starts_with("fluxcd/")) else {
            continue;
        };
        let (Some(repo), Some(tag)) = (cells.get(at), cells.get(at + 1)) else {
            continue;
        };
        let controller = repo.trim_start_matches("fluxcd/").to_string();
        let tags = out.entry(controller).or_default();
        if !tags.contains(&tag.to_string()) {
            tags.push(tag.to_string());
        }
    }
    out
}

/// Compare the controllers `flux_version` installs with `pins`; every mismatch as a sentence.
fn mismatches(
    flux_version: &str,
    origin: &str,
    pins: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    let Some(release) = versions::flux_release(flux_version) else {
        return vec![format!(
            "{origin}: Flux {flux_version} is not in labflow_core::versions::FLUX_RELEASES (the \
             CRDs the lint uses are Flux {FLUX_VERSION}'s)"
        )];
    };
    let mut out = Vec::new();
    for controller in FLUX_CONTROLLERS {
        let shipped = release.controller(controller).unwrap_or("?");
        match pins.get(controller).map(Vec::as_slice) {
            Some([pinned]) if pinned == shipped => {}
            Some([pinned])
                if KNOWN_SCHEMA_EQUIVALENT_DRIFT.contains(&(controller, pinned, shipped)) => {}
            Some(tags) => out.push(format!(
                "{origin}: Flux {flux_version} installs {controller} {shipped}, the lint's CRDs are \
                 pinned from {tags:?}"
            )),
            None => out.push(format!("{origin}: no CRD pin for {controller}")),
        }
    }
    out
}

/// The `version` in the `flux = { ... }` block of a tfvars file.
fn tfvars_flux_version(text: &str) -> Option<String> {
    let block = &text[text.find("flux = {")?..];
    block.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "version").then(|| value.trim().trim_matches('"').to_string())
    })
}

fn configured_flux_versions() -> Vec<(String, String)> {
    let example: Value = serde_json::from_str(EXAMPLE).expect("lab.json is JSON");
    let mut out = vec![(
        "labflow_core::versions::FLUX_VERSION".into(),
        FLUX_VERSION.into(),
    )];
    out.push((
        "examples/environments/lab.json".into(),
        example["flux"]["version"]
            .as_str()
            .unwrap_or("(none)")
            .into(),
    ));
    out.push((
        "infra/terraform/example.tfvars".into(),
        tfvars_flux_version(EXAMPLE_TFVARS).unwrap_or_else(|| "(none)".into()),
    ));
    out
}

#[test]
fn configured_flux_version_installs_the_crds_the_lint_validates_against() {
    let pins = pinned_tags(FETCH_CRDS, '|');
    let mut problems = Vec::new();
    for (origin, version) in configured_flux_versions() {
        problems.extend(mismatches(&version, &origin, &pins));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_pins_agree_with_shared_sources_md_where_it_exists() {
    let shared = std::env::var_os("LABFLOW_SHARED_CRDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/crds"));
    let Ok(sources) = std::fs::read_to_string(shared.join("SOURCES.md")) else {
        eprintln!("no {}: checked fetch-crds.sh only", shared.display());
        return;
    };
    let shared_pins = pinned_tags(&sources, '|');
    let script_pins = pinned_tags(FETCH_CRDS, '|');
    for controller in FLUX_CONTROLLERS {
        assert_eq!(
            shared_pins.get(controller),
            script_pins.get(controller),
            "{controller}: SOURCES.md and fetch-crds.sh pin different tags"
        );
    }
    assert!(mismatches(FLUX_VERSION, "SOURCES.md", &shared_pins).is_empty());
}

#[test]
fn every_schema_equivalent_drift_still_applies() {
    let pins = pinned_tags(FETCH_CRDS, '|');
    let release = versions::flux_release(FLUX_VERSION).expect("the default is in the table");
    for (controller, pinned, shipped) in KNOWN_SCHEMA_EQUIVALENT_DRIFT {
        assert_eq!(
            release.controller(controller),
            Some(*shipped),
            "{controller}: Flux {FLUX_VERSION} no longer installs {shipped}: drop the entry"
        );
        assert_eq!(
            pins.get(*controller).map(Vec::as_slice),
            Some([pinned.to_string()].as_slice()),
            "{controller}: the CRDs are no longer pinned from {pinned}: drop the entry"
        );
    }
}

#[test]
fn the_table_knows_where_each_release_comes_from() {
    let release = versions::flux_release("2.9.4").expect("2.9.4");
    assert_eq!(release.controller("helm-controller"), Some("v1.6.3"));
    assert_eq!(versions::flux_release("2.7.3"), None);
    assert_eq!(
        versions::flux_manifest_url("2.9.4"),
        "https://github.com/fluxcd/flux2/releases/download/v2.9.4/install.yaml"
    );
}

#[test]
fn the_example_manifest_url_names_the_configured_version() {
    let example: Value = serde_json::from_str(EXAMPLE).expect("lab.json is JSON");
    let version = example["flux"]["version"].as_str().unwrap_or_default();
    assert_eq!(
        example["flux"]["manifestUrl"].as_str(),
        Some(versions::flux_manifest_url(version).as_str())
    );
}
