//! Support shared by the agent's integration tests (each test binary includes this module and
//! uses part of it). Namespaces, addresses and the lab live in the `cluster-box` crate,
//! re-exported here; what needs the agent crate itself (its time format, its report types)
//! lives here, because `cluster-box` cannot depend on the agent.
#![allow(dead_code, unused_imports)]

pub use cluster_box::netns::*;
pub use cluster_box::{ip, ips};

use k8s_network_test_daemonset::report::{Check, CheckKind, Reason, RoundReport};

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
    let errors = checks.iter().filter(|c| c.is_failed()).count();
    serde_json::from_value(serde_json::json!({
        "node": "node-0", "pod": "agent-0", "started_at": "2026-11-29T04:00:00Z",
        "duration_seconds": 0.01, "errors": errors, "checks": checks, "changes": [],
        "first_round": true,
    }))
    .expect("a round report")
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
    plan::plan(&snapshot, domain)
}
