//! labflow-core: what every step shares — the environment config, the error taxonomy, AWS clients,
//! the EKS token and the Kubernetes client (DESIGN.md §2-§5).

pub mod aws;
pub mod config;
pub mod contract;
pub mod eks_token;
pub mod error;
pub mod flux;
pub mod kube_client;
pub mod lambda;
pub mod logging;
pub mod ownership;
pub mod principal;
pub mod reader;
pub mod teardown_plan;
pub mod versions;

pub use error::StepError;
