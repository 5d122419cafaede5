# shellcheck shell=bash
# The architectures the image is built for, by Docker's name: the Rust target, how `file`
# names the ELF machine, and the qemu binfmt handler that runs it on another machine.
# Sourced by build-release.sh, build-image.sh, check-image.sh and push-image.sh.

# Every architecture `make image` builds by default (ARCHS in the Makefile).
# shellcheck disable=SC2034
ALL_ARCHS=(amd64 arm64)

rust_target() {
  case $1 in
    amd64) echo x86_64-unknown-linux-musl ;;
    arm64) echo aarch64-unknown-linux-musl ;;
    *) echo "unknown architecture '$1' (known: ${ALL_ARCHS[*]})" >&2; return 1 ;;
  esac
}

# What `file -b` says about a binary for this architecture.
elf_machine() {
  case $1 in
    amd64) echo "x86-64" ;;
    arm64) echo "ARM aarch64" ;;
    *) rust_target "$1" ;;
  esac
}

# The binfmt_misc entry (under /proc/sys/fs/binfmt_misc) that runs it on another machine.
qemu_binfmt() {
  case $1 in
    amd64) echo qemu-x86_64 ;;
    arm64) echo qemu-aarch64 ;;
    *) rust_target "$1" ;;
  esac
}

# This machine's architecture, by Docker's name.
native_arch() {
  case $(uname -m) in
    x86_64) echo amd64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) uname -m ;;
  esac
}
