//! Alarms not to raise, and the ones to sharpen (pure): after a round's probes, what the
//! cluster says about the targets decides how their failures read.
//!
//! - A target going away is skipped, not failed: a node being deleted or tainted for removal
//!   by the cluster autoscaler (`node-deleting`, `scale-down`), an agent pod terminating
//!   (`agent-terminating`), an agent pod not Ready yet or a node without an agent yet while
//!   younger than the start-up grace period (`agent-starting`), and a node whose agent pod
//!   left less than the grace period ago (a rollout deletes the old pod before it creates the
//!   new one, which may first pull its image: `agent-starting`). `--report-going-away` turns
//!   this off.
//! - A NotReady node that does not answer stays failed, with the reason `node-not-ready`:
//!   the API marks a node NotReady within a minute of a pulled cable, so skipping it would
//!   hide the very fault this tool exists for.
//! - An agent pod Running but not Ready past the grace period (crash-looping, an image that
//!   cannot run there) leaves its node untested while its IP still answers (the sandbox keeps
//!   the network namespace): the node gets a failed `node-without-agent` check with the
//!   reason `agent-not-ready`, and its pod IP is still pinged.
//!
//! Ages are what this agent saw (slices and node rows carry no creation time): a node's age
//! counts from its first appearance in this agent's snapshots (the nodes of its first
//! snapshot count as old, so a restarted agent hides no missing agent), an agent pod's time
//! not Ready from when this agent first saw it not Ready (so a freshly deployed DaemonSet,
//! every pod starting at once, raises nothing during the grace period).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::kube::{AgentPod, Fate, Snapshot};
use crate::report::{Check, CheckKey, CheckKind, Measured, Outcome, Reason};

/// How failures of targets going away read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Skip (rather than fail) the checks of targets that are going away or starting.
    pub skip_going_away: bool,
    /// How long a new agent pod (or a new node's missing agent) may take to become Ready.
    pub grace: Duration,
}

/// When each node first appeared and each agent pod was first seen not Ready, in this
/// agent's snapshots. Bounded by the members of the last snapshot.
#[derive(Debug, Default)]
pub struct Ages {
    seen_once: bool,
    /// `None`: already there in the first snapshot (age unknown, counts as old).
    nodes: HashMap<String, Option<Instant>>,
    /// Agent pods not Ready (and not being deleted), since when.
    not_ready: HashMap<String, Instant>,
    /// Nodes that have an agent pod (in the last snapshot).
    with_agent: HashSet<String>,
    /// Nodes whose agent pods all left, since when (until one comes back).
    agent_left: HashMap<String, Instant>,
}

impl Ages {
    /// Notes the members of `snapshot` at `now`; forgets the ones that left (or got Ready).
    pub fn update(&mut self, snapshot: &Snapshot, now: Instant) {
        let at = self.seen_once.then_some(now);
        self.seen_once = true;
        let nodes: HashSet<&str> = snapshot.nodes.iter().map(|n| n.name.as_str()).collect();
        self.nodes.retain(|n, _| nodes.contains(n.as_str()));
        for n in &nodes {
            self.nodes.entry(n.to_string()).or_insert(at);
        }
        let pods: HashSet<&str> = snapshot
            .agents
            .iter()
            .filter(|p| !p.ready && !p.deleting)
            .map(|p| p.name.as_str())
            .collect();
        self.not_ready.retain(|p, _| pods.contains(p.as_str()));
        for p in pods {
            self.not_ready.entry(p.to_string()).or_insert(now);
        }
        let with_agent: HashSet<String> = snapshot.agents.iter().map(|p| p.node.clone()).collect();
        for gone in self.with_agent.difference(&with_agent) {
            if nodes.contains(gone.as_str()) {
                self.agent_left.insert(gone.clone(), now);
            }
        }
        self.agent_left
            .retain(|n, _| nodes.contains(n.as_str()) && !with_agent.contains(n));
        self.with_agent = with_agent;
    }

    /// How long ago node `name`'s agent pods all left, when they did while this agent ran.
    fn agent_left(&self, name: &str, now: Instant) -> Option<Duration> {
        Some(now.saturating_duration_since(*self.agent_left.get(name)?))
    }

    /// How long ago node `name` appeared, when it appeared after the first snapshot.
    fn node(&self, name: &str, now: Instant) -> Option<Duration> {
        let at = (*self.nodes.get(name)?)?;
        Some(now.saturating_duration_since(at))
    }

    /// How long agent pod `name` has been seen not Ready (zero when not noted).
    fn not_ready(&self, name: &str, now: Instant) -> Duration {
        self.not_ready
            .get(name)
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(*at))
    }
}

/// Rewrites the failures of a round's checks from what the cluster says about their targets
/// (see the module doc), and adds a failed `node-without-agent` check (`agent-not-ready`)
/// for each node whose pinged agent pod is not Ready past the grace period. `fates`: the
/// nodes known to be going away.
pub fn apply(
    checks: &mut Vec<Check>,
    snapshot: &Snapshot,
    fates: &BTreeMap<String, Fate>,
    ages: &Ages,
    now: Instant,
    policy: &Policy,
) {
    let nodes: HashMap<&str, bool> = snapshot
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.ready))
        .collect();
    let pods: HashMap<&str, &AgentPod> = snapshot
        .agents
        .iter()
        .map(|p| (p.name.as_str(), p))
        .collect();
    let young = |age: Option<Duration>| age.is_some_and(|a| a < policy.grace);

    // Agent pods pinged but not Ready: past the grace period, their node has no working agent.
    let mut not_ready: Vec<(String, String, Duration)> = Vec::new();
    for c in checks.iter() {
        if c.kind != CheckKind::PodPing {
            continue;
        }
        let Some(pod) = pods.get(c.target.as_str()) else {
            continue;
        };
        if pod.ready || pod.deleting || not_ready.iter().any(|(n, ..)| *n == pod.node) {
            continue;
        }
        let age = ages.not_ready(&pod.name, now);
        if age >= policy.grace {
            not_ready.push((pod.node.clone(), pod.name.clone(), age));
        }
    }
    for (node, pod, age) in not_ready {
        checks.push(Check::new(
            CheckKey::new(CheckKind::NodeWithoutAgent, &node, &node, ""),
            Measured::failed(
                Reason::AgentNotReady,
                format!(
                    "agent pod {pod} is running but not Ready for {}: nothing on this node reports",
                    crate::duration::format(age)
                ),
            ),
        ));
    }

    for c in checks.iter_mut() {
        let Outcome::Failed { message, .. } = &c.outcome else {
            continue;
        };
        if c.target_node.is_empty() {
            continue;
        }
        let node = c.target_node.as_str();
        let message = message.clone();
        let pod = pods.get(c.target.as_str()).filter(|p| p.node == node);
        let skip = |reason: Reason, why: String| Outcome::skipped(reason, why);
        let going = if !policy.skip_going_away {
            None
        } else if let Some(fate) = fates.get(node) {
            Some(match fate {
                Fate::Deleting => skip(
                    Reason::NodeDeleting,
                    format!("node is being deleted ({message})"),
                ),
                Fate::ScaleDown => skip(
                    Reason::ScaleDown,
                    format!("node is being removed by the cluster autoscaler ({message})"),
                ),
            })
        } else if let Some(p) = pod.filter(|p| p.deleting) {
            Some(skip(
                Reason::AgentTerminating,
                format!("agent pod {} is terminating ({message})", p.name),
            ))
        } else if let Some(p) =
            pod.filter(|p| !p.ready && ages.not_ready(&p.name, now) < policy.grace)
        {
            Some(skip(
                Reason::AgentStarting,
                format!("agent pod {} is starting ({message})", p.name),
            ))
        } else if c.kind == CheckKind::NodeWithoutAgent {
            let on_node: Vec<&&AgentPod> = pods.values().filter(|p| p.node == node).collect();
            if !on_node.is_empty() && on_node.iter().all(|p| p.deleting) {
                Some(skip(
                    Reason::AgentTerminating,
                    format!("{message} (terminating: a new one follows)"),
                ))
            } else if young(ages.node(node, now)) {
                Some(skip(
                    Reason::AgentStarting,
                    format!("{message} (the node is new: its agent is starting)"),
                ))
            } else {
                ages.agent_left(node, now)
                    .filter(|left| *left < policy.grace)
                    .map(|left| {
                        skip(
                            Reason::AgentStarting,
                            format!(
                                "{message} (its agent pod left {} ago: a new one is starting)",
                                crate::duration::format(left)
                            ),
                        )
                    })
            }
        } else {
            None
        };
        if let Some(outcome) = going {
            c.outcome = outcome;
        } else if nodes.get(node) == Some(&false) {
            c.outcome =
                Outcome::failed(Reason::NodeNotReady, format!("node is NotReady: {message}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::NodeInfo;
    use crate::report::Status;

    fn node(name: &str, ready: bool) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            internal_ips: vec![],
            control_plane: false,
            ready,
            unschedulable: false,
        }
    }

    fn pod(name: &str, node: &str, ready: bool, deleting: bool) -> AgentPod {
        AgentPod {
            name: name.into(),
            node: node.into(),
            pod_ips: vec![],
            host_ips: vec![],
            phase: "Running".into(),
            ready,
            deleting,
        }
    }

    fn failed(kind: CheckKind, node: &str, target: &str) -> Check {
        Check::failed(
            kind,
            node,
            target,
            "198.18.0.1",
            Reason::Timeout,
            "no reply within 1s",
        )
    }

    const POLICY: Policy = Policy {
        skip_going_away: true,
        grace: Duration::from_secs(120),
    };

    /// (kind, target, status, reason) of each check.
    fn summary(checks: &[Check]) -> Vec<(CheckKind, String, Status, Option<Reason>)> {
        checks
            .iter()
            .map(|c| (c.kind, c.target.clone(), c.status(), c.outcome.reason()))
            .collect()
    }

    #[test]
    fn going_away_is_skipped_not_ready_stays_failed() {
        let snap = Snapshot {
            nodes: vec![
                node("gone", true),
                node("scaled", true),
                node("down", false),
                node("fine", true),
            ],
            agents: vec![
                pod("a-gone", "gone", true, false),
                pod("a-down", "down", true, false),
                pod("a-fine", "fine", true, true),
            ],
            ..Snapshot::default()
        };
        let mut ages = Ages::default();
        let t0 = Instant::now();
        ages.update(&snap, t0);
        let fates = BTreeMap::from([
            ("gone".to_string(), Fate::Deleting),
            ("scaled".to_string(), Fate::ScaleDown),
        ]);
        let mut checks = vec![
            failed(CheckKind::HostPing, "gone", "gone"),
            failed(CheckKind::PodPing, "gone", "a-gone"),
            failed(CheckKind::HostPing, "scaled", "scaled"),
            failed(CheckKind::HostPing, "down", "down"),
            failed(CheckKind::PodPing, "down", "a-down"),
            failed(CheckKind::PodPing, "fine", "a-fine"),
            failed(CheckKind::HostPing, "fine", "fine"),
            failed(CheckKind::DnsService, "", "kubernetes.default.svc."),
        ];
        let before = checks.clone();
        apply(&mut checks, &snap, &fates, &ages, t0, &POLICY);
        use CheckKind::*;
        use Status::*;
        let s = |t: &str| t.to_string();
        assert_eq!(
            summary(&checks),
            [
                (HostPing, s("gone"), Skipped, Some(Reason::NodeDeleting)),
                (PodPing, s("a-gone"), Skipped, Some(Reason::NodeDeleting)),
                (HostPing, s("scaled"), Skipped, Some(Reason::ScaleDown)),
                (HostPing, s("down"), Failed, Some(Reason::NodeNotReady)),
                (PodPing, s("a-down"), Failed, Some(Reason::NodeNotReady)),
                (
                    PodPing,
                    s("a-fine"),
                    Skipped,
                    Some(Reason::AgentTerminating)
                ),
                (HostPing, s("fine"), Failed, Some(Reason::Timeout)),
                (
                    DnsService,
                    s("kubernetes.default.svc."),
                    Failed,
                    Some(Reason::Timeout)
                ),
            ]
        );
        assert_eq!(
            checks[2].outcome.message(),
            Some("node is being removed by the cluster autoscaler (no reply within 1s)")
        );
        assert_eq!(
            checks[3].outcome.message(),
            Some("node is NotReady: no reply within 1s")
        );
        // Turned off: only NotReady sharpens a failure; nothing is skipped.
        let mut off = before.clone();
        let policy = Policy {
            skip_going_away: false,
            ..POLICY
        };
        apply(&mut off, &snap, &fates, &ages, t0, &policy);
        assert!(off.iter().all(|c| c.is_failed()));
        assert_eq!(off[3].outcome.reason(), Some(Reason::NodeNotReady));
    }

    #[test]
    fn not_ready_agents_and_new_nodes_get_the_grace_period() {
        use CheckKind::*;
        use Status::*;
        let s = |t: &str| t.to_string();
        let nwa = |n: &str| {
            Check::failed(
                NodeWithoutAgent,
                n,
                n,
                "",
                Reason::NoAgent,
                "no agent pod on this node",
            )
        };
        let first = Snapshot {
            nodes: vec![node("n1", true), node("n2", true)],
            agents: vec![pod("a1", "n1", false, false)],
            ..Snapshot::default()
        };
        let t0 = Instant::now();
        let mut ages = Ages::default();
        ages.update(&first, t0);
        // a1 not Ready, just seen: its failed ping is skipped. n2 was there at start: old.
        let mut checks = vec![failed(PodPing, "n1", "a1"), nwa("n2")];
        apply(&mut checks, &first, &BTreeMap::new(), &ages, t0, &POLICY);
        assert_eq!(
            summary(&checks),
            [
                (PodPing, s("a1"), Skipped, Some(Reason::AgentStarting)),
                (NodeWithoutAgent, s("n2"), Failed, Some(Reason::NoAgent)),
            ]
        );
        // Still not Ready past the grace period: its node has no working agent, its IP is
        // still pinged (here it answers).
        let t1 = t0 + Duration::from_secs(121);
        ages.update(&first, t1);
        let mut checks = vec![failed(PodPing, "n1", "a1").passed(0.001)];
        apply(&mut checks, &first, &BTreeMap::new(), &ages, t1, &POLICY);
        assert_eq!(
            summary(&checks),
            [
                (PodPing, s("a1"), Passed, None),
                (
                    NodeWithoutAgent,
                    s("n1"),
                    Failed,
                    Some(Reason::AgentNotReady)
                ),
            ]
        );
        assert_eq!(
            checks[1].outcome.message(),
            Some("agent pod a1 is running but not Ready for 121s: nothing on this node reports")
        );
        // A node that joins later: its missing agent is skipped while the node is young.
        let later = Snapshot {
            nodes: vec![node("n1", true), node("n2", true), node("n3", true)],
            agents: vec![pod("a1", "n1", true, false)],
            ..Snapshot::default()
        };
        ages.update(&later, t1);
        let mut young = vec![nwa("n3"), nwa("n2")];
        let t2 = t1 + Duration::from_secs(60);
        apply(&mut young, &later, &BTreeMap::new(), &ages, t2, &POLICY);
        assert_eq!(
            summary(&young),
            [
                (
                    NodeWithoutAgent,
                    s("n3"),
                    Skipped,
                    Some(Reason::AgentStarting)
                ),
                (NodeWithoutAgent, s("n2"), Failed, Some(Reason::NoAgent)),
            ]
        );
        let mut old = vec![nwa("n3")];
        let t3 = t1 + Duration::from_secs(121);
        apply(&mut old, &later, &BTreeMap::new(), &ages, t3, &POLICY);
        assert_eq!(old[0].outcome.reason(), Some(Reason::NoAgent));
    }

    #[test]
    fn a_replaced_agent_pod_gets_the_grace_period() {
        let with = Snapshot {
            nodes: vec![node("n1", true), node("n2", true)],
            agents: vec![pod("a1", "n1", true, false), pod("a2", "n2", true, false)],
            ..Snapshot::default()
        };
        let without = Snapshot {
            agents: vec![pod("a1", "n1", true, false)],
            ..with.clone()
        };
        let nwa = || {
            vec![Check::failed(
                CheckKind::NodeWithoutAgent,
                "n2",
                "n2",
                "",
                Reason::NoAgent,
                "no agent pod on this node",
            )]
        };
        let t0 = Instant::now();
        let mut ages = Ages::default();
        ages.update(&with, t0);
        let t1 = t0 + Duration::from_secs(60);
        ages.update(&without, t1);
        let mut checks = nwa();
        apply(
            &mut checks,
            &without,
            &BTreeMap::new(),
            &ages,
            t1 + Duration::from_secs(30),
            &POLICY,
        );
        assert_eq!(checks[0].outcome.reason(), Some(Reason::AgentStarting));
        assert_eq!(
            checks[0].outcome.message(),
            Some("no agent pod on this node (its agent pod left 30s ago: a new one is starting)")
        );
        // No new pod within the grace period: missing.
        let t2 = t1 + Duration::from_secs(121);
        ages.update(&without, t2);
        let mut checks = nwa();
        apply(&mut checks, &without, &BTreeMap::new(), &ages, t2, &POLICY);
        assert_eq!(checks[0].outcome.reason(), Some(Reason::NoAgent));
        // Back, then gone again: the grace period starts anew.
        ages.update(&with, t2);
        ages.update(&without, t2 + Duration::from_secs(1));
        let mut checks = nwa();
        apply(
            &mut checks,
            &without,
            &BTreeMap::new(),
            &ages,
            t2 + Duration::from_secs(2),
            &POLICY,
        );
        assert_eq!(checks[0].status(), Status::Skipped);
    }

    #[test]
    fn a_rollout_is_no_missing_agent() {
        let snap = Snapshot {
            nodes: vec![node("n1", true)],
            agents: vec![pod("a1-old", "n1", true, true)],
            ..Snapshot::default()
        };
        let mut ages = Ages::default();
        let t0 = Instant::now();
        ages.update(&snap, t0);
        let mut checks = vec![Check::failed(
            CheckKind::NodeWithoutAgent,
            "n1",
            "n1",
            "",
            Reason::NoAgent,
            "agent pod a1-old is being deleted",
        )];
        apply(&mut checks, &snap, &BTreeMap::new(), &ages, t0, &POLICY);
        assert_eq!(checks[0].outcome.reason(), Some(Reason::AgentTerminating));
        assert_eq!(checks[0].status(), Status::Skipped);
    }
}
