//! Errors of the API client. Each `Display` is one line that says what went wrong and, where
//! the operator can act, what to fix; `kind()` is a stable, low-cardinality metric label.

use std::fmt;
use std::path::PathBuf;

use crate::reason::Reason;

/// An API call that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// 401 even after re-reading the token.
    Unauthorized {
        token_file: PathBuf,
        message: String,
    },
    /// 403: the message names the missing verb and resource.
    Forbidden { message: String },
    /// 404 for a path or object.
    NotFound { path: String, message: String },
    /// 410 Expired that restarting the list did not get past.
    Gone { message: String },
    /// 429, with the server's Retry-After in seconds.
    Throttled {
        retry_after: Option<u64>,
        message: String,
    },
    /// 5xx.
    Server { code: u16, message: String },
    /// Any other unexpected status.
    Status { code: u16, message: String },
    /// Connect or read timeout.
    Timeout { server: String },
    /// A whole discovery (pages and retries included) did not finish in its time.
    Deadline {
        server: String,
        limit: std::time::Duration,
    },
    /// TLS handshake or certificate verification failure.
    Tls { server: String, message: String },
    /// Could not connect (refused, unreachable, name not found).
    Connect { server: String, message: String },
    /// The token file cannot be read.
    Token { path: PathBuf, message: String },
    /// The CA file cannot be read or holds no certificate.
    Ca { path: PathBuf, message: String },
    /// The body is not what the API sends (bad JSON, cut short).
    Decode { path: String, message: String },
    /// The body is larger than the client accepts.
    TooLarge { path: String, limit: u64 },
    /// Anything else (a bad URL, an I/O error).
    Other(String),
}

impl Error {
    /// A short label for `networktest_api_errors_total{reason=...}`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Unauthorized { .. } => "unauthorized",
            Error::Forbidden { .. } => "forbidden",
            Error::NotFound { .. } => "not-found",
            Error::Gone { .. } => "gone",
            Error::Throttled { .. } => "throttled",
            Error::Server { .. } => "server-error",
            Error::Status { .. } => "other",
            Error::Timeout { .. } => "timeout",
            Error::Deadline { .. } => "deadline",
            Error::Tls { .. } => "tls",
            Error::Connect { .. } => "connect",
            Error::Token { .. } => "token",
            Error::Ca { .. } => "ca",
            Error::Decode { .. } => "decode",
            Error::TooLarge { .. } => "too-large",
            Error::Other(_) => "other",
        }
    }

    /// The check failure reason of a failed API request (the `api` check): the network's
    /// reasons for transport failures, `api-error` for an HTTP error answer.
    pub fn reason(&self) -> Reason {
        match self {
            Error::Timeout { .. } | Error::Deadline { .. } => Reason::Timeout,
            Error::Connect { .. } => Reason::Unreachable,
            Error::Tls { .. } => Reason::Tls,
            Error::Token { .. } | Error::Ca { .. } | Error::Other(_) => Reason::ApiClient,
            Error::Unauthorized { .. }
            | Error::Forbidden { .. }
            | Error::NotFound { .. }
            | Error::Gone { .. }
            | Error::Throttled { .. }
            | Error::Server { .. }
            | Error::Status { .. }
            | Error::Decode { .. }
            | Error::TooLarge { .. } => Reason::ApiError,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unauthorized { token_file, message } => write!(
                f,
                "api server rejected the token from {} (401 {message}): mount a valid service account token or set --token-file",
                token_file.display()
            ),
            Error::Forbidden { message } => write!(
                f,
                "forbidden (403): {message}: grant this in the RBAC rules (see k8s.yml)"
            ),
            Error::NotFound { path, message } => write!(f, "not found (404) {path}: {message}"),
            Error::Gone { message } => write!(f, "list expired (410) and restarting did not help: {message}"),
            Error::Throttled { retry_after, message } => match retry_after {
                Some(s) => write!(f, "throttled by the api server (429, retry after {s}s): {message}"),
                None => write!(f, "throttled by the api server (429): {message}"),
            },
            Error::Server { code, message } => write!(f, "api server error {code}: {message}"),
            Error::Status { code, message } => write!(f, "unexpected api status {code}: {message}"),
            Error::Timeout { server } => write!(
                f,
                "timed out talking to {server}: check that the API server is reachable from this node"
            ),
            Error::Deadline { server, limit } => write!(
                f,
                "discovery through {server} did not finish within {} (pages and retries included): the API server is slow or overloaded; raise --discovery-timeout if it is merely slow",
                crate::duration::format(*limit)
            ),
            Error::Tls { server, message } => write!(
                f,
                "TLS with {server} failed: {message}: check that --ca-file holds the cluster CA"
            ),
            Error::Connect { server, message } => write!(
                f,
                "cannot connect to {server}: {message}: check --api-server and the network path to it"
            ),
            Error::Token { path, message } => write!(
                f,
                "cannot read token file {}: {message}: mount the service account token or set --token-file",
                path.display()
            ),
            Error::Ca { path, message } => write!(
                f,
                "cannot use CA file {}: {message}: mount the service account CA or set --ca-file",
                path.display()
            ),
            Error::Decode { path, message } => write!(f, "unexpected response from {path}: {message}"),
            Error::TooLarge { path, limit } => write!(
                f,
                "response from {path} is larger than {} MiB; refused",
                limit >> 20
            ),
            Error::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_failures_have_network_reasons_and_answers_api_error() {
        let server = || "https://198.18.1.200:6443".to_string();
        let cases = [
            (Error::Timeout { server: server() }, Reason::Timeout),
            (
                Error::Connect {
                    server: server(),
                    message: "refused".into(),
                },
                Reason::Unreachable,
            ),
            (
                Error::Tls {
                    server: server(),
                    message: "unknown issuer".into(),
                },
                Reason::Tls,
            ),
            (
                Error::Token {
                    path: "/t".into(),
                    message: "missing".into(),
                },
                Reason::ApiClient,
            ),
            (
                Error::Server {
                    code: 503,
                    message: "unavailable".into(),
                },
                Reason::ApiError,
            ),
        ];
        for (e, reason) in cases {
            assert_eq!(e.reason(), reason, "{e}");
        }
    }
}
