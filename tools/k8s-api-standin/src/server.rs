//! The HTTPS server: rustls over std TCP, one thread per connection, hand-rolled HTTP/1.1.

use crate::api::{self, Answer, Kind, ListMode, Response, WatchRequest};
use crate::fault::{Fault, FaultPlan};
use crate::objects::{agent_pod, Cluster};
use crate::select::parse_query;
use crate::store::{Event, EventType, Store};
use crate::table::{self, Repr};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(50);
/// Largest request head accepted (the client sends small GETs).
const MAX_HEAD: usize = 64 * 1024;
/// How often the watch cache sends a BOOKMARK to a watch that asked for them (the real
/// cacher's `bookmarkFrequency`), unless changed with [`StandIn::set_bookmark_interval`].
pub const BOOKMARK_EVERY: Duration = Duration::from_secs(60);
/// A watch without `timeoutSeconds` ends after this (the real server picks 30 to 60 min).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// One request as the stand-in saw it, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// `GET`, ...
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// The `Authorization` header as sent.
    pub authorization: Option<String>,
    /// The `Accept` header as sent.
    pub accept: Option<String>,
}

/// Requests and bytes served for one path, representation and verb (list/get or watch),
/// for tests and benchmarks that count what a client costs the API server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Served {
    /// The request path (no query).
    pub path: String,
    /// `full`, `table`, `metadata` or `text` (health endpoints).
    pub repr: &'static str,
    /// A watch (`watch=true`) rather than a list or get.
    pub watch: bool,
    pub requests: u64,
    /// Response bytes written (head and body, chunk framing included; TLS not).
    pub bytes: u64,
}

struct State {
    store: Store,
    token: String,
    fault: Option<FaultPlan>,
    log: Vec<Logged>,
    served: BTreeMap<(String, &'static str, bool), (u64, u64)>,
    bookmark_every: Duration,
    /// Bumped by [`StandIn::cut_watches`]: streams that started before end abruptly.
    cut_gen: u64,
    /// Serve full objects whatever the Accept header asks for.
    ignore_representations: bool,
}

impl State {
    fn count(&mut self, key: &(String, &'static str, bool), requests: u64, bytes: u64) {
        let e = self.served.entry(key.clone()).or_default();
        e.0 += requests;
        e.1 += bytes;
    }
}

struct Shared {
    state: Mutex<State>,
    /// Notified when the store, the fault or the cut generation changes.
    changed: Condvar,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking connection thread must not take the whole stand-in down.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Counts down `ExpireWhilePaging`'s 410s; true when this continue request gets one.
    fn count_down_expire(&self) -> bool {
        let mut st = self.lock();
        match st.fault.as_mut().map(|p| &mut p.fault) {
            Some(Fault::ExpireWhilePaging { expire, .. }) if *expire > 0 => {
                *expire -= 1;
                true
            }
            _ => false,
        }
    }

    /// Takes the active fault for one request, counting it down. `CutWatch` only applies
    /// to (and counts) watch requests.
    fn take_fault(&self, only_close: bool, watch: bool) -> Option<Fault> {
        let mut st = self.lock();
        let plan = st.fault.as_mut()?;
        if matches!(
            plan.fault,
            Fault::CutWatch { .. } | Fault::WatchEvent { .. }
        ) && (only_close || !watch)
        {
            return None;
        }
        if only_close != (plan.fault == Fault::CloseImmediately) {
            // A server that went away drops its kept-alive connections too: requests on them
            // are closed unanswered (the count still counts new connections only).
            if plan.fault == Fault::CloseImmediately {
                return Some(Fault::CloseImmediately);
            }
            return None;
        }
        let fault = plan.fault.clone();
        if let Some(n) = plan.count.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                st.fault = None;
            }
        }
        Some(fault)
    }
}

/// A running HTTPS Kubernetes API stand-in. Stops on [`StandIn::stop`] or drop.
pub struct StandIn {
    shared: Arc<Shared>,
    addr: SocketAddr,
    dir: PathBuf,
    accept: Option<JoinHandle<()>>,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn random_token() -> io::Result<String> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Makes a CA and a server certificate for `ip`; returns (CA PEM, TLS config).
fn make_tls(ip: IpAddr) -> io::Result<(String, Arc<ServerConfig>)> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().map_err(other)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(other)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "k8s-api-standin-ca");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(other)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().map_err(other)?;
    let mut params = CertificateParams::new(vec![
        "localhost".to_string(),
        "kubernetes.default.svc".to_string(),
    ])
    .map_err(other)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    let mut ips = vec![
        ip,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    ips.dedup();
    params
        .subject_alt_names
        .extend(ips.into_iter().map(SanType::IpAddress));
    let cert = params.signed_by(&key, &issuer).map_err(other)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(other)?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(other)?;
    Ok((ca_cert.pem(), Arc::new(config)))
}

impl StandIn {
    /// Binds `listen` on the calling thread (so a caller inside a network namespace gets a
    /// listener there; spawned threads inherit it), writes `dir/ca.crt` and `dir/token`, and
    /// serves `cluster` over HTTPS. Port 0 picks a free port (see [`StandIn::url`]).
    pub fn start(listen: SocketAddr, cluster: Cluster, dir: &Path) -> io::Result<StandIn> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let (ca_pem, config) = make_tls(listen.ip())?;
        let token = random_token()?;
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("ca.crt"), ca_pem)?;
        std::fs::write(dir.join("token"), &token)?;
        listener.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                store: Store::new(cluster, 1000),
                token,
                fault: None,
                log: Vec::new(),
                served: BTreeMap::new(),
                bookmark_every: BOOKMARK_EVERY,
                cut_gen: 0,
                ignore_representations: false,
            }),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let sh = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("standin-accept".into())
            .spawn(move || accept_loop(listener, config, sh))?;
        Ok(StandIn {
            shared,
            addr,
            dir: dir.to_path_buf(),
            accept: Some(accept),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://IP:PORT` (IPv6 bracketed; an unspecified listen address becomes loopback).
    pub fn url(&self) -> String {
        let mut a = self.addr;
        if a.ip().is_unspecified() {
            a.set_ip(match a.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        format!("https://{a}")
    }

    /// `dir/ca.crt`: the CA that signed the server certificate (PEM).
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// `dir/token`: the bearer token written at start.
    pub fn token_path(&self) -> PathBuf {
        self.dir.join("token")
    }

    /// The token the server accepts now.
    pub fn token(&self) -> String {
        self.shared.lock().token.clone()
    }

    /// Accept only this token from now on (the file is not rewritten; the test does that).
    pub fn set_token(&self, token: &str) {
        self.shared.lock().token = token.to_string();
    }

    /// Replace the cluster: every difference becomes a watch event (ADDED, MODIFIED,
    /// DELETED, each with its own resourceVersion), and the resourceVersion advances even
    /// when nothing changed (older continue tokens then get 410). Returns the events made.
    pub fn set_cluster(&self, cluster: Cluster) -> usize {
        let made = self.shared.lock().store.replace(cluster);
        self.shared.changed.notify_all();
        made
    }

    /// Writes one object (create or update by namespace and name), as a PUT would: one
    /// event, plus EndpointSlice events when a pod or service changed what a slice holds.
    pub fn put(&self, kind: Kind, object: serde_json::Value) -> usize {
        let made = self.shared.lock().store.put(kind, object);
        self.shared.changed.notify_all();
        made
    }

    /// Deletes one object (`namespace` "" for nodes).
    pub fn delete(&self, kind: Kind, namespace: &str, name: &str) -> usize {
        let made = self.shared.lock().store.delete(kind, namespace, name);
        self.shared.changed.notify_all();
        made
    }

    /// The objects served now (the description plus derived EndpointSlices).
    pub fn served_cluster(&self) -> Cluster {
        self.shared.lock().store.served.clone()
    }

    /// The current list resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().store.rv
    }

    /// Forgets the watch history (as an etcd compaction does): a watch that resumes from
    /// an earlier resourceVersion gets a 410 ERROR event.
    pub fn compact(&self) {
        self.shared.lock().store.compact();
    }

    /// Keeps at most `events` watch events.
    pub fn set_history_limit(&self, events: usize) {
        self.shared.lock().store.set_history_limit(events);
    }

    /// How often watches that allow them get a BOOKMARK (default one minute).
    pub fn set_bookmark_interval(&self, every: Duration) {
        self.shared.lock().bookmark_every = every.max(Duration::from_millis(10));
        self.shared.changed.notify_all();
    }

    /// Ends every open watch stream abruptly (no chunked terminator), as a restarting
    /// server or a dropped connection does.
    pub fn cut_watches(&self) {
        self.shared.lock().cut_gen += 1;
        self.shared.changed.notify_all();
    }

    /// `false` makes the stand-in answer full objects whatever representation the Accept
    /// header asks for, like a server or proxy that ignores `as=Table`.
    pub fn set_representations(&self, honour: bool) {
        self.shared.lock().ignore_representations = !honour;
    }

    /// Requests and bytes served so far, per path, representation and verb.
    pub fn served(&self) -> Vec<Served> {
        self.shared
            .lock()
            .served
            .iter()
            .map(|((path, repr, watch), (requests, bytes))| Served {
                path: path.clone(),
                repr,
                watch: *watch,
                requests: *requests,
                bytes: *bytes,
            })
            .collect()
    }

    /// Starts the counters over.
    pub fn reset_served(&self) {
        self.shared.lock().served.clear();
    }

    /// Apply `fault` to every following request until changed or cleared.
    pub fn set_fault(&self, fault: Fault) {
        self.set_fault_plan(Some(FaultPlan { fault, count: None }));
    }

    /// Apply `fault` to the next `count` requests (connections for `CloseImmediately`), then clear.
    pub fn set_fault_for(&self, fault: Fault, count: u32) {
        self.set_fault_plan((count > 0).then_some(FaultPlan {
            fault,
            count: Some(count),
        }));
    }

    /// Set or clear (None) the fault plan.
    pub fn set_fault_plan(&self, plan: Option<FaultPlan>) {
        self.shared.lock().fault = plan;
        self.shared.changed.notify_all();
    }

    /// Behave normally again.
    pub fn clear_fault(&self) {
        self.set_fault_plan(None);
    }

    /// Every request seen so far, oldest first.
    pub fn requests(&self) -> Vec<Logged> {
        self.shared.lock().log.clone()
    }

    /// Stops accepting, ends connection threads (hung ones too) and waits for them.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.changed.notify_all();
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, config: Arc<ServerConfig>, shared: Arc<Shared>) {
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stopping() {
        match listener.accept() {
            Ok((stream, _)) => {
                if shared.take_fault(true, false).is_some() {
                    drop(stream);
                    continue;
                }
                conns.retain(|h| !h.is_finished());
                let (cfg, sh) = (Arc::clone(&config), Arc::clone(&shared));
                match thread::Builder::new()
                    .name("standin-conn".into())
                    .spawn(move || serve_connection(stream, cfg, sh))
                {
                    Ok(h) => conns.push(h),
                    Err(e) => eprintln!("k8s-api-standin: cannot start a connection thread: {e}"),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("k8s-api-standin: accept failed: {e}");
                thread::sleep(POLL);
            }
        }
    }
    for h in conns {
        let _ = h.join();
    }
}

type Tls = StreamOwned<ServerConnection, TcpStream>;

/// A parsed request head.
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    http10: bool,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn keep_alive(&self) -> bool {
        match self.header("connection").map(str::to_ascii_lowercase) {
            Some(c) if c.contains("close") => false,
            Some(c) if c.contains("keep-alive") => true,
            _ => !self.http10,
        }
    }
}

/// Parses a request head (without the final blank line); None when it is not HTTP/1.x.
fn parse_head(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !version.starts_with("HTTP/1.") || method.is_empty() {
        return None;
    }
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(Request {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        http10: version == "HTTP/1.0",
    })
}

/// Reads more bytes into `buf`, retrying on the poll timeout; Ok(false) at EOF or stop.
fn read_more(tls: &mut Tls, buf: &mut Vec<u8>, shared: &Shared) -> io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match tls.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(true);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                if shared.stopping() {
                    return Ok(false);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

fn serve_connection(stream: TcpStream, config: Arc<ServerConfig>, shared: Arc<Shared>) {
    let setup = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(POLL)))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(10))));
    if setup.is_err() {
        return;
    }
    let Ok(conn) = ServerConnection::new(config) else {
        return;
    };
    let mut tls = StreamOwned::new(conn, stream);
    let mut buf = Vec::new();
    // Errors end the connection; the client sees a reset or EOF, as with a real server.
    let _ = serve_requests(&mut tls, &mut buf, &shared);
}

fn serve_requests(tls: &mut Tls, buf: &mut Vec<u8>, shared: &Shared) -> io::Result<()> {
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if buf.len() > MAX_HEAD {
                let r = Response {
                    code: 431,
                    content_type: "text/plain".into(),
                    headers: vec![],
                    body: b"request header too large".to_vec(),
                };
                return write_response(tls, &r, false);
            }
            if !read_more(tls, buf, shared)? {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end + 4);
        let Some(req) = parse_head(&head) else {
            let r = Response {
                code: 400,
                content_type: "text/plain".into(),
                headers: vec![],
                body: b"bad request".to_vec(),
            };
            return write_response(tls, &r, false);
        };
        // Discard a request body (the client sends none, but stay in sync if it does).
        let body_len: usize = req
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < body_len {
            if !read_more(tls, buf, shared)? {
                return Ok(());
            }
        }
        buf.drain(..body_len);
        if !answer(tls, &req, shared)? {
            return Ok(());
        }
    }
}

/// Answers one request; Ok(true) when the connection stays open.
fn answer(tls: &mut Tls, req: &Request, shared: &Shared) -> io::Result<bool> {
    let (path, query) = match req.target.split_once('?') {
        Some((p, q)) => (p.to_string(), parse_query(q)),
        None => (req.target.clone(), Vec::new()),
    };
    let authorization = req.header("authorization").map(str::to_string);
    let accept = req.header("accept").map(str::to_string);
    shared.lock().log.push(Logged {
        method: req.method.clone(),
        path: path.clone(),
        query: query.clone(),
        authorization: authorization.clone(),
        accept: accept.clone(),
    });
    let keep = req.keep_alive();
    let watch = query
        .iter()
        .any(|(k, v)| k == "watch" && (v == "true" || v == "1"));
    let fault = shared.take_fault(false, watch);
    let mut mode = ListMode::default();
    let mut cut_after = None;
    match &fault {
        Some(Fault::Status {
            code,
            content_type,
            body,
            retry_after,
        }) => {
            let mut r = Response {
                code: *code,
                content_type: content_type.clone(),
                headers: vec![],
                body: body.clone().into_bytes(),
            };
            if let Some(s) = retry_after {
                r.headers.push(("Retry-After".into(), s.to_string()));
            }
            write_counted(tls, &r, keep, shared, &(path, "full", watch))?;
            return Ok(keep);
        }
        Some(Fault::Hang) => {
            while !shared.stopping() {
                thread::sleep(POLL);
            }
            return Ok(false);
        }
        Some(Fault::CloseImmediately) => return Ok(false),
        Some(Fault::Huge { bytes }) => {
            let rv = shared.lock().store.rv;
            write_huge(tls, *bytes, rv)?;
            return Ok(keep);
        }
        Some(Fault::PageAlways { limit }) => mode.page_always = Some(*limit),
        Some(Fault::RepeatContinue { limit }) => {
            mode.page_always = Some(*limit);
            mode.repeat_continue = true;
        }
        Some(Fault::SlowPages { limit, millis }) => {
            mode.page_always = Some(*limit);
            thread::sleep(Duration::from_millis(*millis));
        }
        Some(Fault::ExpireContinue) => mode.expire_continue = true,
        Some(Fault::ExpireWhilePaging { limit, .. }) => {
            mode.page_always = Some(*limit);
            let continues = query.iter().any(|(k, v)| k == "continue" && !v.is_empty());
            mode.expire_continue = continues && shared.count_down_expire();
        }
        Some(Fault::CutWatch { after_bytes }) => cut_after = Some(*after_bytes),
        Some(Fault::WatchEvent { line }) => {
            let head = "HTTP/1.1 200 OK\r\nCache-Control: no-cache, private\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
            let data = format!("{}\n", line.trim_end());
            let body = format!("{:x}\r\n{data}\r\n0\r\n\r\n", data.len());
            tls.write_all(head.as_bytes())?;
            tls.write_all(body.as_bytes())?;
            tls.flush()?;
            shared
                .lock()
                .count(&(path, "full", true), 1, (head.len() + body.len()) as u64);
            return Ok(keep);
        }
        Some(Fault::Truncate) | None => {}
    }
    // Health endpoints: open to every client, as system:public-info-viewer allows.
    if path == "/livez" || path == "/readyz" {
        let r = Response {
            code: 200,
            content_type: "text/plain; charset=utf-8".into(),
            headers: vec![],
            body: b"ok".to_vec(),
        };
        write_counted(tls, &r, keep, shared, &(path, "text", false))?;
        return Ok(keep);
    }
    let include = query
        .iter()
        .find(|(k, _)| k == "includeObject")
        .map(|(_, v)| v.as_str());
    let answer = {
        let st = shared.lock();
        let repr = if st.ignore_representations {
            Ok(Repr::Full)
        } else {
            table::negotiate(accept.as_deref(), include)
        };
        if authorization.as_deref() != Some(format!("Bearer {}", st.token).as_str()) {
            Answer::Reply(api::unauthorized())
        } else {
            match repr {
                Err(e) => Answer::Reply(api::status(
                    400,
                    "BadRequest",
                    &format!("Unable to convert to Table as requested: {e}"),
                    None,
                )),
                Ok(repr) => api::handle_as(
                    &req.method,
                    &path,
                    &query,
                    &st.store.served,
                    st.store.rv,
                    mode,
                    repr,
                ),
            }
        }
    };
    let response = match answer {
        Answer::Watch(w) => return stream_watch(tls, *w, shared, &path, cut_after, keep),
        Answer::Reply(r) => r,
    };
    let repr_label = if response.body.starts_with(b"{\"kind\":\"Table\"") {
        "table"
    } else if response
        .body
        .starts_with(b"{\"kind\":\"PartialObjectMetadata")
    {
        "metadata"
    } else {
        "full"
    };
    let key = (path, repr_label, false);
    if fault == Some(Fault::Truncate) {
        let head = response_head(&response, response.body.len() as u64 + 1000, false);
        let half = &response.body[..response.body.len() / 2];
        tls.write_all(head.as_bytes())?;
        tls.write_all(half)?;
        tls.flush()?;
        shared
            .lock()
            .count(&key, 1, (head.len() + half.len()) as u64);
        // Close the TCP connection without close_notify, like a crashed peer.
        let _ = tls.sock.shutdown(std::net::Shutdown::Both);
        return Ok(false);
    }
    write_counted(tls, &response, keep, shared, &key)?;
    Ok(keep)
}

/// Writes a response and counts it.
fn write_counted(
    tls: &mut Tls,
    r: &Response,
    keep: bool,
    shared: &Shared,
    key: &(String, &'static str, bool),
) -> io::Result<()> {
    let bytes = response_head(r, r.body.len() as u64, keep).len() + r.body.len();
    shared.lock().count(key, 1, bytes as u64);
    write_response(tls, r, keep)
}

/// One watch event line (`{"type":...,"object":...}\n`) in the watch's representation;
/// `headers` is whether a Table carries its column definitions (the first event only).
fn event_line(w: &WatchRequest, typ: &str, object: &Value, headers: bool) -> String {
    let rendered = match w.repr {
        Repr::Table(include) if table::column_definitions(w.kind).is_some() => {
            let meta = json!({ "resourceVersion": object["metadata"]["resourceVersion"].clone() });
            table::go_escape(&table::table(w.kind, &[object], include, meta, headers))
        }
        Repr::Metadata { .. } => table::partial(object).to_string(),
        _ => object.to_string(),
    };
    format!("{{\"type\":\"{typ}\",\"object\":{rendered}}}\n")
}

/// What a watch sees of one stored event: selector transitions turn a MODIFIED into an
/// ADDED or a DELETED (with the resourceVersion of the change), as the watch cache does.
fn visible(w: &WatchRequest, e: &Event) -> Option<(&'static str, Value)> {
    let now = w.selects(&e.object);
    let before = e.previous.as_ref().map(|p| w.selects(p));
    match (e.typ, now, before) {
        (EventType::Modified, true, Some(false)) => Some(("ADDED", e.object.clone())),
        (EventType::Modified, false, Some(true)) => {
            let mut old = e.previous.clone().unwrap_or(Value::Null);
            if let Some(m) = old.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert("resourceVersion".into(), json!(e.rv.to_string()));
            }
            Some(("DELETED", old))
        }
        (_, true, _) => Some((e.typ.as_str(), e.object.clone())),
        _ => None,
    }
}

/// Writes chunks of a watch body, counting them and cutting the stream after `cut_after`
/// body bytes when a `CutWatch` fault says so.
struct WatchWriter<'a> {
    tls: &'a mut Tls,
    shared: &'a Shared,
    key: (String, &'static str, bool),
    body_sent: u64,
    cut_after: Option<u64>,
    headers_sent: bool,
}

impl WatchWriter<'_> {
    /// Ok(false) when the fault cut the stream here.
    fn chunk(&mut self, data: &str) -> io::Result<bool> {
        let framed = format!("{:x}\r\n{data}\r\n", data.len());
        let bytes = framed.as_bytes();
        if let Some(limit) = self.cut_after {
            let room = limit.saturating_sub(self.body_sent) as usize;
            if bytes.len() > room {
                let part = bytes.get(..room).unwrap_or(bytes);
                self.tls.write_all(part)?;
                self.tls.flush()?;
                self.shared.lock().count(&self.key, 0, part.len() as u64);
                let _ = self.tls.sock.shutdown(std::net::Shutdown::Both);
                return Ok(false);
            }
        }
        self.tls.write_all(bytes)?;
        self.tls.flush()?;
        self.body_sent += bytes.len() as u64;
        self.shared.lock().count(&self.key, 0, bytes.len() as u64);
        Ok(true)
    }

    fn event(&mut self, w: &WatchRequest, typ: &str, object: &Value) -> io::Result<bool> {
        let line = event_line(w, typ, object, !self.headers_sent);
        self.headers_sent = true;
        self.chunk(&line)
    }
}

/// The events a watch starts with, or the history's floor when it resumes from too far back.
type Initial = Result<Vec<(&'static str, Value)>, u64>;

/// Streams a watch: the initial or missed events, then every change as it happens,
/// BOOKMARKs when asked for, until `timeoutSeconds` (then the chunked terminator), a cut
/// (no terminator) or the stand-in stopping.
fn stream_watch(
    tls: &mut Tls,
    w: WatchRequest,
    shared: &Shared,
    path: &str,
    cut_after: Option<u64>,
    keep: bool,
) -> io::Result<bool> {
    let key = (path.to_string(), w.repr.label(), true);
    let (start_gen, mut position, first): (u64, u64, Initial) = {
        let st = shared.lock();
        let first = match w.from {
            None => Ok(w
                .kind
                .objects(&st.store.served)
                .iter()
                .filter(|o| w.selects(o))
                .map(|o| ("ADDED", o.clone()))
                .collect()),
            Some(rv) => st
                .store
                .since(w.kind, rv)
                .map(|evs| evs.into_iter().filter_map(|e| visible(&w, e)).collect()),
        };
        let position = w.from.unwrap_or(0).max(st.store.rv);
        (st.cut_gen, position, first)
    };
    let head = "HTTP/1.1 200 OK\r\nCache-Control: no-cache, private\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    shared.lock().count(&key, 1, head.len() as u64);
    tls.write_all(head.as_bytes())?;
    let mut out = WatchWriter {
        tls,
        shared,
        key,
        body_sent: 0,
        cut_after,
        headers_sent: false,
    };
    let end = |out: &mut WatchWriter| -> io::Result<bool> {
        out.tls.write_all(b"0\r\n\r\n")?;
        out.tls.flush()?;
        out.shared.lock().count(&out.key, 0, 5);
        Ok(keep)
    };
    let initial = match first {
        Ok(events) => events,
        Err(floor) => {
            let requested = w.from.unwrap_or(0);
            let status = api::status(
                410,
                "Expired",
                &format!("too old resource version: {requested} ({floor})"),
                None,
            );
            let line = format!(
                "{{\"type\":\"ERROR\",\"object\":{}}}\n",
                String::from_utf8_lossy(&status.body)
            );
            if !out.chunk(&line)? {
                return Ok(false);
            }
            return end(&mut out);
        }
    };
    for (typ, object) in &initial {
        if !out.event(&w, typ, object)? {
            return Ok(false);
        }
    }
    let started = Instant::now();
    let deadline = started + w.timeout.unwrap_or(DEFAULT_WATCH_TIMEOUT);
    let mut next_bookmark = started + shared.lock().bookmark_every;
    loop {
        let mut batch: Vec<(&'static str, Value)> = Vec::new();
        let mut bookmark = None;
        {
            let mut st = shared.lock();
            loop {
                let close = matches!(
                    st.fault.as_ref().map(|p| &p.fault),
                    Some(Fault::CloseImmediately)
                );
                if shared.stopping() || close || st.cut_gen != start_gen {
                    drop(st);
                    let _ = out.tls.sock.shutdown(std::net::Shutdown::Both);
                    return Ok(false);
                }
                match st.store.since(w.kind, position) {
                    // Fell out of the history (a very slow reader): the watch cache ends
                    // such watches; the client resumes and gets its 410 then.
                    Err(_) => {
                        drop(st);
                        return end(&mut out);
                    }
                    Ok(events) => batch.extend(events.into_iter().filter_map(|e| visible(&w, e))),
                }
                position = position.max(st.store.rv);
                let now = Instant::now();
                if !batch.is_empty() {
                    break;
                }
                if now >= deadline {
                    if w.bookmarks {
                        bookmark = Some(position);
                    }
                    break;
                }
                if w.bookmarks && now >= next_bookmark {
                    bookmark = Some(position);
                    next_bookmark = now + st.bookmark_every;
                    break;
                }
                let wake = deadline.min(if w.bookmarks { next_bookmark } else { deadline });
                let wait = wake.saturating_duration_since(now).min(POLL);
                st = shared
                    .changed
                    .wait_timeout(st, wait)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
        }
        for (typ, object) in &batch {
            if !out.event(&w, typ, object)? {
                return Ok(false);
            }
        }
        if let Some(rv) = bookmark {
            if !out.event(&w, "BOOKMARK", &w.kind.bookmark(rv))? {
                return Ok(false);
            }
        }
        if Instant::now() >= deadline {
            return end(&mut out);
        }
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

fn response_head(r: &Response, content_length: u64, keep: bool) -> String {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-cache, private\r\n",
        r.code,
        reason(r.code),
        r.content_type,
        content_length
    );
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !keep {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    head
}

fn write_response(tls: &mut Tls, r: &Response, keep: bool) -> io::Result<()> {
    let mut out = response_head(r, r.body.len() as u64, keep).into_bytes();
    out.extend_from_slice(&r.body);
    tls.write_all(&out)?;
    tls.flush()
}

/// Streams a valid PodList of exactly `bytes` bytes (or the smallest valid one if less),
/// repeating one real-shaped pod and padding with JSON whitespace.
fn write_huge(tls: &mut Tls, bytes: u64, rv: u64) -> io::Result<()> {
    let prefix = format!("{{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":{{\"resourceVersion\":\"{rv}\"}},\"items\":[");
    let suffix = "]}";
    let ip = IpAddr::V4(Ipv4Addr::new(198, 18, 255, 1));
    let item = agent_pod(
        "huge",
        "kube-system",
        "huge-node",
        &[ip],
        &[ip],
        "Running",
        true,
    )
    .to_string();
    let total = bytes.max((prefix.len() + suffix.len()) as u64);
    tls.write_all(
        response_head(&Response::json(200, &serde_json::Value::Null), total, true).as_bytes(),
    )?;
    let mut written = prefix.len() as u64;
    let mut chunk = prefix.into_bytes();
    let mut first = true;
    let room = |written: u64, extra: usize| written + extra as u64 + suffix.len() as u64 <= total;
    while room(written, item.len() + 1) {
        if !first {
            chunk.push(b',');
            written += 1;
        }
        first = false;
        chunk.extend_from_slice(item.as_bytes());
        written += item.len() as u64;
        if chunk.len() >= 64 * 1024 {
            tls.write_all(&chunk)?;
            chunk.clear();
        }
    }
    let pad = total - written - suffix.len() as u64;
    tls.write_all(&chunk)?;
    let spaces = [b' '; 8192];
    let mut left = pad;
    while left > 0 {
        let n = left.min(spaces.len() as u64) as usize;
        tls.write_all(&spaces[..n])?;
        left -= n as u64;
    }
    tls.write_all(suffix.as_bytes())?;
    tls.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let r = parse_head("GET /api/v1/pods?limit=1 HTTP/1.1\r\nHost: x\r\nConnection: close")
            .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.header("host"), Some("x"));
        assert!(!r.keep_alive());
        let r = parse_head("GET / HTTP/1.0").unwrap();
        assert!(!r.keep_alive());
        assert!(parse_head("GET /").is_none());
        assert!(parse_head("").is_none());
        assert!(parse_head("GET / SPDY/3").is_none());
    }
}
