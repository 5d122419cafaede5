//! The box itself works: every pod reaches every pod, node and DNS server, names resolve
//! through each pod's resolv.conf, and dropping the cluster leaves nothing behind.
use cluster_box::{host_ip, need_root, sh, Cluster, Spec, DNS_SERVICE_IP};

fn netns_list() -> String {
    String::from_utf8(sh(&["ip", "netns", "list"]).stdout).unwrap()
}

#[test]
fn cluster_routes_resolves_and_cleans_up() {
    if !need_root("cluster_routes_resolves_and_cleans_up") {
        return;
    }
    let names: Vec<String>;
    {
        let c = Cluster::build(Spec {
            nodes: 3,
            ..Spec::default()
        });
        names = c.agents.iter().map(|p| p.ns.name.clone()).collect();
        let mut targets: Vec<String> = c.agents.iter().map(|p| p.ip.to_string()).collect();
        targets.extend((0..3).map(|i| host_ip(i).to_string()));
        targets.extend(c.dns.iter().map(|d| d.pod.ip.to_string()));
        targets.push(DNS_SERVICE_IP.to_string());
        for agent in &c.agents {
            let mut args = vec!["fping", "-r1", "-t500"];
            args.extend(targets.iter().map(String::as_str));
            agent.ns.exec(&args);
        }
        let out = c.agents[2].ns.exec(&[
            "getent",
            "hosts",
            "kubernetes.default.svc.cluster.tst.local.",
        ]);
        assert!(String::from_utf8_lossy(&out.stdout).contains("198.19.250.1"));
        let out = c.agents[1].ns.exec(&["getent", "hosts", "198.19.250.10"]);
        assert!(String::from_utf8_lossy(&out.stdout)
            .contains("kube-dns.kube-system.svc.cluster.tst.local"));
        // A pulled cable: node 2 unreachable from node 1's pod.
        c.set_node_link(2, false);
        let unreachable = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &c.agents[1].ns.name,
                "fping",
                "-q",
                "-r0",
                "-t300",
            ])
            .arg(host_ip(2).to_string())
            .status()
            .unwrap();
        assert!(!unreachable.success());
    }
    let list = netns_list();
    for n in names {
        assert!(!list.contains(&n), "{n} left behind");
        assert!(!std::path::Path::new("/etc/netns").join(&n).exists());
    }
}

/// A dual-stack box: every pod reaches every pod, node and DNS server over IPv6 too, the DNS
/// servers answer AAAA and IPv6 reverse lookups, and blocking IPv6 at one node cuts only
/// IPv6 to it.
#[test]
fn dual_stack_cluster_routes_both_families() {
    if !need_root("dual_stack_cluster_routes_both_families") {
        return;
    }
    let c = Cluster::build(Spec {
        nodes: 3,
        dual_stack: true,
        ..Spec::default()
    });
    let mut targets: Vec<String> = Vec::new();
    for p in &c.agents {
        targets.extend(p.ips().iter().map(ToString::to_string));
    }
    for n in &c.nodes {
        targets.extend(n.host_ips().iter().map(ToString::to_string));
    }
    for d in &c.dns {
        targets.extend(d.pod.ips().iter().map(ToString::to_string));
    }
    targets.extend(c.service.pod.ips().iter().map(ToString::to_string));
    assert_eq!(targets.len(), 2 * (3 + 3 + 2 + 1));
    for agent in &c.agents {
        let mut args = vec!["fping", "-r2", "-t1000"];
        args.extend(targets.iter().map(String::as_str));
        agent.ns.exec(&args);
    }
    let dns6 = c.dns[1].pod.ip6.unwrap().to_string();
    // (The instances' IPv6 listeners answer the agents' dns-instance checks in e2e.)
    let out = c.agents[2].ns.exec(&[
        "getent",
        "ahostsv6",
        "kube-dns.kube-system.svc.cluster.tst.local.",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2001:db8:19:fa::10"),
        "{out:?}"
    );
    let out = c.agents[1].ns.exec(&["getent", "hosts", &dns6]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("coredns-1.kube-dns"));
    // IPv6 blocked at node 2: node 1's pod no longer reaches node 2's IPv6 addresses, but
    // still its IPv4 ones.
    c.set_ipv6_blocked(2, true);
    let fping = |target: String| {
        std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &c.agents[1].ns.name,
                "fping",
                "-q",
                "-r0",
                "-t300",
            ])
            .arg(target)
            .status()
            .unwrap()
            .success()
    };
    assert!(!fping(c.nodes[2].host_ip6.unwrap().to_string()));
    assert!(!fping(c.agents[2].ip6.unwrap().to_string()));
    assert!(fping(c.nodes[2].host_ip.to_string()));
    assert!(fping(c.agents[2].ip.to_string()));
    c.set_ipv6_blocked(2, false);
    assert!(fping(c.agents[2].ip6.unwrap().to_string()));
}
