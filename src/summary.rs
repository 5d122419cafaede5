//! The compact per-peer summary (`/summary.json`): one small document per agent with the
//! result of each path in its last round, per target node, and its DNS results. Peer agents
//! fetch it to build the whole-cluster matrix (`matrix`), so it is written by one version of
//! the agent and read by others during a rollout:
//!
//! - `format` is 1. Newer agents may add fields and check kinds; they never change what an
//!   existing field means (a change that must would be a new document at a new path).
//! - Readers ignore fields they do not know and tolerate missing ones (every field but
//!   `node` has a default); a kind or status they do not know is shown as it is named.
//!
//! Pure: built from a [`RoundReport`], parsed from bytes; [`Lazy`] builds it only when first
//! needed.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::kind::{LineFormat, LogPlace};
use crate::report::{Check, RoundReport, Status};

/// The summary format this agent writes.
pub const FORMAT: u32 = 1;

/// Target nodes listed at most (the failing and skipped first); the rest are counted in
/// [`Summary::omitted_targets`]. Keeps a summary under about 500 KB at any cluster size.
pub const MAX_TARGETS: usize = 2_000;
/// Cluster-wide (DNS) results listed at most.
pub const MAX_DNS: usize = 64;
/// Checks listed per target node at most (a node has a host ping per InternalIP and a pod
/// ping per pod IP: a few).
pub const MAX_CHECKS_PER_TARGET: usize = 16;
/// A failure message is cut to this many characters (it ends up in a tooltip).
pub const MAX_MESSAGE: usize = 160;

/// The column of the DNS block for cluster-wide checks that are not one instance's.
pub const SERVICE_COLUMN: &str = "service";

/// One agent's last round, in short.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The format version ([`FORMAT`]); 0 when a reader finds none.
    #[serde(default)]
    pub format: u32,
    /// The node the agent runs on (the row of the matrix).
    pub node: String,
    #[serde(default)]
    pub pod: String,
    /// The agent's version.
    #[serde(default)]
    pub version: String,
    /// When the round started, RFC 3339 UTC, and the same in Unix seconds.
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub started_unix: f64,
    #[serde(default)]
    pub duration_seconds: f64,
    /// The agent's round interval: a round older than three of them is stale.
    #[serde(default)]
    pub interval_seconds: f64,
    /// Set when the round probed the last known members because the API failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_error: Option<String>,
    /// Per target node, its checks (host and pod pings, a missing agent).
    #[serde(default)]
    pub targets: Vec<Target>,
    /// Target nodes left out beyond [`MAX_TARGETS`] (all passing unless the failing ones
    /// alone exceed it).
    #[serde(default)]
    pub omitted_targets: usize,
    /// The cluster-wide checks (DNS).
    #[serde(default)]
    pub dns: Vec<Entry>,
    #[serde(default)]
    pub omitted_dns: usize,
}

/// One target node and this agent's checks of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub node: String,
    #[serde(default)]
    pub checks: Vec<Entry>,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The check kind's name (`host-ping`, ...); a reader shows an unknown one as it is.
    #[serde(default)]
    pub kind: String,
    /// What was checked (DNS entries only: an instance, a name).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// `passed`, `failed` or `skipped` (a reader treats anything else as unknown).
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_seconds: Option<f64>,
    /// DNS entries: the column of the DNS block (an instance's name, or [`SERVICE_COLUMN`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub column: String,
}

/// A round's summary and its JSON, each made on first use (a `/summary.json` request, a
/// matrix refresh) and then kept: most rounds nobody asks for them, and at 5,000 nodes
/// building them every round cost CPU and kept megabytes (BENCHMARKS.md, full rounds).
#[derive(Debug)]
pub struct Lazy {
    round: Option<(Arc<RoundReport>, String, f64)>,
    summary: OnceLock<Arc<Summary>>,
    json: OnceLock<Arc<[u8]>>,
}

impl Lazy {
    /// The summary of `r`, to be made when first asked for.
    pub fn of(r: Arc<RoundReport>, w: &Writer<'_>) -> Lazy {
        Lazy {
            round: Some((r, w.version.to_string(), w.interval_seconds)),
            summary: OnceLock::new(),
            json: OnceLock::new(),
        }
    }

    /// A summary already made.
    pub fn ready(summary: Summary) -> Lazy {
        Lazy {
            round: None,
            summary: OnceLock::from(Arc::new(summary)),
            json: OnceLock::new(),
        }
    }

    /// The summary (made now if nobody asked yet).
    pub fn get(&self) -> Arc<Summary> {
        self.summary
            .get_or_init(|| {
                Arc::new(match &self.round {
                    Some((r, version, interval_seconds)) => Summary::of(
                        r,
                        &Writer {
                            version,
                            interval_seconds: *interval_seconds,
                        },
                    ),
                    // `ready` filled it: not reached.
                    None => Summary::empty(),
                })
            })
            .clone()
    }

    /// `/summary.json`: the summary as one line of JSON.
    pub fn json(&self) -> Arc<[u8]> {
        self.json
            .get_or_init(|| match serde_json::to_vec(&*self.get()) {
                Ok(mut j) => {
                    j.push(b'\n');
                    Arc::from(j)
                }
                Err(e) => {
                    log::error!("cannot encode the round for /summary.json: {e}");
                    Arc::from(&b"{}\n"[..])
                }
            })
            .clone()
    }
}

/// Who wrote the summary, besides the round.
#[derive(Debug, Clone, PartialEq)]
pub struct Writer<'a> {
    pub version: &'a str,
    pub interval_seconds: f64,
}

impl Summary {
    /// The summary of `r`.
    pub fn of(r: &RoundReport, w: &Writer<'_>) -> Summary {
        let mut targets: Vec<Target> = Vec::new();
        let mut index: std::collections::HashMap<&str, usize> = Default::default();
        let mut dns: Vec<Entry> = Vec::new();
        let mut omitted_dns = 0;
        for c in &r.checks {
            match c.kind.info().log {
                LogPlace::Line { format, .. } => {
                    if dns.len() >= MAX_DNS {
                        omitted_dns += 1;
                        continue;
                    }
                    let column = match format {
                        // A per-target timed check: one instance, a column of its own.
                        LineFormat::Timed { .. } => c.target.clone(),
                        _ => SERVICE_COLUMN.to_string(),
                    };
                    dns.push(Entry {
                        target: c.target.clone(),
                        column,
                        ..entry(c)
                    });
                }
                LogPlace::Column { .. } | LogPlace::NoAgent => {
                    let i = *index.entry(&c.target_node).or_insert_with(|| {
                        targets.push(Target {
                            node: c.target_node.clone(),
                            checks: Vec::new(),
                        });
                        targets.len().saturating_sub(1)
                    });
                    if let Some(t) = targets
                        .get_mut(i)
                        .filter(|t| t.checks.len() < MAX_CHECKS_PER_TARGET)
                    {
                        t.checks.push(entry(c));
                    }
                }
            }
        }
        let omitted_targets = targets.len().saturating_sub(MAX_TARGETS);
        if omitted_targets > 0 {
            // The nodes that did not pass first, each group in report order.
            targets.sort_by_key(|t| t.checks.iter().all(|e| e.status == "passed"));
            targets.truncate(MAX_TARGETS);
        }
        Summary {
            format: FORMAT,
            node: r.node.clone(),
            pod: r.pod.clone(),
            version: w.version.to_string(),
            started_at: r.started_at.clone(),
            started_unix: crate::timefmt::parse_rfc3339(&r.started_at).unwrap_or(0.0),
            duration_seconds: r.duration_seconds,
            interval_seconds: w.interval_seconds,
            api_error: r.api_error.as_deref().map(|e| cut(e, 2 * MAX_MESSAGE)),
            targets,
            omitted_targets,
            dns,
            omitted_dns,
        }
    }

    /// A summary of no round (what `Lazy` falls back to; never served).
    fn empty() -> Summary {
        Summary {
            format: FORMAT,
            node: String::new(),
            pod: String::new(),
            version: String::new(),
            started_at: String::new(),
            started_unix: 0.0,
            duration_seconds: 0.0,
            interval_seconds: 0.0,
            api_error: None,
            targets: Vec::new(),
            omitted_targets: 0,
            dns: Vec::new(),
            omitted_dns: 0,
        }
    }

    /// Reads a summary; unknown fields are ignored, missing ones take their defaults.
    pub fn parse(bytes: &[u8]) -> Result<Summary, String> {
        let s: Summary =
            serde_json::from_slice(bytes).map_err(|e| format!("not a summary: {e}"))?;
        if s.node.is_empty() {
            return Err("not a summary: no node".to_string());
        }
        Ok(s)
    }
}

fn entry(c: &Check) -> Entry {
    let status = match c.status() {
        Status::Passed => "passed",
        Status::Failed => "failed",
        Status::Skipped => "skipped",
    };
    Entry {
        kind: c.kind.as_str().to_string(),
        target: String::new(),
        address: c.address.clone(),
        status: status.to_string(),
        reason: c.outcome.reason().map(|r| r.as_str().to_string()),
        message: c.outcome.message().map(|m| cut(m, MAX_MESSAGE)),
        rtt_seconds: c
            .rtt_seconds
            .filter(|r| r.is_finite() && *r >= 0.0)
            .map(|r| (r * 1e6).round() / 1e6),
        column: String::new(),
    }
}

/// `s` cut to at most `max` characters, on one line.
pub fn cut(s: &str, max: usize) -> String {
    let one_line = s.replace(['\n', '\r'], " ");
    match one_line.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", one_line.get(..i).unwrap_or_default()),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CheckKind, Outcome, Reason};

    fn check(kind: CheckKind, node: &str, target: &str, addr: &str, ok: bool) -> Check {
        let c = Check::failed(
            kind,
            node,
            target,
            addr,
            Reason::Timeout,
            "no reply\nwithin 1s",
        );
        if ok {
            c.passed(0.000_123_456)
        } else {
            c
        }
    }

    fn report(checks: Vec<Check>) -> RoundReport {
        RoundReport {
            started_at: "2026-11-30T08:00:00.000Z".into(),
            duration_seconds: 1.0,
            first_round: false,
            ..RoundReport::new("node-1", "agent-1", checks)
        }
    }

    fn writer() -> Writer<'static> {
        Writer {
            version: "0.2.0",
            interval_seconds: 60.0,
        }
    }

    #[test]
    fn groups_node_checks_by_target_and_dns_by_column() {
        use CheckKind::*;
        let mut r = report(vec![
            check(DnsService, "", "kube-dns.tst.", "", true),
            check(DnsInstance, "node-1", "coredns-0", "198.19.0.100", false),
            check(DnsReverse, "node-1", "coredns-0", "198.19.0.100", true),
            check(HostPing, "node-1", "node-1", "198.18.1.11", true),
            check(PodPing, "node-1", "agent-1", "198.19.1.10", true),
            check(HostPing, "node-2", "node-2", "198.18.1.12", false),
            check(PodPing, "node-2", "agent-2", "198.19.2.10", false),
        ]);
        r.checks.push(Check {
            outcome: Outcome::failed(Reason::NoAgent, "no agent pod on this node"),
            ..check(NodeWithoutAgent, "node-3", "node-3", "", false)
        });
        let s = Summary::of(&r, &writer());
        assert_eq!(s.format, FORMAT);
        let nodes: Vec<&str> = s.targets.iter().map(|t| t.node.as_str()).collect();
        assert_eq!(nodes, ["node-1", "node-2", "node-3"]);
        let n2 = &s.targets[1].checks;
        assert_eq!(n2.len(), 2);
        assert_eq!(
            (n2[0].kind.as_str(), n2[0].status.as_str()),
            ("host-ping", "failed")
        );
        assert_eq!(n2[0].reason.as_deref(), Some("timeout"));
        assert_eq!(n2[0].message.as_deref(), Some("no reply within 1s"));
        assert_eq!(s.targets[0].checks[0].rtt_seconds, Some(0.000123));
        let columns: Vec<&str> = s.dns.iter().map(|e| e.column.as_str()).collect();
        assert_eq!(columns, ["service", "coredns-0", "service"]);
        // What the agent writes, it reads back.
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(Summary::parse(text.as_bytes()).unwrap(), s);
        assert!(
            !text.contains("\"target\":\"\""),
            "empty fields are left out"
        );
    }

    #[test]
    fn large_rounds_list_the_failing_targets_first_within_the_cap() {
        let mut checks = Vec::new();
        for i in 0..MAX_TARGETS + 500 {
            let node = format!("node-{i:05}");
            // Every 1000th node fails.
            checks.push(check(
                CheckKind::HostPing,
                &node,
                &node,
                "198.18.0.1",
                i % 1000 != 999,
            ));
        }
        let s = Summary::of(&report(checks), &writer());
        assert_eq!(s.targets.len(), MAX_TARGETS);
        assert_eq!(s.omitted_targets, 500);
        let failing: Vec<&str> = s
            .targets
            .iter()
            .filter(|t| t.checks[0].status == "failed")
            .map(|t| t.node.as_str())
            .collect();
        assert_eq!(failing, ["node-00999", "node-01999"]);
        assert_eq!(s.targets[0].node, "node-00999");
        let size = serde_json::to_vec(&s).unwrap().len();
        assert!(size < 400_000, "{size} bytes");
    }

    /// A newer agent's summary: fields, kinds and statuses this version does not know.
    #[test]
    fn a_newer_summary_reads() {
        let newer = br#"{"format": 2, "node": "node-9", "pod": "agent-9", "version": "9.0.0",
            "started_at": "2030-01-01T00:00:00.000Z", "started_unix": 1893456000.0,
            "interval_seconds": 30, "zone": "eu-1", "loss_window": {"seconds": 3600},
            "targets": [{"node": "node-1", "labels": {"a": "b"}, "checks": [
                {"kind": "mtu-ping", "address": "198.18.1.11", "status": "degraded",
                 "reason": "mtu", "rtt_seconds": 0.001, "df": true},
                {"kind": "host-ping", "address": "198.18.1.11", "status": "passed"}]}],
            "dns": [{"kind": "dns-instance", "target": "coredns-0", "status": "passed",
                     "column": "coredns-0", "qtype": "AAAA"}]}"#;
        let s = Summary::parse(newer).unwrap();
        assert_eq!(s.format, 2);
        assert_eq!(s.targets[0].checks[0].kind, "mtu-ping");
        assert_eq!(s.targets[0].checks[0].status, "degraded");
        assert_eq!(s.dns[0].column, "coredns-0");
    }

    /// An older (or minimal) summary: only the node and a bare check; everything else
    /// takes its default.
    #[test]
    fn an_older_summary_reads() {
        let older = br#"{"node": "node-2", "targets": [{"node": "node-1",
            "checks": [{"kind": "pod-ping", "status": "failed"}]}, {"node": "node-3"}]}"#;
        let s = Summary::parse(older).unwrap();
        assert_eq!(s.format, 0);
        assert_eq!(s.version, "");
        assert!(s.dns.is_empty() && s.targets[1].checks.is_empty());
        assert_eq!(s.targets[0].checks[0].reason, None);
        for bad in [&b"{}"[..], b"[]", b"{\"node\": 3}", b"not json", b""] {
            assert!(
                Summary::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn messages_are_cut_on_one_line() {
        assert_eq!(cut("a\nb", 10), "a b");
        assert_eq!(cut("ééééé", 3), "ééé...");
        assert_eq!(cut("abc", 3), "abc");
    }
}
