//! One connection's state machine: waiting for a request, reading its head, writing the
//! response, and draining before the close. Every phase has a deadline and every buffer a
//! fixed size, so a connection holds its slot, an 8 KiB buffer and one response, and not
//! for long.

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::poll::{POLLIN, POLLOUT};
use super::published::Shared;
use super::request::{parse_head, HeadResult, Method, Refusal, HEAD_MAX};
use super::response::{Outgoing, Reply};
use super::routes::route;
use super::stats::{Reason, Status};
use super::Limits;

/// Bytes read and dropped after the last response before closing: closing a socket with
/// unread input resets it, and the reset can destroy the response (a 413 after a client
/// started sending its body) before the client reads it.
const DRAIN_MAX: usize = 64 * 1024;

/// How long a connection that just began a phase is spared by evictions (see
/// [`Conn::eviction_order`]): longer than a request takes to follow the connect in a cluster.
pub const GRACE: Duration = Duration::from_millis(250);

/// What the loop needs besides the connection.
pub struct Ctx<'a> {
    pub shared: &'a Shared,
    pub limits: &'a Limits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for a request's first byte; `fresh` until the first response.
    Idle { fresh: bool },
    /// Part of a request head received.
    Head,
    /// A response being written; no input is read meanwhile (pipelined requests wait).
    Writing,
    /// The last response sent and our side shut down; input is read and dropped until the
    /// peer closes, [`DRAIN_MAX`] or the linger deadline.
    Draining,
}

/// Whether the connection stays in the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Keep,
    Close,
}

/// An accepted connection and where it is in its request/response cycle.
pub struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    /// Received bytes not yet consumed: a partial head, or pipelined requests.
    buf: Box<[u8]>,
    filled: usize,
    phase: Phase,
    /// When the current phase began: the eviction order.
    since: Instant,
    deadline: Instant,
    out: Option<Outgoing>,
    /// Whether the connection stays open after the response being written.
    keep_alive: bool,
    drained: usize,
    /// Accept order, to break ties between connections accepted in the same instant.
    seq: u64,
    /// Counted as rejected already (a connection counts once, under its first reason).
    rejected: bool,
}

impl Conn {
    /// A just-accepted connection: it has `head_timeout` to send a request.
    pub fn new(
        stream: TcpStream,
        peer: SocketAddr,
        seq: u64,
        now: Instant,
        limits: &Limits,
    ) -> Conn {
        Conn {
            stream,
            peer,
            buf: vec![0; HEAD_MAX].into_boxed_slice(),
            filled: 0,
            phase: Phase::Idle { fresh: true },
            since: now,
            deadline: now + limits.head_timeout,
            out: None,
            keep_alive: false,
            drained: 0,
            seq,
            rejected: false,
        }
    }

    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The poll events this connection waits for.
    pub fn interest(&self) -> i16 {
        match self.phase {
            Phase::Writing => POLLOUT,
            _ => POLLIN,
        }
    }

    /// Lower goes first when a slot is needed. A connection that entered its phase within
    /// [`GRACE`] goes last: a client that just connected has not had time to send its
    /// request, and a flood of new connections must not push it out before it could. Then:
    /// draining, the longest idle, the oldest still sending its head, the oldest being
    /// written to.
    pub fn eviction_order(&self, now: Instant) -> (bool, u8, Instant, u64) {
        let recent = now.saturating_duration_since(self.since) < GRACE;
        let rank = match self.phase {
            Phase::Draining => 0,
            Phase::Idle { .. } => 1,
            Phase::Head => 2,
            Phase::Writing => 3,
        };
        (recent && rank > 0, rank, self.since, self.seq)
    }

    /// Closed to make room (the caller drops it); a draining connection had its answer.
    pub fn evict(&mut self, ctx: &Ctx<'_>) {
        if self.phase != Phase::Draining {
            self.reject(ctx, Reason::OverCapacity);
        }
    }

    /// Counts the connection as rejected for `reason` (once) with one debug line.
    pub fn reject(&mut self, ctx: &Ctx<'_>, reason: Reason) {
        if !self.rejected {
            self.rejected = true;
            ctx.shared.stats().rejected(reason);
            log::debug!("http: {}: closing ({})", self.peer, reason.as_str());
        }
    }

    /// The socket is ready (or reported an error): read, parse, answer, write as far as it goes.
    pub fn on_ready(&mut self, now: Instant, ctx: &Ctx<'_>) -> Next {
        match self.phase {
            Phase::Draining => self.drain(),
            Phase::Writing => self.advance(now, ctx),
            Phase::Idle { .. } | Phase::Head => match self.read_some(ctx) {
                Some(next) => next,
                None => self.advance(now, ctx),
            },
        }
    }

    /// The phase's deadline passed.
    pub fn on_deadline(&mut self, now: Instant, ctx: &Ctx<'_>) -> Next {
        match self.phase {
            Phase::Idle { fresh: true } => {
                self.reject(ctx, Reason::HeadTimeout);
                Next::Close
            }
            Phase::Idle { fresh: false } | Phase::Draining => Next::Close,
            Phase::Head => {
                self.reject(ctx, Reason::HeadTimeout);
                self.respond(
                    Reply::refusal(Status::RequestTimeout),
                    true,
                    false,
                    now,
                    ctx,
                );
                self.advance(now, ctx)
            }
            Phase::Writing => {
                self.reject(ctx, Reason::WriteTimeout);
                Next::Close
            }
        }
    }

    /// Reads what is there into the head buffer; `Some` when the connection is done.
    fn read_some(&mut self, ctx: &Ctx<'_>) -> Option<Next> {
        let space = self.buf.get_mut(self.filled..).unwrap_or_default();
        if space.is_empty() {
            // A full buffer is refused by the parser before this; let it say so.
            return None;
        }
        match self.stream.read(space) {
            Ok(0) if self.filled == 0 => Some(Next::Close),
            Ok(0) => {
                self.reject(ctx, Reason::IncompleteHead);
                Some(Next::Close)
            }
            Ok(n) => {
                self.filled = self.filled.saturating_add(n).min(self.buf.len());
                None
            }
            Err(e) if is_transient(&e) => Some(Next::Keep),
            Err(_) => {
                self.reject(ctx, Reason::Reset);
                Some(Next::Close)
            }
        }
    }

    /// Answers buffered requests one at a time, in order, each only once the previous
    /// response is fully written.
    fn advance(&mut self, now: Instant, ctx: &Ctx<'_>) -> Next {
        loop {
            match self.phase {
                Phase::Draining => return Next::Keep,
                Phase::Writing => {
                    let done = match self.out.as_mut() {
                        Some(out) => out.write_to(&mut self.stream),
                        None => Ok(true),
                    };
                    match done {
                        Ok(false) => return Next::Keep,
                        Ok(true) => self.response_written(now, ctx),
                        Err(_) => {
                            self.reject(ctx, Reason::Reset);
                            return Next::Close;
                        }
                    }
                }
                Phase::Idle { .. } | Phase::Head => {
                    if self.filled == 0 {
                        return Next::Keep;
                    }
                    let buffered = self.buf.get(..self.filled).unwrap_or_default();
                    match parse_head(buffered) {
                        HeadResult::Partial => {
                            if self.phase != Phase::Head {
                                self.enter(Phase::Head, now, ctx.limits.head_timeout);
                            }
                            return Next::Keep;
                        }
                        HeadResult::Complete { head, len } => {
                            let pages = ctx.shared.pages();
                            let reply = route(
                                head.method,
                                head.target,
                                &pages,
                                ctx.shared.stats(),
                                ctx.shared.matrix(),
                            );
                            let with_body = head.method != Method::Head;
                            let keep_alive = head.keep_alive && !reply.status.closes();
                            self.consume(len);
                            self.respond(reply, with_body, keep_alive, now, ctx);
                        }
                        HeadResult::Refused(refusal) => {
                            let (status, reason) = match refusal {
                                Refusal::TooLarge => {
                                    (Status::HeaderFieldsTooLarge, Reason::HeadTooLarge)
                                }
                                Refusal::Body => (Status::ContentTooLarge, Reason::Body),
                                Refusal::Version => {
                                    (Status::VersionNotSupported, Reason::BadRequest)
                                }
                                Refusal::Malformed => (Status::BadRequest, Reason::BadRequest),
                            };
                            self.reject(ctx, reason);
                            self.filled = 0;
                            self.respond(Reply::refusal(status), true, false, now, ctx);
                        }
                    }
                }
            }
        }
    }

    fn respond(
        &mut self,
        reply: Reply,
        with_body: bool,
        keep_alive: bool,
        now: Instant,
        ctx: &Ctx<'_>,
    ) {
        ctx.shared.stats().response(reply.status);
        self.out = Some(Outgoing::new(reply, with_body, keep_alive));
        self.keep_alive = keep_alive;
        self.enter(Phase::Writing, now, ctx.limits.write_timeout);
    }

    /// After a response: the next request (buffered or to come), or the close.
    fn response_written(&mut self, now: Instant, ctx: &Ctx<'_>) {
        self.out = None;
        if !self.keep_alive {
            // Our side is done; the peer sees the end of the response.
            let _ = self.stream.shutdown(Shutdown::Write);
            self.enter(Phase::Draining, now, ctx.limits.linger);
        } else if self.filled > 0 {
            self.enter(Phase::Head, now, ctx.limits.head_timeout);
        } else {
            self.enter(Phase::Idle { fresh: false }, now, ctx.limits.idle_timeout);
        }
    }

    fn drain(&mut self) -> Next {
        let mut scratch = [0u8; 4096];
        loop {
            match self.stream.read(&mut scratch) {
                Ok(0) => return Next::Close,
                Ok(n) => {
                    self.drained = self.drained.saturating_add(n);
                    if self.drained >= DRAIN_MAX {
                        return Next::Close;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
                Err(_) => return Next::Close,
            }
        }
    }

    /// Drops the first `len` buffered bytes (a head just answered).
    fn consume(&mut self, len: usize) {
        if len >= self.filled {
            self.filled = 0;
        } else {
            self.buf.copy_within(len..self.filled, 0);
            self.filled -= len;
        }
    }

    fn enter(&mut self, phase: Phase, now: Instant, timeout: Duration) {
        self.phase = phase;
        self.since = now;
        self.deadline = now + timeout;
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}
