//! The Terraform root module as parsed HCL: its files, blocks, locals and variable defaults.

use std::path::{Path, PathBuf};

use hcl::{Block, BlockLabel, Body, Expression};

use crate::{read, InfraError};

/// One parsed `.tf` file.
#[derive(Debug)]
pub struct File {
    pub path: PathBuf,
    pub body: Body,
}

/// All `.tf` files of a directory (not recursive: a root module is one directory).
#[derive(Debug)]
pub struct Module {
    pub dir: PathBuf,
    pub files: Vec<File>,
}

impl Module {
    pub fn load(dir: &Path) -> Result<Self, InfraError> {
        let entries = std::fs::read_dir(dir).map_err(|source| InfraError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "tf"))
            .collect();
        paths.sort();
        let mut files = Vec::new();
        for path in paths {
            let text = read(&path)?;
            let body = hcl::parse(&text).map_err(|err| InfraError::Hcl {
                path: path.display().to_string(),
                message: err.to_string(),
            })?;
            files.push(File { path, body });
        }
        if files.is_empty() {
            return Err(InfraError::Invalid(format!(
                "no .tf files in {}",
                dir.display()
            )));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            files,
        })
    }

    /// Every top-level block of a kind (`resource`, `data`, `locals`, `variable`, ...).
    pub fn blocks<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
        self.files
            .iter()
            .flat_map(|file| file.body.blocks())
            .filter(move |block| block.identifier() == kind)
    }

    /// `resource "<ty>" "<name>"` or `data "<ty>" "<name>"`.
    pub fn labelled(&self, kind: &str, ty: &str, name: &str) -> Result<&Block, InfraError> {
        self.files
            .iter()
            .flat_map(|file| file.body.blocks())
            .filter(|block| block.identifier() == kind)
            .find(|block| labels(block) == [ty, name])
            .ok_or_else(|| InfraError::Invalid(format!("no {kind} \"{ty}\" \"{name}\"")))
    }

    /// Every `resource` block of a type, with its name.
    pub fn resources_of<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = (String, &'a Block)> {
        self.blocks("resource").filter_map(move |block| {
            let l = labels(block);
            (l.len() == 2 && l[0] == ty).then(|| (l[1].clone(), block))
        })
    }

    /// The expression of `local.<name>`; defined exactly once across the module.
    pub fn local(&self, name: &str) -> Result<&Expression, InfraError> {
        let mut found = self
            .blocks("locals")
            .flat_map(|block| block.body().attributes())
            .filter(|attr| attr.key() == name)
            .map(|attr| attr.expr());
        let first = found
            .next()
            .ok_or_else(|| InfraError::Invalid(format!("local.{name} is not defined")))?;
        if found.next().is_some() {
            return Err(InfraError::Invalid(format!(
                "local.{name} is defined more than once"
            )));
        }
        Ok(first)
    }

    /// The `default` of `variable "<name>"`.
    pub fn variable_default(&self, name: &str) -> Result<&Expression, InfraError> {
        let block = self
            .blocks("variable")
            .find(|block| labels(block) == [name])
            .ok_or_else(|| InfraError::Invalid(format!("variable \"{name}\" is not declared")))?;
        attribute(block.body(), "default")
            .ok_or_else(|| InfraError::Invalid(format!("variable \"{name}\" has no default")))
    }
}

/// A block's labels as strings.
pub fn labels(block: &Block) -> Vec<String> {
    block
        .labels()
        .iter()
        .map(|label| match label {
            BlockLabel::String(s) => s.clone(),
            BlockLabel::Identifier(id) => id.to_string(),
        })
        .collect()
}

/// The expression of an attribute in a body.
pub fn attribute<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes()
        .find(|attr| attr.key() == key)
        .map(|attr| attr.expr())
}

/// Nested blocks of a body with an identifier (e.g. `statement`, `dynamic`).
pub fn nested<'a>(body: &'a Body, identifier: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
    body.blocks()
        .filter(move |block| block.identifier() == identifier)
}
