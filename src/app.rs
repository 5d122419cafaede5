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
    let _ = env_logger::Builder::from_env(env)
        .format_timestamp_secs()
        .try_init();
}
