//! Test support: an HTTPS Kubernetes API stand-in that serves a described cluster like
//! kube-apiserver (selectors, paging, resourceVersion=0, 401/404/410/400 Status bodies)
//! and can misbehave on purpose ([`Fault`]).

pub mod api;
pub mod client;
pub mod fault;
pub mod objects;
pub mod select;
mod server;

pub use client::trusting_client;
pub use fault::{Fault, FaultPlan};
pub use objects::{
    agent_pod, deleting, dns_endpoint_slice, dns_service, node, Cluster, DnsEndpoint,
};
pub use server::{Logged, StandIn};
