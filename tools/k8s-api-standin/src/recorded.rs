//! Real-sized clusters for the benchmarks, cloned from recorded objects: every agent pod from
//! the kindnet DaemonSet pod of a real v1.36 kube-system (8.9 KB with its managedFields), every
//! node from a real v1.19 worker node with its 30 images (11.4 KB). Only names, uids and
//! addresses change, so the API serves what a real server would send, byte for byte in size.
//!
//! Addresses (all in 198.18.0.0/15): node `i` has InternalIP 198.18.0.0 + i, its agent pod
//! 198.19.0.0 + i (so up to 65,536 nodes); the kube-dns Service is [`DNS_SERVICE_IP`], its
//! instances [`DNS_INSTANCE_IPS`].

use crate::objects::{agent_service, deleting, dns_endpoint_slice, dns_service};
use crate::{Cluster, DnsEndpoint, Kind, StandIn};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};

/// The recorded v1.36 kube-system PodList (its kindnet pod is the agent pod template).
const PODS: &str = include_str!(
    "../../../tests/fixtures/k8s-api/k8s-openapi-replay-v1.36.kube-system-PodList.response-body.json"
);
/// The recorded NodeList of a real 7-node cluster (its worker `pool-yd23sqk7u-3i7i7` is the
/// node template).
const NODES: &str = include_str!(
    "../../../tests/fixtures/k8s-api/troubleshoot.nodes.NodeList-7-nodes-mixed-versions-redacted-ips.json"
);

/// The cluster IP of the kube-dns Service.
pub const DNS_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 250, 10);
/// The CoreDNS instances' pod IPs (on nodes 0 and 1).
pub const DNS_INSTANCE_IPS: [Ipv4Addr; 2] = [
    Ipv4Addr::new(198, 18, 251, 1),
    Ipv4Addr::new(198, 18, 251, 2),
];
/// The agent pods' namespace.
pub const NAMESPACE: &str = "kube-system";

/// The two recorded objects every clone starts from.
#[derive(Debug, Clone)]
pub struct Templates {
    pub pod: Value,
    pub node: Value,
}

/// The recorded templates. Panics only if the fixtures compiled in were edited into
/// something else (the unit test below pins them).
pub fn templates() -> Templates {
    let pods: Value = serde_json::from_str(PODS).expect("recorded PodList parses");
    let pod = pods["items"]
        .as_array()
        .and_then(|items| {
            items.iter().find(|p| {
                p["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("kindnet-"))
            })
        })
        .expect("the recorded PodList has a kindnet pod")
        .clone();
    let nodes: Value = serde_json::from_str(NODES).expect("recorded NodeList parses");
    let node = nodes["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|n| n["metadata"]["name"] == "pool-yd23sqk7u-3i7i7")
        })
        .expect("the recorded NodeList has node pool-yd23sqk7u-3i7i7")
        .clone();
    Templates { pod, node }
}

/// Name of node `i`: `node-00042`.
pub fn node_name(i: usize) -> String {
    format!("node-{i:05}")
}

/// Name of the agent pod on node `i`: `k8s-network-test-daemonset-00042`.
pub fn pod_name(i: usize) -> String {
    format!("k8s-network-test-daemonset-{i:05}")
}

/// InternalIP of node `i` (IPv4).
pub fn node_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(0xC612_0000u32.wrapping_add(i as u32))
}

/// Pod IP of the agent on node `i` (IPv4).
pub fn pod_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(0xC613_0000u32.wrapping_add(i as u32))
}

fn node_ip6(i: usize) -> IpAddr {
    IpAddr::V6(std::net::Ipv6Addr::new(
        0x2001,
        0xdb8,
        0,
        0,
        0,
        0,
        0,
        i as u16 + 1,
    ))
}

fn pod_ip6(i: usize) -> IpAddr {
    IpAddr::V6(std::net::Ipv6Addr::new(
        0x2001,
        0xdb8,
        1,
        0,
        0,
        0,
        0,
        i as u16 + 1,
    ))
}

fn ips_json(ips: &[IpAddr]) -> Value {
    Value::Array(
        ips.iter()
            .map(|ip| json!({ "ip": ip.to_string() }))
            .collect(),
    )
}

/// Node `i` cloned from the template (second InternalIP in 2001:db8::/64 when `dual`).
pub fn node_from(template: &Value, i: usize, dual: bool) -> Value {
    let mut n = template.clone();
    let name = node_name(i);
    n["metadata"]["name"] = json!(name);
    n["metadata"]["uid"] = json!(format!("00000000-0000-4000-8000-{i:012}"));
    n["metadata"]["labels"]["kubernetes.io/hostname"] = json!(name);
    let mut addresses = vec![
        json!({ "type": "Hostname", "address": name }),
        json!({ "type": "InternalIP", "address": node_ip(i).to_string() }),
    ];
    if dual {
        addresses.push(json!({ "type": "InternalIP", "address": node_ip6(i).to_string() }));
    }
    n["status"]["addresses"] = Value::Array(addresses);
    n
}

/// The agent pod of node `i` cloned from the template, named [`pod_name`].
pub fn pod_from(template: &Value, i: usize, dual: bool) -> Value {
    pod_named(template, i, &pod_name(i), dual)
}

/// The agent pod of node `i` under another name (a replacement keeps node and addresses).
pub fn pod_named(template: &Value, i: usize, name: &str, dual: bool) -> Value {
    let mut p = template.clone();
    p["metadata"]["name"] = json!(name);
    p["metadata"]["uid"] = json!(crate::objects::uid("Pod", name));
    p["metadata"]["namespace"] = json!(NAMESPACE);
    p["metadata"]["labels"]["app.kubernetes.io/name"] = json!(crate::objects::AGENT_NAME);
    p["metadata"]["labels"]["app.kubernetes.io/component"] = json!("agent");
    p["spec"]["nodeName"] = json!(node_name(i));
    let mut pod_ips = vec![IpAddr::V4(pod_ip(i))];
    let mut host_ips = vec![IpAddr::V4(node_ip(i))];
    if dual {
        pod_ips.push(pod_ip6(i));
        host_ips.push(node_ip6(i));
    }
    p["status"]["podIP"] = json!(pod_ips[0].to_string());
    p["status"]["podIPs"] = ips_json(&pod_ips);
    p["status"]["hostIP"] = json!(host_ips[0].to_string());
    p["status"]["hostIPs"] = ips_json(&host_ips);
    p
}

/// `n` nodes with an agent pod each, the agents' headless Service, the kube-dns Service and
/// one kube-dns EndpointSlice with two ready instances.
pub fn cluster(n: usize, dual: bool) -> Cluster {
    let t = templates();
    Cluster {
        nodes: (0..n).map(|i| node_from(&t.node, i, dual)).collect(),
        pods: (0..n).map(|i| pod_from(&t.pod, i, dual)).collect(),
        services: vec![
            agent_service(NAMESPACE, crate::objects::AGENT_NAME, dual),
            dns_service(&[IpAddr::V4(DNS_SERVICE_IP)]),
        ],
        endpointslices: vec![dns_endpoint_slice(
            "kube-dns-abcde",
            "IPv4",
            &[
                DnsEndpoint::ready(IpAddr::V4(DNS_INSTANCE_IPS[0]), "coredns-1", &node_name(0)),
                DnsEndpoint::ready(IpAddr::V4(DNS_INSTANCE_IPS[1]), "coredns-2", &node_name(1)),
            ],
        )],
    }
}

/// `node` as its kubelet's `seq`-th status report makes it: every condition with a new
/// `lastHeartbeatTime` (what `nodeStatusReportFrequency` sends every 5 minutes when nothing
/// else changed).
pub fn heartbeat(node: &Value, seq: usize) -> Value {
    let mut n = node.clone();
    let time = format!(
        "2026-06-15T{:02}:{:02}:{:02}Z",
        6 + seq / 3600 % 18,
        seq / 60 % 60,
        seq % 60
    );
    if let Some(conds) = n["status"]["conditions"].as_array_mut() {
        for cond in conds {
            cond["lastHeartbeatTime"] = json!(time);
        }
    }
    n
}

/// Replaces the agent pod of node `i` named `old` by one named `new` with the same addresses,
/// as a rollout step or an eviction does: the old pod terminating, gone, the new one with its
/// IP but not Ready, then Ready. Four writes; each re-sends the EndpointSlice the pod is in.
pub fn replace_agent_pod(
    s: &StandIn,
    template: &Value,
    i: usize,
    old: &str,
    new: &str,
    dual: bool,
) {
    s.put(Kind::Pods, deleting(pod_named(template, i, old, dual)));
    s.delete(Kind::Pods, NAMESPACE, old);
    let mut pod = pod_named(template, i, new, dual);
    set_ready(&mut pod, false);
    s.put(Kind::Pods, pod.clone());
    set_ready(&mut pod, true);
    s.put(Kind::Pods, pod);
}

fn set_ready(pod: &mut Value, ready: bool) {
    if let Some(conds) = pod["status"]["conditions"].as_array_mut() {
        for c in conds {
            if c["type"] == "Ready" || c["type"] == "ContainersReady" {
                c["status"] = json!(if ready { "True" } else { "False" });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_keep_the_recorded_sizes_and_change_only_identity_and_addresses() {
        let t = templates();
        let node = node_from(&t.node, 42, false);
        let pod = pod_from(&t.pod, 42, false);
        assert_eq!(node["metadata"]["name"], "node-00042");
        assert_eq!(node["status"]["addresses"][1]["address"], "198.18.0.42");
        assert_eq!(pod["status"]["podIP"], "198.19.0.42");
        assert_eq!(pod["status"]["hostIPs"][0]["ip"], "198.18.0.42");
        assert_eq!(pod["spec"]["nodeName"], "node-00042");
        // Real sizes: managedFields and the image list stay.
        let (n, p) = (node.to_string().len(), pod.to_string().len());
        assert!((10_000..13_000).contains(&n), "node {n} B");
        assert!((8_000..10_000).contains(&p), "pod {p} B");
        assert!(pod["metadata"]["managedFields"].is_array());
        assert!(node["status"]["images"]
            .as_array()
            .is_some_and(|i| i.len() >= 30));
        assert_eq!(node_ip(5_000), Ipv4Addr::new(198, 18, 19, 136));
        let dual = pod_from(&t.pod, 1, true);
        assert_eq!(dual["status"]["podIPs"][1]["ip"], "2001:db8:1::2");
    }

    #[test]
    fn a_heartbeat_changes_only_the_heartbeat_times() {
        let t = templates();
        let node = node_from(&t.node, 0, false);
        let beat = heartbeat(&node, 3_725);
        assert_ne!(beat, node);
        assert_eq!(
            beat["status"]["conditions"][0]["lastHeartbeatTime"],
            "2026-06-15T07:02:05Z"
        );
        let mut back = beat.clone();
        for (c, orig) in back["status"]["conditions"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .zip(
                node["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten(),
            )
        {
            c["lastHeartbeatTime"] = orig["lastHeartbeatTime"].clone();
        }
        assert_eq!(back, node);
    }
}
