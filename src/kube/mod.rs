//! Discovery through the Kubernetes API: who the agent's peers are, which nodes exist, and
//! where the cluster DNS answers. The rest of the agent only sees a [`Snapshot`].
//!
//! Submodules: `client` (HTTPS, token, errors, paging, watch streams, the reachability
//! probe), `objects` (serde structs for the API objects), `snapshot` (API objects ->
//! `Snapshot`, pure), `table` (server-printed node rows, pure), `lines` (bounded watch
//! frames, pure), `backoff` (jitter), `watch` (list-then-watch threads and their views),
//! `discovery` (what a round reads), `settings` (in-cluster config).

mod backoff;
pub(crate) mod client;
mod discovery;
mod error;
pub mod fates;
mod lines;
pub(crate) mod objects;
mod settings;
pub(crate) mod snapshot;
mod table;
mod watch;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use client::Client;
pub use discovery::{Current, Discovery};
pub use error::Error;
pub use fates::{fate_of, Fate, Fates};
pub use objects::{EndpointSlice, Node, Pod, Service};
pub use snapshot::snapshot as snapshot_of;
pub use watch::{WatchOptions, MAX_LINE};

/// Where and how to reach the API server, from flags, environment and the service account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `https://host:port`; from `--api-server` or `KUBERNETES_SERVICE_HOST`/`_PORT`.
    pub api_server: String,
    /// Bearer token file, re-read at least once a minute and on a 401.
    pub token_file: PathBuf,
    /// CA bundle the server certificate must chain to (and nothing else).
    pub ca_file: PathBuf,
    /// Namespace the agent pods live in.
    pub namespace: String,
    /// Label selector of the agent pods.
    pub selector: String,
    /// Namespace and name of the cluster DNS Service (`kube-system`/`kube-dns`).
    pub dns_namespace: String,
    pub dns_service: String,
    /// How long one request may take, connect to last byte.
    pub timeout: Duration,
    /// How long one whole discovery may take: every request, page and Retry-After wait.
    pub discovery_timeout: Duration,
    /// A proxy for API requests (`--api-proxy`); `None` connects directly, whatever
    /// `HTTPS_PROXY`/`ALL_PROXY` say, so the service-account token never goes to a proxy
    /// that nobody chose for it.
    pub proxy: Option<String>,
}

/// One agent pod of the DaemonSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentPod {
    pub name: String,
    /// `spec.nodeName`; empty while the pod is not scheduled.
    pub node: String,
    /// `status.podIPs` (or `podIP`), in the API's order; empty before the pod has an IP.
    pub pod_ips: Vec<IpAddr>,
    /// `status.hostIPs` (or `hostIP`).
    pub host_ips: Vec<IpAddr>,
    /// `status.phase`: Pending, Running, Succeeded, Failed, Unknown.
    pub phase: String,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    /// `InternalIP` addresses, in the API's order.
    pub internal_ips: Vec<IpAddr>,
    /// Labelled `node-role.kubernetes.io/control-plane` or the legacy `.../master`.
    pub control_plane: bool,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
}

/// One endpoint of the cluster DNS (a CoreDNS / kube-dns pod), from its EndpointSlices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsInstance {
    pub ip: IpAddr,
    /// `targetRef.name` when the endpoint points at a pod.
    pub pod: Option<String>,
    /// `nodeName` of the endpoint.
    pub node: Option<String>,
    /// Conditions; an absent `ready`/`serving` counts as true, absent `terminating` as false,
    /// as the EndpointSlice API defines.
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
}

/// The cluster DNS: its Service IPs and the instances behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsInfo {
    /// The Service does not exist (a wrong `--dns-service`, or DNS under another name).
    pub service_missing: bool,
    /// `spec.clusterIPs` (or `clusterIP`) of the Service; empty when it has none.
    pub service_ips: Vec<IpAddr>,
    /// Every endpoint of every EndpointSlice of the Service (IPv4 and IPv6 slices).
    pub instances: Vec<DnsInstance>,
}

/// Everything a round needs to know about the cluster, as of one discovery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub agents: Vec<AgentPod>,
    pub nodes: Vec<NodeInfo>,
    pub dns: DnsInfo,
}

#[cfg(test)]
mod fixture_tests;
