//! The `ping` subcommand: the scratch image has no shell and no ping binary, so this is how an
//! operator checks a path with `kubectl exec`. Exit 0 when every target answered, 1 when some
//! did not, 2 on usage or socket errors.

use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;

use crate::cli::{self, Flag, FlagDefault as D, Parsed};
use crate::config::{duration_flag, number_flag, value, ConfigError, MAX_PPS};
use crate::icmp::MAX_PAYLOAD;
use crate::icmp::{PingResult, ProbeOptions, Prober, SocketKind};

const USAGE: &str = "k8s-network-test-daemonset ping [OPTIONS] TARGET...";
const ABOUT: &str = "Send ICMP echo requests to every TARGET (IP address or name) at once and print one line per target.";

/// Flags of `ping`; the one place their defaults are written.
#[rustfmt::skip]
pub const FLAGS: &[Flag] = &[
    Flag { name: "timeout", env: "NETTEST_TIMEOUT", value: Some("DUR"), default: D::Value("1s"), help: "How long each request waits for its reply" },
    Flag { name: "count", env: "NETTEST_COUNT", value: Some("N"), default: D::Value("1"), help: "Echo requests per target (more than one gives loss and min/avg/max)" },
    Flag { name: "size", env: "NETTEST_SIZE", value: Some("BYTES"), default: D::Value("56"), help: "Payload bytes per request" },
    // Not NETTEST_INTERVAL: that is the agent's round interval, and `kubectl exec` inherits
    // the agent's environment.
    Flag { name: "interval", env: "NETTEST_PING_INTERVAL", value: Some("DUR"), default: D::Value("100ms"), help: "Gap between requests to the same target when --count > 1" },
    Flag { name: "socket", env: "NETTEST_ICMP_SOCKET", value: Some("KIND"), default: D::Value("auto"), help: "auto (ping socket, else raw), dgram, or raw" },
    Flag { name: "max-pps", env: "NETTEST_MAX_PPS", value: Some("N"), default: D::Value("0"), help: "At most N requests sent per second (0: no ceiling)" },
];

/// Prints `ping: <message>` to stderr; a closed stderr is ignored (`eprintln!` would panic).
fn usage_error(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "ping: {message}");
}

/// Runs `ping` with its arguments (without the subcommand name); returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            usage_error(&e.to_string());
            2
        }
    }
}

fn run(args: Vec<String>) -> Result<i32, super::StartError> {
    let args =
        match cli::parse(FLAGS, args, |k| std::env::var(k).ok()).map_err(ConfigError::from)? {
            Parsed::Help => {
                crate::cmd::print_block(&cli::help(USAGE, ABOUT, FLAGS));
                return Ok(0);
            }
            Parsed::Version => {
                crate::cmd::print_block(&super::version_line());
                return Ok(0);
            }
            Parsed::Run(a) => a,
        };
    let opts = options(&args)?;
    let targets = resolve(&args.positional)?;
    let prober = Prober::open(&opts)?;
    let results = prober.probe(&targets);
    for r in &results {
        crate::cmd::print_block(&(format_line(r) + "\n"));
    }
    Ok(if results.iter().all(PingResult::ok) {
        0
    } else {
        1
    })
}

/// Builds the probe options from the parsed flags.
fn options(args: &cli::Args) -> Result<ProbeOptions, ConfigError> {
    let o = ProbeOptions {
        timeout: duration_flag(args, "timeout")?,
        interval: duration_flag(args, "interval")?,
        count: u32::try_from(number_flag(args, "count", 1, 10_000)?).unwrap_or(1),
        size: usize::try_from(number_flag(args, "size", 0, MAX_PAYLOAD as u64)?).unwrap_or(0),
        kind: SocketKind::parse(value(args, "socket")?)
            .map_err(|e| ConfigError::invalid("socket", e))?,
        max_pps: u32::try_from(number_flag(args, "max-pps", 0, MAX_PPS)?).unwrap_or(0),
        pmtu_probe: false,
    };
    o.validate().map_err(ConfigError::Usage)?;
    Ok(o)
}

/// Turns each argument into an address: IP literals as they are, names through the system
/// resolver (first address returned).
fn resolve(args: &[String]) -> Result<Vec<IpAddr>, ConfigError> {
    if args.is_empty() {
        return Err(ConfigError::Usage(
            "no targets (give one or more IP addresses or names; see --help)".into(),
        ));
    }
    args.iter()
        .map(|a| {
            if let Ok(ip) = a.parse::<IpAddr>() {
                return Ok(ip);
            }
            (a.as_str(), 0)
                .to_socket_addrs()
                .ok()
                .and_then(|mut it| it.next())
                .map(|sa| sa.ip())
                .ok_or_else(|| {
                    ConfigError::Usage(format!(
                        "cannot resolve target {a:?} (give an IP address or a name that resolves)"
                    ))
                })
        })
        .collect()
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// One output line: address, sent/received, RTT (min/avg/max and loss when count > 1), error.
pub fn format_line(r: &PingResult) -> String {
    let mut line = format!("{:<39} {}/{} received", r.target, r.received, r.sent);
    if r.sent > 1 {
        line.push_str(&format!(", {:.1}% loss", r.loss_ratio() * 100.0));
    }
    match (r.rtt_min(), r.rtt_avg(), r.rtt_max()) {
        (Some(min), Some(avg), Some(max)) if r.sent > 1 => {
            line.push_str(&format!(
                ", rtt min/avg/max {}/{}/{} ms",
                ms(min),
                ms(avg),
                ms(max)
            ));
        }
        (Some(min), _, _) => line.push_str(&format!(", rtt {} ms", ms(min))),
        _ => {}
    }
    if let Some(e) = &r.error {
        line.push_str(&format!(", {e}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ProbeOptions, String> {
        match cli::parse(FLAGS, args.iter().map(|s| s.to_string()), |_| None) {
            Ok(Parsed::Run(a)) => options(&a).map_err(|e| e.to_string()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_flag_table_and_the_readme_agree() {
        crate::config::check_flags_against_readme(FLAGS, "`ping` subcommand");
        let o = parse(&[]).unwrap();
        let doc = crate::config::readme_defaults("`ping` subcommand");
        let lit = |f: &str| doc[f].split('`').nth(1).unwrap().to_string();
        assert_eq!(o.timeout, crate::duration::parse(&lit("timeout")).unwrap());
        assert_eq!(
            o.interval,
            crate::duration::parse(&lit("interval")).unwrap()
        );
        assert_eq!(o.count.to_string(), lit("count"));
        assert_eq!(o.size.to_string(), lit("size"));
        assert_eq!(o.kind, SocketKind::parse(&lit("socket")).unwrap());
    }

    #[test]
    fn flags_become_options() {
        let o = parse(&[
            "--timeout",
            "250ms",
            "--count=3",
            "--size",
            "1400",
            "--socket",
            "raw",
        ])
        .unwrap();
        assert_eq!(o.timeout, Duration::from_millis(250));
        assert_eq!((o.count, o.size, o.kind), (3, 1400, SocketKind::Raw));
        assert_eq!(parse(&[]).unwrap().count, 1);
    }

    #[test]
    fn bad_flags_name_the_flag() {
        assert!(parse(&["--count", "x"]).unwrap_err().starts_with("--count"));
        assert!(parse(&["--count", "0"]).unwrap_err().contains("count"));
        assert!(parse(&["--timeout", "soon"])
            .unwrap_err()
            .starts_with("--timeout"));
        assert!(parse(&["--size", "-1"]).unwrap_err().starts_with("--size"));
        assert!(parse(&["--socket", "tcp"])
            .unwrap_err()
            .starts_with("--socket"));
    }

    #[test]
    fn targets_resolve_or_explain() {
        let t = resolve(&["198.18.16.2".into(), "2001:db8:16::2".into()]).unwrap();
        assert_eq!(t.len(), 2);
        assert!(resolve(&[]).unwrap_err().to_string().contains("no targets"));
    }

    #[test]
    fn lines_show_counts_rtts_and_errors() {
        let ok = PingResult {
            target: "198.18.16.2".parse().unwrap(),
            sent: 1,
            received: 1,
            rtts: vec![Duration::from_micros(1234)],
            error: None,
            reason: None,
        };
        let l = format_line(&ok);
        assert!(l.starts_with("198.18.16.2 "));
        assert!(l.ends_with("1/1 received, rtt 1.234 ms"), "{l}");
        let multi = PingResult {
            sent: 4,
            received: 2,
            rtts: vec![Duration::from_millis(1), Duration::from_millis(3)],
            ..ok.clone()
        };
        assert!(format_line(&multi)
            .ends_with("2/4 received, 50.0% loss, rtt min/avg/max 1.000/2.000/3.000 ms"));
        let dead = PingResult {
            received: 0,
            rtts: vec![],
            error: Some("no reply within 1s".into()),
            reason: Some(crate::reason::Reason::Timeout),
            ..ok
        };
        assert!(format_line(&dead).ends_with("0/1 received, no reply within 1s"));
    }
}
