//! Test support used by more than one labflow crate. A dev-dependency only: never linked into a
//! Lambda, and it depends on no labflow crate but the testbed (which depends on none), so any
//! crate's tests may use it.

pub mod aws;
pub mod config;
pub mod eks;
pub mod wait;
