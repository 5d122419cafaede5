"""Generates prometheusrule.yml (a prometheus-operator PrometheusRule) from the one source of
the alert and recording rules, rules/networktest.rules.yml: the source's `groups` become the
resource's `spec.groups` as they are written, comments included.

Usage: render-rules.py          write prometheusrule.yml
       render-rules.py --check  exit 1 if prometheusrule.yml is not what this would write
Run from the repository root (make rules, make manifests).
"""

import sys

import yaml

SOURCE = "rules/networktest.rules.yml"
TARGET = "prometheusrule.yml"

HEADER = """\
# Alert and recording rules for prometheus-operator users (a PrometheusRule resource).
# GENERATED from rules/networktest.rules.yml by `make rules`: edit that file, not this one.
# Apply it only where the PrometheusRule custom resource exists:
#   kubectl apply -f prometheusrule.yml
# kube-prometheus selects every PrometheusRule (ruleSelector: {}); its own carry the labels
# prometheus: k8s and role: alert-rules, as this one does. kube-prometheus-stack selects
# `release: <helm release name>` by default: add that label here if yours does.
# Without the operator, load rules/networktest.rules.yml through rule_files instead.
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: k8s-network-test-daemonset
  namespace: kube-system
  labels:
    app.kubernetes.io/name: k8s-network-test-daemonset
    app.kubernetes.io/component: rules
    app.kubernetes.io/part-of: k8s-network-test-daemonset
    prometheus: k8s
    role: alert-rules
spec:
"""


def render(source):
    """The PrometheusRule text: the header, then the source from its `groups:` line on,
    indented under `spec:` (blank lines stay empty)."""
    lines = source.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("groups:")), None)
    if start is None:
        raise SystemExit(f"render-rules: {SOURCE} has no top-level `groups:` line")
    body = ["  " + line if line.strip() else "" for line in lines[start:]]
    return HEADER + "\n".join(body) + "\n"


def main():
    with open(SOURCE) as f:
        source = f.read()
    out = render(source)
    # The generated spec must be exactly the source's rules, whatever the text did.
    if yaml.safe_load(out)["spec"] != yaml.safe_load(source):
        raise SystemExit("render-rules: the generated spec differs from the source (indentation?)")
    if sys.argv[1:] == ["--check"]:
        try:
            with open(TARGET) as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != out:
            print(f"render-rules: {TARGET} is not generated from {SOURCE}: run `make rules`",
                  file=sys.stderr)
            return 1
        return 0
    if sys.argv[1:]:
        print(__doc__, file=sys.stderr)
        return 2
    with open(TARGET, "w") as f:
        f.write(out)
    print(f"render-rules: wrote {TARGET} from {SOURCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
