//! The arm64 agent binary (what the arm64 image ships), run under `qemu-aarch64-static` on
//! this machine, against the same namespaces as the amd64 release binary: `--version`, the
//! `ping` subcommand as root and as uid 65534, and `--once` rounds in the namespace lab, healthy
//! and with faults, give the same results (RTTs aside). qemu is called explicitly, so no binfmt
//! handler is needed. `make image` (or `make release`) builds both binaries first.
//!
//! Needs root, qemu-user-static and the arm64 release build; in CI a missing piece fails.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use cluster_box::lab::{Lab, Options, FAST_ROUNDS};
use cluster_box::{need_root, Spec};
use common::{veth, Netns};
use serde_json::Value;

const NAME: &str = "k8s-network-test-daemonset";
const AMD64_DEBUG: &str = env!("CARGO_BIN_EXE_k8s-network-test-daemonset");
/// The environment variable the lab's wrapper reads to pick the binary (see [`wrapper`]).
const PICK: &str = "ARCH_UNDER_TEST";

/// The two binaries and the emulator.
struct Binaries {
    amd64: PathBuf,
    arm64: PathBuf,
    qemu: PathBuf,
}

/// The binaries when this test can run; in CI a missing piece is a failure, not a skip.
fn binaries(test: &str) -> Option<Binaries> {
    if !need_root(test) {
        return None;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let arm64 = target.join(format!("aarch64-unknown-linux-musl/release/{NAME}"));
    let qemu = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("qemu-aarch64-static"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file());
    let missing = match (&qemu, modified(&arm64)) {
        (None, _) => {
            Some("qemu-aarch64-static (apt-get install qemu-user-static; make setup)".to_string())
        }
        (_, None) => Some(format!(
            "the arm64 release binary {} (make image or make release)",
            arm64.display()
        )),
        (_, Some(built)) if newest_source(root).is_some_and(|src| src > built) => Some(format!(
            "{} is older than the sources (make image or make release)",
            arm64.display()
        )),
        _ => None,
    };
    match (missing, qemu) {
        (None, Some(qemu)) => {
            let amd64 = cluster_box::lab::release_agent(AMD64_DEBUG);
            Some(Binaries { amd64, arm64, qemu })
        }
        (what, _) => {
            let what = what.unwrap_or_default();
            if std::env::var_os("CI").is_some() {
                panic!("{test}: needs {what}, and CI must run it");
            }
            eprintln!("{test}: skipped, needs {what}");
            None
        }
    }
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The newest modification time of the files the agent is built from.
fn newest_source(root: &Path) -> Option<SystemTime> {
    let mut newest = None;
    let mut stack = vec![
        root.join("src"),
        root.join("Cargo.toml"),
        root.join("Cargo.lock"),
    ];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(
                std::fs::read_dir(&p)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            );
        } else {
            newest = newest.max(modified(&p));
        }
    }
    newest
}

/// Exit code, stdout and stderr of a finished command.
fn result(out: Output) -> (Option<i32>, String, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn arm64_binary_is_aarch64_and_prints_the_same_version() {
    let Some(b) = binaries("arm64_binary_is_aarch64_and_prints_the_same_version") else {
        return;
    };
    // ELF header: 64-bit, little-endian, e_machine 0xb7 (EM_AARCH64); the amd64 one is 0x3e.
    let header = |p: &Path| std::fs::read(p).unwrap()[..20].to_vec();
    assert_eq!(
        header(&b.arm64)[18..20],
        [0xb7, 0],
        "{} is not an aarch64 ELF",
        b.arm64.display()
    );
    assert_eq!(header(&b.amd64)[18..20], [0x3e, 0]);
    let arm = result(
        Command::new(&b.qemu)
            .arg(&b.arm64)
            .arg("--version")
            .output()
            .unwrap(),
    );
    let amd = result(Command::new(&b.amd64).arg("--version").output().unwrap());
    assert_eq!(arm, amd);
    assert_eq!(
        arm.1.trim(),
        format!("{NAME} {}", env!("CARGO_PKG_VERSION"))
    );
}

/// A live peer (v4 and v6) and an address whose ICMP the peer's firewall drops.
const LIVE4: &str = "198.18.26.2";
const LIVE6: &str = "2001:db8:26::2";
const DROP4: &str = "198.18.26.3";

/// `ping`'s lines without the RTT figures and padding: `<target> <n>/<m> received, ...`.
fn without_rtts(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| {
            let l = l.split(", rtt ").next().unwrap_or(l);
            l.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect()
}

#[test]
fn arm64_ping_reports_what_amd64_reports() {
    let Some(b) = binaries("arm64_ping_reports_what_amd64_reports") else {
        return;
    };
    let p = Netns::new("qap");
    let q = Netns::new("qaq");
    veth(
        &p,
        "pa",
        &["198.18.26.1/24", "2001:db8:26::1/64"],
        &q,
        "qb",
        &["198.18.26.2/24", "2001:db8:26::2/64", "198.18.26.3/32"],
    );
    p.exec(&["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"]);
    q.exec(&[
        "iptables", "-A", "INPUT", "-d", DROP4, "-p", "icmp", "-j", "DROP",
    ]);
    // A fresh link can miss its first IPv6 neighbour exchange: wait (bounded) until both
    // live addresses answer the amd64 binary, so what follows compares the binaries only.
    let ready = (0..25).any(|_| {
        let ping = [
            b.amd64.to_str().unwrap(),
            "ping",
            "--timeout",
            "200ms",
            LIVE4,
            LIVE6,
        ];
        let out = p.command(ping[0]).args(&ping[1..]).output().unwrap();
        out.status.success()
    });
    assert!(ready, "{LIVE4} and {LIVE6} never both answered");

    let args = [
        "ping",
        "--count",
        "3",
        "--interval",
        "20ms",
        "--timeout",
        "500ms",
        LIVE4,
        LIVE6,
        DROP4,
    ];
    // As root (`auto`: the ping socket, since the group range allows it; then a raw socket),
    // and as the image runs it: uid and gid 65534, no capabilities.
    for (who, socket) in [("root", "auto"), ("root", "raw"), ("65534", "dgram")] {
        let run = |prefix: &[&Path]| {
            let mut cmd = if who == "root" {
                p.command(prefix[0].to_str().unwrap())
            } else {
                let mut c = p.command("setpriv");
                c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                    .arg(prefix[0]);
                c
            };
            cmd.args(&prefix[1..]).args(args).args(["--socket", socket]);
            result(cmd.output().unwrap())
        };
        let amd = run(&[&b.amd64]);
        let arm = run(&[&b.qemu, &b.arm64]);
        assert_eq!(amd.0, Some(1), "{who} {socket}: amd64: {amd:?}");
        assert_eq!(arm.0, amd.0, "{who} {socket}: arm64: {arm:?}");
        let lines = without_rtts(&amd.1);
        assert_eq!(
            lines,
            [
                format!("{LIVE4} 3/3 received, 0.0% loss"),
                format!("{LIVE6} 3/3 received, 0.0% loss"),
                format!("{DROP4} 0/3 received, 100.0% loss, no reply within 500ms"),
            ],
            "{who} {socket}: amd64: {}",
            amd.1
        );
        assert_eq!(
            without_rtts(&arm.1),
            lines,
            "{who} {socket}: arm64: {arm:?}"
        );
    }
}

/// A lab agent binary that runs the arm64 binary under qemu when [`PICK`] is `arm64`, else
/// the amd64 one (the lab's long-running agents): one lab, either binary in the same pod.
fn wrapper(dir: &Path, b: &Binaries) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("agent");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nif [ \"${PICK}\" = arm64 ]; then\n  echo 'wrapper: arm64 under qemu' >&2\n  exec '{}' '{}' \"$@\"\nfi\nexec '{}' \"$@\"\n",
            b.qemu.display(),
            b.arm64.display(),
            b.amd64.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A round's checks by `kind target_node target address`, each with everything the round
/// says of it but the RTT.
fn outcomes(json: &str) -> BTreeMap<String, Value> {
    let round: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    cluster_box::status::checks(&round)
        .iter()
        .map(|c| {
            let mut c = c.clone();
            let key = ["kind", "target_node", "target", "address"]
                .map(|k| c[k].as_str().unwrap_or("?").to_string())
                .join(" ");
            if let Some(o) = c.as_object_mut() {
                o.remove("rtt_seconds");
            }
            (key, c)
        })
        .collect()
}

/// `--once --output json` in pod `i` by both binaries: the same exit code and checks.
fn same_round(lab: &Lab, i: usize, want_code: i32) -> BTreeMap<String, Value> {
    let args = ["--once", "--output", "json"];
    let (amd_code, amd, amd_err) = lab.run_once(i, &args);
    let (arm_code, arm, arm_err) = lab.run_once_env(i, &args, &[(PICK, "arm64")]);
    assert!(arm_err.contains("wrapper: arm64 under qemu"), "{arm_err}");
    assert_eq!(amd_code, want_code, "amd64: {amd}{amd_err}");
    assert_eq!(arm_code, amd_code, "arm64: {arm}{arm_err}");
    let (amd, arm) = (outcomes(&amd), outcomes(&arm));
    assert!(!amd.is_empty());
    assert_eq!(arm, amd, "arm64 vs amd64 round in pod {i}");
    amd
}

#[test]
fn arm64_once_round_matches_amd64_in_the_lab() {
    let Some(b) = binaries("arm64_once_round_matches_amd64_in_the_lab") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut lab = Lab::start(Options {
        spec: Spec {
            nodes: 3,
            ..Spec::default()
        },
        binary: wrapper(dir.path(), &b),
        agent_args: FAST_ROUNDS.map(String::from).to_vec(),
        prometheus: false,
    });

    // Every agent serves its port before the checks (`pod-tcp` connects to it): each has
    // published a round.
    for i in 0..lab.cluster.agents.len() {
        lab.round_after(i, "", std::time::Duration::from_secs(60));
    }
    // Healthy: every check passes, for both.
    let objects = cluster_box::lab::api_objects(&lab.cluster, &Default::default());
    let planned = common::planned_checks(&objects, &lab.cluster.spec.domain)
        .checks
        .len();
    let healthy = same_round(&lab, 1, 0);
    assert_eq!(healthy.len(), planned);

    // Faults: a DNS instance stopped, node 2's cable pulled, node 1's agent pod gone from the
    // API. Both binaries fail exactly the same checks, with the same reasons and messages.
    lab.cluster.dns[0].stop();
    lab.cluster.set_node_link(2, false);
    lab.hide_agent(1, true);
    let faulty = same_round(&lab, 0, 1);
    let failed: Vec<&str> = faulty
        .iter()
        .filter(|(_, c)| c["ok"] == false)
        .map(|(_, c)| c["kind"].as_str().unwrap_or("?"))
        .collect();
    assert!(
        failed.contains(&"dns-instance")
            && failed.contains(&"host-ping")
            && failed.contains(&"pod-ping")
            && failed.contains(&"node-without-agent"),
        "{faulty:#?}"
    );
}
