//! The shipped images, run the way the manifest runs them. A mixed-architecture cluster: three
//! agent containers on a user-defined Docker network (198.18.200.0/24), two from this machine's
//! image and one from the other architecture's (arm64 on amd64, through qemu-user-static's
//! binfmt handler), each with `--user 65534:65534 --cap-drop ALL --read-only` and the ping
//! sysctl, against the API stand-in and a dnsmasq on the network's gateway address. Asserts a
//! healthy round everywhere, then a detected fault when the foreign one is disconnected.
//! Each architecture's image has its platform in its config. `make push` against a real
//! registry (Debian's docker-registry on 127.0.0.1): a manifest list of both, each pulled by
//! digest and by platform.
//!
//! Needs Docker, root, and the images from `make image` (`make test` builds them first and
//! names this machine's in NETTEST_IMAGE; the others are NETTEST_IMAGE-ARCH). In CI they must
//! run; elsewhere they are skipped with a message when something is missing.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
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

/// This machine's architecture and the other one, by Docker's names.
fn archs() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "aarch64" => ("arm64", "amd64"),
        _ => ("amd64", "arm64"),
    }
}

/// The image of one architecture (`make image` tags every one `IMAGE:VERSION-ARCH`).
fn image_of(arch: &str) -> String {
    format!("{}-{arch}", image())
}

/// The image agent `i` runs and its platform: the last one is the other architecture's.
fn agent_image(i: usize) -> (String, String) {
    let (native, foreign) = archs();
    if i == AGENTS - 1 {
        (image_of(foreign), format!("linux/{foreign}"))
    } else {
        (image(), format!("linux/{native}"))
    }
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

/// What a test needs besides root, Docker and the images.
#[derive(Clone, Copy, PartialEq)]
enum Needs {
    Images,
    /// The other architecture's binaries run (qemu-user-static's binfmt handler).
    Emulation,
    /// Debian's docker-registry.
    Registry,
}

/// Whether this test can run; in CI a missing piece is a failure, not a skip.
fn can_run(test: &str, needs: Needs) -> bool {
    let (native, foreign) = archs();
    let handler = format!(
        "/proc/sys/fs/binfmt_misc/qemu-{}",
        if foreign == "arm64" {
            "aarch64"
        } else {
            "x86_64"
        }
    );
    let images = [image(), image_of(native), image_of(foreign)];
    let missing = if unsafe { libc::geteuid() } != 0 {
        Some("root".to_string())
    } else if docker(&["version", "--format", "{{.Server.Version}}"]).is_err() {
        Some("a running Docker engine".to_string())
    } else if let Some(i) = images
        .iter()
        .find(|i| docker(&["image", "inspect", i]).is_err())
    {
        Some(format!("the image {i} (run `make image`)"))
    } else if needs == Needs::Emulation
        && std::fs::read_to_string(&handler).map_or(true, |s| !s.starts_with("enabled"))
    {
        Some(format!(
            "{handler} to run {foreign} images (make setup registers it)"
        ))
    } else if needs == Needs::Registry && which("docker-registry").is_none() {
        Some("docker-registry (apt-get install docker-registry; make setup)".to_string())
    } else {
        None
    };
    match missing {
        None => true,
        Some(what) if std::env::var_os("CI").is_some() => panic!("{test} needs {what}"),
        Some(what) => {
            eprintln!("{test} skipped: needs {what}");
            false
        }
    }
}

/// `program` on PATH.
fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
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
fn mixed_arch_images_run_restricted_and_detect_a_disconnected_node() {
    if !can_run(
        "mixed_arch_images_run_restricted_and_detect_a_disconnected_node",
        Needs::Emulation,
    ) {
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

    for i in 0..AGENTS {
        let dir = dir.display().to_string();
        let (image, platform) = agent_image(i);
        let run: &[&str] = &[
            "run",
            "-d",
            "--platform",
            &platform,
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

    // The last agent runs the other architecture's image (emulated here, natively on its node).
    let foreign = archs().1;
    let running = docker(&["inspect", "-f", "{{.Image}}", &rig.container(2)]).unwrap();
    let id = docker(&[
        "image",
        "inspect",
        "-f",
        "{{.Id}} {{.Architecture}}",
        &image_of(foreign),
    ]);
    assert_eq!(id.unwrap(), format!("{running} {foreign}"));

    // One node cut off: the others report exactly its host and pod pings, its handshake and
    // its large echo failing. The mark comes once it is cut off, so no round that started
    // before sees a healthy network.
    docker(&["network", "disconnect", &rig.network(), &rig.container(2)]).unwrap();
    let t1 = now();
    for i in 0..2 {
        let r = round_after(&rig, i, &t1);
        assert_eq!(
            failed(&r),
            [
                "host-ping node-2",
                "pod-ping agent-2",
                "pod-tcp agent-2",
                "pod-mtu agent-2"
            ]
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
        scrape.body.contains("networktest_total_error_count 4"),
        "{}",
        scrape.body
    );

    // SIGTERM (docker stop) ends either architecture's agent promptly: it handles the signal
    // as PID 1.
    for i in [0, 2] {
        let start = Instant::now();
        docker(&["stop", "--time", "10", &rig.container(i)]).unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "docker stop of agent {i} took {:?}",
            start.elapsed()
        );
    }
    drop(rig);
}

#[test]
fn each_architecture_has_its_own_image_with_its_platform() {
    if !can_run(
        "each_architecture_has_its_own_image_with_its_platform",
        Needs::Images,
    ) {
        return;
    }
    let (native, foreign) = archs();
    let inspect = |image: &str| {
        docker(&[
            "image",
            "inspect",
            "-f",
            "{{.Id}} {{.Os}}/{{.Architecture}} {{.Config.User}} {{json .Config.Entrypoint}}",
            image,
        ])
        .unwrap()
    };
    let entry = "65534:65534 [\"/k8s-network-test-daemonset\"]";
    let [plain, own, other] = [image(), image_of(native), image_of(foreign)].map(|i| inspect(&i));
    // IMAGE:VERSION is this machine's image, the very one tagged with its architecture.
    assert_eq!(plain, own);
    assert!(own.ends_with(&format!(" linux/{native} {entry}")), "{own}");
    assert!(
        other.ends_with(&format!(" linux/{foreign} {entry}")),
        "{other}"
    );
    assert_ne!(own.split(' ').next(), other.split(' ').next());
}

/// A registry on loopback, started for one test; stopped and its references to images removed
/// on drop, also after a failed assertion.
struct Registry {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    /// Docker references the test made (tags, pulled digests, the local manifest list).
    refs: Vec<String>,
}

impl Registry {
    fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        // A free port: the kernel's pick, given back just before the registry takes it.
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let r = Registry {
            child,
            addr,
            dir,
            refs: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while r.get("/v2/", &[]).is_err() {
            assert!(
                Instant::now() < deadline,
                "the registry did not answer on {addr}: {}",
                r.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        r
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// GET `path` from the registry's HTTP API, accepting `media types`; the body as JSON.
    fn get(&self, path: &str, accept: &[&str]) -> Result<Value, String> {
        let mut request = ureq::get(format!("http://{}{path}", self.addr));
        for a in accept {
            request = request.header("Accept", *a);
        }
        let mut response = request.call().map_err(|e| format!("GET {path}: {e}"))?;
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("GET {path}: {e}"))?;
        serde_json::from_str(&body).map_err(|e| format!("GET {path}: {e}: {body}"))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        for r in &self.refs {
            let _ = docker(&["rmi", r]);
        }
        if let Some(list) = self.refs.first() {
            let _ = docker(&["manifest", "rm", list]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const LIST_TYPES: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
];
const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
];

#[test]
fn push_makes_a_manifest_list_that_nodes_pull_their_own_image_from() {
    if !can_run(
        "push_makes_a_manifest_list_that_nodes_pull_their_own_image_from",
        Needs::Registry,
    ) {
        return;
    }
    let mut reg = Registry::start();
    let version = env!("CARGO_PKG_VERSION");
    let name = format!("nettest-{}/k8s-network-test-daemonset", std::process::id());
    let repo = format!("{}/{name}", reg.addr);
    reg.refs.push(format!("{repo}:{version}"));
    let archs = ["amd64", "arm64"];
    for a in archs {
        let tag = format!("{repo}:{version}-{a}");
        reg.refs.push(tag.clone());
        docker(&["tag", &image_of(a), &tag]).unwrap();
    }

    // What `make push REGISTRY=...` runs.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/push-image.sh");
    let out = Command::new(script)
        .args([repo.as_str(), version])
        .args(archs)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "push-image.sh: {said}");

    // The tag is a manifest list (the registry's own answer) naming one image per platform.
    let list = reg
        .get(&format!("/v2/{name}/manifests/{version}"), &LIST_TYPES)
        .unwrap();
    assert!(
        LIST_TYPES.contains(&list["mediaType"].as_str().unwrap_or("")),
        "{list}"
    );
    let digests: BTreeMap<String, String> = list["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            (
                format!(
                    "{}/{}",
                    p["os"].as_str().unwrap(),
                    p["architecture"].as_str().unwrap()
                ),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        digests.keys().collect::<Vec<_>>(),
        ["linux/amd64", "linux/arm64"],
        "{list}"
    );
    assert!(
        said.contains("is a manifest list of amd64 arm64: sha256:"),
        "{said}"
    );

    for a in archs {
        let digest = &digests[&format!("linux/{a}")];
        let local = docker(&["image", "inspect", "-f", "{{.Id}}", &image_of(a)]).unwrap();
        // Each entry is that architecture's image as built: its config is the local image's.
        let manifest = reg
            .get(&format!("/v2/{name}/manifests/{digest}"), &MANIFEST_TYPES)
            .unwrap();
        let config_digest = manifest["config"]["digest"].as_str().unwrap();
        assert_eq!(config_digest, local, "{manifest}");
        let config = reg
            .get(&format!("/v2/{name}/blobs/{config_digest}"), &[])
            .unwrap();
        assert_eq!(
            (config["os"].as_str(), config["architecture"].as_str()),
            (Some("linux"), Some(a))
        );

        // Pulled by digest, and by tag for that platform as a node of it would.
        let by_digest = format!("{repo}@{digest}");
        reg.refs.push(by_digest.clone());
        docker(&["pull", "-q", &by_digest]).unwrap();
        let pulled = docker(&[
            "image",
            "inspect",
            "-f",
            "{{.Id}} {{.Architecture}}",
            &by_digest,
        ]);
        assert_eq!(pulled.unwrap(), format!("{local} {a}"));
        let _ = docker(&["rmi", &format!("{repo}:{version}")]);
        docker(&[
            "pull",
            "-q",
            "--platform",
            &format!("linux/{a}"),
            &format!("{repo}:{version}"),
        ])
        .unwrap();
        let pulled = docker(&[
            "image",
            "inspect",
            "-f",
            "{{.Id}} {{.Architecture}}",
            &format!("{repo}:{version}"),
        ]);
        assert_eq!(pulled.unwrap(), format!("{local} {a}"));
    }
    drop(reg);
}
