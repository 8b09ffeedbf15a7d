//! Where things are in the repository.

use std::path::PathBuf;

/// The repository root (this crate lives at tests/infra).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
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
