//! AFL++ harness for `fuzz_targets::icmp_v6`.
fn main() {
    afl::fuzz!(|data: &[u8]| k8s_network_test_daemonset::fuzz_targets::icmp_v6(data));
}
