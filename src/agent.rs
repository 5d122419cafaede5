//! The agent: start-up, the round loop, and `--once`.
//!
//! Threads: this one runs rounds (discovery, then the probes, which use their own threads);
//! the HTTP server has its own. SIGTERM/SIGINT set a flag that the loop checks every 100 ms,
//! so the process ends within a second (it is PID 1 in a scratch image).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::app::print_block;
use crate::cli::{self, Parsed};
use crate::config::{Config, Output, FLAGS};
use crate::http::{HttpServer, Shared};
use crate::icmp::{ProbeOptions, Prober};
use crate::kube::{self, Snapshot};
use crate::metrics::AgentInfo;
use crate::plan;
use crate::report::RoundReport;
use crate::round::{self, Context};
use crate::{dns, table};

const ABOUT: &str =
    "k8s-network-test-daemonset: checks the Kubernetes cluster network from every node \
(ICMP to every agent pod and node, cluster DNS) and serves the results to Prometheus.\n\
Subcommands: `ping TARGET...` (see `ping --help`).";

/// Runs the agent with its arguments; returns the exit code.
pub fn main(argv: Vec<String>) -> i32 {
    let args = match cli::parse(FLAGS, argv, |k| std::env::var(k).ok()) {
        Ok(Parsed::Run(a)) => a,
        Ok(Parsed::Help) => {
            print_block(&cli::help(
                "k8s-network-test-daemonset [OPTIONS]",
                ABOUT,
                FLAGS,
            ));
            return 0;
        }
        Ok(Parsed::Version) => {
            print_block(&format!(
                "k8s-network-test-daemonset {}\n",
                env!("CARGO_PKG_VERSION")
            ));
            return 0;
        }
        Err(e) => return config_error(&e.to_string()),
    };
    if let Some(extra) = args.positional.first() {
        return config_error(&format!(
            "unknown subcommand or argument {extra:?} (see --help)"
        ));
    }
    let config = match Config::from_args(&args, hostname) {
        Ok(c) => c,
        Err(e) => return config_error(&e),
    };
    let mut settings = match kube::Settings::from_args(&args, &|k| std::env::var(k).ok()) {
        Ok(s) => s,
        Err(e) => return config_error(&e),
    };
    if args.get("discovery-timeout").is_none() {
        // The default fits any interval: a round waits at most half of it on the API.
        settings.discovery_timeout = settings.discovery_timeout.min(config.interval / 2);
    } else if settings.discovery_timeout >= config.interval {
        return config_error("--discovery-timeout: must be less than --interval");
    }
    let domain = cluster_domain(&config);
    let client = match kube::Client::new(settings) {
        Ok(c) => c,
        Err(e) => return config_error(&e.to_string()),
    };
    let options = ProbeOptions {
        timeout: config.timeout,
        count: config.count,
        size: config.size,
        kind: config.icmp_socket,
        ..ProbeOptions::default()
    };
    let prober = match Prober::open(&options) {
        Ok(p) => p,
        Err(e) => return config_error(&e.to_string()),
    };
    log::info!(
        "node {}, pod {}, api {}, cluster domain {domain}, {}",
        config.node_name,
        config.pod_name,
        client.settings().api_server,
        prober.describe()
    );
    let agent = Agent {
        config,
        domain,
        client,
        prober,
        snapshot: None,
    };
    if agent.config.once {
        agent.once()
    } else {
        agent.serve()
    }
}

fn config_error(line: &str) -> i32 {
    log::error!("{line}");
    2
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The cluster domain: the flag, else the resolver's search list, else `cluster.local`.
fn cluster_domain(config: &Config) -> String {
    if let Some(d) = &config.cluster_domain {
        return d.clone();
    }
    let path = &config.resolv_conf;
    match std::fs::read_to_string(path) {
        Ok(text) => {
            if let Some(d) = dns::cluster_domain(&text) {
                log::info!(
                    "cluster domain {d} (from the search list in {})",
                    path.display()
                );
                return d;
            }
            log::warn!(
                "no svc.<domain> entry in the search list of {}; assuming cluster.local (set --cluster-domain)",
                path.display()
            );
        }
        Err(e) => log::warn!(
            "cannot read {}: {e}; assuming cluster domain cluster.local (set --cluster-domain)",
            path.display()
        ),
    }
    "cluster.local".to_string()
}

struct Agent {
    config: Config,
    domain: String,
    client: kube::Client,
    prober: Prober,
    /// The last successful discovery and when it finished: rounds go on with it while the
    /// API is unreachable, and say how old it is.
    snapshot: Option<(Snapshot, Instant)>,
}

/// What one round produced, or why it could not run.
enum Outcome {
    Done(Box<RoundReport>),
    NoMembers(kube::Error),
}

impl Agent {
    /// Discovery then the probes. An API failure after a good discovery probes the last
    /// known members and reports the error; with no discovery yet there is nothing to probe.
    fn round(&mut self, previous: Option<&RoundReport>, api_errors: &mut Vec<String>) -> Outcome {
        let api_error = match self.client.snapshot() {
            Ok(s) => {
                self.snapshot = Some((s, Instant::now()));
                None
            }
            Err(e) => {
                log::error!("kubernetes api: {e}");
                api_errors.push(e.kind().to_string());
                match self.snapshot {
                    Some(_) => Some(e.to_string()),
                    None => return Outcome::NoMembers(e),
                }
            }
        };
        let Some((snapshot, discovered)) = &self.snapshot else {
            return Outcome::NoMembers(kube::Error::Other("no discovery yet".into()));
        };
        let plan = plan::plan(snapshot, &self.domain);
        let ctx = Context {
            node: &self.config.node_name,
            pod: &self.config.pod_name,
            prober: &self.prober,
            dns_timeout: self.config.dns_timeout,
            previous,
            api_error,
            snapshot_age: discovered.elapsed(),
        };
        Outcome::Done(Box::new(round::run(&plan, &ctx)))
    }

    fn once(mut self) -> i32 {
        let mut api_errors = Vec::new();
        match self.round(None, &mut api_errors) {
            Outcome::NoMembers(e) => config_error(&format!("cannot run a round: {e}")),
            Outcome::Done(report) => {
                match self.config.output {
                    Output::Json => match serde_json::to_string_pretty(&report) {
                        Ok(j) => print_block(&(j + "\n")),
                        Err(e) => return config_error(&format!("cannot encode the round: {e}")),
                    },
                    Output::Text => print_block(&table::render(&report)),
                }
                i32::from(report.errors > 0)
            }
        }
    }

    fn serve(mut self) -> i32 {
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
                return config_error(&format!("cannot handle signal {sig}: {e}"));
            }
        }
        spawn_exit_watchdog(stop.clone());
        let shared = Arc::new(Shared::new(AgentInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            node: self.config.node_name.clone(),
            pod: self.config.pod_name.clone(),
        }));
        let server = match HttpServer::start(self.config.listen, shared.clone()) {
            Ok(s) => s,
            Err(e) => {
                return config_error(&format!(
                    "cannot listen on {}: {e} (change --listen)",
                    self.config.listen
                ))
            }
        };
        log::info!(
            "serving /prometheus.report, /status.json, /livez, /readyz on {}; a round every {}",
            server.addr,
            crate::duration::format(self.config.interval)
        );
        let mut previous: Option<RoundReport> = None;
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let mut api_errors = Vec::new();
            match self.round(previous.as_ref(), &mut api_errors) {
                Outcome::Done(report) => {
                    print_block(&table::render(&report));
                    let mut state = shared.lock();
                    for kind in &api_errors {
                        state.totals.api_error(kind);
                    }
                    state.totals.record(&report);
                    state.last = Some((*report).clone());
                    shared.publish(&state);
                    drop(state);
                    previous = Some(*report);
                }
                Outcome::NoMembers(e) => {
                    log::error!("no round: no members known yet ({e}); retrying next round");
                    let mut state = shared.lock();
                    for kind in &api_errors {
                        state.totals.api_error(kind);
                    }
                    shared.publish(&state);
                }
            }
            next += self.config.interval;
            let now = Instant::now();
            if next < now {
                // The round overran the interval: start the next one now, do not pile up.
                next = now;
            }
            while !stop.load(Ordering::Relaxed) && Instant::now() < next {
                std::thread::sleep(Duration::from_millis(100).min(next - Instant::now()));
            }
        }
        log::info!("signal received, stopping");
        server.stop();
        claim_exit();
        0
    }
}

/// Set by whichever path ends the process, so that only one of them calls `exit`.
static EXITING: AtomicBool = AtomicBool::new(false);

/// Makes the caller the one that ends the process; if the watchdog already is, waits for it.
fn claim_exit() {
    if EXITING.swap(true, Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
}

/// The round loop sees a signal only between rounds, and a round can wait many seconds on a
/// hung API server or resolver. The agent is PID 1 with nothing to flush or release, so when
/// the loop has not ended shortly after a signal, this thread ends the process (in time for
/// the manifest's 5 s grace period, and within a second).
fn spawn_exit_watchdog(stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("exit-watchdog".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
            }
            std::thread::sleep(Duration::from_millis(500));
            if !EXITING.swap(true, Ordering::SeqCst) {
                log::info!("signal received during a round, stopping now");
                std::process::exit(0);
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the exit watchdog ({e}); a signal ends the agent between rounds");
    }
}
