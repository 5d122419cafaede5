//! List once, then watch: one thread per resource keeps an in-memory view current.
//!
//! Each watcher lists (`resourceVersion=0`, from the API server's watch cache), then
//! watches from the list's resourceVersion with `allowWatchBookmarks=true` and a randomized
//! `timeoutSeconds`. Every event and BOOKMARK advances the resourceVersion it resumes from,
//! so a watch that ends or breaks resumes where it stopped and nothing is lost; a 410 (as
//! an HTTP status or an ERROR event) or any other ERROR event makes it list afresh. Failures
//! back off with jitter, capped; a round that finds the API reachable again cuts the wait
//! short ([`Feed::kicked`]). A line longer than [`MAX_LINE`] is an error, never an
//! out-of-memory.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::backoff::{Backoff, Rng};
use super::client::{pods_path, service_path, slices_path, Client, JSON};
use super::error::Error;
use super::lines::{LineError, Lines};
use super::objects::{EndpointSlice, List, NodesOrTable, Pod, Service, Status};
use super::snapshot::node_info;
use super::table::{name_of, node_from_row, NodeColumns};
use super::NodeInfo;

/// The longest watch line (one event) accepted. The largest real objects the agent watches
/// are EndpointSlices (up to 1,000 endpoints, about 250 KB) and, from a server that ignores
/// `as=Table`, full Nodes (10-60 KB).
pub const MAX_LINE: usize = 2 << 20;
/// The Accept header of the node watch: server-printed rows, else plain JSON.
pub const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

/// How the watches behave (the defaults are for production; tests shorten them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchOptions {
    /// Name of the agents' headless Service (in the agent namespace).
    pub agent_service: String,
    /// Label selector of the nodes to watch (`--expect-agent-on`); empty: every node.
    pub node_selector: String,
    /// `timeoutSeconds` of each watch is picked uniformly in this range. Three watches at
    /// 30-60 min make about 4 requests an hour, plus one Service GET per restart for two
    /// of them: about 7 discovery requests an hour in steady state.
    pub watch_timeout: (Duration, Duration),
    /// A watch that sends nothing (not even a BOOKMARK, which the API server sends about
    /// once a minute) for this long is dead and is resumed.
    pub silence: Duration,
    /// Back-off after failures: the first wait is at most `backoff.0`, doubling up to
    /// `backoff.1`.
    pub backoff: (Duration, Duration),
}

impl Default for WatchOptions {
    fn default() -> WatchOptions {
        WatchOptions {
            agent_service: "k8s-network-test-daemonset".to_string(),
            node_selector: String::new(),
            watch_timeout: (Duration::from_secs(30 * 60), Duration::from_secs(60 * 60)),
            silence: Duration::from_secs(150),
            backoff: (Duration::from_secs(1), Duration::from_secs(30)),
        }
    }
}

/// Where the agent pods come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AgentSource {
    /// The EndpointSlices of the agents' headless Service (about 200 bytes per agent).
    #[default]
    Slices,
    /// The agent pods themselves, by `--selector`, when that Service does not exist (about
    /// 8.5 KB per agent: the fallback, not the design).
    Pods,
}

/// The agents view.
#[derive(Debug, Clone, Default)]
pub struct AgentView {
    pub source: AgentSource,
    pub slices: BTreeMap<String, EndpointSlice>,
    pub pods: BTreeMap<String, Pod>,
}

/// The nodes view.
#[derive(Debug, Clone, Default)]
pub struct NodeView {
    pub nodes: BTreeMap<String, NodeInfo>,
    /// The server answered full Node objects (it ignored `as=Table`): every InternalIP is
    /// known, not only the first.
    pub full_objects: bool,
}

/// The cluster DNS view.
#[derive(Debug, Clone, Default)]
pub struct DnsView {
    pub service: Option<Service>,
    pub slices: BTreeMap<String, EndpointSlice>,
}

/// One watcher's view and how it is doing, shared with the rounds.
#[derive(Debug, Clone, Default)]
pub struct Feed<V> {
    pub view: V,
    /// Listed at least once.
    pub synced: bool,
    /// The stream is open (or a list just succeeded); false from a failure to the next
    /// success.
    pub healthy: bool,
    /// The last error while not healthy.
    pub error: Option<String>,
    /// The last time the server answered this watcher (list, stream start, any frame).
    pub last_contact: Option<Instant>,
    /// Attempts (lists and watch starts) finished, successful or not.
    pub attempts: u64,
    /// Set by a round that found the API reachable: retry now, not after the back-off.
    pub kicked: bool,
}

impl<V> Feed<V> {
    fn contact(&mut self) {
        self.healthy = true;
        self.error = None;
        self.last_contact = Some(Instant::now());
    }
}

/// Everything the watchers share with the rounds.
#[derive(Debug, Default)]
pub struct State {
    pub agents: Feed<AgentView>,
    pub nodes: Feed<NodeView>,
    pub dns: Feed<DnsView>,
    /// `Error::kind()` of every failed request since the last round took them (bounded).
    pub errors: Vec<&'static str>,
    /// Every InternalIP of the nodes (dual-stack clusters only; see `discovery.rs`).
    pub addresses: BTreeMap<String, Vec<std::net::IpAddr>>,
    /// Counts changes of any view (lists, events), so a round can wait for a quiet moment.
    pub changes: u64,
}

/// Errors kept between two rounds; more are dropped (they are counted per round anyway).
const MAX_PENDING_ERRORS: usize = 256;

impl State {
    /// Counts one failed request (for `networktest_api_errors_total`).
    pub fn error_kind(&mut self, kind: &'static str) {
        if self.errors.len() < MAX_PENDING_ERRORS {
            self.errors.push(kind);
        }
    }
}

/// The state, a condition variable for "something changed", and the stop flag.
#[derive(Debug, Default)]
pub struct Shared {
    pub state: Mutex<State>,
    pub changed: Condvar,
    pub stop: AtomicBool,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Waits for a change or `timeout`.
    pub fn wait<'a>(
        &self,
        guard: MutexGuard<'a, State>,
        timeout: Duration,
    ) -> MutexGuard<'a, State> {
        self.changed
            .wait_timeout(guard, timeout)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0)
    }
}

/// Where a watcher lists and watches, and in which representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: String,
    pub params: Vec<(String, String)>,
    pub accept: &'static str,
}

impl Target {
    fn query(&self) -> Vec<(&str, &str)> {
        self.params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// One kind of watched resource: how to find it, list it and apply its events.
pub trait Source: Send + 'static {
    type View: Send + Default + Clone;
    /// The name in logs and `api_error` (`agents`, `nodes`, `dns`).
    fn name(&self) -> &'static str;
    fn feed<'a>(&self, state: &'a mut State) -> &'a mut Feed<Self::View>;
    /// Whatever a (re)start needs first (a Service GET), and where to list and watch.
    fn prepare(
        &mut self,
        client: &Client,
        until: Instant,
        view: &mut Self::View,
    ) -> Result<Target, Error>;
    /// A fresh view (keeping what `prepare` put there) and the list's resourceVersion.
    fn list(
        &mut self,
        client: &Client,
        target: &Target,
        until: Instant,
        previous: &Self::View,
    ) -> Result<(Self::View, String), Error>;
    /// Applies one ADDED, MODIFIED or DELETED object; returns its resourceVersion.
    fn apply(
        &mut self,
        view: &mut Self::View,
        deleted: bool,
        object: Value,
    ) -> Result<String, String>;
}

/// The resourceVersion in an event object's (or list's) metadata.
fn resource_version(object: &Value) -> String {
    object
        .get("metadata")
        .and_then(|m| m.get("resourceVersion"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn decode<T: DeserializeOwned>(object: Value) -> Result<T, String> {
    serde_json::from_value(object).map_err(|e| format!("not the object expected: {e}"))
}

/// Lists `target` as `List<T>` pages: the items and the resourceVersion.
fn list_items<T: DeserializeOwned>(
    client: &Client,
    target: &Target,
    until: Instant,
) -> Result<(Vec<T>, String), Error> {
    let pages: Vec<List<T>> =
        client.list_pages(&target.path, &target.query(), target.accept, until)?;
    let rv = pages
        .last()
        .map(|p| p.metadata.resource_version.clone())
        .unwrap_or_default();
    Ok((pages.into_iter().flat_map(|p| p.items).collect(), rv))
}

/// The agent pods: the headless Service's EndpointSlices, or the pods themselves when the
/// Service does not exist.
pub struct Agents {
    pub namespace: String,
    pub service: String,
    pub selector: String,
    warned: Option<AgentSource>,
}

impl Agents {
    pub fn new(namespace: &str, service: &str, selector: &str) -> Agents {
        Agents {
            namespace: namespace.to_string(),
            service: service.to_string(),
            selector: selector.to_string(),
            warned: None,
        }
    }
}

impl Source for Agents {
    type View = AgentView;

    fn name(&self) -> &'static str {
        "agents"
    }

    fn feed<'a>(&self, state: &'a mut State) -> &'a mut Feed<AgentView> {
        &mut state.agents
    }

    fn prepare(
        &mut self,
        client: &Client,
        until: Instant,
        view: &mut AgentView,
    ) -> Result<Target, Error> {
        let path = service_path(&self.namespace, &self.service);
        let found: Option<Value> = match client.get_named(&path, until) {
            Ok(found) => found,
            // An older manifest's RBAC (get on kube-dns only): the pods are still readable.
            Err(Error::Forbidden { message }) => {
                if self.warned != Some(AgentSource::Pods) {
                    log::warn!(
                        "cannot read service {}/{} ({message}): grant get on it as k8s.yml does",
                        self.namespace,
                        self.service
                    );
                }
                None
            }
            Err(e) => return Err(e),
        };
        let source = if found.is_some() {
            AgentSource::Slices
        } else {
            AgentSource::Pods
        };
        if self.warned != Some(source) {
            match source {
                AgentSource::Pods => log::warn!(
                    "service {}/{} not found: watching the agent pods themselves ({}), about 40 times the API traffic; apply the Service in k8s.yml",
                    self.namespace, self.service, self.selector
                ),
                AgentSource::Slices if self.warned.is_some() => log::info!(
                    "service {}/{} found: watching its EndpointSlices",
                    self.namespace, self.service
                ),
                AgentSource::Slices => {}
            }
            self.warned = Some(source);
        }
        view.source = source;
        Ok(match source {
            AgentSource::Slices => Target {
                path: slices_path(&self.namespace),
                params: vec![(
                    "labelSelector".into(),
                    format!("kubernetes.io/service-name={}", self.service),
                )],
                accept: JSON,
            },
            AgentSource::Pods => Target {
                path: pods_path(&self.namespace),
                params: vec![("labelSelector".into(), self.selector.clone())],
                accept: JSON,
            },
        })
    }

    fn list(
        &mut self,
        client: &Client,
        target: &Target,
        until: Instant,
        previous: &AgentView,
    ) -> Result<(AgentView, String), Error> {
        let mut view = AgentView {
            source: previous.source,
            ..AgentView::default()
        };
        let rv = match previous.source {
            AgentSource::Slices => {
                let (items, rv) = list_items::<EndpointSlice>(client, target, until)?;
                view.slices = items
                    .into_iter()
                    .map(|s| (s.metadata.name.clone(), s))
                    .collect();
                rv
            }
            AgentSource::Pods => {
                let (items, rv) = list_items::<Pod>(client, target, until)?;
                view.pods = items
                    .into_iter()
                    .map(|p| (p.metadata.name.clone(), p))
                    .collect();
                rv
            }
        };
        Ok((view, rv))
    }

    fn apply(
        &mut self,
        view: &mut AgentView,
        deleted: bool,
        object: Value,
    ) -> Result<String, String> {
        let rv = resource_version(&object);
        match view.source {
            AgentSource::Slices => {
                let slice: EndpointSlice = decode(object)?;
                if deleted {
                    view.slices.remove(&slice.metadata.name);
                } else {
                    view.slices.insert(slice.metadata.name.clone(), slice);
                }
            }
            AgentSource::Pods => {
                let pod: Pod = decode(object)?;
                if deleted {
                    view.pods.remove(&pod.metadata.name);
                } else {
                    view.pods.insert(pod.metadata.name.clone(), pod);
                }
            }
        }
        Ok(rv)
    }
}

/// Every node, as server-printed Table rows (or full Nodes from a server that ignores
/// `as=Table`).
#[derive(Default)]
pub struct Nodes {
    columns: Option<NodeColumns>,
    /// `labelSelector` of the list and watch; empty: every node.
    selector: String,
}

impl Nodes {
    /// The nodes `selector` selects (every node when it is empty).
    pub fn new(selector: &str) -> Nodes {
        Nodes {
            columns: None,
            selector: selector.to_string(),
        }
    }

    fn learn_columns(&mut self, answer: &NodesOrTable) -> Result<(), String> {
        if let Some(defs) = answer
            .column_definitions
            .as_deref()
            .filter(|d| !d.is_empty())
        {
            self.columns = Some(NodeColumns::from_definitions(defs)?);
        }
        Ok(())
    }

    /// The nodes in one answer (Table rows or Node objects), and whether they were full.
    fn nodes_of(&mut self, answer: &NodesOrTable) -> Result<(Vec<NodeInfo>, bool), String> {
        if answer.kind == "Table" {
            self.learn_columns(answer)?;
            let cols = self
                .columns
                .ok_or("a Table row before any column definitions")?;
            return Ok((
                answer
                    .rows
                    .iter()
                    .filter_map(|r| node_from_row(r, &cols))
                    .collect(),
                false,
            ));
        }
        if answer.items.is_empty() && !answer.metadata.name.is_empty() {
            return Ok((vec![node_info(&answer.as_node())], true));
        }
        Ok((answer.items.iter().map(node_info).collect(), true))
    }
}

impl Source for Nodes {
    type View = NodeView;

    fn name(&self) -> &'static str {
        "nodes"
    }

    fn feed<'a>(&self, state: &'a mut State) -> &'a mut Feed<NodeView> {
        &mut state.nodes
    }

    fn prepare(&mut self, _: &Client, _: Instant, _: &mut NodeView) -> Result<Target, Error> {
        let mut params = vec![("includeObject".into(), "None".into())];
        if !self.selector.is_empty() {
            params.push(("labelSelector".into(), self.selector.clone()));
        }
        Ok(Target {
            path: "/api/v1/nodes".into(),
            params,
            accept: TABLE,
        })
    }

    fn list(
        &mut self,
        client: &Client,
        target: &Target,
        until: Instant,
        _: &NodeView,
    ) -> Result<(NodeView, String), Error> {
        let pages: Vec<NodesOrTable> =
            client.list_pages(&target.path, &target.query(), target.accept, until)?;
        let mut view = NodeView::default();
        let mut rv = String::new();
        for page in &pages {
            let (nodes, full) = self.nodes_of(page).map_err(|message| Error::Decode {
                path: target.path.clone(),
                message,
            })?;
            view.full_objects |= full;
            view.nodes
                .extend(nodes.into_iter().map(|n| (n.name.clone(), n)));
            rv = page.metadata.list.resource_version.clone();
        }
        Ok((view, rv))
    }

    fn apply(
        &mut self,
        view: &mut NodeView,
        deleted: bool,
        object: Value,
    ) -> Result<String, String> {
        let rv = resource_version(&object);
        let answer: NodesOrTable = decode(object)?;
        if deleted {
            if answer.kind == "Table" {
                self.learn_columns(&answer)?;
                let cols = self
                    .columns
                    .ok_or("a Table row before any column definitions")?;
                for row in &answer.rows {
                    if let Some(name) = name_of(row, &cols) {
                        view.nodes.remove(&name);
                    }
                }
            } else {
                view.nodes.remove(&answer.metadata.name);
            }
            return Ok(rv);
        }
        let (nodes, full) = self.nodes_of(&answer)?;
        view.full_objects = full;
        view.nodes
            .extend(nodes.into_iter().map(|n| (n.name.clone(), n)));
        Ok(rv)
    }
}

/// The cluster DNS: its Service (read again at every watch start: cluster IPs do not
/// change) and its EndpointSlices (watched).
pub struct Dns {
    pub namespace: String,
    pub service: String,
    warned: bool,
}

impl Dns {
    pub fn new(namespace: &str, service: &str) -> Dns {
        Dns {
            namespace: namespace.to_string(),
            service: service.to_string(),
            warned: false,
        }
    }
}

impl Source for Dns {
    type View = DnsView;

    fn name(&self) -> &'static str {
        "dns"
    }

    fn feed<'a>(&self, state: &'a mut State) -> &'a mut Feed<DnsView> {
        &mut state.dns
    }

    fn prepare(
        &mut self,
        client: &Client,
        until: Instant,
        view: &mut DnsView,
    ) -> Result<Target, Error> {
        view.service = client.get_named(&service_path(&self.namespace, &self.service), until)?;
        if view.service.is_none() && !self.warned {
            log::warn!(
                "DNS service {}/{} not found: its checks fail with the reason no-dns-service; set --dns-service NAMESPACE/NAME (RKE2: kube-system/rke2-coredns-rke2-coredns, OpenShift: openshift-dns/dns-default) and let the agent get that Service and list its EndpointSlices (README, Deploying)",
                self.namespace,
                self.service
            );
        }
        self.warned = view.service.is_none();
        Ok(Target {
            path: slices_path(&self.namespace),
            params: vec![(
                "labelSelector".into(),
                format!("kubernetes.io/service-name={}", self.service),
            )],
            accept: JSON,
        })
    }

    fn list(
        &mut self,
        client: &Client,
        target: &Target,
        until: Instant,
        previous: &DnsView,
    ) -> Result<(DnsView, String), Error> {
        let (items, rv) = list_items::<EndpointSlice>(client, target, until)?;
        Ok((
            DnsView {
                service: previous.service.clone(),
                slices: items
                    .into_iter()
                    .map(|s| (s.metadata.name.clone(), s))
                    .collect(),
            },
            rv,
        ))
    }

    fn apply(
        &mut self,
        view: &mut DnsView,
        deleted: bool,
        object: Value,
    ) -> Result<String, String> {
        let rv = resource_version(&object);
        let slice: EndpointSlice = decode(object)?;
        if deleted {
            view.slices.remove(&slice.metadata.name);
        } else {
            view.slices.insert(slice.metadata.name.clone(), slice);
        }
        Ok(rv)
    }
}

/// How one watch stream ended.
enum StreamEnd {
    /// The server ended it (its `timeoutSeconds`): resume from the last resourceVersion.
    Timeout,
    /// 410 or an ERROR event: list afresh.
    Relist(String),
    /// Cut, silent too long, or unreadable: resume after the back-off (`relist` when the
    /// view may have missed an event it could not read).
    Broken { error: Error, relist: bool },
}

/// Runs one watcher until `shared.stop`: list, watch, resume, back off.
pub fn run<S: Source>(
    mut source: S,
    client: Arc<Client>,
    shared: Arc<Shared>,
    options: WatchOptions,
) {
    let mut rng = Rng::from_entropy();
    let mut backoff = Backoff::new(options.backoff.0, options.backoff.1);
    let mut rv: Option<String> = None;
    let mut target: Option<Target> = None;
    // Lists in a row that each ended in a 410 or ERROR at once: a server in trouble is not
    // listed in a tight loop.
    let mut relists = 0u32;
    while !shared.stopping() {
        let until = Instant::now() + client.settings().discovery_timeout;
        // Prepare (a Service GET) on a copy: the rounds keep reading the current view, and
        // only this thread writes it.
        let mut view = source.feed(&mut shared.lock()).view.clone();
        let t = match source.prepare(&client, until, &mut view) {
            Ok(t) => t,
            Err(e) => {
                fail(&source, &shared, &mut backoff, &mut rng, &e);
                continue;
            }
        };
        if target.as_ref() != Some(&t) {
            rv = None;
        }
        target = Some(t.clone());
        if rv.is_none() {
            match source.list(&client, &t, until, &view) {
                Ok((fresh, list_rv)) => {
                    let mut state = shared.lock();
                    let feed = source.feed(&mut state);
                    feed.view = fresh;
                    feed.synced = true;
                    feed.attempts += 1;
                    feed.contact();
                    state.changes += 1;
                    drop(state);
                    shared.changed.notify_all();
                    backoff.reset();
                    rv = Some(list_rv);
                }
                Err(e) => {
                    fail(&source, &shared, &mut backoff, &mut rng, &e);
                    continue;
                }
            }
        } else {
            source.feed(&mut shared.lock()).view = view;
        }
        let from = rv.clone().unwrap_or_default();
        match watch(&mut source, &client, &shared, &options, &mut rng, &t, &from) {
            (last, StreamEnd::Timeout) => {
                rv = Some(last);
                backoff.reset();
                relists = 0;
            }
            (_, StreamEnd::Relist(why)) => {
                log::info!("api: {} watch: {why}; listing afresh", source.name());
                rv = None;
                relists += 1;
                if relists > 1 {
                    let end = Instant::now() + backoff.fail(&mut rng);
                    while !shared.stopping() && Instant::now() < end {
                        let left = end.saturating_duration_since(Instant::now());
                        std::thread::sleep(left.min(Duration::from_millis(100)));
                    }
                }
            }
            (last, StreamEnd::Broken { error, relist }) => {
                rv = if relist { None } else { Some(last) };
                fail(&source, &shared, &mut backoff, &mut rng, &error);
            }
        }
    }
}

/// Records a failure, then waits out the back-off (or until a round kicks or stop).
fn fail<S: Source>(
    source: &S,
    shared: &Shared,
    backoff: &mut Backoff,
    rng: &mut Rng,
    error: &Error,
) {
    let first = backoff.failures() == 0;
    let wait = match error {
        Error::Throttled {
            retry_after: Some(s),
            ..
        } => backoff.fail(rng).max(Duration::from_secs(*s)),
        _ => backoff.fail(rng),
    };
    let text = error.to_string();
    let mut state = shared.lock();
    state.error_kind(error.kind());
    let feed = source.feed(&mut state);
    let changed = feed.error.as_deref() != Some(text.as_str());
    feed.healthy = false;
    feed.error = Some(text.clone());
    feed.attempts += 1;
    feed.kicked = false;
    drop(state);
    shared.changed.notify_all();
    if first || changed {
        log::warn!(
            "kubernetes api: {} watch: {text}; retrying within {}",
            source.name(),
            crate::duration::format(wait)
        );
    } else {
        log::debug!("kubernetes api: {} watch: {text}", source.name());
    }
    let end = Instant::now() + wait;
    let mut state = shared.lock();
    while !shared.stopping() && !source.feed(&mut state).kicked {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        state = shared.wait(state, left.min(Duration::from_millis(500)));
    }
    source.feed(&mut state).kicked = false;
}

/// One watch stream from `from`: applies its events until it ends; returns the last
/// resourceVersion seen and how it ended.
fn watch<S: Source>(
    source: &mut S,
    client: &Client,
    shared: &Shared,
    options: &WatchOptions,
    rng: &mut Rng,
    target: &Target,
    from: &str,
) -> (String, StreamEnd) {
    let mut rv = from.to_string();
    let timeout = rng
        .between(options.watch_timeout.0, options.watch_timeout.1)
        .as_secs()
        .max(1)
        .to_string();
    let mut query = target.query();
    query.extend([
        ("watch", "true"),
        ("resourceVersion", from),
        ("allowWatchBookmarks", "true"),
        ("timeoutSeconds", timeout.as_str()),
    ]);
    let body = match client.open_stream(&target.path, &query, target.accept, options.silence) {
        Ok(body) => body,
        Err(Error::Gone { message }) => return (rv, StreamEnd::Relist(format!("410: {message}"))),
        Err(error) => {
            return (
                rv,
                StreamEnd::Broken {
                    error,
                    relist: false,
                },
            )
        }
    };
    {
        let mut state = shared.lock();
        let feed = source.feed(&mut state);
        feed.attempts += 1;
        feed.contact();
    }
    shared.changed.notify_all();
    let broken = |message: String, relist: bool| StreamEnd::Broken {
        error: Error::Decode {
            path: target.path.clone(),
            message,
        },
        relist,
    };
    let mut lines = Lines::new(body.into_reader(), MAX_LINE);
    loop {
        if shared.stopping() {
            return (rv, StreamEnd::Timeout);
        }
        let line = match lines.next_line() {
            Ok(Some(line)) => line,
            Ok(None) => return (rv, StreamEnd::Timeout),
            Err(LineError::TooLong { limit }) => {
                return (
                    rv,
                    StreamEnd::Broken {
                        error: Error::TooLarge {
                            path: target.path.clone(),
                            limit: limit as u64,
                        },
                        relist: true,
                    },
                )
            }
            Err(LineError::Truncated { bytes }) => {
                return (
                    rv,
                    broken(
                        format!("the watch stream was cut ({bytes} bytes of an event)"),
                        false,
                    ),
                )
            }
            Err(LineError::Io(io)) => {
                let error = if io.kind() == std::io::ErrorKind::TimedOut
                    || io.to_string().contains("timeout")
                {
                    log::info!(
                        "api: {} watch sent nothing for {} (no event, no BOOKMARK); resuming it",
                        source.name(),
                        crate::duration::format(options.silence)
                    );
                    Error::Timeout {
                        server: client.settings().api_server.clone(),
                    }
                } else {
                    Error::Connect {
                        server: client.settings().api_server.clone(),
                        message: format!("the watch stream broke: {io}"),
                    }
                };
                return (
                    rv,
                    StreamEnd::Broken {
                        error,
                        relist: false,
                    },
                );
            }
        };
        let mut event: Value = match serde_json::from_slice(&line) {
            Ok(v) => v,
            Err(e) => return (rv, broken(format!("a watch line is not JSON: {e}"), true)),
        };
        let typ = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let object = event
            .get_mut("object")
            .map(Value::take)
            .unwrap_or(Value::Null);
        match typ.as_str() {
            "ADDED" | "MODIFIED" | "DELETED" => {
                let mut state = shared.lock();
                let feed = source.feed(&mut state);
                match source.apply(&mut feed.view, typ == "DELETED", object) {
                    Ok(new_rv) => {
                        feed.contact();
                        state.changes += 1;
                        if !new_rv.is_empty() {
                            rv = new_rv;
                        }
                    }
                    Err(message) => {
                        drop(state);
                        return (rv, broken(format!("a {typ} event: {message}"), true));
                    }
                }
                drop(state);
                shared.changed.notify_all();
            }
            "BOOKMARK" => {
                let new_rv = resource_version(&object);
                if !new_rv.is_empty() {
                    rv = new_rv;
                }
                source.feed(&mut shared.lock()).contact();
            }
            "ERROR" => {
                let status: Status = serde_json::from_value(object).unwrap_or_default();
                return (
                    rv,
                    StreamEnd::Relist(format!(
                        "ERROR event {} {}: {}",
                        status.code, status.reason, status.message
                    )),
                );
            }
            other => {
                return (
                    rv,
                    broken(format!("a watch event of unknown type {other:?}"), true),
                )
            }
        }
    }
}
