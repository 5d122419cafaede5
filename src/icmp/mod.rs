//! ICMP echo to many targets at once, in fping's class: one socket per family, every request of
//! a round in flight together, replies matched exactly, RTTs from kernel receive timestamps.
//!
//! - [`packet`]: encode echo requests, decode replies and ICMP errors (pure).
//! - [`matcher`]: decide which received message counts for which target (pure).
//! - [`socket`]: open datagram ("ping") or raw ICMP sockets, send, receive with timestamps.
//! - [`prober`]: the round loop that sends and drains on one thread.

pub(crate) mod matcher;
pub(crate) mod packet;
mod prober;
pub(crate) mod socket;

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

pub use packet::{checksum, encode_echo, Family, MAX_PAYLOAD};
pub use prober::Prober;
pub use socket::Kind;

use crate::reason::Reason;

/// Which kind of ICMP socket to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// Datagram "ping" socket (SOCK_DGRAM/IPPROTO_ICMP): needs only the group to be inside
    /// `net.ipv4.ping_group_range`, the Kubernetes safe sysctl.
    Datagram,
    /// Raw socket: needs CAP_NET_RAW; sees every ICMP packet of the network namespace.
    Raw,
    /// Datagram if allowed, else raw.
    Auto,
}

impl SocketKind {
    /// Parses `auto`, `dgram`/`datagram`/`ping` or `raw`.
    pub fn parse(text: &str) -> Result<SocketKind, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(SocketKind::Auto),
            "dgram" | "datagram" | "ping" => Ok(SocketKind::Datagram),
            "raw" => Ok(SocketKind::Raw),
            _ => Err(format!(
                "invalid socket kind {text:?} (use auto, dgram or raw)"
            )),
        }
    }
}

/// How to probe.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// How long each request waits for its answer.
    pub timeout: Duration,
    /// Echo requests per target per round (more than one gives a loss ratio).
    pub count: u32,
    /// Payload bytes per request (like `ping -s`; 56 gives 64-byte ICMP messages).
    pub size: usize,
    /// Gap between requests to the same target when `count` > 1.
    pub interval: Duration,
    /// Socket kind to open.
    pub kind: SocketKind,
    /// A ceiling on requests sent per second (`--max-pps`), 0 for none: the requests of a
    /// round are then spread over `targets * count / max_pps` seconds (each still waits
    /// `timeout` for its own answer, so the round lasts that much longer).
    pub max_pps: u32,
    /// Send with don't-fragment in the probe mode of path MTU discovery (`IP_PMTUDISC_PROBE`,
    /// `IPV6_PMTUDISC_PROBE`): the kernel neither fragments nor uses a path MTU it learned
    /// earlier, so every round tests the path itself (the `pod-mtu` check).
    pub pmtu_probe: bool,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            timeout: Duration::from_secs(1),
            count: 1,
            size: 56,
            interval: Duration::from_millis(100),
            kind: SocketKind::Auto,
            max_pps: 0,
            pmtu_probe: false,
        }
    }
}

impl ProbeOptions {
    /// Checks the options; the message names the setting to fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.count == 0 || self.count > 10_000 {
            return Err(format!("invalid count {} (must be 1 to 10000)", self.count));
        }
        if self.size > packet::MAX_PAYLOAD {
            return Err(format!(
                "invalid size {} (must be at most {} bytes)",
                self.size,
                packet::MAX_PAYLOAD
            ));
        }
        if self.timeout.is_zero() {
            return Err("invalid timeout 0 (must be more than zero)".to_string());
        }
        Ok(())
    }
}

/// The outcome of probing one target in one round.
#[derive(Debug, Clone, PartialEq)]
pub struct PingResult {
    /// The address probed.
    pub target: IpAddr,
    /// Requests sent (or attempted).
    pub sent: u32,
    /// Replies that matched a request and came within the timeout.
    pub received: u32,
    /// Round-trip time of each counted reply, in arrival order.
    pub rtts: Vec<Duration>,
    /// Why nothing came back (only when `received` is 0), e.g. "destination host
    /// unreachable", "no reply within 1s", "send failed: ...".
    pub error: Option<String>,
    /// The same, classified (set exactly when `error` is): from the ICMP error's type and
    /// code, or the errno of the send, or `timeout`.
    pub reason: Option<Reason>,
}

impl PingResult {
    /// Whether the target answered at least once.
    pub fn ok(&self) -> bool {
        self.received > 0
    }

    /// Fraction of requests without a counted reply (1.0 when nothing was sent).
    pub fn loss_ratio(&self) -> f64 {
        if self.sent == 0 {
            return 1.0;
        }
        1.0 - f64::from(self.received.min(self.sent)) / f64::from(self.sent)
    }

    /// Smallest RTT.
    pub fn rtt_min(&self) -> Option<Duration> {
        self.rtts.iter().min().copied()
    }

    /// Mean RTT.
    pub fn rtt_avg(&self) -> Option<Duration> {
        let n = u32::try_from(self.rtts.len()).ok().filter(|&n| n > 0)?;
        Some(self.rtts.iter().sum::<Duration>() / n)
    }

    /// Largest RTT.
    pub fn rtt_max(&self) -> Option<Duration> {
        self.rtts.iter().max().copied()
    }
}

/// The prober could not open any ICMP socket. Its `Display` is the one log line to print: it
/// names both fixes when both kinds were tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// The options are invalid.
    Options(String),
    /// Neither kind that was tried is permitted.
    NotPermitted {
        /// The kind that was asked for.
        kind: SocketKind,
    },
    /// Something else failed (for every family).
    Io(String),
}

impl OpenError {
    /// A short, stable label of the failure (like `kube::Error::kind`, `DnsError::reason`).
    pub fn reason(&self) -> &'static str {
        match self {
            OpenError::Options(_) => "invalid-options",
            OpenError::NotPermitted { .. } => "not-permitted",
            OpenError::Io(_) => "io",
        }
    }
}

const FIX_SYSCTL: &str = "allow ping sockets with sysctl net.ipv4.ping_group_range=\"0 2147483647\" (a safe sysctl: pod securityContext.sysctls)";
const FIX_CAP: &str = "add capability NET_RAW for raw sockets";

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Options(m) => f.write_str(m),
            OpenError::NotPermitted { kind } => {
                f.write_str("cannot open an icmp socket: ")?;
                match kind {
                    SocketKind::Datagram => f.write_str(FIX_SYSCTL),
                    SocketKind::Raw => f.write_str(FIX_CAP),
                    SocketKind::Auto => write!(f, "{FIX_SYSCTL}, or {FIX_CAP}"),
                }
            }
            OpenError::Io(m) => write!(f, "cannot open an icmp socket: {m}"),
        }
    }
}

impl std::error::Error for OpenError {}

/// An `io::Error` as a short lowercase message without the "(os error N)" tail.
pub(crate) fn short_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => &s[..i],
        None => &s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn result_statistics() {
        let r = PingResult {
            target: "198.18.16.2".parse().unwrap(),
            sent: 4,
            received: 3,
            rtts: vec![ms(2), ms(1), ms(3)],
            error: None,
            reason: None,
        };
        assert!(r.ok());
        assert!((r.loss_ratio() - 0.25).abs() < 1e-9);
        assert_eq!(r.rtt_min(), Some(ms(1)));
        assert_eq!(r.rtt_avg(), Some(ms(2)));
        assert_eq!(r.rtt_max(), Some(ms(3)));
        let dead = PingResult {
            sent: 0,
            received: 0,
            rtts: vec![],
            ..r
        };
        assert!(!dead.ok());
        assert_eq!(dead.loss_ratio(), 1.0);
        assert_eq!(dead.rtt_avg(), None);
    }

    #[test]
    fn open_errors_have_stable_reasons() {
        assert_eq!(OpenError::Options("x".into()).reason(), "invalid-options");
        let e = OpenError::NotPermitted {
            kind: SocketKind::Raw,
        };
        assert_eq!(e.reason(), "not-permitted");
        assert_eq!(OpenError::Io("x".into()).reason(), "io");
    }

    #[test]
    fn open_error_names_both_fixes_in_one_line() {
        let e = OpenError::NotPermitted {
            kind: SocketKind::Auto,
        }
        .to_string();
        assert!(e.contains("net.ipv4.ping_group_range"), "{e}");
        assert!(e.contains("NET_RAW"), "{e}");
        assert!(!e.contains('\n'));
        let d = OpenError::NotPermitted {
            kind: SocketKind::Datagram,
        }
        .to_string();
        assert!(!d.contains("NET_RAW"));
    }

    #[test]
    fn options_and_kinds_validate() {
        assert!(ProbeOptions::default().validate().is_ok());
        let bad = ProbeOptions {
            count: 0,
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("count"));
        let big = ProbeOptions {
            size: 70_000,
            ..Default::default()
        };
        assert!(big.validate().unwrap_err().contains("size"));
        assert_eq!(SocketKind::parse("RAW"), Ok(SocketKind::Raw));
        assert_eq!(SocketKind::parse("dgram"), Ok(SocketKind::Datagram));
        assert!(SocketKind::parse("x").is_err());
    }

    #[test]
    fn short_error_is_lowercase_without_os_error() {
        let e = std::io::Error::from_raw_os_error(libc::EHOSTUNREACH);
        assert_eq!(short_error(&e), "no route to host");
    }
}
