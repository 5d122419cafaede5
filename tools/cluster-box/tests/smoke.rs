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
