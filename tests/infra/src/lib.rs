//! Reads what the cross-checks compare: the Terraform root module (HCL), the function crates'
//! declared AWS operations (Rust source), the state machine's placeholders and the packaging
//! script. The checks themselves are in `tests/`.

pub mod asl;
pub mod functions;
pub mod hcl_expr;
pub mod iam_eval;
pub mod plan;
pub mod repo;
pub mod terraform;

/// Everything that can go wrong while reading the inputs.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("parsing HCL in {path}: {message}")]
    Hcl { path: String, message: String },
    #[error("parsing Rust in {path}: {message}")]
    Rust { path: String, message: String },
    #[error("{command} failed:\n{output}")]
    Terraform { command: String, output: String },
    #[error("{0}")]
    Invalid(String),
}

pub(crate) fn read(path: &std::path::Path) -> Result<String, InfraError> {
    std::fs::read_to_string(path).map_err(|source| InfraError::Io {
        path: path.display().to_string(),
        source,
    })
}
