//! Test support: an HTTPS Kubernetes API stand-in that serves a described cluster like
//! kube-apiserver (selectors, paging, resourceVersion=0, 401/404/410/400 Status bodies,
//! watches with bookmarks and 410s, Table and PartialObjectMetadata representations, an
//! EndpointSlice controller) and can misbehave on purpose ([`Fault`]).

pub mod api;
pub mod client;
pub mod controller;
pub mod fault;
pub mod objects;
pub mod recorded;
pub mod select;
mod server;
pub mod store;
pub mod table;

pub use api::Kind;
pub use client::trusting_client;
pub use fault::{Fault, FaultPlan};
pub use objects::{
    agent_pod, agent_service, deleting, dns_endpoint_slice, dns_service, node, Cluster, DnsEndpoint,
};
pub use server::{Logged, Served, StandIn};
