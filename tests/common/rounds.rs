//! The rounds of every agent in the namespace lab, as the end-to-end tests read them.

use std::collections::BTreeSet;
use std::time::Duration;

use cluster_box::lab::Lab;
use cluster_box::status::{checks, failed_checks};
use serde_json::Value;

/// How long a test waits for an agent's next round: the lab's rounds are a couple of seconds
/// apart, but a loaded machine can be slow.
pub const ROUND_WAIT: Duration = Duration::from_secs(45);

/// Asserts a round's failed checks, explaining the round (errors included) when they differ,
/// and that it made `healthy_checks` checks, as a healthy round does (no failure is also what
/// a round without checks shows).
pub fn expect_failed(round: &Value, want: &BTreeSet<String>, healthy_checks: usize) {
    let got = failed_checks(round);
    if &got != want {
        let errors: Vec<String> = checks(round)
            .iter()
            .filter(|c| c["ok"] == false)
            .map(|c| format!("{} {}: {}", c["kind"], c["target"], c["error"]))
            .collect();
        panic!(
            "agent on {} (round at {}, api_error {}): failed {got:?}, want {want:?}; errors: {errors:#?}",
            round["node"], round["started_at"], round["api_error"]
        );
    }
    assert_eq!(
        checks(round).len(),
        healthy_checks,
        "agent on {} (round at {}): as many checks as a healthy round",
        round["node"],
        round["started_at"]
    );
}

/// The set of `"<kind> <target>"` strings, as [`failed_checks`] gives them.
pub fn set(items: &[String]) -> BTreeSet<String> {
    items.iter().cloned().collect()
}

/// Waits for every agent's first round that started after `after`.
pub fn next_rounds(lab: &Lab, after: &str) -> Vec<Value> {
    (0..lab.cluster.agents.len())
        .map(|i| lab.round_after(i, after, ROUND_WAIT))
        .collect()
}

/// The latest start among `rounds`: the mark for the rounds after them.
pub fn latest(rounds: &[Value]) -> String {
    rounds
        .iter()
        .map(|r| r["started_at"].as_str().unwrap().to_string())
        .max()
        .unwrap()
}
