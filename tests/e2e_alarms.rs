//! End to end in the namespace lab, for what issue 13 adds beside the main scenarios
//! (tests/e2e.rs): a dual-stack cluster, healthy and then with IPv6 broken at one node; then
//! the alarms not to raise: a node scaled down and unreachable (skipped), a node NotReady and
//! unreachable (failed, `node-not-ready`), an agent pod not Ready (`agent-not-ready`). The
//! real agent binary runs in every agent pod against the API stand-in, with dnsmasq DNS
//! instances answering on both families and a real Prometheus. Needs root; in CI it must run.
//! The scenarios share one lab and run in order, each leaving the cluster healthy.

mod common;

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use cluster_box::lab::{Lab, NodeShown, Options, Shown, FAST_ROUNDS};
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

/// The agents' start-up grace period in the lab: two rounds.
const GRACE: &str = "4s";

type Scenario = fn(&mut Lab, usize);

/// In order: each starts from the healthy cluster the one before left. (The IPv6 scenario
/// comes first: every agent then restarts, so no Node answer it kept a minute (`fates`)
/// reaches into the scenarios that read them.)
const SCENARIOS: [(&str, Scenario); 8] = [
    ("dual_stack_healthy", dual_stack_healthy),
    ("ipv6_blocked_at_one_node", ipv6_blocked_at_one_node),
    (
        "node_scaled_down_and_unreachable",
        node_scaled_down_and_unreachable,
    ),
    (
        "node_not_ready_and_unreachable",
        node_not_ready_and_unreachable,
    ),
    ("agent_not_ready", agent_not_ready),
    ("nodes_without_daemonset", nodes_without_daemonset),
    ("node_local_dns_cache", node_local_dns_cache),
    ("dns_service_missing", dns_service_missing),
];

fn agent_args() -> Vec<String> {
    let mut args: Vec<String> = FAST_ROUNDS.map(String::from).to_vec();
    args.extend(["--startup-grace".to_string(), GRACE.to_string()]);
    args
}

#[test]
fn e2e_alarms_scenarios() {
    if !need_root("e2e_alarms_scenarios") {
        return;
    }
    let mut lab = Lab::start(Options {
        spec: Spec {
            dual_stack: true,
            ..Spec::default()
        },
        binary: AGENT.into(),
        agent_args: agent_args(),
        prometheus: true,
    });
    let objects = cluster_box::lab::api_objects(&lab.cluster, &BTreeSet::new());
    let planned = common::planned_checks(&objects, &lab.cluster.spec.domain)
        .checks
        .len();
    // 2 families x 4 nodes x (host ping, pod ping, pod handshake, large pod echo) + the API
    // check + 2 lookups + 2 service reverse + 4 instances x (reverse + query).
    assert_eq!(planned, 2 * 4 * N + 1 + 2 + 2 + 4 * 2);
    common::scenarios::run(
        "e2e_alarms",
        Some("E2E_ALARMS"),
        &SCENARIOS,
        |scenario: Scenario| scenario(&mut lab, planned),
    );
}

/// Healthy: every check of both families passes, JSON says which family each is, the
/// README's expected-checks PromQL is 0.
fn dual_stack_healthy(lab: &mut Lab, planned: usize) {
    // Healthy: every check of both families passes, JSON says which family each is.
    let t = now();
    let healthy: Vec<Value> = (0..N).map(|i| full_round(lab, i, &t, planned)).collect();
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
        for kind in [
            "host-ping",
            "pod-ping",
            "pod-tcp",
            "pod-mtu",
            "dns-instance",
            "dns-reverse",
        ] {
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
        |v| v == Some((N * (4 * N + 4 + 1)) as f64),
    );
    // Per agent: 4 host pings, 4 pods x (ping, handshake, large echo), 2 instances x 2, the
    // service's reverse lookup.
    assert_eq!(v6_checks, Some((N * (4 * N + 4 + 1)) as f64));
    // The rules read the family-labelled series as they read single-stack ones: 30 rounds of
    // a healthy dual-stack cluster fire no alert (Prometheus' `ALERTS` series over the watch;
    // a pending one, as while the first scrapes come in, is no alarm).
    std::thread::sleep(Duration::from_secs(60));
    let fired = p
        .query_all("max_over_time(ALERTS{alertstate=\"firing\"}[60s])")
        .expect("query ALERTS");
    assert!(
        fired.is_empty(),
        "alerts fired on a healthy dual-stack cluster: {fired:?}"
    );
    let firing: Vec<_> = p
        .alerts()
        .expect("alerts API")
        .into_iter()
        .filter(|a| a.firing)
        .collect();
    assert!(firing.is_empty(), "{firing:?}");
    let table = lab.agent_output(1);
    assert!(
        table.contains("Checking: node-3 198.18.1.13,2001:db8:1::13 Running - k8s-network-test-daemonset-3 198.19.3.10,2001:db8:19:3::10;"),
        "{table}"
    );
}

/// IPv6 blocked at node 3 (it hosts no DNS instance): the other agents fail exactly node 3's
/// IPv6 host and pod pings; node 3's agent fails every IPv6 ping leaving its pod and its IPv6
/// DNS queries; no IPv4 check fails anywhere.
fn ipv6_blocked_at_one_node(lab: &mut Lab, planned: usize) {
    lab.cluster.set_ipv6_blocked(3, true);
    let t = now();
    let node3_v6: BTreeSet<(String, String, String)> = [
        ("host-ping", "node-3", "2001:db8:1::13"),
        (
            "pod-ping",
            "k8s-network-test-daemonset-3",
            "2001:db8:19:3::10",
        ),
        (
            "pod-tcp",
            "k8s-network-test-daemonset-3",
            "2001:db8:19:3::10",
        ),
        (
            "pod-mtu",
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
                        Some("host-ping" | "pod-ping" | "pod-tcp" | "pod-mtu" | "dns-instance")
                    )
                    && c["address"] != "2001:db8:19:3::10"
            })
        } else {
            node3_v6.clone()
        };
        assert_eq!(failed(&r), want, "agent {i}: {r}");
        assert!(of(&r, |c| c["ok"] == false && c["family"] != "ipv6").is_empty());
    }
    // Metrics by family: every agent fails IPv6 checks (node 3's own agent the most), none an
    // IPv4 one.
    let p = lab.prometheus.as_ref().unwrap();
    let by_family =
        |family: &str| format!("sum(networktest_last_round_failed_checks{{family=\"{family}\"}})");
    // 3 agents x 4 checks (host ping, pod ping, handshake, large echo), and agent 3: 4 host
    // pings (its own node's too), 3 x 3 pod checks (not its own pod), 2 instance queries.
    let v6 = p.wait_for(&by_family("ipv6"), Duration::from_secs(30), |v| {
        v == Some(27.0)
    });
    assert_eq!(v6, Some(27.0), "failed IPv6 checks");
    assert_eq!(
        p.wait_for(&by_family("ipv4"), Duration::from_secs(5), |v| v
            == Some(0.0)),
        Some(0.0)
    );
    let table = lab.agent_output(0);
    assert!(
        table.contains(
            "FAIL (host-ping ipv6: no reply within 500ms; pod-ping ipv6: no reply within 500ms; pod-tcp ipv6: "
        ),
        "{table}"
    );
    lab.cluster.set_ipv6_blocked(3, false);
    until_clean(lab, planned);
    // Fresh agents: nothing they learned here reaches into the next scenarios.
    let args = agent_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for i in 0..N {
        lab.restart_agent(i, &args);
    }
    until_clean(lab, planned);
}

/// Polls until every agent has a round after now with every check and none failed.
fn until_clean(lab: &Lab, planned: usize) {
    let t = now();
    for i in 0..N {
        let mut since = t.clone();
        let mut clean = false;
        for _ in 0..20 {
            let r = lab.round_after(i, &since, ROUND_WAIT);
            since = r["started_at"].as_str().unwrap().to_string();
            if failed(&r).is_empty() && checks(&r).len() == planned {
                clean = true;
                break;
            }
        }
        assert!(clean, "agent {i} never clean again");
    }
}

/// The second round of agent `i` that started after `after` (the first may have started
/// before the fault was in place).
fn second_round(lab: &Lab, i: usize, after: &str) -> Value {
    let first = lab.round_after(i, after, ROUND_WAIT);
    lab.round_after(i, first["started_at"].as_str().unwrap(), ROUND_WAIT)
}

/// `(kind, target, address, status, reason)` of a round's checks not passed.
fn not_passed(round: &Value) -> BTreeSet<(String, String, String, String, String)> {
    checks(round)
        .iter()
        .filter(|c| c["ok"] != true)
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
            let status = if c["ok"] == false {
                "failed"
            } else {
                "skipped"
            };
            (
                s("kind"),
                s("target"),
                s("address"),
                status.to_string(),
                s("reason"),
            )
        })
        .collect()
}

/// Node `n`'s host pings and pod checks (both families) as `not_passed` lists them, all with
/// `status` and `reason`.
fn node_pings(
    lab: &Lab,
    n: usize,
    status: &str,
    reason: &str,
) -> BTreeSet<(String, String, String, String, String)> {
    let node = &lab.cluster.nodes[n];
    let pod = &lab.cluster.agents[n];
    let mut out = BTreeSet::new();
    for a in node.host_ips() {
        out.insert((
            "host-ping".into(),
            node.name.clone(),
            a.to_string(),
            status.into(),
            reason.into(),
        ));
    }
    for a in pod.ips() {
        for kind in ["pod-ping", "pod-tcp", "pod-mtu"] {
            out.insert((
                kind.into(),
                pod.name.clone(),
                a.to_string(),
                status.into(),
                reason.into(),
            ));
        }
    }
    out
}

/// A node the cluster autoscaler is removing (tainted `ToBeDeletedByClusterAutoscaler`)
/// and already unreachable: every other agent skips its checks with the reason
/// `scale-down`, and nothing fails there.
fn node_scaled_down_and_unreachable(lab: &mut Lab, planned: usize) {
    lab.show_node(2, Some(NodeShown::ScaleDown));
    lab.cluster.set_node_link(2, false);
    let t = now();
    for i in [0, 1, 3] {
        let r = second_round(lab, i, &t);
        assert_eq!(checks(&r).len(), planned, "agent {i}");
        assert_eq!(
            not_passed(&r),
            node_pings(lab, 2, "skipped", "scale-down"),
            "agent {i}: {r}"
        );
        assert_eq!(r["errors"], 0);
    }
    let table = lab.agent_output(0);
    assert!(
        table.contains("skipped (host-ping ipv4: node is being removed by the cluster autoscaler (no reply within 500ms)"),
        "{table}"
    );
    let p = lab.prometheus.as_ref().unwrap();
    let skipped = p.wait_for(
        "sum(networktest_last_round_skipped_checks{kind=~\"host-ping|pod-ping\"})",
        Duration::from_secs(30),
        |v| v == Some(12.0),
    );
    assert_eq!(skipped, Some(12.0), "3 agents x 4 skipped pings");
    // --report-going-away: the same pings fail, as they did before this release.
    let (code, out, err) = lab.run_once(
        0,
        &[
            "--once",
            "--output",
            "json",
            "--timeout",
            "500ms",
            "--report-going-away",
        ],
    );
    assert_eq!(code, 1, "{out}{err}");
    let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert_eq!(
        not_passed(&r),
        node_pings(lab, 2, "failed", "timeout"),
        "{out}"
    );
    lab.cluster.set_node_link(2, true);
    lab.show_node(2, None);
    until_clean(lab, planned);
}

/// A node NotReady in the API and unreachable (a pulled cable, a minute on): its checks
/// stay failed, with the reason `node-not-ready`.
fn node_not_ready_and_unreachable(lab: &mut Lab, planned: usize) {
    lab.show_node(3, Some(NodeShown::NotReady));
    lab.cluster.set_node_link(3, false);
    let t = now();
    for i in [0, 1, 2] {
        let r = second_round(lab, i, &t);
        assert_eq!(checks(&r).len(), planned, "agent {i}");
        assert_eq!(
            not_passed(&r),
            node_pings(lab, 3, "failed", "node-not-ready"),
            "agent {i}: {r}"
        );
    }
    let table = lab.agent_output(0);
    assert!(
        table.contains("FAIL (host-ping ipv4: node is NotReady: no reply within 500ms"),
        "{table}"
    );
    lab.cluster.set_node_link(3, true);
    lab.show_node(3, None);
    until_clean(lab, planned);
}

/// An agent pod Running but not Ready (its slice endpoint not serving): within the grace
/// period nothing fails; past it, every agent reports its node without a working agent
/// (`agent-not-ready`) and still pings its pod (which answers).
fn agent_not_ready(lab: &mut Lab, planned: usize) {
    lab.show_agent(1, Some(Shown::NotReady));
    let t = now();
    let want: BTreeSet<_> = [(
        "node-without-agent".to_string(),
        "node-1".to_string(),
        String::new(),
        "failed".to_string(),
        "agent-not-ready".to_string(),
    )]
    .into();
    for i in 0..N {
        let mut since = t.clone();
        let mut seen = None;
        for _ in 0..20 {
            let r = lab.round_after(i, &since, ROUND_WAIT);
            since = r["started_at"].as_str().unwrap().to_string();
            let np = not_passed(&r);
            if np.is_empty() {
                continue; // within the grace period
            }
            assert_eq!(np, want, "agent {i}: {r}");
            seen = Some(r);
            break;
        }
        let r = seen.unwrap_or_else(|| panic!("agent {i} never reported agent-not-ready"));
        assert_eq!(
            checks(&r).len(),
            planned + 1,
            "agent {i}: the pings and one more"
        );
        let pinged = of(&r, |c| {
            c["kind"] == "pod-ping"
                && c["target"] == "k8s-network-test-daemonset-1"
                && c["ok"] == true
        });
        assert_eq!(pinged.len(), 2, "agent {i}: agent-1's IPs still pinged");
    }
    let table = lab.agent_output(0);
    assert!(
        table.contains("FAIL (node-without-agent: agent pod k8s-network-test-daemonset-1 is running but not Ready for"),
        "{table}"
    );
    lab.show_agent(1, None);
    until_clean(lab, planned);
}

/// A Windows node and a virtual-kubelet node, where the DaemonSet's node affinity (and so the
/// agents' default `--expect-agent-on`) does not run an agent: they raise nothing. With
/// `--expect-agent-on ""` (every node) the same cluster reports both without an agent.
fn nodes_without_daemonset(lab: &mut Lab, planned: usize) {
    let mut windows =
        k8s_api_standin::node("win-1", &[cluster_box::ip("198.18.1.90")], false, true);
    windows["metadata"]["labels"]["kubernetes.io/os"] = "windows".into();
    windows["metadata"]["labels"]["beta.kubernetes.io/os"] = "windows".into();
    let mut virtual_node = k8s_api_standin::node(
        "virtual-kubelet-1",
        &[cluster_box::ip("198.18.1.91")],
        false,
        true,
    );
    virtual_node["metadata"]["labels"]["type"] = "virtual-kubelet".into();
    lab.set_extra_nodes(vec![windows, virtual_node]);
    let t = now();
    for i in 0..N {
        let r = second_round(lab, i, &t);
        assert_eq!(
            checks(&r).len(),
            planned,
            "agent {i}: no checks of those nodes"
        );
        assert!(not_passed(&r).is_empty(), "agent {i}: {r}");
    }
    let (code, out, err) =
        lab.run_once(0, &["--once", "--output", "json", "--expect-agent-on", ""]);
    assert_eq!(code, 1, "{out}{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    let missing = of(&r, |c| {
        c["kind"] == "node-without-agent" && c["ok"] == false
    });
    let names: BTreeSet<&str> = missing.iter().map(|(_, t, _)| t.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["virtual-kubelet-1", "win-1"]),
        "{out}"
    );
    lab.set_extra_nodes(Vec::new());
    until_clean(lab, planned);
}

/// NodeLocal DNSCache on node 0 (dnsmasq on 169.254.20.10 in the node's namespace) and agent
/// pod 0's resolver pointed at it: the round says its lookups went through the cache (JSON
/// `resolver`, a log line), and they do: with the DNS Service IP unreachable they still
/// pass, while the direct instance checks still query CoreDNS (the instances) and pass.
fn node_local_dns_cache(lab: &mut Lab, _planned: usize) {
    let mut cache = lab.cluster.node_local_dns(0);
    lab.cluster
        .set_agent_nameserver(0, Some(cluster_box::ip("169.254.20.10")));
    lab.cluster.set_service_reachable(false);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let (code, out, err) = lab.run_once(0, &["--once", "--output", "json"]);
        let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
        assert_eq!(
            r["resolver"],
            serde_json::json!({"nameserver": "169.254.20.10", "node_local_cache": true})
        );
        let dns_ok = |kind: &str| {
            checks(&r)
                .iter()
                .filter(|c| c["kind"] == kind)
                .all(|c| c["ok"] == true)
        };
        assert!(dns_ok("dns-service") && dns_ok("dns-instance"), "{out}");
        assert_eq!(code, 0, "{out}{err}");
        let (_, text, _) = lab.run_once(0, &["--once"]);
        assert!(
            text.contains(
                "DNS lookups: through the node-local cache 169.254.20.10 (not the DNS Service IP)"
            ),
            "{text}"
        );
    }));
    lab.cluster.set_service_reachable(true);
    lab.cluster.set_agent_nameserver(0, None);
    cache.stop();
    lab.cluster.remove_node_local_dns(0);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    // Without the cache: the Service IP again, no such line.
    let (_, out, _) = lab.run_once(0, &["--once", "--output", "json"]);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["resolver"]["node_local_cache"], false, "{out}");
}

/// `--dns-service` naming a Service that does not exist: one log line says so, and the
/// lookup of its name fails with the reason `no-dns-service` (the rest of the round runs).
fn dns_service_missing(lab: &mut Lab, _planned: usize) {
    let (code, out, err) = lab.run_once(
        0,
        &[
            "--once",
            "--output",
            "json",
            "--dns-service",
            "kube-system/coredns-gone",
        ],
    );
    assert_eq!(code, 1, "{out}{err}");
    let r: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let failed: Vec<&Value> = checks(&r).iter().filter(|c| c["ok"] == false).collect();
    assert_eq!(failed.len(), 1, "{out}");
    let c = failed[0];
    assert_eq!(c["kind"], "dns-service");
    assert_eq!(
        c["target"],
        "coredns-gone.kube-system.svc.cluster.tst.local."
    );
    assert_eq!(c["reason"], "no-dns-service");
    assert_eq!(
        err.matches("DNS service kube-system/coredns-gone not found")
            .count(),
        1,
        "{err}"
    );
    let api = checks(&r)
        .iter()
        .find(|c| c["target"] == "kubernetes.default.svc.cluster.tst.local.")
        .unwrap();
    assert_eq!(api["ok"], true, "{api}");
}
