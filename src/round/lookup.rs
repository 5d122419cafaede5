//! The DNS executor: one DNS probe, timed, as what the check measured.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::dns;
use crate::plan::Probe;
use crate::report::{Measured, Outcome, Reason};

/// Runs one DNS probe with `timeout`: passed with the time it took and the answer (addresses
/// joined by `,`, or the absolute name), or failed with the error's reason and message.
pub fn measure(probe: &Probe, timeout: Duration) -> Measured {
    let start = Instant::now();
    let result = match probe {
        Probe::SystemForward { name } => dns::system_forward(name, timeout).map(|ips| {
            ips.iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(",")
        }),
        // Absolute, as the original shell script printed it: `kube-dns.kube-system.svc.cluster.local.`
        Probe::SystemReverse { ip } => dns::system_reverse(*ip, timeout).map(|name| {
            if name.ends_with('.') {
                name
            } else {
                name + "."
            }
        }),
        Probe::DnsQuery {
            server,
            name,
            qtype,
        } => dns::query(*server, name, *qtype, timeout).map(|a| a.join(",")),
        Probe::Echo { .. }
        | Probe::EchoMtu { .. }
        | Probe::Known(_)
        | Probe::Done(_)
        | Probe::Connect { .. } => return Measured::failed(Reason::Internal, "not a DNS probe"),
    };
    let rtt = start.elapsed();
    match result {
        Ok(answer) => Measured {
            answer,
            rtt_seconds: Some(rtt.as_secs_f64()),
            ..Measured::of(Outcome::Passed)
        },
        Err(e) => Measured::failed(e.reason(), e.to_string()),
    }
}
