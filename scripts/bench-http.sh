#!/usr/bin/env bash
# Benchmark: scrape load on an agent that runs rounds in the namespace lab under the manifest's
# CPU limit (200m, a cgroup v1 quota): a baseline phase (10 scrapes/s) and a load phase (wrk
# paced at about RATE requests/s on /prometheus.report), in one run. Prints a Markdown table
# (tools/cluster-box/src/bin/bench_http.rs says what each column is). Needs root; installs wrk.
# Settings (environment): SECONDS_PER_PHASE=60 RATE=1200
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "bench-http: needs root (network namespaces, cgroups; run: sudo make bench)" >&2
    exit 2
fi
if ! command -v wrk >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
bin=target/x86_64-unknown-linux-musl/release/k8s-network-test-daemonset
[ -x "$bin" ] || { echo "bench-http: $bin missing (make release)" >&2; exit 2; }
# The harness runs as a debug build: a release build aborts on panic without tearing the lab down.
cargo run --locked -q -p cluster-box --bin bench_http -- "$bin" "${SECONDS_PER_PHASE:-60}" "${RATE:-1200}"
