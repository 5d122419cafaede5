//! Which reply a request gets: from the published pages, the counters and the matrix cache
//! (a trait, so tests reach every path without sockets or peers).

use super::published::Pages;
#[cfg(test)]
use super::published::StatusPage;
use super::request::{self, Method};
use super::response::{Chunk, Reply};
use super::stats::{Stats, Status};
use crate::matrix::{page, MatrixService, Now};
use crate::view::metrics;

const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";

/// The matrix as the routes see it.
pub trait MatrixSource {
    /// What a page or `/matrix.json` request finds; may start a refresh, never blocks.
    fn request(&self) -> Now;
    /// Its counters as Prometheus text.
    fn render_stats(&self) -> String;
}

impl MatrixSource for MatrixService {
    fn request(&self) -> Now {
        MatrixService::request(self)
    }

    fn render_stats(&self) -> String {
        MatrixService::render_stats(self)
    }
}

/// Routes a request. GET and HEAD only (405 otherwise, whatever the path); 404 for unknown
/// paths; `/readyz`, `/status.json` and `/summary.json` answer 503 until the first round was
/// published. `/` and `/matrix.json` answer from the matrix cache at once (a refresh they
/// start runs elsewhere); nothing in the request chooses what is fetched.
pub fn route(
    method: Method,
    target: &str,
    pages: &Pages,
    stats: &Stats,
    matrix: &dyn MatrixSource,
) -> Reply {
    if method == Method::Other {
        return Reply::text(Status::MethodNotAllowed, "only GET and HEAD\n");
    }
    match request::path(target) {
        "/prometheus.report" | "/metrics" => Reply::new(
            Status::Ok,
            metrics::CONTENT_TYPE,
            vec![
                Chunk::Shared(pages.metrics.clone()),
                Chunk::Owned(stats.render().into_bytes()),
                Chunk::Owned(matrix.render_stats().into_bytes()),
            ],
        ),
        "/status.json" => match &pages.status {
            Some(page) => Reply::new(Status::Ok, JSON, vec![Chunk::Shared(page.body())]),
            None => Reply::new(
                Status::Unavailable,
                JSON,
                vec![Chunk::Static(b"{\"error\":\"no round completed yet\"}\n")],
            ),
        },
        "/livez" => Reply::text(Status::Ok, "ok\n"),
        "/readyz" => match pages.status {
            Some(_) => Reply::text(Status::Ok, "ok\n"),
            None => Reply::text(Status::Unavailable, "no round completed yet\n"),
        },
        "/summary.json" => match &pages.summary {
            Some(lazy) => Reply::new(Status::Ok, JSON, vec![Chunk::Shared(lazy.json())]),
            None => Reply::new(
                Status::Unavailable,
                JSON,
                vec![Chunk::Static(b"{\"error\":\"no round completed yet\"}\n")],
            ),
        },
        "/" => matrix_page(pages, &matrix.request()),
        "/matrix.json" => matrix_json(&matrix.request()),
        _ => Reply::text(Status::NotFound, "not found; see /\n"),
    }
}

/// The page: the document's start, the reload-and-banner piece while no current matrix is
/// there, and the matrix's body (or a placeholder before the first).
fn matrix_page(pages: &Pages, now: &Now) -> Reply {
    let mut body = vec![Chunk::Static(page::HEAD_START.as_bytes())];
    match &now.built {
        Some(b) if !now.refreshing => body.push(Chunk::Shared(b.head.clone())),
        _ => body.push(Chunk::Static(page::REFRESHING_HEAD.as_bytes())),
    }
    body.push(match (&now.built, now.waiting) {
        (Some(b), _) => Chunk::Shared(b.page.clone()),
        (None, Some(_)) => Chunk::Shared(pages.waiting.clone()),
        (None, None) => Chunk::Shared(pages.building.clone()),
    });
    Reply::new(Status::Ok, HTML, body)
}

/// `{"refreshing": bool, "age_seconds": n|null, "waiting": text|null, "matrix": {...}|null}`.
fn matrix_json(now: &Now) -> Reply {
    let age = now
        .built
        .as_ref()
        .map(|b| format!("{:.1}", b.at.elapsed().as_secs_f64()));
    let waiting = now
        .waiting
        .and_then(|w| serde_json::to_string(w).ok())
        .unwrap_or_else(|| "null".to_string());
    let head = format!(
        "{{\"refreshing\":{},\"age_seconds\":{},\"waiting\":{waiting},\"matrix\":",
        now.refreshing,
        age.as_deref().unwrap_or("null")
    );
    let matrix = match &now.built {
        Some(b) => Chunk::Shared(b.json.clone()),
        None => Chunk::Static(b"null"),
    };
    Reply::new(
        Status::Ok,
        JSON,
        vec![
            Chunk::Owned(head.into_bytes()),
            matrix,
            Chunk::Static(b"}\n"),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::refresh::Built;
    use std::cell::Cell;
    use std::sync::Arc;
    use std::time::Instant;

    fn pages(ready: bool) -> Pages {
        Pages {
            metrics: Arc::from(&b"# TYPE x gauge\nx 1\n"[..]),
            status: ready.then(|| StatusPage::rendered(Arc::from(&b"{\"node\":\"n\"}\n"[..]))),
            summary: ready.then(|| {
                let s = crate::summary::Summary::parse(b"{\"format\":1,\"node\":\"n\"}").unwrap();
                Arc::new(crate::summary::Lazy::ready(s))
            }),
            waiting: Arc::from(&b"<body>no round yet</body>"[..]),
            building: Arc::from(&b"<body>building</body>"[..]),
        }
    }

    /// A matrix cache that answers what it is told and counts the requests.
    struct Fake {
        now: Now,
        asked: Cell<usize>,
    }

    impl MatrixSource for Fake {
        fn request(&self) -> Now {
            self.asked.set(self.asked.get() + 1);
            self.now.clone()
        }
        fn render_stats(&self) -> String {
            "networktest_matrix_refreshes_total 0\n".into()
        }
    }

    fn fake(built: bool, refreshing: bool, waiting: bool) -> Fake {
        Fake {
            now: Now {
                built: built.then(|| {
                    Arc::new(Built {
                        at: Instant::now(),
                        head: Arc::from(&b"<meta http-equiv=\"refresh\" content=\"61\">"[..]),
                        page: Arc::from(&b"<body>the matrix</body>"[..]),
                        json: Arc::from(&b"{\"rows\":[]}"[..]),
                    })
                }),
                refreshing,
                waiting: waiting.then_some("no round yet"),
            },
            asked: Cell::new(0),
        }
    }

    fn get(path: &str, ready: bool) -> (u16, String) {
        get_with(path, ready, &fake(true, false, false))
    }

    fn get_with(path: &str, ready: bool, m: &Fake) -> (u16, String) {
        let r = route(Method::Get, path, &pages(ready), &Stats::default(), m);
        (r.status.code(), String::from_utf8(r.body_bytes()).unwrap())
    }

    #[test]
    fn every_endpoint_answers() {
        let (code, body) = get("/prometheus.report", true);
        assert_eq!(code, 200);
        assert!(body.starts_with("# TYPE x gauge\nx 1\n"));
        assert!(body.contains("networktest_http_requests_total{code=\"200\"}"));
        assert_eq!(get("/metrics?name[]=x", true).0, 200);
        assert_eq!(
            get("/status.json", true),
            (200, "{\"node\":\"n\"}\n".into())
        );
        assert_eq!(get("/livez", true), (200, "ok\n".into()));
        assert_eq!(get("/readyz", true), (200, "ok\n".into()));
        let (code, body) = get("/summary.json", true);
        assert_eq!(code, 200);
        assert!(body.starts_with("{\"format\":1,\"node\":\"n\""), "{body}");
        assert!(get("/", true).1.contains("the matrix"));
        assert!(get("/metrics", true)
            .1
            .contains("networktest_matrix_refreshes_total"));
        assert_eq!(get("/nope", true).0, 404);
        assert_eq!(get("/livez/", true).0, 404);
        // A proxy's absolute form names the same path (servers must accept it).
        assert_eq!(get("http://x/livez", true), (200, "ok\n".into()));
        assert_eq!(get("http://x/livez/", true).0, 404);
    }

    #[test]
    fn readiness_and_status_wait_for_the_first_round() {
        assert_eq!(get("/readyz", false).0, 503);
        for path in ["/status.json", "/summary.json"] {
            let (code, body) = get(path, false);
            assert_eq!(code, 503);
            assert!(body.contains("no round completed yet"));
        }
        assert_eq!(get("/livez", false).0, 200);
        assert_eq!(get("/prometheus.report", false).0, 200);
    }

    #[test]
    fn only_get_and_head() {
        let m = fake(true, false, false);
        let r = route(Method::Other, "/livez", &pages(true), &Stats::default(), &m);
        assert_eq!(r.status, Status::MethodNotAllowed);
        let head = route(
            Method::Head,
            "/status.json",
            &pages(true),
            &Stats::default(),
            &m,
        );
        assert_eq!(head.status, Status::Ok);
        assert_eq!(head.body_len(), "{\"node\":\"n\"}\n".len());
    }

    #[test]
    fn the_metrics_body_shares_the_published_bytes() {
        let p = pages(true);
        let r = route(
            Method::Get,
            "/metrics",
            &p,
            &Stats::default(),
            &fake(false, false, false),
        );
        match r.body.first() {
            Some(Chunk::Shared(b)) => assert!(Arc::ptr_eq(b, &p.metrics)),
            other => panic!("{other:?}"),
        }
    }

    /// The page and `/matrix.json` say whether a refresh runs and reload while it does; only
    /// they ask the matrix (a scrape never starts a refresh).
    #[test]
    fn the_matrix_page_and_json_answer_from_the_cache() {
        let fresh = fake(true, false, false);
        let (code, page) = get_with("/", true, &fresh);
        assert_eq!(code, 200);
        assert!(page.starts_with("<!doctype html>") && page.ends_with("<body>the matrix</body>"));
        assert!(page.contains("content=\"61\""), "reloads after an interval");
        assert!(!page.contains("content=\"2\""));
        let (_, json) = get_with("/matrix.json?peer=198.18.0.99", true, &fresh);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["refreshing"], false);
        assert_eq!(v["matrix"]["rows"], serde_json::json!([]));
        assert!(v["age_seconds"].as_f64().unwrap() < 60.0);
        assert_eq!(fresh.asked.get(), 2);

        let refreshing = fake(true, true, false);
        let (_, page) = get_with("/", true, &refreshing);
        assert!(page.contains("content=\"2\"") && page.contains("the matrix"));
        let (_, json) = get_with("/matrix.json", true, &refreshing);
        assert!(json.starts_with("{\"refreshing\":true,"), "{json}");

        let first = fake(false, true, false);
        let (_, page) = get_with("/", true, &first);
        assert!(page.contains("http-equiv=\"refresh\"") && page.contains("building"));
        let (_, json) = get_with("/matrix.json", true, &first);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            (v["matrix"].is_null(), v["age_seconds"].is_null()),
            (true, true)
        );

        let before = fake(false, false, true);
        assert!(get_with("/", false, &before).1.contains("no round yet"));
        let (_, json) = get_with("/matrix.json", false, &before);
        assert!(json.contains("\"waiting\":\"no round yet\""), "{json}");

        for path in ["/metrics", "/status.json", "/summary.json", "/livez"] {
            get_with(path, true, &before);
        }
        assert_eq!(before.asked.get(), 2);
    }
}
