//! `make bench` (HTTP part): scrape load on one agent of the namespace lab while it runs rounds
//! under the manifest's CPU limit (a 200m cgroup v1 quota). Two phases in one run, so the
//! figures are ratios against a baseline measured on the same machine at the same time:
//!
//! 1. baseline: one scrape every 100 ms (what a few Prometheus servers cost);
//! 2. load: `wrk` paced at about LOAD_RATE requests/s on `/prometheus.report`.
//!
//! For each phase: requests/s, scrape latency (p50, p99, max, from wrk's `--latency`), how late
//! each round started against its schedule, failed checks, the agent's CPU and how often the
//! quota throttled it. Prints a Markdown table for BENCHMARKS.md.
//!
//! Usage: bench-http AGENT-BINARY [SECONDS] [LOAD_RATE]  (root; Debian's wrk)

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cluster_box::lab::{Lab, Options, AGENT_PORT};
use cluster_box::Spec;

/// Round interval of the lab agents: many rounds per phase.
const INTERVAL: Duration = Duration::from_secs(2);
/// The manifest's CPU limit: 200m = 20 ms per 100 ms period.
const QUOTA_US: u64 = 20_000;
const PERIOD_US: u64 = 100_000;
/// wrk connections; each waits a little between requests, so the rate is paced.
const CONNECTIONS: u32 = 8;

/// What one phase measured.
struct Phase {
    name: String,
    requests_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: u64,
    rounds: usize,
    worst_late_ms: f64,
    failed_checks: u64,
    cpu_s: f64,
    throttled: u64,
    wall_s: f64,
}

/// A cpu cgroup (v1) with the manifest's quota; removed on drop.
struct CpuQuota(PathBuf);

impl CpuQuota {
    fn new(pid: u32) -> CpuQuota {
        let dir = PathBuf::from(format!(
            "/sys/fs/cgroup/cpu/nettest-bench-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create a cpu cgroup (cgroup v1 cpu controller)");
        std::fs::write(dir.join("cpu.cfs_period_us"), PERIOD_US.to_string()).unwrap();
        std::fs::write(dir.join("cpu.cfs_quota_us"), QUOTA_US.to_string()).unwrap();
        std::fs::write(dir.join("cgroup.procs"), pid.to_string()).expect("move the agent");
        CpuQuota(dir)
    }

    fn throttled(&self) -> u64 {
        let stat = std::fs::read_to_string(self.0.join("cpu.stat")).unwrap_or_default();
        stat.lines()
            .find_map(|l| l.strip_prefix("nr_throttled "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for CpuQuota {
    fn drop(&mut self) {
        // Move whatever is left back to the root group, then remove ours.
        if let Ok(procs) = std::fs::read_to_string(self.0.join("cgroup.procs")) {
            for p in procs.split_whitespace() {
                let _ = std::fs::write("/sys/fs/cgroup/cpu/cgroup.procs", p);
            }
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// User + system CPU seconds of a process so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of /proc/PID/stat: 11 and 12 after the state.
    (ticks(11) + ticks(12)) / 100.0
}

/// Round start times (RFC 3339 strings) and failed-check counts printed by agent 0 so far.
fn rounds(out: &str) -> Vec<(String, u64)> {
    let mut v = Vec::new();
    let mut start: Option<String> = None;
    for line in out.lines() {
        if let Some((_, at)) = line
            .strip_prefix("Tests running on node: ")
            .and_then(|l| l.rsplit_once(", at "))
        {
            start = Some(at.to_string());
        } else if let Some(rest) = line.strip_prefix("Result: ") {
            let failed = rest
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if let Some(s) = start.take() {
                v.push((s, failed));
            }
        }
    }
    v
}

/// Seconds since the epoch of an RFC 3339 UTC time `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn epoch(t: &str) -> f64 {
    let n = |a: usize, b: usize| t.get(a..b).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    let (y, mo, d) = (n(0, 4), n(5, 7), n(8, 10));
    let (h, mi) = (n(11, 13), n(14, 16));
    let secs: f64 = t
        .get(17..t.len() - 1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + h * 3600 + mi * 60) as f64 + secs
}

/// Parses wrk's `--latency` report: requests/s, p50, p99 and max latency in ms, errors.
fn parse_wrk(text: &str) -> (f64, f64, f64, f64, u64) {
    let ms = |v: &str| -> f64 {
        let v = v.trim();
        let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
        let x: f64 = num.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => x / 1000.0,
            "ms" => x,
            "s" => x * 1000.0,
            "m" => x * 60_000.0,
            _ => f64::NAN,
        }
    };
    let mut out = (0.0, f64::NAN, f64::NAN, f64::NAN, 0u64);
    for line in text.lines().map(str::trim) {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["Requests/sec:", r] => out.0 = r.parse().unwrap_or(0.0),
            ["50%", v] => out.1 = ms(v),
            ["99%", v] => out.2 = ms(v),
            ["Latency", _avg, _stdev, max, ..] => out.3 = ms(max),
            _ => {}
        }
        if line.starts_with("Socket errors:") || line.starts_with("Non-2xx") {
            out.4 += line
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    out
}

fn run_phase(
    lab: &Lab,
    quota: &CpuQuota,
    pid: u32,
    name: &str,
    seconds: u64,
    delay_ms: u64,
    connections: u32,
) -> Phase {
    let dir = lab.cluster.dir.join("bench");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("pace.lua");
    std::fs::write(
        &script,
        format!("function delay()\n  return {delay_ms}\nend\n"),
    )
    .unwrap();
    let url = format!(
        "http://{}:{AGENT_PORT}/prometheus.report",
        lab.cluster.agents[0].ip
    );
    let before = rounds(&lab.agent_output(0)).len();
    let (cpu0, thr0, t0) = (cpu_seconds(pid), quota.throttled(), Instant::now());
    let out = lab
        .cluster
        .api
        .command("wrk")
        .args([
            "-t",
            &connections.min(2).to_string(),
            "-c",
            &connections.to_string(),
        ])
        .args(["-d", &format!("{seconds}s")])
        .args(["--latency", "--timeout", "5s", "-s"])
        .arg(&script)
        .arg(&url)
        .output()
        .expect("run wrk (apt-get install wrk)");
    let wall_s = t0.elapsed().as_secs_f64();
    let (cpu_s, throttled) = (cpu_seconds(pid) - cpu0, quota.throttled() - thr0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (requests_per_s, p50_ms, p99_ms, max_ms, errors) = parse_wrk(&text);
    let all = rounds(&lab.agent_output(0));
    let phase = all.get(before..).unwrap_or(&[]);
    // How far each round started from its slot: the first round runs at once, the later ones
    // on the agent's slots, one interval apart (anchored to the wall clock), so the second
    // round is the anchor.
    let anchor = all
        .get(1)
        .or(all.first())
        .map(|(t, _)| epoch(t))
        .unwrap_or(0.0);
    let step = INTERVAL.as_secs_f64();
    let worst_late_ms = phase
        .iter()
        .map(|(t, _)| {
            let t = epoch(t);
            let due = anchor + ((t - anchor) / step).round() * step;
            (t - due) * 1000.0
        })
        .fold(0.0f64, |a, b| a.max(b.abs()));
    Phase {
        name: name.to_string(),
        requests_per_s,
        p50_ms,
        p99_ms,
        max_ms,
        errors,
        rounds: phase.len(),
        worst_late_ms,
        failed_checks: phase.iter().map(|(_, f)| f).sum(),
        cpu_s,
        throttled,
        wall_s,
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(binary) = args.next() else {
        eprintln!("usage: bench-http AGENT-BINARY [SECONDS] [LOAD_RATE]");
        std::process::exit(2);
    };
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(60);
    let rate: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1200);
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("bench-http: needs root (network namespaces, cgroups)");
        std::process::exit(2);
    }
    let binary = PathBuf::from(binary);
    eprintln!("bench-http: {} for {seconds}s per phase", binary.display());
    let lab = Lab::start(Options {
        spec: Spec {
            nodes: 4,
            ..Spec::default()
        },
        binary: binary.clone(),
        agent_args: [
            "--interval",
            "2s",
            "--timeout",
            "500ms",
            "--dns-timeout",
            "1s",
        ]
        .map(String::from)
        .to_vec(),
        prometheus: false,
    });
    let pid = lab.agent_pid(0).expect("agent 0 runs");
    let t = Instant::now();
    while !lab.agent_output(0).contains("Result: ") {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "agent 0 ran no round"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let quota = CpuQuota::new(pid);
    // Paced wrk: each connection waits `delay` between requests; the scrape itself takes well
    // under a millisecond, so the rate is about connections * 1000 / delay.
    let delay = (u64::from(CONNECTIONS) * 1000 / rate.max(1)).max(1);
    let phases = [
        run_phase(
            &lab,
            &quota,
            pid,
            "baseline: 10 scrapes/s",
            seconds.min(30),
            100,
            1,
        ),
        run_phase(&lab, &quota, pid, "load: wrk", seconds, delay, CONNECTIONS),
    ];
    print_table(&binary, seconds, &phases);
}

fn print_table(binary: &Path, seconds: u64, phases: &[Phase]) {
    println!(
        "agent: {} (cpu quota {}m), rounds every {}s, load phase {seconds}s",
        binary.display(),
        QUOTA_US / 100,
        INTERVAL.as_secs()
    );
    println!();
    println!("| phase | requests/s | p50 | p99 | max | errors | rounds | worst start offset | failed checks | agent CPU | throttled periods |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for p in phases {
        println!(
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {} | {} | {:.1} ms | {} | {:.2} s ({:.0}% of {:.0} s) | {} |",
            p.name,
            p.requests_per_s,
            p.p50_ms,
            p.p99_ms,
            p.max_ms,
            p.errors,
            p.rounds,
            p.worst_late_ms,
            p.failed_checks,
            p.cpu_s,
            100.0 * p.cpu_s / p.wall_s,
            p.wall_s,
            p.throttled
        );
    }
    if let [base, load] = phases {
        println!();
        println!(
            "ratios load/baseline: p99 latency {:.2}x, worst start offset {:.2}x, CPU per second {:.2}x",
            load.p99_ms / base.p99_ms,
            load.worst_late_ms / base.worst_late_ms.max(0.1),
            (load.cpu_s / load.wall_s) / (base.cpu_s / base.wall_s).max(1e-9)
        );
        let ok = load.requests_per_s >= 1000.0
            && load.p99_ms < 100.0
            && load.worst_late_ms <= 100.0
            && load.failed_checks == 0
            && load.errors == 0;
        println!(
            "goals (>= 1,000 req/s, p99 < 100 ms, rounds on time within 100 ms, no failed check, no error): {}",
            if ok { "met" } else { "NOT met" }
        );
    }
}
