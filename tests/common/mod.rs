//! Support shared by the agent's integration tests (each test binary includes this module and
//! uses part of it). Namespaces, addresses and the lab live in the `cluster-box` crate,
//! re-exported here; what needs the agent crate itself (its time format, its report types)
//! lives here, because `cluster-box` cannot depend on the agent.
#![allow(dead_code, unused_imports)]

pub mod rounds;
pub mod scenarios;
pub mod synthetic;

pub use cluster_box::netns::*;
pub use cluster_box::{ip, ips};

use k8s_network_test_daemonset::report::{Check, CheckKind, Reason, RoundReport};

/// The README's expected-checks expression, with the agents standing in for kube_node_info
/// (which needs kube-state-metrics): 0 on a healthy cluster, single or dual stack.
pub const EXPECTED_CHECKS: &str = "4 * count(networktest_agent_info) ^ 2 \
    * count(count by (family) (networktest_last_round_checks{kind=\"host-ping\"} > 0)) \
    + count(networktest_agent_info) * (3 \
    + max(sum by (instance) (networktest_last_round_checks{kind=~\"dns-reverse|dns-instance\"}))) \
    - (sum(networktest_last_round_checks) - sum(networktest_last_round_failed_checks))";

/// Now, as the agent writes `started_at`: the mark for [`cluster_box::lab::Lab::round_after`].
/// Take it once the fault under test is in place, so that the round after it sees the fault.
pub fn now() -> String {
    k8s_network_test_daemonset::timefmt::rfc3339(std::time::SystemTime::now())
}

/// A ping-like check with three requests: passed with `rtt`, or failed (timeout) without.
pub fn check(kind: CheckKind, node: &str, target: &str, addr: &str, rtt: Option<f64>) -> Check {
    let c = Check::failed(
        kind,
        node,
        target,
        addr,
        Reason::Timeout,
        "no reply within 1s",
    );
    let c = rtt.map_or(c.clone(), |r| c.passed(r));
    Check {
        sent: 3,
        received: if c.is_ok() { 3 } else { 0 },
        ..c
    }
}

/// A first round of agent `agent-0` on `node-0` with these checks (its error count from them).
pub fn round(checks: Vec<Check>) -> RoundReport {
    RoundReport {
        started_at: "2026-11-29T04:00:00Z".into(),
        duration_seconds: 0.01,
        ..RoundReport::new("node-0", "agent-0", checks)
    }
}

/// The checks a round plans for the API objects a test serves (`k8s_api_standin::Cluster`,
/// e.g. from `cluster_box::lab::api_objects`) in cluster `domain`, by the agent's own
/// conversion and plan: the checks a healthy round reports.
pub fn planned_checks(
    objects: &k8s_api_standin::Cluster,
    domain: &str,
) -> k8s_network_test_daemonset::plan::Plan {
    use k8s_network_test_daemonset::{kube, plan};
    use serde::de::DeserializeOwned;
    fn parse<T: DeserializeOwned>(objects: &[serde_json::Value]) -> Vec<T> {
        objects
            .iter()
            .map(|o| serde_json::from_value(o.clone()).expect("an API object the agent reads"))
            .collect()
    }
    let services: Vec<kube::Service> = parse(&objects.services);
    let snapshot = kube::snapshot_of(
        &parse(&objects.pods),
        &parse(&objects.nodes),
        services.first(),
        &parse(&objects.endpointslices),
    );
    // What a live agent plans: the full mesh, and its `api` check.
    plan::plan(&snapshot, domain).with_api("", &Ok(std::time::Duration::ZERO))
}

/// `promtool check metrics` accepts `scrape` without a word (it exits 3 on lint problems).
pub fn promtool_check(scrape: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian package prometheus)");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(scrape.as_bytes())
        .expect("write to promtool");
    drop(stdin);
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
