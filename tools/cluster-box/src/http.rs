//! Plain HTTP/1.0 requests from inside a namespace: the test process lives outside the
//! cluster network, so requests are made on a thread that has entered one of its namespaces.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response: status code, header fields and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header fields in the order received (names as sent).
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The value of header `name` (any case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// GETs `path` from `addr`, connecting from inside the namespace named `ns`; `Err` on any connection problem.
pub fn get(ns: &str, addr: SocketAddr, path: &str) -> Result<Response, String> {
    request(ns, addr, "GET", path)
}

/// Sends `method path` (no body) to `addr` from inside the namespace named `ns`.
pub fn request(ns: &str, addr: SocketAddr, method: &str, path: &str) -> Result<Response, String> {
    let (method, path) = (method.to_string(), path.to_string());
    crate::netns::run_in(ns, move || request_here(addr, &method, &path))
}

/// GETs from the current thread's namespace.
pub fn get_here(addr: SocketAddr, path: &str) -> Result<Response, String> {
    request_here(addr, "GET", path)
}

/// Sends `method path` (no body) from the current thread's namespace and reads the response
/// until the server closes the connection (HTTP/1.0 without keep-alive).
pub fn request_here(addr: SocketAddr, method: &str, path: &str) -> Result<Response, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(s, "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("read {addr}{path}: {e}"))?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no header end in response from {addr}{path}"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line from {addr}{path}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: body.to_string(),
    })
}

/// Percent-encodes a query parameter value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
