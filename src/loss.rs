//! The loss window: every echo path's echoes sent and lost over the last [`WINDOW_ROUNDS`]
//! rounds (pure). One round's single echo per target cannot show a 1-2% loss; the window's
//! sums can, and the rules count per node how many agents see loss towards it.
//!
//! Memory: one entry per path (a host or pod ping target) with a ring of [`WINDOW_ROUNDS`]
//! counts; a path not probed for a whole window is forgotten.

use std::collections::{BTreeMap, HashMap};

use crate::report::{CheckKey, CheckKind, RoundReport};

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
    /// (sent, lost) of round `r` at `r % WINDOW_ROUNDS`, for rounds up to `last`.
    slots: [(u32, u32); WINDOW_ROUNDS],
    /// The last round that probed this path.
    last: u64,
}

/// Echoes sent and lost over the window, of one path or one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub sent: u64,
    pub lost: u64,
}

/// The window of every path; [`LossWindow::record`] adds a round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LossWindow {
    paths: HashMap<CheckKey, Ring>,
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
            let key = CheckKey::new(c.kind, &c.target_node, &c.target, &c.address);
            let ring = self.paths.entry(key).or_insert(Ring {
                slots: [(0, 0); WINDOW_ROUNDS],
                last: now,
            });
            // Rounds since its last one that did not probe it count nothing.
            let gap = now.saturating_sub(ring.last).min(WINDOW_ROUNDS as u64);
            for r in (now - gap + 1)..now {
                if let Some(s) = ring.slots.get_mut(slot(r)) {
                    *s = (0, 0);
                }
            }
            if let Some(s) = ring.slots.get_mut(slot(now)) {
                *s = (c.sent, c.sent.saturating_sub(c.received));
            }
            ring.last = now;
        }
        self.paths
            .retain(|_, ring| now.saturating_sub(ring.last) < WINDOW_ROUNDS as u64);
    }

    /// Rounds in the window so far (fewer than [`WINDOW_ROUNDS`] just after the start).
    pub fn rounds(&self) -> usize {
        usize::try_from(self.rounds)
            .unwrap_or(usize::MAX)
            .min(WINDOW_ROUNDS)
    }

    /// A path's sums over the window.
    fn counts(&self, ring: &Ring) -> Counts {
        let first = self.rounds.saturating_sub(WINDOW_ROUNDS as u64 - 1).max(1);
        (first..=ring.last.min(self.rounds))
            .filter_map(|r| ring.slots.get(slot(r)))
            .fold(Counts::default(), |acc, (s, l)| Counts {
                sent: acc.sent + u64::from(*s),
                lost: acc.lost + u64::from(*l),
            })
    }

    /// Every kind of [`KINDS`] with its sums over all paths.
    pub fn by_kind(&self) -> BTreeMap<CheckKind, Counts> {
        let mut out: BTreeMap<CheckKind, Counts> =
            KINDS.iter().map(|k| (*k, Counts::default())).collect();
        for (key, ring) in &self.paths {
            let c = self.counts(ring);
            let e = out.entry(key.kind).or_default();
            e.sent += c.sent;
            e.lost += c.lost;
        }
        out
    }

    /// The paths that lost echoes in the window, the most lost first (then by key), at most
    /// `cap`; and how many more there are.
    pub fn lossy(&self, cap: usize) -> (Vec<(&CheckKey, Counts)>, usize) {
        let mut all: Vec<(&CheckKey, Counts)> = self
            .paths
            .iter()
            .map(|(k, ring)| (k, self.counts(ring)))
            .filter(|(_, c)| c.lost > 0)
            .collect();
        all.sort_by(|a, b| b.1.lost.cmp(&a.1.lost).then_with(|| a.0.cmp(b.0)));
        let omitted = all.len().saturating_sub(cap);
        all.truncate(cap);
        (all, omitted)
    }
}

fn slot(round: u64) -> usize {
    usize::try_from(round % WINDOW_ROUNDS as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Check, Reason};

    fn round(checks: Vec<Check>) -> RoundReport {
        RoundReport {
            node: "n0".into(),
            pod: "a0".into(),
            started_at: String::new(),
            duration_seconds: 0.0,
            errors: 0,
            checks,
            changes: vec![],
            first_round: false,
            api_error: None,
            snapshot_age_seconds: 0.0,
            resolver: None,
        }
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
        // A path not probed for a window is forgotten; one probed again starts afresh.
        for _ in 0..WINDOW_ROUNDS {
            w.record(&round(vec![ping(CheckKind::PodPing, "n2", 1, 0)]));
        }
        assert_eq!(
            w.by_kind()[&CheckKind::HostPing],
            Counts { sent: 0, lost: 0 }
        );
        assert_eq!(w.paths.len(), 1);
        let (lossy, _) = w.lossy(10);
        assert_eq!(lossy[0].1, Counts { sent: 15, lost: 15 });
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
