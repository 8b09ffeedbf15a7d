//! labflow-testbed: everything labflow talks to, on loopback (DESIGN.md §6).
//!
//! This crate depends on nothing of labflow: it is the peer the code is tested against.

pub mod alb_front;
pub mod aws_leftovers;
pub mod aws_proxy;
pub mod controllers;
pub mod eks;
mod fault_plan;
pub mod faults;
pub mod gateway;
mod http1;
mod https;
pub mod kubesim;
pub mod moto;
pub mod network;
pub mod paths;
pub mod releases;
pub mod testbed;

pub use testbed::{ControllersFor, Testbed, TestbedError, TestbedOptions};
