//! k8s-network-test-daemonset: an agent that runs on every node of a Kubernetes cluster and
//! checks that the cluster network works (ICMP to every peer pod and node, cluster DNS).
//!
//! The binary in `main.rs` is a thin shell; everything it does lives in these modules so that
//! tests reach the logic without going through the command line.

pub mod agent;
pub mod app;
pub mod cli;
pub mod config;
pub mod dns;
pub mod duration;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod icmp;
pub mod kube;
pub mod metrics;
pub mod plan;
pub mod report;
pub mod round;
pub mod server;
pub mod table;
pub mod timefmt;
