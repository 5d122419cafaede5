//! Runs one round: the plan's checks go to one executor per probe family, the families run
//! concurrently, and the results come back in plan order to build the [`RoundReport`].
//!
//! - ICMP: every echo of the round in one [`Executors::echo`] call on its own thread (all in
//!   flight together, one socket per address family); see `echo`.
//! - DNS: each probe on a thread of its own, all at once; see `lookup`.
//! - Large echoes (`pod-mtu`): all in one [`Executors::echo_mtu`] call on a thread of its
//!   own, on don't-fragment sockets of their own (so they run beside the small echoes).
//! - TCP: every handshake of the round in one [`Executors::connect`] call on its own thread
//!   (non-blocking connects watched by one poll loop); see `connect` and `crate::tcp`.
//! - Known: decided by the plan, nothing to probe; done: measured before the round (the
//!   `api` check, by discovery).
//!
//! A thread that cannot be started (the process or cgroup is out of threads) fails the checks
//! it was for, with the reason `no-thread`; it never aborts the agent.

mod connect;
mod echo;
mod lookup;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use crate::icmp::Prober;
use crate::plan::{Plan, Probe};
use crate::report::{Check, Measured, Reason, RoundReport};

/// Who is running the round, and the previous round to compare with.
pub struct Context<'a> {
    pub node: &'a str,
    pub pod: &'a str,
    pub previous: Option<&'a RoundReport>,
    pub api_error: Option<String>,
    /// Age of the snapshot the plan came from (see [`RoundReport::snapshot_age_seconds`]).
    pub snapshot_age: Duration,
}

/// The batch executors of the probe families; the agent uses [`Live`], tests may use fakes.
pub trait Executors: Sync {
    /// Every echo of the round at once: one result per address, in order.
    fn echo(&self, addrs: &[IpAddr]) -> Vec<Measured>;
    /// One DNS probe; called for every DNS probe of the round at once, each on its own thread.
    fn dns(&self, probe: &Probe) -> Measured;
    /// Every TCP handshake of the round at once: one result per address, in order.
    fn connect(&self, addrs: &[SocketAddr]) -> Vec<Measured>;
    /// Every `pod-mtu` echo of the round at once (don't fragment, as large as the MTU
    /// allows): one result per address, in order. Fakes answer them as echoes.
    fn echo_mtu(&self, addrs: &[IpAddr]) -> Vec<Measured> {
        self.echo(addrs)
    }
}

/// The real executors: the ICMP prober and the DNS code.
pub struct Live<'a> {
    pub prober: &'a Prober,
    pub dns_timeout: Duration,
    /// A handshake's limit (`--timeout`, as an echo's).
    pub tcp_timeout: Duration,
    /// The don't-fragment prober and the MTU its echoes fill (`pod-mtu`), when planned.
    pub mtu: Option<(&'a Prober, u32)>,
}

impl Executors for Live<'_> {
    fn echo(&self, addrs: &[IpAddr]) -> Vec<Measured> {
        self.prober
            .probe(addrs)
            .iter()
            .map(echo::measured)
            .collect()
    }

    fn dns(&self, probe: &Probe) -> Measured {
        lookup::measure(probe, self.dns_timeout)
    }

    fn connect(&self, addrs: &[SocketAddr]) -> Vec<Measured> {
        crate::tcp::connect_all(addrs, self.tcp_timeout)
            .iter()
            .map(connect::measured)
            .collect()
    }

    /// One call per address family (the payload that fills the MTU differs), IPv4 first.
    fn echo_mtu(&self, addrs: &[IpAddr]) -> Vec<Measured> {
        let Some((prober, mtu)) = self.mtu else {
            return vec![internal("no pod-mtu prober"); addrs.len()];
        };
        let mut out: Vec<Option<Measured>> = vec![None; addrs.len()];
        for ipv6 in [false, true] {
            let (index, family): (Vec<usize>, Vec<IpAddr>) = addrs
                .iter()
                .enumerate()
                .filter(|(_, a)| a.is_ipv6() == ipv6)
                .map(|(i, a)| (i, *a))
                .unzip();
            if family.is_empty() {
                continue;
            }
            let results = prober.probe_sized(&family, crate::mtu::payload(mtu, ipv6));
            for (i, r) in index.into_iter().zip(results) {
                set(&mut out, i, echo::mtu_measured(&r, mtu));
            }
        }
        out.into_iter()
            .map(|m| m.unwrap_or_else(|| internal("prober returned no result")))
            .collect()
    }
}

/// Runs every check of `plan` and returns the report.
pub fn run(plan: &Plan, ctx: &Context<'_>, exec: &dyn Executors) -> RoundReport {
    let started = SystemTime::now();
    let clock = Instant::now();
    let mut results: Vec<Option<Measured>> = vec![None; plan.checks.len()];
    let mut echoes: Vec<(usize, IpAddr)> = Vec::new();
    let mut lookups: Vec<(usize, &Probe)> = Vec::new();
    let mut connects: Vec<(usize, SocketAddr)> = Vec::new();
    let mut large: Vec<(usize, IpAddr)> = Vec::new();
    for (i, planned) in plan.checks.iter().enumerate() {
        match &planned.probe {
            Probe::Echo { addr } => echoes.push((i, *addr)),
            Probe::Known(outcome) => set(&mut results, i, Measured::of(outcome.clone())),
            Probe::Done(m) => set(&mut results, i, m.clone()),
            Probe::Connect { addr } => connects.push((i, *addr)),
            Probe::EchoMtu { addr } => large.push((i, *addr)),
            dns @ (Probe::SystemForward { .. }
            | Probe::SystemReverse { .. }
            | Probe::DnsQuery { .. }) => lookups.push((i, dns)),
        }
    }
    let addrs: Vec<IpAddr> = echoes.iter().map(|(_, a)| *a).collect();
    let tcp_addrs: Vec<SocketAddr> = connects.iter().map(|(_, a)| *a).collect();
    let large_addrs: Vec<IpAddr> = large.iter().map(|(_, a)| *a).collect();
    let (echoed, looked_up, connected, large_echoed) = std::thread::scope(|s| {
        let icmp = (!addrs.is_empty()).then(|| {
            std::thread::Builder::new()
                .name("round-icmp".into())
                .spawn_scoped(s, || exec.echo(&addrs))
        });
        let tcp = (!tcp_addrs.is_empty()).then(|| {
            std::thread::Builder::new()
                .name("round-tcp".into())
                .spawn_scoped(s, || exec.connect(&tcp_addrs))
        });
        let mtu = (!large_addrs.is_empty()).then(|| {
            std::thread::Builder::new()
                .name("round-mtu".into())
                .spawn_scoped(s, || exec.echo_mtu(&large_addrs))
        });
        let dns: Vec<_> = lookups
            .iter()
            .map(|(_, probe)| {
                std::thread::Builder::new()
                    .name("round-dns".into())
                    .spawn_scoped(s, move || exec.dns(probe))
            })
            .collect();
        let dns: Vec<Measured> = dns
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().unwrap_or_else(|_| internal("internal error")),
                Err(e) => Measured::failed(Reason::NoThread, format!("cannot start a thread: {e}")),
            })
            .collect();
        let batch = |h: Option<
            std::io::Result<std::thread::ScopedJoinHandle<'_, Vec<Measured>>>,
        >| match h {
            None => Ok(Vec::new()),
            Some(Ok(h)) => h.join().map_err(|_| internal("internal error")),
            Some(Err(e)) => Err(Measured::failed(
                Reason::NoThread,
                format!("cannot start the probe thread: {e}"),
            )),
        };
        (batch(icmp), dns, batch(tcp), batch(mtu))
    });
    place(&mut results, &echoes, echoed);
    place(&mut results, &connects, connected);
    place(&mut results, &large, large_echoed);
    for ((i, _), m) in lookups.iter().zip(looked_up) {
        set(&mut results, *i, m);
    }
    let mut checks: Vec<Check> = plan
        .checks
        .iter()
        .zip(results)
        .map(|(p, m)| Check::new(p.key.clone(), m.unwrap_or_else(|| internal("no result"))))
        .collect();
    connect::mark_icmp_filtered(&mut checks);
    assemble(ctx, started, clock.elapsed(), checks)
}

/// Puts a batch executor's results (one per check, in order) in the checks' slots; a batch
/// that failed as a whole fails each of its checks.
fn place<T>(
    results: &mut [Option<Measured>],
    checks: &[(usize, T)],
    batch: Result<Vec<Measured>, Measured>,
) {
    match batch {
        Ok(all) => {
            let mut all = all.into_iter();
            for (i, _) in checks {
                let m = all
                    .next()
                    .unwrap_or_else(|| internal("prober returned no result"));
                set(results, *i, m);
            }
        }
        Err(failed) => {
            for (i, _) in checks {
                set(results, *i, failed.clone());
            }
        }
    }
}

fn set(results: &mut [Option<Measured>], i: usize, m: Measured) {
    if let Some(slot) = results.get_mut(i) {
        *slot = Some(m);
    }
}

fn internal(message: &str) -> Measured {
    Measured::failed(Reason::Internal, message)
}

/// Builds the report from finished checks (pure).
pub fn assemble(
    ctx: &Context<'_>,
    started: SystemTime,
    took: Duration,
    checks: Vec<Check>,
) -> RoundReport {
    let report = RoundReport::new(ctx.node, ctx.pod, checks);
    let report = match ctx.previous {
        Some(prev) => report.compared_with(&prev.checks),
        None => report,
    };
    RoundReport {
        started_at: crate::timefmt::rfc3339(started),
        duration_seconds: took.as_secs_f64(),
        api_error: ctx.api_error.clone(),
        snapshot_age_seconds: ctx.snapshot_age.as_secs_f64(),
        ..report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CheckKey, CheckKind, Outcome, Status};

    /// Echoes: every address but the last gets an answer. DNS: a reverse lookup panics.
    struct Broken;

    impl Executors for Broken {
        fn echo(&self, addrs: &[IpAddr]) -> Vec<Measured> {
            let answered = addrs.len().saturating_sub(1);
            vec![Measured::of(Outcome::Passed); answered]
        }

        fn dns(&self, probe: &Probe) -> Measured {
            if matches!(probe, Probe::SystemReverse { .. }) {
                panic!("a bug in a DNS probe");
            }
            Measured::of(Outcome::Passed)
        }

        fn connect(&self, addrs: &[SocketAddr]) -> Vec<Measured> {
            vec![Measured::of(Outcome::Passed); addrs.len()]
        }
    }

    #[test]
    fn missing_results_and_panics_fail_their_checks_alone() {
        let key = |kind, target: &str| CheckKey::new(kind, "n1", target, "");
        let echo = |addr: &str| Probe::Echo {
            addr: addr.parse().unwrap(),
        };
        let plan = Plan {
            checks: vec![
                crate::plan::Planned {
                    key: key(CheckKind::DnsReverse, "kube-dns"),
                    probe: Probe::SystemReverse {
                        ip: "198.18.250.10".parse().unwrap(),
                    },
                },
                crate::plan::Planned {
                    key: key(CheckKind::HostPing, "a"),
                    probe: echo("198.18.0.1"),
                },
                crate::plan::Planned {
                    key: key(CheckKind::DnsService, "kube-dns.tst."),
                    probe: Probe::SystemForward {
                        name: "kube-dns.tst.".into(),
                        expect: vec![],
                    },
                },
                crate::plan::Planned {
                    key: key(CheckKind::HostPing, "b"),
                    probe: echo("198.18.0.2"),
                },
            ],
        };
        let ctx = Context {
            node: "n1",
            pod: "agent-1",
            previous: None,
            api_error: None,
            snapshot_age: Duration::ZERO,
        };
        let r = run(&plan, &ctx, &Broken);
        let got: Vec<(&str, Status, Option<Reason>)> = r
            .checks
            .iter()
            .map(|c| (c.target.as_str(), c.status(), c.outcome.reason()))
            .collect();
        assert_eq!(
            got,
            [
                ("kube-dns", Status::Failed, Some(Reason::Internal)),
                ("a", Status::Passed, None),
                ("kube-dns.tst.", Status::Passed, None),
                ("b", Status::Failed, Some(Reason::Internal)),
            ]
        );
        assert_eq!(r.errors, 2);
        assert!(r.first_round && r.changes.is_empty());
    }
}
