//! The matrix itself (pure): the summaries of every agent reduced to cells, rows (sources)
//! and columns (targets) chosen and ordered, and the result as one serialisable [`Matrix`]
//! that the page, `/matrix.json` and the `matrix` command show.
//!
//! Up to [`FULL_NODES`] nodes every row and column is shown, in name order. Beyond, the view
//! is summarised: rows and columns with failures first (most failures first), then the rest,
//! at most [`FULL_NODES`] of each; the left-out ones are counted.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::summary::{self, Entry, Summary, SERVICE_COLUMN};

/// The most rows and columns shown: every node up to this cluster size.
pub const FULL_NODES: usize = 100;
/// The most DNS columns shown.
pub const MAX_DNS_COLUMNS: usize = 32;
/// The most checks one cell's detail lists.
const MAX_DETAIL_ENTRIES: usize = 8;
/// How a row's reason starts when the refresh left the peer out (out of time or bytes) rather
/// than the peer failing to answer: such rows come last when rows are left out.
pub const NOT_FETCHED: &str = "not fetched: ";

/// What a cell shows: the worst result of the source's checks of that target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellStatus {
    Passed,
    Skipped,
    /// A status this agent does not know (from a newer agent).
    Unknown,
    Failed,
}

impl CellStatus {
    fn from_word(w: &str) -> CellStatus {
        match w {
            "passed" => CellStatus::Passed,
            "failed" => CellStatus::Failed,
            "skipped" => CellStatus::Skipped,
            _ => CellStatus::Unknown,
        }
    }

    /// A short word for people (`OK`, `FAIL`, ...).
    pub fn word(self) -> &'static str {
        match self {
            CellStatus::Passed => "OK",
            CellStatus::Failed => "FAIL",
            CellStatus::Skipped => "skipped",
            CellStatus::Unknown => "unknown",
        }
    }
}

/// One source's checks of one target, in short.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub status: CellStatus,
    /// The largest RTT of the passed checks.
    #[serde(default)]
    pub rtt_seconds: Option<f64>,
    /// One line per check: kind, address, RTT or why it failed.
    #[serde(default)]
    pub detail: String,
}

/// A source's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub node: String,
    #[serde(default)]
    pub pod: String,
    #[serde(default)]
    pub version: String,
    /// When the source's last round started (RFC 3339), and how long before the matrix was
    /// built.
    #[serde(default)]
    pub round_started_at: String,
    #[serde(default)]
    pub round_age_seconds: Option<f64>,
    /// The round is older than three of the source's intervals: the agent stopped rounding.
    #[serde(default)]
    pub stale: bool,
    #[serde(default)]
    pub api_error: Option<String>,
    /// Why the row has no data (a grey row): the peer did not answer, has no agent, ...
    #[serde(default)]
    pub unreachable: Option<String>,
    /// Cells by status over every target (shown or not).
    #[serde(default)]
    pub failed: usize,
    #[serde(default)]
    pub passed: usize,
    #[serde(default)]
    pub other: usize,
    /// Targets the source's own summary left out (its round was larger than a summary holds).
    #[serde(default)]
    pub omitted_targets: usize,
    /// Aligned with [`Matrix::columns`]; `None`: the source did not check that target.
    #[serde(default)]
    pub cells: Vec<Option<Cell>>,
    /// Aligned with [`Matrix::dns_columns`].
    #[serde(default)]
    pub dns: Vec<Option<Cell>>,
}

impl Row {
    /// Whether the row counts as failing: a failed cell, or no data from a peer that was asked.
    pub fn failing(&self) -> bool {
        self.failed > 0
            || self
                .unreachable
                .as_deref()
                .is_some_and(|w| !w.starts_with(NOT_FETCHED))
    }

    /// The order of rows when not all are shown: rows whose peer did not answer first, then
    /// those with the most failed cells, then the ones the refresh left out; by name within.
    fn rank(&self) -> (u8, std::cmp::Reverse<usize>) {
        let class = match self.unreachable.as_deref() {
            Some(w) if w.starts_with(NOT_FETCHED) => 2,
            Some(_) => 0,
            None => 1,
        };
        (class, std::cmp::Reverse(self.failed))
    }
}

/// The whole-cluster matrix as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    /// The node of the agent that built it.
    pub by: String,
    pub built_at: String,
    /// Every node known (rows and columns before any summarising).
    pub nodes: usize,
    /// Whether rows or columns were left out (more than [`FULL_NODES`]).
    #[serde(default)]
    pub summarised: bool,
    /// Target nodes shown, in order.
    pub columns: Vec<String>,
    /// Failed cells per shown column.
    #[serde(default)]
    pub column_failed: Vec<usize>,
    pub rows: Vec<Row>,
    #[serde(default)]
    pub omitted_rows: usize,
    #[serde(default)]
    pub omitted_failing_rows: usize,
    #[serde(default)]
    pub omitted_columns: usize,
    #[serde(default)]
    pub omitted_failing_columns: usize,
    /// The DNS block's columns: `service` (lookups through the service) and one per instance.
    #[serde(default)]
    pub dns_columns: Vec<String>,
}

/// One source's data, reduced from its summary: cells by target.
#[derive(Debug, Clone, PartialEq)]
pub struct Reduced {
    pub pod: String,
    pub version: String,
    pub started_at: String,
    pub started_unix: f64,
    pub interval_seconds: f64,
    pub api_error: Option<String>,
    pub omitted_targets: usize,
    pub cells: HashMap<String, Cell>,
    pub dns: BTreeMap<String, Cell>,
}

/// Reduces a summary to cells (its entries are dropped: only what a cell shows is kept).
pub fn reduce(s: Summary) -> Reduced {
    let mut cells: HashMap<String, Cell> = HashMap::with_capacity(s.targets.len());
    for t in s.targets {
        let cell = cell(&t.checks, false);
        match cells.get_mut(&t.node) {
            // The same node twice (a writer's bug): the worse cell stands.
            Some(c) if c.status >= cell.status => {}
            _ => {
                cells.insert(t.node, cell);
            }
        }
    }
    let mut by_column: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for e in s.dns {
        let column = if e.column.is_empty() {
            SERVICE_COLUMN.to_string()
        } else {
            e.column.clone()
        };
        by_column.entry(column).or_default().push(e);
    }
    let dns = by_column
        .into_iter()
        .map(|(k, entries)| (k, cell(&entries, true)))
        .collect();
    Reduced {
        pod: s.pod,
        version: s.version,
        started_at: s.started_at,
        started_unix: s.started_unix,
        interval_seconds: s.interval_seconds,
        api_error: s.api_error.map(|e| summary::cut(&e, summary::MAX_MESSAGE)),
        omitted_targets: s.omitted_targets,
        cells,
        dns,
    }
}

/// The cell of a source's checks of one target: the worst status, the largest passing RTT,
/// one detail line per check (`with_target` names the target too: DNS names differ).
fn cell(entries: &[Entry], with_target: bool) -> Cell {
    let status = entries
        .iter()
        .map(|e| CellStatus::from_word(&e.status))
        .max()
        .unwrap_or(CellStatus::Unknown);
    let rtt_seconds = entries
        .iter()
        .filter(|e| e.status == "passed")
        .filter_map(|e| e.rtt_seconds.filter(|r| r.is_finite() && *r >= 0.0))
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
    let mut lines: Vec<String> = entries
        .iter()
        .take(MAX_DETAIL_ENTRIES)
        .map(|e| detail_line(e, with_target))
        .collect();
    if entries.len() > MAX_DETAIL_ENTRIES {
        lines.push(format!(
            "... and {} more",
            entries.len().saturating_sub(MAX_DETAIL_ENTRIES)
        ));
    }
    Cell {
        status,
        rtt_seconds,
        detail: lines.join("\n"),
    }
}

fn detail_line(e: &Entry, with_target: bool) -> String {
    let mut what = summary::cut(&e.kind, 40);
    if with_target && !e.target.is_empty() {
        what.push(' ');
        what.push_str(&summary::cut(&e.target, 80));
    }
    if !e.address.is_empty() {
        what.push(' ');
        what.push_str(&summary::cut(&e.address, 45));
    }
    let why = |word: &str| {
        let message = e
            .message
            .as_deref()
            .map(|m| summary::cut(m, summary::MAX_MESSAGE));
        match (message, e.reason.as_deref()) {
            (Some(m), Some(r)) => format!("{word}: {m} ({})", summary::cut(r, 40)),
            (Some(m), None) => format!("{word}: {m}"),
            (None, Some(r)) => format!("{word} ({})", summary::cut(r, 40)),
            (None, None) => word.to_string(),
        }
    };
    let result = match CellStatus::from_word(&e.status) {
        CellStatus::Passed => match e.rtt_seconds.filter(|r| r.is_finite()) {
            Some(r) => format!("{:.2} ms", r * 1000.0),
            None => "OK".to_string(),
        },
        CellStatus::Failed => why("FAIL"),
        CellStatus::Skipped => why("skipped"),
        CellStatus::Unknown => why(&summary::cut(&e.status, 20)),
    };
    format!("{what}: {result}")
}

/// One row's source: the node, its agent pod, and its reduced summary or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub node: String,
    pub pod: String,
    pub data: Result<Reduced, String>,
}

/// Everything [`build`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The node of the agent building the matrix.
    pub by: String,
    pub built_at: String,
    pub built_unix: f64,
    /// Every node known (a node nobody checks is still a column).
    pub nodes: Vec<String>,
    /// One per row.
    pub sources: Vec<Source>,
}

/// Builds the matrix: at most [`FULL_NODES`] rows and columns.
pub fn build(input: Input) -> Matrix {
    build_with(input, FULL_NODES)
}

fn build_with(input: Input, max: usize) -> Matrix {
    // The columns: the nodes this agent knows (a peer's summary cannot add one: a target it
    // names that is not a known node is left out).
    let mut targets: BTreeSet<&str> = input.nodes.iter().map(String::as_str).collect();
    targets.extend(input.sources.iter().map(|s| s.node.as_str()));
    let mut dns_columns: BTreeSet<&str> = BTreeSet::new();
    let mut failed_in: HashMap<&str, usize> = HashMap::new();
    for s in &input.sources {
        if let Ok(d) = &s.data {
            dns_columns.extend(d.dns.keys().map(String::as_str));
            for (t, c) in &d.cells {
                if c.status == CellStatus::Failed && targets.contains(t.as_str()) {
                    *failed_in.entry(t.as_str()).or_default() += 1;
                }
            }
        }
    }
    let all_columns: Vec<&str> = targets.iter().copied().collect();
    let nodes = all_columns.len().max(input.sources.len());
    let summarised = all_columns.len() > max || input.sources.len() > max;
    let (columns, omitted_columns, omitted_failing_columns) = pick(
        all_columns,
        |c| failed_in.get(c).copied().unwrap_or(0),
        summarised,
        max,
    );
    // The service column first, then the instances by name.
    let mut dns_columns: Vec<String> = dns_columns.into_iter().map(str::to_string).collect();
    dns_columns.sort_by(|a, b| (a != SERVICE_COLUMN, a).cmp(&(b != SERVICE_COLUMN, b)));
    dns_columns.truncate(MAX_DNS_COLUMNS);
    let column_failed: Vec<usize> = columns
        .iter()
        .map(|c| failed_in.get(c.as_str()).copied().unwrap_or(0))
        .collect();
    drop(failed_in);

    let known: BTreeSet<String> = targets.iter().map(|t| t.to_string()).collect();
    let is_known = |t: &str| known.contains(t);
    let mut rows: Vec<Row> = input
        .sources
        .into_iter()
        .map(|s| row(s, &columns, &dns_columns, input.built_unix, &is_known))
        .collect();
    rows.sort_by(|a, b| a.node.cmp(&b.node));
    let mut omitted_rows = 0;
    let mut omitted_failing_rows = 0;
    if summarised {
        rows.sort_by(|a, b| (a.rank(), &a.node).cmp(&(b.rank(), &b.node)));
        if rows.len() > max {
            let rest = rows.split_off(max);
            omitted_rows = rest.len();
            omitted_failing_rows = rest.iter().filter(|r| r.failing()).count();
        }
    }
    Matrix {
        by: input.by,
        built_at: input.built_at,
        nodes,
        summarised,
        columns,
        column_failed,
        rows,
        omitted_rows,
        omitted_failing_rows,
        omitted_columns,
        omitted_failing_columns,
        dns_columns,
    }
}

/// The columns shown: all in name order, or (summarised) the failing first, at most `max`;
/// with the number left out and how many of those fail.
fn pick(
    mut all: Vec<&str>,
    failed: impl Fn(&str) -> usize,
    summarised: bool,
    max: usize,
) -> (Vec<String>, usize, usize) {
    let mut omitted = 0;
    let mut omitted_failing = 0;
    if summarised {
        all.sort_by_key(|c| (std::cmp::Reverse(failed(c)), *c));
        if all.len() > max {
            let rest = all.split_off(max);
            omitted = rest.len();
            omitted_failing = rest.iter().filter(|c| failed(c) > 0).count();
        }
    }
    (
        all.into_iter().map(str::to_string).collect(),
        omitted,
        omitted_failing,
    )
}

fn row(
    s: Source,
    columns: &[String],
    dns_columns: &[String],
    built_unix: f64,
    known: &dyn Fn(&str) -> bool,
) -> Row {
    match s.data {
        Err(why) => Row {
            node: s.node,
            pod: s.pod,
            version: String::new(),
            round_started_at: String::new(),
            round_age_seconds: None,
            stale: false,
            api_error: None,
            unreachable: Some(summary::cut(&why, summary::MAX_MESSAGE)),
            failed: 0,
            passed: 0,
            other: 0,
            omitted_targets: 0,
            cells: vec![None; columns.len()],
            dns: vec![None; dns_columns.len()],
        },
        Ok(mut d) => {
            d.cells.retain(|t, _| known(t));
            let failed = count(&d.cells, |s| s == CellStatus::Failed);
            let passed = count(&d.cells, |s| s == CellStatus::Passed);
            let other = d.cells.len().saturating_sub(failed).saturating_sub(passed);
            let age = (d.started_unix > 0.0 && built_unix.is_finite())
                .then(|| (built_unix - d.started_unix).max(0.0))
                .filter(|a| a.is_finite());
            let stale = match age {
                Some(a) => d.interval_seconds > 0.0 && a > 3.0 * d.interval_seconds,
                None => false,
            };
            let cells = columns.iter().map(|c| d.cells.remove(c)).collect();
            let dns = dns_columns.iter().map(|c| d.dns.remove(c)).collect();
            Row {
                node: s.node,
                pod: if d.pod.is_empty() { s.pod } else { d.pod },
                version: d.version,
                round_started_at: d.started_at,
                round_age_seconds: age,
                stale,
                api_error: d.api_error,
                unreachable: None,
                failed,
                passed,
                other,
                omitted_targets: d.omitted_targets,
                cells,
                dns,
            }
        }
    }
}

fn count(cells: &HashMap<String, Cell>, f: impl Fn(CellStatus) -> bool) -> usize {
    cells.values().filter(|c| f(c.status)).count()
}

/// For views that show fewer rows and columns than the matrix has (the `matrix` command's
/// text): which rows and columns to show, failing first when not all fit, at most `max` each,
/// as indices into the matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub rows: Vec<usize>,
    pub columns: Vec<usize>,
    /// Whether anything was left out (counting what the matrix itself left out).
    pub summarised: bool,
    pub omitted_rows: usize,
    pub omitted_failing_rows: usize,
    pub omitted_columns: usize,
    pub omitted_failing_columns: usize,
}

/// Selects at most `max` rows and columns of `m`: all of them in the matrix's order when
/// they fit, else the failing first.
pub fn select(m: &Matrix, max: usize) -> Selection {
    let fits = m.rows.len() <= max && m.columns.len() <= max;
    let failed_at = |c: usize| m.column_failed.get(c).copied().unwrap_or(0);
    let mut columns: Vec<usize> = (0..m.columns.len()).collect();
    let mut rows: Vec<usize> = (0..m.rows.len()).collect();
    let mut s = Selection {
        rows: Vec::new(),
        columns: Vec::new(),
        summarised: m.summarised || !fits,
        omitted_rows: m.omitted_rows,
        omitted_failing_rows: m.omitted_failing_rows,
        omitted_columns: m.omitted_columns,
        omitted_failing_columns: m.omitted_failing_columns,
    };
    if !fits {
        columns.sort_by_key(|&c| (std::cmp::Reverse(failed_at(c)), c));
        rows.sort_by_key(|&r| (m.rows.get(r).map(Row::rank), r));
        if columns.len() > max {
            let rest = columns.split_off(max);
            s.omitted_columns = s.omitted_columns.saturating_add(rest.len());
            s.omitted_failing_columns = s
                .omitted_failing_columns
                .saturating_add(rest.iter().filter(|&&c| failed_at(c) > 0).count());
        }
        if rows.len() > max {
            let rest = rows.split_off(max);
            s.omitted_rows = s.omitted_rows.saturating_add(rest.len());
            s.omitted_failing_rows = s.omitted_failing_rows.saturating_add(
                rest.iter()
                    .filter(|&&r| m.rows.get(r).is_some_and(Row::failing))
                    .count(),
            );
        }
    }
    s.rows = rows;
    s.columns = columns;
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::summary::Target;

    fn entry(kind: &str, status: &str, rtt: Option<f64>) -> Entry {
        Entry {
            kind: kind.into(),
            target: String::new(),
            address: "198.18.0.1".into(),
            status: status.into(),
            reason: (status != "passed").then(|| "timeout".to_string()),
            message: (status != "passed").then(|| "no reply within 1s".to_string()),
            rtt_seconds: rtt,
            column: String::new(),
        }
    }

    /// A summary of `node` whose checks of each node in `targets` pass, except those in
    /// `failing`.
    pub(crate) fn summary(node: &str, targets: &[String], failing: &[&str]) -> Summary {
        Summary {
            format: 1,
            node: node.into(),
            pod: format!("agent-{node}"),
            version: "0.2.0".into(),
            started_at: "2026-11-30T08:00:00.000Z".into(),
            started_unix: 1000.0,
            duration_seconds: 1.0,
            interval_seconds: 60.0,
            api_error: None,
            targets: targets
                .iter()
                .map(|t| {
                    let status = if failing.contains(&t.as_str()) {
                        "failed"
                    } else {
                        "passed"
                    };
                    let rtt = (status == "passed").then_some(0.0002);
                    Target {
                        node: t.clone(),
                        checks: vec![
                            entry("host-ping", status, rtt),
                            entry("pod-ping", status, rtt.map(|r| r / 2.0)),
                        ],
                    }
                })
                .collect(),
            omitted_targets: 0,
            dns: vec![
                Entry {
                    column: "coredns-0".into(),
                    target: "coredns-0".into(),
                    ..entry("dns-instance", "passed", Some(0.001))
                },
                Entry {
                    column: "service".into(),
                    target: "kube-dns.tst.".into(),
                    ..entry("dns-service", "passed", Some(0.001))
                },
            ],
            omitted_dns: 0,
        }
    }

    /// `node-00`.. (three digits beyond 100 nodes, so names sort as numbers).
    pub(crate) fn names(n: usize) -> Vec<String> {
        let w = if n > 100 { 3 } else { 2 };
        (0..n).map(|i| format!("node-{i:0w$}")).collect()
    }

    /// `n` nodes; `down` is unreachable (a grey row) and every other source fails its checks
    /// of it.
    pub(crate) fn input(n: usize, down: Option<usize>) -> Input {
        let nodes = names(n);
        let sources = nodes
            .iter()
            .enumerate()
            .map(|(i, node)| Source {
                node: node.clone(),
                pod: format!("agent-{node}"),
                data: if Some(i) == down {
                    Err("no answer: connect 198.19.2.10:8123: timed out".into())
                } else {
                    let failing: Vec<&str> = down.map(|d| nodes[d].as_str()).into_iter().collect();
                    Ok(reduce(summary(node, &nodes, &failing)))
                },
            })
            .collect();
        Input {
            by: "node-00".into(),
            built_at: "2026-11-30T08:00:10.000Z".into(),
            built_unix: 1010.0,
            nodes,
            sources,
        }
    }

    #[test]
    fn cells_show_the_worst_check_its_rtt_and_why() {
        let c = cell(
            &[
                entry("host-ping", "passed", Some(0.0002)),
                entry("pod-ping", "failed", None),
            ],
            false,
        );
        assert_eq!(c.status, CellStatus::Failed);
        assert_eq!(c.rtt_seconds, Some(0.0002));
        assert_eq!(
            c.detail,
            "host-ping 198.18.0.1: 0.20 ms\npod-ping 198.18.0.1: FAIL: no reply within 1s (timeout)"
        );
        let newer = cell(&[entry("mtu-ping", "degraded", None)], false);
        assert_eq!(newer.status, CellStatus::Unknown);
        assert!(newer.detail.starts_with("mtu-ping 198.18.0.1: degraded"));
        assert_eq!(cell(&[], false).status, CellStatus::Unknown);
    }

    #[test]
    fn a_small_cluster_shows_every_row_and_column_in_name_order() {
        let m = build(input(4, Some(2)));
        assert!(!m.summarised);
        assert_eq!(m.columns, names(4));
        assert_eq!(m.column_failed, [0, 0, 3, 0]);
        let rows: Vec<&str> = m.rows.iter().map(|r| r.node.as_str()).collect();
        assert_eq!(rows, ["node-00", "node-01", "node-02", "node-03"]);
        let grey = &m.rows[2];
        assert!(grey.unreachable.as_deref().unwrap().contains("timed out"));
        assert!(grey.cells.iter().all(Option::is_none));
        let r0 = &m.rows[0];
        assert_eq!((r0.failed, r0.passed), (1, 3));
        assert_eq!(r0.round_age_seconds, Some(10.0));
        assert!(!r0.stale);
        let failing: Vec<(usize, usize)> = m
            .rows
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                r.cells.iter().enumerate().filter_map(move |(j, c)| {
                    c.as_ref()
                        .filter(|c| c.status == CellStatus::Failed)
                        .map(|_| (i, j))
                })
            })
            .collect();
        assert_eq!(failing, [(0, 2), (1, 2), (3, 2)]);
        assert_eq!(m.dns_columns, ["service", "coredns-0"]);
        assert_eq!(
            m.rows[0].dns[1].as_ref().unwrap().status,
            CellStatus::Passed
        );
        // The JSON round-trips (the `matrix` command reads it).
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Matrix>(&text).unwrap(), m);
    }

    #[test]
    fn a_large_cluster_shows_the_failing_rows_and_columns_first() {
        let mut i = input(150, Some(120));
        // node-130 fails towards node-140 as well, as seen from node-007 only.
        if let Ok(d) = &mut i.sources[7].data {
            d.cells.get_mut("node-140").unwrap().status = CellStatus::Failed;
        }
        let m = build_with(i, 100);
        assert!(m.summarised);
        assert_eq!(m.columns.len(), 100);
        assert_eq!(m.rows.len(), 100);
        assert_eq!(m.nodes, 150);
        assert_eq!(&m.columns[..2], ["node-120", "node-140"]);
        assert_eq!(m.column_failed[..3], [149, 1, 0]);
        assert_eq!(m.rows[0].node, "node-120", "the row without data first");
        assert_eq!(m.rows[1].node, "node-007", "two failed cells");
        assert!(m.rows[2].failed == 1 && m.rows[2].unreachable.is_none());
        assert_eq!(
            (m.omitted_rows, m.omitted_failing_rows),
            (50, 50),
            "every source fails towards node-120"
        );
        assert_eq!((m.omitted_columns, m.omitted_failing_columns), (50, 0));
    }

    #[test]
    fn a_summary_cannot_add_columns() {
        let mut i = input(3, None);
        if let Ok(d) = &mut i.sources[1].data {
            for k in 0..500 {
                d.cells.insert(
                    format!("aaa-fake-{k}"),
                    Cell {
                        status: CellStatus::Failed,
                        rtt_seconds: None,
                        detail: String::new(),
                    },
                );
            }
        }
        let m = build(i);
        assert_eq!(m.columns, names(3));
        assert!(!m.summarised);
        assert_eq!((m.rows[1].failed, m.rows[1].passed), (0, 3));
    }

    #[test]
    fn rows_the_refresh_left_out_come_after_the_failures() {
        let mut i = input(150, Some(120));
        for s in i.sources.iter_mut().skip(10).take(30) {
            s.data = Err(format!("{NOT_FETCHED}the refresh ran out of its 20s"));
        }
        let m = build_with(i, 100);
        assert_eq!(m.rows[0].node, "node-120");
        assert!(m.rows[1..100].iter().all(|r| r.unreachable.is_none()));
        assert_eq!((m.omitted_rows, m.omitted_failing_rows), (50, 20));
    }

    #[test]
    fn a_stale_round_is_marked() {
        let mut i = input(2, None);
        i.built_unix = 1000.0 + 200.0;
        let m = build(i);
        assert!(m.rows.iter().all(|r| r.stale));
    }

    #[test]
    fn selection_keeps_small_matrices_whole_and_puts_failures_first() {
        let m = build(input(4, Some(2)));
        let s = select(&m, 20);
        assert_eq!(
            (s.rows.clone(), s.columns.clone()),
            (vec![0, 1, 2, 3], vec![0, 1, 2, 3])
        );
        assert!(!s.summarised);
        let s = select(&m, 2);
        assert!(s.summarised);
        assert_eq!(s.columns, [2, 0]);
        assert_eq!(s.rows, [2, 0], "the grey row, then the failing ones");
        assert_eq!((s.omitted_rows, s.omitted_failing_rows), (2, 2));
        assert_eq!((s.omitted_columns, s.omitted_failing_columns), (2, 0));
    }
}
