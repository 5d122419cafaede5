//! A synchronous Kubernetes API client on ureq: bearer token re-read every minute and on a
//! 401, TLS verified against the cluster CA only, `resourceVersion=0` lists with
//! `limit`/`continue` paging and a restart on 410, bounded bodies, one-line errors.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use ureq::tls::{PemItem, RootCerts, TlsConfig};
use ureq::Proxy;

use super::error::Error;
use super::objects::{EndpointSlice, List, Node, Page, Pod, Service, Status};
use super::{snapshot, Settings, Snapshot};

/// The Accept header of ordinary requests.
pub const JSON: &str = "application/json";

/// How long a request may take.
#[derive(Debug, Clone, Copy)]
enum Bound {
    /// Everything, body included, by `until` (and within the request timeout).
    Until(Instant),
    /// A watch: the response head within the request timeout, then each read of the
    /// endless body within `silence` (no frame, not even a BOOKMARK, for that long means
    /// the stream is dead).
    Stream { silence: Duration },
}

/// Responses larger than this are refused (a 5,000-node NodeList is about 60 MiB... of which
/// the agent reads a sliver; anything bigger is not an API answer we want in memory).
pub const MAX_BODY: u64 = 64 << 20;
/// Error bodies are read for their message only.
const MAX_ERROR_BODY: u64 = 1 << 20;
/// Projected service-account tokens rotate; client-go re-reads the file every minute.
const TOKEN_MAX_AGE: Duration = Duration::from_secs(60);
/// Page size when the server pages (it does not for `resourceVersion=0`, served from cache).
const PAGE_LIMIT: &str = "500";
/// More pages than this (500 items each) is not a real list: 1,000,000 objects.
const MAX_PAGES: usize = 2_000;
/// How often a list that expires while paging (410) is started over before giving up.
const LIST_RESTARTS: u32 = 3;
/// Timers fire a little early or late: a timeout this close to the deadline is the deadline's.
const DEADLINE_SLACK: Duration = Duration::from_millis(50);
/// The longest Retry-After the client waits for within a round before retrying once.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

/// The API client. `Send + Sync`: the token cache is behind a mutex.
pub struct Client {
    settings: Settings,
    agent: ureq::Agent,
    token: Mutex<Option<CachedToken>>,
}

/// The token as last read, with what identifies that version of the file.
struct CachedToken {
    value: String,
    read_at: Instant,
    stamp: Option<(std::time::SystemTime, u64)>,
}

/// Modification time and size: a rotated token shows up as a change in either.
fn file_stamp(path: &Path) -> Option<(std::time::SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl Client {
    /// Reads the CA and the token and prepares the HTTPS agent; fails with the one line to
    /// fix when either file is unusable.
    pub fn new(settings: Settings) -> Result<Client, Error> {
        let mut tls = TlsConfig::builder();
        if settings.api_server.starts_with("https://") {
            tls = tls.root_certs(read_ca(&settings.ca_file)?);
        }
        // Only an explicit --api-proxy: ureq would otherwise honour HTTPS_PROXY/ALL_PROXY
        // from the environment and send the bearer token through whatever they name.
        let proxy = match &settings.proxy {
            None => None,
            Some(url) => Some(Proxy::new(url).map_err(|e| {
                Error::Other(format!(
                    "--api-proxy: {url:?} is not a usable proxy URL: {e}"
                ))
            })?),
        };
        let config = ureq::Agent::config_builder()
            .proxy(proxy)
            .http_status_as_error(false)
            .timeout_global(Some(settings.timeout))
            .timeout_connect(Some(settings.timeout.min(Duration::from_secs(5))))
            .max_redirects(0)
            .user_agent(format!(
                "k8s-network-test-daemonset/{}",
                env!("CARGO_PKG_VERSION")
            ))
            .tls_config(tls.build())
            .build();
        let client = Client {
            agent: ureq::Agent::with_parts(
                config,
                ureq::unversioned::transport::DefaultConnector::new(),
                LiteralFirst::default(),
            ),
            settings,
            token: Mutex::new(None),
        };
        client.token(false)?;
        Ok(client)
    }

    /// The settings this client was made with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The bearer token, re-read from its file when the file changed (a `stat` per request),
    /// when older than a minute (client-go's period), or when `force`d after a 401.
    fn token(&self, force: bool) -> Result<String, Error> {
        let path = &self.settings.token_file;
        let stamp = file_stamp(path);
        let mut cache = self.token.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.as_ref() {
            if !force && c.read_at.elapsed() < TOKEN_MAX_AGE && c.stamp == stamp {
                return Ok(c.value.clone());
            }
        }
        let token_error = |message: String| Error::Token {
            path: path.clone(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| token_error(e.to_string()))?;
        let token = text.trim().to_string();
        if token.is_empty() {
            return Err(token_error("the file is empty".into()));
        }
        *cache = Some(CachedToken {
            value: token.clone(),
            read_at: Instant::now(),
            stamp,
        });
        Ok(token)
    }

    /// GETs `path` and returns the body of a 200, unread. A 401 re-reads the token and
    /// retries once; a 429 with a short Retry-After waits and retries once (not for a
    /// watch, which backs off instead). Error bodies are read (bounded) for their message.
    fn get_ok_as(
        &self,
        path: &str,
        query: &[(&str, &str)],
        accept: &str,
        bound: Bound,
    ) -> Result<ureq::Body, Error> {
        let url = format!("{}{}", self.settings.api_server, path);
        let (mut reauth, mut throttled) = (false, false);
        // A stream's "deadline" for the error mapping: the request timeout from now.
        let until = match bound {
            Bound::Until(until) => until,
            Bound::Stream { .. } => Instant::now() + self.settings.timeout,
        };
        loop {
            let token = self.token(reauth)?;
            let req = match bound {
                Bound::Until(until) => {
                    // Each request gets what is left of the discovery's deadline, at most
                    // the per-request timeout; the body is read under the same bound.
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(self.deadline_error());
                    }
                    self.agent
                        .get(&url)
                        .config()
                        .timeout_global(Some(left.min(self.settings.timeout)))
                        .build()
                }
                Bound::Stream { silence } => self
                    .agent
                    .get(&url)
                    .config()
                    .timeout_global(None)
                    .timeout_recv_response(Some(self.settings.timeout))
                    .timeout_recv_body(None)
                    .timeout_per_read(Some(silence))
                    .build(),
            };
            let mut req = req
                .header("Authorization", format!("Bearer {token}"))
                .header("Accept", accept);
            for (k, v) in query {
                req = req.query(*k, *v);
            }
            let resp = req.call().map_err(|e| match e {
                // No response head at all: the connection, not the body, is the problem.
                ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                    Error::Connect {
                        server: self.settings.api_server.clone(),
                        message: "the server closed the connection without answering".into(),
                    }
                }
                e => self.past_deadline(self.transport_error(path, e), until),
            })?;
            let status = resp.status().as_u16();
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
            let json = header("content-type").is_some_and(|c| c.contains("json"));
            if status == 200 {
                // Refuse a body announced as too large before reading any of it.
                let length = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
                if let Some(limit) = length.filter(|n| *n > MAX_BODY).map(|_| MAX_BODY) {
                    return Err(Error::TooLarge {
                        path: path.to_string(),
                        limit,
                    });
                }
                return Ok(resp.into_body());
            }
            let body = resp
                .into_body()
                .with_config()
                .limit(MAX_ERROR_BODY)
                .read_to_vec()
                .map_err(|e| self.transport_error(path, e))?;
            let stream = matches!(bound, Bound::Stream { .. });
            match status {
                401 if !reauth => {
                    log::info!("api: 401 for {path}; re-reading the token and retrying once");
                    reauth = true;
                }
                // A watch waits out a 429 in its back-off, not here.
                429 if !stream
                    && !throttled
                    && retry_after.is_some_and(|s| {
                        let wait = Duration::from_secs(s);
                        wait <= MAX_RETRY_WAIT && Instant::now() + wait < until
                    }) =>
                {
                    throttled = true;
                    std::thread::sleep(Duration::from_secs(retry_after.unwrap_or(1)));
                }
                _ => return Err(self.status_error(path, status, json, &body, retry_after)),
            }
        }
    }

    /// Opens a watch stream: the body of a 200, to be read line by line; each read may wait
    /// at most `silence`.
    pub(crate) fn open_stream(
        &self,
        path: &str,
        query: &[(&str, &str)],
        accept: &str,
        silence: Duration,
    ) -> Result<ureq::Body, Error> {
        self.get_ok_as(path, query, accept, Bound::Stream { silence })
    }

    /// Whether the API server answers at all, by `until`: one small `GET /livez` (readable
    /// by every client through `system:public-info-viewer`). Any HTTP answer proves the
    /// path works; only a transport failure (connect, TLS, timeout) is an error.
    pub fn reachable(&self, until: Instant) -> Result<(), Error> {
        match self.get_ok_as("/livez", &[], "text/plain", Bound::Until(until)) {
            Ok(mut body) => {
                // Read the two bytes so the connection goes back to the pool.
                let _ = body.with_config().limit(4096).read_to_vec();
                Ok(())
            }
            Err(
                e @ (Error::Timeout { .. }
                | Error::Deadline { .. }
                | Error::Tls { .. }
                | Error::Connect { .. }
                | Error::Token { .. }
                | Error::Other(_)),
            ) => Err(e),
            Err(e) => {
                log::debug!("api: /livez answered {e}; the server is reachable");
                Ok(())
            }
        }
    }

    /// GETs `path` and parses the JSON body into `T`.
    fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        until: Instant,
    ) -> Result<T, Error> {
        self.get_json_as(path, query, JSON, until)
    }

    /// [`Client::get_json`] with an Accept header.
    pub(crate) fn get_json_as<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        accept: &str,
        until: Instant,
    ) -> Result<T, Error> {
        let mut body = self.get_ok_as(path, query, accept, Bound::Until(until))?;
        // Parse straight from the stream: a 60 MB NodeList never sits in memory as text, only
        // the few fields the typed structs keep.
        let reader = std::io::BufReader::new(body.with_config().limit(MAX_BODY).reader());
        serde_json::from_reader(reader).map_err(|e| {
            if !e.is_io() {
                return Error::Decode {
                    path: path.to_string(),
                    message: format!("not the JSON object expected: {e}"),
                };
            }
            // The body reader failed: ureq's error travels inside the io::Error.
            let io = std::io::Error::from(e);
            let inner = io
                .get_ref()
                .and_then(|i| i.downcast_ref::<ureq::Error>())
                .map(|u| match u {
                    ureq::Error::BodyExceedsLimit(limit) => ureq::Error::BodyExceedsLimit(*limit),
                    ureq::Error::Timeout(t) => ureq::Error::Timeout(*t),
                    _ => ureq::Error::Io(std::io::Error::new(io.kind(), u.to_string())),
                });
            self.past_deadline(
                self.transport_error(path, inner.unwrap_or(ureq::Error::Io(io))),
                until,
            )
        })
    }

    /// A timeout that came from the discovery's deadline (what was left of it was shorter
    /// than the request timeout) is reported as the deadline, which says what to change.
    fn past_deadline(&self, e: Error, until: Instant) -> Error {
        match e {
            Error::Timeout { .. } if Instant::now() + DEADLINE_SLACK >= until => {
                self.deadline_error()
            }
            e => e,
        }
    }

    /// The error for a discovery that ran out of time.
    fn deadline_error(&self) -> Error {
        Error::Deadline {
            server: self.settings.api_server.clone(),
            limit: self.settings.discovery_timeout,
        }
    }

    /// Lists `path` completely: `resourceVersion=0` for the first page, `continue` (without
    /// a resourceVersion, which the API rejects together with it) for the next ones, and
    /// starting over when a continue token expires (410).
    pub fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<Vec<T>, Error> {
        self.list_until(path, params, self.deadline())
    }

    /// When a discovery starting now must be done.
    fn deadline(&self) -> Instant {
        Instant::now() + self.settings.discovery_timeout
    }

    /// [`Client::list`] that gives up at `until`, pages and restarts included.
    pub(crate) fn list_within<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, &str)],
        until: Instant,
    ) -> Result<Vec<T>, Error> {
        self.list_until(path, params, until)
    }

    fn list_until<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, &str)],
        until: Instant,
    ) -> Result<Vec<T>, Error> {
        let pages: Vec<List<T>> = self.list_pages(path, params, JSON, until)?;
        Ok(pages.into_iter().flat_map(|p| p.items).collect())
    }

    /// Every page of a list in the representation `accept` asks for: `resourceVersion=0`
    /// for the first page, `continue` (without a resourceVersion, which the API rejects
    /// together with it) for the next ones, and starting over when a continue token
    /// expires (410).
    pub(crate) fn list_pages<P: DeserializeOwned + Page>(
        &self,
        path: &str,
        params: &[(&str, &str)],
        accept: &str,
        until: Instant,
    ) -> Result<Vec<P>, Error> {
        let mut restarts = 0;
        'list: loop {
            let mut pages: Vec<P> = Vec::new();
            let mut next: Option<String> = None;
            let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
            loop {
                let mut query: Vec<(&str, &str)> = params.to_vec();
                query.push(("limit", PAGE_LIMIT));
                match &next {
                    None => query.push(("resourceVersion", "0")),
                    Some(token) => query.push(("continue", token)),
                }
                let page: P = match self.get_json_as(path, &query, accept, until) {
                    Ok(page) => page,
                    Err(e @ Error::Gone { .. }) if next.is_some() => {
                        restarts += 1;
                        if restarts > LIST_RESTARTS {
                            return Err(e);
                        }
                        log::info!("api: list {path} expired while paging (410); starting over");
                        continue 'list;
                    }
                    Err(e) => return Err(e),
                };
                let token = page.list_meta().continue_token.clone();
                pages.push(page);
                if token.is_empty() {
                    return Ok(pages);
                }
                // A server that cycles tokens or never ends would keep the round (and
                // SIGTERM) waiting forever: a token seen before, or too many pages, is an error.
                if !seen.insert(token.clone()) || seen.len() > MAX_PAGES {
                    return Err(Error::Decode {
                        path: path.to_string(),
                        message: format!(
                            "the server's continue tokens repeat or exceed {MAX_PAGES} pages"
                        ),
                    });
                }
                next = Some(token);
            }
        }
    }

    /// One named object, or `None` for a 404.
    pub(crate) fn get_named<T: DeserializeOwned>(
        &self,
        path: &str,
        until: Instant,
    ) -> Result<Option<T>, Error> {
        match self.get_json(path, &[], until) {
            Ok(o) => Ok(Some(o)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The agent pods (label selector) in the agent namespace.
    pub fn list_agent_pods(&self) -> Result<Vec<Pod>, Error> {
        self.agent_pods_until(self.deadline())
    }

    /// Every node.
    pub fn list_nodes(&self) -> Result<Vec<Node>, Error> {
        self.nodes_until(self.deadline())
    }

    /// The cluster DNS Service, or `None` when it does not exist.
    pub fn get_dns_service(&self) -> Result<Option<Service>, Error> {
        self.dns_service_until(self.deadline())
    }

    /// The EndpointSlices of the cluster DNS Service (IPv4 and IPv6 slices).
    pub fn list_dns_slices(&self) -> Result<Vec<EndpointSlice>, Error> {
        self.dns_slices_until(self.deadline())
    }

    fn agent_pods_until(&self, until: Instant) -> Result<Vec<Pod>, Error> {
        let s = &self.settings;
        self.list_until(
            &format!("/api/v1/namespaces/{}/pods", segment(&s.namespace)),
            &[("labelSelector", &s.selector)],
            until,
        )
    }

    fn nodes_until(&self, until: Instant) -> Result<Vec<Node>, Error> {
        self.list_until("/api/v1/nodes", &[], until)
    }

    fn dns_service_until(&self, until: Instant) -> Result<Option<Service>, Error> {
        let s = &self.settings;
        self.get_named(&service_path(&s.dns_namespace, &s.dns_service), until)
    }

    fn dns_slices_until(&self, until: Instant) -> Result<Vec<EndpointSlice>, Error> {
        let s = &self.settings;
        let selector = format!("kubernetes.io/service-name={}", s.dns_service);
        self.list_until(
            &format!(
                "/apis/discovery.k8s.io/v1/namespaces/{}/endpointslices",
                segment(&s.dns_namespace)
            ),
            &[("labelSelector", &selector)],
            until,
        )
    }

    /// One discovery: the four requests, converted into a [`Snapshot`], all within
    /// `discovery_timeout` (a slow or throttling server cannot hold a round longer).
    pub fn snapshot(&self) -> Result<Snapshot, Error> {
        let until = self.deadline();
        let pods = self.agent_pods_until(until)?;
        let nodes = self.nodes_until(until)?;
        let service = self.dns_service_until(until)?;
        if service.is_none() {
            log::warn!(
                "service {}/{} not found: no DNS service IP to check",
                self.settings.dns_namespace,
                self.settings.dns_service
            );
        }
        let slices = self.dns_slices_until(until)?;
        Ok(snapshot::snapshot(&pods, &nodes, service.as_ref(), &slices))
    }

    fn transport_error(&self, path: &str, e: ureq::Error) -> Error {
        let server = self.settings.api_server.clone();
        match e {
            ureq::Error::Timeout(_) => Error::Timeout { server },
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                Error::Timeout { server }
            }
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                Error::Decode {
                    path: path.to_string(),
                    message: "the body was cut short".into(),
                }
            }
            ureq::Error::BodyExceedsLimit(limit) => Error::TooLarge {
                path: path.to_string(),
                limit,
            },
            ureq::Error::Tls(m) => Error::Tls {
                server,
                message: m.to_string(),
            },
            ureq::Error::Rustls(r) => Error::Tls {
                server,
                message: r.to_string(),
            },
            // rustls reports handshake and certificate failures as InvalidData I/O errors.
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => Error::Tls {
                server,
                message: io.to_string(),
            },
            ureq::Error::HostNotFound => Error::Connect {
                server,
                message: "host not found".into(),
            },
            ureq::Error::Io(io) => Error::Connect {
                server,
                message: io.to_string(),
            },
            ureq::Error::ConnectionFailed => Error::Connect {
                server,
                message: "connection failed".into(),
            },
            ureq::Error::Protocol(p) => Error::Decode {
                path: path.to_string(),
                message: format!("not valid HTTP: {p}"),
            },
            other => Error::Other(format!("request to {server}{path} failed: {other}")),
        }
    }

    fn status_error(
        &self,
        path: &str,
        code: u16,
        json: bool,
        body: &[u8],
        retry_after: Option<u64>,
    ) -> Error {
        let message = status_message(code, json, body);
        match code {
            401 => Error::Unauthorized {
                token_file: self.settings.token_file.clone(),
                message,
            },
            403 => Error::Forbidden { message },
            404 => Error::NotFound {
                path: path.to_string(),
                message,
            },
            410 => Error::Gone { message },
            429 => Error::Throttled {
                retry_after,
                message,
            },
            500..=599 => Error::Server { code, message },
            _ => Error::Status { code, message },
        }
    }
}

/// Name resolution that answers an IP-literal host (the usual in-cluster
/// `KUBERNETES_SERVICE_HOST`) itself. ureq's default resolver spawns a thread per request to
/// time a lookup out, even for a literal; with watches, probes and lists that is a thread for
/// every request, and where threads are scarce (a pids limit) ureq panics when it cannot start
/// one. Names still go to the default resolver.
#[derive(Debug, Default)]
struct LiteralFirst(ureq::unversioned::resolver::DefaultResolver);

impl ureq::unversioned::resolver::Resolver for LiteralFirst {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        if let Some(addr) = literal_address(uri) {
            let mut found = self.empty();
            found.push(addr);
            return Ok(found);
        }
        self.0.resolve(uri, config, timeout)
    }
}

/// The socket address of a URI whose host is an IP literal (`198.18.0.1`, `[2001:db8::1]`).
fn literal_address(uri: &ureq::http::Uri) -> Option<std::net::SocketAddr> {
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = host.parse().ok()?;
    let port = uri.port_u16().or(match uri.scheme_str()? {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    })?;
    Some(std::net::SocketAddr::new(ip, port))
}

/// The message of an error response: the `Status` message when the body is JSON, else the
/// first line of the text (proxies and API Priority and Fairness answer in plain text).
/// Always one line of at most [`MAX_MESSAGE_CHARS`] characters (and `...`): it goes into a
/// log line and an error's one-line `Display`, whatever the server sent.
pub fn status_message(code: u16, json: bool, body: &[u8]) -> String {
    if json || body.first() == Some(&b'{') {
        if let Ok(status) = serde_json::from_slice::<Status>(body) {
            if let Some(m) = one_line(&status.message).or_else(|| one_line(&status.reason)) {
                return m;
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    // A proxy's HTML error page says more in its title than in its first line (`<html>`).
    html_title(&text)
        .and_then(one_line)
        .or_else(|| text.lines().find_map(one_line))
        .unwrap_or_else(|| format!("HTTP {code} with an empty body"))
}

/// Longest server message kept in an error.
pub const MAX_MESSAGE_CHARS: usize = 200;

/// `text` as one trimmed line (control characters such as CR, LF and escape sequences become
/// spaces), cut at [`MAX_MESSAGE_CHARS`]; `None` when nothing is left.
fn one_line(text: &str) -> Option<String> {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.trim();
    if flat.is_empty() {
        return None;
    }
    let mut short: String = flat.chars().take(MAX_MESSAGE_CHARS).collect();
    if short.len() < flat.len() {
        short.push_str("...");
    }
    Some(short)
}

/// The `<title>` of an HTML page, when it has a non-empty one.
fn html_title(text: &str) -> Option<&str> {
    // ASCII lowercasing keeps byte offsets, so they index `text` too.
    let lower = text.to_ascii_lowercase();
    let start = lower.find("<title>")? + "<title>".len();
    let end = start + lower[start..].find("</title>")?;
    let title = text.get(start..end)?.trim();
    (!title.is_empty()).then_some(title)
}

/// Reads the CA bundle: every certificate in it, and nothing else, is trusted.
fn read_ca(path: &Path) -> Result<RootCerts, Error> {
    let ca_error = |message: String| Error::Ca {
        path: path.to_path_buf(),
        message,
    };
    let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(ca_error("no PEM certificate in it".into()));
    }
    Ok(RootCerts::new_with_certs(&certs))
}

/// The path of a Service.
pub(crate) fn service_path(namespace: &str, name: &str) -> String {
    format!(
        "/api/v1/namespaces/{}/services/{}",
        segment(namespace),
        segment(name)
    )
}

/// The path of the EndpointSlices of a namespace.
pub(crate) fn slices_path(namespace: &str) -> String {
    format!(
        "/apis/discovery.k8s.io/v1/namespaces/{}/endpointslices",
        segment(namespace)
    )
}

/// The path of the pods of a namespace.
pub(crate) fn pods_path(namespace: &str) -> String {
    format!("/api/v1/namespaces/{}/pods", segment(namespace))
}

/// Percent-encodes a path segment (names are DNS labels, but a flag can hold anything).
pub(crate) fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_message_prefers_json_status_and_copes_with_text() {
        let forbidden = include_bytes!(
            "../../tests/fixtures/k8s-api/k8s-apiserver.errors_test.Status-403-Forbidden.cluster-scope-resource.json"
        );
        let m = status_message(403, true, forbidden);
        assert!(m.contains("forbidden"), "{m}");
        assert_eq!(
            status_message(429, false, b"Too many requests, please try again later.\n"),
            "Too many requests, please try again later."
        );
        assert_eq!(
            status_message(502, false, b""),
            "HTTP 502 with an empty body"
        );
        let proxy_404 = include_bytes!(
            "../../tests/fixtures/k8s-api/kubeclient.service_illegal_json_404.non-json-404-body.json"
        );
        let m = status_message(404, true, proxy_404);
        assert!(!m.is_empty() && m.len() <= 203, "{m}");
        let nginx =
            b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body></body></html>";
        assert_eq!(status_message(502, false, nginx), "502 Bad Gateway");
        assert_eq!(
            status_message(502, false, b"<html><title> </title>"),
            "<html><title> </title>"
        );
        let long = "x".repeat(1000);
        assert!(status_message(500, false, long.as_bytes()).ends_with("..."));
    }

    /// Found by fuzzing (fuzz/regressions/status_body/): a Status message or an HTML title
    /// went into the log whole, however long, with its line breaks.
    #[test]
    fn status_message_is_one_bounded_line() {
        let long = format!(r#"{{"kind":"Status","message":"{}"}}"#, "m".repeat(100_000));
        let m = status_message(403, true, long.as_bytes());
        assert_eq!(m.chars().count(), MAX_MESSAGE_CHARS + 3);
        let multi = br#"{"message":"admission webhook denied:\nline two\r\u001b[31mred"}"#;
        let m = status_message(400, true, multi);
        assert_eq!(m, "admission webhook denied: line two  [31mred");
        let title = format!("<title>{}\n</title>", "t".repeat(5000));
        assert!(status_message(502, false, title.as_bytes()).ends_with("..."));
        assert_eq!(
            status_message(404, false, b"40\r: Page Not Found"),
            "40 : Page Not Found"
        );
        assert_eq!(
            status_message(500, true, br#"{"message":" ","reason":"InternalError"}"#),
            "InternalError"
        );
        assert_eq!(
            status_message(503, false, b"\x01\n\t\n"),
            "HTTP 503 with an empty body"
        );
    }

    #[test]
    fn literal_hosts_resolve_without_a_lookup() {
        let uri = |s: &str| s.parse::<ureq::http::Uri>().unwrap();
        assert_eq!(
            literal_address(&uri("https://10.96.0.1:443/api")),
            Some("10.96.0.1:443".parse().unwrap())
        );
        assert_eq!(
            literal_address(&uri("https://[fd00::1]/livez")),
            Some("[fd00::1]:443".parse().unwrap())
        );
        assert_eq!(
            literal_address(&uri("http://127.0.0.1:8001")),
            Some("127.0.0.1:8001".parse().unwrap())
        );
        assert_eq!(
            literal_address(&uri("https://kubernetes.default.svc/")),
            None
        );
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("kube-system"), "kube-system");
        assert_eq!(segment("a/b?c"), "a%2Fb%3Fc");
    }
}
