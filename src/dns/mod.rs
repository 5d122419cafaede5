//! Cluster DNS checks: the system resolver (what pods really use, through the DNS service IP)
//! and direct UDP queries to each DNS instance (so every instance is proven to answer on its
//! own, which the system resolver never shows).
//!
//! The pure parts (resolv.conf parsing, the wire format) are separate from the I/O
//! ([`query`] over UDP, [`system_forward`]/[`system_reverse`] through libc).

mod query;
pub(crate) mod resolv;
mod system;
pub(crate) mod wire;

use std::fmt;
use std::time::Duration;

use crate::reason::Reason;

pub use query::query;
pub use resolv::{cluster_domain, forward_names, nameservers, resolver, NODE_LOCAL_DNS};
pub use system::{system_forward, system_reverse, MAX_STUCK_LOOKUPS};
pub use wire::{decode_response, encode_query, is_reply_to, reverse_name};

/// The record types the checks ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QType {
    A,
    Aaaa,
    Ptr,
}

impl QType {
    /// The type code on the wire (RFC 1035, RFC 3596).
    pub fn code(self) -> u16 {
        match self {
            QType::A => 1,
            QType::Aaaa => 28,
            QType::Ptr => 12,
        }
    }
}

impl fmt::Display for QType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QType::A => "A",
            QType::Aaaa => "AAAA",
            QType::Ptr => "PTR",
        })
    }
}

/// Why a lookup failed. The `Display` text is short: it ends up in a table cell and a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    /// No (valid) reply within the timeout.
    Timeout(Duration),
    /// The name does not exist (RCODE 3, or EAI_NONAME from the system resolver).
    NxDomain,
    /// The name exists but has no record of the asked type.
    NoAnswer,
    /// The server refused (RCODE 5): typically a name outside the zones it serves.
    Refused,
    /// The server failed (RCODE 2).
    ServFail,
    /// Another non-zero RCODE.
    Rcode(u8),
    /// The reply had the TC bit and no records: the answer did not fit in UDP.
    Truncated,
    /// The query could not be sent (no route, port unreachable, ...).
    Unreachable(String),
    /// The name cannot be put in a query (empty label, label over 63 bytes, ...).
    BadName(String),
    /// The reply could not be parsed.
    Malformed(&'static str),
    /// The system resolver failed in a way not listed above.
    Resolver(String),
    /// Too many earlier lookups are still stuck in the system resolver.
    Busy,
    /// The lookup's helper thread could not be started.
    NoThread(String),
    /// The lookup's helper thread ended without a result (it panicked: a bug).
    ThreadDied,
}

impl DnsError {
    /// The failure's reason, for the check's `reason` and the failure counter's label.
    pub fn reason(&self) -> Reason {
        match self {
            DnsError::Timeout(_) => Reason::Timeout,
            DnsError::NxDomain => Reason::Nxdomain,
            DnsError::NoAnswer => Reason::NoAnswer,
            DnsError::Refused => Reason::Refused,
            DnsError::ServFail => Reason::Servfail,
            DnsError::Rcode(_) | DnsError::Truncated => Reason::DnsError,
            DnsError::Unreachable(_) => Reason::Unreachable,
            DnsError::BadName(_) => Reason::BadName,
            DnsError::Malformed(_) => Reason::Malformed,
            DnsError::Resolver(_) => Reason::ResolverError,
            DnsError::Busy => Reason::ResolverStuck,
            DnsError::NoThread(_) => Reason::NoThread,
            DnsError::ThreadDied => Reason::Internal,
        }
    }
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::Timeout(d) => write!(f, "timeout after {}", crate::duration::format(*d)),
            DnsError::NxDomain => f.write_str("NXDOMAIN"),
            DnsError::NoAnswer => f.write_str("no answer"),
            DnsError::Refused => f.write_str("refused"),
            DnsError::ServFail => f.write_str("SERVFAIL"),
            DnsError::Rcode(c) => write!(f, "error code {c}"),
            DnsError::Truncated => f.write_str("truncated answer without records"),
            DnsError::Unreachable(why) => write!(f, "unreachable: {why}"),
            DnsError::BadName(why) => write!(f, "invalid name: {why}"),
            DnsError::Malformed(why) => write!(f, "malformed reply: {why}"),
            DnsError::Resolver(why) => write!(f, "resolver: {why}"),
            DnsError::Busy => write!(
                f,
                "resolver stuck: {MAX_STUCK_LOOKUPS} lookups still pending"
            ),
            DnsError::NoThread(why) => write!(f, "cannot start lookup thread: {why}"),
            DnsError::ThreadDied => f.write_str("lookup thread died"),
        }
    }
}

impl std::error::Error for DnsError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_short() {
        assert_eq!(
            DnsError::Timeout(Duration::from_secs(2)).to_string(),
            "timeout after 2s"
        );
        assert_eq!(DnsError::NxDomain.to_string(), "NXDOMAIN");
        assert_eq!(DnsError::NoAnswer.to_string(), "no answer");
        assert_eq!(DnsError::Refused.to_string(), "refused");
        assert_eq!(
            DnsError::Unreachable("connection refused".into()).to_string(),
            "unreachable: connection refused"
        );
        assert_eq!(
            DnsError::NoThread("resource temporarily unavailable".into()).to_string(),
            "cannot start lookup thread: resource temporarily unavailable"
        );
    }

    #[test]
    fn reasons_follow_the_variant() {
        assert_eq!(DnsError::NxDomain.reason(), Reason::Nxdomain);
        assert_eq!(DnsError::Rcode(4).reason(), Reason::DnsError);
        assert_eq!(DnsError::Busy.reason(), Reason::ResolverStuck);
        assert_eq!(DnsError::NoThread("x".into()).reason(), Reason::NoThread);
        assert_eq!(
            DnsError::Timeout(Duration::from_secs(1)).reason(),
            Reason::Timeout
        );
    }
}
