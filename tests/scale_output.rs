//! What an agent writes stays bounded at 5,000 nodes: synthetic rounds of a 5,000-node cluster
//! (every node with an agent, four DNS instances) through the agent's own plan, round and
//! views, healthy and with half the nodes failing (every one of their checks changed). The
//! log block by default, and every series of a real scrape over HTTP (the HTTP and API
//! counters included), are counted against the goals, and the numbers printed
//! (`cargo test --test scale_output -- --nocapture`).

mod common;

use std::sync::Arc;

use k8s_network_test_daemonset::http::{HttpServer, Shared};
use k8s_network_test_daemonset::plan::Reach;
use k8s_network_test_daemonset::report::RoundReport;
use k8s_network_test_daemonset::view::log::{self, LogTable};
use k8s_network_test_daemonset::view::metrics::{AgentInfo, Reporting};

use common::synthetic::{rounds, NODES};

#[test]
fn log_blocks_are_short_when_healthy_and_bounded_when_half_the_cluster_is_down() {
    let (first, healthy, half) = rounds(NODES);
    assert_eq!(healthy.checks.len(), 4 * NODES + 3 + 2 * 4);
    assert_eq!((healthy.errors, healthy.changes.len()), (0, 0));
    assert_eq!((half.errors, half.changes.len()), (NODES, NODES));
    let lines = |r: &RoundReport, mode| log::render(r, mode).lines().count();
    let (l_first, l_healthy, l_half) = (
        lines(&first, LogTable::Auto),
        lines(&healthy, LogTable::Auto),
        lines(&half, LogTable::Auto),
    );
    let (full_healthy, full_half) = (
        lines(&healthy, LogTable::Full),
        lines(&half, LogTable::Full),
    );
    println!(
        "log lines per round at {NODES} nodes, default (auto): first {l_first}, healthy {l_healthy}, \
         half failing {l_half} (goals: 50 healthy, 150 any); full table: healthy {full_healthy}, \
         half failing {full_half}"
    );
    assert!(l_first <= 50 && l_healthy <= 50, "{l_first}, {l_healthy}");
    assert!(l_half <= 150, "{l_half}");
    assert!(full_healthy > NODES && full_half > NODES);
    assert_eq!(
        log::render(&half, LogTable::Auto),
        log::render(&half, LogTable::Failures)
    );
    // What the summary says, for the README's example.
    let text = log::render(&half, LogTable::Auto);
    println!("--- half failing, first lines ---");
    for l in text.lines().take(6) {
        println!("{l}");
    }
    println!("--- half failing, last lines ---");
    let all: Vec<&str> = text.lines().collect();
    for l in &all[all.len() - 4..] {
        println!("{l}");
    }
    assert!(text.contains(&format!(
        "Testing {NODES} nodes: {} failing, {} changed",
        NODES / 2,
        NODES / 2
    )));
    assert!(
        text.contains("... and 2450 more, see /status.json\n"),
        "{text}"
    );
    assert!(
        text.contains("... and 4950 more, see /status.json\n"),
        "{text}"
    );
    println!("--- healthy ---\n{}", log::render(&healthy, LogTable::Auto));
}

/// A scrape of a running server, as Prometheus gets it.
fn scrape(shared: &Arc<Shared>) -> String {
    let server = HttpServer::start("127.0.0.1:0".parse().unwrap(), shared.clone())
        .expect("start the server");
    let response = cluster_box::http::get_here(server.addr, "/prometheus.report").expect("GET");
    assert_eq!(response.status, 200);
    server.stop();
    response.body
}

#[test]
fn series_per_agent_stay_bounded_at_5000_nodes() {
    let (first, healthy, half) = rounds(NODES);
    let info = AgentInfo {
        version: "0.2.0".into(),
        node: "node-0000".into(),
        pod: "k8s-network-test-daemonset-00000".into(),
    };
    let shared = Arc::new(Shared::new(info));
    let publish = |report: &RoundReport| {
        let mut state = shared.lock();
        state.totals.record(report);
        state.last = Some(report.clone().into());
        shared.publish(&state);
    };
    {
        // API errors of a few kinds, as an agent that lived through outages has counted.
        let mut state = shared.lock();
        for reason in ["timeout", "connect", "status-429", "status-500", "deadline"] {
            state.totals.api_error(reason);
        }
        // The settings the alert rules read, as a real agent exports them.
        state.totals.reporting = Some(Reporting {
            interval: std::time::Duration::from_secs(60),
            reach: Reach::FULL,
        });
    }
    publish(&first);
    publish(&healthy);
    let healthy_scrape = scrape(&shared);
    publish(&half);
    let half_scrape = scrape(&shared);
    let (n_healthy, n_half) = (
        cluster_box::status::series_count(&healthy_scrape),
        cluster_box::status::series_count(&half_scrape),
    );
    let targets = |s: &str| {
        s.lines()
            .filter(|l| l.starts_with("networktest_target_"))
            .count()
    };
    println!(
        "series per agent at {NODES} nodes: healthy {n_healthy} ({} per-target), half failing \
         {n_half} ({} per-target) (goals: 500, 1000)",
        targets(&healthy_scrape),
        targets(&half_scrape)
    );
    assert!(n_healthy <= 500, "{n_healthy}");
    assert!(n_half <= 1000, "{n_half}");
    // The HTTP counters are part of it.
    assert!(half_scrape.contains("networktest_http_requests_total{code=\"200\"}"));
    assert!(
        half_scrape.contains("networktest_target_series_omitted{state=\"failing\"} 4800\n"),
        "5000 failing targets, 200 with series"
    );
    assert!(half_scrape.contains("networktest_target_series_omitted{state=\"passing\"} "));
    common::promtool_check(&half_scrape);
}
