//! DNS checks against real dnsmasq instances in a network namespace: direct queries to each
//! instance, NXDOMAIN, dead and silent instances, and the system resolver reading a pod-like
//! resolv.conf with a custom cluster domain.
//!
//! Addresses: 198.18.32.0/20 and 2001:db8:32::/48, one /24 (and /64) per test.

mod common;

use cluster_box::dnsmasq::{Dnsmasq, Zone};
use common::{ip, need_root, veth, Netns};
use k8s_network_test_daemonset::dns::{self, DnsError, QType};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DOMAIN: &str = "cluster.tst.local";
/// Set in the child process that runs the system-resolver part under `ip netns exec`.
const CHILD_ENV: &str = "NETTEST_DNS_CHILD";

/// The zone every instance serves (as CoreDNS instances all serve the same data).
fn zone(net: u8) -> Zone {
    let at = |host: u8| ip(&format!("198.18.{net}.{host}"));
    Zone::new(&[DOMAIN, &format!("{net}.18.198.in-addr.arpa")])
        .record(&format!("kube-dns.kube-system.svc.{DOMAIN}"), &[at(10)])
        .record(&format!("kubernetes.default.svc.{DOMAIN}"), &[at(11)])
        .record(
            &format!("coredns-a.kube-system.pod.{DOMAIN}"),
            &[at(53), ip(&format!("2001:db8:32:{net}::53"))],
        )
        .record(&format!("coredns-b.kube-system.pod.{DOMAIN}"), &[at(54)])
}

/// Removes /etc/netns/<ns>/ (the per-namespace resolv.conf) on drop.
struct EtcNetns(PathBuf);

impl EtcNetns {
    fn write_resolv_conf(ns: &Netns, text: &str) -> EtcNetns {
        let dir = PathBuf::from("/etc/netns").join(&ns.name);
        std::fs::create_dir_all(&dir).expect("create /etc/netns/<ns>");
        let guard = EtcNetns(dir);
        std::fs::write(guard.0.join("resolv.conf"), text).expect("write resolv.conf");
        guard
    }
}

impl Drop for EtcNetns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A client namespace and a server namespace on one link. The server holds `.10` (the DNS
/// service IP), `.53` and `.54` (two instances, the first also on IPv6) and `.99` (silent).
struct Lab {
    client: Netns,
    server: Netns,
    net: u8,
}

impl Lab {
    fn new(tag: &str, net: u8) -> Lab {
        let client = Netns::new(&format!("{tag}c"));
        let server = Netns::new(&format!("{tag}s"));
        let ip = |host: u8| format!("198.18.{net}.{host}/24");
        veth(
            &client,
            "dc0",
            &[&ip(1), &format!("2001:db8:32:{net}::1/64")],
            &server,
            "ds0",
            &[
                &ip(2),
                &ip(10),
                &ip(53),
                &ip(54),
                &ip(99),
                &format!("2001:db8:32:{net}::53/64"),
            ],
        );
        // .99 is a nameserver whose queries vanish: no reply, no ICMP error.
        server.exec(&[
            "iptables",
            "-A",
            "INPUT",
            "-d",
            &format!("198.18.{net}.99"),
            "-j",
            "DROP",
        ]);
        Lab {
            client,
            server,
            net,
        }
    }

    fn addr(&self, host: u8) -> String {
        format!("198.18.{}.{host}", self.net)
    }

    fn server_addr(&self, host: u8) -> SocketAddr {
        SocketAddr::new(ip(&self.addr(host)), 53)
    }

    /// A DNS instance on `listen`, answering once this returns.
    fn instance(&self, listen: &[String]) -> Dnsmasq {
        let addrs: Vec<IpAddr> = listen.iter().map(|a| ip(a)).collect();
        Dnsmasq::spawn(Some(&self.server.name), &addrs, &zone(self.net))
    }

    fn query(&self, server: SocketAddr, name: &str, qtype: QType) -> Result<Vec<String>, DnsError> {
        let name = name.to_string();
        self.client
            .run(move || dns::query(server, &name, qtype, Duration::from_secs(2)))
    }
}

#[test]
fn direct_queries_reach_each_instance() {
    if !need_root("direct_queries_reach_each_instance") {
        return;
    }
    let lab = Lab::new("dq", 33);
    let _a = lab.instance(&[lab.addr(53), format!("2001:db8:32:{}::53", lab.net)]);
    let _b = lab.instance(&[lab.addr(54)]);
    for host in [53, 54] {
        let server = lab.server_addr(host);
        let a = lab.query(
            server,
            &format!("kube-dns.kube-system.svc.{DOMAIN}."),
            QType::A,
        );
        assert_eq!(a, Ok(vec![lab.addr(10)]), "A from instance .{host}");
        let ptr = lab.query(server, &dns::reverse_name(server.ip()), QType::Ptr);
        let want = if host == 53 { "coredns-a" } else { "coredns-b" };
        assert_eq!(
            ptr,
            Ok(vec![format!("{want}.kube-system.pod.{DOMAIN}.")]),
            "PTR from instance .{host}"
        );
    }
    // Over IPv6, AAAA and the ip6.arpa PTR.
    let v6: IpAddr = format!("2001:db8:32:{}::53", lab.net).parse().unwrap();
    let server = SocketAddr::new(v6, 53);
    let aaaa = lab.query(
        server,
        &format!("coredns-a.kube-system.pod.{DOMAIN}"),
        QType::Aaaa,
    );
    assert_eq!(aaaa, Ok(vec![v6.to_string()]));
    let ptr = lab.query(server, &dns::reverse_name(v6), QType::Ptr);
    assert_eq!(
        ptr,
        Ok(vec![format!("coredns-a.kube-system.pod.{DOMAIN}.")])
    );
    // A name with only an A record has no AAAA.
    let none = lab.query(
        server,
        &format!("kubernetes.default.svc.{DOMAIN}."),
        QType::Aaaa,
    );
    assert_eq!(none, Err(DnsError::NoAnswer));
}

#[test]
fn unknown_cluster_name_is_nxdomain() {
    if !need_root("unknown_cluster_name_is_nxdomain") {
        return;
    }
    let lab = Lab::new("nx", 34);
    let _a = lab.instance(&[lab.addr(53)]);
    let got = lab.query(
        lab.server_addr(53),
        &format!("no-such-service.default.svc.{DOMAIN}."),
        QType::A,
    );
    assert_eq!(got, Err(DnsError::NxDomain));
    assert_eq!(DnsError::NxDomain.to_string(), "NXDOMAIN");
    // Outside the zones it serves, dnsmasq without upstreams refuses.
    let got = lab.query(lab.server_addr(53), "example.test.", QType::A);
    assert_eq!(got, Err(DnsError::Refused));
}

#[test]
fn dead_and_silent_instances_fail() {
    if !need_root("dead_and_silent_instances_fail") {
        return;
    }
    let lab = Lab::new("dd", 35);
    let mut a = lab.instance(&[lab.addr(53)]);
    let name = format!("kube-dns.kube-system.svc.{DOMAIN}.");
    assert!(lab.query(lab.server_addr(53), &name, QType::A).is_ok());
    a.stop();
    // A killed instance: the kernel answers "port unreachable", or nothing if rate-limited.
    let got = lab.query(lab.server_addr(53), &name, QType::A);
    assert!(
        matches!(
            got,
            Err(DnsError::Unreachable(_)) | Err(DnsError::Timeout(_))
        ),
        "{got:?}"
    );
    // An address that drops everything: a timeout, after about the timeout.
    let server = lab.server_addr(99);
    let start = Instant::now();
    let got = lab.client.run(move || {
        dns::query(
            server,
            "kube-dns.kube-system.svc.cluster.tst.local.",
            QType::A,
            Duration::from_millis(500),
        )
    });
    assert_eq!(got, Err(DnsError::Timeout(Duration::from_millis(500))));
    assert_eq!(got.unwrap_err().to_string(), "timeout after 500ms");
    assert!(start.elapsed() >= Duration::from_millis(500));
    assert!(start.elapsed() < Duration::from_secs(30), "sanity bound");
}

/// A hand-made server on `.53` that answers each query three times: first from another address
/// (`.54`), then with another ID, then properly. Only the last may be taken as the answer.
#[test]
fn replies_from_other_sources_or_ids_are_ignored() {
    if !need_root("replies_from_other_sources_or_ids_are_ignored") {
        return;
    }
    let lab = Lab::new("sp", 38);
    let (real, other) = (lab.server_addr(53), lab.server_addr(54));
    let answer = |host: u8| -> [u8; 4] { [198, 18, lab.net, host] };
    let (good, spoofed, wrong_id) = (answer(10), answer(66), answer(67));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            lab.server.run(move || {
                let sock = UdpSocket::bind(real).expect("bind .53");
                let side = UdpSocket::bind(other).expect("bind .54");
                sock.set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                ready_tx.send(()).unwrap();
                let mut buf = [0u8; 512];
                let (n, client) = sock.recv_from(&mut buf).expect("a query arrives");
                let query = &buf[..n];
                side.send_to(&reply(query, spoofed, 0), client).unwrap();
                sock.send_to(&reply(query, wrong_id, 1), client).unwrap();
                sock.send_to(&reply(query, good, 0), client).unwrap();
            })
        });
        ready_rx.recv().expect("server ready");
        let got = lab.query(
            real,
            &format!("kube-dns.kube-system.svc.{DOMAIN}."),
            QType::A,
        );
        assert_eq!(got, Ok(vec![lab.addr(10)]));
    });
}

/// A reply to `query` with one A record; `id_delta` makes its ID differ from the query's.
fn reply(query: &[u8], addr: [u8; 4], id_delta: u16) -> Vec<u8> {
    let mut r = query.to_vec();
    let id = u16::from_be_bytes([r[0], r[1]]).wrapping_add(id_delta);
    r[0..2].copy_from_slice(&id.to_be_bytes());
    r[2] |= 0x80; // QR
    r[7] = 1; // ANCOUNT
    r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
    r.extend_from_slice(&addr);
    r
}

/// Runs this test binary's `test` inside `ns` with `ip netns exec`, so that it sees the
/// namespace's /etc/netns/<ns>/resolv.conf as /etc/resolv.conf; panics with its output if it
/// fails.
fn run_child(ns: &Netns, test: &str, mode: &str, net: u8) {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{mode}:{net}"))
        .stdin(Stdio::null())
        .output()
        .expect("run child test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "child {test} ({mode}) failed:\n{text}"
    );
    assert!(
        text.contains("child checks passed"),
        "child did not run:\n{text}"
    );
}

#[test]
fn system_resolver_uses_pod_resolv_conf() {
    if !need_root("system_resolver_uses_pod_resolv_conf") {
        return;
    }
    let lab = Lab::new("sr", 36);
    // The DNS service IP (.10) and an instance (.53) both answer, like a Service and a pod.
    let _svc = lab.instance(&[lab.addr(10)]);
    let _a = lab.instance(&[lab.addr(53)]);
    let _etc = EtcNetns::write_resolv_conf(
        &lab.client,
        &format!(
            "search kube-system.svc.{DOMAIN} svc.{DOMAIN} {DOMAIN}\n\
             nameserver {}\noptions ndots:5 timeout:1 attempts:2\n",
            lab.addr(10)
        ),
    );
    run_child(&lab.client, "system_resolver_child", "ok", lab.net);

    // A namespace whose nameserver is silent: our timeout, not libc's, ends the lookup.
    let silent = Netns::new("srq");
    veth(
        &silent,
        "dq0",
        &["198.18.37.1/24"],
        &lab.server,
        "dq1",
        &["198.18.37.2/24", "198.18.37.99/24"],
    );
    lab.server.exec(&[
        "iptables",
        "-A",
        "INPUT",
        "-d",
        "198.18.37.99",
        "-j",
        "DROP",
    ]);
    let _etc2 = EtcNetns::write_resolv_conf(
        &silent,
        &format!("search svc.{DOMAIN}\nnameserver 198.18.37.99\noptions timeout:5 attempts:3\n"),
    );
    run_child(&silent, "system_resolver_child", "silent", 37);
}

/// The part of [`system_resolver_uses_pod_resolv_conf`] that runs under `ip netns exec`; a
/// plain `cargo test` run passes it without doing anything.
#[test]
fn system_resolver_child() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (mode, net) = mode.split_once(':').expect("mode:net");
    let net: u8 = net.parse().expect("net");
    let conf = std::fs::read_to_string("/etc/resolv.conf").expect("read /etc/resolv.conf");
    let domain = dns::cluster_domain(&conf).expect("cluster domain in resolv.conf");
    assert_eq!(domain, DOMAIN);
    let t = Duration::from_secs(3);
    match mode {
        "ok" => {
            assert_eq!(
                dns::nameservers(&conf),
                vec![format!("198.18.{net}.10").parse::<IpAddr>().unwrap()]
            );
            let [kube_dns_name, api_name] = dns::forward_names(&domain);
            let kube_dns = dns::system_forward(&kube_dns_name, t);
            assert_eq!(
                kube_dns,
                Ok(vec![format!("198.18.{net}.10").parse().unwrap()])
            );
            let api = dns::system_forward(&api_name, t);
            assert_eq!(api, Ok(vec![format!("198.18.{net}.11").parse().unwrap()]));
            let svc_ptr = dns::system_reverse(format!("198.18.{net}.10").parse().unwrap(), t);
            assert_eq!(svc_ptr, Ok(format!("kube-dns.kube-system.svc.{domain}")));
            let inst_ptr = dns::system_reverse(format!("198.18.{net}.53").parse().unwrap(), t);
            assert_eq!(inst_ptr, Ok(format!("coredns-a.kube-system.pod.{domain}")));
            // No PTR: an error, not the address echoed back.
            let none = dns::system_reverse(format!("198.18.{net}.77").parse().unwrap(), t);
            assert!(none.is_err(), "{none:?}");
            let missing = dns::system_forward(&format!("nope.default.svc.{domain}."), t);
            assert_eq!(missing, Err(DnsError::NxDomain));
        }
        "silent" => {
            let t = Duration::from_millis(800);
            let start = Instant::now();
            let got = dns::system_forward(&format!("kube-dns.kube-system.svc.{domain}."), t);
            assert_eq!(got, Err(DnsError::Timeout(t)));
            let got = dns::system_reverse("198.18.37.2".parse().unwrap(), t);
            assert_eq!(got, Err(DnsError::Timeout(t)));
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "libc's 15 s did not apply"
            );
        }
        other => panic!("unknown child mode {other}"),
    }
    println!("child checks passed");
}
