//! The DNS executor: one DNS probe, timed, as what the check measured.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::dns;
use crate::plan::Probe;
use crate::report::{Measured, Outcome, Reason};

/// Runs one DNS probe with `timeout`: passed with the time it took and the answer (addresses
/// joined by `,`, or the absolute name), or failed with the error's reason and message, or
/// with `wrong-answer` when a forward answer holds an address it should not.
pub fn measure(probe: &Probe, timeout: Duration) -> Measured {
    let start = Instant::now();
    let (result, expect) = match probe {
        Probe::SystemForward { name, expect } => (
            dns::system_forward(name, timeout)
                .map(|ips| ips.iter().map(IpAddr::to_string).collect::<Vec<_>>()),
            expect.as_slice(),
        ),
        // Absolute, as the original shell script printed it: `kube-dns.kube-system.svc.cluster.local.`
        Probe::SystemReverse { ip } => (
            dns::system_reverse(*ip, timeout).map(|name| {
                if name.ends_with('.') {
                    vec![name]
                } else {
                    vec![name + "."]
                }
            }),
            &[][..],
        ),
        Probe::DnsQuery {
            server,
            name,
            qtype,
            expect,
        } => (
            dns::query(*server, name, *qtype, timeout),
            expect.as_slice(),
        ),
        Probe::Echo { .. }
        | Probe::EchoMtu { .. }
        | Probe::Known(_)
        | Probe::Done(_)
        | Probe::Connect { .. } => return Measured::failed(Reason::Internal, "not a DNS probe"),
    };
    let rtt = start.elapsed();
    match result {
        Ok(answer) => {
            let answer = answer.join(",");
            let outcome = match unexpected(&answer, expect) {
                Some(message) => Outcome::failed(Reason::WrongAnswer, message),
                None => Outcome::Passed,
            };
            Measured {
                answer,
                rtt_seconds: Some(rtt.as_secs_f64()),
                ..Measured::of(outcome)
            }
        }
        Err(e) => Measured::failed(e.reason(), e.to_string()),
    }
}

/// Why a forward answer (addresses joined by `,`) is wrong: an address that is not one of
/// `expect`, the DNS Service's own. `None` when it is right, or when nothing is expected.
fn unexpected(answer: &str, expect: &[IpAddr]) -> Option<String> {
    if expect.is_empty() {
        return None;
    }
    let wrong: Vec<&str> = answer
        .split(',')
        .filter(|a| !a.parse::<IpAddr>().is_ok_and(|ip| expect.contains(&ip)))
        .collect();
    if wrong.is_empty() {
        return None;
    }
    let want: Vec<String> = expect.iter().map(IpAddr::to_string).collect();
    Some(format!(
        "answered {}, not the Service's {}",
        crate::summary::cut(&wrong.join(","), 100),
        want.join(",")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn a_forward_answer_must_hold_only_the_service_addresses() {
        let service = ips(&["198.18.250.10", "2001:db8:250::10"]);
        assert_eq!(unexpected("198.18.250.10", &service), None);
        assert_eq!(unexpected("198.18.250.10,2001:db8:250::10", &service), None);
        assert_eq!(
            unexpected("198.18.250.11", &service).as_deref(),
            Some("answered 198.18.250.11, not the Service's 198.18.250.10,2001:db8:250::10")
        );
        // One stale address among right ones is still wrong.
        assert_eq!(
            unexpected("198.18.250.10,198.18.9.9", &service).as_deref(),
            Some("answered 198.18.9.9, not the Service's 198.18.250.10,2001:db8:250::10")
        );
        // Nothing known: any answer passes (the `kubernetes` Service, a Service not seen yet).
        assert_eq!(unexpected("203.0.113.1", &[]), None);
        // A name where an address belongs is wrong too.
        assert!(unexpected("kube-dns.kube-system.svc.", &service).is_some());
    }
}
