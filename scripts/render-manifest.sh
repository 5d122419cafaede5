#!/usr/bin/env bash
# Prints k8s.yml with another image and version: the agent's `image:` and every
# `app.kubernetes.io/version` label (make deploy and scripts/check-manifests.sh use it). The file
# as shipped names the image `make image` builds by default, so it also applies unrendered.
# Refuses values that would make an invalid image reference or label, so a typo fails here and
# not half-applied in the cluster.
# Usage: scripts/render-manifest.sh IMAGE VERSION [FILE]
set -euo pipefail

image=${1:?usage: render-manifest.sh IMAGE VERSION [FILE]}
version=${2:?usage: render-manifest.sh IMAGE VERSION [FILE]}
file=${3:-$(dirname "$0")/../k8s.yml}

# An image name without tag or digest: registry[:port]/path, lowercase path components.
if ! [[ $image =~ ^[a-zA-Z0-9.-]+(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)+$ || $image =~ ^[a-z0-9]+([._-]+[a-z0-9]+)*$ ]]; then
  echo "render-manifest: IMAGE '$image' is not an image name without tag (e.g. registry.example/k8s-network-test-daemonset)" >&2
  exit 1
fi
# Valid as both an image tag and a label value (63 characters, alphanumeric at both ends).
if ! [[ $version =~ ^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$ ]]; then
  echo "render-manifest: VERSION '$version' must be 1-63 letters, digits, '.', '_' or '-' (e.g. 0.2.0)" >&2
  exit 1
fi

images=$(grep -c '^ *image: "localhost/k8s-network-test-daemonset:[^"]*"$' "$file" || true)
if [[ $images != 1 ]]; then
  echo "render-manifest: $file must have exactly one image: \"localhost/k8s-network-test-daemonset:...\" line (found $images)" >&2
  exit 1
fi
sed -e "s|^\( *image: \)\"localhost/k8s-network-test-daemonset:[^\"]*\"$|\1\"$image:$version\"|" \
  -e "s|^\( *app.kubernetes.io/version: \)\"[^\"]*\"$|\1\"$version\"|" "$file"
