//! The agent: start-up, the round loop, and `--once`.
//!
//! Threads: this one runs rounds (discovery, then the probes, which use their own threads);
//! the HTTP server has its own. SIGTERM/SIGINT set a flag that the loop checks every 100 ms,
//! so the process ends within a second (it is PID 1 in a scratch image).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{print_block, StartError};
use crate::cli::{self, Parsed};
use crate::config::{value, Config, ConfigError, Output, FLAGS};
use crate::dns;
use crate::http::{HttpServer, Shared};
use crate::icmp::{ProbeOptions, Prober};
use crate::kube::{self, Snapshot};
use crate::matrix;
use crate::plan;
use crate::report::RoundReport;
use crate::round::{self, Context, Live};
use crate::schedule::Schedule;
use crate::view::json_log::{self, LogFormat};
use crate::view::log as table;
use crate::view::metrics::{AgentInfo, Reporting};

const ABOUT: &str =
    "k8s-network-test-daemonset: checks the Kubernetes cluster network from every node \
(ICMP to every agent pod and node, cluster DNS) and serves the results to Prometheus.\n\
Subcommands: `ping TARGET...` (see `ping --help`), `matrix` (see `matrix --help`).";

/// Runs the agent with its arguments; returns the exit code (a start-up error is logged as
/// one line and is exit code 2).
pub fn main(argv: Vec<String>) -> i32 {
    match run(argv) {
        Ok(code) => code,
        Err(e) => {
            log::error!("{e}");
            2
        }
    }
}

fn run(argv: Vec<String>) -> Result<i32, StartError> {
    let args =
        match cli::parse(FLAGS, argv, |k| std::env::var(k).ok()).map_err(ConfigError::from)? {
            Parsed::Run(a) => a,
            Parsed::Help => {
                print_block(&cli::help(
                    "k8s-network-test-daemonset [OPTIONS]",
                    ABOUT,
                    FLAGS,
                ));
                return Ok(0);
            }
            Parsed::Version => {
                print_block(&super::version_line());
                return Ok(0);
            }
        };
    if let Some(extra) = args.positional.first() {
        return Err(ConfigError::Usage(format!(
            "unknown subcommand or argument {extra:?} (see --help)"
        ))
        .into());
    }
    let config = Config::from_args(&args, hostname)?;
    let mut settings = kube::Settings::from_args(&args, &|k| std::env::var(k).ok())?;
    if !args.is_given("discovery-timeout") {
        // The default fits any interval: a round waits at most half of it on the API.
        settings.discovery_timeout = settings.discovery_timeout.min(config.interval / 2);
    } else if settings.discovery_timeout >= config.interval {
        return Err(
            ConfigError::invalid("discovery-timeout", "must be less than --interval").into(),
        );
    }
    let domain = cluster_domain(&config);
    let watch_options = kube::WatchOptions {
        agent_service: value(&args, "agent-service")?.to_string(),
        node_selector: config.expect_agent_on.clone(),
        ..kube::WatchOptions::default()
    };
    let dns_service = (settings.dns_namespace.clone(), settings.dns_service.clone());
    let client = kube::Client::new(settings)?;
    let api_server = client.settings().api_server.clone();
    let options = ProbeOptions {
        timeout: config.timeout,
        count: config.count,
        size: config.size,
        kind: config.icmp_socket,
        max_pps: config.max_pps,
        ..ProbeOptions::default()
    };
    let prober = Prober::open(&options)?;
    let mtu = mtu_prober(&config, &options);
    log::info!(
        "node {}, pod {}, api {}, cluster domain {domain}, {}",
        config.node_name,
        config.pod_name,
        client.settings().api_server,
        prober.describe()
    );
    let planner = plan::Planner::new(&domain, &config.node_name, config.reach)
        .with_port(config.listen.port())
        .with_mtu(mtu.is_some());
    // --once lists once; the long-running agent lists once, then watches.
    let members = if config.once {
        Members::Once(Box::new((client, watch_options)))
    } else {
        Members::Watched(kube::Discovery::start(client, watch_options)?)
    };
    let planner = planner.with_dns_service(&dns_service.0, &dns_service.1);
    let agent = Agent {
        planner,
        ages: crate::alarms::Ages::default(),
        fates: kube::Fates::default(),
        config,
        members,
        prober,
        mtu,
        seen: None,
        api_server,
    };
    if agent.config.once {
        agent.once()
    } else {
        agent.serve()
    }
}

/// The `pod-mtu` prober and its packet size (`--mtu-size`, else the pod interface's MTU), or
/// `None` (with a log line saying why) when `pod-mtu` is off or cannot run.
fn mtu_prober(config: &Config, options: &ProbeOptions) -> Option<(Prober, u32)> {
    let mtu = match config.mtu_size {
        Some(0) => {
            log::info!("pod-mtu: off (--mtu-size 0)");
            return None;
        }
        Some(n) => n,
        None => match crate::mtu::pod_mtu() {
            Ok((iface, mtu)) => {
                log::info!("pod-mtu: {mtu}-byte echoes (the MTU of {iface}, the default route's interface)");
                mtu
            }
            Err(e) => {
                log::warn!("pod-mtu: off: cannot tell the pod's MTU ({e}); set --mtu-size");
                return None;
            }
        },
    };
    let opts = ProbeOptions {
        count: 1,
        pmtu_probe: true,
        ..options.clone()
    };
    match Prober::open(&opts) {
        Ok(p) => Some((p, mtu)),
        Err(e) => {
            log::warn!("pod-mtu: off: cannot open a don't-fragment icmp socket: {e}");
            None
        }
    }
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
    /// What each round checks; keeps the reduced mesh's choice between rounds.
    planner: plan::Planner,
    /// When nodes appeared and agent pods went not Ready (the start-up grace period).
    ages: crate::alarms::Ages,
    /// Which failing nodes are going away (full Node GETs, kept a minute).
    fates: kube::Fates,
    config: Config,
    members: Members,
    prober: Prober,
    /// The `pod-mtu` prober (don't fragment) and the packet size it sends; `None`: no
    /// `pod-mtu` checks.
    mtu: Option<(Prober, u32)>,
    /// The members of the last round's snapshot, for the matrix (taken by the loop).
    seen: Option<matrix::Members>,
    /// The API server's URL, the `api` check's target.
    api_server: String,
}

/// Where a round's members come from.
enum Members {
    /// `--once`: one list of each resource.
    Once(Box<(kube::Client, kube::WatchOptions)>),
    /// Watched in the background; a round reads the views (the last known members while the
    /// API cannot be reached, with their age).
    Watched(kube::Discovery),
}

/// The members, any API error, how old the members are, and the round's API request (how
/// long it took, or how it failed: the `api` check).
type Discovered = (
    Snapshot,
    Option<String>,
    Duration,
    Result<Duration, kube::Error>,
);

/// What one round produced, or why it could not run.
enum Outcome {
    Done(Box<RoundReport>),
    NoMembers(kube::Error),
}

impl Agent {
    /// The members, any API error and how old the members are. An API failure after a
    /// good discovery keeps the last known members (the views) and reports the error.
    fn discover(&self, api_errors: &mut Vec<String>) -> Result<Discovered, kube::Error> {
        match &self.members {
            Members::Once(once) => {
                let client = &once.0;
                // The `api` check's request, as the watched agent's discovery makes it.
                let started = Instant::now();
                let probe = client
                    .reachable(started + client.settings().discovery_timeout)
                    .map(|()| started.elapsed());
                kube::Discovery::once(client, &once.1)
                    .map(|s| (s, None, Duration::ZERO, probe))
                    .inspect_err(|e| {
                        log::error!("kubernetes api: {e}");
                        api_errors.push(e.kind().to_string());
                    })
            }
            Members::Watched(discovery) => {
                let current = discovery.current();
                api_errors.extend(current.errors.iter().map(|k| k.to_string()));
                if let Some(e) = &current.api_error {
                    log::error!("kubernetes api: {e}");
                }
                match current.snapshot {
                    Some(s) => Ok((s, current.api_error, current.age, current.probe)),
                    None => Err(current
                        .error
                        .unwrap_or_else(|| kube::Error::Other("no discovery yet".into()))),
                }
            }
        }
    }

    /// Discovery then the probes; with no discovery yet there is nothing to probe.
    fn round(&mut self, previous: Option<&RoundReport>, api_errors: &mut Vec<String>) -> Outcome {
        let (snapshot, api_error, snapshot_age, api_probe) = match self.discover(api_errors) {
            Ok(found) => found,
            Err(e) => return Outcome::NoMembers(e),
        };
        let plan = self
            .planner
            .plan(&snapshot)
            .with_api(&self.api_server, &api_probe);
        if !self.config.once {
            self.seen = Some(matrix::Members::of(&snapshot, &self.config.node_name));
        }
        let ctx = Context {
            node: &self.config.node_name,
            pod: &self.config.pod_name,
            previous,
            api_error,
            snapshot_age,
        };
        let live = Live {
            prober: &self.prober,
            dns_timeout: self.config.dns_timeout,
            tcp_timeout: self.config.timeout,
            mtu: self.mtu.as_ref().map(|(p, m)| (p, *m)),
        };
        let mut report = round::run(&plan, &ctx, &live);
        self.alarms(&mut report, &snapshot, previous);
        // Read each round: NodeLocal DNSCache may be enabled (or the pod's resolv.conf
        // changed) while the agent runs.
        report.resolver = std::fs::read_to_string(&self.config.resolv_conf)
            .ok()
            .and_then(|text| dns::resolver(&text, &snapshot.dns.service_ips));
        Outcome::Done(Box::new(report))
    }

    /// Reads the round's failures in the light of what the cluster says about their targets
    /// (`alarms`): asks the API which failing nodes are going away (not while it is
    /// unreachable: then only earlier answers count), then counts errors and changes again.
    fn alarms(
        &mut self,
        report: &mut RoundReport,
        snapshot: &Snapshot,
        previous: Option<&RoundReport>,
    ) {
        let now = std::time::Instant::now();
        self.ages.update(snapshot, now);
        let known: std::collections::HashSet<&str> =
            snapshot.nodes.iter().map(|n| n.name.as_str()).collect();
        let mut failing: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| c.is_failed() && known.contains(c.target_node.as_str()))
            .map(|c| c.target_node.as_str())
            .collect();
        failing.sort_unstable();
        failing.dedup();
        let fates = if failing.is_empty() || !self.config.alarms.skip_going_away {
            Default::default()
        } else {
            let client = match &self.members {
                Members::Once(once) => &once.0,
                Members::Watched(discovery) => discovery.client(),
            };
            // One request's timeout for them all, and never longer than a discovery may take.
            let s = client.settings();
            let until = if report.api_error.is_some() {
                now
            } else {
                now + s.timeout.min(s.discovery_timeout)
            };
            self.fates.of(client, &failing, until)
        };
        crate::alarms::apply(
            &mut report.checks,
            snapshot,
            &fates,
            &self.ages,
            now,
            &self.config.alarms,
        );
        report.errors = report.checks.iter().filter(|c| c.is_failed()).count();
        if let Some(prev) = previous {
            report.changes = crate::report::diff(&prev.checks, &report.checks);
        }
    }

    /// One round, printed; exit 0 when every check passed, 1 when one failed.
    fn once(mut self) -> Result<i32, StartError> {
        let mut api_errors = Vec::new();
        match self.round(None, &mut api_errors) {
            Outcome::NoMembers(e) => Err(StartError::NoRound(e)),
            Outcome::Done(report) => {
                match self.config.output {
                    Output::Json => print_block(&(serde_json::to_string_pretty(&report)? + "\n")),
                    Output::Text => print_block(&self.log_view(&report)),
                }
                Ok(i32::from(report.errors > 0))
            }
        }
    }

    /// The round as the log shows it (`--log-format`, `--log-table`).
    fn log_view(&self, report: &RoundReport) -> String {
        match self.config.log_format {
            LogFormat::Text => table::render(report, self.config.log_table),
            LogFormat::Json => json_log::render(report),
        }
    }

    /// Rounds until SIGTERM or SIGINT, serving the endpoints.
    fn serve(mut self) -> Result<i32, StartError> {
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(sig, stop.clone()).map_err(StartError::Signal)?;
        }
        spawn_exit_watchdog(stop.clone());
        let shared = Arc::new(Shared::with_matrix(
            AgentInfo {
                version: env!("CARGO_PKG_VERSION").to_string(),
                node: self.config.node_name.clone(),
                pod: self.config.pod_name.clone(),
            },
            matrix::Settings {
                interval: self.config.interval,
                port: self.config.listen.port(),
                ..matrix::Settings::default()
            },
        ));
        {
            let mut state = shared.lock();
            state.totals.reporting = Some(Reporting {
                interval: self.config.interval,
                reach: self.config.reach,
            });
            shared.publish(&state);
        }
        let server = HttpServer::start(self.config.listen, shared.clone()).map_err(|source| {
            StartError::Listen {
                addr: self.config.listen,
                source,
            }
        })?;
        log::info!(
            "serving / (the matrix), /prometheus.report, /status.json, /summary.json, /matrix.json, /livez, /readyz on {}; a round every {}",
            server.addr,
            crate::duration::format(self.config.interval)
        );
        let schedule = Schedule::new(&self.config.pod_name, self.config.interval);
        log::info!(
            "rounds start {:.3}s into each {} of the wall clock (the slot of pod {}), the first at once",
            schedule.offset().as_secs_f64(),
            crate::duration::format(self.config.interval),
            self.config.pod_name
        );
        while !stop.load(Ordering::Relaxed) {
            let clock = Instant::now();
            let started = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let mut api_errors = Vec::new();
            // The last round is kept once, shared by the state and the published pages (only
            // this loop replaces it); the new round borrows it as its previous one. A copy of
            // every check each round cost time and memory at 5,000 nodes (BENCHMARKS.md).
            let previous = shared.lock().last.clone();
            match self.round(previous.as_deref(), &mut api_errors) {
                Outcome::Done(report) => {
                    print_block(&self.log_view(&report));
                    if let Some(members) = self.seen.take() {
                        shared.matrix().set_members(members);
                    }
                    let mut state = shared.lock();
                    for kind in &api_errors {
                        state.totals.api_error(kind);
                    }
                    state.totals.record(&report);
                    state.last = Some(Arc::new(*report));
                    drop(previous);
                    shared.publish(&state);
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
            // The next slot; a round that overran it starts the next one now (no pile-up).
            let delay = schedule.delay_to_next(started);
            let next = clock
                .checked_add(delay)
                .or_else(|| clock.checked_add(Duration::from_secs(365 * 86_400)))
                .unwrap_or(clock);
            while !stop.load(Ordering::Relaxed) && Instant::now() < next {
                std::thread::sleep(Duration::from_millis(100).min(next - Instant::now()));
            }
        }
        log::info!("signal received, stopping");
        server.stop();
        claim_exit();
        Ok(0)
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
