//! Shared support for tests that build real networks in Linux network namespaces: the guard,
//! veth and root check live in the `cluster-box` test-support crate, re-exported here.
#![allow(unused_imports)]

pub use cluster_box::netns::*;

/// The checks a round plans for the API objects a test serves (`k8s_api_standin::Cluster`,
/// e.g. from `cluster_box::lab::api_objects`) in cluster `domain`, by the agent's own
/// conversion and plan: the checks a healthy round reports.
#[allow(dead_code)]
pub fn planned_checks(
    objects: &k8s_api_standin::Cluster,
    domain: &str,
) -> k8s_network_test_daemonset::plan::Plan {
    use k8s_network_test_daemonset::{kube, plan};
    use serde::de::DeserializeOwned;
    fn parse<T: DeserializeOwned>(objects: &[serde_json::Value]) -> Vec<T> {
        objects
            .iter()
            .map(|o| serde_json::from_value(o.clone()).expect("an API object the agent reads"))
            .collect()
    }
    let services: Vec<kube::Service> = parse(&objects.services);
    let snapshot = kube::snapshot_of(
        &parse(&objects.pods),
        &parse(&objects.nodes),
        services.first(),
        &parse(&objects.endpointslices),
    );
    plan::plan(&snapshot, domain)
}
