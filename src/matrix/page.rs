//! The agent's `/` page (pure): the node-by-node matrix and the DNS block as one
//! self-contained HTML document (inline CSS, no script, nothing fetched from elsewhere).
//!
//! The document is served in three pieces so that every request is answered from memory:
//! [`HEAD_START`], a small per-request piece ([`REFRESHING_HEAD`] while a refresh runs: it
//! reloads the page and shows the banner), and the body rendered once per refresh
//! ([`render`]) or [`placeholder`] before the first one.

use std::fmt::Write as _;
use std::time::Duration;

use super::model::{Cell, CellStatus, Matrix, Row};
use crate::view::metrics::AgentInfo;

/// The document up to the per-request piece.
pub const HEAD_START: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width\">\
<title>k8s-network-test-daemonset</title>\n";

/// The per-request piece while a refresh runs (or before the first matrix): reload in two
/// seconds, show the banner.
pub const REFRESHING_HEAD: &str =
    "<meta http-equiv=\"refresh\" content=\"2\"><style>#refreshing{display:block}</style>\n";

/// The per-request piece of a current matrix: reload once it may be refreshed (after an
/// interval, at least 5 s).
pub fn reload_head(interval: Duration) -> String {
    let seconds = interval.as_secs().max(5).saturating_add(1);
    format!("<meta http-equiv=\"refresh\" content=\"{seconds}\">\n")
}

const STYLE: &str = "<style>\
body{font:13px/1.4 system-ui,sans-serif;margin:1em;color:#222}\
h1{font-size:1.3em;margin:0}h2{font-size:1.1em;margin:1.2em 0 .3em}\
.note{color:#555;max-width:60em}\
#refreshing{display:none;background:#ffd;border:1px solid #cc8;padding:.3em .6em}\
table.m{border-collapse:collapse}\
table.m th,table.m td{border:1px solid #fff;padding:0}\
td.x{width:15px;min-width:15px;max-width:15px;height:15px;text-align:center;font-size:10px;line-height:15px}\
td.x:hover{outline:2px solid #000}\
.x.pass{background:#2e9e44}.x.fail{background:#d7263d;color:#fff;font-weight:bold}\
.x.skip{background:#f2c14e}.x.unknown{background:#8a5cd6;color:#fff}.x.none{background:#eee}\
.x.nodata{background:#c8c8c8}\
th.c{vertical-align:bottom;font-weight:normal;white-space:nowrap;padding:0 1px;max-width:15px}\
th.c div{writing-mode:vertical-rl;transform:rotate(180deg)}\
th.c.cf{color:#d7263d;font-weight:bold}\
th.rh{text-align:right;font-weight:normal;white-space:nowrap;padding:0 .5em 0 0;position:sticky;left:0;background:#fff}\
th.lr{text-align:left;vertical-align:bottom;font-weight:normal;padding:0 .5em}\
tr.rfail th.rh{color:#d7263d;font-weight:bold}\
tr.rgrey th.rh{color:#666}\
td.r{padding:0 .5em;white-space:nowrap;color:#555}\
tr.rgrey td.r{color:#222}\
tr.rstale td.r{color:#d7263d}\
.legend span.x{display:inline-block;width:15px;height:15px;vertical-align:middle;text-align:center;font-size:10px;margin:0 .2em 0 .8em}\
</style></head><body>\n";

/// The body of the page for matrix `m`, from `</head>`'s style to `</html>`.
pub fn render(m: &Matrix, info: &AgentInfo, cached_for: Duration) -> String {
    let mut out = String::with_capacity(4096 + m.rows.len() * m.columns.len() * 120);
    out.push_str(STYLE);
    header(&mut out, info);
    let _ = writeln!(
        out,
        "<h2>Paths between nodes</h2>\n<p class=\"note\">Built at {} by the agent on {} from \
every agent's last round (each agent's <code>/summary.json</code>); kept for {}, then the next \
visit refreshes it. Rows: the source, the agent on that node; columns: the target node, its \
host and its agent pod. Hover a cell for the RTT and why a check failed.</p>",
        esc(&m.built_at),
        esc(&m.by),
        crate::duration::format(cached_for)
    );
    if m.summarised {
        let _ = writeln!(
            out,
            "<p class=\"note\" id=\"summarised\">{} nodes: showing {} sources and {} targets, \
those with failures first; left out: {} sources ({} failing) and {} targets ({} failing).</p>",
            m.nodes,
            m.rows.len(),
            m.columns.len(),
            m.omitted_rows,
            m.omitted_failing_rows,
            m.omitted_columns,
            m.omitted_failing_columns
        );
    }
    table(
        &mut out,
        "matrix",
        &m.columns,
        Some(&m.column_failed),
        &m.rows,
        |r| &r.cells,
    );
    legend(&mut out);
    let _ = writeln!(
        out,
        "<h2>DNS and API</h2>\n<p class=\"note\">Each agent's cluster-wide checks: <code>service</code> \
are the lookups through the cluster DNS service, <code>api-server</code> the round's request to the \
API server; the other columns query one DNS instance directly.</p>"
    );
    if m.dns_columns.is_empty() {
        out.push_str("<p>No DNS results.</p>\n");
    } else {
        table(&mut out, "dns", &m.dns_columns, None, &m.rows, |r| &r.dns);
    }
    out.push_str("</body></html>\n");
    out
}

/// The body before the first matrix is built: says so; [`REFRESHING_HEAD`] reloads it.
pub fn placeholder(info: &AgentInfo, why: &str) -> String {
    let mut out = String::from(STYLE);
    header(&mut out, info);
    let _ = writeln!(out, "<p id=\"refreshing\">{}</p>\n</body></html>", esc(why));
    out
}

fn header(out: &mut String, info: &AgentInfo) {
    let _ = writeln!(
        out,
        "<h1>k8s-network-test-daemonset {}</h1>\n<p>Node <b>{}</b>, pod {}. \
<a href=\"/prometheus.report\">/prometheus.report</a> (also /metrics) &middot; \
<a href=\"/status.json\">/status.json</a> &middot; <a href=\"/summary.json\">/summary.json</a> \
&middot; <a href=\"/matrix.json\">/matrix.json</a> &middot; <a href=\"/livez\">/livez</a> \
&middot; <a href=\"/readyz\">/readyz</a></p>\n<p id=\"refreshing\">Refreshing: fetching every \
agent's summary; this page reloads by itself.</p>",
        esc(&info.version),
        esc(&info.node),
        esc(&info.pod)
    );
}

fn table<'a>(
    out: &mut String,
    id: &str,
    columns: &[String],
    column_failed: Option<&[usize]>,
    rows: &'a [Row],
    cells: impl Fn(&'a Row) -> &'a Vec<Option<Cell>>,
) {
    let _ = write!(
        out,
        "<table class=\"m\" id=\"{id}\"><thead><tr><th class=\"rh\">source \\ target</th>"
    );
    for (i, c) in columns.iter().enumerate() {
        let failing = column_failed.and_then(|f| f.get(i)).is_some_and(|&n| n > 0);
        let _ = write!(
            out,
            "<th class=\"c{}\" data-dst=\"{c}\" title=\"{c}\"><div>{c}</div></th>",
            if failing { " cf" } else { "" },
            c = esc(c)
        );
    }
    out.push_str("<th class=\"lr\">last round</th></tr></thead>\n<tbody>\n");
    for r in rows {
        let row_cells = cells(r);
        let failing = row_cells
            .iter()
            .flatten()
            .any(|c| c.status == CellStatus::Failed);
        let class = if r.unreachable.is_some() {
            "rgrey"
        } else if failing {
            "rfail"
        } else {
            "rok"
        };
        let stale = if r.stale { " rstale" } else { "" };
        let _ = write!(
            out,
            "<tr class=\"{class}{stale}\" data-src=\"{n}\"><th class=\"rh\" title=\"pod {p}, version {v}\">{n}</th>",
            n = esc(&r.node),
            p = esc(&r.pod),
            v = esc(if r.version.is_empty() { "?" } else { &r.version })
        );
        match &r.unreachable {
            // One grey bar across the row; why, where the round's time would be.
            Some(why) => {
                let _ = write!(
                    out,
                    "<td class=\"x nodata\" colspan=\"{}\" title=\"{n}: {w}\"></td><td class=\"r why\">{w}</td>",
                    columns.len().max(1),
                    n = esc(&r.node),
                    w = esc(why)
                );
            }
            None => {
                for (c, cell) in columns.iter().zip(row_cells) {
                    cell_td(out, &r.node, c, cell.as_ref());
                }
                let _ = write!(out, "<td class=\"r\">{}</td>", esc(&round_time(r)));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

fn cell_td(out: &mut String, src: &str, dst: &str, cell: Option<&Cell>) {
    let Some(cell) = cell else {
        let _ = write!(
            out,
            "<td class=\"x none\" data-dst=\"{}\" title=\"{} &#8594; {}: not checked\"></td>",
            esc(dst),
            esc(src),
            esc(dst)
        );
        return;
    };
    let (class, mark) = match cell.status {
        CellStatus::Passed => ("pass", ""),
        CellStatus::Failed => ("fail", "&#215;"),
        CellStatus::Skipped => ("skip", "-"),
        CellStatus::Unknown => ("unknown", "?"),
    };
    let _ = write!(
        out,
        "<td class=\"x {class}\" data-dst=\"{}\" title=\"{} &#8594; {}&#10;{}\">{mark}</td>",
        esc(dst),
        esc(src),
        esc(dst),
        esc(&cell.detail).replace('\n', "&#10;")
    );
}

/// `08:00:00 UTC, 10 s before`, plus what is wrong with the round.
pub fn round_time(r: &Row) -> String {
    let clock = r
        .round_started_at
        .get(11..19)
        .map(|t| format!("{t} UTC"))
        .unwrap_or_else(|| "?".to_string());
    let mut s = match r.round_age_seconds {
        Some(a) => format!("{clock}, {} before", age(a)),
        None => clock,
    };
    if r.stale {
        s.push_str(", stale");
    }
    if r.api_error.is_some() {
        s.push_str(", API unreachable");
    }
    s
}

/// `45 s`, `12 min`, `3 h`.
pub fn age(seconds: f64) -> String {
    let s = if seconds.is_finite() && seconds > 0.0 {
        seconds.round() as u64
    } else {
        0
    };
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

fn legend(out: &mut String) {
    out.push_str(
        "<p class=\"legend\">\
<span class=\"x pass\"></span>passed \
<span class=\"x fail\">&#215;</span>failed \
<span class=\"x skip\">-</span>skipped \
<span class=\"x unknown\">?</span>unknown result (a newer agent) \
<span class=\"x none\"></span>not checked \
<span class=\"x nodata\"></span>no data from that agent (why at the end of its row)\
</p>\n",
    );
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::model::{build, tests::input};
    use super::*;

    fn info() -> AgentInfo {
        AgentInfo {
            version: "0.2.0".into(),
            node: "node-00".into(),
            pod: "agent-<0>".into(),
        }
    }

    fn page(m: &Matrix) -> String {
        format!(
            "{HEAD_START}{}",
            render(m, &info(), Duration::from_secs(60))
        )
    }

    #[test]
    fn the_page_marks_exactly_the_failing_cells_and_the_grey_row() {
        let html = page(&build(input(4, Some(2))));
        assert_eq!(html.matches("<td class=\"x fail\"").count(), 3, "{html}");
        for src in ["node-00", "node-01", "node-03"] {
            assert!(
                html.contains(&format!(
                    "<td class=\"x fail\" data-dst=\"node-02\" title=\"{src} &#8594; node-02&#10;host-ping 198.18.0.1: FAIL: no reply within 1s (timeout)&#10;pod-ping"
                )),
                "{src}"
            );
        }
        // The grey row says why; the DNS block has the grey row too.
        assert_eq!(
            html.matches("<tr class=\"rgrey\" data-src=\"node-02\">")
                .count(),
            2
        );
        assert!(html.contains("no answer: connect 198.19.2.10:8123: timed out"));
        assert!(html.contains("title=\"node-00 &#8594; node-01&#10;host-ping 198.18.0.1: 0.20 ms"));
        assert!(html.contains("08:00:00 UTC, 10 s before"));
        assert!(html.contains("agent-&lt;0&gt;"));
        // Self-contained: nothing loaded from anywhere.
        for word in [
            "<script",
            " src=",
            " href=\"http",
            "http://",
            "https://",
            "@import",
            "url(",
        ] {
            assert!(!html.contains(word), "{word}");
        }
    }

    #[test]
    fn text_from_peers_is_escaped() {
        let mut i = input(2, Some(1));
        i.sources[1].data = Err("<script>alert(1)</script>".into());
        i.sources[0].node = "\"><img onerror=x>".into();
        let html = page(&build(i));
        assert!(
            !html.contains("<script>") && !html.contains("<img"),
            "{html}"
        );
    }

    #[test]
    fn a_summarised_matrix_says_what_it_left_out() {
        let html = page(&build(input(150, Some(3))));
        assert!(
            html.contains("150 nodes: showing 100 sources and 100 targets"),
            "{}",
            &html[..3000]
        );
        assert!(html.contains("left out: 50 sources (50 failing) and 50 targets (0 failing)"));
        // 100 x 100 cells stay a page of a few MB at most.
        assert!(html.len() < 3_000_000, "{} bytes", html.len());
    }

    /// Writes sample pages (4 nodes with one down, and 150 nodes) to `target/` to look at.
    #[test]
    #[ignore = "writes target/matrix-sample-*.html; run by hand"]
    fn write_sample_pages() {
        for (name, i) in [("4", input(4, Some(2))), ("150", input(150, Some(120)))] {
            let path = format!(
                "{}/target/matrix-sample-{name}.html",
                env!("CARGO_MANIFEST_DIR")
            );
            std::fs::write(&path, page(&build(i))).unwrap();
        }
    }

    #[test]
    fn ages_read_well() {
        assert_eq!(age(12.4), "12 s");
        assert_eq!(age(600.0), "10 min");
        assert_eq!(age(-1.0), "0 s");
        assert_eq!(age(f64::NAN), "0 s");
        assert_eq!(age(36_000.0), "10 h");
    }
}
