//! The loss window: every echo path's echoes sent and lost over the last [`WINDOW_ROUNDS`]
//! rounds (pure). One round's single echo per target cannot show a 1-2% loss; the window's
//! sums can, and the rules count per node how many agents see loss towards it.
//!
//! Memory: one entry per path (a host or pod ping target), keyed by a 64-bit hash of its key,
//! with a ring of [`WINDOW_ROUNDS`] one-byte counts: 48 bytes a path in the table, for the
//! 10,000 paths of 5,000 nodes. Only paths that lost an echo within the window keep their
//! key's strings, for their series. A path not probed for a whole window is forgotten. Two
//! paths whose keys hash alike (about 1 in 10^11 for 10,000 paths) would share counts; the
//! hasher is seeded per agent.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use crate::report::{Check, CheckKey, CheckKind, RoundReport};

/// Rounds in the window: 15 minutes at the default one-minute interval.
pub const WINDOW_ROUNDS: usize = 15;
/// Paths with loss that get series of their own, the most lost first; the others are
/// counted in `networktest_window_lossy_paths_omitted`.
pub const MAX_LOSSY_PATHS: usize = 50;
/// The kinds whose echoes count: the small echoes. `pod-mtu` is left out: its failures are
/// its own check's news (an MTU black hole is 100% loss of large packets only).
pub const KINDS: [CheckKind; 2] = [CheckKind::HostPing, CheckKind::PodPing];

/// One path's counts of the last rounds, by round number modulo the window.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ring {
    /// (sent, lost) of round `r` at `r % WINDOW_ROUNDS`, for rounds up to `last` (`--count`
    /// is at most 100, so a byte holds them).
    slots: [(u8, u8); WINDOW_ROUNDS],
    /// The last round that probed this path.
    last: u64,
    kind: CheckKind,
}

/// Echoes sent and lost over the window, of one path or one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub sent: u64,
    pub lost: u64,
}

/// The window of every path; [`LossWindow::record`] adds a round.
#[derive(Debug, Clone, Default)]
pub struct LossWindow {
    /// Every path's ring, by the hash of its key.
    paths: HashMap<u64, Ring>,
    /// The keys of the paths that lost an echo within the window.
    lossy_keys: HashMap<u64, CheckKey>,
    hasher: RandomState,
    /// Rounds recorded so far.
    rounds: u64,
}

impl LossWindow {
    /// Adds a round's echo checks (the ones that sent something; skipped ones send nothing).
    pub fn record(&mut self, report: &RoundReport) {
        self.rounds += 1;
        let now = self.rounds;
        for c in &report.checks {
            if !KINDS.contains(&c.kind) || c.sent == 0 {
                continue;
            }
            let hash = self.hash(c);
            let ring = self.paths.entry(hash).or_insert(Ring {
                slots: [(0, 0); WINDOW_ROUNDS],
                last: now,
                kind: c.kind,
            });
            // Rounds since its last one that did not probe it count nothing.
            let gap = now.saturating_sub(ring.last).min(WINDOW_ROUNDS as u64);
            for r in (now - gap + 1)..now {
                if let Some(s) = ring.slots.get_mut(slot(r)) {
                    *s = (0, 0);
                }
            }
            let lost = c.sent.saturating_sub(c.received);
            if let Some(s) = ring.slots.get_mut(slot(now)) {
                *s = (small(c.sent), small(lost));
            }
            ring.last = now;
            if lost > 0 && !self.lossy_keys.contains_key(&hash) {
                let key = CheckKey::new(c.kind, &c.target_node, &c.target, &c.address);
                self.lossy_keys.insert(hash, key);
            }
        }
        self.paths
            .retain(|_, ring| now.saturating_sub(ring.last) < WINDOW_ROUNDS as u64);
        let (paths, first) = (&self.paths, self.first_round());
        self.lossy_keys.retain(|hash, _| {
            paths
                .get(hash)
                .is_some_and(|ring| counts(ring, first).lost > 0)
        });
    }

    fn hash(&self, c: &Check) -> u64 {
        let key = (c.kind, &c.target_node, &c.target, &c.address);
        self.hasher.hash_one(key)
    }

    /// Rounds in the window so far (fewer than [`WINDOW_ROUNDS`] just after the start).
    pub fn rounds(&self) -> usize {
        usize::try_from(self.rounds)
            .unwrap_or(usize::MAX)
            .min(WINDOW_ROUNDS)
    }

    /// The oldest round in the window.
    fn first_round(&self) -> u64 {
        self.rounds.saturating_sub(WINDOW_ROUNDS as u64 - 1).max(1)
    }

    /// Every kind of [`KINDS`] with its sums over all paths.
    pub fn by_kind(&self) -> BTreeMap<CheckKind, Counts> {
        let mut out: BTreeMap<CheckKind, Counts> =
            KINDS.iter().map(|k| (*k, Counts::default())).collect();
        let first = self.first_round();
        for ring in self.paths.values() {
            let c = counts(ring, first);
            let e = out.entry(ring.kind).or_default();
            e.sent += c.sent;
            e.lost += c.lost;
        }
        out
    }

    /// The paths that lost echoes in the window, the most lost first (then by key), at most
    /// `cap`; and how many more there are.
    pub fn lossy(&self, cap: usize) -> (Vec<(&CheckKey, Counts)>, usize) {
        let first = self.first_round();
        let mut all: Vec<(&CheckKey, Counts)> = self
            .lossy_keys
            .iter()
            .filter_map(|(hash, key)| Some((key, counts(self.paths.get(hash)?, first))))
            .filter(|(_, c)| c.lost > 0)
            .collect();
        all.sort_by(|a, b| b.1.lost.cmp(&a.1.lost).then_with(|| a.0.cmp(b.0)));
        let omitted = all.len().saturating_sub(cap);
        all.truncate(cap);
        (all, omitted)
    }
}

/// A path's sums over the window that begins at round `first`.
fn counts(ring: &Ring, first: u64) -> Counts {
    (first..=ring.last)
        .filter_map(|r| ring.slots.get(slot(r)))
        .fold(Counts::default(), |acc, (s, l)| Counts {
            sent: acc.sent + u64::from(*s),
            lost: acc.lost + u64::from(*l),
        })
}

/// A count as stored in a ring slot.
fn small(n: u32) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

fn slot(round: u64) -> usize {
    usize::try_from(round % WINDOW_ROUNDS as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Check, Reason};

    fn round(checks: Vec<Check>) -> RoundReport {
        RoundReport::new("n0", "a0", checks)
    }

    fn ping(kind: CheckKind, node: &str, sent: u32, received: u32) -> Check {
        let c = Check::failed(kind, node, node, "198.18.0.1", Reason::Timeout, "lost");
        let c = if received > 0 { c.passed(0.001) } else { c };
        Check {
            sent,
            received,
            ..c
        }
    }

    #[test]
    fn loss_shows_for_a_window_of_rounds_then_slides_out() {
        let mut w = LossWindow::default();
        w.record(&round(vec![
            ping(CheckKind::HostPing, "n1", 5, 4),
            ping(CheckKind::PodPing, "n2", 5, 5),
            // Not echoes that count: a large echo, a check that sent nothing.
            ping(CheckKind::PodMtu, "n1", 1, 0),
            ping(CheckKind::HostPing, "n3", 0, 0),
        ]));
        let (lossy, omitted) = w.lossy(10);
        assert_eq!(omitted, 0);
        assert_eq!(lossy.len(), 1);
        assert_eq!(lossy[0].0.target_node, "n1");
        assert_eq!(lossy[0].1, Counts { sent: 5, lost: 1 });
        for _ in 1..WINDOW_ROUNDS {
            w.record(&round(vec![
                ping(CheckKind::HostPing, "n1", 5, 5),
                ping(CheckKind::PodPing, "n2", 5, 5),
            ]));
        }
        assert_eq!(w.rounds(), WINDOW_ROUNDS);
        let (lossy, _) = w.lossy(10);
        assert_eq!(lossy[0].1, Counts { sent: 75, lost: 1 });
        assert_eq!(
            w.by_kind()[&CheckKind::HostPing],
            Counts { sent: 75, lost: 1 }
        );
        assert_eq!(
            w.by_kind()[&CheckKind::PodPing],
            Counts { sent: 75, lost: 0 }
        );
        // One more round: the lossy one slid out.
        w.record(&round(vec![ping(CheckKind::HostPing, "n1", 5, 5)]));
        assert!(w.lossy(10).0.is_empty());
        // Its key's strings went with it: only lossy paths keep them.
        assert!(w.lossy_keys.is_empty());
        // A path not probed for a window is forgotten; one probed again starts afresh.
        for _ in 0..WINDOW_ROUNDS {
            w.record(&round(vec![ping(CheckKind::PodPing, "n2", 1, 0)]));
        }
        assert_eq!(
            w.by_kind()[&CheckKind::HostPing],
            Counts { sent: 0, lost: 0 }
        );
        assert_eq!(w.paths.len(), 1);
        assert_eq!(w.lossy_keys.len(), 1);
        let (lossy, _) = w.lossy(10);
        assert_eq!(lossy[0].1, Counts { sent: 15, lost: 15 });
    }

    #[test]
    fn a_path_costs_48_bytes_in_the_table() {
        // The README's figure (about 0.8 MB for 10,000 paths, with the table's spare room).
        assert_eq!(std::mem::size_of::<(u64, Ring)>(), 48);
    }

    #[test]
    fn counts_beyond_a_byte_saturate() {
        let mut w = LossWindow::default();
        w.record(&round(vec![ping(CheckKind::HostPing, "n1", 300, 0)]));
        assert_eq!(
            w.lossy(10).0[0].1,
            Counts {
                sent: 255,
                lost: 255
            }
        );
    }

    #[test]
    fn rounds_that_skip_a_path_count_nothing_for_it() {
        let mut w = LossWindow::default();
        w.record(&round(vec![ping(CheckKind::PodPing, "n1", 1, 0)]));
        for _ in 0..3 {
            w.record(&round(vec![]));
        }
        w.record(&round(vec![ping(CheckKind::PodPing, "n1", 1, 1)]));
        assert_eq!(w.lossy(10).0[0].1, Counts { sent: 2, lost: 1 });
    }

    #[test]
    fn the_most_lost_come_first_within_the_cap() {
        let mut w = LossWindow::default();
        let checks = (0..5)
            .map(|i| ping(CheckKind::PodPing, &format!("n{i}"), 10, 10 - i))
            .collect();
        w.record(&round(checks));
        let (lossy, omitted) = w.lossy(2);
        let nodes: Vec<&str> = lossy.iter().map(|(k, _)| k.target_node.as_str()).collect();
        assert_eq!((nodes, omitted), (vec!["n4", "n3"], 2));
    }
}
