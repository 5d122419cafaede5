//! Why a check failed or was skipped, as one word from a fixed set: a label users can count
//! and alert on (`networktest_check_failures_total{kind,reason}`, `reason` in JSON), beside
//! the check's human message. The probes classify their own failures into it (the ICMP
//! prober from errnos and ICMP types, the DNS code from its error variants), so no reason is
//! ever guessed from message text. The set is closed: a label's values stay bounded.

/// Declares [`Reason`] from one list: variant, name and doc comment, so a reason is written
/// once and [`Reason::ALL`] cannot miss one.
macro_rules! reasons {
    ($( $(#[doc = $doc:literal])+ $variant:ident = $name:literal, )+) => {
        /// Why a check failed or was skipped; serialised as its kebab-case name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl Reason {
            /// Every reason, in declaration order.
            pub const ALL: [Reason; { let names: &[&str] = &[$($name),+]; names.len() }] =
                [$(Reason::$variant),+];

            /// The name used in JSON and metric labels.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Reason::$variant => $name, )+
                }
            }
        }
    };
}

reasons! {
    /// No answer within the timeout (an echo reply, a DNS reply, a resolver result).
    Timeout = "timeout",
    /// The path answered that the target cannot be reached (an ICMP destination or port
    /// unreachable, a parameter problem), or the kernel has no route for it.
    Unreachable = "unreachable",
    /// A router or the target answered "administratively prohibited": a firewall rule that
    /// rejects (rather than drops) the packet, or a source address that failed a policy.
    Prohibited = "prohibited",
    /// "Fragmentation needed" or "packet too big": the packet is larger than the path allows.
    Mtu = "mtu",
    /// An echo to an agent pod got no answer while a TCP handshake with the same pod
    /// passed in the same round: the pod is alive and something on the way filters ICMP (a
    /// network policy that lists L4 ports, for example), not a dead pod or path.
    IcmpFiltered = "icmp-filtered",
    /// Time to live (hop limit) exceeded on the way: usually a routing loop.
    TtlExceeded = "ttl-exceeded",
    /// The local kernel refused to send (EPERM, EACCES): an OUTPUT firewall rule or a
    /// prohibit route on this node.
    NotPermitted = "not-permitted",
    /// Sending failed for another local reason (the message says which errno).
    SendError = "send-error",
    /// The socket buffer or interface queue stayed full for the round's whole back-off budget.
    NoBuffer = "no-buffer",
    /// No socket could be opened for the target's address family (no IPv6 in the pod, ...).
    NoSocket = "no-socket",
    /// The DNS name does not exist (NXDOMAIN).
    Nxdomain = "nxdomain",
    /// The DNS server failed (SERVFAIL), or the resolver reported a temporary failure.
    Servfail = "servfail",
    /// The DNS server refused the query (REFUSED): typically a zone it does not serve. Or
    /// a TCP connect was reset: the host is there, but nothing listens on the port.
    Refused = "refused",
    /// The name exists but has no record of the asked type.
    NoAnswer = "no-answer",
    /// Another DNS response code, or a truncated reply without records.
    DnsError = "dns-error",
    /// The DNS server answered an address that is not the DNS Service's own (stale or wrong
    /// records, a rogue server on the path).
    WrongAnswer = "wrong-answer",
    /// The reply could not be parsed.
    Malformed = "malformed",
    /// The name cannot be put in a query (an invalid cluster domain, for example).
    BadName = "bad-name",
    /// Too many earlier lookups are still stuck in the system resolver: it does not return.
    ResolverStuck = "resolver-stuck",
    /// The system resolver failed in a way it does not name more precisely.
    ResolverError = "resolver-error",
    /// The TLS handshake with the API server failed (its certificate, the CA file).
    Tls = "tls",
    /// The API server answered with an HTTP error where an answer was expected.
    ApiError = "api-error",
    /// The API client could not make a request at all (its token or CA file, a bad URL): a
    /// problem of this agent's configuration, not of the network.
    ApiClient = "api-client",
    /// No agent pod runs (usably) on the node: nothing there can report for itself.
    NoAgent = "no-agent",
    /// The agent could not start a thread for the check (a process or cgroup thread limit).
    NoThread = "no-thread",
    /// The agent itself failed (a probe thread panicked or returned no result): a bug.
    Internal = "internal",
    /// The target's node is being deleted (`deletionTimestamp`): skipped.
    NodeDeleting = "node-deleting",
    /// The target's node is tainted `ToBeDeletedByClusterAutoscaler`: skipped.
    ScaleDown = "scale-down",
    /// The target agent pod is terminating (a rollout, a drain): skipped.
    AgentTerminating = "agent-terminating",
    /// The target agent pod is not Ready yet, or its node joined, within the start-up grace
    /// period: skipped.
    AgentStarting = "agent-starting",
    /// The target's node is NotReady in the API (and the check failed): the node is down or
    /// cut off, not just this path.
    NodeNotReady = "node-not-ready",
    /// The node's agent pod runs but is not Ready past the grace period: nothing there
    /// reports.
    AgentNotReady = "agent-not-ready",
    /// The cluster DNS Service (`--dns-service`) does not exist.
    NoDnsService = "no-dns-service",
}

crate::named::named_enum!(Reason, "reason");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_kebab_case_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            let name = r.as_str();
            assert!(seen.insert(name), "{name} twice");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{name}"
            );
            assert_eq!(name.parse::<Reason>(), Ok(r));
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{name}\""));
        }
        assert!("no-such-reason".parse::<Reason>().is_err());
    }
}
