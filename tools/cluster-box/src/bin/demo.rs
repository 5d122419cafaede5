//! `make demo`: the end-to-end cluster, left running until Ctrl-C, with Prometheus and every
//! agent forwarded to localhost. Everything is torn down on exit, Ctrl-C or failure.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cluster_box::forward::Forward;
use cluster_box::lab::{Lab, Options, PROMETHEUS_PORT};
use cluster_box::{Spec, API_IP};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(binary) = args.next() else {
        eprintln!("usage: demo AGENT-BINARY [NODES]");
        std::process::exit(2);
    };
    let nodes: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(4);
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("demo: needs root to build network namespaces (try: sudo make demo)");
        std::process::exit(2);
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).expect("signal handler");
    }
    eprintln!("demo: building a {nodes}-node cluster in network namespaces...");
    let lab = Lab::start(Options {
        spec: Spec {
            nodes,
            ..Spec::default()
        },
        binary: binary.into(),
        agent_args: vec!["--interval".into(), "10s".into()],
        prometheus: true,
    });
    let local = |port: u16| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let mut forwards = vec![Forward::start(
        local(9090),
        &lab.cluster.api.name,
        SocketAddr::new(IpAddr::V4(API_IP), PROMETHEUS_PORT),
    )
    .expect("forward 127.0.0.1:9090 (is the port free?)")];
    for (i, addr) in lab.agent_addrs().into_iter().enumerate() {
        forwards.push(
            Forward::start(local(8123 + i as u16), &lab.cluster.api.name, addr)
                .expect("forward an agent port (is it free?)"),
        );
    }
    let dir = lab.cluster.dir.display();
    println!(
        "The cluster is up: {nodes} nodes, 2 DNS pods, an agent on every node, rounds every 10 s."
    );
    println!();
    println!(
        "  Prometheus:      http://127.0.0.1:9090/graph?g0.expr=sum(networktest_total_error_count)"
    );
    println!(
        "  alerts:          http://127.0.0.1:9090/alerts   (rules/networktest.rules.yml, `for:` scaled to the 10 s rounds)"
    );
    for (i, n) in lab.cluster.nodes.iter().enumerate() {
        println!(
            "  agent on {:<16} curl http://127.0.0.1:{}/prometheus.report   (also /status.json)",
            n.name,
            8123 + i
        );
    }
    println!("  the matrix:      http://127.0.0.1:8123/   (any agent's page; also /matrix.json)");
    println!(
        "  agent logs:      tail -f {dir}/agent-0.out   (the table; agent-N.log has diagnostics)"
    );
    println!(
        "  break something: ip -n {} link set n2 down   (node-2's cable; `up` heals it)",
        lab.cluster.underlay.name
    );
    println!();
    println!("Ctrl-C tears everything down.");
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("demo: tearing down...");
    drop(forwards);
    drop(lab);
    eprintln!("demo: done, nothing left behind.");
}
