//! Runs one round: the plan's pings and DNS checks concurrently, then assembles the
//! [`RoundReport`]. The I/O happens here; deciding what to check is `plan`, turning results
//! into checks is the pure `*_check` functions below.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use crate::dns;
use crate::icmp::{PingResult, Prober};
use crate::plan::{DnsCheck, PingTarget, Plan};
use crate::report::{self, Check, CheckKind, RoundReport};

/// Who is running the round, and the previous round to compare with.
pub struct Context<'a> {
    pub node: &'a str,
    pub pod: &'a str,
    pub prober: &'a Prober,
    pub dns_timeout: Duration,
    pub previous: Option<&'a RoundReport>,
    pub api_error: Option<String>,
    /// Age of the snapshot the plan came from (see [`RoundReport::snapshot_age_seconds`]).
    pub snapshot_age: Duration,
}

/// Runs every check of `plan` at once and returns the report.
pub fn run(plan: &Plan, ctx: &Context<'_>) -> RoundReport {
    let started = SystemTime::now();
    let clock = Instant::now();
    let addresses: Vec<IpAddr> = plan.pings.iter().map(|t| t.address).collect();
    // A thread that cannot be started (the process or cgroup is out of threads) fails the
    // checks it was for, with the reason; it must not abort the agent.
    let (pings, dns_checks) = std::thread::scope(|s| {
        let pings = std::thread::Builder::new()
            .name("round-icmp".into())
            .spawn_scoped(s, || ctx.prober.probe(&addresses));
        let dns: Vec<_> = plan
            .dns
            .iter()
            .map(|d| {
                std::thread::Builder::new()
                    .name("round-dns".into())
                    .spawn_scoped(s, move || dns_check(d, ctx.dns_timeout))
            })
            .collect();
        let dns: Vec<Check> = dns
            .into_iter()
            .zip(&plan.dns)
            .map(|(h, d)| match h {
                Ok(h) => h.join().unwrap_or_else(|_| failed_dns(d, "internal error")),
                Err(e) => failed_dns(d, &format!("cannot start a thread: {e}")),
            })
            .collect();
        let pings = pings
            .map_err(|e| format!("cannot start the probe thread: {e}"))
            .and_then(|h| h.join().map_err(|_| "internal error".to_string()));
        (pings, dns)
    });
    let mut checks: Vec<Check> = dns_checks;
    for (i, target) in plan.pings.iter().enumerate() {
        checks.push(match pings.as_ref().map(|p| p.get(i)) {
            Ok(Some(r)) => ping_check(target, r),
            Ok(None) => ping_missing(target),
            Err(why) => ping_failed(target, why),
        });
    }
    checks.extend(plan.static_checks.iter().cloned());
    assemble(ctx, started, clock.elapsed(), checks)
}

/// Builds the report from finished checks (pure).
pub fn assemble(
    ctx: &Context<'_>,
    started: SystemTime,
    took: Duration,
    checks: Vec<Check>,
) -> RoundReport {
    let changes = match ctx.previous {
        Some(prev) => report::diff(&prev.checks, &checks),
        None => Vec::new(),
    };
    RoundReport {
        node: ctx.node.to_string(),
        pod: ctx.pod.to_string(),
        started_at: crate::timefmt::rfc3339(started),
        duration_seconds: took.as_secs_f64(),
        errors: checks.iter().filter(|c| !c.ok).count(),
        checks,
        changes,
        first_round: ctx.previous.is_none(),
        api_error: ctx.api_error.clone(),
        snapshot_age_seconds: ctx.snapshot_age.as_secs_f64(),
    }
}

/// A ping target's check from the prober's result (pure).
pub fn ping_check(t: &PingTarget, r: &PingResult) -> Check {
    let error = r.error.as_deref().unwrap_or("no reply");
    let failed = ping_failed(t, error);
    let check = match (r.ok(), r.rtt_avg()) {
        (true, Some(rtt)) => failed.passed(rtt.as_secs_f64()),
        (true, None) => Check {
            ok: true,
            error: None,
            ..failed
        },
        (false, _) => failed,
    };
    Check {
        sent: r.sent,
        received: r.received,
        ..check
    }
}

fn ping_failed(t: &PingTarget, error: &str) -> Check {
    Check::failed(
        t.kind,
        &t.target_node,
        &t.target,
        &t.address.to_string(),
        error,
    )
}

fn ping_missing(t: &PingTarget) -> Check {
    ping_failed(t, "prober returned no result")
}

fn dns_check(d: &DnsCheck, timeout: Duration) -> Check {
    let start = Instant::now();
    let result = match d {
        DnsCheck::Forward { name } => dns::system_forward(name, timeout).map(|ips| {
            ips.iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(",")
        }),
        // Absolute, as the original shell script printed it: `kube-dns.kube-system.svc.cluster.local.`
        DnsCheck::Reverse { ip, .. } => dns::system_reverse(*ip, timeout).map(|name| {
            if name.ends_with('.') {
                name
            } else {
                name + "."
            }
        }),
        DnsCheck::Instance { ip, name, .. } => {
            let qtype = if ip.is_ipv4() {
                dns::QType::A
            } else {
                dns::QType::Aaaa
            };
            dns::query(SocketAddr::new(*ip, 53), name, qtype, timeout).map(|a| a.join(","))
        }
    };
    let rtt = start.elapsed();
    match result {
        Ok(answer) => Check {
            answer,
            ..failed_dns(d, "").passed(rtt.as_secs_f64())
        },
        Err(e) => failed_dns(d, &e.to_string()),
    }
}

/// The check for a DNS target, failed with `error`.
fn failed_dns(d: &DnsCheck, error: &str) -> Check {
    let (kind, target_node, target, address) = match d {
        DnsCheck::Forward { name } => (CheckKind::DnsService, "", name.as_str(), String::new()),
        DnsCheck::Reverse {
            ip,
            target,
            target_node,
        } => (
            CheckKind::DnsReverse,
            target_node.as_str(),
            target.as_str(),
            ip.to_string(),
        ),
        DnsCheck::Instance {
            ip,
            target,
            target_node,
            ..
        } => (
            CheckKind::DnsInstance,
            target_node.as_str(),
            target.as_str(),
            ip.to_string(),
        ),
    };
    Check::failed(kind, target_node, target, &address, error)
}
