//! The endpoint's own counters: atomics the poll loop bumps, rendered into each scrape as
//! Prometheus text (a fixed, small set of series, all present from the start at 0).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Statuses the server answers with; the fixed label set of `networktest_http_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    ContentTooLarge,
    HeaderFieldsTooLarge,
    InternalError,
    Unavailable,
    VersionNotSupported,
}

impl Status {
    pub const ALL: [Status; 10] = [
        Status::Ok,
        Status::BadRequest,
        Status::NotFound,
        Status::MethodNotAllowed,
        Status::RequestTimeout,
        Status::ContentTooLarge,
        Status::HeaderFieldsTooLarge,
        Status::InternalError,
        Status::Unavailable,
        Status::VersionNotSupported,
    ];

    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::ContentTooLarge => 413,
            Status::HeaderFieldsTooLarge => 431,
            Status::InternalError => 500,
            Status::Unavailable => 503,
            Status::VersionNotSupported => 505,
        }
    }

    /// The reason phrase of the status line.
    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::ContentTooLarge => "Content Too Large",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::InternalError => "Internal Server Error",
            Status::Unavailable => "Service Unavailable",
            Status::VersionNotSupported => "HTTP Version Not Supported",
        }
    }

    /// Whether the connection is closed after this status: the head was refused, so what
    /// follows it on the connection cannot be trusted to be a request.
    pub fn closes(self) -> bool {
        matches!(
            self,
            Status::BadRequest
                | Status::RequestTimeout
                | Status::ContentTooLarge
                | Status::HeaderFieldsTooLarge
                | Status::VersionNotSupported
        )
    }
}

/// Why the server closed a connection early; the fixed label set of
/// `networktest_http_connections_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Closed to make room for a new connection at the connection cap.
    OverCapacity,
    /// Request head over the size limit (431).
    HeadTooLarge,
    /// Request head not complete in time (408), or nothing sent after connecting.
    HeadTimeout,
    /// A request body announced (413).
    Body,
    /// A malformed head or an unsupported HTTP version (400, 505).
    BadRequest,
    /// The response not taken by the client in time.
    WriteTimeout,
    /// Reset by the peer, or another socket error.
    Reset,
    /// The peer closed in the middle of a request head.
    IncompleteHead,
    /// `accept` failed (file descriptor or memory limits, or an aborted connection).
    AcceptError,
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Reason::OverCapacity,
        Reason::HeadTooLarge,
        Reason::HeadTimeout,
        Reason::Body,
        Reason::BadRequest,
        Reason::WriteTimeout,
        Reason::Reset,
        Reason::IncompleteHead,
        Reason::AcceptError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::OverCapacity => "over-capacity",
            Reason::HeadTooLarge => "head-too-large",
            Reason::HeadTimeout => "head-timeout",
            Reason::Body => "body",
            Reason::BadRequest => "bad-request",
            Reason::WriteTimeout => "write-timeout",
            Reason::Reset => "reset",
            Reason::IncompleteHead => "incomplete-head",
            Reason::AcceptError => "accept-error",
        }
    }
}

/// The counters, shared by the poll loop (writer) and whoever reads them.
#[derive(Debug, Default)]
pub struct Stats {
    responses: [AtomicU64; Status::ALL.len()],
    rejected: [AtomicU64; Reason::ALL.len()],
    open: AtomicU64,
}

impl Stats {
    pub fn response(&self, status: Status) {
        if let Some(c) = self.responses.get(status as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn rejected(&self, reason: Reason) {
        if let Some(c) = self.rejected.get(reason as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn set_open(&self, n: usize) {
        self.open
            .store(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Connections open at the last turn of the poll loop.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Responses sent with `status` so far.
    pub fn responses(&self, status: Status) -> u64 {
        self.responses
            .get(status as usize)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Connections closed early for `reason` so far.
    pub fn rejections(&self, reason: Reason) -> u64 {
        self.rejected
            .get(reason as usize)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// All rejection counts, in [`Reason::ALL`] order.
    pub fn rejection_counts(&self) -> [u64; Reason::ALL.len()] {
        Reason::ALL.map(|r| self.rejections(r))
    }

    /// The counters as Prometheus text: three families, 20 series, about 2 KB.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let name = "networktest_http_requests_total";
        let _ = writeln!(
            out,
            "# HELP {name} HTTP responses sent by the agent's endpoint, by status code.\n# TYPE {name} counter"
        );
        for s in Status::ALL {
            let _ = writeln!(out, "{name}{{code=\"{}\"}} {}", s.code(), self.responses(s));
        }
        let name = "networktest_http_connections_rejected_total";
        let _ = writeln!(
            out,
            "# HELP {name} Connections to the agent's endpoint closed early by the agent, by reason.\n# TYPE {name} counter"
        );
        for r in Reason::ALL {
            let _ = writeln!(
                out,
                "{name}{{reason=\"{}\"}} {}",
                r.as_str(),
                self.rejections(r)
            );
        }
        let name = "networktest_http_connections_open";
        let _ = writeln!(
            out,
            "# HELP {name} Connections open to the agent's endpoint.\n# TYPE {name} gauge\n{name} {}",
            self.open.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_present_from_the_start() {
        let text = Stats::default().render();
        for s in Status::ALL {
            assert!(
                text.contains(&format!(
                    "networktest_http_requests_total{{code=\"{}\"}} 0\n",
                    s.code()
                )),
                "{text}"
            );
        }
        for r in Reason::ALL {
            assert!(text.contains(&format!("{{reason=\"{}\"}} 0\n", r.as_str())));
        }
        assert!(text.contains("networktest_http_connections_open 0\n"));
        assert_eq!(text.matches("# TYPE ").count(), 3);
        assert_eq!(text.lines().count(), 3 * 2 + 10 + 9 + 1);
    }

    #[test]
    fn counts_land_on_their_own_label() {
        let s = Stats::default();
        s.response(Status::ContentTooLarge);
        s.response(Status::ContentTooLarge);
        s.rejected(Reason::Body);
        s.set_open(7);
        let text = s.render();
        assert!(text.contains("networktest_http_requests_total{code=\"413\"} 2\n"));
        assert!(text.contains("networktest_http_requests_total{code=\"200\"} 0\n"));
        assert!(text.contains("{reason=\"body\"} 1\n"));
        assert!(text.contains("networktest_http_connections_open 7\n"));
        assert_eq!(s.rejections(Reason::Body), 1);
        assert_eq!(s.responses(Status::ContentTooLarge), 2);
    }

    #[test]
    fn codes_and_reasons_are_distinct() {
        let codes: std::collections::HashSet<u16> = Status::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes.len(), Status::ALL.len());
        let reasons: std::collections::HashSet<&str> =
            Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(reasons.len(), Reason::ALL.len());
        for (i, s) in Status::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
        }
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }
}
