//! AFL++ harness for `fuzz_targets::icmp_errqueue`.
fn main() {
    afl::fuzz!(|data: &[u8]| k8s_network_test_daemonset::fuzz_targets::icmp_errqueue(data));
}
