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

pub use query::query;
pub use resolv::{cluster_domain, forward_names, nameservers};
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
    }
}
