//! The result of one round. Every output (the `kubectl logs` table, `/status.json`,
//! `--once --output json`, the Prometheus metrics) is a view of a [`RoundReport`].

use serde::{Deserialize, Serialize};

/// The kind of a check; serialised as the kebab-case names users see in JSON and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// ICMP echo to a peer agent pod's IP.
    PodPing,
    /// ICMP echo to a node's InternalIP.
    HostPing,
    /// Forward lookup through the system resolver (which talks to the DNS service IP).
    DnsService,
    /// A direct query to one DNS instance (one EndpointSlice endpoint).
    DnsInstance,
    /// Reverse lookup of the DNS service IP or an instance IP.
    DnsReverse,
    /// A node on which no agent pod is running: nothing there can report.
    NodeWithoutAgent,
}

impl CheckKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [CheckKind; 6] = [
        CheckKind::PodPing,
        CheckKind::HostPing,
        CheckKind::DnsService,
        CheckKind::DnsInstance,
        CheckKind::DnsReverse,
        CheckKind::NodeWithoutAgent,
    ];

    /// The name used in JSON, metrics labels and the log.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::PodPing => "pod-ping",
            CheckKind::HostPing => "host-ping",
            CheckKind::DnsService => "dns-service",
            CheckKind::DnsInstance => "dns-instance",
            CheckKind::DnsReverse => "dns-reverse",
            CheckKind::NodeWithoutAgent => "node-without-agent",
        }
    }
}

/// One check of one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub kind: CheckKind,
    /// The node the target belongs to ("" when none, e.g. the DNS service).
    pub target_node: String,
    /// What was checked: a pod name, a node name, a DNS name.
    pub target: String,
    /// The address probed or queried ("" when there is none to probe).
    pub address: String,
    pub ok: bool,
    /// Round-trip time of a successful check (average over the replies for pings).
    pub rtt_seconds: Option<f64>,
    /// Why the check failed, in a few words.
    pub error: Option<String>,
    /// Echo requests sent and replies received (pings only; 0 otherwise).
    #[serde(default)]
    pub sent: u32,
    #[serde(default)]
    pub received: u32,
    /// What a successful DNS check answered (a name or addresses); empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub answer: String,
}

impl Check {
    /// A failed check of `target` (on `target_node`, at `address`), with the reason.
    pub fn failed(
        kind: CheckKind,
        target_node: &str,
        target: &str,
        address: &str,
        error: &str,
    ) -> Check {
        Check {
            kind,
            target_node: target_node.to_string(),
            target: target.to_string(),
            address: address.to_string(),
            ok: false,
            rtt_seconds: None,
            error: Some(error.to_string()),
            sent: 0,
            received: 0,
            answer: String::new(),
        }
    }

    /// The same check, passed with this round-trip time.
    pub fn passed(self, rtt_seconds: f64) -> Check {
        Check {
            ok: true,
            rtt_seconds: Some(rtt_seconds),
            error: None,
            ..self
        }
    }

    /// The identity of a check across rounds, for diffing.
    pub fn key(&self) -> (CheckKind, &str, &str, &str) {
        (self.kind, &self.target_node, &self.target, &self.address)
    }
}

/// A check whose status differs from the previous round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub kind: CheckKind,
    pub target_node: String,
    pub target: String,
    pub address: String,
    /// `None` when the check did not exist in the previous round.
    pub was_ok: Option<bool>,
    /// `None` when the check disappeared in this round.
    pub now_ok: Option<bool>,
}

/// One round as every output sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundReport {
    /// The node this agent runs on.
    pub node: String,
    /// This agent's pod name.
    pub pod: String,
    /// When the round started, RFC 3339 in UTC.
    pub started_at: String,
    pub duration_seconds: f64,
    /// Number of failed checks.
    pub errors: usize,
    pub checks: Vec<Check>,
    /// Status changes since the previous round (empty on the first round).
    pub changes: Vec<Change>,
    /// Whether a previous round existed to compare with.
    #[serde(default)]
    pub first_round: bool,
    /// Set when discovery failed and the round probed the last known members instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_error: Option<String>,
    /// How old the member list this round probed was when the round started: about 0 while
    /// discovery works, growing while the API cannot be reached.
    #[serde(default)]
    pub snapshot_age_seconds: f64,
}

/// The status changes between two rounds' checks, in the order of `now` then vanished ones.
pub fn diff(prev: &[Check], now: &[Check]) -> Vec<Change> {
    use std::collections::HashMap;
    let before: HashMap<_, bool> = prev.iter().map(|c| (c.key(), c.ok)).collect();
    let after: HashMap<_, bool> = now.iter().map(|c| (c.key(), c.ok)).collect();
    let change = |c: &Check, was_ok, now_ok| Change {
        kind: c.kind,
        target_node: c.target_node.clone(),
        target: c.target.clone(),
        address: c.address.clone(),
        was_ok,
        now_ok,
    };
    let mut out: Vec<Change> = now
        .iter()
        .filter(|c| before.get(&c.key()) != Some(&c.ok))
        .map(|c| change(c, before.get(&c.key()).copied(), Some(c.ok)))
        .collect();
    out.extend(
        prev.iter()
            .filter(|c| !after.contains_key(&c.key()))
            .map(|c| change(c, Some(c.ok), None)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: CheckKind, target: &str, ok: bool) -> Check {
        let c = Check::failed(kind, "n1", target, "198.18.0.1", "no reply within 1s");
        if ok {
            c.passed(0.001)
        } else {
            c
        }
    }

    #[test]
    fn diff_reports_flips_new_and_vanished_checks_only() {
        let prev = vec![
            check(CheckKind::HostPing, "n1", true),
            check(CheckKind::PodPing, "a1", true),
            check(CheckKind::NodeWithoutAgent, "n9", false),
        ];
        let now = vec![
            check(CheckKind::HostPing, "n1", true),
            check(CheckKind::PodPing, "a1", false),
            check(CheckKind::PodPing, "a2", true),
        ];
        let d = diff(&prev, &now);
        let summary: Vec<_> = d
            .iter()
            .map(|c| (c.target.as_str(), c.was_ok, c.now_ok))
            .collect();
        assert_eq!(
            summary,
            [
                ("a1", Some(true), Some(false)),
                ("a2", None, Some(true)),
                ("n9", Some(false), None)
            ]
        );
        assert!(diff(&now, &now).is_empty());
    }

    #[test]
    fn json_uses_the_documented_names_and_round_trips() {
        let r = RoundReport {
            node: "n1".into(),
            pod: "a1".into(),
            started_at: "2026-11-29T00:00:00.000Z".into(),
            duration_seconds: 1.5,
            errors: 1,
            checks: vec![check(CheckKind::DnsInstance, "coredns-a", false)],
            changes: vec![],
            first_round: true,
            api_error: None,
            snapshot_age_seconds: 0.0,
        };
        let text = serde_json::to_string(&r).unwrap();
        for field in [
            "\"node\"",
            "\"pod\"",
            "\"started_at\"",
            "\"duration_seconds\"",
            "\"errors\"",
            "\"checks\"",
            "\"kind\":\"dns-instance\"",
            "\"target_node\"",
            "\"target\"",
            "\"address\"",
            "\"ok\"",
            "\"rtt_seconds\"",
            "\"error\"",
            "\"changes\"",
        ] {
            assert!(text.contains(field), "{field} missing in {text}");
        }
        let back: RoundReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
    }
}
