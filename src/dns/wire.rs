//! The DNS wire format (RFC 1035), just what the checks need: one question out, the answer
//! records of that type back. Hand-written so the agent needs no DNS crate; every read is
//! bounds-checked so a short or garbled packet is an error, never a panic or a hang.

use super::{DnsError, QType};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const HEADER_LEN: usize = 12;
const CLASS_IN: u16 = 1;
/// Longest name on the wire (RFC 1035 2.3.4).
const MAX_NAME_WIRE: usize = 255;
/// Compression pointers followed per name before the name is called a loop. A legal name has
/// at most 127 labels, so more jumps than that cannot be a real name.
const MAX_POINTER_JUMPS: usize = 128;

/// Encodes a query for `name` (absolute or not; a trailing dot is optional) with the given
/// ID and the RD bit set, so the reply is the same as what a pod's stub resolver would get.
pub fn encode_query(id: u16, name: &str, qtype: QType) -> Result<Vec<u8>, DnsError> {
    let mut out = Vec::with_capacity(HEADER_LEN + name.len() + 6);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00]); // RD
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QDCOUNT 1
    encode_name(name, &mut out)?;
    out.extend_from_slice(&qtype.code().to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(out)
}

fn encode_name(name: &str, out: &mut Vec<u8>) -> Result<(), DnsError> {
    let start = out.len();
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            if label.is_empty() {
                return Err(DnsError::BadName(format!("empty label in {name:?}")));
            }
            if label.len() > 63 {
                return Err(DnsError::BadName(format!(
                    "label longer than 63 bytes in {name:?}"
                )));
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    if out.len() - start > MAX_NAME_WIRE {
        return Err(DnsError::BadName(format!(
            "longer than 255 bytes: {name:?}"
        )));
    }
    Ok(())
}

/// Whether `packet` is a reply (QR set) to the query with this ID. Anything else arriving on
/// the socket (a late reply to an earlier query, a stray packet) is to be ignored, not failed.
pub fn is_reply_to(packet: &[u8], id: u16) -> bool {
    packet.len() >= HEADER_LEN
        && packet.get(0..2) == Some(&id.to_be_bytes()[..])
        && packet.get(2).is_some_and(|flags| flags & 0x80 != 0)
}

/// Decodes a reply to the query for `name`/`qtype` with the given ID: the records of that
/// type in the answer section, as text (addresses, or names with a trailing dot).
///
/// NXDOMAIN, REFUSED and SERVFAIL are errors with their names; a reply whose question is not
/// ours is malformed; no records is [`DnsError::NoAnswer`], or [`DnsError::Truncated`] when
/// the TC bit says they did not fit.
pub fn decode_response(
    packet: &[u8],
    id: u16,
    name: &str,
    qtype: QType,
) -> Result<Vec<String>, DnsError> {
    if packet.len() < HEADER_LEN {
        return Err(DnsError::Malformed("shorter than a header"));
    }
    if !is_reply_to(packet, id) {
        return Err(DnsError::Malformed("not a reply to our query"));
    }
    let flag = |i: usize| packet.get(i).copied().unwrap_or(0);
    let truncated = flag(2) & 0x02 != 0;
    match flag(3) & 0x0f {
        0 => {}
        2 => return Err(DnsError::ServFail),
        3 => return Err(DnsError::NxDomain),
        5 => return Err(DnsError::Refused),
        other => return Err(DnsError::Rcode(other)),
    }
    let qdcount = u16_at(packet, 4)?;
    let ancount = u16_at(packet, 6)?;
    if qdcount != 1 {
        return Err(DnsError::Malformed("question count is not 1"));
    }
    let mut pos = HEADER_LEN;
    let (qname, next) = read_name(packet, pos)?;
    pos = next;
    let (qt, qc) = (u16_at(packet, pos)?, u16_at(packet, pos + 2)?);
    pos += 4;
    if !qname.eq_ignore_ascii_case(&name_text(name)) || qt != qtype.code() || qc != CLASS_IN {
        return Err(DnsError::Malformed("question differs from ours"));
    }
    let mut answers = Vec::new();
    for _ in 0..ancount {
        let (_owner, next) = read_name(packet, pos)?;
        pos = next;
        let rtype = u16_at(packet, pos)?;
        let rclass = u16_at(packet, pos + 2)?;
        let rdlen = usize::from(u16_at(packet, pos + 8)?);
        let rdata_at = pos + 10;
        let rdata = packet
            .get(rdata_at..rdata_at + rdlen)
            .ok_or(DnsError::Malformed("record runs past the end"))?;
        pos = rdata_at + rdlen;
        if rclass != CLASS_IN || rtype != qtype.code() {
            continue; // e.g. the CNAME records before the addresses
        }
        answers.push(match qtype {
            QType::A => {
                let b: [u8; 4] = rdata
                    .try_into()
                    .map_err(|_| DnsError::Malformed("A record is not 4 bytes"))?;
                Ipv4Addr::from(b).to_string()
            }
            QType::Aaaa => {
                let b: [u8; 16] = rdata
                    .try_into()
                    .map_err(|_| DnsError::Malformed("AAAA record is not 16 bytes"))?;
                Ipv6Addr::from(b).to_string()
            }
            QType::Ptr => {
                let (target, end) = read_name(packet, rdata_at)?;
                if end != pos {
                    return Err(DnsError::Malformed("PTR name does not fill its record"));
                }
                target
            }
        });
    }
    if answers.is_empty() {
        return Err(if truncated {
            DnsError::Truncated
        } else {
            DnsError::NoAnswer
        });
    }
    Ok(answers)
}

fn u16_at(packet: &[u8], pos: usize) -> Result<u16, DnsError> {
    match packet.get(pos..pos + 2).map(<[u8; 2]>::try_from) {
        Some(Ok(b)) => Ok(u16::from_be_bytes(b)),
        _ => Err(DnsError::Malformed("cut short")),
    }
}

/// Reads a possibly compressed name at `pos`; returns it as text with a trailing dot and the
/// position after it in the packet (after the first pointer, if any).
fn read_name(packet: &[u8], mut pos: usize) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut end = None;
    let mut jumps = 0;
    let mut wire_len = 0;
    loop {
        let len = *packet
            .get(pos)
            .ok_or(DnsError::Malformed("name runs past the end"))?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                if name.is_empty() {
                    name.push('.');
                }
                return Ok((name, end.unwrap_or(pos + 1)));
            }
            0x00 => {
                let label = packet
                    .get(pos + 1..pos + 1 + usize::from(len))
                    .ok_or(DnsError::Malformed("label runs past the end"))?;
                wire_len += label.len() + 1;
                if wire_len > MAX_NAME_WIRE {
                    return Err(DnsError::Malformed("name longer than 255 bytes"));
                }
                push_label(&mut name, label);
                pos += 1 + usize::from(len);
            }
            0xc0 => {
                let low = *packet
                    .get(pos + 1)
                    .ok_or(DnsError::Malformed("pointer runs past the end"))?;
                jumps += 1;
                if jumps > MAX_POINTER_JUMPS {
                    return Err(DnsError::Malformed("compression pointer loop"));
                }
                end.get_or_insert(pos + 2);
                pos = usize::from(len & 0x3f) << 8 | usize::from(low);
            }
            _ => return Err(DnsError::Malformed("unknown label type")),
        }
    }
}

/// `name` spelled as [`read_name`] spells what [`encode_query`] sends for it (escapes
/// included), so that the question of the reply compares equal to ours whatever bytes the
/// name holds.
fn name_text(name: &str) -> String {
    let mut text = String::new();
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    for label in trimmed.split('.').filter(|l| !l.is_empty()) {
        push_label(&mut text, label.as_bytes());
    }
    if text.is_empty() {
        text.push('.');
    }
    text
}

/// Appends a label and a dot, escaping bytes that would make the text ambiguous or unprintable
/// (RFC 4343 style `\.` and `\DDD`).
fn push_label(name: &mut String, label: &[u8]) {
    for &b in label {
        match b {
            b'.' | b'\\' => {
                name.push('\\');
                name.push(char::from(b));
            }
            0x21..=0x7e => name.push(char::from(b)),
            _ => {
                let _ = write!(name, "\\{b:03}");
            }
        }
    }
    name.push('.');
}

/// The name a PTR query for `ip` asks for: `4.3.2.1.in-addr.arpa.` or the 32 nibbles under
/// `ip6.arpa.`.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa.")
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(73);
            for byte in v6.octets().iter().rev() {
                let _ = write!(s, "{:x}.{:x}.", byte & 0x0f, byte >> 4);
            }
            s.push_str("ip6.arpa.");
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply header: ID 0x1234, QR+RD+RA, the given RCODE/TC, QDCOUNT 1, ANCOUNT `an`.
    fn header(rcode: u8, tc: bool, an: u16) -> Vec<u8> {
        let mut h = vec![0x12, 0x34, 0x81 | if tc { 0x02 } else { 0 }, 0x80 | rcode];
        h.extend_from_slice(&[0, 1]);
        h.extend_from_slice(&an.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0, 0]);
        h
    }

    fn question(name: &str, qtype: QType) -> Vec<u8> {
        let mut q = Vec::new();
        encode_name(name, &mut q).unwrap();
        q.extend_from_slice(&qtype.code().to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    /// A record whose owner is a pointer to the question name (offset 12).
    fn record(rtype: u16, rdata: &[u8]) -> Vec<u8> {
        let mut r = vec![0xc0, 12];
        r.extend_from_slice(&rtype.to_be_bytes());
        r.extend_from_slice(&[0, 1, 0, 0, 0, 30]);
        r.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        r.extend_from_slice(rdata);
        r
    }

    const NAME: &str = "kube-dns.kube-system.svc.cluster.tst.local.";

    #[test]
    fn encodes_a_query() {
        let q = encode_query(0xabcd, "a.bc.", QType::A).unwrap();
        assert_eq!(
            q,
            [0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 2, b'b', b'c', 0, 0, 1, 0, 1]
        );
        // Relative and absolute spellings encode the same.
        assert_eq!(
            encode_query(1, "a.bc", QType::Ptr).unwrap(),
            encode_query(1, "a.bc.", QType::Ptr).unwrap()
        );
    }

    #[test]
    fn rejects_bad_names() {
        assert!(matches!(
            encode_query(1, "a..b", QType::A),
            Err(DnsError::BadName(_))
        ));
        let long_label = "x".repeat(64);
        assert!(encode_query(1, &long_label, QType::A).is_err());
        let long_name = vec!["abcdefghi"; 30].join(".");
        assert!(encode_query(1, &long_name, QType::A).is_err());
        assert!(encode_query(1, &"x".repeat(63), QType::A).is_ok());
    }

    #[test]
    fn decodes_a_records() {
        let mut p = header(0, false, 2);
        p.extend(question(NAME, QType::A));
        p.extend(record(1, &[10, 96, 0, 10]));
        p.extend(record(1, &[198, 18, 32, 1]));
        let got = decode_response(&p, 0x1234, NAME, QType::A).unwrap();
        assert_eq!(got, ["10.96.0.10", "198.18.32.1"]);
        // The question is compared without case and trailing dot.
        let upper = NAME.to_uppercase();
        assert!(decode_response(&p, 0x1234, upper.trim_end_matches('.'), QType::A).is_ok());
    }

    #[test]
    fn decodes_aaaa_and_skips_cname() {
        let mut p = header(0, false, 2);
        p.extend(question("x.local.", QType::Aaaa));
        // CNAME x.local. -> y.local. (y + pointer to "local" at offset 14)
        p.extend(record(5, &[1, b'y', 0xc0, 14]));
        let mut v6 = [0u8; 16];
        v6[0] = 0x20;
        v6[1] = 0x01;
        v6[2] = 0x0d;
        v6[3] = 0xb8;
        v6[15] = 1;
        p.extend(record(28, &v6));
        let got = decode_response(&p, 0x1234, "x.local", QType::Aaaa).unwrap();
        assert_eq!(got, ["2001:db8::1"]);
    }

    #[test]
    fn decodes_ptr_with_compression() {
        let qname = reverse_name("198.18.32.53".parse().unwrap());
        let mut p = header(0, false, 1);
        p.extend(question(&qname, QType::Ptr));
        // Target "dns.local." spelled "dns" + pointer to a later-appended... keep it simple:
        // "coredns" + pointer to "arpa." inside the question (a legal, if odd, suffix).
        let arpa_at = 12 + qname.len() - 5; // "arpa." label starts 5 bytes before the end
        let mut rdata = vec![7];
        rdata.extend_from_slice(b"coredns");
        rdata.extend_from_slice(&[0xc0, arpa_at as u8]);
        p.extend(record(12, &rdata));
        let got = decode_response(&p, 0x1234, &qname, QType::Ptr).unwrap();
        assert_eq!(got, ["coredns.arpa."]);
    }

    #[test]
    fn rcodes_are_named_errors() {
        for (rcode, want) in [
            (3, DnsError::NxDomain),
            (5, DnsError::Refused),
            (2, DnsError::ServFail),
            (4, DnsError::Rcode(4)),
        ] {
            let mut p = header(rcode, false, 0);
            p.extend(question(NAME, QType::A));
            assert_eq!(decode_response(&p, 0x1234, NAME, QType::A), Err(want));
        }
    }

    #[test]
    fn empty_and_truncated_answers() {
        let mut p = header(0, false, 0);
        p.extend(question(NAME, QType::A));
        assert_eq!(
            decode_response(&p, 0x1234, NAME, QType::A),
            Err(DnsError::NoAnswer)
        );
        let mut p = header(0, true, 0);
        p.extend(question(NAME, QType::A));
        assert_eq!(
            decode_response(&p, 0x1234, NAME, QType::A),
            Err(DnsError::Truncated)
        );
        assert_eq!(
            DnsError::Truncated.to_string(),
            "truncated answer without records"
        );
    }

    #[test]
    fn checks_id_qr_and_question() {
        let mut p = header(0, false, 1);
        p.extend(question(NAME, QType::A));
        p.extend(record(1, &[10, 0, 0, 1]));
        assert!(is_reply_to(&p, 0x1234));
        assert!(!is_reply_to(&p, 0x1235));
        assert!(decode_response(&p, 0x1235, NAME, QType::A).is_err());
        assert!(decode_response(&p, 0x1234, "other.local.", QType::A).is_err());
        assert!(decode_response(&p, 0x1234, NAME, QType::Aaaa).is_err());
        let mut query = p.clone();
        query[2] &= 0x7f; // QR clear: a query, not a reply
        assert!(!is_reply_to(&query, 0x1234));
        assert!(decode_response(&query, 0x1234, NAME, QType::A).is_err());
    }

    #[test]
    fn pointer_loops_end() {
        // The question name is a pointer to itself.
        let mut p = header(0, false, 0);
        p.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(
            decode_response(&p, 0x1234, NAME, QType::A),
            Err(DnsError::Malformed("compression pointer loop"))
        );
        // Two pointers pointing at each other, in an answer.
        let mut p = header(0, false, 1);
        p.extend(question("a.", QType::Ptr));
        let at = p.len();
        p.extend_from_slice(&[0xc0, (at + 2) as u8, 0xc0, at as u8]);
        assert!(decode_response(&p, 0x1234, "a.", QType::Ptr).is_err());
        // A label then a pointer back to it: grows the name each lap, stopped by the length.
        let mut p = header(0, false, 0);
        p.extend_from_slice(&[3, b'a', b'b', b'c', 0xc0, 12, 0, 1, 0, 1]);
        assert!(decode_response(&p, 0x1234, NAME, QType::A).is_err());
    }

    #[test]
    fn short_and_garbled_packets_do_not_panic() {
        let mut p = header(0, false, 2);
        p.extend(question(NAME, QType::A));
        p.extend(record(1, &[10, 96, 0, 10]));
        p.extend(record(1, &[198, 18, 32, 1]));
        for len in 0..p.len() {
            assert!(decode_response(&p[..len], 0x1234, NAME, QType::A).is_err());
        }
        // Every single-byte corruption either decodes or errors, without panicking.
        for i in 0..p.len() {
            for v in [0x00, 0x3f, 0x40, 0x80, 0xc0, 0xff] {
                let mut q = p.clone();
                q[i] = v;
                let _ = decode_response(&q, 0x1234, NAME, QType::A);
                let _ = decode_response(&q, 0x1234, NAME, QType::Ptr);
            }
        }
        // A wrong-sized A record.
        let mut p = header(0, false, 1);
        p.extend(question(NAME, QType::A));
        p.extend(record(1, &[10, 96, 0]));
        assert!(decode_response(&p, 0x1234, NAME, QType::A).is_err());
    }

    /// Found by fuzzing (fuzz/regressions/dns_reply/): a name with a byte the decoder
    /// escapes (space, backslash, UTF-8) never matched the question of its own reply.
    #[test]
    fn names_that_need_escapes_match_their_reply() {
        for name in [
            "a b.local.",
            "back\\slash.local",
            "clüster.local.",
            "x\u{1}y.",
        ] {
            let mut p = encode_query(0x1234, name, QType::A).unwrap();
            p[2] = 0x81;
            p[3] = 0x80;
            p[7] = 1;
            p.extend(record(1, &[198, 18, 3, 10]));
            assert_eq!(
                decode_response(&p, 0x1234, name, QType::A),
                Ok(vec!["198.18.3.10".to_string()]),
                "{name:?}"
            );
        }
        assert_eq!(name_text("."), ".");
        assert_eq!(name_text("A.b"), "A.b.");
    }

    #[test]
    fn odd_label_bytes_are_escaped() {
        let mut name = String::new();
        push_label(&mut name, b"a.b\\c d");
        assert_eq!(name, "a\\.b\\\\c\\032d.");
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("10.96.0.10".parse().unwrap()),
            "10.0.96.10.in-addr.arpa."
        );
        assert_eq!(
            reverse_name("2001:db8::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
        );
    }
}
