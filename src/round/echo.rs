//! The ICMP executor's half that is pure: a prober result becomes what the check measured.

use crate::icmp::PingResult;
use crate::report::{Measured, Outcome, Reason};

/// What one target's echoes measured: passed with the mean RTT when any reply counted, else
/// failed with the prober's reason and message.
pub fn measured(r: &PingResult) -> Measured {
    let outcome = if r.ok() {
        Outcome::Passed
    } else {
        Outcome::failed(
            r.reason.unwrap_or(Reason::Timeout),
            r.error.as_deref().unwrap_or("no reply"),
        )
    };
    Measured {
        rtt_seconds: r.rtt_avg().filter(|_| r.ok()).map(|rtt| rtt.as_secs_f64()),
        outcome,
        sent: r.sent,
        received: r.received,
        answer: String::new(),
    }
}

/// What a `pod-mtu` echo of an `mtu`-byte packet measured: as [`measured`], the failure's
/// message saying how large the echo was.
pub fn mtu_measured(r: &PingResult, mtu: u32) -> Measured {
    let mut m = measured(r);
    if let Outcome::Failed { message, .. } = &mut m.outcome {
        *message = format!("{mtu}-byte don't-fragment echo: {message}");
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn result(received: u32, reason: Option<Reason>, error: Option<&str>) -> PingResult {
        PingResult {
            target: "198.18.0.1".parse().unwrap(),
            sent: 2,
            received,
            rtts: (0..received)
                .map(|i| Duration::from_millis(u64::from(i) + 1))
                .collect(),
            error: error.map(str::to_string),
            reason,
        }
    }

    #[test]
    fn replies_pass_with_the_mean_rtt_and_failures_keep_reason_and_message() {
        let ok = measured(&result(2, None, None));
        assert_eq!(ok.outcome, Outcome::Passed);
        assert_eq!(ok.rtt_seconds, Some(0.0015));
        assert_eq!((ok.sent, ok.received), (2, 2));
        let dead = measured(&result(
            0,
            Some(Reason::Prohibited),
            Some("communication administratively prohibited"),
        ));
        assert_eq!(
            dead.outcome,
            Outcome::failed(
                Reason::Prohibited,
                "communication administratively prohibited"
            )
        );
        assert_eq!((dead.rtt_seconds, dead.sent, dead.received), (None, 2, 0));
    }

    #[test]
    fn a_failed_large_echo_says_its_size() {
        let m = mtu_measured(
            &result(
                0,
                Some(Reason::Mtu),
                Some("fragmentation needed (mtu 1400)"),
            ),
            1500,
        );
        assert_eq!(
            m.outcome,
            Outcome::failed(
                Reason::Mtu,
                "1500-byte don't-fragment echo: fragmentation needed (mtu 1400)"
            )
        );
        assert_eq!(
            mtu_measured(&result(2, None, None), 1500).outcome,
            Outcome::Passed
        );
    }
}
