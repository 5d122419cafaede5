//! ICMP and ICMPv6 echo encoding and the decoding of what comes back (replies, errors that
//! quote one of our requests, anything else). Pure byte work, no sockets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::reason::Reason;

/// Bytes at the start of every payload (when the payload is large enough): a per-prober nonce
/// and the full 32-bit sequence number, so a reply is matched exactly even after the 16-bit
/// ICMP sequence wraps or another process happens to use the same identifier.
pub const COOKIE_LEN: usize = 8;

/// Largest payload accepted (an IPv4 datagram of 65,535 bytes minus IP and ICMP headers).
pub const MAX_PAYLOAD: usize = 65_507;

/// IP family of a socket and the packets it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// ICMP over IPv4.
    V4,
    /// ICMPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    fn echo_request(self) -> u8 {
        match self {
            Family::V4 => 8,
            Family::V6 => 128,
        }
    }

    fn echo_reply(self) -> u8 {
        match self {
            Family::V4 => 0,
            Family::V6 => 129,
        }
    }
}

/// The Internet checksum (RFC 1071) over `data`.
pub fn checksum(data: &[u8]) -> u16 {
    // 64-bit sum of 16-bit words: cannot overflow below 2^48 bytes.
    let mut sum: u64 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        if let &[a, b] = c {
            sum += u64::from(u16::from_be_bytes([a, b]));
        }
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Builds an echo request with `size` payload bytes. The IPv4 checksum is filled in (raw
/// sockets need it; ping sockets recompute it); for ICMPv6 the kernel computes it on both socket
/// kinds, because it covers a pseudo-header with the source address we do not know here.
pub fn encode_echo(
    family: Family,
    id: u16,
    seq: u16,
    nonce: u32,
    seq32: u32,
    size: usize,
) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + size);
    p.extend_from_slice(&[family.echo_request(), 0, 0, 0]);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    // Filler byte i of the payload is i mod 256; the cookie replaces the first 8 bytes.
    let filler_from = if size >= COOKIE_LEN {
        p.extend_from_slice(&nonce.to_be_bytes());
        p.extend_from_slice(&seq32.to_be_bytes());
        COOKIE_LEN
    } else {
        0
    };
    p.extend((filler_from..size).map(|i| (i % 256) as u8));
    if family == Family::V4 {
        let c = checksum(&p);
        if let Some(slot) = p.get_mut(2..4) {
            slot.copy_from_slice(&c.to_be_bytes());
        }
    }
    p
}

/// The flow an ICMP error quotes: the destination, identifier and sequence of our request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted {
    /// Destination of the quoted echo request.
    pub dst: IpAddr,
    /// Its identifier.
    pub id: u16,
    /// Its sequence number.
    pub seq: u16,
    /// Its payload marker, when the error quotes enough of the request to hold it (routers
    /// must quote 8 bytes of the ICMP message, most quote more).
    pub cookie: Option<(u32, u32)>,
}

/// What one received ICMP message is, as far as the prober cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// An echo reply: `len` payload bytes, and `cookie` is `(nonce, seq32)` when the payload is
    /// long enough to carry one (the matcher decides whether it must).
    Reply {
        id: u16,
        seq: u16,
        len: usize,
        cookie: Option<(u32, u32)>,
    },
    /// An ICMP error quoting an echo request; `text` says what went wrong, `reason` classifies
    /// it.
    Error {
        quoted: Quoted,
        text: String,
        reason: Reason,
    },
    /// Anything else: echo requests (ours, seen on a raw socket), other types, errors that quote
    /// something that is not an echo request, bad checksums, truncated packets.
    Other,
}

/// Decodes one message from a socket of `family`. `ip_header` is true for raw IPv4 sockets,
/// which receive the IP header too.
pub fn decode(family: Family, buf: &[u8], ip_header: bool) -> Message {
    let icmp = if ip_header {
        match strip_ipv4_header(buf) {
            Some((_, rest)) => rest,
            None => return Message::Other,
        }
    } else {
        buf
    };
    let Some((&[ty, code, _, _, r0, r1, r2, r3], payload)) = icmp.split_first_chunk::<8>() else {
        return Message::Other;
    };
    if family == Family::V4 && checksum(icmp) != 0 {
        return Message::Other;
    }
    if ty == family.echo_reply() && code == 0 {
        return Message::Reply {
            id: u16::from_be_bytes([r0, r1]),
            seq: u16::from_be_bytes([r2, r3]),
            len: payload.len(),
            cookie: cookie(payload),
        };
    }
    let (Some(text), Some(reason)) = (
        error_text(family, ty, code, &[r0, r1, r2, r3]),
        error_reason(family, ty, code),
    ) else {
        return Message::Other;
    };
    match quoted_echo(family, payload) {
        Some(quoted) => Message::Error {
            quoted,
            text,
            reason,
        },
        None => Message::Other,
    }
}

/// The `(nonce, seq32)` marker at the start of an echo payload, if it is long enough.
fn cookie(payload: &[u8]) -> Option<(u32, u32)> {
    match payload {
        [a, b, c, d, e, f, g, h, ..] => Some((
            u32::from_be_bytes([*a, *b, *c, *d]),
            u32::from_be_bytes([*e, *f, *g, *h]),
        )),
        _ => None,
    }
}

/// Splits a raw IPv4 packet into (header, payload); `None` unless it is a sane ICMP packet.
fn strip_ipv4_header(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let first = *buf.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 || buf.get(9) != Some(&1) {
        return None;
    }
    buf.split_at_checked(ihl)
}

/// Finds the echo request quoted in an ICMP error body (inner IP header + ICMP header).
fn quoted_echo(family: Family, body: &[u8]) -> Option<Quoted> {
    let (dst, inner) = match family {
        Family::V4 => {
            let (hdr, rest) = strip_ipv4_header(body)?;
            let d: [u8; 4] = hdr.get(16..20)?.try_into().ok()?;
            (IpAddr::V4(Ipv4Addr::from(d)), rest)
        }
        Family::V6 => {
            let (hdr, rest) = body.split_at_checked(40)?;
            if hdr.first()? >> 4 != 6 || hdr.get(6) != Some(&58) {
                return None;
            }
            let d: [u8; 16] = hdr.get(24..40)?.try_into().ok()?;
            (IpAddr::V6(Ipv6Addr::from(d)), rest)
        }
    };
    quoted_from_icmp(family, dst, inner)
}

/// Reads identifier, sequence and marker from a quoted echo request (also what a ping socket's
/// error queue returns: the original ICMP message, as much of it as the error quoted).
pub fn quoted_from_icmp(family: Family, dst: IpAddr, icmp: &[u8]) -> Option<Quoted> {
    let (&[ty, _, _, _, i0, i1, s0, s1], payload) = icmp.split_first_chunk::<8>()?;
    if ty != family.echo_request() {
        return None;
    }
    Some(Quoted {
        dst,
        id: u16::from_be_bytes([i0, i1]),
        seq: u16::from_be_bytes([s0, s1]),
        cookie: cookie(payload),
    })
}

/// Where a ping socket's queued error came from (the kernel's `sock_extended_err`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrOrigin {
    /// An ICMP error: its type, code and the 4 bytes after the checksum (MTU for "too big").
    Icmp { ty: u8, code: u8, info: u32 },
    /// A local error (the kernel's own errno), e.g. no route.
    Local { errno: i32 },
}

/// The message a ping socket's error queue holds: `icmp` is the quoted request's ICMP header
/// as the queue returns it, `dst` where that request went. Pure, so it is tested and fuzzed
/// without sockets.
pub fn errqueue_message(family: Family, dst: IpAddr, origin: ErrOrigin, icmp: &[u8]) -> Message {
    let quoted = quoted_from_icmp(family, dst, icmp);
    let error = match origin {
        ErrOrigin::Icmp { ty, code, info } => {
            error_text(family, ty, code, &info.to_be_bytes()).zip(error_reason(family, ty, code))
        }
        ErrOrigin::Local { errno } => Some((
            super::short_error(&std::io::Error::from_raw_os_error(errno)),
            super::socket::errno_reason(errno),
        )),
    };
    match (quoted, error) {
        (Some(quoted), Some((text, reason))) => Message::Error {
            quoted,
            text,
            reason,
        },
        _ => Message::Other,
    }
}

/// Human text for an ICMP error type/code; `None` for types that are not errors.
/// `rest` is bytes 4..8 of the header (next-hop MTU for "too big").
pub fn error_text(family: Family, ty: u8, code: u8, rest: &[u8]) -> Option<String> {
    let mtu = match rest {
        [_, _, a, b] if family == Family::V4 => u32::from(u16::from_be_bytes([*a, *b])),
        [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
        _ => 0,
    };
    let text = match (family, ty) {
        (Family::V4, 3) => match code {
            0 => "destination network unreachable".to_string(),
            1 => "destination host unreachable".to_string(),
            2 => "destination protocol unreachable".to_string(),
            3 => "destination port unreachable".to_string(),
            4 => format!("fragmentation needed (mtu {mtu})"),
            9 | 10 | 13 => "communication administratively prohibited".to_string(),
            c => format!("destination unreachable (code {c})"),
        },
        (Family::V4, 11) => "time to live exceeded".to_string(),
        (Family::V4, 12) => "parameter problem".to_string(),
        (Family::V6, 1) => match code {
            0 => "no route to destination".to_string(),
            1 => "communication administratively prohibited".to_string(),
            3 => "destination address unreachable".to_string(),
            4 => "destination port unreachable".to_string(),
            5 | 6 => "source address failed policy".to_string(),
            c => format!("destination unreachable (code {c})"),
        },
        (Family::V6, 2) => format!("packet too big (mtu {mtu})"),
        (Family::V6, 3) => "hop limit exceeded".to_string(),
        (Family::V6, 4) => "parameter problem".to_string(),
        _ => return None,
    };
    Some(text)
}

/// The reason of an ICMP error (the one [`error_text`] describes), `None` for any other
/// message.
pub fn error_reason(family: Family, ty: u8, code: u8) -> Option<Reason> {
    let reason = match (family, ty) {
        (Family::V4, 3) => match code {
            4 => Reason::Mtu,
            9 | 10 | 13 => Reason::Prohibited,
            _ => Reason::Unreachable,
        },
        (Family::V4, 11) | (Family::V6, 3) => Reason::TtlExceeded,
        (Family::V4, 12) | (Family::V6, 4) => Reason::Unreachable,
        (Family::V6, 1) => match code {
            1 | 5 | 6 => Reason::Prohibited,
            _ => Reason::Unreachable,
        },
        (Family::V6, 2) => Reason::Mtu,
        _ => return None,
    };
    Some(reason)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal IPv4 header for tests (checksum not needed by the decoder).
    pub fn ipv4_header(src: [u8; 4], dst: [u8; 4], payload_len: usize) -> Vec<u8> {
        let mut h = vec![0u8; 20];
        h[0] = 0x45;
        h[2..4].copy_from_slice(&((20 + payload_len) as u16).to_be_bytes());
        h[8] = 64;
        h[9] = 1;
        h[12..16].copy_from_slice(&src);
        h[16..20].copy_from_slice(&dst);
        h
    }

    /// Turns an encoded request into the matching reply (what the peer's kernel sends).
    pub fn reply_to(req: &[u8], family: Family) -> Vec<u8> {
        let mut r = req.to_vec();
        r[0] = family.echo_reply();
        r[2] = 0;
        r[3] = 0;
        if family == Family::V4 {
            let c = checksum(&r);
            r[2..4].copy_from_slice(&c.to_be_bytes());
        }
        r
    }

    /// An ICMPv4 error of `ty`/`code` quoting `req` sent to `dst`.
    pub fn v4_error(ty: u8, code: u8, dst: [u8; 4], req: &[u8]) -> Vec<u8> {
        let mut e = vec![ty, code, 0, 0, 0, 0, 0, 0];
        e.extend(ipv4_header([198, 18, 16, 1], dst, req.len()));
        e.extend_from_slice(&req[..8]);
        let c = checksum(&e);
        e[2..4].copy_from_slice(&c.to_be_bytes());
        e
    }

    /// An ICMPv6 error of `ty`/`code` quoting `req` sent to `dst`.
    pub fn v6_error(ty: u8, code: u8, dst: Ipv6Addr, req: &[u8]) -> Vec<u8> {
        let mut e = vec![ty, code, 0, 0, 0, 0, 0, 0];
        let mut h = vec![0u8; 40];
        h[0] = 0x60;
        h[6] = 58;
        h[7] = 64;
        h[24..40].copy_from_slice(&dst.octets());
        e.extend(h);
        e.extend_from_slice(req);
        e
    }

    #[test]
    fn checksum_matches_rfc1071_examples() {
        // RFC 1071 section 3 example: sum is 0xddf2, checksum its complement.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2);
        // Odd length pads with a zero byte.
        assert_eq!(checksum(&[0xff]), !0xff00);
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn v4_echo_encodes_with_valid_checksum_and_cookie() {
        let p = encode_echo(Family::V4, 0x1234, 0xabcd, 7, 70_000, 56);
        assert_eq!(p.len(), 64);
        assert_eq!(&p[..2], &[8, 0]);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0xab, 0xcd]);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
        assert_eq!(&p[8..12], &7u32.to_be_bytes());
        assert_eq!(&p[12..16], &70_000u32.to_be_bytes());
    }

    #[test]
    fn v6_echo_leaves_checksum_to_the_kernel() {
        let p = encode_echo(Family::V6, 1, 2, 3, 4, 0);
        assert_eq!(p, vec![128, 0, 0, 0, 0, 1, 0, 2]);
    }

    #[test]
    fn reply_round_trips_on_both_families_and_socket_kinds() {
        for fam in [Family::V4, Family::V6] {
            let req = encode_echo(fam, 9, 10, 11, 12, 56);
            let rep = reply_to(&req, fam);
            let want = Message::Reply {
                id: 9,
                seq: 10,
                len: 56,
                cookie: Some((11, 12)),
            };
            assert_eq!(decode(fam, &rep, false), want);
            if fam == Family::V4 {
                let mut raw = ipv4_header([198, 18, 16, 2], [198, 18, 16, 1], rep.len());
                raw.extend(&rep);
                assert_eq!(decode(fam, &raw, true), want);
            }
        }
    }

    #[test]
    fn small_payload_has_no_cookie() {
        let req = encode_echo(Family::V4, 1, 2, 3, 4, 4);
        assert_eq!(
            decode(Family::V4, &reply_to(&req, Family::V4), false),
            Message::Reply {
                id: 1,
                seq: 2,
                len: 4,
                cookie: None
            }
        );
        // The filler is the same with or without a cookie: byte i is i mod 256.
        assert_eq!(&req[8..], &[0, 1, 2, 3]);
        let long = encode_echo(Family::V4, 1, 2, 3, 4, 300);
        assert_eq!((long[16], long[8 + 255], long[8 + 256]), (8, 255, 0));
    }

    #[test]
    fn echo_requests_bad_checksums_and_truncation_are_other() {
        let req = encode_echo(Family::V4, 1, 2, 3, 4, 56);
        assert_eq!(decode(Family::V4, &req, false), Message::Other);
        let req6 = encode_echo(Family::V6, 1, 2, 3, 4, 56);
        assert_eq!(decode(Family::V6, &req6, false), Message::Other);
        let mut bad = reply_to(&req, Family::V4);
        bad[20] ^= 0xff;
        assert_eq!(decode(Family::V4, &bad, false), Message::Other);
        assert_eq!(decode(Family::V4, &[0, 0, 0], false), Message::Other);
        assert_eq!(decode(Family::V4, &[0x45, 0, 0], true), Message::Other);
        assert_eq!(decode(Family::V6, &[], false), Message::Other);
    }

    #[test]
    fn v4_error_quoting_an_echo_is_decoded() {
        let req = encode_echo(Family::V4, 5, 6, 0, 0, 56);
        let e = v4_error(3, 1, [198, 18, 17, 9], &req);
        assert_eq!(
            decode(Family::V4, &e, false),
            Message::Error {
                quoted: Quoted {
                    dst: "198.18.17.9".parse().unwrap(),
                    id: 5,
                    seq: 6,
                    cookie: None,
                },
                text: "destination host unreachable".into(),
                reason: Reason::Unreachable,
            }
        );
        // An error quoting a UDP datagram (another flow) is not ours.
        let mut udp = e.clone();
        udp[8 + 9] = 17;
        udp[2] = 0;
        udp[3] = 0;
        let c = checksum(&udp);
        udp[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(decode(Family::V4, &udp, false), Message::Other);
    }

    #[test]
    fn v6_error_quoting_an_echo_is_decoded() {
        let dst: Ipv6Addr = "2001:db8:16::9".parse().unwrap();
        let req = encode_echo(Family::V6, 5, 6, 0, 0, 56);
        let e = v6_error(1, 3, dst, &req);
        match decode(Family::V6, &e, false) {
            Message::Error {
                quoted,
                text,
                reason,
            } => {
                assert_eq!(reason, Reason::Unreachable);
                assert_eq!(quoted.dst, IpAddr::V6(dst));
                assert_eq!((quoted.id, quoted.seq), (5, 6));
                assert_eq!(quoted.cookie, Some((0, 0)), "the whole request is quoted");
                assert_eq!(text, "destination address unreachable");
            }
            other => panic!("{other:?}"),
        }
        let too_big = error_text(Family::V6, 2, 0, &1280u32.to_be_bytes());
        assert_eq!(too_big.as_deref(), Some("packet too big (mtu 1280)"));
        assert_eq!(
            error_text(Family::V4, 3, 4, &[0, 0, 0x05, 0xdc]).as_deref(),
            Some("fragmentation needed (mtu 1500)")
        );
        assert_eq!(error_text(Family::V4, 0, 0, &[]), None);
    }

    #[test]
    fn every_described_error_has_a_reason() {
        for family in [Family::V4, Family::V6] {
            for ty in 0..=255 {
                for code in 0..=255 {
                    let text = error_text(family, ty, code, &[0, 0, 0, 0]);
                    let reason = error_reason(family, ty, code);
                    assert_eq!(text.is_some(), reason.is_some(), "{family:?} {ty}/{code}");
                }
            }
        }
        use Reason::*;
        for (family, ty, code, want) in [
            (Family::V4, 3, 1, Unreachable),
            (Family::V4, 3, 3, Unreachable),
            (Family::V4, 3, 4, Mtu),
            (Family::V4, 3, 13, Prohibited),
            (Family::V4, 11, 0, TtlExceeded),
            (Family::V6, 1, 0, Unreachable),
            (Family::V6, 1, 1, Prohibited),
            (Family::V6, 2, 0, Mtu),
            (Family::V6, 3, 0, TtlExceeded),
        ] {
            assert_eq!(error_reason(family, ty, code), Some(want), "{ty}/{code}");
        }
    }
}
