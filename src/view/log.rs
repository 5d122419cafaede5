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

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use crate::kind::{KindInfo, LineFormat, LogPlace, RowSlot};
use crate::report::{Change, Check, CheckKind, Outcome, RoundReport, Status, SMALL_CLUSTER_NODES};

/// Where a kind's checks go, as this view reads [`CheckKind::info`] (tests substitute a table).
type Info = fn(CheckKind) -> &'static KindInfo;

/// How a round's block lists nodes (`--log-table`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTable {
    /// A `Checking:` row for every node and every line: the original script's table.
    Full,
    /// The summary: the cluster-wide lines that failed, and the rows of nodes that fail or
    /// changed, each list capped (the rest are in `/status.json`); a line of counts says how
    /// many there are. Short when healthy, bounded when half the cluster is down.
    Failures,
    /// `Full` for rounds of at most [`SMALL_CLUSTER_NODES`] nodes, else `Failures`.
    Auto,
}

impl LogTable {
    /// Parses `full`, `failures` or `auto`.
    pub fn parse(text: &str) -> Result<LogTable, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(LogTable::Full),
            "failures" => Ok(LogTable::Failures),
            "auto" => Ok(LogTable::Auto),
            _ => Err(format!("{text:?} is not full, failures or auto")),
        }
    }
}

/// In the summary, at most this many node rows and this many status-change lines...
pub const MAX_LISTED: usize = 50;
/// ...and at most this many cluster-wide lines (DNS); then one `... and N more` line each.
/// A summary block is at most 1 + 1 + 21 + 1 + 51 + 1 + 51 = 127 lines.
pub const MAX_CLUSTER_LINES: usize = 20;

/// Renders the block for one round, newline-terminated, as `mode` says.
pub fn render(r: &RoundReport, mode: LogTable) -> String {
    render_with(r, mode, CheckKind::info)
}

fn render_with(r: &RoundReport, mode: LogTable, info: Info) -> String {
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
    if let Some(res) = r.resolver.as_ref().filter(|res| res.node_local_cache) {
        let _ = writeln!(
            out,
            "DNS lookups: through the node-local cache {} (not the DNS Service IP); the DNS instance checks query CoreDNS directly",
            res.nameserver
        );
    }
    let nodes = node_rows(&r.checks, info);
    let summary = match mode {
        LogTable::Full => false,
        LogTable::Failures => true,
        LogTable::Auto => nodes.len() > SMALL_CLUSTER_NODES,
    };
    // The cluster-wide lines, kind by kind in their rank (the script's `DNS: <ip> <name>`
    // lines first, then lookups, then the per-instance queries).
    let mut lines: Vec<(u8, CheckKind, LineFormat)> = CheckKind::ALL
        .into_iter()
        .filter_map(|k| match info(k).log {
            LogPlace::Line { rank, format } => Some((rank, k, format)),
            _ => None,
        })
        .collect();
    lines.sort_by_key(|(rank, _, _)| *rank);
    let mut cluster = Capped::new(if summary {
        MAX_CLUSTER_LINES
    } else {
        usize::MAX
    });
    for (_, kind, format) in lines {
        for c in r.checks.iter().filter(|c| c.kind == kind) {
            if !summary || c.is_failed() {
                cluster.push(&mut out, || cluster_line(format, c));
            }
        }
    }
    cluster.close(&mut out);
    let columns = columns(info);
    if summary {
        // Nodes whose row changed (a cluster-wide line's check may name a node too: a DNS
        // instance's; its change is no change of that node's row).
        let changed: HashSet<&str> = r
            .changes
            .iter()
            .filter(|c| !matches!(info(c.kind).log, LogPlace::Line { .. }))
            .map(|c| c.target_node.as_str())
            .collect();
        let listed: Vec<&(&str, Vec<&Check>)> = nodes
            .iter()
            .filter(|(node, checks)| checks.iter().any(|c| c.is_failed()) || changed.contains(node))
            .collect();
        let failing = listed
            .iter()
            .filter(|(_, checks)| checks.iter().any(|c| c.is_failed()))
            .count();
        let changed = nodes.iter().filter(|(n, _)| changed.contains(n)).count();
        let _ = writeln!(
            out,
            "Testing {} nodes: {failing} failing, {changed} changed (only those are listed; every node is in /status.json)",
            nodes.len()
        );
        let mut rows = Capped::new(MAX_LISTED);
        for (node, checks) in listed {
            rows.push(&mut out, || {
                node_line(node, checks, &columns, info)
                    .trim_end()
                    .to_string()
            });
        }
        rows.close(&mut out);
    } else {
        let _ = writeln!(out, "Testing {} nodes", nodes.len());
        for (node, checks) in &nodes {
            out.push_str(&node_line(node, checks, &columns, info));
        }
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
        let mut changes = Capped::new(if summary { MAX_LISTED } else { usize::MAX });
        for ch in &r.changes {
            changes.push(&mut out, || change_line(ch));
        }
        changes.close(&mut out);
    }
    out
}

/// Lines written up to a cap, then counted: `... and N more, see /status.json`.
struct Capped {
    cap: usize,
    written: usize,
    left_out: usize,
}

impl Capped {
    fn new(cap: usize) -> Capped {
        Capped {
            cap,
            written: 0,
            left_out: 0,
        }
    }

    /// Writes the line `line()` makes (only while under the cap: a left-out line costs
    /// nothing to format).
    fn push(&mut self, out: &mut String, line: impl FnOnce() -> String) {
        if self.written < self.cap {
            self.written += 1;
            let _ = writeln!(out, "{}", line());
        } else {
            self.left_out += 1;
        }
    }

    fn close(self, out: &mut String) {
        if self.left_out > 0 {
            let _ = writeln!(out, "... and {} more, see /status.json", self.left_out);
        }
    }
}

fn cluster_line(format: LineFormat, c: &Check) -> String {
    let status = status(c);
    match format {
        LineFormat::Answer { label } if c.is_ok() => format!("{label}: {} {}", c.address, c.answer),
        LineFormat::Answer { label } => {
            format!("{label}: {} ({}) - {status}", c.address, c.target)
        }
        LineFormat::Lookup { label } => format!("{label}: {} {} - {status}", c.target, c.answer),
        LineFormat::Timed { label } => format!(
            "{label}: {} {} {} - {status}",
            c.target,
            c.address,
            rtt_ms(c, " ms")
        ),
    }
}

/// The checks shown in node rows, grouped by node, nodes in the order their first check
/// appears (the plan's order); one pass over the checks.
fn node_rows(checks: &[Check], info: Info) -> Vec<(&str, Vec<&Check>)> {
    let mut rows: Vec<(&str, Vec<&Check>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for c in checks {
        if matches!(info(c.kind).log, LogPlace::Line { .. }) {
            continue;
        }
        let i = *index.entry(&c.target_node).or_insert_with(|| {
            rows.push((&c.target_node, Vec::new()));
            rows.len() - 1
        });
        if let Some((_, row)) = rows.get_mut(i) {
            row.push(c);
        }
    }
    rows
}

/// The node-row columns, in rank order: (kind, where its addresses go, always shown).
type Columns = Vec<(CheckKind, RowSlot, bool)>;

fn columns(info: Info) -> Columns {
    let mut columns: Vec<(u8, CheckKind, RowSlot, bool)> = CheckKind::ALL
        .into_iter()
        .filter_map(|k| match info(k).log {
            LogPlace::Column {
                rank,
                addresses,
                always,
            } => Some((rank, k, addresses, always)),
            _ => None,
        })
        .collect();
    columns.sort_by_key(|(rank, ..)| *rank);
    columns.into_iter().map(|(_, k, a, s)| (k, a, s)).collect()
}

/// `Checking: <node> <host-ip> Running - <pod> <pod-ip>;  host-ping: <ms> pod-ping: <ms> - OK`
fn node_line(node: &str, checks: &[&Check], columns: &Columns, info: Info) -> String {
    let of =
        |k: CheckKind| -> Vec<&Check> { checks.iter().copied().filter(|c| c.kind == k).collect() };
    let in_slot = |slot: RowSlot| -> Vec<&Check> {
        columns
            .iter()
            .filter(|(_, s, _)| *s == slot)
            .flat_map(|(k, ..)| of(*k))
            .collect()
    };
    let addrs = |cs: &[&Check]| join(cs.iter().map(|c| c.address.clone()), ",", "-");
    let rtts = |cs: &[&Check]| join(cs.iter().map(|c| rtt_ms(c, "")), "/", "-");
    let hosts = in_slot(RowSlot::Host);
    let agents = in_slot(RowSlot::Agent);
    let no_agent: Vec<&Check> = checks
        .iter()
        .copied()
        .filter(|c| info(c.kind).log == LogPlace::NoAgent)
        .collect();
    let agent = match (agents.first(), no_agent.first()) {
        (Some(p), _) => format!("Running - {} {}", p.target, addrs(&agents)),
        (None, Some(m)) => format!("- ({})", message(m)),
        (None, None) => "-".to_string(),
    };
    let mut shown: Vec<&Check> = Vec::new();
    let mut cells: Vec<String> = Vec::new();
    for (kind, _, always) in columns {
        let cs = of(*kind);
        if *always || !cs.is_empty() {
            cells.push(format!("{kind}: {}", rtts(&cs)));
        }
        shown.extend(cs);
    }
    shown.extend(no_agent);
    // A dual-stack row names the family of what failed: `host-ping ipv6: ...`.
    let families: HashSet<_> = shown.iter().filter_map(|c| c.family()).collect();
    let listed = |want: Status| -> Vec<String> {
        shown
            .iter()
            .filter(|c| c.status() == want)
            .map(|c| match c.family().filter(|_| families.len() > 1) {
                Some(f) => format!("{} {}: {}", c.kind, f.as_str(), message(c)),
                None => format!("{}: {}", c.kind, message(c)),
            })
            .collect()
    };
    let (failed, skipped) = (listed(Status::Failed), listed(Status::Skipped));
    let mut verdict: Vec<String> = Vec::new();
    if !failed.is_empty() {
        verdict.push(format!("FAIL ({})", failed.join("; ")));
    }
    if !skipped.is_empty() {
        verdict.push(format!("skipped ({})", skipped.join("; ")));
    }
    if verdict.is_empty() {
        verdict.push("OK".to_string());
    }
    format!(
        "Checking: {node} {} {agent};  {} - {}\n",
        addrs(&hosts),
        cells.join(" "),
        verdict.join(", ")
    )
}

fn change_line(ch: &Change) -> String {
    let word = |s: Option<Status>| match s {
        None => "absent",
        Some(Status::Passed) => "OK",
        Some(Status::Failed) => "FAIL",
        Some(Status::Skipped) => "skipped",
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
        word(ch.was),
        word(ch.now)
    )
}

/// `OK`, `FAIL (<why>)` or `skipped (<why>)`.
fn status(c: &Check) -> String {
    match c.outcome {
        Outcome::Passed => "OK".to_string(),
        Outcome::Failed { .. } => format!("FAIL ({})", message(c)),
        Outcome::Skipped { .. } => format!("skipped ({})", message(c)),
    }
}

/// A failure's or skip's message, on one line.
fn message(c: &Check) -> String {
    one_line(c.outcome.message().unwrap_or("failed"))
}

/// RTT in milliseconds with two decimals (the script's unit); `FAIL` or `skipped` when
/// there is none.
fn rtt_ms(c: &Check, unit: &str) -> String {
    match (c.status(), c.rtt_seconds) {
        (Status::Passed, Some(s)) => format!("{:.2}{unit}", s * 1000.0),
        (Status::Passed, None) => "OK".to_string(),
        (Status::Failed, _) => "FAIL".to_string(),
        (Status::Skipped, _) => "skipped".to_string(),
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
    use crate::report::Reason;
    use crate::report::SMALL_CLUSTER_NODES;

    fn check(kind: CheckKind, node: &str, target: &str, addr: &str, rtt: Option<f64>) -> Check {
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
            sent: 1,
            received: u32::from(c.is_ok()),
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
            outcome: Outcome::failed(Reason::NoAgent, "no agent pod on this node"),
            ..check(CheckKind::NodeWithoutAgent, "n3", "n3", "", None)
        };
        let checks = vec![
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
        ];
        RoundReport {
            started_at: "2026-11-29T10:00:00.000Z".into(),
            duration_seconds: 1.0123,
            first_round: false,
            ..RoundReport::new("n1", "agent-1", checks)
        }
    }

    #[test]
    fn a_dual_stack_row_names_the_family_that_fails() {
        let mut r = report();
        r.checks = vec![
            check(CheckKind::HostPing, "n2", "n2", "198.18.0.2", Some(0.0002)),
            check(CheckKind::HostPing, "n2", "n2", "2001:db8::2", None),
            check(
                CheckKind::PodPing,
                "n2",
                "agent-2",
                "198.18.100.2",
                Some(0.0002),
            ),
            check(CheckKind::PodPing, "n2", "agent-2", "2001:db8::100:2", None),
        ];
        let t = render(&r, LogTable::Full);
        assert!(
            t.contains("Checking: n2 198.18.0.2,2001:db8::2 Running - agent-2 198.18.100.2,2001:db8::100:2;  host-ping: 0.20/FAIL pod-ping: 0.20/FAIL - FAIL (host-ping ipv6: no reply within 1s; pod-ping ipv6: no reply within 1s)\n"),
            "{t}"
        );
    }

    #[test]
    fn says_when_lookups_go_through_a_node_local_cache() {
        let mut r = report();
        r.resolver = Some(crate::report::Resolver {
            nameserver: "169.254.20.10".into(),
            node_local_cache: true,
        });
        let t = render(&r, LogTable::Full);
        assert_eq!(
            t.lines().nth(1),
            Some("DNS lookups: through the node-local cache 169.254.20.10 (not the DNS Service IP); the DNS instance checks query CoreDNS directly")
        );
        r.resolver = Some(crate::report::Resolver {
            nameserver: "198.18.250.10".into(),
            node_local_cache: false,
        });
        assert!(!render(&r, LogTable::Full).contains("DNS lookups:"));
    }

    #[test]
    fn renders_the_original_scripts_table() {
        let t = render(&report(), LogTable::Full);
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

    /// Every DNS line format, passed and failed, in the script's order whatever the checks'
    /// order; a node known only by its agent; a host ping on a node without one.
    #[test]
    fn renders_every_line_format() {
        let answered = |kind, node, target, addr, answer: &str| Check {
            answer: answer.into(),
            ..check(kind, node, target, addr, Some(0.0012))
        };
        let refused = |kind, node, target, addr| Check {
            outcome: Outcome::failed(Reason::Refused, "refused"),
            ..check(kind, node, target, addr, None)
        };
        use CheckKind::*;
        let checks = vec![
            answered(
                DnsInstance,
                "n1",
                "coredns-a",
                "198.18.101.5",
                "198.18.250.10",
            ),
            refused(DnsInstance, "n2", "coredns-b", "198.18.101.6"),
            answered(DnsService, "", "kube-dns.tst.", "", "198.18.250.10"),
            refused(DnsService, "", "kubernetes.tst.", ""),
            answered(DnsReverse, "", "kube-dns", "198.18.250.10", "kube-dns.tst."),
            refused(DnsReverse, "n1", "coredns-a", "198.18.101.5"),
            check(PodPing, "n9", "agent-9", "198.18.100.9", Some(0.0001)),
            check(HostPing, "n8", "n8", "198.18.0.8", Some(0.0001)),
        ];
        let r = RoundReport {
            checks,
            errors: 3,
            first_round: true,
            ..report()
        };
        let t = render(&r, LogTable::Full);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines,
            [
                "Tests running on node: n1, host: agent-1, at 2026-11-29T10:00:00.000Z",
                "DNS: 198.18.250.10 kube-dns.tst.",
                "DNS: 198.18.101.5 (coredns-a) - FAIL (refused)",
                "DNS lookup: kube-dns.tst. 198.18.250.10 - OK",
                "DNS lookup: kubernetes.tst.  - FAIL (refused)",
                "DNS instance: coredns-a 198.18.101.5 1.20 ms - OK",
                "DNS instance: coredns-b 198.18.101.6 FAIL - FAIL (refused)",
                "Testing 2 nodes",
                "Checking: n9 - Running - agent-9 198.18.100.9;  host-ping: - pod-ping: 0.10 - OK",
                "Checking: n8 198.18.0.8 -;  host-ping: 0.10 - OK",
                "Result: 3 of 8 checks failed, round took 1.01 s",
                "First test run, nothing to compare with yet.",
            ]
        );
    }

    #[test]
    fn skipped_checks_say_so_and_count_as_neither() {
        let mut r = report();
        r.checks[4].outcome = Outcome::skipped(Reason::NoAgent, "agent pod is terminating");
        r.errors = 1;
        r.changes = crate::report::diff(&report().checks, &r.checks);
        let t = render(&r, LogTable::Full);
        assert!(
            t.contains("host-ping: 0.20 pod-ping: skipped - skipped (pod-ping: agent pod is terminating)\n"),
            "{t}"
        );
        assert!(t.contains("Result: 1 of 7 checks failed"), "{t}");
        assert!(
            t.contains("Status change: pod-ping n2 agent-2 198.18.100.2: FAIL -> skipped\n"),
            "{t}"
        );
    }

    /// A kind is placed by its properties alone: give an existing kind (here dns-instance)
    /// the properties of a new per-node column, and it shows in its node's row (in rank order,
    /// with its failures) and no longer as a line of its own.
    #[test]
    fn a_kind_placed_as_a_column_shows_in_its_node_row() {
        fn info(k: CheckKind) -> &'static KindInfo {
            const MTU: KindInfo = KindInfo {
                name: "dns-instance",
                rtt: true,
                log: LogPlace::Column {
                    rank: 3,
                    addresses: RowSlot::Hidden,
                    always: false,
                },
                failed_gauge: None,
            };
            match k {
                CheckKind::DnsInstance => &MTU,
                k => k.info(),
            }
        }
        let mut r = report();
        r.checks.push(check(
            CheckKind::DnsInstance,
            "n2",
            "agent-2",
            "198.18.100.2",
            None,
        ));
        r.checks.push(check(
            CheckKind::DnsInstance,
            "n1",
            "agent-1",
            "198.18.100.1",
            Some(0.0004),
        ));
        let t = render_with(&r, LogTable::Full, info);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[2], "Testing 3 nodes");
        assert_eq!(
            lines[3],
            "Checking: n1 198.18.0.1 Running - agent-1 198.18.100.1;  host-ping: 0.05 pod-ping: 0.07 dns-instance: 0.40 - OK"
        );
        assert_eq!(
            lines[4],
            "Checking: n2 198.18.0.2 Running - agent-2 198.18.100.2;  host-ping: 0.20 pod-ping: FAIL dns-instance: FAIL - FAIL (pod-ping: no reply within 1s; dns-instance: no reply within 1s)"
        );
        assert!(!t.contains("DNS instance:"), "{t}");
        // With the real table the same checks are lines of their own.
        assert!(
            render(&r, LogTable::Full).contains("DNS instance: agent-2 198.18.100.2 FAIL - FAIL")
        );
    }

    #[test]
    fn api_line_says_how_old_the_members_are() {
        let mut r = report();
        r.api_error = Some("timed out\ntalking".into());
        r.snapshot_age_seconds = 185.4;
        let t = render(&r, LogTable::Full);
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
        r.checks[4].outcome = Outcome::failed(Reason::Timeout, "bad\nthing");
        r.changes = crate::report::diff(&[], &r.checks[3..5]);
        let t = render(&r, LogTable::Full);
        assert!(t.contains("pod-ping: bad thing)"));
        assert!(t.contains("Status change: pod-ping n2 agent-2 198.18.100.2: absent -> FAIL"));
        assert!(!t.contains("No status changes"));
    }

    /// A report of `n` healthy nodes (host and pod ping each) and a DNS service line.
    fn nodes(n: usize) -> RoundReport {
        let mut checks = vec![report().checks[0].clone()];
        for i in 0..n {
            let node = format!("n{i}");
            checks.push(check(
                CheckKind::HostPing,
                &node,
                &node,
                "198.18.0.1",
                Some(0.0001),
            ));
            checks.push(check(
                CheckKind::PodPing,
                &node,
                "agent",
                "198.18.100.1",
                Some(0.0001),
            ));
        }
        RoundReport {
            checks,
            errors: 0,
            ..report()
        }
    }

    #[test]
    fn auto_is_the_full_table_in_small_clusters() {
        for r in [report(), nodes(SMALL_CLUSTER_NODES)] {
            assert_eq!(render(&r, LogTable::Auto), render(&r, LogTable::Full));
        }
        let big = nodes(SMALL_CLUSTER_NODES + 1);
        assert_ne!(render(&big, LogTable::Auto), render(&big, LogTable::Full));
        assert_eq!(
            render(&big, LogTable::Auto),
            render(&big, LogTable::Failures)
        );
        assert_eq!(LogTable::parse("Full"), Ok(LogTable::Full));
        assert!(LogTable::parse("all").is_err());
    }

    #[test]
    fn the_summary_lists_failed_lines_and_failing_or_changed_nodes() {
        let mut r = report();
        // n1 changed (its pod ping is new); n2 and n3 fail; a DNS line fails.
        r.checks[0].outcome = Outcome::failed(Reason::Nxdomain, "no such name");
        r.changes = crate::report::diff(&[], &r.checks[2..3]);
        let t = render(&r, LogTable::Failures);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines,
            [
                "Tests running on node: n1, host: agent-1, at 2026-11-29T10:00:00.000Z",
                "DNS: 198.18.250.10 (kube-dns) - FAIL (no such name)",
                "Testing 3 nodes: 2 failing, 1 changed (only those are listed; every node is in /status.json)",
                "Checking: n1 198.18.0.1 Running - agent-1 198.18.100.1;  host-ping: 0.05 pod-ping: 0.07 - OK",
                "Checking: n2 198.18.0.2 Running - agent-2 198.18.100.2;  host-ping: 0.20 pod-ping: FAIL - FAIL (pod-ping: no reply within 1s)",
                "Checking: n3 198.18.0.3 - (no agent pod on this node);  host-ping: 0.30 - FAIL (node-without-agent: no agent pod on this node)",
                "Result: 2 of 7 checks failed, round took 1.01 s",
                "Status change: pod-ping n1 agent-1 198.18.100.1: absent -> OK",
            ]
        );
    }

    #[test]
    fn the_summary_caps_each_list() {
        let mut r = nodes(300);
        for c in r.checks.iter_mut().skip(1) {
            c.outcome = Outcome::failed(Reason::Timeout, "no reply within 1s");
        }
        r.checks[0].outcome = Outcome::failed(Reason::Timeout, "timed out");
        let dns = r.checks[0].clone();
        r.checks.splice(0..0, (0..30).map(|_| dns.clone()));
        // 600 pings and the 31 DNS lines changed.
        r.changes = crate::report::diff(&nodes(300).checks, &r.checks);
        let t = render(&r, LogTable::Auto);
        let count = |prefix: &str| t.lines().filter(|l| l.starts_with(prefix)).count();
        assert_eq!(count("DNS: "), MAX_CLUSTER_LINES);
        assert_eq!(count("Checking: "), MAX_LISTED);
        assert_eq!(count("Status change: "), MAX_LISTED);
        let more: Vec<&str> = t.lines().filter(|l| l.starts_with("... and ")).collect();
        assert_eq!(
            more,
            [
                "... and 11 more, see /status.json",
                "... and 250 more, see /status.json",
                "... and 581 more, see /status.json"
            ]
        );
        assert!(t.lines().count() <= 150);
    }

    #[test]
    fn a_changed_dns_line_lists_no_node_row() {
        let mut r = nodes(60);
        let mut instance = check(
            CheckKind::DnsInstance,
            "n1",
            "coredns-a",
            "198.18.101.5",
            None,
        );
        r.changes = crate::report::diff(&[instance.clone()], &[]);
        instance.outcome = Outcome::failed(Reason::Refused, "refused");
        r.checks.push(instance);
        r.errors = 1;
        let t = render(&r, LogTable::Auto);
        assert!(t.contains("Testing 60 nodes: 0 failing, 0 changed"), "{t}");
        assert!(!t.contains("Checking: "), "{t}");
        assert!(
            t.contains("DNS instance: coredns-a 198.18.101.5 FAIL - FAIL (refused)"),
            "{t}"
        );
    }
}
