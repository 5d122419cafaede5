//! A real Prometheus server (Debian's `prometheus` package) scraping the agents from inside
//! the cluster network, and instant queries against it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::http;
use crate::Netns;

/// A Prometheus process; killed on drop.
pub struct Prometheus {
    pub addr: SocketAddr,
    ns_name: String,
    child: Child,
    dir: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus in `ns` listening on `addr`, scraping `targets` at `path` every
    /// second, with its data under `dir`. Waits until it is ready.
    pub fn start(
        ns: &Netns,
        addr: SocketAddr,
        targets: &[SocketAddr],
        path: &str,
        dir: &Path,
    ) -> Prometheus {
        let dir = dir.join("prometheus");
        std::fs::create_dir_all(&dir).expect("create prometheus dir");
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: agents\n    metrics_path: {path}\n    static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
        let child = ns
            .command("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start prometheus (is it installed? run make setup)");
        let p = Prometheus {
            addr,
            ns_name: ns.name.clone(),
            child,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = p.get("/-/ready") {
                if r.status == 200 {
                    return p;
                }
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready after 30 s; see {}",
                p.dir.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn get(&self, path: &str) -> Result<http::Response, String> {
        http::get(&self.ns_name, self.addr, path)
    }

    /// Evaluates `expr` now: the first sample's value, or `None` for an empty result.
    pub fn query(&self, expr: &str) -> Result<Option<f64>, String> {
        let r = self.get(&format!("/api/v1/query?query={}", http::encode(expr)))?;
        let v: serde_json::Value =
            serde_json::from_str(&r.body).map_err(|e| format!("query {expr}: {e}: {}", r.body))?;
        if v["status"] != "success" {
            return Err(format!("query {expr}: {}", r.body));
        }
        let first = &v["data"]["result"][0]["value"][1];
        Ok(first.as_str().and_then(|s| s.parse().ok()))
    }

    /// Polls `expr` until `want(value)` holds, up to `timeout`; returns the last value.
    pub fn wait_for(
        &self,
        expr: &str,
        timeout: Duration,
        want: impl Fn(Option<f64>) -> bool,
    ) -> Option<f64> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.query(expr).ok().flatten();
            if want(v) || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `promtool check metrics` on a scrape body: its exit code and everything it printed
/// (a clean scrape gives 0 and nothing). Panics when promtool cannot run: tests need it.
pub fn promtool_check_metrics(text: &str) -> (i32, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian package prometheus)");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).expect("write to promtool");
    }
    let out = child.wait_with_output().expect("promtool runs");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), printed)
}
