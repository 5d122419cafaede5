//! Forwards a local TCP port (in the caller's namespace, e.g. 127.0.0.1 on the host) to an
//! address inside a cluster namespace: how `make demo` shows Prometheus and the agents on
//! localhost without routing the host into the cluster network.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A running forwarder; stops accepting when dropped.
pub struct Forward {
    pub local: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Forward {
    /// Listens on `local` here and connects each client to `remote` from inside `ns`.
    pub fn start(local: SocketAddr, ns: &str, remote: SocketAddr) -> io::Result<Forward> {
        let listener = TcpListener::bind(local)?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let ns = ns.to_string();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let ns = ns.clone();
                        std::thread::spawn(move || {
                            let _ = client.set_nonblocking(false);
                            let upstream = crate::netns::run_in(&ns, move || {
                                TcpStream::connect_timeout(&remote, Duration::from_secs(3))
                            });
                            if let Ok(up) = upstream {
                                pipe(client, up);
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        });
        Ok(Forward { local, stop })
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Copies both ways until either side closes.
fn pipe(a: TcpStream, b: TcpStream) {
    let (Ok(mut a2), Ok(mut b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    let t = std::thread::spawn(move || {
        let _ = io::copy(&mut a2, &mut b2);
        let _ = b2.shutdown(Shutdown::Write);
    });
    let (mut a, mut b) = (a, b);
    let _ = io::copy(&mut b, &mut a);
    let _ = a.shutdown(Shutdown::Write);
    let _ = t.join();
}
