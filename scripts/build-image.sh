#!/usr/bin/env bash
# Builds one FROM-scratch image per architecture from the static musl binaries compiled here:
# no base image, no network, and nothing runs at build time, so an arm64 image builds on an
# amd64 machine without emulation. Tags: IMAGE:VERSION-ARCH for each, and IMAGE:VERSION for
# this machine's own architecture (what a local cluster loads and the tests run).
# Usage: scripts/build-image.sh IMAGE VERSION [ARCH...]   (make image passes ARCHS)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/archs.sh

image=${1:?usage: build-image.sh IMAGE VERSION [ARCH...]}
version=${2:?usage: build-image.sh IMAGE VERSION [ARCH...]}
shift 2
archs=("$@")
((${#archs[@]})) || archs=("${ALL_ARCHS[@]}")
name=k8s-network-test-daemonset

command -v docker >/dev/null || { echo "image: docker not found; install a Docker engine" >&2; exit 1; }

scripts/build-release.sh "${archs[@]}"

native=$(native_arch)
for a in "${archs[@]}"; do
  # The context holds the binary alone, so the build sends 2-3 MB, not target/.
  context=target/image-context/$a
  rm -rf "$context"
  mkdir -p "$context"
  cp "target/$(rust_target "$a")/release/$name" "$context/$name"
  chmod 0755 "$context/$name"

  tag=$image:$version-$a
  start=$(date +%s.%N)
  # --platform sets the image config's architecture (Dockerfile.scratch copies the binary
  # first, so the classic builder keeps it; see the note there).
  docker build --network none --platform "linux/$a" -f Dockerfile.scratch \
    --build-arg VERSION="$version" -t "$tag" "$context"
  end=$(date +%s.%N)
  if [[ $a == "$native" ]]; then
    docker tag "$tag" "$image:$version"
    tag="$tag and $image:$version"
  fi
  size=$(docker image inspect -f '{{.Size}}' "$image:$version-$a")
  platform=$(docker image inspect -f '{{.Os}}/{{.Architecture}}' "$image:$version-$a")
  awk -v i="$tag" -v p="$platform" -v s="$size" -v a="$start" -v b="$end" \
    'BEGIN { printf "image: built %s (%s), %d bytes, docker build %.1f s\n", i, p, s, b - a }'
done
