//! What a round checks, decided from a discovery [`Snapshot`] alone (pure, no I/O).
//!
//! Every node gets a host ping per InternalIP; every agent pod with an IP gets a pod ping per
//! IP (this agent's own pod included, as the original shell script did: it proves the pod network stack); a node
//! with no running agent pod gets a failed `node-without-agent` check, because nothing on that
//! node can report for itself. DNS: forward lookups of two well-known names, reverse lookups of
//! the service and instance IPs, and a direct query to each serving instance.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::kube::{AgentPod, Snapshot};
use crate::report::{Check, CheckKind};

/// One ICMP target of the round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingTarget {
    pub kind: CheckKind,
    pub target_node: String,
    pub target: String,
    pub address: IpAddr,
}

/// One DNS check of the round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsCheck {
    /// Resolve an absolute name through the system resolver.
    Forward { name: String },
    /// Reverse-resolve an IP through the system resolver; `target` names what owns the IP.
    Reverse {
        ip: IpAddr,
        target: String,
        target_node: String,
    },
    /// Ask one DNS instance directly for `name`.
    Instance {
        ip: IpAddr,
        target: String,
        target_node: String,
        name: String,
    },
}

/// One row of the report table: a node, its agent pod (if any) and their addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    pub node: String,
    pub host_ips: Vec<IpAddr>,
    /// The agent pod the round pings on this node, if one is running.
    pub pod: Option<AgentPod>,
    /// Why the node has no usable agent pod (e.g. `no agent pod`, `agent pod x is Pending`).
    pub missing_reason: Option<String>,
}

/// Everything one round will do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub rows: Vec<NodeRow>,
    pub pings: Vec<PingTarget>,
    pub dns: Vec<DnsCheck>,
    /// Failed checks known without probing (nodes without an agent).
    pub static_checks: Vec<Check>,
}

/// Builds the round's plan from a snapshot and the cluster domain.
pub fn plan(snapshot: &Snapshot, domain: &str) -> Plan {
    let mut out = Plan::default();

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
    for (node, pods) in &pods_by_node {
        let known = nodes.iter().any(|(n, _)| n == node);
        if !known && !node.is_empty() && pick_agent(pods).is_ok() {
            nodes.push((node, pods.iter().flat_map(|p| p.host_ips.clone()).collect()));
        }
    }

    for (node, host_ips) in nodes {
        for ip in &host_ips {
            out.pings.push(PingTarget {
                kind: CheckKind::HostPing,
                target_node: node.to_string(),
                target: node.to_string(),
                address: *ip,
            });
        }
        let candidates = pods_by_node.get(node).map(Vec::as_slice).unwrap_or(&[]);
        let (pod, missing_reason) = match pick_agent(candidates) {
            Ok(pod) => (Some(pod.clone()), None),
            Err(reason) => (None, Some(reason)),
        };
        if let Some(pod) = &pod {
            for ip in &pod.pod_ips {
                out.pings.push(PingTarget {
                    kind: CheckKind::PodPing,
                    target_node: node.to_string(),
                    target: pod.name.clone(),
                    address: *ip,
                });
            }
        }
        if let Some(reason) = &missing_reason {
            out.static_checks.push(Check::failed(
                CheckKind::NodeWithoutAgent,
                node,
                node,
                "",
                reason,
            ));
        }
        out.rows.push(NodeRow {
            node: node.to_string(),
            host_ips,
            pod,
            missing_reason,
        });
    }

    let names = crate::dns::forward_names(domain);
    for name in &names {
        out.dns.push(DnsCheck::Forward { name: name.clone() });
    }
    for ip in &snapshot.dns.service_ips {
        out.dns.push(DnsCheck::Reverse {
            ip: *ip,
            target: "kube-dns".to_string(),
            target_node: String::new(),
        });
    }
    for inst in &snapshot.dns.instances {
        // A terminating or non-serving endpoint is on its way out: the Service no longer
        // sends it traffic, so failing to reach it is not a cluster fault.
        if inst.terminating || !(inst.ready || inst.serving) {
            continue;
        }
        let target = inst.pod.clone().unwrap_or_else(|| inst.ip.to_string());
        let target_node = inst.node.clone().unwrap_or_default();
        out.dns.push(DnsCheck::Reverse {
            ip: inst.ip,
            target: target.clone(),
            target_node: target_node.clone(),
        });
        // The kube-dns Service has every address family its EndpointSlices have, so the
        // A/AAAA query matching this instance's family always has an answer (the
        // `kubernetes` Service is often single-stack).
        out.dns.push(DnsCheck::Instance {
            ip: inst.ip,
            target,
            target_node,
            name: names[0].clone(),
        });
    }
    out
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

    #[test]
    fn pings_every_node_and_every_running_agent() {
        let p = plan(&snapshot(), "cluster.tst.local");
        let hosts: Vec<_> = p
            .pings
            .iter()
            .filter(|t| t.kind == CheckKind::HostPing)
            .map(|t| t.target.as_str())
            .collect();
        assert_eq!(hosts, ["n1", "n2", "n3", "n4"]);
        let pods: Vec<_> = p
            .pings
            .iter()
            .filter(|t| t.kind == CheckKind::PodPing)
            .map(|t| (t.target.as_str(), t.address.to_string()))
            .collect();
        assert_eq!(
            pods,
            [("a1", "198.18.100.1".into()), ("a2", "198.18.100.2".into())]
        );
    }

    #[test]
    fn nodes_without_a_running_agent_fail_with_the_reason() {
        let p = plan(&snapshot(), "cluster.tst.local");
        let missing: Vec<_> = p
            .static_checks
            .iter()
            .map(|c| (c.target_node.as_str(), c.error.clone().unwrap()))
            .collect();
        assert_eq!(
            missing,
            [
                ("n3", "agent pod a3 is Pending".to_string()),
                ("n4", "no agent pod on this node".to_string())
            ]
        );
        assert!(p.static_checks.iter().all(|c| !c.ok));
    }

    #[test]
    fn prefers_the_running_ready_pod_during_a_rollout() {
        let mut s = snapshot();
        let mut old = pod("a1-old", "n1", "198.18.100.9", "Running");
        old.deleting = true;
        s.agents.insert(0, old);
        let p = plan(&s, "x");
        assert_eq!(p.rows[0].pod.as_ref().unwrap().name, "a1");
    }

    #[test]
    fn dns_checks_skip_terminating_instances_and_use_absolute_names() {
        let p = plan(&snapshot(), "cluster.tst.local.");
        assert_eq!(
            p.dns[0],
            DnsCheck::Forward {
                name: "kube-dns.kube-system.svc.cluster.tst.local.".into()
            }
        );
        let instances: Vec<_> = p
            .dns
            .iter()
            .filter_map(|d| match d {
                DnsCheck::Instance { target, name, .. } => Some((target.clone(), name.clone())),
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
        let reverses = p
            .dns
            .iter()
            .filter(|d| matches!(d, DnsCheck::Reverse { .. }))
            .count();
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
        assert_eq!(p.rows.len(), 4, "only the four known nodes");
        assert_eq!(p.static_checks.len(), 2, "n3 and n4 only");
    }

    #[test]
    fn agent_on_unknown_node_still_gets_a_row() {
        let mut s = snapshot();
        s.nodes.clear();
        let p = plan(&s, "x");
        // The running agents keep their rows; the Pending one on an unknown node does not.
        assert_eq!(p.rows.len(), 2);
        assert!(p.static_checks.is_empty());
        assert!(p.pings.iter().all(|t| t.kind == CheckKind::PodPing));
    }
}
