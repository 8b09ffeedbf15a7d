//! Test support used by more than one labflow crate. A dev-dependency only: never linked into a
//! Lambda, and (like the testbed) it depends on no labflow crate, so any crate's tests may use it.

pub mod config;
pub mod eks;
pub mod wait;
