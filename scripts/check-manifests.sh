#!/usr/bin/env bash
# Checks the files a user applies, k8s.yml (as shipped, and that rendering it changes only the
# image and version), podmonitor.yml and networkpolicy.yml: no placeholder left, yamllint, the
# Kubernetes JSON schemas of several releases (strict: unknown fields fail), and checkov's
# Kubernetes checks (waivers are annotations in k8s.yml, each with its reason). And the rules:
# rules/networktest.rules.yml through `promtool check rules`, prometheusrule.yml generated
# from it (in sync) and of the right shape. Offline once the pinned tools are installed
# (scripts/setup-python.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# Schemas bundled by kubernetes-validate 1.37.0 run from 1.25 to 1.37; check the four newest
# and the oldest release the manifest promises to support.
k8s_versions=(1.30.0 1.34.0 1.35.0 1.36.0 1.37.0)

bin=$(scripts/setup-python.sh)
out=target/manifests
mkdir -p "$out"
fail=0

# The files a user applies are valid as they are: no placeholder left to render, and the
# image and version labels are this release's (make image builds localhost/NAME:VERSION).
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
echo "check-manifests: nothing left to render, version $version"
for f in k8s.yml podmonitor.yml networkpolicy.yml; do
  # ${VAR}, {{ template }}, <placeholder>, or the usual stand-in words, outside comments.
  if grep -nE '\$\{|\{\{|<[A-Za-z_-]+>|CHANGEME|REPLACE_?ME|TODO' "$f" | grep -vE '^[0-9]+: *#'; then
    echo "check-manifests: $f has an unrendered placeholder (above)" >&2
    fail=1
  fi
done
if ! grep -q "^ *image: \"localhost/k8s-network-test-daemonset:$version\"$" k8s.yml; then
  echo "check-manifests: k8s.yml's image must be localhost/k8s-network-test-daemonset:$version" >&2
  fail=1
fi
if grep '^ *app.kubernetes.io/version:' k8s.yml | grep -qv "\"$version\""; then
  echo "check-manifests: every app.kubernetes.io/version label in k8s.yml must be \"$version\"" >&2
  fail=1
fi
# make deploy's rendering changes the image and the version labels, nothing else.
scripts/render-manifest.sh example.registry/k8s-network-test-daemonset 0.0.0-check >"$out/k8s.rendered.yml"
changed=$(diff k8s.yml "$out/k8s.rendered.yml" | grep '^>' | grep -vcE 'image: "example.registry/k8s-network-test-daemonset:0.0.0-check"|app.kubernetes.io/version: "0.0.0-check"' || true)
if [[ $changed != 0 ]]; then
  echo "check-manifests: render-manifest.sh changed more than the image and version lines" >&2
  fail=1
fi
cp k8s.yml "$out/k8s.yml"
cp podmonitor.yml "$out/podmonitor.yml"
cp networkpolicy.yml "$out/networkpolicy.yml"

echo "check-manifests: yamllint"
"$bin/yamllint" --strict k8s.yml podmonitor.yml networkpolicy.yml .yamllint "$out/k8s.rendered.yml" \
  rules/networktest.rules.yml prometheusrule.yml || fail=1

# The rules: valid for Prometheus, and prometheusrule.yml generated from them (make rules).
echo "check-manifests: promtool check rules, prometheusrule.yml in sync"
command -v promtool >/dev/null || { echo "check-manifests: promtool missing (make setup)" >&2; exit 1; }
promtool check rules rules/networktest.rules.yml || fail=1
"$bin/python" scripts/render-rules.py --check || fail=1

for v in "${k8s_versions[@]}"; do
  echo "check-manifests: kubernetes-validate --strict -k $v"
  "$bin/kubernetes-validate" --strict --quiet -k "$v" "$out/k8s.yml" "$out/networkpolicy.yml" || fail=1
done

# Pod Security "restricted" and the agent's own needs; PodMonitor and PrometheusRule (custom
# resources with no upstream schema) by shape.
echo "check-manifests: restricted profile and agent promises"
"$bin/python" scripts/check_k8s_manifest.py "$out/k8s.yml" "$out/podmonitor.yml" "$out/networkpolicy.yml" \
  prometheusrule.yml rules/networktest.rules.yml || fail=1

echo "check-manifests: checkov (kubernetes)"
# --skip-download: no call home for guidelines; the checks ship inside the package.
"$bin/checkov" --quiet --compact --framework kubernetes --skip-download \
  -f "$out/k8s.yml" -f "$out/podmonitor.yml" -f "$out/networkpolicy.yml" || fail=1

if ((fail)); then
  echo "check-manifests: FAILED" >&2
  exit 1
fi
echo "check-manifests: all passed"
