//! The views of a [`crate::report::RoundReport`]: the `kubectl logs` table (`log`), or JSON
//! lines for log pipelines (`json_log`), and the Prometheus text (`metrics`). `/status.json`
//! and `--once --output json` are its serde form; `/summary.json` is `crate::summary`.

pub mod json_log;
pub mod log;
pub mod metrics;
