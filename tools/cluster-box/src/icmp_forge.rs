//! Hostile ICMP for the prober's tests: a peer that watches the echo requests arriving on its
//! interface and answers them as a script says (honestly after a delay, or with near misses:
//! another source, sequence, marker or length, copies, late replies, ICMP errors for other
//! flows), and floods of hand-made packets at full speed.
//!
//! Packets are built whole, IP header included, and sent through `IPPROTO_RAW` sockets, so any
//! source address can be forged (IPv4 and IPv6). Requests are seen through a packet socket on
//! the interface, before the firewall and routing of the namespace: a "dead" address that its
//! kernel drops or does not even hold still gets its forgeries. Everything stays inside the
//! namespaces the test created; dropping a [`Forger`] or [`Flood`] stops and joins its threads.

use std::collections::BinaryHeap;
use std::io;
use std::mem::{size_of, zeroed, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::netns::run_in;

/// An echo request seen on the watched interface.
#[derive(Debug, Clone)]
pub struct Request {
    /// Its source (the prober) and destination (the target).
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Identifier and sequence.
    pub id: u16,
    pub seq: u16,
    /// The echo payload, marker included.
    pub payload: Vec<u8>,
    /// The whole IP packet (for errors that quote it).
    pub packet: Vec<u8>,
}

impl Request {
    /// The honest answer: an echo reply from the target with the same payload.
    pub fn reply(&self) -> Vec<u8> {
        echo_reply(self.dst, self.src, self.id, self.seq, &self.payload)
    }
}

/// One packet the script wants sent `after` the request was seen.
#[derive(Debug, Clone)]
pub struct Forged {
    pub after: Duration,
    pub packet: Vec<u8>,
}

impl Forged {
    /// `packet` sent at once.
    pub fn now(packet: Vec<u8>) -> Forged {
        Forged {
            after: Duration::ZERO,
            packet,
        }
    }

    /// `packet` sent after `after`.
    pub fn after(after: Duration, packet: Vec<u8>) -> Forged {
        Forged { after, packet }
    }
}

/// What to send for each request seen.
pub type Script = dyn Fn(&Request) -> Vec<Forged> + Send + Sync;

/// Two `IPPROTO_RAW` sockets (IPv4, IPv6) opened in a namespace: they send whole IP packets
/// with any source address.
pub struct Spoofer {
    v4: Socket,
    v6: Socket,
}

impl Spoofer {
    /// Opens the sockets inside namespace `ns` (they stay there after the opening thread ends).
    pub fn open(ns: &str) -> Spoofer {
        run_in(ns, || {
            let raw = Some(Protocol::from(libc::IPPROTO_RAW));
            let v4 = Socket::new(Domain::IPV4, Type::RAW, raw).expect("raw ipv4 socket");
            let v6 = Socket::new(Domain::IPV6, Type::RAW, raw).expect("raw ipv6 socket");
            for s in [&v4, &v6] {
                s.set_send_buffer_size(4 << 20).expect("sndbuf");
                s.set_nonblocking(true).expect("nonblocking");
            }
            Spoofer { v4, v6 }
        })
    }

    /// Sends one IP packet to the destination in its header. A full buffer drops it (a flood
    /// does not care) and is not an error.
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        let (sock, dst) = match destination(packet) {
            Some(IpAddr::V4(d)) => (&self.v4, IpAddr::V4(d)),
            Some(IpAddr::V6(d)) => (&self.v6, IpAddr::V6(d)),
            None => return Err(io::Error::other("not an ip packet")),
        };
        match sock.send_to(packet, &SocketAddr::new(dst, 0).into()) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOBUFS)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A peer that answers the echo requests arriving on one interface as its script says.
pub struct Forger {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Requests seen so far.
    pub seen: Arc<AtomicU64>,
}

impl Forger {
    /// Watches `iface` in namespace `ns` and sends, from there, what `script` returns for each
    /// echo request arriving on it. `seen_tx` (if given) gets each request once it is handled.
    pub fn start(
        ns: &str,
        iface: &str,
        script: Box<Script>,
        seen_tx: Option<mpsc::Sender<Request>>,
    ) -> Forger {
        let name = iface.to_string();
        let sniffer = run_in(ns, move || packet_socket(&name));
        let spoofer = Spoofer::open(ns);
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
        let watcher = {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || {
                let mut buf = vec![MaybeUninit::<u8>::uninit(); 70_000];
                while !stop.load(Ordering::Relaxed) {
                    let Ok(n) = sniffer.recv(&mut buf) else {
                        continue;
                    };
                    // SAFETY: recv initialised the first n bytes.
                    let pkt: Vec<u8> = buf[..n]
                        .iter()
                        .map(|b| unsafe { b.assume_init() })
                        .collect();
                    let Some(req) = parse_request(&pkt) else {
                        continue;
                    };
                    seen.fetch_add(1, Ordering::Relaxed);
                    let now = Instant::now();
                    for f in script(&req) {
                        let _ = tx.send((now + f.after, f.packet));
                    }
                    if let Some(s) = &seen_tx {
                        let _ = s.send(req);
                    }
                }
            })
        };
        let sender = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                // Due packets in time order (min-heap through Reverse).
                let mut queue: BinaryHeap<std::cmp::Reverse<(Instant, u64, Vec<u8>)>> =
                    BinaryHeap::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let wait = queue
                        .peek()
                        .map(|std::cmp::Reverse((at, _, _))| {
                            at.saturating_duration_since(Instant::now())
                        })
                        .unwrap_or(Duration::from_millis(20))
                        .min(Duration::from_millis(20));
                    match rx.recv_timeout(wait) {
                        Ok((at, p)) => {
                            n += 1;
                            queue.push(std::cmp::Reverse((at, n, p)));
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => {
                            if queue.is_empty() {
                                return;
                            }
                        }
                    }
                    let now = Instant::now();
                    while let Some(std::cmp::Reverse((at, _, _))) = queue.peek() {
                        if *at > now {
                            break;
                        }
                        if let Some(std::cmp::Reverse((_, _, p))) = queue.pop() {
                            let _ = spoofer.send(&p);
                        }
                    }
                }
            })
        };
        Forger {
            stop,
            threads: vec![watcher, sender],
            seen,
        }
    }
}

impl Drop for Forger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// How a [`Flood`] paces itself.
pub struct Pace {
    /// Bytes waiting in the receiver's queue, if the flood should watch it (see
    /// [`queued_and_dropped`]). While at least `high` are queued the flood holds back: the
    /// queue never empties (the reader is never idle) and never overflows (nothing honest is
    /// dropped), as long as the flood is faster than the reader.
    pub queued: Option<Box<dyn Fn() -> u64 + Send + Sync>>,
    pub high: u64,
    /// The flood ends by itself here, so a reader stuck on it gets free and a test fails
    /// instead of hanging.
    pub until: Instant,
}

/// A thread sending the same packets over and over from a namespace, as fast as it can or
/// paced by the receiver's queue.
pub struct Flood {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Packets handed to the kernel so far.
    pub sent: Arc<AtomicU64>,
    /// Looks at the receiver's queue so far, and how many of them found it empty.
    pub looks: Arc<AtomicU64>,
    pub empty: Arc<AtomicU64>,
}

impl Flood {
    /// Starts sending `packets` in turn from namespace `ns`.
    pub fn start(ns: &str, packets: Vec<Vec<u8>>, pace: Pace) -> Flood {
        assert!(!packets.is_empty(), "a flood needs packets");
        let spoofer = Spoofer::open(ns);
        let stop = Arc::new(AtomicBool::new(false));
        let [sent, looks, empty] = [(); 3].map(|_| Arc::new(AtomicU64::new(0)));
        let thread = {
            let (stop, sent, looks, empty) =
                (stop.clone(), sent.clone(), looks.clone(), empty.clone());
            std::thread::spawn(move || {
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) && Instant::now() < pace.until {
                    if let Some(queued) = &pace.queued {
                        let q = queued();
                        looks.fetch_add(1, Ordering::Relaxed);
                        if q == 0 {
                            empty.fetch_add(1, Ordering::Relaxed);
                        }
                        if q >= pace.high {
                            std::thread::sleep(Duration::from_micros(200));
                            continue;
                        }
                    }
                    for _ in 0..64 {
                        let p = &packets[i % packets.len()];
                        i = i.wrapping_add(1);
                        if spoofer.send(p).is_ok() {
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        };
        Flood {
            stop,
            thread: Some(thread),
            sent,
            looks,
            empty,
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A packet socket on `iface` (of the current thread's namespace) that receives every IPv4
/// and IPv6 packet arriving on it, without link headers, and none that leave.
fn packet_socket(iface: &str) -> Socket {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2); the fd is owned by the Socket at once.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, i32::from(proto)) };
    assert!(fd >= 0, "packet socket: {}", io::Error::last_os_error());
    // SAFETY: fd is a fresh socket we own.
    let sock = unsafe { Socket::from_raw_fd(fd) };
    let cname = std::ffi::CString::new(iface).expect("interface name");
    // SAFETY: cname is a valid C string.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    assert!(ifindex > 0, "no interface {iface}");
    // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: sll is a live sockaddr_ll of the given size.
    let rc = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "bind packet socket: {}", io::Error::last_os_error());
    const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
    let one: libc::c_int = 1;
    // SAFETY: one is a live c_int.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_PACKET,
            PACKET_IGNORE_OUTGOING,
            (&one as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    let _ = sock.set_recv_buffer_size(8 << 20);
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("read timeout");
    sock
}

/// The destination address in an IP packet's header.
pub fn destination(packet: &[u8]) -> Option<IpAddr> {
    match packet.first()? >> 4 {
        4 => {
            let d: [u8; 4] = packet.get(16..20)?.try_into().ok()?;
            Some(IpAddr::V4(d.into()))
        }
        6 => {
            let d: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
            Some(IpAddr::V6(d.into()))
        }
        _ => None,
    }
}

/// An echo request in a bare IP packet (no options on IPv6), or `None`.
pub fn parse_request(p: &[u8]) -> Option<Request> {
    let (src, dst, icmp, request): (IpAddr, IpAddr, &[u8], u8) = match p.first()? >> 4 {
        4 => {
            let ihl = usize::from(p.first()? & 0x0f) * 4;
            if *p.get(9)? != 1 {
                return None;
            }
            let s: [u8; 4] = p.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = p.get(16..20)?.try_into().ok()?;
            (s.into(), d.into(), p.get(ihl..)?, 8)
        }
        6 => {
            if *p.get(6)? != 58 {
                return None;
            }
            let s: [u8; 16] = p.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = p.get(24..40)?.try_into().ok()?;
            (s.into(), d.into(), p.get(40..)?, 128)
        }
        _ => return None,
    };
    if icmp.len() < 8 || icmp[0] != request || icmp[1] != 0 {
        return None;
    }
    Some(Request {
        src,
        dst,
        id: u16::from_be_bytes([icmp[4], icmp[5]]),
        seq: u16::from_be_bytes([icmp[6], icmp[7]]),
        payload: icmp[8..].to_vec(),
        packet: p.to_vec(),
    })
}

/// The Internet checksum of the concatenation of `parts`.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u64;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in *part {
            match odd.take() {
                Some(hi) => sum += u64::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u64::from(hi) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet (TTL 64, no options) around `payload` of protocol `proto`.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let c = checksum(&[&h]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// An IPv6 packet (hop limit 64) around `payload` with next header `next`.
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(payload);
    h
}

/// An ICMP (IPv4) or ICMPv6 message of `ty`/`code` with header bytes 4..8 `rest` and `body`,
/// in an IP packet from `src` to `dst`, checksums filled in. The families must agree.
pub fn icmp(src: IpAddr, dst: IpAddr, ty: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(body);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let c = checksum(&[&m]);
            m[2..4].copy_from_slice(&c.to_be_bytes());
            ipv4(s, d, 1, &m)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let len = (m.len() as u32).to_be_bytes();
            let c = checksum(&[&s.octets(), &d.octets(), &len, &[0, 0, 0, 58], &m]);
            m[2..4].copy_from_slice(&c.to_be_bytes());
            ipv6(s, d, 58, &m)
        }
        _ => panic!("icmp from {src} to {dst}: families differ"),
    }
}

fn id_seq(id: u16, seq: u16) -> [u8; 4] {
    let [a, b] = id.to_be_bytes();
    let [c, d] = seq.to_be_bytes();
    [a, b, c, d]
}

/// An echo reply from `src` to `dst`.
pub fn echo_reply(src: IpAddr, dst: IpAddr, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let ty = if src.is_ipv4() { 0 } else { 129 };
    icmp(src, dst, ty, 0, id_seq(id, seq), payload)
}

/// An echo request from `src` to `dst`.
pub fn echo_request(src: IpAddr, dst: IpAddr, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let ty = if src.is_ipv4() { 8 } else { 128 };
    icmp(src, dst, ty, 0, id_seq(id, seq), payload)
}

/// A "host unreachable" (IPv4 type 3 code 1, ICMPv6 type 1 code 3) from `src` to `dst`
/// quoting the IP packet `quoted` (up to 548 bytes of it, as Linux routers do).
pub fn unreachable(src: IpAddr, dst: IpAddr, quoted: &[u8]) -> Vec<u8> {
    let q = &quoted[..quoted.len().min(548)];
    match src {
        IpAddr::V4(_) => icmp(src, dst, 3, 1, [0; 4], q),
        IpAddr::V6(_) => icmp(src, dst, 1, 3, [0; 4], q),
    }
}

/// A UDP datagram in an IP packet (checksum left zero: it is only ever quoted).
pub fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4(s, d, 17, &u),
        (IpAddr::V6(s), IpAddr::V6(d)) => ipv6(s, d, 17, &u),
        _ => panic!("udp from {src} to {dst}: families differ"),
    }
}

/// Bytes queued for reading and packets dropped (receive queue full) on the ICMP sockets whose
/// local "port" is `port` (the identifier of a ping socket, the protocol of a raw one), summed
/// over the `files` (`icmp`, `icmp6`, `raw`, `raw6`) of `net_dir`: `/proc/thread-self/net` for
/// the calling thread's namespace, `/proc/self/task/<tid>/net` for another thread's.
pub fn queued_and_dropped(net_dir: &str, files: &[&str], port: u16) -> (u64, u64) {
    let (mut queued, mut drops) = (0, 0);
    for f in files {
        let Ok(text) = std::fs::read_to_string(format!("{net_dir}/{f}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            // sl local rem st tx_queue:rx_queue tr:when retrnsmt uid timeout inode ref ptr drops
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local_port = cols
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port != Some(port) {
                continue;
            }
            let hex = |s: Option<&str>| s.and_then(|s| u64::from_str_radix(s, 16).ok());
            queued += hex(cols.get(4).and_then(|q| q.split(':').nth(1))).unwrap_or(0);
            drops += cols.last().and_then(|d| d.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    (queued, drops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_packets_parse_back_and_carry_valid_checksums() {
        let s4: IpAddr = "198.18.16.1".parse().unwrap();
        let d4: IpAddr = "198.18.16.2".parse().unwrap();
        let req = echo_request(s4, d4, 7, 9, &[1, 2, 3]);
        assert_eq!(checksum(&[&req[..20]]), 0, "ip header checksum");
        assert_eq!(checksum(&[&req[20..]]), 0, "icmp checksum");
        let r = parse_request(&req).unwrap();
        assert_eq!((r.src, r.dst, r.id, r.seq), (s4, d4, 7, 9));
        assert_eq!(r.payload, vec![1, 2, 3]);
        assert_eq!(destination(&r.reply()), Some(s4));

        let s6: Ipv6Addr = "2001:db8:16::1".parse().unwrap();
        let d6: Ipv6Addr = "2001:db8:16::2".parse().unwrap();
        let req6 = echo_request(s6.into(), d6.into(), 1, 2, &[0; 8]);
        let len = ((req6.len() - 40) as u32).to_be_bytes();
        assert_eq!(
            checksum(&[
                &s6.octets(),
                &d6.octets(),
                &len,
                &[0, 0, 0, 58],
                &req6[40..]
            ]),
            0,
            "icmpv6 checksum with its pseudo-header"
        );
        assert_eq!(parse_request(&req6).unwrap().dst, IpAddr::V6(d6));
        assert!(parse_request(&udp(s4, d4, 1, 2, &[])).is_none());
    }
}
