//! The result of one round. Every output (the `kubectl logs` table, `/status.json`,
//! `--once --output json`, the Prometheus metrics) is a view of a [`RoundReport`].

use serde::{Deserialize, Serialize};

/// The kind of a check; serialised as the kebab-case names users see in JSON and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// ICMP echo to a peer agent pod's IP.
    PodPing,
    /// ICMP echo to a node's InternalIP.
    HostPing,
    /// Forward lookup through the system resolver (which talks to the DNS service IP).
    DnsService,
    /// A direct query to one DNS instance (one EndpointSlice endpoint).
    DnsInstance,
    /// Reverse lookup of the DNS service IP or an instance IP.
    DnsReverse,
    /// A node on which no agent pod is running: nothing there can report.
    NodeWithoutAgent,
}

impl CheckKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [CheckKind; 6] = [
        CheckKind::PodPing,
        CheckKind::HostPing,
        CheckKind::DnsService,
        CheckKind::DnsInstance,
        CheckKind::DnsReverse,
        CheckKind::NodeWithoutAgent,
    ];

    /// The name used in JSON, metrics labels and the log.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::PodPing => "pod-ping",
            CheckKind::HostPing => "host-ping",
            CheckKind::DnsService => "dns-service",
            CheckKind::DnsInstance => "dns-instance",
            CheckKind::DnsReverse => "dns-reverse",
            CheckKind::NodeWithoutAgent => "node-without-agent",
        }
    }
}

/// One check of one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub kind: CheckKind,
    /// The node the target belongs to ("" when none, e.g. the DNS service).
    pub target_node: String,
    /// What was checked: a pod name, a node name, a DNS name.
    pub target: String,
    /// The address probed or queried ("" when there is none to probe).
    pub address: String,
    pub ok: bool,
    /// Round-trip time of a successful check (average over the replies for pings).
    pub rtt_seconds: Option<f64>,
    /// Why the check failed, in a few words.
    pub error: Option<String>,
    /// Echo requests sent and replies received (pings only; 0 otherwise).
    #[serde(default)]
    pub sent: u32,
    #[serde(default)]
    pub received: u32,
    /// What a successful DNS check answered (a name or addresses); empty otherwise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub answer: String,
}

impl Check {
    /// The identity of a check across rounds, for diffing.
    pub fn key(&self) -> (CheckKind, &str, &str, &str) {
        (self.kind, &self.target_node, &self.target, &self.address)
    }
}

/// A check whose status differs from the previous round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub kind: CheckKind,
    pub target_node: String,
    pub target: String,
    pub address: String,
    /// `None` when the check did not exist in the previous round.
    pub was_ok: Option<bool>,
    /// `None` when the check disappeared in this round.
    pub now_ok: Option<bool>,
}

/// One round as every output sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundReport {
    /// The node this agent runs on.
    pub node: String,
    /// This agent's pod name.
    pub pod: String,
    /// When the round started, RFC 3339 in UTC.
    pub started_at: String,
    pub duration_seconds: f64,
    /// Number of failed checks.
    pub errors: usize,
    pub checks: Vec<Check>,
    /// Status changes since the previous round (empty on the first round).
    pub changes: Vec<Change>,
}
