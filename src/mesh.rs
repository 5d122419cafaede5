//! The reduced mesh (pure): which targets this agent probes when each target is to be probed
//! by only `k` agents (`--peers`, `--dns-instance-peers`,
//! `--pod-path-peers`), by rendezvous hashing.
//!
//! For every target, each candidate source gets a score, a fixed hash of (source, target);
//! the `k` candidates with the highest scores probe it. Every agent ranks the same way from
//! the same member list, so without talking to each other they cover every target exactly
//! `k` times (all candidates when there are fewer). A source that joins or leaves moves only
//! the targets it ranks among the top `k` for; a target that joins or leaves moves nothing
//! else. Deciding costs a hash per (source, target) pair, O(N^2) for N nodes, so [`Mesh`]
//! keeps its last answer and recomputes only when the members change.

use std::collections::HashSet;

use crate::hash::{fnv1a, mix};

/// What is being shared out: node targets and DNS instances are ranked independently (a
/// source that ranks high for a node does not also rank high for a DNS instance of the same
/// name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    Node,
    DnsInstance,
    /// The agent pods' `pod-tcp` and `pod-mtu` checks (`--pod-path-peers`).
    PodPath,
}

impl Domain {
    fn salt(self) -> u64 {
        match self {
            Domain::Node => 0x6e6f_6465,
            Domain::DnsInstance => 0x646e_7369,
            Domain::PodPath => 0x7061_7468,
        }
    }
}

/// A source's rank for a target: higher probes first; ties (one in 2^64) go by name.
fn rank(source: (u64, &str), target: u64) -> (u64, &str) {
    (mix(source.0 ^ target), source.1)
}

fn target_hash(domain: Domain, target: &str) -> u64 {
    mix(fnv1a(target.as_bytes()) ^ domain.salt())
}

/// The sources that probe `target`: the `k` highest-ranked of `sources` other than the
/// target itself, best first.
pub fn probers<'a>(domain: Domain, target: &str, sources: &[&'a str], k: usize) -> Vec<&'a str> {
    let t = target_hash(domain, target);
    let mut ranked: Vec<(u64, &str)> = sources
        .iter()
        .filter(|s| **s != target)
        .map(|s| rank((fnv1a(s.as_bytes()), s), t))
        .collect();
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    ranked.dedup();
    ranked.into_iter().take(k).map(|(_, s)| s).collect()
}

/// The targets `me` probes: those for which `me` is among the `k` highest-ranked of
/// `sources` (`me` counts as a source even when the list lacks it; a target never ranks
/// itself). With `k` at least the number of sources, every target.
pub fn chosen(
    domain: Domain,
    me: &str,
    sources: &[&str],
    targets: &[&str],
    k: usize,
) -> HashSet<String> {
    let mut hashed: Vec<(u64, &str)> = sources
        .iter()
        .filter(|s| **s != me)
        .map(|s| (fnv1a(s.as_bytes()), *s))
        .collect();
    hashed.sort_unstable_by(|a, b| a.1.cmp(b.1));
    hashed.dedup();
    let mine = (fnv1a(me.as_bytes()), me);
    targets
        .iter()
        .filter(|t| {
            if **t == me {
                return false;
            }
            let th = target_hash(domain, t);
            let my_rank = rank(mine, th);
            // Count the candidates that outrank `me`, and stop at `k`: most targets are
            // decided after a few candidates (about k * (1 + ln(N / k)) on average).
            let mut above = 0usize;
            for s in &hashed {
                if s.1 != **t && rank(*s, th) > my_rank {
                    above += 1;
                    if above >= k {
                        return false;
                    }
                }
            }
            true
        })
        .map(|t| t.to_string())
        .collect()
}

/// [`chosen`] with its last answer kept: recomputed only when `me`, the sources or the
/// targets change (compared as sorted lists, linear in the members).
#[derive(Debug)]
pub struct Mesh {
    domain: Domain,
    k: usize,
    last: Option<Cached>,
    computations: u64,
}

#[derive(Debug)]
struct Cached {
    me: String,
    sources: Vec<String>,
    targets: Vec<String>,
    chosen: HashSet<String>,
}

impl Mesh {
    /// Each target probed by `k` sources.
    pub fn new(domain: Domain, k: usize) -> Mesh {
        Mesh {
            domain,
            k,
            last: None,
            computations: 0,
        }
    }

    /// Whether every target is probed by every source: `k` at least the number of sources
    /// other than the target (then no hashing is needed).
    pub fn is_full(&self, sources: usize) -> bool {
        self.k >= sources
    }

    /// The targets `me` probes (see [`chosen`]).
    pub fn chosen(&mut self, me: &str, sources: &[&str], targets: &[&str]) -> &HashSet<String> {
        let mut sources: Vec<&str> = sources.to_vec();
        sources.sort_unstable();
        sources.dedup();
        let mut targets: Vec<&str> = targets.to_vec();
        targets.sort_unstable();
        targets.dedup();
        let same = self.last.as_ref().is_some_and(|c| {
            c.me == me
                && c.sources
                    .iter()
                    .map(String::as_str)
                    .eq(sources.iter().copied())
                && c.targets
                    .iter()
                    .map(String::as_str)
                    .eq(targets.iter().copied())
        });
        if !same {
            self.last = None;
        }
        let (domain, k) = (self.domain, self.k);
        let computations = &mut self.computations;
        let cached = self.last.get_or_insert_with(|| {
            *computations += 1;
            let chosen = chosen(domain, me, &sources, &targets, k);
            log::debug!(
                "mesh: {} of {} targets probed from here ({} sources, {k} each)",
                chosen.len(),
                targets.len(),
                sources.len(),
            );
            Cached {
                me: me.to_string(),
                sources: sources.iter().map(|s| s.to_string()).collect(),
                targets: targets.iter().map(|s| s.to_string()).collect(),
                chosen,
            }
        });
        &cached.chosen
    }

    /// How many times the choice was computed (not taken from the cache).
    pub fn computations(&self) -> u64 {
        self.computations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn names(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}-{i:04}")).collect()
    }

    fn refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    /// How many sources probe each target when every source decides on its own.
    fn coverage(
        domain: Domain,
        sources: &[&str],
        targets: &[&str],
        k: usize,
    ) -> BTreeMap<String, usize> {
        let mut by_target: BTreeMap<String, usize> =
            targets.iter().map(|t| (t.to_string(), 0)).collect();
        for me in sources {
            for t in chosen(domain, me, sources, targets, k) {
                *by_target.entry(t).or_default() += 1;
            }
        }
        by_target
    }

    #[test]
    fn every_target_is_probed_by_exactly_k_others() {
        // 300 nodes, 280 with an agent (the rest are targets only: nodes without an agent).
        let nodes = names("node", 300);
        let targets = refs(&nodes);
        let sources = &targets[..280];
        for k in [1, 3, 10] {
            let per_source: Vec<usize> = sources
                .iter()
                .map(|me| chosen(Domain::Node, me, sources, &targets, k).len())
                .collect();
            for (t, n) in coverage(Domain::Node, sources, &targets, k) {
                assert_eq!(n, k, "k={k}: {t} probed by {n}");
            }
            // And each source probes about k targets (300 * k / 280 on average).
            let total: usize = per_source.iter().sum();
            assert_eq!(total, 300 * k);
            let most = per_source.iter().max().copied().unwrap_or(0);
            assert!(most <= 4 * k + 6, "k={k}: a source probes {most}");
        }
        // The deciding agree with the ranking itself.
        for t in &targets[..20] {
            for me in probers(Domain::Node, t, sources, 3) {
                assert!(chosen(Domain::Node, me, sources, &targets, 3).contains(*t));
            }
        }
    }

    #[test]
    fn fewer_sources_than_k_means_every_other_source() {
        let nodes = names("node", 5);
        let all = refs(&nodes);
        for (t, n) in coverage(Domain::Node, &all, &all, 10) {
            assert_eq!(n, 4, "{t}: every other agent");
        }
        for me in &all {
            let mine = chosen(Domain::Node, me, &all, &all, 4);
            assert_eq!(mine.len(), 4, "k = N - 1 is the full mesh: {me}");
            assert!(!mine.contains(*me), "its own node is not shared out");
        }
        assert!(Mesh::new(Domain::Node, 5).is_full(5));
        assert!(!Mesh::new(Domain::Node, 4).is_full(5));
    }

    #[test]
    fn the_choice_is_stable_and_cached_while_members_are() {
        let nodes = names("node", 200);
        let all = refs(&nodes);
        let mut mesh = Mesh::new(Domain::Node, 5);
        let first = mesh.chosen("node-0007", &all, &all).clone();
        assert_eq!(mesh.computations(), 1);
        // Same members in another order: the same answer, not recomputed.
        let mut shuffled = all.clone();
        shuffled.reverse();
        assert_eq!(mesh.chosen("node-0007", &shuffled, &shuffled), &first);
        assert_eq!(mesh.computations(), 1, "recomputed for unchanged members");
        // A fresh computation agrees (nothing depends on the process).
        assert_eq!(chosen(Domain::Node, "node-0007", &all, &all, 5), first);
        // A changed member list is recomputed.
        let fewer = &all[1..];
        let _ = mesh.chosen("node-0007", fewer, fewer);
        assert_eq!(mesh.computations(), 2);
    }

    #[test]
    fn small_churn_moves_few_assignments() {
        let nodes = names("node", 400);
        let all = refs(&nodes);
        let k = 5;
        let pairs = |sources: &[&str], targets: &[&str]| -> HashSet<(String, String)> {
            sources
                .iter()
                .flat_map(|me| {
                    chosen(Domain::Node, me, sources, targets, k)
                        .into_iter()
                        .map(move |t| (me.to_string(), t))
                })
                .collect()
        };
        let before = pairs(&all, &all);
        // One node leaves (as source and target): the pairs it was in go, and each target it
        // probed gets one replacement prober; nothing else moves.
        let gone = "node-0123";
        let rest: Vec<&str> = all.iter().copied().filter(|n| *n != gone).collect();
        let after = pairs(&rest, &rest);
        let involving = before
            .iter()
            .filter(|(s, t)| s == gone || t == gone)
            .count();
        let probed_by_gone = before.iter().filter(|(s, _)| s == gone).count();
        let removed = before.difference(&after).count();
        let added = after.difference(&before).count();
        assert_eq!(removed, involving, "only the pairs with the departed node");
        assert_eq!(
            added, probed_by_gone,
            "one replacement per target it probed"
        );
        assert!(added <= 4 * k, "{added}");
        // A node without an agent joins (a target only): nobody else's targets move.
        let mut more = nodes.clone();
        more.push("node-new".into());
        let targets = refs(&more);
        let with_new = pairs(&all, &targets);
        let new_pairs: Vec<_> = with_new.difference(&before).collect();
        assert_eq!(new_pairs.len(), k, "{new_pairs:?}");
        assert!(new_pairs.iter().all(|(_, t)| t == "node-new"));
        assert!(before.is_subset(&with_new));
    }

    #[test]
    fn k_at_least_the_sources_is_the_full_mesh() {
        let nodes = names("node", 30);
        let all = refs(&nodes);
        for k in [29, 30, 1000] {
            for me in &all {
                assert_eq!(chosen(Domain::Node, me, &all, &all, k).len(), 29);
            }
        }
    }

    #[test]
    fn a_source_missing_from_the_list_still_takes_its_share() {
        // This agent's own pod is not (yet) in the member list: it ranks itself anyway, so
        // its share is covered (some targets then get k + 1 probers, none fewer than k).
        let nodes = names("node", 100);
        let all = refs(&nodes);
        let others = &all[1..];
        let mine = chosen(Domain::Node, all[0], others, &all, 3);
        assert_eq!(mine, chosen(Domain::Node, all[0], &all, &all, 3));
    }

    #[test]
    fn domains_rank_independently() {
        let nodes = names("node", 100);
        let all = refs(&nodes);
        let node_share = chosen(Domain::Node, "node-0001", &all, &all, 10);
        let dns_share = chosen(Domain::DnsInstance, "node-0001", &all, &all, 10);
        assert_ne!(node_share, dns_share);
    }
}
