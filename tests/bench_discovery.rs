//! Figures, not a pass/fail test: what discovery costs the API server per agent, at 1,000 and
//! 5,000 nodes with real-sized objects (each node cloned from a recorded real node with its
//! image list and managedFields, 11.4 KB; each agent pod from a recorded v1.36 DaemonSet
//! pod, 8.9 KB), the kubelets reporting node status every 5 minutes.
//!
//! `make bench` runs it: `cargo test --release --test bench_discovery -- --ignored
//! --nocapture` (`BENCH_NODES=1000,5000`, `BENCH_WINDOW_SECS=60`). It prints a Markdown table
//! for BENCHMARKS.md.

use k8s_api_standin::recorded::{self, cluster};
use k8s_api_standin::table::{partial, table, Include};
use k8s_api_standin::{Kind, Served, StandIn};
use k8s_network_test_daemonset::kube::{Client, Discovery, Settings, WatchOptions};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn templates() -> (Value, Value) {
    let t = recorded::templates();
    (t.pod, t.node)
}

fn sum(served: &[Served], f: impl Fn(&Served) -> bool) -> (u64, u64) {
    served
        .iter()
        .filter(|s| f(s))
        .fold((0, 0), |(r, b), s| (r + s.requests, b + s.bytes))
}

/// CPU seconds of this process's threads whose name starts with one of `prefixes`.
fn thread_cpu(prefixes: &[&str]) -> f64 {
    let ticks = 100.0; // USER_HZ
    let mut total = 0u64;
    for e in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if !prefixes.iter().any(|p| comm.trim().starts_with(p)) {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let after = stat.rsplit(')').next().unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        total += f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
    }
    total as f64 / ticks
}

const AGENT_THREADS: &[&str] = &["watch-", "node-addresses"];

fn mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

struct Row {
    nodes: usize,
    dual: bool,
    old_round: (u64, u64),
    initial: (u64, u64),
    initial_by_path: BTreeMap<String, u64>,
    initial_secs: f64,
    initial_cpu: f64,
    window: Duration,
    watch_bytes: u64,
    watch_events: u64,
    probe_bytes: u64,
    service_get_bytes: u64,
    steady_cpu: f64,
    pod_replaced: u64,
}

fn measure(nodes: usize, dual: bool, window: Duration) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(nodes, dual);
    let node_objects: Vec<Value> = c.nodes.clone();
    let s = StandIn::start("127.0.0.1:0".parse().unwrap(), c, dir.path()).unwrap();
    s.set_history_limit(4_000);
    let settings = Settings {
        api_server: s.url(),
        token_file: s.token_path(),
        ca_file: s.ca_path(),
        namespace: "kube-system".into(),
        selector: "app.kubernetes.io/name=k8s-network-test-daemonset".into(),
        dns_namespace: "kube-system".into(),
        dns_service: "kube-dns".into(),
        timeout: Duration::from_secs(120),
        discovery_timeout: Duration::from_secs(120),
        proxy: None,
    };
    // Version 0.2.0: four full lists, every round.
    let client = Client::new(settings.clone()).unwrap();
    s.reset_served();
    client.snapshot().unwrap();
    let old_round = sum(&s.served(), |_| true);

    // Now: one list per resource, then watches (and in a dual-stack cluster one full node
    // list for the second address family).
    s.reset_served();
    let start = Instant::now();
    let cpu0 = thread_cpu(AGENT_THREADS);
    let d = Discovery::start(Client::new(settings).unwrap(), WatchOptions::default()).unwrap();
    loop {
        let c = d.current();
        let complete = c.snapshot.as_ref().is_some_and(|snap| {
            snap.nodes.len() == nodes
                && snap.agents.len() == nodes
                && (!dual || snap.nodes.iter().all(|n| n.internal_ips.len() == 2))
        });
        if complete {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "no complete snapshot"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let initial_secs = start.elapsed().as_secs_f64();
    let initial_cpu = thread_cpu(AGENT_THREADS) - cpu0;
    let served = s.served();
    let initial = sum(&served, |x| x.path != "/livez");
    let mut initial_by_path = BTreeMap::new();
    for x in served.iter().filter(|x| x.path != "/livez") {
        let what = format!(
            "{} {}{}",
            x.path,
            x.repr,
            if x.watch { " watch" } else { "" }
        );
        *initial_by_path.entry(what).or_default() += x.bytes;
    }
    let service_get_bytes = sum(&served, |x| x.path.contains("/services/")).1;

    // Steady state: every node's status every 5 minutes, spread evenly, for `window`.
    s.reset_served();
    let cpu0 = thread_cpu(AGENT_THREADS);
    let t0 = Instant::now();
    let per_sec = nodes as f64 / 300.0;
    let mut sent = 0usize;
    while t0.elapsed() < window {
        let due = (t0.elapsed().as_secs_f64() * per_sec) as usize;
        while sent < due {
            let i = sent % nodes;
            let n = recorded::heartbeat(&node_objects[i], sent);
            s.put(Kind::Nodes, n);
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let the last events arrive, then one round's probe.
    std::thread::sleep(Duration::from_millis(500));
    let before = sum(&s.served(), |x| x.path == "/livez");
    assert_eq!(d.current().api_error, None);
    let probe = sum(&s.served(), |x| x.path == "/livez");
    let steady_cpu = thread_cpu(AGENT_THREADS) - cpu0;
    let served = s.served();
    let watch = sum(&served, |x| x.watch);
    let lists = sum(&served, |x| !x.watch && x.path != "/livez");
    assert_eq!(lists, (0, 0), "no list in steady state");

    // One agent pod replaced (a rollout step or a node's pod evicted): terminating, gone, the
    // new one with an IP, then Ready. Each step re-sends the slice it sits in.
    s.reset_served();
    let (pod, _) = templates();
    recorded::replace_agent_pod(
        &s,
        &pod,
        1,
        &recorded::pod_name(1),
        "k8s-network-test-daemonset-x0001",
        dual,
    );
    std::thread::sleep(Duration::from_millis(1000));
    let replaced = sum(&s.served(), |x| {
        x.watch && x.path.ends_with("/endpointslices")
    })
    .1;
    drop(d);
    Row {
        nodes,
        dual,
        old_round,
        initial,
        initial_by_path,
        initial_secs,
        initial_cpu,
        window: t0.elapsed(),
        watch_bytes: watch.1,
        watch_events: sent as u64,
        probe_bytes: probe.1 - before.1,
        service_get_bytes,
        steady_cpu,
        pod_replaced: replaced,
    }
}

/// Bytes on the wire of one watch event line carrying `object` (chunk framing included).
fn event_bytes(object: &str) -> usize {
    let line = format!("{{\"type\":\"MODIFIED\",\"object\":{object}}}\n");
    format!("{:x}\r\n", line.len()).len() + line.len() + 2
}

#[test]
#[ignore]
fn discovery_costs() {
    let sizes: Vec<usize> = std::env::var("BENCH_NODES")
        .unwrap_or_else(|_| "1000,5000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let window = Duration::from_secs(
        std::env::var("BENCH_WINDOW_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let options = WatchOptions::default();
    let mean_timeout = (options.watch_timeout.0 + options.watch_timeout.1).as_secs_f64() / 2.0;
    let restarts_per_hour = 3600.0 / mean_timeout; // per watch
                                                   // Requests per hour in steady state: three watches restarting at their timeout, and a
                                                   // Service GET before two of them (agents, dns).
    let requests_per_hour = 3.0 * restarts_per_hour + 2.0 * restarts_per_hour;

    // What each representation costs per object, from the recorded templates.
    let (pod, node) = templates();
    let node_full = event_bytes(&node.to_string());
    let node_row = event_bytes(&k8s_api_standin::table::go_escape(&table(
        Kind::Nodes,
        &[&node],
        Include::None,
        json!({"resourceVersion":"1"}),
        false,
    )));
    let node_row_headers = event_bytes(&k8s_api_standin::table::go_escape(&table(
        Kind::Nodes,
        &[&node],
        Include::None,
        json!({"resourceVersion":"1"}),
        true,
    )));
    let node_meta = event_bytes(&partial(&node).to_string());
    let pod_full = pod.to_string().len();
    let pod_meta = partial(&pod).to_string().len();
    let pod_row = table(Kind::Pods, &[&pod], Include::None, json!({}), false).len();
    println!("\nper object (bytes): node full event {node_full}, node Table row event {node_row} ({node_row_headers} with column definitions), node PartialObjectMetadata event {node_meta}; pod {pod_full}, pod PartialObjectMetadata {pod_meta}, pod Table row (first IP only) {pod_row}");
    for n in [1000usize, 5000] {
        let per_sec = n as f64 / 300.0;
        println!(
            "node watch at {n} nodes, status every 5 min: full objects {:.0} KB/s, Table rows {:.1} KB/s, metadata {:.0} KB/s",
            per_sec * node_full as f64 / 1e3,
            per_sec * node_row as f64 / 1e3,
            per_sec * node_meta as f64 / 1e3
        );
    }

    let mut rows = Vec::new();
    for &n in &sizes {
        rows.push(measure(n, false, window));
    }
    if let Some(&n) = sizes.iter().max() {
        rows.push(measure(n, true, Duration::from_secs(10)));
    }
    println!("\n| nodes = agent pods | 0.2.0 per round | initial sync | initial sync time, agent CPU | steady state | steady requests/hour | watch events/s, agent CPU |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        let secs = r.window.as_secs_f64();
        // Steady bytes per second: the watch streams (events and bookmarks) over the window,
        // one probe per 60 s round, and the restarts' Service GETs.
        let restart_bytes_per_hour = 2.0 * restarts_per_hour * (r.service_get_bytes as f64 / 2.0);
        let steady = r.watch_bytes as f64 / secs
            + r.probe_bytes as f64 / 60.0
            + restart_bytes_per_hour / 3600.0;
        println!(
            "| {}{} | {} in {} requests | {} in {} requests | {:.1} s, {:.2} s | {:.2} KB/s (watches {:.2}, probe {:.3}) | {:.1} discovery + 60 probes | {:.1}/s, {:.3} s CPU per minute |",
            r.nodes,
            if r.dual { " dual-stack" } else { "" },
            mb(r.old_round.1),
            r.old_round.0,
            mb(r.initial.1),
            r.initial.0,
            r.initial_secs,
            r.initial_cpu,
            steady / 1e3,
            r.watch_bytes as f64 / secs / 1e3,
            r.probe_bytes as f64 / 60.0 / 1e3,
            requests_per_hour,
            r.watch_events as f64 / secs,
            r.steady_cpu / secs * 60.0,
        );
    }
    for r in &rows {
        println!(
            "one agent pod replaced, {} nodes{}: {} B of EndpointSlice events (a full-object pod watch: about {} B)",
            r.nodes,
            if r.dual { " dual-stack" } else { "" },
            r.pod_replaced,
            4 * event_bytes(&pod.to_string())
        );
    }
    for r in &rows {
        println!(
            "initial sync by request, {} nodes{}:",
            r.nodes,
            if r.dual { " dual-stack" } else { "" }
        );
        for (what, bytes) in &r.initial_by_path {
            println!("  {what}: {bytes} B");
        }
    }
}
