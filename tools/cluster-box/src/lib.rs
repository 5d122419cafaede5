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
//! A dual-stack cluster ([`Spec::dual_stack`]) gives every node, pod and DNS server an IPv6
//! address beside its IPv4 one, routed the same way: underlay 2001:db8:1::/64 (node `i` at
//! `::10+i`, the API at `::200`), pods in 2001:db8:19:<node>::/64 behind the gateway fe80::1,
//! the DNS Service at 2001:db8:19:fa::10. Only 198.18.0.0/15 and 2001:db8::/32 are used, inside namespaces created here; dropping the [`Cluster`]
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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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
    /// IPv6 addresses beside the IPv4 ones everywhere (nodes, pods, DNS instances and the
    /// DNS Service), as a dual-stack cluster has them.
    pub dual_stack: bool,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            nodes: 4,
            dns_pods: 2,
            domain: "cluster.tst.local".to_string(),
            dual_stack: false,
        }
    }
}

/// A node: a namespace with a host IP on the underlay that routes its pods.
pub struct Node {
    pub name: String,
    pub host_ip: Ipv4Addr,
    /// The IPv6 host IP of a dual-stack cluster.
    pub host_ip6: Option<Ipv6Addr>,
    pub control_plane: bool,
    pub ns: Netns,
}

/// A pod: a namespace with one /32 address routed through its node.
pub struct Pod {
    pub name: String,
    pub node: usize,
    pub ip: Ipv4Addr,
    /// The IPv6 address of a dual-stack cluster's pod.
    pub ip6: Option<Ipv6Addr>,
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

    /// Restarts dnsmasq answering `zone` (e.g. the cluster's `zone` with a stale record).
    pub fn serve(&mut self, zone: &Zone) {
        self.server.serve(zone);
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
    /// What every DNS server of the cluster answers (for more servers, e.g. a node cache).
    pub zone: Zone,
}

/// The underlay network's first three octets; nodes are .10 and up, the API is .200.
pub const UNDERLAY: [u8; 3] = [198, 18, 1];
/// The address of the API stand-in's namespace on the underlay.
pub const API_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 200);
/// NodeLocal DNSCache's well-known address.
pub const NODE_LOCAL_DNS_IP: Ipv4Addr = Ipv4Addr::new(169, 254, 20, 10);
/// The kube-dns Service IP.
pub const DNS_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 250, 10);
/// The `kubernetes` Service IP (a DNS record only; nothing answers pings there).
pub const KUBERNETES_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 250, 1);

/// The API stand-in's IPv6 address on the underlay (dual stack).
pub const API_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x200);
/// The kube-dns Service's IPv6 address (dual stack).
pub const DNS_SERVICE_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x19, 0xfa, 0, 0, 0, 0x10);
/// The `kubernetes` Service's IPv6 address (dual stack; a DNS record only).
pub const KUBERNETES_SERVICE_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x19, 0xfa, 0, 0, 0, 0x1);

/// IPv6 host IP of node `i` (dual stack).
pub fn host_ip6(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10 + i as u16)
}

/// The IPv6 pod block of node `j` (dual stack): `2001:db8:19:<j>::/64`.
fn pod_block6(j: usize) -> String {
    format!("2001:db8:19:{j:x}::/64")
}

/// An IPv6 pod address on node `j` (dual stack): `2001:db8:19:<j>::<host>`.
fn pod_ip6(j: usize, host: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0x19, j as u16, 0, 0, 0, host)
}

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
            let ip6 = spec.dual_stack.then(|| host_ip6(i));
            let port = format!("n{i}");
            let mut addrs = vec![format!("{ip}/24")];
            addrs.extend(ip6.map(|a| format!("{a}/64")));
            let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
            veth(&ns, "eth0", &addrs, &underlay, &port, &[]);
            underlay.ip(&["link", "set", &port, "master", "br0"]);
            ns.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
            if spec.dual_stack {
                ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
            }
            nodes.push(Node {
                name: node_name(i),
                host_ip: ip,
                host_ip6: ip6,
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
                    if spec.dual_stack {
                        node.ns.ip(&[
                            "-6",
                            "route",
                            "add",
                            &pod_block6(j),
                            "via",
                            &host_ip6(j).to_string(),
                        ]);
                    }
                }
            }
            if i != 0 && spec.dual_stack {
                node.ns.ip(&[
                    "-6",
                    "route",
                    "add",
                    &pod_block6(0xfa),
                    "via",
                    &host_ip6(0).to_string(),
                ]);
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
        let mut api_addrs = vec![format!("{API_IP}/24")];
        if spec.dual_stack {
            api_addrs.push(format!("{API_IP6}/64"));
        }
        let api_addrs: Vec<&str> = api_addrs.iter().map(String::as_str).collect();
        veth(&api, "eth0", &api_addrs, &underlay, "api", &[]);
        underlay.ip(&["link", "set", "api", "master", "br0"]);
        for j in 0..spec.nodes {
            api.ip(&[
                "route",
                "add",
                &format!("198.19.{j}.0/24"),
                "via",
                &host_ip(j).to_string(),
            ]);
            if spec.dual_stack {
                api.ip(&[
                    "-6",
                    "route",
                    "add",
                    &pod_block6(j),
                    "via",
                    &host_ip6(j).to_string(),
                ]);
            }
        }

        let mut etc_netns = Vec::new();
        let agents: Vec<Pod> = (0..spec.nodes)
            .map(|i| {
                let pod = add_pod(
                    &nodes[i],
                    i,
                    &agent_pod_name(i),
                    Ipv4Addr::new(198, 19, i as u8, 10),
                    spec.dual_stack.then(|| pod_ip6(i, 0x10)),
                    &format!("a{i}"),
                );
                etc_netns.push(write_resolv_conf(&pod.ns, &spec.domain));
                pod
            })
            .collect();

        let dns_names: Vec<DnsName> = (0..spec.dns_pods)
            .map(|k| {
                let node = k % spec.nodes;
                DnsName {
                    name: format!("coredns-{k}"),
                    ip: Ipv4Addr::new(198, 19, node as u8, 100 + k as u8),
                    ip6: spec.dual_stack.then(|| pod_ip6(node, 0x100 + k as u16)),
                    node,
                }
            })
            .collect();
        let zone = cluster_zone(&spec.domain, spec.dual_stack, &dns_names);
        let dns: Vec<DnsPod> = dns_names
            .iter()
            .enumerate()
            .map(|(k, d)| {
                // Tagged by instance: two instances may share a node (fewer nodes than them).
                let pod = add_pod(
                    &nodes[d.node],
                    d.node,
                    &d.name,
                    d.ip,
                    d.ip6,
                    &format!("d{k}"),
                );
                let server = Dnsmasq::spawn(Some(&pod.ns.name), &pod.ips(), &zone);
                DnsPod { pod, server }
            })
            .collect();
        let service_pod = add_pod(
            &nodes[0],
            0,
            "kube-dns-service",
            DNS_SERVICE_IP,
            spec.dual_stack.then_some(DNS_SERVICE_IP6),
            "svc",
        );
        let server = Dnsmasq::spawn(Some(&service_pod.ns.name), &service_pod.ips(), &zone);
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
            zone,
        }
    }

    /// Points agent pod `i`'s resolver (its resolv.conf `nameserver`) at `nameserver`, or
    /// back at the DNS Service IP with `None`. Processes started in the pod afterwards use it.
    pub fn set_agent_nameserver(&self, i: usize, nameserver: Option<IpAddr>) {
        let ns = &self.agents[i].ns;
        let server = nameserver.unwrap_or(IpAddr::V4(DNS_SERVICE_IP));
        write_resolv_conf_with(ns, &self.spec.domain, server);
    }

    /// A NodeLocal DNSCache on node `i`: dnsmasq answering the cluster zone on the well-known
    /// link-local 169.254.20.10 in the node's namespace, which its pods reach through their
    /// default route. Stopped when the returned server is dropped.
    pub fn node_local_dns(&self, i: usize) -> Dnsmasq {
        let ns = &self.nodes[i].ns;
        ns.ip(&[
            "addr",
            "add",
            &format!("{NODE_LOCAL_DNS_IP}/32"),
            "dev",
            "lo",
        ]);
        Dnsmasq::spawn(Some(&ns.name), &[IpAddr::V4(NODE_LOCAL_DNS_IP)], &self.zone)
    }

    /// Removes what [`Cluster::node_local_dns`] added to node `i` (stop the server first).
    pub fn remove_node_local_dns(&self, i: usize) {
        let ns = &self.nodes[i].ns;
        ns.ip(&[
            "addr",
            "del",
            &format!("{NODE_LOCAL_DNS_IP}/32"),
            "dev",
            "lo",
        ]);
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
        let ns = &self.service.pod.ns;
        ns.exec(&["iptables", op, "INPUT", "-j", "DROP"]);
        if self.spec.dual_stack {
            ns.exec(&["ip6tables", op, "INPUT", "-j", "DROP"]);
        }
    }

    /// Drops every IPv6 packet node `i` receives, forwards or sends (`true`), or lets them
    /// pass again: IPv6 broken at one node while IPv4 works (dual stack).
    pub fn set_ipv6_blocked(&self, i: usize, blocked: bool) {
        let op = if blocked { "-I" } else { "-D" };
        for chain in ["INPUT", "FORWARD", "OUTPUT"] {
            self.nodes[i]
                .ns
                .exec(&["ip6tables", op, chain, "-j", "DROP"]);
        }
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
fn add_pod(
    node: &Node,
    node_idx: usize,
    name: &str,
    ip: Ipv4Addr,
    ip6: Option<Ipv6Addr>,
    tag: &str,
) -> Pod {
    let ns = Netns::new(tag);
    // Only needs to be unique within the node's namespace.
    let host_side = format!("cali{tag}");
    let mut addrs = vec![format!("{ip}/32")];
    addrs.extend(ip6.map(|a| format!("{a}/128")));
    let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    // IPv6: the node side's link-local fe80::1 is every pod's gateway (Calico's scheme).
    let host_addrs: &[&str] = if ip6.is_some() { &["fe80::1/64"] } else { &[] };
    veth(&ns, "eth0", &addrs, &node.ns, &host_side, host_addrs);
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
    if let Some(ip6) = ip6 {
        ns.ip(&[
            "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0",
        ]);
        node.ns.ip(&[
            "-6",
            "route",
            "add",
            &format!("{ip6}/128"),
            "dev",
            &host_side,
        ]);
    }
    Pod {
        name: name.to_string(),
        node: node_idx,
        ip,
        ip6,
        ns,
    }
}

impl Pod {
    /// Every address of the pod, IPv4 first.
    pub fn ips(&self) -> Vec<IpAddr> {
        let mut v = vec![IpAddr::V4(self.ip)];
        v.extend(self.ip6.map(IpAddr::V6));
        v
    }
}

impl Node {
    /// Every host IP of the node, IPv4 first.
    pub fn host_ips(&self) -> Vec<IpAddr> {
        let mut v = vec![IpAddr::V4(self.host_ip)];
        v.extend(self.host_ip6.map(IpAddr::V6));
        v
    }
}

/// A DNS pod to create: its name, addresses and node.
struct DnsName {
    name: String,
    ip: Ipv4Addr,
    ip6: Option<Ipv6Addr>,
    node: usize,
}

/// `/etc/netns/<ns>/resolv.conf`, which `ip netns exec` bind-mounts over /etc/resolv.conf:
/// the kubelet's pod resolver configuration for the cluster domain.
fn write_resolv_conf(ns: &Netns, domain: &str) -> PathBuf {
    write_resolv_conf_with(ns, domain, IpAddr::V4(DNS_SERVICE_IP))
}

/// [`write_resolv_conf`] with another nameserver.
fn write_resolv_conf_with(ns: &Netns, domain: &str, nameserver: IpAddr) -> PathBuf {
    let dir = PathBuf::from("/etc/netns").join(&ns.name);
    std::fs::create_dir_all(&dir).expect("create /etc/netns dir");
    std::fs::write(
        dir.join("resolv.conf"),
        format!(
            "search kube-system.svc.{domain} svc.{domain} {domain}\nnameserver {nameserver}\noptions ndots:5\n"
        ),
    )
    .expect("write resolv.conf");
    dir
}

/// What every DNS server of the cluster holds: the cluster domain and the reverse zones of
/// 198.18.0.0/15 (and 2001:db8::/32 in a dual-stack cluster), the two well-known Service
/// names and one name per DNS pod, with every address they have.
fn cluster_zone(domain: &str, dual_stack: bool, dns_pods: &[DnsName]) -> Zone {
    let mut local = vec![domain, "18.198.in-addr.arpa", "19.198.in-addr.arpa"];
    if dual_stack {
        local.push("8.b.d.0.1.0.0.2.ip6.arpa");
    }
    let both = |v4: Ipv4Addr, v6: Ipv6Addr| -> Vec<IpAddr> {
        let mut v = vec![IpAddr::V4(v4)];
        if dual_stack {
            v.push(IpAddr::V6(v6));
        }
        v
    };
    let mut zone = Zone::new(&local)
        .record(
            &format!("kube-dns.kube-system.svc.{domain}"),
            &both(DNS_SERVICE_IP, DNS_SERVICE_IP6),
        )
        .record(
            &format!("kubernetes.default.svc.{domain}"),
            &both(KUBERNETES_SERVICE_IP, KUBERNETES_SERVICE_IP6),
        );
    for d in dns_pods {
        let mut addrs = vec![IpAddr::V4(d.ip)];
        addrs.extend(d.ip6.map(IpAddr::V6));
        zone = zone.record(
            &format!("{}.kube-dns.kube-system.svc.{domain}", d.name),
            &addrs,
        );
    }
    zone
}
