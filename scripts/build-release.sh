#!/usr/bin/env bash
# Builds the static musl release binary for each architecture given (default: all), in one cargo
# run so the two targets' crates share the cores, and refuses a binary that is not static or not
# for its architecture. ring (under ureq's rustls) compiles C: for x86_64 with musl-gcc
# (musl-tools), for aarch64 with clang, which ring builds without a target sysroot, linked by
# the rust-lld that ships with Rust. `make setup` installs both.
# Usage: scripts/build-release.sh [ARCH...]   (ARCH: amd64, arm64)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/archs.sh

archs=("$@")
((${#archs[@]})) || archs=("${ALL_ARCHS[@]}")
name=k8s-network-test-daemonset
targets=()
for a in "${archs[@]}"; do targets+=(--target "$(rust_target "$a")"); done

CC_x86_64_unknown_linux_musl=musl-gcc \
  CC_aarch64_unknown_linux_musl=clang \
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld \
  ${CARGO:-cargo} build --release --locked "${targets[@]}" -p "$name"

# A dynamically linked binary would fail in a scratch image only when a pod starts; one for the
# wrong machine with `exec format error`: refuse both here.
fail=0
for a in "${archs[@]}"; do
  bin=target/$(rust_target "$a")/release/$name
  desc=$(file -b "$bin")
  case "$desc" in
    *"statically linked"* | *"static-pie linked"*) ;;
    *) echo "release: $bin is not static ($desc)" >&2; fail=1 ;;
  esac
  [[ $desc == *"$(elf_machine "$a")"* ]] || { echo "release: $bin is not for $a ($desc)" >&2; fail=1; }
  echo "release: $a: $bin: $(stat -c %s "$bin") bytes, $desc"
done
exit "$fail"
