//! The `matrix` subcommand: the whole-cluster matrix as text, for `kubectl exec`. It asks the
//! agent of its own pod (`/matrix.json` on the agent's port), which builds the matrix from
//! every agent's summary; while that agent refreshes, it asks again, up to `--wait`. Exit 0
//! when every path shown passed and every agent answered, 1 when not, 2 when no matrix could
//! be had.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::cli::{self, Flag, FlagDefault as D, Parsed};
use crate::config::{duration_flag, parse_listen, value, ConfigError};
use crate::matrix::{fetch, text, Matrix};

const USAGE: &str = "k8s-network-test-daemonset matrix [OPTIONS]";
const ABOUT: &str = "Print the whole-cluster matrix (rows: source nodes, columns: target nodes) as the agent in this pod builds it from every agent's last round.";

/// Flags of `matrix`; the one place their defaults are written.
#[rustfmt::skip]
pub const FLAGS: &[Flag] = &[
    Flag { name: "agent", env: "NETTEST_MATRIX_AGENT", value: Some("ADDR:PORT"), default: D::Computed("127.0.0.1 and the port of NETTEST_LISTEN, else 8123"), help: "The agent to ask (the one in this pod)" },
    Flag { name: "wait", env: "NETTEST_MATRIX_WAIT", value: Some("DUR"), default: D::Value("30s"), help: "How long to wait for a fresh matrix while the agent refreshes it" },
    Flag { name: "output", env: "NETTEST_MATRIX_OUTPUT", value: Some("FORMAT"), default: D::Value("text"), help: "text (80 columns) or json (what /matrix.json has)" },
];

/// The largest `/matrix.json` read (a 100 x 100 matrix is about 2 MB).
const MAX_MATRIX: usize = 32 * 1024 * 1024;
/// Between two questions to the agent while it refreshes.
const POLL: Duration = Duration::from_millis(250);

/// `/matrix.json`.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    refreshing: bool,
    #[serde(default)]
    waiting: Option<String>,
    #[serde(default)]
    age_seconds: Option<f64>,
    #[serde(default)]
    matrix: Option<Matrix>,
}

/// Runs `matrix` with its arguments (without the subcommand name); returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "matrix: {e}");
            2
        }
    }
}

fn run(args: Vec<String>) -> Result<i32, String> {
    let env = |k: &str| std::env::var(k).ok();
    let args = match cli::parse(FLAGS, args, env).map_err(|e| e.to_string())? {
        Parsed::Help => {
            super::print_block(&cli::help(USAGE, ABOUT, FLAGS));
            return Ok(0);
        }
        Parsed::Version => {
            super::print_block(&super::version_line());
            return Ok(0);
        }
        Parsed::Run(a) => a,
    };
    if let Some(extra) = args.positional.first() {
        return Err(format!("unexpected argument {extra:?} (see --help)"));
    }
    let agent = match args.get("agent") {
        Some(a) => parse_listen(a).map_err(|e| e.to_string().replace("--listen", "--agent"))?,
        None => default_agent(std::env::var("NETTEST_LISTEN").ok().as_deref()),
    };
    let wait = duration_flag(&args, "wait").map_err(|e| e.to_string())?;
    let json = match value(&args, "output").map_err(|e| e.to_string())? {
        "text" => false,
        "json" => true,
        other => {
            return Err(
                ConfigError::invalid("output", format!("{other:?} is not text or json"))
                    .to_string(),
            )
        }
    };
    let (m, note) = ask(agent, wait)?;
    if json {
        let text = serde_json::to_string_pretty(&m).map_err(|e| e.to_string())?;
        super::print_block(&(text + "\n"));
    } else {
        let mut out = text::render(&m);
        if let Some(n) = note {
            out.push_str(&n);
            out.push('\n');
        }
        super::print_block(&out);
    }
    let failing = m.rows.iter().any(|r| r.failing()) || m.omitted_failing_rows > 0;
    Ok(i32::from(failing))
}

/// The agent's address from its `--listen` (a wildcard means this pod's loopback).
fn default_agent(listen: Option<&str>) -> SocketAddr {
    let parsed = listen.and_then(|l| parse_listen(l).ok());
    match parsed {
        Some(a) if !a.ip().is_unspecified() => a,
        Some(a) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), a.port()),
        None => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8123),
    }
}

/// Asks until the agent has a current matrix, or `wait` passed; then takes what there is
/// (with a note saying how old it is).
fn ask(agent: SocketAddr, wait: Duration) -> Result<(Matrix, Option<String>), String> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = left.clamp(Duration::from_secs(1), Duration::from_secs(10));
        let answer = fetch::get(agent, "/matrix.json", timeout, MAX_MATRIX)
            .map_err(|e| format!("cannot ask the agent at {agent}: {e}"))
            .and_then(|body| {
                serde_json::from_slice::<Answer>(&body)
                    .map_err(|e| format!("the agent at {agent} answered no matrix: {e}"))
            });
        let out_of_time = Instant::now() >= deadline;
        match answer {
            Ok(Answer {
                refreshing: false,
                matrix: Some(m),
                ..
            }) => return Ok((m, None)),
            Ok(Answer {
                matrix: Some(m),
                age_seconds,
                ..
            }) if out_of_time => {
                let age = age_seconds.map_or("?".into(), crate::matrix::page::age);
                return Ok((
                    m,
                    Some(format!(
                        "(still refreshing after {}: this matrix is {age} old)",
                        crate::duration::format(wait)
                    )),
                ));
            }
            Ok(a) if out_of_time => {
                return Err(a.waiting.unwrap_or_else(|| {
                    format!(
                        "no matrix within {} (the agent is still fetching the summaries)",
                        crate::duration::format(wait)
                    )
                }))
            }
            Err(e) if out_of_time => return Err(e),
            _ => std::thread::sleep(POLL.min(left)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_agent_is_this_pods_listen_port_on_loopback() {
        assert_eq!(default_agent(None), "127.0.0.1:8123".parse().unwrap());
        assert_eq!(
            default_agent(Some("[::]:9000")),
            "127.0.0.1:9000".parse().unwrap()
        );
        assert_eq!(
            default_agent(Some(":8200")),
            "127.0.0.1:8200".parse().unwrap()
        );
        assert_eq!(
            default_agent(Some("198.18.0.5:81")),
            "198.18.0.5:81".parse().unwrap()
        );
        assert_eq!(
            default_agent(Some("nonsense")),
            "127.0.0.1:8123".parse().unwrap()
        );
    }

    #[test]
    fn the_flag_table_and_the_readme_agree() {
        crate::config::check_flags_against_readme(FLAGS, "`matrix` subcommand");
    }
}
