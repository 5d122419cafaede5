//! Every check kind goes through the whole pipeline: planned from a snapshot, run by the
//! round (with fake executors), and shown by every view (the log table, JSON, the metrics
//! through promtool, the status-change lines). A kind added to `CheckKind` fails here until
//! the plan yields it and it appears everywhere.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use cluster_box::prometheus::promtool_check_metrics;
use k8s_network_test_daemonset::kube::{self, AgentPod, DnsInfo, DnsInstance, NodeInfo, Snapshot};
use k8s_network_test_daemonset::plan::{self, Plan, Probe};
use k8s_network_test_daemonset::report::{
    CheckKind, LineFormat, LogPlace, Measured, Outcome, Reason, RoundReport,
};
use k8s_network_test_daemonset::round::{self, Context, Executors};
use k8s_network_test_daemonset::view::{log, metrics};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A cluster that yields every kind: a node with an agent, one without, the DNS service and
/// one instance. A new kind that needs more (a dual-stack node, ...) extends it.
fn snapshot() -> Snapshot {
    let node = |name: &str, addr: &str| NodeInfo {
        name: name.into(),
        internal_ips: vec![ip(addr)],
        control_plane: false,
        ready: true,
        unschedulable: false,
    };
    Snapshot {
        agents: vec![AgentPod {
            name: "agent-1".into(),
            node: "n1".into(),
            pod_ips: vec![ip("198.18.100.1")],
            host_ips: vec![ip("198.18.0.1")],
            phase: "Running".into(),
            ready: true,
            deleting: false,
        }],
        nodes: vec![node("n1", "198.18.0.1"), node("n2", "198.18.0.2")],
        dns: DnsInfo {
            service_missing: false,
            service_ips: vec![ip("198.18.250.10")],
            instances: vec![DnsInstance {
                ip: ip("198.18.101.5"),
                pod: Some("coredns-a".into()),
                node: Some("n1".into()),
                ready: true,
                serving: true,
                terminating: false,
            }],
        },
    }
}

/// Executors that answer at once: every probe passes, or every probe fails.
struct Fake {
    fail: bool,
    /// How many addresses each `echo` call got.
    echo_calls: Mutex<Vec<usize>>,
}

impl Fake {
    fn new(fail: bool) -> Fake {
        Fake {
            fail,
            echo_calls: Mutex::new(Vec::new()),
        }
    }
}

impl Executors for Fake {
    fn echo(&self, addrs: &[IpAddr]) -> Vec<Measured> {
        self.echo_calls.lock().unwrap().push(addrs.len());
        self.echo_mtu(addrs)
    }

    fn echo_mtu(&self, addrs: &[IpAddr]) -> Vec<Measured> {
        addrs
            .iter()
            .map(|_| match self.fail {
                true => Measured {
                    sent: 1,
                    ..Measured::failed(Reason::Timeout, "no reply within 1s")
                },
                false => Measured {
                    rtt_seconds: Some(0.0004),
                    sent: 1,
                    received: 1,
                    ..Measured::of(Outcome::Passed)
                },
            })
            .collect()
    }

    fn connect(&self, addrs: &[SocketAddr]) -> Vec<Measured> {
        addrs
            .iter()
            .map(|_| match self.fail {
                true => Measured::failed(Reason::Timeout, "no handshake within 1s"),
                false => Measured {
                    rtt_seconds: Some(0.0005),
                    ..Measured::of(Outcome::Passed)
                },
            })
            .collect()
    }

    fn dns(&self, probe: &Probe) -> Measured {
        assert!(!matches!(probe, Probe::Echo { .. } | Probe::Known(_)));
        match self.fail {
            true => Measured::failed(Reason::Servfail, "SERVFAIL"),
            false => Measured {
                rtt_seconds: Some(0.001),
                answer: "198.18.250.10".into(),
                ..Measured::of(Outcome::Passed)
            },
        }
    }
}

fn run(plan: &Plan, exec: &Fake, previous: &RoundReport) -> RoundReport {
    let ctx = Context {
        node: "n1",
        pod: "agent-1",
        previous: Some(previous),
        api_error: None,
        snapshot_age: Duration::ZERO,
    };
    round::run(plan, &ctx, exec)
}

fn kinds(r: &RoundReport) -> BTreeSet<CheckKind> {
    r.checks.iter().map(|c| c.kind).collect()
}

#[test]
fn every_kind_goes_through_the_plan_the_round_and_every_view() {
    let all: BTreeSet<CheckKind> = CheckKind::ALL.into_iter().collect();
    // The `api` check comes measured by discovery: passed in round 1, failed in round 2.
    let api_server = "https://198.18.0.100:6443";
    let plan = plan::plan(&snapshot(), "cluster.tst.local")
        .with_api(api_server, &Ok(Duration::from_millis(2)));
    let api_down = kube::Error::Timeout {
        server: api_server.into(),
    };
    let failing_plan =
        plan::plan(&snapshot(), "cluster.tst.local").with_api(api_server, &Err(api_down));
    let planned: BTreeSet<CheckKind> = plan.checks.iter().map(|c| c.key.kind).collect();
    assert_eq!(planned, all, "the plan yields every kind from the snapshot");

    // Round 1: every probe passes; compared with an empty round, every check is new.
    let empty = RoundReport {
        started_at: "2026-11-29T10:00:00.000Z".into(),
        ..RoundReport::new("n1", "agent-1", vec![])
    };
    let passing = Fake::new(false);
    let first = run(&plan, &passing, &empty);
    let echoes = plan
        .checks
        .iter()
        .filter(|c| matches!(c.probe, Probe::Echo { .. }))
        .count();
    assert_eq!(
        *passing.echo_calls.lock().unwrap(),
        [echoes],
        "one echo batch"
    );
    // Round 2: every probe fails.
    let second = run(&failing_plan, &Fake::new(true), &first);
    for r in [&first, &second] {
        let keys: Vec<_> = r.checks.iter().map(|c| c.key()).collect();
        let want: Vec<_> = plan
            .checks
            .iter()
            .map(|p| {
                let k = &p.key;
                (k.kind, &*k.target_node, &*k.target, &*k.address)
            })
            .collect();
        assert_eq!(keys, want, "one check per planned one, in plan order");
        assert_eq!(kinds(r), all);
        assert_eq!(r.errors, r.checks.iter().filter(|c| c.is_failed()).count());
    }
    assert_eq!(first.changes.len(), first.checks.len());
    assert!(second.checks.iter().all(|c| c.is_failed()));

    // The log: each check where its kind's properties put it, and every kind's changes.
    for r in [&first, &second] {
        let text = log::render(r, log::LogTable::Full);
        let (table, changes) = text.split_at(text.find("\nResult: ").expect("result line"));
        let lines: Vec<&str> = table.lines().collect();
        for c in &r.checks {
            let row = |node: &str| {
                let start = format!("Checking: {node} ");
                lines
                    .iter()
                    .find(|l| l.starts_with(&start))
                    .unwrap_or_else(|| panic!("no row for {node}:\n{text}"))
                    .to_string()
            };
            let shown = match c.kind.info().log {
                LogPlace::Line { format, .. } => {
                    let (LineFormat::Answer { label }
                    | LineFormat::Lookup { label }
                    | LineFormat::Timed { label }) = format;
                    let names = [&c.target, &c.address];
                    lines.iter().any(|l| {
                        l.starts_with(&format!("{label}: "))
                            && names
                                .iter()
                                .any(|n| !n.is_empty() && l.contains(n.as_str()))
                    })
                }
                LogPlace::Column { .. } => row(&c.target_node).contains(&format!("{}: ", c.kind)),
                LogPlace::NoAgent => row(&c.target_node)
                    .contains(&format!("({})", c.outcome.message().unwrap_or("?"))),
            };
            assert!(shown, "{c:?} not in the table:\n{text}");
            if let Some(message) = c.outcome.message().filter(|_| c.is_failed()) {
                assert!(table.contains(message), "{message} not in:\n{text}");
            }
        }
        for ch in &r.changes {
            assert!(
                changes.contains(&format!("Status change: {} ", ch.kind)),
                "{text}"
            );
        }
    }
    let changed: BTreeSet<CheckKind> = first.changes.iter().map(|c| c.kind).collect();
    assert_eq!(changed, all, "status-change lines for every kind");

    // JSON: round trip, every kind by name, reasons of the failures.
    for r in [&first, &second] {
        let text = serde_json::to_string_pretty(r).unwrap();
        let back: RoundReport = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, r);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let checks = value["checks"].as_array().unwrap();
        assert_eq!(checks.len(), r.checks.len());
        for kind in &all {
            assert!(
                checks.iter().any(|c| c["kind"] == kind.as_str()),
                "{kind} not in {text}"
            );
        }
        for c in checks {
            assert_eq!(c["ok"] == false, c["reason"].is_string(), "{c}");
        }
    }

    // Metrics: every kind counted, an RTT histogram for each that measures one, failures by
    // kind and reason; promtool finds nothing to say.
    let mut totals = metrics::Totals::new();
    totals.record(&first);
    totals.record(&second);
    let info = metrics::AgentInfo {
        version: "0.0.0".into(),
        node: "n1".into(),
        pod: "agent-1".into(),
    };
    let text = metrics::render(Some(&second), &totals, &info);
    let (code, printed) = promtool_check_metrics(&text);
    assert!(
        code == 0 && printed.trim().is_empty(),
        "promtool: {printed}"
    );
    for kind in &all {
        let made = second.checks.iter().filter(|c| c.kind == *kind).count();
        // The last-round gauges by kind and address family (none without an IP address).
        let families: BTreeSet<Option<&str>> = second
            .checks
            .iter()
            .filter(|c| c.kind == *kind)
            .map(|c| c.family().map(|f| f.as_str()))
            .collect();
        for family in families {
            let n = second
                .checks
                .iter()
                .filter(|c| c.kind == *kind && c.family().map(|f| f.as_str()) == family)
                .count();
            let labels = match family {
                Some(f) => format!("kind=\"{kind}\",family=\"{f}\""),
                None => format!("kind=\"{kind}\""),
            };
            for line in [
                format!("networktest_last_round_checks{{{labels}}} {n}\n"),
                format!("networktest_last_round_failed_checks{{{labels}}} {n}\n"),
            ] {
                assert!(text.contains(&line), "{line} missing in\n{text}");
            }
        }
        let line = format!("networktest_checks_total{{kind=\"{kind}\"}} {}\n", 2 * made);
        assert!(text.contains(&line), "{line} missing in\n{text}");
        let reasons: BTreeSet<Reason> = second
            .checks
            .iter()
            .filter(|c| c.kind == *kind)
            .filter_map(|c| c.outcome.reason())
            .collect();
        for reason in reasons {
            let series =
                format!("networktest_check_failures_total{{kind=\"{kind}\",reason=\"{reason}\"}}");
            assert!(text.contains(&series), "{series} missing in\n{text}");
        }
        let histogram = format!("networktest_rtt_seconds_count{{kind=\"{kind}\"}}");
        assert_eq!(text.contains(&histogram), kind.info().rtt, "{kind}");
    }
}

/// The README's table of checks names every kind, every reason is explained, and the bound
/// of the failure counter's series is the product of both.
#[test]
fn readme_documents_every_kind_and_reason() {
    let readme = include_str!("../README.md");
    for kind in CheckKind::ALL {
        assert!(
            readme.contains(&format!("\n| `{kind}` |")),
            "README's checks table lacks {kind}"
        );
    }
    for reason in Reason::ALL {
        assert!(
            readme.contains(&format!("`{reason}`")),
            "README lacks reason {reason}"
        );
    }
    let bound = format!("{} x {}", CheckKind::ALL.len(), Reason::ALL.len());
    assert!(
        readme.contains(&format!("({bound} today")),
        "README states the bound {bound}"
    );
}
