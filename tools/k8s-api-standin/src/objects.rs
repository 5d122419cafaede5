//! Builders of real-shaped Kubernetes objects, so a test describes a cluster in a few lines.
//!
//! Every field path these emit exists in a recorded real object (see `tests/shapes.rs`), so the
//! shapes the client is tested against cannot drift from what kube-apiserver sends.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::net::IpAddr;

/// Label and value that mark the agent's pods (`app.kubernetes.io/name`).
pub const AGENT_NAME: &str = "k8s-network-test-daemonset";
/// Fixed timestamp used for creation and condition times (stable test output).
const CREATED: &str = "2026-06-15T04:14:52Z";

/// The objects the stand-in serves. JSON file form:
/// `{"pods":[...],"nodes":[...],"endpointslices":[...],"services":[...]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// Pod objects (any namespace).
    #[serde(default)]
    pub pods: Vec<Value>,
    /// Node objects.
    #[serde(default)]
    pub nodes: Vec<Value>,
    /// discovery.k8s.io/v1 EndpointSlice objects.
    #[serde(default)]
    pub endpointslices: Vec<Value>,
    /// Service objects.
    #[serde(default)]
    pub services: Vec<Value>,
}

/// A deterministic uid-shaped string from a name, so objects are stable across runs.
pub(crate) fn uid(kind: &str, name: &str) -> String {
    // FNV-1a, twice with different seeds, is enough for distinct test uids.
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x8422_2325_cbf2_9ce4;
    for byte in kind.bytes().chain([b'/']).chain(name.bytes()) {
        a = (a ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        b = (b ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
    }
    let h = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn ip_list(ips: &[IpAddr]) -> Value {
    Value::Array(
        ips.iter()
            .map(|ip| json!({ "ip": ip.to_string() }))
            .collect(),
    )
}

fn status_word(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// A Node like the kubelet reports it: InternalIP and Hostname addresses, a Ready condition,
/// and for a control-plane node the role label and the NoSchedule taint.
pub fn node(name: &str, internal_ips: &[IpAddr], control_plane: bool, ready: bool) -> Value {
    let mut labels = json!({
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
    });
    let mut spec = json!({});
    if control_plane {
        labels["node-role.kubernetes.io/control-plane"] = json!("");
        spec["taints"] = json!([{
            "key": "node-role.kubernetes.io/control-plane",
            "effect": "NoSchedule",
        }]);
    }
    let mut addresses: Vec<Value> = internal_ips
        .iter()
        .map(|ip| json!({ "type": "InternalIP", "address": ip.to_string() }))
        .collect();
    addresses.push(json!({ "type": "Hostname", "address": name }));
    json!({
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "uid": uid("node", name),
            "resourceVersion": "100",
            "creationTimestamp": CREATED,
            "labels": labels,
        },
        "spec": spec,
        "status": {
            "conditions": [{
                "type": "Ready",
                "status": status_word(ready),
                "lastHeartbeatTime": CREATED,
                "lastTransitionTime": CREATED,
                "reason": if ready { "KubeletReady" } else { "KubeletNotReady" },
                "message": if ready { "kubelet is posting ready status" } else { "container runtime network not ready" },
            }],
            "addresses": addresses,
        },
    })
}

/// An agent DaemonSet pod: the agent's labels, owned by the DaemonSet, scheduled on `node`.
/// `phase` is the pod phase (`Pending`, `Running`, ...); `ready` sets the Ready conditions.
pub fn agent_pod(
    name: &str,
    namespace: &str,
    node: &str,
    pod_ips: &[IpAddr],
    host_ips: &[IpAddr],
    phase: &str,
    ready: bool,
) -> Value {
    let mut status = json!({
        "phase": phase,
        "conditions": [
            { "type": "Initialized", "status": "True", "lastProbeTime": null, "lastTransitionTime": CREATED },
            { "type": "Ready", "status": status_word(ready), "lastProbeTime": null, "lastTransitionTime": CREATED },
            { "type": "ContainersReady", "status": status_word(ready), "lastProbeTime": null, "lastTransitionTime": CREATED },
            { "type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": CREATED },
        ],
    });
    // The kubelet leaves the IP fields out until it knows them.
    if let Some(ip) = host_ips.first() {
        status["hostIP"] = json!(ip.to_string());
        status["hostIPs"] = ip_list(host_ips);
    }
    if let Some(ip) = pod_ips.first() {
        status["podIP"] = json!(ip.to_string());
        status["podIPs"] = ip_list(pod_ips);
    }
    json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "generateName": format!("{AGENT_NAME}-"),
            "namespace": namespace,
            "uid": uid("pod", &format!("{namespace}/{name}")),
            "resourceVersion": "200",
            "creationTimestamp": CREATED,
            "labels": {
                "app.kubernetes.io/name": AGENT_NAME,
                "app.kubernetes.io/component": "agent",
                "controller-revision-hash": "6cbc496c4f",
                "pod-template-generation": "1",
            },
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "name": AGENT_NAME,
                "uid": uid("daemonset", &format!("{namespace}/{AGENT_NAME}")),
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "nodeName": node,
            "serviceAccountName": AGENT_NAME,
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
        },
        "status": status,
    })
}

/// Marks an object as being deleted (`metadata.deletionTimestamp`), as during a rollout.
pub fn deleting(mut object: Value) -> Value {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("deletionTimestamp".into(), json!("2026-06-15T05:00:00Z"));
        meta.insert("deletionGracePeriodSeconds".into(), json!(30));
    }
    object
}

/// The cluster DNS Service `kube-dns` in `kube-system` with the given cluster IPs.
pub fn dns_service(cluster_ips: &[IpAddr]) -> Value {
    let ips: Vec<String> = cluster_ips.iter().map(ToString::to_string).collect();
    let families: Vec<&str> = cluster_ips
        .iter()
        .map(|ip| if ip.is_ipv4() { "IPv4" } else { "IPv6" })
        .collect();
    json!({
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {
            "name": "kube-dns",
            "namespace": "kube-system",
            "uid": uid("service", "kube-system/kube-dns"),
            "resourceVersion": "300",
            "creationTimestamp": CREATED,
            "labels": {
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
            },
        },
        "spec": {
            "ports": [
                { "name": "dns", "protocol": "UDP", "port": 53, "targetPort": 53 },
                { "name": "dns-tcp", "protocol": "TCP", "port": 53, "targetPort": 53 },
                { "name": "metrics", "protocol": "TCP", "port": 9153, "targetPort": 9153 },
            ],
            "selector": { "k8s-app": "kube-dns" },
            "clusterIP": ips.first().cloned().unwrap_or_default(),
            "clusterIPs": ips,
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "ipFamilies": families,
            "ipFamilyPolicy": if cluster_ips.len() > 1 { "PreferDualStack" } else { "SingleStack" },
            "internalTrafficPolicy": "Cluster",
        },
        "status": { "loadBalancer": {} },
    })
}

/// The agents' headless Service as `k8s.yml` defines it (after the API server's defaulting):
/// `clusterIP: None`, `publishNotReadyAddresses`, `PreferDualStack` (both families when
/// `dual_stack`), selecting the agent pods. The stand-in builds its EndpointSlices from the
/// pods, as the EndpointSlice controller does (see `controller.rs`).
pub fn agent_service(namespace: &str, name: &str, dual_stack: bool) -> Value {
    let families = if dual_stack {
        json!(["IPv4", "IPv6"])
    } else {
        json!(["IPv4"])
    };
    json!({
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid("service", &format!("{namespace}/{name}")),
            "resourceVersion": "310",
            "creationTimestamp": CREATED,
            "labels": {
                "app.kubernetes.io/name": AGENT_NAME,
                "app.kubernetes.io/component": "agent",
            },
        },
        "spec": {
            "ports": [{ "name": "metrics", "protocol": "TCP", "port": 8123, "targetPort": "metrics" }],
            "selector": { "app.kubernetes.io/name": AGENT_NAME },
            "clusterIP": "None",
            "clusterIPs": ["None"],
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "publishNotReadyAddresses": true,
            "ipFamilies": families,
            "ipFamilyPolicy": "PreferDualStack",
            "internalTrafficPolicy": "Cluster",
        },
        "status": { "loadBalancer": {} },
    })
}

/// One CoreDNS instance in a kube-dns EndpointSlice. A `None` condition is left out, as the
/// API may do (readers must treat a missing `ready` as ready).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsEndpoint {
    /// The instance's pod IP.
    pub ip: IpAddr,
    /// The CoreDNS pod name (targetRef).
    pub pod: String,
    /// The node it runs on.
    pub node: String,
    /// `conditions.ready`.
    pub ready: Option<bool>,
    /// `conditions.serving`.
    pub serving: Option<bool>,
    /// `conditions.terminating`.
    pub terminating: Option<bool>,
}

impl DnsEndpoint {
    /// A ready, serving, non-terminating instance.
    pub fn ready(ip: IpAddr, pod: &str, node: &str) -> Self {
        DnsEndpoint {
            ip,
            pod: pod.to_string(),
            node: node.to_string(),
            ready: Some(true),
            serving: Some(true),
            terminating: Some(false),
        }
    }
}

/// A kube-dns EndpointSlice in `kube-system`; `address_type` is `"IPv4"` or `"IPv6"`.
pub fn dns_endpoint_slice(name: &str, address_type: &str, endpoints: &[DnsEndpoint]) -> Value {
    let eps: Vec<Value> = endpoints
        .iter()
        .map(|ep| {
            let mut conditions = serde_json::Map::new();
            for (key, value) in [
                ("ready", ep.ready),
                ("serving", ep.serving),
                ("terminating", ep.terminating),
            ] {
                if let Some(v) = value {
                    conditions.insert(key.into(), json!(v));
                }
            }
            json!({
                "addresses": [ep.ip.to_string()],
                "conditions": conditions,
                "targetRef": {
                    "kind": "Pod",
                    "namespace": "kube-system",
                    "name": ep.pod,
                    "uid": uid("pod", &format!("kube-system/{}", ep.pod)),
                },
                "nodeName": ep.node,
            })
        })
        .collect();
    json!({
        "kind": "EndpointSlice",
        "apiVersion": "discovery.k8s.io/v1",
        "metadata": {
            "name": name,
            "generateName": "kube-dns-",
            "namespace": "kube-system",
            "uid": uid("endpointslice", &format!("kube-system/{name}")),
            "resourceVersion": "400",
            "creationTimestamp": CREATED,
            "labels": {
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                "k8s-app": "kube-dns",
                "kubernetes.io/service-name": "kube-dns",
            },
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "Service",
                "name": "kube-dns",
                "uid": uid("service", "kube-system/kube-dns"),
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "addressType": address_type,
        "endpoints": eps,
        "ports": [
            { "name": "dns-tcp", "protocol": "TCP", "port": 53 },
            { "name": "dns", "protocol": "UDP", "port": 53 },
            { "name": "metrics", "protocol": "TCP", "port": 9153 },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_plane_node_has_label_and_taint() {
        let n = node("cp", &["198.18.0.1".parse().unwrap()], true, true);
        assert_eq!(
            n["metadata"]["labels"]["node-role.kubernetes.io/control-plane"],
            ""
        );
        assert_eq!(n["spec"]["taints"][0]["effect"], "NoSchedule");
        assert_eq!(n["status"]["addresses"][0]["address"], "198.18.0.1");
        let w = node("w", &[], false, false);
        assert!(w["spec"].get("taints").is_none());
        assert_eq!(w["status"]["conditions"][0]["status"], "False");
    }

    #[test]
    fn pod_without_ips_omits_ip_fields() {
        let p = agent_pod("a", "kube-system", "n", &[], &[], "Pending", false);
        assert!(p["status"].get("podIP").is_none());
        assert!(p["status"].get("podIPs").is_none());
        let p = deleting(p);
        assert!(p["metadata"]["deletionTimestamp"].is_string());
    }

    #[test]
    fn endpoint_conditions_omitted_when_none() {
        let mut ep = DnsEndpoint::ready("198.18.0.9".parse().unwrap(), "coredns-1", "n1");
        ep.ready = None;
        let s = dns_endpoint_slice("kube-dns-abc", "IPv4", &[ep]);
        let c = &s["endpoints"][0]["conditions"];
        assert!(c.get("ready").is_none());
        assert_eq!(c["serving"], true);
    }

    #[test]
    fn uids_are_stable_and_distinct() {
        assert_eq!(uid("pod", "a"), uid("pod", "a"));
        assert_ne!(uid("pod", "a"), uid("pod", "b"));
        assert_eq!(uid("pod", "a").len(), 36);
    }
}
