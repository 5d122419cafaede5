//! The result of one round. Every output (the `kubectl logs` table, `/status.json`,
//! `--once --output json`, the Prometheus metrics) is a view of a [`RoundReport`].

use serde::{Deserialize, Serialize};

pub use crate::kind::{CheckKind, Gauge, KindInfo, LineFormat, LogPlace, RowSlot};
pub use crate::reason::Reason;

/// Rounds of at most this many nodes count as a small cluster: the log lists every node
/// (`--log-table auto`) and every target has series of its own. Above it, both views list
/// only what fails, changed, or (series) is slowest, with caps.
pub const SMALL_CLUSTER_NODES: usize = 50;

/// What became of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The target answered as it should.
    Passed,
    /// The check failed; `message` says why in a few words, for people.
    Failed { reason: Reason, message: String },
    /// The check was not made, on purpose (its target is going away, for example); it counts
    /// neither as passed nor as failed.
    Skipped { reason: Reason, message: String },
}

impl Outcome {
    /// A failure with its reason and message.
    pub fn failed(reason: Reason, message: impl Into<String>) -> Outcome {
        Outcome::Failed {
            reason,
            message: message.into(),
        }
    }

    /// A skip with its reason and message.
    pub fn skipped(reason: Reason, message: impl Into<String>) -> Outcome {
        Outcome::Skipped {
            reason,
            message: message.into(),
        }
    }

    /// Passed, failed or skipped, without the details.
    pub fn status(&self) -> Status {
        match self {
            Outcome::Passed => Status::Passed,
            Outcome::Failed { .. } => Status::Failed,
            Outcome::Skipped { .. } => Status::Skipped,
        }
    }

    /// The reason of a failure or skip.
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Outcome::Passed => None,
            Outcome::Failed { reason, .. } | Outcome::Skipped { reason, .. } => Some(*reason),
        }
    }

    /// The message of a failure or skip.
    pub fn message(&self) -> Option<&str> {
        match self {
            Outcome::Passed => None,
            Outcome::Failed { message, .. } | Outcome::Skipped { message, .. } => Some(message),
        }
    }
}

/// The address family of a check's address: what tells a dual-stack cluster's IPv4 and IPv6
/// checks of one target apart in the views (`family` in JSON and on the last-round gauges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    /// The family of `address`; `None` when it is no IP address (a DNS name lookup, a node
    /// without an agent).
    pub fn of(address: &str) -> Option<Family> {
        match address.parse::<std::net::IpAddr>().ok()? {
            std::net::IpAddr::V4(_) => Some(Family::Ipv4),
            std::net::IpAddr::V6(_) => Some(Family::Ipv6),
        }
    }

    /// `ipv4` or `ipv6`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }
}

/// An outcome without its details; serialised as `passed`, `failed` or `skipped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Passed,
    Failed,
    Skipped,
}

impl Status {
    /// The `ok` of JSON: true, false, or null when skipped.
    pub fn ok(self) -> Option<bool> {
        match self {
            Status::Passed => Some(true),
            Status::Failed => Some(false),
            Status::Skipped => None,
        }
    }
}

/// The identity of a check, within a round and across rounds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckKey {
    pub kind: CheckKind,
    /// The node the target belongs to ("" when none, e.g. the DNS service).
    pub target_node: String,
    /// What is checked: a pod name, a node name, a DNS name.
    pub target: String,
    /// The address probed or queried ("" when there is none to probe).
    pub address: String,
}

impl CheckKey {
    /// A key from its four parts.
    pub fn new(kind: CheckKind, target_node: &str, target: &str, address: &str) -> CheckKey {
        CheckKey {
            kind,
            target_node: target_node.to_string(),
            target: target.to_string(),
            address: address.to_string(),
        }
    }
}

/// What a probe found, before it is joined with its check's key.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub outcome: Outcome,
    /// Round-trip time of a passed check (average over the replies for echoes).
    pub rtt_seconds: Option<f64>,
    /// Echo requests sent and replies received (echoes only; 0 otherwise).
    pub sent: u32,
    pub received: u32,
    /// What a passed DNS check answered (a name or addresses); empty otherwise.
    pub answer: String,
}

impl Measured {
    /// An outcome without measurements (a failure before anything was sent, a known result).
    pub fn of(outcome: Outcome) -> Measured {
        Measured {
            outcome,
            rtt_seconds: None,
            sent: 0,
            received: 0,
            answer: String::new(),
        }
    }

    /// A failure without measurements.
    pub fn failed(reason: Reason, message: impl Into<String>) -> Measured {
        Measured::of(Outcome::failed(reason, message))
    }
}

/// One check of one round. JSON (see `CheckJson`) keeps the flat form of earlier versions:
/// `ok` (null when skipped), `error` (the message) and `reason`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "CheckJson")]
pub struct Check {
    pub kind: CheckKind,
    /// The node the target belongs to ("" when none, e.g. the DNS service).
    pub target_node: String,
    /// What was checked: a pod name, a node name, a DNS name.
    pub target: String,
    /// The address probed or queried ("" when there is none to probe).
    pub address: String,
    pub outcome: Outcome,
    /// Round-trip time of a passed check (average over the replies for pings).
    pub rtt_seconds: Option<f64>,
    /// Echo requests sent and replies received (pings only; 0 otherwise).
    pub sent: u32,
    pub received: u32,
    /// What a passed DNS check answered (a name or addresses); empty otherwise.
    pub answer: String,
}

impl Check {
    /// The check of `key` with what its probe found.
    pub fn new(key: CheckKey, m: Measured) -> Check {
        Check {
            kind: key.kind,
            target_node: key.target_node,
            target: key.target,
            address: key.address,
            outcome: m.outcome,
            rtt_seconds: m.rtt_seconds,
            sent: m.sent,
            received: m.received,
            answer: m.answer,
        }
    }

    /// A failed check of `target` (on `target_node`, at `address`), with the reason.
    pub fn failed(
        kind: CheckKind,
        target_node: &str,
        target: &str,
        address: &str,
        reason: Reason,
        message: &str,
    ) -> Check {
        Check::new(
            CheckKey::new(kind, target_node, target, address),
            Measured::failed(reason, message),
        )
    }

    /// The same check, passed with this round-trip time.
    pub fn passed(self, rtt_seconds: f64) -> Check {
        Check {
            outcome: Outcome::Passed,
            rtt_seconds: Some(rtt_seconds),
            ..self
        }
    }

    /// Whether the check passed.
    pub fn is_ok(&self) -> bool {
        self.outcome == Outcome::Passed
    }

    /// Whether the check failed (a skipped check did not).
    pub fn is_failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed { .. })
    }

    /// Passed, failed or skipped.
    pub fn status(&self) -> Status {
        self.outcome.status()
    }

    /// The family of the check's address (`None` without an IP address).
    pub fn family(&self) -> Option<Family> {
        Family::of(&self.address)
    }

    /// The identity of a check across rounds, for diffing.
    pub fn key(&self) -> (CheckKind, &str, &str, &str) {
        (self.kind, &self.target_node, &self.target, &self.address)
    }
}

/// A check as JSON has it (field order included); read into a [`Check`].
#[derive(Deserialize)]
struct CheckJson {
    kind: CheckKind,
    target_node: String,
    target: String,
    address: String,
    /// true passed, false failed, null skipped.
    ok: Option<bool>,
    rtt_seconds: Option<f64>,
    /// The failure's or skip's message.
    error: Option<String>,
    /// The failure's or skip's reason.
    #[serde(default)]
    reason: Option<Reason>,
    #[serde(default)]
    sent: u32,
    #[serde(default)]
    received: u32,
    #[serde(default)]
    answer: String,
}

/// The same fields, borrowed from a [`Check`] to write it without copying.
#[derive(Serialize)]
struct CheckJsonRef<'a> {
    kind: CheckKind,
    target_node: &'a str,
    target: &'a str,
    address: &'a str,
    /// `ipv4` or `ipv6`, from the address; absent when the check has no IP address.
    #[serde(skip_serializing_if = "Option::is_none")]
    family: Option<&'static str>,
    ok: Option<bool>,
    rtt_seconds: Option<f64>,
    error: Option<&'a str>,
    reason: Option<Reason>,
    sent: u32,
    received: u32,
    #[serde(skip_serializing_if = "str::is_empty")]
    answer: &'a str,
}

impl Serialize for Check {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        CheckJsonRef {
            kind: self.kind,
            target_node: &self.target_node,
            target: &self.target,
            address: &self.address,
            family: self.family().map(Family::as_str),
            ok: self.status().ok(),
            rtt_seconds: self.rtt_seconds,
            error: self.outcome.message(),
            reason: self.outcome.reason(),
            sent: self.sent,
            received: self.received,
            answer: &self.answer,
        }
        .serialize(s)
    }
}

impl TryFrom<CheckJson> for Check {
    type Error = String;

    fn try_from(j: CheckJson) -> Result<Check, String> {
        let message = j.error.unwrap_or_default();
        let outcome = match (j.ok, j.reason) {
            (Some(true), _) => Outcome::Passed,
            (Some(false), Some(reason)) => Outcome::Failed { reason, message },
            (None, Some(reason)) => Outcome::Skipped { reason, message },
            (_, None) => return Err("a failed or skipped check needs a reason".to_string()),
        };
        Ok(Check {
            kind: j.kind,
            target_node: j.target_node,
            target: j.target,
            address: j.address,
            outcome,
            rtt_seconds: j.rtt_seconds,
            sent: j.sent,
            received: j.received,
            answer: j.answer,
        })
    }
}

/// A check whose status differs from the previous round. JSON has `was`/`now` (`passed`,
/// `failed`, `skipped`, null when absent) and, as earlier versions, `was_ok`/`now_ok` (true,
/// false, null when absent or skipped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "ChangeJson", from = "ChangeJson")]
pub struct Change {
    pub kind: CheckKind,
    pub target_node: String,
    pub target: String,
    pub address: String,
    /// `None` when the check did not exist in the previous round.
    pub was: Option<Status>,
    /// `None` when the check disappeared in this round.
    pub now: Option<Status>,
}

/// A change as JSON has it.
#[derive(Serialize, Deserialize)]
struct ChangeJson {
    kind: CheckKind,
    target_node: String,
    target: String,
    address: String,
    was_ok: Option<bool>,
    now_ok: Option<bool>,
    #[serde(default)]
    was: Option<Status>,
    #[serde(default)]
    now: Option<Status>,
}

impl From<Change> for ChangeJson {
    fn from(c: Change) -> ChangeJson {
        ChangeJson {
            kind: c.kind,
            target_node: c.target_node,
            target: c.target,
            address: c.address,
            was_ok: c.was.and_then(Status::ok),
            now_ok: c.now.and_then(Status::ok),
            was: c.was,
            now: c.now,
        }
    }
}

impl From<ChangeJson> for Change {
    fn from(j: ChangeJson) -> Change {
        // JSON of earlier versions has only the booleans.
        let status = |s: Option<Status>, ok: Option<bool>| {
            s.or(ok.map(|ok| if ok { Status::Passed } else { Status::Failed }))
        };
        Change {
            kind: j.kind,
            target_node: j.target_node,
            target: j.target,
            address: j.address,
            was: status(j.was, j.was_ok),
            now: status(j.now, j.now_ok),
        }
    }
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
    /// Where the system resolver's lookups (`dns-service`, `dns-reverse`) went; absent when
    /// the resolver configuration could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<Resolver>,
}

/// The pod's resolver: the first `nameserver` of its resolv.conf, and whether that is a
/// node-local DNS cache (NodeLocal DNSCache) rather than the DNS Service IP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolver {
    pub nameserver: String,
    /// The lookups through the system resolver test the node-local cache (and its path to
    /// CoreDNS); the `dns-instance` checks still query CoreDNS itself.
    pub node_local_cache: bool,
}

impl RoundReport {
    /// The first round of agent `pod` on `node` with `checks` (its error count from them);
    /// the rest at its neutral value: no start time or duration, no API error, a fresh
    /// snapshot, resolver unknown. [`RoundReport::compared_with`] makes it a later round.
    pub fn new(node: &str, pod: &str, checks: Vec<Check>) -> RoundReport {
        RoundReport {
            node: node.to_string(),
            pod: pod.to_string(),
            started_at: String::new(),
            duration_seconds: 0.0,
            errors: checks.iter().filter(|c| c.is_failed()).count(),
            checks,
            changes: Vec::new(),
            first_round: true,
            api_error: None,
            snapshot_age_seconds: 0.0,
            resolver: None,
        }
    }

    /// This round after one whose checks were `previous`: its status changes since then.
    pub fn compared_with(self, previous: &[Check]) -> RoundReport {
        RoundReport {
            changes: diff(previous, &self.checks),
            first_round: false,
            ..self
        }
    }

    /// The nodes the round has rows for (the log's `Testing N nodes`): the distinct target
    /// nodes of the checks shown in node rows (every kind that is not a cluster-wide line).
    pub fn node_count(&self) -> usize {
        let mut nodes = std::collections::HashSet::new();
        for c in &self.checks {
            if !matches!(c.kind.info().log, LogPlace::Line { .. }) {
                nodes.insert(c.target_node.as_str());
            }
        }
        nodes.len()
    }
}

/// The status changes between two rounds' checks, in the order of `now` then vanished ones.
pub fn diff(prev: &[Check], now: &[Check]) -> Vec<Change> {
    use std::collections::{HashMap, HashSet};
    let change = |c: &Check, was, now| Change {
        kind: c.kind,
        target_node: c.target_node.clone(),
        target: c.target.clone(),
        address: c.address.clone(),
        was,
        now,
    };
    // Most rounds check what the last one did, in the same order: then the changes are the
    // flips at the same positions, and one set of keys (to rule out a repeated key) replaces
    // two maps and their lookups (at 5,000 nodes: 10,000 checks hashed once, not four times).
    if prev.len() == now.len() && prev.iter().zip(now).all(|(p, n)| p.key() == n.key()) {
        let mut keys = HashSet::with_capacity(now.len());
        if now.iter().all(|c| keys.insert(c.key())) {
            return prev
                .iter()
                .zip(now)
                .filter(|(p, n)| p.status() != n.status())
                .map(|(p, n)| change(n, Some(p.status()), Some(n.status())))
                .collect();
        }
    }
    let before: HashMap<_, Status> = prev.iter().map(|c| (c.key(), c.status())).collect();
    let after: HashMap<_, Status> = now.iter().map(|c| (c.key(), c.status())).collect();
    let mut out: Vec<Change> = now
        .iter()
        .filter(|c| before.get(&c.key()) != Some(&c.status()))
        .map(|c| change(c, before.get(&c.key()).copied(), Some(c.status())))
        .collect();
    out.extend(
        prev.iter()
            .filter(|c| !after.contains_key(&c.key()))
            .map(|c| change(c, Some(c.status()), None)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: CheckKind, target: &str, ok: bool) -> Check {
        let c = Check::failed(
            kind,
            "n1",
            target,
            "198.18.0.1",
            Reason::Timeout,
            "no reply within 1s",
        );
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
            .map(|c| (c.target.as_str(), c.was, c.now))
            .collect();
        use Status::*;
        assert_eq!(
            summary,
            [
                ("a1", Some(Passed), Some(Failed)),
                ("a2", None, Some(Passed)),
                ("n9", Some(Failed), None)
            ]
        );
        assert!(diff(&now, &now).is_empty());
        // Skipped is a status of its own: failed -> skipped is a change.
        let mut skipped = prev.clone();
        skipped[2].outcome = Outcome::skipped(Reason::NoAgent, "node is being deleted");
        let d = diff(&prev, &skipped);
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].was, d[0].now), (Some(Failed), Some(Skipped)));
    }

    /// `diff` by two maps, as it was before its same-order shortcut.
    fn diff_by_maps(
        prev: &[Check],
        now: &[Check],
    ) -> Vec<(String, Option<Status>, Option<Status>)> {
        use std::collections::HashMap;
        let before: HashMap<_, Status> = prev.iter().map(|c| (c.key(), c.status())).collect();
        let after: HashMap<_, Status> = now.iter().map(|c| (c.key(), c.status())).collect();
        let mut out: Vec<_> = now
            .iter()
            .filter(|c| before.get(&c.key()) != Some(&c.status()))
            .map(|c| {
                (
                    c.target.clone(),
                    before.get(&c.key()).copied(),
                    Some(c.status()),
                )
            })
            .collect();
        out.extend(
            prev.iter()
                .filter(|c| !after.contains_key(&c.key()))
                .map(|c| (c.target.clone(), Some(c.status()), None)),
        );
        out
    }

    #[test]
    fn diff_in_the_same_order_matches_the_maps_also_with_a_repeated_key() {
        let t = |target: &str, ok| check(CheckKind::PodPing, target, ok);
        let cases = [
            // Same order, unique keys: the shortcut.
            (
                vec![t("a", true), t("b", true)],
                vec![t("a", false), t("b", true)],
            ),
            // Same order, a repeated key whose earlier copy differs: the maps decide (the last
            // copy counts: no change here, where the positions would show one).
            (
                vec![t("a", false), t("b", true), t("a", true)],
                vec![t("a", true), t("b", true), t("a", true)],
            ),
            // Another order, same keys.
            (
                vec![t("a", true), t("b", true)],
                vec![t("b", false), t("a", true)],
            ),
        ];
        for (prev, now) in cases {
            let got: Vec<_> = diff(&prev, &now)
                .into_iter()
                .map(|c| (c.target, c.was, c.now))
                .collect();
            assert_eq!(got, diff_by_maps(&prev, &now));
        }
    }

    #[test]
    fn json_uses_the_documented_names_and_round_trips() {
        let mut skipped = check(CheckKind::PodPing, "a9", false);
        skipped.outcome = Outcome::skipped(Reason::NoAgent, "agent pod is terminating");
        let checks = vec![
            check(CheckKind::DnsInstance, "coredns-a", false),
            check(CheckKind::HostPing, "n1", true),
            skipped,
        ];
        let r = RoundReport {
            node: "n1".into(),
            pod: "a1".into(),
            started_at: "2026-11-29T00:00:00.000Z".into(),
            duration_seconds: 1.5,
            errors: 1,
            changes: diff(&[], &checks),
            checks,
            first_round: true,
            api_error: None,
            snapshot_age_seconds: 0.0,
            resolver: None,
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
            "\"family\":\"ipv4\"",
            "\"ok\":false",
            "\"ok\":true",
            "\"ok\":null",
            "\"rtt_seconds\"",
            "\"error\":\"no reply within 1s\"",
            "\"reason\":\"timeout\"",
            "\"reason\":\"no-agent\"",
            "\"changes\"",
            "\"was_ok\":null,\"now_ok\":null,\"was\":null,\"now\":\"skipped\"",
        ] {
            assert!(text.contains(field), "{field} missing in {text}");
        }
        let back: RoundReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn json_of_earlier_versions_still_reads() {
        let change: Change = serde_json::from_value(serde_json::json!({
            "kind": "pod-ping", "target_node": "n1", "target": "a1", "address": "198.18.0.1",
            "was_ok": true, "now_ok": false
        }))
        .unwrap();
        assert_eq!(
            (change.was, change.now),
            (Some(Status::Passed), Some(Status::Failed))
        );
        let failed_without_reason = serde_json::json!({
            "kind": "pod-ping", "target_node": "n1", "target": "a1", "address": "198.18.0.1",
            "ok": false, "rtt_seconds": null, "error": "no reply"
        });
        assert!(serde_json::from_value::<Check>(failed_without_reason).is_err());
    }
}
