//! The EndpointSlice controller, as far as the agent cares: a Service with a selector and no
//! slices of its own in the cluster description gets slices built from the pods it selects,
//! by the rules of kube-controller-manager's controller (`podToEndpoint`,
//! `ShouldPodBeInEndpoints`): one slice set per address family, at most 100 endpoints per
//! slice, `serving` = the pod's Ready condition, `terminating` = a deletion timestamp,
//! `ready` = `publishNotReadyAddresses` or (serving and not terminating); pods without an IP
//! of the family, or that have finished (Succeeded, Failed), are left out, and terminating
//! pods too unless `publishNotReadyAddresses`.
//!
//! Placement is stable like the real controller's: a pod keeps its slice while it exists,
//! new pods fill the first slice with room, so one pod's change re-sends one slice.

use crate::select::LabelSelector;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Endpoints per slice (the controller's `--max-endpoints-per-slice` default).
pub const MAX_PER_SLICE: usize = 100;

/// Which slice each pod sits in, per (namespace, service, family): kept between cluster
/// changes so placement is stable.
#[derive(Debug, Clone, Default)]
pub struct Placement(BTreeMap<(String, String, &'static str), Vec<BTreeSet<String>>>);

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn condition_true(pod: &Value, kind: &str) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == kind && c["status"] == "True")
}

/// The pod's IPs of one family (`status.podIPs`, else `status.podIP`).
fn pod_ips(pod: &Value, v6: bool) -> Vec<String> {
    let mut all: Vec<String> = pod["status"]["podIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["ip"].as_str().map(str::to_string))
        .collect();
    if all.is_empty() {
        if let Some(ip) = pod["status"]["podIP"].as_str() {
            all.push(ip.to_string());
        }
    }
    all.into_iter()
        .filter(|ip| {
            ip.parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_ipv6() == v6)
        })
        .collect()
}

/// A deterministic 5-character suffix, like the random one of `generateName`.
fn suffix(seed: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|i| {
            let n = (h >> (i * 8)) as usize % ALPHABET.len();
            char::from(ALPHABET.get(n).copied().unwrap_or(b'x'))
        })
        .collect()
}

/// Whether the description already has slices for this service (then it is left alone).
fn has_own_slices(slices: &[Value], namespace: &str, name: &str) -> bool {
    slices.iter().any(|s| {
        str_at(s, &["metadata", "namespace"]) == namespace
            && str_at(s, &["metadata", "labels", "kubernetes.io/service-name"]) == name
    })
}

/// The slices the controller would keep for every selecting Service without slices of its
/// own; `placement` carries slice membership from the previous call.
pub fn derive(
    services: &[Value],
    pods: &[Value],
    own_slices: &[Value],
    placement: &mut Placement,
) -> Vec<Value> {
    let mut out = Vec::new();
    let mut seen_keys = BTreeSet::new();
    for svc in services {
        let Some(selector) = svc["spec"]["selector"]
            .as_object()
            .filter(|m| !m.is_empty())
        else {
            continue;
        };
        let namespace = str_at(svc, &["metadata", "namespace"]);
        let name = str_at(svc, &["metadata", "name"]);
        if has_own_slices(own_slices, namespace, name) {
            continue;
        }
        let text: Vec<String> = selector
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        let Ok(selector) = LabelSelector::parse(&text.join(",")) else {
            continue;
        };
        let publish_not_ready = svc["spec"]["publishNotReadyAddresses"] == true;
        let selected: Vec<&Value> = pods
            .iter()
            .filter(|p| str_at(p, &["metadata", "namespace"]) == namespace)
            .filter(|p| selector.matches(p))
            .filter(|p| !matches!(str_at(p, &["status", "phase"]), "Succeeded" | "Failed"))
            .filter(|p| publish_not_ready || p["metadata"].get("deletionTimestamp").is_none())
            .collect();
        let families: Vec<&str> = match svc["spec"]["ipFamilies"].as_array() {
            Some(f) if !f.is_empty() => f.iter().filter_map(Value::as_str).collect(),
            _ => vec!["IPv4"],
        };
        for family in ["IPv4", "IPv6"] {
            if !families.contains(&family) {
                continue;
            }
            let v6 = family == "IPv6";
            let endpoints: BTreeMap<String, Value> = selected
                .iter()
                .filter_map(|p| {
                    let ips = pod_ips(p, v6);
                    (!ips.is_empty()).then(|| {
                        (
                            str_at(p, &["metadata", "name"]).to_string(),
                            endpoint(p, ips, publish_not_ready),
                        )
                    })
                })
                .collect();
            let key = (namespace.to_string(), name.to_string(), family);
            seen_keys.insert(key.clone());
            let groups = place(placement.0.entry(key).or_default(), &endpoints);
            for (i, members) in groups.iter().enumerate() {
                if members.is_empty() {
                    continue;
                }
                let eps: Vec<Value> = members
                    .iter()
                    .filter_map(|m| endpoints.get(m).cloned())
                    .collect();
                out.push(slice(svc, family, i, eps));
            }
        }
    }
    placement.0.retain(|k, _| seen_keys.contains(k));
    out
}

/// Updates the slice membership: gone pods leave, new pods take the first slice with room.
fn place(
    groups: &mut Vec<BTreeSet<String>>,
    endpoints: &BTreeMap<String, Value>,
) -> Vec<BTreeSet<String>> {
    for g in groups.iter_mut() {
        g.retain(|m| endpoints.contains_key(m));
    }
    let placed: BTreeSet<String> = groups.iter().flatten().cloned().collect();
    for name in endpoints.keys().filter(|n| !placed.contains(*n)) {
        match groups.iter_mut().find(|g| g.len() < MAX_PER_SLICE) {
            Some(g) => {
                g.insert(name.clone());
            }
            None => groups.push(BTreeSet::from([name.clone()])),
        }
    }
    groups.clone()
}

fn endpoint(pod: &Value, addresses: Vec<String>, publish_not_ready: bool) -> Value {
    let serving = condition_true(pod, "Ready");
    let terminating = pod["metadata"].get("deletionTimestamp").is_some();
    let ready = publish_not_ready || (serving && !terminating);
    let mut ep = Map::new();
    ep.insert("addresses".into(), json!(addresses));
    ep.insert(
        "conditions".into(),
        json!({ "ready": ready, "serving": serving, "terminating": terminating }),
    );
    ep.insert(
        "targetRef".into(),
        json!({
            "kind": "Pod",
            "namespace": str_at(pod, &["metadata", "namespace"]),
            "name": str_at(pod, &["metadata", "name"]),
            "uid": str_at(pod, &["metadata", "uid"]),
        }),
    );
    let node = str_at(pod, &["spec", "nodeName"]);
    if !node.is_empty() {
        ep.insert("nodeName".into(), json!(node));
    }
    Value::Object(ep)
}

fn slice(svc: &Value, family: &str, index: usize, endpoints: Vec<Value>) -> Value {
    let namespace = str_at(svc, &["metadata", "namespace"]);
    let name = str_at(svc, &["metadata", "name"]);
    let mut labels = json!({
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
        "kubernetes.io/service-name": name,
    });
    if let Some(own) = svc["metadata"]["labels"].as_object() {
        for (k, v) in own {
            labels[k] = v.clone();
        }
    }
    if svc["spec"]["clusterIP"] == "None" {
        labels["service.kubernetes.io/headless"] = json!("");
    }
    let ports: Vec<Value> = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let port = match &p["targetPort"] {
                Value::Number(n) => json!(n),
                _ => p["port"].clone(),
            };
            json!({ "name": p["name"].as_str().unwrap_or(""), "protocol": p["protocol"].as_str().unwrap_or("TCP"), "port": port })
        })
        .collect();
    let slice_name = format!(
        "{name}-{}",
        suffix(&format!("{namespace}/{name}/{family}/{index}"))
    );
    json!({
        "kind": "EndpointSlice",
        "apiVersion": "discovery.k8s.io/v1",
        "metadata": {
            "name": slice_name,
            "generateName": format!("{name}-"),
            "namespace": namespace,
            "uid": crate::objects::uid("endpointslice", &format!("{namespace}/{slice_name}")),
            "resourceVersion": "1",
            "generation": 1,
            "creationTimestamp": "2026-06-15T04:14:52Z",
            "labels": labels,
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "Service",
                "name": name,
                "uid": str_at(svc, &["metadata", "uid"]),
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "addressType": family,
        "endpoints": endpoints,
        "ports": ports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::{agent_pod, agent_service, deleting};
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn pods(n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| {
                let ips = [
                    ip(&format!("198.18.{}.{}", i / 200, i % 200 + 1)),
                    ip(&format!("2001:db8::{:x}", i + 1)),
                ];
                agent_pod(
                    &format!("a-{i:03}"),
                    "kube-system",
                    &format!("n{i}"),
                    &ips,
                    &[],
                    "Running",
                    i % 7 != 3,
                )
            })
            .collect()
    }

    fn endpoints(slices: &[Value]) -> usize {
        slices
            .iter()
            .map(|s| s["endpoints"].as_array().unwrap().len())
            .sum()
    }

    #[test]
    fn one_slice_set_per_family_at_most_100_each() {
        let svc = agent_service("kube-system", "k8s-network-test-daemonset", true);
        let mut placement = Placement::default();
        let slices = derive(&[svc], &pods(250), &[], &mut placement);
        assert_eq!(slices.len(), 6, "3 per family");
        assert_eq!(endpoints(&slices), 500);
        let v4: Vec<&Value> = slices
            .iter()
            .filter(|s| s["addressType"] == "IPv4")
            .collect();
        assert_eq!(v4.len(), 3);
        let ep = &v4[0]["endpoints"][3];
        // Not Ready, but published (publishNotReadyAddresses): ready, not serving.
        assert_eq!(
            ep["conditions"],
            json!({"ready": true, "serving": false, "terminating": false})
        );
        assert_eq!(ep["targetRef"]["name"], "a-003");
        assert_eq!(ep["nodeName"], "n3");
        assert_eq!(
            v4[0]["metadata"]["labels"]["service.kubernetes.io/headless"],
            ""
        );
    }

    #[test]
    fn placement_is_stable_and_fills_gaps() {
        let svc = agent_service("kube-system", "agents", false);
        let mut placement = Placement::default();
        let before = derive(std::slice::from_ref(&svc), &pods(150), &[], &mut placement);
        let mut changed = pods(151);
        changed.remove(5);
        let after = derive(std::slice::from_ref(&svc), &changed, &[], &mut placement);
        // The second slice is untouched; the first lost a-005 and gained a-150.
        assert_eq!(before[1], after[1]);
        let first: Vec<&str> = after[0]["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["targetRef"]["name"].as_str().unwrap())
            .collect();
        assert!(first.contains(&"a-150") && !first.contains(&"a-005"));
        assert_eq!(endpoints(&after), 150);
    }

    #[test]
    fn terminating_and_finished_pods() {
        let mut list = pods(3);
        list[0] = deleting(list[0].clone());
        list[1]["status"]["phase"] = json!("Failed");
        let published = agent_service("kube-system", "a", false);
        let slices = derive(
            std::slice::from_ref(&published),
            &list,
            &[],
            &mut Placement::default(),
        );
        let eps = slices[0]["endpoints"].as_array().unwrap();
        assert_eq!(eps.len(), 2, "the finished pod is left out");
        assert_eq!(
            eps[0]["conditions"],
            json!({"ready": true, "serving": true, "terminating": true})
        );
        let mut strict = published;
        strict["spec"]["publishNotReadyAddresses"] = json!(false);
        let slices = derive(&[strict], &list, &[], &mut Placement::default());
        assert_eq!(
            slices[0]["endpoints"].as_array().unwrap().len(),
            1,
            "terminating pods too"
        );
    }
}
