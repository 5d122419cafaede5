//! The ICMP prober under hostile traffic, on real sockets in network namespaces created here:
//! a peer that answers our requests late and honestly while it forges near misses (another
//! source, sequence, marker or length), copies, late replies and ICMP errors for other flows;
//! floods with our identifier; another process flooding the same targets; sends that the kernel
//! refuses. Every case asserts that no dead target is reported alive, that live targets pass with
//! the RTT of their real (delayed) answer, never a forged one, and that rounds end by their
//! deadline.
//!
//! Topology: the prober in namespace `p` (198.18.16.1, 2001:db8:16::1), the peer `q` on one
//! veth. `q` holds the live addresses (198.18.16.2 and 198.18.24.0/24; 2001:db8:16::2 and
//! 2001:db8:16:24::/120), with the kernel's echo replies off: a user-space responder answers
//! them after `DELAY`. "Dead" addresses are routed to `q` and never answered: 198.18.16.3 and
//! 2001:db8:16::3 (held by `q`), 198.18.20.0/24 and 2001:db8:16:20::/120 (blackholed by `q`,
//! silently). The forger watches `q`'s interface, so it sees requests to dead addresses too.
mod common;
use common::*;

use std::net::IpAddr;
use std::process::Stdio;
use std::sync::{mpsc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use cluster_box::icmp_forge::{self, echo_reply, unreachable, Flood, Forged, Forger, Request};
use k8s_network_test_daemonset::icmp::Family;
use k8s_network_test_daemonset::icmp::Kind;
use k8s_network_test_daemonset::icmp::{PingResult, ProbeOptions, Prober, SocketKind};
use k8s_network_test_daemonset::report::Reason;

const PROBER4: &str = "198.18.16.1";
const PROBER6: &str = "2001:db8:16::1";
const LIVE4: &str = "198.18.16.2";
const LIVE6: &str = "2001:db8:16::2";
const DEAD4: &str = "198.18.16.3";
const DEAD6: &str = "2001:db8:16::3";
/// Probed by no one: the source of replies "from the wrong address".
const OTHER4: &str = "198.18.16.9";
const OTHER6: &str = "2001:db8:16::9";

/// How late the honest responder answers. Forgeries go out at once, so a forged reply that
/// counted would show an RTT well under this.
const DELAY: Duration = Duration::from_millis(120);
/// A live target's RTT is at least this (kernel stamps; the responder never answers early).
const MIN_RTT: Duration = Duration::from_millis(110);
const TIMEOUT: Duration = Duration::from_millis(500);
/// How far past its deadline a round may end on two busy cores: the design bound is the
/// timeout plus a few milliseconds (BENCHMARKS.md), this leaves room for a loaded machine.
const SLACK: Duration = Duration::from_millis(250);

/// The flood test runs alone: the other tests' forgers and floods would share the two cores
/// with it and starve its flooder (not the prober), so the flood could not keep our queue full.
/// The other tests run together.
static CPU: RwLock<()> = RwLock::new(());

fn cpu_shared() -> RwLockReadGuard<'static, ()> {
    CPU.read().unwrap_or_else(PoisonError::into_inner)
}

fn cpu_alone() -> RwLockWriteGuard<'static, ()> {
    CPU.write().unwrap_or_else(PoisonError::into_inner)
}

fn live(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => a == ip(LIVE4) || v.octets()[..3] == [198, 18, 24],
        IpAddr::V6(v) => a == ip(LIVE6) || v.segments()[..4] == [0x2001, 0xdb8, 0x16, 0x24],
    }
}

/// Live and dead targets of both families: the two named pairs and a few from each block.
fn targets() -> Vec<IpAddr> {
    let mut t = vec![ip(LIVE4), ip(DEAD4), ip(LIVE6), ip(DEAD6)];
    for i in 1..=6u8 {
        t.push(ip(&format!("198.18.24.{i}")));
        t.push(ip(&format!("198.18.20.{i}")));
        t.push(ip(&format!("2001:db8:16:24::{i}")));
        t.push(ip(&format!("2001:db8:16:20::{i}")));
    }
    t
}

struct Lab {
    p: Netns,
    q: Netns,
}

fn lab(tag: &str) -> Lab {
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
    p.ip(&["route", "add", "default", "via", LIVE4]);
    p.ip(&["-6", "route", "add", "default", "via", LIVE6]);
    p.exec(&["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"]);
    q.ip(&["route", "add", "local", "198.18.24.0/24", "dev", "lo"]);
    q.ip(&[
        "-6",
        "route",
        "add",
        "local",
        "2001:db8:16:24::/120",
        "dev",
        "lo",
    ]);
    // Silent, not "network unreachable": only forged errors may come back for these.
    q.ip(&["route", "add", "blackhole", "198.18.20.0/24"]);
    q.ip(&["-6", "route", "add", "blackhole", "2001:db8:16:20::/120"]);
    // IPv6 on a fresh veth works only once the kernel has seen the carrier (up to a second).
    p.exec(&["fping", "-q", "-r", "20", "-t", "200", LIVE6]);
    q.exec(&["sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1"]);
    q.exec(&["sysctl", "-qw", "net.ipv6.icmp.echo_ignore_all=1"]);
    Lab { p, q }
}

fn opts(kind: SocketKind) -> ProbeOptions {
    ProbeOptions {
        kind,
        timeout: TIMEOUT,
        ..Default::default()
    }
}

/// The honest answer for live targets after `DELAY`, plus whatever `extra` adds for every
/// request (live or dead).
fn forger(lab: &Lab, extra: impl Fn(&Request) -> Vec<Forged> + Send + Sync + 'static) -> Forger {
    let script = move |r: &Request| {
        let mut out = extra(r);
        if live(r.dst) {
            out.push(Forged::after(DELAY, r.reply()));
        }
        out
    };
    Forger::start(&lab.q.name, "qb", Box::new(script), None)
}

/// What a prober run gives back.
struct Run {
    rounds: Vec<Vec<PingResult>>,
    took: Vec<Duration>,
    /// Packets the kernel dropped on our sockets' receive queues during the rounds.
    drops: u64,
}

/// The prober as a flood sees it.
#[derive(Clone, Copy)]
struct Ids {
    v4: u16,
    v6: u16,
    /// The probing thread, to watch its sockets' queues in /proc.
    tid: i64,
    kind: Kind,
}

impl Ids {
    /// Bytes queued on the prober's IPv4 socket.
    fn queued_v4(&self) -> u64 {
        let dir = format!("/proc/self/task/{}/net", self.tid);
        match self.kind {
            Kind::Raw => icmp_forge::queued_and_dropped(&dir, &["raw"], 1).0,
            Kind::Datagram => icmp_forge::queued_and_dropped(&dir, &["icmp"], self.v4).0,
        }
    }
}

/// Opens a prober in `ns`, passes its identifiers to `setup` on this thread (to start a flood
/// that needs them), then probes `targets` for `rounds` rounds. `setup`'s value is returned so
/// the caller decides when it stops.
fn run_prober<G>(
    ns: &Netns,
    opts: ProbeOptions,
    rounds: usize,
    targets: Vec<IpAddr>,
    setup: impl FnOnce(Ids) -> G,
) -> (G, Run) {
    let (id_tx, id_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let name = ns.name.clone();
    let worker = std::thread::spawn(move || {
        run_in(&name, move || {
            let prober = Prober::open(&opts).expect("open prober");
            let want = match opts.kind {
                SocketKind::Raw => Kind::Raw,
                _ => Kind::Datagram,
            };
            assert_eq!(prober.kind(Family::V4), Some(want));
            assert_eq!(prober.kind(Family::V6), Some(want));
            let ids = Ids {
                v4: prober.id(Family::V4).unwrap(),
                v6: prober.id(Family::V6).unwrap(),
                tid: unsafe { libc::syscall(libc::SYS_gettid) },
                kind: want,
            };
            id_tx.send(ids).unwrap();
            go_rx.recv().expect("go");
            let ports = match want {
                Kind::Raw => vec![1, 58],
                Kind::Datagram => vec![ids.v4, ids.v6],
            };
            let drops = || -> u64 {
                let all = ["icmp", "icmp6", "raw", "raw6"];
                ports
                    .iter()
                    .map(|&p| icmp_forge::queued_and_dropped("/proc/thread-self/net", &all, p).1)
                    .sum()
            };
            let before = drops();
            let mut run = Run {
                rounds: Vec::new(),
                took: Vec::new(),
                drops: 0,
            };
            for i in 0..rounds {
                let t0 = Instant::now();
                let round = prober.probe(&targets);
                run.took.push(t0.elapsed());
                // Every check loops over the results: first, there is one per target.
                let got: Vec<IpAddr> = round.iter().map(|r| r.target).collect();
                assert_eq!(got, targets, "round {i}: one result per target");
                run.rounds.push(round);
            }
            run.drops = drops() - before;
            run
        })
    });
    let ids = id_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("prober ids");
    let guard = setup(ids);
    go_tx.send(()).unwrap();
    let run = worker.join().expect("prober thread");
    (guard, run)
}

/// Dead targets failed, live ones passed with their real RTT (at least `MIN_RTT`, within the
/// timeout), every request of a live target answered exactly once.
fn check(kind: SocketKind, run: &Run) {
    for (i, round) in run.rounds.iter().enumerate() {
        for r in round {
            if live(r.target) {
                assert!(r.ok(), "{kind:?} round {i}: live target failed: {r:?}");
                assert_eq!(r.received, r.sent, "{kind:?} round {i}: {r:?}");
                for rtt in &r.rtts {
                    assert!(
                        *rtt >= MIN_RTT && *rtt <= TIMEOUT,
                        "{kind:?} round {i}: {} got an RTT that is not its real reply's: {r:?}",
                        r.target
                    );
                }
            } else {
                assert!(
                    !r.ok(),
                    "{kind:?} round {i}: DEAD target reported alive: {r:?}"
                );
            }
        }
    }
}

/// A flood of echo replies carrying our IPv4 identifier, from a dead and a live address, with
/// every sequence number and payloads of our size whose marker is not ours.
fn flood_packets(id4: u16) -> Vec<Vec<u8>> {
    let to = ip(PROBER4);
    (0..4096u16)
        .map(|i| {
            let from = if i % 2 == 0 { ip(DEAD4) } else { ip(LIVE4) };
            let seq = i.wrapping_mul(16);
            let mut payload = vec![0xa5u8; 56];
            payload[..2].copy_from_slice(&i.to_be_bytes());
            echo_reply(from, to, id4, seq, &payload)
        })
        .collect()
}

#[test]
fn a_flood_with_our_identifier_cannot_hold_a_round_past_its_deadline() {
    if !need_root("a_flood_with_our_identifier_cannot_hold_a_round_past_its_deadline") {
        return;
    }
    let _cpu = cpu_alone();
    const ROUNDS: usize = 3;
    for kind in [SocketKind::Datagram, SocketKind::Raw] {
        let lab = lab("fl");
        let _responder = forger(&lab, |_| Vec::new());
        let q = lab.q.name.clone();
        let (flood, run) = run_prober(&lab.p, opts(kind), ROUNDS, targets(), |ids| {
            // Paced to keep about 2 MB queued on our IPv4 socket (of its 8 MB): the reader
            // always finds more, and honest replies still find room. It stops by itself
            // well after the rounds should have ended.
            let pace = icmp_forge::Pace {
                queued: Some(Box::new(move || ids.queued_v4())),
                high: 2 << 20,
                until: Instant::now() + (TIMEOUT + SLACK) * ROUNDS as u32 + Duration::from_secs(2),
            };
            let f = Flood::start(&q, flood_packets(ids.v4), pace);
            // Let the queue fill before the first round.
            let t0 = Instant::now();
            while ids.queued_v4() < 1 << 20 && t0.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(5));
            }
            f
        });
        let count = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        let (sent, looks, empty) = (count(&flood.sent), count(&flood.looks), count(&flood.empty));
        drop(flood);
        eprintln!(
            "{kind:?}: flood sent {sent} packets; our queue was empty at {empty} of {looks} looks; \
             {} dropped; rounds took {:?}",
            run.drops, run.took
        );
        for took in &run.took {
            assert!(*took <= TIMEOUT + SLACK, "{kind:?}: a round took {took:?}");
        }
        check(kind, &run);
        // The flood was real: a heavy stream of packets, and the reader found it queued at a
        // share of its looks. How large a share depends on how much CPU the flooder gets next
        // to the reader on a shared 2-core machine (0-55% empty looks seen here, 80% once in
        // CI), so the bound only rules out a flood that never reached the socket; a queue that
        // never empties is proven deterministically by the prober's unit test
        // `drain_stops_at_its_deadline_when_the_queue_never_empties`.
        assert!(
            sent >= 50_000 && empty * 20 <= looks * 19,
            "{kind:?}: the flood did not keep up ({sent} packets; {empty} of {looks} looks found nothing queued)"
        );
    }
}

fn family_addr(like: IpAddr, v4: &str, v6: &str) -> IpAddr {
    if like.is_ipv4() {
        ip(v4)
    } else {
        ip(v6)
    }
}

/// Near misses for request `r`: each carries our identifier and only one thing wrong.
fn near_misses(r: &Request) -> Vec<Forged> {
    let (me, them, id, seq) = (r.src, r.dst, r.id, r.seq);
    let p = &r.payload;
    let mut other_marker = p.clone();
    other_marker[0] ^= 0xff;
    let longer = [p.as_slice(), &[0u8; 8]].concat();
    let mut v = vec![
        // The exact answer, from an address nobody probed.
        echo_reply(family_addr(me, OTHER4, OTHER6), me, id, seq, p),
        // From the target, with the sequence of the requests sent before and after this one
        // (other targets' requests in the same round), and one nobody sent.
        echo_reply(them, me, id, seq.wrapping_add(1), p),
        echo_reply(them, me, id, seq.wrapping_sub(1), p),
        echo_reply(them, me, id, seq.wrapping_add(20_000), p),
        // From the target, right sequence, a marker that is not ours.
        echo_reply(them, me, id, seq, &other_marker),
        // From the target, right sequence, too short to carry the marker, or none at all.
        echo_reply(them, me, id, seq, &p[..4]),
        echo_reply(them, me, id, seq, &[]),
        // Our marker, then more than we sent.
        echo_reply(them, me, id, seq, &longer),
    ];
    if live(them) {
        // Copies of the real answer, after it.
        v.push(r.reply());
        let mut out: Vec<Forged> = v.into_iter().map(Forged::now).collect();
        out.pop();
        out.push(Forged::after(DELAY + Duration::from_millis(1), r.reply()));
        out.push(Forged::after(DELAY + Duration::from_millis(30), r.reply()));
        return out;
    }
    // The exact answer for a dead target from the live address next door.
    v.push(echo_reply(family_addr(me, LIVE4, LIVE6), me, id, seq, p));
    let mut out: Vec<Forged> = v.into_iter().map(Forged::now).collect();
    // The exact answer, after the timeout: while the round still waits for the second
    // request's answers, and again when the next round runs.
    out.push(Forged::after(
        TIMEOUT + Duration::from_millis(30),
        r.reply(),
    ));
    out.push(Forged::after(
        TIMEOUT + Duration::from_millis(300),
        r.reply(),
    ));
    out
}

#[test]
fn near_misses_copies_and_late_answers_never_count() {
    if !need_root("near_misses_copies_and_late_answers_never_count") {
        return;
    }
    let _cpu = cpu_shared();
    let lab = lab("nm");
    let _forger = forger(&lab, near_misses);
    for kind in [SocketKind::Datagram, SocketKind::Raw] {
        // Two requests per target, 100 ms apart: late answers to the first arrive while the
        // round still waits for the second.
        let o = ProbeOptions {
            count: 2,
            interval: Duration::from_millis(100),
            ..opts(kind)
        };
        let ((), run) = run_prober(&lab.p, o, 3, targets(), |_| ());
        check(kind, &run);
        for r in run.rounds.concat() {
            if !live(r.target) {
                assert_eq!(
                    r.error.as_deref(),
                    Some("no reply within 500ms"),
                    "{kind:?}: {r:?}"
                );
            }
        }
    }
}

/// ICMP errors about other flows, sent to the prober for request `r`: another identifier,
/// another destination, another sequence, a quoted marker that is not ours, and a UDP datagram.
fn errors_for_other_flows(r: &Request) -> Vec<Forged> {
    let (me, them, id, seq) = (r.src, r.dst, r.id, r.seq);
    let router = family_addr(me, LIVE4, LIVE6);
    let other = family_addr(me, OTHER4, OTHER6);
    let p = &r.payload;
    let mut other_marker = p.clone();
    other_marker[4] ^= 0xff;
    let quoted = [
        icmp_forge::echo_request(me, them, id ^ 0x5a5a, seq, p),
        icmp_forge::echo_request(me, other, id, seq, p),
        icmp_forge::echo_request(me, them, id, seq.wrapping_add(20_000), p),
        icmp_forge::echo_request(me, them, id, seq, &other_marker),
        icmp_forge::udp(me, them, 40_000, 33_434, &[0; 32]),
    ];
    quoted
        .iter()
        .flat_map(|q| [unreachable(router, me, q), unreachable(them, me, q)])
        .map(Forged::now)
        .collect()
}

#[test]
fn icmp_errors_for_other_flows_fail_nothing() {
    if !need_root("icmp_errors_for_other_flows_fail_nothing") {
        return;
    }
    let _cpu = cpu_shared();
    let lab = lab("er");
    let _forger = forger(&lab, errors_for_other_flows);
    for kind in [SocketKind::Datagram, SocketKind::Raw] {
        let ((), run) = run_prober(&lab.p, opts(kind), 3, targets(), |_| ());
        check(kind, &run);
        for r in run.rounds.concat() {
            if !live(r.target) {
                // Not "destination host unreachable": no error was about this target.
                assert_eq!(
                    r.error.as_deref(),
                    Some("no reply within 500ms"),
                    "{kind:?}: {r:?}"
                );
            }
        }
    }
}

/// Another process pings the same targets non-stop (fping, its own identifier), and replies
/// with other identifiers and every sequence pour in from the targets' addresses.
#[test]
fn another_process_flooding_the_same_targets_changes_nothing() {
    if !need_root("another_process_flooding_the_same_targets_changes_nothing") {
        return;
    }
    let _cpu = cpu_shared();
    let lab = lab("op");
    let _forger = forger(&lab, |_| Vec::new());
    let targets = targets();
    let fping = lab
        .p
        .command("fping")
        .args(["-l", "-q", "-p", "5", "-t", "500"])
        .args(targets.iter().map(|t| t.to_string()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn fping");
    let _kill = KillOnDrop(fping);
    let replies: Vec<Vec<u8>> = targets
        .iter()
        .flat_map(|&t| {
            let me = family_addr(t, PROBER4, PROBER6);
            (0..64u16).map(move |i| echo_reply(t, me, 0x1000 + i, i.wrapping_mul(1021), &[7; 56]))
        })
        .collect();
    const ROUNDS: usize = 3;
    for kind in [SocketKind::Datagram, SocketKind::Raw] {
        let q = lab.q.name.clone();
        let replies = replies.clone();
        let (flood, run) = run_prober(&lab.p, opts(kind), ROUNDS, targets.clone(), |ids| {
            let pace = icmp_forge::Pace {
                // A raw socket sees all of them: keep its queue from overflowing.
                queued: Some(Box::new(move || ids.queued_v4())),
                high: 2 << 20,
                until: Instant::now() + (TIMEOUT + SLACK) * ROUNDS as u32 + Duration::from_secs(2),
            };
            Flood::start(&q, replies, pace)
        });
        drop(flood);
        check(kind, &run);
        for took in &run.took {
            assert!(*took <= TIMEOUT + SLACK, "{kind:?}: a round took {took:?}");
        }
    }
}

/// Kills and reaps a child process when dropped, also on panic.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sends_the_kernel_refuses_fail_their_target_by_errno() {
    if !need_root("sends_the_kernel_refuses_fail_their_target_by_errno") {
        return;
    }
    let _cpu = cpu_shared();
    let lab = lab("se");
    let _forger = forger(&lab, |_| Vec::new());
    let p = &lab.p;
    p.exec(&[
        "iptables",
        "-A",
        "OUTPUT",
        "-d",
        "198.18.30.1",
        "-p",
        "icmp",
        "-j",
        "DROP",
    ]);
    p.exec(&[
        "iptables",
        "-A",
        "OUTPUT",
        "-d",
        "198.18.30.2",
        "-p",
        "icmp",
        "-j",
        "REJECT",
    ]);
    p.exec(&[
        "ip6tables",
        "-A",
        "OUTPUT",
        "-d",
        "2001:db8:16:30::1",
        "-p",
        "ipv6-icmp",
        "-j",
        "DROP",
    ]);
    p.ip(&["route", "add", "prohibit", "198.18.31.0/24"]);
    p.ip(&["-6", "route", "add", "prohibit", "2001:db8:16:31::/64"]);
    p.ip(&["route", "add", "unreachable", "198.18.32.0/24"]);
    p.ip(&["-6", "route", "add", "unreachable", "2001:db8:16:32::/64"]);
    const NOT_PERMITTED: &str = "send failed: not permitted (a firewall rule or a prohibit route)";
    const NO_ROUTE: &str = "send failed: no route to host";
    let refused = [
        ("198.18.30.1", NOT_PERMITTED),
        ("198.18.30.2", NOT_PERMITTED),
        ("2001:db8:16:30::1", NOT_PERMITTED),
        ("198.18.31.1", NOT_PERMITTED),
        ("2001:db8:16:31::1", NOT_PERMITTED),
        ("198.18.32.1", NO_ROUTE),
        ("2001:db8:16:32::1", NO_ROUTE),
    ];
    // Each refused target is followed by live ones: the REJECT's ICMP error, reported by a ping
    // socket on its next send, must not fail them.
    let mut targets = Vec::new();
    for (i, (a, _)) in refused.iter().enumerate() {
        targets.push(ip(a));
        targets.push(ip(&format!("198.18.24.{}", i + 1)));
        targets.push(ip(&format!("2001:db8:16:24::{}", i + 1)));
    }
    for kind in [SocketKind::Datagram, SocketKind::Raw] {
        // An IPv6 ping socket is never told of a firewall drop (the kernel's
        // icmpv6_push_pending_frames ignores it): that target can only time out, so it is
        // probed with the raw socket alone.
        let v6_dropped = ip("2001:db8:16:30::1");
        let targets: Vec<IpAddr> = targets
            .iter()
            .copied()
            .filter(|&t| kind == SocketKind::Raw || t != v6_dropped)
            .collect();
        let ((), run) = run_prober(p, opts(kind), 2, targets, |_| ());
        check(kind, &run);
        for round in &run.rounds {
            for (a, why) in refused {
                if kind == SocketKind::Datagram && ip(a) == v6_dropped {
                    continue;
                }
                let r = round.iter().find(|r| r.target == ip(a)).unwrap();
                assert_eq!(r.error.as_deref(), Some(why), "{kind:?}: {r:?}");
                let reason = match why {
                    NO_ROUTE => Reason::Unreachable,
                    _ => Reason::NotPermitted,
                };
                assert_eq!(r.reason, Some(reason), "{kind:?}: {r:?}");
            }
        }
        // Nothing waited for a timeout: the refused requests were settled when sent.
        for took in &run.took {
            assert!(*took < TIMEOUT, "{kind:?}: a round took {took:?}");
        }
    }
}

/// 150 live targets through a token bucket of 2 Mbit/s with a 3 kB queue on the prober's link:
/// most sends of the burst find the queue full (ENOBUFS on a ping socket), back off and go out
/// once it drains. A raw socket is not told (the kernel drops silently), so ping sockets only.
#[test]
fn a_full_interface_queue_backs_off_and_every_target_still_passes() {
    if !need_root("a_full_interface_queue_backs_off_and_every_target_still_passes") {
        return;
    }
    let _cpu = cpu_shared();
    let lab = lab("bf");
    let _forger = forger(&lab, |_| Vec::new());
    lab.p.exec(&[
        "tc", "qdisc", "add", "dev", "pa", "root", "tbf", "rate", "2mbit", "burst", "3000",
        "limit", "3000",
    ]);
    let targets: Vec<IpAddr> = (1..=150u8).map(|i| ip(&format!("198.18.24.{i}"))).collect();
    let ((), run) = run_prober(&lab.p, opts(SocketKind::Datagram), 2, targets, |_| ());
    check(SocketKind::Datagram, &run);
    for r in run.rounds.concat() {
        // The back-off is not round-trip time: the clock restarts when the request goes out
        // (what remains is the queue's own delay, at most 3 kB at 2 Mbit/s = 12 ms).
        assert!(
            r.rtts[0] < DELAY + Duration::from_millis(100),
            "back-off counted as RTT: {r:?}"
        );
    }
}

/// The same link at 64 kbit/s cannot carry 150 requests (12 kB, 1.5 s) in the back-off budget
/// (half the timeout): the round still ends in time, and what could not be sent fails as such.
#[test]
fn a_queue_that_stays_full_fails_its_sends_within_the_round() {
    if !need_root("a_queue_that_stays_full_fails_its_sends_within_the_round") {
        return;
    }
    let _cpu = cpu_shared();
    let lab = lab("bs");
    let _forger = forger(&lab, |_| Vec::new());
    lab.p.exec(&[
        "tc", "qdisc", "add", "dev", "pa", "root", "tbf", "rate", "64kbit", "burst", "3000",
        "limit", "3000",
    ]);
    let targets: Vec<IpAddr> = (1..=150u8).map(|i| ip(&format!("198.18.24.{i}"))).collect();
    let ((), run) = run_prober(&lab.p, opts(SocketKind::Datagram), 1, targets, |_| ());
    let r = &run.rounds[0];
    let full = r
        .iter()
        .filter(|x| x.error.as_deref() == Some("send failed: no buffer space available"))
        .inspect(|x| assert_eq!(x.reason, Some(Reason::NoBuffer), "{x:?}"))
        .count();
    let passed = r.iter().filter(|x| x.ok()).count();
    eprintln!(
        "{passed} passed, {full} could not be sent, round took {:?}",
        run.took[0]
    );
    assert!(full > 0 && passed > 0, "{r:?}");
    // Sending may take the back-off budget (TIMEOUT / 2) before the timeout starts.
    assert!(
        run.took[0] <= TIMEOUT + TIMEOUT / 2 + SLACK,
        "round took {:?}",
        run.took[0]
    );
    for x in r.iter().filter(|x| x.ok()) {
        assert!(x.rtts[0] >= MIN_RTT, "{x:?}");
    }
}

/// A reply the kernel stamped before the deadline counts even if the prober could not read it
/// until after: the `ping` subcommand is stopped (SIGSTOP) once its request is out, the answer
/// comes 120 ms later, and the process resumes only after its 300 ms timeout.
#[test]
fn a_reply_stamped_in_time_counts_when_read_after_the_deadline() {
    if !need_root("a_reply_stamped_in_time_counts_when_read_after_the_deadline") {
        return;
    }
    let _cpu = cpu_shared();
    let lab = lab("ld");
    let (seen_tx, seen) = mpsc::channel();
    let script = |r: &Request| vec![Forged::after(DELAY, r.reply())];
    let _forger = Forger::start(&lab.q.name, "qb", Box::new(script), Some(seen_tx));
    for socket in ["dgram", "raw"] {
        let child = lab
            .p
            .command(env!("CARGO_BIN_EXE_k8s-network-test-daemonset"))
            .args(["ping", "--socket", socket, "--timeout", "300ms", LIVE4])
            .stdout(Stdio::piped())
            .spawn()
            .expect("run ping");
        let mut child = KillOnDrop(child);
        seen.recv_timeout(Duration::from_secs(10))
            .expect("the request went out");
        let pid = child.0.id().to_string();
        sh(&["kill", "-STOP", &pid]);
        std::thread::sleep(Duration::from_millis(700));
        sh(&["kill", "-CONT", &pid]);
        let mut out = String::new();
        use std::io::Read;
        child
            .0
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let status = child.0.wait().unwrap();
        assert!(
            out.contains("1/1 received, rtt 1"),
            "{socket}: a reply stamped at about 120 ms was not counted: {out}"
        );
        assert!(status.success(), "{socket}: {out}");
    }
}
