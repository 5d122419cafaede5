//! The entry points of the one binary: logging, subcommand dispatch, exit codes. Exit codes:
//! 0 success, 1 a check failed, 2 configuration or start-up error (with one line saying what
//! to fix).

pub mod agent;
pub mod matrix;
pub mod ping;

use std::fmt;
use std::net::SocketAddr;

use crate::config::ConfigError;

/// Why the agent or `ping` could not start (or, with `--once`, could not run its round).
/// Each is one line that says what to fix; all are exit code 2. The cause is kept.
#[derive(Debug)]
pub enum StartError {
    /// A flag, its environment twin, or something that must be set.
    Config(ConfigError),
    /// The API client cannot be set up (token or CA file).
    Api(crate::kube::Error),
    /// `--once` could not discover any members, so there is no round to run.
    NoRound(crate::kube::Error),
    /// No ICMP socket can be opened.
    Icmp(crate::icmp::OpenError),
    /// The endpoint's address cannot be bound.
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// SIGTERM cannot be handled.
    Signal(std::io::Error),
    /// The round cannot be written as JSON.
    Encode(serde_json::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => e.fmt(f),
            StartError::Api(e) => e.fmt(f),
            StartError::NoRound(e) => write!(f, "cannot run a round: {e}"),
            StartError::Icmp(e) => e.fmt(f),
            StartError::Listen { addr, source } => {
                write!(f, "cannot listen on {addr}: {source} (change --listen)")
            }
            StartError::Signal(e) => write!(f, "cannot handle SIGTERM: {e}"),
            StartError::Encode(e) => write!(f, "cannot encode the round as JSON: {e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Config(e) => Some(e),
            StartError::Api(e) | StartError::NoRound(e) => Some(e),
            StartError::Icmp(e) => Some(e),
            StartError::Listen { source, .. } | StartError::Signal(source) => Some(source),
            StartError::Encode(e) => Some(e),
        }
    }
}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> StartError {
        StartError::Config(e)
    }
}

impl From<crate::kube::Error> for StartError {
    fn from(e: crate::kube::Error) -> StartError {
        StartError::Api(e)
    }
}

impl From<crate::icmp::OpenError> for StartError {
    fn from(e: crate::icmp::OpenError) -> StartError {
        StartError::Icmp(e)
    }
}

impl From<serde_json::Error> for StartError {
    fn from(e: serde_json::Error) -> StartError {
        StartError::Encode(e)
    }
}

/// `k8s-network-test-daemonset <version>` and a newline.
pub fn version_line() -> String {
    format!("k8s-network-test-daemonset {}\n", env!("CARGO_PKG_VERSION"))
}

/// Runs the program with `std::env::args()` and returns the process exit code.
pub fn run() -> i32 {
    init_logging();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ping") => {
            args.remove(0);
            ping::main(args)
        }
        Some("matrix") => {
            args.remove(0);
            matrix::main(args)
        }
        _ => agent::main(args),
    }
}

/// Logs go to stderr, one line per event, `info` unless `RUST_LOG` says otherwise; the round
/// table goes to stdout, so the two never interleave within a line.
fn init_logging() {
    let env = env_logger::Env::default().default_filter_or("info");
    let logger = env_logger::Builder::from_env(env)
        .format_timestamp_secs()
        .build();
    let max = logger.filter();
    if log::set_boxed_logger(Box::new(NoSecrets(logger))).is_ok() {
        log::set_max_level(max);
    }
}

/// The logger, minus the HTTP and TLS libraries' trace output: at `trace` the HTTP library
/// dumps every request head it writes, bearer token included, whatever `RUST_LOG` asks for.
/// Their `debug` lines stay (ureq redacts sensitive headers there).
struct NoSecrets(env_logger::Logger);

impl NoSecrets {
    fn allowed(m: &log::Metadata<'_>) -> bool {
        let t = m.target();
        let library = t.starts_with("ureq") || t.starts_with("rustls");
        !(library && m.level() > log::Level::Debug)
    }
}

impl log::Log for NoSecrets {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        NoSecrets::allowed(m) && self.0.enabled(m)
    }

    fn log(&self, r: &log::Record<'_>) {
        if NoSecrets::allowed(r.metadata()) {
            self.0.log(r);
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
}

/// Writes a block of whole lines to stdout at once. A closed or broken stdout (the log pipe
/// gone) must not end the agent, so errors are ignored; `print!` would panic on them.
pub fn print_block(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
