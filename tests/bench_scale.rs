//! Full rounds at scale: the release agent binary against the API stand-in serving 1,000 or
//! 5,000 nodes and agent pods cloned from recorded real objects (`k8s_api_standin::recorded`),
//! with churn (every node's status every 5 minutes, spread evenly; a few agent pods replaced
//! per minute), every pod and node address answering ICMP from a "cluster" namespace, DNS
//! from dnsmasq. It measures what one agent costs and prints it beside the 0.2.0 figures of
//! issue 11: API bytes and requests, CPU per round, RSS, round wall time, series, log lines.
//!
//! ```text
//!  namespace "agent"                      namespace "cluster"
//!  agent 198.19.0.1/32 ── veth ── gateway 198.18.255.254, route 198.19.0.1/32
//!  (uid 65534, no caps)           on `lo`: every node IP 198.18.0.0+i, every other pod IP
//!                                 198.19.0.0+i, the API 198.18.250.1:6443 (the stand-in, in
//!                                 this process), DNS 198.18.250.10 and 198.18.251.1-2
//! ```
//!
//! The agent's CPU time includes the kernel answering its echoes (veth delivers in the sending
//! call's softirq): about 0.045 s a round at 5,000 nodes (BENCHMARKS.md, "Where the CPU goes").
//!
//! `make bench-scale` (part of `make bench`) runs the ignored `scale_rounds` with
//! `BENCH_SCALE_NODES=1000,5000` (default) and `BENCH_SCALE_ROUNDS=12` steady rounds at
//! `BENCH_SCALE_INTERVAL=10s`. `scale_smoke` (in `make test`) runs the same harness at 60
//! nodes for 2 rounds and checks the figures are sane (never their timings). Needs root.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_box::dnsmasq::{Dnsmasq, Zone};
use cluster_box::lab::release_agent;
use cluster_box::netns::{add_addresses, run_in, veth, Acceptor, Netns};
use cluster_box::{http, need_root, status};
use k8s_api_standin::{recorded, Kind, Served, StandIn};
use k8s_network_test_daemonset::kube::WatchOptions;

const AGENT: &str = env!("CARGO_BIN_EXE_k8s-network-test-daemonset");
/// The measured agent is the pod of node 1 (node 0's addresses end in .0.0).
const ME: usize = 1;
const API_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 250, 1);
const API_PORT: u16 = 6443;
/// The cluster namespace's end of the agent's veth: the agent's default gateway.
const GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 18, 255, 254);
const AGENT_PORT: u16 = 8123;
const DOMAIN: &str = "cluster.tst.local";
/// Start-up, the first round and each later round wait at most this long (a loaded machine).
const PATIENCE: Duration = Duration::from_secs(600);

/// How to run one measurement.
#[derive(Debug, Clone)]
struct Config {
    nodes: usize,
    /// `--interval` of the agent.
    interval: Duration,
    /// Rounds measured after the warm-up (the first round and the one after it).
    rounds: usize,
    /// One agent pod replaced every this often (3 a minute: 20 s).
    replace_every: Duration,
    /// Seconds between two status reports of one node (the kubelet's 5 minutes).
    node_report_secs: f64,
    /// More agent flags (the smoke's short interval needs shorter timeouts).
    args: &'static [&'static str],
}

/// What one agent process used, from `/proc/<pid>`.
#[derive(Debug, Clone, Default)]
struct Proc {
    /// utime + stime of the whole process (exited threads included), in seconds.
    cpu: f64,
    /// utime + stime of the discovery threads (`watch-*`, `node-addresses`).
    discovery_cpu: f64,
    /// CPU by thread name (live threads only).
    by_thread: BTreeMap<String, f64>,
    rss_kib: u64,
    hwm_kib: u64,
}

const TICKS: f64 = 100.0; // USER_HZ

fn stat_cpu(stat: &str) -> f64 {
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (t(11) + t(12)) as f64 / TICKS
}

fn status_kib(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn sample(pid: u32) -> Proc {
    let read = |p: &str| std::fs::read_to_string(format!("/proc/{pid}/{p}")).unwrap_or_default();
    let status = read("status");
    let mut s = Proc {
        cpu: stat_cpu(&read("stat")),
        rss_kib: status_kib(&status, "VmRSS:"),
        hwm_kib: status_kib(&status, "VmHWM:"),
        ..Proc::default()
    };
    for e in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        let comm = comm.trim().to_string();
        let cpu = stat_cpu(&std::fs::read_to_string(e.path().join("stat")).unwrap_or_default());
        if comm.starts_with("watch-") || comm.starts_with("node-addresses") {
            s.discovery_cpu += cpu;
        }
        *s.by_thread.entry(comm).or_default() += cpu;
    }
    s
}

/// One round's `Result:` line: (failed, checks, wall seconds).
fn result_line(line: &str) -> Option<(usize, usize, f64)> {
    let rest = line.strip_prefix("Result: ")?;
    let mut w = rest.split_whitespace();
    let failed = w.next()?.parse().ok()?;
    let total = w.nth(1)?.parse().ok()?;
    let secs = rest
        .rsplit_once("round took ")?
        .1
        .trim_end_matches(" s")
        .parse()
        .ok()?;
    Some((failed, total, secs))
}

fn results(stdout: &str) -> Vec<(usize, usize, f64)> {
    stdout.lines().filter_map(result_line).collect()
}

fn sum(served: &[Served], f: impl Fn(&Served) -> bool) -> (u64, u64) {
    served
        .iter()
        .filter(|s| f(s))
        .fold((0, 0), |(r, b), s| (r + s.requests, b + s.bytes))
}

/// Everything running for one measurement; dropping it stops the agent and the churn, then
/// removes dnsmasq, the stand-in, the namespaces and the files (also after a panic).
struct Bench {
    agent: Child,
    stop_churn: Arc<AtomicBool>,
    churn: Option<std::thread::JoinHandle<()>>,
    /// The other agents' port, for the agent's `pod-tcp` checks (accepting is billed to
    /// this process, the kernel's SYN handling, like the echo answers, partly to the agent).
    _peers: Acceptor,
    _dns: Dnsmasq,
    api: Arc<StandIn>,
    resolv_dir: PathBuf,
    out: PathBuf,
    // Namespaces last: deleting them kills whatever still runs there.
    _agent_ns: Netns,
    cluster_ns: Netns,
    dir: tempfile::TempDir,
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.stop_churn.store(true, Ordering::Relaxed);
        if let Some(h) = self.churn.take() {
            let _ = h.join();
        }
        let _ = self.agent.kill();
        let _ = self.agent.wait();
        let _ = std::fs::remove_dir_all(&self.resolv_dir);
    }
}

impl Bench {
    fn start(c: &Config, binary: &Path) -> Bench {
        let dir = tempfile::tempdir().expect("temp dir");
        let cluster_ns = Netns::new("scl");
        let agent_ns = Netns::new("sca");
        let me = recorded::pod_ip(ME);
        veth(
            &agent_ns,
            "eth0",
            &[&format!("{me}/32")],
            &cluster_ns,
            "agent0",
            &[&format!("{GATEWAY}/32")],
        );
        // Calico's scheme: one gateway on the link, so the agent ARPs once, not per target
        // (10,000 neighbours would overflow the neighbour table).
        agent_ns.ip(&[
            "route",
            "add",
            &GATEWAY.to_string(),
            "dev",
            "eth0",
            "scope",
            "link",
        ]);
        agent_ns.ip(&[
            "route",
            "add",
            "default",
            "via",
            &GATEWAY.to_string(),
            "dev",
            "eth0",
        ]);
        agent_ns.exec(&["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"]);
        cluster_ns.ip(&["route", "add", &format!("{me}/32"), "dev", "agent0"]);
        // The kernel answers each echo in the softirq of the sending call, so the agent's CPU
        // time includes the simulated nodes' work of answering (BENCHMARKS.md says how much).
        // Steering it to the other CPU (RPS) would drop replies at the backlog's 1,000 packets.
        let mut addrs: Vec<IpAddr> = Vec::with_capacity(2 * c.nodes + 4);
        for i in 0..c.nodes {
            addrs.push(IpAddr::V4(recorded::node_ip(i)));
            if i != ME {
                addrs.push(IpAddr::V4(recorded::pod_ip(i)));
            }
        }
        addrs.push(IpAddr::V4(API_IP));
        addrs.push(IpAddr::V4(recorded::DNS_SERVICE_IP));
        addrs.extend(recorded::DNS_INSTANCE_IPS.map(IpAddr::V4));
        add_addresses(&cluster_ns, "lo", &addrs);

        let zone = Zone::new(&[DOMAIN, "18.198.in-addr.arpa", "19.198.in-addr.arpa"])
            .record(
                &format!("kube-dns.kube-system.svc.{DOMAIN}"),
                &[IpAddr::V4(recorded::DNS_SERVICE_IP)],
            )
            .record(
                &format!("kubernetes.default.svc.{DOMAIN}"),
                &[IpAddr::V4(API_IP)],
            )
            .record(
                &format!("coredns-1.kube-dns.kube-system.svc.{DOMAIN}"),
                &[IpAddr::V4(recorded::DNS_INSTANCE_IPS[0])],
            )
            .record(
                &format!("coredns-2.kube-dns.kube-system.svc.{DOMAIN}"),
                &[IpAddr::V4(recorded::DNS_INSTANCE_IPS[1])],
            );
        let mut dns_listen = vec![IpAddr::V4(recorded::DNS_SERVICE_IP)];
        dns_listen.extend(recorded::DNS_INSTANCE_IPS.map(IpAddr::V4));
        let dns = Dnsmasq::spawn(Some(&cluster_ns.name), &dns_listen, &zone);
        let resolv_dir = PathBuf::from("/etc/netns").join(&agent_ns.name);
        std::fs::create_dir_all(&resolv_dir).expect("create /etc/netns dir");
        std::fs::write(
            resolv_dir.join("resolv.conf"),
            format!(
                "search kube-system.svc.{DOMAIN} svc.{DOMAIN} {DOMAIN}\nnameserver {}\noptions ndots:5\n",
                recorded::DNS_SERVICE_IP
            ),
        )
        .expect("write resolv.conf");

        let objects = recorded::cluster(c.nodes, false);
        let api_dir = dir.path().join("api");
        std::fs::create_dir_all(&api_dir).expect("api dir");
        let listen = SocketAddr::new(IpAddr::V4(API_IP), API_PORT);
        let d = api_dir.clone();
        let api = run_in(&cluster_ns.name, move || {
            StandIn::start(listen, objects, &d)
        })
        .expect("start the API stand-in");
        // The agent runs as uid 65534, like the image: let it read the token and CA.
        use std::os::unix::fs::PermissionsExt;
        for p in [dir.path().to_path_buf(), api_dir.clone()] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        for p in [api.ca_path(), api.token_path()] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        api.reset_served();
        let out = dir.path().join("agent.out");
        let interval = format!("{}s", c.interval.as_secs());
        let agent = agent_ns
            .command("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(binary)
            .arg("--api-server")
            .arg(api.url())
            .arg("--token-file")
            .arg(api.token_path())
            .arg("--ca-file")
            .arg(api.ca_path())
            .args(["--namespace", recorded::NAMESPACE])
            .args(["--node-name", &recorded::node_name(ME)])
            .args(["--pod-name", &recorded::pod_name(ME)])
            .args(["--listen", &format!("{me}:{AGENT_PORT}")])
            .args(["--interval", &interval])
            .args(c.args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("agent.out"))
            .stderr(std::fs::File::create(dir.path().join("agent.log")).expect("agent.log"))
            .spawn()
            .expect("start the agent");
        Bench {
            agent,
            stop_churn: Arc::new(AtomicBool::new(false)),
            churn: None,
            _peers: Acceptor::start(&cluster_ns.name, AGENT_PORT),
            _dns: dns,
            api: Arc::new(api),
            resolv_dir,
            out,
            _agent_ns: agent_ns,
            cluster_ns,
            dir,
        }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn explain(&mut self) -> String {
        let exited = self.agent.try_wait().ok().flatten();
        let log = std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        format!(
            "agent exited: {exited:?}; last stderr lines (newest first):\n{}",
            tail.join("\n")
        )
    }

    /// Waits until the agent's stdout holds `n` complete rounds (a `Result:` line each).
    fn wait_rounds(&mut self, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        while results(&self.stdout()).len() < n {
            if Instant::now() > deadline || self.agent.try_wait().ok().flatten().is_some() {
                panic!("no round {n} within {PATIENCE:?}; {}", self.explain());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn scrape(&self, path: &str) -> String {
        let agent = SocketAddr::new(IpAddr::V4(recorded::pod_ip(ME)), AGENT_PORT);
        let r = http::get(&self.cluster_ns.name, agent, path).expect("scrape the agent");
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.body
    }

    /// Starts the churn: node status reports at the kubelet's rate, spread evenly, and one
    /// agent pod (never the measured one) replaced every `replace_every`, same addresses.
    fn start_churn(&mut self, c: &Config, replaced: Arc<AtomicUsize>, reports: Arc<AtomicUsize>) {
        let api = Arc::clone(&self.api);
        let stop = Arc::clone(&self.stop_churn);
        let (nodes, every, per_sec) = (
            c.nodes,
            c.replace_every,
            c.nodes as f64 / c.node_report_secs,
        );
        self.churn = Some(std::thread::spawn(move || {
            let t = recorded::templates();
            let node_objects: Vec<_> = (0..nodes)
                .map(|i| recorded::node_from(&t.node, i, false))
                .collect();
            // Current name of each agent pod (replacements rename them).
            let mut names: Vec<String> = (0..nodes).map(recorded::pod_name).collect();
            let t0 = Instant::now();
            let mut next_replace = t0 + every;
            let mut victim = 2; // skips ME
            while !stop.load(Ordering::Relaxed) {
                let due = (t0.elapsed().as_secs_f64() * per_sec) as usize;
                while reports.load(Ordering::Relaxed) < due {
                    let seq = reports.fetch_add(1, Ordering::Relaxed);
                    let n = recorded::heartbeat(&node_objects[seq % nodes], seq);
                    api.put(Kind::Nodes, n);
                }
                if Instant::now() >= next_replace {
                    let k = replaced.fetch_add(1, Ordering::Relaxed);
                    let i = victim % nodes;
                    let new = format!("{}-r{k}", recorded::pod_name(i));
                    recorded::replace_agent_pod(&api, &t.pod, i, &names[i], &new, false);
                    names[i] = new;
                    victim = if victim + 1 >= nodes { 2 } else { victim + 1 };
                    next_replace += every;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }));
    }
}

/// The figures of one size.
#[derive(Debug)]
struct Figures {
    nodes: usize,
    initial: (u64, u64),
    initial_secs: f64,
    window_secs: f64,
    rounds: usize,
    steady_discovery: (u64, u64),
    steady_watch_bytes: u64,
    steady_probe: (u64, u64),
    steady_lists: u64,
    cpu_per_round: f64,
    discovery_cpu_per_min: f64,
    round_cpu_per_round: f64,
    by_thread: BTreeMap<String, f64>,
    first_hwm_kib: u64,
    hwm_kib: u64,
    rss_kib: u64,
    wall: Vec<f64>,
    checks: usize,
    failed: Vec<usize>,
    lines: Vec<usize>,
    /// Size of `/status.json` (the last round, pretty-printed), held in memory.
    status_bytes: usize,
    /// The longest round block of the window, as printed.
    longest: String,
    series: usize,
    replaced: usize,
    reports: usize,
}

fn measure(c: &Config) -> Figures {
    // `BENCH_SCALE_AGENT`: another build to measure (e.g. one with symbols, for perf).
    let binary = std::env::var_os("BENCH_SCALE_AGENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| release_agent(AGENT));
    let t_start = Instant::now();
    let mut b = Bench::start(c, &binary);
    let setup_secs = t_start.elapsed().as_secs_f64();
    let pid = b.agent.id();
    let t0 = Instant::now();
    // The initial sync: what the agent asked until its first round was complete.
    b.wait_rounds(1);
    let initial_secs = t0.elapsed().as_secs_f64();
    let served = b.api.served();
    let initial = sum(&served, |x| x.path != "/livez");
    let first_hwm_kib = sample(pid).hwm_kib;
    println!(
        "{} nodes: set-up {setup_secs:.1} s, first round after {initial_secs:.1} s, {} B in {} requests",
        c.nodes, initial.1, initial.0
    );

    let replaced = Arc::new(AtomicUsize::new(0));
    let reports = Arc::new(AtomicUsize::new(0));
    b.start_churn(c, Arc::clone(&replaced), Arc::clone(&reports));
    // Warm-up: the round in the agent's slot after the first (churn already running).
    b.wait_rounds(2);
    b.api.reset_served();
    let cpu0 = sample(pid);
    let w0 = Instant::now();
    let (replaced0, reports0) = (
        replaced.load(Ordering::Relaxed),
        reports.load(Ordering::Relaxed),
    );
    b.wait_rounds(2 + c.rounds);
    let window_secs = w0.elapsed().as_secs_f64();
    let cpu1 = sample(pid);
    let served = b.api.served();
    let replaced_n = replaced.load(Ordering::Relaxed) - replaced0;
    let reports_n = reports.load(Ordering::Relaxed) - reports0;
    // Steady RSS between rounds: the round that just ended is still publishing its pages.
    std::thread::sleep(c.interval / 2);
    let between = sample(pid);
    let scrape = b.scrape("/prometheus.report");
    let series = status::series_count(&scrape);
    // Kept for a closer look at the series (which families, which labels).
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-scale-{}.prom", c.nodes));
    if let Err(e) = std::fs::write(&kept, &scrape) {
        println!("cannot keep the scrape in {}: {e}", kept.display());
    }
    let status_bytes = b.scrape("/status.json").len();
    let after = sample(pid);

    let stdout = b.stdout();
    let res = results(&stdout);
    let window = &res[2..2 + c.rounds];
    let lines = status::round_line_counts(&stdout);
    let by_thread = cpu1
        .by_thread
        .iter()
        .map(|(k, v)| (k.clone(), v - cpu0.by_thread.get(k).copied().unwrap_or(0.0)))
        .collect();
    let discovery_cpu = cpu1.discovery_cpu - cpu0.discovery_cpu;
    let cpu = cpu1.cpu - cpu0.cpu;
    Figures {
        nodes: c.nodes,
        initial,
        initial_secs,
        window_secs,
        rounds: c.rounds,
        steady_discovery: sum(&served, |x| x.path != "/livez"),
        steady_watch_bytes: sum(&served, |x| x.watch).1,
        steady_probe: sum(&served, |x| x.path == "/livez"),
        steady_lists: sum(&served, |x| !x.watch && x.path != "/livez").0,
        cpu_per_round: cpu / c.rounds as f64,
        discovery_cpu_per_min: discovery_cpu / window_secs * 60.0,
        round_cpu_per_round: (cpu - discovery_cpu) / c.rounds as f64,
        by_thread,
        first_hwm_kib,
        hwm_kib: after.hwm_kib,
        rss_kib: between.rss_kib,
        wall: window.iter().map(|r| r.2).collect(),
        checks: window.first().map_or(0, |r| r.1),
        failed: window.iter().map(|r| r.0).collect(),
        lines: lines
            .get(2..2 + c.rounds)
            .map(<[usize]>::to_vec)
            .unwrap_or_default(),
        longest: longest_block(&stdout, 2, 2 + c.rounds),
        status_bytes,
        series,
        replaced: replaced_n,
        reports: reports_n,
    }
}

/// The longest of round blocks `from..to` (counted from 0) in an agent's stdout.
fn longest_block(stdout: &str, from: usize, to: usize) -> String {
    let mut blocks: Vec<String> = Vec::new();
    for line in stdout.lines() {
        if line.starts_with("Tests running on node: ") {
            blocks.push(String::new());
        }
        if let Some(b) = blocks.last_mut() {
            b.push_str(line);
            b.push('\n');
        }
    }
    blocks
        .get(from..to.min(blocks.len()))
        .and_then(|w| w.iter().max_by_key(|b| b.lines().count()))
        .cloned()
        .unwrap_or_default()
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Steady API cost per agent, at a 1-minute interval: the watch streams as measured (events
/// and bookmarks), one `/livez` probe per minute, and what the watches' restarts at their
/// timeout (30-60 min) cost; returns (bytes per second, discovery requests per hour).
fn steady(f: &Figures) -> (f64, f64) {
    let o = WatchOptions::default();
    let mean_timeout = (o.watch_timeout.0 + o.watch_timeout.1).as_secs_f64() / 2.0;
    // Three watches restart at their timeout; two of them read their Service first.
    let restarts = 5.0 * 3600.0 / mean_timeout;
    let probe_bytes = f.steady_probe.1 as f64 / f.steady_probe.0.max(1) as f64;
    let bytes = f.steady_discovery.1 as f64 / f.window_secs + probe_bytes / 60.0;
    let requests = restarts + f.steady_discovery.0 as f64 / f.window_secs * 3600.0;
    (bytes, requests)
}

fn report(f: &Figures) {
    let (bps, rph) = steady(f);
    let wall = median(&f.wall);
    let max_lines = f.lines.iter().max().copied().unwrap_or(0);
    let mut lines = f.lines.clone();
    lines.sort_unstable();
    println!("\n{} nodes ({} checks a round), {} rounds in {:.0} s, churn: {} node status reports ({:.1}/s), {} agent pods replaced",
        f.nodes, f.checks, f.rounds, f.window_secs, f.reports, f.reports as f64 / f.window_secs, f.replaced);
    println!(
        "  API initial sync: {:.2} MB in {} requests, first round after {:.1} s",
        f.initial.1 as f64 / 1e6,
        f.initial.0,
        f.initial_secs
    );
    println!(
        "  API steady: {:.2} KB/s at a 1-minute interval ({:.2} KB/s of watch streams, {} B per /livez probe), {:.1} discovery requests/h (+60 probes), {} lists, {} discovery requests in the window",
        bps / 1e3,
        f.steady_watch_bytes as f64 / f.window_secs / 1e3,
        f.steady_probe.1 / f.steady_probe.0.max(1),
        rph,
        f.steady_lists,
        f.steady_discovery.0,
    );
    println!(
        "  CPU per round: {:.3} s measured ({:.3} s the round's own threads, discovery {:.3} s per minute); at a 1-minute interval {:.3} s",
        f.cpu_per_round,
        f.round_cpu_per_round,
        f.discovery_cpu_per_min,
        f.round_cpu_per_round + f.discovery_cpu_per_min
    );
    let threads: Vec<String> = f
        .by_thread
        .iter()
        .filter(|(_, v)| **v > 0.0)
        .map(|(k, v)| format!("{k} {v:.2}"))
        .collect();
    println!(
        "  CPU by live thread over the window (s): {}",
        threads.join(", ")
    );
    println!(
        "  RSS: peak {:.1} MiB ({:.1} MiB after the first round), steady {:.1} MiB; /status.json {:.1} MB",
        f.hwm_kib as f64 / 1024.0,
        f.first_hwm_kib as f64 / 1024.0,
        f.rss_kib as f64 / 1024.0,
        f.status_bytes as f64 / 1e6
    );
    println!(
        "  round wall time: median {:.2} s (max {:.2}); failed checks per round {:?}; series {}; log lines per round {:?} (max {max_lines})",
        wall,
        f.wall.iter().copied().fold(0.0, f64::max),
        f.failed,
        f.series,
        lines,
    );
    println!("  the longest round block:\n{}", f.longest);
}

fn table(all: &[Figures]) {
    let old = |n: usize| match n {
        1000 => ("20.1 MB", "0.26-0.28 s", "11.2 MiB"),
        5000 => ("100 MB", "1.2-1.6 s", "38 MiB"),
        _ => ("-", "-", "-"),
    };
    println!("\n| nodes | API initial sync | API steady (1-min interval) | discovery requests/h | CPU per round | peak RSS | steady RSS | round wall | series | log lines, healthy round |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for f in all {
        let (bps, rph) = steady(f);
        let (o_bytes, o_cpu, o_rss) = old(f.nodes);
        let mut lines = f.lines.clone();
        lines.sort_unstable();
        println!(
            "| {} | {:.1} MB, {} requests (0.2.0: {o_bytes} every round) | {:.1} KB/s | {:.1} | {:.3} s (0.2.0: {o_cpu}) | {:.1} MiB (0.2.0: {o_rss}) | {:.1} MiB | {:.2} s | {} | {}-{} |",
            f.nodes,
            f.initial.1 as f64 / 1e6,
            f.initial.0,
            bps / 1e3,
            rph,
            f.round_cpu_per_round + f.discovery_cpu_per_min,
            f.hwm_kib as f64 / 1024.0,
            f.rss_kib as f64 / 1024.0,
            median(&f.wall),
            f.series,
            lines.first().copied().unwrap_or(0),
            lines.last().copied().unwrap_or(0),
        );
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore]
fn scale_rounds() {
    if !need_root("scale_rounds") {
        return;
    }
    let sizes: Vec<usize> = std::env::var("BENCH_SCALE_NODES")
        .unwrap_or_else(|_| "1000,5000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let mut all = Vec::new();
    for &nodes in &sizes {
        let c = Config {
            nodes,
            interval: Duration::from_secs(env_or("BENCH_SCALE_INTERVAL", 10)),
            rounds: env_or("BENCH_SCALE_ROUNDS", 12),
            replace_every: Duration::from_secs(20),
            node_report_secs: 300.0,
            args: &[],
        };
        let f = measure(&c);
        report(&f);
        all.push(f);
    }
    table(&all);
    let _ = std::io::stdout().flush();
}

#[test]
fn scale_smoke() {
    if !need_root("scale_smoke") {
        return;
    }
    // Above the 50-node threshold of the log summary; a pod replaced every 2 s so the churn
    // path runs within the two rounds; node reports at 10/s.
    let c = Config {
        nodes: 60,
        interval: Duration::from_secs(2),
        rounds: 2,
        replace_every: Duration::from_secs(2),
        node_report_secs: 6.0,
        args: &["--timeout", "500ms", "--dns-timeout", "1s"],
    };
    let f = measure(&c);
    report(&f);
    // Sane figures, never timings: the initial sync read 60 nodes and 60 agents once...
    assert!(f.initial.0 >= 4, "initial sync requests {:?}", f.initial);
    assert!(f.initial.1 > 60 * 150, "initial sync bytes {:?}", f.initial);
    // ...then no list, only watch events (the node reports at least) and one probe a round.
    assert_eq!(f.steady_lists, 0, "a list in steady state");
    assert!(f.steady_watch_bytes > 0, "no watch event in the window");
    assert!(f.steady_probe.0 >= 1, "no API probe in {} rounds", f.rounds);
    assert!(f.reports > 0 && f.replaced > 0, "no churn: {f:?}");
    // Every check of the round: two pings per node, the DNS ones, nothing failed that answers
    // (but one: a round reading the members while a pod is mid-replacement, a rare moment).
    assert!(f.checks >= 2 * c.nodes, "{} checks", f.checks);
    assert!(
        f.failed.iter().all(|&n| n <= 1),
        "failed checks per round {:?}",
        f.failed
    );
    assert!(f.cpu_per_round >= 0.0 && f.cpu_per_round < 60.0);
    assert!(f.rss_kib > 0 && f.hwm_kib >= f.rss_kib, "RSS {f:?}");
    assert!((10..=500).contains(&f.series), "{} series", f.series);
    assert_eq!(f.lines.len(), c.rounds, "round blocks {:?}", f.lines);
    assert!(
        f.lines.iter().all(|&l| (4..=150).contains(&l)),
        "log lines {:?}",
        f.lines
    );
    assert!(f.wall.iter().all(|&w| w >= 0.0), "wall {:?}", f.wall);
}
