//! The agent's configuration: its flag table (with environment twins, and the one place each
//! default is written) and the typed result. A bad value is a [`ConfigError`]: one line that
//! says what to fix, exit code 2.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{Args, Flag, FlagDefault as D};
use crate::duration;

/// Flags of the agent (the default subcommand). The names are an interface: scripts and the
/// manifest use them.
#[rustfmt::skip]
pub const FLAGS: &[Flag] = &[
    Flag { name: "api-server", env: "NETTEST_API_SERVER", value: Some("URL"), default: D::Computed("https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"), help: "Kubernetes API server" },
    Flag { name: "token-file", env: "NETTEST_TOKEN_FILE", value: Some("PATH"), default: D::Value("/var/run/secrets/kubernetes.io/serviceaccount/token"), help: "Bearer token file, re-read every minute and on a 401" },
    Flag { name: "ca-file", env: "NETTEST_CA_FILE", value: Some("PATH"), default: D::Value("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"), help: "CA bundle the API server certificate must chain to" },
    Flag { name: "api-proxy", env: "NETTEST_API_PROXY", value: Some("URL"), default: D::None, help: "HTTP CONNECT proxy for API requests (the token goes through it); without it, direct, ignoring HTTPS_PROXY/ALL_PROXY" },
    Flag { name: "discovery-timeout", env: "NETTEST_DISCOVERY_TIMEOUT", value: Some("DUR"), default: D::Value("20s"), help: "Longest one discovery may take, pages and retries included; unless given, at most half of --interval" },
    Flag { name: "namespace", env: "POD_NAMESPACE", value: Some("NS"), default: D::Computed("the service account's namespace"), help: "Namespace of the agent pods" },
    Flag { name: "selector", env: "NETTEST_SELECTOR", value: Some("LABELS"), default: D::Value("app.kubernetes.io/name=k8s-network-test-daemonset"), help: "Label selector of the agent pods (watched directly only when --agent-service does not exist)" },
    Flag { name: "agent-service", env: "NETTEST_AGENT_SERVICE", value: Some("NAME"), default: D::Value("k8s-network-test-daemonset"), help: "Headless Service of the agent pods (in --namespace), whose EndpointSlices list the peers" },
    Flag { name: "node-name", env: "NODE_NAME", value: Some("NAME"), default: D::None, help: "Node this agent runs on (downward API)" },
    Flag { name: "pod-name", env: "POD_NAME", value: Some("NAME"), default: D::Computed("the hostname"), help: "This agent's pod name (downward API)" },
    Flag { name: "interval", env: "NETTEST_INTERVAL", value: Some("DUR"), default: D::Value("60s"), help: "Time between the starts of two rounds" },
    Flag { name: "timeout", env: "NETTEST_TIMEOUT", value: Some("DUR"), default: D::Value("1s"), help: "How long to wait for echo replies" },
    Flag { name: "count", env: "NETTEST_COUNT", value: Some("N"), default: D::Value("1"), help: "Echo requests per target per round (more gives a loss ratio)" },
    Flag { name: "size", env: "NETTEST_SIZE", value: Some("BYTES"), default: D::Value("56"), help: "Echo payload size" },
    Flag { name: "mtu-size", env: "NETTEST_MTU_SIZE", value: Some("BYTES"), default: D::Computed("the MTU of the pod's default-route interface"), help: "IP packet size of the pod-mtu echo (sent with don't-fragment); 0: no pod-mtu checks" },
    Flag { name: "icmp-socket", env: "NETTEST_ICMP_SOCKET", value: Some("KIND"), default: D::Value("auto"), help: "auto (ping socket, else raw), dgram, or raw" },
    Flag { name: "dns-timeout", env: "NETTEST_DNS_TIMEOUT", value: Some("DUR"), default: D::Value("2s"), help: "Timeout of each DNS lookup or query" },
    Flag { name: "cluster-domain", env: "NETTEST_CLUSTER_DOMAIN", value: Some("DOMAIN"), default: D::Computed("from the search list in --resolv-conf"), help: "Cluster DNS domain" },
    Flag { name: "resolv-conf", env: "NETTEST_RESOLV_CONF", value: Some("PATH"), default: D::Value("/etc/resolv.conf"), help: "Resolver configuration to read the cluster domain from" },
    Flag { name: "listen", env: "NETTEST_LISTEN", value: Some("ADDR:PORT"), default: D::Value("[::]:8123"), help: "Where to serve metrics, status and health (IPv4 too)" },
    Flag { name: "once", env: "NETTEST_ONCE", value: None, default: D::None, help: "Run one round, print it, exit 0 (all passed), 1 (a check failed) or 2 (round could not run)" },
    Flag { name: "output", env: "NETTEST_OUTPUT", value: Some("FORMAT"), default: D::Value("text"), help: "With --once: text (the log table) or json (the round as JSON)" },
    Flag { name: "log-format", env: "NETTEST_LOG_FORMAT", value: Some("FORMAT"), default: D::Value("text"), help: "How rounds are logged to stdout: text (the table) or json (a line per failed or changed check and one per round)" },
    Flag { name: "log-table", env: "NETTEST_LOG_TABLE", value: Some("MODE"), default: D::Value("auto"), help: "full (a row per node), failures (summary: failing and changed nodes only, capped), or auto (full up to 50 nodes)" },
    Flag { name: "max-pps", env: "NETTEST_MAX_PPS", value: Some("N"), default: D::Value("0"), help: "At most N echo requests sent per second, spreading a round's sends (0: no ceiling)" },
    Flag { name: "peers", env: "NETTEST_PEERS", value: Some("K"), default: D::Computed("every peer"), help: "Check each node from K other agents only, chosen by rendezvous hashing (its own agent always checks it)" },
    Flag { name: "dns-service", env: "NETTEST_DNS_SERVICE", value: Some("NS/NAME"), default: D::Value("kube-system/kube-dns"), help: "The cluster DNS Service (RKE2: kube-system/rke2-coredns-rke2-coredns, OpenShift: openshift-dns/dns-default); the agent needs to get it and list its EndpointSlices" },
    Flag { name: "expect-agent-on", env: "NETTEST_EXPECT_AGENT_ON", value: Some("SELECTOR"), default: D::Value(EXPECT_AGENT_ON), help: "Label selector of the nodes that run an agent (k8s.yml's node affinity); other nodes are neither expected to have one nor pinged; empty: every node" },
    Flag { name: "startup-grace", env: "NETTEST_STARTUP_GRACE", value: Some("DUR"), default: D::Value("2m"), help: "How long an agent pod may be not Ready (or a new node without an agent) before it counts as missing; failures meanwhile are skipped" },
    Flag { name: "report-going-away", env: "NETTEST_REPORT_GOING_AWAY", value: None, default: D::None, help: "Fail (rather than skip) the checks of nodes being deleted or scaled down and of agent pods terminating or starting" },
    Flag { name: "dns-instance-peers", env: "NETTEST_DNS_INSTANCE_PEERS", value: Some("N"), default: D::Value("50"), help: "Query each DNS instance directly (and reverse-look it up) from N agents only, chosen by rendezvous hashing" },
    Flag { name: "pod-path-peers", env: "NETTEST_POD_PATH_PEERS", value: Some("N"), default: D::Value("50"), help: "Make each agent pod's pod-tcp and pod-mtu checks from N agents only (besides its own), chosen by rendezvous hashing; pod pings stay with every agent" },
];

/// The nodes the DaemonSet runs on, as a label selector: k8s.yml's node affinity (a unit
/// test checks they agree). Linux on the built architectures; no virtual-kubelet and no
/// Fargate-style serverless nodes, which run no DaemonSet pods.
pub const EXPECT_AGENT_ON: &str = "kubernetes.io/os in (linux),kubernetes.io/arch in (amd64,arm64),type notin (virtual-kubelet),eks.amazonaws.com/compute-type notin (fargate)";

/// The highest `--max-pps` (ten million: beyond any NIC; the flag is a ceiling, not a target).
pub const MAX_PPS: u64 = 10_000_000;

/// A configuration the agent cannot start with. `Display` is the one line to print, naming
/// the flag and what to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The command line itself: an unknown flag, a flag without its value, an extra argument.
    Usage(String),
    /// A flag (or its environment twin) has a value that cannot be used.
    Invalid { flag: &'static str, message: String },
    /// Something required is not set and cannot be worked out; says how to set it.
    Missing(String),
}

impl ConfigError {
    /// A short, stable label of the kind of problem.
    pub fn reason(&self) -> &'static str {
        match self {
            ConfigError::Usage(_) => "usage",
            ConfigError::Invalid { .. } => "invalid",
            ConfigError::Missing(_) => "missing",
        }
    }

    /// `--flag: message`.
    pub fn invalid(flag: &'static str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            flag,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Usage(m) | ConfigError::Missing(m) => f.write_str(m),
            ConfigError::Invalid { flag, message } => write!(f, "--{flag}: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<crate::cli::UsageError> for ConfigError {
    fn from(e: crate::cli::UsageError) -> ConfigError {
        ConfigError::Usage(e.0)
    }
}

/// The value of a flag that has a [`D::Value`] default (so it is always there).
pub fn value<'a>(args: &'a Args, flag: &'static str) -> Result<&'a str, ConfigError> {
    args.get(flag)
        .ok_or_else(|| ConfigError::invalid(flag, "has no value and no default"))
}

/// A duration flag.
pub fn duration_flag(args: &Args, flag: &'static str) -> Result<Duration, ConfigError> {
    duration::parse(value(args, flag)?).map_err(|e| ConfigError::invalid(flag, e))
}

/// A whole-number flag within `min..=max`.
pub fn number_flag(
    args: &Args,
    flag: &'static str,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let text = value(args, flag)?;
    match text.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::invalid(
            flag,
            format!("{text:?} is not a whole number from {min} to {max}"),
        )),
    }
}

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
    /// `--mtu-size`: the `pod-mtu` packet size; `None`: the pod interface's MTU; 0: off.
    pub mtu_size: Option<u32>,
    pub icmp_socket: crate::icmp::SocketKind,
    pub dns_timeout: Duration,
    /// `None` until resolved from `resolv_conf` at start-up.
    pub cluster_domain: Option<String>,
    pub resolv_conf: PathBuf,
    pub listen: SocketAddr,
    pub once: bool,
    pub output: Output,
    /// How the round's log block lists nodes.
    pub log_table: crate::view::log::LogTable,
    /// Table or JSON lines.
    pub log_format: crate::view::json_log::LogFormat,
    /// Echo requests per second at most; 0: no ceiling.
    pub max_pps: u32,
    /// How many agents check each node and each DNS instance.
    pub reach: crate::plan::Reach,
    /// How failures of targets going away or starting read.
    pub alarms: crate::alarms::Policy,
    /// Label selector of the nodes that run an agent (`--expect-agent-on`).
    pub expect_agent_on: String,
}

impl Config {
    /// Reads the flags; `hostname` is the fallback pod name (a pod's hostname is its name).
    pub fn from_args(
        args: &Args,
        hostname: impl FnOnce() -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let node_name = args.get("node-name").map(str::to_string).ok_or_else(|| {
            ConfigError::Missing("--node-name is not set: pass it or set NODE_NAME (the manifest sets it from spec.nodeName)".into())
        })?;
        let pod_name = args
            .get("pod-name")
            .map(str::to_string)
            .or_else(hostname)
            .unwrap_or_else(|| "unknown".to_string());
        let interval = duration_flag(args, "interval")?;
        if interval < Duration::from_secs(1) {
            return Err(ConfigError::invalid("interval", "must be at least 1s"));
        }
        let timeout = duration_flag(args, "timeout")?;
        if timeout.is_zero() || timeout >= interval {
            return Err(ConfigError::invalid(
                "timeout",
                "must be more than 0 and less than --interval",
            ));
        }
        let dns_timeout = duration_flag(args, "dns-timeout")?;
        if dns_timeout.is_zero() || dns_timeout >= interval {
            return Err(ConfigError::invalid(
                "dns-timeout",
                "must be more than 0 and less than --interval",
            ));
        }
        let listen = parse_listen(value(args, "listen")?)?;
        let output = match value(args, "output")? {
            "text" => Output::Text,
            "json" => Output::Json,
            other => {
                return Err(ConfigError::invalid(
                    "output",
                    format!("{other:?} is not text or json"),
                ))
            }
        };
        let count = number_flag(args, "count", 1, 100)?;
        let size = number_flag(args, "size", 0, 65_000)?;
        let mtu_size = match args.get("mtu-size") {
            None => None,
            Some(_) => match number_flag(args, "mtu-size", 0, 65_535)? {
                n @ (0 | 68..) => u32::try_from(n).ok(),
                _ => {
                    return Err(ConfigError::invalid(
                        "mtu-size",
                        "must be 0 (off) or at least 68 (the smallest IPv4 MTU)",
                    ))
                }
            },
        };
        let log_table = crate::view::log::LogTable::parse(value(args, "log-table")?)
            .map_err(|e| ConfigError::invalid("log-table", e))?;
        let log_format = crate::view::json_log::LogFormat::parse(value(args, "log-format")?)
            .map_err(|e| ConfigError::invalid("log-format", e))?;
        let max_pps = number_flag(args, "max-pps", 0, MAX_PPS)?;
        let peers = match args.get("peers") {
            None => None,
            Some(_) => Some(number_flag(args, "peers", 1, 1_000_000)?),
        };
        let dns_instance_peers = number_flag(args, "dns-instance-peers", 1, 1_000_000)?;
        let pod_path_peers = number_flag(args, "pod-path-peers", 1, 1_000_000)?;
        Ok(Config {
            node_name,
            pod_name,
            interval,
            timeout,
            count: u32::try_from(count).unwrap_or(1),
            size: usize::try_from(size).unwrap_or(56),
            mtu_size,
            icmp_socket: crate::icmp::SocketKind::parse(value(args, "icmp-socket")?)
                .map_err(|e| ConfigError::invalid("icmp-socket", e))?,
            dns_timeout,
            cluster_domain: args
                .get("cluster-domain")
                .map(|d| d.trim_end_matches('.').to_string()),
            resolv_conf: PathBuf::from(value(args, "resolv-conf")?),
            listen,
            once: args.is_set("once"),
            output,
            log_table,
            log_format,
            max_pps: u32::try_from(max_pps).unwrap_or(u32::MAX),
            reach: crate::plan::Reach {
                peers: peers.and_then(|k| usize::try_from(k).ok()),
                dns_instance_peers: usize::try_from(dns_instance_peers).ok(),
                pod_path_peers: usize::try_from(pod_path_peers).ok(),
            },
            expect_agent_on: value(args, "expect-agent-on")?.trim().to_string(),
            alarms: crate::alarms::Policy {
                skip_going_away: !args.is_set("report-going-away"),
                grace: duration_flag(args, "startup-grace")?,
            },
        })
    }
}

/// `ADDR:PORT`, `[V6]:PORT` or a bare `:PORT`/`PORT` (all addresses).
pub fn parse_listen(text: &str) -> Result<SocketAddr, ConfigError> {
    let t = text.trim();
    let port_only = t.strip_prefix(':').unwrap_or(t);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port)));
    }
    t.parse().map_err(|_| {
        ConfigError::invalid(
            "listen",
            format!("{text:?} is not ADDR:PORT (e.g. [::]:8123 or 0.0.0.0:8123)"),
        )
    })
}

/// The documented default of each flag in one README table (`### <section>`): flag name ->
/// the text of its default cell. Shared by the tests that hold code and README together.
#[cfg(test)]
pub fn readme_defaults(section: &str) -> std::collections::HashMap<String, String> {
    let readme = include_str!("../README.md");
    let body = readme
        .split("\n### ")
        .find(|s| s.starts_with(section))
        .unwrap_or_else(|| panic!("README has no section {section:?}"));
    body.lines()
        .filter(|l| l.starts_with("| `--"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let flag = cells[1].trim_matches('`').trim_start_matches("--");
            let name = flag.split_whitespace().next().unwrap().to_string();
            (name, cells[3].to_string())
        })
        .collect()
}

/// Checks a flag table against its README table: every flag and environment twin is there,
/// and each literal default is written in the README exactly as in the table.
#[cfg(test)]
pub fn check_flags_against_readme(flags: &[Flag], section: &str) {
    let docs = readme_defaults(section);
    for f in flags {
        let doc = docs
            .get(f.name)
            .unwrap_or_else(|| panic!("README {section:?} lacks --{}", f.name));
        assert!(
            include_str!("../README.md").contains(&format!("`{}`", f.env)),
            "README lacks {}",
            f.env
        );
        if let D::Value(v) = f.default {
            assert!(
                doc.starts_with(&format!("`{v}`")),
                "--{}: the table's default {v:?}, the README's {doc:?}",
                f.name
            );
        }
    }
    assert_eq!(
        docs.len(),
        flags.len(),
        "README {section:?} documents other flags"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse, Parsed};

    fn config(argv: &[&str]) -> Result<Config, ConfigError> {
        let Parsed::Run(args) = parse(FLAGS, argv.iter().map(|s| s.to_string()), |_| None).unwrap()
        else {
            panic!("not a run");
        };
        Config::from_args(&args, || Some("host-pod".into()))
    }

    /// The README's default for `flag`, without its backticks.
    fn doc(flag: &str) -> String {
        let d = readme_defaults("Agent")[flag].clone();
        d.split('`').nth(1).unwrap_or(&d).to_string()
    }

    #[test]
    fn expect_agent_on_is_the_manifests_node_affinity() {
        let docs: Vec<serde_yaml_ng::Value> =
            serde_yaml_ng::Deserializer::from_str(include_str!("../k8s.yml"))
                .map(|d| serde::Deserialize::deserialize(d).unwrap())
                .collect();
        let ds = docs.iter().find(|d| d["kind"] == "DaemonSet").unwrap();
        let spec = &ds["spec"]["template"]["spec"];
        assert_eq!(spec["priorityClassName"], "system-node-critical");
        let terms = spec["affinity"]["nodeAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            .as_sequence()
            .unwrap();
        assert_eq!(terms.len(), 1, "one term: a selector cannot OR terms");
        let selector: Vec<String> = terms[0]["matchExpressions"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|e| {
                let values: Vec<&str> = e["values"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                let op = match e["operator"].as_str().unwrap() {
                    "In" => "in",
                    "NotIn" => "notin",
                    other => panic!("operator {other} has no selector twin here"),
                };
                format!("{} {op} ({})", e["key"].as_str().unwrap(), values.join(","))
            })
            .collect();
        assert_eq!(selector.join(","), EXPECT_AGENT_ON);
        assert_eq!(
            config(&["--node-name", "n"]).unwrap().expect_agent_on,
            EXPECT_AGENT_ON
        );
    }

    #[test]
    fn the_flag_table_and_the_readme_agree() {
        check_flags_against_readme(FLAGS, "Agent");
    }

    #[test]
    fn parsed_defaults_equal_the_documented_ones() {
        let c = config(&["--node-name", "n1"]).unwrap();
        assert_eq!(c.pod_name, "host-pod", "the hostname");
        assert_eq!(c.interval, duration::parse(&doc("interval")).unwrap());
        assert_eq!(c.timeout, duration::parse(&doc("timeout")).unwrap());
        assert_eq!(c.dns_timeout, duration::parse(&doc("dns-timeout")).unwrap());
        assert_eq!(c.count.to_string(), doc("count"));
        assert_eq!(c.size.to_string(), doc("size"));
        assert_eq!(
            c.icmp_socket,
            crate::icmp::SocketKind::parse(&doc("icmp-socket")).unwrap()
        );
        assert_eq!(c.listen, doc("listen").parse::<SocketAddr>().unwrap());
        assert_eq!(c.resolv_conf, PathBuf::from(doc("resolv-conf")));
        assert_eq!(format!("{:?}", c.output).to_lowercase(), doc("output"));
        assert_eq!(c.cluster_domain, None, "worked out at start-up");
        assert!(!c.once);
        assert_eq!(
            c.log_table,
            crate::view::log::LogTable::parse(&doc("log-table")).unwrap()
        );
        assert_eq!(
            c.log_format,
            crate::view::json_log::LogFormat::parse(&doc("log-format")).unwrap()
        );
        assert_eq!(c.max_pps.to_string(), doc("max-pps"));
        assert_eq!(c.reach.peers, None, "every peer");
        assert_eq!(
            c.reach.dns_instance_peers.map(|n| n.to_string()),
            Some(doc("dns-instance-peers"))
        );
        assert_eq!(
            c.reach.pod_path_peers.map(|n| n.to_string()),
            Some(doc("pod-path-peers"))
        );
        // And the literal values, as an operator reads them in the README.
        assert_eq!(
            (c.interval, c.timeout, c.dns_timeout),
            (
                Duration::from_secs(60),
                Duration::from_secs(1),
                Duration::from_secs(2)
            )
        );
    }

    #[test]
    fn bad_values_say_what_to_fix() {
        let e = config(&[]).unwrap_err();
        assert_eq!(e.reason(), "missing");
        assert!(e.to_string().contains("NODE_NAME"));
        for (flag, value) in [
            ("count", "0"),
            ("timeout", "2m"),
            ("listen", "nope"),
            ("output", "yaml"),
            ("interval", "500ms"),
            ("dns-timeout", "0s"),
            ("icmp-socket", "tcp"),
            ("size", "70000"),
            ("log-table", "some"),
            ("log-format", "yaml"),
            ("max-pps", "-1"),
            ("peers", "0"),
            ("dns-instance-peers", "0"),
            ("pod-path-peers", "0"),
        ] {
            let e = config(&["--node-name", "n", &format!("--{flag}"), value]).unwrap_err();
            assert_eq!(e.reason(), "invalid");
            assert!(e.to_string().starts_with(&format!("--{flag}:")), "{e}");
            assert!(!e.to_string().contains('\n'));
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
