//! The shipped image, run the way the manifest runs it: three agent containers from the
//! FROM-scratch image on a user-defined Docker network (198.18.200.0/24), each with
//! `--user 65534:65534 --cap-drop ALL --read-only` and the ping sysctl, against the API
//! stand-in and a dnsmasq on the network's gateway address. Asserts a healthy round, then a
//! detected fault when one container is disconnected from the network.
//!
//! Needs Docker, root, and the image from `make image` (`make test` builds it first). In CI it
//! must run; elsewhere it is skipped with a message when something is missing.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cluster_box::dnsmasq::{Dnsmasq, Zone};
use cluster_box::lab::{failed_checks as failed, FAST_ROUNDS};
use cluster_box::{http, status};
use common::now;
use k8s_api_standin as api;
use serde_json::Value;

const SUBNET: &str = "198.18.200.0/24";
const GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 18, 200, 1);
const AGENTS: usize = 3;

fn image() -> String {
    std::env::var("NETTEST_IMAGE").unwrap_or_else(|_| {
        format!(
            "localhost/k8s-network-test-daemonset:{}",
            env!("CARGO_PKG_VERSION")
        )
    })
}

fn agent_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 200, 10 + i as u8)
}

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether this test can run; in CI a missing piece is a failure, not a skip.
fn can_run() -> bool {
    let missing = if unsafe { libc::geteuid() } != 0 {
        Some("root".to_string())
    } else if docker(&["version", "--format", "{{.Server.Version}}"]).is_err() {
        Some("a running Docker engine".to_string())
    } else if docker(&["image", "inspect", &image()]).is_err() {
        Some(format!("the image {} (run `make image`)", image()))
    } else {
        None
    };
    match missing {
        None => true,
        Some(what) if std::env::var_os("CI").is_some() => panic!("image test needs {what}"),
        Some(what) => {
            eprintln!("image test skipped: needs {what}");
            false
        }
    }
}

/// Everything the test started; removed on drop, also after a failed assertion.
struct Rig {
    tag: String,
    dir: tempfile::TempDir,
    stand_in: Option<api::StandIn>,
    dnsmasq: Option<Dnsmasq>,
}

impl Rig {
    fn network(&self) -> String {
        format!("nt-{}", self.tag)
    }
    fn container(&self, i: usize) -> String {
        format!("nt-{}-agent-{i}", self.tag)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        for i in 0..AGENTS {
            let _ = docker(&["rm", "-f", &self.container(i)]);
        }
        let _ = docker(&["network", "rm", &self.network()]);
        drop(self.dnsmasq.take());
        if let Some(mut s) = self.stand_in.take() {
            s.stop();
        }
    }
}

fn objects() -> api::Cluster {
    let svc = IpAddr::V4(GATEWAY);
    api::Cluster {
        nodes: (0..AGENTS)
            .map(|i| {
                api::node(
                    &format!("node-{i}"),
                    &[IpAddr::V4(agent_ip(i))],
                    i == 0,
                    true,
                )
            })
            .collect(),
        pods: (0..AGENTS)
            .map(|i| {
                let ip = IpAddr::V4(agent_ip(i));
                api::agent_pod(
                    &format!("agent-{i}"),
                    "kube-system",
                    &format!("node-{i}"),
                    &[ip],
                    &[ip],
                    "Running",
                    true,
                )
            })
            .collect(),
        services: vec![api::dns_service(&[svc])],
        endpointslices: vec![api::dns_endpoint_slice(
            "kube-dns-img",
            "IPv4",
            &[api::DnsEndpoint::ready(svc, "coredns-0", "node-0")],
        )],
    }
}

/// Agent `i`'s next round that started after `after`, from its `/status.json`.
fn round_after(rig: &Rig, i: usize, after: &str) -> Value {
    let addr = SocketAddr::new(IpAddr::V4(agent_ip(i)), 8123);
    status::round_after(
        &format!("agent {i}"),
        after,
        Duration::from_secs(60),
        || status::from_response(http::get_here(addr, "/status.json")),
        || {
            let logs = docker(&["logs", &rig.container(i)]);
            format!("its log:\n{}", logs.unwrap_or_else(|e| e))
        },
    )
}

#[test]
fn image_runs_restricted_and_detects_a_disconnected_node() {
    if !can_run() {
        return;
    }
    let mut rig = Rig {
        tag: std::process::id().to_string(),
        dir: tempfile::tempdir().unwrap(),
        stand_in: None,
        dnsmasq: None,
    };
    docker(&[
        "network",
        "create",
        "--subnet",
        SUBNET,
        "--gateway",
        &GATEWAY.to_string(),
        &rig.network(),
    ])
    .unwrap();

    // The API stand-in and the cluster DNS on the network's gateway address (this host).
    let dir = rig.dir.path().to_path_buf();
    let stand_in =
        api::StandIn::start(SocketAddr::new(IpAddr::V4(GATEWAY), 6443), objects(), &dir).unwrap();
    let url = stand_in.url();
    rig.stand_in = Some(stand_in);
    let zone = Zone::new(&["cluster.local", "18.198.in-addr.arpa"])
        .record(
            "kube-dns.kube-system.svc.cluster.local",
            &[IpAddr::V4(GATEWAY)],
        )
        .record(
            "kubernetes.default.svc.cluster.local",
            &[IpAddr::V4(Ipv4Addr::new(198, 18, 200, 2))],
        );
    rig.dnsmasq = Some(Dnsmasq::spawn(None, &[IpAddr::V4(GATEWAY)], &zone));
    std::fs::write(
        dir.join("resolv.conf"),
        format!("search kube-system.svc.cluster.local svc.cluster.local cluster.local\nnameserver {GATEWAY}\noptions ndots:5\n"),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["ca.crt", "token", "resolv.conf"] {
            std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    let image = image();
    for i in 0..AGENTS {
        let dir = dir.display().to_string();
        let run: &[&str] = &[
            "run",
            "-d",
            "--name",
            &rig.container(i),
            "--network",
            &rig.network(),
            "--ip",
            &agent_ip(i).to_string(),
            "--user",
            "65534:65534",
            "--cap-drop",
            "ALL",
            "--read-only",
            "--security-opt",
            "no-new-privileges",
            "--sysctl",
            "net.ipv4.ping_group_range=65534 65534",
            "-v",
            &format!("{dir}/token:/var/run/secrets/kubernetes.io/serviceaccount/token:ro"),
            "-v",
            &format!("{dir}/ca.crt:/var/run/secrets/kubernetes.io/serviceaccount/ca.crt:ro"),
            "-v",
            &format!("{dir}/resolv.conf:/etc/resolv.conf:ro"),
            "-e",
            &format!("NODE_NAME=node-{i}"),
            "-e",
            &format!("POD_NAME=agent-{i}"),
            "-e",
            "POD_NAMESPACE=kube-system",
            "-e",
            &format!("NETTEST_API_SERVER={url}"),
            &image,
        ];
        docker(&[run, &FAST_ROUNDS].concat()).unwrap();
    }

    // A healthy round everywhere, once every container is up: 3 nodes, 3 pods, the DNS
    // service lookups, the reverse lookups (service and instance) and the instance query.
    std::thread::sleep(Duration::from_millis(500));
    let t0 = now();
    let planned = common::planned_checks(&objects(), "cluster.local")
        .checks
        .len();
    for i in 0..AGENTS {
        let r = round_after(&rig, i, &t0);
        assert_eq!(
            failed(&r),
            Default::default(),
            "agent {i}: {r}\nlogs: {}",
            docker(&["logs", &rig.container(i)]).unwrap_or_default()
        );
        assert_eq!(r["checks"].as_array().unwrap().len(), planned);
    }
    let logs = docker(&["logs", &rig.container(0)]).unwrap();
    assert!(
        logs.contains("Tests running on node: node-0, host: agent-0"),
        "{logs}"
    );

    // One node cut off: the others report exactly its host and pod pings failing. The mark
    // comes once it is cut off, so no round that started before sees a healthy network.
    docker(&["network", "disconnect", &rig.network(), &rig.container(2)]).unwrap();
    let t1 = now();
    for i in 0..2 {
        let r = round_after(&rig, i, &t1);
        assert_eq!(
            failed(&r),
            ["host-ping node-2", "pod-ping agent-2"]
                .map(String::from)
                .into(),
            "agent {i}: {r}"
        );
    }
    let scrape = http::get_here(
        SocketAddr::new(IpAddr::V4(agent_ip(0)), 8123),
        "/prometheus.report",
    )
    .unwrap();
    assert!(
        scrape.body.contains("networktest_total_error_count 2"),
        "{}",
        scrape.body
    );

    // SIGTERM (docker stop) ends the agent promptly: it handles the signal as PID 1.
    let start = Instant::now();
    docker(&["stop", "--time", "10", &rig.container(0)]).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "docker stop took {:?}",
        start.elapsed()
    );
    drop(rig);
}
