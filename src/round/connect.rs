//! The TCP executor's half that is pure: a handshake's result becomes what the check measured.

use std::collections::HashSet;

use crate::report::{Check, CheckKind, Measured, Outcome, Reason};
use crate::tcp::Connected;

/// Passed with the handshake's time, or failed with its reason and message.
pub fn measured(r: &Connected) -> Measured {
    match r {
        Ok(took) => Measured {
            rtt_seconds: Some(took.as_secs_f64()),
            ..Measured::of(Outcome::Passed)
        },
        Err(f) => Measured::failed(f.reason, f.message.clone()),
    }
}

/// Re-reads failed `pod-ping` checks of pods whose `pod-tcp` check to the same address
/// passed: ICMP filtered on the way (reason `icmp-filtered`), not a dead pod (pure). A
/// `pod-mtu` check of such a pod that timed out too is read the same way (a `pod-mtu`
/// failure beside a passing `pod-ping` stays an MTU problem).
pub fn mark_icmp_filtered(checks: &mut [Check]) {
    let keys = |kind: CheckKind, pick: fn(&Check) -> bool| -> HashSet<(String, String)> {
        checks
            .iter()
            .filter(|c| c.kind == kind && pick(c))
            .map(|c| (c.target.clone(), c.address.clone()))
            .collect()
    };
    let tcp_ok = keys(CheckKind::PodTcp, Check::is_ok);
    let ping_failed = keys(CheckKind::PodPing, Check::is_failed);
    for c in checks.iter_mut() {
        let key = (c.target.clone(), c.address.clone());
        let filtered = tcp_ok.contains(&key)
            && match c.kind {
                CheckKind::PodPing => true,
                CheckKind::PodMtu => {
                    ping_failed.contains(&key) && c.outcome.reason() == Some(Reason::Timeout)
                }
                _ => false,
            };
        if !filtered {
            continue;
        }
        if let Outcome::Failed { reason, message } = &mut c.outcome {
            if *reason != Reason::IcmpFiltered {
                *message = format!("{message}; TCP to the pod passes: ICMP is filtered");
                *reason = Reason::IcmpFiltered;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CheckKey;
    use crate::tcp::Failure;
    use std::time::Duration;

    #[test]
    fn a_handshake_passes_with_its_time_and_a_failure_keeps_reason_and_message() {
        let ok = measured(&Ok(Duration::from_millis(3)));
        assert_eq!((ok.outcome, ok.rtt_seconds), (Outcome::Passed, Some(0.003)));
        let refused = measured(&Err(Failure {
            reason: Reason::Refused,
            message: "connect failed: connection refused".into(),
        }));
        assert_eq!(
            refused.outcome,
            Outcome::failed(Reason::Refused, "connect failed: connection refused")
        );
        assert_eq!(refused.rtt_seconds, None);
    }

    #[test]
    fn a_failed_ping_of_a_pod_that_answers_tcp_reads_as_icmp_filtered() {
        let check = |kind, target: &str, m: Measured| {
            Check::new(CheckKey::new(kind, "n2", target, "198.18.0.2"), m)
        };
        let lost = || Measured::failed(Reason::Timeout, "no reply within 1s");
        let ok = || measured(&Ok(Duration::from_millis(1)));
        let mut checks = vec![
            check(CheckKind::PodPing, "a2", lost()),
            check(CheckKind::PodTcp, "a2", ok()),
            check(CheckKind::PodMtu, "a2", lost()),
            check(CheckKind::PodPing, "a3", lost()),
            check(CheckKind::PodTcp, "a3", lost()),
            check(CheckKind::HostPing, "n2", lost()),
            // A large echo lost while the small one passes: an MTU problem, not a filter.
            check(CheckKind::PodPing, "a4", ok()),
            check(CheckKind::PodTcp, "a4", ok()),
            check(CheckKind::PodMtu, "a4", lost()),
        ];
        mark_icmp_filtered(&mut checks);
        let got: Vec<Option<Reason>> = checks.iter().map(|c| c.outcome.reason()).collect();
        assert_eq!(
            got,
            [
                Some(Reason::IcmpFiltered),
                None,
                Some(Reason::IcmpFiltered),
                Some(Reason::Timeout),
                Some(Reason::Timeout),
                Some(Reason::Timeout),
                None,
                None,
                Some(Reason::Timeout),
            ]
        );
        assert_eq!(
            checks[0].outcome.message(),
            Some("no reply within 1s; TCP to the pod passes: ICMP is filtered")
        );
    }
}
