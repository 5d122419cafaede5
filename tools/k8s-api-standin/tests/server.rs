//! The stand-in over real TLS with a real client (ureq 3), inside a network namespace on
//! 198.19.231.1 / 2001:db8:5a7::1 (loopback of a namespace each test creates).

use cluster_box::ip;
use cluster_box::netns::{need_root, Netns};
use k8s_api_standin::api::EXPIRED_MESSAGE;
use k8s_api_standin::{
    agent_pod, dns_endpoint_slice, dns_service, node, trusting_client, Cluster, DnsEndpoint, Fault,
    StandIn,
};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const V4: &str = "198.19.231.1";
const V6: &str = "2001:db8:5a7::1";

/// Runs `f` on a thread inside a fresh namespace whose loopback carries V4 and V6.
fn in_netns<T: Send + 'static>(tag: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = Netns::new(tag);
    ns.ip(&["addr", "add", &format!("{V4}/32"), "dev", "lo"]);
    ns.ip(&["addr", "add", &format!("{V6}/128"), "dev", "lo", "nodad"]);
    ns.run(f)
}

/// Three nodes, five agent pods, one other pod, the kube-dns Service and a slice.
fn cluster() -> Cluster {
    let mut pods: Vec<Value> = (0..5)
        .map(|i| {
            let ipv = [ip(&format!("198.18.10.{}", i + 1))];
            agent_pod(
                &format!("agent-{i}"),
                "kube-system",
                &format!("n{}", i % 3),
                &ipv,
                &ipv,
                "Running",
                true,
            )
        })
        .collect();
    let mut other = agent_pod("other", "default", "n1", &[], &[], "Pending", false);
    other["metadata"]["labels"] = serde_json::json!({ "app": "other" });
    pods.push(other);
    Cluster {
        pods,
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
        endpointslices: vec![dns_endpoint_slice(
            "kube-dns-abcde",
            "IPv4",
            &[DnsEndpoint::ready(ip("198.18.10.50"), "coredns-1", "n0")],
        )],
        services: vec![dns_service(&[ip("198.18.100.10")])],
    }
}

struct Client {
    agent: ureq::Agent,
    base: String,
    token: String,
}

struct Reply {
    code: u16,
    retry_after: Option<String>,
    content_type: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl Client {
    fn new(s: &StandIn, timeout: Duration) -> Client {
        let agent = trusting_client(&s.ca_path(), timeout);
        let token = std::fs::read_to_string(s.token_path()).unwrap();
        Client {
            agent,
            base: s.url(),
            token,
        }
    }

    fn get_as(&self, path: &str, token: Option<&str>) -> Result<Reply, ureq::Error> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req.call()?;
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let retry_after = header("retry-after");
        let content_type = header("content-type").unwrap_or_default();
        let code = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()?;
        Ok(Reply {
            code,
            retry_after,
            content_type,
            body,
        })
    }

    fn get(&self, path: &str) -> Reply {
        let token = self.token.clone();
        self.get_as(path, Some(&token))
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

fn start(addr: &str, dir: &std::path::Path) -> StandIn {
    let listen = SocketAddr::new(ip(addr), 0);
    StandIn::start(listen, cluster(), dir).unwrap()
}

fn names(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn authentication_and_request_log() {
    if !need_root("authentication_and_request_log") {
        return;
    }
    in_netns("sauth", || {
        let dir = tempfile::tempdir().unwrap();
        let s = start(V4, dir.path());
        let c = Client::new(&s, Duration::from_secs(5));
        assert_eq!(std::fs::read_to_string(s.token_path()).unwrap(), s.token());
        let unauthorized = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;
        let r = c.get_as("/api/v1/nodes", None).unwrap();
        assert_eq!((r.code, r.body.as_str()), (401, unauthorized));
        assert_eq!(c.get_as("/api/v1/nodes", Some("wrong")).unwrap().code, 401);
        assert_eq!(c.get("/api/v1/nodes").code, 200);
        s.set_token("rotated");
        assert_eq!(c.get("/api/v1/nodes").code, 401);
        assert_eq!(
            c.get_as("/api/v1/nodes", Some("rotated")).unwrap().code,
            200
        );
        let log = s.requests();
        assert_eq!(log.len(), 5);
        assert_eq!(log[0].authorization, None);
        assert_eq!(log[1].authorization.as_deref(), Some("Bearer wrong"));
        assert_eq!(
            (log[2].method.as_str(), log[2].path.as_str()),
            ("GET", "/api/v1/nodes")
        );
    });
}

#[test]
fn lists_with_selectors_and_named_objects() {
    if !need_root("lists_with_selectors_and_named_objects") {
        return;
    }
    in_netns("ssel", || {
        let dir = tempfile::tempdir().unwrap();
        let s = start(V4, dir.path());
        let c = Client::new(&s, Duration::from_secs(5));
        let sel = "labelSelector=app.kubernetes.io%2Fname%3Dk8s-network-test-daemonset%2Capp.kubernetes.io%2Fcomponent%3Dagent";
        let r = c.get(&format!("/api/v1/namespaces/kube-system/pods?{sel}"));
        let v = r.json();
        assert_eq!(
            (v["kind"].as_str(), v["apiVersion"].as_str()),
            (Some("PodList"), Some("v1"))
        );
        assert_eq!(v["metadata"]["resourceVersion"], "1000");
        assert_eq!(names(&v).len(), 5);
        assert!(
            v["items"][0].get("kind").is_none(),
            "list items carry no kind"
        );
        let v = c
            .get(&format!(
                "/api/v1/pods?{sel}&fieldSelector=spec.nodeName%3Dn1"
            ))
            .json();
        assert_eq!(names(&v), ["agent-1", "agent-4"]);
        let v = c
            .get("/api/v1/pods?labelSelector=app%20in%20(other,x)")
            .json();
        assert_eq!(names(&v), ["other"]);
        let v = c.get("/api/v1/pods?labelSelector=%21app").json();
        assert_eq!(names(&v).len(), 5);
        let v = c
            .get("/api/v1/nodes?fieldSelector=metadata.name!%3Dn0")
            .json();
        assert_eq!(
            (v["kind"].as_str(), names(&v)),
            (Some("NodeList"), vec!["n1".to_string(), "n2".to_string()])
        );
        let v = c.get("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dkube-dns").json();
        assert_eq!(
            (v["kind"].as_str(), v["apiVersion"].as_str()),
            (Some("EndpointSliceList"), Some("discovery.k8s.io/v1"))
        );
        assert_eq!(names(&v), ["kube-dns-abcde"]);
        let v = c
            .get("/api/v1/namespaces/kube-system/services/kube-dns")
            .json();
        assert_eq!(v["spec"]["clusterIP"], "198.18.100.10");
        let r = c.get("/api/v1/namespaces/default/services/kube-dns");
        assert_eq!(r.code, 404);
        assert_eq!(r.json()["message"], "services \"kube-dns\" not found");
        assert_eq!(r.json()["reason"], "NotFound");
        let r = c.get("/api/v1/foos");
        assert_eq!(
            (r.code, r.json()["message"].as_str()),
            (
                404,
                Some("the server could not find the requested resource")
            )
        );
        let r = c.get("/api/v1/pods?fieldSelector=spec.bogus%3Dx");
        assert_eq!(
            (r.code, r.json()["message"].as_str()),
            (400, Some("field label not supported: spec.bogus"))
        );
        assert_eq!(c.get("/api/v1/pods?labelSelector=a%20b%3Dc").code, 400);
        let q = &s.requests()[0].query;
        assert_eq!(
            q[0].1,
            "app.kubernetes.io/name=k8s-network-test-daemonset,app.kubernetes.io/component=agent"
        );
    });
}

/// Follows continue tokens; returns the names and the number of pages.
fn all_pages(c: &Client, first: &str) -> (Vec<String>, usize) {
    let (mut all, mut pages) = (Vec::new(), 0);
    let mut path = first.to_string();
    loop {
        let v = c.get(&path).json();
        pages += 1;
        all.extend(names(&v));
        match v["metadata"]["continue"].as_str() {
            Some(t) => path = format!("/api/v1/pods?limit=2&continue={t}"),
            None => return (all, pages),
        }
        assert!(pages < 20, "paging does not end");
    }
}

#[test]
fn paging_resource_version_and_continue_errors() {
    if !need_root("paging_resource_version_and_continue_errors") {
        return;
    }
    in_netns("spage", || {
        let dir = tempfile::tempdir().unwrap();
        let s = start(V4, dir.path());
        let c = Client::new(&s, Duration::from_secs(5));
        let (all, pages) = all_pages(&c, "/api/v1/pods?limit=2");
        assert_eq!((all.len(), pages), (6, 3));
        // The watch cache ignores limit.
        let v = c.get("/api/v1/pods?limit=2&resourceVersion=0").json();
        assert_eq!(names(&v).len(), 6);
        assert!(v["metadata"].get("continue").is_none());
        // ... unless the fault forces paging.
        s.set_fault(Fault::PageAlways { limit: 2 });
        let (all, pages) = all_pages(&c, "/api/v1/pods?limit=500&resourceVersion=0");
        assert_eq!((all.len(), pages), (6, 3));
        s.clear_fault();

        let v = c.get("/api/v1/pods?limit=2").json();
        let token = v["metadata"]["continue"].as_str().unwrap().to_string();
        assert_eq!(v["metadata"]["remainingItemCount"], 4);
        let r = c.get(&format!(
            "/api/v1/pods?limit=2&continue={token}&resourceVersion=1000"
        ));
        assert_eq!(r.code, 400);
        assert_eq!(
            r.json()["message"],
            "specifying resource version is not allowed when using continue"
        );
        // Like etcd3's store: resourceVersion "" or "0" with continue is allowed and pages.
        let v = c
            .get(&format!(
                "/api/v1/pods?limit=2&continue={token}&resourceVersion=0"
            ))
            .json();
        assert_eq!(names(&v), ["agent-2", "agent-3"]);
        let r = c.get("/api/v1/pods?limit=2&continue=not-a-token");
        assert_eq!(
            (r.code, r.json()["reason"].as_str()),
            (400, Some("BadRequest"))
        );
        assert!(r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid continue token: continue key is not valid: "));
        s.set_fault_for(Fault::ExpireContinue, 1);
        assert_eq!(
            c.get(&format!("/api/v1/pods?limit=2&continue={token}"))
                .code,
            410
        );
        assert_eq!(
            c.get(&format!("/api/v1/pods?limit=2&continue={token}"))
                .code,
            200
        );

        s.set_cluster(cluster());
        assert_eq!(s.resource_version(), 1001);
        let r = c.get(&format!("/api/v1/pods?limit=2&continue={token}"));
        assert_eq!(r.code, 410);
        let v = r.json();
        assert_eq!(
            (v["reason"].as_str(), v["code"].as_u64()),
            (Some("Expired"), Some(410))
        );
        assert_eq!(v["message"], EXPIRED_MESSAGE);
    });
}

#[test]
fn status_faults_and_counts() {
    if !need_root("status_faults_and_counts") {
        return;
    }
    in_netns("sstat", || {
        let dir = tempfile::tempdir().unwrap();
        let s = start(V4, dir.path());
        let c = Client::new(&s, Duration::from_secs(5));
        s.set_fault_for(Fault::too_many_requests(), 2);
        for _ in 0..2 {
            let r = c.get("/api/v1/nodes");
            assert_eq!((r.code, r.retry_after.as_deref()), (429, Some("1")));
            assert!(r.content_type.starts_with("text/plain"));
            assert_eq!(r.body, "Too many requests, please try again later.\n");
        }
        assert_eq!(c.get("/api/v1/nodes").code, 200);
        s.set_fault(Fault::forbidden("pods"));
        let r = c.get("/api/v1/pods");
        assert_eq!(
            (r.code, r.json()["reason"].as_str()),
            (403, Some("Forbidden"))
        );
        assert_eq!(
            c.get("/api/v1/pods").code,
            403,
            "without a count the fault stays"
        );
        s.set_fault(Fault::internal_error());
        assert_eq!(
            (
                c.get("/api/v1/pods").code,
                c.get("/api/v1/pods").json()["reason"].as_str()
            ),
            (500, Some("InternalError"))
        );
        s.set_fault(Fault::bad_gateway());
        let r = c.get("/api/v1/pods");
        assert_eq!(r.code, 502);
        assert!(r.body.starts_with("<html>") && r.content_type == "text/html");
        s.set_fault(Fault::plain_not_found());
        let r = c.get("/api/v1/pods");
        assert_eq!((r.code, r.body.as_str()), (404, "404: Page Not Found"));
        s.clear_fault();
        assert_eq!(c.get("/api/v1/pods").code, 200);
    });
}

#[test]
fn transport_faults() {
    if !need_root("transport_faults") {
        return;
    }
    in_netns("strans", || {
        let dir = tempfile::tempdir().unwrap();
        let mut s = start(V4, dir.path());
        let c = Client::new(&s, Duration::from_millis(700));
        s.set_fault_for(Fault::Hang, 1);
        let t = Instant::now();
        assert!(
            c.get_as("/api/v1/pods", Some(&c.token)).is_err(),
            "a hung request must time out"
        );
        assert!(t.elapsed() < Duration::from_secs(10));
        s.set_fault_for(Fault::Truncate, 1);
        assert!(
            c.get_as("/api/v1/pods", Some(&c.token)).is_err(),
            "a truncated body must be an error"
        );
        s.set_fault_for(Fault::CloseImmediately, 1);
        assert!(
            c.get_as("/api/v1/pods", Some(&c.token)).is_err(),
            "a closed connection must be an error"
        );
        assert_eq!(c.get("/api/v1/pods").code, 200, "faults with a count clear");

        let slow = Client::new(&s, Duration::from_secs(30));
        s.set_fault_for(Fault::Huge { bytes: 12_000_000 }, 1);
        let r = slow.get("/api/v1/pods");
        assert_eq!((r.code, r.body.len()), (200, 12_000_000));
        let v = r.json();
        assert_eq!(v["kind"], "PodList");
        assert!(v["items"].as_array().unwrap().len() > 1000);
        s.set_fault_for(Fault::Huge { bytes: 10 }, 1);
        assert_eq!(
            slow.get("/api/v1/pods").json()["items"],
            serde_json::json!([])
        );

        // stop() ends a hung connection too. The client would wait two minutes, so only the
        // stand-in closing the connection ends the request within the test's seconds; and a
        // stop() that waited for the hung thread would never return.
        s.set_fault(Fault::Hang);
        let patient = trusting_client(&s.ca_path(), Duration::from_secs(120));
        let url = format!("{}/api/v1/pods", s.url());
        let before = s.requests().len();
        let (ended_tx, ended_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = ended_tx.send(patient.get(url).call().map(|r| r.status().as_u16()));
        });
        let t = Instant::now();
        while s.requests().len() == before {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the request never arrived"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            ended_rx.try_recv().is_err(),
            "the hung request was answered"
        );
        let (stopped_tx, stopped_rx) = mpsc::channel();
        std::thread::spawn(move || {
            s.stop();
            let _ = stopped_tx.send(());
        });
        stopped_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("stop() returns while a connection hangs");
        let ended = ended_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("stop() ended the hung request (the client would have waited 120 s)");
        assert!(ended.is_err(), "no answer, a closed connection: {ended:?}");
    });
}

#[test]
fn ipv6_listener_and_certificate() {
    if !need_root("ipv6_listener_and_certificate") {
        return;
    }
    in_netns("sv6", || {
        let dir = tempfile::tempdir().unwrap();
        let s = start(V6, dir.path());
        assert!(
            s.url().starts_with(&format!("https://[{V6}]:")),
            "{}",
            s.url()
        );
        let c = Client::new(&s, Duration::from_secs(5));
        assert_eq!(c.get("/api/v1/nodes").code, 200);
    });
}
