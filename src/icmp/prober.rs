//! The prober: sockets opened once, then rounds in which one thread sends every request and
//! drains replies between batches, so all targets are in flight together and a round lasts
//! about the timeout plus the slowest RTT (less when everyone answers), whatever their number.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::matcher::{Outcome, Round};
use super::packet::{encode_echo, Family};
use super::socket::{now_realtime, IcmpSocket, Kind};
use super::{short_error, OpenError, PingResult, ProbeOptions, SocketKind};

/// Requests sent between two drains of the receive queues.
const BATCH: usize = 64;
/// At most this many requests per internal round, so 16-bit sequences never repeat within one.
const MAX_PER_ROUND: usize = 30_000;

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

fn open_family(family: Family, kind: SocketKind, raw_id: u16) -> Result<IcmpSocket, FamilyError> {
    let fail = |e: io::Error| FamilyError {
        denied: denied(&e),
        msg: short_error(&e),
    };
    match kind {
        SocketKind::Datagram => IcmpSocket::open(family, Kind::Datagram, raw_id).map_err(fail),
        SocketKind::Raw => IcmpSocket::open(family, Kind::Raw, raw_id).map_err(fail),
        SocketKind::Auto => match IcmpSocket::open(family, Kind::Datagram, raw_id) {
            Ok(s) => Ok(s),
            Err(first) => IcmpSocket::open(family, Kind::Raw, raw_id).map_err(|e| FamilyError {
                denied: denied(&first) && denied(&e),
                msg: format!(
                    "ping socket: {}; raw socket: {}",
                    short_error(&first),
                    short_error(&e)
                ),
            }),
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
        let v4 = open_family(Family::V4, opts.kind, raw_id);
        let v6 = open_family(Family::V6, opts.kind, raw_id);
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
        let _guard = self.round_lock.lock().unwrap_or_else(|p| p.into_inner());
        let per_round = (MAX_PER_ROUND / self.opts.count.max(1) as usize).max(1);
        targets
            .chunks(per_round)
            .flat_map(|chunk| self.probe_chunk(chunk))
            .collect()
    }

    fn probe_chunk(&self, targets: &[IpAddr]) -> Vec<PingResult> {
        let count = self.opts.count.max(1);
        let mut round = Round::new(targets, self.nonce, self.opts.timeout);
        let mut plan: Vec<(usize, &IcmpSocket)> = Vec::with_capacity(targets.len());
        for (i, t) in targets.iter().enumerate() {
            match self.socket(Family::of(t)) {
                Ok(s) => plan.push((i, s)),
                Err(why) => round.unprobed(i, count, why),
            }
        }
        if plan.is_empty() {
            return round.finish();
        }
        let socks: Vec<&IcmpSocket> = [Family::V4, Family::V6]
            .into_iter()
            .filter_map(|f| self.socket(f).ok())
            .filter(|s| plan.iter().any(|(_, p)| p.family == s.family))
            .collect();
        let mut buf = vec![0u8; 65_536 + 1024];
        let start = Instant::now();
        let mut k = 0u32;
        let mut pos = 0usize;
        let mut last_send = start;
        loop {
            while k < count && Instant::now() >= start + self.opts.interval * k {
                let end = (pos + BATCH).min(plan.len());
                for &(i, s) in &plan[pos..end] {
                    self.send_one(&mut round, s, targets[i], i, &socks, &mut buf);
                }
                drain(&socks, &mut round, &mut buf);
                pos = end;
                if pos == plan.len() {
                    pos = 0;
                    k += 1;
                    last_send = Instant::now();
                }
            }
            drain(&socks, &mut round, &mut buf);
            let now = Instant::now();
            let deadline = last_send + self.opts.timeout;
            if k >= count && (round.outstanding() == 0 || now >= deadline) {
                break;
            }
            let wake = if k >= count {
                deadline
            } else {
                start + self.opts.interval * k
            };
            wait(&socks, wake.saturating_duration_since(now), libc::POLLIN);
        }
        round.finish()
    }

    fn send_one(
        &self,
        round: &mut Round,
        s: &IcmpSocket,
        dst: IpAddr,
        target: usize,
        socks: &[&IcmpSocket],
        buf: &mut [u8],
    ) {
        let seq32 = self.seq.fetch_add(1, Ordering::Relaxed);
        let seq = seq32 as u16;
        let pkt = encode_echo(s.family, s.id, seq, self.nonce, seq32, self.opts.size);
        // Recorded before sending: the reply can be stamped before send_to returns.
        round.sent(target, s.family, seq, seq32, now_realtime());
        let mut tries = 0;
        let mut retried_error = false;
        loop {
            match s.send(&pkt, dst) {
                Ok(()) => return,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && tries < 100 => {
                    tries += 1;
                    drain(socks, round, buf);
                    wait(&[s], Duration::from_millis(10), libc::POLLOUT);
                    round.resent(s.family, seq, now_realtime());
                }
                // A socket reports a pending ICMP error (one that arrived for an earlier,
                // different target) on its next send, and that send does not go out. The
                // failed call cleared the error: read what is queued and send once more, so
                // only an error for this destination itself fails this target.
                Err(_) if !retried_error => {
                    retried_error = true;
                    drain(socks, round, buf);
                    round.resent(s.family, seq, now_realtime());
                }
                Err(e) => {
                    round.send_failed(s.family, seq, format!("send failed: {}", short_error(&e)));
                    return;
                }
            }
        }
    }
}

/// Reads everything queued on the sockets (and ping sockets' error queues) into the round.
fn drain(socks: &[&IcmpSocket], round: &mut Round, buf: &mut [u8]) {
    for s in socks {
        let errqueue = s.kind == Kind::Datagram;
        for queue in [false, true] {
            if queue && !errqueue {
                continue;
            }
            loop {
                let got = if queue {
                    s.recv_error(buf)
                } else {
                    s.recv(buf)
                };
                match got {
                    Ok(Some(r)) => {
                        let o = round.on_message(s.family, s.id, r.from, &r.msg, r.at);
                        if !matches!(o, Outcome::Counted { .. }) {
                            log::trace!("icmp: {:?} from {}: {:?}", r.msg, r.from, o);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        log::debug!(
                            "icmp: receive on {:?} socket: {}",
                            s.family,
                            short_error(&e)
                        );
                        break;
                    }
                }
            }
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
}
