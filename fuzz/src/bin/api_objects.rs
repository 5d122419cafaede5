//! AFL++ harness for `fuzz_targets::api_objects`.
fn main() {
    afl::fuzz!(|data: &[u8]| k8s_network_test_daemonset::fuzz_targets::api_objects(data));
}
