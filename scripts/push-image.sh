#!/usr/bin/env bash
# Pushes each architecture's image (IMAGE:VERSION-ARCH, from make image) and then the
# multi-architecture manifest list IMAGE:VERSION that names them, so every node pulls the
# image for its own architecture. `docker manifest` needs no plugin (no buildx here); it reads
# each image's platform from the registry. Prints the list's digest last.
# Usage: scripts/push-image.sh IMAGE VERSION [ARCH...]   (make push passes ARCHS)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/archs.sh

image=${1:?usage: push-image.sh IMAGE VERSION [ARCH...]}
version=${2:?usage: push-image.sh IMAGE VERSION [ARCH...]}
shift 2
archs=("$@")
((${#archs[@]})) || archs=("${ALL_ARCHS[@]}")

refs=()
for a in "${archs[@]}"; do
  rust_target "$a" >/dev/null
  ref=$image:$version-$a
  docker image inspect "$ref" >/dev/null 2>&1 || { echo "push: no image $ref; run make image" >&2; exit 1; }
  refs+=("$ref")
done

# A registry on a loopback address speaks plain HTTP (the engine allows 127.0.0.0/8 so);
# `docker manifest` talks to it itself and must be told. INSECURE_REGISTRY=1 says so for
# another registry the engine is configured to reach without TLS.
registry=${image%%/*}
insecure=()
case $registry in
  localhost | localhost:* | 127.* | "[::1]"*) insecure=(--insecure) ;;
  *) if [[ ${INSECURE_REGISTRY:-} == 1 ]]; then insecure=(--insecure); fi ;;
esac

for ref in "${refs[@]}"; do
  docker push "$ref"
done

# A list left by an earlier run would be amended, not replaced: start from none.
docker manifest rm "$image:$version" >/dev/null 2>&1 || true
docker manifest create "${insecure[@]}" "$image:$version" "${refs[@]}"
digest=$(docker manifest push "${insecure[@]}" --purge "$image:$version")
echo "push: $image:$version is a manifest list of ${archs[*]}: $digest"
