//! AFL++ harness for `fuzz_targets::dns_reply`.
fn main() {
    afl::fuzz!(|data: &[u8]| k8s_network_test_daemonset::fuzz_targets::dns_reply(data));
}
