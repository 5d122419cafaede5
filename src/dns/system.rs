//! Lookups through the system resolver (getaddrinfo/getnameinfo via dns-lookup), which is what
//! every pod uses: it reads /etc/resolv.conf and talks to the DNS service IP.
//!
//! libc lookups cannot be cancelled and their own timeout comes from resolv.conf (5 s x 2
//! attempts by default, longer with several nameservers, unbounded with a broken NSS module).
//! So each lookup runs on a helper thread and the caller waits only `timeout`. A timed-out
//! thread stays blocked in libc until libc gives up; at most [`MAX_STUCK_LOOKUPS`] may be in
//! flight, so a hung resolver costs a bounded number of threads instead of one per check per
//! round, and further lookups fail at once with [`DnsError::Busy`] (a true failure report: the
//! resolver is stuck) until the stuck ones return.

use super::DnsError;
use dns_lookup::{getaddrinfo, getnameinfo, AddrInfoHints, LookupError, LookupErrorKind};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How many system-resolver lookups may be in flight (running or stuck) at once.
pub const MAX_STUCK_LOOKUPS: usize = 16;

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Releases a slot when the helper thread ends, however it ends.
struct Slot;

impl Drop for Slot {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

fn take_slot() -> Option<Slot> {
    IN_FLIGHT
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < MAX_STUCK_LOOKUPS).then_some(n + 1)
        })
        .ok()
        .map(|_| Slot)
}

/// Runs `lookup` on a helper thread and waits at most `timeout` for it.
fn with_timeout<T: Send + 'static>(
    timeout: Duration,
    lookup: impl FnOnce() -> Result<T, DnsError> + Send + 'static,
) -> Result<T, DnsError> {
    let slot = take_slot().ok_or(DnsError::Busy)?;
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("dns-lookup".into())
        .spawn(move || {
            let _slot = slot;
            let _ = tx.send(lookup());
        })
        .map_err(|e| DnsError::Resolver(format!("cannot start lookup thread: {e}")))?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(DnsError::Timeout(timeout)),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(DnsError::Resolver("lookup thread died".into()))
        }
    }
}

/// Forward lookup of `name` (give it a trailing dot so search-list expansion does not apply)
/// through the system resolver; addresses in the resolver's order, without duplicates.
pub fn system_forward(name: &str, timeout: Duration) -> Result<Vec<IpAddr>, DnsError> {
    let name = name.to_string();
    with_timeout(timeout, move || {
        let hints = AddrInfoHints {
            // One entry per address rather than one per socket type.
            socktype: libc::SOCK_STREAM,
            ..AddrInfoHints::default()
        };
        let mut out: Vec<IpAddr> = Vec::new();
        for info in getaddrinfo(Some(&name), None, Some(hints)).map_err(lookup_error)? {
            let info = info.map_err(|e| DnsError::Resolver(e.to_string().to_lowercase()))?;
            let ip = info.sockaddr.ip();
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
        if out.is_empty() {
            return Err(DnsError::NoAnswer);
        }
        Ok(out)
    })
}

/// Reverse lookup of `ip` through the system resolver. `NI_NAMEREQD` makes a missing PTR
/// record an error instead of the address echoed back as text, which would look like success.
pub fn system_reverse(ip: IpAddr, timeout: Duration) -> Result<String, DnsError> {
    with_timeout(timeout, move || {
        let (host, _service) =
            getnameinfo(&SocketAddr::new(ip, 0), libc::NI_NAMEREQD).map_err(lookup_error)?;
        Ok(host)
    })
}

fn lookup_error(e: LookupError) -> DnsError {
    match e.kind() {
        LookupErrorKind::NoName => DnsError::NxDomain,
        LookupErrorKind::NoData => DnsError::NoAnswer,
        LookupErrorKind::Again => {
            DnsError::Resolver("temporary failure (no server answered, or SERVFAIL)".into())
        }
        LookupErrorKind::Fail => DnsError::Resolver("non-recoverable failure".into()),
        _ => DnsError::Resolver(std::io::Error::from(e).to_string().to_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// The slot counter is process-wide: tests that use it take turns.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn slots_are_bounded_and_released() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let held: Vec<Slot> = std::iter::from_fn(take_slot).take(1000).collect();
        assert!(held.len() <= MAX_STUCK_LOOKUPS);
        assert!(matches!(
            with_timeout(Duration::from_millis(1), || Ok(())),
            Err(DnsError::Busy)
        ));
        drop(held);
        assert_eq!(with_timeout(Duration::from_secs(30), || Ok(7)), Ok(7));
    }

    #[test]
    fn slow_lookup_times_out() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let got = with_timeout(Duration::from_millis(10), || {
            std::thread::sleep(Duration::from_millis(300));
            Ok(())
        });
        assert_eq!(got, Err(DnsError::Timeout(Duration::from_millis(10))));
    }

    #[test]
    fn numeric_names_resolve_without_dns() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let got = system_forward("198.18.32.7", Duration::from_secs(30)).unwrap();
        assert_eq!(got, vec!["198.18.32.7".parse::<IpAddr>().unwrap()]);
    }
}
