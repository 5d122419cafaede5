//! Request heads: bytes in, a parsed head or the status that refuses it out. Pure (no I/O), so
//! unit tests and the fuzz target call [`parse_head`] directly. The parsing itself is httparse's
//! (the parser under hyper); this module adds the agent's limits: a bounded head, no bodies,
//! HTTP/1.0 and 1.1 only, and the keep-alive rules.

/// The largest request head accepted, request line and headers together.
pub const HEAD_MAX: usize = 8 * 1024;

/// The most header fields in one head; more are refused like an oversized head.
pub const HEADERS_MAX: usize = 64;

/// The request methods the endpoints tell apart; everything else is answered 405.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Other,
}

/// A complete, acceptable request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head<'a> {
    pub method: Method,
    /// The request target as sent (path and query).
    pub target: &'a str,
    /// HTTP/1.1 (`true`) or HTTP/1.0 (`false`).
    pub http11: bool,
    /// Whether the client wants the connection kept open after the response: the HTTP/1.1
    /// default unless it sent `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    pub keep_alive: bool,
}

/// Why a head is refused; the connection is answered with [`Refusal::status`] and closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Longer than [`HEAD_MAX`] or more than [`HEADERS_MAX`] fields: 431.
    TooLarge,
    /// A body announced (`Content-Length` above 0, or any `Transfer-Encoding`): 413. The body is
    /// never read, so its announced size costs nothing.
    Body,
    /// Not HTTP/1.0 or HTTP/1.1: 505.
    Version,
    /// Not a valid request head: 400.
    Malformed,
}

impl Refusal {
    /// The status code that answers this refusal (the server maps it with its counter reason).
    #[cfg(test)]
    pub fn status(self) -> u16 {
        match self {
            Refusal::TooLarge => 431,
            Refusal::Body => 413,
            Refusal::Version => 505,
            Refusal::Malformed => 400,
        }
    }
}

/// What the bytes received so far amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadResult<'a> {
    /// No complete head yet, and the bytes so far are within [`HEAD_MAX`]: read more.
    Partial,
    /// A complete head that took the first `len` bytes (what follows is the next request).
    Complete { head: Head<'a>, len: usize },
    /// Answer with the refusal's status and close.
    Refused(Refusal),
}

/// Parses the request head at the start of `buf`. Looks at no more than [`HEAD_MAX`] bytes,
/// allocates nothing, and never panics, whatever the bytes (the HTTP fuzz target holds it to
/// that). Bytes after a complete head are left alone: they are the next pipelined request.
pub fn parse_head(buf: &[u8]) -> HeadResult<'_> {
    let window = buf.get(..HEAD_MAX).unwrap_or(buf);
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if window.len() >= HEAD_MAX => {
            return HeadResult::Refused(Refusal::TooLarge)
        }
        Ok(httparse::Status::Partial) => return HeadResult::Partial,
        Err(httparse::Error::TooManyHeaders) => return HeadResult::Refused(Refusal::TooLarge),
        Err(httparse::Error::Version) => return HeadResult::Refused(Refusal::Version),
        Err(_) => return HeadResult::Refused(Refusal::Malformed),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        // httparse fills all three in a complete head; refuse rather than trust that blindly.
        return HeadResult::Refused(Refusal::Malformed);
    };
    let http11 = match version {
        1 => true,
        0 => false,
        _ => return HeadResult::Refused(Refusal::Version),
    };
    let mut close = false;
    let mut keep_alive = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return HeadResult::Refused(Refusal::Body);
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            match content_length_is_zero(h.value) {
                Some(true) => {}
                Some(false) => return HeadResult::Refused(Refusal::Body),
                None => return HeadResult::Refused(Refusal::Malformed),
            }
        }
        if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        _ => Method::Other,
    };
    HeadResult::Complete {
        head: Head {
            method,
            target,
            http11,
            keep_alive: !close && (http11 || keep_alive),
        },
        len,
    }
}

/// `Some(true)` for a length of zero (any number of `0` digits), `Some(false)` for any other
/// decimal length, however many digits (it is never converted, so 2^64-1 and longer are just
/// "not zero"), `None` when the value is not a decimal number.
fn content_length_is_zero(value: &[u8]) -> Option<bool> {
    let digits = value.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().all(|&d| d == b'0'))
}

/// The path of a request target: the part before any query (`/metrics?x=1` -> `/metrics`).
/// The absolute form that a proxy may send (`http://host:8123/metrics`, which servers must
/// accept, RFC 9112 3.2.2) names the same path.
pub fn path(target: &str) -> &str {
    let target = target.split_once('?').map_or(target, |(p, _)| p);
    let Some(rest) = strip_prefix_ignore_case(target, "http://")
        .or_else(|| strip_prefix_ignore_case(target, "https://"))
    else {
        return target;
    };
    rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/")
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (Head<'_>, usize) {
        match parse_head(buf) {
            HeadResult::Complete { head, len } => (head, len),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
        }
    }

    fn refused(buf: &[u8]) -> u16 {
        match parse_head(buf) {
            HeadResult::Refused(r) => r.status(),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
        }
    }

    #[test]
    fn a_get_is_complete_and_stops_at_its_own_end() {
        let req = b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\n";
        let (head, len) = complete(req);
        assert_eq!(head.method, Method::Get);
        assert_eq!(head.target, "/livez");
        assert!(head.http11 && head.keep_alive);
        assert_eq!(
            len, 32,
            "the pipelined request after the head is not consumed"
        );
    }

    #[test]
    fn partial_heads_ask_for_more() {
        for cut in 0..30 {
            let req = b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n";
            assert_eq!(parse_head(&req[..cut]), HeadResult::Partial, "cut at {cut}");
        }
    }

    #[test]
    fn keep_alive_rules_for_1_0_and_1_1() {
        let cases: [(&[u8], bool, bool); 6] = [
            (b"GET / HTTP/1.1\r\n\r\n", true, true),
            (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", true, false),
            (
                b"GET / HTTP/1.1\r\nconnection: Upgrade, CLOSE\r\n\r\n",
                true,
                false,
            ),
            (b"GET / HTTP/1.0\r\n\r\n", false, false),
            (
                b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
                false,
                true,
            ),
            (
                b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
                false,
                false,
            ),
        ];
        for (req, http11, keep_alive) in cases {
            let (head, _) = complete(req);
            assert_eq!(
                (head.http11, head.keep_alive),
                (http11, keep_alive),
                "{:?}",
                String::from_utf8_lossy(req)
            );
        }
    }

    #[test]
    fn methods_other_than_get_and_head_parse_as_other() {
        assert_eq!(complete(b"HEAD / HTTP/1.1\r\n\r\n").0.method, Method::Head);
        assert_eq!(complete(b"POST / HTTP/1.1\r\n\r\n").0.method, Method::Other);
        assert_eq!(complete(b"get / HTTP/1.1\r\n\r\n").0.method, Method::Other);
        let (head, _) = complete(b"OPTIONS * HTTP/1.1\r\n\r\n");
        assert_eq!((head.method, head.target), (Method::Other, "*"));
    }

    #[test]
    fn any_body_is_refused_with_413_without_reading_it() {
        assert_eq!(
            refused(b"GET /livez HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n"),
            413
        );
        assert_eq!(
            refused(b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999999999\r\n\r\n"),
            413
        );
        assert_eq!(
            refused(b"POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\n"),
            413
        );
        assert_eq!(
            refused(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            413
        );
        assert_eq!(
            refused(b"GET / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n"),
            413
        );
        // A zero length is no body.
        let (head, _) = complete(b"GET / HTTP/1.1\r\nContent-Length: 000\r\n\r\n");
        assert_eq!(head.target, "/");
        // Not a number: malformed.
        assert_eq!(
            refused(b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            400
        );
        assert_eq!(refused(b"GET / HTTP/1.1\r\nContent-Length: \r\n\r\n"), 400);
    }

    #[test]
    fn heads_over_the_limit_are_refused_with_431() {
        let mut long = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        long.resize(HEAD_MAX, b'a');
        assert_eq!(refused(&long), 431);
        long.resize(HEAD_MAX * 4, b'a');
        assert_eq!(refused(&long), 431);
        // One byte below the limit is still only partial.
        long.truncate(HEAD_MAX - 1);
        assert_eq!(parse_head(&long), HeadResult::Partial);
        // A head of exactly HEAD_MAX bytes is accepted.
        let mut exact = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        exact.resize(HEAD_MAX - 4, b'a');
        exact.extend_from_slice(b"\r\n\r\n");
        assert_eq!(complete(&exact).1, HEAD_MAX);
        // Too many fields.
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=HEADERS_MAX {
            many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(refused(&many), 431);
        // Endless empty lines before the request line are bounded too.
        assert_eq!(refused(&b"\r\n".repeat(HEAD_MAX)), 431);
    }

    #[test]
    fn other_versions_and_garbage_are_refused() {
        assert_eq!(refused(b"GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(refused(b"GET / HTTP/1.2\r\n\r\n"), 505);
        assert_eq!(refused(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505);
        assert_eq!(
            refused(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
            400
        );
        assert_eq!(refused(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"), 400);
        assert_eq!(refused(b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"), 400);
    }

    /// The invariants the server relies on, over mutated heads (the fuzz target goes further):
    /// a complete head never claims more than was given or more than the limit, and only a
    /// buffer below the limit is ever partial.
    #[test]
    fn mutated_heads_keep_the_invariants() {
        let seeds: [&[u8]; 3] = [
            b"GET /prometheus.report HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"HEAD / HTTP/1.0\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\nGET /",
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ];
        let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n as u64) as usize
        };
        for seed in seeds {
            for _ in 0..5000 {
                let mut buf = seed.to_vec();
                for _ in 0..1 + next(4) {
                    let at = next(buf.len() + 1);
                    match next(4) {
                        0 if at < buf.len() => buf[at] = next(256) as u8,
                        1 => buf.truncate(at),
                        2 => buf.insert(at, b"\r\n: \0\x80"[next(6)]),
                        _ => buf.extend(std::iter::repeat_n(b'a', next(3 * HEAD_MAX))),
                    }
                }
                match parse_head(&buf) {
                    HeadResult::Complete { len, .. } => {
                        assert!(len <= buf.len() && len <= HEAD_MAX, "{buf:?}")
                    }
                    HeadResult::Partial => assert!(buf.len() < HEAD_MAX, "{buf:?}"),
                    HeadResult::Refused(_) => {}
                }
            }
        }
    }

    #[test]
    fn query_strings_are_not_part_of_the_path() {
        assert_eq!(path("/metrics?x=1"), "/metrics");
        assert_eq!(path("/livez"), "/livez");
        assert_eq!(path("?"), "");
    }

    #[test]
    fn the_absolute_form_names_its_path() {
        assert_eq!(path("http://198.18.0.1:8123/metrics?x=1"), "/metrics");
        assert_eq!(path("HTTPS://node-1/livez"), "/livez");
        assert_eq!(path("http://node-1"), "/");
        assert_eq!(path("http://node-1?/livez"), "/");
        assert_eq!(path("http:/livez"), "http:/livez");
        assert_eq!(path("ftp://node-1/livez"), "ftp://node-1/livez");
        assert_eq!(path("*"), "*");
        assert_eq!(path("é"), "é");
    }
}
