//! The `labflow` command's library half: each subcommand lives in its own module so tests can call
//! it without spawning the binary.

pub mod diagram;
pub mod flux_pin;
pub mod gitops;
pub mod lint;
pub mod local;
pub mod remote;
pub mod states;
