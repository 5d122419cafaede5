//! Where the API server is and how to authenticate, resolved as client-go's in-cluster
//! config does: flags (with environment twins) first, then the pod's environment and the
//! service-account files.

use std::path::PathBuf;
use std::time::Duration;

use super::Settings;
use crate::cli::Args;
use crate::config::{duration_flag, value, ConfigError};

/// The service-account directory every pod gets (its `namespace` file is the fallback for
/// `--namespace`; the token and CA paths are the flags' defaults in the flag table).
const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// How long one API request may take, from connect to the last byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl Settings {
    /// Resolves the settings; `env` reads environment variables (a parameter so tests can
    /// supply their own). The error is one line saying what to set.
    pub fn from_args(
        args: &Args,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let api_server = match args.get("api-server") {
            Some(url) => {
                let url = url.trim_end_matches('/').to_string();
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(ConfigError::invalid(
                        "api-server",
                        format!("{url:?} must start with https:// (or http:// for kubectl proxy)"),
                    ));
                }
                url
            }
            None => in_cluster_url(env)?,
        };
        let namespace = match args.get("namespace") {
            Some(ns) => ns.to_string(),
            None => std::fs::read_to_string(PathBuf::from(SERVICE_ACCOUNT_DIR).join("namespace"))
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    ConfigError::Missing("namespace unknown: set --namespace or POD_NAMESPACE (the manifest sets it from metadata.namespace)".into())
                })?,
        };
        let discovery_timeout = duration_flag(args, "discovery-timeout")?;
        if discovery_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "discovery-timeout",
                "must be more than 0",
            ));
        }
        let proxy = match args.get("api-proxy") {
            Some(p) if !(p.starts_with("http://") || p.starts_with("https://")) => {
                return Err(ConfigError::invalid(
                    "api-proxy",
                    format!("{p:?} must be an http:// or https:// CONNECT proxy URL"),
                ))
            }
            p => p.map(str::to_string),
        };
        let (dns_namespace, dns_service) = dns_service(value(args, "dns-service")?)?;
        Ok(Settings {
            api_server,
            token_file: PathBuf::from(value(args, "token-file")?),
            ca_file: PathBuf::from(value(args, "ca-file")?),
            namespace,
            selector: value(args, "selector")?.to_string(),
            dns_namespace,
            dns_service,
            timeout: REQUEST_TIMEOUT,
            discovery_timeout,
            proxy,
        })
    }
}

/// `--dns-service NAMESPACE/NAME`: both parts non-empty, nothing else.
fn dns_service(text: &str) -> Result<(String, String), ConfigError> {
    match text.trim().split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_string(), name.to_string()))
        }
        _ => Err(ConfigError::invalid(
            "dns-service",
            format!("{text:?} is not NAMESPACE/NAME (e.g. kube-system/kube-dns)"),
        )),
    }
}

/// `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`, an IPv6 host bracketed.
fn in_cluster_url(env: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let host = env("KUBERNETES_SERVICE_HOST")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            ConfigError::Missing(
                "not running in a pod: set --api-server or KUBERNETES_SERVICE_HOST".into(),
            )
        })?;
    let port = env("KUBERNETES_SERVICE_PORT")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "443".to_string());
    if port.parse::<u16>().is_err() {
        return Err(ConfigError::Missing(format!(
            "KUBERNETES_SERVICE_PORT {port:?} is not a port number (or set --api-server)"
        )));
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

    fn settings(argv: &[&str], env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
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
        // The values client-go uses and the README documents, written out.
        assert_eq!(s.api_server, "https://10.96.0.1:443");
        assert_eq!(
            s.token_file,
            PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/token")
        );
        assert_eq!(
            s.ca_file,
            PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
        );
        assert_eq!(s.namespace, "kube-system");
        assert_eq!(
            s.selector,
            "app.kubernetes.io/name=k8s-network-test-daemonset"
        );
        assert_eq!(s.discovery_timeout, Duration::from_secs(20));
        assert_eq!(s.proxy, None);
        assert_eq!(
            (s.dns_namespace.as_str(), s.dns_service.as_str()),
            ("kube-system", "kube-dns")
        );
    }

    #[test]
    fn dns_service_is_namespace_slash_name() {
        let env = [("KUBERNETES_SERVICE_HOST", "10.96.0.1")];
        let s = settings(
            &[
                "--namespace",
                "x",
                "--dns-service",
                "openshift-dns/dns-default",
            ],
            &env,
        )
        .unwrap();
        assert_eq!(
            (s.dns_namespace.as_str(), s.dns_service.as_str()),
            ("openshift-dns", "dns-default")
        );
        for bad in ["kube-dns", "/kube-dns", "kube-system/", "a/b/c", ""] {
            let e = settings(&["--namespace", "x", "--dns-service", bad], &env).unwrap_err();
            assert!(e.to_string().starts_with("--dns-service"), "{bad}: {e}");
        }
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
            .to_string()
            .contains("KUBERNETES_SERVICE_HOST"));
        assert!(
            settings(&["--api-server", "ftp://x", "--namespace", "x"], &[])
                .unwrap_err()
                .to_string()
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
        assert!(e.to_string().contains("KUBERNETES_SERVICE_PORT"));
    }
}
