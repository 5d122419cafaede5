//! The agent keeps going and keeps its secrets: the service-account token never reaches a log
//! (at any `RUST_LOG` level) and never goes through a proxy that only the environment named; a
//! closed stdout or a thread limit does not stop it. The real binary in a namespace-built
//! cluster; needs root, and in CI it must run.

mod common;

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cluster_box::lab::{Lab, Options, FAST_ROUNDS};
use cluster_box::{need_root, Spec, API_IP};
use common::now;

const AGENT: &str = env!("CARGO_BIN_EXE_k8s-network-test-daemonset");
/// Where the would-be proxy listens, beside the API stand-in.
const PROXY_PORT: u16 = 3128;

fn lab() -> Lab {
    Lab::start(Options {
        spec: Spec {
            nodes: 2,
            ..Spec::default()
        },
        binary: AGENT.into(),
        agent_args: FAST_ROUNDS.map(String::from).to_vec(),
        prometheus: false,
    })
}

#[test]
fn the_token_never_reaches_the_log_even_at_trace() {
    if !need_root("the_token_never_reaches_the_log_even_at_trace") {
        return;
    }
    let lab = lab();
    let token = lab.api.token();
    assert!(
        token.len() >= 16,
        "a token long enough to search for: {token:?}"
    );
    let (code, out, err) = lab.run_once_env(0, &["--once"], &[("RUST_LOG", "trace")]);
    assert_eq!(code, 0, "{out}{err}");
    // The log really was verbose: the HTTP library's debug lines are there.
    assert!(
        err.lines()
            .any(|l| l.contains("DEBUG") && l.contains("ureq")),
        "no ureq debug lines at RUST_LOG=trace:\n{err}"
    );
    // Not the token, nor any 8 characters of it (the library's trace dump prints request
    // heads as rows of 16 bytes, which would split it across lines).
    let all = format!("{out}{err}");
    let chars: Vec<char> = token.chars().collect();
    for window in chars.windows(8) {
        let piece: String = window.iter().collect();
        assert!(
            !all.contains(&piece),
            "token fragment {piece:?} in the output:\n{all}"
        );
    }
}

/// A TCP listener in the API's namespace that reports the first bytes of every connection.
fn fake_proxy(lab: &Lab) -> mpsc::Receiver<String> {
    let listen = SocketAddr::new(IpAddr::V4(API_IP), PROXY_PORT);
    let listener = cluster_box::netns::run_in(&lab.cluster.api.name, move || {
        TcpListener::bind(listen).expect("bind the fake proxy")
    });
    listener.set_nonblocking(true).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(60);
        while Instant::now() < end {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    conn.set_nonblocking(false).unwrap();
                    conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    // The request head, which may come in several writes: up to its blank
                    // line, 4 KiB, or the read timeout.
                    let mut head = Vec::new();
                    let mut buf = [0u8; 256];
                    while head.len() < 4096 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    if tx
                        .send(String::from_utf8_lossy(&head).into_owned())
                        .is_err()
                    {
                        return;
                    }
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    rx
}

#[test]
fn proxy_environment_is_ignored_unless_a_flag_asks_for_one() {
    if !need_root("proxy_environment_is_ignored_unless_a_flag_asks_for_one") {
        return;
    }
    let lab = lab();
    let seen = fake_proxy(&lab);
    let proxy = format!("http://{API_IP}:{PROXY_PORT}");
    // Every variable a pod may inherit names the proxy: the agent connects directly anyway.
    let env: Vec<(&str, &str)> = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .map(|k| (*k, proxy.as_str()))
        .collect();
    let (code, out, err) = lab.run_once_env(0, &["--once"], &env);
    assert_eq!(code, 0, "the round went direct and passed:\n{out}{err}");
    assert!(
        seen.recv_timeout(Duration::from_millis(500)).is_err(),
        "the proxy from the environment was used"
    );

    // The flag does use it: a CONNECT to the API server arrives (the fake proxy answers
    // nothing, so this round cannot discover anything and exits 2).
    let (code, out, err) = lab.run_once(
        0,
        &["--once", "--api-proxy", &proxy, "--discovery-timeout", "1s"],
    );
    assert_eq!(code, 2, "{out}{err}");
    let first = seen
        .recv_timeout(Duration::from_secs(5))
        .expect("the --api-proxy was used");
    assert!(
        first.starts_with(&format!("CONNECT {API_IP}:")),
        "not a CONNECT: {first:?}"
    );
    assert!(
        !first.to_ascii_lowercase().contains("authorization"),
        "the CONNECT must not carry the token: {first:?}"
    );
}

/// A child process killed and reaped on drop, also when the test fails.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_closed_stdout_does_not_stop_the_agent() {
    if !need_root("a_closed_stdout_does_not_stop_the_agent") {
        return;
    }
    let mut lab = lab();
    // Replace pod 0's agent with one whose stdout (the log pipe) is closed from the start.
    lab.stop_agent(0);
    let mut cmd = lab.agent_command(0);
    cmd.args([
        "--listen",
        &format!("0.0.0.0:{}", cluster_box::lab::AGENT_PORT),
    ])
    .args(FAST_ROUNDS)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let mut agent = Reaped(cmd.spawn().expect("start the agent"));
    drop(agent.0.stdout.take());
    // Three rounds, each printed into the closed pipe, and the agent is still there.
    let mut after = now();
    for _ in 0..3 {
        let r = lab.round_after(0, &after, Duration::from_secs(30));
        after = r["started_at"].as_str().unwrap().to_string();
    }
    assert!(
        agent.0.try_wait().unwrap().is_none(),
        "the agent exited after writing to a closed stdout"
    );
    // `--once` into a closed pipe still exits by its result, not by a panic.
    let mut once = lab.agent_command(1);
    once.arg("--once")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut once = Reaped(once.spawn().unwrap());
    drop(once.0.stdout.take());
    assert_eq!(once.0.wait().unwrap().code(), Some(0));
}

/// A pids cgroup (v1) that holds its processes to `max` tasks; removed on drop.
struct PidsCgroup(PathBuf);

impl PidsCgroup {
    fn new(max: u32) -> PidsCgroup {
        let dir = PathBuf::from(format!(
            "/sys/fs/cgroup/pids/nettest-{}-threads",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create a pids cgroup (cgroup v1 pids controller)");
        std::fs::write(dir.join("pids.max"), max.to_string()).unwrap();
        PidsCgroup(dir)
    }

    /// `cmd`, started inside this cgroup (a shell moves itself in, then execs it).
    fn wrap(&self, cmd: &Command) -> Command {
        let procs = self.0.join("cgroup.procs");
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!("echo $$ > {} && exec \"$@\"", procs.display()))
            .arg("sh")
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                sh.env(k, v);
            }
        }
        sh
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_thread_that_cannot_start_fails_its_checks_not_the_agent() {
    if !need_root("a_thread_that_cannot_start_fails_its_checks_not_the_agent") {
        return;
    }
    let lab = lab();
    // Two tasks: the agent's main thread and one more. Which of the round's threads gets the
    // spare slot depends on timing (the ICMP thread, or a DNS thread and then a resolver
    // thread once a slot frees): every other thread is refused by the kernel.
    let cgroup = PidsCgroup::new(2);
    let mut once = lab.agent_command(0);
    once.args(["--once", "--output", "json"]);
    let out = cgroup
        .wrap(&once)
        .stdin(Stdio::null())
        .output()
        .expect("run the agent");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    // Not an abort (134) or a panic (101): the round ran and reports its failures.
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let r: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON round");
    let checks = r["checks"].as_array().unwrap();
    assert!(checks.len() >= 8, "every planned check is reported: {r}");
    // Every check either passed or failed because its thread could not start, with that
    // reason; and the limit did bite.
    let mut refused = 0;
    for c in checks {
        if c["ok"] == true {
            continue;
        }
        assert_eq!(c["reason"], "no-thread", "{c}");
        assert!(c["error"].as_str().unwrap().contains("cannot start"), "{c}");
        refused += 1;
    }
    assert!(refused >= 4, "the thread limit refused nothing much: {r}");
}

#[test]
fn a_stale_member_list_says_how_old_it_is() {
    if !need_root("a_stale_member_list_says_how_old_it_is") {
        return;
    }
    let lab = lab();
    let fresh = lab.round_after(0, &now(), Duration::from_secs(30));
    let fresh_age = fresh["snapshot_age_seconds"].as_f64().expect("age in JSON");
    assert!(
        fresh_age < 1.0,
        "a fresh discovery is about 0 s old: {fresh}"
    );
    assert!(fresh.get("api_error").is_none(), "{fresh}");

    // The API goes away: rounds go on with the last members, and their age grows.
    lab.api.set_fault(k8s_api_standin::Fault::CloseImmediately);
    let mut after = now();
    let mut ages = Vec::new();
    while ages.len() < 2 {
        let r = lab.round_after(0, &after, Duration::from_secs(30));
        after = r["started_at"].as_str().unwrap().to_string();
        if r.get("api_error").is_some() {
            assert!(!r["checks"].as_array().unwrap().is_empty(), "{r}");
            ages.push(r["snapshot_age_seconds"].as_f64().unwrap());
        }
    }
    // The first round after the fault may come just after the last good discovery (an age
    // below a second); the next one is older by about an interval.
    assert!(ages[0] > 0.0 && ages[1] > ages[0] + 0.5, "ages {ages:?}");
    let scrape = lab.agent_get(0, "/prometheus.report").unwrap().body;
    let gauge: f64 = scrape
        .lines()
        .find_map(|l| l.strip_prefix("networktest_discovery_age_seconds "))
        .expect("the age gauge")
        .parse()
        .unwrap();
    assert!(gauge >= ages[0], "gauge {gauge}, ages {ages:?}");
    std::thread::sleep(Duration::from_millis(300));
    let table = lab.agent_output(0);
    assert!(
        table.lines().any(|l| l.starts_with("API: ")
            && l.contains("(probing the last known members, discovered ")
            && l.ends_with(" ago)")),
        "{table}"
    );
    lab.api.clear_fault();
}
