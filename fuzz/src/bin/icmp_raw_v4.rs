//! AFL++ harness for `fuzz_targets::icmp_raw_v4`.
fn main() {
    afl::fuzz!(|data: &[u8]| k8s_network_test_daemonset::fuzz_targets::icmp_raw_v4(data));
}
