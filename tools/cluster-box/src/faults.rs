//! Faults for the scenarios of issue 13 (`tests/e2e_faults.rs`): the API path blocked from
//! one node, TCP to one agent's port dropped, and one node's underlay MTU lowered. Each
//! call with `false` (or `None`) undoes the same call with `true`.

use crate::lab::{AGENT_PORT, API_PORT};
use crate::{Cluster, API_IP};

impl Cluster {
    /// Drops everything node `i` forwards to the API server's port (its pods' API path),
    /// or stops dropping it.
    pub fn block_api_at_node(&self, i: usize, blocked: bool) {
        let op = if blocked { "-I" } else { "-D" };
        self.nodes[i].ns.exec(&[
            "iptables",
            op,
            "FORWARD",
            "-d",
            &API_IP.to_string(),
            "-p",
            "tcp",
            "--dport",
            &API_PORT.to_string(),
            "-j",
            "DROP",
        ]);
    }

    /// Drops new TCP connections to agent pod `i`'s port that come over its network (from
    /// the other pods; the lab's own requests from inside the pod still pass), as a full
    /// conntrack table or a policy for TCP would; ICMP still passes.
    pub fn drop_tcp_at_agent(&self, i: usize, drop: bool) {
        let op = if drop { "-I" } else { "-D" };
        self.agents[i].ns.exec(&[
            "iptables",
            op,
            "INPUT",
            "-i",
            "eth0",
            "-p",
            "tcp",
            "--syn",
            "--dport",
            &AGENT_PORT.to_string(),
            "-j",
            "DROP",
        ]);
    }

    /// Sets node `i`'s underlay link MTU (both ends: the node's `eth0` and its bridge port),
    /// or back to 1500 with `None`. Below the pods' 1500, node `i` answers its pods' large
    /// packets with "fragmentation needed" and the bridge drops large packets towards it.
    pub fn set_underlay_mtu(&self, i: usize, mtu: Option<u32>) {
        let mtu = mtu.unwrap_or(1500).to_string();
        self.nodes[i]
            .ns
            .ip(&["link", "set", "dev", "eth0", "mtu", &mtu]);
        self.underlay
            .ip(&["link", "set", "dev", &format!("n{i}"), "mtu", &mtu]);
    }
}
