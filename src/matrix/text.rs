//! The matrix as text for `kubectl exec ... matrix` (pure): every line fits in 80 columns.
//! Up to [`MAX_TEXT_NODES`] sources and targets the grid shows them all; beyond, the failing
//! ones first and the rest counted. Columns are numbered (a list below names them), so the
//! grid stays narrow; cells are `.` passed, `X` failed, `s` skipped, `?` unknown, blank when
//! not checked.

use std::fmt::Write as _;

use super::model::{select, Cell, CellStatus, Matrix, Row, Selection};
use super::page::round_time;

/// The most sources and targets the grid shows.
pub const MAX_TEXT_NODES: usize = 20;
/// The widest line.
pub const WIDTH: usize = 80;
/// Row labels (node names) are cut to this many characters.
const LABEL: usize = 16;
/// The most `Failed:` lines; the rest are counted.
const MAX_FAILED_LINES: usize = 20;

/// Renders `m` as text, newline-terminated.
pub fn render(m: &Matrix) -> String {
    let sel = select(m, MAX_TEXT_NODES);
    let mut out = String::new();
    line(
        &mut out,
        &format!(
            "Matrix of {} nodes, built {} by the agent on {}",
            m.nodes,
            m.built_at
                .get(11..19)
                .map_or_else(|| "?".to_string(), |t| format!("{t} UTC")),
            label(&m.by)
        ),
    );
    line(
        &mut out,
        "Rows: sources (the agent on that node); columns: targets (numbered below).",
    );
    line(
        &mut out,
        "Cells: . passed  X failed  s skipped  ? unknown  (blank) not checked",
    );
    if sel.summarised {
        line(
            &mut out,
            &format!(
                "Summarised: showing {} sources and {} targets, the failing first;",
                sel.rows.len(),
                sel.columns.len()
            ),
        );
        line(
            &mut out,
            &format!(
                "left out {} sources ({} failing) and {} targets ({} failing).",
                sel.omitted_rows,
                sel.omitted_failing_rows,
                sel.omitted_columns,
                sel.omitted_failing_columns
            ),
        );
    }
    out.push('\n');
    let rows: Vec<&Row> = sel.rows.iter().filter_map(|&r| m.rows.get(r)).collect();
    grid(&mut out, &rows, &sel.columns, |r| &r.cells);
    names(&mut out, "Targets:", &sel.columns, &m.columns);
    failed(&mut out, m, &sel);
    out.push_str("Last rounds:\n");
    for r in &rows {
        let what = match &r.unreachable {
            Some(_) => "no data".to_string(),
            None => format!(
                "{}, v{}",
                round_time(r),
                if r.version.is_empty() {
                    "?"
                } else {
                    &r.version
                }
            ),
        };
        line(&mut out, &format!("  {} {what}", label(&r.node)));
    }
    if !m.dns_columns.is_empty() {
        out.push('\n');
        line(
            &mut out,
            "DNS: service = lookups through the DNS service; others: one instance each.",
        );
        let all: Vec<usize> = (0..m.dns_columns.len()).collect();
        grid(&mut out, &rows, &all, |r| &r.dns);
        names(&mut out, "DNS columns:", &all, &m.dns_columns);
    }
    out
}

/// The grid: a header of column numbers, then one line per row.
fn grid<'a>(
    out: &mut String,
    rows: &[&'a Row],
    columns: &[usize],
    cells: impl Fn(&'a Row) -> &'a Vec<Option<Cell>>,
) {
    let mut header = " ".repeat(LABEL + 1);
    for n in 1..=columns.len() {
        let _ = write!(header, "{n:>3}");
    }
    line(out, header.trim_end());
    for r in rows {
        let mut l = format!("{:<w$} ", label(&r.node), w = LABEL);
        match &r.unreachable {
            Some(why) => {
                let _ = write!(l, "  no data: {why}");
            }
            None => {
                let row_cells = cells(r);
                for &c in columns {
                    let mark = match row_cells.get(c).and_then(Option::as_ref) {
                        None => ' ',
                        Some(cell) => match cell.status {
                            CellStatus::Passed => '.',
                            CellStatus::Failed => 'X',
                            CellStatus::Skipped => 's',
                            CellStatus::Unknown => '?',
                        },
                    };
                    let _ = write!(l, "  {mark}");
                }
            }
        }
        line(out, l.trim_end());
    }
}

/// `Targets: 1 node-a  2 node-b ...`, wrapped at [`WIDTH`].
fn names(out: &mut String, title: &str, shown: &[usize], all: &[String]) {
    let mut l = title.to_string();
    for (n, &c) in shown.iter().enumerate() {
        let name = all.get(c).map_or("?", String::as_str);
        let item = format!(" {} {}", n.saturating_add(1), label(name));
        if l.len().saturating_add(item.len()) > WIDTH {
            line(out, &l);
            l = " ".repeat(title.len());
        }
        l.push_str(&item);
    }
    line(out, &l);
}

/// One line per failed cell shown: source, target, and why (reason words).
fn failed(out: &mut String, m: &Matrix, sel: &Selection) {
    let mut lines: Vec<String> = Vec::new();
    let mut more = 0usize;
    for &r in &sel.rows {
        let Some(row) = m.rows.get(r) else { continue };
        for &c in &sel.columns {
            let Some(cell) = row.cells.get(c).and_then(Option::as_ref) else {
                continue;
            };
            if cell.status != CellStatus::Failed {
                continue;
            }
            if lines.len() >= MAX_FAILED_LINES {
                more = more.saturating_add(1);
                continue;
            }
            let target = m.columns.get(c).map_or("?", String::as_str);
            lines.push(format!(
                "  {} -> {}: {}",
                label(&row.node),
                label(target),
                failures(&cell.detail)
            ));
        }
    }
    if lines.is_empty() {
        return;
    }
    out.push_str("Failed:\n");
    for l in &lines {
        line(out, l);
    }
    if more > 0 {
        line(out, &format!("  ... and {more} more (see /matrix.json)"));
    }
}

/// The failed checks of a cell's detail, shortly: `host-ping (timeout), pod-ping (timeout)`.
fn failures(detail: &str) -> String {
    let parts: Vec<String> = detail
        .lines()
        .filter(|l| l.contains(": FAIL"))
        .map(|l| {
            let kind = l.split_whitespace().next().unwrap_or("?");
            let reason = l
                .rsplit_once('(')
                .and_then(|(_, r)| r.strip_suffix(')'))
                .unwrap_or("failed");
            format!("{kind} ({reason})")
        })
        .collect();
    parts.join(", ")
}

fn label(name: &str) -> String {
    if name.chars().count() <= LABEL {
        return name.to_string();
    }
    let cut: String = name.chars().take(LABEL.saturating_sub(1)).collect();
    format!("{cut}~")
}

/// Writes `l` cut to [`WIDTH`] characters, on one line.
fn line(out: &mut String, l: &str) {
    let one: String = l
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(WIDTH)
        .collect();
    out.push_str(&one);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::super::model::{build, tests::input};
    use super::*;

    #[test]
    fn a_small_cluster_prints_the_whole_grid() {
        let t = render(&build(input(4, Some(2))));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[..9],
            [
                "Matrix of 4 nodes, built 08:00:10 UTC by the agent on node-00",
                "Rows: sources (the agent on that node); columns: targets (numbered below).",
                "Cells: . passed  X failed  s skipped  ? unknown  (blank) not checked",
                "",
                "                   1  2  3  4",
                "node-00            .  .  X  .",
                "node-01            .  .  X  .",
                "node-02            no data: no answer: connect 198.19.2.10:8123: timed out",
                "node-03            .  .  X  .",
            ]
        );
        assert!(
            t.contains("\nTargets: 1 node-00 2 node-01 3 node-02 4 node-03\n"),
            "{t}"
        );
        assert!(t.contains(
            "\nFailed:\n  node-00 -> node-02: host-ping (timeout), pod-ping (timeout)\n"
        ));
        assert!(
            t.contains("  node-01 08:00:00 UTC, 10 s before, v0.2.0\n"),
            "{t}"
        );
        assert!(t.contains("  node-02 no data\n"));
        assert!(
            t.contains("                   1  2\nnode-00            .  .\n"),
            "{t}"
        );
        assert!(t.contains("DNS columns: 1 service 2 coredns-0\n"));
    }

    #[test]
    fn twenty_nodes_fit_in_80_columns_and_more_are_summarised() {
        let t = render(&build(input(20, Some(5))));
        assert!(!t.contains("Summarised"));
        assert!(
            t.lines()
                .any(|l| l.len() == LABEL + 1 + 20 * 3 && l.ends_with(" 18 19 20")),
            "{t}"
        );
        for l in t.lines() {
            assert!(l.chars().count() <= WIDTH, "{} chars: {l}", l.len());
        }
        let t = render(&build(input(60, Some(40))));
        assert!(t.contains("Summarised: showing 20 sources and 20 targets, the failing first;"));
        assert!(t.contains("left out 40 sources (40 failing) and 40 targets (0 failing)."));
        let grid: Vec<&str> = t
            .lines()
            .skip_while(|l| !l.is_empty())
            .skip(2)
            .take(2)
            .collect();
        assert!(
            grid[0].starts_with("node-40            no data"),
            "{grid:?}"
        );
        assert!(grid[1].starts_with("node-00            X  ."), "{grid:?}");
        for l in t.lines() {
            assert!(l.chars().count() <= WIDTH, "{l}");
        }
    }

    #[test]
    fn long_names_are_cut() {
        assert_eq!(label("a-very-long-node-name.example"), "a-very-long-nod~");
        let mut out = String::new();
        line(&mut out, &"x".repeat(100));
        assert_eq!(out.len(), WIDTH + 1);
    }
}
