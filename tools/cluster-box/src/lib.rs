//! Cluster in a box: a Kubernetes-like cluster network built from Linux network namespaces on
//! one machine, for the end-to-end tests and `make demo`.
//!
//! ```text
//!             underlay bridge (namespace "ul", 198.18.1.0/24)
//!        ┌──────────────┬──────────────┬──────────────┬───────────────┐
//!     node0 .10      node1 .11      node2 .12      ...            api .200
//!     │ pods 198.19.0.0/24 (Calico-like /32 routes, gateway 169.254.1.1 on the node side)
//!     ├ agent 198.19.0.10    ├ agent 198.19.1.10 ...
//!     ├ dns-0 198.19.0.100 (dnsmasq)   ├ dns-1 198.19.1.101 (dnsmasq)
//!     └ kube-dns service 198.19.250.10 (dnsmasq answering on the service IP)
//! ```
//! Nodes route each other's pod blocks via their host IPs, as Calico does without overlay.
//! Only 198.18.0.0/15 is used, inside namespaces created here; dropping the [`Cluster`]
//! kills its processes and removes its namespaces and files, also after a panic.

pub mod dnsmasq;
mod faults;
pub mod forward;
pub mod http;
pub mod icmp_forge;
pub mod lab;
pub mod netns;
pub mod prometheus;
pub mod slow_echo;
pub mod status;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

use dnsmasq::{Dnsmasq, Zone};
pub use netns::{need_root, sh, veth, Netns};

/// The shape of the cluster to build.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Number of nodes; node 0 is the control-plane node.
    pub nodes: usize,
    /// Number of DNS instances (dnsmasq pods), placed round-robin on the nodes.
    pub dns_pods: usize,
    /// Cluster DNS domain, e.g. `cluster.tst.local`.
    pub domain: String,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            nodes: 4,
            dns_pods: 2,
            domain: "cluster.tst.local".to_string(),
        }
    }
}

/// A node: a namespace with a host IP on the underlay that routes its pods.
pub struct Node {
    pub name: String,
    pub host_ip: Ipv4Addr,
    pub control_plane: bool,
    pub ns: Netns,
}

/// A pod: a namespace with one /32 address routed through its node.
pub struct Pod {
    pub name: String,
    pub node: usize,
    pub ip: Ipv4Addr,
    pub ns: Netns,
}

/// A DNS server pod with its dnsmasq process.
pub struct DnsPod {
    pub pod: Pod,
    server: Dnsmasq,
}

impl DnsPod {
    /// Starts dnsmasq if it is not running and waits until it listens on port 53.
    pub fn start(&mut self) {
        self.server.start();
    }

    /// Kills dnsmasq: the instance stops answering.
    pub fn stop(&mut self) {
        self.server.stop();
    }
}

/// The whole cluster network. Field order is drop order: processes, then pods, then nodes.
pub struct Cluster {
    pub spec: Spec,
    /// Files of this cluster (resolv.conf copies, logs); removed on drop.
    pub dir: PathBuf,
    pub dns: Vec<DnsPod>,
    /// dnsmasq answering on the kube-dns Service IP (stands in for kube-proxy's DNAT).
    pub service: DnsPod,
    /// One pod namespace per node for the agents (whether an agent runs there is the test's).
    pub agents: Vec<Pod>,
    pub api: Netns,
    pub nodes: Vec<Node>,
    pub underlay: Netns,
    etc_netns: Vec<PathBuf>,
}

/// The underlay network's first three octets; nodes are .10 and up, the API is .200.
pub const UNDERLAY: [u8; 3] = [198, 18, 1];
/// The address of the API stand-in's namespace on the underlay.
pub const API_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 200);
/// The kube-dns Service IP.
pub const DNS_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 250, 10);
/// The `kubernetes` Service IP (a DNS record only; nothing answers pings there).
pub const KUBERNETES_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 250, 1);

/// Host IP of node `i`.
pub fn host_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(UNDERLAY[0], UNDERLAY[1], UNDERLAY[2], 10 + i as u8)
}

/// Name of node `i`: node 0 is `control-plane-0`, the others `node-<i>`.
pub fn node_name(i: usize) -> String {
    if i == 0 {
        "control-plane-0".to_string()
    } else {
        format!("node-{i}")
    }
}

/// Name of the agent pod on node `i`.
pub fn agent_pod_name(i: usize) -> String {
    format!("k8s-network-test-daemonset-{i}")
}

/// Parses an address literal: tests' shorthand, panics on a typo.
pub fn ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or_else(|e| panic!("not an IP address: {s:?}: {e}"))
}

/// [`ip`] for a list.
pub fn ips(s: &[&str]) -> Vec<IpAddr> {
    s.iter().map(|s| ip(s)).collect()
}

impl Cluster {
    /// Builds the cluster: namespaces, links, routes, DNS servers and resolv.conf files.
    pub fn build(spec: Spec) -> Cluster {
        assert!(
            (1..=50).contains(&spec.nodes),
            "1 to 50 nodes, got {}",
            spec.nodes
        );
        let underlay = Netns::new("ul");
        underlay.ip(&["link", "add", "br0", "type", "bridge"]);
        underlay.ip(&["link", "set", "br0", "up"]);
        let dir = std::env::temp_dir().join(format!("cluster-box-{}", underlay.name));
        std::fs::create_dir_all(&dir).expect("create cluster dir");

        let mut nodes = Vec::new();
        for i in 0..spec.nodes {
            let ns = Netns::new(&format!("n{i}"));
            let ip = host_ip(i);
            let port = format!("n{i}");
            veth(&ns, "eth0", &[&format!("{ip}/24")], &underlay, &port, &[]);
            underlay.ip(&["link", "set", &port, "master", "br0"]);
            ns.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
            nodes.push(Node {
                name: node_name(i),
                host_ip: ip,
                control_plane: i == 0,
                ns,
            });
        }
        // Every node routes every other node's pod block via that node's host IP.
        for (i, node) in nodes.iter().enumerate() {
            for j in 0..spec.nodes {
                if i != j {
                    node.ns.ip(&[
                        "route",
                        "add",
                        &format!("198.19.{j}.0/24"),
                        "via",
                        &host_ip(j).to_string(),
                    ]);
                }
            }
            if i != 0 {
                node.ns.ip(&[
                    "route",
                    "add",
                    "198.19.250.0/24",
                    "via",
                    &host_ip(0).to_string(),
                ]);
            }
        }

        let api = Netns::new("api");
        veth(
            &api,
            "eth0",
            &[&format!("{API_IP}/24")],
            &underlay,
            "api",
            &[],
        );
        underlay.ip(&["link", "set", "api", "master", "br0"]);
        for j in 0..spec.nodes {
            api.ip(&[
                "route",
                "add",
                &format!("198.19.{j}.0/24"),
                "via",
                &host_ip(j).to_string(),
            ]);
        }

        let mut etc_netns = Vec::new();
        let agents: Vec<Pod> = (0..spec.nodes)
            .map(|i| {
                let pod = add_pod(
                    &nodes[i],
                    i,
                    &agent_pod_name(i),
                    Ipv4Addr::new(198, 19, i as u8, 10),
                    &format!("a{i}"),
                );
                etc_netns.push(write_resolv_conf(&pod.ns, &spec.domain));
                pod
            })
            .collect();

        let dns_names: Vec<(String, Ipv4Addr, usize)> = (0..spec.dns_pods)
            .map(|k| {
                let node = k % spec.nodes;
                (
                    format!("coredns-{k}"),
                    Ipv4Addr::new(198, 19, node as u8, 100 + k as u8),
                    node,
                )
            })
            .collect();
        let zone = cluster_zone(&spec.domain, &dns_names);
        let dns: Vec<DnsPod> = dns_names
            .iter()
            .enumerate()
            .map(|(k, (name, ip, node))| {
                // Tagged by instance: two instances may share a node (fewer nodes than them).
                let pod = add_pod(&nodes[*node], *node, name, *ip, &format!("d{k}"));
                let server = Dnsmasq::spawn(Some(&pod.ns.name), &[IpAddr::V4(*ip)], &zone);
                DnsPod { pod, server }
            })
            .collect();
        let service_pod = add_pod(&nodes[0], 0, "kube-dns-service", DNS_SERVICE_IP, "svc");
        let server = Dnsmasq::spawn(
            Some(&service_pod.ns.name),
            &[IpAddr::V4(DNS_SERVICE_IP)],
            &zone,
        );
        let service = DnsPod {
            pod: service_pod,
            server,
        };

        Cluster {
            spec,
            dir,
            dns,
            service,
            agents,
            api,
            nodes,
            underlay,
            etc_netns,
        }
    }

    /// The names of every namespace of the cluster.
    pub fn namespaces(&self) -> Vec<String> {
        let mut v = vec![self.underlay.name.clone(), self.api.name.clone()];
        v.extend(self.nodes.iter().map(|n| n.ns.name.clone()));
        v.extend(self.agents.iter().map(|p| p.ns.name.clone()));
        v.extend(self.dns.iter().map(|d| d.pod.ns.name.clone()));
        v.push(self.service.pod.ns.name.clone());
        v
    }

    /// Brings node `i`'s underlay link down (`false`) or up (`true`), as a pulled cable.
    pub fn set_node_link(&self, i: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        self.underlay.ip(&["link", "set", &format!("n{i}"), state]);
    }

    /// Drops incoming ICMP echo requests in agent pod `i` (a pod firewall rule).
    pub fn drop_icmp_at_agent(&self, i: usize, drop: bool) {
        let op = if drop { "-I" } else { "-D" };
        self.agents[i].ns.exec(&[
            "iptables",
            op,
            "INPUT",
            "-p",
            "icmp",
            "--icmp-type",
            "echo-request",
            "-j",
            "DROP",
        ]);
    }

    /// Makes the DNS Service IP unreachable (everything sent to it silently dropped) or
    /// reachable again. (Taking its link down would also delete its routes for good.)
    pub fn set_service_reachable(&self, reachable: bool) {
        let op = if reachable { "-D" } else { "-I" };
        self.service
            .pod
            .ns
            .exec(&["iptables", op, "INPUT", "-j", "DROP"]);
    }

    /// Drops a random share (0.0-1.0) of the packets node `i` forwards or sends, or stops
    /// dropping with `None`. (This kernel has no netem; iptables' statistic match does this.)
    pub fn set_loss(&self, i: usize, share: Option<f64>) {
        let ns = &self.nodes[i].ns;
        for chain in ["FORWARD", "OUTPUT"] {
            let _ = Command::new("ip")
                .args(["netns", "exec", &ns.name, "iptables", "-F", chain])
                .status();
            if let Some(p) = share {
                ns.exec(&[
                    "iptables",
                    "-I",
                    chain,
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    &p.to_string(),
                    "-j",
                    "DROP",
                ]);
            }
        }
    }

    /// A command that runs `program` in agent pod `i`'s namespace (with its resolv.conf).
    pub fn in_agent_pod(&self, i: usize, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.arg("netns")
            .arg("exec")
            .arg(&self.agents[i].ns.name)
            .arg(program);
        c
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for d in &mut self.dns {
            d.stop();
        }
        self.service.stop();
        for p in &self.etc_netns {
            let _ = std::fs::remove_dir_all(p);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates a pod namespace on `node` with `ip`/32, Calico style: the pod's default route goes
/// to a link-local gateway on its veth, and the node routes the /32 to that veth.
fn add_pod(node: &Node, node_idx: usize, name: &str, ip: Ipv4Addr, tag: &str) -> Pod {
    let ns = Netns::new(tag);
    // Only needs to be unique within the node's namespace.
    let host_side = format!("cali{tag}");
    veth(
        &ns,
        "eth0",
        &[&format!("{ip}/32")],
        &node.ns,
        &host_side,
        &[],
    );
    // Calico's scheme: one link-local gateway, so the pod ARPs once, not per destination.
    ns.ip(&[
        "route",
        "add",
        "169.254.1.1",
        "dev",
        "eth0",
        "scope",
        "link",
    ]);
    ns.ip(&[
        "route",
        "add",
        "default",
        "via",
        "169.254.1.1",
        "dev",
        "eth0",
    ]);
    // The Kubernetes safe sysctl that lets unprivileged processes open ICMP ping sockets.
    ns.exec(&["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"]);
    // The node side owns the pod's gateway address, so the pod's single ARP gets an answer.
    node.ns
        .ip(&["addr", "add", "169.254.1.1/32", "dev", &host_side]);
    node.ns
        .ip(&["route", "add", &format!("{ip}/32"), "dev", &host_side]);
    Pod {
        name: name.to_string(),
        node: node_idx,
        ip,
        ns,
    }
}

/// `/etc/netns/<ns>/resolv.conf`, which `ip netns exec` bind-mounts over /etc/resolv.conf:
/// the kubelet's pod resolver configuration for the cluster domain.
fn write_resolv_conf(ns: &Netns, domain: &str) -> PathBuf {
    let dir = PathBuf::from("/etc/netns").join(&ns.name);
    std::fs::create_dir_all(&dir).expect("create /etc/netns dir");
    std::fs::write(
        dir.join("resolv.conf"),
        format!(
            "search kube-system.svc.{domain} svc.{domain} {domain}\nnameserver {DNS_SERVICE_IP}\noptions ndots:5\n"
        ),
    )
    .expect("write resolv.conf");
    dir
}

/// What every DNS server of the cluster holds: the cluster domain and the reverse zones of
/// 198.18.0.0/15, the two well-known Service names and one name per DNS pod.
fn cluster_zone(domain: &str, dns_pods: &[(String, Ipv4Addr, usize)]) -> Zone {
    let mut zone = Zone::new(&[domain, "18.198.in-addr.arpa", "19.198.in-addr.arpa"])
        .record(
            &format!("kube-dns.kube-system.svc.{domain}"),
            &[IpAddr::V4(DNS_SERVICE_IP)],
        )
        .record(
            &format!("kubernetes.default.svc.{domain}"),
            &[IpAddr::V4(KUBERNETES_SERVICE_IP)],
        );
    for (name, ip, _) in dns_pods {
        zone = zone.record(
            &format!("{name}.kube-dns.kube-system.svc.{domain}"),
            &[IpAddr::V4(*ip)],
        );
    }
    zone
}
