//! The `kubectl logs` view of a round: the original shell script's table (README,
//! "Why"), line for line where it can be.
//!
//! ```text
//! Tests running on node: n1, host: agent-x, at 2026-11-29T10:00:00.000Z
//! DNS: 198.18.250.10 kube-dns.kube-system.svc.cluster.tst.local.
//! DNS lookup: kubernetes.default.svc.cluster.tst.local. 198.18.250.1 - OK
//! DNS instance: coredns-a 198.18.101.5 1.20 ms - OK
//! Testing 4 nodes
//! Checking: n1 198.18.0.1 Running - agent-x 198.18.100.1;  host-ping: 0.05 pod-ping: 0.07 - OK
//! Result: 0 of 14 checks failed, round took 1.01 s
//! No status changes since previous test run.
//! ```
//! RTTs are in milliseconds, as in that script. The block is built whole and printed at once.

use std::fmt::Write;

use crate::report::{Change, Check, CheckKind, RoundReport};

/// Renders the whole table for one round, newline-terminated.
pub fn render(r: &RoundReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Tests running on node: {}, host: {}, at {}",
        r.node, r.pod, r.started_at
    );
    if let Some(e) = &r.api_error {
        let _ = writeln!(
            out,
            "API: {e} (probing the last known members, discovered {age} ago)",
            e = one_line(e),
            age = age(r.snapshot_age_seconds)
        );
    }
    // The script's `DNS: <ip> <name>` lines first, then lookups, then the per-instance queries.
    for kind in [
        CheckKind::DnsReverse,
        CheckKind::DnsService,
        CheckKind::DnsInstance,
    ] {
        for c in r.checks.iter().filter(|c| c.kind == kind) {
            let status = status(c);
            let _ = match c.kind {
                CheckKind::DnsReverse if c.ok => writeln!(out, "DNS: {} {}", c.address, c.answer),
                CheckKind::DnsReverse => {
                    writeln!(out, "DNS: {} ({}) - {status}", c.address, c.target)
                }
                CheckKind::DnsService => {
                    writeln!(out, "DNS lookup: {} {} - {status}", c.target, c.answer)
                }
                _ => writeln!(
                    out,
                    "DNS instance: {} {} {} - {status}",
                    c.target,
                    c.address,
                    rtt_ms(c, " ms")
                ),
            };
        }
    }
    let nodes = node_order(&r.checks);
    let _ = writeln!(out, "Testing {} nodes", nodes.len());
    for node in &nodes {
        out.push_str(&node_line(node, &r.checks));
    }
    let _ = writeln!(
        out,
        "Result: {} of {} checks failed, round took {:.2} s",
        r.errors,
        r.checks.len(),
        r.duration_seconds
    );
    if r.first_round {
        let _ = writeln!(out, "First test run, nothing to compare with yet.");
    } else if r.changes.is_empty() {
        let _ = writeln!(out, "No status changes since previous test run.");
    } else {
        for ch in &r.changes {
            let _ = writeln!(out, "{}", change_line(ch));
        }
    }
    out
}

/// Nodes in the order their first check appears (the plan's order).
fn node_order(checks: &[Check]) -> Vec<&str> {
    let mut nodes: Vec<&str> = Vec::new();
    for c in checks {
        let per_node = matches!(
            c.kind,
            CheckKind::HostPing | CheckKind::PodPing | CheckKind::NodeWithoutAgent
        );
        if per_node && !nodes.contains(&c.target_node.as_str()) {
            nodes.push(&c.target_node);
        }
    }
    nodes
}

/// `Checking: <node> <host-ip> <phase> - <pod> <pod-ip>;  host-ping: <ms> pod-ping: <ms> - OK`
fn node_line(node: &str, checks: &[Check]) -> String {
    let of = |k: CheckKind| -> Vec<&Check> {
        checks
            .iter()
            .filter(|c| c.kind == k && c.target_node == node)
            .collect()
    };
    let hosts = of(CheckKind::HostPing);
    let pods = of(CheckKind::PodPing);
    let missing = of(CheckKind::NodeWithoutAgent);
    let addrs = |cs: &[&Check]| join(cs.iter().map(|c| c.address.clone()), ",", "-");
    let rtts = |cs: &[&Check]| join(cs.iter().map(|c| rtt_ms(c, "")), "/", "-");
    let agent = match (pods.first(), missing.first()) {
        (Some(p), _) => format!("Running - {} {}", p.target, addrs(&pods)),
        (None, Some(m)) => format!("- ({})", m.error.as_deref().unwrap_or("no agent")),
        (None, None) => "-".to_string(),
    };
    let mut line = format!(
        "Checking: {node} {} {agent};  host-ping: {}",
        addrs(&hosts),
        rtts(&hosts)
    );
    if !pods.is_empty() {
        let _ = write!(line, " pod-ping: {}", rtts(&pods));
    }
    let failures: Vec<String> = hosts
        .iter()
        .chain(&pods)
        .chain(&missing)
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.kind.as_str(), reason(c)))
        .collect();
    if failures.is_empty() {
        line.push_str(" - OK\n");
    } else {
        let _ = writeln!(line, " - FAIL ({})", failures.join("; "));
    }
    line
}

fn change_line(ch: &Change) -> String {
    let word = |s: Option<bool>| match s {
        None => "absent",
        Some(true) => "OK",
        Some(false) => "FAIL",
    };
    let addr = if ch.address.is_empty() {
        String::new()
    } else {
        format!(" {}", ch.address)
    };
    format!(
        "Status change: {} {} {}{addr}: {} -> {}",
        ch.kind.as_str(),
        if ch.target_node.is_empty() {
            "-"
        } else {
            &ch.target_node
        },
        ch.target,
        word(ch.was_ok),
        word(ch.now_ok)
    )
}

fn status(c: &Check) -> String {
    if c.ok {
        "OK".to_string()
    } else {
        format!("FAIL ({})", reason(c))
    }
}

fn reason(c: &Check) -> String {
    one_line(c.error.as_deref().unwrap_or("failed"))
}

/// RTT in milliseconds with two decimals (the script's unit), `FAIL` when there is none.
fn rtt_ms(c: &Check, unit: &str) -> String {
    match (c.ok, c.rtt_seconds) {
        (true, Some(s)) => format!("{:.2}{unit}", s * 1000.0),
        (true, None) => "OK".to_string(),
        (false, _) => "FAIL".to_string(),
    }
}

/// A snapshot age for the `API:` line: `45s`, `12m05s`, `3h02m`.
fn age(seconds: f64) -> String {
    let s = if seconds.is_finite() && seconds > 0.0 {
        seconds.round() as u64
    } else {
        0
    };
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

fn join(items: impl Iterator<Item = String>, sep: &str, empty: &str) -> String {
    let v: Vec<String> = items.collect();
    if v.is_empty() {
        empty.to_string()
    } else {
        v.join(sep)
    }
}

/// Error texts can come from the network; keep the table one line per row.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: CheckKind, node: &str, target: &str, addr: &str, rtt: Option<f64>) -> Check {
        let c = Check::failed(kind, node, target, addr, "no reply within 1s");
        let c = rtt.map_or(c.clone(), |r| c.passed(r));
        Check {
            sent: 1,
            received: u32::from(c.ok),
            ..c
        }
    }

    fn report() -> RoundReport {
        let mut rev = check(
            CheckKind::DnsReverse,
            "",
            "kube-dns",
            "198.18.250.10",
            Some(0.001),
        );
        rev.answer = "kube-dns.kube-system.svc.cluster.tst.local.".into();
        let missing = Check {
            ok: false,
            error: Some("no agent pod on this node".into()),
            ..check(CheckKind::NodeWithoutAgent, "n3", "n3", "", None)
        };
        RoundReport {
            node: "n1".into(),
            pod: "agent-1".into(),
            started_at: "2026-11-29T10:00:00.000Z".into(),
            duration_seconds: 1.0123,
            errors: 2,
            checks: vec![
                rev,
                check(CheckKind::HostPing, "n1", "n1", "198.18.0.1", Some(0.00005)),
                check(
                    CheckKind::PodPing,
                    "n1",
                    "agent-1",
                    "198.18.100.1",
                    Some(0.00007),
                ),
                check(CheckKind::HostPing, "n2", "n2", "198.18.0.2", Some(0.0002)),
                check(CheckKind::PodPing, "n2", "agent-2", "198.18.100.2", None),
                check(CheckKind::HostPing, "n3", "n3", "198.18.0.3", Some(0.0003)),
                missing,
            ],
            changes: vec![],
            first_round: false,
            api_error: None,
            snapshot_age_seconds: 0.0,
        }
    }

    #[test]
    fn renders_the_original_scripts_table() {
        let t = render(&report());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines,
            [
                "Tests running on node: n1, host: agent-1, at 2026-11-29T10:00:00.000Z",
                "DNS: 198.18.250.10 kube-dns.kube-system.svc.cluster.tst.local.",
                "Testing 3 nodes",
                "Checking: n1 198.18.0.1 Running - agent-1 198.18.100.1;  host-ping: 0.05 pod-ping: 0.07 - OK",
                "Checking: n2 198.18.0.2 Running - agent-2 198.18.100.2;  host-ping: 0.20 pod-ping: FAIL - FAIL (pod-ping: no reply within 1s)",
                "Checking: n3 198.18.0.3 - (no agent pod on this node);  host-ping: 0.30 - FAIL (node-without-agent: no agent pod on this node)",
                "Result: 2 of 7 checks failed, round took 1.01 s",
                "No status changes since previous test run.",
            ]
        );
    }

    #[test]
    fn api_line_says_how_old_the_members_are() {
        let mut r = report();
        r.api_error = Some("timed out\ntalking".into());
        r.snapshot_age_seconds = 185.4;
        let t = render(&r);
        assert!(
            t.contains(
                "API: timed out talking (probing the last known members, discovered 3m05s ago)\n"
            ),
            "{t}"
        );
        assert_eq!(age(0.2), "0s");
        assert_eq!(age(59.4), "59s");
        assert_eq!(age(7322.0), "2h02m");
        assert_eq!(age(f64::NAN), "0s");
    }

    #[test]
    fn lists_changes_and_keeps_errors_on_one_line() {
        let mut r = report();
        r.checks[4].error = Some("bad\nthing".into());
        r.changes = crate::report::diff(&[], &r.checks[3..5]);
        let t = render(&r);
        assert!(t.contains("pod-ping: bad thing)"));
        assert!(t.contains("Status change: pod-ping n2 agent-2 198.18.100.2: absent -> FAIL"));
        assert!(!t.contains("No status changes"));
    }
}
