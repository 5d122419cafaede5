//! What the rounds see of discovery: watchers keep the views current in the background
//! ([`super::watch`]); a round takes a [`Snapshot`] of them in microseconds, after one small
//! request that proves the API server is still reachable from this node.
//!
//! Why the probe: a watch that went silent because the path to the API server broke (a
//! pulled cable) looks exactly like a quiet cluster until its silence limit, minutes later.
//! One `GET /livez` per round (a few hundred bytes; its own budget, beside discovery's) tells
//! within the round that the members may be stale, and a round that finds the API back
//! wakes the watchers that are backing off, so they resume at once.
//!
//! Dual stack: node Table rows carry only the first InternalIP. When the agents'
//! EndpointSlices (or pods) show both address families, a helper thread learns every
//! node's InternalIPs from full Node objects: one full list when many are unknown, then one
//! GET per node that joins or whose first InternalIP changes.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::backoff::{Backoff, Rng};
use super::client::Client;
use super::error::Error;
use super::objects::{EndpointSlice, Node, Pod};
use super::snapshot::{agent_pod, agents_from_slices, assemble, dns_info, node_info};
use super::watch::{self, AgentSource, Agents, Dns, Nodes, Shared, Source, State, WatchOptions};
use super::{AgentPod, NodeInfo, Snapshot};

/// More unknown nodes than this are learned with one full node list, fewer one GET each.
const ADDRESS_BATCH: usize = 20;
/// How often the node-addresses thread looks for nodes whose addresses it does not know.
const ADDRESS_POLL: Duration = Duration::from_secs(1);
/// After watches resumed in a round, the views count as settled once nothing changed for
/// this long (what a resumed watch missed arrives right after its start).
const SETTLE: Duration = Duration::from_millis(100);

/// One round's view of discovery.
#[derive(Debug, Clone)]
pub struct Current {
    /// `None` until every watcher has listed once.
    pub snapshot: Option<Snapshot>,
    /// How long since the views were last known current: 0 while the API answers and every
    /// watch is healthy.
    pub age: Duration,
    /// What is failing (the probe, which watch and why), one line.
    pub api_error: Option<String>,
    /// `Error::kind()` of every request that failed since the previous round.
    pub errors: Vec<&'static str>,
    /// Why there is no snapshot (when there is none).
    pub error: Option<Error>,
    /// The round's `GET /livez`: how long it took, or how it failed (the `api` check).
    pub probe: Result<Duration, Error>,
}

/// The watchers and what the rounds need from them.
pub struct Discovery {
    client: Arc<Client>,
    shared: Arc<Shared>,
    started: Instant,
    /// The last round at which the API answered and every watch was healthy.
    known_current: Mutex<Option<Instant>>,
}

impl Discovery {
    /// Starts the watcher threads (agents, nodes, dns, node addresses).
    pub fn start(client: Client, options: WatchOptions) -> Result<Discovery, Error> {
        let client = Arc::new(client);
        let shared = Arc::new(Shared::default());
        let s = client.settings().clone();
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_string())
                .spawn(f)
                .map(|_| ())
                .map_err(|e| Error::Other(format!("cannot start the {name} thread: {e}")))
        };
        let (c, sh, o) = (client.clone(), shared.clone(), options.clone());
        let agents = Agents::new(&s.namespace, &options.agent_service, &s.selector);
        spawn(
            "watch-agents",
            Box::new(move || watch::run(agents, c, sh, o)),
        )?;
        let (c, sh, o) = (client.clone(), shared.clone(), options.clone());
        spawn(
            "watch-nodes",
            Box::new(move || watch::run(Nodes::new(&o.node_selector), c, sh, o)),
        )?;
        let (c, sh, o) = (client.clone(), shared.clone(), options.clone());
        let dns = Dns::new(&s.dns_namespace, &s.dns_service);
        spawn("watch-dns", Box::new(move || watch::run(dns, c, sh, o)))?;
        let (c, sh) = (client.clone(), shared.clone());
        spawn(
            "node-addresses",
            Box::new(move || addresses(c, sh, options)),
        )?;
        Ok(Discovery {
            client,
            shared,
            started: Instant::now(),
            known_current: Mutex::new(None),
        })
    }

    /// The API client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Stops the watcher threads (they end at their next read or wake-up).
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.changed.notify_all();
    }

    /// The views now, for a round: probes the API server (within `--discovery-timeout`);
    /// when it answers, wakes watchers that are backing off or not synced yet and waits
    /// (within the same deadline) until each has finished one more attempt.
    pub fn current(&self) -> Current {
        let until = Instant::now() + self.client.settings().discovery_timeout;
        let probe_started = Instant::now();
        let probe = self.client.reachable(until);
        let probe_took = probe_started.elapsed();
        let mut errors = Vec::new();
        if let Err(e) = &probe {
            errors.push(e.kind());
        }
        let mut state = self.shared.lock();
        if probe.is_ok() {
            let needy = |f: (bool, bool)| !(f.0 && f.1);
            let marks = [
                (needy(health(&state.agents)), state.agents.attempts),
                (needy(health(&state.nodes)), state.nodes.attempts),
                (needy(health(&state.dns)), state.dns.attempts),
            ];
            state.agents.kicked |= marks[0].0;
            state.nodes.kicked |= marks[1].0;
            state.dns.kicked |= marks[2].0;
            self.shared.changed.notify_all();
            loop {
                let now = [
                    (health(&state.agents), state.agents.attempts),
                    (health(&state.nodes), state.nodes.attempts),
                    (health(&state.dns), state.dns.attempts),
                ];
                let done =
                    marks
                        .iter()
                        .zip(now)
                        .all(|((needed, mark), ((synced, healthy), attempts))| {
                            !needed || (synced && healthy) || attempts > *mark
                        });
                let left = until.saturating_duration_since(Instant::now());
                if done || left.is_zero() {
                    break;
                }
                state = self.shared.wait(state, left);
            }
            // A watch that resumed replays what it missed right after its start: let that
            // settle (no change for a moment) before taking the snapshot.
            if marks.iter().any(|(needed, _)| *needed) {
                let mut seen = state.changes;
                let mut quiet_since = Instant::now();
                loop {
                    let now = Instant::now();
                    let quiet_left =
                        SETTLE.saturating_sub(now.saturating_duration_since(quiet_since));
                    let left = until.saturating_duration_since(now).min(quiet_left);
                    if left.is_zero() {
                        break;
                    }
                    state = self.shared.wait(state, left);
                    if state.changes != seen {
                        seen = state.changes;
                        quiet_since = Instant::now();
                    }
                }
            }
        }
        errors.append(&mut state.errors);
        let synced = state.agents.synced && state.nodes.synced && state.dns.synced;
        let broken: Vec<(&str, String)> = [
            ("agents", &state.agents.error, state.agents.healthy),
            ("nodes", &state.nodes.error, state.nodes.healthy),
            ("dns", &state.dns.error, state.dns.healthy),
        ]
        .into_iter()
        .filter(|(_, _, healthy)| !healthy)
        .map(|(name, error, _)| {
            (
                name,
                error
                    .clone()
                    .unwrap_or_else(|| "not listed yet".to_string()),
            )
        })
        .collect();
        let snapshot = synced.then(|| build(&state));
        drop(state);
        let api_error = match (&probe, broken.is_empty()) {
            (Ok(()), true) => None,
            (Err(e), true) => Some(e.to_string()),
            (Err(e), false) => {
                let names: Vec<&str> = broken.iter().map(|(n, _)| *n).collect();
                Some(format!("{e} (watches down: {})", names.join(", ")))
            }
            (Ok(()), false) => Some(
                broken
                    .iter()
                    .map(|(n, e)| format!("{n} watch: {e}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        };
        let now = Instant::now();
        let mut known = self.known_current.lock().unwrap_or_else(|p| p.into_inner());
        let age = if api_error.is_none() && synced {
            *known = Some(now);
            Duration::ZERO
        } else {
            now.saturating_duration_since(known.unwrap_or(self.started))
        };
        let error = if synced {
            None
        } else {
            Some(match &probe {
                Err(e) => e.clone(),
                Ok(()) => Error::Other(format!(
                    "discovery not complete yet: {}",
                    api_error.clone().unwrap_or_default()
                )),
            })
        };
        Current {
            snapshot,
            age,
            api_error,
            errors,
            error,
            probe: probe.map(|()| probe_took),
        }
    }

    /// One discovery without watches (for `--once`): lists agents, nodes and the DNS
    /// (and in a dual-stack cluster every node's full addresses) within
    /// `--discovery-timeout`.
    pub fn once(client: &Client, options: &WatchOptions) -> Result<Snapshot, Error> {
        let s = client.settings();
        let until = Instant::now() + s.discovery_timeout;
        let mut state = State::default();
        once_into(
            &mut Agents::new(&s.namespace, &options.agent_service, &s.selector),
            client,
            until,
            &mut state,
        )?;
        once_into(
            &mut Nodes::new(&options.node_selector),
            client,
            until,
            &mut state,
        )?;
        once_into(
            &mut Dns::new(&s.dns_namespace, &s.dns_service),
            client,
            until,
            &mut state,
        )?;
        if dual_stack(&state) && !state.nodes.view.full_objects {
            state.addresses = list_addresses(client, until)?;
        }
        Ok(build(&state))
    }
}

impl Drop for Discovery {
    fn drop(&mut self) {
        self.stop();
    }
}

fn health<V>(f: &watch::Feed<V>) -> (bool, bool) {
    (f.synced, f.healthy)
}

/// Prepare and list one source into `state` (no watch).
fn once_into<S: Source>(
    source: &mut S,
    client: &Client,
    until: Instant,
    state: &mut State,
) -> Result<(), Error> {
    let mut view = S::View::default();
    let target = source.prepare(client, until, &mut view)?;
    let (fresh, _) = source.list(client, &target, until, &view)?;
    let feed = source.feed(state);
    feed.view = fresh;
    feed.synced = true;
    Ok(())
}

/// The snapshot of the views: agents from the slices (or pods), nodes with every address
/// known, the DNS Service and its instances.
fn build(state: &State) -> Snapshot {
    let agents: Vec<AgentPod> = match state.agents.view.source {
        AgentSource::Slices => agents_from_slices(state.agents.view.slices.values()),
        AgentSource::Pods => state.agents.view.pods.values().map(agent_pod).collect(),
    };
    let nodes: Vec<NodeInfo> = state
        .nodes
        .view
        .nodes
        .values()
        .map(|n| {
            let mut n = n.clone();
            if let Some(all) = state.addresses.get(&n.name) {
                if all.first() == n.internal_ips.first() {
                    n.internal_ips = all.clone();
                }
            }
            n
        })
        .collect();
    let slices: Vec<EndpointSlice> = state.dns.view.slices.values().cloned().collect();
    assemble(
        agents,
        nodes,
        dns_info(state.dns.view.service.as_ref(), &slices),
    )
}

/// Whether the agents have addresses of both families (a dual-stack cluster), so node rows
/// (first InternalIP only) miss the second family.
fn dual_stack(state: &State) -> bool {
    let view = &state.agents.view;
    match view.source {
        AgentSource::Slices => {
            let has = |t: &str| {
                view.slices
                    .values()
                    .any(|s| s.address_type == t && !s.endpoints.is_empty())
            };
            has("IPv4") && has("IPv6")
        }
        AgentSource::Pods => {
            let families = |p: &Pod| {
                let ips = agent_pod(p).pod_ips;
                (
                    ips.iter().any(IpAddr::is_ipv4),
                    ips.iter().any(IpAddr::is_ipv6),
                )
            };
            let (v4, v6) = view
                .pods
                .values()
                .map(families)
                .fold((false, false), |a, b| (a.0 || b.0, a.1 || b.1));
            v4 && v6
        }
    }
}

/// Every node's InternalIPs from one full node list.
fn list_addresses(client: &Client, until: Instant) -> Result<BTreeMap<String, Vec<IpAddr>>, Error> {
    let nodes: Vec<Node> = client.list_within("/api/v1/nodes", &[], until)?;
    Ok(nodes
        .iter()
        .map(node_info)
        .map(|n| (n.name, n.internal_ips))
        .collect())
}

/// The node-addresses thread: in a dual-stack cluster, keeps every node's InternalIPs
/// (both families) for the nodes the Table rows show with their first one only.
fn addresses(client: Arc<Client>, shared: Arc<Shared>, options: WatchOptions) {
    let mut rng = Rng::from_entropy();
    let mut backoff = Backoff::new(options.backoff.0, options.backoff.1);
    let mut pause = Duration::from_millis(200);
    loop {
        // Polls (rather than waking on every change): a node heartbeat every few
        // milliseconds at 5,000 nodes must not cost a scan each.
        let end = Instant::now() + pause;
        while Instant::now() < end {
            if shared.stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(
                Duration::from_millis(100).min(end.saturating_duration_since(Instant::now())),
            );
        }
        pause = ADDRESS_POLL;
        let missing: Vec<String> = {
            let mut state = shared.lock();
            if !state.nodes.synced || !dual_stack(&state) || state.nodes.view.full_objects {
                state.addresses.clear();
                continue;
            }
            let State {
                nodes, addresses, ..
            } = &mut *state;
            addresses.retain(|name, _| nodes.view.nodes.contains_key(name));
            nodes
                .view
                .nodes
                .values()
                .filter(|n| {
                    addresses
                        .get(&n.name)
                        .is_none_or(|all| all.first() != n.internal_ips.first())
                })
                .map(|n| n.name.clone())
                .collect()
        };
        if missing.is_empty() {
            continue;
        }
        let until = Instant::now() + client.settings().discovery_timeout;
        let learned: Result<BTreeMap<String, Vec<IpAddr>>, Error> = if missing.len() > ADDRESS_BATCH
        {
            log::info!(
                "dual-stack cluster: reading {} nodes' addresses (one full node list)",
                missing.len()
            );
            list_addresses(&client, until)
        } else {
            missing
                .iter()
                .map(|name| {
                    let path = format!("/api/v1/nodes/{}", super::client::segment(name));
                    client
                        .get_named::<Node>(&path, until)
                        .map(|n| n.map(|n| (name.clone(), node_info(&n).internal_ips)))
                })
                .filter_map(Result::transpose)
                .collect()
        };
        match learned {
            Ok(found) => {
                backoff.reset();
                shared.lock().addresses.extend(found);
                shared.changed.notify_all();
            }
            Err(e) => {
                shared.lock().error_kind(e.kind());
                pause = backoff.fail(&mut rng);
                log::warn!(
                    "kubernetes api: node addresses: {e}; retrying within {}",
                    crate::duration::format(pause)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::objects::{Endpoint, EndpointConditions, ObjectMeta, ObjectReference};

    fn slice(name: &str, family: &str, eps: &[(&str, &str, &str)]) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                name: name.into(),
                ..ObjectMeta::default()
            },
            address_type: family.into(),
            endpoints: eps
                .iter()
                .map(|(pod, node, ip)| Endpoint {
                    addresses: vec![ip.to_string()],
                    conditions: EndpointConditions {
                        ready: Some(true),
                        serving: Some(*pod != "a2"),
                        terminating: Some(false),
                    },
                    target_ref: Some(ObjectReference {
                        kind: "Pod".into(),
                        name: pod.to_string(),
                    }),
                    node_name: Some(node.to_string()),
                })
                .collect(),
        }
    }

    #[test]
    fn a_snapshot_from_the_views_with_dual_stack_addresses() {
        let mut state = State::default();
        let v4 = slice(
            "s4",
            "IPv4",
            &[("a1", "n1", "198.18.1.1"), ("a2", "n2", "198.18.1.2")],
        );
        let v6 = slice("s6", "IPv6", &[("a1", "n1", "2001:db8::1:1")]);
        state.agents.view.slices.insert("s4".into(), v4);
        assert!(!dual_stack(&state));
        state.agents.view.slices.insert("s6".into(), v6);
        assert!(dual_stack(&state));
        for (name, ip) in [("n1", "198.18.0.1"), ("n2", "198.18.0.2")] {
            state.nodes.view.nodes.insert(
                name.into(),
                NodeInfo {
                    name: name.into(),
                    internal_ips: vec![ip.parse().unwrap()],
                    control_plane: false,
                    ready: true,
                    unschedulable: false,
                },
            );
        }
        state.addresses.insert(
            "n1".into(),
            vec![
                "198.18.0.1".parse().unwrap(),
                "2001:db8::1".parse().unwrap(),
            ],
        );
        // Addresses learned before the node's first IP changed are not used.
        state.addresses.insert(
            "n2".into(),
            vec![
                "198.18.9.9".parse().unwrap(),
                "2001:db8::2".parse().unwrap(),
            ],
        );
        let snap = build(&state);
        assert_eq!(snap.agents.len(), 2);
        let a1 = &snap.agents[0];
        assert_eq!(a1.pod_ips.len(), 2, "both families merged");
        assert!(a1.ready && a1.phase == "Running" && !a1.deleting);
        assert!(!snap.agents[1].ready, "not serving: not ready");
        assert_eq!(snap.nodes[0].internal_ips.len(), 2);
        assert_eq!(
            snap.nodes[1].internal_ips,
            vec!["198.18.0.2".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn the_pods_fallback_builds_agents_from_pods() {
        let mut state = State::default();
        state.agents.view.source = AgentSource::Pods;
        let list: crate::kube::objects::List<Pod> = serde_json::from_str(include_str!(
            "../../tests/fixtures/k8s-api/k8s-openapi-replay-v1.36.kube-system-PodList.response-body.json"
        ))
        .unwrap();
        for p in list.items {
            state.agents.view.pods.insert(p.metadata.name.clone(), p);
        }
        let snap = build(&state);
        assert_eq!(snap.agents.len(), 8);
        assert!(!dual_stack(&state));
    }
}
