//! The binary: everything is in the library; see `k8s_network_test_daemonset::run`.

fn main() {
    std::process::exit(k8s_network_test_daemonset::run());
}
