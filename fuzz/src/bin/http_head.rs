//! AFL++ harness for `fuzz_targets::http_head`.
fn main() {
    afl::fuzz!(|data: &[u8]| k8s_network_test_daemonset::fuzz_targets::http_head(data));
}
