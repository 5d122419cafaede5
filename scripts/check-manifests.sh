#!/usr/bin/env bash
# Checks k8s.yml (rendered as `make deploy` renders it), podmonitor.yml and networkpolicy.yml: yamllint, the
# Kubernetes JSON schemas of several releases (strict: unknown fields fail), and checkov's
# Kubernetes checks (waivers are annotations in k8s.yml, each with its reason). Offline once
# the pinned tools are installed (scripts/setup-python.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# Schemas bundled by kubernetes-validate 1.37.0 run from 1.25 to 1.37; check the four newest
# and the oldest release the manifest promises to support.
k8s_versions=(1.30.0 1.34.0 1.35.0 1.36.0 1.37.0)

bin=$(scripts/setup-python.sh)
out=target/manifests
mkdir -p "$out"
scripts/render-manifest.sh example.registry/k8s-network-test-daemonset 0.0.0-check >"$out/k8s.yml"
cp podmonitor.yml "$out/podmonitor.yml"
cp networkpolicy.yml "$out/networkpolicy.yml"
fail=0

echo "check-manifests: yamllint"
"$bin/yamllint" --strict k8s.yml podmonitor.yml networkpolicy.yml .yamllint "$out/k8s.yml" || fail=1

for v in "${k8s_versions[@]}"; do
  echo "check-manifests: kubernetes-validate --strict -k $v"
  "$bin/kubernetes-validate" --strict --quiet -k "$v" "$out/k8s.yml" "$out/networkpolicy.yml" || fail=1
done

# Pod Security "restricted" and the agent's own needs; PodMonitor (a custom resource with no
# upstream schema) by shape.
echo "check-manifests: restricted profile and agent promises"
"$bin/python" scripts/check_k8s_manifest.py "$out/k8s.yml" "$out/podmonitor.yml" "$out/networkpolicy.yml" || fail=1

echo "check-manifests: checkov (kubernetes)"
# --skip-download: no call home for guidelines; the checks ship inside the package.
"$bin/checkov" --quiet --compact --framework kubernetes --skip-download \
  -f "$out/k8s.yml" -f "$out/podmonitor.yml" -f "$out/networkpolicy.yml" || fail=1

if ((fail)); then
  echo "check-manifests: FAILED" >&2
  exit 1
fi
echo "check-manifests: all passed"
