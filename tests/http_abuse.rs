//! The agent's endpoint under abuse, as a curious or hostile pod would try it: the real agent
//! binary (the release musl build when there is one) doing rounds in a one-node namespace lab,
//! attacked on the loopback of its own pod namespace.
//!
//! The goal test runs every attack at once (500 idle connections, 100 connections sending a
//! header byte a second, bodies announced and never sent, 2,000 connections reset right
//! after their request, 64 MiB header lines, clients pipelining hundreds of scrapes without
//! reading) and holds, throughout: `/livez` and `/prometheus.report` answer within 1 s on a
//! fresh connection every 200 ms, the process lives, its RSS stays under 32 MiB and its HTTP
//! threads stay at one. The other tests are the single requests that ended 0.2.0 (tiny_http).
//!
//! Needs root (namespaces); in CI it must run, and with the release binary (`make test`
//! builds it first).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cluster_box::lab::{Lab, Options, AGENT_PORT, FAST_ROUNDS};
use cluster_box::netns::run_in;
use cluster_box::{http, need_root, Spec};

/// Labs run one at a time: the timing bounds hold on two busy cores, not on four labs at once.
static ONE_LAB: Mutex<()> = Mutex::new(());

const RSS_LIMIT_KIB: u64 = 32 * 1024;
const PROBE_LIMIT: Duration = Duration::from_secs(1);
/// A one-node lab with the agent doing a round every 2 s, and the agent's process.
struct Target {
    lab: Lab,
    /// The agent pod's namespace: attacks and probes run there, on its loopback.
    ns: String,
    pid: u32,
    addr: SocketAddr,
}

fn start() -> Target {
    let lab = Lab::start(Options {
        spec: Spec {
            nodes: 1,
            dns_pods: 1,
            ..Spec::default()
        },
        binary: cluster_box::lab::release_agent(env!("CARGO_BIN_EXE_k8s-network-test-daemonset")),
        agent_args: FAST_ROUNDS.map(String::from).to_vec(),
        prometheus: false,
    });
    let ns = lab.cluster.agents[0].ns.name.clone();
    lab.round_after(0, "", Duration::from_secs(30));
    // `ip netns exec` and `setpriv` exec the agent: the only process in its pod namespace.
    let out = cluster_box::sh(&["ip", "netns", "pids", &ns]);
    let pids: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    assert_eq!(
        pids.len(),
        1,
        "processes in the agent's namespace: {pids:?}"
    );
    raise_fd_limit();
    Target {
        lab,
        ns,
        pid: pids[0],
        addr: SocketAddr::from(([127, 0, 0, 1], AGENT_PORT)),
    }
}

/// The attacks hold about a thousand sockets in this process.
fn raise_fd_limit() {
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

impl Target {
    /// Runs `f` on a new thread inside the agent's pod namespace.
    fn spawn<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
        let ns = self.ns.clone();
        std::thread::spawn(move || run_in(&ns, f))
    }

    /// GETs `path` on a fresh connection (HTTP/1.0); returns the status and how long it took.
    fn probe(&self, path: &str) -> (Result<u16, String>, Duration) {
        let (addr, path) = (self.addr, path.to_string());
        let started = Instant::now();
        let r = self
            .spawn(move || http::get_here(addr, &path).map(|r| r.status))
            .join()
            .unwrap_or_else(|_| Err("probe thread panicked".into()));
        (r, started.elapsed())
    }

    fn alive(&self) -> bool {
        match std::fs::read_to_string(format!("/proc/{}/status", self.pid)) {
            Ok(s) => !s
                .lines()
                .any(|l| l.starts_with("State:") && l.contains("zombie")),
            Err(_) => false,
        }
    }

    fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// (all threads, threads named `http`).
    fn threads(&self) -> (usize, usize) {
        let mut all = 0;
        let mut http = 0;
        if let Ok(rd) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) {
            for task in rd.flatten() {
                all += 1;
                let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
                http += usize::from(comm.trim() == "http");
            }
        }
        (all, http)
    }

    /// The value of one series in a scrape.
    fn scrape_value(&self, series: &str) -> Option<f64> {
        let body = self.lab.agent_get(0, "/prometheus.report").ok()?.body;
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    fn counters(&self) -> String {
        let body = self
            .lab
            .agent_get(0, "/prometheus.report")
            .map(|r| r.body)
            .unwrap_or_default();
        body.lines()
            .filter(|l| l.starts_with("networktest_http_") && !l.ends_with(" 0"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn tcp(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

/// Whether the peer has closed `s` (EOF or an error), without blocking; drops what was sent.
fn peer_closed(s: &mut TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return true;
    }
    let mut buf = [0u8; 4096];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    let _ = s.set_nonblocking(false);
    closed
}

/// Connects, sends `request`, and closes with a reset (SO_LINGER 0).
fn send_and_reset(addr: SocketAddr, request: &[u8]) -> std::io::Result<()> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.connect_timeout(&addr.into(), Duration::from_secs(2))?;
    sock.set_linger(Some(Duration::ZERO))?;
    let mut s: TcpStream = sock.into();
    s.write_all(request)?;
    Ok(())
}

/// Sends a header line that never ends, up to `max` bytes; returns how many the agent took
/// before it stopped reading and closed.
fn endless_header(addr: SocketAddr, max: usize) -> usize {
    let Ok(mut s) = tcp(addr) else { return 0 };
    let _ = s.write_all(b"GET /livez HTTP/1.1\r\nX-Endless: ");
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0;
    while sent < max {
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    sent
}

/// Failure counts of the attackers' own connects: connects must keep completing.
#[derive(Default)]
struct Tally {
    connects: AtomicU64,
    connect_failures: AtomicU64,
}

impl Tally {
    fn connect(&self, addr: SocketAddr) -> Option<TcpStream> {
        self.counted(tcp(addr))
    }

    /// A connection that reads through a 4 KiB receive buffer (set before the handshake, so
    /// the window stays small): a client that never reads stalls the agent's writes quickly.
    fn connect_small_window(&self, addr: SocketAddr) -> Option<TcpStream> {
        let connect = || -> std::io::Result<TcpStream> {
            let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
            sock.set_recv_buffer_size(4096)?;
            sock.connect_timeout(&addr.into(), Duration::from_secs(2))?;
            Ok(sock.into())
        };
        self.counted(connect())
    }

    fn counted(&self, r: std::io::Result<TcpStream>) -> Option<TcpStream> {
        self.connects.fetch_add(1, Ordering::Relaxed);
        match r {
            Ok(s) => Some(s),
            Err(_) => {
                self.connect_failures.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

#[test]
fn every_attack_at_once_leaves_the_endpoint_answering() {
    if !need_root("every_attack_at_once_leaves_the_endpoint_answering") {
        return;
    }
    let _one = ONE_LAB.lock().unwrap_or_else(|p| p.into_inner());
    let t = start();
    let addr = t.addr;
    let seconds: u64 = std::env::var("NETTEST_ABUSE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let attack = Duration::from_secs(seconds);
    let rounds_before = t.scrape_value("networktest_rounds_total").unwrap_or(0.0);
    let rss_before = t.rss_kib();
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut attackers: Vec<(&str, JoinHandle<String>)> = Vec::new();

    // 500 idle connections, replaced as the agent closes them.
    let (st, ta) = (stop.clone(), tally.clone());
    attackers.push((
        "idle",
        t.spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            let mut closed = 0;
            while !st.load(Ordering::Relaxed) {
                let before = held.len();
                held.retain_mut(|s| !peer_closed(s));
                closed += before - held.len();
                while held.len() < 500 && !st.load(Ordering::Relaxed) {
                    match ta.connect(addr) {
                        Some(s) => held.push(s),
                        None => break,
                    }
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            format!("{closed} closed by the agent")
        }),
    ));

    // 100 connections sending one header byte a second.
    let (st, ta) = (stop.clone(), tally.clone());
    attackers.push((
        "slow headers",
        t.spawn(move || {
            let line = b"GET /livez HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
            let mut conns: Vec<(TcpStream, usize)> = Vec::new();
            let (mut bytes, mut replaced) = (0, 0);
            while !st.load(Ordering::Relaxed) {
                let before = conns.len();
                conns.retain_mut(|(s, at)| {
                    let byte = line[*at % line.len()];
                    *at += 1;
                    !peer_closed(s) && s.write_all(&[byte]).is_ok()
                });
                bytes += conns.len();
                replaced += before - conns.len();
                while conns.len() < 100 && !st.load(Ordering::Relaxed) {
                    let Some(mut s) = ta.connect(addr) else { break };
                    if s.write_all(&line[..1]).is_ok() {
                        bytes += 1;
                        conns.push((s, 1));
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            format!("{bytes} bytes sent, {replaced} connections closed by the agent")
        }),
    ));

    // Bodies announced and never sent, on four connections at a time.
    for i in 0..4 {
        let (st, ta) = (stop.clone(), tally.clone());
        attackers.push((
            "huge bodies",
            t.spawn(move || {
                let mut answers = [0u64; 2];
                let mut other = String::new();
                while !st.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                    let Some(mut s) = ta.connect(addr) else {
                        continue;
                    };
                    let req = if i % 2 == 0 {
                        "POST /prometheus.report HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n"
                    } else {
                        "GET /livez HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n"
                    };
                    let _ = s.write_all(req.as_bytes());
                    let mut buf = [0u8; 512];
                    let answer = match s.read(&mut buf) {
                        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
                        Err(e) => e.to_string(),
                    };
                    let is_413 = answer.starts_with("HTTP/1.1 413 ");
                    answers[usize::from(!is_413)] += 1;
                    if !is_413 && other.is_empty() {
                        other = format!(" (the first: {answer:?})");
                    }
                    // Hold the connection, body never sent, until the agent closes it.
                    let _ = s.read(&mut buf);
                }
                format!(
                    "{} answered 413, {} otherwise{other}",
                    answers[0], answers[1]
                )
            }),
        ));
    }

    // 2,000 connections reset right after their request, spread over the attack.
    let st = stop.clone();
    let pace = attack.mul_f64(0.8) / 2000;
    attackers.push((
        "resets",
        t.spawn(move || {
            let mut failed = 0;
            for i in 0..2000u32 {
                if st.load(Ordering::Relaxed) {
                    return format!("stopped after {i}, {failed} failed");
                }
                let req: &[u8] = if i % 2 == 0 {
                    b"GET /prometheus.report HTTP/1.1\r\nHost: x\r\n\r\n"
                } else {
                    b"GET /livez HTTP/1.0\r\n\r\n"
                };
                failed += u32::from(send_and_reset(addr, req).is_err());
                std::thread::sleep(pace);
            }
            format!("2000 sent, {failed} failed")
        }),
    ));

    // 64 MiB header lines, one after another.
    let st = stop.clone();
    attackers.push((
        "64 MiB header line",
        t.spawn(move || {
            let (mut tries, mut most) = (0, 0);
            while !st.load(Ordering::Relaxed) {
                most = most.max(endless_header(addr, 64 << 20));
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            format!("{tries} tries, at most {most} bytes of one sent before the agent closed it")
        }),
    ));

    // Ten clients pipelining hundreds of scrapes and never reading.
    let (st, ta) = (stop.clone(), tally.clone());
    attackers.push((
        "pipelining non-readers",
        t.spawn(move || {
            let burst = b"GET /prometheus.report HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000);
            let mut conns: Vec<TcpStream> = Vec::new();
            let mut dropped = 0;
            while !st.load(Ordering::Relaxed) {
                let before = conns.len();
                // The agent closed a connection when a write to it fails (a full buffer
                // only means the agent is not reading, which is the point).
                conns.retain_mut(|s| {
                    let _ = s.set_write_timeout(Some(Duration::from_millis(50)));
                    match s.write_all(b"GET /livez HTTP/1.1\r\n\r\n") {
                        Ok(_) => true,
                        Err(e) => matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
                    }
                });
                dropped += before - conns.len();
                while conns.len() < 10 && !st.load(Ordering::Relaxed) {
                    let Some(mut s) = ta.connect_small_window(addr) else {
                        break;
                    };
                    let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
                    let _ = s.write_all(&burst);
                    conns.push(s);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            format!("{dropped} connections closed by the agent")
        }),
    ));

    // Throughout: probes on fresh connections, and the process's figures.
    let started = Instant::now();
    let (mut worst, mut probes, mut failures) = (Duration::ZERO, 0, Vec::new());
    let (mut max_rss, mut max_threads, mut http_threads_seen) = (0, 0, Vec::new());
    while started.elapsed() < attack {
        for path in ["/livez", "/prometheus.report"] {
            let (r, took) = t.probe(path);
            probes += 1;
            worst = worst.max(took);
            if r != Ok(200) || took > PROBE_LIMIT {
                failures.push(format!(
                    "{:.1}s {path}: {r:?} in {took:?}",
                    started.elapsed().as_secs_f64()
                ));
            }
        }
        assert!(
            t.alive(),
            "the agent exited; its log:\n{}",
            t.lab.agent_log(0)
        );
        max_rss = max_rss.max(t.rss_kib());
        let (all, http) = t.threads();
        max_threads = max_threads.max(all);
        if !http_threads_seen.contains(&http) {
            http_threads_seen.push(http);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    let reports: Vec<String> = attackers
        .into_iter()
        .map(|(name, h)| format!("{name}: {}", h.join().unwrap_or_else(|_| "panicked".into())))
        .collect();
    let rounds = t.scrape_value("networktest_rounds_total").unwrap_or(0.0) - rounds_before;

    println!("attacks for {attack:?}:\n  {}", reports.join("\n  "));
    println!(
        "attackers' connects: {} made, {} failed",
        tally.connects.load(Ordering::Relaxed),
        tally.connect_failures.load(Ordering::Relaxed)
    );
    println!(
        "probes: {probes}, worst {worst:?}, {} failed; RSS {rss_before} KiB before, max {max_rss} KiB; \
         threads max {max_threads}, http threads seen {http_threads_seen:?}; rounds during the attack {rounds}",
        failures.len()
    );
    println!("agent counters:\n{}", t.counters());

    assert!(t.alive(), "the agent exited");
    assert!(
        failures.is_empty(),
        "probes failed:\n{}",
        failures.join("\n")
    );
    assert!(max_rss < RSS_LIMIT_KIB, "RSS reached {max_rss} KiB");
    assert_eq!(http_threads_seen, [1], "http threads");
    assert_eq!(
        tally.connect_failures.load(Ordering::Relaxed),
        0,
        "connects to the port failed under attack"
    );
    assert!(
        rounds >= (seconds / 4) as f64,
        "only {rounds} rounds in {attack:?}: the attack slowed the agent's rounds"
    );
}

#[test]
fn content_length_2_pow_64_minus_1_gets_413_and_the_agent_lives() {
    if !need_root("content_length_2_pow_64_minus_1_gets_413_and_the_agent_lives") {
        return;
    }
    let _one = ONE_LAB.lock().unwrap_or_else(|p| p.into_inner());
    let t = start();
    let addr = t.addr;
    let answer = t
        .spawn(move || {
            let mut s = tcp(addr).unwrap();
            s.write_all(b"GET /livez HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n")
                .unwrap();
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
            String::from_utf8_lossy(&out).into_owned()
        })
        .join()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(t.alive());
    assert_eq!(t.probe("/livez").0, Ok(200));
}

#[test]
fn fifteen_hundred_connect_request_resets_leave_the_agent_standing() {
    if !need_root("fifteen_hundred_connect_request_resets_leave_the_agent_standing") {
        return;
    }
    let _one = ONE_LAB.lock().unwrap_or_else(|p| p.into_inner());
    let t = start();
    let addr = t.addr;
    let failed = t
        .spawn(move || {
            (0..1500)
                .filter(|_| send_and_reset(addr, b"GET /livez HTTP/1.1\r\n\r\n").is_err())
                .count()
        })
        .join()
        .unwrap();
    assert_eq!(failed, 0, "connects failed");
    assert!(
        t.alive(),
        "the agent exited; its log:\n{}",
        t.lab.agent_log(0)
    );
    assert_eq!(t.probe("/livez").0, Ok(200));
    println!("agent counters:\n{}", t.counters());
}

#[test]
fn four_announced_1_gb_bodies_do_not_block_livez() {
    if !need_root("four_announced_1_gb_bodies_do_not_block_livez") {
        return;
    }
    let _one = ONE_LAB.lock().unwrap_or_else(|p| p.into_inner());
    let t = start();
    let addr = t.addr;
    let held = t
        .spawn(move || {
            (0..4)
                .map(|_| {
                    let mut s = tcp(addr).unwrap();
                    s.write_all(b"POST /livez HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n")
                        .unwrap();
                    s
                })
                .collect::<Vec<_>>()
        })
        .join()
        .unwrap();
    for path in ["/livez", "/prometheus.report"] {
        let (r, took) = t.probe(path);
        assert_eq!(r, Ok(200), "{path}");
        assert!(took < PROBE_LIMIT, "{path} took {took:?}");
    }
    for mut s in held {
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 413 "));
    }
}

#[test]
fn a_never_ending_header_line_does_not_grow_memory() {
    if !need_root("a_never_ending_header_line_does_not_grow_memory") {
        return;
    }
    let _one = ONE_LAB.lock().unwrap_or_else(|p| p.into_inner());
    let t = start();
    let addr = t.addr;
    let before = t.rss_kib();
    let taken = t
        .spawn(move || endless_header(addr, 64 << 20))
        .join()
        .unwrap();
    let after = t.rss_kib();
    println!(
        "{taken} bytes of a 64 MiB header line sent before the agent closed it; RSS {before} -> {after} KiB"
    );
    assert!(taken < 16 << 20, "the agent kept reading: {taken} bytes");
    assert!(
        after < before + 4096,
        "RSS grew from {before} to {after} KiB"
    );
    assert!(t.alive());
    assert_eq!(t.probe("/livez").0, Ok(200));
}
