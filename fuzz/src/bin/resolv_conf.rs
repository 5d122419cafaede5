//! AFL++ harness for `fuzz_targets::resolv_conf`.
fn main() {
    afl::fuzz!(|data: &[u8]| k8s_network_test_daemonset::fuzz_targets::resolv_conf(data));
}
