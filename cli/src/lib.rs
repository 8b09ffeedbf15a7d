//! The `labflow` command's library half: each subcommand lives in its own module so tests can call
//! it without spawning the binary.

pub mod gitops;
pub mod local;
pub mod states;
