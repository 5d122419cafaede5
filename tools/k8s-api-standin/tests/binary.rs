//! The `k8s-api-standin` binary as the end-to-end harness uses it: start line, cluster file
//! and fault file re-read on change, exit on SIGTERM. Runs inside a namespace on 198.19.231.2.

use cluster_box::netns::{need_root, Netns};
use k8s_api_standin::{node, trusting_client, Cluster};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn write_cluster(path: &std::path::Path, nodes: usize) {
    let c = Cluster {
        nodes: (0..nodes)
            .map(|i| node(&format!("n{i}"), &[], false, true))
            .collect(),
        ..Cluster::default()
    };
    // Write then rename, as a harness should, so the stand-in never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_string(&c).unwrap()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Polls `f` until it returns true, for at most 10 s.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{what}: not within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn binary_serves_and_follows_files() {
    if !need_root("binary_serves_and_follows_files") {
        return;
    }
    let ns = Netns::new("sbin");
    ns.ip(&["addr", "add", "198.19.231.2/32", "dev", "lo"]);
    let dir = tempfile::tempdir().unwrap();
    let cluster_path = dir.path().join("cluster.json");
    write_cluster(&cluster_path, 1);
    let state = dir.path().join("state");
    let mut child = ns
        .command(env!("CARGO_BIN_EXE_k8s-api-standin"))
        .args(["--listen", "198.19.231.2:6443", "--cluster"])
        .arg(&cluster_path)
        .arg("--dir")
        .arg(&state)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("no start line");
    assert_eq!(line, "listening on https://198.19.231.2:6443\n");

    let (state2, cluster2) = (state.clone(), cluster_path.clone());
    ns.run(move || {
        let token = std::fs::read_to_string(state2.join("token")).unwrap();
        let agent = trusting_client(&state2.join("ca.crt"), Duration::from_secs(5));
        let get = || {
            let mut r = agent
                .get("https://198.19.231.2:6443/api/v1/nodes")
                .header("Authorization", format!("Bearer {token}"))
                .call()
                .unwrap();
            let body = r.body_mut().read_to_string().unwrap();
            (r.status().as_u16(), body)
        };
        let count = |body: &str| {
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            v["items"].as_array().map_or(0, Vec::len)
        };
        assert_eq!(count(&get().1), 1);
        write_cluster(&cluster2, 3);
        eventually("new cluster served", || count(&get().1) == 3);
        std::fs::write(
            state2.join("fault.json"),
            r#"{"kind":"status","code":503,"content_type":"text/plain","body":"down","count":1}"#,
        )
        .unwrap();
        eventually("fault applied", || get() == (503, "down".to_string()));
        assert_eq!(get().0, 200, "count 1 clears the fault");
        std::fs::write(
            state2.join("fault.json"),
            r#"{"kind":"status","code":500,"content_type":"text/plain","body":"x"}"#,
        )
        .unwrap();
        eventually("second fault applied", || get().0 == 500);
        std::fs::remove_file(state2.join("fault.json")).unwrap();
        eventually("fault cleared on removal", || get().0 == 200);
    });

    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn binary_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"pods\": 3}").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_k8s-api-standin"))
        .args(["--listen", "198.19.231.3:0", "--cluster"])
        .arg(&bad)
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a cluster file"), "{err}");
}
