//! ICMP echo to many targets at once (owned by the prober work).

pub mod cmd;
