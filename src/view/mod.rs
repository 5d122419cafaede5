//! The views of a [`crate::report::RoundReport`]: the `kubectl logs` table (`log`) and the
//! Prometheus text (`metrics`). `/status.json` and `--once --output json` are its serde form.

pub mod log;
pub mod metrics;
