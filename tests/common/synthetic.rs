//! A synthetic cluster of any size for the scale tests and the round benchmark (which
//! includes this file by path): every node with an agent, four DNS instances, and rounds run
//! through the agent's own plan and round with executors that answer without sockets.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_network_test_daemonset::kube::{AgentPod, DnsInfo, DnsInstance, NodeInfo, Snapshot};
use k8s_network_test_daemonset::plan::{self, Plan, Probe};
use k8s_network_test_daemonset::report::{Measured, Outcome, Reason, RoundReport};
use k8s_network_test_daemonset::round::{self, Context, Executors};

/// The size the goals are set for.
pub const NODES: usize = 5000;

/// Node `i`'s host IP (198.18/16) or agent pod IP (198.19/16).
pub fn addr(second: u8, i: usize) -> IpAddr {
    IpAddr::from([198, second, (i / 250) as u8, (i % 250 + 1) as u8])
}

/// The node an address of [`addr`] belongs to.
pub fn node_of(a: IpAddr) -> usize {
    match a {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            usize::from(o[2]) * 250 + usize::from(o[3]) - 1
        }
        IpAddr::V6(_) => usize::MAX,
    }
}

pub fn snapshot(nodes: usize) -> Snapshot {
    Snapshot {
        agents: (0..nodes)
            .map(|i| AgentPod {
                name: format!("k8s-network-test-daemonset-{i:05x}"),
                node: format!("node-{i:04}"),
                pod_ips: vec![addr(19, i)],
                host_ips: vec![addr(18, i)],
                phase: "Running".into(),
                ready: true,
                deleting: false,
            })
            .collect(),
        nodes: (0..nodes)
            .map(|i| NodeInfo {
                name: format!("node-{i:04}"),
                internal_ips: vec![addr(18, i)],
                control_plane: i < 3,
                ready: true,
                unschedulable: false,
            })
            .collect(),
        dns: DnsInfo {
            service_missing: false,
            service_ips: vec!["198.18.250.10".parse().unwrap()],
            instances: (0..4)
                .map(|i| DnsInstance {
                    ip: IpAddr::from([198, 18, 251, i + 1]),
                    pod: Some(format!("coredns-5977b8689-{i}")),
                    node: Some(format!("node-{i:04}")),
                    ready: true,
                    serving: true,
                    terminating: false,
                })
                .collect(),
        },
    }
}

/// Every probe answers (RTTs from 0.2 to 1.2 ms) except, with `fail_odd`, the (small)
/// echoes to odd-numbered nodes.
pub struct Fake {
    pub fail_odd: bool,
}

impl Executors for Fake {
    fn echo(&self, addrs: &[IpAddr]) -> Vec<Measured> {
        addrs
            .iter()
            .map(|a| {
                let n = node_of(*a);
                if self.fail_odd && n % 2 == 1 {
                    Measured {
                        sent: 1,
                        ..Measured::failed(Reason::Timeout, "no reply within 1s")
                    }
                } else {
                    Measured {
                        rtt_seconds: Some(0.0002 + (n % 101) as f64 * 0.00001),
                        sent: 1,
                        received: 1,
                        ..Measured::of(Outcome::Passed)
                    }
                }
            })
            .collect()
    }

    /// Handshakes all pass: only the echoes to odd nodes fail.
    fn connect(&self, addrs: &[SocketAddr]) -> Vec<Measured> {
        let passed = Measured {
            rtt_seconds: Some(0.0003),
            ..Measured::of(Outcome::Passed)
        };
        vec![passed; addrs.len()]
    }

    /// Large echoes all pass: only the small echoes to odd nodes fail.
    fn echo_mtu(&self, addrs: &[IpAddr]) -> Vec<Measured> {
        let passed = Measured {
            rtt_seconds: Some(0.0003),
            sent: 1,
            received: 1,
            ..Measured::of(Outcome::Passed)
        };
        vec![passed; addrs.len()]
    }

    fn dns(&self, probe: &Probe) -> Measured {
        Measured {
            rtt_seconds: Some(0.0008),
            answer: match probe {
                Probe::SystemReverse { .. } => "kube-dns.kube-system.svc.cluster.local.".into(),
                _ => "198.18.250.10".into(),
            },
            ..Measured::of(Outcome::Passed)
        }
    }
}

pub fn run(plan: &Plan, previous: Option<&RoundReport>, fail_odd: bool) -> RoundReport {
    let ctx = Context {
        node: "node-0000",
        pod: "k8s-network-test-daemonset-00000",
        previous,
        api_error: None,
        snapshot_age: Duration::ZERO,
    };
    round::run(plan, &ctx, &Fake { fail_odd })
}

/// The rounds of the scenarios: the first, a healthy one after it, and one with half the
/// nodes failing after that.
pub fn rounds(nodes: usize) -> (RoundReport, RoundReport, RoundReport) {
    let plan = plan::plan(&snapshot(nodes), "cluster.local");
    let first = run(&plan, None, false);
    let healthy = run(&plan, Some(&first), false);
    let half = run(&plan, Some(&healthy), true);
    (first, healthy, half)
}
