//! Added ICMP latency without netem: this machine's kernel has no `sch_netem`, so a node is
//! made "slow" by turning off the kernel's echo replies in its namespace and answering echo
//! requests from user space after a fixed delay. Only ICMP echo is delayed (which is what
//! the pings measure); other traffic is unchanged.

use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::netns::{run_in, sh};

/// A delayed echo responder in one namespace; dropping it restores the kernel's replies.
pub struct SlowEcho {
    ns: String,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl SlowEcho {
    /// Starts answering IPv4 echo requests in namespace `ns` after `delay`.
    pub fn start(ns: &str, delay: Duration) -> SlowEcho {
        let name = ns.to_string();
        let socket = run_in(ns, move || {
            sh(&["sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1"]);
            let s =
                Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).expect("raw socket");
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .expect("timeout");
            s
        });
        // `sysctl` ran as a child of a thread inside the namespace, so it applied there.
        let socket = Arc::new(socket);
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<(Instant, Ipv4Addr, Vec<u8>)>();
        let receiver = {
            let (socket, stop) = (socket.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, _)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    // SAFETY: recv_from initialised the first n bytes.
                    let pkt: Vec<u8> = buf[..n]
                        .iter()
                        .map(|b| unsafe { b.assume_init() })
                        .collect();
                    if let Some((src, reply)) = echo_reply(&pkt) {
                        let _ = tx.send((Instant::now() + delay, src, reply));
                    }
                }
            })
        };
        let sender = {
            let (socket, stop) = (socket.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok((at, dst, reply)) = rx.recv_timeout(Duration::from_millis(100)) else {
                        continue;
                    };
                    let now = Instant::now();
                    if at > now {
                        std::thread::sleep(at - now);
                    }
                    let addr = SocketAddr::V4(SocketAddrV4::new(dst, 0));
                    let _ = socket.send_to(&reply, &addr.into());
                }
            })
        };
        SlowEcho {
            ns: name,
            stop,
            threads: vec![receiver, sender],
        }
    }
}

impl Drop for SlowEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let _ = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                "sysctl",
                "-qw",
                "net.ipv4.icmp_echo_ignore_all=0",
            ])
            .status();
    }
}

/// For an IPv4 packet holding an ICMP echo request: its source and the echo reply to send.
fn echo_reply(pkt: &[u8]) -> Option<(Ipv4Addr, Vec<u8>)> {
    let ihl = usize::from(pkt.first()? & 0x0f) * 4;
    let icmp = pkt.get(ihl..)?;
    if icmp.len() < 8 || icmp[0] != 8 {
        return None;
    }
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let mut reply = icmp.to_vec();
    reply[0] = 0;
    reply[2] = 0;
    reply[3] = 0;
    let sum = checksum(&reply);
    reply[2..4].copy_from_slice(&sum.to_be_bytes());
    Some((src, reply))
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
