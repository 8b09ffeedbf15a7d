//! Reading a local git checkout at one commit through the `git` CLI, so what the simulated Flux
//! applies is exactly that commit's content, never the working tree.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("running git in {0}: {1}")]
    Spawn(String, std::io::Error),
    #[error("git {args} in {dir}: {stderr}")]
    Failed {
        args: String,
        dir: String,
        stderr: String,
    },
}

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, GitError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| GitError::Spawn(dir.display().to_string(), e))?;
    if !out.status.success() {
        return Err(GitError::Failed {
            args: args.join(" "),
            dir: dir.display().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

/// The commit a ref (branch, tag, commit) points at.
pub fn rev_parse(dir: &Path, reference: &str) -> Result<String, GitError> {
    let spec = format!("{reference}^{{commit}}");
    let out = git(dir, &["rev-parse", "--verify", "--quiet", &spec])?;
    Ok(String::from_utf8_lossy(&out).trim().to_string())
}

/// Immutable reads of commits, cached (a commit's content never changes).
#[derive(Clone, Default)]
pub struct Snapshots {
    trees: Arc<Mutex<HashMap<TreeKey, Arc<BTreeSet<String>>>>>,
    blobs: Arc<Mutex<HashMap<BlobKey, Arc<String>>>>,
}

/// (repository dir, commit sha)
type TreeKey = (PathBuf, String);
/// (repository dir, commit sha, file path)
type BlobKey = (PathBuf, String, String);

impl Snapshots {
    /// Every file path of the commit.
    pub fn files(&self, dir: &Path, sha: &str) -> Result<Arc<BTreeSet<String>>, GitError> {
        let key = (dir.to_path_buf(), sha.to_string());
        if let Some(t) = self
            .trees
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(t.clone());
        }
        let out = git(dir, &["ls-tree", "-r", "-z", "--name-only", sha])?;
        let files: BTreeSet<String> = out
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).to_string())
            .collect();
        let files = Arc::new(files);
        self.trees
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, files.clone());
        Ok(files)
    }

    /// One file's content at the commit.
    pub fn read(&self, dir: &Path, sha: &str, path: &str) -> Result<Arc<String>, GitError> {
        let key = (dir.to_path_buf(), sha.to_string(), path.to_string());
        if let Some(b) = self
            .blobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(b.clone());
        }
        let out = git(dir, &["show", &format!("{sha}:{path}")])?;
        let text = Arc::new(String::from_utf8_lossy(&out).to_string());
        self.blobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, text.clone());
        Ok(text)
    }
}
