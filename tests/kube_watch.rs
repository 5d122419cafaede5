//! Discovery by list-then-watch against the HTTPS API stand-in (loopback, its own CA, bearer
//! token checked): one list per resource, then watches that follow every change, resume from
//! the last resourceVersion (BOOKMARKs included) after a cut, list afresh after a 410 or an
//! ERROR event, back off within their cap while the API is down, understand Table rows and
//! full objects alike, refuse an oversized event, fall back to watching pods when the agents'
//! Service is missing, and learn both address families of nodes in a dual-stack cluster.

use k8s_api_standin::{
    agent_pod, agent_service, deleting, dns_endpoint_slice, dns_service, node, Cluster,
    DnsEndpoint, Fault, Kind, Logged, StandIn,
};
use k8s_network_test_daemonset::kube::{Client, Current, Discovery, Settings, WatchOptions};
use std::net::IpAddr;
use std::time::{Duration, Instant};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const SERVICE: &str = "k8s-network-test-daemonset";
const NODES: &str = "/api/v1/nodes";
const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices";
const PODS: &str = "/api/v1/namespaces/kube-system/pods";

/// `n` nodes with an agent each (dual-stack when asked), the agents' Service, kube-dns.
fn cluster(n: usize, dual: bool) -> Cluster {
    let mut c = Cluster::default();
    for i in 0..n {
        let mut host = vec![ip(&format!("198.18.0.{}", i + 1))];
        let mut pod = vec![ip(&format!("198.18.1.{}", i + 1))];
        if dual {
            host.push(ip(&format!("2001:db8::{:x}", i + 1)));
            pod.push(ip(&format!("2001:db8::1:{:x}", i + 1)));
        }
        c.nodes
            .push(node(&format!("node-{i}"), &host, i == 0, true));
        c.pods.push(agent_pod(
            &format!("agent-{i}"),
            "kube-system",
            &format!("node-{i}"),
            &pod,
            &host,
            "Running",
            true,
        ));
    }
    c.services.push(agent_service("kube-system", SERVICE, dual));
    c.services.push(dns_service(&[ip("198.18.3.10")]));
    c.endpointslices.push(dns_endpoint_slice(
        "kube-dns-v4",
        "IPv4",
        &[DnsEndpoint::ready(ip("198.18.2.1"), "coredns-a", "node-0")],
    ));
    c
}

struct Setup {
    server: StandIn,
    _dir: tempfile::TempDir,
}

fn setup(c: Cluster) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let server = StandIn::start("127.0.0.1:0".parse().unwrap(), c, dir.path()).unwrap();
    server.set_bookmark_interval(Duration::from_millis(200));
    Setup { server, _dir: dir }
}

impl Setup {
    fn client(&self) -> Client {
        Client::new(Settings {
            api_server: self.server.url(),
            token_file: self.server.token_path(),
            ca_file: self.server.ca_path(),
            namespace: "kube-system".into(),
            selector: "app.kubernetes.io/name=k8s-network-test-daemonset".into(),
            dns_namespace: "kube-system".into(),
            dns_service: "kube-dns".into(),
            timeout: Duration::from_secs(5),
            discovery_timeout: Duration::from_secs(5),
            proxy: None,
        })
        .unwrap()
    }

    fn discovery(&self, options: WatchOptions) -> Discovery {
        Discovery::start(self.client(), options).unwrap()
    }

    fn since(&self, from: usize) -> Vec<Logged> {
        self.server.requests().split_off(from)
    }
}

/// Short watches and back-off, so the tests see restarts and recoveries in seconds.
fn quick() -> WatchOptions {
    WatchOptions {
        agent_service: SERVICE.into(),
        watch_timeout: (Duration::from_secs(2), Duration::from_secs(3)),
        silence: Duration::from_secs(3),
        backoff: (Duration::from_millis(100), Duration::from_millis(400)),
        ..WatchOptions::default()
    }
}

fn param<'a>(r: &'a Logged, key: &str) -> Option<&'a str> {
    r.query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn is_watch(r: &Logged) -> bool {
    param(r, "watch") == Some("true")
}

fn lists(log: &[Logged]) -> Vec<&str> {
    log.iter()
        .filter(|r| !is_watch(r) && [NODES, SLICES, PODS].contains(&r.path.as_str()))
        .map(|r| r.path.as_str())
        .collect()
}

/// Polls rounds until `want` holds (or fails after `limit`); returns the last round.
fn until(d: &Discovery, limit: Duration, want: impl Fn(&Current) -> bool) -> Current {
    let end = Instant::now() + limit;
    loop {
        let c = d.current();
        if want(&c) {
            return c;
        }
        assert!(Instant::now() < end, "not reached within {limit:?}: {c:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn agent_names(c: &Current) -> Vec<String> {
    let s = c.snapshot.as_ref().expect("a snapshot");
    s.agents.iter().map(|a| a.name.clone()).collect()
}

fn node_names(c: &Current) -> Vec<String> {
    let s = c.snapshot.as_ref().expect("a snapshot");
    s.nodes.iter().map(|n| n.name.clone()).collect()
}

#[test]
fn lists_once_then_follows_changes_through_watches() {
    let s = setup(cluster(3, false));
    let d = s.discovery(WatchOptions {
        watch_timeout: (Duration::from_secs(30), Duration::from_secs(60)),
        ..quick()
    });
    let first = until(&d, Duration::from_secs(10), |c| c.snapshot.is_some());
    assert_eq!(first.api_error, None);
    assert_eq!(first.age, Duration::ZERO);
    let snap = first.snapshot.clone().unwrap();
    assert_eq!(agent_names(&first), ["agent-0", "agent-1", "agent-2"]);
    let a = &snap.agents[1];
    assert_eq!(
        (a.node.as_str(), a.pod_ips.clone()),
        ("node-1", vec![ip("198.18.1.2")])
    );
    assert!(a.ready && a.phase == "Running" && !a.deleting);
    assert_eq!(node_names(&first), ["node-0", "node-1", "node-2"]);
    assert!(snap.nodes[0].control_plane && snap.nodes[1].ready);
    assert_eq!(snap.nodes[2].internal_ips, vec![ip("198.18.0.3")]);
    assert_eq!(snap.dns.service_ips, vec![ip("198.18.3.10")]);
    assert_eq!(snap.dns.instances.len(), 1);

    // What was asked, and how: the Services, one list per resource (from the watch
    // cache), then watches from each list's resourceVersion with bookmarks and a timeout
    // in the configured range; nodes as Table rows without objects.
    let log = s.server.requests();
    let mut l = lists(&log);
    l.sort();
    assert_eq!(l, [NODES, SLICES, SLICES], "{log:#?}");
    for r in log.iter().filter(|r| is_watch(r)) {
        assert_eq!(param(r, "allowWatchBookmarks"), Some("true"));
        let t: u64 = param(r, "timeoutSeconds").unwrap().parse().unwrap();
        assert!((30..=60).contains(&t), "{r:?}");
        assert!(param(r, "resourceVersion").is_some_and(|v| v.parse::<u64>().is_ok()));
        if r.path == NODES {
            assert_eq!(param(r, "includeObject"), Some("None"));
            assert!(r
                .accept
                .as_deref()
                .unwrap()
                .starts_with("application/json;as=Table;v=v1;g=meta.k8s.io"));
        }
    }
    assert!(log
        .iter()
        .any(|r| r.path == format!("/api/v1/namespaces/kube-system/services/{SERVICE}")));

    // Changes arrive as events; the next round sees them, with no new list.
    let n = s.server.requests().len();
    let mut c = cluster(3, false);
    c.pods.remove(2); // agent-2 gone
    c.pods[1] = deleting(c.pods[1].clone());
    c.nodes
        .push(node("node-3", &[ip("198.18.0.4")], false, false));
    c.nodes[1]["spec"]["unschedulable"] = true.into();
    s.server.set_cluster(c);
    let now = until(&d, Duration::from_secs(5), |c| {
        node_names(c).len() == 4 && agent_names(c).len() == 2
    });
    let snap = now.snapshot.unwrap();
    assert!(snap.agents[1].deleting, "{:?}", snap.agents);
    assert!(snap.nodes[1].unschedulable);
    assert!(!snap.nodes[3].ready);
    assert!(lists(&s.since(n)).is_empty(), "no list for a change");
    // Every round probed the API once: /livez, nothing else.
    let probes = s.since(n).iter().filter(|r| r.path == "/livez").count();
    assert!(probes >= 1);
}

#[test]
fn bookmarks_advance_the_resource_version_a_watch_resumes_from() {
    let s = setup(cluster(2, false));
    let d = s.discovery(quick());
    until(&d, Duration::from_secs(10), |c| c.snapshot.is_some());
    // Writes elsewhere move the resourceVersion; only BOOKMARKs tell the watches.
    let n = s.server.requests().len();
    for i in 0..5 {
        let mut p = agent_pod(
            &format!("other-{i}"),
            "default",
            "node-0",
            &[],
            &[],
            "Pending",
            false,
        );
        p["metadata"]["labels"] = serde_json::json!({ "app": "other" });
        s.server.put(Kind::Pods, p);
    }
    let latest = s.server.resource_version();
    // At their timeout (2-3 s) the watches resume from the bookmarked resourceVersion.
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let resumed: Vec<Logged> = s
            .since(n)
            .into_iter()
            .filter(|r| is_watch(r) && r.path == NODES)
            .collect();
        if let Some(r) = resumed.first() {
            assert_eq!(
                param(r, "resourceVersion"),
                Some(latest.to_string().as_str())
            );
            break;
        }
        assert!(Instant::now() < end, "no resumed node watch");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(lists(&s.since(n)).is_empty(), "resumed, not re-listed");
    assert_eq!(d.current().api_error, None);
}

#[test]
fn a_cut_while_the_cluster_changes_loses_nothing() {
    let s = setup(cluster(4, false));
    let d = s.discovery(quick());
    until(&d, Duration::from_secs(10), |c| c.snapshot.is_some());
    let n = s.server.requests().len();
    // The API refuses everything; the open watches are cut; the cluster changes meanwhile.
    s.server.set_fault(Fault::internal_error());
    s.server.cut_watches();
    let mut c = cluster(4, false);
    c.nodes.remove(3);
    c.pods.remove(3);
    c.nodes
        .push(node("node-9", &[ip("198.18.0.99")], false, true));
    c.nodes[0]["status"]["conditions"][0]["status"] = "False".into();
    c.pods[1] = deleting(c.pods[1].clone());
    s.server.set_cluster(c);
    let down = until(&d, Duration::from_secs(5), |c| c.api_error.is_some());
    assert!(down.snapshot.is_some(), "the last known members stay");
    // Back: the watches resume from their resourceVersions and replay what they missed.
    s.server.clear_fault();
    let back = until(&d, Duration::from_secs(5), |c| {
        c.api_error.is_none() && node_names(c).contains(&"node-9".to_string())
    });
    assert_eq!(node_names(&back), ["node-0", "node-1", "node-2", "node-9"]);
    assert_eq!(agent_names(&back), ["agent-0", "agent-1", "agent-2"]);
    let snap = back.snapshot.unwrap();
    assert!(!snap.nodes[0].ready && snap.agents[1].deleting);
    assert!(
        lists(&s.since(n)).is_empty(),
        "resumed from the history, no list"
    );
    // A cut in the middle of an event: the event is read again on resume.
    let n = s.server.requests().len();
    s.server
        .set_fault_for(Fault::CutWatch { after_bytes: 100 }, 3);
    s.server.cut_watches();
    std::thread::sleep(Duration::from_millis(300));
    s.server.put(
        Kind::Nodes,
        node("node-10", &[ip("198.18.0.100")], false, true),
    );
    let after = until(&d, Duration::from_secs(5), |c| {
        node_names(c).contains(&"node-10".to_string()) && c.api_error.is_none()
    });
    assert!(after.snapshot.is_some());
    assert!(lists(&s.since(n)).is_empty());
}

#[test]
fn a_410_or_an_error_event_lists_afresh() {
    let s = setup(cluster(2, false));
    let d = s.discovery(quick());
    until(&d, Duration::from_secs(10), |c| c.snapshot.is_some());
    // The history is compacted and the watches cut: their resourceVersions are too old, so
    // the watch answers an ERROR 410 and the watcher lists afresh.
    let n = s.server.requests().len();
    s.server.set_fault(Fault::internal_error());
    s.server.cut_watches();
    s.server.set_cluster({
        let mut c = cluster(2, false);
        c.nodes
            .push(node("node-7", &[ip("198.18.0.7")], false, true));
        c
    });
    s.server.compact();
    s.server.clear_fault();
    let c = until(&d, Duration::from_secs(5), |c| {
        c.api_error.is_none() && node_names(c).len() == 3
    });
    assert_eq!(node_names(&c), ["node-0", "node-1", "node-7"]);
    // Each watcher lists once more (the slice watchers may still be resuming: wait).
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let log = s.since(n);
        let mut l = lists(&log);
        l.sort();
        if l == [NODES, SLICES, SLICES] {
            break;
        }
        assert!(l.len() < 3 && Instant::now() < end, "{l:?}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // An ERROR event of another kind (here a 500 inside a 200 watch answer): a new list.
    let n = s.server.requests().len();
    let error_event = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Internal error occurred: etcdserver: request timed out\",\"reason\":\"InternalError\",\"code\":500}}\n";
    s.server.set_fault_for(
        Fault::WatchEvent {
            line: error_event.into(),
        },
        1,
    );
    s.server.cut_watches();
    let end = Instant::now() + Duration::from_secs(5);
    while lists(&s.since(n)).is_empty() {
        assert!(
            Instant::now() < end,
            "no list after the ERROR event: {:#?}",
            s.since(n)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    until(&d, Duration::from_secs(5), |c| {
        c.api_error.is_none() && node_names(c).len() == 3
    });
}

#[test]
fn back_off_stays_within_its_cap_and_age_grows_while_the_api_is_down() {
    let s = setup(cluster(2, false));
    let d = s.discovery(quick());
    until(&d, Duration::from_secs(10), |c| c.snapshot.is_some());
    s.server.set_fault(Fault::CloseImmediately);
    let n = s.server.requests().len();
    let first = until(&d, Duration::from_secs(5), |c| c.api_error.is_some());
    std::thread::sleep(Duration::from_millis(1500));
    let later = d.current();
    assert!(later.api_error.is_some());
    assert!(
        later.age > first.age && later.age >= Duration::from_millis(1500),
        "{:?} then {:?}",
        first.age,
        later.age
    );
    assert!(later.snapshot.is_some());
    assert!(later.errors.contains(&"connect"), "{:?}", later.errors);
    // Three watchers retrying with back-off (100 ms doubling to 400 ms, jittered) for about
    // two seconds: a few attempts each, not a busy loop. (Connections closed before TLS are
    // not logged as requests; count them on the connect errors instead.)
    let attempts = s.since(n).len();
    assert!(attempts < 200, "{attempts}");
    // The API comes back: with no round to wake them, the watchers are back within their
    // cap (400 ms) and some slack.
    s.server.clear_fault();
    let end = Instant::now() + Duration::from_secs(4);
    std::thread::sleep(Duration::from_millis(1500));
    let c = until(
        &d,
        end.saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100)),
        |c| c.api_error.is_none(),
    );
    assert_eq!(c.age, Duration::ZERO);
}

#[test]
fn a_round_after_the_api_returns_sees_it_at_once() {
    let s = setup(cluster(2, false));
    // Long back-off: only the round's probe wakes the watchers.
    let d = s.discovery(WatchOptions {
        backoff: (Duration::from_secs(20), Duration::from_secs(30)),
        ..quick()
    });
    until(&d, Duration::from_secs(10), |c| c.snapshot.is_some());
    s.server.set_fault(Fault::CloseImmediately);
    s.server.cut_watches();
    until(&d, Duration::from_secs(5), |c| c.api_error.is_some());
    std::thread::sleep(Duration::from_millis(500));
    s.server.clear_fault();
    let start = Instant::now();
    let c = d.current();
    assert_eq!(c.api_error, None, "the very next round");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(c.age, Duration::ZERO);
}

#[test]
fn table_rows_and_full_objects_read_the_same() {
    let s = setup(cluster(3, false));
    let d = s.discovery(quick());
    let table = until(&d, Duration::from_secs(10), |c| c.snapshot.is_some())
        .snapshot
        .unwrap();
    drop(d);
    // A server (or proxy) that ignores as=Table answers NodeLists and Node events.
    s.server.set_representations(false);
    let d = s.discovery(quick());
    let full = until(&d, Duration::from_secs(10), |c| c.snapshot.is_some())
        .snapshot
        .unwrap();
    assert_eq!(table, full);
    s.server.put(
        Kind::Nodes,
        node("node-5", &[ip("198.18.0.5")], false, true),
    );
    until(&d, Duration::from_secs(5), |c| node_names(c).len() == 4);
    // And --once, through the same code.
    let once = Discovery::once(&s.client(), &quick()).unwrap();
    assert_eq!(once.nodes.len(), 4);
}

#[test]
fn an_oversized_event_is_refused_not_buffered() {
    let s = setup(cluster(2, false));
    s.server.set_representations(false);
    let d = s.discovery(quick());
    until(&d, Duration::from_secs(10), |c| c.snapshot.is_some());
    // A 3 MB node (a huge annotation): over the 2 MiB line cap.
    let mut big = node("node-big", &[ip("198.18.0.50")], false, true);
    big["metadata"]["annotations"] = serde_json::json!({ "x": "y".repeat(3 << 20) });
    s.server.put(Kind::Nodes, big);
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while !seen.contains(&"too-large") {
        seen.extend(d.current().errors);
        assert!(Instant::now() < end, "{seen:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The list (parsed from the stream into small structs) still has it.
    until(&d, Duration::from_secs(5), |c| {
        node_names(c).contains(&"node-big".to_string())
    });
}

#[test]
fn without_the_agents_service_the_pods_are_watched() {
    let mut c = cluster(3, false);
    c.services.retain(|s| s["metadata"]["name"] != SERVICE);
    let s = setup(c);
    let d = s.discovery(quick());
    let c = until(&d, Duration::from_secs(10), |c| c.snapshot.is_some());
    assert_eq!(agent_names(&c), ["agent-0", "agent-1", "agent-2"]);
    let snap = c.snapshot.unwrap();
    assert_eq!(
        snap.agents[0].host_ips,
        vec![ip("198.18.0.1")],
        "full pods carry host IPs"
    );
    let log = s.server.requests();
    assert!(lists(&log).contains(&PODS));
    assert!(log.iter().any(|r| is_watch(r)
        && r.path == PODS
        && param(r, "labelSelector") == Some("app.kubernetes.io/name=k8s-network-test-daemonset")));
    // An older manifest's RBAC cannot read the Service (403): the pods then (the first
    // request of a --once discovery is that Service GET).
    s.server.set_cluster(cluster(3, false));
    s.server.set_fault_for(Fault::forbidden("services"), 1);
    let once = Discovery::once(&s.client(), &quick()).unwrap();
    assert_eq!(once.agents.len(), 3);
    assert_eq!(
        once.agents[0].host_ips,
        vec![ip("198.18.0.1")],
        "from the pods"
    );
    // The Service appears: at their next start the agents come from its slices.
    let n = s.server.requests().len();
    let end = Instant::now() + Duration::from_secs(10);
    while !lists(&s.since(n)).contains(&SLICES) {
        assert!(Instant::now() < end);
        std::thread::sleep(Duration::from_millis(100));
    }
    until(&d, Duration::from_secs(5), |c| {
        c.snapshot
            .as_ref()
            .is_some_and(|s| s.agents.len() == 3 && s.agents[0].host_ips.is_empty())
    });
}

#[test]
fn dual_stack_nodes_keep_both_families() {
    let s = setup(cluster(3, true));
    let d = s.discovery(quick());
    let c = until(&d, Duration::from_secs(10), |c| {
        c.snapshot
            .as_ref()
            .is_some_and(|s| s.nodes.iter().all(|n| n.internal_ips.len() == 2))
    });
    let snap = c.snapshot.unwrap();
    assert_eq!(
        snap.nodes[1].internal_ips,
        vec![ip("198.18.0.2"), ip("2001:db8::2")]
    );
    assert_eq!(
        snap.agents[1].pod_ips,
        vec![ip("198.18.1.2"), ip("2001:db8::1:2")]
    );
    // Learned from full Node objects (a few: one GET each), beside the Table watch.
    let log = s.server.requests();
    let gets = log
        .iter()
        .filter(|r| r.path.starts_with("/api/v1/nodes/"))
        .count();
    assert_eq!(gets, 3, "{log:#?}");
    // A node that joins is learned too.
    s.server.put(
        Kind::Nodes,
        node(
            "node-8",
            &[ip("198.18.0.8"), ip("2001:db8::8")],
            false,
            true,
        ),
    );
    until(&d, Duration::from_secs(10), |c| {
        c.snapshot.as_ref().is_some_and(|s| {
            s.nodes
                .iter()
                .any(|n| n.name == "node-8" && n.internal_ips.len() == 2)
        })
    });
    // --once too.
    let once = Discovery::once(&s.client(), &quick()).unwrap();
    assert!(
        once.nodes.iter().all(|n| n.internal_ips.len() == 2),
        "{:?}",
        once.nodes
    );
}

/// The node with a new heartbeat time, as the kubelet's status update every 5 minutes.
fn heartbeat(n: &serde_json::Value, t: u64) -> serde_json::Value {
    let mut n = n.clone();
    n["status"]["conditions"][0]["lastHeartbeatTime"] =
        format!("2026-06-15T05:{:02}:{:02}Z", t / 60 % 60, t % 60).into();
    n
}

#[test]
fn a_steady_cluster_costs_one_probe_per_round_and_small_events() {
    let c = cluster(50, false);
    let nodes = c.nodes.clone();
    let s = setup(c);
    let d = s.discovery(WatchOptions {
        watch_timeout: (Duration::from_secs(1800), Duration::from_secs(3600)),
        ..quick()
    });
    until(&d, Duration::from_secs(10), |c| c.snapshot.is_some());
    let n = s.server.requests().len();
    s.server.reset_served();
    // Twenty rounds while every node reports its status once (all nodes in a steady cluster
    // do, every 5 minutes) and bookmarks come every 200 ms.
    for round in 0..20 {
        for (i, node) in nodes.iter().enumerate().skip(round * 3).take(3) {
            s.server
                .put(Kind::Nodes, heartbeat(node, (round * 3 + i) as u64));
        }
        let c = d.current();
        assert_eq!(c.api_error, None);
        assert_eq!(c.snapshot.as_ref().unwrap().nodes.len(), 50);
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = s.since(n);
    assert!(lists(&log).is_empty(), "no list in steady state: {log:#?}");
    assert!(log.iter().all(|r| !is_watch(r)), "no watch restarted");
    let probes = log.iter().filter(|r| r.path == "/livez").count();
    assert_eq!(
        (probes, log.len()),
        (20, 20),
        "one probe per round, nothing else"
    );
    let served = s.server.served();
    let node_watch = served
        .iter()
        .find(|c| c.path == NODES && c.watch)
        .expect("node watch bytes");
    // 60 heartbeats as Table rows without objects, plus bookmarks: well under 1 KB each.
    assert!(node_watch.bytes < 60 * 1024, "{node_watch:?}");
    let probe = served.iter().find(|c| c.path == "/livez").unwrap();
    assert!(probe.bytes / probe.requests < 300, "{probe:?}");
}
