//! A bounded HTTP GET over plain TCP, for what agents fetch from each other (`/summary.json`)
//! and what the `matrix` command asks its local agent (`/matrix.json`): one deadline for the
//! whole exchange, a cap on the bytes read, `Connection: close`. No thread, no resolver: the
//! address is always an IP the caller already has. The response is parsed by
//! [`parse_response`] (pure; httparse reads the head), which the fuzz target calls too.

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The largest response head read.
pub const MAX_HEAD: usize = 8 * 1024;

/// Why a fetch failed; `Display` is a short line for a grey row or a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The TCP connection could not be made.
    Connect(String),
    /// No complete answer within the deadline.
    Timeout,
    /// Reading or writing failed after connecting.
    Io(String),
    /// An answer other than 200.
    Status(u16),
    /// More than the cap (head or body).
    TooLarge(usize),
    /// Not an HTTP response, or the connection closed before the body was complete.
    Malformed(String),
}

impl FetchError {
    /// A stable one-word label.
    pub fn reason(&self) -> &'static str {
        match self {
            FetchError::Connect(_) => "connect",
            FetchError::Timeout => "timeout",
            FetchError::Io(_) => "io",
            FetchError::Status(_) => "status",
            FetchError::TooLarge(_) => "too-large",
            FetchError::Malformed(_) => "malformed",
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Connect(e) => write!(f, "cannot connect: {e}"),
            FetchError::Timeout => f.write_str("no answer in time"),
            FetchError::Io(e) => write!(f, "connection failed: {e}"),
            FetchError::Status(404) => {
                f.write_str("answered 404 (an agent too old to have a summary)")
            }
            FetchError::Status(code) => write!(f, "answered {code}"),
            FetchError::TooLarge(cap) => write!(f, "answer larger than {cap} bytes"),
            FetchError::Malformed(e) => write!(f, "not an HTTP answer: {e}"),
        }
    }
}

impl std::error::Error for FetchError {}

/// GETs `path` from `addr` within `timeout` (connect to last byte); the body of a 200 of at
/// most `max_body` bytes.
pub fn get(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
    max_body: usize,
) -> Result<Vec<u8>, FetchError> {
    let deadline = Instant::now() + timeout;
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => FetchError::Timeout,
        _ => FetchError::Connect(e.to_string()),
    })?;
    let left = |d: Instant| {
        let t = d.saturating_duration_since(Instant::now());
        (!t.is_zero()).then_some(t).ok_or(FetchError::Timeout)
    };
    s.set_write_timeout(Some(left(deadline)?)).map_err(io)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: k8s-network-test-daemonset/{}\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    s.write_all(request.as_bytes()).map_err(io)?;
    let cap = MAX_HEAD.saturating_add(max_body);
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        s.set_read_timeout(Some(left(deadline)?)).map_err(io)?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                if buf.len() > cap {
                    return Err(FetchError::TooLarge(max_body));
                }
                // Stop as soon as the announced body is complete (a server that keeps the
                // connection open despite `Connection: close` costs no wait).
                if let Ok(Some(body)) = complete_body(&buf, max_body) {
                    return Ok(body.to_vec());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(FetchError::Timeout)
            }
            Err(e) => return Err(io(e)),
        }
    }
    parse_response(&buf, max_body).map(<[u8]>::to_vec)
}

fn io(e: std::io::Error) -> FetchError {
    FetchError::Io(e.to_string())
}

/// The body of a complete 200 response with a `Content-Length`, once all of it is there;
/// `Ok(None)` while more is to come (or the length is only known at the close).
fn complete_body(buf: &[u8], max_body: usize) -> Result<Option<&[u8]>, FetchError> {
    let Some((head_len, status, length)) = head(buf)? else {
        return Ok(None);
    };
    let Some(length) = length else {
        return Ok(None);
    };
    if status != 200 {
        return Err(FetchError::Status(status));
    }
    if length > max_body {
        return Err(FetchError::TooLarge(max_body));
    }
    let body = buf.get(head_len..).unwrap_or_default();
    Ok(body.get(..length).filter(|b| b.len() == length))
}

/// Reads the head: `(head length, status, Content-Length)`, `None` while incomplete.
fn head(buf: &[u8]) -> Result<Option<(usize, u16, Option<usize>)>, FetchError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    let window = buf.get(..MAX_HEAD).unwrap_or(buf);
    match r.parse(window) {
        Ok(httparse::Status::Complete(len)) => {
            let status = r
                .code
                .ok_or_else(|| FetchError::Malformed("no status".into()))?;
            let mut length = None;
            for h in r.headers.iter() {
                if h.name.eq_ignore_ascii_case("content-length") {
                    let n = std::str::from_utf8(h.value)
                        .ok()
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .ok_or_else(|| FetchError::Malformed("bad Content-Length".into()))?;
                    if length.is_some_and(|l| l != n) {
                        return Err(FetchError::Malformed("two Content-Lengths".into()));
                    }
                    length = Some(n);
                }
                if h.name.eq_ignore_ascii_case("transfer-encoding") {
                    return Err(FetchError::Malformed("chunked answers are not read".into()));
                }
            }
            Ok(Some((len, status, length)))
        }
        Ok(httparse::Status::Partial) if window.len() >= MAX_HEAD => {
            Err(FetchError::TooLarge(MAX_HEAD))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(FetchError::Malformed(e.to_string())),
    }
}

/// The body of a whole response read until the connection closed: a 200 whose body is
/// complete (its `Content-Length`, or everything after the head) and at most `max_body`.
pub fn parse_response(buf: &[u8], max_body: usize) -> Result<&[u8], FetchError> {
    let (head_len, status, length) =
        head(buf)?.ok_or_else(|| FetchError::Malformed("closed before the head ended".into()))?;
    if status != 200 {
        return Err(FetchError::Status(status));
    }
    let body = buf.get(head_len..).unwrap_or_default();
    let body = match length {
        Some(l) if l > max_body => return Err(FetchError::TooLarge(max_body)),
        Some(l) => body
            .get(..l)
            .ok_or_else(|| FetchError::Malformed("closed before the body ended".into()))?,
        None => body,
    };
    if body.len() > max_body {
        return Err(FetchError::TooLarge(max_body));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn responses_are_read_by_their_length_and_refused_beyond_the_cap() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse_response(ok, 5), Ok(&b"hello"[..]));
        assert_eq!(parse_response(ok, 4), Err(FetchError::TooLarge(4)));
        let until_close = b"HTTP/1.0 200 OK\r\n\r\nabc";
        assert_eq!(parse_response(until_close, 10), Ok(&b"abc"[..]));
        assert_eq!(parse_response(until_close, 2), Err(FetchError::TooLarge(2)));
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc";
        assert!(matches!(
            parse_response(short, 100),
            Err(FetchError::Malformed(_))
        ));
        let missing = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(parse_response(missing, 100), Err(FetchError::Status(404)));
        assert!(FetchError::Status(404).to_string().contains("too old"));
        for bad in [
            &b""[..],
            b"SSH-2.0-OpenSSH\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
        ] {
            assert!(parse_response(bad, 100).is_err(), "{bad:?}");
        }
        let huge_head = [b"HTTP/1.1 200 OK\r\nX: ".as_slice(), &[b'a'; MAX_HEAD]].concat();
        assert_eq!(
            parse_response(&huge_head, 100),
            Err(FetchError::TooLarge(MAX_HEAD))
        );
    }

    /// A server on loopback that answers with `answer` (and then holds the connection
    /// `hold` long before closing).
    fn serve(answer: &'static [u8], hold: Duration) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut req = [0u8; 1024];
                let _ = s.read(&mut req);
                let _ = s.write_all(answer);
                std::thread::sleep(hold);
            }
        });
        addr
    }

    #[test]
    fn a_get_ends_with_the_announced_body_or_the_deadline() {
        let t = Duration::from_secs(5);
        // The body is complete: no need to wait for the close.
        let addr = serve(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
            Duration::from_secs(30),
        );
        let started = Instant::now();
        assert_eq!(get(addr, "/summary.json", t, 100), Ok(b"hi".to_vec()));
        assert!(started.elapsed() < Duration::from_secs(4));
        // A server that never finishes: the deadline ends the fetch.
        let addr = serve(
            b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nhi",
            Duration::from_secs(30),
        );
        assert_eq!(
            get(addr, "/", Duration::from_millis(300), 100),
            Err(FetchError::Timeout)
        );
        // Nothing listening.
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let e = get(closed, "/", t, 100).unwrap_err();
        assert_eq!(e.reason(), "connect", "{e}");
    }
}
