//! The parts of Kubernetes API objects the agent reads, as small typed structs. Unknown
//! fields are skipped while parsing, so a 5,000-pod list never becomes a generic JSON tree;
//! missing or `null` fields take their defaults, so odd objects parse instead of failing.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// Reads `null` as the default value (the API omits empty fields, but proxies and older
/// servers sometimes write `null`).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `metadata` of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub namespace: String,
    #[serde(default, deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub deletion_timestamp: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub resource_version: String,
}

/// `metadata` of a list: where the next page starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    #[serde(default, deserialize_with = "nullable")]
    pub resource_version: String,
    #[serde(default, rename = "continue", deserialize_with = "nullable")]
    pub continue_token: String,
}

/// Any `*List` response.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct List<T> {
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: ListMeta,
    #[serde(default, deserialize_with = "nullable")]
    pub items: Vec<T>,
}

/// Something with list metadata: a page of a list (items or Table rows).
pub trait Page {
    fn list_meta(&self) -> &ListMeta;
}

impl<T> Page for List<T> {
    fn list_meta(&self) -> &ListMeta {
        &self.metadata
    }
}

/// A column of a server-printed Table (`columnDefinitions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TableColumn {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
}

/// A row of a server-printed Table: its cells (strings, numbers). The embedded `object`
/// (null with `includeObject=None`) is skipped.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TableRow {
    #[serde(default, deserialize_with = "nullable")]
    pub cells: Vec<serde_json::Value>,
}

/// A node list or watch event object in whichever form the server chose: a Table (`kind:
/// Table`, rows and maybe column definitions) when it honoured `as=Table`, else a NodeList
/// page (`items`) or one Node (`metadata`, `spec`, `status`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodesOrTable {
    #[serde(default, deserialize_with = "nullable")]
    pub kind: String,
    /// List or object metadata; both carry `resourceVersion` at the same path.
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: NodesMeta,
    #[serde(default)]
    pub column_definitions: Option<Vec<TableColumn>>,
    #[serde(default, deserialize_with = "nullable")]
    pub rows: Vec<TableRow>,
    #[serde(default, deserialize_with = "nullable")]
    pub items: Vec<Node>,
    #[serde(default, deserialize_with = "nullable")]
    pub spec: NodeSpec,
    #[serde(default, deserialize_with = "nullable")]
    pub status: NodeStatus,
}

/// The union of list and object metadata that a node answer may carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodesMeta {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    #[serde(flatten)]
    pub list: ListMeta,
}

impl Page for NodesOrTable {
    fn list_meta(&self) -> &ListMeta {
        &self.metadata.list
    }
}

impl NodesOrTable {
    /// The object as a Node (for a full-object watch event).
    pub fn as_node(&self) -> Node {
        Node {
            metadata: ObjectMeta {
                name: self.metadata.name.clone(),
                labels: self.metadata.labels.clone(),
                resource_version: self.metadata.list.resource_version.clone(),
                ..ObjectMeta::default()
            },
            spec: self.spec.clone(),
            status: self.status.clone(),
        }
    }
}

/// A condition of a pod or node (`Ready`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Condition {
    #[serde(default, rename = "type", deserialize_with = "nullable")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub status: String,
}

/// An entry of `podIPs` / `hostIPs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Ip {
    #[serde(default, deserialize_with = "nullable")]
    pub ip: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default, deserialize_with = "nullable")]
    pub node_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    #[serde(default, deserialize_with = "nullable")]
    pub phase: String,
    #[serde(default, rename = "podIP", deserialize_with = "nullable")]
    pub pod_ip: String,
    #[serde(default, rename = "podIPs", deserialize_with = "nullable")]
    pub pod_ips: Vec<Ip>,
    #[serde(default, rename = "hostIP", deserialize_with = "nullable")]
    pub host_ip: String,
    #[serde(default, rename = "hostIPs", deserialize_with = "nullable")]
    pub host_ips: Vec<Ip>,
    #[serde(default, deserialize_with = "nullable")]
    pub conditions: Vec<Condition>,
}

/// A Pod.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Pod {
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "nullable")]
    pub spec: PodSpec,
    #[serde(default, deserialize_with = "nullable")]
    pub status: PodStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct NodeAddress {
    #[serde(default, rename = "type", deserialize_with = "nullable")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub address: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct NodeSpec {
    #[serde(default, deserialize_with = "nullable")]
    pub unschedulable: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub taints: Vec<Taint>,
}

/// A node taint (`spec.taints[]`): `key`, `value`, `effect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Taint {
    #[serde(default, deserialize_with = "nullable")]
    pub key: String,
    #[serde(default, deserialize_with = "nullable")]
    pub effect: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct NodeStatus {
    #[serde(default, deserialize_with = "nullable")]
    pub addresses: Vec<NodeAddress>,
    #[serde(default, deserialize_with = "nullable")]
    pub conditions: Vec<Condition>,
}

/// A Node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Node {
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "nullable")]
    pub spec: NodeSpec,
    #[serde(default, deserialize_with = "nullable")]
    pub status: NodeStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ServiceSpec {
    #[serde(default, rename = "clusterIP", deserialize_with = "nullable")]
    pub cluster_ip: String,
    #[serde(default, rename = "clusterIPs", deserialize_with = "nullable")]
    pub cluster_ips: Vec<String>,
}

/// A Service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Service {
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "nullable")]
    pub spec: ServiceSpec,
}

/// EndpointSlice endpoint conditions; absent means "unknown", which the API defines as
/// ready/serving for `ready`/`serving` and not terminating.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct EndpointConditions {
    #[serde(default)]
    pub ready: Option<bool>,
    #[serde(default)]
    pub serving: Option<bool>,
    #[serde(default)]
    pub terminating: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ObjectReference {
    #[serde(default, deserialize_with = "nullable")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    #[serde(default, deserialize_with = "nullable")]
    pub addresses: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub conditions: EndpointConditions,
    #[serde(default)]
    pub target_ref: Option<ObjectReference>,
    #[serde(default)]
    pub node_name: Option<String>,
}

/// An EndpointSlice (discovery.k8s.io/v1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSlice {
    #[serde(default, deserialize_with = "nullable")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "nullable")]
    pub address_type: String,
    #[serde(default, deserialize_with = "nullable")]
    pub endpoints: Vec<Endpoint>,
}

/// The API's error body (`kind: Status`). Only parsed when the body is JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Status {
    #[serde(default, deserialize_with = "nullable")]
    pub status: String,
    #[serde(default, deserialize_with = "nullable")]
    pub message: String,
    #[serde(default, deserialize_with = "nullable")]
    pub reason: String,
    #[serde(default, deserialize_with = "nullable")]
    pub code: u16,
}
