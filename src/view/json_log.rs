//! `--log-format json`: each round as JSON lines for log pipelines, instead of the table. One
//! object per check that failed or changed (`"event":"check"`, in report order, then the
//! checks that vanished), at most [`MAX_CHECK_LINES`], and one summary object per round
//! (`"event":"round"`, always the last line of the round) that counts what was left out.
//!
//! ```text
//! {"event":"check","time":"2026-11-30T08:00:00.000Z","node":"node-1","pod":"agent-1","kind":"pod-ping","target_node":"node-2","target":"agent-2","address":"198.19.2.10","family":"ipv4","status":"failed","was":"passed","changed":true,"reason":"timeout","message":"no reply within 1s","rtt_seconds":null}
//! {"event":"round","time":"2026-11-30T08:00:00.000Z","node":"node-1","pod":"agent-1",...,"listed":1,"omitted":0}
//! ```

use std::collections::HashMap;

use serde::Serialize;

use crate::report::{Check, Family, RoundReport, Status};

/// Check objects per round at most; the rest are counted in the round object's `omitted`.
pub const MAX_CHECK_LINES: usize = 100;

/// How rounds are printed to stdout (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// The table (`--log-table` says how much of it).
    Text,
    /// JSON lines (this module).
    Json,
}

impl LogFormat {
    /// Parses `text` or `json`.
    pub fn parse(text: &str) -> Result<LogFormat, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("{text:?} is not text or json")),
        }
    }
}

#[derive(Serialize)]
struct CheckLine<'a> {
    event: &'static str,
    time: &'a str,
    node: &'a str,
    pod: &'a str,
    kind: &'static str,
    target_node: &'a str,
    target: &'a str,
    address: &'a str,
    /// `ipv4` or `ipv6` (absent when the check has no IP address).
    #[serde(skip_serializing_if = "Option::is_none")]
    family: Option<&'static str>,
    /// `passed`, `failed`, `skipped`, or `absent` (the check vanished this round).
    status: &'static str,
    /// The previous round's status (`absent` when the check is new); null when unchanged.
    was: Option<&'static str>,
    changed: bool,
    reason: Option<&'static str>,
    message: Option<&'a str>,
    rtt_seconds: Option<f64>,
}

#[derive(Serialize)]
struct RoundLine<'a> {
    event: &'static str,
    time: &'a str,
    node: &'a str,
    pod: &'a str,
    duration_seconds: f64,
    nodes: usize,
    checks: usize,
    failed: usize,
    skipped: usize,
    changed: usize,
    first_round: bool,
    api_error: Option<&'a str>,
    snapshot_age_seconds: f64,
    /// Check objects printed for this round, and the failed or changed checks left out.
    listed: usize,
    omitted: usize,
    /// Only when the system resolver's lookups went through a node-local DNS cache: its
    /// address (as `resolver.nameserver` in `/status.json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    node_local_cache: Option<&'a str>,
}

fn word(s: Option<Status>) -> &'static str {
    match s {
        None => "absent",
        Some(Status::Passed) => "passed",
        Some(Status::Failed) => "failed",
        Some(Status::Skipped) => "skipped",
    }
}

/// The round's lines, each a JSON object, newline-terminated.
pub fn render(r: &RoundReport) -> String {
    let mut was: HashMap<(&str, &str, &str, &str), Option<Status>> = HashMap::new();
    for ch in &r.changes {
        was.insert(
            (ch.kind.as_str(), &ch.target_node, &ch.target, &ch.address),
            ch.was,
        );
    }
    let mut out = String::new();
    let mut listed = 0usize;
    let mut omitted = 0usize;
    let mut emit = |out: &mut String, line: &CheckLine<'_>| {
        if listed >= MAX_CHECK_LINES {
            omitted = omitted.saturating_add(1);
            return;
        }
        if let Ok(text) = serde_json::to_string(line) {
            out.push_str(&text);
            out.push('\n');
            listed = listed.saturating_add(1);
        }
    };
    for c in &r.checks {
        let key = (
            c.kind.as_str(),
            c.target_node.as_str(),
            c.target.as_str(),
            c.address.as_str(),
        );
        let previous = was.get(&key);
        if !c.is_failed() && previous.is_none() {
            continue;
        }
        emit(&mut out, &check_line(r, c, previous.map(|w| word(*w))));
    }
    for ch in r.changes.iter().filter(|ch| ch.now.is_none()) {
        emit(
            &mut out,
            &CheckLine {
                event: "check",
                time: &r.started_at,
                node: &r.node,
                pod: &r.pod,
                kind: ch.kind.as_str(),
                target_node: &ch.target_node,
                target: &ch.target,
                address: &ch.address,
                family: Family::of(&ch.address).map(Family::as_str),
                status: "absent",
                was: Some(word(ch.was)),
                changed: true,
                reason: None,
                message: None,
                rtt_seconds: None,
            },
        );
    }
    let round = RoundLine {
        event: "round",
        time: &r.started_at,
        node: &r.node,
        pod: &r.pod,
        duration_seconds: r.duration_seconds,
        nodes: r.node_count(),
        checks: r.checks.len(),
        failed: r.errors,
        skipped: r
            .checks
            .iter()
            .filter(|c| c.status() == Status::Skipped)
            .count(),
        changed: r.changes.len(),
        first_round: r.first_round,
        api_error: r.api_error.as_deref(),
        snapshot_age_seconds: r.snapshot_age_seconds,
        listed,
        omitted,
        node_local_cache: r
            .resolver
            .as_ref()
            .filter(|res| res.node_local_cache)
            .map(|res| res.nameserver.as_str()),
    };
    if let Ok(text) = serde_json::to_string(&round) {
        out.push_str(&text);
        out.push('\n');
    }
    out
}

fn check_line<'a>(r: &'a RoundReport, c: &'a Check, was: Option<&'static str>) -> CheckLine<'a> {
    CheckLine {
        event: "check",
        time: &r.started_at,
        node: &r.node,
        pod: &r.pod,
        kind: c.kind.as_str(),
        target_node: &c.target_node,
        target: &c.target,
        address: &c.address,
        family: c.family().map(Family::as_str),
        status: word(Some(c.status())),
        was,
        changed: was.is_some(),
        reason: c.outcome.reason().map(|r| r.as_str()),
        message: c.outcome.message(),
        rtt_seconds: c.rtt_seconds.filter(|r| r.is_finite()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CheckKind, Reason};
    use serde_json::Value;

    fn check(kind: CheckKind, node: &str, target: &str, ok: bool) -> Check {
        let c = Check::failed(
            kind,
            node,
            target,
            "198.18.0.1",
            Reason::Timeout,
            "no\nreply",
        );
        if ok {
            c.passed(0.0002)
        } else {
            c
        }
    }

    fn report(checks: Vec<Check>, prev: &[Check]) -> RoundReport {
        RoundReport {
            started_at: "2026-11-30T08:00:00.000Z".into(),
            duration_seconds: 1.0,
            ..RoundReport::new("node-1", "agent-1", checks).compared_with(prev)
        }
    }

    fn lines(t: &str) -> Vec<Value> {
        assert!(t.ends_with('\n'));
        t.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn failed_and_changed_checks_then_one_round_object() {
        use CheckKind::*;
        let before = vec![
            check(HostPing, "node-2", "node-2", true),
            check(PodPing, "node-2", "agent-2", true),
            check(HostPing, "node-3", "node-3", true),
            check(HostPing, "node-4", "node-4", false),
        ];
        let now = vec![
            check(HostPing, "node-2", "node-2", false), // changed, failed
            check(PodPing, "node-2", "agent-2", true),  // unchanged, passed: not listed
            check(HostPing, "node-3", "node-3", true),  // unchanged
            check(HostPing, "node-4", "node-4", true),  // changed, passed
            check(HostPing, "node-5", "node-5", false), // new, failed
        ];
        let t = render(&report(now, &before));
        let l = lines(&t);
        assert_eq!(l.len(), 4, "{t}");
        assert_eq!(l[0]["event"], "check");
        assert_eq!(
            (
                &l[0]["target"],
                &l[0]["status"],
                &l[0]["was"],
                &l[0]["changed"]
            ),
            (
                &Value::from("node-2"),
                &Value::from("failed"),
                &Value::from("passed"),
                &Value::from(true)
            )
        );
        assert_eq!(l[0]["reason"], "timeout");
        assert_eq!(
            l[0]["message"], "no\nreply",
            "newlines stay inside the string"
        );
        assert_eq!(
            (&l[1]["target"], &l[1]["status"]),
            (&Value::from("node-4"), &Value::from("passed"))
        );
        assert_eq!(l[1]["rtt_seconds"], 0.0002);
        assert_eq!(
            (&l[2]["target"], &l[2]["was"]),
            (&Value::from("node-5"), &Value::from("absent"))
        );
        let round = &l[3];
        assert_eq!(round["event"], "round");
        assert_eq!(
            (round["checks"].as_u64(), round["failed"].as_u64()),
            (Some(5), Some(2))
        );
        assert_eq!(
            (round["changed"].as_u64(), round["nodes"].as_u64()),
            (Some(3), Some(4))
        );
        assert_eq!(
            (round["listed"].as_u64(), round["omitted"].as_u64()),
            (Some(3), Some(0))
        );
    }

    #[test]
    fn a_vanished_check_is_absent_and_a_healthy_round_is_one_line() {
        let before = vec![check(CheckKind::HostPing, "node-9", "node-9", true)];
        let l = lines(&render(&report(vec![], &before)));
        assert_eq!(l.len(), 2);
        assert_eq!(
            (&l[0]["status"], &l[0]["was"]),
            (&Value::from("absent"), &Value::from("passed"))
        );
        let healthy = vec![check(CheckKind::HostPing, "node-9", "node-9", true)];
        assert_eq!(lines(&render(&report(healthy.clone(), &healthy))).len(), 1);
        // The round object names a node-local DNS cache the lookups went through.
        let mut r = report(healthy.clone(), &healthy);
        assert!(lines(&render(&r))[0].get("node_local_cache").is_none());
        r.resolver = Some(crate::report::Resolver {
            nameserver: "169.254.20.10".into(),
            node_local_cache: true,
        });
        assert_eq!(lines(&render(&r))[0]["node_local_cache"], "169.254.20.10");
    }

    #[test]
    fn check_objects_are_capped_and_the_rest_counted() {
        let checks: Vec<Check> = (0..MAX_CHECK_LINES + 250)
            .map(|i| {
                check(
                    CheckKind::HostPing,
                    &format!("n{i}"),
                    &format!("n{i}"),
                    false,
                )
            })
            .collect();
        let l = lines(&render(&report(checks, &[])));
        assert_eq!(l.len(), MAX_CHECK_LINES + 1);
        let round = l.last().unwrap();
        assert_eq!(round["listed"].as_u64(), Some(MAX_CHECK_LINES as u64));
        assert_eq!(round["omitted"].as_u64(), Some(250));
        assert_eq!(LogFormat::parse("JSON"), Ok(LogFormat::Json));
        assert!(LogFormat::parse("yaml").is_err());
    }
}
