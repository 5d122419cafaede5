//! Which reply a request gets: pure, from the published pages and the counters, so tests reach
//! every path without sockets.

use super::published::Pages;
use super::request::{self, Method};
use super::response::{Chunk, Reply};
use super::stats::{Stats, Status};
use crate::view::metrics;

const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";

/// Routes a request. GET and HEAD only (405 otherwise, whatever the path); 404 for unknown
/// paths; `/readyz` and `/status.json` answer 503 until the first round was published.
pub fn route(method: Method, target: &str, pages: &Pages, stats: &Stats) -> Reply {
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
            ],
        ),
        "/status.json" => match &pages.status {
            Some(body) => Reply::new(Status::Ok, JSON, vec![Chunk::Shared(body.clone())]),
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
        "/" => Reply::new(Status::Ok, HTML, vec![Chunk::Shared(pages.landing.clone())]),
        _ => Reply::text(Status::NotFound, "not found; see /\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn pages(ready: bool) -> Pages {
        Pages {
            metrics: Arc::from(&b"# TYPE x gauge\nx 1\n"[..]),
            status: ready.then(|| Arc::from(&b"{\"node\":\"n\"}\n"[..])),
            landing: Arc::from(&b"<html>/prometheus.report</html>"[..]),
        }
    }

    fn get(path: &str, ready: bool) -> (u16, String) {
        let r = route(Method::Get, path, &pages(ready), &Stats::default());
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
        assert!(get("/", true).1.contains("/prometheus.report"));
        assert_eq!(get("/nope", true).0, 404);
        assert_eq!(get("/livez/", true).0, 404);
        assert_eq!(get("http://x/livez", true).0, 404);
    }

    #[test]
    fn readiness_and_status_wait_for_the_first_round() {
        assert_eq!(get("/readyz", false).0, 503);
        let (code, body) = get("/status.json", false);
        assert_eq!(code, 503);
        assert!(body.contains("no round completed yet"));
        assert_eq!(get("/livez", false).0, 200);
        assert_eq!(get("/prometheus.report", false).0, 200);
    }

    #[test]
    fn only_get_and_head() {
        let r = route(Method::Other, "/livez", &pages(true), &Stats::default());
        assert_eq!(r.status, Status::MethodNotAllowed);
        let head = route(
            Method::Head,
            "/status.json",
            &pages(true),
            &Stats::default(),
        );
        assert_eq!(head.status, Status::Ok);
        assert_eq!(head.body_len(), "{\"node\":\"n\"}\n".len());
    }

    #[test]
    fn the_metrics_body_shares_the_published_bytes() {
        let p = pages(true);
        let r = route(Method::Get, "/metrics", &p, &Stats::default());
        match r.body.first() {
            Some(Chunk::Shared(b)) => assert!(Arc::ptr_eq(b, &p.metrics)),
            other => panic!("{other:?}"),
        }
    }
}
