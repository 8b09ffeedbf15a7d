//! Where things are in the repository.

use std::path::PathBuf;

/// The repository root (this crate lives at tests/infra). Read when the tests run (cargo sets
/// CARGO_MANIFEST_DIR for them), not when this library was compiled: a target directory shared
/// by two checkouts (CI's clone and the working copy) may hand one of them a build of this
/// library made in the other, which would then check the other checkout's Terraform.
pub fn root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir.join("../..")
}

pub fn terraform_dir() -> PathBuf {
    root().join("infra/terraform")
}

pub fn functions_dir() -> PathBuf {
    root().join("functions")
}

pub fn state_machine_file() -> PathBuf {
    root().join("state-machine/lifecycle.asl.json")
}

pub fn package_script() -> PathBuf {
    root().join("scripts/package.sh")
}

/// Lexically normalise `a/b/../c` to `a/c` (the paths compared may not exist yet, e.g. dist/).
pub fn normalize(path: &std::path::Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}
