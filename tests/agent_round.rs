//! The agent's round, outputs and endpoints against a real (namespace-built) cluster: the
//! API stand-in, dnsmasq DNS pods, the real binary. Needs root; in CI it must run.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use cluster_box::lab::{Lab, Options, FAST_ROUNDS};
use cluster_box::{need_root, Spec};
use k8s_network_test_daemonset::report::RoundReport;

mod common;

const AGENT: &str = env!("CARGO_BIN_EXE_k8s-network-test-daemonset");

fn lab(nodes: usize) -> Lab {
    Lab::start(Options {
        spec: Spec {
            nodes,
            ..Spec::default()
        },
        binary: AGENT.into(),
        agent_args: FAST_ROUNDS.map(String::from).to_vec(),
        prometheus: false,
    })
}

fn now() -> String {
    k8s_network_test_daemonset::timefmt::rfc3339(SystemTime::now())
}

#[test]
fn once_prints_the_table_or_json_and_exits_by_result() {
    if !need_root("once_prints_the_table_or_json_and_exits_by_result") {
        return;
    }
    let mut lab = lab(3);
    // Healthy: exit 0, the original script's table, the cluster domain found in the pod's resolv.conf.
    let (code, out, err) = lab.run_once(1, &["--once"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("cluster domain cluster.tst.local (from the search list"),
        "{err}"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0]
        .starts_with("Tests running on node: node-1, host: k8s-network-test-daemonset-1, at "));
    assert!(
        out.contains("DNS: 198.19.250.10 kube-dns.kube-system.svc.cluster.tst.local."),
        "{out}"
    );
    assert!(out.contains("DNS: 198.19.0.100 coredns-0.kube-dns.kube-system.svc.cluster.tst.local."));
    assert!(out.contains("Testing 3 nodes"));
    assert!(out.contains("Checking: control-plane-0 198.18.1.10 Running - k8s-network-test-daemonset-0 198.19.0.10;  host-ping: "));
    let objects = cluster_box::lab::api_objects(&lab.cluster, &Default::default());
    let planned = common::planned_checks(&objects, &lab.cluster.spec.domain)
        .checks
        .len();
    assert!(
        out.contains(&format!("Result: 0 of {planned} checks failed")),
        "{out}"
    );

    // A DNS instance stopped and a node without an agent: exit 1, JSON names exactly those.
    lab.cluster.dns[0].stop();
    lab.hide_agent(2, true);
    let (code, out, err) = lab.run_once(0, &["--once", "--output", "json"]);
    assert_eq!(code, 1, "{err}");
    let r: RoundReport = serde_json::from_str(&out).expect("JSON round");
    let failed: Vec<(String, String)> = r
        .checks
        .iter()
        .filter(|c| c.is_failed())
        .map(|c| (c.kind.as_str().to_string(), c.target.clone()))
        .collect();
    assert_eq!(
        failed,
        [
            ("dns-instance".to_string(), "coredns-0".to_string()),
            ("node-without-agent".to_string(), "node-2".to_string())
        ]
    );
    assert_eq!(r.errors, 2);
    assert_eq!(
        (r.node.as_str(), r.pod.as_str()),
        ("control-plane-0", "k8s-network-test-daemonset-0")
    );
    lab.cluster.dns[0].start();
    lab.hide_agent(2, false);

    // The service IP unreachable: the service and reverse checks fail, instances answer.
    lab.cluster.set_service_reachable(false);
    let (code, out, _) = lab.run_once(2, &["--once", "--output", "json"]);
    assert_eq!(code, 1);
    let r: RoundReport = serde_json::from_str(&out).unwrap();
    for c in &r.checks {
        let kind = c.kind.as_str();
        let should_fail = kind == "dns-service" || kind == "dns-reverse";
        assert_eq!(
            c.is_ok(),
            !should_fail,
            "{kind} {}: {:?}",
            c.target,
            c.outcome
        );
    }
    lab.cluster.set_service_reachable(true);

    // The API unreachable before any discovery: exit 2 with one line.
    lab.api.set_fault(k8s_api_standin::Fault::CloseImmediately);
    let (code, out, err) = lab.run_once(0, &["--once"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.lines().any(|l| l.contains("cannot run a round")),
        "{err}"
    );
    lab.api.clear_fault();

    // A configuration error: one line, exit 2.
    let (code, _, err) = lab.run_once(0, &["--once", "--timeout", "soon"]);
    assert_eq!(code, 2);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--timeout"));
}

#[test]
fn endpoints_metrics_changes_and_sigterm() {
    if !need_root("endpoints_metrics_changes_and_sigterm") {
        return;
    }
    let mut lab = lab(2);
    let first = lab.round_after(0, &now(), Duration::from_secs(30));
    assert_eq!(first["first_round"], true);

    // Health, landing page, status JSON.
    assert_eq!(lab.agent_get(0, "/livez").unwrap().status, 200);
    assert_eq!(lab.agent_get(0, "/readyz").unwrap().status, 200);
    let landing = lab.agent_get(0, "/").unwrap();
    assert!(landing.body.contains("/prometheus.report"));
    assert_eq!(lab.agent_get(0, "/nope").unwrap().status, 404);
    let status: RoundReport =
        serde_json::from_str(&lab.agent_get(0, "/status.json").unwrap().body).unwrap();
    assert_eq!(status.node, "control-plane-0");

    // A live scrape passes promtool's lint and carries the original script's metric.
    let scrape = lab.agent_get(0, "/prometheus.report").unwrap();
    assert_eq!(scrape.status, 200);
    assert!(scrape.body.contains("networktest_total_error_count 0"));
    assert!(scrape
        .body
        .contains("networktest_target_up{kind=\"pod-ping\",target_node=\"node-1\""));
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (make setup installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.body.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {out:?}"
    );
    assert_eq!(
        lab.agent_get(0, "/metrics").unwrap().body.lines().next(),
        scrape.body.lines().next()
    );

    // A status change between two rounds shows in the table and the JSON.
    let t = now();
    lab.cluster.drop_icmp_at_agent(1, true);
    let r = lab.round_after(0, &t, Duration::from_secs(30));
    let changes = r["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{r}");
    assert_eq!(changes[0]["kind"], "pod-ping");
    assert_eq!(changes[0]["was_ok"], true);
    assert_eq!(changes[0]["now_ok"], false);
    std::thread::sleep(Duration::from_millis(300));
    assert!(lab.agent_output(0).contains(
        "Status change: pod-ping node-1 k8s-network-test-daemonset-1 198.19.1.10: OK -> FAIL"
    ));

    // SIGTERM ends the agent within a second (it is PID 1 in its container).
    let took = lab
        .terminate_agent(0, Duration::from_secs(5))
        .expect("agent exits on SIGTERM");
    assert!(took < Duration::from_secs(1), "took {took:?}");
}
