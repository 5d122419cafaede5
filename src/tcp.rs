//! TCP handshakes to many addresses at once (the `pod-tcp` check): non-blocking connects on
//! one thread, watched with `poll(2)`, at most [`MAX_IN_FLIGHT`] at a time, each closed as
//! soon as it is established (no request is sent). A thread per target would cost a stack
//! per peer; one poll loop costs a descriptor per connect in flight.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::http::poll::{PollSet, POLLOUT};
use crate::report::Reason;

/// Connects in flight at once: bounds the descriptors a round holds (the HTTP server keeps
/// its own budget) while a 5000-node round still finishes in a few timeouts at worst.
pub const MAX_IN_FLIGHT: usize = 128;

/// Why a handshake failed: the reason and a short message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: Reason,
    pub message: String,
}

/// One handshake's result: the time it took, or why it failed.
pub type Connected = Result<Duration, Failure>;

/// Times a handshake with every address, each within `timeout` of its own start; one result
/// per address, in order.
pub fn connect_all(addrs: &[SocketAddr], timeout: Duration) -> Vec<Connected> {
    let mut results: Vec<Option<Connected>> = vec![None; addrs.len()];
    // (index, socket, start) of the connects in flight.
    let mut flight: Vec<(usize, Socket, Instant)> = Vec::new();
    let mut next = 0;
    let mut polls = PollSet::default();
    loop {
        while flight.len() < MAX_IN_FLIGHT {
            let Some(addr) = addrs.get(next) else { break };
            let started = Instant::now();
            match start(addr) {
                Ok(Some(socket)) => flight.push((next, socket, started)),
                Ok(None) => put(&mut results, next, Ok(started.elapsed())),
                Err(e) => put(&mut results, next, Err(failure(&e))),
            }
            next += 1;
        }
        if flight.is_empty() {
            break;
        }
        let now = Instant::now();
        let wait = flight
            .iter()
            .map(|(_, _, started)| (*started + timeout).saturating_duration_since(now))
            .min()
            .unwrap_or_default();
        polls.clear();
        for (_, socket, _) in &flight {
            polls.push(socket, POLLOUT);
        }
        if let Err(e) = polls.wait(wait) {
            // Cannot watch them (ENOMEM): every connect in flight fails the same way.
            for (i, _, _) in flight.drain(..) {
                put(&mut results, i, Err(failure(&e)));
            }
            continue;
        }
        let now = Instant::now();
        let mut slot = 0;
        flight.retain(|(i, socket, started)| {
            let ready = polls.revents(slot) != 0;
            slot += 1;
            let outcome = if ready {
                match socket.take_error() {
                    Ok(None) => Some(Ok(now.saturating_duration_since(*started))),
                    Ok(Some(e)) | Err(e) => Some(Err(failure(&e))),
                }
            } else if now >= *started + timeout {
                Some(Err(Failure {
                    reason: Reason::Timeout,
                    message: format!("no handshake within {}", crate::duration::format(timeout)),
                }))
            } else {
                None
            };
            match outcome {
                Some(r) => {
                    put(&mut results, *i, r);
                    false
                }
                None => true,
            }
        });
    }
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(Failure {
                    reason: Reason::Internal,
                    message: "no result".into(),
                })
            })
        })
        .collect()
}

/// Starts a non-blocking connect: the socket while it is in progress, `None` when it
/// completed at once (a local address).
fn start(addr: &SocketAddr) -> io::Result<Option<Socket>> {
    let socket = Socket::new(
        Domain::for_address(*addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    match socket.connect(&SockAddr::from(*addr)) {
        Ok(()) => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(Some(socket)),
        Err(e) => Err(e),
    }
}

fn put(results: &mut [Option<Connected>], i: usize, r: Connected) {
    if let Some(slot) = results.get_mut(i) {
        *slot = Some(r);
    }
}

fn failure(e: &io::Error) -> Failure {
    let errno = e.raw_os_error().unwrap_or(0);
    Failure {
        reason: errno_reason(errno),
        message: format!("connect failed: {}", crate::icmp::short_error(e)),
    }
}

/// The reason of a failed connect from its errno: a reset is `refused` (the pod is there,
/// nothing listens), an ICMP error or no route `unreachable`, the kernel giving up on
/// retransmitted SYNs `timeout`, a local firewall `not-permitted`.
pub fn errno_reason(errno: i32) -> Reason {
    match errno {
        libc::ECONNREFUSED => Reason::Refused,
        libc::ETIMEDOUT => Reason::Timeout,
        libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EHOSTDOWN | libc::ENONET => {
            Reason::Unreachable
        }
        libc::EPERM | libc::EACCES => Reason::NotPermitted,
        libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM => Reason::NoSocket,
        _ => Reason::SendError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn errnos_map_to_reasons() {
        assert_eq!(errno_reason(libc::ECONNREFUSED), Reason::Refused);
        assert_eq!(errno_reason(libc::ETIMEDOUT), Reason::Timeout);
        assert_eq!(errno_reason(libc::EHOSTUNREACH), Reason::Unreachable);
        assert_eq!(errno_reason(libc::EPERM), Reason::NotPermitted);
        assert_eq!(errno_reason(libc::EMFILE), Reason::NoSocket);
        assert_eq!(errno_reason(libc::EINVAL), Reason::SendError);
    }

    #[test]
    fn a_listener_answers_and_a_closed_port_refuses() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        // A port that was bound and released: nothing listens there now.
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let accepting = std::thread::spawn(move || {
            for _ in 0..MAX_IN_FLIGHT + 3 {
                drop(listener.accept().unwrap());
            }
        });
        let many: Vec<SocketAddr> = std::iter::repeat_n(open, MAX_IN_FLIGHT + 3)
            .chain([closed])
            .collect();
        let got = connect_all(&many, Duration::from_secs(30));
        assert_eq!(got.len(), many.len());
        for r in &got[..MAX_IN_FLIGHT + 3] {
            assert!(r.is_ok(), "{r:?}");
        }
        let last = got.last().unwrap().clone().unwrap_err();
        assert_eq!(last.reason, Reason::Refused, "{last:?}");
        assert!(last.message.starts_with("connect failed: "), "{last:?}");
        accepting.join().unwrap();
    }
}
