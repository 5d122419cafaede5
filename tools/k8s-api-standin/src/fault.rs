//! Ways the stand-in can misbehave, so the client's error paths meet real failure shapes.

use serde::{Deserialize, Serialize};

/// A misbehaviour applied to the following requests (see [`crate::StandIn::set_fault`]).
///
/// JSON form (also `DIR/fault.json` for the binary) is internally tagged by `kind`, e.g.
/// `{"kind":"status","code":429,"content_type":"text/plain","body":"...","retry_after":1}`,
/// `{"kind":"hang"}`, `{"kind":"page_always","limit":2}`, `{"kind":"huge","bytes":20000000}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer every request with this status, content type and body (plus `Retry-After`).
    Status {
        /// HTTP status code.
        code: u16,
        /// `Content-Type` header value.
        content_type: String,
        /// Response body, sent as is.
        body: String,
        /// `Retry-After` seconds, when set.
        #[serde(default)]
        retry_after: Option<u32>,
    },
    /// Read the request and never answer (until the stand-in stops).
    Hang,
    /// Send a Content-Length larger than the body, part of the body, then close.
    Truncate,
    /// Page lists at `limit` items even for `resourceVersion=0` (the real API would not).
    PageAlways {
        /// Items per page.
        limit: usize,
    },
    /// Answer any request that carries `continue` with 410 Expired.
    ExpireContinue,
    /// Page like `PageAlways` and answer the next `expire` requests that carry `continue`
    /// with 410 Expired (then page normally): a list expiring mid-paging, once or every time.
    ExpireWhilePaging {
        /// Items per page.
        limit: usize,
        /// How many continue requests get 410.
        expire: u32,
    },
    /// Page like `PageAlways`, but every page (the last too) hands out the same continue
    /// token, that of the second page: a server stuck in a loop, which a client must refuse
    /// instead of paging forever.
    RepeatContinue {
        /// Items per page.
        limit: usize,
    },
    /// A 200 list body of exactly this many bytes, streamed.
    Huge {
        /// Body size in bytes.
        bytes: u64,
    },
    /// Accept the TCP connection and close it without TLS.
    CloseImmediately,
    /// Page like `PageAlways` and wait `millis` before answering each request: a slow,
    /// overloaded server that answers every page, eventually.
    SlowPages {
        /// Items per page.
        limit: usize,
        /// Delay before each answer, in milliseconds.
        millis: u64,
    },
    /// Cut a watch stream after `after_bytes` bytes of its body (mid-event if that is where
    /// the count ends): the TCP connection closes without the chunked terminator, as when a
    /// load balancer or the network drops it. Only watch requests take (and count) it.
    CutWatch {
        /// Body bytes sent before the cut.
        after_bytes: u64,
    },
    /// Answer a watch with HTTP 200 and this one event line (e.g. an ERROR event), then end
    /// the stream. Only watch requests take (and count) it.
    WatchEvent {
        /// The event, one JSON object (a newline is added).
        line: String,
    },
}

/// A fault with an optional count: `Some(n)` applies it to the next n requests, then clears.
/// File form: the fault's fields plus `"count"`, e.g. `{"kind":"truncate","count":2}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// The fault.
    #[serde(flatten)]
    pub fault: Fault,
    /// How many requests (connections, for `close_immediately`) it applies to; none = forever.
    #[serde(default)]
    pub count: Option<u32>,
}

impl Fault {
    /// APF's 429: plain text with `Retry-After: 1`, as kube-apiserver sends it.
    pub fn too_many_requests() -> Fault {
        Fault::Status {
            code: 429,
            content_type: "text/plain; charset=utf-8".into(),
            body: "Too many requests, please try again later.\n".into(),
            retry_after: Some(1),
        }
    }

    /// The real 403 Forbidden Status for listing a resource cluster-wide (user `NAME` as in
    /// the kube-apiserver test fixture, resource replaced).
    pub fn forbidden(resource: &str) -> Fault {
        Fault::Status {
            code: 403,
            content_type: "application/json".into(),
            body: format!(
                "{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"Failure\",\
                 \"message\":\"{resource} is forbidden: User \\\"NAME\\\" cannot list resource \\\"{resource}\\\" \
                 in API group \\\"\\\" at the cluster scope\",\"reason\":\"Forbidden\",\
                 \"details\":{{\"kind\":\"{resource}\"}},\"code\":403}}"
            ),
            retry_after: None,
        }
    }

    /// A 500 InternalError Status.
    pub fn internal_error() -> Fault {
        Fault::Status {
            code: 500,
            content_type: "application/json".into(),
            body: "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\
                   \"message\":\"Internal error occurred: etcdserver: request timed out\",\
                   \"reason\":\"InternalError\",\"details\":{\"causes\":[{\"message\":\"etcdserver: request timed out\"}]},\"code\":500}"
                .into(),
            retry_after: None,
        }
    }

    /// A proxy's 502 with an HTML body.
    pub fn bad_gateway() -> Fault {
        Fault::Status {
            code: 502,
            content_type: "text/html".into(),
            body: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
                   <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
                .into(),
            retry_after: None,
        }
    }

    /// A plain-text 404 like a proxy sends (the kubeclient illegal-json fixture).
    pub fn plain_not_found() -> Fault {
        Fault::Status {
            code: 404,
            content_type: "text/plain; charset=utf-8".into(),
            body: "404: Page Not Found".into(),
            retry_after: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_form_round_trips() {
        let plan: FaultPlan =
            serde_json::from_str(r#"{"kind":"page_always","limit":2,"count":3}"#).unwrap();
        assert_eq!(
            plan,
            FaultPlan {
                fault: Fault::PageAlways { limit: 2 },
                count: Some(3)
            }
        );
        let plan: FaultPlan = serde_json::from_str(r#"{"kind":"hang"}"#).unwrap();
        assert_eq!(plan.count, None);
        let text = serde_json::to_string(&FaultPlan {
            fault: Fault::too_many_requests(),
            count: None,
        })
        .unwrap();
        let back: FaultPlan = serde_json::from_str(&text).unwrap();
        assert_eq!(back.fault, Fault::too_many_requests());
        assert!(serde_json::from_str::<FaultPlan>(r#"{"kind":"nope"}"#).is_err());
    }

    #[test]
    fn canned_json_bodies_parse() {
        for f in [Fault::forbidden("pods"), Fault::internal_error()] {
            let Fault::Status { body, .. } = f else {
                panic!()
            };
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["kind"], "Status");
        }
    }
}
