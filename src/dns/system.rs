//! Lookups through the system resolver (getaddrinfo/getnameinfo via dns-lookup), which is what
//! every pod uses: it reads /etc/resolv.conf and talks to the DNS service IP.
//!
//! libc lookups cannot be cancelled and their own timeout comes from resolv.conf (5 s x 2
//! attempts by default, longer with several nameservers, unbounded with a broken NSS module).
//! So each lookup runs on a helper thread and the caller waits only `timeout`. A lookup whose
//! caller gave up counts as stuck until libc returns; while [`MAX_STUCK_LOOKUPS`] are stuck,
//! new lookups fail at once with [`DnsError::Busy`] (a true failure report: the resolver is
//! stuck), so a hung resolver costs a bounded number of threads instead of one per check per
//! round. Lookups that answer in time never count, however many run at once.

use super::DnsError;
use dns_lookup::{getaddrinfo, getnameinfo, AddrInfoHints, LookupError, LookupErrorKind};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// How many abandoned (timed-out, still blocked in libc) lookups may exist at once.
pub const MAX_STUCK_LOOKUPS: usize = 16;

static STUCK: AtomicUsize = AtomicUsize::new(0);

const RUNNING: u8 = 0;
const FINISHED: u8 = 1;
const ABANDONED: u8 = 2;

/// Runs `lookup` on a helper thread and waits at most `timeout` for it.
fn with_timeout<T: Send + 'static>(
    timeout: Duration,
    lookup: impl FnOnce() -> Result<T, DnsError> + Send + 'static,
) -> Result<T, DnsError> {
    if STUCK.load(Ordering::SeqCst) >= MAX_STUCK_LOOKUPS {
        return Err(DnsError::Busy);
    }
    // Whoever moves the state away from RUNNING first decides how the lookup is counted.
    let state = Arc::new(AtomicU8::new(RUNNING));
    let (tx, rx) = mpsc::sync_channel(1);
    let theirs = state.clone();
    std::thread::Builder::new()
        .name("dns-lookup".into())
        .spawn(move || {
            let _ = tx.send(lookup());
            let finished =
                theirs.compare_exchange(RUNNING, FINISHED, Ordering::SeqCst, Ordering::SeqCst);
            if finished.is_err() {
                // The caller gave up and counted this lookup as stuck: it is not any more.
                STUCK.fetch_sub(1, Ordering::SeqCst);
            }
        })
        .map_err(|e| DnsError::NoThread(e.to_string()))?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // Count first, so the helper's decrement can never come before the increment.
            STUCK.fetch_add(1, Ordering::SeqCst);
            let abandoned =
                state.compare_exchange(RUNNING, ABANDONED, Ordering::SeqCst, Ordering::SeqCst);
            if abandoned.is_err() {
                STUCK.fetch_sub(1, Ordering::SeqCst); // it finished just now after all
            }
            Err(DnsError::Timeout(timeout))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(DnsError::ThreadDied),
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
    fn many_quick_lookups_at_once_are_fine_and_stuck_ones_are_bounded() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        // Another test's abandoned lookup may still be finishing.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while STUCK.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Healthy lookups in flight together never count against the limit.
        let quick: Vec<_> = (0..3 * MAX_STUCK_LOOKUPS)
            .map(|i| {
                std::thread::spawn(move || {
                    with_timeout(Duration::from_secs(30), move || {
                        std::thread::sleep(Duration::from_millis(50));
                        Ok(i)
                    })
                })
            })
            .collect();
        for (i, h) in quick.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), Ok(i));
        }
        // Lookups that hang: each abandoned one counts until it returns.
        let release = Arc::new(std::sync::Barrier::new(MAX_STUCK_LOOKUPS + 1));
        for _ in 0..MAX_STUCK_LOOKUPS {
            let release = release.clone();
            let got = with_timeout(Duration::from_millis(5), move || {
                release.wait();
                Ok(())
            });
            assert_eq!(got, Err(DnsError::Timeout(Duration::from_millis(5))));
        }
        assert_eq!(
            with_timeout(Duration::from_secs(1), || Ok(1)),
            Err(DnsError::Busy)
        );
        release.wait();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while STUCK.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
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
