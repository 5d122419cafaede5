//! The HTTP endpoints on port 8123: `/prometheus.report` and `/metrics` (Prometheus text),
//! `/status.json`, `/summary.json`, `/livez`, `/readyz`, and the whole-cluster matrix at `/`
//! and `/matrix.json` (answered from its cache; see `matrix::refresh`).
//!
//! A bounded server: one thread runs a `poll(2)` loop over the listener and at most
//! [`Limits::max_connections`] connections; request heads are parsed by httparse (at most
//! 8 KiB, no bodies); every phase of a connection has a deadline; responses come from pages
//! rendered once per round (or per matrix refresh). Accept always drains the backlog, evicting the oldest idle
//! connection at the cap, so TCP connects to the port keep completing under abuse.

mod conn;
pub(crate) mod poll;
mod published;
pub(crate) mod request;
mod response;
mod routes;
mod stats;

use std::io::{self, Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpListener};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use conn::{Conn, Ctx, Next};
use poll::{PollSet, POLLIN};
pub use published::{Pages, Shared, State};
use stats::Stats;
pub use stats::{Reason, Status};

/// The server's bounds. The defaults are what the agent runs with; tests shorten them.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at most; a new one beyond it closes the oldest idle one.
    pub max_connections: usize,
    /// Time to send a request head, from its first byte (and from the connect for the first).
    pub head_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request: longer than a
    /// Prometheus scrape interval, so a scraper keeps its connection between scrapes.
    pub idle_timeout: Duration,
    /// Time for the client to take a whole response.
    pub write_timeout: Duration,
    /// How long a closing connection's input is drained (see [`conn::Phase::Draining`]).
    pub linger: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 128,
            head_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(90),
            write_timeout: Duration::from_secs(5),
            linger: Duration::from_secs(1),
        }
    }
}

/// The listen backlog; accept drains it every turn of the loop, so it only absorbs bursts.
const BACKLOG: i32 = 1024;
/// Accepts per turn of the loop at most, as a share of the connection cap: between turns
/// the loop serves the connections whose requests arrived, so a flood of connects evicts
/// other new connections only after several turns, not in one batch (and cannot starve the
/// open connections either).
fn accepts_per_turn(max_connections: usize) -> usize {
    (max_connections / 8).clamp(1, 64)
}
/// Pause of accepting after a resource error (no file descriptors, no memory): long enough
/// not to spin on a listener that stays readable, short enough that the port stays usable.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);
/// The longest the loop sleeps, whatever the deadlines.
const MAX_SLEEP: Duration = Duration::from_secs(1);
/// How often rejected connections are summarised in one warning.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// A running server; [`HttpServer::stop`] (or dropping it) ends its thread.
pub struct HttpServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    waker: UnixStream,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds `listen` (an IPv6 wildcard also accepts IPv4; when IPv6 is unavailable the IPv4
    /// wildcard is used instead) and starts the server thread with the default limits.
    pub fn start(listen: SocketAddr, shared: Arc<Shared>) -> io::Result<HttpServer> {
        HttpServer::start_with(listen, shared, Limits::default())
    }

    /// [`HttpServer::start`] with other limits.
    pub fn start_with(
        listen: SocketAddr,
        shared: Arc<Shared>,
        limits: Limits,
    ) -> io::Result<HttpServer> {
        let listener = bind(listen).or_else(|e| {
            if listen.ip() == Ipv6Addr::UNSPECIFIED {
                log::warn!("cannot listen on {listen} ({e}); trying IPv4 only");
                bind(SocketAddr::from(([0, 0, 0, 0], listen.port())))
            } else {
                Err(e)
            }
        })?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (waker, wake_rx) = UnixStream::pair()?;
        waker.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::Builder::new()
                .name("http".into())
                .spawn(move || serve(&listener, &wake_rx, &stop, &shared, &limits))?
        };
        Ok(HttpServer {
            addr,
            shared,
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// The server's counters.
    pub fn stats(&self) -> &Stats {
        self.shared.stats()
    }

    /// Closes the listener and every connection and waits for the thread (a few ms).
    pub fn stop(self) {}
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = (&self.waker).write(&[1]);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        // Serve IPv4 too, whatever net.ipv6.bindv6only says.
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// The server thread: one poll loop until `stop`.
fn serve(
    listener: &TcpListener,
    wake_rx: &UnixStream,
    stop: &AtomicBool,
    shared: &Shared,
    limits: &Limits,
) {
    let ctx = Ctx { shared, limits };
    let stats = shared.stats();
    let max = limits.max_connections.max(1);
    let mut conns: Vec<Conn> = Vec::with_capacity(max);
    let mut set = PollSet::default();
    let mut accept_paused_until: Option<Instant> = None;
    let mut summary = Summary::new(Instant::now(), stats);
    let mut accepted: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        conns.retain_mut(|c| c.deadline() > now || c.on_deadline(now, &ctx) == Next::Keep);
        if accept_paused_until.is_some_and(|t| t <= now) {
            accept_paused_until = None;
        }
        summary.tick(now, stats);
        stats.set_open(conns.len());

        set.clear();
        set.push(wake_rx, POLLIN);
        let accepting = accept_paused_until.is_none();
        if accepting {
            set.push(listener, POLLIN);
        } else {
            set.push_ignored();
        }
        for c in &conns {
            set.push(c.stream(), c.interest());
        }
        let wake_at = conns
            .iter()
            .map(Conn::deadline)
            .chain(accept_paused_until)
            .fold(now + MAX_SLEEP, Instant::min);
        if let Err(e) = set.wait(wake_at.saturating_duration_since(now)) {
            log::warn!("http: poll failed: {e}");
            std::thread::sleep(ACCEPT_BACKOFF);
            continue;
        }
        if set.revents(0) != 0 {
            let _ = (&*wake_rx).read(&mut [0u8; 64]);
        }

        let now = Instant::now();
        let mut slot = 2;
        conns.retain_mut(|c| {
            let revents = set.revents(slot);
            slot += 1;
            revents == 0 || c.on_ready(now, &ctx) == Next::Keep
        });
        if accepting && set.revents(1) != 0 {
            accept_paused_until =
                accept_pending(listener, &mut conns, max, &mut accepted, now, &ctx);
        }
    }
}

/// Accepts pending connections (up to [`accepts_per_turn`]); returns when to accept again
/// after a resource error.
fn accept_pending(
    listener: &TcpListener,
    conns: &mut Vec<Conn>,
    max: usize,
    accepted: &mut u64,
    now: Instant,
    ctx: &Ctx<'_>,
) -> Option<Instant> {
    let stats = ctx.shared.stats();
    for _ in 0..accepts_per_turn(max) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if let Err(e) = stream.set_nonblocking(true) {
                    stats.rejected(Reason::AcceptError);
                    log::debug!("http: {peer}: closing (accept-error: {e})");
                    continue;
                }
                let _ = stream.set_nodelay(true);
                if conns.len() >= max {
                    evict_one(conns, now, ctx);
                }
                *accepted = accepted.wrapping_add(1);
                let mut c = Conn::new(stream, peer, *accepted, now, ctx.limits);
                // The request is usually there already: answering it now means a client is
                // served even when a flood of connections would evict it before its turn.
                if c.on_ready(now, ctx) == Next::Keep {
                    conns.push(c);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                stats.rejected(Reason::AcceptError);
                log::debug!("http: accept failed: {e}");
                if accept_error_backs_off(&e) {
                    return Some(now + ACCEPT_BACKOFF);
                }
            }
        }
    }
    None
}

/// Closes the connection that matters least (see [`Conn::eviction_order`]).
fn evict_one(conns: &mut Vec<Conn>, now: Instant, ctx: &Ctx<'_>) {
    let victim = conns
        .iter()
        .enumerate()
        .min_by_key(|(_, c)| c.eviction_order(now))
        .map(|(i, _)| i);
    if let Some(i) = victim {
        conns.swap_remove(i).evict(ctx);
    }
}

/// Whether an accept error means "pause accepting" rather than "go on with the next one".
/// Errors of one pending connection (aborted, or network errors the kernel passes on, which
/// accept(2) says to treat like EAGAIN) go on; running out of descriptors or memory, and
/// anything unexpected, pause so a listener that stays readable cannot make the loop spin.
pub fn accept_error_backs_off(e: &io::Error) -> bool {
    !matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNABORTED
                | libc::EPROTO
                | libc::EPERM
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
                | libc::ETIMEDOUT
                | libc::ECONNRESET
        )
    )
}

/// One warning a minute at most that sums up the connections closed early, so logs stay
/// bounded under attack (each one is a debug line).
struct Summary {
    since: Instant,
    counts: [u64; Reason::ALL.len()],
}

impl Summary {
    fn new(now: Instant, stats: &Stats) -> Summary {
        Summary {
            since: now,
            counts: stats.rejection_counts(),
        }
    }

    fn tick(&mut self, now: Instant, stats: &Stats) {
        if now.saturating_duration_since(self.since) < SUMMARY_EVERY {
            return;
        }
        let counts = stats.rejection_counts();
        let parts: Vec<String> = Reason::ALL
            .iter()
            .zip(counts.iter().zip(self.counts.iter()))
            .filter_map(|(r, (now, before))| {
                let n = now.saturating_sub(*before);
                (n > 0).then(|| format!("{} {n}", r.as_str()))
            })
            .collect();
        if !parts.is_empty() {
            log::warn!(
                "http: connections closed early in the last {} s: {}",
                now.saturating_duration_since(self.since).as_secs(),
                parts.join(", ")
            );
        }
        *self = Summary { since: now, counts };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_errors_pause_accepting_and_connection_errors_do_not() {
        for errno in [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
            libc::ENOMEM,
            libc::EBADF,
        ] {
            assert!(accept_error_backs_off(&io::Error::from_raw_os_error(errno)));
        }
        for errno in [
            libc::ECONNABORTED,
            libc::EPROTO,
            libc::EPERM,
            libc::ENETUNREACH,
        ] {
            assert!(!accept_error_backs_off(&io::Error::from_raw_os_error(
                errno
            )));
        }
        assert!(accept_error_backs_off(&io::Error::other("no errno")));
    }

    #[test]
    fn default_limits_keep_prometheus_connections_between_scrapes() {
        let l = Limits::default();
        assert_eq!(l.max_connections, 128);
        assert!(l.idle_timeout > Duration::from_secs(60));
        assert!(l.head_timeout <= Duration::from_secs(5));
    }
}
