//! The check kinds and everything the views know about each, in one table.
//!
//! The log table, `/status.json`, the metrics and the status-change lines iterate checks and
//! read a kind's [`KindInfo`]; none of them names a kind. A new kind is one entry here, the
//! lines in `plan` that plan it and, only for a new probe family, an executor in `round`.

/// What the views know about a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    /// The name in JSON, metric labels and the log.
    pub name: &'static str,
    /// Whether a passed check measures a round-trip time (the kind then has an RTT histogram).
    pub rtt: bool,
    /// Where the `kubectl logs` table shows the kind's checks.
    pub log: LogPlace,
    /// A gauge of the kind's failed checks in the last round under a name of its own, kept
    /// where dashboards already use that name.
    pub failed_gauge: Option<Gauge>,
}

/// A metric name and its HELP text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gauge {
    pub name: &'static str,
    pub help: &'static str,
}

/// Where the `kubectl logs` table shows a kind's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogPlace {
    /// One line per check above the `Testing N nodes` line (the cluster-wide checks); the
    /// kinds' lines come in ascending `rank`.
    Line { rank: u8, format: LineFormat },
    /// A column `<name>: <rtt>/<rtt>` in the target node's `Checking:` row; columns come in
    /// ascending `rank`. `always`: printed (as `-`) even when the node has no such check.
    Column {
        rank: u8,
        addresses: RowSlot,
        always: bool,
    },
    /// Stands in the node's row where the agent is named, `- (<message>)`, when no column
    /// fills that slot: the node has no agent to report for it.
    NoAgent,
}

/// The line format of a cluster-wide check; `label` starts the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// `<label>: <address> <answer>` when passed, else `<label>: <address> (<target>) -
    /// <status>` (the original script's lines for the DNS IPs).
    Answer { label: &'static str },
    /// `<label>: <target> <answer> - <status>`: a name and what it resolved to.
    Lookup { label: &'static str },
    /// `<label>: <target> <address> <rtt> ms - <status>`: a target and how fast it answered.
    Timed { label: &'static str },
}

/// Where a column's check addresses appear in a node's `Checking:` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowSlot {
    /// Right after the node name: the node's own addresses.
    Host,
    /// After `Running -` with the first check's target: the node's agent pod and its IPs.
    Agent,
    /// Not shown (they repeat another column's addresses).
    Hidden,
}

/// Declares [`CheckKind`] from one list: variant, doc comment and properties, so a kind is
/// written once and [`CheckKind::ALL`] cannot miss one.
macro_rules! kinds {
    ($( $(#[doc = $doc:literal])+ $variant:ident => $info:expr, )+) => {
        /// The kind of a check; serialised as its name ([`KindInfo::name`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum CheckKind {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl CheckKind {
            /// Every kind, in the order JSON and metrics list them.
            pub const ALL: [CheckKind; {
                let names: &[&str] = &[$(stringify!($variant)),+];
                names.len()
            }] = [$(CheckKind::$variant),+];

            /// The kind's properties.
            pub const fn info(self) -> &'static KindInfo {
                match self {
                    $( CheckKind::$variant => &$info, )+
                }
            }
        }
    };
}

kinds! {
    /// ICMP echo to a peer agent pod's IP.
    PodPing => KindInfo {
        name: "pod-ping",
        rtt: true,
        log: LogPlace::Column { rank: 2, addresses: RowSlot::Agent, always: false },
        failed_gauge: None,
    },
    /// A TCP handshake with a peer agent pod's port (connect, then close): what ICMP does
    /// not see (a full conntrack table) and what it does (a policy that lists L4 ports).
    PodTcp => KindInfo {
        name: "pod-tcp",
        rtt: true,
        log: LogPlace::Column { rank: 3, addresses: RowSlot::Hidden, always: false },
        failed_gauge: None,
    },
    /// One don't-fragment echo to a peer agent pod's IP as large as the pod's MTU allows:
    /// an MTU black hole on the path (small pings pass, large packets vanish).
    PodMtu => KindInfo {
        name: "pod-mtu",
        rtt: true,
        log: LogPlace::Column { rank: 4, addresses: RowSlot::Hidden, always: false },
        failed_gauge: None,
    },
    /// ICMP echo to a node's InternalIP.
    HostPing => KindInfo {
        name: "host-ping",
        rtt: true,
        log: LogPlace::Column { rank: 1, addresses: RowSlot::Host, always: true },
        failed_gauge: None,
    },
    /// Forward lookup through the system resolver (which talks to the DNS service IP).
    DnsService => KindInfo {
        name: "dns-service",
        rtt: true,
        log: LogPlace::Line { rank: 2, format: LineFormat::Lookup { label: "DNS lookup" } },
        failed_gauge: None,
    },
    /// A direct query to one DNS instance (one EndpointSlice endpoint).
    DnsInstance => KindInfo {
        name: "dns-instance",
        rtt: true,
        log: LogPlace::Line { rank: 3, format: LineFormat::Timed { label: "DNS instance" } },
        failed_gauge: None,
    },
    /// Reverse lookup of the DNS service IP or an instance IP.
    DnsReverse => KindInfo {
        name: "dns-reverse",
        rtt: true,
        log: LogPlace::Line { rank: 1, format: LineFormat::Answer { label: "DNS" } },
        failed_gauge: None,
    },
    /// One small request to the API server (`GET /livez`) through discovery's own path: a node
    /// that cannot reach the API server has a network fault too.
    Api => KindInfo {
        name: "api",
        rtt: true,
        log: LogPlace::Line { rank: 4, format: LineFormat::Timed { label: "API server" } },
        failed_gauge: None,
    },
    /// A node on which no agent pod is running: nothing there can report.
    NodeWithoutAgent => KindInfo {
        name: "node-without-agent",
        rtt: false,
        log: LogPlace::NoAgent,
        failed_gauge: Some(Gauge {
            name: "networktest_nodes_without_agent",
            help: "Nodes with no running agent in the last round: nothing on them reports.",
        }),
    },
}

impl CheckKind {
    /// The name used in JSON, metrics labels and the log.
    pub const fn as_str(self) -> &'static str {
        self.info().name
    }
}

crate::named::named_enum!(CheckKind, "check kind");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_kebab_case_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for k in CheckKind::ALL {
            let name = k.as_str();
            assert!(seen.insert(name), "{name} twice");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{name}"
            );
            assert_eq!(name.parse::<CheckKind>(), Ok(k));
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{name}\""));
        }
    }

    #[test]
    fn log_ranks_are_unique_within_lines_and_columns() {
        let mut lines = std::collections::HashSet::new();
        let mut columns = std::collections::HashSet::new();
        for k in CheckKind::ALL {
            match k.info().log {
                LogPlace::Line { rank, .. } => assert!(lines.insert(rank), "{k}: line {rank}"),
                LogPlace::Column { rank, .. } => {
                    assert!(columns.insert(rank), "{k}: column {rank}")
                }
                LogPlace::NoAgent => {}
            }
        }
    }
}
