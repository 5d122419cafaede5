//! Responses: a status and body chunks that point at memory rendered earlier (a round's
//! metrics text is shared, never copied per request), and the writer that sends one response
//! over a non-blocking socket, resuming where the last write stopped.

use std::io::{self, IoSlice, Write};
use std::sync::Arc;

use super::stats::Status;

/// A piece of a response body.
#[derive(Debug, Clone)]
pub enum Chunk {
    Static(&'static [u8]),
    Shared(Arc<[u8]>),
    Owned(Vec<u8>),
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        match self {
            Chunk::Static(b) => b,
            Chunk::Shared(b) => b,
            Chunk::Owned(b) => b,
        }
    }
}

/// What a request gets: status, content type and the body in chunks.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: Status,
    pub content_type: &'static str,
    pub body: Vec<Chunk>,
}

/// `Content-Type` of plain text answers.
pub const TEXT: &str = "text/plain; charset=utf-8";

impl Reply {
    pub fn new(status: Status, content_type: &'static str, body: Vec<Chunk>) -> Reply {
        Reply {
            status,
            content_type,
            body,
        }
    }

    /// A short plain-text answer.
    pub fn text(status: Status, body: &'static str) -> Reply {
        Reply::new(status, TEXT, vec![Chunk::Static(body.as_bytes())])
    }

    /// The answer to a refused or timed-out request head.
    pub fn refusal(status: Status) -> Reply {
        let body: &'static str = match status {
            Status::RequestTimeout => "request head not received in time\n",
            Status::ContentTooLarge => "request bodies are not accepted\n",
            Status::HeaderFieldsTooLarge => "request head too large\n",
            Status::VersionNotSupported => "HTTP/1.0 and HTTP/1.1 only\n",
            _ => "bad request\n",
        };
        Reply::text(status, body)
    }

    /// The body's length in bytes (also what a HEAD request is told).
    pub fn body_len(&self) -> usize {
        self.body
            .iter()
            .fold(0usize, |n, c| n.saturating_add(c.as_ref().len()))
    }

    /// The body in one piece, for tests.
    #[cfg(test)]
    pub fn body_bytes(&self) -> Vec<u8> {
        self.body.iter().flat_map(|c| c.as_ref()).copied().collect()
    }
}

/// The status line and headers of a response: every response has `Content-Length`, and says
/// whether the connection stays open.
pub fn head(
    status: Status,
    content_type: &str,
    content_length: usize,
    keep_alive: bool,
) -> Vec<u8> {
    let allow = if status == Status::MethodNotAllowed {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let connection = if keep_alive { "keep-alive" } else { "close" };
    format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nContent-Length: {content_length}\r\n{allow}Connection: {connection}\r\n\r\n",
        status.code(),
        status.reason()
    )
    .into_bytes()
}

/// A response being written: the head, then the body chunks (none for HEAD requests).
#[derive(Debug)]
pub struct Outgoing {
    chunks: Vec<Chunk>,
    sent: usize,
}

impl Outgoing {
    /// The bytes to send for `reply`; `with_body` is false for HEAD requests, which get the
    /// GET's headers, `Content-Length` included, and no body.
    pub fn new(reply: Reply, with_body: bool, keep_alive: bool) -> Outgoing {
        let head = head(
            reply.status,
            reply.content_type,
            reply.body_len(),
            keep_alive,
        );
        let mut chunks = Vec::with_capacity(1 + reply.body.len());
        chunks.push(Chunk::Owned(head));
        if with_body {
            chunks.extend(reply.body);
        }
        Outgoing { chunks, sent: 0 }
    }

    /// Writes what the socket takes now; `Ok(true)` once everything is written, `Ok(false)`
    /// when the socket would block first.
    pub fn write_to(&mut self, w: &mut impl Write) -> io::Result<bool> {
        loop {
            let mut skip = self.sent;
            let mut slices: [IoSlice<'_>; 4] = [IoSlice::new(&[]); 4];
            let mut n_slices = 0;
            for chunk in &self.chunks {
                let bytes = chunk.as_ref();
                if skip >= bytes.len() {
                    skip -= bytes.len();
                    continue;
                }
                let rest = bytes.get(skip..).unwrap_or_default();
                skip = 0;
                if let Some(slot) = slices.get_mut(n_slices) {
                    *slot = IoSlice::new(rest);
                    n_slices += 1;
                } else {
                    break;
                }
            }
            let Some(pending) = slices.get(..n_slices).filter(|s| !s.is_empty()) else {
                return Ok(true);
            };
            match w.write_vectored(pending) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent = self.sent.saturating_add(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `step` bytes a call and then would block after `budget`.
    struct Trickle {
        out: Vec<u8>,
        step: usize,
        budget: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.step).min(self.budget);
            self.out.extend_from_slice(&buf[..n]);
            self.budget -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn reply() -> Reply {
        Reply::new(
            Status::Ok,
            TEXT,
            vec![
                Chunk::Static(b"hello "),
                Chunk::Shared(Arc::from(&b"shared "[..])),
                Chunk::Owned(b"world\n".to_vec()),
            ],
        )
    }

    #[test]
    fn a_response_resumes_where_the_socket_stopped_taking_bytes() {
        let mut out = Outgoing::new(reply(), true, true);
        let mut w = Trickle {
            out: Vec::new(),
            step: 3,
            budget: 10,
        };
        assert!(!out.write_to(&mut w).unwrap());
        w.budget = usize::MAX;
        assert!(out.write_to(&mut w).unwrap());
        // Nothing more to write.
        assert!(out.write_to(&mut w).unwrap());
        let text = String::from_utf8(w.out).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 19\r\n\
             Connection: keep-alive\r\n\r\nhello shared world\n"
        );
    }

    #[test]
    fn head_requests_get_the_get_length_and_no_body() {
        let mut out = Outgoing::new(reply(), false, false);
        let mut w = Trickle {
            out: Vec::new(),
            step: 1000,
            budget: usize::MAX,
        };
        assert!(out.write_to(&mut w).unwrap());
        let text = String::from_utf8(w.out).unwrap();
        assert!(text.contains("Content-Length: 19\r\n"), "{text}");
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn method_not_allowed_says_what_is() {
        let h = String::from_utf8(head(Status::MethodNotAllowed, TEXT, 3, true)).unwrap();
        assert!(h.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(h.contains("\r\nAllow: GET, HEAD\r\n"));
    }

    #[test]
    fn many_chunks_are_written_in_batches() {
        let body: Vec<Chunk> = (0..10).map(|_| Chunk::Static(b"0123456789")).collect();
        let mut out = Outgoing::new(Reply::new(Status::Ok, TEXT, body), true, true);
        let mut w = Trickle {
            out: Vec::new(),
            step: usize::MAX,
            budget: usize::MAX,
        };
        assert!(out.write_to(&mut w).unwrap());
        assert!(String::from_utf8(w.out)
            .unwrap()
            .ends_with(&"0123456789".repeat(10)));
    }
}
