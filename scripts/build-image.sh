#!/usr/bin/env bash
# Builds the scratch image from a static musl binary compiled here: no base image, no network.
# Usage: scripts/build-image.sh IMAGE VERSION   (make image passes both)
set -euo pipefail
cd "$(dirname "$0")/.."

image=${1:?usage: build-image.sh IMAGE VERSION}
version=${2:?usage: build-image.sh IMAGE VERSION}
target=x86_64-unknown-linux-musl
name=k8s-network-test-daemonset
bin=target/$target/release/$name
context=target/image-context

command -v docker >/dev/null || { echo "image: docker not found; install a Docker engine" >&2; exit 1; }

# ring (under ureq's rustls) compiles C and needs the musl C compiler for this target.
CC_x86_64_unknown_linux_musl=musl-gcc \
  ${CARGO:-cargo} build --release --locked --target "$target" -p "$name"

# A dynamically linked binary would fail in a scratch image only when a pod starts: refuse it here.
desc=$(file -b "$bin")
case "$desc" in
  *"statically linked"* | *"static-pie linked"*) ;;
  *) echo "image: $bin is not static ($desc); check the musl target and musl-gcc" >&2; exit 1 ;;
esac
echo "image: $bin: $desc"
echo "image: ldd: $(ldd "$bin" 2>&1 | tr -s ' \t\n' ' ')"

# The context holds the binary alone, so the build sends a few hundred KB, not target/.
rm -rf "$context"
mkdir -p "$context"
cp "$bin" "$context/$name"
chmod 0755 "$context/$name"

start=$(date +%s.%N)
docker build --network none -f Dockerfile.scratch \
  --build-arg VERSION="$version" -t "$image:$version" "$context"
end=$(date +%s.%N)
size=$(docker image inspect -f '{{.Size}}' "$image:$version")
awk -v i="$image:$version" -v s="$size" -v a="$start" -v b="$end" \
  'BEGIN { printf "image: built %s, %d bytes, docker build %.1f s\n", i, s, b - a }'
