//! AFL++ harness for `fuzz_targets::peer_summary`.
fn main() {
    afl::fuzz!(|data: &[u8]| k8s_network_test_daemonset::fuzz_targets::peer_summary(data));
}
