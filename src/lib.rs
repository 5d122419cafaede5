//! k8s-network-test-daemonset: an agent that runs on every node of a Kubernetes cluster and
//! checks that the cluster network works (ICMP to every peer pod and node, cluster DNS).
//!
//! `main.rs` only calls [`run`]; everything lives in these modules, so tests reach the logic
//! without the command line. Where things are:
//!
//! - `cmd`: the entry points: `run` (logging, subcommand dispatch, exit codes), the agent
//!   (`cmd::agent`: start-up, the round loop, `--once`) and `ping` (`cmd::ping`).
//! - `cli`, `config`, `duration`: flags and their environment twins, typed settings.
//! - `kube`: the API client and the conversion of API objects into a `Snapshot`.
//! - `kind`: the check kinds and what the views know about each (one table); `reason`: why
//!   a check failed or was skipped (a fixed set).
//! - `plan` (pure): what a round checks and how (`mesh`: which peers, when each target is
//!   checked by only some agents); `round`: running it, one executor per probe family;
//!   `report`: the `RoundReport` and its checks (passed, failed or skipped); `schedule`:
//!   when rounds start.
//! - `icmp`, `dns`: the probes. `view`: the log table (or JSON lines) and the Prometheus
//!   text, views of a `RoundReport`; `http`: the bounded server of the endpoints.
//! - `summary`: the compact per-agent summary peers read; `matrix`: the whole-cluster
//!   matrix built from them while someone looks (page, JSON, the `matrix` command).

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

pub mod alarms;
mod cli;
mod cmd;
mod config;
pub mod dns;
mod duration;
#[doc(hidden)]
pub mod fuzz_targets;
mod hash;
pub mod http;
pub mod icmp;
mod kind;
pub mod kube;
pub mod loss;
pub mod matrix;
pub mod mesh;
pub mod mtu;
mod named;
pub mod plan;
mod reason;
pub mod report;
pub mod round;
pub mod schedule;
pub mod summary;
pub mod tcp;
pub mod timefmt;
pub mod view;

pub use cmd::run;
