//! A client for tests that talk to the stand-in directly: ureq trusting the stand-in's CA
//! and nothing else, with HTTP error statuses returned as responses (tests assert them).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig};

/// A ureq agent that trusts only the CA in `ca_file` (the stand-in's `ca.crt`) and gives up
/// on any request after `timeout`.
pub fn trusting_client(ca_file: &Path, timeout: Duration) -> ureq::Agent {
    let pem = std::fs::read(ca_file)
        .unwrap_or_else(|e| panic!("read the stand-in's CA {}: {e}", ca_file.display()));
    let ca = Certificate::from_pem(&pem)
        .unwrap_or_else(|e| panic!("{} is not a PEM certificate: {e}", ca_file.display()))
        .to_owned();
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::Specific(Arc::new(vec![ca])))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}
