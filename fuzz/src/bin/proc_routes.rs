//! AFL++ harness for `fuzz_targets::proc_routes`.
fn main() {
    afl::fuzz!(|data: &[u8]| k8s_network_test_daemonset::fuzz_targets::proc_routes(data));
}
