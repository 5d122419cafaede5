#!/usr/bin/env bash
# Benchmark: our `ping` subcommand against `fping -i0 -C1` over the same network namespaces and
# the same target list (ALIVE answering + DEAD silent addresses, TIMEOUT_MS timeout).
# Prints wall, CPU (user+sys) and peak RSS of each run, the medians, and the ratios ours/fping.
# CPU comes from getrusage of the waited child (wait4, to the microsecond; /usr/bin/time prints
# only hundredths), peak RSS from GNU time's %M (a child of python would inherit python's RSS).
# Needs root (network namespaces). Builds the release binary itself. Traffic stays inside two
# namespaces it creates, on 198.18.16.0/20 only.
#
# Settings (environment): ALIVE=1000 DEAD=100 TIMEOUT_MS=1000 RUNS=5 KINDS="dgram raw"
set -euo pipefail

ALIVE=${ALIVE:-1000}
DEAD=${DEAD:-100}
TIMEOUT_MS=${TIMEOUT_MS:-1000}
RUNS=${RUNS:-5}
KINDS=${KINDS:-dgram raw}
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "bench-ping: needs root to create network namespaces (run: sudo make bench)" >&2
    exit 2
fi
if [ "$ALIVE" -gt 2040 ] || [ "$DEAD" -gt 250 ]; then
    echo "bench-ping: at most ALIVE=2040 and DEAD=250 (address plan)" >&2
    exit 2
fi
for tool in fping ip python3; do
    command -v "$tool" >/dev/null || { echo "bench-ping: $tool is missing (make setup)" >&2; exit 2; }
done

if [ ! -x /usr/bin/time ]; then
    apt-get install -y -qq time >/dev/null
fi

cargo build --release --locked --quiet
BIN=$PWD/target/release/k8s-network-test-daemonset

P=benchp$$
Q=benchq$$
WORK=$(mktemp -d)
cleanup() {
    ip netns del "$P" 2>/dev/null || true
    ip netns del "$Q" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Prober namespace P, peer Q. Q answers for 198.18.24.0/21 through a local route; the dead
# addresses (198.18.20.x) are routed to Q, which does not forward: silently dropped.
ip netns add "$P"
ip netns add "$Q"
ip link add bp netns "$P" type veth peer name bq netns "$Q"
ip -n "$P" link set lo up
ip -n "$Q" link set lo up
ip -n "$P" addr add 198.18.16.1/24 dev bp
ip -n "$Q" addr add 198.18.16.2/24 dev bq
ip -n "$P" link set bp up
ip -n "$Q" link set bq up
ip -n "$P" route add default via 198.18.16.2
ip -n "$Q" route add local 198.18.24.0/21 dev lo
ip netns exec "$P" sysctl -qw net.ipv4.ping_group_range="0 2147483647"
ip netns exec "$P" fping -q -r 5 -t 200 198.18.16.2

TARGETS=$WORK/targets
python3 - "$ALIVE" "$DEAD" >"$TARGETS" <<'PY'
import ipaddress, sys
alive, dead = int(sys.argv[1]), int(sys.argv[2])
base = int(ipaddress.IPv4Address("198.18.24.1"))
for i in range(alive):
    print(ipaddress.IPv4Address(base + i))
for i in range(dead):
    print(f"198.18.20.{i + 1}")
PY
mapfile -t TLIST <"$TARGETS"

cat >"$WORK/rusage.py" <<'PY'
# rusage.py OUT ERR RSSFILE CMD...: runs CMD (under GNU time for its peak RSS) with
# stdout/stderr to files; prints "wall cpu rss_mb".
import os, sys, time
out, err, rssfile = open(sys.argv[1], "wb"), open(sys.argv[2], "wb"), sys.argv[3]
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    os.execv("/usr/bin/time", ["time", "-f", "%M", "-o", rssfile] + sys.argv[4:])
_, _, ru = os.wait4(pid, 0)
wall = time.monotonic() - t0
rss_kb = int(open(rssfile).read().split()[-1])
print(f"{wall:.3f} {ru.ru_utime + ru.ru_stime:.4f} {rss_kb / 1024:.1f}")
PY

# measure NAME CMD...: runs CMD inside P; prints and appends "wall cpu rss alive".
measure() {
    local name=$1
    shift
    local out=$WORK/out err=$WORK/err wall cpu rss alive
    read -r wall cpu rss < <(ip netns exec "$P" python3 "$WORK/rusage.py" "$out" "$err" "$WORK/rss" "$@")
    case $name in
        fping) alive=$(grep -cE ' : [0-9]' "$err" || true) ;;
        *) alive=$(grep -c ' 1/1 received' "$out" || true) ;;
    esac
    printf '%-12s wall %6.3f s  cpu %7.4f s  rss %5.1f MB  alive %d/%d\n' \
        "$name" "$wall" "$cpu" "$rss" "$alive" "${#TLIST[@]}"
    echo "$wall $cpu $rss $alive" >>"$WORK/$name.runs"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "targets: $ALIVE alive + $DEAD dead, timeout ${TIMEOUT_MS}ms, $RUNS runs each"
echo "kernel $(uname -r), $(nproc) cpus, $(fping -v 2>&1 | head -1)"
NAMES=(fping)
for kind in $KINDS; do NAMES+=("ours-$kind"); done
for _ in $(seq "$RUNS"); do
    measure fping fping -i0 -C1 -q -t"$TIMEOUT_MS" "${TLIST[@]}"
    for kind in $KINDS; do
        measure "ours-$kind" "$BIN" ping --socket "$kind" --timeout "${TIMEOUT_MS}ms" "${TLIST[@]}"
    done
done

echo
echo "median over $RUNS runs:"
declare -A MED
for name in "${NAMES[@]}"; do
    f=$WORK/$name.runs
    w=$(cut -d' ' -f1 "$f" | median)
    c=$(cut -d' ' -f2 "$f" | median)
    r=$(cut -d' ' -f3 "$f" | median)
    a=$(cut -d' ' -f4 "$f" | median)
    MED[$name]="$w $c $r"
    printf '%-12s wall %6.3f s  cpu %7.4f s  rss %5.1f MB  alive %s/%d\n' \
        "$name" "$w" "$c" "$r" "$a" "${#TLIST[@]}"
done
read -r fw fc fr <<<"${MED[fping]}"
for kind in $KINDS; do
    read -r w c r <<<"${MED[ours-$kind]}"
    awk -v n="ours-$kind" -v w="$w" -v c="$c" -v r="$r" -v fw="$fw" -v fc="$fc" -v fr="$fr" \
        'BEGIN { printf "ratio %s/fping: wall %.2fx  cpu %s  rss %.2fx\n", n, w / fw,
                 (fc > 0 ? sprintf("%.2fx", c / fc) : "n/a"), r / fr }'
done
