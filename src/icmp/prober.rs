//! The prober: sockets opened once, then rounds in which one thread sends every request and
//! drains replies between batches, so all targets are in flight together and a round lasts
//! about the timeout plus the slowest RTT (less when everyone answers), whatever their number.
//!
//! Hostile traffic cannot stretch a round: every read loop has a limit (a number of messages,
//! a point in time, checked every few messages), the queues are read in turns so a flood on one
//! socket does not starve the other, and at the deadline a short final drain reads what the
//! kernel stamped in time. Matching is the [`Round`]'s business.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::matcher::{Outcome, Round};
use super::packet::{encode_echo, Family};
use super::socket::{classify_send_error, now_realtime, IcmpSocket, Kind, Received, SendError};
use super::{short_error, OpenError, PingResult, ProbeOptions, SocketKind};
use crate::reason::Reason;

/// Requests sent between two drains of the receive queues.
const BATCH: usize = 64;
/// At most this many requests per internal round, so 16-bit sequences never repeat within one.
const MAX_PER_ROUND: usize = 30_000;
/// Messages read from one queue before turning to the next one and looking at the clock.
const CHUNK: usize = 16;
/// Between two send batches, read at most this many messages, for at most `GAP_TIME`: plenty
/// for the replies to the batches before, while a flood cannot hold the sending up.
const GAP_MESSAGES: usize = 4 * BATCH;
const GAP_TIME: Duration = Duration::from_millis(1);
/// After the deadline, read what is queued for at most this long: replies the kernel stamped
/// in time count even when they were read late (RTTs come from the kernel's stamps).
const FINAL_DRAIN: Duration = Duration::from_millis(5);
/// Receive errors tolerated in one drain before an erroring queue counts as empty. A ping
/// socket returns each ICMP error once as a receive error, then its data again.
const MAX_RECV_ERRORS: usize = 64;
/// A full send buffer or interface queue: first pause, doubled up to `BACKOFF_MAX`. All pauses
/// of a round together stay within half its timeout (at most 1 s).
const BACKOFF_MIN: Duration = Duration::from_millis(1);
const BACKOFF_MAX: Duration = Duration::from_millis(8);
/// Immediate retries of a send that failed with an errno an ICMP error may have left behind.
const PENDING_RETRIES: u32 = 4;
/// With a send ceiling, how far sends may run ahead of the pace to make up for a late wake-up
/// (polls wake in whole milliseconds, later on a busy machine): a burst is at most this much
/// sending time.
const PACE_SLACK: Duration = Duration::from_millis(10);

/// The `max_pps` ceiling: each request is due `1 / max_pps` after the one before it, and may
/// go at most [`PACE_SLACK`] early (the generic cell rate algorithm, a token bucket counted in
/// time). In any stretch of time `t`, at most `(t + PACE_SLACK) * max_pps + 1` requests go
/// out.
#[derive(Debug)]
struct Pacer {
    /// Time per request; `None`: no ceiling.
    gap: Option<Duration>,
    /// When the next request is due (the "theoretical arrival time").
    due: Option<Instant>,
}

impl Pacer {
    fn new(max_pps: u32) -> Pacer {
        Pacer {
            gap: (max_pps > 0).then(|| Duration::from_secs(1) / max_pps),
            due: None,
        }
    }

    /// How many of `want` requests may be sent at `now`; books them.
    fn take(&mut self, want: usize, now: Instant) -> usize {
        let Some(gap) = self.gap else {
            return want;
        };
        let mut n = 0;
        while n < want {
            let due = self.due.map_or(now, |d| d.max(now));
            if due > later(now, PACE_SLACK) {
                break;
            }
            self.due = Some(later(due, gap));
            n += 1;
        }
        n
    }

    /// When the next request may go; `None` when there is no ceiling.
    fn ready_at(&self) -> Option<Instant> {
        let due = self.due?;
        self.gap?;
        Some(due.checked_sub(PACE_SLACK).unwrap_or(due))
    }
}

/// ICMP echo prober: one socket per family, reused every round. `Send + Sync`; concurrent
/// `probe` calls are served one after the other (they share the sockets).
#[derive(Debug)]
pub struct Prober {
    opts: ProbeOptions,
    v4: Result<IcmpSocket, String>,
    v6: Result<IcmpSocket, String>,
    seq: AtomicU32,
    nonce: u32,
    round_lock: Mutex<()>,
}

struct FamilyError {
    denied: bool,
    msg: String,
}

fn denied(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM))
}

fn open_family(
    family: Family,
    kind: SocketKind,
    raw_id: u16,
    pmtu_probe: bool,
) -> Result<IcmpSocket, FamilyError> {
    let fail = |e: io::Error| FamilyError {
        denied: denied(&e),
        msg: short_error(&e),
    };
    match kind {
        SocketKind::Datagram => {
            IcmpSocket::open(family, Kind::Datagram, raw_id, pmtu_probe).map_err(fail)
        }
        SocketKind::Raw => IcmpSocket::open(family, Kind::Raw, raw_id, pmtu_probe).map_err(fail),
        SocketKind::Auto => match IcmpSocket::open(family, Kind::Datagram, raw_id, pmtu_probe) {
            Ok(s) => Ok(s),
            Err(first) => {
                IcmpSocket::open(family, Kind::Raw, raw_id, pmtu_probe).map_err(|e| FamilyError {
                    denied: denied(&first) && denied(&e),
                    msg: format!(
                        "ping socket: {}; raw socket: {}",
                        short_error(&first),
                        short_error(&e)
                    ),
                })
            }
        },
    }
}

fn random_u32() -> u32 {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(now_realtime().as_nanos());
    h.finish() as u32
}

impl Prober {
    /// Opens the sockets. Fails only when no family can be opened; a family that cannot (no
    /// IPv6 in the pod) makes just its targets fail, with the reason.
    pub fn open(opts: &ProbeOptions) -> Result<Prober, OpenError> {
        opts.validate().map_err(OpenError::Options)?;
        let nonce = random_u32();
        let raw_id = (random_u32() & 0xffff) as u16;
        let v4 = open_family(Family::V4, opts.kind, raw_id, opts.pmtu_probe);
        let v6 = open_family(Family::V6, opts.kind, raw_id, opts.pmtu_probe);
        if let (Err(a), Err(b)) = (&v4, &v6) {
            return Err(if a.denied || b.denied {
                OpenError::NotPermitted { kind: opts.kind }
            } else {
                OpenError::Io(format!("ipv4: {}; ipv6: {}", a.msg, b.msg))
            });
        }
        let describe = |name: &str, r: &Result<IcmpSocket, FamilyError>| match r {
            Ok(s) => log::debug!(
                "icmp: {name} {:?} socket, id {}, receive buffer {} bytes",
                s.kind,
                s.id,
                s.rcvbuf
            ),
            Err(e) => log::warn!(
                "icmp: no {name} socket ({}); {name} targets will fail",
                e.msg
            ),
        };
        describe("ipv4", &v4);
        describe("ipv6", &v6);
        let keep = |name: &str, r: Result<IcmpSocket, FamilyError>| {
            r.map_err(|e| format!("no {name} icmp socket: {}", e.msg))
        };
        Ok(Prober {
            opts: opts.clone(),
            v4: keep("ipv4", v4),
            v6: keep("ipv6", v6),
            seq: AtomicU32::new(random_u32()),
            nonce,
            round_lock: Mutex::new(()),
        })
    }

    /// The options the prober was opened with.
    pub fn options(&self) -> &ProbeOptions {
        &self.opts
    }

    /// The socket kind in use for `family`, `None` when that family could not be opened.
    pub fn kind(&self, family: Family) -> Option<Kind> {
        self.socket(family).ok().map(|s| s.kind)
    }

    /// The ICMP identifier our requests carry on `family`, `None` when that family could not
    /// be opened (for tests that play a peer forging replies with it).
    pub fn id(&self, family: Family) -> Option<u16> {
        self.socket(family).ok().map(|s| s.id)
    }

    /// One line for the start-up log, e.g. "ipv4 ping socket (id 40123, rcvbuf 8388608 B);
    /// ipv6 unavailable (no ipv6 icmp socket: address family not supported by protocol)".
    pub fn describe(&self) -> String {
        let one = |name: &str, r: &Result<IcmpSocket, String>| match r {
            Ok(s) => format!(
                "{name} {} socket (id {}, rcvbuf {} B)",
                match s.kind {
                    Kind::Datagram => "ping",
                    Kind::Raw => "raw",
                },
                s.id,
                s.rcvbuf
            ),
            Err(e) => format!("{name} unavailable ({e})"),
        };
        format!("{}; {}", one("ipv4", &self.v4), one("ipv6", &self.v6))
    }

    fn socket(&self, family: Family) -> Result<&IcmpSocket, &str> {
        match family {
            Family::V4 => self.v4.as_ref().map_err(String::as_str),
            Family::V6 => self.v6.as_ref().map_err(String::as_str),
        }
    }

    /// Pings every target `count` times, all at once; blocks about timeout + slowest RTT and
    /// returns one result per target, in order (duplicates allowed).
    pub fn probe(&self, targets: &[IpAddr]) -> Vec<PingResult> {
        self.probe_sized(targets, self.opts.size)
    }

    /// [`Prober::probe`] with `size` payload bytes instead of the options' (the `pod-mtu`
    /// echoes fill each family's MTU).
    pub fn probe_sized(&self, targets: &[IpAddr], size: usize) -> Vec<PingResult> {
        let _guard = self.round_lock.lock().unwrap_or_else(|p| p.into_inner());
        let per_round = (MAX_PER_ROUND / self.opts.count.max(1) as usize).max(1);
        let size = size.min(super::packet::MAX_PAYLOAD);
        targets
            .chunks(per_round)
            .flat_map(|chunk| self.probe_chunk(chunk, size))
            .collect()
    }

    fn probe_chunk(&self, targets: &[IpAddr], size: usize) -> Vec<PingResult> {
        let count = self.opts.count.max(1);
        let mut round = Round::new(targets, self.nonce, size, self.opts.timeout);
        let mut plan: Vec<(IpAddr, usize, &IcmpSocket)> = Vec::with_capacity(targets.len());
        for (i, &t) in targets.iter().enumerate() {
            match self.socket(Family::of(&t)) {
                Ok(s) => plan.push((t, i, s)),
                Err(why) => round.unprobed(i, count, Reason::NoSocket, why),
            }
        }
        if plan.is_empty() {
            return round.finish();
        }
        let socks: Vec<&IcmpSocket> = [Family::V4, Family::V6]
            .into_iter()
            .filter_map(|f| self.socket(f).ok())
            .filter(|s| plan.iter().any(|(_, _, p)| p.family == s.family))
            .collect();
        let queues: Vec<Queue> = socks
            .iter()
            .flat_map(|&sock| {
                // Ping sockets receive their ICMP errors on the error queue.
                let errors = sock.kind == Kind::Datagram;
                [
                    Some(Queue {
                        sock,
                        errors: false,
                    }),
                    errors.then_some(Queue { sock, errors }),
                ]
            })
            .flatten()
            .collect();
        let mut io = RoundIo {
            queues: &queues,
            buf: vec![0u8; 65_536 + 1024],
            backoff_left: (self.opts.timeout / 2).min(Duration::from_secs(1)),
        };
        let start = Instant::now();
        let due = |k: u32| later(start, self.opts.interval.saturating_mul(k));
        let mut k = 0u32;
        let mut pos = 0usize;
        let mut deadline = later(start, self.opts.timeout);
        let mut pacer = Pacer::new(self.opts.max_pps);
        loop {
            while k < count && Instant::now() >= due(k) {
                let room = BATCH.min(plan.len().saturating_sub(pos));
                let end = pos + pacer.take(room, Instant::now());
                if end == pos {
                    break; // paced: the next request is not due yet
                }
                for &(dst, i, s) in plan.get(pos..end).unwrap_or_default() {
                    self.send_one(&mut round, &mut io, s, (dst, i), size);
                }
                io.drain(&mut round, Limit::gap());
                pos = end;
                if pos == plan.len() {
                    pos = 0;
                    k += 1;
                    deadline = later(Instant::now(), self.opts.timeout);
                }
            }
            let now = Instant::now();
            if k >= count {
                if round.outstanding() == 0 {
                    break;
                }
                if now >= deadline {
                    // What the kernel queued before the deadline still counts (by its stamp);
                    // a flood behind it is cut off.
                    io.drain(&mut round, Limit::until(later(now, FINAL_DRAIN)));
                    break;
                }
            }
            let wake = if k >= count {
                deadline
            } else {
                pacer.ready_at().map_or(due(k), |ready| ready.max(due(k)))
            };
            match io.drain(&mut round, Limit::until(wake)) {
                Drained::Limit => {}
                Drained::Answered if k >= count => break,
                // Nothing (more) to read before `wake`: sleep until a message or `wake` comes.
                Drained::Answered | Drained::Empty => wait(
                    &socks,
                    wake.saturating_duration_since(Instant::now()),
                    libc::POLLIN,
                ),
            }
        }
        round.finish()
    }

    fn send_one(
        &self,
        round: &mut Round,
        io: &mut RoundIo<'_>,
        s: &IcmpSocket,
        (dst, target): (IpAddr, usize),
        size: usize,
    ) {
        let seq32 = self.seq.fetch_add(1, Ordering::Relaxed);
        let seq = seq32 as u16;
        let pkt = encode_echo(s.family, s.id, seq, self.nonce, seq32, size);
        // Recorded before sending: the reply can be stamped before send_to returns.
        round.sent(target, s.family, seq, seq32, now_realtime());
        let mut interrupted = 0u32;
        let mut pending = 0u32;
        let mut pause = BACKOFF_MIN;
        loop {
            let Err(e) = s.send(&pkt, dst) else {
                return;
            };
            let (reason, why) = match classify_send_error(&e) {
                SendError::Interrupted if interrupted < 3 => {
                    interrupted += 1;
                    continue;
                }
                SendError::BufferFull if !io.backoff_left.is_zero() => {
                    let began = Instant::now();
                    io.drain(round, Limit::gap());
                    let p = pause.min(io.backoff_left);
                    if e.kind() == io::ErrorKind::WouldBlock {
                        wait(&[s], p, libc::POLLOUT);
                    } else {
                        // ENOBUFS: the interface queue drains by itself; POLLOUT says nothing.
                        std::thread::sleep(p);
                    }
                    io.backoff_left = io.backoff_left.saturating_sub(began.elapsed());
                    pause = pause.saturating_mul(2).min(BACKOFF_MAX);
                    round.resent(s.family, seq, now_realtime());
                    continue;
                }
                // The failed send consumed the socket's pending error, if that is what it was:
                // sending again at once goes out unless this destination itself fails.
                SendError::Failed {
                    maybe_pending: true,
                    ..
                } if pending < PENDING_RETRIES => {
                    pending += 1;
                    round.resent(s.family, seq, now_realtime());
                    continue;
                }
                SendError::Interrupted => (
                    Reason::SendError,
                    format!("send failed: {}", short_error(&e)),
                ),
                SendError::BufferFull => (
                    Reason::NoBuffer,
                    format!("send failed: {}", short_error(&e)),
                ),
                SendError::Failed {
                    reason, message, ..
                } => (reason, message),
            };
            log::debug!("icmp: send to {dst}: {why}");
            round.send_failed(s.family, seq, reason, why);
            return;
        }
    }
}

/// `t + d`, or a year after `t` when that overflows (a huge interval or timeout).
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(t)
}

/// One receive queue a round reads: a socket's normal queue or a ping socket's error queue.
/// A trait so the read loop can be tested with scripted queues.
pub(crate) trait Inbox {
    /// Family and identifier of the socket behind the queue.
    fn flow(&self) -> (Family, u16);
    /// Reads one message; `Ok(None)` when the queue is empty.
    fn read(&self, buf: &mut [u8]) -> io::Result<Option<Received>>;
}

struct Queue<'a> {
    sock: &'a IcmpSocket,
    errors: bool,
}

impl Inbox for Queue<'_> {
    fn flow(&self) -> (Family, u16) {
        (self.sock.family, self.sock.id)
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        if self.errors {
            self.sock.recv_error(buf)
        } else {
            self.sock.recv(buf)
        }
    }
}

/// How long one drain may go on.
#[derive(Debug, Clone, Copy)]
struct Limit {
    until: Instant,
    messages: usize,
}

impl Limit {
    fn until(until: Instant) -> Limit {
        Limit {
            until,
            messages: usize::MAX,
        }
    }

    /// Between two send batches.
    fn gap() -> Limit {
        Limit {
            until: later(Instant::now(), GAP_TIME),
            messages: GAP_MESSAGES,
        }
    }
}

/// Why a drain stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drained {
    /// Every queue was empty.
    Empty,
    /// No request is waiting for an answer any more.
    Answered,
    /// The limit came first: more may be queued.
    Limit,
}

/// The receive side of one round: its queues, one buffer, and what is left of its send
/// back-off budget.
struct RoundIo<'a> {
    queues: &'a [Queue<'a>],
    buf: Vec<u8>,
    backoff_left: Duration,
}

impl RoundIo<'_> {
    fn drain(&mut self, round: &mut Round, limit: Limit) -> Drained {
        drain(self.queues, round, &mut self.buf, limit)
    }
}

/// Reads the queues in turns, `CHUNK` messages each, into the round until they are all empty,
/// every request is answered, or `limit` is reached (the clock is read after every chunk, so a
/// queue that never empties cannot hold the round past its deadline). A receive error is
/// logged and reading goes on: it never leaves replies behind it unread.
fn drain<Q: Inbox>(queues: &[Q], round: &mut Round, buf: &mut [u8], limit: Limit) -> Drained {
    let mut read = 0usize;
    let mut errors = 0usize;
    loop {
        let mut more = false;
        for q in queues {
            let (family, id) = q.flow();
            let mut n = 0;
            while n < CHUNK {
                match q.read(buf) {
                    Ok(Some(r)) => {
                        n += 1;
                        let o = round.on_message(family, id, r.from, &r.msg, r.at);
                        if !matches!(o, Outcome::Counted { .. }) {
                            log::trace!("icmp: {:?} from {}: {:?}", r.msg, r.from, o);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        errors += 1;
                        log::debug!("icmp: receive on {family:?} socket: {}", short_error(&e));
                        if errors > MAX_RECV_ERRORS {
                            break;
                        }
                    }
                }
            }
            more |= n == CHUNK;
            read = read.saturating_add(n);
            if round.outstanding() == 0 {
                return Drained::Answered;
            }
            if read >= limit.messages || Instant::now() >= limit.until {
                return Drained::Limit;
            }
        }
        if !more {
            return Drained::Empty;
        }
    }
}

/// Waits until a socket is ready for `events` (errors always wake) or `timeout` passes.
fn wait(socks: &[&IcmpSocket], timeout: Duration, events: libc::c_short) {
    let mut fds: Vec<libc::pollfd> = socks
        .iter()
        .map(|s| libc::pollfd {
            fd: s.fd(),
            events,
            revents: 0,
        })
        .collect();
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `fds` is a live array of `fds.len()` pollfd structs.
    unsafe {
        libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prober_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Prober>();
    }

    #[test]
    fn invalid_options_are_refused_before_any_socket() {
        let opts = ProbeOptions {
            count: 0,
            ..Default::default()
        };
        let e = Prober::open(&opts).unwrap_err();
        assert!(e.to_string().contains("count"), "{e}");
    }

    use super::super::packet::Message;
    use std::cell::{Cell, RefCell};
    use std::collections::VecDeque;

    const ID: u16 = 7;
    const NONCE: u32 = 1;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A scripted queue: its items in order, then either empty or (with `forever`) the same
    /// foreign reply for ever, as under a flood.
    struct Script {
        items: RefCell<VecDeque<io::Result<Option<Received>>>>,
        forever: bool,
        reads: Cell<usize>,
    }

    impl Script {
        fn new(items: Vec<io::Result<Option<Received>>>, forever: bool) -> Script {
            Script {
                items: RefCell::new(items.into()),
                forever,
                reads: Cell::new(0),
            }
        }
    }

    impl Inbox for Script {
        fn flow(&self) -> (Family, u16) {
            (Family::V4, ID)
        }

        fn read(&self, _buf: &mut [u8]) -> io::Result<Option<Received>> {
            self.reads.set(self.reads.get() + 1);
            assert!(self.reads.get() < 50_000_000, "drain never stopped");
            if let Some(item) = self.items.borrow_mut().pop_front() {
                return item;
            }
            if !self.forever {
                return Ok(None);
            }
            Ok(Some(received("198.18.16.9", 0, 0, 1)))
        }
    }

    /// A reply with our identifier from `from` for `seq`, stamped at `at_ms`.
    fn received(from: &str, seq: u16, seq32: u32, at_ms: u64) -> Received {
        Received {
            from: ip(from),
            at: ms(at_ms),
            msg: Message::Reply {
                id: ID,
                seq,
                len: 56,
                cookie: Some((NONCE, seq32)),
            },
        }
    }

    /// One live target, one request (seq 3) sent at 0 ms.
    fn round() -> Round {
        let mut r = Round::new(&[ip("198.18.16.2")], NONCE, 56, ms(1000));
        r.sent(0, Family::V4, 3, 3, ms(0));
        r
    }

    fn buf() -> Vec<u8> {
        vec![0u8; 64]
    }

    #[test]
    fn drain_stops_at_its_deadline_when_the_queue_never_empties() {
        let flood = Script::new(vec![], true);
        let mut r = round();
        let began = Instant::now();
        let end = drain(&[flood], &mut r, &mut buf(), Limit::until(began + ms(20)));
        assert_eq!(end, Drained::Limit);
        // Generous: the point is that it returns at all (the old loop read until empty).
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "{:?}",
            began.elapsed()
        );
    }

    #[test]
    fn drain_stops_after_its_message_budget() {
        let flood = Script::new(vec![], true);
        let mut r = round();
        let limit = Limit {
            until: later(Instant::now(), Duration::from_secs(3600)),
            messages: GAP_MESSAGES,
        };
        assert_eq!(drain(&[&flood], &mut r, &mut buf(), limit), Drained::Limit);
        assert!(
            flood.reads.get() <= GAP_MESSAGES + CHUNK,
            "{}",
            flood.reads.get()
        );
    }

    impl Inbox for &Script {
        fn flow(&self) -> (Family, u16) {
            (*self).flow()
        }

        fn read(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
            (*self).read(buf)
        }
    }

    #[test]
    fn drain_reads_the_other_queue_while_one_is_flooded() {
        let flood = Script::new(vec![], true);
        let quiet = Script::new(vec![Ok(Some(received("198.18.16.2", 3, 3, 40)))], false);
        let mut r = round();
        let end = drain(
            &[&flood, &quiet],
            &mut r,
            &mut buf(),
            Limit::until(Instant::now() + ms(50)),
        );
        assert_eq!(
            end,
            Drained::Answered,
            "the real reply behind the flood was read"
        );
        assert_eq!(r.finish()[0].rtts, vec![ms(40)]);
    }

    #[test]
    fn drain_goes_on_after_a_receive_error() {
        // A ping socket returns a pending ICMP error once from recvmsg, then its data.
        let q = Script::new(
            vec![
                Err(io::Error::from_raw_os_error(libc::EHOSTUNREACH)),
                Err(io::Error::from_raw_os_error(libc::ECONNREFUSED)),
                Ok(Some(received("198.18.16.2", 3, 3, 5))),
            ],
            false,
        );
        let mut r = round();
        drain(
            &[q],
            &mut r,
            &mut buf(),
            Limit::until(Instant::now() + ms(50)),
        );
        assert!(r.finish()[0].ok(), "the reply after the errors was read");
    }

    #[test]
    fn drain_gives_up_on_a_queue_that_only_errors() {
        let errors = (0..10_000)
            .map(|_| Err(io::Error::from_raw_os_error(libc::EIO)))
            .collect();
        let q = Script::new(errors, false);
        let mut r = round();
        let end = drain(
            &[&q],
            &mut r,
            &mut buf(),
            Limit::until(Instant::now() + Duration::from_secs(3600)),
        );
        assert_eq!(end, Drained::Empty);
        assert!(q.reads.get() <= MAX_RECV_ERRORS + 1, "{}", q.reads.get());
    }

    #[test]
    fn the_pacer_keeps_to_its_ceiling_and_makes_up_for_late_wakes() {
        let t0 = Instant::now();
        let mut off = Pacer::new(0);
        assert_eq!(off.take(64, t0), 64);
        assert_eq!(off.ready_at(), None);
        // 5,000 per second: 200 us apart, at most 10 ms ahead.
        let mut p = Pacer::new(5000);
        let burst = p.take(1000, t0);
        assert_eq!(burst, 51, "one now and 10 ms worth ahead");
        assert_eq!(p.take(1, t0), 0);
        let ready = p.ready_at().unwrap();
        assert_eq!(ready, t0 + Duration::from_micros(200 * 51) - PACE_SLACK);
        assert_eq!(p.take(1, ready), 1);
        // Woken 3 ms late: the 15 requests that fell due go at once, no more.
        assert_eq!(p.take(1000, ready + ms(3)), 15);
        // Over any stretch, no more than the ceiling allows.
        let mut q = Pacer::new(5000);
        let mut sent = 0usize;
        let mut now = t0;
        for step in 0..2000u64 {
            now += Duration::from_micros(137 + step % 900);
            sent += q.take(64, now);
            let allowed = ((now - t0) + PACE_SLACK).as_secs_f64() * 5000.0 + 1.0;
            assert!(sent as f64 <= allowed + 1e-9, "{sent} by {:?}", now - t0);
        }
        assert!(
            sent as f64 >= (now - t0).as_secs_f64() * 5000.0,
            "kept pace: {sent}"
        );
    }

    #[test]
    fn later_saturates_instead_of_panicking() {
        let t = Instant::now();
        assert!(later(t, Duration::MAX) > t);
        assert_eq!(later(t, ms(5)), t + ms(5));
    }
}
