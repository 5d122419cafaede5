//! The HTTP server over real sockets on loopback, in this process: each bound of the endpoint
//! (head size and time, no bodies, keep-alive, pipelining, write timeout, the connection cap,
//! resets and half-closes) tried one at a time. Timeouts are shortened through `Limits`; the
//! assertions wait with generous bounds, since the machine is shared and busy.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_network_test_daemonset::http::{HttpServer, Limits, Shared};
use k8s_network_test_daemonset::http::{Reason, Status};
mod common;

use common::{check, round};
use k8s_network_test_daemonset::plan::Reach;
use k8s_network_test_daemonset::report::{self, Check, CheckKind, RoundReport};
use k8s_network_test_daemonset::view::metrics::{AgentInfo, Reporting};

fn shared() -> Arc<Shared> {
    Arc::new(Shared::new(AgentInfo {
        version: "9.9.9".into(),
        node: "node-0".into(),
        pod: "agent-0".into(),
    }))
}

fn limits() -> Limits {
    Limits {
        max_connections: 16,
        head_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(800),
        write_timeout: Duration::from_millis(400),
        linger: Duration::from_millis(300),
    }
}

fn server_with(limits: Limits) -> (HttpServer, Arc<Shared>) {
    let shared = shared();
    let server = HttpServer::start_with("127.0.0.1:0".parse().unwrap(), shared.clone(), limits)
        .expect("start the server");
    (server, shared)
}

fn server() -> (HttpServer, Arc<Shared>) {
    server_with(limits())
}

/// Publishes a round with `targets` pod-ping checks (a large one makes a large scrape).
fn publish_round(shared: &Shared, targets: usize) {
    let checks: Vec<Check> = (0..targets)
        .map(|i| {
            check(
                CheckKind::PodPing,
                &format!("node-{i}"),
                &format!("k8s-network-test-daemonset-{i:05}"),
                &format!("198.18.{}.{}", i / 250, i % 250),
                Some(0.0004),
            )
        })
        .collect();
    let report = round(checks);
    let mut state = shared.lock();
    state.totals.record(&report);
    state.last = Some(report.into());
    shared.publish(&state);
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// One response: status, headers (lower-case names) and body.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one response; `head_only` for the answer to a HEAD request. Every response must
/// carry Content-Length, so that is how the body is delimited.
fn read_response(r: &mut BufReader<TcpStream>, head_only: bool) -> Resp {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).expect("header line");
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':').expect("header has a colon");
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse().expect("numeric Content-Length"))
        .expect("every response has Content-Length");
    let mut body = vec![0; if head_only { 0 } else { len }];
    r.read_exact(&mut body).expect("body");
    Resp {
        status,
        headers,
        body,
    }
}

/// Sends `raw` on a new connection and reads one response.
fn exchange(addr: SocketAddr, raw: &[u8]) -> (Resp, BufReader<TcpStream>) {
    let mut s = connect(addr);
    s.write_all(raw).unwrap();
    let mut r = BufReader::new(s);
    let resp = read_response(&mut r, raw.starts_with(b"HEAD "));
    (resp, r)
}

fn get(addr: SocketAddr, path: &str) -> Resp {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .0
}

/// Whether the server closed the connection: EOF (or a reset) within `within`.
fn closed_within(r: &mut BufReader<TcpStream>, within: Duration) -> bool {
    r.get_ref().set_read_timeout(Some(within)).unwrap();
    let mut byte = [0u8; 1];
    loop {
        match r.read(&mut byte) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn endpoints_answer_and_wait_for_the_first_round() {
    let (server, shared) = server();
    let addr = server.addr;
    assert_eq!(get(addr, "/livez").status, 200);
    assert_eq!(get(addr, "/readyz").status, 503);
    let status = get(addr, "/status.json");
    assert_eq!(status.status, 503);
    assert_eq!(status.header("content-type"), Some("application/json"));
    let scrape = get(addr, "/prometheus.report");
    assert_eq!(scrape.status, 200);
    assert!(scrape
        .text()
        .contains("networktest_build_info{version=\"9.9.9\"} 1"));
    assert!(scrape
        .text()
        .contains("networktest_http_connections_rejected_total{reason=\"over-capacity\"} 0"));

    publish_round(&shared, 3);
    assert_eq!(get(addr, "/readyz").status, 200);
    let status = get(addr, "/status.json");
    assert_eq!(status.status, 200);
    let round: RoundReport = serde_json::from_slice(&status.body).unwrap();
    assert_eq!(round.checks.len(), 3);
    let scrape = get(addr, "/metrics?x=1");
    assert_eq!(
        scrape.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(scrape.text().contains("networktest_rounds_total 1\n"));
    assert!(get(addr, "/").text().contains("/prometheus.report"));
    assert_eq!(get(addr, "/nope").status, 404);

    let (resp, _) = exchange(addr, b"DELETE /livez HTTP/1.1\r\n\r\n");
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("GET, HEAD"));

    // HEAD: the GET's headers, Content-Length included, and no body (the connection stays
    // usable, which proves no body bytes followed).
    let get_len = get(addr, "/status.json").body.len();
    let (head, mut r) = exchange(addr, b"HEAD /status.json HTTP/1.1\r\n\r\n");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(get_len.to_string().as_str())
    );
    r.get_mut()
        .write_all(b"GET /livez HTTP/1.1\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut r, false).text(), "ok\n");

    // Status codes are counted.
    wait_for("counted responses", Duration::from_secs(5), || {
        server.stats().responses(Status::Unavailable) == 2
            && server.stats().responses(Status::MethodNotAllowed) == 1
    });
}

#[test]
fn the_live_scrape_passes_promtool() {
    let (server, shared) = server();
    publish_round(&shared, 50);
    let _ = get(server.addr, "/nope");
    let scrape = get(server.addr, "/prometheus.report").text();
    assert!(scrape.contains("networktest_http_requests_total{code=\"404\"} 1\n"));
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (make setup installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {out:?}\n{scrape}"
    );
}

/// The README's metric table, as written there: name -> (type, label names).
fn readme_metrics() -> BTreeMap<String, (String, BTreeSet<String>)> {
    let readme = include_str!("../README.md");
    let section = readme
        .split("\n## Metrics\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has a Metrics section");
    section
        .lines()
        .filter(|l| l.starts_with("| `networktest_"))
        .map(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            let labels = cols[3]
                .split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect();
            (
                cols[1].trim_matches('`').to_string(),
                (cols[2].to_string(), labels),
            )
        })
        .collect()
}

/// A scrape's metric families: name -> (type, label names of its samples; `le` aside).
fn scraped_metrics(scrape: &str) -> BTreeMap<String, (String, BTreeSet<String>)> {
    let mut out: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for line in scrape.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            out.entry(name.to_string()).or_default().0 = kind.to_string();
        } else if !line.starts_with('#') && !line.is_empty() {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| out.contains_key(*f)))
                .unwrap_or(name);
            let labels = line
                .split_once('{')
                .and_then(|(_, l)| l.rsplit_once('}'))
                .map(|(l, _)| l)
                .unwrap_or("");
            let names = out.entry(family.to_string()).or_default();
            for pair in labels.split("\",").filter(|p| !p.is_empty()) {
                let key = pair.split('=').next().unwrap().trim_start_matches(',');
                if key != "le" {
                    names.1.insert(key.to_string());
                }
            }
        }
    }
    out
}

/// The README's metric table names every metric a scrape carries, with its type and labels,
/// and nothing else: both sides by their literal names (a renamed, added or dropped metric,
/// or a changed label, fails here until the README says so).
#[test]
fn the_readme_metric_table_is_the_scrape() {
    let (server, shared) = server();
    let mut checks = Vec::new();
    for (i, kind) in CheckKind::ALL.into_iter().enumerate() {
        let node = format!("node-{i}");
        checks.push(check(kind, &node, "passed", "198.18.0.1", Some(0.001)));
        checks.push(check(kind, &node, "failed", "198.18.0.2", None));
    }
    // A skipped check too, so that every family has samples to read labels from.
    checks.push(Check::new(
        report::CheckKey::new(CheckKind::PodPing, "node-9", "skipped", "198.18.0.3"),
        report::Measured::of(report::Outcome::skipped(
            report::Reason::NoAgent,
            "skipped for the test",
        )),
    ));
    let report = round(checks);
    {
        let mut state = shared.lock();
        state.totals.record(&report);
        state.totals.api_error("timeout");
        // The settings the alert rules read, as the agent sets them at start-up.
        state.totals.reporting = Some(Reporting {
            interval: std::time::Duration::from_secs(60),
            reach: Reach::FULL,
        });
        state.last = Some(report.into());
        shared.publish(&state);
    }
    let scrape = get(server.addr, "/metrics").text();
    let scraped = scraped_metrics(&scrape);
    let documented = readme_metrics();
    assert!(
        documented.len() >= 10,
        "read the README's table: {documented:?}"
    );
    let only_readme: Vec<&String> = documented
        .keys()
        .filter(|k| !scraped.contains_key(*k))
        .collect();
    let only_scrape: Vec<&String> = scraped
        .keys()
        .filter(|k| !documented.contains_key(*k))
        .collect();
    assert!(
        only_readme.is_empty() && only_scrape.is_empty(),
        "README only: {only_readme:?}; scrape only: {only_scrape:?}"
    );
    for (name, want) in &documented {
        assert_eq!(
            &scraped[name], want,
            "{name}: (type, labels) in the scrape vs the README"
        );
    }
}

#[test]
fn keep_alive_and_connection_close() {
    let (server, _) = server();
    let addr = server.addr;
    // HTTP/1.1 keeps the connection by default.
    let (first, mut r) = exchange(addr, b"GET /livez HTTP/1.1\r\n\r\n");
    assert_eq!(first.header("connection"), Some("keep-alive"));
    r.get_mut()
        .write_all(b"GET /readyz HTTP/1.1\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut r, false).status, 503);
    // ... until the client says close.
    r.get_mut()
        .write_all(b"GET /livez HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let last = read_response(&mut r, false);
    assert_eq!(last.header("connection"), Some("close"));
    assert!(closed_within(&mut r, Duration::from_secs(5)));

    // HTTP/1.0 closes by default and keeps the connection only when asked.
    let (resp, mut r) = exchange(addr, b"GET /livez HTTP/1.0\r\n\r\n");
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(closed_within(&mut r, Duration::from_secs(5)));
    let (resp, mut r) = exchange(
        addr,
        b"GET /livez HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    assert_eq!(resp.header("connection"), Some("keep-alive"));
    r.get_mut()
        .write_all(b"GET /livez HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut r, false).status, 200);

    // An idle kept-alive connection is closed after the idle timeout (800 ms here).
    assert!(closed_within(&mut r, Duration::from_secs(10)));
    assert_eq!(server.stats().rejections(Reason::HeadTimeout), 0);

    // Other versions.
    let (resp, mut r) = exchange(addr, b"GET / HTTP/2.0\r\n\r\n");
    assert_eq!(resp.status, 505);
    assert!(closed_within(&mut r, Duration::from_secs(5)));
    let (resp, _) = exchange(addr, b"GET /\r\n\r\n");
    assert!(resp.status == 505 || resp.status == 400, "{resp:?}");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (server, _) = server();
    let mut s = connect(server.addr);
    s.write_all(
        b"GET /livez HTTP/1.1\r\n\r\nGET /readyz HTTP/1.1\r\n\r\nHEAD /livez HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut r = BufReader::new(s);
    assert_eq!(read_response(&mut r, false).status, 200);
    assert_eq!(read_response(&mut r, false).status, 503);
    let head = read_response(&mut r, true);
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, Some("3"))
    );
    assert_eq!(read_response(&mut r, false).status, 404);
    assert!(closed_within(&mut r, Duration::from_secs(5)));
}

#[test]
fn bodies_are_refused_without_being_read() {
    let (server, _) = server();
    let addr = server.addr;
    for raw in [
        &b"GET /livez HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n"[..],
        b"POST /livez HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n",
        b"GET /livez HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        let (resp, mut r) = exchange(addr, raw);
        assert_eq!(resp.status, 413, "{}", String::from_utf8_lossy(raw));
        assert_eq!(resp.header("connection"), Some("close"));
        assert!(closed_within(&mut r, Duration::from_secs(5)));
    }
    // A client that goes on sending its body still gets the 413 (the server drains before
    // closing, so the close does not reset the answer away).
    let mut s = connect(addr);
    s.write_all(b"POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    s.write_all(&[b'x'; 30000]).unwrap();
    let mut r = BufReader::new(s);
    assert_eq!(read_response(&mut r, false).status, 413);
    assert_eq!(server.stats().rejections(Reason::Body), 4);
    assert_eq!(get(addr, "/livez").status, 200);
}

#[test]
fn oversized_heads_get_431() {
    let (server, _) = server();
    let addr = server.addr;
    // A header line that never ends: the server answers after 8 KiB and stops reading.
    let mut s = connect(addr);
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nX-Long: ").unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0usize;
    while sent < 64 * 1024 * 1024 {
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    let mut r = BufReader::new(s);
    let resp = read_response(&mut r, false);
    assert_eq!(resp.status, 431);
    assert!(
        sent < 64 * 1024 * 1024,
        "the server kept taking the endless header line ({sent} bytes)"
    );
    // Too many header fields.
    let mut many = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..100 {
        many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(exchange(addr, &many).0.status, 431);
    // Garbage.
    assert_eq!(
        exchange(
            addr,
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n"
        )
        .0
        .status,
        400
    );
    assert_eq!(server.stats().rejections(Reason::HeadTooLarge), 2);
    assert_eq!(server.stats().rejections(Reason::BadRequest), 1);
    assert_eq!(get(addr, "/livez").status, 200);
}

#[test]
fn slow_heads_get_408_and_silent_connections_are_closed() {
    let (server, _) = server();
    let addr = server.addr;
    let mut s = connect(addr);
    s.write_all(b"GET /livez HTTP/1.1\r\nHost: slo").unwrap();
    let started = Instant::now();
    let mut r = BufReader::new(s);
    let resp = read_response(&mut r, false);
    assert_eq!(resp.status, 408);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(closed_within(&mut r, Duration::from_secs(5)));
    // A connection that never sends anything is closed without an answer.
    let s = connect(addr);
    let mut r = BufReader::new(s);
    assert!(closed_within(&mut r, Duration::from_secs(10)));
    assert_eq!(server.stats().rejections(Reason::HeadTimeout), 2);
}

#[test]
fn a_client_that_never_reads_is_closed_at_the_write_timeout() {
    let (server, shared) = server();
    publish_round(&shared, 1000); // a scrape of about 200 KB
    let addr = server.addr;
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&addr.into()).unwrap();
    let mut s: TcpStream = sock.into();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    let scrape = b"GET /prometheus.report HTTP/1.1\r\nHost: x\r\n\r\n";
    // Hundreds of pipelined scrapes, never read.
    let burst: Vec<u8> = scrape.repeat(500);
    let _ = s.write_all(&burst);
    // Meanwhile others are served.
    assert_eq!(get(addr, "/livez").status, 200);
    wait_for("the write timeout", Duration::from_secs(10), || {
        server.stats().rejections(Reason::WriteTimeout) == 1
    });
    assert_eq!(get(addr, "/livez").status, 200);
}

#[test]
fn the_connection_cap_evicts_the_oldest_idle_and_connects_keep_completing() {
    let (server, _) = server_with(Limits {
        max_connections: 8,
        head_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        ..limits()
    });
    let addr = server.addr;
    let mut idle: Vec<BufReader<TcpStream>> =
        (0..8).map(|_| BufReader::new(connect(addr))).collect();
    wait_for("8 open connections", Duration::from_secs(5), || {
        server.stats().open() == 8
    });
    // A ninth client is served; the oldest idle connection made room.
    assert_eq!(get(addr, "/livez").status, 200);
    assert!(closed_within(&mut idle[0], Duration::from_secs(5)));
    assert!(!closed_within(&mut idle[7], Duration::from_millis(200)));
    // Hundreds more connections all complete their TCP handshake (the backlog never fills)
    // and every one that sends a request is answered.
    let mut held = Vec::new();
    for i in 0..300 {
        let mut s = connect(addr);
        if i % 10 == 0 {
            s.write_all(b"GET /livez HTTP/1.1\r\n\r\n").unwrap();
            let mut r = BufReader::new(s);
            assert_eq!(read_response(&mut r, false).status, 200, "client {i}");
            held.push(r);
        } else {
            held.push(BufReader::new(s));
        }
    }
    assert!(server.stats().rejections(Reason::OverCapacity) >= 290);
    assert!(server.stats().open() <= 8);
    assert_eq!(get(addr, "/livez").status, 200);
}

#[test]
fn a_new_client_is_spared_while_older_slow_heads_make_room() {
    let (server, _) = server_with(Limits {
        max_connections: 8,
        head_timeout: Duration::from_secs(30),
        ..limits()
    });
    let addr = server.addr;
    let mut slow: Vec<BufReader<TcpStream>> = (0..6)
        .map(|_| {
            let mut s = connect(addr);
            s.write_all(b"GET /livez HTTP/1.1\r\nX-Slow: a").unwrap();
            BufReader::new(s)
        })
        .collect();
    wait_for("6 slow heads", Duration::from_secs(5), || {
        server.stats().open() == 6
    });
    // Older than the grace period of new connections.
    std::thread::sleep(Duration::from_millis(400));
    // A client connects and, before its request arrives, a flood of connections does too.
    let mut client = connect(addr);
    let flood: Vec<TcpStream> = (0..5).map(|_| connect(addr)).collect();
    wait_for("evictions", Duration::from_secs(5), || {
        server.stats().rejections(Reason::OverCapacity) == 4
    });
    client.write_all(b"GET /livez HTTP/1.1\r\n\r\n").unwrap();
    let mut r = BufReader::new(client);
    assert_eq!(read_response(&mut r, false).status, 200);
    // The room came from the oldest slow heads.
    let closed = slow
        .iter_mut()
        .filter_map(|s| closed_within(s, Duration::from_millis(200)).then_some(()))
        .count();
    assert_eq!(closed, 4);
    drop(flood);
}

#[test]
fn resets_and_half_closes_are_survived_and_counted() {
    let (server, _) = server();
    let addr = server.addr;
    for _ in 0..200 {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.connect(&addr.into()).unwrap();
        sock.set_linger(Some(Duration::ZERO)).unwrap();
        let mut s: TcpStream = sock.into();
        s.write_all(b"GET /prometheus.report HTTP/1.1\r\n\r\n")
            .unwrap();
        drop(s); // RST
    }
    wait_for("resets counted", Duration::from_secs(10), || {
        server.stats().rejections(Reason::Reset) > 0
    });
    // The peer closes in the middle of a head: closed, counted.
    let mut s = connect(addr);
    s.write_all(b"GET /livez HTTP/1.1\r\nHo").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut r = BufReader::new(s);
    assert!(closed_within(&mut r, Duration::from_secs(5)));
    wait_for("incomplete head counted", Duration::from_secs(5), || {
        server.stats().rejections(Reason::IncompleteHead) == 1
    });
    // A whole request then EOF: answered, then closed.
    let mut s = connect(addr);
    s.write_all(b"GET /livez HTTP/1.1\r\n\r\n").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut r = BufReader::new(s);
    assert_eq!(read_response(&mut r, false).text(), "ok\n");
    assert!(closed_within(&mut r, Duration::from_secs(5)));
    // A connect without a request (a TCP check) is no rejection.
    let before = server.stats().rejection_counts();
    drop(connect(addr));
    assert_eq!(get(addr, "/livez").status, 200);
    assert_eq!(server.stats().rejection_counts(), before);
}

#[test]
fn stop_is_prompt_with_connections_open() {
    let (server, _) = server();
    let addr = server.addr;
    let _held: Vec<TcpStream> = (0..10).map(|_| connect(addr)).collect();
    let mut slow = connect(addr);
    slow.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let started = Instant::now();
    server.stop();
    let took = started.elapsed();
    println!("stop took {took:?}");
    assert!(took < Duration::from_secs(2), "stop took {took:?}");
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err());
}

#[test]
fn an_ipv6_wildcard_serves_both_families() {
    let shared = shared();
    let server = HttpServer::start_with("[::]:0".parse().unwrap(), shared, limits()).unwrap();
    let port = server.addr.port();
    for host in ["127.0.0.1", "[::1]"] {
        let addr: SocketAddr = format!("{host}:{port}").parse().unwrap();
        assert_eq!(get(addr, "/livez").status, 200, "{addr}");
    }
}
