//! The stand-in's storage: the objects it serves (the cluster description plus the
//! EndpointSlices its controller derives), a resourceVersion that every write advances, and
//! a bounded history of watch events, as kube-apiserver's watch cache keeps one.
//!
//! A change of the cluster description becomes events by diffing old and new objects:
//! ADDED, MODIFIED (the object differs other than in its resourceVersion) and DELETED, each
//! with its own resourceVersion, which is also written into the object. A watch can resume
//! from any resourceVersion at or after `floor`; older ones get 410 Expired.

use crate::api::Kind;
use crate::controller::{self, Placement};
use crate::objects::Cluster;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};

/// Events kept for watches that resume, unless changed with [`Store::set_history_limit`].
pub const DEFAULT_HISTORY: usize = 20_000;

/// ADDED, MODIFIED or DELETED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as the watch cache keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub rv: u64,
    pub kind: Kind,
    pub typ: EventType,
    /// The object after the change (for DELETED, its last state).
    pub object: Value,
    /// The object before a MODIFIED, for selector transitions (a watch whose selector
    /// stops matching sees DELETED, one that starts matching sees ADDED).
    pub previous: Option<Value>,
}

/// The served objects and their history.
#[derive(Debug, Clone)]
pub struct Store {
    /// What `set_cluster` was given (without derived slices).
    given: Cluster,
    /// What is served: `given` plus derived slices, resourceVersions written in.
    pub served: Cluster,
    placement: Placement,
    /// The current resourceVersion (of the last write).
    pub rv: u64,
    history: VecDeque<Event>,
    /// Every event with a resourceVersion above this is in `history`.
    pub floor: u64,
    limit: usize,
}

fn key(o: &Value) -> String {
    format!(
        "{}/{}",
        o["metadata"]["namespace"].as_str().unwrap_or(""),
        o["metadata"]["name"].as_str().unwrap_or("")
    )
}

/// The object without its resourceVersion, for comparing content.
fn content(o: &Value) -> Value {
    let mut o = o.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    o
}

fn set_rv(o: &mut Value, rv: u64) {
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

const KINDS: [Kind; 4] = [
    Kind::Nodes,
    Kind::Pods,
    Kind::Services,
    Kind::EndpointSlices,
];

impl Store {
    /// A store serving `cluster` at resourceVersion `rv`.
    pub fn new(cluster: Cluster, rv: u64) -> Store {
        let mut store = Store {
            given: cluster.clone(),
            served: cluster,
            placement: Placement::default(),
            rv,
            history: VecDeque::new(),
            floor: rv,
            limit: DEFAULT_HISTORY,
        };
        let derived = controller::derive(
            &store.given.services,
            &store.given.pods,
            &store.given.endpointslices,
            &mut store.placement,
        );
        store.served.endpointslices.extend(derived);
        store
    }

    /// Keeps at most `limit` events (older resourceVersions then get 410).
    pub fn set_history_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
        self.trim();
    }

    /// Forgets every event: a watch from any earlier resourceVersion gets 410.
    pub fn compact(&mut self) {
        self.history.clear();
        self.floor = self.rv;
    }

    fn trim(&mut self) {
        while self.history.len() > self.limit {
            if let Some(e) = self.history.pop_front() {
                self.floor = e.rv;
            }
        }
    }

    /// Replaces the description; returns how many events that made. The resourceVersion
    /// advances even when nothing changed, as writes elsewhere in a real cluster move it.
    pub fn replace(&mut self, cluster: Cluster) -> usize {
        self.given = cluster;
        let derived = controller::derive(
            &self.given.services,
            &self.given.pods,
            &self.given.endpointslices,
            &mut self.placement,
        );
        let mut next = self.given.clone();
        next.endpointslices.extend(derived);
        let mut made = 0;
        for kind in KINDS {
            made += self.diff(kind, kind.objects(&next).to_vec());
        }
        if made == 0 {
            self.rv += 1;
        }
        self.trim();
        made
    }

    /// Writes one object (create or update), as a client's PUT would; re-derives slices
    /// when a pod or service changed. Returns the events made. Touches only that object
    /// (a node heartbeat at 5,000 nodes costs one comparison, not a diff of all of them).
    pub fn put(&mut self, kind: Kind, object: Value) -> usize {
        let k = key(&object);
        let list = kind.objects_mut(&mut self.given);
        match list.iter_mut().find(|o| key(o) == k) {
            Some(o) => *o = object.clone(),
            None => list.push(object.clone()),
        }
        let mut made = self.put_served(kind, object);
        made += self.rederive(kind);
        if made == 0 {
            self.rv += 1;
        }
        self.trim();
        made
    }

    /// Deletes one object by namespace ("" for nodes) and name. Returns the events made.
    pub fn delete(&mut self, kind: Kind, namespace: &str, name: &str) -> usize {
        let k = format!("{namespace}/{name}");
        kind.objects_mut(&mut self.given).retain(|o| key(o) != k);
        let served = kind.objects_mut(&mut self.served);
        let mut made = 0;
        if let Some(i) = served.iter().position(|o| key(o) == k) {
            let mut o = served.remove(i);
            self.rv += 1;
            set_rv(&mut o, self.rv);
            self.history.push_back(Event {
                rv: self.rv,
                kind,
                typ: EventType::Deleted,
                object: o,
                previous: None,
            });
            made += 1;
        }
        made += self.rederive(kind);
        if made == 0 {
            self.rv += 1;
        }
        self.trim();
        made
    }

    /// One object into the served set, with its event when it changed.
    fn put_served(&mut self, kind: Kind, mut object: Value) -> usize {
        let k = key(&object);
        let served = kind.objects_mut(&mut self.served);
        let index = served.iter().position(|o| key(o) == k);
        if let Some(prev) = index.and_then(|i| served.get(i)) {
            set_rv(
                &mut object,
                prev["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0),
            );
            if *prev == object {
                return 0;
            }
        }
        self.rv += 1;
        set_rv(&mut object, self.rv);
        let served = kind.objects_mut(&mut self.served);
        let previous = match index.and_then(|i| served.get_mut(i)) {
            Some(slot) => Some(std::mem::replace(slot, object.clone())),
            None => {
                served.push(object.clone());
                None
            }
        };
        self.history.push_back(Event {
            rv: self.rv,
            kind,
            typ: if previous.is_some() {
                EventType::Modified
            } else {
                EventType::Added
            },
            object,
            previous,
        });
        1
    }

    /// Slices again after a pod, service or slice changed.
    fn rederive(&mut self, kind: Kind) -> usize {
        if !matches!(kind, Kind::Pods | Kind::Services | Kind::EndpointSlices) {
            return 0;
        }
        let mut slices = self.given.endpointslices.clone();
        slices.extend(controller::derive(
            &self.given.services,
            &self.given.pods,
            &self.given.endpointslices,
            &mut self.placement,
        ));
        self.diff(Kind::EndpointSlices, slices)
    }

    /// Makes `kind`'s served objects `next`, recording an event per change.
    fn diff(&mut self, kind: Kind, next: Vec<Value>) -> usize {
        let old: BTreeMap<String, Value> = kind
            .objects(&self.served)
            .iter()
            .map(|o| (key(o), o.clone()))
            .collect();
        let mut made = 0;
        let mut served = Vec::with_capacity(next.len());
        let mut seen = std::collections::BTreeSet::new();
        for mut o in next {
            let k = key(&o);
            seen.insert(k.clone());
            match old.get(&k) {
                Some(prev) if content(prev) == content(&o) => served.push(prev.clone()),
                prev => {
                    self.rv += 1;
                    set_rv(&mut o, self.rv);
                    self.history.push_back(Event {
                        rv: self.rv,
                        kind,
                        typ: if prev.is_some() {
                            EventType::Modified
                        } else {
                            EventType::Added
                        },
                        object: o.clone(),
                        previous: prev.cloned(),
                    });
                    made += 1;
                    served.push(o);
                }
            }
        }
        for (k, mut o) in old {
            if !seen.contains(&k) {
                self.rv += 1;
                set_rv(&mut o, self.rv);
                self.history.push_back(Event {
                    rv: self.rv,
                    kind,
                    typ: EventType::Deleted,
                    object: o,
                    previous: None,
                });
                made += 1;
            }
        }
        *kind.objects_mut(&mut self.served) = served;
        made
    }

    /// Events of `kind` after resourceVersion `after`, or `Err(floor)` when `after` is older
    /// than the history.
    pub fn since(&self, kind: Kind, after: u64) -> Result<Vec<&Event>, u64> {
        if after < self.floor {
            return Err(self.floor);
        }
        Ok(self
            .history
            .iter()
            .filter(|e| e.rv > after && e.kind == kind)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::{agent_pod, agent_service, node};

    fn ip(s: &str) -> std::net::IpAddr {
        s.parse().unwrap()
    }

    fn cluster(nodes: usize) -> Cluster {
        Cluster {
            nodes: (0..nodes)
                .map(|i| {
                    node(
                        &format!("n{i}"),
                        &[ip(&format!("198.18.0.{}", i + 1))],
                        false,
                        true,
                    )
                })
                .collect(),
            pods: (0..nodes)
                .map(|i| {
                    agent_pod(
                        &format!("a{i}"),
                        "kube-system",
                        &format!("n{i}"),
                        &[ip(&format!("198.18.1.{}", i + 1))],
                        &[],
                        "Running",
                        true,
                    )
                })
                .collect(),
            services: vec![agent_service("kube-system", "agents", false)],
            ..Cluster::default()
        }
    }

    #[test]
    fn diffs_become_events_with_their_own_resource_versions() {
        let mut s = Store::new(cluster(3), 1000);
        assert_eq!(s.served.endpointslices.len(), 1, "derived slice");
        let mut c = cluster(3);
        c.nodes.remove(0);
        c.nodes[0]["spec"]["unschedulable"] = true.into();
        c.pods.remove(0);
        let made = s.replace(c);
        // node n1 modified, node n0 deleted, pod a0 deleted, the slice modified.
        assert_eq!(made, 4);
        assert_eq!(s.rv, 1004);
        let nodes = s.since(Kind::Nodes, 1000).unwrap();
        let types: Vec<_> = nodes
            .iter()
            .map(|e| (e.typ, e.object["metadata"]["name"].as_str().unwrap()))
            .collect();
        assert_eq!(
            types,
            [(EventType::Modified, "n1"), (EventType::Deleted, "n0")]
        );
        assert_eq!(
            nodes[0].object["metadata"]["resourceVersion"],
            nodes[0].rv.to_string()
        );
        let slice = s.since(Kind::EndpointSlices, 1000).unwrap();
        assert_eq!(slice.len(), 1);
        assert_eq!(slice[0].object["endpoints"].as_array().unwrap().len(), 2);
        // Nothing changed: no event, the resourceVersion still moves.
        let same = s.served.clone();
        let _ = same;
        let mut again = cluster(3);
        again.nodes.remove(0);
        again.nodes[0]["spec"]["unschedulable"] = true.into();
        again.pods.remove(0);
        assert_eq!(s.replace(again), 0);
        assert_eq!(s.rv, 1005);
    }

    #[test]
    fn history_is_bounded_and_older_versions_expire() {
        let mut s = Store::new(cluster(1), 1000);
        s.set_history_limit(2);
        for i in 0..5 {
            let mut n = node("n0", &[ip("198.18.0.1")], false, true);
            n["metadata"]["labels"]["gen"] = i.to_string().into();
            s.put(Kind::Nodes, n);
        }
        assert_eq!(s.rv, 1005);
        assert_eq!(s.since(Kind::Nodes, 1002), Err(1003));
        assert_eq!(s.since(Kind::Nodes, 1003).unwrap().len(), 2);
        s.compact();
        assert!(s.since(Kind::Nodes, 1004).is_err());
        assert!(s.since(Kind::Nodes, 1005).unwrap().is_empty());
    }

    #[test]
    fn put_and_delete_rederive_slices() {
        let mut s = Store::new(cluster(2), 1000);
        s.delete(Kind::Pods, "kube-system", "a1");
        let slices = s.since(Kind::EndpointSlices, 1000).unwrap();
        assert_eq!(slices.len(), 1);
        assert_eq!(slices[0].typ, EventType::Modified);
        s.delete(Kind::Pods, "kube-system", "a0");
        let last = s.since(Kind::EndpointSlices, 1002).unwrap();
        assert_eq!(
            last[0].typ,
            EventType::Deleted,
            "no endpoints left, no slice"
        );
    }
}
