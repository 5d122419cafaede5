//! End to end: a 4-node cluster built from network namespaces (cluster-box), the HTTPS API
//! stand-in, the real agent binary in every agent pod (as uid 65534 with the ping sysctl, as
//! in the manifest), dnsmasq DNS pods, and a real Prometheus scraping every agent and
//! evaluating the alert rules (rules/networktest.rules.yml, `for:` scaled to the 2 s rounds).
//! Each scenario breaks the network the way real clusters break and checks that every agent
//! reports exactly what broke, and nothing else, and that the alerts that fire name the node
//! at fault and no other. Needs root; in CI it must run.
//!
//! The scenarios share one lab (it takes seconds to build) and run in order, each a named
//! function that leaves the cluster healthy; a failure names its scenario.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cluster_box::lab::{Lab, Options, FAST_ROUNDS};
use cluster_box::slow_echo::SlowEcho;
use cluster_box::status::{checks, failed_checks as failed, metric_sum};
use cluster_box::{agent_pod_name as agent, need_root, node_name as node, Spec};
use common::now;
use common::rounds::{self, latest, next_rounds, set, ROUND_WAIT};
use k8s_api_standin::Fault;
use serde_json::Value;

const AGENT: &str = env!("CARGO_BIN_EXE_k8s-network-test-daemonset");
const N: usize = 4;
/// How long the healthy cluster is watched for alerts: 90 rounds, which the lab's scaled
/// `for:` durations make worth an hour and a half of a real cluster's rounds.
const HEALTHY_WATCH: Duration = Duration::from_secs(180);
/// The longest wait for alerts to fire or resolve (the longest lab `for:` is 20 s).
const ALERT_WAIT: Duration = Duration::from_secs(90);

/// What the scenarios hand on to the ones after them.
#[derive(Default)]
struct Ctx {
    /// Checks in a round of a healthy cluster (the first scenario counts them). Every later
    /// round has as many: a fault fails checks, it never removes them, and an agent pod
    /// missing from the API trades its pod ping, handshake and large echo for a
    /// `node-without-agent` check (two fewer).
    healthy_checks: usize,
}

type Scenario = fn(&mut Lab, &mut Ctx);

/// In order: each starts from the healthy cluster the one before left.
const SCENARIOS: [(&str, Scenario); 11] = [
    ("healthy", healthy),
    ("node_cable_pulled", node_cable_pulled),
    ("network_healed", network_healed),
    ("icmp_dropped_at_one_pod", icmp_dropped_at_one_pod),
    ("dns_instance_stopped", dns_instance_stopped),
    ("dns_service_unreachable", dns_service_unreachable),
    ("latency_on_one_node", latency_on_one_node),
    ("loss_on_one_node", loss_on_one_node),
    ("pod_path_broken_between_two_nodes", pod_path_broken),
    ("api_down", api_down),
    ("agent_pod_missing", agent_pod_missing),
];

#[test]
fn e2e_scenarios() {
    if !need_root("e2e_scenarios") {
        return;
    }
    let mut lab = Lab::start(Options {
        spec: Spec::default(),
        binary: AGENT.into(),
        agent_args: agent_args(),
        prometheus: true,
    });
    let mut ctx = Ctx::default();
    common::scenarios::run("e2e", Some("E2E_ONLY"), &SCENARIOS, |scenario: Scenario| {
        scenario(&mut lab, &mut ctx)
    });
}

/// The lab's fast rounds, and a start-up grace period of two of them (an agent pod that
/// vanished is skipped that long as one being replaced).
fn agent_args() -> Vec<String> {
    let mut args: Vec<String> = FAST_ROUNDS.map(String::from).to_vec();
    args.extend(["--startup-grace".to_string(), "4s".to_string()]);
    args
}

/// [`rounds::expect_failed`] against a healthy round's number of checks.
fn expect_failed(round: &Value, want: BTreeSet<String>, ctx: &Ctx) {
    rounds::expect_failed(round, &want, ctx.healthy_checks);
}

/// Polls until every agent has a round after `after` with no failed check; returns the
/// rounds each agent published in between (for their status changes).
fn until_clean(lab: &Lab, after: &str) -> Vec<Vec<Value>> {
    until_clean_each(lab, &vec![after.to_string(); N])
}

/// [`until_clean`] with a mark per agent.
fn until_clean_each(lab: &Lab, after: &[String]) -> Vec<Vec<Value>> {
    let mut seen: Vec<Vec<Value>> = vec![Vec::new(); N];
    for (i, rounds) in seen.iter_mut().enumerate() {
        let mut since = after[i].clone();
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

/// The alerts firing now, as (alertname, node) (node empty for a cluster-wide alert).
fn firing_alerts(lab: &Lab) -> BTreeSet<(String, String)> {
    let p = lab.prometheus.as_ref().expect("prometheus");
    p.alerts()
        .expect("alerts API")
        .iter()
        .filter(|a| a.firing)
        .map(|a| a.name_and_node())
        .collect()
}

fn pairs(want: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    want.iter()
        .map(|(a, n)| (a.to_string(), n.to_string()))
        .collect()
}

/// Waits until exactly the alerts `want` fire, through Prometheus' alerts API, and fails as
/// soon as another one fires; then checks that no other alert fired since `since` (the
/// `ALERTS` series Prometheus keeps): nothing names a node that is not at fault.
fn expect_alerts(lab: &Lab, since: Instant, want: &[(&str, &str)]) {
    let want = pairs(want);
    let deadline = Instant::now() + ALERT_WAIT;
    loop {
        let now = firing_alerts(lab);
        let wrong: Vec<_> = now.difference(&want).collect();
        assert!(
            wrong.is_empty(),
            "alerts fired that should not: {wrong:?} (want {want:?})"
        );
        if now == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alerts after {ALERT_WAIT:?}: {now:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let fired = fired_since(lab, since);
    let wrong: Vec<_> = fired.difference(&want).collect();
    assert!(
        wrong.is_empty(),
        "alerts fired during the scenario: {wrong:?} (want {want:?})"
    );
}

/// Every (alertname, node) that fired since `since`, from Prometheus' `ALERTS` series.
fn fired_since(lab: &Lab, since: Instant) -> BTreeSet<(String, String)> {
    let p = lab.prometheus.as_ref().expect("prometheus");
    // Whole seconds, rounded down: the window never reaches back before `since` (into an
    // earlier scenario's alerts).
    let window = since.elapsed().as_secs().max(1);
    p.query_all(&format!(
        "max_over_time(ALERTS{{alertstate=\"firing\"}}[{window}s])"
    ))
    .expect("query ALERTS")
    .into_iter()
    .map(|(labels, _)| {
        let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
        (get("alertname"), get("node"))
    })
    .collect()
}

/// Waits until no alert is pending or firing (faults healed), so the next scenario starts
/// from a quiet Prometheus.
fn until_no_alerts(lab: &Lab) {
    let p = lab.prometheus.as_ref().expect("prometheus");
    let deadline = Instant::now() + ALERT_WAIT;
    loop {
        let alerts = p.alerts().expect("alerts API");
        if alerts.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "alerts still there after {ALERT_WAIT:?}: {alerts:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every rule of the rules file is loaded and evaluates without error.
fn rules_healthy(lab: &Lab) {
    let p = lab.prometheus.as_ref().expect("prometheus");
    let rules = p.rules().expect("rules API");
    let in_file = include_str!("../rules/networktest.rules.yml")
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("- record:") || l.starts_with("- alert:"))
        .count();
    assert!(in_file >= 30, "the rules file has its rules: {in_file}");
    assert_eq!(rules.len(), in_file, "rules loaded: {rules:?}");
    let bad: Vec<_> = rules.iter().filter(|(_, h)| h != "ok").collect();
    assert!(bad.is_empty(), "rules that do not evaluate: {bad:?}");
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

/// Healthy: zero errors, every check present, no status changes after the first round.
fn healthy(lab: &mut Lab, ctx: &mut Ctx) {
    let t = now();
    let first = next_rounds(lab, &t);
    let second = next_rounds(lab, &latest(&first));
    let objects = cluster_box::lab::api_objects(&lab.cluster, &BTreeSet::new());
    let planned = common::planned_checks(&objects, &lab.cluster.spec.domain)
        .checks
        .len();
    ctx.healthy_checks = checks(&first[0]).len();
    assert_eq!(ctx.healthy_checks, planned);
    for r in first.iter().chain(&second) {
        expect_failed(r, BTreeSet::new(), ctx);
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
    prometheus_sum(lab, 0.0);
    // The README's expected-checks expression (with the agents standing in for
    // kube_node_info, which needs kube-state-metrics) is 0 on a healthy cluster.
    let expected = common::EXPECTED_CHECKS;
    // The README shows the same expression, with kube_node_info.
    let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let readme =
        words(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap());
    assert!(
        readme.contains(&words(
            &expected.replace("networktest_agent_info", "kube_node_info")
        )),
        "README's expected-checks expression differs from the one tested"
    );
    let p = lab.prometheus.as_ref().unwrap();
    let got = p.wait_for(expected, Duration::from_secs(20), |v| v == Some(0.0));
    assert_eq!(got, Some(0.0), "README's expected-checks expression");
    let table = lab.agent_output(1);
    assert!(table.contains("Tests running on node: node-1, host: k8s-network-test-daemonset-1"));
    assert!(table.contains("DNS: 198.19.250.10 kube-dns.kube-system.svc.cluster.tst.local"));
    assert!(table.contains("Testing 4 nodes"));
    assert!(table.contains("No status changes since previous test run."));
    // The rules see 4 voting agents, each node checked by the 3 others, and no alert fires
    // while the healthy cluster runs for 90 rounds.
    let watch = Instant::now();
    let voters = p.wait_for(
        "count(networktest:agent_voter:info)",
        Duration::from_secs(30),
        |v| v == Some(4.0),
    );
    assert_eq!(voters, Some(4.0), "voting agents");
    // (The node rules read the voters of the previous evaluation.)
    let checkers = p.wait_for(
        "count(networktest:node_checkers:count == 3)",
        Duration::from_secs(10),
        |v| v == Some(N as f64),
    );
    assert_eq!(
        checkers,
        Some(N as f64),
        "every node checked by 3 voters: {:?}",
        p.query_all("networktest:node_checkers:count")
    );
    rules_healthy(lab);
    std::thread::sleep(HEALTHY_WATCH.saturating_sub(watch.elapsed()));
    let pending: Vec<_> = p
        .alerts()
        .unwrap()
        .into_iter()
        .map(|a| a.name_and_node())
        .collect();
    eprintln!("healthy watch: pending alerts at the end: {pending:?}");
    let fired = fired_since(lab, watch);
    assert!(
        fired.is_empty(),
        "alerts fired in a healthy cluster: {fired:?}"
    );
    rules_healthy(lab);
}

/// The host and pod pings, the handshake and the large echo towards node 2.
fn towards_2() -> BTreeSet<String> {
    set(&[
        format!("host-ping {}", node(2)),
        format!("pod-ping {}", agent(2)),
        format!("pod-tcp {}", agent(2)),
        format!("pod-mtu {}", agent(2)),
    ])
}

/// Node 2's underlay link down: the others fail their pings to it; node 2 fails everything
/// that leaves it (DNS included) and cannot reach the API.
fn node_cable_pulled(lab: &mut Lab, ctx: &mut Ctx) {
    let since = Instant::now();
    lab.cluster.set_node_link(2, false);
    let t = now();
    let rounds = next_rounds(lab, &t);
    for i in [0, 1, 3] {
        expect_failed(&rounds[i], towards_2(), ctx);
    }
    let mut from_2: Vec<String> = all_dns_checks();
    from_2.extend([
        "dns-instance coredns-0".into(),
        "dns-instance coredns-1".into(),
        "api api-server".into(),
    ]);
    for i in [0, 1, 3] {
        from_2.push(format!("host-ping {}", node(i)));
        from_2.push(format!("pod-ping {}", agent(i)));
        from_2.push(format!("pod-tcp {}", agent(i)));
        from_2.push(format!("pod-mtu {}", agent(i)));
    }
    expect_failed(&rounds[2], set(&from_2), ctx);
    assert!(
        rounds[2]["api_error"].is_string(),
        "node 2 cannot reach the API either"
    );
    prometheus_sum(lab, 12.0); // node 2's agent cannot be scraped: its series go stale
                               // Node 2 is named, by the votes of the 3 others and by its silent agent; nothing else.
    expect_alerts(
        lab,
        since,
        &[
            ("NetworkTestNodeUnreachable", "node-2"),
            ("NetworkTestAgentNotReporting", "node-2"),
        ],
    );
    rules_healthy(lab);
}

/// Healed: the next rounds report the changes back to OK.
fn network_healed(lab: &mut Lab, _: &mut Ctx) {
    // Mark each agent's last published round (it saw the cable pulled) before healing: a
    // round that starts just before the heal may already probe the healed path, so a mark
    // taken after the heal could skip the very round that reports the change.
    let marks: Vec<String> = (0..N)
        .map(|i| {
            let r = lab.status(i).expect("a published round");
            r["started_at"].as_str().unwrap().to_string()
        })
        .collect();
    lab.cluster.set_node_link(2, true);
    let healed = until_clean_each(lab, &marks);
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
        assert_eq!(back, towards_2(), "agent {i} reports the way back to OK");
    }
    assert!(lab.agent_output(0).contains(&format!(
        "Status change: pod-ping {} {} 198.19.2.10: FAIL -> OK",
        node(2),
        agent(2)
    )));
    prometheus_sum(lab, 0.0);
    until_no_alerts(lab);
}

/// ICMP dropped at one pod: only pod-ping (and the large pod-mtu echo) to that pod fails,
/// everywhere; the pod network of its node is named.
fn icmp_dropped_at_one_pod(lab: &mut Lab, ctx: &mut Ctx) {
    let since = Instant::now();
    lab.cluster.drop_icmp_at_agent(3, true);
    let t = now();
    for r in next_rounds(lab, &t) {
        expect_failed(
            &r,
            set(&[
                format!("pod-ping {}", agent(3)),
                format!("pod-mtu {}", agent(3)),
            ]),
            ctx,
        );
    }
    prometheus_sum(lab, 8.0);
    expect_alerts(
        lab,
        since,
        &[("NetworkTestPodNetworkUnreachable", "node-3")],
    );
    lab.cluster.drop_icmp_at_agent(3, false);
    until_clean(lab, &now());
    until_no_alerts(lab);
}

/// The pod path between nodes 1 and 2 broken (node 1 stops forwarding between their pods):
/// agents 1 and 2 fail each other's pod checks (and agent 2 its query of `coredns-1`, a pod
/// on node 1), nothing else fails, no node is blamed by the votes, and `NetworkTestPathDown`
/// names the pair from both ends.
fn pod_path_broken(lab: &mut Lab, ctx: &mut Ctx) {
    let since = Instant::now();
    lab.cluster.set_pod_path_broken(1, 2, true);
    let pod_checks =
        |j: usize| set(&["pod-ping", "pod-tcp", "pod-mtu"].map(|k| format!("{k} {}", agent(j))));
    let t = now();
    for (i, r) in next_rounds(lab, &t).iter().enumerate() {
        let want = match i {
            1 => pod_checks(2),
            2 => &pod_checks(1) | &set(&["dns-instance coredns-1".to_string()]),
            _ => BTreeSet::new(),
        };
        expect_failed(r, want, ctx);
    }
    prometheus_sum(lab, 7.0);
    expect_alerts(
        lab,
        since,
        &[
            ("NetworkTestPathDown", "node-1"),
            ("NetworkTestPathDown", "node-2"),
        ],
    );
    lab.cluster.set_pod_path_broken(1, 2, false);
    until_clean(lab, &now());
    until_no_alerts(lab);
}

/// One DNS instance stopped: only its dns-instance check fails, everywhere; the instance and
/// its node (node 1) are named.
fn dns_instance_stopped(lab: &mut Lab, ctx: &mut Ctx) {
    let since = Instant::now();
    lab.cluster.dns[1].stop();
    let t = now();
    for r in next_rounds(lab, &t) {
        expect_failed(&r, set(&["dns-instance coredns-1".to_string()]), ctx);
    }
    prometheus_sum(lab, 4.0);
    expect_alerts(lab, since, &[("NetworkTestDnsInstanceDown", "node-1")]);
    lab.cluster.dns[1].start();
    until_clean(lab, &now());
    until_no_alerts(lab);
}

/// DNS service IP unreachable: forward and reverse lookups fail, instances answer; the DNS
/// service is named, no node.
fn dns_service_unreachable(lab: &mut Lab, ctx: &mut Ctx) {
    let since = Instant::now();
    lab.cluster.set_service_reachable(false);
    let t = now();
    for r in next_rounds(lab, &t) {
        expect_failed(&r, set(&all_dns_checks()), ctx);
    }
    prometheus_sum(lab, 20.0);
    expect_alerts(lab, since, &[("NetworkTestDnsServiceDown", "")]);
    lab.cluster.set_service_reachable(true);
    until_clean(lab, &now());
    until_no_alerts(lab);
}

/// The host and pod pings of a round.
fn pings(round: &Value) -> Vec<&Value> {
    checks(round)
        .iter()
        .filter(|c| c["kind"] == "pod-ping" || c["kind"] == "host-ping")
        .collect()
}

/// 50 ms added to node 3 and its pod (a user-space responder): pings towards them take at
/// least 50 ms and pass; the others stay fast. Only bounds that hold on two busy cores: the
/// responder never answers early, and the median of the other RTTs stays far below the
/// delay (a descheduled prober thread can stretch one RTT, not most of them).
fn latency_on_one_node(lab: &mut Lab, ctx: &mut Ctx) {
    const DELAY: f64 = 0.050;
    let since = Instant::now();
    let slow = [
        SlowEcho::start(&lab.cluster.nodes[3].ns.name, Duration::from_millis(50)),
        SlowEcho::start(&lab.cluster.agents[3].ns.name, Duration::from_millis(50)),
    ];
    let t = now();
    let mut others = Vec::new();
    for (i, r) in next_rounds(lab, &t).iter().enumerate().take(3) {
        expect_failed(r, BTreeSet::new(), ctx);
        let pings = pings(r);
        assert_eq!(
            pings.len(),
            2 * N,
            "agent {i}: a host and a pod ping per node"
        );
        let (to_3, rest): (Vec<&Value>, Vec<&Value>) = pings
            .into_iter()
            .partition(|c| c["target_node"] == node(3).as_str());
        assert_eq!(to_3.len(), 2, "agent {i}: node 3's host and pod");
        for c in to_3 {
            let rtt = c["rtt_seconds"].as_f64().unwrap();
            // Sent time recorded before the send, reply stamped by the kernel: never less
            // than the delay (half a millisecond for clock rounding).
            assert!(
                rtt >= DELAY - 0.0005,
                "agent {i}: {} to node 3 took {rtt}s, less than the added delay",
                c["kind"]
            );
        }
        others.extend(rest.iter().map(|c| c["rtt_seconds"].as_f64().unwrap()));
    }
    others.sort_by(f64::total_cmp);
    let median = others[others.len() / 2];
    assert!(
        median < DELAY / 2.0,
        "the delay shows towards node 3 only: median RTT to the others {median}s ({others:?})"
    );
    // Slow by the cluster's usual RTT, for most of its checkers: node 3 is named.
    expect_alerts(lab, since, &[("NetworkTestNodeHighRtt", "node-3")]);
    drop(slow);
    until_clean(lab, &now());
    until_no_alerts(lab);
}

/// 30% loss on node 3, 30 echoes per target: loss shows for node 3's targets only (a host
/// ping loses 30% of replies: all 30 arriving has odds of 0.7^30, about 2e-5).
fn loss_on_one_node(lab: &mut Lab, ctx: &mut Ctx) {
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
        let r: Value = serde_json::from_str(&out).unwrap();
        // Echoes count their replies; a handshake or the one large echo lost to the loss
        // fails its check (one try each).
        let one_try = set(&[
            format!("pod-tcp {}", agent(3)),
            format!("pod-mtu {}", agent(3)),
        ]);
        assert!(
            code == 0 || (code == 1 && failed(&r).is_subset(&one_try)),
            "agent {i} --once: {err}{r}"
        );
        assert_eq!(checks(&r).len(), ctx.healthy_checks, "agent {i}: {r}");
        let pings = pings(&r);
        assert_eq!(
            pings.len(),
            2 * N,
            "agent {i}: a host and a pod ping per node"
        );
        let to_3 = pings
            .iter()
            .filter(|c| c["target_node"] == node(3).as_str())
            .count();
        assert_eq!(to_3, 2, "agent {i}: node 3's host and pod");
        for c in pings {
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
    // lookups take a few seconds to drain. Start the next scenario from a clean round (and
    // no alert: the long-running agents' single echoes to node 3 were lost too).
    until_clean(lab, &now());
    until_no_alerts(lab);
}

/// Agent `i`'s `networktest_api_errors_total`, all reasons (0 before its first API error).
fn api_errors(lab: &Lab, i: usize) -> f64 {
    let scrape = lab.agent_get(i, "/prometheus.report").expect("scrape");
    metric_sum(&scrape.body, "networktest_api_errors_total").unwrap_or(0.0)
}

/// The API down for three rounds: every agent keeps probing its last known members (as many
/// checks as before, none failing but `api`), says so in its table's `API:` line and counts the
/// failures, and recovers by itself.
fn api_down(lab: &mut Lab, ctx: &mut Ctx) {
    let since = Instant::now();
    let before: Vec<f64> = (0..N).map(|i| api_errors(lab, i)).collect();
    let printed: Vec<usize> = (0..N).map(|i| lab.agent_output(i).len()).collect();
    lab.api.set_fault(Fault::CloseImmediately);
    let mut last = now();
    for _ in 0..3 {
        let rounds = next_rounds(lab, &last);
        for r in &rounds {
            expect_failed(r, set(&["api api-server".into()]), ctx);
            assert!(
                r["api_error"].is_string(),
                "the round says the API failed: {r}"
            );
        }
        last = latest(&rounds);
    }
    for i in 0..N {
        // Each of the three rounds failed its discovery: at least one error each, on this
        // agent's own counter (earlier scenarios' errors are in `before`).
        let after = api_errors(lab, i);
        assert!(
            after - before[i] >= 3.0,
            "agent {i}: networktest_api_errors_total {} -> {after} over three failed discoveries",
            before[i]
        );
        // The table (stdout) of the outage rounds says the members are the last known ones.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let out = lab.agent_output(i);
            let new = out.get(printed[i]..).unwrap_or("");
            if new.lines().any(|l| {
                l.starts_with("API: ") && l.contains("(probing the last known members, discovered ")
            }) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "agent {i}: no `API: ... (probing the last known members ...)` line in:\n{new}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert!(
        lab.agent_log(0).contains("kubernetes api:"),
        "one log line per API failure"
    );
    lab.api.clear_fault();
    let t = now();
    for r in next_rounds(lab, &t) {
        assert!(r["api_error"].is_null(), "recovered: {r}");
        expect_failed(&r, BTreeSet::new(), ctx);
    }
    // The network was fine all along: no alert.
    expect_alerts(lab, since, &[]);
}

/// An agent pod missing from the API: every agent reports its node as without agent.
fn agent_pod_missing(lab: &mut Lab, ctx: &mut Ctx) {
    let since = Instant::now();
    lab.hide_agent(3, true);
    let t = now();
    // Its pod ping, handshake and large echo give way to one node-without-agent check.
    let fewer = Ctx {
        healthy_checks: ctx.healthy_checks - 2,
    };
    // Skipped while a new pod could still come (the grace period: a rollout deletes the old
    // pod first), then failed.
    for i in 0..N {
        let mut since = t.clone();
        for n in 0.. {
            assert!(n < 15, "agent {i} never reported node 3 without an agent");
            let r = lab.round_after(i, &since, ROUND_WAIT);
            since = r["started_at"].as_str().unwrap().to_string();
            if failed(&r).is_empty() {
                let skipped: Vec<(&str, &str, &str)> = checks(&r)
                    .iter()
                    .filter(|c| c["ok"].is_null())
                    .map(|c| {
                        let s = |k: &str| c[k].as_str().unwrap_or("");
                        (s("kind"), s("target"), s("reason"))
                    })
                    .collect();
                assert_eq!(
                    skipped,
                    [("node-without-agent", "node-3", "agent-starting")],
                    "agent {i}"
                );
                continue;
            }
            expect_failed(
                &r,
                set(&[format!("node-without-agent {}", node(3))]),
                &fewer,
            );
            break;
        }
    }
    prometheus_sum(lab, 4.0);
    assert!(lab
        .agent_output(1)
        .contains("Checking: node-3 198.18.1.13 - (no agent pod on this node)"));
    expect_alerts(lab, since, &[("NetworkTestNodeWithoutAgent", "node-3")]);
    lab.hide_agent(3, false);
    until_clean(lab, &now());
    until_no_alerts(lab);
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
