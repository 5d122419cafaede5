//! What a round checks, decided from a discovery [`Snapshot`] alone (pure, no I/O): one list
//! of planned checks, each with its key and the probe that decides it. With the executors in
//! `round`, this is the only code that knows which kind is probed how.
//!
//! Every node gets a host ping per InternalIP; every agent pod with an IP gets a pod ping per
//! IP (this agent's own pod included, as the original shell script did: it proves the pod network stack); a node
//! with no running agent pod gets a failed `node-without-agent` check, because nothing on that
//! node can report for itself. DNS: forward lookups of two well-known names, reverse lookups of
//! the service and instance IPs, and a direct query to each serving instance.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use crate::dns::QType;
use crate::kube::{AgentPod, Snapshot};
use crate::report::{CheckKey, CheckKind, Outcome, Reason};

/// How a planned check is probed. The variants fall in three families, each run by one
/// executor in `round`: ICMP (`Echo`), DNS (`SystemForward`, `SystemReverse`, `DnsQuery`)
/// and known (`Known`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// An ICMP echo to `addr`; every echo of a round is in flight together.
    Echo { addr: IpAddr },
    /// A forward lookup of an absolute `name` through the system resolver.
    SystemForward { name: String },
    /// A reverse lookup of `ip` through the system resolver.
    SystemReverse { ip: IpAddr },
    /// A query for `name` straight to one DNS server.
    DnsQuery {
        server: SocketAddr,
        name: String,
        qtype: QType,
    },
    /// Decided without probing (a node without an agent).
    Known(Outcome),
}

/// One check the round will make: what it is, and how to probe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub key: CheckKey,
    pub probe: Probe,
}

/// Everything one round will check, in the order reports list it: the DNS checks, then each
/// node's checks (host pings, pod pings, a missing agent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub checks: Vec<Planned>,
}

impl Plan {
    fn push(&mut self, key: CheckKey, probe: Probe) {
        self.checks.push(Planned { key, probe });
    }
}

/// Builds the round's plan from a snapshot and the cluster domain.
pub fn plan(snapshot: &Snapshot, domain: &str) -> Plan {
    let mut out = Plan::default();
    plan_dns(snapshot, domain, &mut out);

    // Agent pods grouped by node; a node may briefly have two during a rollout.
    let mut pods_by_node: BTreeMap<&str, Vec<&AgentPod>> = BTreeMap::new();
    for pod in &snapshot.agents {
        pods_by_node.entry(pod.node.as_str()).or_default().push(pod);
    }

    let mut nodes: Vec<(&str, Vec<IpAddr>)> = snapshot
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.internal_ips.clone()))
        .collect();
    // A usable agent pod on a node the node list does not know (yet) still gets a row; an
    // unscheduled pod (no node) or a leftover on a removed node is no missing node.
    let known: HashSet<&str> = nodes.iter().map(|(n, _)| *n).collect();
    for (node, pods) in &pods_by_node {
        if !known.contains(node) && !node.is_empty() && pick_agent(pods).is_ok() {
            nodes.push((node, pods.iter().flat_map(|p| p.host_ips.clone()).collect()));
        }
    }

    for (node, host_ips) in nodes {
        for ip in &host_ips {
            out.push(
                CheckKey::new(CheckKind::HostPing, node, node, &ip.to_string()),
                Probe::Echo { addr: *ip },
            );
        }
        let candidates = pods_by_node.get(node).map(Vec::as_slice).unwrap_or(&[]);
        match pick_agent(candidates) {
            Ok(pod) => {
                for ip in &pod.pod_ips {
                    out.push(
                        CheckKey::new(CheckKind::PodPing, node, &pod.name, &ip.to_string()),
                        Probe::Echo { addr: *ip },
                    );
                }
            }
            Err(why) => out.push(
                CheckKey::new(CheckKind::NodeWithoutAgent, node, node, ""),
                Probe::Known(Outcome::failed(Reason::NoAgent, why)),
            ),
        }
    }
    out
}

/// DNS: forward lookups of the well-known names, reverse lookups of the service and instance
/// IPs, and a direct query to each serving instance.
fn plan_dns(snapshot: &Snapshot, domain: &str, out: &mut Plan) {
    let names = crate::dns::forward_names(domain);
    let [kube_dns, _] = &names;
    for name in &names {
        out.push(
            CheckKey::new(CheckKind::DnsService, "", name, ""),
            Probe::SystemForward { name: name.clone() },
        );
    }
    for ip in &snapshot.dns.service_ips {
        out.push(
            CheckKey::new(CheckKind::DnsReverse, "", "kube-dns", &ip.to_string()),
            Probe::SystemReverse { ip: *ip },
        );
    }
    for inst in &snapshot.dns.instances {
        // A terminating or non-serving endpoint is on its way out: the Service no longer
        // sends it traffic, so failing to reach it is not a cluster fault.
        if inst.terminating || !(inst.ready || inst.serving) {
            continue;
        }
        let target = inst.pod.clone().unwrap_or_else(|| inst.ip.to_string());
        let target_node = inst.node.as_deref().unwrap_or_default();
        let address = inst.ip.to_string();
        out.push(
            CheckKey::new(CheckKind::DnsReverse, target_node, &target, &address),
            Probe::SystemReverse { ip: inst.ip },
        );
        // The kube-dns Service has every address family its EndpointSlices have, so the
        // A/AAAA query matching this instance's family always has an answer (the
        // `kubernetes` Service is often single-stack).
        out.push(
            CheckKey::new(CheckKind::DnsInstance, target_node, &target, &address),
            Probe::DnsQuery {
                server: SocketAddr::new(inst.ip, 53),
                name: kube_dns.clone(),
                qtype: if inst.ip.is_ipv4() {
                    QType::A
                } else {
                    QType::Aaaa
                },
            },
        );
    }
}

/// Chooses the pod to ping on a node: running, not being deleted, with an IP. Otherwise the
/// reason the node has no usable agent, for the report.
fn pick_agent<'a>(pods: &[&'a AgentPod]) -> Result<&'a AgentPod, String> {
    let usable = |p: &&&AgentPod| p.phase == "Running" && !p.deleting && !p.pod_ips.is_empty();
    if let Some(p) = pods.iter().filter(usable).find(|p| p.ready) {
        return Ok(p);
    }
    if let Some(p) = pods.iter().find(usable) {
        return Ok(p);
    }
    match pods.first() {
        None => Err("no agent pod on this node".to_string()),
        Some(p) if p.deleting => Err(format!("agent pod {} is being deleted", p.name)),
        Some(p) if p.phase != "Running" => Err(format!("agent pod {} is {}", p.name, p.phase)),
        Some(p) => Err(format!("agent pod {} has no IP yet", p.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::{DnsInfo, DnsInstance, NodeInfo};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn node(name: &str, addr: &str) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            internal_ips: vec![ip(addr)],
            control_plane: false,
            ready: true,
            unschedulable: false,
        }
    }

    fn pod(name: &str, node: &str, addr: &str, phase: &str) -> AgentPod {
        AgentPod {
            name: name.into(),
            node: node.into(),
            pod_ips: if addr.is_empty() {
                vec![]
            } else {
                vec![ip(addr)]
            },
            host_ips: vec![],
            phase: phase.into(),
            ready: phase == "Running",
            deleting: false,
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            agents: vec![
                pod("a1", "n1", "198.18.100.1", "Running"),
                pod("a2", "n2", "198.18.100.2", "Running"),
                pod("a3", "n3", "", "Pending"),
            ],
            nodes: vec![
                node("n1", "198.18.0.1"),
                node("n2", "198.18.0.2"),
                node("n3", "198.18.0.3"),
                node("n4", "198.18.0.4"),
            ],
            dns: DnsInfo {
                service_ips: vec![ip("198.18.250.10")],
                instances: vec![
                    DnsInstance {
                        ip: ip("198.18.101.5"),
                        pod: Some("coredns-a".into()),
                        node: Some("n1".into()),
                        ready: true,
                        serving: true,
                        terminating: false,
                    },
                    // Terminating while still ready and serving (graceful shutdown): only the
                    // terminating rule leaves it out.
                    DnsInstance {
                        ip: ip("198.18.101.6"),
                        pod: Some("coredns-old".into()),
                        node: Some("n2".into()),
                        ready: true,
                        serving: true,
                        terminating: true,
                    },
                ],
            },
        }
    }

    /// The planned checks of `kind`: (target node, target, address).
    fn of(p: &Plan, kind: CheckKind) -> Vec<(&str, &str, &str)> {
        p.checks
            .iter()
            .filter(|c| c.key.kind == kind)
            .map(|c| {
                let k = &c.key;
                (
                    k.target_node.as_str(),
                    k.target.as_str(),
                    k.address.as_str(),
                )
            })
            .collect()
    }

    #[test]
    fn pings_every_node_and_every_running_agent() {
        let p = plan(&snapshot(), "cluster.tst.local");
        let hosts: Vec<_> = of(&p, CheckKind::HostPing).iter().map(|c| c.1).collect();
        assert_eq!(hosts, ["n1", "n2", "n3", "n4"]);
        let pods: Vec<_> = of(&p, CheckKind::PodPing)
            .iter()
            .map(|c| (c.1, c.2))
            .collect();
        assert_eq!(pods, [("a1", "198.18.100.1"), ("a2", "198.18.100.2")]);
        for c in &p.checks {
            match c.key.kind {
                CheckKind::HostPing | CheckKind::PodPing => assert_eq!(
                    c.probe,
                    Probe::Echo {
                        addr: ip(&c.key.address)
                    }
                ),
                _ => assert!(!matches!(c.probe, Probe::Echo { .. }), "{c:?}"),
            }
        }
    }

    #[test]
    fn nodes_without_a_running_agent_fail_with_the_reason() {
        let p = plan(&snapshot(), "cluster.tst.local");
        let missing: Vec<_> = p
            .checks
            .iter()
            .filter(|c| c.key.kind == CheckKind::NodeWithoutAgent)
            .map(|c| (c.key.target_node.as_str(), &c.probe))
            .collect();
        let known = |why: &str| Probe::Known(Outcome::failed(Reason::NoAgent, why));
        assert_eq!(
            missing,
            [
                ("n3", &known("agent pod a3 is Pending")),
                ("n4", &known("no agent pod on this node"))
            ]
        );
    }

    #[test]
    fn checks_come_dns_first_then_node_by_node() {
        let p = plan(&snapshot(), "cluster.tst.local");
        let order: Vec<String> = p
            .checks
            .iter()
            .map(|c| format!("{} {}", c.key.kind, c.key.target))
            .collect();
        assert_eq!(
            order,
            [
                "dns-service kube-dns.kube-system.svc.cluster.tst.local.",
                "dns-service kubernetes.default.svc.cluster.tst.local.",
                "dns-reverse kube-dns",
                "dns-reverse coredns-a",
                "dns-instance coredns-a",
                "host-ping n1",
                "pod-ping a1",
                "host-ping n2",
                "pod-ping a2",
                "host-ping n3",
                "node-without-agent n3",
                "host-ping n4",
                "node-without-agent n4",
            ]
        );
    }

    #[test]
    fn prefers_the_running_ready_pod_during_a_rollout() {
        let mut s = snapshot();
        let mut old = pod("a1-old", "n1", "198.18.100.9", "Running");
        old.deleting = true;
        s.agents.insert(0, old);
        let p = plan(&s, "x");
        assert_eq!(of(&p, CheckKind::PodPing)[0], ("n1", "a1", "198.18.100.1"));
    }

    #[test]
    fn dns_checks_skip_terminating_instances_and_use_absolute_names() {
        let p = plan(&snapshot(), "cluster.tst.local.");
        assert_eq!(
            p.checks[0].probe,
            Probe::SystemForward {
                name: "kube-dns.kube-system.svc.cluster.tst.local.".into()
            }
        );
        let instances: Vec<_> = p
            .checks
            .iter()
            .filter_map(|c| match &c.probe {
                Probe::DnsQuery { name, .. } => Some((c.key.target.clone(), name.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            instances,
            [(
                "coredns-a".to_string(),
                "kube-dns.kube-system.svc.cluster.tst.local.".to_string()
            )]
        );
        let reverses = of(&p, CheckKind::DnsReverse).len();
        assert_eq!(reverses, 2, "service IP and the serving instance");
    }

    #[test]
    fn unscheduled_or_orphaned_pods_are_no_missing_node() {
        let mut s = snapshot();
        s.agents.push(pod("a9", "", "", "Pending"));
        let mut orphan = pod("a8", "gone-node", "198.18.100.8", "Running");
        orphan.deleting = true;
        s.agents.push(orphan);
        let p = plan(&s, "x");
        let nodes: std::collections::BTreeSet<_> = p
            .checks
            .iter()
            .map(|c| c.key.target_node.as_str())
            .filter(|n| !n.is_empty())
            .collect();
        assert_eq!(nodes.len(), 4, "only the four known nodes: {nodes:?}");
        assert_eq!(
            of(&p, CheckKind::NodeWithoutAgent).len(),
            2,
            "n3 and n4 only"
        );
    }

    #[test]
    fn agent_on_unknown_node_still_gets_a_row() {
        let mut s = snapshot();
        s.nodes.clear();
        s.dns = DnsInfo::default();
        let p = plan(&s, "x");
        // The running agents keep their rows; the Pending one on an unknown node does not.
        let node_checks: Vec<_> = p
            .checks
            .iter()
            .filter(|c| !c.key.target_node.is_empty())
            .map(|c| (c.key.kind, c.key.target_node.as_str()))
            .collect();
        assert_eq!(
            node_checks,
            [(CheckKind::PodPing, "n1"), (CheckKind::PodPing, "n2")]
        );
    }
}
