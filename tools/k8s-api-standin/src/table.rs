//! Other representations of the same objects, chosen by the `Accept` header as kube-apiserver
//! does: server-printed Tables (`as=Table;g=meta.k8s.io;v=v1`, rows by the node and pod
//! printers of `pkg/printers/internalversion`, column definitions copied from recorded real
//! responses) and `PartialObjectMetadata` (metadata only). Kinds without a printer here are
//! served as full objects, like a server or proxy that ignores `as=Table`.

use crate::api::Kind;
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// What a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    /// The objects themselves.
    Full,
    /// A server-printed Table; `include` is `includeObject` (`None`, `Metadata`, `Object`).
    Table(Include),
    /// `PartialObjectMetadata` (and `...List` for lists); `list` is what the Accept named.
    Metadata { list: bool },
}

/// `includeObject` of a Table request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

impl Repr {
    /// A short label for the request counters.
    pub fn label(self) -> &'static str {
        match self {
            Repr::Full => "full",
            Repr::Table(_) => "table",
            Repr::Metadata { .. } => "metadata",
        }
    }
}

/// The first media range of an `Accept` header that the stand-in serves; `Full` for plain
/// JSON, no header, or nothing it knows. `include_object` is the query parameter.
pub fn negotiate(accept: Option<&str>, include_object: Option<&str>) -> Result<Repr, String> {
    let include = match include_object.unwrap_or("") {
        "" | "Metadata" => Include::Metadata,
        "None" => Include::None,
        "Object" => Include::Object,
        other => return Err(format!("unrecognized includeObject value: \"{other}\"")),
    };
    for range in accept.unwrap_or("").split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        if !matches!(media, "application/json" | "*/*" | "application/*") {
            continue;
        }
        let (mut as_, mut group, mut version) = ("", "", "");
        for p in parts {
            match p.split_once('=') {
                Some(("as", v)) => as_ = v,
                Some(("g", v)) => group = v,
                Some(("v", v)) => version = v,
                _ => {}
            }
        }
        if as_.is_empty() {
            return Ok(Repr::Full);
        }
        if group != "meta.k8s.io" || !matches!(version, "v1" | "v1beta1") {
            continue;
        }
        match as_ {
            "Table" => return Ok(Repr::Table(include)),
            "PartialObjectMetadata" => return Ok(Repr::Metadata { list: false }),
            "PartialObjectMetadataList" => return Ok(Repr::Metadata { list: true }),
            _ => continue,
        }
    }
    Ok(Repr::Full)
}

/// Column definitions of a recorded real Table, parsed once.
fn columns(text: &'static str, cell: &'static OnceLock<Value>) -> &'static Value {
    cell.get_or_init(|| {
        serde_json::from_str::<Value>(text)
            .map(|v| v["columnDefinitions"].clone())
            .unwrap_or(Value::Null)
    })
}

static NODE_COLUMNS: OnceLock<Value> = OnceLock::new();
static POD_COLUMNS: OnceLock<Value> = OnceLock::new();

/// The real column definitions for `kind`, when the stand-in prints that kind.
pub fn column_definitions(kind: Kind) -> Option<&'static Value> {
    match kind {
        Kind::Nodes => Some(columns(
            include_str!("../../../tests/fixtures/k8s-api/obsidian-vault.kubectl-get-no-v9.k3s-v1.33-nodes-Table-PartialObjectMetadata-rows.json"),
            &NODE_COLUMNS,
        )),
        Kind::Pods => Some(columns(
            include_str!("../../../tests/fixtures/k8s-api/k8s-api-pods.kubectl-get-pod-v9.v1.29-pod-Table-PartialObjectMetadata-row.json"),
            &POD_COLUMNS,
        )),
        Kind::EndpointSlices | Kind::Services => None,
    }
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn or<'a>(text: &'a str, default: &'a str) -> &'a str {
    if text.is_empty() {
        default
    } else {
        text
    }
}

/// One printed row of `object` (whose kind has a printer), without its `object` field.
pub fn cells(kind: Kind, object: &Value) -> Vec<Value> {
    match kind {
        Kind::Nodes => node_cells(object),
        _ => pod_cells(object),
    }
}

/// `printNode`: Name, Status, Roles, Age, Version, Internal-IP, External-IP, OS-Image,
/// Kernel-Version, Container-Runtime.
fn node_cells(n: &Value) -> Vec<Value> {
    let mut status: Vec<&str> = Vec::new();
    if let Some(ready) = n["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
    {
        status.push(if ready["status"] == "True" {
            "Ready"
        } else {
            "NotReady"
        });
    }
    if status.is_empty() {
        status.push("Unknown");
    }
    if n["spec"]["unschedulable"] == true {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<String> = n["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                (!role.is_empty()).then(|| role.to_string())
            } else if k == "kubernetes.io/role" {
                v.as_str().filter(|r| !r.is_empty()).map(str::to_string)
            } else {
                None
            }
        })
        .collect();
    roles.sort();
    roles.dedup();
    let address = |kind: &str| {
        n["status"]["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["type"] == kind)
            .and_then(|a| a["address"].as_str())
            .unwrap_or("<none>")
            .to_string()
    };
    let info = |k: &str| or(s(n, &["status", "nodeInfo", k]), "<unknown>").to_string();
    vec![
        json!(s(n, &["metadata", "name"])),
        json!(status.join(",")),
        json!(if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles.join(",")
        }),
        json!(age(s(n, &["metadata", "creationTimestamp"]))),
        json!(s(n, &["status", "nodeInfo", "kubeletVersion"])),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

/// `printPod`: Name, Ready, Status, Restarts, Age, IP, Node, Nominated Node, Readiness Gates.
fn pod_cells(p: &Value) -> Vec<Value> {
    let statuses = p["status"]["containerStatuses"].as_array();
    let total = p["spec"]["containers"].as_array().map_or(0, Vec::len);
    let ready = statuses
        .into_iter()
        .flatten()
        .filter(|c| c["ready"] == true)
        .count();
    let restarts: u64 = statuses
        .into_iter()
        .flatten()
        .filter_map(|c| c["restartCount"].as_u64())
        .sum();
    let status = if p["metadata"].get("deletionTimestamp").is_some() {
        "Terminating"
    } else {
        or(s(p, &["status", "phase"]), "Unknown")
    };
    vec![
        json!(s(p, &["metadata", "name"])),
        json!(format!("{ready}/{total}")),
        json!(status),
        json!(restarts.to_string()),
        json!(age(s(p, &["metadata", "creationTimestamp"]))),
        json!(or(s(p, &["status", "podIP"]), "<none>")),
        json!(or(s(p, &["spec", "nodeName"]), "<none>")),
        json!(or(s(p, &["status", "nominatedNodeName"]), "<none>")),
        json!("<none>"),
    ]
}

/// `PartialObjectMetadata` of one object.
pub fn partial(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object["metadata"].clone(),
    })
}

/// One row: cells, and the object as `includeObject` says (`null` for `None`, as the
/// server's `RawExtension` encodes an absent object).
pub fn row(kind: Kind, object: &Value, include: Include) -> Value {
    let embedded = match include {
        Include::None => Value::Null,
        Include::Metadata => partial(object),
        Include::Object => object.clone(),
    };
    json!({ "cells": cells(kind, object), "object": embedded })
}

/// A Table of `objects` with the list or object metadata `meta`; `headers` false leaves
/// `columnDefinitions` null (watch events after the first).
pub fn table(
    kind: Kind,
    objects: &[&Value],
    include: Include,
    meta: Value,
    headers: bool,
) -> String {
    let columns = if headers {
        column_definitions(kind).cloned().unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let rows: Vec<Value> = objects.iter().map(|o| row(kind, o, include)).collect();
    // Key order as kube-apiserver writes it: kind, apiVersion, metadata, columnDefinitions, rows.
    format!(
        "{{\"kind\":\"Table\",\"apiVersion\":\"meta.k8s.io/v1\",\"metadata\":{meta},\"columnDefinitions\":{columns},\"rows\":{}}}",
        Value::Array(rows)
    )
}

/// Escapes `<`, `>` and `&` as Go's encoding/json does (`<none>` is `\u003cnone\u003e` on the
/// wire), so sizes and bytes match a real server's.
pub fn go_escape(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Seconds since the Unix epoch of an RFC 3339 UTC time `YYYY-MM-DDTHH:MM:SSZ`.
fn parse_time(t: &str) -> Option<i64> {
    let num = |a: usize, b: usize| t.get(a..b)?.parse::<i64>().ok();
    if t.len() < 20 || t.get(4..5) != Some("-") || t.get(10..11) != Some("T") {
        return None;
    }
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hh, mm, ss) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// The Age cell: `duration.HumanDuration` of the time since `created`.
fn age(created: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    match parse_time(created) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".into(),
    }
}

/// k8s.io/apimachinery/pkg/util/duration.HumanDuration.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let d = hours / 24 - 365 * (hours / 24 / 365);
        return if d == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{d}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::{agent_pod, node};

    #[test]
    fn accept_headers_as_kubectl_and_client_go_send_them() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            negotiate(Some(kubectl), Some("None")),
            Ok(Repr::Table(Include::None))
        );
        assert_eq!(
            negotiate(Some(kubectl), None),
            Ok(Repr::Table(Include::Metadata))
        );
        assert_eq!(
            negotiate(
                Some("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
                None
            ),
            Ok(Repr::Metadata { list: true })
        );
        assert_eq!(negotiate(Some("application/json"), None), Ok(Repr::Full));
        assert_eq!(negotiate(None, None), Ok(Repr::Full));
        assert_eq!(
            negotiate(Some("application/json;as=Table;g=x;v=v1"), None),
            Ok(Repr::Full)
        );
        assert!(negotiate(Some(kubectl), Some("All")).is_err());
    }

    #[test]
    fn node_rows_like_the_printer() {
        let mut n = node(
            "w1",
            &[
                "198.18.0.1".parse().unwrap(),
                "2001:db8::1".parse().unwrap(),
            ],
            true,
            false,
        );
        n["spec"]["unschedulable"] = json!(true);
        let c = cells(Kind::Nodes, &n);
        assert_eq!(c[0], "w1");
        assert_eq!(c[1], "NotReady,SchedulingDisabled");
        assert_eq!(c[2], "control-plane");
        assert_eq!(c[5], "198.18.0.1", "the first InternalIP only");
        assert_eq!(c[6], "<none>");
        assert_eq!(c[7], "<unknown>");
        assert_eq!(
            c.len(),
            column_definitions(Kind::Nodes)
                .unwrap()
                .as_array()
                .unwrap()
                .len()
        );
    }

    #[test]
    fn pod_rows_like_the_printer() {
        let p = agent_pod(
            "a",
            "kube-system",
            "n1",
            &[
                "198.18.1.1".parse().unwrap(),
                "2001:db8::1:1".parse().unwrap(),
            ],
            &[],
            "Running",
            true,
        );
        let c = cells(Kind::Pods, &p);
        assert_eq!(c[2], "Running");
        assert_eq!(c[5], "198.18.1.1", "the first pod IP only");
        assert_eq!(c[6], "n1");
        assert_eq!(
            c.len(),
            column_definitions(Kind::Pods)
                .unwrap()
                .as_array()
                .unwrap()
                .len()
        );
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(34 * 60), "34m");
        assert_eq!(human_duration(5 * 3600 + 60), "5h1m");
        assert_eq!(human_duration(24 * 86_400), "24d");
        assert_eq!(human_duration(3 * 365 * 86_400 + 86_400), "3y1d");
        assert_eq!(parse_time("1970-01-02T00:00:01Z"), Some(86_401));
        assert_eq!(parse_time("2026-06-15T04:14:52Z"), Some(1_781_496_892));
        assert_eq!(parse_time("garbage"), None);
    }

    #[test]
    fn go_escapes_angle_brackets() {
        assert_eq!(go_escape("[\"<none>\"]"), "[\"\\u003cnone\\u003e\"]");
    }
}
