//! Shared support for tests that build real networks in Linux network namespaces: the guard,
//! veth and root check live in the `cluster-box` test-support crate, re-exported here.
#![allow(unused_imports)]

pub use cluster_box::netns::*;
