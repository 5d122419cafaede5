//! Network namespaces that live as long as their guard, and the commands to wire them.
//!
//! Tests use only 198.18.0.0/15 and 2001:db8::/32, inside namespaces they create here; the
//! [`Netns`] guard deletes its namespace (and kills what runs in it) on drop, also on panic.

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Whether root-only tests can run. Outside CI a non-root run skips with a message; in CI
/// (`CI` set) a test that cannot run fails instead of skipping.
pub fn need_root(test: &str) -> bool {
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: needs root to create network namespaces, and CI must run it");
    }
    eprintln!("{test}: skipped, needs root (run `sudo make test` to include it)");
    false
}

/// Runs a command, panicking with its output when it fails.
pub fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A network namespace that lives as long as this guard.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `nt<pid>-<n>-<tag>` with loopback up. Names stay under 15 chars for links.
    pub fn new(tag: &str) -> Netns {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("nt{}-{}-{}", std::process::id(), n, tag);
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) -> Output {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// Runs a command inside the namespace and waits for it.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut v = vec!["ip", "netns", "exec", &self.name];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// A `Command` that runs inside the namespace (spawn it yourself).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `f` on a new thread that has entered this namespace: sockets it opens live there.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        run_in(&self.name, f)
    }
}

/// Runs `f` on a new thread that has entered the named namespace, and returns its result.
pub fn run_in<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{name}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open netns");
        use std::os::fd::AsRawFd;
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("thread in netns panicked")
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Connects two namespaces with a veth pair and gives each end its addresses (CIDR form,
/// e.g. `198.18.0.1/24`, `2001:db8::1/64`). IPv6 DAD is off so addresses work at once.
pub fn veth(a: &Netns, a_if: &str, a_addrs: &[&str], b: &Netns, b_if: &str, b_addrs: &[&str]) {
    sh(&[
        "ip", "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
        &b.name,
    ]);
    for (ns, ifname, addrs) in [(a, a_if, a_addrs), (b, b_if, b_addrs)] {
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"]);
        ns.exec(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{ifname}.accept_dad=0"),
        ]);
        for addr in addrs {
            let mut args = vec!["addr", "add", addr, "dev", ifname];
            if addr.contains(':') {
                args.push("nodad");
            }
            ns.ip(&args);
        }
        ns.ip(&["link", "set", ifname, "up"]);
    }
}

/// Adds every address of `addrs` (each /32 or /128) to interface `dev` of `ns` (e.g. `lo`;
/// this kernel has no dummy interfaces): the kernel answers ICMP echo for local addresses, so
/// thousands of pods and nodes answer from one namespace without a process each. One
/// `ip -batch` run, not one process per address.
pub fn add_addresses(ns: &Netns, dev: &str, addrs: &[std::net::IpAddr]) {
    use std::io::Write;
    let mut batch = String::new();
    for a in addrs {
        let (len, extra) = if a.is_ipv4() {
            (32, "")
        } else {
            (128, " nodad")
        };
        batch.push_str(&format!("address add {a}/{len} dev {dev}{extra}\n"));
    }
    let mut child = Command::new("ip")
        .args(["-n", &ns.name, "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run ip -batch: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(batch.as_bytes())
            .expect("write ip -batch input");
    }
    let out = child.wait_with_output().expect("wait for ip -batch");
    assert!(
        out.status.success(),
        "ip -batch adding {} addresses to {dev}: {}",
        addrs.len(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A TCP port in a namespace that accepts every connection and closes it at once: the agents'
/// port where no agent runs (addresses standing in for pods), for the `pod-tcp` checks, which
/// only make a handshake. Listens on the wildcard address, so it answers for every local
/// address of the namespace; stops when dropped.
pub struct Acceptor {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Acceptor {
    /// Listens on `port` of every IPv4 address of namespace `ns`.
    pub fn start(ns: &str, port: u16) -> Acceptor {
        use socket2::{Domain, Socket, Type};
        use std::sync::atomic::Ordering;
        let listener = run_in(ns, move || -> std::io::Result<std::net::TcpListener> {
            let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
            s.set_reuse_address(true)?;
            let any = std::net::SocketAddr::from(([0, 0, 0, 0], port));
            s.bind(&any.into())?;
            // Room for a whole round's handshakes arriving at once.
            s.listen(4096)?;
            s.set_nonblocking(true)?;
            Ok(s.into())
        })
        .expect("listen in the namespace");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                if listener.accept().is_err() {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        });
        Acceptor {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
