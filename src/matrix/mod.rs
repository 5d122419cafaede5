//! The whole-cluster matrix: rows are source nodes, columns target nodes, each cell the
//! result of that path in the source agent's last round; built from every agent's
//! `/summary.json` (see `summary`) only while someone looks at the page (`/`), at
//! `/matrix.json` or through the `matrix` command.
//!
//! - `model` (pure): summaries -> cells -> the [`Matrix`] shown (summarised beyond
//!   [`model::FULL_NODES`] nodes: the failing rows and columns first).
//! - `page`, `text` (pure): the HTML page and the 80-column text of the `matrix` command.
//! - `fetch`: the bounded HTTP GET agents use to read each other's summaries.
//! - `refresh`: the cache, its single-flight refresh thread and the bounded fetches.

pub mod fetch;
pub mod model;
pub mod page;
pub mod refresh;
pub mod text;

pub use model::Matrix;
pub use refresh::{MatrixService, Members, Now, Settings};
