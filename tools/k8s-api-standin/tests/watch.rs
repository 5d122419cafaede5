//! Watch streams of the stand-in over real TLS (loopback): initial events, changes as they
//! happen, BOOKMARKs, `timeoutSeconds`, resuming from a resourceVersion, 410 after a
//! compaction, selector transitions, Table and PartialObjectMetadata events, cuts, and the
//! counters of requests and bytes served.

use k8s_api_standin::{agent_pod, agent_service, node, Cluster, Fault, Kind, StandIn};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::net::IpAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use ureq::tls::{Certificate, RootCerts, TlsConfig};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cluster() -> Cluster {
    Cluster {
        nodes: (0..3)
            .map(|i| {
                node(
                    &format!("n{i}"),
                    &[ip(&format!("198.18.0.{}", i + 1))],
                    i == 0,
                    true,
                )
            })
            .collect(),
        pods: (0..3)
            .map(|i| {
                agent_pod(
                    &format!("a{i}"),
                    "kube-system",
                    &format!("n{i}"),
                    &[ip(&format!("198.18.1.{}", i + 1))],
                    &[],
                    "Running",
                    true,
                )
            })
            .collect(),
        services: vec![agent_service(
            "kube-system",
            "k8s-network-test-daemonset",
            false,
        )],
        ..Cluster::default()
    }
}

struct Rig {
    s: StandIn,
    agent: ureq::Agent,
    token: String,
    _dir: tempfile::TempDir,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let s = StandIn::start("127.0.0.1:0".parse().unwrap(), cluster(), dir.path()).unwrap();
    let ca = Certificate::from_pem(&std::fs::read(s.ca_path()).unwrap()).unwrap();
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::Specific(Arc::new(vec![ca])))
        .build();
    let agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let token = s.token();
    Rig {
        s,
        agent,
        token,
        _dir: dir,
    }
}

impl Rig {
    /// Opens `path` and sends each line (or `"<end>"` at a clean end, `"<cut: ...>"` when the
    /// stream breaks) on the channel.
    fn stream(&self, path: &str, accept: &str) -> mpsc::Receiver<String> {
        let resp = self
            .agent
            .get(format!("{}{path}", self.s.url()))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", accept)
            .call()
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/json");
        let (tx, rx) = mpsc::channel();
        let reader = resp.into_body().into_reader();
        std::thread::spawn(move || {
            let mut r = BufReader::new(reader);
            loop {
                let mut line = String::new();
                match r.read_line(&mut line) {
                    Ok(0) => {
                        let _ = tx.send("<end>".into());
                        return;
                    }
                    Ok(_) if line.ends_with('\n') => {
                        let _ = tx.send(line.trim_end().to_string());
                    }
                    Ok(_) => {
                        let _ = tx.send(format!("<cut: {line}>"));
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(format!("<cut: {e}>"));
                        return;
                    }
                }
            }
        });
        rx
    }

    fn get(&self, path: &str, accept: &str) -> String {
        let mut resp = self
            .agent
            .get(format!("{}{path}", self.s.url()))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", accept)
            .call()
            .unwrap();
        let mut body = String::new();
        resp.body_mut()
            .as_reader()
            .read_to_string(&mut body)
            .unwrap();
        body
    }
}

fn next(rx: &mpsc::Receiver<String>) -> Value {
    let line = rx.recv_timeout(Duration::from_secs(10)).expect("an event");
    serde_json::from_str(&line).unwrap_or(Value::String(line))
}

fn summary(e: &Value) -> String {
    let o = &e["object"];
    let name = o["metadata"]["name"]
        .as_str()
        .or_else(|| o["rows"][0]["cells"][0].as_str())
        .unwrap_or("");
    format!("{} {name}", e["type"].as_str().unwrap_or("?"))
}

const JSON: &str = "application/json";

#[test]
fn initial_events_changes_bookmarks_and_timeout() {
    let r = rig();
    r.s.set_bookmark_interval(Duration::from_millis(300));
    let rv = r.s.resource_version();
    let rx = r.stream(
        "/api/v1/nodes?watch=true&allowWatchBookmarks=true&timeoutSeconds=2",
        JSON,
    );
    // resourceVersion unset: every node first, as ADDED.
    let first: Vec<String> = (0..3).map(|_| summary(&next(&rx))).collect();
    assert_eq!(first, ["ADDED n0", "ADDED n1", "ADDED n2"]);
    // A change while watching: one MODIFIED with its own resourceVersion.
    let mut c = cluster();
    c.nodes[1]["spec"]["unschedulable"] = true.into();
    assert_eq!(r.s.set_cluster(c), 1);
    let e = next(&rx);
    assert_eq!(summary(&e), "MODIFIED n1");
    assert_eq!(
        e["object"]["metadata"]["resourceVersion"],
        (rv + 1).to_string()
    );
    assert_eq!(
        e["object"]["kind"], "Node",
        "watch objects carry their kind"
    );
    // Quiet: BOOKMARKs with the current resourceVersion, then the end at timeoutSeconds
    // (a clean chunked end).
    let mut bookmarks = 0;
    loop {
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        if line == "<end>" {
            break;
        }
        let e: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(e["type"], "BOOKMARK", "{line}");
        assert_eq!(
            e["object"]["metadata"]["resourceVersion"],
            (rv + 1).to_string()
        );
        bookmarks += 1;
    }
    assert!(bookmarks >= 2, "{bookmarks} bookmarks in 2 s at 300 ms");
}

#[test]
fn resume_from_a_resource_version_and_410_after_compaction() {
    let r = rig();
    let rv = r.s.resource_version();
    let mut c = cluster();
    c.nodes.remove(2);
    c.nodes.push(node("n9", &[ip("198.18.0.9")], false, true));
    r.s.set_cluster(c);
    // Resuming from before the change replays it, nothing more.
    let rx = r.stream(
        &format!("/api/v1/nodes?watch=1&resourceVersion={rv}&timeoutSeconds=1"),
        JSON,
    );
    let got: Vec<String> = (0..2).map(|_| summary(&next(&rx))).collect();
    assert_eq!(got, ["ADDED n9", "DELETED n2"]);
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "<end>");
    // After a compaction, the same resourceVersion is too old: HTTP 200 and one ERROR event.
    r.s.compact();
    let rx = r.stream(
        &format!("/api/v1/nodes?watch=true&resourceVersion={rv}"),
        JSON,
    );
    let e = next(&rx);
    assert_eq!(e["type"], "ERROR");
    assert_eq!(e["object"]["code"], 410);
    assert_eq!(e["object"]["reason"], "Expired");
    assert_eq!(
        e["object"]["message"],
        format!(
            "too old resource version: {rv} ({})",
            r.s.resource_version()
        )
    );
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "<end>");
}

#[test]
fn selector_transitions_and_derived_slices() {
    let r = rig();
    let rv = r.s.resource_version();
    let sel = "labelSelector=kubernetes.io%2Fservice-name%3Dk8s-network-test-daemonset";
    let rx = r.stream(
        &format!("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices?watch=true&resourceVersion={rv}&{sel}"),
        JSON,
    );
    // The pod a2 goes away: its slice is re-sent without it.
    let mut c = cluster();
    c.pods.remove(2);
    r.s.set_cluster(c);
    let e = next(&rx);
    assert_eq!(e["type"], "MODIFIED");
    assert_eq!(e["object"]["endpoints"].as_array().unwrap().len(), 2);
    // A pod watch by label: the label removed reads as DELETED to it.
    let before = r.s.resource_version();
    let rx = r.stream(
        &format!("/api/v1/namespaces/kube-system/pods?watch=true&resourceVersion={before}&labelSelector=app.kubernetes.io%2Fname%3Dk8s-network-test-daemonset"),
        JSON,
    );
    let mut p = agent_pod(
        "a0",
        "kube-system",
        "n0",
        &[ip("198.18.1.1")],
        &[],
        "Running",
        true,
    );
    p["metadata"]["labels"] = serde_json::json!({ "app": "other" });
    r.s.put(Kind::Pods, p);
    let e = next(&rx);
    assert_eq!(summary(&e), "DELETED a0");
    // With the resourceVersion of the change (the slice that lost a0 came after it).
    assert_eq!(
        e["object"]["metadata"]["resourceVersion"],
        (before + 1).to_string()
    );
}

#[test]
fn table_and_metadata_watches() {
    let r = rig();
    r.s.set_bookmark_interval(Duration::from_millis(200));
    let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let rx = r.stream(
        "/api/v1/nodes?watch=true&includeObject=None&allowWatchBookmarks=true&timeoutSeconds=5",
        table,
    );
    let first = next(&rx);
    assert_eq!(first["object"]["kind"], "Table");
    assert!(
        first["object"]["columnDefinitions"].is_array(),
        "the first event has the columns"
    );
    let second = next(&rx);
    assert_eq!(
        second["object"]["columnDefinitions"],
        Value::Null,
        "later ones do not"
    );
    assert_eq!(second["object"]["rows"][0]["object"], Value::Null);
    assert_eq!(second["object"]["rows"][0]["cells"][0], "n1");
    let _third = next(&rx);
    // A bookmark in a Table watch is a Table too, of an empty node.
    let b = next(&rx);
    assert_eq!(b["type"], "BOOKMARK");
    assert_eq!(b["object"]["kind"], "Table");
    assert_eq!(
        b["object"]["metadata"]["resourceVersion"],
        r.s.resource_version().to_string()
    );
    assert_eq!(b["object"]["rows"][0]["cells"][0], "");
    // Lists too: Table rows, or PartialObjectMetadata, or full objects when the server
    // ignores representations.
    let list: Value =
        serde_json::from_str(&r.get("/api/v1/nodes?includeObject=None", table)).unwrap();
    assert_eq!(list["rows"].as_array().unwrap().len(), 3);
    let raw = r.get("/api/v1/nodes", table);
    assert!(raw.contains("\\u003cnone\\u003e"), "escaped like Go: {raw}");
    let meta: Value = serde_json::from_str(&r.get(
        "/api/v1/namespaces/kube-system/pods",
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
    ))
    .unwrap();
    assert_eq!(meta["kind"], "PartialObjectMetadataList");
    assert_eq!(meta["items"][0]["kind"], "PartialObjectMetadata");
    assert!(meta["items"][0].get("status").is_none());
    r.s.set_representations(false);
    let full: Value = serde_json::from_str(&r.get("/api/v1/nodes", table)).unwrap();
    assert_eq!(full["kind"], "NodeList");
}

#[test]
fn cuts_and_counters() {
    let r = rig();
    // CutWatch: the stream stops mid-event, without the chunked terminator.
    r.s.set_fault_for(Fault::CutWatch { after_bytes: 700 }, 1);
    // Lists do not take the fault.
    assert!(r.get("/api/v1/nodes", JSON).contains("NodeList"));
    let rx = r.stream("/api/v1/nodes?watch=true", JSON);
    let mut seen = Vec::new();
    loop {
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        if line.starts_with("<cut") {
            break;
        }
        assert_ne!(line, "<end>", "a clean end instead of a cut");
        seen.push(line);
    }
    assert!(seen.len() < 3, "cut before all three nodes: {}", seen.len());
    // cut_watches(): every open stream ends abruptly.
    let rx = r.stream("/api/v1/nodes?watch=true", JSON);
    for _ in 0..3 {
        next(&rx);
    }
    r.s.cut_watches();
    assert!(rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .starts_with("<cut"));
    // Counters: requests and bytes per path, representation and verb.
    r.s.reset_served();
    let body = r.get("/api/v1/nodes", JSON);
    let served = r.s.served();
    assert_eq!(served.len(), 1);
    assert_eq!(
        (
            served[0].path.as_str(),
            served[0].repr,
            served[0].watch,
            served[0].requests
        ),
        ("/api/v1/nodes", "full", false, 1)
    );
    assert!(served[0].bytes > body.len() as u64, "head and body");
    let health = r.get("/livez", "text/plain");
    assert_eq!(health, "ok");
}
