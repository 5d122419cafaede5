//! Soak: the release agent in the namespace lab at a 1 s interval, scraped all the time, while
//! membership churns in the API (agent pods replaced under new names on the same live
//! addresses, nodes joining and leaving with addresses that answer). Between round 100 and the
//! last, RSS grows by at most 1 MiB, threads and open file descriptors do not grow, and not one
//! check fails (every address in the churn answers, so any failure is false).
//!
//! `NETTEST_SOAK_ROUNDS` sets the length: `make test` runs a CI-sized 160 rounds, `make soak`
//! 2,000. Needs root; in CI it must run.

use std::collections::{BTreeSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_box::lab::{api_objects, release_agent, Lab, Options};
use cluster_box::status::metric_sum;
use cluster_box::{need_root, Spec};
use k8s_api_standin as api;
use serde_json::Value;

const AGENT: &str = env!("CARGO_BIN_EXE_k8s-network-test-daemonset");
/// Rounds before the baseline is taken: start-up allocations settle by then.
const WARM_UP: u64 = 100;
/// Rounds whose samples make one steady level (see [`steady`]).
const WINDOW: usize = 10;
/// Rounds between two membership changes.
const CHURN_EVERY: u64 = 5;
/// Nodes that join and leave; each has a node address and an agent pod address that answer.
const CHURN_NODES: u8 = 4;

/// What a process holds at one moment.
#[derive(Debug, Clone, Copy)]
struct Usage {
    rss_kib: u64,
    threads: usize,
    fds: usize,
}

fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("agent status");
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    let count = |dir: &str| {
        std::fs::read_dir(format!("/proc/{pid}/{dir}"))
            .unwrap()
            .count()
    };
    Usage {
        rss_kib,
        threads: count("task"),
        fds: count("fd"),
    }
}

/// The counter `name` (summed over its labels) in a scrape.
fn counter(scrape: &str, name: &str) -> u64 {
    metric_sum(scrape, name).unwrap_or(0.0) as u64
}

/// The steady level of a few rounds' samples: the fewest threads and files, which a
/// connection or lookup in flight at one sampling cannot raise (the scrapers never stop), and
/// a leak raises in every sample; RSS as last sampled.
fn steady(samples: &VecDeque<Usage>) -> Usage {
    let last = *samples.back().expect("samples");
    Usage {
        rss_kib: last.rss_kib,
        threads: samples.iter().map(|u| u.threads).min().unwrap_or(0),
        fds: samples.iter().map(|u| u.fds).min().unwrap_or(0),
    }
}

/// The cluster as the API shows it in churn generation `g`: every agent pod renamed (same
/// node, same address), and the churn nodes whose turn it is, each with its agent pod.
fn churned(lab: &Lab, g: u64) -> api::Cluster {
    let mut c = api_objects(&lab.cluster, &BTreeSet::new());
    for pod in &mut c.pods {
        let name = pod["metadata"]["name"].as_str().unwrap().to_string();
        pod["metadata"]["name"] = Value::String(format!("{name}-g{g}"));
    }
    for k in 0..CHURN_NODES {
        if (u64::from(k) + g) % 2 == 1 {
            continue;
        }
        let node = format!("churn-{k}");
        let (host, pod) = churn_addrs(k);
        c.nodes
            .push(api::node(&node, &[IpAddr::V4(host)], false, true));
        c.pods.push(api::agent_pod(
            &format!("k8s-network-test-daemonset-churn-{k}-g{g}"),
            "kube-system",
            &node,
            &[IpAddr::V4(pod)],
            &[IpAddr::V4(host)],
            "Running",
            true,
        ));
    }
    c
}

/// Underlay addresses held by node 1: they answer pings from every pod.
fn churn_addrs(k: u8) -> (Ipv4Addr, Ipv4Addr) {
    (
        Ipv4Addr::new(198, 18, 1, 60 + k),
        Ipv4Addr::new(198, 18, 1, 80 + k),
    )
}

/// The scraper thread: stopped and joined when dropped, also when the test fails, so that its
/// share of the lab goes and the lab's namespaces and processes are removed.
struct Scraper(Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);

impl Drop for Scraper {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        if let Some(t) = self.1.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn soak_with_churn_and_scrapes() {
    if !need_root("soak_with_churn_and_scrapes") {
        return;
    }
    let rounds: u64 = std::env::var("NETTEST_SOAK_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(160);
    assert!(
        rounds > WARM_UP + 20,
        "NETTEST_SOAK_ROUNDS must exceed {}",
        WARM_UP + 20
    );
    let binary = release_agent(AGENT);
    let lab = Lab::start(Options {
        spec: Spec {
            nodes: 3,
            ..Spec::default()
        },
        binary: binary.clone(),
        agent_args: [
            "--interval",
            "1s",
            "--timeout",
            "300ms",
            "--dns-timeout",
            "500ms",
        ]
        .map(String::from)
        .to_vec(),
        prometheus: false,
    });
    for k in 0..CHURN_NODES {
        let (host, pod) = churn_addrs(k);
        for a in [host, pod] {
            lab.cluster.nodes[1]
                .ns
                .ip(&["addr", "add", &format!("{a}/24"), "dev", "eth0"]);
        }
    }
    // The churn pods' port, for the agent's `pod-tcp` checks.
    let _churn_port = cluster_box::netns::Acceptor::start(&lab.cluster.nodes[1].ns.name, 8123);
    let pid = lab.agent_pid(0).expect("agent 0 runs");
    println!("soak: {rounds} rounds of {} (pid {pid})", binary.display());

    // Scrapes all the time, as a Prometheus and a curious operator would.
    let stop = Arc::new(AtomicBool::new(false));
    let scrapes = Arc::new(AtomicU64::new(0));
    let lab = Arc::new(lab);
    let mut scraper = Scraper(stop.clone(), None);
    scraper.1 = {
        let (lab, stop, scrapes) = (lab.clone(), stop.clone(), scrapes.clone());
        Some(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for path in ["/prometheus.report", "/status.json", "/livez"] {
                    if lab.agent_get(0, path).is_ok_and(|r| r.status == 200) {
                        scrapes.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }))
    };

    let start = Instant::now();
    let mut seen = 0u64;
    let mut generation = 0u64;
    let mut baseline: Option<Usage> = None;
    let mut recent: VecDeque<Usage> = VecDeque::new();
    let mut last = usage(pid);
    let mut peak_rss = 0u64;
    let limit = Duration::from_secs(rounds * 3 + 60);
    while seen < rounds {
        assert!(
            start.elapsed() < limit,
            "only {seen} of {rounds} rounds in {:?}; agent log:\n{}",
            start.elapsed(),
            lab.agent_log(0)
        );
        std::thread::sleep(Duration::from_millis(50));
        let Ok(scrape) = lab.agent_get(0, "/prometheus.report") else {
            continue;
        };
        let now = counter(&scrape.body, "networktest_rounds_total");
        if now == seen {
            continue;
        }
        seen = now;
        let failures = counter(&scrape.body, "networktest_check_failures_total");
        assert_eq!(
            failures,
            0,
            "a check failed by round {seen}: {}\nagent log:\n{}",
            lab.agent_get(0, "/status.json")
                .map(|r| r.body)
                .unwrap_or_default(),
            lab.agent_log(0)
        );
        // Sampled at the same point of every round: just after it was published.
        let now = usage(pid);
        peak_rss = peak_rss.max(now.rss_kib);
        recent.push_back(now);
        if recent.len() > WINDOW {
            recent.pop_front();
        }
        last = steady(&recent);
        if seen >= WARM_UP + WINDOW as u64 && baseline.is_none() {
            baseline = Some(last);
            println!("soak: round {seen}: {last:?}");
        }
        if seen / CHURN_EVERY > generation {
            generation = seen / CHURN_EVERY;
            lab.api.set_cluster(churned(&lab, generation));
        }
    }
    drop(scraper);
    let base = baseline.expect("baseline taken");
    println!(
        "soak: round {seen}: {last:?}; peak RSS {peak_rss} KiB; {} scrapes; {generation} membership changes; {:?}",
        scrapes.load(Ordering::Relaxed),
        start.elapsed()
    );
    assert!(
        last.rss_kib <= base.rss_kib + 1024,
        "RSS grew by {} KiB between round {WARM_UP} and {seen}",
        last.rss_kib.saturating_sub(base.rss_kib)
    );
    assert!(
        last.threads <= base.threads,
        "threads grew: {base:?} -> {last:?}"
    );
    assert!(
        last.fds <= base.fds,
        "open files grew: {base:?} -> {last:?}"
    );
    // The churn reached the agent: its last round pinged renamed pods of a recent generation
    // (the newest may have been set after that round's discovery).
    let status = lab.agent_get(0, "/status.json").unwrap().body;
    let recent = [generation, generation - 1].map(|g| format!("-g{g}\""));
    assert!(
        recent.iter().any(|g| status.contains(g.as_str())),
        "the agent's last round shows neither of {recent:?}:\n{status}"
    );
}
