//! Faults for the scenarios of issue 13 (`tests/e2e_faults.rs`) and the pairwise one of
//! `tests/e2e.rs`: the API path blocked from one node, TCP to one agent's port dropped, the
//! pod paths to one node with a smaller MTU, and the pod path between two nodes broken. Each
//! call with `false` (or `None`) undoes the same call with `true`.

use crate::lab::{AGENT_PORT, API_PORT};
use crate::{host_ip, Cluster, API_IP};

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

    /// Sets the MTU of the pod network's paths to and from node `i` (the routes between its
    /// pod block and every other node's, on both ends), or back to the links' 1500 with
    /// `None`: an overlay whose tunnel to one node has a smaller MTU than the pods think.
    /// Large don't-fragment packets on those paths get "fragmentation needed" from the
    /// sending node; small ones, the nodes' own traffic and the API's pass.
    pub fn set_pod_path_mtu(&self, i: usize, mtu: Option<u32>) {
        let mtu = mtu.map(|m| m.to_string());
        let route = |from: usize, to: usize| {
            let mut args = vec![
                "route".to_string(),
                "replace".into(),
                format!("198.19.{to}.0/24"),
                "via".into(),
                host_ip(to).to_string(),
            ];
            if let Some(m) = &mtu {
                args.extend(["mtu".into(), m.clone()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            self.nodes[from].ns.ip(&args);
        };
        for j in (0..self.nodes.len()).filter(|j| *j != i) {
            route(i, j);
            route(j, i);
        }
    }

    /// Breaks the pod network path between nodes `i` and `j` at node `i` (it stops forwarding
    /// between their pod blocks, as a stale tunnel or FDB entry would), or mends it: every
    /// pod of the two nodes loses every pod of the other, both ways; host paths and every
    /// other pod path work.
    pub fn set_pod_path_broken(&self, i: usize, j: usize, broken: bool) {
        let op = if broken { "-I" } else { "-D" };
        let (a, b) = (format!("198.19.{i}.0/24"), format!("198.19.{j}.0/24"));
        for (from, to) in [(&a, &b), (&b, &a)] {
            self.nodes[i].ns.exec(&[
                "iptables", op, "FORWARD", "-s", from, "-d", to, "-j", "DROP",
            ]);
        }
    }
}
