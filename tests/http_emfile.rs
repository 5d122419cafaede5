//! Accept errors for real: this test process runs out of file descriptors while clients wait
//! in the listen backlog. The server must count the errors, pause between attempts instead of
//! spinning on a listener that stays readable, keep serving its open connections, and accept
//! the waiting clients once descriptors are free again. (Its own test binary, because it
//! lowers the whole process's descriptor limit.)

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_network_test_daemonset::http::Reason;
use k8s_network_test_daemonset::http::{HttpServer, Shared};
use k8s_network_test_daemonset::view::metrics::AgentInfo;

/// Reads one response with a Content-Length body; returns the status code.
fn status_of(r: &mut BufReader<TcpStream>) -> u16 {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        if h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    status
}

/// The `stat` file of this process's thread named `name`, opened once: it is re-read while
/// no descriptor is free.
fn thread_stat(name: &str) -> File {
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            return File::open(task.path().join("stat")).unwrap();
        }
    }
    panic!("no thread named {name}");
}

/// CPU time (user + system, in clock ticks) from a thread's `stat` file.
fn ticks(stat: &mut File) -> u64 {
    stat.seek(SeekFrom::Start(0)).unwrap();
    let mut text = String::new();
    stat.read_to_string(&mut text).unwrap();
    // Fields after the ")" that ends the name: state is field 3, utime 14, stime 15.
    let rest = &text[text.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn running_out_of_descriptors_pauses_accepting_without_spinning() {
    let shared = Arc::new(Shared::new(AgentInfo {
        version: "0".into(),
        node: "n".into(),
        pod: "p".into(),
    }));
    let server = HttpServer::start("127.0.0.1:0".parse().unwrap(), shared).unwrap();
    let addr = server.addr;
    let mut kept = BufReader::new(TcpStream::connect(addr).unwrap());
    kept.get_mut()
        .write_all(b"GET /livez HTTP/1.1\r\n\r\n")
        .unwrap();
    assert_eq!(status_of(&mut kept), 200);

    let mut http_stat = thread_stat("http");
    // Three client sockets, then a low descriptor limit and every free descriptor taken;
    // then the clients connect (the kernel completes the handshake) but the server cannot
    // accept them.
    let clients: Vec<socket2::Socket> = (0..3)
        .map(|_| socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap())
        .collect();
    let open_now = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let limit = libc::rlimit {
        rlim_cur: open_now + 64,
        rlim_max: libc::RLIM_INFINITY,
    };
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut old), 0);
        assert_eq!(
            libc::setrlimit(
                libc::RLIMIT_NOFILE,
                &libc::rlimit {
                    rlim_max: old.rlim_max,
                    ..limit
                }
            ),
            0
        );
    }
    let mut filler: Vec<File> = Vec::new();
    while let Ok(f) = File::open("/dev/null") {
        filler.push(f);
    }
    for c in &clients {
        c.connect(&addr.into()).unwrap();
    }
    let waiting: Vec<TcpStream> = clients.into_iter().map(TcpStream::from).collect();

    let errors_before = server.stats().rejections(Reason::AcceptError);
    let ticks_before = ticks(&mut http_stat);
    let started = Instant::now();
    // Meanwhile the open connection is served.
    while started.elapsed() < Duration::from_secs(2) {
        kept.get_mut()
            .write_all(b"GET /livez HTTP/1.1\r\n\r\n")
            .unwrap();
        assert_eq!(status_of(&mut kept), 200);
        std::thread::sleep(Duration::from_millis(100));
    }
    let elapsed = started.elapsed();
    let errors = server.stats().rejections(Reason::AcceptError) - errors_before;
    let ticks = ticks(&mut http_stat) - ticks_before;
    println!(
        "out of descriptors for {elapsed:?}: {errors} accept errors, http thread CPU {ticks} ticks"
    );
    assert!(errors >= 5, "accept errors were not seen or not counted");
    // A 20 ms pause allows about 100 attempts in 2 s; a spinning loop makes millions.
    let most = elapsed.as_millis() as u64 / 10 + 50;
    assert!(
        errors <= most,
        "{errors} accept errors in {elapsed:?}: spinning"
    );
    assert!(
        ticks < 50,
        "http thread used {ticks} ticks of CPU while paused"
    );

    // Descriptors free again: the waiting clients are accepted and answered.
    drop(filler);
    unsafe {
        libc::setrlimit(libc::RLIMIT_NOFILE, &old);
    }
    for s in waiting {
        let mut r = BufReader::new(s);
        r.get_mut()
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        r.get_mut()
            .write_all(b"GET /livez HTTP/1.1\r\n\r\n")
            .unwrap();
        assert_eq!(status_of(&mut r), 200);
    }
}
