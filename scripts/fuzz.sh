#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of untrusted bytes with AFL++ (`cargo afl`, which
# works on the stable toolchain). Installs cargo-afl and builds AFL++ into FUZZ_TOOLS when
# missing, builds the harnesses of fuzz/, runs each target for FUZZ_SECONDS (FUZZ_JOBS at a
# time), prints executions, coverage, crashes and hangs per target, copies every crash or
# hang into fuzz/regressions/<target>/ (which `cargo test --test fuzz_regressions` replays)
# and exits 1 when there was one.
#
#   FUZZ_SECONDS  fuzzing time per target (default 60)
#   FUZZ_TARGETS  targets to run (default: all wired targets)
#   FUZZ_JOBS     targets fuzzed at once (default: the number of CPUs)
#   FUZZ_PROFILE  cargo profile of the harnesses: release (default), or fuzz-ci (builds in
#                 about half the time; what `make fuzz-short` uses)
#   FUZZ_TOOLS    where cargo-afl and AFL++ live (default: a per-user cache, so CI clones on
#                 the same machine share them)
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-$(nproc)}
profile=${FUZZ_PROFILE:-release}
targets=${FUZZ_TARGETS:-icmp_v4 icmp_v6 icmp_raw_v4 icmp_errqueue dns_reply api_objects status_body resolv_conf cli http_head peer_summary proc_routes}
afl_version=0.18.2
tools=${FUZZ_TOOLS:-${XDG_CACHE_HOME:-${HOME:-$root/target}/.cache}/k8s-network-test-daemonset/fuzz-tools-$afl_version}
out=$root/target/fuzz/out
start=$SECONDS

# AFL++ is built from source: it needs a C compiler and make.
if ! command -v cc >/dev/null || ! command -v make >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "fuzz: needs gcc and make (apt-get install build-essential)" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends build-essential >/dev/null
fi

export PATH=$tools/bin:$PATH
export XDG_DATA_HOME=$tools/share
if [ "$(cargo-afl afl --version 2>/dev/null | awk '{print $2}')" != "$afl_version" ]; then
  echo "fuzz: installing cargo-afl $afl_version into $tools"
  cargo install --quiet --locked --debug --force --version "$afl_version" --root "$tools" cargo-afl
fi
rustc_version=$(rustc --version | awk '{print $2}')
if ! compgen -G "$XDG_DATA_HOME/afl.rs/rustc-$rustc_version-*/afl.rs-$afl_version/afl/bin/afl-fuzz" >/dev/null; then
  echo "fuzz: building AFL++ (runtime only, no LLVM plugins)"
  MAKEFLAGS=-j$(nproc) cargo afl config --build --force
fi
echo "fuzz: tools ready after $((SECONDS - start))s"

(cd fuzz && cargo afl build --locked --quiet --profile "$profile" --target-dir "$root/target/fuzz" --bins)
bin_dir=$root/target/fuzz/$profile
echo "fuzz: harnesses built after $((SECONDS - start))s; fuzzing ${seconds}s per target, $jobs at a time"

json_dict=$(compgen -G "$XDG_DATA_HOME/afl.rs/AFLplusplus/dictionaries/json.dict" || true)

# Runs one target; AFL++'s own log goes to $out/<target>.log.
fuzz_one() {
  local t=$1 dict=()
  case $t in api_objects | status_body) [ -n "$json_dict" ] && dict=(-x "$json_dict") ;; esac
  rm -rf "${out:?}/$t"
  mkdir -p "$out/$t"
  # Containers have no CPU frequency governor or core pattern to tune; no curses UI in logs.
  AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
    AFL_NO_UI=1 AFL_FAST_CAL=1 AFL_IGNORE_SEED_PROBLEMS=1 \
    cargo afl fuzz -i "fuzz/corpus/$t" -o "$out/$t" -V "$seconds" -t 2000 "${dict[@]}" \
    -- "$bin_dir/$t" >"$out/$t.log" 2>&1 || echo "fuzz: afl-fuzz for $t exited with $? (see $out/$t.log)" >&2
}

running=0
for t in $targets; do
  [ -x "$bin_dir/$t" ] || { echo "fuzz: no harness $t" >&2; exit 2; }
  fuzz_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

stat() { sed -n "s/^$2 *: *//p" "$out/$1/default/fuzzer_stats" 2>/dev/null | head -n 1; }
findings=0
printf '%-14s %12s %9s %8s %12s %8s %6s\n' target execs execs/s corpus edges crashes hangs
for t in $targets; do
  if [ ! -f "$out/$t/default/fuzzer_stats" ]; then
    printf '%-14s did not run: see %s\n' "$t" "$out/$t.log"
    findings=$((findings + 1))
    continue
  fi
  printf '%-14s %12s %9s %8s %12s %8s %6s\n' "$t" "$(stat "$t" execs_done)" \
    "$(stat "$t" execs_per_sec | cut -d. -f1)" "$(stat "$t" corpus_count)" \
    "$(stat "$t" edges_found)/$(stat "$t" total_edges)" "$(stat "$t" saved_crashes)" "$(stat "$t" saved_hangs)"
  for kind in crashes hangs; do
    for f in "$out/$t/default/$kind"/id:*; do
      [ -f "$f" ] || continue
      mkdir -p "fuzz/regressions/$t"
      case $kind in crashes) what=crash ;; *) what=hang ;; esac
      dest="fuzz/regressions/$t/$what-$(sha1sum "$f" | cut -c1-16)"
      cp "$f" "$dest"
      echo "fuzz: $t: $kind input saved as $dest"
      findings=$((findings + 1))
    done
  done
done
echo "fuzz: done in $((SECONDS - start))s"
if [ "$findings" -gt 0 ]; then
  echo "fuzz: $findings finding(s); reproduce with: cargo test --test fuzz_regressions" >&2
  exit 1
fi
