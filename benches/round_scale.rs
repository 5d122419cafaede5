//! Work per round grows linearly with the checks: each stage of a round other than the
//! probes themselves (plan, round bookkeeping and diff, totals, the log block, the metrics
//! text, `/summary.json`, `/status.json`) timed on synthetic 1,000- and 5,000-node rounds (tests/common/
//! synthetic.rs) in one run, and the ratio printed. Linear work gives about 5x; a scan of all
//! checks per node would give about 25x, so a ratio above 12 fails the benchmark (exit 1).
//! A ratio, not a time: it holds on a busy machine. `make bench` runs it (`cargo bench --bench
//! round_scale`); the figures go to BENCHMARKS.md.

#[allow(dead_code)]
#[path = "../tests/common/synthetic.rs"]
mod synthetic;

use std::time::{Duration, Instant};

use k8s_network_test_daemonset::plan::{self, Planner, Reach};
use k8s_network_test_daemonset::report;
use k8s_network_test_daemonset::summary::{Summary, Writer};
use k8s_network_test_daemonset::view::log::{self, LogTable};
use k8s_network_test_daemonset::view::metrics::{self, AgentInfo, Totals};

/// Runs of each stage; the median is kept.
const RUNS: usize = 9;
/// The most a stage may grow from 1,000 to 5,000 nodes.
const MAX_RATIO: f64 = 12.0;

/// The median time of one call of `f`; each sample repeats it for at least 5 ms, so that
/// quick stages are not lost in the clock's and the scheduler's noise.
fn median(mut f: impl FnMut()) -> Duration {
    let once = Instant::now();
    f();
    let reps = (5_000_000 / once.elapsed().as_nanos().max(1)).clamp(1, 10_000) as u32;
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed() / reps
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

/// (stage, median time) at `nodes` nodes, for a round with half the nodes failing after a
/// healthy one (every change listed: the most work a round's views do).
fn stages(nodes: usize) -> Vec<(&'static str, Duration)> {
    let snapshot = synthetic::snapshot(nodes);
    let plan = plan::plan(&snapshot, "cluster.local");
    let (_, healthy, half) = synthetic::rounds(nodes);
    let info = AgentInfo {
        version: "0.0.0".into(),
        node: "node-0000".into(),
        pod: "k8s-network-test-daemonset-00000".into(),
    };
    let mut totals = Totals::new();
    totals.record(&healthy);
    let reach = Reach {
        peers: Some(10),
        dns_instance_peers: Some(50),
        pod_path_peers: Some(50),
    };
    let mut planner = Planner::new("cluster.local", "node-0000", reach);
    let writer = Writer {
        version: "0.0.0",
        interval_seconds: 60.0,
    };
    let mut out = vec![
        (
            "plan (every peer)",
            median(|| drop(plan::plan(&snapshot, "cluster.local"))),
        ),
        ("plan (--peers 10, membership unchanged)", {
            let _ = planner.plan(&snapshot);
            median(|| drop(planner.plan(&snapshot)))
        }),
        (
            "round: results and diff (probes faked)",
            median(|| drop(synthetic::run(&plan, Some(&healthy), true))),
        ),
        (
            "  of which the diff with the last round",
            median(|| drop(report::diff(&healthy.checks, &half.checks))),
        ),
        ("totals", {
            let mut t = totals.clone();
            median(|| t.record(&half))
        }),
        (
            "log block (auto: summary)",
            median(|| drop(log::render(&half, LogTable::Auto))),
        ),
        (
            "log block (full table)",
            median(|| drop(log::render(&half, LogTable::Full))),
        ),
        (
            "metrics text",
            median(|| drop(metrics::render(Some(&half), &totals, &info))),
        ),
        (
            "/summary.json (and the matrix's own summary)",
            median(|| {
                let s = Summary::of(&half, &writer);
                drop(serde_json::to_vec(&s));
            }),
        ),
        (
            "/status.json (on request only)",
            median(|| drop(serde_json::to_string_pretty(&half))),
        ),
    ];
    let total = out
        .iter()
        .filter(|(name, _)| !name.starts_with("  "))
        .map(|(_, t)| *t)
        .sum();
    out.push(("all of the above", total));
    out
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    // Warm up allocator and caches once.
    let _ = stages(200);
    let small = stages(1000);
    let large = stages(5000);
    // The reduced mesh's choice, computed once per membership (O(N^2) hashes at most).
    let mesh = |nodes: usize| {
        let snapshot = synthetic::snapshot(nodes);
        let reach = Reach {
            peers: Some(10),
            dns_instance_peers: Some(50),
            pod_path_peers: Some(50),
        };
        median(|| drop(Planner::new("cluster.local", "node-0000", reach).plan(&snapshot)))
    };
    let (mesh_small, mesh_large) = (mesh(1000), mesh(5000));
    println!("| stage | 1,000 nodes | 5,000 nodes | ratio |");
    println!("|---|---|---|---|");
    let mut worst = 0.0f64;
    for ((name, a), (_, b)) in small.iter().zip(&large) {
        let ratio = b.as_secs_f64() / a.as_secs_f64().max(1e-9);
        worst = worst.max(ratio);
        println!("| {name} | {} | {} | {ratio:.1}x |", ms(*a), ms(*b));
    }
    println!(
        "| (not per round) --peers 10 choice, new membership | {} | {} | {:.1}x |",
        ms(mesh_small),
        ms(mesh_large),
        mesh_large.as_secs_f64() / mesh_small.as_secs_f64().max(1e-9)
    );
    println!(
        "worst ratio of a per-round stage: {worst:.1}x (linear: 5x; fails above {MAX_RATIO}x)"
    );
    if worst > MAX_RATIO {
        eprintln!("round_scale: a stage grew faster than linearly");
        std::process::exit(1);
    }
}
