//! The one system call std does not wrap: `poll(2)` over the listener and every connection.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

pub use libc::{POLLIN, POLLOUT};

/// A poll set rebuilt each turn of the loop.
#[derive(Default)]
pub struct PollSet {
    fds: Vec<libc::pollfd>,
}

impl PollSet {
    pub fn clear(&mut self) {
        self.fds.clear();
    }

    /// Adds `fd` with the events wanted; returns its slot.
    pub fn push(&mut self, fd: &impl AsRawFd, events: i16) -> usize {
        self.fds.push(libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        });
        self.fds.len() - 1
    }

    /// Adds a slot that poll skips (a negative fd), keeping the slot numbering.
    pub fn push_ignored(&mut self) {
        self.fds.push(libc::pollfd {
            fd: -1,
            events: 0,
            revents: 0,
        });
    }

    /// The events that happened on slot `i` in the last [`PollSet::wait`] (0 for none).
    pub fn revents(&self, i: usize) -> i16 {
        self.fds.get(i).map_or(0, |p| p.revents)
    }

    /// Waits until an fd is ready or `timeout` passes (rounded up to whole milliseconds, so
    /// a deadline a few microseconds away does not spin). `EINTR` counts as nothing ready.
    pub fn wait(&mut self, timeout: Duration) -> io::Result<usize> {
        let micros = timeout.as_micros();
        let ms = i32::try_from(micros.div_ceil(1000)).unwrap_or(i32::MAX);
        let nfds = libc::nfds_t::try_from(self.fds.len()).unwrap_or(libc::nfds_t::MAX);
        // SAFETY: `fds` is a live, exclusively borrowed Vec of initialised pollfd structs and
        // `nfds` is at most its length; poll writes only the `revents` fields within it.
        let rc = unsafe { libc::poll(self.fds.as_mut_ptr(), nfds, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(e);
        }
        Ok(usize::try_from(rc).unwrap_or(0))
    }
}
