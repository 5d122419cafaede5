//! The builders' objects against recorded real ones: every field path a builder emits must
//! exist in a real object of that kind, so the test cluster cannot drift from reality.

use k8s_api_standin::{
    agent_pod, deleting, dns_endpoint_slice, dns_service, node, Cluster, DnsEndpoint,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::IpAddr;

macro_rules! fixture {
    ($name:literal) => {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/k8s-api/",
            $name
        )
    };
}

fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Maps whose keys are data, not schema: their keys collapse to `*`.
fn is_map(path: &str) -> bool {
    ["labels", "annotations", "selector", "nodeSelector"]
        .iter()
        .any(|m| path.ends_with(&format!(".{m}")))
}

/// Every path in `v` (objects by key, arrays as `[]`).
fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let key = if is_map(prefix) { "*" } else { k.as_str() };
                let p = format!("{prefix}.{key}");
                out.insert(p.clone());
                paths(child, &p, out);
            }
        }
        Value::Array(items) => {
            let p = format!("{prefix}[]");
            for child in items {
                out.insert(p.clone());
                paths(child, &p, out);
            }
        }
        _ => {}
    }
}

fn real_paths(objects: &[Value]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for o in objects {
        paths(o, "", &mut out);
    }
    // List items omit kind/apiVersion; single objects carry them.
    out.insert(".kind".into());
    out.insert(".apiVersion".into());
    out
}

fn assert_subset(what: &str, built: &Value, real: &BTreeSet<String>) {
    let mut mine = BTreeSet::new();
    paths(built, "", &mut mine);
    let missing: Vec<&String> = mine.difference(real).collect();
    assert!(
        missing.is_empty(),
        "{what}: paths not in any real object: {missing:?}"
    );
}

fn items(v: Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn ips(s: &[&str]) -> Vec<IpAddr> {
    s.iter().map(|i| i.parse().unwrap()).collect()
}

#[test]
fn pod_builder_matches_real_pods() {
    let mut real = items(load(fixture!(
        "k8s-openapi-replay-v1.36.kube-system-PodList.response-body.json"
    )));
    real.push(load(fixture!(
        "k9s.po_sidecar.kind-pod-podIPs-hostIPs.json"
    )));
    real.extend(items(load(fixture!(
        "kubeclient.pods_1.PodList-page1-with-continue.json"
    ))));
    let real = real_paths(&real);
    let v4v6 = ips(&["198.18.0.2", "2001:db8::2"]);
    let pod = agent_pod("a-1", "kube-system", "n1", &v4v6, &v4v6, "Running", true);
    assert_subset("agent_pod", &pod, &real);
    assert_subset("deleting(agent_pod)", &deleting(pod), &real);
}

#[test]
fn node_builder_matches_real_nodes() {
    let mut real = items(load(fixture!(
        "troubleshoot.nodes.NodeList-7-nodes-mixed-versions-redacted-ips.json"
    )));
    real.push(load(fixture!(
        "k9s.no.minikube-node-legacy-master-label.json"
    )));
    // Taints appear only in the every-field Node among the JSON fixtures.
    real.push(load(fixture!(
        "k8s-api-testdata-HEAD.core.v1.Node.every-field.json"
    )));
    let real = real_paths(&real);
    assert_subset(
        "node(control plane)",
        &node("cp", &ips(&["198.18.0.1"]), true, true),
        &real,
    );
    assert_subset(
        "node(worker)",
        &node("w", &ips(&["2001:db8::1"]), false, false),
        &real,
    );
}

#[test]
fn dns_builders_match_every_field_objects() {
    let svc = real_paths(&[load(fixture!(
        "k8s-api-testdata-HEAD.core.v1.Service.every-field.json"
    ))]);
    assert_subset(
        "dns_service",
        &dns_service(&ips(&["198.18.100.10", "2001:db8:100::a"])),
        &svc,
    );
    let es = real_paths(&[load(fixture!(
        "k8s-api-testdata-HEAD.discovery.k8s.io.v1.EndpointSlice.every-field.json"
    ))]);
    let mut partial = DnsEndpoint::ready("198.18.1.5".parse().unwrap(), "coredns-2", "n2");
    partial.terminating = None;
    let slice = dns_endpoint_slice(
        "kube-dns-x1",
        "IPv4",
        &[
            DnsEndpoint::ready("198.18.1.4".parse().unwrap(), "coredns-1", "n1"),
            partial,
        ],
    );
    assert_subset("dns_endpoint_slice", &slice, &es);
}

#[test]
fn cluster_file_form_round_trips() {
    let c = Cluster {
        pods: vec![agent_pod(
            "a",
            "kube-system",
            "n",
            &[],
            &[],
            "Pending",
            false,
        )],
        nodes: vec![node("n", &[], false, true)],
        endpointslices: vec![],
        services: vec![dns_service(&ips(&["198.18.100.10"]))],
    };
    let text = serde_json::to_string(&c).unwrap();
    assert!(text.starts_with("{\"pods\":["));
    assert_eq!(serde_json::from_str::<Cluster>(&text).unwrap(), c);
    // Missing sections default to empty.
    assert_eq!(
        serde_json::from_str::<Cluster>("{}").unwrap(),
        Cluster::default()
    );
}

#[test]
fn the_comparison_catches_an_invented_field() {
    let real = real_paths(&items(load(fixture!(
        "k8s-openapi-replay-v1.36.kube-system-PodList.response-body.json"
    ))));
    let mut pod = agent_pod("a", "kube-system", "n", &[], &[], "Running", true);
    pod["status"]["podIp"] = "198.18.0.2".into();
    let mut mine = BTreeSet::new();
    paths(&pod, "", &mut mine);
    assert_eq!(
        mine.difference(&real).collect::<Vec<_>>(),
        vec![".status.podIp"]
    );
}
