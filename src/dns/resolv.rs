//! Reading /etc/resolv.conf: the cluster domain from the search list, the nameservers for logs.

use std::net::IpAddr;

/// The cluster domain, from the `svc.<domain>` entry of the search list that the kubelet
/// writes into every pod's resolv.conf (`<ns>.svc.<domain> svc.<domain> <domain>`).
///
/// The last `search` (or `domain`) line wins, as in glibc and musl. Returns `None` when no
/// entry has that shape (e.g. a pod with `dnsPolicy: Default`): then `--cluster-domain` is
/// needed.
pub fn cluster_domain(resolv_conf: &str) -> Option<String> {
    let mut search: Vec<&str> = Vec::new();
    for line in resolv_conf.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("search") | Some("domain") => search = words.collect(),
            _ => {}
        }
    }
    search.iter().find_map(|entry| {
        let entry = entry.trim_end_matches('.');
        let domain = entry.strip_prefix("svc.")?;
        (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
    })
}

/// The absolute names the forward checks look up in `domain`: the DNS service itself and the
/// API server's service, which exist in every cluster. The trailing dot keeps `ndots:5` search
/// expansion (and musl's handling of it) out of the way.
pub fn forward_names(domain: &str) -> [String; 2] {
    let domain = domain.trim_end_matches('.');
    [
        format!("kube-dns.kube-system.svc.{domain}."),
        format!("kubernetes.default.svc.{domain}."),
    ]
}

/// The `nameserver` addresses, in order (entries that are not IP addresses are skipped;
/// a scoped IPv6 `fe80::1%eth0` is read without its scope).
pub fn nameservers(resolv_conf: &str) -> Vec<IpAddr> {
    resolv_conf
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next()? != "nameserver" {
                return None;
            }
            let addr = words.next()?;
            let addr = addr.split('%').next().unwrap_or(addr);
            addr.parse().ok()
        })
        .collect()
}

/// The well-known address of NodeLocal DNSCache (the node-local-dns DaemonSet).
pub const NODE_LOCAL_DNS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(169, 254, 20, 10));

/// The pod's resolver from its resolv.conf: the first nameserver (where the system resolver
/// sends its queries first), and whether it is a node-local cache: the well-known
/// 169.254.20.10, or any address that is not one of the DNS Service's `service_ips` (when
/// they are known). `None` without a nameserver.
pub fn resolver(resolv_conf: &str, service_ips: &[IpAddr]) -> Option<crate::report::Resolver> {
    let first = *nameservers(resolv_conf).first()?;
    let node_local_cache =
        first == NODE_LOCAL_DNS || (!service_ips.is_empty() && !service_ips.contains(&first));
    Some(crate::report::Resolver {
        nameserver: first.to_string(),
        node_local_cache,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_local_cache_is_told_from_the_service_ip() {
        let service: Vec<IpAddr> = vec!["10.96.0.10".parse().unwrap()];
        let r = resolver(KUBELET, &service).unwrap();
        assert_eq!(
            (r.nameserver.as_str(), r.node_local_cache),
            ("10.96.0.10", false)
        );
        let local = KUBELET.replace("10.96.0.10", "169.254.20.10");
        assert!(resolver(&local, &service).unwrap().node_local_cache);
        assert!(resolver(&local, &[]).unwrap().node_local_cache);
        // Another address than the Service's (a cache on the node's own IP, kube-dns's
        // other IP): a cache too; unknown when the Service is not known.
        let other = KUBELET.replace("10.96.0.10", "198.18.0.5");
        assert!(resolver(&other, &service).unwrap().node_local_cache);
        assert!(!resolver(&other, &[]).unwrap().node_local_cache);
        assert_eq!(resolver("search x\n", &service), None);
    }

    const KUBELET: &str =
        "search kube-system.svc.cluster.tst.local svc.cluster.tst.local cluster.tst.local\n\
                           nameserver 10.96.0.10\noptions ndots:5\n";

    #[test]
    fn domain_from_kubelet_search_list() {
        assert_eq!(
            cluster_domain(KUBELET).as_deref(),
            Some("cluster.tst.local")
        );
    }

    #[test]
    fn last_search_line_wins() {
        let conf = "search svc.old.local\nsearch default.svc.new.local svc.new.local\n";
        assert_eq!(cluster_domain(conf).as_deref(), Some("new.local"));
        let conf = "search svc.old.local\nsearch example.com\n";
        assert_eq!(cluster_domain(conf), None);
    }

    #[test]
    fn no_search_or_odd_entries() {
        assert_eq!(cluster_domain(""), None);
        assert_eq!(cluster_domain("nameserver 1.1.1.1\n"), None);
        assert_eq!(cluster_domain("search svc. svc\n"), None);
        assert_eq!(
            cluster_domain("search\tSVC.Cluster.Local.\n").as_deref(),
            None,
            "prefix match is case-sensitive on `svc.`"
        );
        assert_eq!(
            cluster_domain("search svc.Cluster.Local.\n").as_deref(),
            Some("cluster.local")
        );
    }

    #[test]
    fn forward_names_are_absolute() {
        let want = [
            "kube-dns.kube-system.svc.cluster.tst.local.",
            "kubernetes.default.svc.cluster.tst.local.",
        ];
        assert_eq!(forward_names("cluster.tst.local"), want);
        assert_eq!(forward_names("cluster.tst.local."), want);
    }

    #[test]
    fn nameservers_in_order() {
        let conf = "nameserver 10.96.0.10\nnameserver fe80::1%eth0\nnameserver bogus\n# nameserver 1.2.3.4\n";
        let ns = nameservers(conf);
        assert_eq!(
            ns,
            vec![
                "10.96.0.10".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
        assert!(nameservers(KUBELET).len() == 1);
    }
}
