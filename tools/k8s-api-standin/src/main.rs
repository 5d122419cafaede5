//! `k8s-api-standin --listen ADDR:PORT --cluster FILE.json --dir DIR`
//!
//! Serves FILE.json (the `Cluster` form) over HTTPS for end-to-end tests; writes `DIR/ca.crt`
//! and `DIR/token`; prints `listening on https://...` when ready; re-reads FILE.json and
//! `DIR/fault.json` (a `FaultPlan`) when their modification time changes; exits on SIGTERM/SIGINT.

use k8s_api_standin::{Cluster, FaultPlan, StandIn};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const USAGE: &str = "usage: k8s-api-standin --listen ADDR:PORT --cluster FILE.json --dir DIR";

fn main() {
    if let Err(e) = try_main() {
        eprintln!("k8s-api-standin: {e}");
        std::process::exit(2);
    }
}

#[derive(Debug)]
struct Args {
    listen: SocketAddr,
    cluster: PathBuf,
    dir: PathBuf,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut listen, mut cluster, mut dir) = (None, None, None);
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value; {USAGE}"))
        };
        match flag.as_str() {
            "--listen" => {
                let v = value()?;
                listen = Some(
                    v.parse::<SocketAddr>()
                        .map_err(|e| format!("--listen {v}: {e} (want IP:PORT, [IPv6]:PORT)"))?,
                );
            }
            "--cluster" => cluster = Some(PathBuf::from(value()?)),
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other}; {USAGE}")),
        }
    }
    Ok(Args {
        listen: listen.ok_or_else(|| format!("missing --listen; {USAGE}"))?,
        cluster: cluster.ok_or_else(|| format!("missing --cluster; {USAGE}"))?,
        dir: dir.ok_or_else(|| format!("missing --dir; {USAGE}"))?,
    })
}

fn read_cluster(path: &Path) -> Result<Cluster, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a cluster file ({e})", path.display()))
}

fn read_fault(path: &Path) -> Result<FaultPlan, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a fault file ({e})", path.display()))
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn try_main() -> Result<(), String> {
    let args = parse_args(std::env::args().skip(1))?;
    let cluster = read_cluster(&args.cluster)?;
    let mut cluster_mtime = mtime(&args.cluster);
    let fault_path = args.dir.join("fault.json");
    let mut fault_mtime = None;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| format!("signal handler: {e}"))?;
    }
    let mut standin = StandIn::start(args.listen, cluster, &args.dir)
        .map_err(|e| format!("cannot start on {}: {e}", args.listen))?;
    let mut out = std::io::stdout();
    writeln!(out, "listening on {}", standin.url())
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))?;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        let now = mtime(&args.cluster);
        if now.is_some() && now != cluster_mtime {
            match read_cluster(&args.cluster) {
                Ok(c) => {
                    standin.set_cluster(c);
                    cluster_mtime = now;
                }
                // Retried on the next tick: a harness may be half-way through writing it.
                Err(e) => eprintln!("k8s-api-standin: keeping the previous cluster: {e}"),
            }
        }
        let now = mtime(&fault_path);
        if now != fault_mtime {
            fault_mtime = now;
            if now.is_none() {
                standin.clear_fault();
            } else {
                match read_fault(&fault_path) {
                    Ok(plan) => standin.set_fault_plan(Some(plan)),
                    Err(e) => eprintln!("k8s-api-standin: ignoring the fault file: {e}"),
                }
            }
        }
    }
    standin.stop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Args, String> {
        parse_args(s.split_whitespace().map(str::to_string))
    }

    #[test]
    fn flags() {
        let a = args("--listen [2001:db8::1]:6443 --cluster c.json --dir d").unwrap();
        assert_eq!(a.listen.port(), 6443);
        assert!(args("--listen nope --cluster c --dir d")
            .unwrap_err()
            .contains("--listen nope"));
        assert!(args("--cluster c --dir d")
            .unwrap_err()
            .starts_with("missing --listen"));
        assert!(args("--listen").unwrap_err().contains("needs a value"));
        assert!(args("--bogus").unwrap_err().contains("unknown argument"));
    }
}
