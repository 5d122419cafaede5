//! End to end: a 4-node cluster built from network namespaces (cluster-box), the HTTPS API
//! stand-in, the real agent binary in every agent pod (as uid 65534 with the ping sysctl, as
//! in the manifest), dnsmasq DNS pods, and a real Prometheus scraping every agent. Each
//! scenario breaks the network the way real clusters break and checks that every agent
//! reports exactly what broke, and nothing else. Needs root; in CI it must run.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use cluster_box::lab::{Lab, Options, FAST_ROUNDS};
use cluster_box::slow_echo::SlowEcho;
use cluster_box::{need_root, Spec};
use k8s_api_standin::Fault;
use serde_json::Value;

mod common;

const AGENT: &str = env!("CARGO_BIN_EXE_k8s-network-test-daemonset");
const ROUND_WAIT: Duration = Duration::from_secs(45);
const N: usize = 4;

fn now() -> String {
    k8s_network_test_daemonset::timefmt::rfc3339(SystemTime::now())
}

fn agent(i: usize) -> String {
    format!("k8s-network-test-daemonset-{i}")
}

fn node(i: usize) -> String {
    if i == 0 {
        "control-plane-0".to_string()
    } else {
        format!("node-{i}")
    }
}

use cluster_box::lab::failed_checks as failed;

/// Asserts a round's failed checks, explaining the round (errors included) when they differ.
fn expect_failed(round: &Value, want: BTreeSet<String>) {
    let got = failed(round);
    if got != want {
        let errors: Vec<String> = round["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["ok"] == false)
            .map(|c| format!("{} {}: {}", c["kind"], c["target"], c["error"]))
            .collect();
        panic!(
            "agent on {} (round at {}, api_error {}): failed {got:?}, want {want:?}; errors: {errors:#?}",
            round["node"], round["started_at"], round["api_error"]
        );
    }
}

fn set(items: &[String]) -> BTreeSet<String> {
    items.iter().cloned().collect()
}

/// Waits for every agent's first round that started after `after`.
fn next_rounds(lab: &Lab, after: &str) -> Vec<Value> {
    (0..N)
        .map(|i| lab.round_after(i, after, ROUND_WAIT))
        .collect()
}

/// Polls until every agent has a round after `after` with no failed check; returns the
/// rounds each agent published in between (for their status changes).
fn until_clean(lab: &Lab, after: &str) -> Vec<Vec<Value>> {
    let mut seen: Vec<Vec<Value>> = vec![Vec::new(); N];
    for (i, rounds) in seen.iter_mut().enumerate() {
        let mut since = after.to_string();
        loop {
            let r = lab.round_after(i, &since, ROUND_WAIT);
            since = r["started_at"].as_str().unwrap().to_string();
            let clean = failed(&r).is_empty();
            rounds.push(r);
            if clean {
                break;
            }
            assert!(
                rounds.len() < 15,
                "agent {i} never got clean again: {:?}",
                failed(rounds.last().unwrap())
            );
        }
    }
    seen
}

fn prometheus_sum(lab: &Lab, want: f64) {
    let p = lab.prometheus.as_ref().expect("prometheus");
    let got = p.wait_for(
        "sum(networktest_total_error_count)",
        Duration::from_secs(30),
        |v| v == Some(want),
    );
    assert_eq!(
        got,
        Some(want),
        "sum(networktest_total_error_count) from Prometheus"
    );
}

fn all_dns_checks() -> Vec<String> {
    vec![
        "dns-service kube-dns.kube-system.svc.cluster.tst.local.".into(),
        "dns-service kubernetes.default.svc.cluster.tst.local.".into(),
        "dns-reverse kube-dns".into(),
        "dns-reverse coredns-0".into(),
        "dns-reverse coredns-1".into(),
    ]
}

#[test]
fn e2e_scenarios() {
    if !need_root("e2e_scenarios") {
        return;
    }
    let lab = Lab::start(Options {
        spec: Spec::default(),
        binary: AGENT.into(),
        agent_args: FAST_ROUNDS.map(String::from).to_vec(),
        prometheus: true,
    });

    // 1. Healthy: zero errors, every check present, no status changes after the first round.
    let t = now();
    let first = next_rounds(&lab, &t);
    let second = next_rounds(
        &lab,
        first
            .iter()
            .map(|r| r["started_at"].as_str().unwrap())
            .max()
            .unwrap(),
    );
    let objects = cluster_box::lab::api_objects(&lab.cluster, &BTreeSet::new());
    let planned = common::planned_checks(&objects, &lab.cluster.spec.domain)
        .checks
        .len();
    for r in first.iter().chain(&second) {
        expect_failed(r, BTreeSet::new());
        assert_eq!(r["checks"].as_array().unwrap().len(), planned);
    }
    for r in &second {
        assert_eq!(
            r["changes"],
            Value::Array(vec![]),
            "no changes on a healthy cluster"
        );
        assert_eq!(r["first_round"], false);
    }
    prometheus_sum(&lab, 0.0);
    // The README's expected-checks expression (with the agents standing in for
    // kube_node_info, which needs kube-state-metrics) is 0 on a healthy cluster.
    let expected = "2 * count(networktest_agent_info) ^ 2 \
        + count(networktest_agent_info) * (3 + 2 * max(networktest_last_round_checks{kind=\"dns-instance\"})) \
        - (sum(networktest_last_round_checks) - sum(networktest_last_round_failed_checks))";
    let p = lab.prometheus.as_ref().unwrap();
    let got = p.wait_for(expected, Duration::from_secs(20), |v| v == Some(0.0));
    assert_eq!(got, Some(0.0), "README's expected-checks expression");
    let table = lab.agent_output(1);
    assert!(table.contains("Tests running on node: node-1, host: k8s-network-test-daemonset-1"));
    assert!(table.contains("DNS: 198.19.250.10 kube-dns.kube-system.svc.cluster.tst.local"));
    assert!(table.contains("Testing 4 nodes"));
    assert!(table.contains("No status changes since previous test run."));

    // 2. Node 2's underlay link down.
    let t = now();
    lab.cluster.set_node_link(2, false);
    let rounds = next_rounds(&lab, &t);
    let towards_2 = set(&[
        format!("host-ping {}", node(2)),
        format!("pod-ping {}", agent(2)),
    ]);
    for i in [0, 1, 3] {
        expect_failed(&rounds[i], towards_2.clone());
    }
    let mut from_2: Vec<String> = all_dns_checks();
    from_2.extend([
        "dns-instance coredns-0".into(),
        "dns-instance coredns-1".into(),
    ]);
    for i in [0, 1, 3] {
        from_2.push(format!("host-ping {}", node(i)));
        from_2.push(format!("pod-ping {}", agent(i)));
    }
    expect_failed(&rounds[2], set(&from_2));
    assert!(
        rounds[2]["api_error"].is_string(),
        "node 2 cannot reach the API either"
    );
    prometheus_sum(&lab, 6.0); // node 2's agent cannot be scraped: its series go stale

    // 10. Healed: the next rounds report the changes back to OK.
    let t = now();
    lab.cluster.set_node_link(2, true);
    let healed = until_clean(&lab, &t);
    for i in [0, 1, 3] {
        let back: BTreeSet<String> = healed[i]
            .iter()
            .flat_map(|r| r["changes"].as_array().unwrap().clone())
            .filter(|c| c["was_ok"] == false && c["now_ok"] == true)
            .map(|c| {
                format!(
                    "{} {}",
                    c["kind"].as_str().unwrap(),
                    c["target"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(back, towards_2, "agent {i} reports the way back to OK");
    }
    assert!(lab.agent_output(0).contains(&format!(
        "Status change: pod-ping {} {} 198.19.2.10: FAIL -> OK",
        node(2),
        agent(2)
    )));
    prometheus_sum(&lab, 0.0);

    // 3. ICMP dropped at one pod: only pod-ping to that pod fails, everywhere.
    let t = now();
    lab.cluster.drop_icmp_at_agent(3, true);
    for r in next_rounds(&lab, &t) {
        expect_failed(&r, set(&[format!("pod-ping {}", agent(3))]));
    }
    prometheus_sum(&lab, 4.0);
    lab.cluster.drop_icmp_at_agent(3, false);
    until_clean(&lab, &now());

    // 4. One DNS instance stopped: only its dns-instance check fails, everywhere.
    let t = now();
    let mut lab = lab;
    lab.cluster.dns[1].stop();
    for r in next_rounds(&lab, &t) {
        expect_failed(&r, set(&["dns-instance coredns-1".to_string()]));
    }
    prometheus_sum(&lab, 4.0);
    lab.cluster.dns[1].start();
    until_clean(&lab, &now());

    // 5. DNS service IP unreachable: forward and reverse lookups fail, instances answer.
    let t = now();
    lab.cluster.set_service_reachable(false);
    for r in next_rounds(&lab, &t) {
        expect_failed(&r, set(&all_dns_checks()));
    }
    prometheus_sum(&lab, 20.0);
    lab.cluster.set_service_reachable(true);
    until_clean(&lab, &now());

    // 6. 50 ms added to node 3 and its pod: RTTs towards them are 50 ms ± 5 ms, no errors.
    let slow = [
        SlowEcho::start(&lab.cluster.nodes[3].ns.name, Duration::from_millis(50)),
        SlowEcho::start(&lab.cluster.agents[3].ns.name, Duration::from_millis(50)),
    ];
    let t = now();
    for (i, r) in next_rounds(&lab, &t).iter().enumerate().take(3) {
        expect_failed(r, BTreeSet::new());
        for c in r["checks"].as_array().unwrap() {
            let kind = c["kind"].as_str().unwrap();
            if kind != "pod-ping" && kind != "host-ping" {
                continue;
            }
            let rtt = c["rtt_seconds"].as_f64().unwrap();
            if c["target_node"] == node(3).as_str() {
                assert!(
                    (0.045..=0.055).contains(&rtt),
                    "agent {i}: {kind} to node 3 took {rtt}s"
                );
            } else {
                assert!(rtt < 0.045, "agent {i}: {kind} {} took {rtt}s", c["target"]);
            }
        }
    }
    drop(slow);
    until_clean(&lab, &now());

    // 7. 30% loss on node 3, 30 echoes per target: loss shows for node 3's targets only
    // (a host ping loses 30% of replies: all 30 arriving has odds of 0.7^30, about 2e-5).
    lab.cluster.set_loss(3, Some(0.3));
    for i in 0..3 {
        let (code, out, err) = lab.run_once(
            i,
            &[
                "--once",
                "--output",
                "json",
                "--count",
                "30",
                "--timeout",
                "1s",
            ],
        );
        assert_eq!(code, 0, "agent {i} --once: {err}");
        let r: Value = serde_json::from_str(&out).unwrap();
        for c in r["checks"].as_array().unwrap() {
            if c["sent"] == 0 {
                continue; // DNS checks
            }
            let (sent, received) = (c["sent"].as_u64().unwrap(), c["received"].as_u64().unwrap());
            assert_eq!(sent, 30);
            if c["target_node"] == node(3).as_str() {
                assert!(
                    received < sent && received > 0,
                    "agent {i}: {} {received}/{sent}",
                    c["target"]
                );
            } else {
                assert_eq!(received, sent, "agent {i}: {} lost packets", c["target"]);
            }
        }
    }
    lab.cluster.set_loss(3, None);
    // The long-running agent on node 3 lost DNS packets too; its abandoned system-resolver
    // lookups take a few seconds to drain. Start the next scenario from a clean round.
    until_clean(&lab, &now());

    // 8. API down for a few rounds: agents keep probing the last known members, report the
    // API error in the log and the metrics, and recover by themselves.
    let t = now();
    lab.api.set_fault(Fault::CloseImmediately);
    let mut last = t.clone();
    for _ in 0..3 {
        let rounds = next_rounds(&lab, &last);
        for r in &rounds {
            expect_failed(r, BTreeSet::new());
            assert!(
                r["api_error"].is_string(),
                "the round says the API failed: {r}"
            );
        }
        last = rounds
            .iter()
            .map(|r| r["started_at"].as_str().unwrap().to_string())
            .max()
            .unwrap();
    }
    let p = lab.prometheus.as_ref().unwrap();
    let errors = p.wait_for(
        "sum(networktest_api_errors_total)",
        Duration::from_secs(20),
        |v| v.unwrap_or(0.0) >= 12.0,
    );
    assert!(
        errors.unwrap_or(0.0) >= 12.0,
        "api errors counted: {errors:?}"
    );
    assert!(
        lab.agent_log(0).contains("kubernetes api:"),
        "one log line per API failure"
    );
    lab.api.clear_fault();
    let t = now();
    for r in next_rounds(&lab, &t) {
        assert!(r["api_error"].is_null(), "recovered: {r}");
    }

    // 9. An agent pod missing from the API: every agent reports its node as without agent.
    let t = now();
    lab.hide_agent(3, true);
    for r in next_rounds(&lab, &t) {
        expect_failed(&r, set(&[format!("node-without-agent {}", node(3))]));
    }
    prometheus_sum(&lab, 4.0);
    assert!(lab
        .agent_output(1)
        .contains("Checking: node-3 198.18.1.13 - (no agent pod on this node)"));
    lab.hide_agent(3, false);
    until_clean(&lab, &now());
}

#[test]
fn teardown_leaves_nothing_behind_even_after_a_failure() {
    if !need_root("teardown_leaves_nothing_behind_even_after_a_failure") {
        return;
    }
    let mut names: Vec<String> = Vec::new();
    let mut pids: Vec<i32> = Vec::new();
    let mut dir = std::path::PathBuf::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = Lab::start(Options {
            spec: Spec {
                nodes: 2,
                ..Spec::default()
            },
            binary: AGENT.into(),
            agent_args: ["--interval", "2s", "--dns-timeout", "1s"]
                .map(String::from)
                .to_vec(),
            prometheus: true,
        });
        names = lab.cluster.namespaces();
        dir = lab.cluster.dir.clone();
        for n in &names {
            let out = std::process::Command::new("ip")
                .args(["netns", "pids", n])
                .output()
                .unwrap();
            pids.extend(
                String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
        lab.round_after(0, &now(), ROUND_WAIT);
        panic!("a scenario failed");
    }));
    assert!(result.is_err());
    assert!(
        pids.len() >= 6, // 2 agents, 3 dnsmasq, prometheus
        "agents, dnsmasq and prometheus were running: {pids:?}"
    );
    let list = String::from_utf8(
        std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for n in &names {
        assert!(
            !list.lines().any(|l| l.split_whitespace().next() == Some(n)),
            "namespace {n} left behind"
        );
        assert!(
            !std::path::Path::new("/etc/netns").join(n).exists(),
            "/etc/netns/{n} left behind"
        );
    }
    for pid in pids {
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "process {pid} left running");
    }
    assert!(!dir.exists(), "{} left behind", dir.display());
}
