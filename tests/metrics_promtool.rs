//! The metrics text as Prometheus itself reads it: `promtool check metrics` must accept a
//! realistic scrape without a word, and parsing the text back must give the report's values.

mod common;

use common::{check, round};
use k8s_network_test_daemonset::plan::Reach;
use k8s_network_test_daemonset::report::{Check, CheckKind, RoundReport};
use k8s_network_test_daemonset::view::metrics::{
    render, AgentInfo, Reporting, TargetSeries, Totals, CONTENT_TYPE,
};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// Several kinds, passing and failing checks, and label values that need escaping.
fn realistic_report() -> RoundReport {
    let mut checks = Vec::new();
    for n in 0..20 {
        let node = format!("node-{n}");
        checks.push(check(
            CheckKind::PodPing,
            &node,
            &format!("k8s-network-test-daemonset-{n:05x}"),
            &format!("198.18.33.{n}"),
            (n % 7 != 3).then_some(0.0003 * f64::from(n + 1)),
        ));
        checks.push(check(
            CheckKind::HostPing,
            &node,
            &node,
            &format!("2001:db8:32::{n:x}"),
            (n != 5).then_some(0.0001 + 0.00005 * f64::from(n)),
        ));
    }
    checks.push(check(
        CheckKind::DnsService,
        "",
        "kubernetes.default.svc.cluster.tst.local.",
        "198.18.32.10",
        Some(0.004),
    ));
    checks.push(check(
        CheckKind::DnsInstance,
        "node-1",
        "coredns-5977b8689-2qbmq",
        "198.18.32.53",
        Some(0.0009),
    ));
    checks.push(check(
        CheckKind::DnsInstance,
        "node-2",
        "coredns-5977b8689-xmh6h",
        "198.18.32.54",
        None,
    ));
    checks.push(check(
        CheckKind::DnsReverse,
        "",
        "198.18.32.10",
        "198.18.32.10",
        Some(0.02),
    ));
    checks.push(check(
        CheckKind::NodeWithoutAgent,
        "node-20",
        "node-20",
        "",
        None,
    ));
    // Awkward label values: quotes, backslashes, newlines, UTF-8.
    checks.push(check(
        CheckKind::PodPing,
        "node \"quoted\"",
        "back\\slash\nnew line",
        "198.18.33.200",
        Some(0.7),
    ));
    checks.push(check(CheckKind::PodPing, "nœud-é", "\\\"\n", "", None));
    RoundReport {
        pod: "k8s-network-test-daemonset-abcde".into(),
        duration_seconds: 1.042,
        first_round: false,
        api_error: Some("timed out talking to https://198.18.1.200:6443".into()),
        snapshot_age_seconds: 125.5,
        resolver: None,
        ..round(checks)
    }
}

fn info() -> AgentInfo {
    AgentInfo {
        version: "0.2.0".into(),
        node: "node-0".into(),
        pod: "k8s-network-test-daemonset-abcde \"x\"".into(),
    }
}

/// Runs `promtool check metrics` on `text`; returns its exit code and everything it printed.
fn promtool(text: &str) -> (i32, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian package prometheus)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), printed)
}

fn assert_promtool_clean(text: &str) {
    let (code, printed) = promtool(text);
    assert!(
        code == 0 && printed.trim().is_empty(),
        "promtool exit {code}: {printed}\n--- scrape ---\n{text}"
    );
}

#[test]
fn promtool_accepts_realistic_scrape() {
    let report = realistic_report();
    let mut totals = Totals::new();
    totals.record(&report);
    totals.record(&report);
    totals.api_error("timeout");
    totals.api_error("status-429");
    // The settings the alert rules read, one of them +Inf (every agent checks each node).
    totals.reporting = Some(Reporting {
        interval: std::time::Duration::from_secs(60),
        reach: Reach {
            peers: None,
            dns_instance_peers: Some(50),
            pod_path_peers: Some(50),
        },
    });
    let text = render(Some(&report), &totals, &info());
    assert!(text.contains("networktest_mesh_peers{target=\"node\"} +Inf\n"));
    assert_promtool_clean(&text);
}

#[test]
fn promtool_accepts_scrape_before_first_round() {
    assert_promtool_clean(&render(None, &Totals::new(), &info()));
}

#[test]
fn promtool_accepts_capped_scrape() {
    let report = realistic_report();
    let mut totals = Totals::new();
    totals.target_series = TargetSeries {
        cap: 3,
        slowest: 2,
        small_cluster: 5,
    };
    totals.record(&report);
    assert_promtool_clean(&render(Some(&report), &totals, &info()));
}

#[test]
fn promtool_notices_a_bad_scrape() {
    // Proves the check above can fail: a counter without `_total` is a lint problem.
    let (code, printed) = promtool("# HELP x_count a\n# TYPE x_count counter\nx_count 1\n");
    assert_ne!((code, printed.trim().is_empty()), (0, true));
}

#[test]
fn content_type_is_text_0_0_4() {
    assert_eq!(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
}

/// One parsed sample: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// A tiny parser for the text format: enough to read back what `render` writes, with the
/// three label-value escapes undone.
fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name_end, mut labels) = (line.find(['{', ' ']).expect("name"), BTreeMap::new());
        let name = line[..name_end].to_string();
        let mut rest = &line[name_end..];
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices();
            let mut key = String::new();
            loop {
                let (_, c) = chars.next().expect("label");
                match c {
                    '}' => break,
                    ',' => {}
                    '=' => {
                        assert_eq!(chars.next().map(|x| x.1), Some('"'));
                        let mut value = String::new();
                        loop {
                            match chars.next().expect("value").1 {
                                '"' => break,
                                '\\' => match chars.next().expect("escape").1 {
                                    'n' => value.push('\n'),
                                    other => value.push(other),
                                },
                                other => value.push(other),
                            }
                        }
                        labels.insert(std::mem::take(&mut key), value);
                    }
                    other => key.push(other),
                }
            }
            let consumed = chars.next().map(|(i, _)| i).unwrap_or(body.len());
            rest = &body[consumed..];
        }
        let value = rest.trim();
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value in {line:?}")),
        };
        out.push((name, labels, value));
    }
    out
}

fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

#[test]
fn parsed_values_match_report() {
    let report = realistic_report();
    let mut totals = Totals::new();
    totals.record(&report);
    let samples = parse(&render(Some(&report), &totals, &info()));

    let failed = report.checks.iter().filter(|c| c.is_failed()).count() as f64;
    assert_eq!(
        find(&samples, "networktest_total_error_count", &[])[0].2,
        failed
    );
    assert_eq!(find(&samples, "networktest_rounds_total", &[])[0].2, 1.0);
    assert_eq!(
        find(&samples, "networktest_round_duration_seconds", &[])[0].2,
        1.042
    );
    for kind in CheckKind::ALL {
        let of_kind: Vec<&Check> = report.checks.iter().filter(|c| c.kind == kind).collect();
        let k = kind.as_str();
        // The last-round gauges are by kind and address family: their sum is the kind's.
        let sum = |name: &str| -> f64 {
            find(&samples, name, &[("kind", k)])
                .iter()
                .map(|s| s.2)
                .sum()
        };
        assert_eq!(
            sum("networktest_last_round_checks"),
            of_kind.len() as f64,
            "{k}"
        );
        assert_eq!(
            sum("networktest_last_round_failed_checks"),
            of_kind.iter().filter(|c| c.is_failed()).count() as f64
        );
        let total = find(&samples, "networktest_checks_total", &[("kind", k)]);
        assert_eq!(total[0].2, of_kind.len() as f64);
    }
    // Every check has exactly one up sample with its labels (escapes undone), and passing
    // checks have their RTT.
    for c in &report.checks {
        let labels = [
            ("kind", c.kind.as_str()),
            ("target_node", c.target_node.as_str()),
            ("target", c.target.as_str()),
            ("address", c.address.as_str()),
        ];
        let up = find(&samples, "networktest_target_up", &labels);
        assert_eq!(up.len(), 1, "{c:?}");
        assert_eq!(up[0].2, if c.is_ok() { 1.0 } else { 0.0 });
        let rtt = find(&samples, "networktest_target_rtt_seconds", &labels);
        match c.rtt_seconds {
            Some(r) => assert_eq!(rtt[0].2, r),
            None => assert!(rtt.is_empty()),
        }
    }
    let pod_ping_rtts = report
        .checks
        .iter()
        .filter(|c| c.kind == CheckKind::PodPing && c.is_ok())
        .count() as f64;
    let count = find(
        &samples,
        "networktest_rtt_seconds_count",
        &[("kind", "pod-ping")],
    );
    assert_eq!(count[0].2, pod_ping_rtts);
    let inf = find(
        &samples,
        "networktest_rtt_seconds_bucket",
        &[("kind", "pod-ping"), ("le", "+Inf")],
    );
    assert_eq!(inf[0].2, pod_ping_rtts);
    let info_sample = find(&samples, "networktest_agent_info", &[])[0];
    assert_eq!(
        info_sample.1["pod"],
        "k8s-network-test-daemonset-abcde \"x\""
    );
}
