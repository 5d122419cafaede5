//! k8s-network-test-daemonset: an agent that runs on every node of a Kubernetes cluster and
//! checks that the cluster network works (ICMP to every peer pod and node, cluster DNS).
//!
//! The binary in `main.rs` is a thin shell; everything it does lives in these modules so that
//! tests reach the logic without going through the command line.

// Nothing that arrives from the network, the API or a file may panic the agent: no unwrap,
// expect, panic or unchecked indexing outside tests (clippy enforces it in `make lint`).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod agent;
pub mod app;
pub mod cli;
pub mod config;
pub mod dns;
pub mod duration;
pub mod http;
pub mod icmp;
pub mod kube;
pub mod metrics;
pub mod plan;
pub mod report;
pub mod round;
pub mod table;
pub mod timefmt;
