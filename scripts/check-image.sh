#!/usr/bin/env bash
# Checks one architecture's agent image as Kubernetes will run it: its platform, small, one
# file, numeric non-root user, the binary as entrypoint, static and for that architecture, and it
# starts with no capabilities on a read-only root. An image for another architecture runs
# through qemu-user-static's binfmt handler (`make setup` registers it); without one that run is
# left out with a note, and in CI (CI set) it is a failure.
# Usage: scripts/check-image.sh IMAGE:VERSION-ARCH ARCH   (make image checks each of ARCHS)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/archs.sh

ref=${1:?usage: check-image.sh IMAGE:VERSION-ARCH ARCH}
arch=${2:?usage: check-image.sh IMAGE:VERSION-ARCH ARCH}
tag=${ref##*:}
version=${tag%-"$arch"}
name=k8s-network-test-daemonset
max_bytes=5000000
fail=0
bad() { echo "check-image: $arch: FAIL: $*" >&2; fail=1; }
ok() { echo "check-image: $arch: ok: $*"; }

docker image inspect "$ref" >/dev/null 2>&1 || { echo "check-image: no image $ref; run make image" >&2; exit 1; }

platform=$(docker image inspect -f '{{.Os}}/{{.Architecture}}' "$ref")
if [[ $platform == "linux/$arch" ]]; then ok "platform $platform"; else bad "platform is $platform, want linux/$arch"; fi

size=$(docker image inspect -f '{{.Size}}' "$ref")
if ((size < max_bytes)); then ok "size $size bytes (< $max_bytes)"; else bad "size $size bytes (limit $max_bytes)"; fi

user=$(docker image inspect -f '{{.Config.User}}' "$ref")
if [[ $user == "65534:65534" ]]; then ok "user $user"; else bad "user is '$user', want 65534:65534"; fi

entrypoint=$(docker image inspect -f '{{json .Config.Entrypoint}}' "$ref")
want_ep="[\"/$name\"]"
if [[ $entrypoint == "$want_ep" ]]; then ok "entrypoint $entrypoint"; else bad "entrypoint is $entrypoint, want $want_ep"; fi

# The saved image: exactly one layer that holds exactly one file, the binary.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
docker save "$ref" | tar -x -C "$tmp"
mapfile -t layers < <(python3 -c 'import json,sys; [print(l) for l in json.load(open(sys.argv[1]))[0]["Layers"]]' "$tmp/manifest.json")
if ((${#layers[@]} == 1)); then
  ok "one layer"
  mapfile -t entries < <(tar -tf "$tmp/${layers[0]}")
  if ((${#entries[@]} == 1)) && [[ ${entries[0]} == "$name" ]]; then
    ok "layer holds only $name"
  else
    bad "layer holds ${#entries[@]} entries: ${entries[*]}"
  fi
  tar -x -C "$tmp" -f "$tmp/${layers[0]}" "$name" 2>/dev/null || true
  if [[ -f $tmp/$name ]]; then
    desc=$(file -b "$tmp/$name")
    case "$desc" in
      *"statically linked"* | *"static-pie linked"*) ok "binary is static" ;;
      *) bad "binary is not static: $desc" ;;
    esac
    if [[ $desc == *"$(elf_machine "$arch")"* ]]; then ok "binary is for $arch ($desc)"; else bad "binary is not for $arch: $desc"; fi
  fi
else
  bad "${#layers[@]} layers, want 1"
fi

# Run it the way the restricted pod does: uid and gid 65534, no capabilities, read-only root,
# the ping sysctl. The gid must be given: `--user 65534` alone runs with gid 0 in an image
# without /etc/passwd, and then the sysctl does not cover it. --network none: nothing is sent.
handler=/proc/sys/fs/binfmt_misc/$(qemu_binfmt "$arch")
if [[ $arch != "$(native_arch)" ]] && ! grep -qx enabled "$handler" 2>/dev/null; then
  msg="not run: this machine is $(native_arch) and has no binfmt handler for $arch ($handler; make setup registers qemu-user-static's)"
  if [[ -n ${CI:-} ]]; then bad "$msg"; else echo "check-image: $arch: $msg"; fi
elif out=$(docker run --rm --platform "linux/$arch" --network none --user 65534:65534 --cap-drop ALL \
  --read-only --security-opt no-new-privileges --sysctl net.ipv4.ping_group_range="65534 65534" \
  "$ref" --version 2>&1); then
  if [[ $out == "$name $version" ]]; then ok "runs restricted: $out"; else bad "--version printed '$out', want '$name $version'"; fi
else
  bad "docker run failed: $out"
fi

exit "$fail"
