//! What the alarms read from the API, against the local HTTPS stand-in (loopback, no
//! namespaces): which failing nodes are going away (one Node GET each, capped per round, kept
//! a minute), and the node watch limited to the nodes that run an agent
//! (`--expect-agent-on`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cluster_box::ips;
use k8s_api_standin::{deleting, node, Cluster, StandIn};
use k8s_network_test_daemonset::kube::{
    fates, Client, Discovery, Fate, Fates, Settings, WatchOptions,
};

struct Setup {
    server: StandIn,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn new(c: Cluster) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let server =
            StandIn::start("127.0.0.1:0".parse().unwrap(), c, dir.path()).expect("stand-in");
        Setup { server, _dir: dir }
    }

    fn client(&self) -> Client {
        Client::new(Settings {
            api_server: self.server.url(),
            token_file: self.server.token_path(),
            ca_file: self.server.ca_path(),
            namespace: "kube-system".into(),
            selector: "app.kubernetes.io/name=k8s-network-test-daemonset".into(),
            dns_namespace: "kube-system".into(),
            dns_service: "kube-dns".into(),
            timeout: Duration::from_secs(10),
            discovery_timeout: Duration::from_secs(20),
            proxy: None,
        })
        .expect("client")
    }

    /// Node GETs the stand-in has answered so far.
    fn node_gets(&self) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.starts_with("/api/v1/nodes/"))
            .count()
    }
}

fn scaled_down(mut n: serde_json::Value) -> serde_json::Value {
    n["spec"]["taints"] = serde_json::json!([
        {"key": "ToBeDeletedByClusterAutoscaler", "value": "1781499600", "effect": "NoSchedule"}
    ]);
    n
}

#[test]
fn going_away_nodes_are_read_once_per_minute_and_capped_per_round() {
    let mut c = Cluster::default();
    c.nodes
        .push(node("staying", &ips(&["198.18.0.1"]), false, true));
    c.nodes.push(deleting(node(
        "deleting",
        &ips(&["198.18.0.2"]),
        false,
        true,
    )));
    c.nodes.push(scaled_down(node(
        "scaled",
        &ips(&["198.18.0.3"]),
        false,
        false,
    )));
    for i in 0..15 {
        c.nodes.push(node(
            &format!("more-{i}"),
            &ips(&[&format!("198.18.2.{i}")]),
            false,
            true,
        ));
    }
    let s = Setup::new(c);
    let client = s.client();
    let f = Fates::default();
    let until = || Instant::now() + Duration::from_secs(10);
    let got = f.of(&client, &["deleting", "gone", "scaled", "staying"], until());
    assert_eq!(
        got,
        BTreeMap::from([
            ("deleting".to_string(), Fate::Deleting),
            // The API no longer has it: deleted, the watch has not told yet.
            ("gone".to_string(), Fate::Deleting),
            ("scaled".to_string(), Fate::ScaleDown),
        ])
    );
    assert_eq!(s.node_gets(), 4);
    // Kept: the next rounds ask nothing about them.
    let again = f.of(&client, &["deleting", "gone", "scaled", "staying"], until());
    assert_eq!(again, got);
    assert_eq!(s.node_gets(), 4);
    // Many failing nodes: at most MAX_GETS GETs a round, the rest in the next rounds.
    let more: Vec<String> = (0..15).map(|i| format!("more-{i}")).collect();
    let more: Vec<&str> = more.iter().map(String::as_str).collect();
    assert!(f.of(&client, &more, until()).is_empty());
    assert_eq!(s.node_gets(), 4 + fates::MAX_GETS);
    f.of(&client, &more, until());
    assert_eq!(s.node_gets(), 4 + 15);
    // Past the deadline (the API unreachable this round): only kept answers, no request.
    let fresh = Fates::default();
    assert!(fresh.of(&client, &["scaled"], Instant::now()).is_empty());
    assert_eq!(s.node_gets(), 4 + 15);
}

#[test]
fn the_node_watch_lists_only_the_nodes_that_run_an_agent() {
    let mut c = Cluster::default();
    c.nodes
        .push(node("linux-1", &ips(&["198.18.0.1"]), true, true));
    let mut windows = node("win-1", &ips(&["198.18.0.2"]), false, true);
    windows["metadata"]["labels"]["kubernetes.io/os"] = "windows".into();
    c.nodes.push(windows);
    let mut vk = node("vk-1", &ips(&["198.18.0.3"]), false, true);
    vk["metadata"]["labels"]["type"] = "virtual-kubelet".into();
    c.nodes.push(vk);
    let mut fargate = node("fargate-1", &ips(&["198.18.0.4"]), false, true);
    fargate["metadata"]["labels"]["eks.amazonaws.com/compute-type"] = "fargate".into();
    c.nodes.push(fargate);
    let mut arm = node("arm-1", &ips(&["198.18.0.5"]), false, true);
    arm["metadata"]["labels"]["kubernetes.io/arch"] = "arm64".into();
    c.nodes.push(arm);
    let mut s390x = node("s390x-1", &ips(&["198.18.0.6"]), false, true);
    s390x["metadata"]["labels"]["kubernetes.io/arch"] = "s390x".into();
    c.nodes.push(s390x);
    let s = Setup::new(c);
    let names = |selector: &str| -> Vec<String> {
        let options = WatchOptions {
            node_selector: selector.to_string(),
            ..WatchOptions::default()
        };
        let snap = Discovery::once(&s.client(), &options).expect("discovery");
        snap.nodes.into_iter().map(|n| n.name).collect()
    };
    // The manifest's rules (the agent's default --expect-agent-on).
    let manifest = "kubernetes.io/os in (linux),kubernetes.io/arch in (amd64,arm64),type notin (virtual-kubelet),eks.amazonaws.com/compute-type notin (fargate)";
    assert_eq!(names(manifest), ["arm-1", "linux-1"]);
    let sent: Vec<String> = s
        .server
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/nodes")
        .filter_map(|r| {
            r.query
                .iter()
                .find(|(k, _)| k == "labelSelector")
                .map(|(_, v)| v.clone())
        })
        .collect();
    assert_eq!(sent, [manifest]);
    assert_eq!(names("").len(), 6, "empty: every node");
}
