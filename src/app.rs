//! Subcommand dispatch and logging set-up. Exit codes: 0 success, 1 a check failed,
//! 2 configuration or start-up error (with one line saying what to fix).

/// Runs the program with `std::env::args()` and returns the process exit code.
pub fn main_exit_code() -> i32 {
    init_logging();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ping") => {
            args.remove(0);
            crate::icmp::cmd::main(args)
        }
        _ => crate::agent::main(args),
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
