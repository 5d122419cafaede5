//! The HTTP endpoints, served by tiny_http from the last [`RoundReport`] and the counters:
//! `/prometheus.report` and `/metrics` (Prometheus text), `/status.json`, `/livez`, `/readyz`
//! and a small landing page at `/`.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tiny_http::{Header, Method, Request, Response};

use crate::metrics::{self, AgentInfo, Totals};
use crate::report::RoundReport;

/// What the endpoints show; the round loop writes it, the server threads read it.
#[derive(Default)]
pub struct State {
    pub last: Option<RoundReport>,
    pub totals: Totals,
}

/// State shared between the round loop and the server.
pub struct Shared {
    state: Mutex<State>,
    pub info: AgentInfo,
}

impl Shared {
    pub fn new(info: AgentInfo) -> Shared {
        Shared {
            state: Mutex::new(State::default()),
            info,
        }
    }

    /// Locks the state; a panic elsewhere while holding the lock must not stop the endpoints.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running server; [`HttpServer::stop`] ends its threads.
pub struct HttpServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// Request-handling threads: enough that one slow scrape does not block a probe.
const WORKERS: usize = 2;

impl HttpServer {
    /// Binds `listen` (an IPv6 wildcard also accepts IPv4; when IPv6 is unavailable the IPv4
    /// wildcard is used instead) and starts the worker threads.
    pub fn start(listen: SocketAddr, shared: Arc<Shared>) -> io::Result<HttpServer> {
        let listener = bind(listen).or_else(|e| {
            if listen.ip() == std::net::Ipv6Addr::UNSPECIFIED {
                log::warn!("cannot listen on {listen} ({e}); trying IPv4 only");
                bind(SocketAddr::from(([0, 0, 0, 0], listen.port())))
            } else {
                Err(e)
            }
        })?;
        let addr = listener.local_addr()?;
        let server = Arc::new(
            tiny_http::Server::from_listener(listener, None)
                .map_err(|e| io::Error::other(e.to_string()))?,
        );
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..WORKERS)
            .map(|i| {
                let (server, shared, stop) = (server.clone(), shared.clone(), stop.clone());
                std::thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            match server.recv_timeout(Duration::from_millis(200)) {
                                Ok(Some(req)) => handle(req, &shared),
                                Ok(None) => {}
                                Err(e) => log::warn!("http: {e}"),
                            }
                        }
                    })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(HttpServer {
            addr,
            stop,
            threads,
        })
    }

    /// Stops accepting requests and waits for the workers (at most ~200 ms).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        // Serve IPv4 too, whatever net.ipv6.bindv6only says.
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

/// What a request gets: status, content type and body.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    fn new(status: u16, content_type: &'static str, body: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type,
            body: body.into(),
        }
    }
}

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";

/// Routes a request (pure apart from reading the state), so tests reach it without sockets.
pub fn route(method: &Method, url: &str, shared: &Shared) -> Reply {
    if !matches!(method, Method::Get | Method::Head) {
        return Reply::new(405, TEXT, "only GET and HEAD\n");
    }
    let path = url.split('?').next().unwrap_or("");
    match path {
        "/prometheus.report" | "/metrics" => {
            let state = shared.lock();
            let body = metrics::render(state.last.as_ref(), &state.totals, &shared.info);
            Reply::new(200, metrics::CONTENT_TYPE, body)
        }
        "/status.json" => match &shared.lock().last {
            Some(r) => match serde_json::to_string_pretty(r) {
                Ok(body) => Reply::new(200, JSON, body + "\n"),
                Err(e) => Reply::new(500, TEXT, format!("cannot encode status: {e}\n")),
            },
            None => Reply::new(503, JSON, "{\"error\":\"no round completed yet\"}\n"),
        },
        "/livez" => Reply::new(200, TEXT, "ok\n"),
        "/readyz" => {
            if shared.lock().last.is_some() {
                Reply::new(200, TEXT, "ok\n")
            } else {
                Reply::new(503, TEXT, "no round completed yet\n")
            }
        }
        "/" => Reply::new(200, HTML, landing(&shared.info)),
        _ => Reply::new(404, TEXT, "not found; see /\n"),
    }
}

fn landing(info: &AgentInfo) -> String {
    format!(
        "<!doctype html>\n<html><head><title>k8s-network-test-daemonset</title></head><body>\n\
         <h1>k8s-network-test-daemonset {}</h1>\n<p>Node {}, pod {}.</p>\n<ul>\n\
         <li><a href=\"/prometheus.report\">/prometheus.report</a> (also /metrics): Prometheus metrics</li>\n\
         <li><a href=\"/status.json\">/status.json</a>: the last round as JSON</li>\n\
         <li><a href=\"/livez\">/livez</a>, <a href=\"/readyz\">/readyz</a>: health</li>\n\
         </ul></body></html>\n",
        html_escape(&info.version),
        html_escape(&info.node),
        html_escape(&info.pod)
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn handle(req: Request, shared: &Shared) {
    let reply = route(req.method(), req.url(), shared);
    let head = *req.method() == Method::Head;
    let header =
        Header::from_bytes("Content-Type", reply.content_type).expect("static header is valid");
    let body = if head { String::new() } else { reply.body };
    let response = Response::from_string(body)
        .with_status_code(reply.status)
        .with_header(header);
    if let Err(e) = req.respond(response) {
        log::debug!("http: client went away: {e}");
    }
}
