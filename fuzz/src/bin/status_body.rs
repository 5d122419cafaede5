//! AFL++ harness for `fuzz_targets::status_body`.
fn main() {
    afl::fuzz!(|data: &[u8]| k8s_network_test_daemonset::fuzz_targets::status_body(data));
}
