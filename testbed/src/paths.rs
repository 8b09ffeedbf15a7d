//! Where the repo-local tools live (the Python venv, the CRD cache).

use std::path::{Path, PathBuf};

/// The repository root: the nearest ancestor of the current directory (or, failing that, of this
/// crate's source) that holds the workspace `Cargo.toml` next to a `testbed/` folder.
pub fn repo_root() -> Option<PathBuf> {
    let from_cwd = std::env::current_dir().ok();
    let from_crate = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf);
    [from_cwd, from_crate]
        .into_iter()
        .flatten()
        .find_map(|start| {
            start
                .ancestors()
                .find(|dir| dir.join("Cargo.toml").is_file() && dir.join("testbed").is_dir())
                .map(Path::to_path_buf)
        })
}

/// The Python venv that `make venv` creates: `$LABFLOW_VENV`, else `<repo>/.venv`.
pub fn venv_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LABFLOW_VENV") {
        return Some(PathBuf::from(dir));
    }
    repo_root().map(|root| root.join(".venv"))
}

/// The pinned, sha256-verified CRD cache that `make crds` fills: `$LABFLOW_CRD_CACHE`, else
/// `<repo>/.cache/crds`.
pub fn crd_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LABFLOW_CRD_CACHE") {
        return Some(PathBuf::from(dir));
    }
    repo_root().map(|root| root.join(".cache").join("crds"))
}
