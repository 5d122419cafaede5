//! Newline-delimited JSON frames of a watch stream, each at most a cap long: a line that
//! grows past the cap is an error, not an out-of-memory. Pure over any `Read`.

use std::io::Read;

/// Why the stream gave no next line.
#[derive(Debug)]
pub enum LineError {
    /// A line longer than the cap (the bytes read so far are dropped).
    TooLong { limit: usize },
    /// The stream ended in the middle of a line: it was cut.
    Truncated { bytes: usize },
    /// The read itself failed (timeout, reset, TLS).
    Io(std::io::Error),
}

/// Reads lines of at most `limit` bytes from `inner`.
pub struct Lines<R> {
    inner: R,
    buf: Vec<u8>,
    /// Start of the next unread byte in `buf`.
    start: usize,
    limit: usize,
}

impl<R: Read> Lines<R> {
    pub fn new(inner: R, limit: usize) -> Lines<R> {
        Lines {
            inner,
            buf: Vec::with_capacity(16 * 1024),
            start: 0,
            limit,
        }
    }

    /// The next line without its `\n` (blank lines skipped); `Ok(None)` at a clean end.
    pub fn next_line(&mut self) -> Result<Option<Vec<u8>>, LineError> {
        loop {
            let pending = self.buf.get(self.start..).unwrap_or(&[]);
            if let Some(i) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.get(..i).unwrap_or(&[]).to_vec();
                self.start = self.start.saturating_add(i + 1);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(line));
            }
            if pending.len() > self.limit {
                self.buf.clear();
                self.start = 0;
                return Err(LineError::TooLong { limit: self.limit });
            }
            // Keep only the unread part, then read more.
            self.buf.drain(..self.start.min(self.buf.len()));
            self.start = 0;
            let mut chunk = [0u8; 16 * 1024];
            let n = self.inner.read(&mut chunk).map_err(LineError::Io)?;
            if n == 0 {
                let left = self.buf.iter().filter(|b| !b.is_ascii_whitespace()).count();
                return if left == 0 {
                    Ok(None)
                } else {
                    Err(LineError::Truncated {
                        bytes: self.buf.len(),
                    })
                };
            }
            self.buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out its bytes a few at a time, as a network does.
    struct Drip<'a>(&'a [u8], usize);

    impl Read for Drip<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(self.0.len()).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn lines_across_reads() {
        let text = b"{\"a\":1}\n\n{\"b\":2}\n  \n{\"c\":3}\n";
        for step in [1, 3, 64] {
            let mut l = Lines::new(Drip(text, step), 100);
            assert_eq!(l.next_line().unwrap().unwrap(), b"{\"a\":1}");
            assert_eq!(l.next_line().unwrap().unwrap(), b"{\"b\":2}");
            assert_eq!(l.next_line().unwrap().unwrap(), b"{\"c\":3}");
            assert!(l.next_line().unwrap().is_none());
        }
    }

    #[test]
    fn a_cut_line_and_an_endless_line() {
        let mut l = Lines::new(Drip(b"{\"a\":1}\n{\"b\":", 4), 100);
        assert!(l.next_line().unwrap().is_some());
        assert!(matches!(
            l.next_line(),
            Err(LineError::Truncated { bytes: 5 })
        ));
        let long = vec![b'x'; 10_000];
        let mut l = Lines::new(Drip(&long, 1000), 4096);
        assert!(matches!(
            l.next_line(),
            Err(LineError::TooLong { limit: 4096 })
        ));
        // Memory stays near the cap: the buffer never holds much more than the limit.
        assert!(l.buf.capacity() < 64 * 1024);
    }
}
