//! The ICMP prober on real sockets in network namespaces created here: live, silently dropped
//! and unreachable targets on IPv4 and IPv6, through ping sockets and raw sockets, with another
//! pinger running at the same time, late replies, thousands of targets in one round, and the
//! `ping` subcommand's output and exit codes.
//!
//! Addresses: 198.18.16.0/20 and 2001:db8:16::/48 only.
mod common;
use common::*;

use std::net::IpAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_network_test_daemonset::icmp::Family;
use k8s_network_test_daemonset::icmp::Kind;
use k8s_network_test_daemonset::icmp::{PingResult, ProbeOptions, Prober, SocketKind};
use k8s_network_test_daemonset::report::Reason;

const LIVE4: &str = "198.18.16.2";
const LIVE6: &str = "2001:db8:16::2";
/// Held by the peer, but its firewall drops ICMP to it: silent.
const DROP4: &str = "198.18.16.3";
const DROP6: &str = "2001:db8:16::3";
/// Routed to the peer, which answers with an ICMP error (an `unreachable` route).
const UNREACH4: &str = "198.18.17.5";
const UNREACH6: &str = "2001:db8:16:17::5";

/// Prober namespace `p` and peer `q` on one veth; `p` routes everything via `q`.
struct Net {
    p: Netns,
    q: Netns,
}

fn net(tag: &str, forwarding: bool) -> Net {
    let p = Netns::new(&format!("{tag}p"));
    let q = Netns::new(&format!("{tag}q"));
    veth(
        &p,
        "pa",
        &["198.18.16.1/24", "2001:db8:16::1/64"],
        &q,
        "qb",
        &[
            "198.18.16.2/24",
            "2001:db8:16::2/64",
            "198.18.16.3/32",
            "2001:db8:16::3/128",
        ],
    );
    p.ip(&["route", "add", "default", "via", "198.18.16.2"]);
    p.ip(&["-6", "route", "add", "default", "via", "2001:db8:16::2"]);
    p.exec(&["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"]);
    q.exec(&[
        "iptables", "-A", "INPUT", "-d", DROP4, "-p", "icmp", "-j", "DROP",
    ]);
    q.exec(&[
        "ip6tables",
        "-A",
        "INPUT",
        "-d",
        DROP6,
        "-p",
        "ipv6-icmp",
        "-j",
        "DROP",
    ]);
    if forwarding {
        q.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        q.exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
        q.ip(&["route", "add", "unreachable", "198.18.17.0/24"]);
        q.ip(&["-6", "route", "add", "unreachable", "2001:db8:16:17::/64"]);
    }
    // IPv6 on a fresh veth is usable only once the kernel has processed the carrier change
    // (up to a second later); wait for it so tests see the prober, not link set-up.
    p.exec(&["fping", "-q", "-r", "20", "-t", "200", LIVE6]);
    Net { p, q }
}

fn probe_in(
    ns: &Netns,
    opts: ProbeOptions,
    rounds: usize,
    targets: Vec<IpAddr>,
) -> Vec<Vec<PingResult>> {
    ns.run(move || {
        let prober = Prober::open(&opts).expect("open prober");
        let want = match opts.kind {
            SocketKind::Raw => Some(Kind::Raw),
            SocketKind::Datagram => Some(Kind::Datagram),
            SocketKind::Auto => None,
        };
        if let Some(k) = want {
            assert_eq!(prober.kind(Family::V4), Some(k));
            assert_eq!(prober.kind(Family::V6), Some(k));
        }
        let results: Vec<Vec<PingResult>> = (0..rounds).map(|_| prober.probe(&targets)).collect();
        // Every caller loops over the results: first, there is one per target, in order.
        for (i, round) in results.iter().enumerate() {
            let got: Vec<IpAddr> = round.iter().map(|r| r.target).collect();
            assert_eq!(got, targets, "round {i}: one result per target");
        }
        results
    })
}

fn opts(kind: SocketKind) -> ProbeOptions {
    ProbeOptions {
        kind,
        timeout: Duration::from_millis(700),
        ..Default::default()
    }
}

fn check_classic(results: &[PingResult], unreachable_has_error: bool) {
    let by = |a: &str| {
        results
            .iter()
            .find(|r| r.target == ip(a))
            .unwrap_or_else(|| panic!("no result for {a}"))
    };
    for a in [LIVE4, LIVE6] {
        let r = by(a);
        assert!(r.ok(), "{a} should be alive: {r:?}");
        assert_eq!((&r.error, r.reason), (&None, None));
        assert!(r.rtts[0] < Duration::from_millis(700), "{r:?}");
    }
    for a in [DROP4, DROP6] {
        let r = by(a);
        assert!(!r.ok(), "{a} is dropped and must not be alive: {r:?}");
        assert!(
            r.error.as_deref().unwrap_or("").contains("no reply"),
            "{r:?}"
        );
        assert_eq!(r.reason, Some(Reason::Timeout), "{r:?}");
    }
    for a in [UNREACH4, UNREACH6] {
        let r = by(a);
        assert!(!r.ok(), "{a} is unreachable and must not be alive: {r:?}");
        if unreachable_has_error {
            let e = r.error.as_deref().unwrap_or("");
            assert!(
                e.contains("unreachable") || e.contains("no route"),
                "{a}: want an icmp error, got {r:?}"
            );
            assert_eq!(r.reason, Some(Reason::Unreachable), "{r:?}");
        }
    }
}

fn classic_targets() -> Vec<IpAddr> {
    [LIVE4, DROP4, UNREACH4, LIVE6, DROP6, UNREACH6]
        .iter()
        .map(|a| ip(a))
        .collect()
}

fn live_dead_unreachable(kind: SocketKind, tag: &str) {
    let n = net(tag, true);
    let rounds = probe_in(&n.p, opts(kind), 2, classic_targets());
    for r in &rounds {
        assert_eq!(r.len(), classic_targets().len());
        check_classic(r, true);
    }
    drop(n.q);
}

#[test]
fn datagram_socket_live_dead_unreachable_v4_v6() {
    if !need_root("datagram_socket_live_dead_unreachable_v4_v6") {
        return;
    }
    live_dead_unreachable(SocketKind::Datagram, "dg");
}

#[test]
fn raw_socket_live_dead_unreachable_v4_v6() {
    if !need_root("raw_socket_live_dead_unreachable_v4_v6") {
        return;
    }
    live_dead_unreachable(SocketKind::Raw, "rw");
}

#[test]
fn auto_prefers_ping_socket_and_falls_back_to_raw() {
    if !need_root("auto_prefers_ping_socket_and_falls_back_to_raw") {
        return;
    }
    let n = net("au", false);
    let kinds = n.p.run(|| {
        let p = Prober::open(&ProbeOptions::default()).expect("open");
        (p.kind(Family::V4), p.kind(Family::V6))
    });
    assert_eq!(kinds, (Some(Kind::Datagram), Some(Kind::Datagram)));
    let line = n.p.run(|| {
        Prober::open(&ProbeOptions::default())
            .expect("open")
            .describe()
    });
    assert!(line.starts_with("ipv4 ping socket (id "), "{line}");
    assert!(line.contains("; ipv6 ping socket"), "{line}");
    n.p.exec(&["sysctl", "-qw", "net.ipv4.ping_group_range=1 0"]);
    let kinds = n.p.run(|| {
        let p = Prober::open(&ProbeOptions::default()).expect("open");
        let r = p.probe(&[ip(LIVE4), ip(LIVE6)]);
        assert!(r.iter().all(PingResult::ok), "{r:?}");
        (p.kind(Family::V4), p.kind(Family::V6))
    });
    assert_eq!(kinds, (Some(Kind::Raw), Some(Kind::Raw)));
}

#[test]
fn another_pinger_on_the_same_targets_does_not_confuse_matching() {
    if !need_root("another_pinger_on_the_same_targets_does_not_confuse_matching") {
        return;
    }
    let n = net("fp", true);
    let mut fping =
        n.p.command("fping")
            .args(["-l", "-q", "-p", "20", "-t", "500"])
            .args([LIVE4, DROP4, UNREACH4, LIVE6, DROP6, UNREACH6])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn fping");
    std::thread::sleep(Duration::from_millis(200));
    for kind in [SocketKind::Raw, SocketKind::Datagram] {
        for r in probe_in(&n.p, opts(kind), 3, classic_targets()) {
            // fping's own errors use up the peer's ICMP error rate limit: only "not alive".
            check_classic(&r, false);
        }
    }
    let _ = fping.kill();
    let _ = fping.wait();
}

/// How the test responder answers echo requests.
#[derive(Clone, Copy)]
struct Answer {
    delay: Duration,
    copies: u32,
    /// Source to answer from (IPv4, IPv6). The peer holds several addresses, so the source
    /// is pinned: LIVE4/LIVE6 for honest answers, another address for wrong-source ones.
    from: (IpAddr, IpAddr),
}

/// An echo responder in `ns` that replaces the kernel's (echo_ignore_all is set there):
/// answers late, several times, or from the wrong address. Runs until `stop` is set.
fn responder(ns: &Netns, answer: Answer, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    ns.exec(&["sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1"]);
    ns.exec(&["sysctl", "-qw", "net.ipv6.icmp.echo_ignore_all=1"]);
    let path = format!("/var/run/netns/{}", ns.name);
    let file = std::fs::File::open(&path).expect("open netns");
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        let mut workers = Vec::new();
        for v6 in [false, true] {
            let stop = stop.clone();
            let ready = ready_tx.clone();
            workers.push(std::thread::spawn(move || serve(v6, answer, stop, ready)));
        }
        for w in workers {
            w.join().expect("responder thread");
        }
    });
    // Both sockets open before the first request is sent.
    for _ in 0..2 {
        ready
            .recv_timeout(Duration::from_secs(10))
            .expect("responder ready");
    }
    handle
}

fn serve(v6: bool, answer: Answer, stop: Arc<AtomicBool>, ready: std::sync::mpsc::Sender<()>) {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    use std::mem::MaybeUninit;
    let (domain, proto) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    let rx = Socket::new(domain, Type::RAW, Some(proto)).expect("raw socket");
    rx.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let tx = Socket::new(domain, Type::RAW, Some(proto)).expect("raw socket");
    let a = if v6 { answer.from.1 } else { answer.from.0 };
    tx.bind(&std::net::SocketAddr::new(a, 0).into())
        .expect("bind");
    let tx = Arc::new(tx);
    let _ = ready.send(());
    let mut buf = [MaybeUninit::<u8>::uninit(); 70_000];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = rx.recv_from(&mut buf) else {
            continue;
        };
        let data: Vec<u8> = buf[..n]
            .iter()
            .map(|b| unsafe { b.assume_init() })
            .collect();
        let mut icmp = if v6 {
            data
        } else {
            let ihl = usize::from(data[0] & 0x0f) * 4;
            data[ihl..].to_vec()
        };
        let request = if v6 { 128 } else { 8 };
        if icmp.len() < 8 || icmp[0] != request {
            continue;
        }
        icmp[0] = if v6 { 129 } else { 0 };
        icmp[2] = 0;
        icmp[3] = 0;
        if !v6 {
            let c = k8s_network_test_daemonset::icmp::checksum(&icmp);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
        }
        let to: SockAddr = from;
        let tx = tx.clone();
        std::thread::spawn(move || {
            std::thread::sleep(answer.delay);
            for _ in 0..answer.copies {
                let _ = tx.send_to(&icmp, &to);
            }
        });
    }
}

#[test]
fn late_replies_from_an_earlier_round_never_count() {
    if !need_root("late_replies_from_an_earlier_round_never_count") {
        return;
    }
    let n = net("lt", false);
    let stop = Arc::new(AtomicBool::new(false));
    let answer = Answer {
        delay: Duration::from_millis(1300),
        copies: 1,
        from: (ip(LIVE4), ip(LIVE6)),
    };
    let resp = responder(&n.q, answer, stop.clone());
    let targets = vec![ip(LIVE4), ip(LIVE6)];
    for kind in [SocketKind::Datagram, SocketKind::Raw] {
        let t = targets.clone();
        let (rounds, patient) = n.p.run(move || {
            let short = Prober::open(&ProbeOptions {
                timeout: Duration::from_secs(1),
                kind,
                ..Default::default()
            })
            .expect("open");
            // Round 2 starts about 1 s in; round 1's replies land about 0.3 s into it.
            let rounds: Vec<_> = (0..3).map(|_| short.probe(&t)).collect();
            let long = Prober::open(&ProbeOptions {
                timeout: Duration::from_secs(3),
                kind,
                ..Default::default()
            })
            .expect("open");
            (rounds, long.probe(&t))
        });
        for (i, r) in rounds.iter().enumerate() {
            for x in r {
                assert!(!x.ok(), "{kind:?} round {i}: late reply counted: {x:?}");
            }
        }
        assert!(
            patient.iter().all(PingResult::ok),
            "{kind:?} with 3s timeout: {patient:?}"
        );
        assert!(
            patient[0].rtts[0] >= Duration::from_millis(1200),
            "{patient:?}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    resp.join().expect("responder");
}

#[test]
fn duplicate_replies_count_once_and_wrong_source_never() {
    if !need_root("duplicate_replies_count_once_and_wrong_source_never") {
        return;
    }
    let n = net("du", false);
    n.q.ip(&["addr", "add", "198.18.16.4/32", "dev", "qb"]);
    n.q.ip(&["addr", "add", "2001:db8:16::4/128", "dev", "qb", "nodad"]);
    let targets = vec![ip(LIVE4), ip(LIVE6)];
    let stop = Arc::new(AtomicBool::new(false));
    let dup = Answer {
        delay: Duration::ZERO,
        copies: 3,
        from: (ip(LIVE4), ip(LIVE6)),
    };
    let resp = responder(&n.q, dup, stop.clone());
    for kind in [SocketKind::Datagram, SocketKind::Raw] {
        let o = ProbeOptions {
            count: 3,
            interval: Duration::from_millis(20),
            kind,
            ..opts(kind)
        };
        for x in probe_in(&n.p, o, 1, targets.clone()).remove(0) {
            assert_eq!((x.sent, x.received), (3, 3), "{kind:?}: {x:?}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    resp.join().expect("responder");

    let stop = Arc::new(AtomicBool::new(false));
    let wrong = Answer {
        delay: Duration::ZERO,
        copies: 1,
        from: (ip("198.18.16.4"), ip("2001:db8:16::4")),
    };
    let resp = responder(&n.q, wrong, stop.clone());
    for kind in [SocketKind::Datagram, SocketKind::Raw] {
        for x in probe_in(&n.p, opts(kind), 2, targets.clone()).concat() {
            assert!(
                !x.ok(),
                "{kind:?}: reply from the wrong source counted: {x:?}"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    resp.join().expect("responder");
}

#[test]
fn count_gives_loss_ratio_and_min_avg_max() {
    if !need_root("count_gives_loss_ratio_and_min_avg_max") {
        return;
    }
    let n = net("ct", false);
    let r = probe_in(
        &n.p,
        ProbeOptions {
            count: 4,
            interval: Duration::from_millis(20),
            size: 1000,
            timeout: Duration::from_millis(500),
            kind: SocketKind::Datagram,
        },
        1,
        vec![ip(LIVE4), ip(DROP4), ip(LIVE6), ip(LIVE4)],
    )
    .remove(0);
    for i in [0, 2, 3] {
        assert_eq!((r[i].sent, r[i].received), (4, 4), "{:?}", r[i]);
        assert_eq!(r[i].loss_ratio(), 0.0);
        assert!(r[i].rtt_min() <= r[i].rtt_avg() && r[i].rtt_avg() <= r[i].rtt_max());
    }
    assert_eq!((r[1].sent, r[1].received), (4, 0));
    assert_eq!(r[1].loss_ratio(), 1.0);
}

#[test]
fn thousands_of_targets_in_one_round_without_false_loss() {
    if !need_root("thousands_of_targets_in_one_round_without_false_loss") {
        return;
    }
    let n = net("bg", false);
    // The peer answers for a whole /21 and a /117 through local routes; forwarding is off, so
    // everything else routed to it is dropped silently.
    n.q.ip(&["route", "add", "local", "198.18.24.0/21", "dev", "lo"]);
    n.q.ip(&[
        "-6",
        "route",
        "add",
        "local",
        "2001:db8:16:24::/117",
        "dev",
        "lo",
    ]);
    let mut live: Vec<IpAddr> = (0..2048u32)
        .map(|i| IpAddr::V4((u32::from(std::net::Ipv4Addr::new(198, 18, 24, 0)) + i).into()))
        .collect();
    live.extend((0..2048u16).map(|i| ip(&format!("2001:db8:16:24::{i:x}"))));
    let mut dead: Vec<IpAddr> = (1..=100u8).map(|i| ip(&format!("198.18.20.{i}"))).collect();
    dead.extend((1..=100u16).map(|i| ip(&format!("2001:db8:16:20::{i:x}"))));
    let mut targets = live.clone();
    targets.extend(&dead);
    for kind in [SocketKind::Datagram, SocketKind::Raw] {
        let t = targets.clone();
        let started = Instant::now();
        let rounds = probe_in(
            &n.p,
            ProbeOptions {
                kind,
                ..Default::default()
            },
            2,
            t,
        );
        let took = started.elapsed();
        for r in &rounds {
            assert_eq!(r.len(), targets.len());
            let lost: Vec<_> = r[..live.len()].iter().filter(|x| !x.ok()).collect();
            assert!(
                lost.is_empty(),
                "{kind:?}: {} live targets lost, e.g. {:?}",
                lost.len(),
                lost.first()
            );
            assert!(
                r[live.len()..].iter().all(|x| !x.ok()),
                "{kind:?}: a dead target answered"
            );
            for (x, want) in r.iter().zip(&targets) {
                assert_eq!(x.target, *want, "results in target order");
            }
        }
        // Generous sanity bound only: two rounds of 1 s timeout each.
        assert!(took < Duration::from_secs(20), "{kind:?}: {took:?}");
    }
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_k8s-network-test-daemonset")
}

#[test]
fn ping_subcommand_prints_lines_and_exit_codes() {
    if !need_root("ping_subcommand_prints_lines_and_exit_codes") {
        return;
    }
    let n = net("cl", false);
    let run = |args: &[&str]| {
        let out =
            n.p.command(bin())
                .arg("ping")
                .args(args)
                .output()
                .expect("run ping");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, _) = run(&["--timeout", "500ms", LIVE4, LIVE6]);
    assert_eq!(code, Some(0), "{out}");
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(LIVE4) && lines[0].contains("1/1 received, rtt "),
        "{out}"
    );
    assert!(lines[1].starts_with(LIVE6), "{out}");

    let (code, out, _) = run(&[
        "--timeout=300ms",
        "--count",
        "2",
        "--interval",
        "10ms",
        LIVE4,
        DROP4,
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.lines()
            .nth(1)
            .unwrap_or("")
            .contains("0/2 received, 100.0% loss, no reply within 300ms"),
        "{out}"
    );

    let (code, _, err) = run(&["--count", "zero", LIVE4]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--count"), "{err}");

    // Not root, no capabilities: the ping socket (ping_group_range covers every group).
    let out =
        n.p.command("setpriv")
            .args([
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                bin(),
                "ping",
                LIVE4,
                LIVE6,
            ])
            .output()
            .expect("run setpriv");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.lines().count(), 2, "{text}");

    // No rights at all: not root, and the group outside ping_group_range.
    n.p.exec(&["sysctl", "-qw", "net.ipv4.ping_group_range=1 0"]);
    let out =
        n.p.command("setpriv")
            .args([
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                bin(),
                "ping",
                LIVE4,
            ])
            .output()
            .expect("run setpriv");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("net.ipv4.ping_group_range") && err.contains("NET_RAW"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn unroutable_target_fails_alone_with_send_error() {
    if !need_root("unroutable_target_fails_alone_with_send_error") {
        return;
    }
    let n = net("n6", false);
    // Without an IPv6 route the send fails at once; IPv4 targets are unaffected.
    n.p.ip(&["-6", "route", "del", "default"]);
    let r = probe_in(
        &n.p,
        opts(SocketKind::Datagram),
        1,
        vec![ip(LIVE4), ip("2001:db8:16:99::1")],
    )
    .remove(0);
    assert!(r[0].ok(), "{r:?}");
    assert!(!r[1].ok());
    assert!(
        r[1].error
            .as_deref()
            .unwrap_or("")
            .starts_with("send failed: "),
        "{r:?}"
    );
    assert_eq!(r[1].reason, Some(Reason::Unreachable), "{r:?}");
}

#[test]
fn concurrent_probe_calls_share_one_prober_correctly() {
    if !need_root("concurrent_probe_calls_share_one_prober_correctly") {
        return;
    }
    let n = net("cc", false);
    n.p.run(|| {
        let prober = Arc::new(Prober::open(&opts(SocketKind::Auto)).expect("open"));
        let workers: Vec<_> = (0..3)
            .map(|i| {
                let p = prober.clone();
                std::thread::spawn(move || {
                    let t = if i % 2 == 0 {
                        vec![ip(LIVE4), ip(DROP6)]
                    } else {
                        vec![ip(DROP4), ip(LIVE6)]
                    };
                    (i, p.probe(&t))
                })
            })
            .collect();
        for w in workers {
            let (i, r) = w.join().expect("probe thread");
            let alive: Vec<bool> = r.iter().map(PingResult::ok).collect();
            let want = if i % 2 == 0 {
                vec![true, false]
            } else {
                vec![false, true]
            };
            assert_eq!(alive, want, "thread {i}: {r:?}");
        }
    });
}

/// A socket reports an ICMP error queued for one target on its next send, whatever that
/// send's destination: a healthy target sent right after an unreachable one must not fail.
#[test]
fn icmp_errors_for_one_target_never_fail_the_next() {
    if !need_root("icmp_errors_for_one_target_never_fail_the_next") {
        return;
    }
    let n = net("ie", true);
    n.q.ip(&["route", "add", "local", "198.18.24.0/24", "dev", "lo"]);
    let mut targets = Vec::new();
    for i in 0..50u8 {
        targets.push(IpAddr::from([198, 18, 17, i + 1]));
        for j in 0..4u8 {
            targets.push(IpAddr::from([198, 18, 24, i * 4 + j + 1]));
        }
    }
    for kind in [SocketKind::Datagram, SocketKind::Raw] {
        let rounds = probe_in(&n.p, opts(kind), 3, targets.clone());
        for results in &rounds {
            for r in results {
                let live = matches!(r.target, IpAddr::V4(a) if a.octets()[2] == 24);
                assert_eq!(r.ok(), live, "{kind:?}: {r:?}");
            }
        }
    }
}
