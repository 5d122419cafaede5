//! The `ping` subcommand (placeholder until the prober lands).

/// Runs `ping` with its arguments; returns the exit code.
pub fn main(_args: Vec<String>) -> i32 {
    eprintln!("ping: not implemented yet");
    2
}
