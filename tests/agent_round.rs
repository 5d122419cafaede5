//! The agent's round, outputs and endpoints against a real (namespace-built) cluster: the
//! API stand-in, dnsmasq DNS pods, the real binary. Needs root; in CI it must run.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cluster_box::lab::{Lab, Options, Shown, FAST_ROUNDS};
use cluster_box::{need_root, Spec};
use common::now;
use k8s_api_standin::Fault;
use k8s_network_test_daemonset::report::{Reason, RoundReport, Status};

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

/// `(kind, target, error)` of every failed check of a round, in the round's order.
fn failed(r: &RoundReport) -> Vec<(String, String, String)> {
    r.checks
        .iter()
        .filter(|c| c.is_failed())
        .map(|c| {
            let error = c.outcome.message().unwrap_or_default().to_string();
            (c.kind.as_str().to_string(), c.target.clone(), error)
        })
        .collect()
}

/// The targets of a round's checks of `kind`.
fn targets(r: &RoundReport, kind: &str) -> Vec<String> {
    r.checks
        .iter()
        .filter(|c| c.kind.as_str() == kind)
        .map(|c| c.target.clone())
        .collect()
}

#[test]
fn once_prints_the_table_or_json_and_exits_by_result() {
    if !need_root("once_prints_the_table_or_json_and_exits_by_result") {
        return;
    }
    let mut lab = lab(3);
    // The peers' agents listen (their `pod-tcp` checks pass) once they published a round.
    for i in 0..3 {
        lab.round_after(i, "", Duration::from_secs(45));
    }
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
    let all = common::planned_checks(&objects, &lab.cluster.spec.domain)
        .checks
        .len();
    assert!(
        out.contains(&format!("Result: 0 of {all} checks failed")),
        "{out}"
    );

    // A DNS instance stopped and a node without an agent: exit 1, JSON names exactly those.
    lab.cluster.dns[0].stop();
    lab.hide_agent(2, true);
    let (code, out, err) = lab.run_once(0, &["--once", "--output", "json"]);
    assert_eq!(code, 1, "{err}");
    let r: RoundReport = serde_json::from_str(&out).expect("JSON round");
    let failed_kinds: Vec<(&str, &str)> = r
        .checks
        .iter()
        .filter(|c| c.is_failed())
        .map(|c| (c.kind.as_str(), c.target.as_str()))
        .collect();
    assert_eq!(
        failed_kinds,
        [
            ("dns-instance", "coredns-0"),
            ("node-without-agent", "node-2")
        ]
    );
    // Node 2's pod ping, handshake and large echo gave way to its node-without-agent check.
    assert_eq!(r.checks.len(), all - 2, "{out}");
    assert_eq!(r.errors, 2);
    assert_eq!(
        (r.node.as_str(), r.pod.as_str()),
        ("control-plane-0", "k8s-network-test-daemonset-0")
    );
    lab.cluster.dns[0].start();
    lab.hide_agent(2, false);

    // Agent pods listed but unusable: without an IP yet, or being deleted. The first node
    // fails as without agent; the second is skipped (its agent is terminating: a rollout), with
    // that reason, in the JSON and in the table.
    lab.show_agent(1, Some(Shown::NoIp));
    lab.show_agent(2, Some(Shown::Deleting));
    let (code, out, err) = lab.run_once(0, &["--once", "--output", "json"]);
    assert_eq!(code, 1, "{out}{err}");
    let r: RoundReport = serde_json::from_str(&out).expect("JSON round");
    // Discovery reads the agents' EndpointSlices, which list a pod only once it has an IP:
    // the node of a pod without one reads as having no agent pod at all.
    let no_ip = "no agent pod on this node";
    let deleting = "agent pod k8s-network-test-daemonset-2 is being deleted";
    assert_eq!(
        failed(&r),
        [("node-without-agent".into(), "node-1".into(), no_ip.into())]
    );
    let terminating = format!("{deleting} (terminating: a new one follows)");
    let skipped: Vec<(String, Option<Reason>, Option<&str>)> = r
        .checks
        .iter()
        .filter(|c| c.status() == Status::Skipped)
        .map(|c| (c.target.clone(), c.outcome.reason(), c.outcome.message()))
        .collect();
    assert_eq!(
        skipped,
        [(
            "node-2".to_string(),
            Some(Reason::AgentTerminating),
            Some(terminating.as_str())
        )]
    );
    assert_eq!(targets(&r, "pod-ping"), ["k8s-network-test-daemonset-0"]);
    // Each of the two nodes traded a pod ping, a handshake and a large echo for a
    // node-without-agent check.
    assert_eq!(r.checks.len(), all - 4, "{out}");
    let (_, table, _) = lab.run_once(0, &["--once"]);
    assert!(
        table.contains(&format!("Checking: node-1 198.18.1.11 - ({no_ip})"))
            && table.contains(&format!("Checking: node-2 198.18.1.12 - ({terminating})")),
        "{table}"
    );
    lab.show_agent(1, None);
    lab.show_agent(2, None);

    // The service IP unreachable: the service and reverse checks fail, every other passes.
    lab.cluster.set_service_reachable(false);
    let (code, out, _) = lab.run_once(2, &["--once", "--output", "json"]);
    assert_eq!(code, 1);
    let r: RoundReport = serde_json::from_str(&out).unwrap();
    assert_eq!(r.checks.len(), all, "{out}");
    let kinds = |ok: bool| -> BTreeSet<&str> {
        r.checks
            .iter()
            .filter(|c| c.is_ok() == ok)
            .map(|c| c.kind.as_str())
            .collect()
    };
    assert_eq!(kinds(false), BTreeSet::from(["dns-service", "dns-reverse"]));
    assert_eq!(
        kinds(true),
        BTreeSet::from([
            "api",
            "host-ping",
            "pod-ping",
            "pod-tcp",
            "pod-mtu",
            "dns-instance"
        ])
    );
    lab.cluster.set_service_reachable(true);

    // The cluster domain: `--cluster-domain` beats the pod's search list; without either,
    // cluster.local (with a warning), whose names this cluster's DNS does not serve.
    let (code, out, err) = lab.run_once(
        0,
        &[
            "--once",
            "--output",
            "json",
            "--cluster-domain",
            "cluster.local",
        ],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(!err.contains("from the search list"), "{err}");
    let r: RoundReport = serde_json::from_str(&out).unwrap();
    let local = [
        "kube-dns.kube-system.svc.cluster.local.",
        "kubernetes.default.svc.cluster.local.",
    ];
    assert_eq!(targets(&r, "dns-service"), local);
    let wrong_domain: Vec<(String, String)> = failed(&r)
        .into_iter()
        .map(|(kind, target, _)| (kind, target))
        .collect();
    let want: Vec<(String, String)> = [
        ("dns-service", local[0]),
        ("dns-service", local[1]),
        ("dns-instance", "coredns-0"),
        ("dns-instance", "coredns-1"),
    ]
    .map(|(k, t)| (k.to_string(), t.to_string()))
    .to_vec();
    assert_eq!(wrong_domain, want, "{out}");
    let no_search = lab.cluster.dir.join("resolv-without-svc.conf");
    std::fs::write(
        &no_search,
        "search example.org\nnameserver 198.19.250.10\noptions ndots:5\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&no_search, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let resolv = no_search.to_str().unwrap();
    let (code, out, err) =
        lab.run_once(0, &["--once", "--output", "json", "--resolv-conf", resolv]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("no svc.<domain> entry in the search list")
            && err.contains("assuming cluster.local (set --cluster-domain)"),
        "{err}"
    );
    let r: RoundReport = serde_json::from_str(&out).unwrap();
    assert_eq!(targets(&r, "dns-service"), local);
    // The environment twin sets it as well; then every check passes again.
    let (code, out, err) = lab.run_once_env(
        0,
        &["--once", "--output", "json", "--resolv-conf", resolv],
        &[("NETTEST_CLUSTER_DOMAIN", "cluster.tst.local")],
    );
    assert_eq!(code, 0, "{out}{err}");
    let r: RoundReport = serde_json::from_str(&out).unwrap();
    assert_eq!(
        targets(&r, "dns-service"),
        [
            "kube-dns.kube-system.svc.cluster.tst.local.",
            "kubernetes.default.svc.cluster.tst.local."
        ]
    );
    assert_eq!(r.checks.len(), all, "{out}");

    // The API unreachable before any discovery: exit 2 with one line.
    lab.api.set_fault(Fault::CloseImmediately);
    let (code, out, err) = lab.run_once(0, &["--once"]);
    assert_eq!(code, 2, "{out}{err}");
    // The closing line says why and what to check (the API server and the path to it).
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.contains("ERROR")
            && last.contains(&format!(
                "cannot run a round: cannot connect to {}",
                lab.api.url()
            ))
            && last.contains("check --api-server"),
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
    // The round slot, logged once at start-up.
    let log = lab.agent_log(0);
    let slots: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("rounds start ") && l.contains(" into each 2s of the wall clock"))
        .collect();
    assert_eq!(slots.len(), 1, "{log}");

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

    // A status change between two rounds shows in the table and the JSON. The mark comes
    // once the rule is in place, so the round after it sees the dropped pings.
    lab.cluster.drop_icmp_at_agent(1, true);
    let t = now();
    let r = lab.round_after(0, &t, Duration::from_secs(30));
    let changes = r["changes"].as_array().unwrap();
    // The small echo and the large one (pod-mtu) to that pod.
    assert_eq!(changes.len(), 2, "{r}");
    assert_eq!(changes[0]["kind"], "pod-ping");
    assert_eq!(changes[1]["kind"], "pod-mtu");
    assert_eq!(changes[0]["was_ok"], true);
    assert_eq!(changes[0]["now_ok"], false);
    std::thread::sleep(Duration::from_millis(300));
    assert!(lab.agent_output(0).contains(
        "Status change: pod-ping node-1 k8s-network-test-daemonset-1 198.19.1.10: OK -> FAIL"
    ));

    // SIGTERM ends the agent promptly (it is PID 1 in its container), not at its next
    // round: with a minute between rounds, an agent that only looked between rounds would
    // take up to that minute. 5 s holds on two busy cores (the design is within a second).
    let t = now();
    lab.restart_agent(
        0,
        &[
            "--interval",
            "60s",
            "--timeout",
            "500ms",
            "--dns-timeout",
            "1s",
        ],
    );
    lab.round_after(0, &t, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let took = lab
        .terminate_agent(0, Duration::from_secs(20))
        .expect("agent exits on SIGTERM");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// Until its first round, the real agent serves `/livez` but answers `/readyz` and
/// `/status.json` with 503 (the kubelet's readiness probe depends on it); HEAD gets the
/// headers alone, other methods 405 with `Allow`.
#[test]
fn unready_until_the_first_round() {
    if !need_root("unready_until_the_first_round") {
        return;
    }
    let mut lab = lab(1);
    // A fresh agent that cannot discover anything: its first round cannot run.
    lab.api.set_fault(Fault::CloseImmediately);
    lab.restart_agent(0, &FAST_ROUNDS);
    let start = Instant::now();
    while lab.agent_get(0, "/livez").map(|r| r.status) != Ok(200) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the endpoint never came up; log:\n{}",
            lab.agent_log(0)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Two discoveries failed (a round every 2 s), and still no round.
    while lab.agent_log(0).matches("kubernetes api:").count() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{}",
            lab.agent_log(0)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for path in ["/readyz", "/status.json"] {
        let r = lab.agent_get(0, path).unwrap();
        assert_eq!(r.status, 503, "{path}: {r:?}");
        let head = lab.agent_request(0, "HEAD", path).unwrap();
        assert_eq!(head.status, 503, "HEAD {path}");
        assert_eq!(head.body, "", "HEAD {path} has no body");
        assert_eq!(
            head.header("content-length"),
            Some(r.body.len().to_string().as_str()),
            "HEAD {path}: the GET's Content-Length"
        );
    }
    assert_eq!(lab.agent_get(0, "/livez").unwrap().status, 200);
    let post = lab.agent_request(0, "POST", "/livez").unwrap();
    assert_eq!(post.status, 405, "{post:?}");
    assert_eq!(post.header("allow"), Some("GET, HEAD"));

    // The API back: the first round makes the agent ready.
    lab.api.clear_fault();
    let t = now();
    lab.round_after(0, &t, Duration::from_secs(30));
    assert_eq!(lab.agent_get(0, "/readyz").unwrap().status, 200);
    assert_eq!(lab.agent_get(0, "/status.json").unwrap().status, 200);
    // (`/livez`, as its body does not change from one request to the next.)
    let page = lab.agent_get(0, "/livez").unwrap();
    let head = lab.agent_request(0, "HEAD", "/livez").unwrap();
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    assert_eq!(
        head.header("content-length"),
        Some(page.body.len().to_string().as_str())
    );
}

/// The real binary with `--peers 1 --dns-instance-peers 1` on every node of a 4-node cluster:
/// together the agents check every node exactly once besides its own agent, and each DNS
/// instance once; the service checks stay on every agent. And `--log-table failures` prints
/// the summary of a healthy round in four lines.
#[test]
fn reduced_mesh_and_summary_from_the_real_binary() {
    if !need_root("reduced_mesh_and_summary_from_the_real_binary") {
        return;
    }
    let lab = lab(4);
    let mut by_node: std::collections::BTreeMap<String, usize> = Default::default();
    let mut instances: std::collections::BTreeMap<String, usize> = Default::default();
    for i in 0..4 {
        let args = [
            "--once",
            "--output",
            "json",
            "--peers",
            "1",
            "--dns-instance-peers",
            "1",
        ];
        let (code, out, err) = lab.run_once(i, &args);
        assert_eq!(code, 0, "{out}{err}");
        let r: RoundReport = serde_json::from_str(&out).expect("JSON round");
        let nodes: BTreeSet<&str> = r
            .checks
            .iter()
            .filter(|c| c.kind.as_str().ends_with("-ping"))
            .map(|c| c.target_node.as_str())
            .collect();
        assert!(nodes.contains(r.node.as_str()), "{} checks itself", r.node);
        for n in nodes.iter().filter(|n| **n != r.node) {
            *by_node.entry(n.to_string()).or_default() += 1;
        }
        assert_eq!(targets(&r, "dns-service").len(), 2, "{out}");
        for t in targets(&r, "dns-instance") {
            *instances.entry(t).or_default() += 1;
        }
    }
    assert_eq!(by_node.len(), 4, "{by_node:?}");
    assert!(by_node.values().all(|n| *n == 1), "{by_node:?}");
    assert_eq!(instances.len(), lab.cluster.dns.len(), "{instances:?}");
    assert!(instances.values().all(|n| *n == 1), "{instances:?}");

    let (code, out, err) = lab.run_once(0, &["--once", "--log-table", "failures"]);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("Tests running on node: control-plane-0"));
    assert_eq!(
        lines[1],
        "Testing 4 nodes: 0 failing, 0 changed (only those are listed; every node is in /status.json)"
    );
    assert!(lines[2].starts_with("Result: 0 of "), "{out}");
    assert_eq!(lines[3], "First test run, nothing to compare with yet.");
}
