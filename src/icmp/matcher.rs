//! Matching received ICMP messages to the echo requests of one round. Pure logic: the prober
//! feeds it what it sent and what it received (with kernel timestamps); this decides what
//! counts. The rule that matters most: a dead target is never reported alive, so anything not
//! provably an answer to a request of this round (wrong identifier, unknown or stale sequence,
//! wrong source, a second copy, an answer after the timeout) is ignored.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use super::packet::{Family, Message};
use super::PingResult;

/// What became of one received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A reply that counts for `target` with this round-trip time.
    Counted { target: usize, rtt: Duration },
    /// An ICMP error for one of our requests to `target`.
    Failed { target: usize },
    /// Identifier is not ours (another process, or another socket).
    WrongId,
    /// Sequence not outstanding in this round, or payload cookie mismatch: a late reply from an
    /// earlier round or someone else's packet.
    Unknown,
    /// Reply came from an address other than the one we pinged.
    WrongSource,
    /// Second answer to a request already answered (or failed).
    Duplicate,
    /// Answer arrived after the timeout of its request: counted as lost.
    TooLate,
    /// Not a reply or an error about an echo (e.g. our own request seen on a raw socket).
    Ignored,
}

#[derive(Debug)]
struct Slot {
    target: usize,
    seq32: u32,
    sent_at: Duration,
    done: bool,
}

#[derive(Debug, Clone)]
struct TargetState {
    addr: IpAddr,
    sent: u32,
    received: u32,
    rtts: Vec<Duration>,
    error: Option<String>,
}

/// The book-keeping of one round: which requests are outstanding and what each target got.
#[derive(Debug)]
pub struct Round {
    targets: Vec<TargetState>,
    pending: HashMap<(Family, u16), Slot>,
    outstanding: usize,
    nonce: u32,
    timeout: Duration,
}

impl Round {
    /// A round over `targets` (duplicates allowed; each index is its own target). `nonce` is
    /// the prober's payload nonce; `timeout` is how long each request may wait for its answer.
    pub fn new(targets: &[IpAddr], nonce: u32, timeout: Duration) -> Round {
        Round {
            targets: targets
                .iter()
                .map(|&addr| TargetState {
                    addr,
                    sent: 0,
                    received: 0,
                    rtts: Vec::new(),
                    error: None,
                })
                .collect(),
            pending: HashMap::new(),
            outstanding: 0,
            nonce,
            timeout,
        }
    }

    /// Records a request sent to `target` at `sent_at` (CLOCK_REALTIME since the epoch).
    /// Call it just before the send so that a fast reply always finds its slot.
    pub fn sent(&mut self, target: usize, family: Family, seq: u16, seq32: u32, sent_at: Duration) {
        let Some(t) = self.targets.get_mut(target) else {
            return;
        };
        t.sent += 1;
        let slot = Slot {
            target,
            seq32,
            sent_at,
            done: false,
        };
        if let Some(old) = self.pending.insert((family, seq), slot) {
            if !old.done {
                self.outstanding -= 1;
            }
        }
        self.outstanding += 1;
    }

    /// A recorded request goes out later than recorded (its send was retried): restart its
    /// clock so the wait does not count as round-trip time.
    pub fn resent(&mut self, family: Family, seq: u16, sent_at: Duration) {
        if let Some(s) = self.pending.get_mut(&(family, seq)) {
            if !s.done {
                s.sent_at = sent_at;
            }
        }
    }

    /// The send of a recorded request failed: it will get no answer.
    pub fn send_failed(&mut self, family: Family, seq: u16, why: String) {
        if let Some(s) = self.pending.get_mut(&(family, seq)) {
            if !s.done {
                s.done = true;
                self.outstanding -= 1;
            }
            if let Some(t) = self.targets.get_mut(s.target) {
                t.error = Some(why);
            }
        }
    }

    /// Marks a target that could not be probed at all (e.g. no socket for its family).
    pub fn unprobed(&mut self, target: usize, count: u32, why: &str) {
        if let Some(t) = self.targets.get_mut(target) {
            t.sent = count;
            t.error = Some(why.to_string());
        }
    }

    /// Requests still waiting for an answer.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Applies one message received on the `family` socket whose identifier is `our_id`, from
    /// `from`, stamped by the kernel at `rx_at`.
    pub fn on_message(
        &mut self,
        family: Family,
        our_id: u16,
        from: IpAddr,
        msg: &Message,
        rx_at: Duration,
    ) -> Outcome {
        match msg {
            Message::Other => Outcome::Ignored,
            Message::Reply { id, seq, cookie } => {
                if *id != our_id {
                    return Outcome::WrongId;
                }
                let Some(slot) = self.pending.get_mut(&(family, *seq)) else {
                    return Outcome::Unknown;
                };
                if let Some(c) = cookie {
                    if *c != (self.nonce, slot.seq32) {
                        return Outcome::Unknown;
                    }
                }
                let Some(t) = self.targets.get_mut(slot.target) else {
                    return Outcome::Unknown;
                };
                if from != t.addr {
                    return Outcome::WrongSource;
                }
                if slot.done {
                    return Outcome::Duplicate;
                }
                slot.done = true;
                self.outstanding -= 1;
                let rtt = rx_at.saturating_sub(slot.sent_at);
                if rtt > self.timeout {
                    return Outcome::TooLate;
                }
                t.received += 1;
                t.rtts.push(rtt);
                Outcome::Counted {
                    target: slot.target,
                    rtt,
                }
            }
            Message::Error { quoted, text } => {
                if quoted.id != our_id {
                    return Outcome::WrongId;
                }
                let Some(slot) = self.pending.get_mut(&(family, quoted.seq)) else {
                    return Outcome::Unknown;
                };
                let Some(t) = self.targets.get_mut(slot.target) else {
                    return Outcome::Unknown;
                };
                if quoted.dst != t.addr {
                    return Outcome::Unknown;
                }
                if slot.done {
                    return Outcome::Duplicate;
                }
                slot.done = true;
                self.outstanding -= 1;
                t.error = Some(if from == t.addr {
                    text.clone()
                } else {
                    format!("{text} (from {from})")
                });
                Outcome::Failed {
                    target: slot.target,
                }
            }
        }
    }

    /// Ends the round: one result per target, in order. Targets with no answer carry the last
    /// error seen, or "no reply within <timeout>".
    pub fn finish(self) -> Vec<PingResult> {
        let timeout = crate::duration::format(self.timeout);
        self.targets
            .into_iter()
            .map(|t| {
                let error = if t.received > 0 {
                    None
                } else {
                    Some(
                        t.error
                            .unwrap_or_else(|| format!("no reply within {timeout}")),
                    )
                };
                PingResult {
                    target: t.addr,
                    sent: t.sent,
                    received: t.received,
                    rtts: t.rtts,
                    error,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::icmp::packet::Quoted;

    const ID: u16 = 0x4242;
    const NONCE: u32 = 99;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn reply(seq: u16, seq32: u32) -> Message {
        Message::Reply {
            id: ID,
            seq,
            cookie: Some((NONCE, seq32)),
        }
    }

    /// Two targets, one request each: seq 10 -> target 0, seq 11 -> target 1.
    fn round() -> Round {
        let mut r = Round::new(&[ip("198.18.16.2"), ip("198.18.16.3")], NONCE, ms(1000));
        r.sent(0, Family::V4, 10, 65_546, ms(5000));
        r.sent(1, Family::V4, 11, 65_547, ms(5000));
        r
    }

    #[test]
    fn a_matching_reply_counts_with_kernel_rtt() {
        let mut r = round();
        let o = r.on_message(
            Family::V4,
            ID,
            ip("198.18.16.2"),
            &reply(10, 65_546),
            ms(5003),
        );
        assert_eq!(
            o,
            Outcome::Counted {
                target: 0,
                rtt: ms(3)
            }
        );
        assert_eq!(r.outstanding(), 1);
        let res = r.finish();
        assert!(res[0].ok());
        assert_eq!(res[0].rtts, vec![ms(3)]);
        assert!(!res[1].ok());
        assert_eq!(res[1].error.as_deref(), Some("no reply within 1s"));
    }

    #[test]
    fn late_reply_from_an_earlier_round_is_ignored() {
        let mut r = round();
        // Sequence from a previous round: not outstanding now.
        let o = r.on_message(
            Family::V4,
            ID,
            ip("198.18.16.2"),
            &reply(9, 65_545),
            ms(5001),
        );
        assert_eq!(o, Outcome::Unknown);
        // Same 16-bit sequence after wrap-around, but the payload's 32-bit sequence differs.
        let o = r.on_message(Family::V4, ID, ip("198.18.16.2"), &reply(10, 10), ms(5001));
        assert_eq!(o, Outcome::Unknown);
        assert!(r.finish().iter().all(|p| !p.ok()));
    }

    #[test]
    fn duplicate_counts_once() {
        let mut r = round();
        let m = reply(10, 65_546);
        assert!(matches!(
            r.on_message(Family::V4, ID, ip("198.18.16.2"), &m, ms(5001)),
            Outcome::Counted { .. }
        ));
        assert_eq!(
            r.on_message(Family::V4, ID, ip("198.18.16.2"), &m, ms(5002)),
            Outcome::Duplicate
        );
        let res = r.finish();
        assert_eq!((res[0].sent, res[0].received), (1, 1));
    }

    #[test]
    fn reply_from_the_wrong_source_does_not_make_target_alive() {
        let mut r = round();
        // Target 1's sequence answered by target 0's address.
        let o = r.on_message(
            Family::V4,
            ID,
            ip("198.18.16.2"),
            &reply(11, 65_547),
            ms(5001),
        );
        assert_eq!(o, Outcome::WrongSource);
        assert!(!r.finish()[1].ok());
    }

    #[test]
    fn wrong_identifier_is_someone_else() {
        let mut r = round();
        let m = Message::Reply {
            id: ID + 1,
            seq: 10,
            cookie: None,
        };
        assert_eq!(
            r.on_message(Family::V4, ID, ip("198.18.16.2"), &m, ms(5001)),
            Outcome::WrongId
        );
        // The other family's socket has its own sequence space.
        assert_eq!(
            r.on_message(
                Family::V6,
                ID,
                ip("198.18.16.2"),
                &reply(10, 65_546),
                ms(5001)
            ),
            Outcome::Unknown
        );
        assert!(!r.finish()[0].ok());
    }

    #[test]
    fn own_echo_request_on_a_raw_socket_is_ignored() {
        use crate::icmp::packet::{decode, encode_echo};
        let mut r = round();
        let req = encode_echo(Family::V4, ID, 10, NONCE, 65_546, 56);
        let msg = decode(Family::V4, &req, false);
        assert_eq!(
            r.on_message(Family::V4, ID, ip("198.18.16.2"), &msg, ms(5000)),
            Outcome::Ignored
        );
        assert!(!r.finish()[0].ok());
    }

    #[test]
    fn reply_after_timeout_is_lost() {
        let mut r = round();
        let o = r.on_message(
            Family::V4,
            ID,
            ip("198.18.16.2"),
            &reply(10, 65_546),
            ms(6001),
        );
        assert_eq!(o, Outcome::TooLate);
        assert!(!r.finish()[0].ok());
    }

    #[test]
    fn icmp_error_for_our_flow_fails_that_target() {
        let mut r = round();
        let e = Message::Error {
            quoted: Quoted {
                dst: ip("198.18.16.3"),
                id: ID,
                seq: 11,
            },
            text: "destination host unreachable".into(),
        };
        assert_eq!(
            r.on_message(Family::V4, ID, ip("198.18.16.1"), &e, ms(5001)),
            Outcome::Failed { target: 1 }
        );
        assert_eq!(r.outstanding(), 1);
        let res = r.finish();
        assert_eq!(
            res[1].error.as_deref(),
            Some("destination host unreachable (from 198.18.16.1)")
        );
        assert!(!res[1].ok());
    }

    #[test]
    fn icmp_error_for_another_flow_is_ignored() {
        let mut r = round();
        for quoted in [
            // Someone else's identifier.
            Quoted {
                dst: ip("198.18.16.3"),
                id: ID + 1,
                seq: 11,
            },
            // Our identifier and sequence, but to another destination.
            Quoted {
                dst: ip("198.18.16.9"),
                id: ID,
                seq: 11,
            },
            // A sequence not outstanding.
            Quoted {
                dst: ip("198.18.16.3"),
                id: ID,
                seq: 500,
            },
        ] {
            let e = Message::Error {
                quoted,
                text: "x".into(),
            };
            let o = r.on_message(Family::V4, ID, ip("198.18.16.1"), &e, ms(5001));
            assert!(matches!(o, Outcome::WrongId | Outcome::Unknown), "{o:?}");
        }
        assert_eq!(r.outstanding(), 2);
        // Then the real reply still counts.
        assert!(matches!(
            r.on_message(
                Family::V4,
                ID,
                ip("198.18.16.3"),
                &reply(11, 65_547),
                ms(5002)
            ),
            Outcome::Counted { target: 1, .. }
        ));
    }

    #[test]
    fn duplicate_targets_are_separate_slots() {
        let t = ip("2001:db8:16::2");
        let mut r = Round::new(&[t, t], NONCE, ms(1000));
        r.sent(0, Family::V6, 1, 1, ms(0));
        r.sent(1, Family::V6, 2, 2, ms(0));
        r.on_message(Family::V6, ID, t, &reply(1, 1), ms(1));
        r.on_message(Family::V6, ID, t, &reply(2, 2), ms(2));
        let res = r.finish();
        assert!(res[0].ok() && res[1].ok());
        assert_eq!(res[1].rtts, vec![ms(2)]);
    }

    #[test]
    fn send_failure_and_unprobed_carry_their_reason() {
        let mut r = round();
        r.send_failed(Family::V4, 10, "send failed: network is unreachable".into());
        assert_eq!(r.outstanding(), 1);
        r.unprobed(1, 1, "no ipv6 socket");
        let res = r.finish();
        assert_eq!(
            res[0].error.as_deref(),
            Some("send failed: network is unreachable")
        );
        assert_eq!(res[1].error.as_deref(), Some("no ipv6 socket"));
    }
}
