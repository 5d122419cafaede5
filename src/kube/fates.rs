//! Whether nodes are going away: being deleted (`metadata.deletionTimestamp`) or tainted for
//! removal by the cluster autoscaler (`ToBeDeletedByClusterAutoscaler`). The node Table rows
//! the watch reads (`includeObject=None`) carry neither, so a round asks only about the nodes
//! whose checks failed: one full Node GET each, at most [`MAX_GETS`] a round, each answer
//! kept for [`KEEP`].
//!
//! Why not a second watch of full Node objects: at 5,000 nodes every agent would hold and
//! stream every node's status (images lists included, kilobytes each), for an answer needed
//! only about the few nodes that fail. A healthy cluster costs nothing here; a failing node
//! costs each agent that sees it fail one GET a minute.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::client::{segment, Client};
use super::objects::Node;

/// At most this many Node GETs in one round (the rest wait for the next rounds).
pub const MAX_GETS: usize = 10;
/// How long an answer is used before the node is read again.
pub const KEEP: Duration = Duration::from_secs(60);
/// The taint the cluster autoscaler puts on a node it is about to delete.
pub const SCALE_DOWN_TAINT: &str = "ToBeDeletedByClusterAutoscaler";

/// Why a node is going away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// `metadata.deletionTimestamp` is set.
    Deleting,
    /// Tainted `ToBeDeletedByClusterAutoscaler`.
    ScaleDown,
}

/// A node's fate from its full object; `None` when it is staying.
pub fn fate_of(node: &Node) -> Option<Fate> {
    if node.metadata.deletion_timestamp.is_some() {
        return Some(Fate::Deleting);
    }
    node.spec
        .taints
        .iter()
        .any(|t| t.key == SCALE_DOWN_TAINT)
        .then_some(Fate::ScaleDown)
}

/// The answers of earlier rounds.
#[derive(Debug, Default)]
pub struct Fates {
    known: Mutex<HashMap<String, (Instant, Option<Fate>)>>,
}

impl Fates {
    /// The fates of `nodes` (the going-away ones only): known answers younger than [`KEEP`],
    /// else one GET each for up to [`MAX_GETS`] of them, all within `until`. A node the API
    /// no longer has is deleted: going away. A failed GET leaves the node unknown (staying).
    pub fn of(&self, client: &Client, nodes: &[&str], until: Instant) -> BTreeMap<String, Fate> {
        let now = Instant::now();
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.retain(|_, (at, _)| now.saturating_duration_since(*at) < KEEP);
        let mut asked = 0;
        let mut out = BTreeMap::new();
        for &name in nodes {
            let fate = match known.get(name) {
                Some((_, fate)) => *fate,
                None if asked < MAX_GETS && Instant::now() < until => {
                    asked += 1;
                    let path = format!("/api/v1/nodes/{}", segment(name));
                    match client.get_named::<Node>(&path, until) {
                        Ok(node) => {
                            let fate = node.as_ref().map_or(Some(Fate::Deleting), fate_of);
                            known.insert(name.to_string(), (now, fate));
                            fate
                        }
                        Err(e) => {
                            log::debug!("kubernetes api: node {name}: {e}");
                            None
                        }
                    }
                }
                None => None,
            };
            if let Some(f) = fate {
                out.insert(name.to_string(), f);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_and_the_autoscaler_taint_mean_going_away() {
        let node = |v: serde_json::Value| -> Node { serde_json::from_value(v).unwrap() };
        assert_eq!(
            fate_of(&node(serde_json::json!({"metadata": {"name": "n"}}))),
            None
        );
        assert_eq!(
            fate_of(&node(serde_json::json!({
                "metadata": {"name": "n", "deletionTimestamp": "2026-11-30T10:00:00Z"}
            }))),
            Some(Fate::Deleting)
        );
        assert_eq!(
            fate_of(&node(serde_json::json!({
                "metadata": {"name": "n"},
                "spec": {"taints": [
                    {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
                    {"key": "ToBeDeletedByClusterAutoscaler", "value": "1764496800", "effect": "NoSchedule"}
                ]}
            }))),
            Some(Fate::ScaleDown)
        );
        // Cordoned alone (a drain, an upgrade) is no removal.
        assert_eq!(
            fate_of(&node(serde_json::json!({
                "metadata": {"name": "n"},
                "spec": {"unschedulable": true, "taints": null}
            }))),
            None
        );
    }
}
