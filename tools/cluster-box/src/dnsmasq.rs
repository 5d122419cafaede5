//! dnsmasq as the cluster DNS (a CoreDNS stand-in), started one way for every test: the
//! namespace cluster, the DNS tests and the image test. No upstreams, no hosts file, no pid
//! file; it answers only the zones and records it is given, and only on its own addresses.

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a server answers: its local zones and its host records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zone {
    /// Zones answered from the records alone: unknown names get NXDOMAIN (not REFUSED, which
    /// names outside every local zone get), e.g. `cluster.local`, `18.198.in-addr.arpa`.
    pub local: Vec<String>,
    /// Names and their addresses: A and AAAA records, and the PTR record of each address.
    pub records: Vec<(String, Vec<IpAddr>)>,
}

impl Zone {
    /// A zone answering `local` zones, with no records yet.
    pub fn new(local: &[&str]) -> Zone {
        Zone {
            local: local.iter().map(|z| z.to_string()).collect(),
            records: Vec::new(),
        }
    }

    /// Adds a name with its addresses.
    pub fn record(mut self, name: &str, addrs: &[IpAddr]) -> Zone {
        self.records.push((name.to_string(), addrs.to_vec()));
        self
    }
}

/// One dnsmasq process, in a namespace (by name) or in this one; stopped on drop.
pub struct Dnsmasq {
    ns: Option<String>,
    listen: Vec<IpAddr>,
    args: Vec<String>,
    child: Option<Child>,
}

impl Dnsmasq {
    /// A server for `zone` on UDP/TCP port 53 of `listen`, not started yet.
    pub fn new(ns: Option<&str>, listen: &[IpAddr], zone: &Zone) -> Dnsmasq {
        assert!(!listen.is_empty(), "dnsmasq needs an address to listen on");
        Dnsmasq {
            ns: ns.map(str::to_string),
            listen: listen.to_vec(),
            args: arguments(listen, zone),
            child: None,
        }
    }

    /// Restarts the server answering `zone` from now on (a server with stale or wrong
    /// records), or starts it if it was stopped.
    pub fn serve(&mut self, zone: &Zone) {
        self.stop();
        self.args = arguments(&self.listen, zone);
        self.start();
    }

    /// [`Dnsmasq::new`] and [`Dnsmasq::start`].
    pub fn spawn(ns: Option<&str>, listen: &[IpAddr], zone: &Zone) -> Dnsmasq {
        let mut d = Dnsmasq::new(ns, listen, zone);
        d.start();
        d
    }

    /// Starts dnsmasq unless it runs, and waits (up to 10 s) until it listens on every
    /// address: a test that queries at once must not see a server still binding.
    pub fn start(&mut self) {
        if self.child.is_some() {
            return;
        }
        let mut cmd = self.command(&["dnsmasq"]);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .expect("start dnsmasq (is it installed? run make setup)");
        self.child = Some(child);
        self.wait_listening(Duration::from_secs(10));
    }

    /// Kills dnsmasq: its addresses stop answering.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the process runs (it was started and not stopped, and has not exited).
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// `program args` in this server's namespace.
    fn command(&self, argv: &[&str]) -> Command {
        match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).args(argv);
                c
            }
            None => {
                let mut c = Command::new(argv[0]);
                c.args(&argv[1..]);
                c
            }
        }
    }

    fn wait_listening(&mut self, limit: Duration) {
        let want: Vec<String> = self
            .listen
            .iter()
            .map(|a| SocketAddr::new(*a, 53).to_string())
            .collect();
        let start = Instant::now();
        loop {
            let out = self.command(&["ss", "-lunH"]).output();
            let text = out
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let bound: Vec<&str> = text
                .lines()
                .filter_map(|l| l.split_whitespace().nth(3))
                .collect();
            if want.iter().all(|w| bound.contains(&w.as_str())) {
                return;
            }
            assert!(
                self.running(),
                "dnsmasq {:?} exited before listening on {want:?}",
                self.args
            );
            assert!(
                start.elapsed() < limit,
                "dnsmasq did not listen on {want:?} within {limit:?}; bound: {bound:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// dnsmasq's command line for `zone` on `listen`.
fn arguments(listen: &[IpAddr], zone: &Zone) -> Vec<String> {
    let mut args: Vec<String> = [
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--user=root",
        "--pid-file=",
        "--port=53",
    ]
    .map(String::from)
    .to_vec();
    args.extend(listen.iter().map(|a| format!("--listen-address={a}")));
    args.extend(zone.local.iter().map(|z| format!("--local=/{z}/")));
    for (name, addrs) in &zone.records {
        let addrs: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
        args.push(format!("--host-record={name},{}", addrs.join(",")));
    }
    args
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
    }
}
