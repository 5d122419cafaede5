//! What the endpoints serve: the round loop renders the pages once per round and publishes
//! them; requests only clone an `Arc`, so a flood of scrapes costs no rendering and no copies.
//! `/status.json` and `/summary.json` are the exception: megabytes at 5,000 nodes that most
//! rounds nobody asks for, they are rendered on their first request after a publish (the
//! summary also by a matrix refresh), then served from memory too.
//! The matrix page is rendered once per matrix refresh (see `matrix::refresh`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use super::stats::Stats;
use crate::matrix::{self, page, MatrixService};
use crate::report::RoundReport;
use crate::summary::{self, Writer};
use crate::view::metrics::{self, AgentInfo, Totals};

/// What the round loop keeps for the endpoints: the last round and the totals.
#[derive(Default)]
pub struct State {
    /// Shared with the published `/status.json` (rendered from it on request) and borrowed
    /// by the next round as its previous one: one copy of every check.
    pub last: Option<Arc<RoundReport>>,
    pub totals: Totals,
}

/// The rendered pages, replaced as a whole by each publish.
#[derive(Debug)]
pub struct Pages {
    /// The metrics text of the last publish (the HTTP counters are appended per request).
    pub metrics: Arc<[u8]>,
    /// `/status.json` of the last round; `None` until the first round completed.
    pub status: Option<StatusPage>,
    /// `/summary.json` of the last round (made on its first request or matrix refresh);
    /// `None` until the first round completed.
    pub summary: Option<Arc<summary::Lazy>>,
    /// The body of `/` before the first round.
    pub waiting: Arc<[u8]>,
    /// The body of `/` while the first matrix is built.
    pub building: Arc<[u8]>,
}

/// `/status.json` of one round, rendered by its first request (`/readyz` needs only that
/// there is one) and kept until the next publish replaces the page.
#[derive(Debug)]
pub struct StatusPage {
    report: Arc<RoundReport>,
    body: OnceLock<Arc<[u8]>>,
    /// The size of the last body rendered (any round's): at 5,000 nodes it is megabytes, and
    /// growing the buffer by doubling would copy it several times.
    last_size: Arc<AtomicUsize>,
}

impl StatusPage {
    fn new(report: Arc<RoundReport>, last_size: Arc<AtomicUsize>) -> StatusPage {
        StatusPage {
            report,
            body: OnceLock::new(),
            last_size,
        }
    }

    /// A page already rendered (route tests).
    #[cfg(test)]
    pub fn rendered(body: Arc<[u8]>) -> StatusPage {
        let report: RoundReport = serde_json::from_value(serde_json::json!({
            "node": "n", "pod": "p", "started_at": "2026-01-01T00:00:00Z",
            "duration_seconds": 0.5, "errors": 0, "checks": [], "changes": [],
        }))
        .unwrap();
        StatusPage {
            report: Arc::new(report),
            body: OnceLock::from(body),
            last_size: Arc::default(),
        }
    }

    /// The pretty-printed round (rendered now if no request did yet).
    pub fn body(&self) -> Arc<[u8]> {
        self.body
            .get_or_init(|| {
                let size = self.last_size.load(Ordering::Relaxed);
                let mut json = Vec::with_capacity(size + size / 8);
                match serde_json::to_writer_pretty(&mut json, &*self.report) {
                    Ok(()) => json.push(b'\n'),
                    Err(e) => {
                        log::error!("cannot encode the round for /status.json: {e}");
                        json = format!("{{\"error\":{:?}}}\n", e.to_string()).into_bytes();
                    }
                }
                self.last_size.store(json.len(), Ordering::Relaxed);
                Arc::from(json)
            })
            .clone()
    }
}

/// State shared between the round loop and the server.
pub struct Shared {
    state: Mutex<State>,
    pages: Mutex<Arc<Pages>>,
    status_size: Arc<AtomicUsize>,
    pub info: AgentInfo,
    stats: Stats,
    matrix: MatrixService,
}

impl Shared {
    /// Before the first round: the metrics page has the agent's info and zero totals, and
    /// `/status.json` and `/readyz` answer 503. The matrix with its default settings.
    pub fn new(info: AgentInfo) -> Shared {
        Shared::with_matrix(info, matrix::Settings::default())
    }

    /// [`Shared::new`] with the matrix's settings (the agent's interval and port).
    pub fn with_matrix(info: AgentInfo, settings: matrix::Settings) -> Shared {
        let state = State::default();
        let placeholder = |why: &str| Arc::from(page::placeholder(&info, why).into_bytes());
        let pages = Pages {
            metrics: render_metrics(&state, &info),
            status: None,
            summary: None,
            waiting: placeholder("No round completed yet: the matrix follows the first round."),
            building: placeholder(
                "Building the matrix: fetching every agent's summary; this page reloads by itself.",
            ),
        };
        Shared {
            state: Mutex::new(state),
            pages: Mutex::new(Arc::new(pages)),
            status_size: Arc::default(),
            matrix: MatrixService::new(info.clone(), settings),
            info,
            stats: Stats::default(),
        }
    }

    /// The whole-cluster matrix (its cache and refreshes).
    pub fn matrix(&self) -> &MatrixService {
        &self.matrix
    }

    /// Locks the state; a panic elsewhere while holding the lock must not stop the endpoints.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Renders `state` (the caller holds its lock) into the pages the endpoints serve from
    /// now on (`/status.json` on its first request). Called once per round: scrapes between
    /// rounds are served from memory.
    pub fn publish(&self, state: &State) {
        let before = self.pages();
        let status = state
            .last
            .as_ref()
            .map(|r| StatusPage::new(r.clone(), self.status_size.clone()));
        let summary = state.last.as_ref().map(|r| {
            let lazy = Arc::new(summary::Lazy::of(
                r.clone(),
                &Writer {
                    version: &self.info.version,
                    interval_seconds: self.matrix.settings().interval.as_secs_f64(),
                },
            ));
            self.matrix.set_own(lazy.clone());
            lazy
        });
        let pages = Pages {
            metrics: render_metrics(state, &self.info),
            status,
            summary,
            waiting: before.waiting.clone(),
            building: before.building.clone(),
        };
        *self.pages.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(pages);
    }

    /// The pages of the last publish.
    pub fn pages(&self) -> Arc<Pages> {
        self.pages.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The server's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

fn render_metrics(state: &State, info: &AgentInfo) -> Arc<[u8]> {
    Arc::from(metrics::render(state.last.as_deref(), &state.totals, info).into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::Summary;

    pub(crate) fn info() -> AgentInfo {
        AgentInfo {
            version: "1.2.3".into(),
            node: "node-<1>".into(),
            pod: "pod-\"a\"".into(),
        }
    }

    #[test]
    fn before_the_first_round_there_is_no_status_and_metrics_have_the_info() {
        let shared = Shared::new(info());
        let pages = shared.pages();
        assert!(pages.status.is_none());
        let text = String::from_utf8(pages.metrics.to_vec()).unwrap();
        assert!(text.contains("networktest_build_info{version=\"1.2.3\"} 1"));
        assert!(pages.summary.is_none());
        let waiting = String::from_utf8(pages.waiting.to_vec()).unwrap();
        assert!(waiting.contains("node-&lt;1&gt;") && waiting.contains("pod-&quot;a&quot;"));
        assert!(waiting.contains("No round completed yet"));
    }

    #[test]
    fn publishing_a_round_renders_status_and_metrics_once() {
        let shared = Shared::new(info());
        let before = shared.pages();
        {
            let mut state = shared.lock();
            let report: RoundReport = serde_json::from_value(serde_json::json!({
                "node": "n", "pod": "p", "started_at": "2026-01-01T00:00:00Z",
                "duration_seconds": 0.5, "errors": 0, "checks": [], "changes": [],
            }))
            .unwrap();
            state.totals.record(&report);
            state.last = Some(report.into());
            shared.publish(&state);
        }
        let after = shared.pages();
        let page = after.status.as_ref().unwrap();
        assert!(page.body.get().is_none(), "rendered before any request");
        let body = page.body();
        // Rendered once: the next request gets the same bytes.
        assert!(Arc::ptr_eq(&body, &page.body()));
        let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status["node"], "n");
        let text = String::from_utf8(after.metrics.to_vec()).unwrap();
        assert!(text.contains("networktest_rounds_total 1\n"), "{text}");
        // Requests between publishes share the same bytes.
        assert!(Arc::ptr_eq(&after.metrics, &shared.pages().metrics));
        assert!(!Arc::ptr_eq(&before.metrics, &after.metrics));
        assert!(Arc::ptr_eq(&before.waiting, &after.waiting));
        let summary = Summary::parse(&after.summary.as_ref().unwrap().json()).unwrap();
        assert_eq!(
            (summary.node.as_str(), summary.version.as_str()),
            ("n", "1.2.3")
        );
        assert_eq!(summary.interval_seconds, 60.0);
    }
}
