//! The whole-cluster matrix and the JSON log lines, end to end: a 4-node namespace lab with the
//! real agent in every pod (`--log-format json`), then, in order: every agent's
//! `/summary.json`; the page is never a proxy (requests naming another address make no
//! connection to it); a flood of page and `/matrix.json` requests makes at most one refresh
//! per interval; with node 2's cable pulled, the `matrix` command prints exactly the failing
//! paths and node 2's grey row, and headless Chromium (in the API namespace, which routes to
//! every pod) loads the page, keeps a screenshot under `target/` and finds exactly the failing
//! cells in the DOM; the JSON log lines of those rounds. Needs root (and Chromium, which
//! `make setup` installs); in CI it must run.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_box::lab::{Lab, Options, AGENT_PORT};
use cluster_box::netns::run_in;
use cluster_box::status::metric_sum;
use cluster_box::{agent_pod_name, http, need_root, node_name, Spec, API_IP};
use common::now;
use serde_json::Value;

const AGENT: &str = env!("CARGO_BIN_EXE_k8s-network-test-daemonset");
/// Long enough that a flood spans few intervals, short enough for a quick test.
const INTERVAL: Duration = Duration::from_secs(5);
const ROUND_WAIT: Duration = Duration::from_secs(45);
const N: usize = 4;

fn lab() -> Lab {
    Lab::start(Options {
        spec: Spec::default(),
        binary: AGENT.into(),
        agent_args: [
            "--interval",
            "5s",
            "--timeout",
            "500ms",
            "--dns-timeout",
            "1s",
            "--log-format",
            "json",
        ]
        .map(String::from)
        .to_vec(),
        prometheus: false,
    })
}

#[test]
fn matrix_end_to_end() {
    if !need_root("matrix_end_to_end") {
        return;
    }
    let chromium = chromium();
    let lab = lab();
    let t = now();
    for i in 0..N {
        lab.round_after(i, &t, ROUND_WAIT);
    }
    step("every agent serves its summary", || summaries(&lab));
    step("the page is never a proxy", || no_proxy(&lab));
    step(
        "a flood of page requests refreshes at most once per interval",
        || flood(&lab),
    );
    lab.cluster.set_node_link(2, false);
    let t = now();
    for i in [0, 1, 3] {
        let r = lab.round_after(i, &t, ROUND_WAIT);
        assert_eq!(
            cluster_box::status::failed_checks(&r),
            BTreeSet::from([
                format!("host-ping {}", node_name(2)),
                format!("pod-ping {}", agent_pod_name(2)),
                format!("pod-tcp {}", agent_pod_name(2)),
                format!("pod-mtu {}", agent_pod_name(2)),
            ]),
            "agent {i} sees node 2 gone"
        );
    }
    // Let the matrix cached during the flood age past an interval: the next request refreshes.
    std::thread::sleep(INTERVAL);
    step("the matrix command shows node 2's cable pulled", || {
        matrix_command(&lab)
    });
    step("chromium finds exactly the failing cells", || {
        browser(&lab, chromium.as_deref())
    });
    step("json log lines", || json_log(&lab));
    lab.cluster.set_node_link(2, true);
}

/// Runs one named step; a failure names it.
fn step(name: &str, f: impl FnOnce()) {
    eprintln!("matrix: {name}");
    let started = Instant::now();
    if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        let why = common::scenarios::panic_message(e.as_ref());
        panic!("matrix step `{name}` failed: {why}");
    }
    eprintln!("matrix: {name}: passed in {:?}", started.elapsed());
}

/// Chromium's path; `None` outside CI when it is missing (the browser step then says so).
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("chromium"))
            .find(|p| p.is_file())
    });
    if found.is_none() && std::env::var_os("CI").is_some() {
        panic!("chromium is not installed; `make setup` installs it (Debian package chromium)");
    }
    found
}

/// A GET from the API namespace (which routes to every pod).
fn get(lab: &Lab, i: usize, path: &str) -> http::Response {
    http::get(&lab.cluster.api.name, lab.agent_addrs()[i], path)
        .unwrap_or_else(|e| panic!("GET {path} from agent {i}: {e}"))
}

fn summaries(lab: &Lab) {
    for i in 0..N {
        let r = get(lab, i, "/summary.json");
        assert_eq!(r.status, 200, "{}", r.body);
        let s: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(s["format"], 1);
        assert_eq!(s["node"], node_name(i));
        assert_eq!(s["pod"], agent_pod_name(i));
        assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(s["interval_seconds"], 5.0);
        let targets = s["targets"].as_array().unwrap();
        assert_eq!(targets.len(), N, "{s}");
        for t in targets {
            let kinds: Vec<&str> = t["checks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    assert_eq!(c["status"], "passed", "{s}");
                    c["kind"].as_str().unwrap()
                })
                .collect();
            assert_eq!(kinds, ["host-ping", "pod-ping", "pod-tcp", "pod-mtu"]);
        }
        let columns: BTreeSet<&str> = s["dns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["column"].as_str().unwrap())
            .collect();
        assert_eq!(
            columns,
            BTreeSet::from(["service", "coredns-0", "coredns-1", "api-server"])
        );
        assert!(r.body.len() < 4096, "{} bytes", r.body.len());
    }
}

/// A listener that counts the connections it accepts (in namespace `ns`).
struct Trap {
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Trap {
    fn start(ns: &str, addr: SocketAddr) -> Trap {
        let listener = run_in(ns, move || TcpListener::bind(addr)).expect("bind the trap");
        listener.set_nonblocking(true).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (accepted.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok(_) => {
                        a.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Trap { accepted, stop }
    }
}

impl Drop for Trap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Sends `raw` from the API namespace to agent `i` and returns the whole answer.
fn raw(lab: &Lab, i: usize, request: String) -> String {
    let addr = lab.agent_addrs()[i];
    run_in(&lab.cluster.api.name, move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    })
}

/// Requests that name another address (in the path, the query, an absolute target, the Host
/// header) make the agent fetch only its peers: a listener at that address (reachable from
/// every pod, on the agents' port) accepts nothing, and the matrix has the cluster's nodes only.
fn no_proxy(lab: &Lab) {
    let trap_addr = SocketAddr::from((API_IP, AGENT_PORT));
    let trap = Trap::start(&lab.cluster.api.name, trap_addr);
    // The trap is reachable from agent 0's pod: a fetch would have reached it.
    let reached = run_in(&lab.cluster.agents[0].ns.name, move || {
        TcpStream::connect_timeout(&trap_addr, Duration::from_secs(3)).is_ok()
    });
    assert!(reached, "the trap is reachable from the agent's pod");
    let deadline = Instant::now() + Duration::from_secs(5);
    while trap.accepted.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the trap accepted the probe");
        std::thread::sleep(Duration::from_millis(20));
    }
    let baseline = trap.accepted.load(Ordering::SeqCst);
    let a = format!("{API_IP}:{AGENT_PORT}");
    for target in [
        format!("/?peer={a}"),
        format!("/matrix.json?peer={a}&addr={API_IP}"),
        format!("/?url=http://{a}/summary.json"),
        format!("//{a}/summary.json"),
        format!("/{a}/"),
        format!("http://{a}/"),
        format!("http://{a}/matrix.json"),
    ] {
        let answer = raw(
            lab,
            0,
            format!("GET {target} HTTP/1.1\r\nHost: {a}\r\nX-Forwarded-Host: {a}\r\nConnection: close\r\n\r\n"),
        );
        assert!(answer.starts_with("HTTP/1.1 "), "{target}: {answer}");
    }
    let m = current_matrix(lab, 0);
    let rows: BTreeSet<&str> = m["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["node"].as_str().unwrap())
        .collect();
    let nodes: BTreeSet<String> = (0..N).map(node_name).collect();
    assert_eq!(rows, nodes.iter().map(String::as_str).collect());
    assert_eq!(
        trap.accepted.load(Ordering::SeqCst) - baseline,
        0,
        "the agent connected to an address from a request"
    );
}

/// Polls agent `i`'s `/matrix.json` (which starts a refresh) until it is current.
fn current_matrix(lab: &Lab, i: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = get(lab, i, "/matrix.json");
        let v: Value = serde_json::from_str(&r.body).unwrap();
        if v["refreshing"] == false && !v["matrix"].is_null() {
            return v["matrix"].clone();
        }
        assert!(Instant::now() < deadline, "no current matrix: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn counter(lab: &Lab, i: usize, metric: &str) -> f64 {
    metric_sum(&get(lab, i, "/prometheus.report").body, metric).unwrap_or(0.0)
}

/// 8 clients asking for the page and `/matrix.json` as fast as they can for three intervals:
/// every request answered, and at most one refresh (N-1 fetches) per interval.
fn flood(lab: &Lab) {
    let refreshes = counter(lab, 0, "networktest_matrix_refreshes_total");
    let fetches = counter(lab, 0, "networktest_matrix_fetches_total");
    let duration = INTERVAL * 3;
    let started = Instant::now();
    let answered = Arc::new(AtomicUsize::new(0));
    let addr = lab.agent_addrs()[0];
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (ns, answered) = (lab.cluster.api.name.clone(), answered.clone());
            std::thread::spawn(move || {
                run_in(&ns, move || {
                    let path = if c % 2 == 0 { "/" } else { "/matrix.json" };
                    while started.elapsed() < duration {
                        let r = http::get_here(addr, path).expect("answered during the flood");
                        assert_eq!(r.status, 200);
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
        })
        .collect();
    for c in clients {
        c.join().expect("a flood client failed");
    }
    // A refresh still running when the flood ended is counted once it completes.
    current_matrix(lab, 0);
    let elapsed = started.elapsed().as_secs_f64();
    let made = counter(lab, 0, "networktest_matrix_refreshes_total") - refreshes;
    let fetched = counter(lab, 0, "networktest_matrix_fetches_total") - fetches;
    let requests = answered.load(Ordering::Relaxed);
    eprintln!(
        "matrix: flood of {requests} requests in {elapsed:.1} s: {made} refreshes, {fetched} fetches"
    );
    assert!(requests > 100, "{requests} requests");
    let allowed = (elapsed / INTERVAL.as_secs_f64()).ceil() + 1.0;
    assert!(
        made >= 1.0 && made <= allowed,
        "{made} refreshes in {elapsed:.1} s (at most {allowed})"
    );
    assert_eq!(
        fetched,
        made * (N - 1) as f64,
        "one fetch per peer per refresh"
    );
}

/// `matrix` in agent 0's pod: exit 1, node 2's column failing from every other source, its
/// row grey, every line within 80 columns.
fn matrix_command(lab: &Lab) {
    let out = lab.cluster.agents[0]
        .ns
        .command(AGENT)
        .args(["matrix", "--wait", "30s"])
        .env("NETTEST_LISTEN", format!("0.0.0.0:{AGENT_PORT}"))
        .output()
        .expect("run the matrix command");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("matrix command output:\n{text}");
    assert_eq!(out.status.code(), Some(1), "{text}{err}");
    let grid: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.is_empty())
        .skip(2)
        .take(N)
        .collect();
    assert_eq!(grid[0], "control-plane-0    .  .  X  .", "{text}");
    assert_eq!(grid[1], "node-1             .  .  X  .", "{text}");
    assert!(
        grid[2].starts_with("node-2             no data: no summary from 198.19.2.10:8123: "),
        "{text}"
    );
    assert_eq!(grid[3], "node-3             .  .  X  .", "{text}");
    let failed: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "Failed:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    // Each line lists the failed kinds (cut at 80 characters).
    assert_eq!(failed.len(), 3, "{text}");
    for (l, src) in failed.iter().zip(["control-plane-0", "node-1", "node-3"]) {
        assert!(
            l.starts_with(&format!(
                "  {src} -> node-2: host-ping (timeout), pod-ping (timeout), pod-tcp "
            )),
            "{text}"
        );
    }
    assert!(text.contains("\nTargets: 1 control-plane-0 2 node-1 3 node-2 4 node-3\n"));
    for l in text.lines() {
        assert!(l.chars().count() <= 80, "{l}");
    }
}

/// Where screenshots are kept.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Headless Chromium in the API namespace: the DOM of agent 0's page has exactly the failing
/// cells (the column of node 2, from the other three sources) and node 2's grey row, and a
/// screenshot is kept.
fn browser(lab: &Lab, chromium: Option<&std::path::Path>) {
    let Some(chromium) = chromium else {
        eprintln!("matrix: chromium is not installed, the browser step is skipped (make setup installs it)");
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{}/", lab.agent_addrs()[0]);
    let run = |extra: &[String]| {
        let out = lab
            .cluster
            .api
            .command(chromium.to_str().unwrap())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--window-size=1000,700",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .output()
            .expect("run chromium");
        assert!(
            out.status.success(),
            "chromium: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Chromium asks once; make sure the cached matrix is the current one.
    current_matrix(lab, 0);
    let dom = run(&["--dump-dom".to_string()]);
    let table = dom
        .split("id=\"matrix\"")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .unwrap_or_else(|| panic!("no matrix table in the DOM:\n{dom}"));
    let mut failing: BTreeSet<(String, String)> = BTreeSet::new();
    let mut grey: BTreeSet<String> = BTreeSet::new();
    let mut rows = 0;
    for tr in table.split("<tr ").skip(1) {
        rows += 1;
        let src = attr(tr, "data-src").unwrap_or_else(|| panic!("a row without data-src: {tr}"));
        if tr.starts_with("class=\"rgrey") {
            grey.insert(src.clone());
        }
        for td in tr.split("<td class=\"x fail\"").skip(1) {
            failing.insert((src.clone(), attr(td, "data-dst").unwrap()));
        }
    }
    assert_eq!(rows, N, "{table}");
    let want: BTreeSet<(String, String)> = [0, 1, 3]
        .iter()
        .map(|&i| (node_name(i), node_name(2)))
        .collect();
    assert_eq!(failing, want, "{table}");
    assert_eq!(grey, BTreeSet::from([node_name(2)]));
    let shot = target_dir().join("matrix-cable-pulled.png");
    let _ = std::fs::remove_file(&shot);
    run(&[format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    eprintln!("matrix: screenshot in {}", shot.display());
}

/// The value of attribute `name` in the first tag of `html`.
fn attr(html: &str, name: &str) -> Option<String> {
    let tag = html.split('>').next()?;
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    Some(tag.get(start..)?.split('"').next()?.to_string())
}

/// Agent 0's stdout with `--log-format json`: every line an object; after the cable was pulled
/// a round reports node 2's two pings as failed and changed, and its round object counts them.
fn json_log(lab: &Lab) {
    let out = lab.agent_output(0);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let rounds = lines.iter().filter(|l| l["event"] == "round").count();
    assert!(rounds >= 3, "{out}");
    let pulled: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            l["event"] == "check"
                && l["kind"] == "pod-ping"
                && l["target"] == agent_pod_name(2).as_str()
                && l["status"] == "failed"
                && l["was"] == "passed"
        })
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        pulled.len(),
        1,
        "one round where node 2's pod ping turned: {out}"
    );
    let i = pulled[0];
    let first = (0..i)
        .rev()
        .take_while(|&j| lines[j]["event"] == "check")
        .last()
        .unwrap_or(i);
    let last = (i..lines.len())
        .find(|&j| lines[j]["event"] == "round")
        .expect("the round's object");
    eprintln!(
        "matrix: the JSON lines of the round after the cable was pulled:\n{}",
        out.lines()
            .skip(first)
            .take(last + 1 - first)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let round = lines[i..].iter().find(|l| l["event"] == "round").unwrap();
    // Node 2's host and pod pings, handshake and large echo.
    assert_eq!(round["failed"], 4, "{round}");
    assert_eq!(
        (&round["listed"], &round["omitted"]),
        (&Value::from(4), &Value::from(0))
    );
}
