//! Reading what an agent publishes, however the test reaches it (the namespace lab, Docker
//! containers): its last round from `/status.json`, waiting for a round that started after a
//! mark, the failed checks of a round, and a metric's value in a scrape.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http::Response;

/// The round in a `/status.json` answer; `None` before the first round (503) or on any
/// connection problem.
pub fn from_response(response: Result<Response, String>) -> Option<Value> {
    let r = response.ok()?;
    if r.status != 200 {
        return None;
    }
    serde_json::from_str(&r.body).ok()
}

/// Polls `status` until it gives a round that started after `after` (RFC 3339 as the agent
/// writes it, which sorts as text), for at most `timeout`; then fails naming `who` and with
/// `explain()` (e.g. the agent's log).
pub fn round_after(
    who: &str,
    after: &str,
    timeout: Duration,
    mut status: impl FnMut() -> Option<Value>,
    explain: impl FnOnce() -> String,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = status() {
            if s["started_at"].as_str().is_some_and(|t| t > after) {
                return s;
            }
        }
        if Instant::now() >= deadline {
            panic!(
                "{who} published no round after {after} within {timeout:?}; {}",
                explain()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `"<kind> <target>"` of every failed check in a round's JSON (`/status.json`). Empty also
/// for a round without checks: assert the number of checks beside it ([`checks`]).
pub fn failed_checks(round: &Value) -> BTreeSet<String> {
    checks(round)
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| {
            format!(
                "{} {}",
                c["kind"].as_str().unwrap_or("?"),
                c["target"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// The checks of a round's JSON (none when it has no `checks` array).
pub fn checks(round: &Value) -> &[Value] {
    round["checks"].as_array().map_or(&[], Vec::as_slice)
}

/// The sum of every sample of `metric` (any labels) in Prometheus text; `None` when the
/// scrape has no sample of it.
pub fn metric_sum(scrape: &str, metric: &str) -> Option<f64> {
    let mut sum = None;
    for line in scrape.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(metric) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue; // another metric whose name starts with this one
        }
        let value = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if let Some(v) = value {
            *sum.get_or_insert(0.0) += v;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sum_adds_every_labelled_sample_of_that_name_only() {
        let text = "# HELP a_total x\n# TYPE a_total counter\n\
                    a_total{reason=\"connect\"} 3\na_total{reason=\"timeout\"} 2\n\
                    a_total_more 7\nb 1\n";
        assert_eq!(metric_sum(text, "a_total"), Some(5.0));
        assert_eq!(metric_sum(text, "b"), Some(1.0));
        assert_eq!(metric_sum(text, "c"), None);
    }

    #[test]
    fn failed_checks_and_checks_of_a_round() {
        let round = serde_json::json!({"checks": [
            {"kind": "pod-ping", "target": "p", "ok": false},
            {"kind": "host-ping", "target": "n", "ok": true},
        ]});
        assert_eq!(checks(&round).len(), 2);
        assert_eq!(
            failed_checks(&round),
            BTreeSet::from(["pod-ping p".to_string()])
        );
        assert!(checks(&serde_json::json!({})).is_empty());
    }
}
