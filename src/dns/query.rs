//! A direct query over UDP to one DNS server, bypassing the system resolver, which only ever
//! talks to the DNS service IP and so cannot tell whether each instance behind it answers.

use super::wire::{decode_response, encode_query, is_reply_to};
use super::{DnsError, QType};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Largest UDP reply read; replies bigger than the classic 512 bytes come only with EDNS,
/// which we do not ask for, but a server may still send them.
const MAX_REPLY: usize = 4096;

/// Asks `server` for the `qtype` records of `name` and returns them as text (addresses, or
/// names with a trailing dot for PTR).
///
/// The socket is connected, so the kernel drops datagrams from any other address; replies
/// with another ID or without the QR bit are skipped. The query is sent again once, halfway
/// through the timeout, so a single lost datagram is not reported as a dead instance.
pub fn query(
    server: SocketAddr,
    name: &str,
    qtype: QType,
    timeout: Duration,
) -> Result<Vec<String>, DnsError> {
    let id = random_id();
    let packet = encode_query(id, name, qtype)?;
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).map_err(unreachable)?;
    socket.connect(server).map_err(unreachable)?;
    let start = Instant::now();
    let deadline = start + timeout;
    let resend_at = start + timeout / 2;
    let mut resent = false;
    socket.send(&packet).map_err(unreachable)?;
    let mut buf = vec![0u8; MAX_REPLY];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(DnsError::Timeout(timeout));
        }
        if !resent && now >= resend_at {
            resent = true;
            socket.send(&packet).map_err(unreachable)?;
        }
        let wake = if resent { deadline } else { resend_at };
        let wait = wake
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        socket.set_read_timeout(Some(wait)).map_err(unreachable)?;
        match socket.recv(&mut buf) {
            Ok(n) => {
                let reply = buf.get(..n).unwrap_or(&[]);
                if is_reply_to(reply, id) {
                    return decode_response(reply, id, name, qtype);
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(unreachable(e)),
        }
    }
}

fn unreachable(e: std::io::Error) -> DnsError {
    let why = match e.kind() {
        ErrorKind::ConnectionRefused => "port closed".to_string(),
        ErrorKind::HostUnreachable => "host unreachable".to_string(),
        ErrorKind::NetworkUnreachable => "network unreachable".to_string(),
        _ => e.to_string().to_lowercase(),
    };
    DnsError::Unreachable(why)
}

/// A query ID that an off-path sender cannot guess from earlier ones: std's `RandomState` is
/// seeded from the OS, and a counter makes IDs differ within one process.
fn random_id() -> u16 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish() as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_vary() {
        let ids: std::collections::HashSet<u16> = (0..64).map(|_| random_id()).collect();
        assert!(ids.len() > 32, "{} distinct ids of 64", ids.len());
    }

    #[test]
    fn bad_name_fails_before_io() {
        let server: SocketAddr = "198.18.32.1:53".parse().unwrap();
        assert!(matches!(
            query(server, "a..b", QType::A, Duration::from_millis(1)),
            Err(DnsError::BadName(_))
        ));
    }
}
