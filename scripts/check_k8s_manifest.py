"""Checks what the schemas and checkov do not: the Pod Security Standard "restricted" profile
(as the PodSecurity admission controller of Kubernetes 1.25+ enforces it) and the promises the
agent depends on (ICMP by sysctl, downward-API env, probes, metrics port, scrape annotations).

Usage: check_k8s_manifest.py RENDERED_K8S_YML PODMONITOR_YML NETWORKPOLICY_YML PROMETHEUSRULE_YML
RULES_SOURCE_YML; prints one line per problem and exits 1 if there is any.
"""

import re
import sys

import yaml

SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}


def restricted_problems(pod):
    """Pod Security Standard "restricted" (latest) violations of one pod spec."""
    p = []
    psc = pod.get("securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            p.append(f"{key} must be unset or false")
    for s in psc.get("sysctls") or []:
        if s.get("name") not in SAFE_SYSCTLS:
            p.append(f"sysctl {s.get('name')} is not in the safe set")
    for v in pod.get("volumes") or []:
        kinds = set(v) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            p.append(f"volume {v.get('name')} type {sorted(kinds)} not allowed")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    containers = (pod.get("initContainers") or []) + pod.get("containers", [])
    for c in containers:
        n = c.get("name")
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            p.append(f"{n}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            p.append(f"{n}: allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            p.append(f"{n}: capabilities must drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            p.append(f"{n}: capabilities may add only NET_BIND_SERVICE")
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            p.append(f"{n}: runAsNonRoot must be true")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            p.append(f"{n}: runAsUser must not be 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type") or pod_seccomp
        if seccomp not in ("RuntimeDefault", "Localhost"):
            p.append(f"{n}: seccompProfile must be RuntimeDefault or Localhost")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                p.append(f"{n}: hostPort {port['hostPort']}")
    return p


def agent_problems(ds):
    """Promises of the DaemonSet that the agent and its users rely on."""
    p = []
    meta = ds["metadata"]
    tmpl = ds["spec"]["template"]
    pod = tmpl["spec"]
    for key in ("name", "component", "part-of", "version"):
        for where, m in (("DaemonSet", meta), ("pod", tmpl["metadata"])):
            if f"app.kubernetes.io/{key}" not in (m.get("labels") or {}):
                p.append(f"{where} lacks label app.kubernetes.io/{key}")
    if meta.get("namespace") != "kube-system":
        p.append("DaemonSet must be in kube-system")
    ann = tmpl["metadata"].get("annotations") or {}
    want = {"prometheus.io/scrape": "true", "prometheus.io/port": "8123",
            "prometheus.io/path": "/prometheus.report"}
    for k, v in want.items():
        if ann.get(k) != v:
            p.append(f"pod annotation {k} must be {v!r}")
    sysctls = {s["name"]: s["value"] for s in (pod.get("securityContext") or {}).get("sysctls") or []}
    gid = (pod.get("securityContext") or {}).get("runAsGroup")
    rng = sysctls.get("net.ipv4.ping_group_range", "").split()
    if len(rng) != 2 or not all(x.isdigit() for x in rng) or not isinstance(gid, int) \
            or not int(rng[0]) <= gid <= int(rng[1]):
        p.append("net.ipv4.ping_group_range must include the pod's runAsGroup (ICMP without NET_RAW)")
    if pod.get("hostNetwork"):
        p.append("hostNetwork: the ping sysctl is not allowed there")
    if not any(t.get("operator") == "Exists" and not t.get("key") for t in pod.get("tolerations") or []):
        keys = {t.get("key") for t in pod.get("tolerations") or []}
        for k in ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"):
            if k not in keys:
                p.append(f"no toleration for {k}")
    c = pod["containers"][0]
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in c.get("env") or []}
    for name, path in (("NODE_NAME", "spec.nodeName"), ("POD_NAME", "metadata.name"),
                       ("POD_NAMESPACE", "metadata.namespace"), ("POD_IP", "status.podIP")):
        if env.get(name) != path:
            p.append(f"env {name} must come from {path}")
    if not any(pt.get("name") == "metrics" and pt.get("containerPort") == 8123 for pt in c.get("ports") or []):
        p.append("container port metrics (8123) missing")
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        g = (c.get(probe) or {}).get("httpGet") or {}
        if g.get("path") != path or g.get("port") not in ("metrics", 8123):
            p.append(f"{probe} must GET {path} on port metrics")
    if not (c.get("securityContext") or {}).get("readOnlyRootFilesystem"):
        p.append("readOnlyRootFilesystem must be true")
    ru = ds["spec"].get("updateStrategy", {})
    if ru.get("type") != "RollingUpdate" or "maxUnavailable" not in (ru.get("rollingUpdate") or {}):
        p.append("updateStrategy must be RollingUpdate with maxUnavailable")
    return p


AGENT_SERVICE = "k8s-network-test-daemonset"


def discovery_problems(docs, ds):
    """Promises discovery depends on: the agents' headless Service whose EndpointSlices list
    the peers (both families, not-ready agents too), and read-only RBAC for exactly what the
    agent lists, watches and gets."""
    p = []
    svcs = [d for d in docs if d.get("kind") == "Service" and d["metadata"].get("name") == AGENT_SERVICE]
    if len(svcs) != 1:
        return [f"want one Service {AGENT_SERVICE} (the agents' headless Service), found {len(svcs)}"]
    svc = svcs[0]
    spec = svc.get("spec") or {}
    if svc["metadata"].get("namespace") != ds["metadata"].get("namespace"):
        p.append("the agents' Service must be in the DaemonSet's namespace")
    if spec.get("clusterIP") != "None":
        p.append("the agents' Service must be headless (clusterIP: None)")
    if spec.get("publishNotReadyAddresses") is not True:
        p.append("the agents' Service must publishNotReadyAddresses (not-ready agents are still pinged)")
    if spec.get("ipFamilyPolicy") != "PreferDualStack":
        p.append("the agents' Service must be PreferDualStack (both address families)")
    pod_labels = ds["spec"]["template"]["metadata"].get("labels") or {}
    selector = spec.get("selector") or {}
    if not selector or any(pod_labels.get(k) != v for k, v in selector.items()):
        p.append("the agents' Service selector must match the agent pods' labels")
    rules = []
    for d in docs:
        if d.get("kind") in ("Role", "ClusterRole"):
            rules += [(d["kind"], r) for r in d.get("rules") or []]
    for _, r in rules:
        verbs = set(r.get("verbs") or [])
        if verbs - {"get", "list", "watch"}:
            p.append(f"RBAC must be read only: {r}")
        if "*" in (r.get("resources") or []) or "*" in (r.get("apiGroups") or []):
            p.append(f"RBAC must name its resources: {r}")

    def allows(kind, group, resource, verbs, name=None):
        for k, r in rules:
            if k == kind and group in (r.get("apiGroups") or []) and resource in (r.get("resources") or []) \
                    and set(verbs) <= set(r.get("verbs") or []) \
                    and (name is None or not r.get("resourceNames") or name in r["resourceNames"]):
                return True
        return False
    if not allows("ClusterRole", "", "nodes", ["list", "watch", "get"]):
        p.append("RBAC: nodes list/watch/get (cluster-wide) missing")
    if not allows("Role", "discovery.k8s.io", "endpointslices", ["list", "watch"]):
        p.append("RBAC: endpointslices list/watch missing")
    if not allows("Role", "", "pods", ["list", "watch"]):
        p.append("RBAC: pods list/watch missing (the fallback when the Service is missing)")
    for name in ("kube-dns", AGENT_SERVICE):
        if not allows("Role", "", "services", ["get"], name):
            p.append(f"RBAC: get service {name} missing")
    for _, r in rules:
        if "services" in (r.get("resources") or []) and not r.get("resourceNames"):
            p.append("RBAC: services must be limited by resourceNames")
    return p


def podmonitor_problems(pm):
    p = []
    if pm.get("apiVersion") != "monitoring.coreos.com/v1" or pm.get("kind") != "PodMonitor":
        p.append("podmonitor.yml: not a monitoring.coreos.com/v1 PodMonitor")
        return p
    eps = pm["spec"].get("podMetricsEndpoints") or [{}]
    if eps[0].get("port") != "metrics" or eps[0].get("path") != "/prometheus.report":
        p.append("podmonitor.yml: endpoint must be port metrics, path /prometheus.report")
    return p


# Alerts that blame no single node: every other alert names the node in its summary.
CLUSTER_WIDE_ALERTS = {"NetworkTestAgentsAbsent", "NetworkTestDnsServiceDown"}


def prometheusrule_problems(pr, source):
    """The PrometheusRule (a custom resource with no upstream schema) by shape: what the
    operator needs to pick it up, its spec the same as the rules source, and the conventions
    of every rule (kube-prometheus style)."""
    where = "prometheusrule.yml"
    if pr.get("apiVersion") != "monitoring.coreos.com/v1" or pr.get("kind") != "PrometheusRule":
        return [f"{where}: not a monitoring.coreos.com/v1 PrometheusRule"]
    p = []
    meta = pr.get("metadata") or {}
    if meta.get("namespace") != "kube-system" or not meta.get("name"):
        p.append(f"{where}: must be named and in kube-system, with the agents")
    labels = meta.get("labels") or {}
    for key, value in (("prometheus", "k8s"), ("role", "alert-rules"),
                       ("app.kubernetes.io/part-of", "k8s-network-test-daemonset")):
        if labels.get(key) != value:
            p.append(f"{where}: label {key} must be {value!r} (the operator's rule selectors)")
    if pr.get("spec") != source:
        p.append(f"{where}: spec differs from rules/networktest.rules.yml (run make rules)")
    groups = (pr.get("spec") or {}).get("groups") or []
    names = [g.get("name") for g in groups]
    if not groups or len(set(names)) != len(names):
        p.append(f"{where}: want groups with distinct names, got {names}")
    for g in groups:
        for r in g.get("rules") or []:
            what = r.get("alert") or r.get("record")
            if ("alert" in r) == ("record" in r) or not r.get("expr"):
                p.append(f"{where}: {what}: a rule is either an alert or a record, with an expr")
            elif "record" in r:
                if not re.fullmatch(r"networktest:[a-z_]+:[a-z0-9_]+", r["record"]):
                    p.append(f"{where}: {what}: record names are networktest:<what>:<unit or op>")
            else:
                ann = r.get("annotations") or {}
                if not re.fullmatch(r"NetworkTest(?:[A-Z][a-z]+)+", r["alert"]):
                    p.append(f"{where}: {what}: alert names are CamelCase with prefix NetworkTest")
                if not re.fullmatch(r"[0-9]+[smh]", str(r.get("for", ""))):
                    p.append(f"{where}: {what}: needs a `for:` duration such as 5m")
                if (r.get("labels") or {}).get("severity") not in ("critical", "warning", "info"):
                    p.append(f"{where}: {what}: needs a severity label (critical, warning, info)")
                if not ann.get("summary") or not ann.get("description"):
                    p.append(f"{where}: {what}: needs summary and description annotations")
                if what not in CLUSTER_WIDE_ALERTS and "{{ $labels.node }}" not in ann.get("summary", ""):
                    p.append(f"{where}: {what}: the summary must name the node ({{{{ $labels.node }}}})")
    return p


def networkpolicy_problems(np, ds):
    """The optional NetworkPolicy must select the agent pods, admit every protocol from the
    peer agents (ICMP has no port) and only the metrics port from elsewhere, and leave egress
    alone (the agent must reach every pod, node, DNS and the API)."""
    p = []
    where = "networkpolicy.yml"
    if np.get("apiVersion") != "networking.k8s.io/v1" or np.get("kind") != "NetworkPolicy":
        return [f"{where}: not a networking.k8s.io/v1 NetworkPolicy"]
    spec = np.get("spec") or {}
    pod_labels = (ds["spec"]["template"]["metadata"].get("labels") or {}) if ds else {}
    selector = (spec.get("podSelector") or {}).get("matchLabels") or {}
    if not selector or any(pod_labels.get(k) != v for k, v in selector.items()):
        p.append(f"{where}: podSelector must match the agent pods' labels")
    if np.get("metadata", {}).get("namespace") != "kube-system":
        p.append(f"{where}: must be in kube-system, with the agent pods")
    if spec.get("policyTypes") != ["Ingress"] or spec.get("egress"):
        p.append(f"{where}: policyTypes must be [Ingress] only (egress stays open)")
    rules = spec.get("ingress") or []
    peers = [r for r in rules if not r.get("ports")]
    if len(peers) != 1 or [f.get("podSelector", {}).get("matchLabels") for f in peers[0].get("from", [])] \
            != [selector]:
        p.append(f"{where}: one rule without ports must admit exactly the agent pods (ICMP)")
    scrapes = [r for r in rules if r.get("ports")]
    for r in scrapes:
        if r.get("ports") != [{"protocol": "TCP", "port": 8123}]:
            p.append(f"{where}: rules with ports may open TCP 8123 only")
        if not r.get("from") or any("namespaceSelector" not in f for f in r["from"]):
            p.append(f"{where}: the metrics port must be limited to named namespaces")
    if not scrapes:
        p.append(f"{where}: no rule admits scrapes of port 8123")
    return p


def main():
    with open(sys.argv[1]) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    with open(sys.argv[2]) as f:
        pms = [d for d in yaml.safe_load_all(f) if d]
    with open(sys.argv[3]) as f:
        nps = [d for d in yaml.safe_load_all(f) if d]
    problems = []
    dss = [d for d in docs if d.get("kind") == "DaemonSet"]
    if len(dss) != 1:
        problems.append(f"want one DaemonSet, found {len(dss)}")
    for ds in dss:
        problems += [f"restricted: {x}" for x in restricted_problems(ds["spec"]["template"]["spec"])]
        problems += agent_problems(ds)
        problems += discovery_problems(docs, ds)
    if len(pms) != 1:
        problems.append("podmonitor.yml: want one document")
    for pm in pms:
        problems += podmonitor_problems(pm)
    if len(nps) != 1:
        problems.append("networkpolicy.yml: want one document")
    for np in nps:
        problems += networkpolicy_problems(np, dss[0] if dss else None)
    with open(sys.argv[4]) as f:
        prs = [d for d in yaml.safe_load_all(f) if d]
    with open(sys.argv[5]) as f:
        source = yaml.safe_load(f)
    if len(prs) != 1:
        problems.append("prometheusrule.yml: want one document")
    for pr in prs:
        problems += prometheusrule_problems(pr, source)
    for x in problems:
        print(f"check-manifests: {x}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
