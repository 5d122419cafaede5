//! Entry point: parse the command line, run the agent or a subcommand, map errors to exit codes.

fn main() {
    std::process::exit(k8s_network_test_daemonset::app::main_exit_code());
}
