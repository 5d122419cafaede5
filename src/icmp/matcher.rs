//! Matching received ICMP messages to the echo requests of one round. Pure logic: the prober
//! feeds it what it sent and what it received (with kernel timestamps); this decides what
//! counts. The rule that matters most: a dead target is never reported alive, so anything not
//! provably an answer to a request of this round (wrong identifier, unknown or stale sequence,
//! a payload other than the one sent or without our marker, wrong source, a second copy, an
//! answer after the timeout) is ignored.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use super::packet::{Family, Message, COOKIE_LEN};
use super::PingResult;
use crate::reason::Reason;

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
    /// The payload is not the one sent: another length, so also a reply too short to carry the
    /// marker that our request carried. Someone else's packet, or a forged one.
    WrongPayload,
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
    error: Option<(Reason, String)>,
}

/// The book-keeping of one round: which requests are outstanding and what each target got.
#[derive(Debug)]
pub struct Round {
    targets: Vec<TargetState>,
    pending: HashMap<(Family, u16), Slot>,
    outstanding: usize,
    nonce: u32,
    size: usize,
    timeout: Duration,
}

impl Round {
    /// A round over `targets` (duplicates allowed; each index is its own target). `nonce` is
    /// the prober's payload nonce, `size` the payload bytes of every request (a reply must
    /// carry as many, starting with the marker when `size` leaves room for it); `timeout` is
    /// how long each request may wait for its answer.
    pub fn new(targets: &[IpAddr], nonce: u32, size: usize, timeout: Duration) -> Round {
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
            size,
            timeout,
        }
    }

    /// Records a request sent to `target` at `sent_at` (CLOCK_REALTIME since the epoch).
    /// Call it just before the send so that a fast reply always finds its slot.
    pub fn sent(&mut self, target: usize, family: Family, seq: u16, seq32: u32, sent_at: Duration) {
        let Some(t) = self.targets.get_mut(target) else {
            return;
        };
        t.sent = t.sent.saturating_add(1);
        let slot = Slot {
            target,
            seq32,
            sent_at,
            done: false,
        };
        if let Some(old) = self.pending.insert((family, seq), slot) {
            if !old.done {
                self.outstanding = self.outstanding.saturating_sub(1);
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
    pub fn send_failed(&mut self, family: Family, seq: u16, reason: Reason, why: String) {
        if let Some(s) = self.pending.get_mut(&(family, seq)) {
            if !s.done {
                s.done = true;
                self.outstanding = self.outstanding.saturating_sub(1);
            }
            if let Some(t) = self.targets.get_mut(s.target) {
                t.error = Some((reason, why));
            }
        }
    }

    /// Marks a target that could not be probed at all (e.g. no socket for its family).
    pub fn unprobed(&mut self, target: usize, count: u32, reason: Reason, why: &str) {
        if let Some(t) = self.targets.get_mut(target) {
            t.sent = count;
            t.error = Some((reason, why.to_string()));
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
            Message::Reply {
                id,
                seq,
                len,
                cookie,
            } => {
                if *id != our_id {
                    return Outcome::WrongId;
                }
                let (size, nonce) = (self.size, self.nonce);
                let Some(slot) = self.pending.get_mut(&(family, *seq)) else {
                    return Outcome::Unknown;
                };
                // An echo reply carries the request's payload back unchanged: any other
                // length (a short one cannot hold the marker we sent) is not our answer.
                if *len != size {
                    return Outcome::WrongPayload;
                }
                if !marker_ok(size, nonce, *cookie, slot.seq32) {
                    return Outcome::Unknown;
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
                self.outstanding = self.outstanding.saturating_sub(1);
                let rtt = rx_at.saturating_sub(slot.sent_at);
                if rtt > self.timeout {
                    return Outcome::TooLate;
                }
                t.received = t.received.saturating_add(1);
                t.rtts.push(rtt);
                Outcome::Counted {
                    target: slot.target,
                    rtt,
                }
            }
            Message::Error {
                quoted,
                text,
                reason,
            } => {
                if quoted.id != our_id {
                    return Outcome::WrongId;
                }
                let (size, nonce) = (self.size, self.nonce);
                let Some(slot) = self.pending.get_mut(&(family, quoted.seq)) else {
                    return Outcome::Unknown;
                };
                // Errors need not quote the payload; when they do, it must be ours.
                if quoted.cookie.is_some() && !marker_ok(size, nonce, quoted.cookie, slot.seq32) {
                    return Outcome::Unknown;
                }
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
                self.outstanding = self.outstanding.saturating_sub(1);
                let text = if from == t.addr {
                    text.clone()
                } else {
                    format!("{text} (from {from})")
                };
                t.error = Some((*reason, text));
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
                let (reason, error) = if t.received > 0 {
                    (None, None)
                } else {
                    let (reason, error) = t
                        .error
                        .unwrap_or_else(|| (Reason::Timeout, format!("no reply within {timeout}")));
                    (Some(reason), Some(error))
                };
                PingResult {
                    target: t.addr,
                    sent: t.sent,
                    received: t.received,
                    rtts: t.rtts,
                    error,
                    reason,
                }
            })
            .collect()
    }
}

/// Whether a marker read from a reply or a quoted request is the one of request `seq32`.
/// Payloads of `size` too small for a marker carry none, and then none is expected.
fn marker_ok(size: usize, nonce: u32, cookie: Option<(u32, u32)>, seq32: u32) -> bool {
    size < COOKIE_LEN || cookie == Some((nonce, seq32))
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

    const SIZE: usize = 56;

    fn reply(seq: u16, seq32: u32) -> Message {
        Message::Reply {
            id: ID,
            seq,
            len: SIZE,
            cookie: Some((NONCE, seq32)),
        }
    }

    /// Two targets, one request each: seq 10 -> target 0, seq 11 -> target 1.
    fn round() -> Round {
        let mut r = Round::new(
            &[ip("198.18.16.2"), ip("198.18.16.3")],
            NONCE,
            SIZE,
            ms(1000),
        );
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
        assert_eq!(res[1].reason, Some(Reason::Timeout));
        assert_eq!(res[0].reason, None);
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
            len: SIZE,
            cookie: Some((NONCE, 65_546)),
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
                cookie: None,
            },
            text: "destination host unreachable".into(),
            reason: Reason::Unreachable,
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
        assert_eq!(res[1].reason, Some(Reason::Unreachable));
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
                cookie: None,
            },
            // Our identifier and sequence, but to another destination.
            Quoted {
                dst: ip("198.18.16.9"),
                id: ID,
                seq: 11,
                cookie: None,
            },
            // A sequence not outstanding.
            Quoted {
                dst: ip("198.18.16.3"),
                id: ID,
                seq: 500,
                cookie: None,
            },
            // Our flow, but the quoted payload's marker is another request's (a stale one
            // whose 16-bit sequence wrapped onto ours).
            Quoted {
                dst: ip("198.18.16.3"),
                id: ID,
                seq: 11,
                cookie: Some((NONCE, 11)),
            },
        ] {
            let e = Message::Error {
                quoted,
                text: "x".into(),
                reason: Reason::Unreachable,
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
        let mut r = Round::new(&[t, t], NONCE, SIZE, ms(1000));
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
        r.send_failed(
            Family::V4,
            10,
            Reason::Unreachable,
            "send failed: network is unreachable".into(),
        );
        assert_eq!(r.outstanding(), 1);
        r.unprobed(1, 1, Reason::NoSocket, "no ipv6 socket");
        let res = r.finish();
        assert_eq!(
            res[0].error.as_deref(),
            Some("send failed: network is unreachable")
        );
        assert_eq!(res[0].reason, Some(Reason::Unreachable));
        assert_eq!(res[1].error.as_deref(), Some("no ipv6 socket"));
        assert_eq!(res[1].reason, Some(Reason::NoSocket));
    }

    #[test]
    fn reply_without_the_marker_never_counts_when_ours_carried_one() {
        // The bug this guards: a payload shorter than the marker decoded with cookie None and
        // counted, whatever the request carried.
        for len in [0, 4, 7] {
            let mut r = round();
            let short = Message::Reply {
                id: ID,
                seq: 10,
                len,
                cookie: None,
            };
            assert_eq!(
                r.on_message(Family::V4, ID, ip("198.18.16.2"), &short, ms(5001)),
                Outcome::WrongPayload,
                "{len} bytes"
            );
            assert_eq!(r.outstanding(), 2, "a forgery does not use up the request");
            assert!(!r.finish()[0].ok());
        }
    }

    #[test]
    fn reply_of_another_length_never_counts_even_with_our_marker() {
        let mut r = round();
        for len in [SIZE - 1, SIZE + 1, 1000] {
            let m = Message::Reply {
                id: ID,
                seq: 10,
                len,
                cookie: Some((NONCE, 65_546)),
            };
            assert_eq!(
                r.on_message(Family::V4, ID, ip("198.18.16.2"), &m, ms(5001)),
                Outcome::WrongPayload
            );
        }
        assert!(!r.finish()[0].ok());
    }

    #[test]
    fn reply_with_another_marker_never_counts() {
        let mut r = round();
        for cookie in [(NONCE + 1, 65_546), (NONCE, 65_547), (0, 0)] {
            let m = Message::Reply {
                id: ID,
                seq: 10,
                len: SIZE,
                cookie: Some(cookie),
            };
            assert_eq!(
                r.on_message(Family::V4, ID, ip("198.18.16.2"), &m, ms(5001)),
                Outcome::Unknown,
                "{cookie:?}"
            );
        }
        assert!(!r.finish()[0].ok());
    }

    #[test]
    fn payloads_too_small_for_a_marker_match_on_length() {
        for size in [0usize, 4, 7] {
            let t = ip("198.18.16.2");
            let mut r = Round::new(&[t], NONCE, size, ms(1000));
            r.sent(0, Family::V4, 1, 1, ms(0));
            let other = Message::Reply {
                id: ID,
                seq: 1,
                len: SIZE,
                cookie: Some((NONCE, 1)),
            };
            assert_eq!(
                r.on_message(Family::V4, ID, t, &other, ms(1)),
                Outcome::WrongPayload
            );
            let m = Message::Reply {
                id: ID,
                seq: 1,
                len: size,
                cookie: None,
            };
            assert_eq!(
                r.on_message(Family::V4, ID, t, &m, ms(2)),
                Outcome::Counted {
                    target: 0,
                    rtt: ms(2)
                }
            );
        }
    }

    #[test]
    fn forgeries_before_the_real_reply_leave_its_rtt_alone() {
        // Every near miss arrives first, at 1 ms; the real answer comes at 40 ms and is the
        // only RTT recorded, for the target it belongs to.
        let mut r = round();
        let near_misses = [
            (ip("198.18.16.3"), reply(10, 65_546)), // wrong source
            (
                ip("198.18.16.2"),
                Message::Reply {
                    id: ID,
                    seq: 10,
                    len: 4,
                    cookie: None,
                },
            ), // too short for the marker
            (ip("198.18.16.2"), reply(10, 10)),     // another marker
            (ip("198.18.16.2"), reply(12, 65_548)), // a sequence not sent
        ];
        for (from, m) in &near_misses {
            let o = r.on_message(Family::V4, ID, *from, m, ms(5001));
            assert!(!matches!(o, Outcome::Counted { .. }), "{m:?}: {o:?}");
        }
        assert_eq!(r.outstanding(), 2);
        assert_eq!(
            r.on_message(
                Family::V4,
                ID,
                ip("198.18.16.2"),
                &reply(10, 65_546),
                ms(5040)
            ),
            Outcome::Counted {
                target: 0,
                rtt: ms(40)
            }
        );
        let res = r.finish();
        assert_eq!(res[0].rtts, vec![ms(40)]);
        assert!(res[1].rtts.is_empty());
    }

    #[test]
    fn reply_stamped_exactly_at_the_timeout_counts_and_later_does_not() {
        let mut r = round();
        let at = ms(5000) + ms(1000);
        assert!(matches!(
            r.on_message(Family::V4, ID, ip("198.18.16.2"), &reply(10, 65_546), at),
            Outcome::Counted { .. }
        ));
        assert_eq!(
            r.on_message(
                Family::V4,
                ID,
                ip("198.18.16.3"),
                &reply(11, 65_547),
                at + Duration::from_nanos(1)
            ),
            Outcome::TooLate
        );
        let res = r.finish();
        assert!(res[0].ok() && !res[1].ok());
    }

    #[test]
    fn error_quoting_our_marker_fails_the_target() {
        let mut r = round();
        let e = Message::Error {
            quoted: Quoted {
                dst: ip("198.18.16.3"),
                id: ID,
                seq: 11,
                cookie: Some((NONCE, 65_547)),
            },
            text: "destination host unreachable".into(),
            reason: Reason::Unreachable,
        };
        assert_eq!(
            r.on_message(Family::V4, ID, ip("198.18.16.3"), &e, ms(5001)),
            Outcome::Failed { target: 1 }
        );
        assert_eq!(
            r.finish()[1].error.as_deref(),
            Some("destination host unreachable")
        );
    }
}
