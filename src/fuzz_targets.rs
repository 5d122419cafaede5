//! Fuzz entry points: one function per parser of untrusted bytes, each feeding arbitrary input
//! through the parser and on into the code that consumes its result, and asserting what must
//! hold for every input (no panic is the minimum). The AFL++ binaries in `fuzz/` and the
//! regression test `tests/fuzz_regressions.rs` call these, so a finding reproduces with plain
//! `cargo test`. Not part of the agent's interface.
//!
//! A failed assertion is a finding: either the parser is wrong or the invariant is. So this
//! module, unlike the agent's code, panics on purpose (the binary never calls it).
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::dns::{self, QType};
use crate::icmp::matcher::{Outcome, Round};
use crate::icmp::packet::{self, Family, Message, COOKIE_LEN};
use crate::kube::objects::{EndpointSlice, List, Node, Pod, Service, Status};
use crate::kube::{snapshot as discovery, Snapshot};
use crate::report::{CheckKind, RoundReport};

/// A fuzz entry point: takes any bytes, panics only on a finding.
pub type Target = fn(&[u8]);

/// Every target, by the name its corpus directory and binary have.
pub const TARGETS: &[(&str, Target)] = &[
    ("icmp_v4", icmp_v4),
    ("icmp_v6", icmp_v6),
    ("icmp_raw_v4", icmp_raw_v4),
    ("icmp_errqueue", icmp_errqueue),
    ("dns_reply", dns_reply),
    ("api_objects", api_objects),
    ("status_body", status_body),
    ("resolv_conf", resolv_conf),
    ("cli", cli),
    ("http_head", http_head),
    ("peer_summary", peer_summary),
    ("proc_routes", proc_routes),
];

/// Longest text an ICMP error may turn into (it ends up in a table cell and a log line).
const MAX_ERROR_TEXT: usize = 64;

/// An ICMPv4 message as a ping socket delivers it (no IP header).
pub fn icmp_v4(data: &[u8]) {
    icmp(Family::V4, data);
}

/// An ICMPv6 message (ping and raw sockets both deliver it without the IPv6 header).
pub fn icmp_v6(data: &[u8]) {
    icmp(Family::V6, data);
}

/// An IPv4 packet as a raw ICMP socket delivers it (IP header first). Besides the message
/// checks, the raw path must agree with the ping-socket path on the same ICMP bytes.
pub fn icmp_raw_v4(data: &[u8]) {
    let msg = packet::decode(Family::V4, data, true);
    match sane_ipv4_icmp(data) {
        Some(icmp) => {
            let direct = packet::decode(Family::V4, icmp, false);
            assert_eq!(msg, direct, "raw and ping-socket decoding disagree");
            check_decoded(Family::V4, icmp, &msg);
        }
        None => assert_eq!(
            msg,
            Message::Other,
            "a packet that is not IPv4/ICMP decoded"
        ),
    }
    match_deep(Family::V4, &msg, data);
}

/// What a ping socket's error queue yields: the kernel's `sock_extended_err` (origin, type,
/// code, info, errno), the destination of the failed request and the ICMP header it quoted.
/// Input: `[flags, type, code, info x4, errno x2, dst x16, quoted ICMP...]`; composed as
/// `IcmpSocket::recv_error` does and then matched.
pub fn icmp_errqueue(data: &[u8]) {
    let (head, quoted) = data.split_at(data.len().min(25));
    let byte = |i: usize| head.get(i).copied().unwrap_or(0);
    let family = if byte(0) & 1 == 0 {
        Family::V4
    } else {
        Family::V6
    };
    let from_icmp = byte(0) & 2 == 0;
    let (ty, code) = (byte(1), byte(2));
    let info = u32::from_be_bytes([byte(3), byte(4), byte(5), byte(6)]);
    let errno = i32::from(u16::from_be_bytes([byte(7), byte(8)]));
    let mut d = [0u8; 16];
    for (i, b) in d.iter_mut().enumerate() {
        *b = byte(9 + i);
    }
    let dst = match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3])),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(d)),
    };

    let quoted_msg = packet::quoted_from_icmp(family, dst, quoted);
    if let Some(q) = &quoted_msg {
        assert_eq!(q.dst, dst);
        assert_eq!(quoted.get(4..6), Some(&q.id.to_be_bytes()[..]));
        assert_eq!(quoted.get(6..8), Some(&q.seq.to_be_bytes()[..]));
    }
    // Every length of the 4-byte "rest of header", as a truncated packet would give.
    let rest = info.to_be_bytes();
    for n in 0..=rest.len() {
        if let Some(text) = packet::error_text(family, ty, code, rest.get(..n).unwrap_or(&[])) {
            check_error_text(&text);
        }
    }
    let origin = if from_icmp {
        packet::ErrOrigin::Icmp { ty, code, info }
    } else {
        packet::ErrOrigin::Local { errno }
    };
    // The socket's own code path, pure.
    let msg = packet::errqueue_message(family, dst, origin, quoted);
    match &msg {
        Message::Error {
            quoted: q, text, ..
        } => {
            assert_eq!(Some(*q), quoted_msg, "an error without its quoted request");
            check_error_text(text);
        }
        Message::Other => {}
        Message::Reply { .. } => panic!("the error queue gave a reply"),
    }
    match_deep(family, &msg, data);
}

fn icmp(family: Family, data: &[u8]) {
    let msg = packet::decode(family, data, false);
    check_decoded(family, data, &msg);
    match_deep(family, &msg, data);
    encode_round_trip(family, data);
}

/// The ICMP part of a raw IPv4 packet, by the rules a raw socket's packet must meet
/// (written independently of the decoder so the two can be compared).
fn sane_ipv4_icmp(data: &[u8]) -> Option<&[u8]> {
    let first = *data.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 || *data.get(9)? != 1 {
        return None;
    }
    data.get(ihl..)
}

/// What a decoded message may claim about the bytes it came from.
fn check_decoded(family: Family, icmp: &[u8], msg: &Message) {
    if !matches!(msg, Message::Other) {
        assert!(icmp.len() >= 8, "a message from fewer than 8 bytes");
        if family == Family::V4 {
            assert_eq!(packet::checksum(icmp), 0, "accepted a bad checksum");
        }
    }
    match msg {
        Message::Reply {
            id,
            seq,
            len,
            cookie,
        } => {
            let reply_type = if family == Family::V4 { 0 } else { 129 };
            assert_eq!(icmp.get(..2), Some(&[reply_type, 0][..]));
            assert_eq!(icmp.get(4..6), Some(&id.to_be_bytes()[..]));
            assert_eq!(icmp.get(6..8), Some(&seq.to_be_bytes()[..]));
            let payload = icmp.get(8..).unwrap_or(&[]);
            assert_eq!(*len, payload.len(), "the payload length is the packet's");
            match cookie {
                Some((nonce, seq32)) => {
                    assert!(payload.len() >= COOKIE_LEN, "a cookie from a short payload");
                    assert_eq!(payload.get(..4), Some(&nonce.to_be_bytes()[..]));
                    assert_eq!(payload.get(4..8), Some(&seq32.to_be_bytes()[..]));
                }
                None => assert!(payload.len() < COOKIE_LEN, "cookie ignored"),
            }
        }
        Message::Error { quoted, text, .. } => {
            let (ty, code) = (icmp.first().copied(), icmp.get(1).copied());
            let (Some(ty), Some(code)) = (ty, code) else {
                panic!("an error from an empty packet");
            };
            let expect = packet::error_text(family, ty, code, icmp.get(4..8).unwrap_or(&[]));
            assert_eq!(
                expect.as_ref(),
                Some(text),
                "error text not from the header"
            );
            check_error_text(text);
            assert_eq!(
                Family::of(&quoted.dst),
                family,
                "quoted address of another family"
            );
        }
        Message::Other => {}
    }
}

fn check_error_text(text: &str) {
    assert!(!text.is_empty() && text.len() <= MAX_ERROR_TEXT, "{text:?}");
    assert!(!text.chars().any(char::is_control), "{text:?}");
}

/// Encodes a request from parameters taken from the input, turns it into the reply a peer
/// sends, and decodes it back: every field must survive.
fn encode_round_trip(family: Family, data: &[u8]) {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let id = u16::from_be_bytes([byte(0), byte(1)]);
    let seq = u16::from_be_bytes([byte(2), byte(3)]);
    let nonce = u32::from_be_bytes([byte(4), byte(5), byte(6), byte(7)]);
    let seq32 = u32::from_be_bytes([byte(8), byte(9), byte(10), byte(11)]);
    let size = usize::from(byte(12)) % 80;
    let mut p = packet::encode_echo(family, id, seq, nonce, seq32, size);
    assert_eq!(p.len(), 8 + size);
    if family == Family::V4 {
        assert_eq!(packet::checksum(&p), 0, "request checksum");
    }
    // The request itself is never a reply.
    assert_eq!(packet::decode(family, &p, false), Message::Other);
    // The peer's kernel flips the type and (for v4) fixes the checksum.
    if let Some(t) = p.first_mut() {
        *t = if family == Family::V4 { 0 } else { 129 };
    }
    if family == Family::V4 {
        if let Some(c) = p.get_mut(2..4) {
            c.copy_from_slice(&[0, 0]);
        }
        let c = packet::checksum(&p);
        if let Some(slot) = p.get_mut(2..4) {
            slot.copy_from_slice(&c.to_be_bytes());
        }
    }
    let want = Message::Reply {
        id,
        seq,
        len: size,
        cookie: (size >= COOKIE_LEN).then_some((nonce, seq32)),
    };
    assert_eq!(packet::decode(family, &p, false), want);
}

/// Feeds a decoded message to a matcher round that has a request pending under the
/// message's own identifier and sequence, so the matching code runs to the end; checks that
/// nothing counts that is not provably an answer.
fn match_deep(family: Family, msg: &Message, data: &[u8]) {
    const ID: u16 = 0x4242;
    const NONCE: u32 = 0x5eed_5eed;
    let timeout = Duration::from_millis(1000);
    let sent_at = Duration::from_secs(5000);
    let (mine, other) = match family {
        Family::V4 => (
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
            IpAddr::V4(Ipv4Addr::new(198, 18, 0, 3)),
        ),
        Family::V6 => (
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2)),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 3)),
        ),
    };
    let (our_id, seq, target, cookie, len) = match msg {
        Message::Reply {
            id,
            seq,
            cookie,
            len,
        } => (*id, *seq, mine, *cookie, *len),
        Message::Error { quoted, .. } => (quoted.id, quoted.seq, quoted.dst, None, 56),
        Message::Other => (ID, 1, mine, None, 56),
    };
    let late = data.last().is_some_and(|b| b & 1 == 1);
    let rx_at = sent_at + Duration::from_micros((data.len() as u64).saturating_mul(997));
    let rx_at = if late { rx_at + timeout } else { rx_at };
    // The cookie the round expects: the reply's own (so it matches) or another one.
    let (nonce, seq32) = cookie.unwrap_or((NONCE, 77));
    // The size the round sent: the reply's own, or one byte more (a reply of another length
    // never counts), or 56 (the default, whatever the reply carries).
    let sizes = [len, len.saturating_add(1), 56];
    for (round_nonce, round_seq32, size) in [
        (nonce, seq32, sizes[0]),
        (nonce ^ 1, seq32, sizes[0]),
        (nonce, !seq32, sizes[0]),
        (nonce, seq32, sizes[1]),
        (nonce, seq32, sizes[2]),
    ] {
        for from in [target, other] {
            let mut round = Round::new(&[other, target, target], round_nonce, size, timeout);
            round.sent(1, family, seq, round_seq32, sent_at);
            round.sent(0, family, seq.wrapping_add(1), round_seq32, sent_at);
            let before = round.outstanding();
            let first = round.on_message(family, our_id, from, msg, rx_at);
            let again = round.on_message(family, our_id, from, msg, rx_at);
            let cookie_ok = cookie.is_none_or(|c| c == (round_nonce, round_seq32));
            match &first {
                Outcome::Counted { target: t, rtt } => {
                    assert!(matches!(msg, Message::Reply { .. }), "{msg:?} counted");
                    assert_eq!(*t, 1, "counted for the wrong target");
                    assert_eq!(from, target, "counted from the wrong source");
                    assert!(cookie_ok, "counted with a foreign cookie");
                    assert_eq!(len, size, "counted a reply of another length");
                    assert!(
                        size < COOKIE_LEN || cookie.is_some(),
                        "counted a reply without the marker though {size} bytes carry one"
                    );
                    assert!(*rtt <= timeout && !late, "counted after the timeout");
                }
                Outcome::Failed { target: t } => {
                    assert!(
                        matches!(msg, Message::Error { .. }),
                        "{msg:?} failed a target"
                    );
                    assert_eq!(*t, 1, "failed the wrong target");
                }
                Outcome::Ignored => assert_eq!(*msg, Message::Other),
                _ => {}
            }
            assert!(
                !matches!(again, Outcome::Counted { .. } | Outcome::Failed { .. }),
                "a second copy counted: {again:?}"
            );
            let settled = matches!(
                first,
                Outcome::Counted { .. } | Outcome::Failed { .. } | Outcome::TooLate
            );
            assert_eq!(
                Some(round.outstanding()),
                before.checked_sub(usize::from(settled))
            );
            let results = round.finish();
            assert_eq!(results.len(), 3);
            for (i, r) in results.iter().enumerate() {
                assert!(r.received <= r.sent, "{r:?}");
                assert_eq!(r.ok(), r.error.is_none(), "{r:?}");
                assert_eq!(r.received as usize, r.rtts.len());
                if r.ok() {
                    assert_eq!(i, 1, "a target without a reply is alive: {r:?}");
                    assert!(matches!(first, Outcome::Counted { .. }));
                }
            }
        }
    }
}

/// A DNS reply to a query of ours. Input: `[qtype, name length, name..., reply packet...]`;
/// the query ID is taken from the packet so that the decoder gets past the header.
pub fn dns_reply(data: &[u8]) {
    let qtype = match data.first().copied().unwrap_or(0) % 3 {
        0 => QType::A,
        1 => QType::Aaaa,
        _ => QType::Ptr,
    };
    let name_len = usize::from(data.get(1).copied().unwrap_or(0));
    let rest = data.get(2..).unwrap_or(&[]);
    let (name, packet) = rest.split_at(name_len.min(rest.len()));
    let name = String::from_utf8_lossy(name);
    let id = u16::from_be_bytes([
        packet.first().copied().unwrap_or(0),
        packet.get(1).copied().unwrap_or(0),
    ]);
    let result = dns::decode_response(packet, id, &name, qtype);
    if let Ok(answers) = &result {
        assert!(!answers.is_empty(), "Ok without answers");
        assert!(dns::is_reply_to(packet, id));
        assert_eq!(
            packet.get(3).map(|b| b & 0x0f),
            Some(0),
            "answers with an error rcode"
        );
        let ancount = usize::from(u16::from_be_bytes([
            packet.get(6).copied().unwrap_or(0),
            packet.get(7).copied().unwrap_or(0),
        ]));
        assert!(answers.len() <= ancount, "more answers than records");
        for a in answers {
            match qtype {
                QType::A => assert!(a.parse::<Ipv4Addr>().is_ok(), "{a:?}"),
                QType::Aaaa => assert!(a.parse::<Ipv6Addr>().is_ok(), "{a:?}"),
                QType::Ptr => {
                    assert!(a.ends_with('.') && a.len() <= 4 * 255, "{a:?}");
                    assert!(
                        !a.chars().any(|c| c.is_control() || c.is_whitespace()),
                        "{a:?}"
                    );
                }
            }
        }
    }
    // Any other ID, or the same packet as a query (QR clear), is never an answer.
    assert!(dns::decode_response(packet, id ^ 1, &name, qtype).is_err());
    if let Some(flags) = packet.get(2) {
        let mut query = packet.to_vec();
        if let Some(f) = query.get_mut(2) {
            *f = flags & 0x7f;
        }
        assert!(dns::decode_response(&query, id, &name, qtype).is_err());
    }
    dns_round_trip(id, &name, qtype, packet);
}

/// Our own query, answered by one record made from input bytes, decodes to that record.
fn dns_round_trip(id: u16, name: &str, qtype: QType, bytes: &[u8]) {
    let Ok(query) = dns::encode_query(id, name, qtype) else {
        return;
    };
    assert!(!dns::is_reply_to(&query, id), "a query taken for a reply");
    assert!(dns::decode_response(&query, id, name, qtype).is_err());
    let rdata: Vec<u8> = match qtype {
        QType::A => bytes.iter().copied().chain([0; 4]).take(4).collect(),
        QType::Aaaa => bytes.iter().copied().chain([0; 16]).take(16).collect(),
        QType::Ptr => vec![0xc0, 12], // the question's own name
    };
    let mut reply = query.clone();
    if let Some(flags) = reply.get_mut(2..4) {
        flags.copy_from_slice(&[0x81, 0x80]);
    }
    if let Some(an) = reply.get_mut(6..8) {
        an.copy_from_slice(&[0, 1]);
    }
    reply.extend_from_slice(&[0xc0, 12]);
    reply.extend_from_slice(&qtype.code().to_be_bytes());
    reply.extend_from_slice(&[0, 1, 0, 0, 0, 30, 0, rdata.len() as u8]);
    reply.extend_from_slice(&rdata);
    let got = dns::decode_response(&reply, id, name, qtype);
    let want = match qtype {
        QType::A => <[u8; 4]>::try_from(rdata.as_slice()).map(|b| Ipv4Addr::from(b).to_string()),
        QType::Aaaa => {
            <[u8; 16]>::try_from(rdata.as_slice()).map(|b| Ipv6Addr::from(b).to_string())
        }
        QType::Ptr => {
            let plain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
            if !name.chars().all(plain) {
                return; // escaping makes the text differ from the name; decoding still works
            }
            let absolute = name.trim_end_matches('.').to_ascii_lowercase() + ".";
            let got = got.map(|a| a.into_iter().map(|s| s.to_ascii_lowercase()).collect());
            assert_eq!(got, Ok(vec![absolute]), "PTR round trip of {name:?}");
            return;
        }
    };
    let want = want.ok().map(|w| vec![w]);
    assert_eq!(got.ok(), want, "round trip of {name:?} {qtype}");
}

/// Kubernetes API bodies: the same bytes as every object type the client reads, then the
/// discovery conversions, the round plan and every output of a round built from it.
pub fn api_objects(data: &[u8]) {
    let pods = serde_json::from_slice::<List<Pod>>(data)
        .map(|l| l.items)
        .unwrap_or_default();
    let nodes = serde_json::from_slice::<List<Node>>(data)
        .map(|l| l.items)
        .unwrap_or_default();
    let slices = serde_json::from_slice::<List<EndpointSlice>>(data)
        .map(|l| l.items)
        .unwrap_or_default();
    let service = serde_json::from_slice::<Service>(data).ok();
    let _ = serde_json::from_slice::<Status>(data);
    // A single object where a list is expected (the client never asks for one, but the
    // conversions must cope with whatever parses).
    let pod = serde_json::from_slice::<Pod>(data).ok();
    let node = serde_json::from_slice::<Node>(data).ok();
    let slice = serde_json::from_slice::<EndpointSlice>(data).ok();
    let pods: Vec<Pod> = pods.into_iter().chain(pod).collect();
    let nodes: Vec<Node> = nodes.into_iter().chain(node).collect();
    let slices: Vec<EndpointSlice> = slices.into_iter().chain(slice).collect();

    let snap = discovery::snapshot(&pods, &nodes, service.as_ref(), &slices);
    check_snapshot(&snap);
    for domain in ["cluster.local", "svc.odd..domain."] {
        check_plan(&snap, domain);
    }
}

fn check_snapshot(snap: &Snapshot) {
    let pairs = |n: usize| (0..n.saturating_sub(1)).map(|i| (i, i + 1));
    let agents = &snap.agents;
    assert!(
        pairs(agents.len()).all(|(i, j)| {
            let key = |k: usize| agents.get(k).map(|a| (&a.node, &a.name));
            key(i) <= key(j)
        }),
        "agents not sorted"
    );
    let nodes = &snap.nodes;
    assert!(
        pairs(nodes.len())
            .all(|(i, j)| nodes.get(i).map(|n| &n.name) <= nodes.get(j).map(|n| &n.name)),
        "nodes not sorted"
    );
    let inst = &snap.dns.instances;
    assert!(
        pairs(inst.len()).all(|(i, j)| inst.get(i).map(|d| d.ip) < inst.get(j).map(|d| d.ip)),
        "instances unsorted or repeated"
    );
    for a in &snap.agents {
        assert!(!a.phase.is_empty());
        assert!(unique(&a.pod_ips) && unique(&a.host_ips), "{a:?}");
    }
    for n in &snap.nodes {
        assert!(unique(&n.internal_ips), "{n:?}");
    }
    assert!(unique(&snap.dns.service_ips));
}

fn unique<T: PartialEq>(v: &[T]) -> bool {
    v.iter()
        .enumerate()
        .all(|(i, x)| !v.get(..i).unwrap_or(&[]).contains(x))
}

/// Echoes alternately answered and lost, every DNS probe timed out: a round without sockets.
struct Alternating;

impl crate::round::Executors for Alternating {
    fn echo(&self, addrs: &[IpAddr]) -> Vec<crate::report::Measured> {
        (0..addrs.len())
            .map(|i| {
                if i % 2 == 0 {
                    crate::report::Measured {
                        rtt_seconds: Some(0.000_25),
                        sent: 1,
                        received: 1,
                        ..crate::report::Measured::of(crate::report::Outcome::Passed)
                    }
                } else {
                    crate::report::Measured::failed(
                        crate::report::Reason::Timeout,
                        "no reply within 1s",
                    )
                }
            })
            .collect()
    }

    fn dns(&self, _probe: &crate::plan::Probe) -> crate::report::Measured {
        crate::report::Measured::failed(crate::report::Reason::Timeout, "timed out after 1s")
    }

    fn connect(&self, addrs: &[std::net::SocketAddr]) -> Vec<crate::report::Measured> {
        let refused =
            crate::report::Measured::failed(crate::report::Reason::Refused, "connection refused");
        vec![refused; addrs.len()]
    }
}

/// The plan of a snapshot, checked for consistency, then a round of it (without sockets),
/// rendered as metrics (checked line by line), as the log table and as JSON, and compared
/// with a second round for status changes.
fn check_plan(snap: &Snapshot, domain: &str) {
    use crate::plan::Probe;
    let plan = crate::plan::plan(snap, domain);
    for p in &plan.checks {
        let k = p.key.kind;
        match &p.probe {
            Probe::Echo { addr } => {
                assert!(
                    matches!(k, CheckKind::HostPing | CheckKind::PodPing),
                    "{p:?}"
                );
                assert_eq!(p.key.address, addr.to_string(), "{p:?}");
            }
            Probe::EchoMtu { addr } => {
                assert_eq!(k, CheckKind::PodMtu, "{p:?}");
                assert_eq!(p.key.address, addr.to_string(), "{p:?}");
            }
            Probe::Connect { addr } => {
                assert_eq!(k, CheckKind::PodTcp, "{p:?}");
                assert_eq!(p.key.address, addr.ip().to_string(), "{p:?}");
            }
            Probe::Known(outcome) => {
                // A node without an agent, or the lookup of a DNS Service that is missing.
                let missing_dns = k == CheckKind::DnsService && snap.dns.service_missing;
                assert!(k == CheckKind::NodeWithoutAgent || missing_dns, "{p:?}");
                assert_ne!(outcome.status(), crate::report::Status::Passed, "{p:?}");
            }
            _ => assert!(k.as_str().starts_with("dns-"), "{p:?}"),
        }
    }
    let count = |k: CheckKind| plan.checks.iter().filter(|p| p.key.kind == k).count();
    let live = snap
        .dns
        .instances
        .iter()
        .filter(|i| !i.terminating && (i.ready || i.serving))
        .count();
    let dns =
        count(CheckKind::DnsService) + count(CheckKind::DnsReverse) + count(CheckKind::DnsInstance);
    assert_eq!(dns, 2 + snap.dns.service_ips.len() + 2 * live);
    // At most one missing-agent check per node entry (a pod on an unknown node adds a row,
    // but never a missing agent).
    assert!(count(CheckKind::NodeWithoutAgent) <= snap.nodes.len());
    // A reduced mesh plans a subset of the full plan, its own node's row always included.
    let me = snap
        .nodes
        .first()
        .map(|n| n.name.as_str())
        .unwrap_or_default();
    let reach = crate::plan::Reach {
        peers: Some(1),
        dns_instance_peers: Some(1),
        pod_path_peers: Some(1),
    };
    let reduced = crate::plan::Planner::new(domain, me, reach).plan(snap);
    let full: std::collections::HashSet<_> = plan.checks.iter().map(|p| &p.key).collect();
    assert!(reduced.checks.iter().all(|p| full.contains(&p.key)));
    let own = |p: &crate::plan::Plan| {
        p.checks
            .iter()
            .filter(|c| !me.is_empty() && c.key.target_node == me)
            .filter(|c| !c.key.kind.as_str().starts_with("dns-"))
            .count()
    };
    assert_eq!(own(&reduced), own(&plan), "its own node's checks");

    let node = snap
        .nodes
        .first()
        .map(|n| n.name.clone())
        .unwrap_or_default();
    let pod = snap
        .agents
        .first()
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let ctx = crate::round::Context {
        node: &node,
        pod: &pod,
        previous: None,
        api_error: None,
        snapshot_age: Duration::ZERO,
    };
    let first = crate::round::run(&plan, &ctx, &Alternating);
    assert_eq!(
        first.checks.len(),
        plan.checks.len(),
        "a check lost in the round"
    );
    assert_eq!(
        first.errors,
        first.checks.iter().filter(|c| c.is_failed()).count()
    );
    let second = crate::round::run(
        &plan,
        &crate::round::Context {
            previous: Some(&first),
            ..ctx
        },
        &Alternating,
    );
    let mut totals = crate::view::metrics::Totals::new();
    totals.record(&first);
    totals.record(&second);
    let info = crate::view::metrics::AgentInfo {
        version: "0.0.0".to_string(),
        node,
        pod,
    };
    let text = crate::view::metrics::render(Some(&second), &totals, &info);
    for line in text.lines() {
        check_exposition_line(line);
    }
    for mode in [
        crate::view::log::LogTable::Full,
        crate::view::log::LogTable::Failures,
    ] {
        let _ = crate::view::log::render(&second, mode);
    }
    let json = serde_json::to_string(&second).expect("a round encodes");
    let back: RoundReport = serde_json::from_str(&json).expect("and decodes");
    assert_eq!(back.checks.len(), second.checks.len());
}

/// One line of the Prometheus text format: a `#` comment, or `name{label="value",...} value`
/// with only the escapes the format defines inside label values.
fn check_exposition_line(line: &str) {
    if line.starts_with('#') || line.is_empty() {
        return;
    }
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    assert!(name_end > 0, "sample without a name: {line:?}");
    let mut rest = line.get(name_end..).unwrap_or("");
    if let Some(labels) = rest.strip_prefix('{') {
        let mut chars = labels.char_indices();
        let mut in_value = false;
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match (in_value, c) {
                (true, '\\') => {
                    let escaped = chars.next().map(|(_, e)| e);
                    assert!(
                        matches!(escaped, Some('\\' | '"' | 'n')),
                        "bad escape: {line:?}"
                    );
                }
                (true, '"') => in_value = false,
                (true, _) => {}
                (false, '"') => in_value = true,
                (false, '}') => {
                    end = Some(i);
                    break;
                }
                (false, c) => assert!(
                    c.is_ascii_alphanumeric() || matches!(c, '_' | '=' | ','),
                    "bad label syntax: {line:?}"
                ),
            }
        }
        let end = end.unwrap_or_else(|| panic!("labels not closed: {line:?}"));
        rest = labels.get(end + 1..).unwrap_or("");
    }
    let value = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no value: {line:?}"));
    assert!(
        value.parse::<f64>().is_ok() || matches!(value, "+Inf" | "-Inf" | "NaN"),
        "bad value: {line:?}"
    );
}

/// Error bodies of the API (JSON `Status`, proxies' text and HTML) as the client reads them
/// for the one-line message of an error.
pub fn status_body(data: &[u8]) {
    let _ = serde_json::from_slice::<Status>(data);
    for code in [400, 401, 403, 404, 410, 429, 500, 502, 503] {
        for json in [true, false] {
            let m = crate::kube::client::status_message(code, json, data);
            assert!(!m.is_empty(), "empty message");
            assert!(
                m.chars().count() <= 203,
                "unbounded message: {} chars",
                m.len()
            );
            assert!(!m.contains(['\n', '\r']), "message is not one line: {m:?}");
        }
    }
}

/// resolv.conf text, read as the agent reads it (`read_to_string`, so invalid UTF-8 is a
/// read error the agent logs).
pub fn resolv_conf(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(domain) = dns::cluster_domain(text) {
        assert!(!domain.is_empty() && !domain.ends_with('.'), "{domain:?}");
        assert!(!domain.chars().any(char::is_whitespace), "{domain:?}");
        assert_eq!(domain, domain.to_ascii_lowercase());
        let names = dns::forward_names(&domain);
        for n in &names {
            assert!(n.ends_with(&format!("svc.{domain}.")), "{n:?}");
            // A domain that cannot be asked for is a DNS check error, not a panic.
            let _ = dns::encode_query(1, n, QType::A);
        }
    }
    let servers = dns::nameservers(text);
    let lines = text.lines().filter(|l| l.contains("nameserver")).count();
    assert!(servers.len() <= lines);
}

/// `/proc/net/route`, `/proc/net/ipv6_route` and `/sys/class/net/IF/mtu` text, read as the
/// agent reads them for `pod-mtu` (the pod's kernel writes them; parsed defensively anyway).
pub fn proc_routes(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for iface in [
        crate::mtu::ipv4_default_interface(text),
        crate::mtu::ipv6_default_interface(text),
    ]
    .into_iter()
    .flatten()
    {
        assert!(!iface.is_empty(), "{text:?}");
        assert!(!iface.contains(char::is_whitespace), "{iface:?}");
    }
    if let Some(i) = crate::mtu::ipv6_default_interface(text) {
        assert_ne!(i, "lo");
    }
    if let Some(mtu) = crate::mtu::parse_mtu(text) {
        assert!((68..=65_535).contains(&mtu), "{mtu}");
        for ipv6 in [false, true] {
            assert!(crate::mtu::payload(mtu, ipv6) < mtu as usize);
        }
    }
}

/// The command line and environment. Input: NUL-separated arguments, then (after a 0xff
/// byte, which UTF-8 never contains) NUL-separated `NAME=value` environment entries.
/// Arguments go through the flag parser into the agent's config and the API settings; every
/// word is also tried as a duration and a socket kind.
pub fn cli(data: &[u8]) {
    let (argv, env) = match data.iter().position(|&b| b == 0xff) {
        Some(i) => (
            data.get(..i).unwrap_or(&[]),
            data.get(i + 1..).unwrap_or(&[]),
        ),
        None => (data, &[][..]),
    };
    let words = |b: &[u8]| -> Vec<String> {
        if b.is_empty() {
            return Vec::new();
        }
        b.split(|&c| c == 0)
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect()
    };
    let argv = words(argv);
    let env: HashMap<String, String> = words(env)
        .into_iter()
        .filter_map(|e| {
            e.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let lookup = |k: &str| env.get(k).cloned();

    for w in argv.iter().chain(env.values()) {
        check_duration(w);
        let _ = crate::icmp::SocketKind::parse(w);
    }
    let Ok(crate::cli::Parsed::Run(args)) =
        crate::cli::parse(crate::config::FLAGS, argv.iter().cloned(), lookup)
    else {
        return;
    };
    for p in &args.positional {
        assert!(
            argv.contains(p),
            "positional {p:?} not from the command line"
        );
    }
    if let Ok(c) = crate::config::Config::from_args(&args, || Some("fuzz-host".to_string())) {
        assert!(c.interval >= Duration::from_secs(1));
        assert!(!c.timeout.is_zero() && c.timeout < c.interval);
        assert!(!c.dns_timeout.is_zero() && c.dns_timeout < c.interval);
        assert!((1..=100).contains(&c.count) && c.size <= 65_000);
    }
    if let Ok(s) = crate::kube::Settings::from_args(&args, &lookup) {
        assert!(
            s.api_server.starts_with("https://") || s.api_server.starts_with("http://"),
            "{:?}",
            s.api_server
        );
        assert!(!s.api_server.ends_with('/'));
    }
    let _ = crate::cli::help("x", "y", crate::config::FLAGS);
}

/// A duration is at most a year, and what `format` writes reads back as the same
/// milliseconds.
fn check_duration(text: &str) {
    let Ok(d) = crate::duration::parse(text) else {
        return;
    };
    assert!(d <= Duration::from_secs(86_400 * 365), "{text:?} -> {d:?}");
    let shown = crate::duration::format(d);
    let back = crate::duration::parse(&shown);
    let millis = Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    assert_eq!(back, Ok(millis), "{text:?} -> {d:?} -> {shown:?}");
}

/// The HTTP request head parser of the agent's port: no panic, never more than `HEAD_MAX`
/// bytes looked at, a complete head only without a body and independent of what follows it,
/// and every prefix of an acceptable head is "read more" (a slow client is not refused).
pub fn http_head(data: &[u8]) {
    use crate::http::request::{parse_head, path, HeadResult, Method, Refusal};
    use crate::http::request::{HEADERS_MAX, HEAD_MAX};

    let result = parse_head(data);
    match &result {
        HeadResult::Partial => assert!(data.len() < HEAD_MAX, "partial past HEAD_MAX"),
        HeadResult::Refused(Refusal::TooLarge) => {
            let lines = data.iter().take(HEAD_MAX).filter(|&&b| b == b'\n').count();
            assert!(
                data.len() >= HEAD_MAX || lines > HEADERS_MAX,
                "431 for a small head"
            );
        }
        HeadResult::Refused(_) => {}
        HeadResult::Complete { head, len } => {
            let len = *len;
            assert!(len > 0 && len <= data.len().min(HEAD_MAX), "len {len}");
            let raw = data.get(..len).unwrap_or(&[]);
            assert!(raw.ends_with(b"\n"), "a head that does not end a line");
            let lower = raw.to_ascii_lowercase();
            let has = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
            assert!(!has(b"\ntransfer-encoding:"), "accepted a chunked body");
            let start = raw.as_ptr() as usize;
            let t = head.target.as_ptr() as usize;
            assert!(
                t >= start && t + head.target.len() <= start + len,
                "target outside"
            );
            assert!(path(head.target).len() <= head.target.len());
            // Empty lines before the request line are skipped (RFC 9112 2.2).
            let line = raw.trim_ascii_start();
            match head.method {
                Method::Get => assert!(line.starts_with(b"GET "), "not a GET"),
                Method::Head => assert!(line.starts_with(b"HEAD "), "not a HEAD"),
                Method::Other => {}
            }
            // The head alone parses the same; so does every proper prefix as "read more".
            assert_eq!(parse_head(raw), result, "depends on the bytes after it");
            for cut in [len - 1, len / 2, len.min(5), 1] {
                if let Some(prefix) = raw.get(..cut).filter(|p| p.len() < len) {
                    assert_eq!(
                        parse_head(prefix),
                        HeadResult::Partial,
                        "prefix {cut} refused"
                    );
                }
            }
            // The next pipelined request.
            let _ = parse_head(data.get(len..).unwrap_or(&[]));
        }
    }
}

/// A peer agent's answer to `/summary.json`, whole (head and body), as the matrix refresh
/// reads it: the response parser, the summary, the matrix of it and this agent, the page and
/// the text. No panic; the body never exceeds the cap; the page has only the page's own tags
/// (a peer's text is escaped); the text fits in 80 columns; the matrix JSON reads back.
pub fn peer_summary(data: &[u8]) {
    use crate::matrix::{fetch, model, page, text};
    use crate::summary::Summary;
    use crate::view::metrics::AgentInfo;

    const CAP: usize = 64 * 1024;
    let body = match fetch::parse_response(data, CAP) {
        Ok(b) => b,
        Err(_) => data, // the body alone, as if the head had been fine
    };
    assert!(body.len() <= data.len());
    let peer = match Summary::parse(body) {
        Ok(s) => {
            assert!(!s.node.is_empty());
            Ok(model::reduce(s))
        }
        Err(e) => Err(e),
    };
    let own = Summary {
        format: 1,
        node: "node-0".into(),
        pod: "agent-0".into(),
        version: "0.2.0".into(),
        started_at: "2026-11-30T08:00:00.000Z".into(),
        started_unix: 1_796_025_600.0,
        duration_seconds: 1.0,
        interval_seconds: 60.0,
        api_error: None,
        targets: vec![],
        omitted_targets: 0,
        dns: vec![],
        omitted_dns: 0,
    };
    let m = model::build(model::Input {
        by: "node-0".into(),
        built_at: "2026-11-30T08:00:10.000Z".into(),
        built_unix: 1_796_025_610.0,
        nodes: vec!["node-0".into(), "node-1".into()],
        sources: vec![
            model::Source {
                node: "node-0".into(),
                pod: "agent-0".into(),
                data: Ok(model::reduce(own)),
            },
            model::Source {
                node: "node-1".into(),
                pod: "agent-1".into(),
                data: peer,
            },
        ],
    });
    let info = AgentInfo {
        version: "0.2.0".into(),
        node: "node-0".into(),
        pod: "agent-0".into(),
    };
    let html = page::render(&m, &info, Duration::from_secs(60));
    const TAGS: &[&str] = &[
        "style", "/style", "/head", "body", "/body", "h1", "/h1", "h2", "/h2", "p", "/p", "a",
        "/a", "b", "/b", "code", "/code", "table", "/table", "thead", "/thead", "tbody", "/tbody",
        "tr", "/tr", "th", "/th", "td", "/td", "div", "/div", "span", "/span", "/html",
    ];
    for (i, _) in html.match_indices('<') {
        let rest = &html[i + 1..];
        let name: String = rest
            .chars()
            .take_while(|c| *c == '/' || c.is_ascii_alphanumeric())
            .collect();
        assert!(
            TAGS.contains(&name.as_str()),
            "a tag <{name} from a peer's text"
        );
    }
    let t = text::render(&m);
    for line in t.lines() {
        assert!(
            line.chars().count() <= text::WIDTH,
            "a line over 80 columns: {line:?}"
        );
        assert!(
            !line.chars().any(char::is_control),
            "a control character: {line:?}"
        );
    }
    let json = serde_json::to_string(&m).expect("the matrix encodes");
    let back: model::Matrix = serde_json::from_str(&json).expect("the matrix reads back");
    assert_eq!(back.rows.len(), m.rows.len());
}
