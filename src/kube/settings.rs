//! Where the API server is and how to authenticate, resolved as client-go's in-cluster
//! config does: flags (with environment twins) first, then the pod's environment and the
//! service-account files.

use std::path::PathBuf;
use std::time::Duration;

use super::Settings;
use crate::cli::Args;

/// The service-account directory every pod gets.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The agent pods' label selector unless `--selector` says otherwise.
pub const DEFAULT_SELECTOR: &str = "app.kubernetes.io/name=k8s-network-test-daemonset";
/// How long one API request may take, from connect to the last byte.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one discovery may take in all (pages and 429 waits included) unless
/// `--discovery-timeout` says otherwise; a round never waits longer on the API.
pub const DEFAULT_DISCOVERY_TIMEOUT: &str = "20s";

impl Settings {
    /// Resolves the settings; `env` reads environment variables (a parameter so tests can
    /// supply their own). The error is one line saying what to set.
    pub fn from_args(
        args: &Args,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, String> {
        let api_server = match args.get("api-server") {
            Some(url) => {
                let url = url.trim_end_matches('/').to_string();
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(format!("--api-server: {url:?} must start with https:// (or http:// for kubectl proxy)"));
                }
                url
            }
            None => in_cluster_url(env)?,
        };
        let sa = PathBuf::from(SERVICE_ACCOUNT_DIR);
        let token_file = args
            .get("token-file")
            .map(PathBuf::from)
            .unwrap_or_else(|| sa.join("token"));
        let ca_file = args
            .get("ca-file")
            .map(PathBuf::from)
            .unwrap_or_else(|| sa.join("ca.crt"));
        let namespace = match args.get("namespace") {
            Some(ns) => ns.to_string(),
            None => std::fs::read_to_string(sa.join("namespace"))
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .ok_or("namespace unknown: set --namespace or POD_NAMESPACE (the manifest sets it from metadata.namespace)")?,
        };
        let discovery_timeout = crate::duration::parse(
            args.get("discovery-timeout")
                .unwrap_or(DEFAULT_DISCOVERY_TIMEOUT),
        )
        .map_err(|e| format!("--discovery-timeout: {e}"))?;
        if discovery_timeout.is_zero() {
            return Err("--discovery-timeout: must be more than 0".into());
        }
        let proxy = match args.get("api-proxy") {
            Some(p) if !(p.starts_with("http://") || p.starts_with("https://")) => {
                return Err(format!(
                    "--api-proxy: {p:?} must be an http:// or https:// CONNECT proxy URL"
                ))
            }
            p => p.map(str::to_string),
        };
        Ok(Settings {
            api_server,
            token_file,
            ca_file,
            namespace,
            selector: args.get("selector").unwrap_or(DEFAULT_SELECTOR).to_string(),
            dns_namespace: "kube-system".to_string(),
            dns_service: "kube-dns".to_string(),
            timeout: DEFAULT_TIMEOUT,
            discovery_timeout,
            proxy,
        })
    }
}

/// `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`, an IPv6 host bracketed.
fn in_cluster_url(env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let host = env("KUBERNETES_SERVICE_HOST")
        .filter(|h| !h.is_empty())
        .ok_or("not running in a pod: set --api-server or KUBERNETES_SERVICE_HOST")?;
    let port = env("KUBERNETES_SERVICE_PORT")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "443".to_string());
    if port.parse::<u16>().is_err() {
        return Err(format!(
            "KUBERNETES_SERVICE_PORT {port:?} is not a port number"
        ));
    }
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host
    };
    Ok(format!("https://{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse, Parsed};
    use crate::config::FLAGS;

    fn settings(argv: &[&str], env: &[(&str, &str)]) -> Result<Settings, String> {
        let envs: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| envs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let Parsed::Run(args) = parse(FLAGS, argv.iter().map(|s| s.to_string()), &lookup).unwrap()
        else {
            panic!("not a run")
        };
        Settings::from_args(&args, &lookup)
    }

    #[test]
    fn in_cluster_defaults_like_client_go() {
        let s = settings(
            &[],
            &[
                ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
                ("KUBERNETES_SERVICE_PORT", "443"),
                ("POD_NAMESPACE", "kube-system"),
            ],
        )
        .unwrap();
        assert_eq!(s.api_server, "https://10.96.0.1:443");
        assert_eq!(
            s.token_file,
            PathBuf::from(SERVICE_ACCOUNT_DIR).join("token")
        );
        assert_eq!(s.ca_file, PathBuf::from(SERVICE_ACCOUNT_DIR).join("ca.crt"));
        assert_eq!(s.namespace, "kube-system");
        assert_eq!(s.selector, DEFAULT_SELECTOR);
    }

    #[test]
    fn ipv6_service_host_is_bracketed() {
        let s = settings(
            &["--namespace", "x"],
            &[
                ("KUBERNETES_SERVICE_HOST", "fd00::1"),
                ("KUBERNETES_SERVICE_PORT", "6443"),
            ],
        )
        .unwrap();
        assert_eq!(s.api_server, "https://[fd00::1]:6443");
    }

    #[test]
    fn flags_override_and_errors_say_what_to_set() {
        let s = settings(
            &[
                "--api-server",
                "https://198.18.1.200:6443/",
                "--token-file",
                "/t",
                "--ca-file",
                "/c",
                "--namespace",
                "ns",
                "--selector",
                "app=x",
            ],
            &[("KUBERNETES_SERVICE_HOST", "10.96.0.1")],
        )
        .unwrap();
        assert_eq!(s.api_server, "https://198.18.1.200:6443");
        assert_eq!(
            (s.token_file, s.ca_file),
            (PathBuf::from("/t"), PathBuf::from("/c"))
        );
        assert_eq!((s.namespace.as_str(), s.selector.as_str()), ("ns", "app=x"));
        assert!(settings(&["--namespace", "x"], &[])
            .unwrap_err()
            .contains("KUBERNETES_SERVICE_HOST"));
        assert!(
            settings(&["--api-server", "ftp://x", "--namespace", "x"], &[])
                .unwrap_err()
                .starts_with("--api-server")
        );
        let e = settings(
            &["--namespace", "x"],
            &[
                ("KUBERNETES_SERVICE_HOST", "h"),
                ("KUBERNETES_SERVICE_PORT", "http"),
            ],
        )
        .unwrap_err();
        assert!(e.contains("KUBERNETES_SERVICE_PORT"));
    }
}
