//! The Prometheus view of the rounds: text format 0.0.4, formatted by hand (no client crate).
//!
//! [`Totals`] holds what accumulates across rounds (counters, the RTT histogram); [`render`]
//! turns the last [`RoundReport`] plus the totals into the scrape body. Values that only the
//! last round knows are absent until a round has completed, so nothing stale or invented is
//! ever exported. Rendering is pure, so tests check it without a server.

use crate::plan::Reach;
use crate::report::{
    Check, CheckKind, Family, LogPlace, Reason, RoundReport, Status, SMALL_CLUSTER_NODES,
};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `Content-Type` of a scrape response.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Which targets get series of their own (`networktest_target_up`,
/// `networktest_target_rtt_seconds`). Per-target series on every agent grow as N^2 across a
/// cluster, which made goldpinger's and Cilium's health metrics too costly on large clusters;
/// so they are kept to the targets that need a name: the failing ones, and the slowest
/// passing ones (a high RTT towards one node stays visible). Every passing target has them
/// only in small clusters. The targets left out are counted, by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetSeries {
    /// Failing targets with series, at most (in report order); also the most passing ones
    /// in a small cluster.
    pub cap: usize,
    /// Passing targets with series in a larger cluster: the slowest this many.
    pub slowest: usize,
    /// Rounds of at most this many nodes give every passing target series (up to `cap`).
    pub small_cluster: usize,
}

impl Default for TargetSeries {
    fn default() -> TargetSeries {
        TargetSeries {
            cap: 200,
            slowest: 20,
            small_cluster: SMALL_CLUSTER_NODES,
        }
    }
}

/// Distinct `reason` labels of `networktest_api_errors_total` before the rest become `other`.
pub const MAX_API_ERROR_REASONS: usize = 32;

/// Upper bounds of the RTT histogram buckets, in seconds: ICMP and DNS inside a cluster take
/// from well under a millisecond (same node) to tens of milliseconds (across zones); above a
/// second something is wrong.
pub const RTT_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5,
];

/// Who is exporting: lets users join the series of one agent with its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    pub version: String,
    pub node: String,
    pub pod: String,
}

/// What the alert rules need to know of an agent's settings to read its series: how often it
/// reports (a round older than three intervals is stale) and how many agents check each
/// target (votes against a target are counted out of that many).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reporting {
    /// `--interval`.
    pub interval: Duration,
    /// `--peers` and `--dns-instance-peers`.
    pub reach: Reach,
}

/// A cumulative histogram of RTTs for one kind of check.
#[derive(Debug, Clone, PartialEq)]
struct Histogram {
    /// Observations per bucket, not cumulative; the last slot is above the largest bound.
    counts: [u64; RTT_BUCKETS.len() + 1],
    sum: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [0; RTT_BUCKETS.len() + 1],
            sum: 0.0,
        }
    }
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let slot = RTT_BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(RTT_BUCKETS.len());
        if let Some(n) = self.counts.get_mut(slot) {
            *n += 1;
        }
        self.sum += seconds;
    }

    fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// What accumulates across rounds. The agent keeps one, calls [`Totals::record`] after each
/// round and [`Totals::api_error`] on each failed API request, and passes it to [`render`].
#[derive(Debug, Clone)]
pub struct Totals {
    /// Which targets get series of their own.
    pub target_series: TargetSeries,
    /// The settings the rules read (`networktest_round_interval_seconds`,
    /// `networktest_mesh_peers`); not exported while `None`.
    pub reporting: Option<Reporting>,
    rounds: u64,
    checks: BTreeMap<CheckKind, u64>,
    /// Failed and skipped checks by kind and reason: at most kinds x reasons entries, both
    /// fixed sets.
    failures: BTreeMap<(CheckKind, Reason), u64>,
    skips: BTreeMap<(CheckKind, Reason), u64>,
    /// One histogram per kind that measures a round-trip time.
    rtt: BTreeMap<CheckKind, Histogram>,
    api_errors: BTreeMap<String, u64>,
    /// When the last recorded round ended, in seconds since the Unix epoch.
    last_round_end: Option<f64>,
    /// Echoes sent and lost per path over the last rounds.
    loss: crate::loss::LossWindow,
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            target_series: TargetSeries::default(),
            reporting: None,
            rounds: 0,
            checks: CheckKind::ALL.iter().map(|&k| (k, 0)).collect(),
            failures: BTreeMap::new(),
            skips: BTreeMap::new(),
            rtt: CheckKind::ALL
                .into_iter()
                .filter(|k| k.info().rtt)
                .map(|k| (k, Histogram::default()))
                .collect(),
            api_errors: BTreeMap::new(),
            last_round_end: None,
            loss: crate::loss::LossWindow::default(),
        }
    }
}

impl Totals {
    /// Totals with every counter at zero and the default per-target cap.
    pub fn new() -> Totals {
        Totals::default()
    }

    /// Adds a completed round, ending now.
    pub fn record(&mut self, report: &RoundReport) {
        self.record_at(report, SystemTime::now());
    }

    /// Adds a completed round that ended at `end` (tests pass a fixed time).
    pub fn record_at(&mut self, report: &RoundReport, end: SystemTime) {
        self.rounds += 1;
        for check in &report.checks {
            *self.checks.entry(check.kind).or_default() += 1;
            let by_reason = match check.status() {
                Status::Passed => None,
                Status::Failed => Some(&mut self.failures),
                Status::Skipped => Some(&mut self.skips),
            };
            if let (Some(counts), Some(reason)) = (by_reason, check.outcome.reason()) {
                *counts.entry((check.kind, reason)).or_default() += 1;
            }
            if let (true, Some(rtt)) = (check.is_ok(), valid_rtt(check.rtt_seconds)) {
                // Only kinds that measure RTTs have a histogram (a stray RTT is not exported).
                if let Some(h) = self.rtt.get_mut(&check.kind) {
                    h.observe(rtt);
                }
            }
        }
        self.last_round_end = end.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs_f64());
        self.loss.record(report);
    }

    /// Counts a failed Kubernetes API request; `reason` is a short fixed word such as
    /// `timeout`, `status-403`, `decode` (keep it low-cardinality: it becomes a label).
    /// Past [`MAX_API_ERROR_REASONS`] distinct reasons, new ones count as `other`, so a bug
    /// that puts variable text in `reason` cannot grow the scrape without limit.
    pub fn api_error(&mut self, reason: &str) {
        let reason = if self.api_errors.contains_key(reason)
            || self.api_errors.len() < MAX_API_ERROR_REASONS
        {
            reason
        } else {
            "other"
        };
        *self.api_errors.entry(reason.to_string()).or_default() += 1;
    }

    /// Rounds recorded so far.
    pub fn rounds(&self) -> u64 {
        self.rounds
    }
}

/// An RTT worth exporting: finite and not negative (a bad value is dropped, not shown).
fn valid_rtt(rtt: Option<f64>) -> Option<f64> {
    rtt.filter(|r| r.is_finite() && *r >= 0.0)
}

/// Renders the scrape body: the last completed round (if any), the totals and the agent info.
pub fn render(last: Option<&RoundReport>, totals: &Totals, info: &AgentInfo) -> String {
    let mut out = Out::default();

    out.family(
        "networktest_build_info",
        "gauge",
        "Always 1; the version of the agent in a label.",
    );
    out.sample("networktest_build_info", &[("version", &info.version)], 1.0);
    out.family(
        "networktest_agent_info",
        "gauge",
        "Always 1; the node and pod of this agent, to join other series by source node.",
    );
    out.sample(
        "networktest_agent_info",
        &[("node", &info.node), ("pod", &info.pod)],
        1.0,
    );

    if let Some(r) = &totals.reporting {
        render_reporting(&mut out, r);
    }

    out.family(
        "networktest_rounds_total",
        "counter",
        "Rounds of checks completed since the agent started.",
    );
    out.sample("networktest_rounds_total", &[], totals.rounds as f64);
    out.family(
        "networktest_checks_total",
        "counter",
        "Checks made since the agent started, by kind.",
    );
    for (kind, n) in &totals.checks {
        out.sample(
            "networktest_checks_total",
            &[("kind", kind.as_str())],
            *n as f64,
        );
    }
    for (name, help, counts) in [
        (
            "networktest_check_failures_total",
            "Checks failed since the agent started, by kind and reason (a series appears with its first failure).",
            &totals.failures,
        ),
        (
            "networktest_check_skips_total",
            "Checks skipped on purpose since the agent started, by kind and reason (a series appears with its first skip).",
            &totals.skips,
        ),
    ] {
        out.family(name, "counter", help);
        for ((kind, reason), n) in counts {
            out.sample(
                name,
                &[("kind", kind.as_str()), ("reason", reason.as_str())],
                *n as f64,
            );
        }
    }
    if !totals.api_errors.is_empty() {
        out.family(
            "networktest_api_errors_total",
            "counter",
            "Failed Kubernetes API requests since the agent started, by reason.",
        );
        for (reason, n) in &totals.api_errors {
            out.sample(
                "networktest_api_errors_total",
                &[("reason", reason)],
                *n as f64,
            );
        }
    }

    out.family(
        "networktest_rtt_seconds",
        "histogram",
        "Round-trip times of successful checks since the agent started, by kind.",
    );
    for (kind, h) in &totals.rtt {
        let k = kind.as_str();
        let mut cumulative = 0;
        for (le, n) in RTT_BUCKETS.iter().zip(&h.counts) {
            cumulative += n;
            out.sample(
                "networktest_rtt_seconds_bucket",
                &[("kind", k), ("le", &fmt_f64(*le))],
                cumulative as f64,
            );
        }
        let count = h.count();
        out.sample(
            "networktest_rtt_seconds_bucket",
            &[("kind", k), ("le", "+Inf")],
            count as f64,
        );
        out.sample("networktest_rtt_seconds_sum", &[("kind", k)], h.sum);
        out.sample(
            "networktest_rtt_seconds_count",
            &[("kind", k)],
            count as f64,
        );
    }

    if let Some(end) = totals.last_round_end {
        out.family(
            "networktest_last_round_timestamp_seconds",
            "gauge",
            "When the last round completed, in seconds since the Unix epoch.",
        );
        out.sample("networktest_last_round_timestamp_seconds", &[], end);
    }

    if let Some(report) = last {
        render_last_round(&mut out, report, &totals.target_series);
        render_loss_window(&mut out, &totals.loss);
    }
    out.text
}

/// The loss window (`crate::loss`): its length, per-kind sums over every path, and the paths
/// that lost echoes (at most [`crate::loss::MAX_LOSSY_PATHS`], with the count of the others).
fn render_loss_window(out: &mut Out, w: &crate::loss::LossWindow) {
    out.family(
        "networktest_window_rounds",
        "gauge",
        "Rounds in the loss window (15 once the agent has made as many).",
    );
    out.sample("networktest_window_rounds", &[], w.rounds() as f64);
    let by_kind = w.by_kind();
    for (name, help, lost) in [
        (
            "networktest_window_echoes_sent",
            "Echo requests sent over the loss window, all paths, by kind.",
            false,
        ),
        (
            "networktest_window_echoes_lost",
            "Echo requests without a reply over the loss window, all paths, by kind.",
            true,
        ),
    ] {
        out.family(name, "gauge", help);
        for (kind, c) in &by_kind {
            let n = if lost { c.lost } else { c.sent };
            out.sample(name, &[("kind", kind.as_str())], n as f64);
        }
    }
    let (lossy, omitted) = w.lossy(crate::loss::MAX_LOSSY_PATHS);
    out.family(
        "networktest_window_lossy_paths_omitted",
        "gauge",
        "Paths that lost echoes in the loss window without series of their own (beyond the cap of 50).",
    );
    out.sample(
        "networktest_window_lossy_paths_omitted",
        &[],
        omitted as f64,
    );
    for (name, help, lost) in [
        (
            "networktest_window_path_echoes_sent",
            "Echo requests sent to this target over the loss window; only paths that lost some.",
            false,
        ),
        (
            "networktest_window_path_echoes_lost",
            "Echo requests to this target without a reply over the loss window; only paths that lost some.",
            true,
        ),
    ] {
        out.family(name, "gauge", help);
        for (key, c) in &lossy {
            let labels = [
                ("kind", key.kind.as_str()),
                ("target_node", key.target_node.as_str()),
                ("target", key.target.as_str()),
                ("address", key.address.as_str()),
            ];
            let n = if lost { c.lost } else { c.sent };
            out.sample(name, &labels, n as f64);
        }
    }
}

/// The series only the last round knows; absent before the first round.
fn render_last_round(out: &mut Out, report: &RoundReport, limits: &TargetSeries) {
    let failed = report.checks.iter().filter(|c| c.is_failed()).count();
    // Kept from the original script because dashboards use `sum(networktest_total_error_count)`.
    // Typed `untyped`, as the script served it: as a gauge its `_count` suffix is a lint error
    // (the suffix is reserved for histograms and summaries); `networktest_last_round_failed_checks`
    // is the well-named gauge with the same information by kind.
    out.family(
        "networktest_total_error_count",
        "untyped",
        "Failed checks in the last round (kept from the original script: sum() it across agents).",
    );
    out.sample("networktest_total_error_count", &[], failed as f64);

    out.family(
        "networktest_discovery_age_seconds",
        "gauge",
        "Age of the member list the last round probed: about 0 while the API answers, growing while it cannot be reached.",
    );
    let age = Some(report.snapshot_age_seconds).filter(|a| a.is_finite() && *a >= 0.0);
    out.sample("networktest_discovery_age_seconds", &[], age.unwrap_or(0.0));

    out.family(
        "networktest_round_duration_seconds",
        "gauge",
        "How long the last round took.",
    );
    let duration = Some(report.duration_seconds).filter(|d| d.is_finite() && *d >= 0.0);
    out.sample(
        "networktest_round_duration_seconds",
        &[],
        duration.unwrap_or(f64::NAN),
    );

    // By kind and, for checks of an IP address, its family (so a dual-stack cluster's IPv6
    // failures stand apart); a kind without checks this round still has its zero. At most
    // kinds x 2 series each.
    let mut made: BTreeMap<(CheckKind, Option<Family>), usize> = BTreeMap::new();
    for check in &report.checks {
        *made.entry((check.kind, check.family())).or_default() += 1;
    }
    for kind in CheckKind::ALL {
        if !made.keys().any(|(k, _)| *k == kind) {
            made.insert((kind, None), 0);
        }
    }
    let mut failed_by_kind: BTreeMap<(CheckKind, Option<Family>), usize> =
        made.keys().map(|&k| (k, 0)).collect();
    let mut skipped_by_kind = failed_by_kind.clone();
    for check in &report.checks {
        let key = (check.kind, check.family());
        match check.status() {
            Status::Passed => {}
            Status::Failed => *failed_by_kind.entry(key).or_default() += 1,
            Status::Skipped => *skipped_by_kind.entry(key).or_default() += 1,
        }
    }
    for (name, help, counts) in [
        (
            "networktest_last_round_checks",
            "Checks made in the last round, by kind and address family.",
            &made,
        ),
        (
            "networktest_last_round_failed_checks",
            "Checks failed in the last round, by kind and address family.",
            &failed_by_kind,
        ),
        (
            "networktest_last_round_skipped_checks",
            "Checks skipped on purpose in the last round, by kind and address family (neither passed nor failed).",
            &skipped_by_kind,
        ),
    ] {
        out.family(name, "gauge", help);
        for ((kind, family), n) in counts {
            match family {
                Some(f) => out.sample(
                    name,
                    &[("kind", kind.as_str()), ("family", f.as_str())],
                    *n as f64,
                ),
                None => out.sample(name, &[("kind", kind.as_str())], *n as f64),
            }
        }
    }

    // Kinds whose failed count has a gauge of its own (`networktest_nodes_without_agent`).
    for kind in CheckKind::ALL {
        if let Some(gauge) = kind.info().failed_gauge {
            out.family(gauge.name, "gauge", gauge.help);
            let n: usize = failed_by_kind
                .iter()
                .filter(|((k, _), _)| *k == kind)
                .map(|(_, n)| n)
                .sum();
            out.sample(gauge.name, &[], n as f64);
        }
    }

    render_peer_checks(out, report);

    let (shown, omitted_failing, omitted_passing) = select_targets(report, limits);
    out.family(
        "networktest_target_series_omitted",
        "gauge",
        "Targets of the last round without series of their own, by state: failing ones beyond the cap; passing ones other than the slowest (or beyond the cap in a small cluster).",
    );
    for (state, n) in [("failing", omitted_failing), ("passing", omitted_passing)] {
        out.sample(
            "networktest_target_series_omitted",
            &[("state", state)],
            n as f64,
        );
    }
    out.family(
        "networktest_target_up",
        "gauge",
        "1 if the check of this target passed in the last round, 0 if it failed.",
    );
    for c in &shown {
        out.sample(
            "networktest_target_up",
            &target_labels(c),
            if c.is_ok() { 1.0 } else { 0.0 },
        );
    }
    out.family(
        "networktest_target_rtt_seconds",
        "gauge",
        "Round-trip time of this target's passing check in the last round.",
    );
    for c in &shown {
        if let (true, Some(rtt)) = (c.is_ok(), valid_rtt(c.rtt_seconds)) {
            out.sample("networktest_target_rtt_seconds", &target_labels(c), rtt);
        }
    }
}

/// The agent's settings that the alert rules read; one series each (two for the mesh).
fn render_reporting(out: &mut Out, r: &Reporting) {
    out.family(
        "networktest_round_interval_seconds",
        "gauge",
        "The agent's --interval: time between the starts of two rounds.",
    );
    out.sample(
        "networktest_round_interval_seconds",
        &[],
        r.interval.as_secs_f64(),
    );
    out.family(
        "networktest_mesh_peers",
        "gauge",
        "How many agents check each target: each node besides its own agent (--peers), each DNS instance (--dns-instance-peers), each agent pod's pod-tcp and pod-mtu (--pod-path-peers); +Inf when every agent does.",
    );
    for (target, k) in [
        ("node", r.reach.peers),
        ("dns-instance", r.reach.dns_instance_peers),
        ("pod-path", r.reach.pod_path_peers),
    ] {
        let k = k.map_or(f64::INFINITY, |k| k as f64);
        out.sample("networktest_mesh_peers", &[("target", target)], k);
    }
}

/// Checks of other nodes than the agent's own, made (passed or failed) and failed, by node
/// kind: an agent that fails most of them is cut off itself, and its failures are no votes
/// against the nodes it checks. At most 2 x 5 series (the node kinds).
fn render_peer_checks(out: &mut Out, report: &RoundReport) {
    let node_kinds = CheckKind::ALL
        .into_iter()
        .filter(|k| !matches!(k.info().log, LogPlace::Line { .. }));
    let mut counts: BTreeMap<CheckKind, (usize, usize)> = node_kinds.map(|k| (k, (0, 0))).collect();
    for c in &report.checks {
        if c.target_node == report.node || c.status() == Status::Skipped {
            continue;
        }
        if let Some((made, failed)) = counts.get_mut(&c.kind) {
            *made += 1;
            *failed += usize::from(c.is_failed());
        }
    }
    for (name, help, failed) in [
        (
            "networktest_last_round_peer_checks",
            "Checks of other nodes than the agent's own made (passed or failed) in the last round, by kind.",
            false,
        ),
        (
            "networktest_last_round_peer_failed_checks",
            "Checks of other nodes than the agent's own failed in the last round, by kind.",
            true,
        ),
    ] {
        out.family(name, "gauge", help);
        for (kind, (m, f)) in &counts {
            let n = if failed { *f } else { *m };
            out.sample(name, &[("kind", kind.as_str())], n as f64);
        }
    }
}

fn target_labels(c: &Check) -> [(&str, &str); 4] {
    [
        ("kind", c.kind.as_str()),
        ("target_node", &c.target_node),
        ("target", &c.target),
        ("address", &c.address),
    ]
}

/// The checks that get per-target series, in report order: failing ones up to the cap; passing
/// ones all (up to the cap) when the round covers a small cluster, else the slowest few.
/// Skipped ones are neither up nor down, so they get none; a check repeating an earlier one's
/// key is left out (two samples with the same labels would be an invalid scrape). Also
/// returns how many failing and passing targets were left out. Linear in the checks (the
/// slowest are picked by selection, not by sorting them all).
fn select_targets<'a>(
    report: &'a RoundReport,
    limits: &TargetSeries,
) -> (Vec<&'a Check>, usize, usize) {
    let mut seen = HashSet::new();
    let unique: Vec<&Check> = report
        .checks
        .iter()
        .filter(|c| c.status() != Status::Skipped)
        .filter(|c| seen.insert(c.key()))
        .collect();
    let mut shown: Vec<usize> = Vec::new();
    let mut omitted_failing = 0;
    // (RTT, position) of each passing target; one without a usable RTT counts as fastest.
    let mut passing: Vec<(f64, usize)> = Vec::new();
    for (i, c) in unique.iter().enumerate() {
        if !c.is_failed() {
            passing.push((valid_rtt(c.rtt_seconds).unwrap_or(-1.0), i));
        } else if shown.len() < limits.cap {
            shown.push(i);
        } else {
            omitted_failing += 1;
        }
    }
    let room = if report.node_count() <= limits.small_cluster {
        limits.cap
    } else {
        limits.slowest
    };
    let omitted_passing = passing.len().saturating_sub(room);
    if omitted_passing > 0 {
        // Slowest first; equal RTTs in report order.
        let slower = |a: &(f64, usize), b: &(f64, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if let Some(last) = room.checked_sub(1) {
            passing.select_nth_unstable_by(last, slower);
        }
        passing.truncate(room);
    }
    shown.extend(passing.iter().map(|(_, i)| *i));
    shown.sort_unstable();
    let shown = shown
        .into_iter()
        .filter_map(|i| unique.get(i).copied())
        .collect();
    (shown, omitted_failing, omitted_passing)
}

/// The text being built.
#[derive(Default)]
struct Out {
    text: String,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape_label(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", fmt_f64(value));
    }
}

/// Escapes a label value: backslash, double quote and newline (the three the format names).
pub fn escape_label(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for ch in value.chars() {
        match ch {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Escapes HELP text: backslash and newline.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value as the format spells it (`+Inf`, `-Inf`, `NaN`, else the shortest decimal).
fn fmt_f64(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Outcome;
    use std::time::Duration;

    fn check(kind: CheckKind, target: &str, ok: bool, rtt: Option<f64>) -> Check {
        let c = Check::failed(
            kind,
            "node-1",
            target,
            "198.18.32.1",
            Reason::Timeout,
            "timeout",
        );
        match ok {
            true => Check {
                rtt_seconds: rtt,
                ..c.passed(0.0)
            },
            false => Check {
                rtt_seconds: rtt,
                ..c
            },
        }
    }

    fn report(checks: Vec<Check>) -> RoundReport {
        RoundReport {
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_seconds: 1.25,
            first_round: false,
            ..RoundReport::new("node-1", "agent-x", checks)
        }
    }

    fn info() -> AgentInfo {
        AgentInfo {
            version: "0.2.0".into(),
            node: "node-1".into(),
            pod: "agent-x".into(),
        }
    }

    fn lines_of<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    #[test]
    fn readme_documents_every_metric() {
        let readme = include_str!("../../README.md");
        let mut totals = Totals::new();
        let r = report(vec![
            check(CheckKind::PodPing, "a", true, Some(0.001)),
            check(CheckKind::NodeWithoutAgent, "n", false, None),
        ]);
        totals.record(&r);
        totals.api_error("timeout");
        totals.reporting = Some(Reporting {
            interval: Duration::from_secs(60),
            reach: Reach::FULL,
        });
        let text = render(Some(&r), &totals, &info());
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# HELP "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert!(names.len() >= 15, "{names:?}");
        for name in names {
            assert!(
                readme.contains(&format!("`{name}`")),
                "README lacks metric {name}"
            );
        }
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape_label(r#"a"b"#), r#"a\"b"#);
        assert_eq!(escape_label(r"a\b"), r"a\\b");
        assert_eq!(escape_label("a\nb"), r"a\nb");
        assert_eq!(escape_label("\\\"\n"), r#"\\\"\n"#);
        assert_eq!(escape_label("plain-é"), "plain-é");
        let r = report(vec![check(
            CheckKind::PodPing,
            "we\"ird\\pod\nname",
            true,
            Some(0.001),
        )]);
        let text = render(Some(&r), &Totals::new(), &info());
        assert!(text.contains(r#"target="we\"ird\\pod\nname""#), "{text}");
        assert!(text.lines().all(|l| !l.is_empty()), "no raw newline leaks");
    }

    #[test]
    fn help_and_type_once_before_samples() {
        let mut totals = Totals::new();
        totals.api_error("timeout");
        let r = report(vec![check(CheckKind::PodPing, "p", true, Some(0.001))]);
        totals.record(&r);
        let text = render(Some(&r), &totals, &info());
        let mut typed = HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(typed.insert(name.to_string()), "two TYPE lines for {name}");
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
                    .unwrap_or(name);
                assert!(typed.contains(family), "sample before TYPE: {line}");
            }
        }
    }

    #[test]
    fn histogram_buckets_cumulative_and_inf_equals_count() {
        let mut totals = Totals::new();
        let rtts = [0.0001, 0.0005, 0.0007, 0.003, 0.2, 3.0, 10.0];
        let checks = rtts
            .iter()
            .enumerate()
            .map(|(i, r)| check(CheckKind::HostPing, &format!("n{i}"), true, Some(*r)))
            .chain([
                check(CheckKind::HostPing, "dead", false, None),
                check(CheckKind::HostPing, "nan", true, Some(f64::NAN)),
                check(CheckKind::HostPing, "neg", true, Some(-1.0)),
            ])
            .collect();
        totals.record(&report(checks));
        let text = render(None, &totals, &info());
        let buckets: Vec<(f64, f64)> =
            lines_of(&text, "networktest_rtt_seconds_bucket{kind=\"host-ping\"")
                .iter()
                .map(|l| {
                    let le = l.split("le=\"").nth(1).unwrap().split('"').next().unwrap();
                    let le = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap()
                    };
                    (le, l.rsplit(' ').next().unwrap().parse().unwrap())
                })
                .collect();
        assert_eq!(buckets.len(), RTT_BUCKETS.len() + 1);
        assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0), "ascending le");
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "cumulative");
        assert_eq!(buckets[0], (0.0005, 2.0), "le is inclusive");
        assert_eq!(buckets.last().unwrap().1, 7.0);
        assert!(text.contains("networktest_rtt_seconds_count{kind=\"host-ping\"} 7\n"));
        assert!(text.contains("networktest_rtt_seconds_count{kind=\"pod-ping\"} 0\n"));
    }

    /// A host ping of node `n` of a larger cluster: passed with `rtt`, or failed.
    fn on_node(n: usize, rtt: Option<f64>) -> Check {
        let node = format!("node-{n:04}");
        let c = Check::failed(
            CheckKind::HostPing,
            &node,
            &node,
            &format!("198.18.{}.{}", n / 250, n % 250),
            Reason::Timeout,
            "timeout",
        );
        rtt.map_or(c.clone(), |r| c.passed(r))
    }

    fn omitted(text: &str, state: &str) -> String {
        let prefix = format!("networktest_target_series_omitted{{state=\"{state}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no omitted {state} in {text}"))
            .to_string()
    }

    #[test]
    fn small_clusters_show_every_target() {
        let mut checks: Vec<Check> = (0..10)
            .map(|i| check(CheckKind::PodPing, &format!("ok{i}"), true, Some(0.001)))
            .collect();
        checks.extend((0..4).map(|i| check(CheckKind::PodPing, &format!("bad{i}"), false, None)));
        checks.push(checks[0].clone()); // a duplicate key is shown once
        let r = report(checks);
        let text = render(Some(&r), &Totals::new(), &info());
        let up = lines_of(&text, "networktest_target_up{");
        assert_eq!(up.len(), 14);
        assert_eq!(up.iter().filter(|l| l.ends_with(" 0")).count(), 4);
        assert_eq!(lines_of(&text, "networktest_target_rtt_seconds{").len(), 10);
        assert_eq!(
            (omitted(&text, "failing"), omitted(&text, "passing")),
            ("0".into(), "0".into())
        );
        // Even there, the cap holds.
        let mut totals = Totals::new();
        totals.target_series.cap = 6;
        let text = render(Some(&r), &totals, &info());
        assert_eq!(lines_of(&text, "networktest_target_up{").len(), 10);
        assert_eq!(
            (omitted(&text, "failing"), omitted(&text, "passing")),
            ("0".into(), "4".into())
        );
    }

    #[test]
    fn larger_clusters_show_capped_failures_and_the_slowest_passing_targets() {
        // 100 nodes: 60 pass (RTT growing with the node number, but node 7 slowest of all),
        // 40 fail.
        let checks: Vec<Check> = (0..100)
            .map(|n| match n {
                7 => on_node(n, Some(0.9)),
                _ if n % 5 < 3 => on_node(n, Some(0.0001 * n as f64)),
                _ => on_node(n, None),
            })
            .collect();
        let r = report(checks);
        let mut totals = Totals::new();
        totals.target_series = TargetSeries {
            cap: 30,
            slowest: 5,
            small_cluster: 50,
        };
        let text = render(Some(&r), &totals, &info());
        let up = lines_of(&text, "networktest_target_up{");
        let failing: Vec<&str> = up.iter().copied().filter(|l| l.ends_with(" 0")).collect();
        assert_eq!(failing.len(), 30, "the cap");
        assert!(failing[0].contains("node-0003") && failing[29].contains("node-0074"));
        assert_eq!(omitted(&text, "failing"), "10");
        let rtts: Vec<&str> = lines_of(&text, "networktest_target_rtt_seconds{");
        let slow: Vec<&str> = rtts
            .iter()
            .map(|l| {
                l.split("target=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
            })
            .collect();
        // Report order; node 7 and the four with the highest RTT otherwise.
        assert_eq!(
            slow,
            [
                "node-0007",
                "node-0092",
                "node-0095",
                "node-0096",
                "node-0097"
            ]
        );
        assert_eq!(up.len(), 35);
        assert_eq!(omitted(&text, "passing"), "55");
        // Departed targets vanish: the next round without them has no series of theirs.
        let fewer = report(r.checks[..50].to_vec());
        let text = render(Some(&fewer), &totals, &info());
        assert!(!text.contains("node-0097"));
    }

    #[test]
    fn settings_for_the_rules_and_checks_of_other_nodes() {
        let mut totals = Totals::new();
        let text = render(None, &totals, &info());
        assert!(
            !text.contains("networktest_mesh_peers"),
            "unset: not exported"
        );
        totals.reporting = Some(Reporting {
            interval: Duration::from_secs(60),
            reach: Reach {
                peers: Some(3),
                dns_instance_peers: None,
                pod_path_peers: None,
            },
        });
        let mut gone = on_node(4, None);
        gone.kind = CheckKind::NodeWithoutAgent;
        let mut skipped = on_node(5, None);
        skipped.outcome = Outcome::skipped(Reason::NoAgent, "agent pod is terminating");
        let r = report(vec![
            // Its own node's checks (node-1) are not checks of peers.
            check(CheckKind::HostPing, "node-1", false, None),
            check(CheckKind::PodPing, "agent-x", true, Some(0.001)),
            on_node(2, Some(0.001)),
            on_node(3, None),
            gone,
            skipped,
            check(CheckKind::DnsInstance, "coredns-a", false, None),
        ]);
        totals.record(&r);
        let text = render(Some(&r), &totals, &info());
        for line in [
            "networktest_round_interval_seconds 60\n",
            "networktest_mesh_peers{target=\"node\"} 3\n",
            "networktest_mesh_peers{target=\"dns-instance\"} +Inf\n",
            "networktest_last_round_peer_checks{kind=\"host-ping\"} 2\n",
            "networktest_last_round_peer_failed_checks{kind=\"host-ping\"} 1\n",
            "networktest_last_round_peer_checks{kind=\"pod-ping\"} 0\n",
            "networktest_last_round_peer_failed_checks{kind=\"pod-ping\"} 0\n",
            "networktest_last_round_peer_checks{kind=\"node-without-agent\"} 1\n",
            "networktest_last_round_peer_failed_checks{kind=\"node-without-agent\"} 1\n",
        ] {
            assert!(text.contains(line), "{line} missing in {text}");
        }
        // Node kinds only: 2 families x 5 kinds.
        assert_eq!(lines_of(&text, "networktest_last_round_peer_").len(), 10);
    }

    #[test]
    fn before_first_round_no_stale_values() {
        let text = render(None, &Totals::new(), &info());
        assert!(text.contains("networktest_build_info{version=\"0.2.0\"} 1\n"));
        assert!(text.contains("networktest_rounds_total 0\n"));
        assert!(text.contains("networktest_checks_total{kind=\"dns-instance\"} 0\n"));
        for absent in [
            "networktest_total_error_count",
            "networktest_target_up",
            "networktest_last_round_timestamp_seconds",
            "networktest_round_duration_seconds",
            "networktest_api_errors_total",
        ] {
            assert!(!text.contains(absent), "{absent} before the first round");
        }
    }

    #[test]
    fn counters_accumulate_and_timestamp_is_round_end() {
        let mut totals = Totals::new();
        let r = report(vec![
            check(CheckKind::DnsInstance, "coredns-a", true, Some(0.002)),
            check(CheckKind::DnsInstance, "coredns-b", false, None),
            check(CheckKind::NodeWithoutAgent, "node-9", false, None),
        ]);
        let end = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        totals.record_at(&r, end);
        totals.record_at(&r, end);
        totals.api_error("status-403");
        let text = render(Some(&r), &totals, &info());
        assert!(text.contains("networktest_rounds_total 2\n"));
        assert!(text.contains("networktest_checks_total{kind=\"dns-instance\"} 4\n"));
        assert!(text.contains(
            "networktest_check_failures_total{kind=\"dns-instance\",reason=\"timeout\"} 2\n"
        ));
        assert!(text.contains(
            "networktest_last_round_failed_checks{kind=\"dns-instance\",family=\"ipv4\"} 1\n"
        ));
        assert!(text.contains("networktest_total_error_count 2\n"));
        assert!(text.contains("networktest_nodes_without_agent 1\n"));
        assert!(text.contains("networktest_api_errors_total{reason=\"status-403\"} 1\n"));
        assert!(text.contains("networktest_last_round_timestamp_seconds 1700000000.5\n"));
        assert!(text.contains("networktest_round_duration_seconds 1.25\n"));
    }

    #[test]
    fn failures_count_by_reason_and_skips_are_neither_up_nor_down() {
        let mut refused = check(CheckKind::DnsInstance, "coredns-b", false, None);
        refused.outcome = Outcome::failed(Reason::Refused, "refused");
        let mut skipped = check(CheckKind::PodPing, "agent-gone", false, None);
        skipped.outcome = Outcome::skipped(Reason::NoAgent, "agent pod is terminating");
        let r = report(vec![
            check(CheckKind::DnsInstance, "coredns-a", false, None),
            refused,
            skipped,
            check(CheckKind::PodPing, "agent-1", true, Some(0.001)),
        ]);
        let mut totals = Totals::new();
        totals.record(&r);
        let text = render(Some(&r), &totals, &info());
        for line in [
            "networktest_check_failures_total{kind=\"dns-instance\",reason=\"refused\"} 1\n",
            "networktest_check_failures_total{kind=\"dns-instance\",reason=\"timeout\"} 1\n",
            "networktest_check_skips_total{kind=\"pod-ping\",reason=\"no-agent\"} 1\n",
            "networktest_last_round_skipped_checks{kind=\"pod-ping\",family=\"ipv4\"} 1\n",
            "networktest_last_round_skipped_checks{kind=\"dns-instance\",family=\"ipv4\"} 0\n",
            "networktest_last_round_failed_checks{kind=\"pod-ping\",family=\"ipv4\"} 0\n",
            "networktest_last_round_checks{kind=\"pod-ping\",family=\"ipv4\"} 2\n",
            "networktest_total_error_count 2\n",
        ] {
            assert!(text.contains(line), "{line} missing in {text}");
        }
        assert_eq!(
            lines_of(&text, "networktest_check_failures_total{").len(),
            2
        );
        assert!(!text.contains("target=\"agent-gone\""), "{text}");
        assert_eq!(lines_of(&text, "networktest_target_up{").len(), 3);
        assert!(text.contains("networktest_target_series_omitted{state=\"failing\"} 0\n"));
        assert!(text.contains("networktest_target_series_omitted{state=\"passing\"} 0\n"));
    }

    #[test]
    fn last_round_gauges_count_by_address_family() {
        let mut v6 = check(CheckKind::PodPing, "agent-1", false, None);
        v6.address = "2001:db8::1".into();
        let r = report(vec![
            check(CheckKind::PodPing, "agent-1", true, Some(0.001)),
            v6,
            check(CheckKind::NodeWithoutAgent, "n9", false, None),
        ]);
        let text = render(Some(&r), &Totals::new(), &info());
        for line in [
            "networktest_last_round_checks{kind=\"pod-ping\",family=\"ipv4\"} 1\n",
            "networktest_last_round_checks{kind=\"pod-ping\",family=\"ipv6\"} 1\n",
            "networktest_last_round_failed_checks{kind=\"pod-ping\",family=\"ipv4\"} 0\n",
            "networktest_last_round_failed_checks{kind=\"pod-ping\",family=\"ipv6\"} 1\n",
            "networktest_last_round_skipped_checks{kind=\"pod-ping\",family=\"ipv6\"} 0\n",
            "networktest_last_round_checks{kind=\"host-ping\"} 0\n",
            "networktest_nodes_without_agent 1\n",
        ] {
            assert!(text.contains(line), "{line} missing in {text}");
        }
        assert!(!text.contains("networktest_last_round_checks{kind=\"pod-ping\"}"));
    }

    #[test]
    fn rtt_histograms_exist_for_the_kinds_that_measure_one() {
        let text = render(None, &Totals::new(), &info());
        for kind in CheckKind::ALL {
            let series = format!("networktest_rtt_seconds_count{{kind=\"{kind}\"}} 0\n");
            assert_eq!(text.contains(&series), kind.info().rtt, "{kind}");
        }
    }

    #[test]
    fn api_error_reasons_are_bounded() {
        let mut totals = Totals::new();
        for i in 0..100 {
            totals.api_error(&format!("reason-{i}"));
        }
        totals.api_error("reason-0");
        let text = render(None, &totals, &info());
        let lines = lines_of(&text, "networktest_api_errors_total{");
        assert_eq!(lines.len(), MAX_API_ERROR_REASONS + 1);
        assert!(text.contains("networktest_api_errors_total{reason=\"other\"} 68\n"));
        assert!(text.contains("networktest_api_errors_total{reason=\"reason-0\"} 2\n"));
    }

    #[test]
    fn special_floats() {
        assert_eq!(fmt_f64(f64::NAN), "NaN");
        assert_eq!(fmt_f64(f64::INFINITY), "+Inf");
        assert_eq!(fmt_f64(0.0005), "0.0005");
        assert_eq!(fmt_f64(3.0), "3");
        assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
    }
}
