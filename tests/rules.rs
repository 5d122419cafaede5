//! The alert and recording rules (rules/networktest.rules.yml) under `promtool check rules` and
//! `promtool test rules`: modelled clusters (tests/rules_model) give the series Prometheus
//! would store, and each scenario states, at given minutes, every alert that fires (for every
//! alert of the file: none elsewhere) and what recording rules hold. Also: every rule is tested
//! and documented in the README, and every alert's annotations name the node it blames.

mod rules_model;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use rules_model::{instance, node, values, Fault, Model, JOB};
use serde::Deserialize;
use serde_json::{json, Value};

const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/rules/networktest.rules.yml");

#[derive(Debug, Deserialize)]
struct RuleFile {
    groups: Vec<Group>,
}

#[derive(Debug, Deserialize)]
struct Group {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
struct Rule {
    record: Option<String>,
    alert: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

fn rule_file() -> RuleFile {
    let text = std::fs::read_to_string(RULES).expect("read the rules");
    serde_yaml_ng::from_str(&text).expect("parse the rules")
}

fn alerts(file: &RuleFile) -> Vec<&Rule> {
    file.groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter(|r| r.alert.is_some())
        .collect()
}

fn records(file: &RuleFile) -> Vec<&str> {
    file.groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter_map(|r| r.record.as_deref())
        .collect()
}

/// Labels as written in a test: `[("node", "node-5")]`.
type Labels = Vec<(&'static str, String)>;

/// An alert that fires: its name and the labels its expression gives (severity comes from
/// the rules file).
struct Firing {
    alert: &'static str,
    labels: Labels,
}

fn firing(alert: &'static str, labels: &[(&'static str, &str)]) -> Firing {
    Firing {
        alert,
        labels: labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
    }
}

/// The labels an agent's series carry (its scrape target), plus its node.
fn agent(i: usize) -> Labels {
    vec![
        ("job", JOB.to_string()),
        ("instance", instance(i)),
        ("node", node(i)),
    ]
}

fn on_node(i: usize) -> Labels {
    vec![("node", node(i))]
}

/// An alert on agent `i`'s labels plus `extra`.
fn agent_alert(alert: &'static str, i: usize, extra: &[(&'static str, &str)]) -> Firing {
    let mut labels = agent(i);
    labels.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    Firing { alert, labels }
}

fn node_alert(alert: &'static str, i: usize) -> Firing {
    Firing {
        alert,
        labels: on_node(i),
    }
}

/// A recording rule's expected samples at a minute: the full result of selecting it.
struct Expect {
    minute: u64,
    record: &'static str,
    samples: Vec<(Labels, f64)>,
}

fn expect(minute: u64, record: &'static str, samples: Vec<(Labels, f64)>) -> Expect {
    Expect {
        minute,
        record,
        samples,
    }
}

/// `(agent(i), value)` for each agent in `nodes`.
fn per_agent(nodes: impl IntoIterator<Item = usize>, value: f64) -> Vec<(Labels, f64)> {
    nodes.into_iter().map(|i| (agent(i), value)).collect()
}

fn with(mut labels: Labels, extra: &[(&'static str, &str)]) -> Labels {
    labels.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    labels
}

struct Scenario {
    name: &'static str,
    model: Model,
    /// (minute, every alert firing then).
    alerts: Vec<(u64, Vec<Firing>)>,
    exprs: Vec<Expect>,
}

/// Renders `{{ $labels.X }}` in an annotation template (the only template the rules use).
fn render_template(template: &str, labels: &BTreeMap<String, String>) -> String {
    let mut out = template.to_string();
    for (k, v) in labels {
        out = out.replace(&format!("{{{{ $labels.{k} }}}}"), v);
    }
    assert!(
        !out.contains("{{"),
        "the test renders only {{{{ $labels.X }}}}: {template}"
    );
    out
}

fn label_text(name: &str, labels: &Labels) -> String {
    let mut sorted: Vec<&(&str, String)> = labels.iter().collect();
    sorted.sort();
    let inner: Vec<String> = sorted
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{name}{{{}}}", inner.join(","))
}

/// One promtool test group for a scenario.
fn test_group(s: &Scenario, file: &RuleFile) -> Value {
    let input: Vec<Value> = s
        .model
        .series()
        .iter()
        .map(|(series, samples)| json!({"series": series, "values": values(samples)}))
        .collect();
    let mut alert_tests = Vec::new();
    for (minute, fire) in &s.alerts {
        for rule in alerts(file) {
            let name = rule.alert.as_deref().unwrap_or_default();
            let exp: Vec<Value> = fire
                .iter()
                .filter(|f| f.alert == name)
                .map(|f| {
                    let mut labels: BTreeMap<String, String> = rule.labels.clone();
                    labels.extend(f.labels.iter().map(|(k, v)| (k.to_string(), v.clone())));
                    let annotations: BTreeMap<String, String> = rule
                        .annotations
                        .iter()
                        .map(|(k, t)| (k.clone(), render_template(t, &labels)))
                        .collect();
                    json!({"exp_labels": labels, "exp_annotations": annotations})
                })
                .collect();
            alert_tests.push(json!({
                "eval_time": format!("{minute}m"),
                "alertname": name,
                "exp_alerts": exp,
            }));
        }
    }
    let expr_tests: Vec<Value> = s
        .exprs
        .iter()
        .map(|e| {
            let samples: Vec<Value> = e
                .samples
                .iter()
                .map(|(l, v)| json!({"labels": label_text(e.record, l), "value": v}))
                .collect();
            json!({"expr": e.record, "eval_time": format!("{}m", e.minute), "exp_samples": samples})
        })
        .collect();
    json!({
        "name": s.name,
        "interval": "1m",
        "input_series": input,
        "alert_rule_test": alert_tests,
        "promql_expr_test": expr_tests,
    })
}

fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool is installed (Debian package prometheus; make setup)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Where a failed scenario's test file is kept for reading (the build directory).
fn keep_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("rules-tests")
}

/// Runs one scenario through `promtool test rules`.
fn run(s: &Scenario) {
    let file = rule_file();
    let doc = json!({
        "rule_files": [RULES],
        "evaluation_interval": "1m",
        "tests": [test_group(s, &file)],
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(format!("{}.json", s.name));
    let text = serde_json::to_string_pretty(&doc).expect("json");
    std::fs::write(&path, &text).expect("write the test file");
    let (ok, printed) = promtool(&["test", "rules", path.to_str().expect("utf-8 path")]);
    if !ok {
        let keep = keep_dir();
        let _ = std::fs::create_dir_all(&keep);
        let kept = keep.join(format!("{}.json", s.name));
        let _ = std::fs::write(&kept, &text);
        panic!(
            "promtool test rules, scenario `{}` (test file kept as {}):\n{printed}",
            s.name,
            kept.display()
        );
    }
}

const ALL: std::ops::Range<usize> = 0..10;

fn except(skip: &[usize]) -> Vec<usize> {
    ALL.filter(|i| !skip.contains(i)).collect()
}

/// Every node of a 10-node cluster, `value` each (`node`-labelled records).
fn per_node(
    nodes: impl IntoIterator<Item = usize>,
    f: impl Fn(usize) -> f64,
) -> Vec<(Labels, f64)> {
    nodes.into_iter().map(|i| (on_node(i), f(i))).collect()
}

fn kind(i: usize, kind: &str) -> Labels {
    with(on_node(i), &[("kind", kind)])
}

// ---- The scenarios ----

fn healthy() -> Scenario {
    Scenario {
        name: "healthy",
        model: Model::new(10),
        alerts: vec![(4, vec![]), (29, vec![])],
        exprs: vec![
            expect(20, "networktest:agent_node:info", per_agent(ALL, 1.0)),
            expect(
                20,
                "networktest:agent_round_age:seconds",
                per_agent(ALL, 0.0),
            ),
            expect(20, "networktest:agent_fresh:info", per_agent(ALL, 1.0)),
            expect(20, "networktest:agent_voter:info", per_agent(ALL, 1.0)),
            expect(20, "networktest:agent_not_reporting:info", vec![]),
            expect(
                20,
                "networktest:agent_peer_failed:ratio",
                per_agent(ALL, 0.0),
            ),
            expect(20, "networktest:agent_isolated:info", vec![]),
            // Each node is checked by the 9 agents of the other nodes.
            expect(
                20,
                "networktest:node_checkers:count",
                per_node(ALL, |_| 9.0),
            ),
            expect(20, "networktest:node_failing_sources:count", vec![]),
            expect(20, "networktest:node_failing_sources:ratio", vec![]),
            // 10 agents x 10 pings a minute of each kind, all in the (0.5 ms, 1 ms] bucket:
            // 100/60 per second, as Prometheus' extrapolating rate() computes it (promtool
            // compares values exactly).
            expect(
                20,
                "networktest:rtt_seconds_bucket:rate5m",
                ["host-ping", "pod-ping"]
                    .into_iter()
                    .flat_map(|k| {
                        k8s_network_test_daemonset::view::metrics::RTT_BUCKETS
                            .iter()
                            .map(|b| b.to_string())
                            .chain(["+Inf".to_string()])
                            .map(move |le| {
                                let v = if le == "0.0005" {
                                    0.0
                                } else {
                                    1.6666666666666672
                                };
                                (vec![("kind", k.to_string()), ("le", le)], v)
                            })
                    })
                    .collect(),
            ),
            expect(
                20,
                "networktest:rtt_usual:seconds",
                vec![
                    (vec![("kind", "host-ping".into())], 0.00075),
                    (vec![("kind", "pod-ping".into())], 0.00075),
                ],
            ),
            // max(4 x 0.75 ms, 0.75 ms + 10 ms), in floating point.
            expect(
                20,
                "networktest:rtt_slow_threshold:seconds",
                vec![
                    (vec![("kind", "host-ping".into())], 0.010750000000000001),
                    (vec![("kind", "pod-ping".into())], 0.010750000000000001),
                ],
            ),
            expect(20, "networktest:node_slow_sources:count", vec![]),
            expect(20, "networktest:node_slow_sources:ratio", vec![]),
            expect(20, "networktest:dns_instance_failing_sources:count", vec![]),
            expect(20, "networktest:dns_instance_failing_sources:ratio", vec![]),
            expect(
                20,
                "networktest:dns_service_failing_sources:ratio",
                vec![(vec![], 0.0)],
            ),
        ],
    }
}

/// Node 5's cable pulled at minute 5: the 9 others fail its host and pod, and its own agent
/// can no longer be scraped. Only node 5 is named.
fn one_node_down() -> Scenario {
    Scenario {
        name: "one_node_down_of_10",
        model: Model::new(10).with(5, Fault::NodeDown(5)),
        alerts: vec![
            (4, vec![]),
            // Pending for 3 minutes, 5 for the agent.
            (7, vec![]),
            (8, vec![node_alert("NetworkTestNodeUnreachable", 5)]),
            (
                20,
                vec![
                    node_alert("NetworkTestNodeUnreachable", 5),
                    agent_alert(
                        "NetworkTestAgentNotReporting",
                        5,
                        &[("reason", "not-scraped")],
                    ),
                ],
            ),
        ],
        exprs: vec![
            // Node 5's agent is still named while its scrape target exists (past the hour).
            expect(20, "networktest:agent_node:info", per_agent(ALL, 1.0)),
            expect(
                20,
                "networktest:agent_not_reporting:info",
                vec![(with(agent(5), &[("reason", "not-scraped")]), 1.0)],
            ),
            expect(
                20,
                "networktest:agent_voter:info",
                per_agent(except(&[5]), 1.0),
            ),
            // Voters' own nodes: 8 other voters; node 5: all 9.
            expect(
                20,
                "networktest:node_checkers:count",
                per_node(ALL, |i| if i == 5 { 9.0 } else { 8.0 }),
            ),
            expect(
                20,
                "networktest:node_failing_sources:count",
                vec![(kind(5, "host-ping"), 9.0), (kind(5, "pod-ping"), 9.0)],
            ),
            expect(
                20,
                "networktest:node_failing_sources:ratio",
                vec![(kind(5, "host-ping"), 1.0), (kind(5, "pod-ping"), 1.0)],
            ),
            // The others reach all but one of 9 nodes.
            expect(
                20,
                "networktest:agent_peer_failed:ratio",
                per_agent(except(&[5]), 1.0 / 9.0),
            ),
        ],
    }
}

/// Node 3's agent gets no answer from anyone (its egress is cut); the others reach it. Its
/// failures are no votes: no node is blamed but node 3, as the source.
fn one_source_isolated() -> Scenario {
    Scenario {
        name: "one_source_isolated",
        model: Model::new(10).with(5, Fault::Isolated(3)),
        alerts: vec![
            (4, vec![]),
            (20, vec![agent_alert("NetworkTestSourceIsolated", 3, &[])]),
        ],
        exprs: vec![
            expect(
                20,
                "networktest:agent_peer_failed:ratio",
                ALL.map(|i| (agent(i), if i == 3 { 1.0 } else { 0.0 }))
                    .collect(),
            ),
            expect(20, "networktest:agent_isolated:info", per_agent([3], 1.0)),
            expect(
                20,
                "networktest:agent_voter:info",
                per_agent(except(&[3]), 1.0),
            ),
            // Node 3's 18 failed pings and 2 failed DNS queries count for nothing.
            expect(20, "networktest:node_failing_sources:count", vec![]),
            expect(20, "networktest:dns_instance_failing_sources:count", vec![]),
            expect(
                20,
                "networktest:dns_service_failing_sources:ratio",
                vec![(vec![], 0.0)],
            ),
            // Its own node has no voter: 9 others check it.
            expect(
                20,
                "networktest:node_checkers:count",
                per_node(ALL, |i| if i == 3 { 9.0 } else { 8.0 }),
            ),
        ],
    }
}

/// DNS instance coredns-1 (on node 1) stops answering: named with its node; the service
/// still answers.
fn one_dns_instance_down() -> Scenario {
    Scenario {
        name: "one_dns_instance_down",
        model: Model::new(10).with(5, Fault::DnsInstanceDown(1)),
        alerts: vec![
            (4, vec![]),
            (
                20,
                vec![firing(
                    "NetworkTestDnsInstanceDown",
                    &[("node", "node-1"), ("target", "coredns-1")],
                )],
            ),
        ],
        exprs: vec![
            expect(
                20,
                "networktest:dns_instance_failing_sources:count",
                vec![(
                    vec![("node", node(1)), ("target", "coredns-1".into())],
                    10.0,
                )],
            ),
            expect(
                20,
                "networktest:dns_instance_failing_sources:ratio",
                vec![(vec![("node", node(1)), ("target", "coredns-1".into())], 1.0)],
            ),
            expect(
                20,
                "networktest:dns_service_failing_sources:ratio",
                vec![(vec![], 0.0)],
            ),
        ],
    }
}

/// Lookups through the DNS service fail on every node, the instances answer.
fn dns_service_down() -> Scenario {
    Scenario {
        name: "dns_service_down_everywhere",
        model: Model::new(10).with(5, Fault::DnsServiceDown),
        alerts: vec![
            (4, vec![]),
            (20, vec![firing("NetworkTestDnsServiceDown", &[])]),
        ],
        exprs: vec![
            expect(
                20,
                "networktest:dns_service_failing_sources:ratio",
                vec![(vec![], 1.0)],
            ),
            expect(20, "networktest:dns_instance_failing_sources:count", vec![]),
        ],
    }
}

/// Lookups through the DNS service fail on node 6 only: its own DNS path is at fault.
fn node_dns_failing() -> Scenario {
    Scenario {
        name: "dns_service_failing_on_one_node",
        model: Model::new(10).with(5, Fault::NodeDns(6)),
        alerts: vec![
            (4, vec![]),
            (20, vec![agent_alert("NetworkTestNodeDnsFailing", 6, &[])]),
        ],
        exprs: vec![expect(
            20,
            "networktest:dns_service_failing_sources:ratio",
            vec![(vec![], 0.1)],
        )],
    }
}

/// Node 7's link flaps: down 2 rounds, up 2 rounds, from minute 5. Every vote is unanimous
/// while it is down, yet nothing lasts long enough to fire.
fn flapping() -> Scenario {
    Scenario {
        name: "flapping_node_does_not_fire",
        model: Model::new(10).with(5, Fault::Flapping { node: 7, period: 2 }),
        alerts: vec![
            (4, vec![]),
            (8, vec![]),
            (12, vec![]),
            (20, vec![]),
            (29, vec![]),
        ],
        exprs: vec![
            // Down in minutes 5, 6, 9, 10, ...; up in 7, 8, 11, 12, ...
            expect(
                10,
                "networktest:node_failing_sources:ratio",
                vec![(kind(7, "host-ping"), 1.0), (kind(7, "pod-ping"), 1.0)],
            ),
            expect(12, "networktest:node_failing_sources:ratio", vec![]),
        ],
    }
}

/// ICMP echo requests to node 3's agent pod dropped (as the lab does): its pod network is
/// blamed, not the node.
fn pod_drops_icmp() -> Scenario {
    Scenario {
        name: "icmp_dropped_at_one_pod",
        model: Model::new(10).with(5, Fault::PodDropsIcmp(3)),
        alerts: vec![
            (4, vec![]),
            (20, vec![node_alert("NetworkTestPodNetworkUnreachable", 3)]),
        ],
        exprs: vec![
            // Node 3's agent fails its own pod too, but does not vote on its own node.
            expect(
                20,
                "networktest:node_failing_sources:count",
                vec![(kind(3, "pod-ping"), 9.0)],
            ),
            expect(
                20,
                "networktest:node_failing_sources:ratio",
                vec![(kind(3, "pod-ping"), 1.0)],
            ),
        ],
    }
}

/// Node 8's agent pod gone: no scrape target (so no "not reporting"), and the others report
/// the node without an agent.
fn node_without_agent() -> Scenario {
    Scenario {
        name: "node_without_agent",
        model: Model::new(10).with(5, Fault::NoAgent(8)),
        alerts: vec![
            (4, vec![]),
            (14, vec![]),
            (20, vec![node_alert("NetworkTestNodeWithoutAgent", 8)]),
        ],
        exprs: vec![
            expect(
                20,
                "networktest:agent_node:info",
                per_agent(except(&[8]), 1.0),
            ),
            expect(
                20,
                "networktest:node_failing_sources:ratio",
                vec![(kind(8, "node-without-agent"), 1.0)],
            ),
        ],
    }
}

/// Node 4's agent stops completing rounds at minute 5 (still scraped), and node 9's never
/// completed one: both named, and neither votes.
fn agents_not_reporting() -> Scenario {
    Scenario {
        name: "agents_stuck_or_without_a_round",
        model: Model::new(10)
            .with(5, Fault::Stuck(4))
            .with(0, Fault::NoRound(9)),
        alerts: vec![
            (4, vec![]),
            (
                20,
                vec![
                    agent_alert(
                        "NetworkTestAgentNotReporting",
                        4,
                        &[("reason", "rounds-stale")],
                    ),
                    agent_alert("NetworkTestAgentNotReporting", 9, &[("reason", "no-round")]),
                ],
            ),
        ],
        exprs: vec![
            // Node 4's last round ended at minute 4.
            expect(
                20,
                "networktest:agent_round_age:seconds",
                except(&[9])
                    .into_iter()
                    .map(|i| (agent(i), if i == 4 { 16.0 * 60.0 } else { 0.0 }))
                    .collect(),
            ),
            expect(
                20,
                "networktest:agent_fresh:info",
                per_agent(except(&[4, 9]), 1.0),
            ),
            expect(
                20,
                "networktest:agent_not_reporting:info",
                vec![
                    (with(agent(4), &[("reason", "rounds-stale")]), 1.0),
                    (with(agent(9), &[("reason", "no-round")]), 1.0),
                ],
            ),
        ],
    }
}

/// Pings towards node 2 take 50 ms from minute 5: slow by the cluster's usual RTT.
fn slow_node() -> Scenario {
    Scenario {
        name: "high_rtt_towards_one_node",
        model: Model::new(10).with(5, Fault::Slow { node: 2, rtt: 0.05 }),
        alerts: vec![
            (4, vec![]),
            (14, vec![]),
            (20, vec![node_alert("NetworkTestNodeHighRtt", 2)]),
        ],
        exprs: vec![
            expect(
                20,
                "networktest:node_slow_sources:count",
                vec![(kind(2, "host-ping"), 9.0), (kind(2, "pod-ping"), 9.0)],
            ),
            expect(
                20,
                "networktest:node_slow_sources:ratio",
                vec![(kind(2, "host-ping"), 1.0), (kind(2, "pod-ping"), 1.0)],
            ),
        ],
    }
}

/// `--peers 3`: node t is checked by the agents of nodes t+1..t+3 only. Node 5 down: its 3
/// checkers are all it has, and 3 of 3 is a majority (3 of 9 agents would not be).
fn peers_node_down() -> Scenario {
    Scenario {
        name: "peers_3_of_10_one_node_down",
        model: Model {
            peers: Some(3),
            ..Model::new(10)
        }
        .with(5, Fault::NodeDown(5)),
        alerts: vec![
            (4, vec![]),
            (
                20,
                vec![
                    node_alert("NetworkTestNodeUnreachable", 5),
                    agent_alert(
                        "NetworkTestAgentNotReporting",
                        5,
                        &[("reason", "not-scraped")],
                    ),
                ],
            ),
        ],
        exprs: vec![
            expect(
                20,
                "networktest:node_checkers:count",
                per_node(ALL, |_| 3.0),
            ),
            expect(
                20,
                "networktest:node_failing_sources:count",
                vec![(kind(5, "host-ping"), 3.0), (kind(5, "pod-ping"), 3.0)],
            ),
            expect(
                20,
                "networktest:node_failing_sources:ratio",
                vec![(kind(5, "host-ping"), 1.0), (kind(5, "pod-ping"), 1.0)],
            ),
        ],
    }
}

/// `--peers 3` with the agents of nodes 4 and 5 cut off: nodes 2 and 3 are checked by both
/// (node 3 by 4, 5 and 6): 2 of 3 checkers fail them, but isolated sources do not vote.
fn peers_two_sources_isolated() -> Scenario {
    Scenario {
        name: "peers_3_of_10_two_sources_isolated",
        model: Model {
            peers: Some(3),
            ..Model::new(10)
        }
        .with(5, Fault::Isolated(4))
        .with(5, Fault::Isolated(5)),
        alerts: vec![
            (4, vec![]),
            (
                20,
                vec![
                    agent_alert("NetworkTestSourceIsolated", 4, &[]),
                    agent_alert("NetworkTestSourceIsolated", 5, &[]),
                ],
            ),
        ],
        exprs: vec![
            expect(
                20,
                "networktest:agent_isolated:info",
                per_agent([4, 5], 1.0),
            ),
            expect(20, "networktest:node_failing_sources:count", vec![]),
        ],
    }
}

/// Every agent pod gone at minute 5 (the DaemonSet deleted): nothing is scraped any more.
fn all_agents_gone() -> Scenario {
    Scenario {
        name: "all_agents_gone",
        model: Model::new(10).with(5, Fault::AllAgentsGone),
        alerts: vec![
            (4, vec![]),
            (19, vec![]),
            (25, vec![firing("NetworkTestAgentsAbsent", &[])]),
        ],
        exprs: vec![expect(25, "networktest:agent_node:info", vec![])],
    }
}

fn scenarios() -> Vec<Scenario> {
    vec![
        healthy(),
        one_node_down(),
        one_source_isolated(),
        one_dns_instance_down(),
        dns_service_down(),
        node_dns_failing(),
        flapping(),
        pod_drops_icmp(),
        node_without_agent(),
        agents_not_reporting(),
        slow_node(),
        peers_node_down(),
        peers_two_sources_isolated(),
        all_agents_gone(),
        lossy_node(),
        pod_path_down(),
    ]
}

/// The pod network path between nodes 2 and 6 broken (both ways): each of the two agents
/// fails the other's pod ping, nothing else fails. No node is blamed by the votes (1 of 9
/// checkers each); after 15 minutes the path alert names the pair, from both ends.
fn pod_path_down() -> Scenario {
    let path = |from: usize, to: usize| {
        vec![
            ("node", node(from)),
            ("target_node", node(to)),
            ("kind", "pod-ping".to_string()),
        ]
    };
    let fire = |from: usize, to: usize| Firing {
        alert: "NetworkTestPathDown",
        labels: path(from, to),
    };
    Scenario {
        name: "pod_path_down",
        model: Model::new(10).with(5, Fault::PodPathDown(2, 6)),
        alerts: vec![
            (4, vec![]),
            (19, vec![]),
            (20, vec![fire(2, 6), fire(6, 2)]),
            (29, vec![fire(2, 6), fire(6, 2)]),
        ],
        exprs: vec![
            expect(4, "networktest:path_failing:info", vec![]),
            expect(
                10,
                "networktest:path_failing:info",
                vec![(path(2, 6), 1.0), (path(6, 2), 1.0)],
            ),
            expect(
                10,
                "networktest:node_failing_sources:ratio",
                vec![
                    (kind(2, "pod-ping"), 1.0 / 9.0),
                    (kind(6, "pod-ping"), 1.0 / 9.0),
                ],
            ),
        ],
    }
}

/// A little loss at node 3: every round passes, but the loss windows of all its checkers show
/// loss towards it (and its own agent's towards every other node): node 3 has 9 of 9 lossy
/// sources, each other node 1 of 9; after an hour of it, node 3 is named.
fn lossy_node() -> Scenario {
    let model = Model {
        minutes: 75,
        ..Model::new(10).with(5, Fault::Lossy(3))
    };
    Scenario {
        name: "lossy_node",
        model,
        alerts: vec![
            (4, vec![]),
            (40, vec![]),
            (70, vec![node_alert("NetworkTestNodeLossy", 3)]),
        ],
        exprs: vec![
            expect(4, "networktest:node_lossy_sources:count", vec![]),
            expect(
                10,
                "networktest:node_lossy_sources:count",
                per_node(ALL, |i| if i == 3 { 9.0 } else { 1.0 }),
            ),
            expect(
                10,
                "networktest:node_lossy_sources:ratio",
                per_node(ALL, |i| if i == 3 { 1.0 } else { 1.0 / 9.0 }),
            ),
        ],
    }
}

// ---- The tests ----

#[test]
fn promtool_checks_the_rules() {
    let (ok, printed) = promtool(&["check", "rules", RULES]);
    assert!(ok, "promtool check rules: {printed}");
}

macro_rules! scenario_tests {
    ($($test:ident => $scenario:ident,)+) => {
        $(
            #[test]
            fn $test() {
                run(&$scenario());
            }
        )+
    };
}

scenario_tests! {
    rules_healthy_cluster_fires_nothing => healthy,
    rules_one_node_down_of_10_names_it => one_node_down,
    rules_one_source_isolated_names_the_source_only => one_source_isolated,
    rules_one_dns_instance_down_names_it_and_its_node => one_dns_instance_down,
    rules_dns_service_down_everywhere => dns_service_down,
    rules_dns_failing_on_one_node_names_it => node_dns_failing,
    rules_flapping_node_does_not_fire => flapping,
    rules_icmp_dropped_at_one_pod_names_its_pod_network => pod_drops_icmp,
    rules_node_without_agent => node_without_agent,
    rules_agents_stuck_or_without_a_round => agents_not_reporting,
    rules_high_rtt_towards_one_node => slow_node,
    rules_peers_3_one_node_down_still_a_majority => peers_node_down,
    rules_peers_3_isolated_sources_do_not_vote => peers_two_sources_isolated,
    rules_all_agents_gone => all_agents_gone,
    rules_a_little_loss_towards_one_node_names_it => lossy_node,
    rules_one_broken_pod_path_names_both_ends => pod_path_down,
}

/// Every alert fires in some scenario, every recording rule has an expected non-empty result
/// in some scenario, and the README documents each (with a runbook per alert).
#[test]
fn every_rule_is_tested_and_documented() {
    let file = rule_file();
    let all = scenarios();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    for rule in alerts(&file) {
        let name = rule.alert.as_deref().unwrap_or_default();
        assert!(
            all.iter()
                .flat_map(|s| &s.alerts)
                .flat_map(|(_, f)| f)
                .any(|f| f.alert == name),
            "no scenario makes {name} fire"
        );
        assert!(
            readme.contains(&format!("#### `{name}`")),
            "README has no runbook section #### `{name}`"
        );
    }
    for name in records(&file) {
        assert!(
            all.iter()
                .flat_map(|s| &s.exprs)
                .any(|e| e.record == name && !e.samples.is_empty()),
            "no scenario expects a value of {name}"
        );
        assert!(
            readme.contains(&format!("`{name}`")),
            "README does not document {name}"
        );
    }
    let groups: Vec<&str> = file.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        groups,
        ["networktest.agents", "networktest.nodes", "networktest.dns"]
    );
}

/// The annotations of every alert that blames a node name it, and the rendered template is
/// what promtool compares (so this test's rendering stays honest).
#[test]
fn alert_annotations_name_the_node() {
    let file = rule_file();
    for rule in alerts(&file) {
        let name = rule.alert.as_deref().unwrap_or_default();
        let summary = rule.annotations.get("summary").expect("summary");
        assert!(rule.annotations.contains_key("description"), "{name}");
        let cluster_wide = ["NetworkTestAgentsAbsent", "NetworkTestDnsServiceDown"];
        assert_eq!(
            summary.contains("{{ $labels.node }}"),
            !cluster_wide.contains(&name),
            "{name}: {summary}"
        );
    }
    let labels = BTreeMap::from([("node".to_string(), "node-5".to_string())]);
    assert_eq!(
        render_template("Node {{ $labels.node }} is down.", &labels),
        "Node node-5 is down."
    );
}
