//! What a round checks, decided from a discovery [`Snapshot`] alone (pure, no I/O): one list
//! of planned checks, each with its key and the probe that decides it. With the executors in
//! `round`, this is the only code that knows which kind is probed how.
//!
//! Every node gets a host ping per InternalIP; every agent pod with an IP gets a pod ping per
//! IP (this agent's own pod included, as the original shell script did: it proves the pod network stack); a node
//! with no running agent pod gets a failed `node-without-agent` check, because nothing on that
//! node can report for itself. DNS: forward lookups of two well-known names, reverse lookups of
//! the service and instance IPs, and a direct query to each serving instance.
//!
//! With a reduced mesh ([`Reach`]), an agent plans a node's checks only when it is among the
//! node's chosen checkers (`mesh`), and always its own node's; likewise each DNS instance's
//! query and reverse lookup. The other targets are not its checks at all (not skipped ones):
//! its report stays as small as its share.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::dns::QType;
use crate::kube::{self, AgentPod, DnsInstance, Snapshot};
use crate::mesh::{Domain, Mesh};
use crate::report::{CheckKey, CheckKind, Measured, Outcome, Reason};

/// How a planned check is probed. The variants fall in families, each run by one executor
/// in `round`: ICMP (`Echo`, `EchoMtu`), TCP (`Connect`), DNS (`SystemForward`, `SystemReverse`,
/// `DnsQuery`) and known (`Known`, `Done`).
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// An ICMP echo to `addr`; every echo of a round is in flight together.
    Echo { addr: IpAddr },
    /// A don't-fragment echo to `addr` that fills the pod's MTU (the `pod-mtu` check); these
    /// go together on a socket of their own, beside the echoes.
    EchoMtu { addr: IpAddr },
    /// A TCP handshake with `addr`; every handshake of a round is in flight together (up to
    /// a bound).
    Connect { addr: SocketAddr },
    /// A forward lookup of an absolute `name` through the system resolver. A right answer
    /// holds only addresses of `expect` (when it is not empty).
    SystemForward { name: String, expect: Vec<IpAddr> },
    /// A reverse lookup of `ip` through the system resolver.
    SystemReverse { ip: IpAddr },
    /// A query for `name` straight to one DNS server; a right answer holds only addresses of
    /// `expect` (when it is not empty).
    DnsQuery {
        server: SocketAddr,
        name: String,
        qtype: QType,
        expect: Vec<IpAddr>,
    },
    /// Decided without probing (a node without an agent).
    Known(Outcome),
    /// Measured before the round by other code: the `api` check, whose request discovery
    /// makes anyway at the start of every round.
    Done(Measured),
}

/// One check the round will make: what it is, and how to probe it.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub key: CheckKey,
    pub probe: Probe,
}

/// Everything one round will check, in the order reports list it: the DNS checks, then each
/// node's checks (host pings, pod pings, a missing agent).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub checks: Vec<Planned>,
}

impl Plan {
    fn push(&mut self, key: CheckKey, probe: Probe) {
        self.checks.push(Planned { key, probe });
    }

    /// Puts the `api` check first: the round's one request to the API server at `server`
    /// (its URL), already made by discovery (`probe`: how long it took, or how it failed).
    /// Its budget is that one small request per round, beside discovery's.
    pub fn with_api(mut self, server: &str, probe: &Result<Duration, kube::Error>) -> Plan {
        let address = server
            .strip_prefix("https://")
            .or_else(|| server.strip_prefix("http://"))
            .unwrap_or(server);
        let measured = match probe {
            Ok(took) => Measured {
                rtt_seconds: Some(took.as_secs_f64()),
                ..Measured::of(Outcome::Passed)
            },
            Err(e) => Measured::failed(e.reason(), e.to_string()),
        };
        let key = CheckKey::new(CheckKind::Api, "", "api-server", address);
        self.checks.insert(
            0,
            Planned {
                key,
                probe: Probe::Done(measured),
            },
        );
        self
    }
}

/// The port agents listen on unless told otherwise (`--listen`, the manifest's port).
pub const AGENT_PORT: u16 = 8123;

/// Builds the round's plan from a snapshot and the cluster domain: every node and every
/// DNS instance (the full mesh; the agent's own rounds go through a [`Planner`]).
pub fn plan(snapshot: &Snapshot, domain: &str) -> Plan {
    Planner::new(domain, "", Reach::FULL).plan(snapshot)
}

/// How many agents probe each target: all of them, or `k` chosen by rendezvous hashing
/// (see `mesh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    /// Each node (its host pings, its agent's pod pings, a missing agent) is checked by this
    /// many agents besides its own; `None`: by every agent (`--peers`).
    pub peers: Option<usize>,
    /// Each DNS instance (its direct query and its reverse lookup) is checked by this many
    /// agents; `None`: by every agent (`--dns-instance-peers`).
    pub dns_instance_peers: Option<usize>,
    /// Each agent pod's `pod-tcp` and `pod-mtu` checks are made by this many agents besides
    /// its own (among those that check its node); `None`: by every agent
    /// (`--pod-path-peers`). Its pod pings stay with every agent that checks its node.
    pub pod_path_peers: Option<usize>,
}

impl Reach {
    /// Every agent checks every node and every DNS instance.
    pub const FULL: Reach = Reach {
        peers: None,
        dns_instance_peers: None,
        pod_path_peers: None,
    };
}

/// Plans the rounds of the agent on node `me`, keeping the reduced mesh's choice from one
/// round to the next while the members stay the same (computing it is O(N^2) hashes).
#[derive(Debug)]
pub struct Planner {
    domain: String,
    me: String,
    /// The cluster DNS Service: namespace and name (`--dns-service`).
    dns_service: (String, String),
    nodes: Option<Mesh>,
    dns: Option<Mesh>,
    pod_paths: Option<Mesh>,
    /// The agents' port, for `pod-tcp`.
    port: u16,
    /// Whether to plan `pod-mtu` checks (the pod's MTU is known).
    mtu: bool,
}

/// A node's row: its name, host IPs, and the agent pod to ping (or why there is none).
struct Row<'a> {
    node: &'a str,
    host_ips: Vec<IpAddr>,
    agent: Result<&'a AgentPod, String>,
}

impl Planner {
    /// The planner of the agent on node `me` in cluster `domain`.
    pub fn new(domain: &str, me: &str, reach: Reach) -> Planner {
        Planner {
            domain: domain.to_string(),
            me: me.to_string(),
            dns_service: ("kube-system".to_string(), "kube-dns".to_string()),
            nodes: reach.peers.map(|k| Mesh::new(Domain::Node, k)),
            dns: reach
                .dns_instance_peers
                .map(|k| Mesh::new(Domain::DnsInstance, k)),
            pod_paths: reach.pod_path_peers.map(|k| Mesh::new(Domain::PodPath, k)),
            port: AGENT_PORT,
            mtu: true,
        }
    }

    /// Plans `pod-mtu` checks or not (the agent does not know its pod's MTU, or
    /// `--mtu-size 0`).
    pub fn with_mtu(mut self, mtu: bool) -> Planner {
        self.mtu = mtu;
        self
    }

    /// The agents listen on `port` (`--listen`), not the manifest's 8123: `pod-tcp` connects
    /// there.
    pub fn with_port(mut self, port: u16) -> Planner {
        self.port = port;
        self
    }

    /// The round's plan for this snapshot.
    pub fn plan(&mut self, snapshot: &Snapshot) -> Plan {
        let rows = rows(snapshot);
        // The agents that probe: every node with a usable agent pod.
        let sources: Vec<&str> = rows
            .iter()
            .filter(|r| r.agent.is_ok())
            .map(|r| r.node)
            .collect();
        let me = self.me.as_str();
        let instances: Vec<&DnsInstance> = snapshot
            .dns
            .instances
            .iter()
            // A terminating or non-serving endpoint is on its way out: the Service no longer
            // sends it traffic, so failing to reach it is not a cluster fault.
            .filter(|i| !i.terminating && (i.ready || i.serving))
            .collect();
        let addresses: Vec<String> = instances.iter().map(|i| i.ip.to_string()).collect();
        let dns_share = share(&mut self.dns, me, &sources, || {
            addresses.iter().map(String::as_str).collect()
        });
        let mut out = Plan::default();
        plan_dns(
            snapshot,
            &self.domain,
            &self.dns_service,
            &instances,
            dns_share,
            &mut out,
        );
        let node_share = share(&mut self.nodes, me, &sources, || {
            rows.iter().map(|r| r.node).collect()
        });
        let path_share = share(&mut self.pod_paths, me, &sources, || {
            rows.iter().map(|r| r.node).collect()
        });
        for row in &rows {
            if row.node == me || node_share.is_none_or(|s| s.contains(row.node)) {
                let paths = row.node == me || path_share.is_none_or(|s| s.contains(row.node));
                plan_row(row, self.port, paths, self.mtu && paths, &mut out);
            }
        }
        out
    }

    /// The same planner for a cluster DNS Service other than `kube-system/kube-dns`.
    pub fn with_dns_service(mut self, namespace: &str, name: &str) -> Planner {
        self.dns_service = (namespace.to_string(), name.to_string());
        self
    }
}

/// The targets `me` checks out of those `targets` lists, or `None` for all of them (no
/// reduced mesh, or at most as many sources as each target needs).
fn share<'m, 't>(
    mesh: &'m mut Option<Mesh>,
    me: &str,
    sources: &[&str],
    targets: impl FnOnce() -> Vec<&'t str>,
) -> Option<&'m HashSet<String>> {
    let mesh = mesh.as_mut()?;
    let with_me = sources.len() + usize::from(!sources.contains(&me));
    if mesh.is_full(with_me) {
        return None;
    }
    Some(mesh.chosen(me, sources, &targets()))
}

/// Every node once, in the snapshot's order, with the agent pod picked for it; then a
/// usable agent pod on a node the node list does not know (yet), which still gets a row (an
/// unscheduled pod (no node) or a leftover on a removed node is no missing node).
fn rows(snapshot: &Snapshot) -> Vec<Row<'_>> {
    // Agent pods grouped by node; a node may briefly have two during a rollout.
    let mut pods_by_node: BTreeMap<&str, Vec<&AgentPod>> = BTreeMap::new();
    for pod in &snapshot.agents {
        pods_by_node.entry(pod.node.as_str()).or_default().push(pod);
    }
    let mut rows: Vec<Row<'_>> = snapshot
        .nodes
        .iter()
        .map(|n| Row {
            node: n.name.as_str(),
            host_ips: n.internal_ips.clone(),
            agent: pick_agent(
                pods_by_node
                    .get(n.name.as_str())
                    .map(Vec::as_slice)
                    .unwrap_or(&[]),
            ),
        })
        .collect();
    let known: HashSet<&str> = rows.iter().map(|r| r.node).collect();
    for (node, pods) in &pods_by_node {
        if known.contains(node) || node.is_empty() {
            continue;
        }
        if let Ok(pod) = pick_agent(pods) {
            rows.push(Row {
                node,
                host_ips: pods.iter().flat_map(|p| p.host_ips.clone()).collect(),
                agent: Ok(pod),
            });
        }
    }
    rows
}

/// A node's checks: a host ping per host IP, then a pod ping, (with `tcp`) a handshake with
/// `port` and (with `mtu`) a large don't-fragment echo per IP of its agent pod, or a failed
/// `node-without-agent` check.
fn plan_row(row: &Row<'_>, port: u16, tcp: bool, mtu: bool, out: &mut Plan) {
    let node = row.node;
    for ip in &row.host_ips {
        out.push(
            CheckKey::new(CheckKind::HostPing, node, node, &ip.to_string()),
            Probe::Echo { addr: *ip },
        );
    }
    match &row.agent {
        Ok(pod) => {
            for ip in &pod.pod_ips {
                out.push(
                    CheckKey::new(CheckKind::PodPing, node, &pod.name, &ip.to_string()),
                    Probe::Echo { addr: *ip },
                );
            }
            for ip in pod.pod_ips.iter().filter(|_| tcp) {
                out.push(
                    CheckKey::new(CheckKind::PodTcp, node, &pod.name, &ip.to_string()),
                    Probe::Connect {
                        addr: SocketAddr::new(*ip, port),
                    },
                );
            }
            for ip in pod.pod_ips.iter().filter(|_| mtu) {
                out.push(
                    CheckKey::new(CheckKind::PodMtu, node, &pod.name, &ip.to_string()),
                    Probe::EchoMtu { addr: *ip },
                );
            }
        }
        Err(why) => out.push(
            CheckKey::new(CheckKind::NodeWithoutAgent, node, node, ""),
            Probe::Known(Outcome::failed(Reason::NoAgent, why.clone())),
        ),
    }
}

/// DNS: forward lookups of the DNS Service's own name and of `kubernetes.default`, reverse
/// lookups of the service IPs, and of each serving instance (in `share`, when given) its
/// reverse lookup and a direct query. When the DNS Service does not exist, the lookup of its
/// name is a known failure that says so (`no-dns-service`), not an NXDOMAIN every round.
/// The lookups of the Service's own name must answer the Service's addresses: a server with
/// stale or wrong records fails them (`wrong-answer`) instead of passing.
fn plan_dns(
    snapshot: &Snapshot,
    domain: &str,
    (namespace, service): &(String, String),
    instances: &[&DnsInstance],
    share: Option<&HashSet<String>>,
    out: &mut Plan,
) {
    let [_, api_name] = crate::dns::forward_names(domain);
    let own_name = format!(
        "{service}.{namespace}.svc.{}.",
        domain.trim_end_matches('.')
    );
    if snapshot.dns.service_missing {
        out.push(
            CheckKey::new(CheckKind::DnsService, "", &own_name, ""),
            Probe::Known(Outcome::failed(
                Reason::NoDnsService,
                format!("service {namespace}/{service} does not exist (set --dns-service NAMESPACE/NAME)"),
            )),
        );
    } else {
        out.push(
            CheckKey::new(CheckKind::DnsService, "", &own_name, ""),
            Probe::SystemForward {
                name: own_name.clone(),
                expect: snapshot.dns.service_ips.clone(),
            },
        );
    }
    // The `kubernetes` Service's address is not watched: any address passes.
    out.push(
        CheckKey::new(CheckKind::DnsService, "", &api_name, ""),
        Probe::SystemForward {
            name: api_name.clone(),
            expect: Vec::new(),
        },
    );
    for ip in &snapshot.dns.service_ips {
        out.push(
            CheckKey::new(CheckKind::DnsReverse, "", service, &ip.to_string()),
            Probe::SystemReverse { ip: *ip },
        );
    }
    for inst in instances {
        let address = inst.ip.to_string();
        if share.is_some_and(|s| !s.contains(&address)) {
            continue;
        }
        let target = inst.pod.clone().unwrap_or_else(|| inst.ip.to_string());
        let target_node = inst.node.as_deref().unwrap_or_default();
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
                name: own_name.clone(),
                qtype: if inst.ip.is_ipv4() {
                    QType::A
                } else {
                    QType::Aaaa
                },
                expect: snapshot.dns.service_ips.clone(),
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
    use crate::kube::{DnsInfo, NodeInfo};
    use std::collections::BTreeSet;

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
                service_missing: false,
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
    fn a_missing_dns_service_says_so_and_another_name_is_looked_up() {
        let mut snap = snapshot();
        snap.dns.service_missing = true;
        snap.dns.service_ips.clear();
        let p = Planner::new("tst", "n1", Reach::FULL)
            .with_dns_service("openshift-dns", "dns-default")
            .plan(&snap);
        let dns: Vec<&Planned> = p
            .checks
            .iter()
            .filter(|c| c.key.kind == CheckKind::DnsService)
            .collect();
        assert_eq!(dns.len(), 2);
        assert_eq!(dns[0].key.target, "dns-default.openshift-dns.svc.tst.");
        match &dns[0].probe {
            Probe::Known(o) => {
                assert_eq!(o.reason(), Some(Reason::NoDnsService));
                assert_eq!(
                    o.message(),
                    Some("service openshift-dns/dns-default does not exist (set --dns-service NAMESPACE/NAME)")
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            dns[1].probe,
            Probe::SystemForward {
                name: "kubernetes.default.svc.tst.".into(),
                expect: vec![],
            }
        );
        // The instances are still queried, for the Service's own name.
        let query = p
            .checks
            .iter()
            .find(|c| c.key.kind == CheckKind::DnsInstance)
            .unwrap();
        assert!(
            matches!(&query.probe, Probe::DnsQuery { name, .. } if name == "dns-default.openshift-dns.svc.tst.")
        );
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
    fn the_api_check_comes_first_measured_by_discovery() {
        let server = "https://198.18.1.200:6443";
        let p = plan(&snapshot(), "x").with_api(server, &Ok(std::time::Duration::from_millis(3)));
        let first = p.checks.first().unwrap();
        assert_eq!(
            first.key,
            CheckKey::new(CheckKind::Api, "", "api-server", "198.18.1.200:6443")
        );
        let Probe::Done(m) = &first.probe else {
            panic!("{first:?}")
        };
        assert_eq!((&m.outcome, m.rtt_seconds), (&Outcome::Passed, Some(0.003)));
        let down = kube::Error::Connect {
            server: server.into(),
            message: "connection refused".into(),
        };
        let p = plan(&snapshot(), "x").with_api(server, &Err(down));
        let Probe::Done(m) = &p.checks[0].probe else {
            panic!()
        };
        assert_eq!(m.outcome.reason(), Some(Reason::Unreachable));
        assert!(m.outcome.message().unwrap().contains("connection refused"));
        assert_eq!(
            p.checks
                .iter()
                .filter(|c| c.key.kind == CheckKind::Api)
                .count(),
            1
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
                "pod-tcp a1",
                "pod-mtu a1",
                "host-ping n2",
                "pod-ping a2",
                "pod-tcp a2",
                "pod-mtu a2",
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
                name: "kube-dns.kube-system.svc.cluster.tst.local.".into(),
                expect: snapshot().dns.service_ips,
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
            [
                (CheckKind::PodPing, "n1"),
                (CheckKind::PodTcp, "n1"),
                (CheckKind::PodMtu, "n1"),
                (CheckKind::PodPing, "n2"),
                (CheckKind::PodTcp, "n2"),
                (CheckKind::PodMtu, "n2")
            ]
        );
    }

    /// `n` nodes, an agent on every one but the last, `instances` DNS instances.
    fn cluster(n: usize, instances: usize) -> Snapshot {
        Snapshot {
            agents: (0..n - 1)
                .map(|i| {
                    pod(
                        &format!("a{i}"),
                        &format!("n{i}"),
                        &format!("198.18.{}.{}", 100 + i / 250, i % 250 + 1),
                        "Running",
                    )
                })
                .collect(),
            nodes: (0..n)
                .map(|i| {
                    node(
                        &format!("n{i}"),
                        &format!("198.18.{}.{}", i / 250, i % 250 + 1),
                    )
                })
                .collect(),
            dns: DnsInfo {
                service_missing: false,
                service_ips: vec![ip("198.18.250.10")],
                instances: (0..instances)
                    .map(|i| DnsInstance {
                        ip: ip(&format!("198.18.251.{}", i + 1)),
                        pod: Some(format!("coredns-{i}")),
                        node: Some(format!("n{i}")),
                        ready: true,
                        serving: true,
                        terminating: false,
                    })
                    .collect(),
            },
        }
    }

    #[test]
    fn with_peers_every_node_is_checked_by_k_others_and_its_own_agent() {
        let s = cluster(60, 0);
        let reach = Reach {
            peers: Some(4),
            dns_instance_peers: None,
            pod_path_peers: None,
        };
        let mut by_node: BTreeMap<String, usize> = BTreeMap::new();
        for i in 0..59 {
            let me = format!("n{i}");
            let p = Planner::new("x", &me, reach).plan(&s);
            let nodes: BTreeSet<&str> = p
                .checks
                .iter()
                .map(|c| c.key.target_node.as_str())
                .filter(|n| !n.is_empty())
                .collect();
            assert!(nodes.contains(me.as_str()), "{me} checks its own node");
            for n in nodes.iter().filter(|n| **n != me) {
                *by_node.entry(n.to_string()).or_default() += 1;
            }
            // A checked node gets all its checks (host ping, pod ping, handshake and large
            // echo, or no agent).
            for n in &nodes {
                let kinds: Vec<CheckKind> = p
                    .checks
                    .iter()
                    .filter(|c| c.key.target_node == *n)
                    .map(|c| c.key.kind)
                    .collect();
                let want = if *n == "n59" {
                    vec![CheckKind::HostPing, CheckKind::NodeWithoutAgent]
                } else {
                    vec![
                        CheckKind::HostPing,
                        CheckKind::PodPing,
                        CheckKind::PodTcp,
                        CheckKind::PodMtu,
                    ]
                };
                assert_eq!(kinds, want, "{me} on {n}");
            }
        }
        assert_eq!(by_node.len(), 60);
        assert!(by_node.values().all(|n| *n == 4), "{by_node:?}");
        // Without a limit (or with one that covers everyone), the full plan.
        for peers in [None, Some(59), Some(500)] {
            let reach = Reach { peers, ..reach };
            assert_eq!(Planner::new("x", "n3", reach).plan(&s), plan(&s, "x"));
        }
    }

    #[test]
    fn dns_instances_are_shared_out_and_service_checks_stay_everywhere() {
        let s = cluster(100, 10);
        let reach = Reach {
            peers: None,
            dns_instance_peers: Some(7),
            pod_path_peers: None,
        };
        let mut queried: BTreeMap<String, usize> = BTreeMap::new();
        for i in 0..99 {
            let p = Planner::new("x", &format!("n{i}"), reach).plan(&s);
            let count = |k: CheckKind| p.checks.iter().filter(|c| c.key.kind == k).count();
            assert_eq!(count(CheckKind::DnsService), 2);
            assert_eq!(count(CheckKind::HostPing), 100, "nodes: the full mesh");
            let instances: Vec<String> = of(&p, CheckKind::DnsInstance)
                .iter()
                .map(|c| c.2.to_string())
                .collect();
            let reverses: BTreeSet<String> = of(&p, CheckKind::DnsReverse)
                .iter()
                .map(|c| c.2.to_string())
                .collect();
            // Its own reverse lookup goes with each instance; the service IP's stays.
            assert!(reverses.contains("198.18.250.10"));
            assert_eq!(reverses.len(), instances.len() + 1);
            for a in instances {
                assert!(reverses.contains(&a));
                *queried.entry(a).or_default() += 1;
            }
        }
        assert_eq!(queried.len(), 10);
        assert!(queried.values().all(|n| *n == 7), "{queried:?}");
    }

    #[test]
    fn pod_paths_are_shared_out_and_pod_pings_stay_everywhere() {
        let s = cluster(60, 2); // 60 nodes, 59 of them with an agent
        let reach = Reach {
            peers: None,
            dns_instance_peers: None,
            pod_path_peers: Some(5),
        };
        let mut checked: BTreeMap<String, usize> = BTreeMap::new();
        for i in 0..59 {
            let me = format!("n{i}");
            let p = Planner::new("x", &me, reach).plan(&s);
            let count = |k: CheckKind| p.checks.iter().filter(|c| c.key.kind == k).count();
            assert_eq!(count(CheckKind::PodPing), 59, "pod pings: the full mesh");
            assert_eq!(count(CheckKind::HostPing), 60);
            let tcp: BTreeSet<String> = of(&p, CheckKind::PodTcp)
                .iter()
                .map(|c| c.0.to_string())
                .collect();
            let mtu: BTreeSet<String> = of(&p, CheckKind::PodMtu)
                .iter()
                .map(|c| c.0.to_string())
                .collect();
            assert_eq!(tcp, mtu, "{me}: a handshake and a large echo go together");
            assert!(tcp.contains(&me), "{me}: its own pod's too");
            for n in tcp.into_iter().filter(|n| *n != me) {
                *checked.entry(n).or_default() += 1;
            }
        }
        // Every pod by exactly 5 agents besides its own.
        assert_eq!(checked.len(), 59);
        assert!(checked.values().all(|n| *n == 5), "{checked:?}");
        // A limit that covers everyone is the full plan.
        let reach = Reach {
            pod_path_peers: Some(59),
            ..reach
        };
        assert_eq!(Planner::new("x", "n3", reach).plan(&s), plan(&s, "x"));
    }

    #[test]
    fn the_planner_keeps_its_choice_while_members_stay() {
        let s = cluster(80, 3);
        let reach = Reach {
            peers: Some(3),
            dns_instance_peers: Some(2),
            pod_path_peers: None,
        };
        let mut planner = Planner::new("x", "n5", reach);
        let first = planner.plan(&s);
        for _ in 0..3 {
            assert_eq!(planner.plan(&s), first);
        }
        let computed = |p: &Planner| {
            (
                p.nodes.as_ref().map(Mesh::computations),
                p.dns.as_ref().map(Mesh::computations),
            )
        };
        assert_eq!(computed(&planner), (Some(1), Some(1)));
        let mut fewer = s.clone();
        fewer.nodes.pop();
        let _ = planner.plan(&fewer);
        assert_eq!(
            computed(&planner),
            (Some(2), Some(1)),
            "DNS members unchanged"
        );
    }
}
