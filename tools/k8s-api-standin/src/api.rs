//! The API itself as a pure function: a request and the cluster in, a response out.
//! Transport, authentication and transport-level faults live in `server.rs`.

use crate::objects::Cluster;
use crate::select::{FieldSelector, LabelSelector};
use crate::table::{self, Repr};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

/// An HTTP response the server writes as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub code: u16,
    /// `Content-Type` value.
    pub content_type: String,
    /// Extra headers (name, value).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response.
    pub fn json(code: u16, value: &Value) -> Response {
        Response {
            code,
            content_type: "application/json".into(),
            headers: Vec::new(),
            body: value.to_string().into_bytes(),
        }
    }
}

/// The wording kube-apiserver uses for a continue token from before the data changed.
pub const EXPIRED_MESSAGE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// A `Status` failure body as kube-apiserver writes it, keys in its order (serde_json's
/// default map would sort them).
pub fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> Response {
    let details = details.map_or(String::new(), |d| format!(",\"details\":{d}"));
    let body = format!(
        "{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"Failure\",\
         \"message\":{},\"reason\":{}{details},\"code\":{code}}}",
        Value::from(message),
        Value::from(reason),
    );
    Response {
        code,
        content_type: "application/json".into(),
        headers: Vec::new(),
        body: body.into_bytes(),
    }
}

/// 401 for a missing or wrong bearer token.
pub fn unauthorized() -> Response {
    status(401, "Unauthorized", "Unauthorized", None)
}

/// 410 Expired for a stale continue token.
pub fn expired() -> Response {
    status(410, "Expired", EXPIRED_MESSAGE, None)
}

fn not_found_path() -> Response {
    status(
        404,
        "NotFound",
        "the server could not find the requested resource",
        Some(json!({})),
    )
}

fn bad_request(message: &str) -> Response {
    status(400, "BadRequest", message, None)
}

/// Where a continue token resumes: the list's resourceVersion and the offset of the next item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContinueToken {
    /// The resourceVersion of the list the first page came from.
    pub rv: u64,
    /// Index of the next item in the filtered list.
    pub offset: usize,
}

impl ContinueToken {
    /// Opaque form, shaped like the real one: base64url of `{"v":"meta.k8s.io/v1","rv":N,"start":"K"}`.
    pub fn encode(self) -> String {
        let inner =
            json!({ "v": "meta.k8s.io/v1", "rv": self.rv, "start": self.offset.to_string() });
        URL_SAFE_NO_PAD.encode(inner.to_string())
    }

    /// Parses a token; the error is the real apiserver's 400 message.
    pub fn decode(token: &str) -> Result<ContinueToken, String> {
        let invalid = |e: &dyn std::fmt::Display| {
            format!("invalid continue token: continue key is not valid: {e}")
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .map_err(|e| invalid(&e))?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(&e))?;
        if v["v"] != "meta.k8s.io/v1" {
            return Err(invalid(&"got invalid continue key version"));
        }
        let rv = v["rv"]
            .as_u64()
            .ok_or_else(|| invalid(&"incorrect encoded start resourceVersion"))?;
        let offset = v["start"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(&"encoded start key is not valid"))?;
        Ok(ContinueToken { rv, offset })
    }
}

/// Per-request modifiers from the active fault.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListMode {
    /// Page at this size even for `resourceVersion=0`.
    pub page_always: Option<usize>,
    /// Any `continue` gets 410.
    pub expire_continue: bool,
    /// Every page carries the second page's continue token (with `page_always`).
    pub repeat_continue: bool,
}

/// The resource kinds the stand-in serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Pods,
    Nodes,
    EndpointSlices,
    Services,
}

impl Kind {
    /// `Kind` and `apiVersion` of one object.
    pub fn object_kind(self) -> (&'static str, &'static str) {
        match self {
            Kind::Pods => ("Pod", "v1"),
            Kind::Nodes => ("Node", "v1"),
            Kind::EndpointSlices => ("EndpointSlice", "discovery.k8s.io/v1"),
            Kind::Services => ("Service", "v1"),
        }
    }

    /// The object a BOOKMARK event carries: an empty object of the kind with only its
    /// resourceVersion, as the watch cache's `newFunc()` makes it (encoded like the recorded
    /// v1.36 pod bookmark in the fixtures).
    pub fn bookmark(self, rv: u64) -> Value {
        let (kind, api_version) = self.object_kind();
        let mut o = json!({ "kind": kind, "apiVersion": api_version, "metadata": { "resourceVersion": rv.to_string() } });
        match self {
            Kind::Pods => {
                o["spec"] = json!({ "containers": null });
                o["status"] = json!({});
            }
            Kind::Nodes => {
                o["spec"] = json!({});
                o["status"] = json!({
                    "daemonEndpoints": { "kubeletEndpoint": { "Port": 0 } },
                    "nodeInfo": { "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "", "osImage": "", "containerRuntimeVersion": "", "kubeletVersion": "", "kubeProxyVersion": "", "operatingSystem": "", "architecture": "" },
                });
            }
            Kind::EndpointSlices => {
                o["addressType"] = json!("");
                o["endpoints"] = json!(null);
            }
            Kind::Services => {
                o["spec"] = json!({});
                o["status"] = json!({ "loadBalancer": {} });
            }
        }
        o
    }

    fn list_kind(self) -> (&'static str, &'static str) {
        match self {
            Kind::Pods => ("PodList", "v1"),
            Kind::Nodes => ("NodeList", "v1"),
            Kind::EndpointSlices => ("EndpointSliceList", "discovery.k8s.io/v1"),
            Kind::Services => ("ServiceList", "v1"),
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::Pods => "pods",
            Kind::Nodes => "nodes",
            Kind::EndpointSlices => "endpointslices.discovery.k8s.io",
            Kind::Services => "services",
        }
    }

    fn fields(self) -> &'static [&'static str] {
        match self {
            Kind::Pods => &[
                "metadata.name",
                "metadata.namespace",
                "spec.nodeName",
                "status.phase",
            ],
            Kind::Nodes => &["metadata.name", "spec.unschedulable"],
            Kind::EndpointSlices | Kind::Services => &["metadata.name", "metadata.namespace"],
        }
    }

    /// The objects of this kind in `cluster`.
    pub fn objects(self, cluster: &Cluster) -> &[Value] {
        match self {
            Kind::Pods => &cluster.pods,
            Kind::Nodes => &cluster.nodes,
            Kind::EndpointSlices => &cluster.endpointslices,
            Kind::Services => &cluster.services,
        }
    }

    /// The objects of this kind in `cluster`, to change.
    pub fn objects_mut(self, cluster: &mut Cluster) -> &mut Vec<Value> {
        match self {
            Kind::Pods => &mut cluster.pods,
            Kind::Nodes => &mut cluster.nodes,
            Kind::EndpointSlices => &mut cluster.endpointslices,
            Kind::Services => &mut cluster.services,
        }
    }
}

/// Maps a resource segment to a kind within one API group.
type KindOf = fn(&str) -> Option<Kind>;

/// What a path asks for: a kind, an optional namespace, an optional object name.
fn route(path: &str) -> Option<(Kind, Option<&str>, Option<&str>)> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let (kind_of, rest): (KindOf, &[&str]) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => (
            |r| match r {
                "pods" => Some(Kind::Pods),
                "nodes" => Some(Kind::Nodes),
                "services" => Some(Kind::Services),
                _ => None,
            },
            rest,
        ),
        ["apis", "discovery.k8s.io", "v1", rest @ ..] => (
            |r| (r == "endpointslices").then_some(Kind::EndpointSlices),
            rest,
        ),
        _ => return None,
    };
    match rest {
        [res] => Some((kind_of(res)?, None, None)),
        ["namespaces", ns, res] if !ns.is_empty() => {
            let k = kind_of(res)?;
            (k != Kind::Nodes).then_some((k, Some(*ns), None))
        }
        ["namespaces", ns, res, name] if !ns.is_empty() && !name.is_empty() => {
            let k = kind_of(res)?;
            (k != Kind::Nodes).then_some((k, Some(*ns), Some(*name)))
        }
        [res, name] if !name.is_empty() => {
            let k = kind_of(res)?;
            (k == Kind::Nodes).then_some((k, None, Some(*name)))
        }
        _ => None,
    }
}

fn query_value<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A watch the server streams (see `server.rs`): what to send and how.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// Where to start: `None` (`resourceVersion` unset or `0`) sends every current object as
    /// ADDED first; `Some(rv)` sends the events after `rv`, or 410 when `rv` is too old.
    pub from: Option<u64>,
    /// `timeoutSeconds`; `None` is the server's own default.
    pub timeout: Option<std::time::Duration>,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    pub repr: Repr,
}

impl WatchRequest {
    /// Whether `object` is one this watch selects.
    pub fn selects(&self, object: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| object["metadata"]["namespace"].as_str() == Some(ns))
            && self.labels.matches(object)
            && self.fields.matches(object)
    }
}

/// What the server does with a request: answer it, or stream a watch.
#[derive(Debug, Clone)]
pub enum Answer {
    Reply(Response),
    Watch(Box<WatchRequest>),
}

/// Answers one authenticated request for full objects. `rv` is the cluster's current
/// resourceVersion. (A watch request gets 400 here; the server streams those.)
pub fn handle(
    method: &str,
    path: &str,
    query: &[(String, String)],
    cluster: &Cluster,
    rv: u64,
    mode: ListMode,
) -> Response {
    match handle_as(method, path, query, cluster, rv, mode, Repr::Full) {
        Answer::Reply(r) => r,
        Answer::Watch(_) => bad_request("watch is served by the server, not handle()"),
    }
}

/// 406 for a representation that does not fit the request.
fn not_acceptable(message: &str) -> Response {
    status(406, "NotAcceptable", message, None)
}

/// Answers one authenticated request in the representation `repr` (from the Accept header).
pub fn handle_as(
    method: &str,
    path: &str,
    query: &[(String, String)],
    cluster: &Cluster,
    rv: u64,
    mode: ListMode,
    repr: Repr,
) -> Answer {
    let Some((kind, namespace, name)) = route(path) else {
        return Answer::Reply(not_found_path());
    };
    if method != "GET" {
        return Answer::Reply(status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            Some(json!({})),
        ));
    }
    let watch = matches!(query_value(query, "watch"), Some("true" | "1"));
    if watch {
        if name.is_some() {
            return Answer::Reply(bad_request(
                "watch a single object with fieldSelector=metadata.name=NAME",
            ));
        }
        return match watch_request(kind, namespace, query, repr) {
            Ok(w) => Answer::Watch(Box::new(w)),
            Err(r) => Answer::Reply(r),
        };
    }
    let in_namespace =
        |o: &&Value| namespace.is_none_or(|ns| o["metadata"]["namespace"].as_str() == Some(ns));
    if let Some(name) = name {
        let found = kind
            .objects(cluster)
            .iter()
            .filter(in_namespace)
            .find(|o| o["metadata"]["name"].as_str() == Some(name));
        return Answer::Reply(match found {
            Some(o) => match repr {
                Repr::Full => Response::json(200, o),
                Repr::Metadata { list: true } => not_acceptable(&format!(
                    "you requested PartialObjectMetadataList, but the requested object is not a list (*core.{})",
                    kind.object_kind().0
                )),
                Repr::Metadata { list: false } => Response::json(200, &table::partial(o)),
                Repr::Table(include) => match table::column_definitions(kind) {
                    Some(_) => {
                        let meta = json!({ "resourceVersion": o["metadata"]["resourceVersion"].clone() });
                        table_response(table::table(kind, &[o], include, meta, true))
                    }
                    None => Response::json(200, o),
                },
            },
            None => status(
                404,
                "NotFound",
                &format!("{} \"{name}\" not found", kind.plural()),
                Some(
                    json!({ "name": name, "kind": kind.plural().split('.').next().unwrap_or("") }),
                ),
            ),
        });
    }
    Answer::Reply(list(
        kind,
        query,
        kind.objects(cluster).iter().filter(in_namespace),
        rv,
        mode,
        repr,
    ))
}

fn table_response(body: String) -> Response {
    Response {
        code: 200,
        content_type: "application/json".into(),
        headers: Vec::new(),
        body: table::go_escape(&body).into_bytes(),
    }
}

fn selectors(
    kind: Kind,
    query: &[(String, String)],
) -> Result<(LabelSelector, FieldSelector), Response> {
    let labels = LabelSelector::parse(query_value(query, "labelSelector").unwrap_or(""))
        .map_err(|e| bad_request(&e))?;
    let fields = FieldSelector::parse(
        query_value(query, "fieldSelector").unwrap_or(""),
        kind.fields(),
    )
    .map_err(|e| bad_request(&e))?;
    Ok((labels, fields))
}

fn watch_request(
    kind: Kind,
    namespace: Option<&str>,
    query: &[(String, String)],
    repr: Repr,
) -> Result<WatchRequest, Response> {
    let (labels, fields) = selectors(kind, query)?;
    let from = match query_value(query, "resourceVersion").unwrap_or("") {
        "" | "0" => None,
        text => Some(
            text.parse::<u64>()
                .map_err(|_| bad_request(&format!("invalid resource version \"{text}\"")))?,
        ),
    };
    let timeout = match query_value(query, "timeoutSeconds").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(std::time::Duration::from_secs(t.parse::<u64>().map_err(
            |_| bad_request(&format!("timeoutSeconds: Invalid value: \"{t}\"")),
        )?)),
    };
    Ok(WatchRequest {
        kind,
        namespace: namespace.map(str::to_string),
        labels,
        fields,
        from,
        timeout,
        bookmarks: query_value(query, "allowWatchBookmarks") == Some("true"),
        repr,
    })
}

fn list<'a>(
    kind: Kind,
    query: &[(String, String)],
    objects: impl Iterator<Item = &'a Value>,
    rv: u64,
    mode: ListMode,
    repr: Repr,
) -> Response {
    let (labels, fields) = match selectors(kind, query) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if repr == (Repr::Metadata { list: false }) {
        return not_acceptable(&format!(
            "you requested PartialObjectMetadata, but the requested object is a list (*core.{}List)",
            kind.object_kind().0
        ));
    }
    let limit = match query_value(query, "limit").filter(|l| !l.is_empty()) {
        None => None,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n > 0 => Some(n as usize),
            Ok(_) => None,
            Err(_) => {
                return bad_request(&format!(
                    "limit: Invalid value: \"{l}\": must be an integer"
                ))
            }
        },
    };
    let resource_version = query_value(query, "resourceVersion").unwrap_or("");
    let continue_token = query_value(query, "continue").filter(|c| !c.is_empty());
    // Order as in kube-apiserver's ValidateListOptions: decode first, then the rv check.
    let start = match continue_token {
        None => 0,
        Some(token) => {
            let token = match ContinueToken::decode(token) {
                Ok(t) => t,
                Err(e) => return bad_request(&e),
            };
            if !resource_version.is_empty() && resource_version != "0" {
                return bad_request(
                    "specifying resource version is not allowed when using continue",
                );
            }
            if mode.expire_continue || token.rv != rv {
                return expired();
            }
            token.offset
        }
    };
    // resourceVersion=0 is served from the watch cache, which ignores limit (unless a fault
    // forces paging); a continue token always goes to storage and pages.
    let from_cache = resource_version == "0" && continue_token.is_none();
    let page = match (mode.page_always, from_cache) {
        (Some(n), _) => Some(n.max(1)),
        (None, true) => None,
        (None, false) => limit,
    };
    let matching: Vec<&Value> = objects
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect();
    let end = page.map_or(matching.len(), |n| {
        start.saturating_add(n).min(matching.len())
    });
    let chosen: &[&Value] = matching.get(start.min(end)..end).unwrap_or(&[]);
    let mut metadata = json!({ "resourceVersion": rv.to_string() });
    if mode.repeat_continue {
        let offset = page.unwrap_or(end);
        metadata["continue"] = json!(ContinueToken { rv, offset }.encode());
    } else if end < matching.len() {
        metadata["continue"] = json!(ContinueToken { rv, offset: end }.encode());
        if labels.is_empty() && fields.is_empty() {
            metadata["remainingItemCount"] = json!(matching.len() - end);
        }
    }
    if let Repr::Table(include) = repr {
        if table::column_definitions(kind).is_some() {
            return table_response(table::table(kind, chosen, include, metadata, true));
        }
    }
    // Items in a real list carry no kind/apiVersion of their own (PartialObjectMetadata
    // items do).
    let items: Vec<Value> = chosen
        .iter()
        .map(|o| {
            if matches!(repr, Repr::Metadata { .. }) {
                return table::partial(o);
            }
            let mut o = (*o).clone();
            if let Some(m) = o.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            o
        })
        .collect();
    let (list_kind, api_version) = match repr {
        Repr::Metadata { .. } => ("PartialObjectMetadataList", "meta.k8s.io/v1"),
        _ => kind.list_kind(),
    };
    // Envelope keys in the real order: kind, apiVersion, metadata, items.
    let body = format!(
        "{{\"kind\":\"{list_kind}\",\"apiVersion\":\"{api_version}\",\"metadata\":{metadata},\"items\":{}}}",
        Value::Array(items)
    );
    Response {
        code: 200,
        content_type: "application/json".into(),
        headers: Vec::new(),
        body: body.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::{agent_pod, node};

    fn cluster(pods: usize) -> Cluster {
        let ip = "198.18.0.1".parse().unwrap();
        Cluster {
            pods: (0..pods)
                .map(|i| {
                    agent_pod(
                        &format!("p{i}"),
                        "kube-system",
                        &format!("n{}", i % 2),
                        &[ip],
                        &[ip],
                        "Running",
                        true,
                    )
                })
                .collect(),
            nodes: vec![node("n0", &[ip], true, true)],
            ..Cluster::default()
        }
    }

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn body(r: &Response) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn routes() {
        assert!(route("/api/v1/pods").is_some());
        assert!(route("/api/v1/namespaces/kube-system/pods").is_some());
        assert!(route("/api/v1/nodes/n0").is_some());
        assert!(route("/api/v1/namespaces/x/nodes").is_none());
        assert!(route("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices").is_some());
        assert!(route("/api/v1/namespaces/kube-system/services/kube-dns").is_some());
        assert!(route("/api/v2/pods").is_none());
        assert!(route("/").is_none());
        assert!(route("").is_none());
        assert!(route("/api/v1/namespaces//pods").is_none());
    }

    #[test]
    fn paging_and_cache() {
        let c = cluster(5);
        let path = "/api/v1/namespaces/kube-system/pods";
        let r = handle(
            "GET",
            path,
            &q(&[("limit", "2")]),
            &c,
            7,
            ListMode::default(),
        );
        let b = body(&r);
        assert_eq!(b["items"].as_array().unwrap().len(), 2);
        assert_eq!(b["metadata"]["remainingItemCount"], 3);
        let token = b["metadata"]["continue"].as_str().unwrap().to_string();
        assert_eq!(
            ContinueToken::decode(&token).unwrap(),
            ContinueToken { rv: 7, offset: 2 }
        );
        let r = handle(
            "GET",
            path,
            &q(&[("limit", "2"), ("resourceVersion", "0")]),
            &c,
            7,
            ListMode::default(),
        );
        assert_eq!(body(&r)["items"].as_array().unwrap().len(), 5);
        let r = handle(
            "GET",
            path,
            &q(&[
                ("limit", "2"),
                ("continue", &token),
                ("resourceVersion", "5"),
            ]),
            &c,
            7,
            ListMode::default(),
        );
        assert_eq!(r.code, 400);
        let r = handle(
            "GET",
            path,
            &q(&[("limit", "2"), ("continue", &token)]),
            &c,
            8,
            ListMode::default(),
        );
        assert_eq!(r.code, 410);
        let r = handle(
            "GET",
            path,
            &q(&[("limit", "9"), ("continue", "garbage!")]),
            &c,
            7,
            ListMode::default(),
        );
        assert_eq!(r.code, 400);
        assert!(body(&r)["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid continue token: continue key is not valid: "));
    }

    #[test]
    fn huge_offsets_do_not_panic() {
        let c = cluster(3);
        let token = ContinueToken {
            rv: 1,
            offset: usize::MAX,
        }
        .encode();
        let r = handle(
            "GET",
            "/api/v1/pods",
            &q(&[("limit", "2"), ("continue", &token)]),
            &c,
            1,
            ListMode::default(),
        );
        assert_eq!(r.code, 200);
        assert_eq!(body(&r)["items"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn repeat_continue_hands_out_the_second_pages_token_on_every_page() {
        let c = cluster(3);
        let mode = ListMode {
            page_always: Some(1),
            repeat_continue: true,
            ..ListMode::default()
        };
        let second = ContinueToken { rv: 1, offset: 1 }.encode();
        let first = handle("GET", "/api/v1/pods", &q(&[("limit", "9")]), &c, 1, mode);
        let last_token = ContinueToken { rv: 1, offset: 2 }.encode();
        let last = handle(
            "GET",
            "/api/v1/pods",
            &q(&[("limit", "9"), ("continue", &last_token)]),
            &c,
            1,
            mode,
        );
        for r in [first, last] {
            let b = body(&r);
            assert_eq!(b["items"].as_array().unwrap().len(), 1);
            assert_eq!(b["metadata"]["continue"], second.as_str());
        }
    }

    #[test]
    fn named_get_and_not_found() {
        let c = cluster(1);
        let r = handle(
            "GET",
            "/api/v1/namespaces/kube-system/services/kube-dns",
            &[],
            &c,
            1,
            ListMode::default(),
        );
        assert_eq!(r.code, 404);
        assert_eq!(body(&r)["message"], "services \"kube-dns\" not found");
        assert_eq!(body(&r)["details"]["kind"], "services");
        let r = handle("GET", "/api/v1/nodes/n0", &[], &c, 1, ListMode::default());
        assert_eq!(body(&r)["metadata"]["name"], "n0");
        let r = handle("GET", "/nope", &[], &c, 1, ListMode::default());
        assert_eq!(
            body(&r)["message"],
            "the server could not find the requested resource"
        );
        let r = handle("DELETE", "/api/v1/pods", &[], &c, 1, ListMode::default());
        assert_eq!(r.code, 405);
    }
}
