//! A running lab: the [`Cluster`] network, the HTTPS API stand-in serving objects that match
//! it, the real agent binary in every agent pod, and optionally a real Prometheus scraping
//! them and evaluating the alert rules (their `for:` scaled to the lab's rounds). Used by the
//! end-to-end tests and by `make demo`. Dropping it stops everything.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_api_standin as api;

use crate::prometheus::Prometheus;
pub use crate::status::failed_checks;
use crate::{http, status, Cluster, Spec, API_IP};

/// The agents' metrics port, as in the manifest.
pub const AGENT_PORT: u16 = 8123;
/// Where the API stand-in listens (in the `api` namespace).
pub const API_PORT: u16 = 6443;
/// Where Prometheus listens (in the `api` namespace, which routes to every pod).
pub const PROMETHEUS_PORT: u16 = 9090;

/// Agent flags for tests: a round every 2 s with short timeouts, so scenarios take seconds.
pub const FAST_ROUNDS: [&str; 6] = [
    "--interval",
    "2s",
    "--timeout",
    "500ms",
    "--dns-timeout",
    "1s",
];

/// How to run the lab.
#[derive(Debug, Clone)]
pub struct Options {
    pub spec: Spec,
    /// The agent binary (`env!("CARGO_BIN_EXE_k8s-network-test-daemonset")` in tests).
    pub binary: PathBuf,
    /// Extra agent flags, e.g. `--interval 2s`.
    pub agent_args: Vec<String>,
    /// Start a Prometheus that scrapes every agent.
    pub prometheus: bool,
}

/// Everything running. Field order is drop order.
pub struct Lab {
    agents: Vec<Option<Child>>,
    pub prometheus: Option<Prometheus>,
    pub api: api::StandIn,
    pub cluster: Cluster,
    /// Agent pods the API shows other than running and ready (scenario: agent pod missing).
    shown: BTreeMap<usize, Shown>,
    /// Nodes the API shows other than Ready and staying.
    nodes_shown: BTreeMap<usize, NodeShown>,
    /// Node objects the API shows besides the cluster's (nodes without a namespace).
    extra_nodes: Vec<serde_json::Value>,
    options: Options,
}

impl Lab {
    /// Builds the cluster, starts the API stand-in, the agents and Prometheus.
    pub fn start(options: Options) -> Lab {
        let cluster = Cluster::build(options.spec.clone());
        let api_dir = cluster.dir.join("api");
        std::fs::create_dir_all(&api_dir).expect("create api dir");
        let objects = api_objects_as(&cluster, &BTreeMap::new());
        let listen = SocketAddr::new(IpAddr::V4(API_IP), API_PORT);
        let dir = api_dir.clone();
        let stand_in = crate::netns::run_in(&cluster.api.name, move || {
            api::StandIn::start(listen, objects, &dir)
        })
        .expect("start the API stand-in");
        // The agents run as uid 65534, like the image: let them read the token and CA.
        make_world_readable(&cluster.dir);
        let mut lab = Lab {
            agents: Vec::new(),
            prometheus: None,
            api: stand_in,
            cluster,
            shown: BTreeMap::new(),
            nodes_shown: BTreeMap::new(),
            extra_nodes: Vec::new(),
            options,
        };
        for i in 0..lab.cluster.agents.len() {
            let child = lab.spawn_agent(i, &lab.options.agent_args);
            lab.agents.push(Some(child));
        }
        if lab.options.prometheus {
            let targets: Vec<SocketAddr> = lab.agent_addrs();
            // The alert rules, their `for:` durations as many rounds long as with the
            // default one-minute interval.
            let rules = crate::prometheus::lab_rules(rules_scale(&lab.options.agent_args));
            lab.prometheus = Some(Prometheus::start(
                &lab.cluster.api,
                SocketAddr::new(IpAddr::V4(API_IP), PROMETHEUS_PORT),
                &targets,
                "/prometheus.report",
                &lab.cluster.dir,
                Some(&rules),
            ));
        }
        lab
    }

    /// The metrics address of every agent.
    pub fn agent_addrs(&self) -> Vec<SocketAddr> {
        self.cluster
            .agents
            .iter()
            .map(|p| SocketAddr::new(IpAddr::V4(p.ip), AGENT_PORT))
            .collect()
    }

    /// The agent binary in pod `i`'s namespace, as uid/gid 65534 like the image, with the
    /// API, identity flags and `--ca-file`/`--token-file` of this lab; callers add the rest.
    pub fn agent_command(&self, i: usize) -> Command {
        let pod = &self.cluster.agents[i];
        let node = &self.cluster.nodes[pod.node];
        let mut cmd = pod.ns.command("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&self.options.binary)
            .arg("--api-server")
            .arg(self.api.url())
            .arg("--token-file")
            .arg(self.api.token_path())
            .arg("--ca-file")
            .arg(self.api.ca_path())
            .args(["--namespace", "kube-system", "--node-name", &node.name])
            .args(["--pod-name", &pod.name])
            .stdin(Stdio::null());
        cmd
    }

    /// Starts the long-running agent of pod `i` with `args` (besides the lab's API and
    /// identity flags and `--listen`), logging to files in the lab's directory (started anew).
    fn spawn_agent(&self, i: usize, args: &[String]) -> Child {
        let dir = &self.cluster.dir;
        let out = std::fs::File::create(dir.join(format!("agent-{i}.out"))).expect("log");
        let err = std::fs::File::create(dir.join(format!("agent-{i}.log"))).expect("log");
        // Both families in a dual-stack lab (peers' `pod-tcp` checks reach either address),
        // as the manifest's default `[::]:8123` does.
        let listen = if self.cluster.spec.dual_stack {
            format!("[::]:{AGENT_PORT}")
        } else {
            format!("0.0.0.0:{AGENT_PORT}")
        };
        self.agent_command(i)
            .args(["--listen", &listen])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start agent")
    }

    /// Replaces agent `i` with a fresh process (no discovery, no round yet) that runs with
    /// `args` instead of the lab's [`Options::agent_args`]; its log files start anew.
    pub fn restart_agent(&mut self, i: usize, args: &[&str]) {
        self.stop_agent(i);
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let child = self.spawn_agent(i, &args);
        self.agents[i] = Some(child);
    }

    /// Runs a one-shot agent in pod `i`'s namespace with extra flags (e.g. `--once`), and
    /// returns (exit code, stdout, stderr).
    pub fn run_once(&self, i: usize, extra: &[&str]) -> (i32, String, String) {
        self.run_once_env(i, extra, &[])
    }

    /// [`Lab::run_once`] with extra environment variables for the agent.
    pub fn run_once_env(
        &self,
        i: usize,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> (i32, String, String) {
        let out = self
            .agent_command(i)
            .args(extra)
            .envs(env.iter().copied())
            .output()
            .expect("run agent");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The process id of agent `i`, while it runs (setpriv execs the agent, so the child's
    /// pid is the agent's).
    pub fn agent_pid(&self, i: usize) -> Option<u32> {
        self.agents.get(i)?.as_ref().map(Child::id)
    }

    /// Stops agent `i` (its pod "dies").
    pub fn stop_agent(&mut self, i: usize) {
        if let Some(mut c) = self.agents[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM to agent `i` and returns how long it took to exit (None: still running
    /// after `limit`).
    pub fn terminate_agent(&mut self, i: usize, limit: Duration) -> Option<Duration> {
        let child = self.agents[i].as_mut()?;
        // setpriv execs the agent, so the child's pid is the agent's pid.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = child.try_wait() {
                self.agents[i] = None;
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Hides (or shows again) node `i`'s agent pod from the API, as if the pod were gone.
    pub fn hide_agent(&mut self, i: usize, hidden: bool) {
        self.show_agent(i, hidden.then_some(Shown::Hidden));
    }

    /// How the API shows node `i`'s agent pod from now on: `None` running and ready (the
    /// agent process runs either way).
    pub fn show_agent(&mut self, i: usize, shown: Option<Shown>) {
        match shown {
            Some(s) => self.shown.insert(i, s),
            None => self.shown.remove(&i),
        };
        self.publish();
    }

    /// How the API shows node `i` from now on: `None` Ready and staying.
    pub fn show_node(&mut self, i: usize, shown: Option<NodeShown>) {
        match shown {
            Some(s) => self.nodes_shown.insert(i, s),
            None => self.nodes_shown.remove(&i),
        };
        self.publish();
    }

    /// Shows these Node objects in the API besides the cluster's own (replacing earlier
    /// ones): nodes that exist only there, e.g. a Windows or a virtual-kubelet node.
    pub fn set_extra_nodes(&mut self, nodes: Vec<serde_json::Value>) {
        self.extra_nodes = nodes;
        self.publish();
    }

    /// Serves the objects as the agents and nodes are shown now.
    fn publish(&self) {
        let mut objects = api_objects_as(&self.cluster, &self.shown);
        for (i, shown) in &self.nodes_shown {
            if let Some(node) = objects.nodes.get_mut(*i) {
                shown.apply(node);
            }
        }
        objects.nodes.extend(self.extra_nodes.iter().cloned());
        self.api.set_cluster(objects);
    }

    /// GETs `path` from agent `i`, from inside its own pod namespace, so the answer comes
    /// whatever the scenario did to the network between the pods.
    pub fn agent_get(&self, i: usize, path: &str) -> Result<http::Response, String> {
        self.agent_request(i, "GET", path)
    }

    /// [`Lab::agent_get`] with another method (HEAD, POST: no body is sent).
    pub fn agent_request(
        &self,
        i: usize,
        method: &str,
        path: &str,
    ) -> Result<http::Response, String> {
        http::request(
            &self.cluster.agents[i].ns.name,
            self.agent_addrs()[i],
            method,
            path,
        )
    }

    /// The agent's last round as JSON, once it has one.
    pub fn status(&self, i: usize) -> Option<serde_json::Value> {
        status::from_response(self.agent_get(i, "/status.json"))
    }

    /// Waits until agent `i` publishes a round that started after `after` (RFC 3339, which
    /// sorts as text), up to `timeout`. Take `after` once the fault under test is in place,
    /// so that the round sees it.
    pub fn round_after(&self, i: usize, after: &str, timeout: Duration) -> serde_json::Value {
        status::round_after(
            &format!("agent {i}"),
            after,
            timeout,
            || self.status(i),
            || format!("its log:\n{}", self.agent_log(i)),
        )
    }

    /// The agent's stderr log so far.
    pub fn agent_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.cluster.dir.join(format!("agent-{i}.log"))).unwrap_or_default()
    }

    /// The agent's stdout (the round tables) so far.
    pub fn agent_output(&self, i: usize) -> String {
        std::fs::read_to_string(self.cluster.dir.join(format!("agent-{i}.out"))).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for i in 0..self.agents.len() {
            self.stop_agent(i);
        }
    }
}

/// How the API shows an agent pod other than running, ready and with its IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// Not listed at all, as if the pod were gone.
    Hidden,
    /// Running, but without a pod IP yet.
    NoIp,
    /// Being deleted (a deletion timestamp).
    Deleting,
    /// Running with its IP, but not Ready (crash-looping, a failing readiness probe).
    NotReady,
}

/// How the API shows a node other than Ready and staying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeShown {
    /// The Ready condition False (the kubelet stopped reporting, a pulled cable).
    NotReady,
    /// Tainted `ToBeDeletedByClusterAutoscaler`, as the cluster autoscaler does right before
    /// it deletes the node.
    ScaleDown,
}

impl NodeShown {
    /// Changes a Node object (as `api::node` makes it) to show this.
    fn apply(self, node: &mut serde_json::Value) {
        use serde_json::json;
        match self {
            NodeShown::NotReady => {
                node["status"]["conditions"] = json!([{
                    "type": "Ready",
                    "status": "Unknown",
                    "lastHeartbeatTime": "2026-06-15T05:00:00Z",
                    "lastTransitionTime": "2026-06-15T05:00:40Z",
                    "reason": "NodeStatusUnknown",
                    "message": "Kubelet stopped posting node status.",
                }]);
            }
            NodeShown::ScaleDown => {
                let taint = json!({
                    "key": "ToBeDeletedByClusterAutoscaler",
                    "value": "1781499600",
                    "effect": "NoSchedule",
                });
                match node["spec"]["taints"].as_array_mut() {
                    Some(taints) => taints.push(taint),
                    None => node["spec"]["taints"] = json!([taint]),
                }
            }
        }
    }
}

/// The Kubernetes objects of the cluster: nodes, the agent pods (minus `hidden`), the agents'
/// headless Service (the stand-in derives its EndpointSlices from the pods), the kube-dns
/// Service and its EndpointSlice.
pub fn api_objects(c: &Cluster, hidden: &BTreeSet<usize>) -> api::Cluster {
    let shown = hidden.iter().map(|&i| (i, Shown::Hidden)).collect();
    api_objects_as(c, &shown)
}

/// [`api_objects`] with the agent pods shown as `shown` says.
pub fn api_objects_as(c: &Cluster, shown: &BTreeMap<usize, Shown>) -> api::Cluster {
    let nodes = c
        .nodes
        .iter()
        .map(|n| api::node(&n.name, &n.host_ips(), n.control_plane, true))
        .collect();
    let pods = c
        .agents
        .iter()
        .enumerate()
        .filter(|(i, _)| shown.get(i) != Some(&Shown::Hidden))
        .map(|(i, p)| {
            let node = &c.nodes[p.node];
            let pod_ips = match shown.get(&i) {
                Some(Shown::NoIp) => vec![],
                _ => p.ips(),
            };
            let pod = api::agent_pod(
                &p.name,
                "kube-system",
                &node.name,
                &pod_ips,
                &node.host_ips(),
                "Running",
                !pod_ips.is_empty() && shown.get(&i) != Some(&Shown::NotReady),
            );
            match shown.get(&i) {
                Some(Shown::Deleting) => api::deleting(pod),
                _ => pod,
            }
        })
        .collect();
    // One slice per address family, as the EndpointSlice controller makes them.
    let endpoints = |v6: bool| -> Vec<api::DnsEndpoint> {
        c.dns
            .iter()
            .filter_map(|d| {
                let ip = if v6 {
                    IpAddr::V6(d.pod.ip6?)
                } else {
                    IpAddr::V4(d.pod.ip)
                };
                Some(api::DnsEndpoint {
                    ip,
                    pod: d.pod.name.clone(),
                    node: c.nodes[d.pod.node].name.clone(),
                    ready: Some(true),
                    serving: Some(true),
                    terminating: Some(false),
                })
            })
            .collect()
    };
    let mut endpointslices = vec![api::dns_endpoint_slice(
        "kube-dns-x7k2p",
        "IPv4",
        &endpoints(false),
    )];
    if c.spec.dual_stack {
        endpointslices.push(api::dns_endpoint_slice(
            "kube-dns-9fq4m",
            "IPv6",
            &endpoints(true),
        ));
    }
    api::Cluster {
        pods,
        nodes,
        endpointslices,
        services: vec![
            api::dns_service(&c.service.pod.ips()),
            api::agent_service(
                "kube-system",
                "k8s-network-test-daemonset",
                c.spec.dual_stack,
            ),
        ],
    }
}

/// How many times faster than the default minute the agents' rounds are (`--interval` in
/// `args`: `2s`, `10s`, `500ms`, `1m`), at least 1.
pub fn rules_scale(args: &[String]) -> u64 {
    let interval_ms = args
        .iter()
        .position(|a| a == "--interval")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| {
            let (n, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit())?);
            let n: u64 = n.parse().ok()?;
            match unit {
                "ms" => Some(n),
                "s" => Some(n * 1000),
                "m" => Some(n * 60_000),
                _ => None,
            }
        })
        .unwrap_or(60_000);
    (60_000 / interval_ms.max(1)).max(1)
}

fn make_world_readable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        let mode = if meta.is_dir() { 0o755 } else { 0o644 };
        let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode));
        if meta.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        }
    }
}

/// The agent binary that long-running and abuse tests measure: the static release build that
/// `make image` (or `make release`) leaves in `target/x86_64-unknown-linux-musl/release/`, as it
/// ships, when it is newer than the sources. Otherwise, outside CI, `debug` (the test's own
/// build) with a note; in CI a missing or stale release build is a failure.
pub fn release_agent(debug: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let release = target.join("x86_64-unknown-linux-musl/release/k8s-network-test-daemonset");
    let problem = match std::fs::metadata(&release).and_then(|m| m.modified()) {
        Err(e) => Some(format!("no release binary {} ({e})", release.display())),
        Ok(built) => newest_source(&root)
            .filter(|&src| src > built)
            .map(|_| format!("{} is older than the sources", release.display())),
    };
    match problem {
        None => {
            println!("agent binary: {}", release.display());
            release
        }
        Some(p) if std::env::var_os("CI").is_some() => {
            panic!("{p}; `make test` builds it (make release) before running the tests")
        }
        Some(p) => {
            println!("{p}: measuring the debug binary");
            PathBuf::from(debug)
        }
    }
}

/// The newest modification time of the files the agent is built from.
fn newest_source(root: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    let mut stack = vec![
        root.join("src"),
        root.join("Cargo.toml"),
        root.join("Cargo.lock"),
    ];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else if let Ok(t) = meta.modified() {
            newest = newest.max(Some(t));
        }
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_scale_follows_the_interval() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(rules_scale(&args(&FAST_ROUNDS)), 30);
        assert_eq!(rules_scale(&args(&["--interval", "10s"])), 6);
        assert_eq!(rules_scale(&args(&["--interval", "500ms"])), 120);
        assert_eq!(rules_scale(&args(&["--interval", "2m"])), 1);
        assert_eq!(rules_scale(&args(&[])), 1);
    }
}
