#!/usr/bin/env bash
# Checks the agent image as Kubernetes will run it: small, one file, numeric non-root user, the
# binary as entrypoint, static, and it starts with no capabilities on a read-only root.
# Usage: scripts/check-image.sh IMAGE:VERSION
set -euo pipefail

ref=${1:?usage: check-image.sh IMAGE:VERSION}
name=k8s-network-test-daemonset
max_bytes=5000000
fail=0
bad() { echo "check-image: FAIL: $*" >&2; fail=1; }
ok() { echo "check-image: ok: $*"; }

docker image inspect "$ref" >/dev/null 2>&1 || { echo "check-image: no image $ref; run make image" >&2; exit 1; }

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
      *"statically linked"* | *"static-pie linked"*) ok "binary is static ($desc)" ;;
      *) bad "binary is not static: $desc" ;;
    esac
  fi
else
  bad "${#layers[@]} layers, want 1"
fi

# Run it the way the restricted pod does: uid and gid 65534, no capabilities, read-only root,
# the ping sysctl. The gid must be given: `--user 65534` alone runs with gid 0 in an image
# without /etc/passwd, and then the sysctl does not cover it. --network none: nothing is sent.
if out=$(docker run --rm --network none --user 65534:65534 --cap-drop ALL --read-only \
  --security-opt no-new-privileges --sysctl net.ipv4.ping_group_range="65534 65534" \
  "$ref" --version 2>&1); then
  want="${ref##*:}"
  if [[ $out == *"$want"* ]]; then ok "runs: $out"; else bad "--version printed '$out', want version $want"; fi
else
  bad "docker run failed: $out"
fi

exit "$fail"
