//! When and how the matrix is built: only while someone looks. A page or `/matrix.json`
//! request ([`MatrixService::request`]) finds the cached matrix; when there is none or it is
//! older than one round interval, it starts one refresh on a thread of its own (single flight:
//! never two at once) and is answered at once from the previous matrix, saying "refreshing".
//! The HTTP thread never waits for a fetch.
//!
//! A refresh fetches `/summary.json` from every peer agent: only from the pod IPs of the
//! agents in this agent's own last snapshot ([`Members`], set by the round loop) and its own
//! port, never from an address a request names. At most [`Settings::workers`] fetches at once,
//! each within [`Settings::fetch_timeout`] and [`Settings::max_summary`] bytes, the whole
//! refresh within [`Settings::deadline`] and [`Settings::budget`] bytes; a peer that is not
//! fetched is a grey row that says why.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::fetch::{self, FetchError};
use super::model::{self, Input, Source};
use super::page;
use crate::kube::Snapshot;
use crate::summary::{self, Summary};
use crate::view::metrics::AgentInfo;

/// How refreshes are bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long a built matrix answers requests: the round interval.
    pub interval: Duration,
    /// The port peers serve `/summary.json` on (this agent's own).
    pub port: u16,
    /// Fetches at once.
    pub workers: usize,
    /// One fetch, connect to last byte.
    pub fetch_timeout: Duration,
    /// The largest summary read.
    pub max_summary: usize,
    /// Bytes one refresh reads at most (plus one summary per worker in flight).
    pub budget: usize,
    /// One refresh at most; peers not fetched by then are grey rows.
    pub deadline: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            interval: Duration::from_secs(60),
            port: 8123,
            workers: 4,
            fetch_timeout: Duration::from_secs(2),
            max_summary: 1024 * 1024,
            budget: 16 * 1024 * 1024,
            deadline: Duration::from_secs(20),
        }
    }
}

/// A peer agent as this agent's snapshot knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub node: String,
    pub pod: String,
    /// Its pod IP (IPv4 first); `None` before it has one.
    pub ip: Option<IpAddr>,
}

/// The rows a refresh fetches: every node and the agent on it, from one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    /// This agent's node: its row comes from memory, not over the network.
    pub me: String,
    /// One agent per node (a running one, not being deleted, when there is a choice).
    pub peers: Vec<Peer>,
    /// Every node, with or without an agent.
    pub nodes: Vec<String>,
}

impl Members {
    /// The members of `s`, as seen by the agent on node `me`.
    pub fn of(s: &Snapshot, me: &str) -> Members {
        let mut by_node: BTreeMap<&str, &crate::kube::AgentPod> = BTreeMap::new();
        for a in &s.agents {
            if a.node.is_empty() {
                continue;
            }
            let better = |old: &crate::kube::AgentPod| {
                (a.deleting, a.pod_ips.is_empty()) < (old.deleting, old.pod_ips.is_empty())
            };
            match by_node.get(a.node.as_str()) {
                Some(old) if !better(old) => {}
                _ => {
                    by_node.insert(&a.node, a);
                }
            }
        }
        Members {
            me: me.to_string(),
            peers: by_node
                .into_values()
                .map(|a| Peer {
                    node: a.node.clone(),
                    pod: a.name.clone(),
                    ip: a
                        .pod_ips
                        .iter()
                        .find(|ip| ip.is_ipv4())
                        .or_else(|| a.pod_ips.first())
                        .copied(),
                })
                .collect(),
            nodes: s.nodes.iter().map(|n| n.name.clone()).collect(),
        }
    }
}

/// A built matrix, rendered.
#[derive(Debug)]
pub struct Built {
    pub at: Instant,
    /// The page's per-request piece once this matrix is current: reload after an interval,
    /// so an open page stays current (and keeps the matrix refreshed while it is open).
    pub head: Arc<[u8]>,
    /// The page's body ([`page::render`]).
    pub page: Arc<[u8]>,
    /// `/matrix.json`'s `matrix`.
    pub json: Arc<[u8]>,
}

/// What a request finds.
#[derive(Debug, Clone)]
pub struct Now {
    /// The last matrix built, if any (possibly older than an interval while refreshing).
    pub built: Option<Arc<Built>>,
    /// A refresh is running; a newer matrix follows.
    pub refreshing: bool,
    /// Why nothing can be built yet (no round completed).
    pub waiting: Option<&'static str>,
}

struct State {
    members: Option<Arc<Members>>,
    own: Option<Arc<summary::Lazy>>,
    built: Option<Arc<Built>>,
    refreshing: bool,
    /// When starting a refresh thread last failed (warned about at most once a minute).
    spawn_failed: Option<Instant>,
}

struct Inner {
    settings: Settings,
    info: AgentInfo,
    state: Mutex<State>,
    refreshes: AtomicU64,
    fetched: AtomicU64,
    fetch_failed: AtomicU64,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The matrix cache and its refreshes; cheap to share (`Arc` inside).
#[derive(Clone)]
pub struct MatrixService {
    inner: Arc<Inner>,
}

impl MatrixService {
    pub fn new(info: AgentInfo, settings: Settings) -> MatrixService {
        MatrixService {
            inner: Arc::new(Inner {
                settings,
                info,
                state: Mutex::new(State {
                    members: None,
                    own: None,
                    built: None,
                    refreshing: false,
                    spawn_failed: None,
                }),
                refreshes: AtomicU64::new(0),
                fetched: AtomicU64::new(0),
                fetch_failed: AtomicU64::new(0),
            }),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The members of the last round (the round loop calls this once per round).
    pub fn set_members(&self, members: Members) {
        self.inner.lock().members = Some(Arc::new(members));
    }

    /// This agent's own last summary (published once per round; made when a refresh needs
    /// it).
    pub fn set_own(&self, own: Arc<summary::Lazy>) {
        self.inner.lock().own = Some(own);
    }

    /// What a page or `/matrix.json` request shows; starts a refresh when the matrix is
    /// missing or older than one interval and none runs. Never blocks on the network.
    pub fn request(&self) -> Now {
        let mut st = self.inner.lock();
        let fresh = st
            .built
            .as_ref()
            .is_some_and(|b| b.at.elapsed() < self.inner.settings.interval);
        if fresh {
            return Now {
                built: st.built.clone(),
                refreshing: st.refreshing,
                waiting: None,
            };
        }
        if st.members.is_none() || st.own.is_none() {
            return Now {
                built: st.built.clone(),
                refreshing: false,
                waiting: Some("No round completed yet: the matrix follows the first round."),
            };
        }
        if !st.refreshing {
            let inner = self.inner.clone();
            let spawned = std::thread::Builder::new()
                .name("matrix".into())
                .spawn(move || refresh(&inner));
            match spawned {
                Ok(_) => st.refreshing = true,
                Err(e) => {
                    let now = Instant::now();
                    if st
                        .spawn_failed
                        .is_none_or(|t| now.saturating_duration_since(t) > Duration::from_secs(60))
                    {
                        log::warn!("matrix: cannot start the refresh thread: {e}");
                        st.spawn_failed = Some(now);
                    }
                }
            }
        }
        Now {
            built: st.built.clone(),
            refreshing: st.refreshing,
            waiting: None,
        }
    }

    /// The refresh and fetch counters as Prometheus text (appended to each scrape).
    pub fn render_stats(&self) -> String {
        let i = &self.inner;
        format!(
            "# HELP networktest_matrix_refreshes_total Matrix refreshes completed (each fetches every peer's summary); at most one per interval, only while someone looks.\n\
             # TYPE networktest_matrix_refreshes_total counter\n\
             networktest_matrix_refreshes_total {}\n\
             # HELP networktest_matrix_fetches_total Peer summaries fetched for the matrix, by result.\n\
             # TYPE networktest_matrix_fetches_total counter\n\
             networktest_matrix_fetches_total{{result=\"ok\"}} {}\n\
             networktest_matrix_fetches_total{{result=\"failed\"}} {}\n",
            i.refreshes.load(Ordering::Relaxed),
            i.fetched.load(Ordering::Relaxed),
            i.fetch_failed.load(Ordering::Relaxed),
        )
    }

    /// Refreshes completed so far.
    pub fn refreshes(&self) -> u64 {
        self.inner.refreshes.load(Ordering::Relaxed)
    }
}

/// Ends a refresh whatever happens in it: the next stale request may start another.
struct Running<'a>(&'a Inner);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.lock().refreshing = false;
    }
}

fn refresh(inner: &Inner) {
    let _running = Running(inner);
    let started = Instant::now();
    let (members, own) = {
        let st = inner.lock();
        (st.members.clone(), st.own.clone())
    };
    let (Some(members), Some(own)) = (members, own) else {
        return;
    };
    let own = own.get();
    let s = &inner.settings;
    let jobs = jobs(&members, &own, s.port);
    let fetch = |addr: SocketAddr, timeout: Duration| {
        fetch::get(addr, "/summary.json", timeout, s.max_summary)
    };
    let sources = run(jobs, s, &fetch, started);
    let (ok, failed) = sources.iter().fold((0u64, 0u64), |(o, f), (fetched, src)| {
        match (fetched, &src.data) {
            (false, _) => (o, f),
            (true, Ok(_)) => (o.saturating_add(1), f),
            (true, Err(_)) => (o, f.saturating_add(1)),
        }
    });
    inner.fetched.fetch_add(ok, Ordering::Relaxed);
    inner.fetch_failed.fetch_add(failed, Ordering::Relaxed);
    let now = SystemTime::now();
    let m = model::build(Input {
        by: members.me.clone(),
        built_at: crate::timefmt::rfc3339(now),
        built_unix: now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
        nodes: members.nodes.clone(),
        sources: sources.into_iter().map(|(_, s)| s).collect(),
    });
    let page = page::render(&m, &inner.info, s.interval);
    let json = match serde_json::to_vec(&m) {
        Ok(j) => j,
        Err(e) => {
            log::error!("matrix: cannot encode the matrix: {e}");
            b"null".to_vec()
        }
    };
    let built = Arc::new(Built {
        at: Instant::now(),
        head: Arc::from(page::reload_head(s.interval).into_bytes()),
        page: Arc::from(page.into_bytes()),
        json: Arc::from(json),
    });
    inner.lock().built = Some(built);
    inner.refreshes.fetch_add(1, Ordering::Relaxed);
    log::info!(
        "matrix: refreshed from {} peer summaries in {:.2} s ({failed} not fetched)",
        ok,
        started.elapsed().as_secs_f64()
    );
}

/// A row to fill: from memory (this agent), over the network, or known to have no data.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    Own(Arc<Summary>),
    Fetch {
        node: String,
        pod: String,
        addr: SocketAddr,
    },
    NoData {
        node: String,
        pod: String,
        why: String,
    },
}

/// The rows of a refresh, one per node. Peer addresses come from `members` only (the
/// snapshot), with this agent's port: nothing a request says can add one.
pub fn jobs(members: &Members, own: &Arc<Summary>, port: u16) -> Vec<Job> {
    let mut by_node: BTreeMap<&str, Job> = BTreeMap::new();
    for n in &members.nodes {
        by_node.insert(
            n,
            Job::NoData {
                node: n.clone(),
                pod: String::new(),
                why: "no agent pod on this node".into(),
            },
        );
    }
    for p in &members.peers {
        let job = match p.ip {
            Some(ip) => Job::Fetch {
                node: p.node.clone(),
                pod: p.pod.clone(),
                addr: SocketAddr::new(ip, port),
            },
            None => Job::NoData {
                node: p.node.clone(),
                pod: p.pod.clone(),
                why: "the agent pod has no IP yet".into(),
            },
        };
        by_node.insert(&p.node, job);
    }
    by_node.insert(&members.me, Job::Own(own.clone()));
    by_node.into_values().collect()
}

/// Runs the jobs with at most `s.workers` fetches at once (this thread is one of them);
/// each source with whether it was fetched over the network.
fn run(
    jobs: Vec<Job>,
    s: &Settings,
    fetch: &(dyn Fn(SocketAddr, Duration) -> Result<Vec<u8>, FetchError> + Sync),
    started: Instant,
) -> Vec<(bool, Source)> {
    let next = AtomicUsize::new(0);
    let used = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<(bool, Source)>>> = Mutex::new(vec![None; jobs.len()]);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(job) = jobs.get(i) else { break };
        let done = match job {
            Job::Own(summary) => (
                false,
                Source {
                    node: summary.node.clone(),
                    pod: summary.pod.clone(),
                    data: Ok(model::reduce((**summary).clone())),
                },
            ),
            Job::NoData { node, pod, why } => (
                false,
                Source {
                    node: node.clone(),
                    pod: pod.clone(),
                    data: Err(why.clone()),
                },
            ),
            Job::Fetch { node, pod, addr } => {
                let left = s.deadline.saturating_sub(started.elapsed());
                let data = if left.is_zero() {
                    Err(format!(
                        "{}the refresh ran out of its {}",
                        model::NOT_FETCHED,
                        crate::duration::format(s.deadline)
                    ))
                } else if used.load(Ordering::Relaxed) >= s.budget {
                    Err(format!(
                        "{}the refresh already read {} MiB of summaries",
                        model::NOT_FETCHED,
                        s.budget / (1024 * 1024)
                    ))
                } else {
                    match fetch(*addr, s.fetch_timeout.min(left)) {
                        Err(e) => Err(format!("no summary from {addr}: {e}")),
                        Ok(body) => {
                            used.fetch_add(body.len(), Ordering::Relaxed);
                            Summary::parse(&body)
                                .map(model::reduce)
                                .map_err(|e| format!("{addr}: {e}"))
                        }
                    }
                };
                (
                    true,
                    Source {
                        node: node.clone(),
                        pod: pod.clone(),
                        data,
                    },
                )
            }
        };
        let mut r = results.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = r.get_mut(i) {
            *slot = Some(done);
        }
    };
    let helpers = s.workers.max(1).saturating_sub(1).min(jobs.len());
    std::thread::scope(|scope| {
        for _ in 0..helpers {
            let spawned = std::thread::Builder::new()
                .name("matrix-fetch".into())
                .spawn_scoped(scope, work);
            if spawned.is_err() {
                break; // fewer helpers; this thread still works through every job
            }
        }
        work();
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::{AgentPod, NodeInfo};
    use crate::matrix::model::tests::summary;
    use std::sync::atomic::AtomicUsize;

    fn agent(node: &str, name: &str, ips: &[&str], deleting: bool) -> AgentPod {
        AgentPod {
            name: name.into(),
            node: node.into(),
            pod_ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
            host_ips: vec![],
            phase: "Running".into(),
            ready: true,
            deleting,
        }
    }

    fn node(name: &str) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            internal_ips: vec![],
            control_plane: false,
            ready: true,
            unschedulable: false,
        }
    }

    fn members() -> Members {
        let s = Snapshot {
            agents: vec![
                agent("n1", "a1", &["198.19.1.10"], false),
                agent("n2", "a2-old", &["198.19.2.9"], true),
                agent("n2", "a2", &["2001:db8::2", "198.19.2.10"], false),
                agent("n3", "a3", &[], false),
            ],
            nodes: ["n1", "n2", "n3", "n4"].map(node).to_vec(),
            dns: Default::default(),
        };
        Members::of(&s, "n1")
    }

    #[test]
    fn members_pick_one_live_agent_per_node_and_its_ipv4() {
        let m = members();
        assert_eq!(
            m.peers,
            [
                Peer {
                    node: "n1".into(),
                    pod: "a1".into(),
                    ip: Some("198.19.1.10".parse().unwrap())
                },
                Peer {
                    node: "n2".into(),
                    pod: "a2".into(),
                    ip: Some("198.19.2.10".parse().unwrap())
                },
                Peer {
                    node: "n3".into(),
                    pod: "a3".into(),
                    ip: None
                },
            ]
        );
    }

    #[test]
    fn jobs_fetch_only_the_snapshot_agents_on_this_agents_port() {
        let own = Arc::new(summary("n1", &[], &[]));
        let jobs = jobs(&members(), &own, 8123);
        assert_eq!(jobs.len(), 4);
        assert!(matches!(&jobs[0], Job::Own(_)));
        assert_eq!(
            jobs[1],
            Job::Fetch {
                node: "n2".into(),
                pod: "a2".into(),
                addr: "198.19.2.10:8123".parse().unwrap()
            }
        );
        assert!(matches!(&jobs[2], Job::NoData { why, .. } if why.contains("no IP")));
        assert!(matches!(&jobs[3], Job::NoData { why, .. } if why.contains("no agent pod")));
    }

    /// Many peers, a slow fake fetch: never more than `workers` at once, every row filled,
    /// failures say why, and the deadline turns the rest into grey rows.
    #[test]
    fn fetches_are_bounded_and_every_row_is_filled() {
        let n = 40;
        let mut m = Members {
            me: "node-00".into(),
            ..Members::default()
        };
        for i in 0..n {
            m.peers.push(Peer {
                node: format!("node-{i:02}"),
                pod: format!("a{i}"),
                ip: Some(format!("198.19.{i}.10").parse().unwrap()),
            });
        }
        let own = Arc::new(summary("node-00", &[], &[]));
        let in_flight = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let fetch = |addr: SocketAddr, _t: Duration| {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
            in_flight.fetch_sub(1, Ordering::SeqCst);
            let IpAddr::V4(v4) = addr.ip() else { panic!() };
            match v4.octets()[2] {
                7 => Err(FetchError::Timeout),
                8 => Ok(b"garbage".to_vec()),
                11 => Err(FetchError::Status(404)),
                i => Ok(serde_json::to_vec(&summary(&format!("node-{i:02}"), &[], &[])).unwrap()),
            }
        };
        let s = Settings::default();
        let out = run(jobs(&m, &own, 8123), &s, &fetch, Instant::now());
        assert_eq!(out.len(), n);
        assert!(most.load(Ordering::SeqCst) <= s.workers);
        assert_eq!(
            out.iter().filter(|(f, _)| *f).count(),
            n - 1,
            "all but its own"
        );
        let err = |i: usize| out[i].1.data.clone().unwrap_err();
        assert_eq!(
            err(7),
            "no summary from 198.19.7.10:8123: no answer in time"
        );
        assert!(
            err(8).starts_with("198.19.8.10:8123: not a summary"),
            "{}",
            err(8)
        );
        assert!(out[9].1.data.is_ok());
        assert_eq!(
            err(11),
            "no summary from 198.19.11.10:8123: answered 404 (an agent too old to have a summary)"
        );
        // A refresh past its deadline fetches nothing more.
        let late = Instant::now() - Duration::from_secs(60);
        let out = run(jobs(&m, &own, 8123), &s, &fetch, late);
        assert!(
            err_text(&out[5].1).contains("ran out of its 20s"),
            "{:?}",
            out[5]
        );
        // Over its byte budget too.
        let tiny = Settings {
            budget: 1,
            workers: 1,
            ..Settings::default()
        };
        let out = run(jobs(&m, &own, 8123), &tiny, &fetch, Instant::now());
        assert!(
            out[1].1.data.is_ok(),
            "the first fetch is within the budget"
        );
        assert!(
            err_text(&out[2].1).contains("already read 0 MiB"),
            "{:?}",
            out[2]
        );
    }

    fn err_text(s: &Source) -> String {
        s.data.clone().err().unwrap_or_default()
    }

    /// Requests before any round start nothing; the first after a round starts one refresh,
    /// the ones during it start none, and the cache answers until an interval passed.
    #[test]
    fn one_refresh_at_a_time_and_one_per_interval() {
        let svc = MatrixService::new(
            AgentInfo {
                version: "0".into(),
                node: "n1".into(),
                pod: "a1".into(),
            },
            Settings {
                interval: Duration::from_secs(3600),
                ..Settings::default()
            },
        );
        let now = svc.request();
        assert!(now.waiting.is_some() && !now.refreshing && now.built.is_none());
        svc.set_members(Members {
            me: "n1".into(),
            peers: vec![],
            nodes: vec!["n1".into(), "n2".into()],
        });
        svc.set_own(Arc::new(summary::Lazy::ready(summary(
            "n1",
            &["n1".to_string()],
            &[],
        ))));
        let first = svc.request();
        assert!(first.refreshing && first.built.is_none());
        for _ in 0..100 {
            svc.request();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while svc.request().built.is_none() {
            assert!(Instant::now() < deadline, "the refresh ended");
            std::thread::sleep(Duration::from_millis(5));
        }
        for _ in 0..100 {
            let now = svc.request();
            assert!(!now.refreshing);
        }
        assert_eq!(svc.refreshes(), 1);
        let built = svc.request().built.unwrap();
        let m: model::Matrix = serde_json::from_slice(&built.json).unwrap();
        assert_eq!(m.rows.len(), 2);
        assert_eq!(
            m.rows[1].unreachable.as_deref(),
            Some("no agent pod on this node")
        );
        assert!(svc
            .render_stats()
            .contains("networktest_matrix_refreshes_total 1\n"));
    }
}
