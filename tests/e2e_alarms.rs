//! End to end in the namespace lab, for what issue 13 adds beside the main scenarios
//! (tests/e2e.rs): a dual-stack cluster, healthy and then with IPv6 broken at one node. The
//! real agent binary runs in every agent pod against the API stand-in, with dnsmasq DNS
//! instances answering on both families and a real Prometheus. Needs root; in CI it must run.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use cluster_box::lab::{Lab, Options, FAST_ROUNDS};
use cluster_box::status::checks;
use cluster_box::{need_root, Spec};
use common::now;
use serde_json::Value;

const AGENT: &str = env!("CARGO_BIN_EXE_k8s-network-test-daemonset");
const ROUND_WAIT: Duration = Duration::from_secs(45);
const N: usize = 4;

/// `(kind, target, address)` of a round's failed checks.
fn failed(round: &Value) -> BTreeSet<(String, String, String)> {
    checks(round)
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or("?").to_string();
            (s("kind"), s("target"), s("address"))
        })
        .collect()
}

/// `(kind, target, address)` of a round's checks that `pick` chooses.
fn of(round: &Value, pick: impl Fn(&Value) -> bool) -> BTreeSet<(String, String, String)> {
    checks(round)
        .iter()
        .filter(|c| pick(c))
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or("?").to_string();
            (s("kind"), s("target"), s("address"))
        })
        .collect()
}

/// Agent `i`'s first round after `after` that made `want` checks (the IPv6 host IPs come
/// from full Node GETs shortly after the first list).
fn full_round(lab: &Lab, i: usize, after: &str, want: usize) -> Value {
    let mut since = after.to_string();
    for _ in 0..20 {
        let r = lab.round_after(i, &since, ROUND_WAIT);
        if checks(&r).len() == want {
            return r;
        }
        since = r["started_at"].as_str().unwrap().to_string();
    }
    panic!("agent {i} never made the {want} checks of a dual-stack round");
}

#[test]
fn e2e_dual_stack() {
    if !need_root("e2e_dual_stack") {
        return;
    }
    let lab = Lab::start(Options {
        spec: Spec {
            dual_stack: true,
            ..Spec::default()
        },
        binary: AGENT.into(),
        agent_args: FAST_ROUNDS.map(String::from).to_vec(),
        prometheus: true,
    });
    let objects = cluster_box::lab::api_objects(&lab.cluster, &BTreeSet::new());
    let planned = common::planned_checks(&objects, &lab.cluster.spec.domain)
        .checks
        .len();
    // 2 families x (4 host pings + 4 pod pings) + 2 lookups + 2 service reverse + 4
    // instances x (reverse + query).
    assert_eq!(planned, 2 * (N + N) + 2 + 2 + 4 * 2);

    // Healthy: every check of both families passes, JSON says which family each is.
    let t = now();
    let healthy: Vec<Value> = (0..N).map(|i| full_round(&lab, i, &t, planned)).collect();
    for r in &healthy {
        assert_eq!(failed(r), BTreeSet::new(), "agent on {}", r["node"]);
        for c in checks(r) {
            let address = c["address"].as_str().unwrap();
            let want = match address.parse::<std::net::IpAddr>() {
                Ok(a) if a.is_ipv4() => Value::from("ipv4"),
                Ok(_) => Value::from("ipv6"),
                Err(_) => Value::Null,
            };
            assert_eq!(c["family"], want, "{c}");
        }
        let v6 = of(r, |c| c["family"] == "ipv6");
        for kind in ["host-ping", "pod-ping", "dns-instance", "dns-reverse"] {
            assert!(v6.iter().any(|(k, ..)| k == kind), "no IPv6 {kind}: {r}");
        }
    }
    let p = lab.prometheus.as_ref().unwrap();
    let got = p.wait_for(common::EXPECTED_CHECKS, Duration::from_secs(30), |v| {
        v == Some(0.0)
    });
    assert_eq!(
        got,
        Some(0.0),
        "README's expected-checks expression, dual stack"
    );
    let v6_checks = p.wait_for(
        "sum(networktest_last_round_checks{family=\"ipv6\"})",
        Duration::from_secs(30),
        |v| v == Some((N * (2 * N + 4 + 1)) as f64),
    );
    // Per agent: 4 host + 4 pod pings, 2 instances x 2, the service's reverse lookup.
    assert_eq!(v6_checks, Some((N * (2 * N + 4 + 1)) as f64));
    let table = lab.agent_output(1);
    assert!(
        table.contains("Checking: node-3 198.18.1.13,2001:db8:1::13 Running - k8s-network-test-daemonset-3 198.19.3.10,2001:db8:19:3::10;"),
        "{table}"
    );

    // IPv6 blocked at node 3 (it hosts no DNS instance): the other agents fail exactly node
    // 3's IPv6 host and pod pings; node 3's agent fails every IPv6 ping leaving its pod and
    // its IPv6 DNS queries; no IPv4 check fails anywhere.
    lab.cluster.set_ipv6_blocked(3, true);
    let t = now();
    let node3_v6: BTreeSet<(String, String, String)> = [
        ("host-ping", "node-3", "2001:db8:1::13"),
        (
            "pod-ping",
            "k8s-network-test-daemonset-3",
            "2001:db8:19:3::10",
        ),
    ]
    .iter()
    .map(|(k, t, a)| (k.to_string(), t.to_string(), a.to_string()))
    .collect();
    for i in 0..N {
        // The first round after the fault may have started before it: take the next.
        let first = lab.round_after(i, &t, ROUND_WAIT);
        let r = lab.round_after(i, first["started_at"].as_str().unwrap(), ROUND_WAIT);
        assert_eq!(checks(&r).len(), planned, "agent {i}: as many checks");
        let want = if i == 3 {
            of(&r, |c| {
                c["family"] == "ipv6"
                    && matches!(
                        c["kind"].as_str(),
                        Some("host-ping" | "pod-ping" | "dns-instance")
                    )
                    && c["address"] != "2001:db8:19:3::10"
            })
        } else {
            node3_v6.clone()
        };
        assert_eq!(failed(&r), want, "agent {i}: {r}");
        assert!(of(&r, |c| c["ok"] == false && c["family"] != "ipv6").is_empty());
    }
    let table = lab.agent_output(0);
    assert!(
        table.contains(
            "FAIL (host-ping ipv6: no reply within 500ms; pod-ping ipv6: no reply within 500ms)"
        ),
        "{table}"
    );
    lab.cluster.set_ipv6_blocked(3, false);
    let t = now();
    for i in 0..N {
        let mut since = t.clone();
        let mut clean = false;
        for _ in 0..15 {
            let r = lab.round_after(i, &since, ROUND_WAIT);
            since = r["started_at"].as_str().unwrap().to_string();
            if failed(&r).is_empty() {
                clean = true;
                break;
            }
        }
        assert!(clean, "agent {i} never clean again");
    }
}
