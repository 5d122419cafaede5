//! Server-printed node Tables -> [`NodeInfo`] (pure). A row is found by column name, not by
//! position, so a server that orders or adds columns differently still reads right; a row
//! that lacks what the agent needs is skipped, never guessed.
//!
//! What a node row carries (kube-apiserver's `printNode`): the name, `Status` (`Ready` or
//! `NotReady` or `Unknown`, then `,SchedulingDisabled` when cordoned), `Roles` (from the
//! `node-role.kubernetes.io/*` labels), and `Internal-IP`: the FIRST InternalIP only.

use std::net::IpAddr;

use super::objects::{TableColumn, TableRow};
use super::NodeInfo;

/// Where the cells the agent reads sit in a node row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeColumns {
    name: usize,
    status: usize,
    roles: Option<usize>,
    internal_ip: usize,
}

impl NodeColumns {
    /// The positions of Name, Status, Roles and Internal-IP, or why they cannot be found.
    pub fn from_definitions(columns: &[TableColumn]) -> Result<NodeColumns, String> {
        let find = |name: &str| {
            columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
        };
        let need = |name: &str| {
            find(name).ok_or_else(|| {
                format!(
                    "the node Table has no {name:?} column (columns: {})",
                    names(columns)
                )
            })
        };
        Ok(NodeColumns {
            name: need("Name")?,
            status: need("Status")?,
            roles: find("Roles"),
            internal_ip: need("Internal-IP")?,
        })
    }
}

fn names(columns: &[TableColumn]) -> String {
    let all: Vec<&str> = columns.iter().map(|c| c.name.as_str()).take(20).collect();
    all.join(", ")
}

fn cell(row: &TableRow, i: usize) -> &str {
    row.cells
        .get(i)
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
}

/// The node of one row; `None` when the row has no name (a BOOKMARK's empty object).
pub fn node_from_row(row: &TableRow, cols: &NodeColumns) -> Option<NodeInfo> {
    let name = cell(row, cols.name).trim();
    if name.is_empty() {
        return None;
    }
    let status: Vec<&str> = cell(row, cols.status).split(',').map(str::trim).collect();
    let roles: Vec<&str> = cols
        .roles
        .map(|i| cell(row, i).split(',').map(str::trim).collect())
        .unwrap_or_default();
    let internal_ips = cell(row, cols.internal_ip)
        .trim()
        .parse::<IpAddr>()
        .map(|ip| vec![ip])
        .unwrap_or_default();
    Some(NodeInfo {
        name: name.to_string(),
        internal_ips,
        control_plane: roles
            .iter()
            .any(|r| *r == "control-plane" || *r == "master"),
        ready: status.first() == Some(&"Ready"),
        unschedulable: status.contains(&"SchedulingDisabled"),
    })
}

/// The name in a row (for a DELETED event).
pub fn name_of(row: &TableRow, cols: &NodeColumns) -> Option<String> {
    let name = cell(row, cols.name).trim();
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::objects::NodesOrTable;

    fn recorded() -> NodesOrTable {
        serde_json::from_str(include_str!(
            "../../tests/fixtures/k8s-api/obsidian-vault.kubectl-get-no-v9.k3s-v1.33-nodes-Table-PartialObjectMetadata-rows.json"
        ))
        .unwrap()
    }

    #[test]
    fn a_recorded_node_table() {
        let t = recorded();
        assert_eq!(t.kind, "Table");
        assert_eq!(t.metadata.list.resource_version, "399737");
        let cols = NodeColumns::from_definitions(t.column_definitions.as_deref().unwrap()).unwrap();
        let n = node_from_row(&t.rows[0], &cols).unwrap();
        assert_eq!(n.name, "orbstack");
        assert!(n.ready && !n.unschedulable && n.control_plane);
        // A dual-stack node (its annotations name fd07:b51a:cc66::2 too): the row has the
        // first InternalIP only.
        assert_eq!(
            n.internal_ips,
            vec!["192.168.139.2".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn status_words_and_odd_cells() {
        let cols = NodeColumns {
            name: 0,
            status: 1,
            roles: Some(2),
            internal_ip: 3,
        };
        let row = |cells: serde_json::Value| TableRow {
            cells: cells.as_array().unwrap().clone(),
        };
        let n = node_from_row(
            &row(serde_json::json!([
                "w",
                "NotReady,SchedulingDisabled",
                "<none>",
                "<none>"
            ])),
            &cols,
        )
        .unwrap();
        assert!(!n.ready && n.unschedulable && !n.control_plane);
        assert!(n.internal_ips.is_empty());
        let n = node_from_row(
            &row(serde_json::json!(["m", "Unknown", "master", "2001:db8::5"])),
            &cols,
        )
        .unwrap();
        assert!(!n.ready && n.control_plane);
        assert_eq!(n.internal_ips.len(), 1);
        // A bookmark's empty row, short rows, numbers where strings belong: no node, no panic.
        assert!(node_from_row(&row(serde_json::json!(["", "Unknown"])), &cols).is_none());
        assert!(node_from_row(&row(serde_json::json!([])), &cols).is_none());
        assert!(node_from_row(&row(serde_json::json!([5, 6])), &cols).is_none());
        let missing = NodeColumns::from_definitions(&[TableColumn {
            name: "Name".into(),
        }]);
        assert!(missing.unwrap_err().contains("Status"));
    }
}
