//! A cluster modelled round by round as the series Prometheus would store from its agents,
//! for `promtool test rules` (tests/rules.rs). One sample a minute: an agent's round a minute,
//! each scraped once. Faults say what fails from when; the agents' series follow from them the
//! way the agent renders them (per-target series for every target, as in a small cluster).

use std::collections::BTreeMap;

use k8s_network_test_daemonset::view::metrics::RTT_BUCKETS;

/// The scrape job of the modelled agents.
pub const JOB: &str = "networktest";
/// Seconds between rounds (and samples).
pub const INTERVAL: u64 = 60;
/// The usual RTT of a path in seconds, before a small per-path spread: inside the
/// (0.5 ms, 1 ms] histogram bucket, so the cluster's median is 0.75 ms.
const BASE_RTT: f64 = 0.0006;

/// What breaks, from a minute on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// The node's cable pulled: its agent is not scraped, and nothing reaches it.
    NodeDown(usize),
    /// Down for `period` rounds, up for `period` rounds, and so on.
    Flapping { node: usize, period: usize },
    /// The agent's own echoes and DNS queries get no answer (its egress is cut); the other
    /// agents still reach the node and its pod.
    Isolated(usize),
    /// Echo requests to the node's agent pod are dropped (a pod firewall).
    PodDropsIcmp(usize),
    /// The pod network path between two nodes is broken both ways (a stale tunnel or FDB
    /// entry on one of them): their agents fail each other's pod ping; every other path works.
    PodPathDown(usize, usize),
    /// DNS instance `i` (`coredns-i`) does not answer.
    DnsInstanceDown(usize),
    /// Lookups through the DNS service fail on every node.
    DnsServiceDown,
    /// Lookups through the DNS service fail on this node only.
    NodeDns(usize),
    /// Pings towards the node take this many seconds (from every other node).
    Slow { node: usize, rtt: f64 },
    /// The agent is scraped but completes no more rounds.
    Stuck(usize),
    /// The agent is scraped but never completed a round (use from minute 0).
    NoRound(usize),
    /// The node's agent pod is gone: no scrape target, and the others report the node
    /// without an agent.
    NoAgent(usize),
    /// A little loss on the node: rounds pass, but every agent's loss window shows echoes
    /// lost to the node's pod, and the node's own agent's to every other node's pod.
    Lossy(usize),
    /// Every agent pod is gone.
    AllAgentsGone,
}

/// A modelled cluster: `node-0` .. `node-(nodes-1)`, an agent on each, DNS instances.
#[derive(Debug, Clone)]
pub struct Model {
    pub nodes: usize,
    /// `--peers K`: node `t` is checked by the agents of the K nodes after it (cyclically).
    pub peers: Option<usize>,
    /// The node of each DNS instance `coredns-i`.
    pub dns: Vec<usize>,
    /// Samples per series (minutes).
    pub minutes: usize,
    /// (from minute, fault).
    pub faults: Vec<(usize, Fault)>,
}

impl Model {
    /// A healthy full-mesh cluster of `nodes` with DNS instances on nodes 0 and 1, for 30
    /// minutes.
    pub fn new(nodes: usize) -> Model {
        Model {
            nodes,
            peers: None,
            dns: vec![0, 1],
            minutes: 30,
            faults: Vec::new(),
        }
    }

    /// Adds `fault` from minute `from`.
    pub fn with(mut self, from: usize, fault: Fault) -> Model {
        self.faults.push((from, fault));
        self
    }

    fn active(&self, m: usize, f: Fault) -> bool {
        self.faults.iter().any(|&(from, g)| from <= m && g == f)
    }

    fn down(&self, m: usize, node: usize) -> bool {
        self.active(m, Fault::NodeDown(node))
            || self.faults.iter().any(|&(from, f)| match f {
                Fault::Flapping { node: n, period } if n == node && from <= m => {
                    ((m - from) / period.max(1)) % 2 == 0
                }
                _ => false,
            })
    }

    fn has_agent(&self, m: usize, node: usize) -> bool {
        !self.active(m, Fault::NoAgent(node)) && !self.active(m, Fault::AllAgentsGone)
    }

    fn slow(&self, m: usize, node: usize) -> Option<f64> {
        self.faults.iter().find_map(|&(from, f)| match f {
            Fault::Slow { node: n, rtt } if n == node && from <= m => Some(rtt),
            _ => None,
        })
    }

    /// The minute of the agent's last round at minute `m` (`None`: no round yet).
    fn round_of(&self, m: usize, s: usize) -> Option<usize> {
        if self.active(m, Fault::NoRound(s)) {
            return None;
        }
        let stuck = self.faults.iter().find_map(|&(from, f)| match f {
            Fault::Stuck(n) if n == s && from <= m => Some(from),
            _ => None,
        });
        Some(stuck.map_or(m, |from| from.saturating_sub(1)))
    }

    /// Whether the agent on `s` checks node `t` (every agent checks its own node).
    fn checks(&self, m: usize, s: usize, t: usize) -> bool {
        if s == t {
            return true;
        }
        let Some(k) = self.peers else { return true };
        let agents: Vec<usize> = (1..self.nodes)
            .map(|d| (t + d) % self.nodes)
            .filter(|&n| self.has_agent(m, n))
            .collect();
        agents.iter().take(k).any(|&n| n == s)
    }

    /// The RTT of a ping from `s` to node `t` in minute `m`, or `None` when it fails.
    fn ping(&self, m: usize, s: usize, t: usize, pod: bool) -> Option<f64> {
        let base = BASE_RTT + 0.00001 * (s + t) as f64;
        if s == t {
            return (!(pod && self.active(m, Fault::PodDropsIcmp(t)))).then_some(base);
        }
        let fails = self.down(m, t)
            || self.active(m, Fault::Isolated(s))
            || (pod && self.active(m, Fault::PodDropsIcmp(t)))
            || (pod
                && (self.active(m, Fault::PodPathDown(s, t))
                    || self.active(m, Fault::PodPathDown(t, s))));
        (!fails).then(|| self.slow(m, t).unwrap_or(base))
    }

    fn dns_service_ok(&self, m: usize, s: usize) -> bool {
        !(self.active(m, Fault::DnsServiceDown)
            || self.active(m, Fault::NodeDns(s))
            || self.active(m, Fault::Isolated(s)))
    }

    fn dns_instance_ok(&self, m: usize, s: usize, i: usize) -> bool {
        let node = self.dns.get(i).copied().unwrap_or(0);
        !(self.active(m, Fault::DnsInstanceDown(i))
            || self.active(m, Fault::Isolated(s))
            || self.down(m, node))
    }

    /// Every input series: its text (`name{labels}`) and one value a minute (`None`: no
    /// sample; the sample after a present one becomes a staleness marker, as a failed scrape
    /// or a departed series writes).
    pub fn series(&self) -> BTreeMap<String, Vec<Option<f64>>> {
        let mut out: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
        // Cumulative RTT histograms per agent and kind: counts per bucket (not cumulative).
        let mut hist: BTreeMap<(usize, &str), Vec<u64>> = BTreeMap::new();
        for m in 0..self.minutes {
            for s in 0..self.nodes {
                let mut now: Vec<(String, f64)> = Vec::new();
                self.agent_minute(m, s, &mut hist, &mut now);
                for (name, value) in now {
                    let slot = out.entry(name).or_insert_with(|| vec![None; self.minutes]);
                    if let Some(v) = slot.get_mut(m) {
                        *v = Some(value);
                    }
                }
            }
        }
        out
    }

    /// The series agent `s` exports (and its `up`) in minute `m`.
    fn agent_minute(
        &self,
        m: usize,
        s: usize,
        hist: &mut BTreeMap<(usize, &'static str), Vec<u64>>,
        out: &mut Vec<(String, f64)>,
    ) {
        if !self.has_agent(m, s) {
            return; // no scrape target: not even `up`
        }
        let target = format!("job=\"{JOB}\",instance=\"{}\"", instance(s));
        let scraped = !self.down(m, s);
        out.push((format!("up{{{target}}}"), if scraped { 1.0 } else { 0.0 }));
        if !scraped {
            return;
        }
        let mut put = |name: &str, labels: &str, v: f64| {
            let sep = if labels.is_empty() { "" } else { "," };
            out.push((format!("{name}{{{target}{sep}{labels}}}"), v));
        };
        put(
            "networktest_agent_info",
            &format!("node=\"{}\",pod=\"{}\"", node(s), pod(s)),
            1.0,
        );
        put("networktest_round_interval_seconds", "", INTERVAL as f64);
        let k = self.peers.map_or(f64::INFINITY, |k| k as f64);
        put("networktest_mesh_peers", "target=\"node\"", k);
        put("networktest_mesh_peers", "target=\"dns-instance\"", 50.0);
        // The histogram counts every round so far, also while the rounds are stuck.
        let Some(r) = self.round_of(m, s) else { return };
        put(
            "networktest_last_round_timestamp_seconds",
            "",
            (r as u64 * INTERVAL) as f64,
        );
        let mut peer: BTreeMap<&str, (u32, u32)> = ["host-ping", "pod-ping", "node-without-agent"]
            .into_iter()
            .map(|k| (k, (0, 0)))
            .collect();
        let mut rtts: Vec<(&'static str, f64)> = Vec::new();
        for t in (0..self.nodes).filter(|&t| self.checks(r, s, t)) {
            let mut check = |kind: &'static str, tgt: String, address: String, rtt: Option<f64>| {
                let labels = format!(
                    "kind=\"{kind}\",target_node=\"{}\",target=\"{tgt}\",address=\"{address}\"",
                    node(t)
                );
                put(
                    "networktest_target_up",
                    &labels,
                    if rtt.is_some() { 1.0 } else { 0.0 },
                );
                if let Some(rtt) = rtt.filter(|_| kind != "node-without-agent") {
                    put("networktest_target_rtt_seconds", &labels, rtt);
                    rtts.push((kind, rtt));
                }
                if t != s {
                    if let Some((made, failed)) = peer.get_mut(kind) {
                        *made += 1;
                        *failed += u32::from(rtt.is_none());
                    }
                }
            };
            check("host-ping", node(t), host_ip(t), self.ping(r, s, t, false));
            if self.has_agent(r, t) {
                check("pod-ping", pod(t), pod_ip(t), self.ping(r, s, t, true));
            } else {
                check("node-without-agent", node(t), String::new(), None);
            }
        }
        // The loss window: the paths that lost echoes in the last rounds.
        for t in (0..self.nodes).filter(|&t| self.checks(r, s, t) && t != s) {
            if self.active(r, Fault::Lossy(t)) || self.active(r, Fault::Lossy(s)) {
                let labels = format!(
                    "kind=\"pod-ping\",target_node=\"{}\",target=\"{}\",address=\"{}\"",
                    node(t),
                    pod(t),
                    pod_ip(t)
                );
                put("networktest_window_path_echoes_sent", &labels, 15.0);
                put("networktest_window_path_echoes_lost", &labels, 1.0);
            }
        }
        for (i, &d) in self.dns.iter().enumerate() {
            let labels = format!(
                "kind=\"dns-instance\",target_node=\"{}\",target=\"coredns-{i}\",address=\"198.19.{d}.{}\"",
                node(d),
                100 + i
            );
            let ok = self.dns_instance_ok(r, s, i);
            put("networktest_target_up", &labels, f64::from(u8::from(ok)));
        }
        let failed_lookups = if self.dns_service_ok(r, s) { 0.0 } else { 2.0 };
        put(
            "networktest_last_round_failed_checks",
            "kind=\"dns-service\"",
            failed_lookups,
        );
        for (kind, (made, failed)) in &peer {
            put(
                "networktest_last_round_peer_checks",
                &format!("kind=\"{kind}\""),
                f64::from(*made),
            );
            put(
                "networktest_last_round_peer_failed_checks",
                &format!("kind=\"{kind}\""),
                f64::from(*failed),
            );
        }
        for kind in ["host-ping", "pod-ping"] {
            let counts = hist
                .entry((s, kind))
                .or_insert_with(|| vec![0; RTT_BUCKETS.len() + 1]);
            // A stuck agent adds nothing new.
            if r == m {
                for (_, rtt) in rtts.iter().filter(|(k, _)| *k == kind) {
                    let slot = RTT_BUCKETS
                        .iter()
                        .position(|le| rtt <= le)
                        .unwrap_or(RTT_BUCKETS.len());
                    counts[slot] += 1;
                }
            }
            let mut cumulative = 0;
            for (i, n) in counts.iter().enumerate() {
                cumulative += n;
                let le = RTT_BUCKETS
                    .get(i)
                    .map_or("+Inf".to_string(), |b| b.to_string());
                put(
                    "networktest_rtt_seconds_bucket",
                    &format!("kind=\"{kind}\",le=\"{le}\""),
                    cumulative as f64,
                );
            }
        }
    }
}

pub fn node(i: usize) -> String {
    format!("node-{i}")
}

pub fn pod(i: usize) -> String {
    format!("k8s-network-test-daemonset-{i}")
}

pub fn instance(i: usize) -> String {
    format!("{}:8123", pod_ip(i))
}

fn pod_ip(i: usize) -> String {
    format!("198.19.{i}.10")
}

fn host_ip(i: usize) -> String {
    format!("198.18.1.{}", 10 + i)
}

/// A value list in promtool's notation: `_` for no sample, `stale` for the marker written
/// the first minute a series is gone.
pub fn values(samples: &[Option<f64>]) -> String {
    let mut out = Vec::with_capacity(samples.len());
    let mut was = false;
    for v in samples {
        out.push(match v {
            Some(v) if v.is_infinite() => "+Inf".to_string(),
            Some(v) => v.to_string(),
            None if was => "stale".to_string(),
            None => "_".to_string(),
        });
        was = v.is_some();
    }
    out.join(" ")
}
