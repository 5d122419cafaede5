//! A real Prometheus server (Debian's `prometheus` package) scraping the agents from inside
//! the cluster network and evaluating the repository's alert rules, and instant queries and
//! the alerts API against it.

use std::collections::BTreeMap;
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
    /// second and evaluating `rules` (a rules file's text, if any) every second, with its data
    /// under `dir`. Waits until it is ready.
    pub fn start(
        ns: &Netns,
        addr: SocketAddr,
        targets: &[SocketAddr],
        path: &str,
        dir: &Path,
        rules: Option<&str>,
    ) -> Prometheus {
        let dir = dir.join("prometheus");
        std::fs::create_dir_all(&dir).expect("create prometheus dir");
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let mut config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: agents\n    metrics_path: {path}\n    static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        );
        if let Some(rules) = rules {
            let rules_path = dir.join("networktest.rules.yml");
            std::fs::write(&rules_path, rules).expect("write the rules");
            config.push_str(&format!("rule_files: ['{}']\n", rules_path.display()));
        }
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

    /// Evaluates `expr` now: the labels and value of every series of the result.
    pub fn query_all(&self, expr: &str) -> Result<Vec<(Labels, f64)>, String> {
        let r = self.get(&format!("/api/v1/query?query={}", http::encode(expr)))?;
        let v: serde_json::Value =
            serde_json::from_str(&r.body).map_err(|e| format!("query {expr}: {e}: {}", r.body))?;
        if v["status"] != "success" {
            return Err(format!("query {expr}: {}", r.body));
        }
        let series = v["data"]["result"].as_array().cloned().unwrap_or_default();
        Ok(series
            .iter()
            .map(|s| {
                let value = s["value"][1].as_str().and_then(|x| x.parse().ok());
                (labels(&s["metric"]), value.unwrap_or(f64::NAN))
            })
            .collect())
    }

    /// The alerts API (`/api/v1/alerts`): every pending or firing alert.
    pub fn alerts(&self) -> Result<Vec<Alert>, String> {
        let r = self.get("/api/v1/alerts")?;
        let v: serde_json::Value =
            serde_json::from_str(&r.body).map_err(|e| format!("alerts: {e}: {}", r.body))?;
        if v["status"] != "success" {
            return Err(format!("alerts: {}", r.body));
        }
        let list = v["data"]["alerts"].as_array().cloned().unwrap_or_default();
        Ok(list
            .iter()
            .map(|a| Alert {
                labels: labels(&a["labels"]),
                firing: a["state"] == "firing",
            })
            .collect())
    }

    /// The rules API (`/api/v1/rules`): every loaded rule's name (alert or record) and its
    /// health (`ok`, `err` with the evaluation error, or `unknown` before it ran).
    pub fn rules(&self) -> Result<Vec<(String, String)>, String> {
        let r = self.get("/api/v1/rules")?;
        let v: serde_json::Value =
            serde_json::from_str(&r.body).map_err(|e| format!("rules: {e}: {}", r.body))?;
        let groups = v["data"]["groups"].as_array().cloned().unwrap_or_default();
        Ok(groups
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .map(|rule| {
                let health = match rule["lastError"].as_str() {
                    Some(e) if !e.is_empty() => format!("err: {e}"),
                    _ => rule["health"].as_str().unwrap_or("").to_string(),
                };
                (rule["name"].as_str().unwrap_or("").to_string(), health)
            })
            .collect())
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

/// A series' labels.
pub type Labels = BTreeMap<String, String>;

/// An alert from the alerts API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Its labels, `alertname` included.
    pub labels: BTreeMap<String, String>,
    /// Firing (else pending).
    pub firing: bool,
}

impl Alert {
    /// `alertname` and the `node` it names (empty for a cluster-wide alert).
    pub fn name_and_node(&self) -> (String, String) {
        let get = |k: &str| self.labels.get(k).cloned().unwrap_or_default();
        (get("alertname"), get("node"))
    }
}

fn labels(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The repository's alert and recording rules (the one source, rules/networktest.rules.yml),
/// with every `for:` duration divided by `scale` (whole seconds, at least 1 s): a lab whose
/// rounds are `scale` times faster than the default minute keeps the same number of rounds
/// per `for:`. The rules' windows (`[1h]`, `[5m]`) stay as they are.
pub fn lab_rules(scale: u64) -> String {
    const SOURCE: &str = include_str!("../../../rules/networktest.rules.yml");
    scale_for(SOURCE, scale)
}

fn scale_for(rules: &str, scale: u64) -> String {
    let mut out = String::with_capacity(rules.len());
    for line in rules.lines() {
        let trimmed = line.trim_start();
        let scaled = trimmed.strip_prefix("for: ").and_then(|d| {
            let (n, unit) = d.trim().split_at(d.trim().len().checked_sub(1)?);
            let seconds = n.parse::<u64>().ok()?
                * match unit {
                    "s" => 1,
                    "m" => 60,
                    "h" => 3600,
                    _ => return None,
                };
            let indent = &line[..line.len() - trimmed.len()];
            Some(format!(
                "{indent}for: {}s",
                seconds.div_ceil(scale.max(1)).max(1)
            ))
        });
        out.push_str(scaled.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_rules_scale_every_for_and_nothing_else() {
        let rules = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: rate(x[5m]) > 0\n        for: 3m\n      - alert: B\n        expr: y\n        for: 10s\n";
        let scaled = scale_for(rules, 30);
        assert!(scaled.contains("        for: 6s\n"));
        assert!(scaled.contains("        for: 1s\n"), "at least a second");
        assert!(scaled.contains("rate(x[5m])"), "windows stay");
        assert_eq!(scaled.lines().count(), rules.lines().count());
        assert!(scale_for(rules, 1).contains("        for: 180s\n"));
        // The real rules: every for: scaled (the lab's 2 s rounds are 30 times a minute).
        let lab = lab_rules(30);
        let fors: Vec<&str> = lab
            .lines()
            .filter(|l| l.trim_start().starts_with("for: "))
            .collect();
        assert!(fors.len() >= 10, "{fors:?}");
        assert!(fors.iter().all(|l| l.ends_with('s')), "{fors:?}");
        assert!(lab.contains("for: 6s"), "3m becomes 6s");
    }
}
