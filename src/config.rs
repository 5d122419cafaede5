//! The agent's configuration: its flag table (with environment twins) and the typed result.
//! A bad value gives one line saying what to fix; `app` turns that into exit code 2.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{Args, Flag};
use crate::duration;

/// Flags of the agent (the default subcommand). The names are an interface: scripts and the
/// manifest use them.
pub const FLAGS: &[Flag] = &[
    Flag { name: "api-server", env: "NETTEST_API_SERVER", value: Some("URL"), default: Some("https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"), help: "Kubernetes API server" },
    Flag { name: "token-file", env: "NETTEST_TOKEN_FILE", value: Some("PATH"), default: Some("/var/run/secrets/kubernetes.io/serviceaccount/token"), help: "Bearer token file, re-read every minute and on a 401" },
    Flag { name: "ca-file", env: "NETTEST_CA_FILE", value: Some("PATH"), default: Some("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"), help: "CA bundle the API server certificate must chain to" },
    Flag { name: "api-proxy", env: "NETTEST_API_PROXY", value: Some("URL"), default: Some("none: connect directly, ignoring HTTPS_PROXY/ALL_PROXY"), help: "HTTP CONNECT proxy for API requests (the token goes through it)" },
    Flag { name: "discovery-timeout", env: "NETTEST_DISCOVERY_TIMEOUT", value: Some("DUR"), default: Some("20s, at most half of --interval"), help: "Longest one discovery may take, pages and retries included (less than --interval)" },
    Flag { name: "namespace", env: "POD_NAMESPACE", value: Some("NS"), default: Some("the service account's namespace"), help: "Namespace of the agent pods" },
    Flag { name: "selector", env: "NETTEST_SELECTOR", value: Some("LABELS"), default: Some("app.kubernetes.io/name=k8s-network-test-daemonset"), help: "Label selector of the agent pods" },
    Flag { name: "node-name", env: "NODE_NAME", value: Some("NAME"), default: None, help: "Node this agent runs on (downward API)" },
    Flag { name: "pod-name", env: "POD_NAME", value: Some("NAME"), default: Some("the hostname"), help: "This agent's pod name (downward API)" },
    Flag { name: "interval", env: "NETTEST_INTERVAL", value: Some("DUR"), default: Some("60s"), help: "Time between the starts of two rounds" },
    Flag { name: "timeout", env: "NETTEST_TIMEOUT", value: Some("DUR"), default: Some("1s"), help: "How long to wait for echo replies" },
    Flag { name: "count", env: "NETTEST_COUNT", value: Some("N"), default: Some("1"), help: "Echo requests per target per round (more gives a loss ratio)" },
    Flag { name: "size", env: "NETTEST_SIZE", value: Some("BYTES"), default: Some("56"), help: "Echo payload size" },
    Flag { name: "icmp-socket", env: "NETTEST_ICMP_SOCKET", value: Some("KIND"), default: Some("auto"), help: "auto (ping socket, else raw), dgram, or raw" },
    Flag { name: "dns-timeout", env: "NETTEST_DNS_TIMEOUT", value: Some("DUR"), default: Some("2s"), help: "Timeout of each DNS lookup or query" },
    Flag { name: "cluster-domain", env: "NETTEST_CLUSTER_DOMAIN", value: Some("DOMAIN"), default: Some("from the search list in --resolv-conf"), help: "Cluster DNS domain" },
    Flag { name: "resolv-conf", env: "NETTEST_RESOLV_CONF", value: Some("PATH"), default: Some("/etc/resolv.conf"), help: "Resolver configuration to read the cluster domain from" },
    Flag { name: "listen", env: "NETTEST_LISTEN", value: Some("ADDR:PORT"), default: Some("[::]:8123"), help: "Where to serve metrics, status and health (IPv4 too)" },
    Flag { name: "once", env: "NETTEST_ONCE", value: None, default: None, help: "Run one round, print it, exit 0 (all passed), 1 (a check failed) or 2 (round could not run)" },
    Flag { name: "output", env: "NETTEST_OUTPUT", value: Some("FORMAT"), default: Some("text"), help: "With --once: text (the log table) or json (the round as JSON)" },
];

/// How `--once` prints the round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// The agent's settings other than the API connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub node_name: String,
    pub pod_name: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub count: u32,
    pub size: usize,
    pub icmp_socket: crate::icmp::SocketKind,
    pub dns_timeout: Duration,
    /// `None` until resolved from `resolv_conf` at start-up.
    pub cluster_domain: Option<String>,
    pub resolv_conf: PathBuf,
    pub listen: SocketAddr,
    pub once: bool,
    pub output: Output,
}

impl Config {
    /// Reads the flags; `hostname` is the fallback pod name (a pod's hostname is its name).
    pub fn from_args(
        args: &Args,
        hostname: impl FnOnce() -> Option<String>,
    ) -> Result<Config, String> {
        let dur = |name: &str, default: &str| {
            duration::parse(args.get(name).unwrap_or(default)).map_err(|e| format!("--{name}: {e}"))
        };
        let num = |name: &str, default: &str, min: u64, max: u64| -> Result<u64, String> {
            let text = args.get(name).unwrap_or(default);
            match text.trim().parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(format!(
                    "--{name}: {text:?} is not a whole number from {min} to {max}"
                )),
            }
        };
        let node_name = args
            .get("node-name")
            .map(str::to_string)
            .ok_or("--node-name is not set: pass it or set NODE_NAME (the manifest sets it from spec.nodeName)")?;
        let pod_name = args
            .get("pod-name")
            .map(str::to_string)
            .or_else(hostname)
            .unwrap_or_else(|| "unknown".to_string());
        let interval = dur("interval", "60s")?;
        if interval < Duration::from_secs(1) {
            return Err("--interval: must be at least 1s".into());
        }
        let timeout = dur("timeout", "1s")?;
        if timeout.is_zero() || timeout >= interval {
            return Err("--timeout: must be more than 0 and less than --interval".into());
        }
        let dns_timeout = dur("dns-timeout", "2s")?;
        if dns_timeout.is_zero() || dns_timeout >= interval {
            return Err("--dns-timeout: must be more than 0 and less than --interval".into());
        }
        let listen_text = args.get("listen").unwrap_or("[::]:8123");
        let listen = parse_listen(listen_text)?;
        let output = match args.get("output").unwrap_or("text") {
            "text" => Output::Text,
            "json" => Output::Json,
            other => return Err(format!("--output: {other:?} is not text or json")),
        };
        Ok(Config {
            node_name,
            pod_name,
            interval,
            timeout,
            count: num("count", "1", 1, 100)? as u32,
            size: num("size", "56", 0, 65_000)? as usize,
            icmp_socket: crate::icmp::SocketKind::parse(args.get("icmp-socket").unwrap_or("auto"))
                .map_err(|e| format!("--icmp-socket: {e}"))?,
            dns_timeout,
            cluster_domain: args
                .get("cluster-domain")
                .map(|d| d.trim_end_matches('.').to_string()),
            resolv_conf: PathBuf::from(args.get("resolv-conf").unwrap_or("/etc/resolv.conf")),
            listen,
            once: args.is_set("once"),
            output,
        })
    }
}

/// `ADDR:PORT`, `[V6]:PORT` or a bare `:PORT`/`PORT` (all addresses).
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    let port_only = t.strip_prefix(':').unwrap_or(t);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)));
    }
    t.parse().map_err(|_| {
        format!("--listen: {text:?} is not ADDR:PORT (e.g. [::]:8123 or 0.0.0.0:8123)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse, Parsed};

    fn config(argv: &[&str]) -> Result<Config, String> {
        let Parsed::Run(args) = parse(FLAGS, argv.iter().map(|s| s.to_string()), |_| None).unwrap()
        else {
            panic!("not a run");
        };
        Config::from_args(&args, || Some("host-pod".into()))
    }

    #[test]
    fn defaults_match_the_documentation() {
        let c = config(&["--node-name", "n1"]).unwrap();
        assert_eq!(c.pod_name, "host-pod");
        assert_eq!(c.interval, Duration::from_secs(60));
        assert_eq!(c.timeout, Duration::from_secs(1));
        assert_eq!((c.count, c.size), (1, 56));
        assert_eq!(c.listen, "[::]:8123".parse().unwrap());
        assert_eq!(c.output, Output::Text);
        assert!(!c.once);
    }

    #[test]
    fn bad_values_say_what_to_fix() {
        assert!(config(&[]).unwrap_err().contains("NODE_NAME"));
        let e = config(&["--node-name", "n", "--count", "0"]).unwrap_err();
        assert!(e.starts_with("--count:"), "{e}");
        let e = config(&["--node-name", "n", "--timeout", "2m"]).unwrap_err();
        assert!(e.starts_with("--timeout:"), "{e}");
        let e = config(&["--node-name", "n", "--listen", "nope"]).unwrap_err();
        assert!(e.starts_with("--listen:"), "{e}");
        let e = config(&["--node-name", "n", "--output", "yaml"]).unwrap_err();
        assert!(e.starts_with("--output:"), "{e}");
    }

    #[test]
    fn readme_documents_every_flag_and_its_environment_twin() {
        let readme = include_str!("../README.md");
        for f in FLAGS {
            assert!(
                readme.contains(&format!("`--{}", f.name)),
                "README lacks --{}",
                f.name
            );
            assert!(
                readme.contains(&format!("`{}`", f.env)),
                "README lacks {}",
                f.env
            );
        }
    }

    #[test]
    fn listen_accepts_port_only_and_v4() {
        assert_eq!(parse_listen(":9000").unwrap().port(), 9000);
        assert_eq!(
            parse_listen("0.0.0.0:81").unwrap(),
            "0.0.0.0:81".parse().unwrap()
        );
    }
}
