//! Parses every recorded real API response in `tests/fixtures/k8s-api/` that is a PodList,
//! Pod, NodeList, Node, EndpointSlice, Service or Status, and checks what the agent reads.

use std::net::IpAddr;

use super::client::status_message;
use super::objects::{EndpointSlice, List, Node, Pod, Service, Status};
use super::snapshot::{agent_pod, dns_info, node_info, snapshot};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../tests/fixtures/k8s-api/", $name))
    };
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("fixture does not parse: {e}"))
}

#[test]
fn real_kube_system_pod_list() {
    let list: List<Pod> = parse(fixture!(
        "k8s-openapi-replay-v1.36.kube-system-PodList.response-body.json"
    ));
    assert_eq!(list.items.len(), 8);
    let coredns = agent_pod(&list.items[0]);
    assert_eq!(coredns.name, "coredns-589f44dc88-4fpns");
    assert_eq!(coredns.pod_ips, vec![ip("10.244.0.3")]);
    assert_eq!(coredns.host_ips, vec![ip("172.18.0.3")]);
    assert_eq!(coredns.phase, "Running");
    assert!(!coredns.deleting);
    assert!(!coredns.node.is_empty());
}

#[test]
fn paged_list_with_continue_and_a_pod_being_deleted() {
    let page1: List<Pod> = parse(fixture!(
        "kubeclient.pods_1.PodList-page1-with-continue.json"
    ));
    let page2: List<Pod> = parse(fixture!("kubeclient.pods_2.PodList-page2-last.json"));
    assert!(!page1.metadata.continue_token.is_empty());
    assert!(page2.metadata.continue_token.is_empty());
    assert_eq!(page1.items.len() + page2.items.len(), 4);
    let deleting = agent_pod(&page1.items[0]);
    assert!(deleting.deleting);
    assert_eq!(deleting.pod_ips, vec![ip("10.129.0.207")]);
    assert!(!agent_pod(&page1.items[1]).deleting);
}

#[test]
fn kubectl_list_wrapper_and_single_pods() {
    let list: List<Pod> = parse(fixture!(
        "kubectl-neat.list1-raw.kubectl-get-pods-o-json-List.json"
    ));
    assert_eq!(list.items.len(), 2);
    let pod: Pod = parse(fixture!(
        "kubectl-neat.pod1-raw.kubectl-get-pod-o-json.json"
    ));
    assert!(!agent_pod(&pod).name.is_empty());
    let kind_pod = agent_pod(&parse(fixture!(
        "k9s.po_sidecar.kind-pod-podIPs-hostIPs.json"
    )));
    assert_eq!(kind_pod.node, "kind-control-plane");
    assert_eq!(kind_pod.pod_ips, vec![ip("10.244.0.8")]);
    assert_eq!(kind_pod.host_ips, vec![ip("172.18.0.2")]);
    assert!(kind_pod.ready);
}

#[test]
fn every_field_objects_parse_and_placeholders_never_become_targets() {
    let pod = agent_pod(&parse(fixture!(
        "k8s-api-testdata-HEAD.core.v1.Pod.every-field.json"
    )));
    assert!(pod.pod_ips.is_empty() && pod.host_ips.is_empty());
    let node = node_info(&parse(fixture!(
        "k8s-api-testdata-HEAD.core.v1.Node.every-field.json"
    )));
    assert!(node.internal_ips.is_empty());
    let svc: Service = parse(fixture!(
        "k8s-api-testdata-HEAD.core.v1.Service.every-field.json"
    ));
    let slice: EndpointSlice = parse(fixture!(
        "k8s-api-testdata-HEAD.discovery.k8s.io.v1.EndpointSlice.every-field.json"
    ));
    let dns = dns_info(Some(&svc), &[slice]);
    assert!(dns.service_ips.is_empty() && dns.instances.is_empty());
}

#[test]
fn node_lists_and_control_plane_labels() {
    let list: List<Node> = parse(fixture!(
        "troubleshoot.nodes.NodeList-7-nodes-mixed-versions-redacted-ips.json"
    ));
    let nodes: Vec<_> = list.items.iter().map(node_info).collect();
    assert_eq!(nodes.len(), 7);
    // Redacted addresses are skipped, real ones kept.
    assert_eq!(nodes[0].internal_ips, vec![ip("10.168.0.26")]);
    assert!(nodes[1].internal_ips.is_empty());
    assert!(nodes[6].control_plane && !nodes[0].control_plane);
    let legacy = node_info(&parse(fixture!(
        "k9s.no.minikube-node-legacy-master-label.json"
    )));
    assert!(
        legacy.control_plane,
        "legacy master label counts as control plane"
    );
    assert_eq!(legacy.internal_ips, vec![ip("192.168.64.107")]);
    assert!(legacy.ready);
}

#[test]
fn status_bodies_parse_and_give_their_message() {
    let bodies = [
        (
            fixture!("k8s-api-testdata-HEAD.core.v1.Status.every-field.json"),
            0,
        ),
        (
            fixture!(
                "k8s-apiserver.errors_test.Status-403-Forbidden.cluster-scope-named-resource.json"
            ),
            403,
        ),
        (
            fixture!("k8s-apiserver.errors_test.Status-403-Forbidden.cluster-scope-resource.json"),
            403,
        ),
        (
            fixture!("k8s-apiserver.errors_test.Status-403-Forbidden.namespaced-subresource.json"),
            403,
        ),
        (
            fixture!("k8s-apiserver.errors_test.Status-403-Forbidden.nonresource-path.json"),
            403,
        ),
        (
            fixture!("kubeclient.pods_410.Status-410-Expired-continue.json"),
            410,
        ),
        (
            fixture!("kubeclient.namespace_already_exists.Status-409-no-kind.json"),
            409,
        ),
        (
            fixture!("kubernetes-client-java.bad-token-status.Status-400-invalid-continue.json"),
            400,
        ),
    ];
    for (text, code) in bodies {
        let status: Status = parse(text);
        if code != 0 {
            assert_eq!(status.code, code);
        }
        assert_eq!(
            status_message(status.code, true, text.as_bytes()),
            status.message
        );
    }
    let m = status_message(
        403,
        true,
        fixture!("k8s-apiserver.errors_test.Status-403-Forbidden.namespaced-subresource.json")
            .as_bytes(),
    );
    assert!(
        m.contains("cannot get resource"),
        "the RBAC message is quoted: {m}"
    );
}

#[test]
fn non_json_404_body_is_a_clear_error_not_a_panic() {
    let text = fixture!("kubeclient.service_illegal_json_404.non-json-404-body.json");
    assert!(serde_json::from_str::<Status>(text).is_err());
    assert_eq!(
        status_message(404, true, text.as_bytes()),
        "404: Page Not Found"
    );
}

#[test]
fn snapshot_sorts_and_keeps_dual_stack_dns() {
    let slice = |json: &str| -> EndpointSlice { parse(json) };
    let v4 = slice(
        r#"{"addressType":"IPv4","endpoints":[
            {"addresses":["10.96.1.2"],"conditions":{"ready":true},"targetRef":{"kind":"Pod","name":"coredns-a"},"nodeName":"n1"},
            {"addresses":["10.96.1.3"],"conditions":{"ready":false,"serving":true,"terminating":true},"targetRef":{"kind":"Pod","name":"coredns-b"}},
            {"addresses":["not-an-ip"]}]}"#,
    );
    let v6 =
        slice(r#"{"addressType":"IPv6","endpoints":[{"addresses":["fd00::2"],"conditions":{}}]}"#);
    let fqdn = slice(r#"{"addressType":"FQDN","endpoints":[{"addresses":["dns.example"]}]}"#);
    let svc: Service =
        parse(r#"{"spec":{"clusterIP":"10.96.0.10","clusterIPs":["10.96.0.10","fd00::a"]}}"#);
    let s = snapshot(&[], &[], Some(&svc), &[v6, v4, fqdn]);
    assert_eq!(s.dns.service_ips, vec![ip("10.96.0.10"), ip("fd00::a")]);
    let got: Vec<_> = s
        .dns
        .instances
        .iter()
        .map(|i| {
            (
                i.ip.to_string(),
                i.pod.clone(),
                i.ready,
                i.serving,
                i.terminating,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "10.96.1.2".to_string(),
                Some("coredns-a".to_string()),
                true,
                true,
                false
            ),
            (
                "10.96.1.3".to_string(),
                Some("coredns-b".to_string()),
                false,
                true,
                true
            ),
            ("fd00::2".to_string(), None, true, true, false),
        ]
    );
    let headless: Service = parse(r#"{"spec":{"clusterIP":"None"}}"#);
    assert!(dns_info(Some(&headless), &[]).service_ips.is_empty());
}

#[test]
fn nulls_and_missing_fields_take_defaults() {
    let pod: Pod =
        parse(r#"{"metadata":{"name":"p","labels":null},"status":{"podIPs":null,"phase":null}}"#);
    let a = agent_pod(&pod);
    assert_eq!((a.name.as_str(), a.phase.as_str()), ("p", "Unknown"));
    let list: List<Node> = parse(r#"{"kind":"NodeList","items":null}"#);
    assert!(list.items.is_empty());
}
