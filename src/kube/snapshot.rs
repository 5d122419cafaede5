//! API objects -> the agent's [`Snapshot`] (pure). Addresses that do not parse as IPs are
//! skipped: an odd object must never add a target that cannot be probed.

use std::net::IpAddr;

use super::objects::{Condition, EndpointSlice, Ip, Node, Pod, Service};
use super::{AgentPod, DnsInfo, DnsInstance, NodeInfo, Snapshot};

/// Builds the snapshot from the four lists (the agent pods, the nodes, the cluster DNS
/// Service and its EndpointSlices), as discovery does. Public so that tests can derive what a
/// round will check from the API objects they serve.
pub fn snapshot(
    pods: &[Pod],
    nodes: &[Node],
    service: Option<&Service>,
    slices: &[EndpointSlice],
) -> Snapshot {
    assemble(
        pods.iter().map(agent_pod).collect(),
        nodes.iter().map(node_info).collect(),
        dns_info(service, slices),
    )
}

/// A snapshot in the order the plan and the views expect: agents by node then name,
/// nodes by name.
pub fn assemble(mut agents: Vec<AgentPod>, mut nodes: Vec<NodeInfo>, dns: DnsInfo) -> Snapshot {
    agents.sort_by(|a, b| (&a.node, &a.name).cmp(&(&b.node, &b.name)));
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Snapshot { agents, nodes, dns }
}

/// The agent pods as the EndpointSlices of their headless Service show them: one per pod
/// (`targetRef`), its addresses of both families merged across the per-family slices (IPv4
/// first), its node, `ready` from the `serving` condition (the pod's Ready condition; with
/// `publishNotReadyAddresses` the `ready` condition is always true) and `deleting` from
/// `terminating`. A slice has no pod phase: an endpoint is a pod that has an IP and has not
/// finished, so its phase reads `Running`; pods without an IP are not in the slices at all.
/// Slices have no host IPs either (`host_ips` stays empty).
pub fn agents_from_slices<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> Vec<AgentPod> {
    let mut by_name: std::collections::BTreeMap<String, AgentPod> = Default::default();
    for slice in slices {
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            continue;
        }
        for ep in &slice.endpoints {
            let Some(name) = ep
                .target_ref
                .as_ref()
                .filter(|r| r.kind == "Pod" && !r.name.is_empty())
                .map(|r| r.name.clone())
            else {
                continue;
            };
            let ready = ep.conditions.ready.unwrap_or(true);
            let serving = ep.conditions.serving.unwrap_or(ready);
            let terminating = ep.conditions.terminating.unwrap_or(false);
            let entry = by_name.entry(name.clone()).or_insert_with(|| AgentPod {
                name,
                node: ep.node_name.clone().unwrap_or_default(),
                pod_ips: Vec::new(),
                host_ips: Vec::new(),
                phase: "Running".to_string(),
                ready: serving,
                deleting: terminating,
            });
            entry.ready &= serving;
            entry.deleting |= terminating;
            if entry.node.is_empty() {
                entry.node = ep.node_name.clone().unwrap_or_default();
            }
            for addr in &ep.addresses {
                if let Ok(ip) = addr.trim().parse::<IpAddr>() {
                    if !entry.pod_ips.contains(&ip) {
                        entry.pod_ips.push(ip);
                    }
                }
            }
        }
    }
    let mut agents: Vec<AgentPod> = by_name.into_values().collect();
    for a in &mut agents {
        a.pod_ips.sort_by_key(|ip| ip.is_ipv6());
    }
    agents
}

fn parse_ips<'a>(primary: &'a str, all: &'a [Ip]) -> Vec<IpAddr> {
    // `podIPs`/`hostIPs` list the primary first; older servers only set `podIP`/`hostIP`.
    let mut out: Vec<IpAddr> = Vec::new();
    let candidates = std::iter::once(primary).chain(all.iter().map(|i| i.ip.as_str()));
    for text in candidates {
        if let Ok(ip) = text.trim().parse::<IpAddr>() {
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    out
}

fn is_true(conditions: &[Condition], kind: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.kind == kind && c.status == "True")
}

/// One agent pod.
pub fn agent_pod(p: &Pod) -> AgentPod {
    AgentPod {
        name: p.metadata.name.clone(),
        node: p.spec.node_name.clone(),
        pod_ips: parse_ips(&p.status.pod_ip, &p.status.pod_ips),
        host_ips: parse_ips(&p.status.host_ip, &p.status.host_ips),
        phase: if p.status.phase.is_empty() {
            "Unknown".to_string()
        } else {
            p.status.phase.clone()
        },
        ready: is_true(&p.status.conditions, "Ready"),
        deleting: p.metadata.deletion_timestamp.is_some(),
    }
}

/// One node; the control-plane role comes from the current or the legacy label.
pub fn node_info(n: &Node) -> NodeInfo {
    let mut internal_ips = Vec::new();
    for a in &n.status.addresses {
        if a.kind == "InternalIP" {
            if let Ok(ip) = a.address.trim().parse::<IpAddr>() {
                if !internal_ips.contains(&ip) {
                    internal_ips.push(ip);
                }
            }
        }
    }
    let labels = &n.metadata.labels;
    NodeInfo {
        name: n.metadata.name.clone(),
        internal_ips,
        control_plane: labels.contains_key("node-role.kubernetes.io/control-plane")
            || labels.contains_key("node-role.kubernetes.io/master"),
        ready: is_true(&n.status.conditions, "Ready"),
        unschedulable: n.spec.unschedulable,
    }
}

/// The DNS service IPs and every endpoint of its slices (one entry per IP).
pub fn dns_info(service: Option<&Service>, slices: &[EndpointSlice]) -> DnsInfo {
    let service_ips = match service {
        Some(s) => {
            let none = |t: &str| t.is_empty() || t == "None";
            let primary = if none(&s.spec.cluster_ip) {
                ""
            } else {
                &s.spec.cluster_ip
            };
            let rest: Vec<Ip> = s
                .spec
                .cluster_ips
                .iter()
                .map(|ip| Ip { ip: ip.clone() })
                .collect();
            parse_ips(primary, &rest)
        }
        None => Vec::new(),
    };
    let mut instances: Vec<DnsInstance> = Vec::new();
    for slice in slices {
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            continue; // FQDN slices name hosts, not instances we can query.
        }
        for ep in &slice.endpoints {
            let pod = ep
                .target_ref
                .as_ref()
                .filter(|r| r.kind == "Pod" && !r.name.is_empty())
                .map(|r| r.name.clone());
            let ready = ep.conditions.ready.unwrap_or(true);
            for addr in &ep.addresses {
                let Ok(ip) = addr.trim().parse::<IpAddr>() else {
                    continue;
                };
                if instances.iter().any(|i| i.ip == ip) {
                    continue;
                }
                instances.push(DnsInstance {
                    ip,
                    pod: pod.clone(),
                    node: ep.node_name.clone().filter(|n| !n.is_empty()),
                    ready,
                    serving: ep.conditions.serving.unwrap_or(ready),
                    terminating: ep.conditions.terminating.unwrap_or(false),
                });
            }
        }
    }
    instances.sort_by_key(|i| i.ip);
    DnsInfo {
        service_missing: service.is_none(),
        service_ips,
        instances,
    }
}
