//! Checks the namespace support itself: a veth pair carries a ping, and the guard cleans up.
mod common;
use common::*;

#[test]
fn netns_guard_creates_connects_and_removes() {
    if !need_root("netns_guard_creates_connects_and_removes") {
        return;
    }
    let name;
    {
        let a = Netns::new("a");
        let b = Netns::new("b");
        veth(
            &a,
            "va",
            &["198.18.200.1/24", "2001:db8:200::1/64"],
            &b,
            "vb",
            &["198.18.200.2/24", "2001:db8:200::2/64"],
        );
        a.exec(&["fping", "-q", "-t500", "198.18.200.2", "2001:db8:200::2"]);
        name = a.name.clone();
    }
    let list = String::from_utf8(sh(&["ip", "netns", "list"]).stdout).unwrap();
    assert!(!list.contains(&name), "namespace {name} left behind");
}
