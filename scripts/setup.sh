#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian machine; fast when all is there.
# Cross-building arm64: clang compiles ring's C for aarch64 without a target sysroot, and
# rust-lld (shipped with Rust) links. Testing it: qemu-user-static runs the arm64 binary and
# image, docker-registry is the registry the push test starts on loopback. Debian packages come
# from the distribution's release, the Rust targets with the pinned toolchain.
set -euo pipefail

debs=(musl-tools clang file dnsmasq-base fping iproute2 iptables prometheus procps qemu-user-static docker-registry chromium)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if command -v rustup >/dev/null; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
  for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    rustup target list --installed | grep -qx "$t" || rustup target add "$t"
  done
fi

# Run arm64 binaries and images through qemu: register Debian's binfmt handler (the F flag
# loads the interpreter now, so it works inside containers too). Without systemd nothing else
# does; without root or binfmt_misc this says so, and the tests that need it fail in CI.
binfmt=/proc/sys/fs/binfmt_misc
conf=/usr/lib/binfmt.d/qemu-aarch64.conf
if [[ -e $binfmt/qemu-aarch64 ]] && ! grep -qx enabled "$binfmt/qemu-aarch64" && [[ $(id -u) -eq 0 ]]; then
  echo 1 >"$binfmt/qemu-aarch64" && echo "setup: enabled the qemu-aarch64 binfmt handler"
elif [[ $(uname -m) != aarch64 && ! -e $binfmt/qemu-aarch64 && -f $conf ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: no binfmt handler for arm64 binaries; as root: cat $conf > $binfmt/register" >&2
  else
    [[ -e $binfmt/register ]] || mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null || true
    if cat "$conf" >"$binfmt/register" 2>/dev/null; then
      echo "setup: registered qemu-aarch64 for arm64 binaries ($binfmt/qemu-aarch64)"
    else
      echo "setup: cannot register the qemu-aarch64 binfmt handler (no binfmt_misc here?)" >&2
    fi
  fi
fi
