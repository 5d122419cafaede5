//! Opening ICMP sockets and moving packets through them: non-blocking send, and `recvmsg` with
//! the kernel's receive timestamp (SO_TIMESTAMPNS, CLOCK_REALTIME) and, on ping sockets, the
//! error queue (IP_RECVERR), which is where their ICMP errors arrive. Where SO_TIMESTAMPNS is
//! refused (qemu-user, which runs the arm64 binary in the tests, has no SO_TIMESTAMPNS) the
//! kernel's microsecond stamps (SO_TIMESTAMP) serve, and without either the time of reading.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::packet::{self, Family, Message};
use super::short_error;
use crate::reason::Reason;

// Not exported by libc for every Linux target; values from asm-generic/socket.h (x86, arm).
const SO_RCVBUFFORCE: libc::c_int = 33;
const SO_TIMESTAMPNS: libc::c_int = 35;
const SO_TIMESTAMP: libc::c_int = 29;
const SOL_RAW: libc::c_int = 255;
const ICMP_FILTER: libc::c_int = 1;
const ICMP6_FILTER: libc::c_int = 1;

/// Receive buffer asked for: thousands of replies arriving together fit. (Measured: a ping
/// socket with the default 212,992-byte buffer that sent 5,000 echoes before reading kept only 512
/// replies; the prober also drains while sending.)
pub const RCVBUF: usize = 4 << 20;

/// A concrete socket kind (after `Auto` has been resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SOCK_DGRAM ping socket.
    Datagram,
    /// SOCK_RAW.
    Raw,
}

/// One ICMP socket of one family.
#[derive(Debug)]
pub struct IcmpSocket {
    sock: Socket,
    /// Family of the socket.
    pub family: Family,
    /// Datagram or raw.
    pub kind: Kind,
    /// Identifier carried by our requests: the kernel-chosen local port on a ping socket,
    /// our own choice on a raw socket.
    pub id: u16,
    /// Receive buffer the kernel granted, in bytes.
    pub rcvbuf: usize,
}

/// One message read from a socket.
#[derive(Debug)]
pub struct Received {
    /// Sender (for errors from the error queue: the router that reported it).
    pub from: IpAddr,
    /// Kernel receive time since the epoch (CLOCK_REALTIME).
    pub at: Duration,
    /// What it is.
    pub msg: Message,
}

/// What a failed send means for its request, decided from the errno alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Interrupted by a signal: send again at once.
    Interrupted,
    /// The socket's send buffer (EAGAIN) or the interface's queue (ENOBUFS) is full: back off
    /// briefly and retry, within the round's budget.
    BufferFull,
    /// The request cannot go out; its target fails with `reason` and `message`. When
    /// `maybe_pending` is set the errno may instead be an ICMP error that came for an earlier
    /// request: a ping socket reports those on its next send, whatever its destination, and
    /// that send does not go out (the report is cleared by it), so the prober sends again a
    /// few times before believing it.
    Failed {
        reason: Reason,
        /// Why, for the target's result: "send failed: ...".
        message: String,
        /// The errno is one an ICMP error turns into (so it may be a stale report).
        maybe_pending: bool,
    },
}

/// Classifies a send error: no route or unreachable fail the target with that reason; a full
/// buffer backs off; EPERM (an iptables DROP or REJECT in OUTPUT) and EACCES (a `prohibit`
/// route, or an administratively prohibited ICMPv6 error) fail it as "not permitted".
pub fn classify_send_error(e: &io::Error) -> SendError {
    let errno = e.raw_os_error().unwrap_or(0);
    let failed = |why: String, maybe_pending| SendError::Failed {
        reason: errno_reason(errno),
        message: format!("send failed: {why}"),
        maybe_pending,
    };
    match errno {
        libc::EINTR => SendError::Interrupted,
        libc::EAGAIN | libc::ENOBUFS => SendError::BufferFull,
        libc::EPERM => failed(NOT_PERMITTED.to_string(), false),
        libc::EACCES => failed(NOT_PERMITTED.to_string(), true),
        // What the kernel turns ICMP and ICMPv6 errors into (icmp_err_convert,
        // icmpv6_err_convert), besides EACCES above.
        libc::ENETUNREACH
        | libc::EHOSTUNREACH
        | libc::ENOPROTOOPT
        | libc::ECONNREFUSED
        | libc::EMSGSIZE
        | libc::EOPNOTSUPP
        | libc::EHOSTDOWN
        | libc::ENONET
        | libc::EPROTO => failed(super::short_error(e), true),
        _ => failed(super::short_error(e), false),
    }
}

/// The reason of a failure the kernel reported as `errno` (on a send, or on a ping socket's
/// error queue).
pub fn errno_reason(errno: i32) -> Reason {
    match errno {
        libc::EPERM | libc::EACCES => Reason::NotPermitted,
        libc::ENETUNREACH
        | libc::EHOSTUNREACH
        | libc::EHOSTDOWN
        | libc::ENONET
        | libc::ECONNREFUSED => Reason::Unreachable,
        libc::EMSGSIZE => Reason::Mtu,
        libc::EAGAIN | libc::ENOBUFS => Reason::NoBuffer,
        _ => Reason::SendError,
    }
}

/// The message of a send refused locally (EPERM, EACCES).
pub const NOT_PERMITTED: &str = "not permitted (a firewall rule or a prohibit route)";

/// Now on CLOCK_REALTIME, the clock of SO_TIMESTAMPNS.
pub fn now_realtime() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl IcmpSocket {
    /// Opens a socket of `family` and `kind`; `raw_id` is the identifier to use on a raw socket.
    /// `pmtu_probe`: see [`super::ProbeOptions::pmtu_probe`].
    pub fn open(
        family: Family,
        kind: Kind,
        raw_id: u16,
        pmtu_probe: bool,
    ) -> io::Result<IcmpSocket> {
        let (domain, proto) = match family {
            Family::V4 => (Domain::IPV4, Protocol::ICMPV4),
            Family::V6 => (Domain::IPV6, Protocol::ICMPV6),
        };
        let ty = match kind {
            Kind::Datagram => Type::DGRAM,
            Kind::Raw => Type::RAW,
        };
        let sock = Socket::new(domain, ty, Some(proto))?;
        sock.set_nonblocking(true)?;
        let fd = sock.as_raw_fd();
        enable_timestamps(fd);
        if pmtu_probe {
            match family {
                Family::V4 => setsockopt_int(
                    fd,
                    libc::SOL_IP,
                    libc::IP_MTU_DISCOVER,
                    libc::IP_PMTUDISC_PROBE,
                )?,
                Family::V6 => setsockopt_int(
                    fd,
                    libc::SOL_IPV6,
                    libc::IPV6_MTU_DISCOVER,
                    libc::IPV6_PMTUDISC_PROBE,
                )?,
            }
        }
        if setsockopt_int(fd, libc::SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF as libc::c_int).is_err() {
            // Without CAP_NET_ADMIN the kernel caps this at net.core.rmem_max.
            sock.set_recv_buffer_size(RCVBUF)?;
        }
        let rcvbuf = sock.recv_buffer_size().unwrap_or(0);
        let id = match kind {
            Kind::Datagram => {
                // Ping sockets report ICMP errors only through the error queue.
                match family {
                    Family::V4 => setsockopt_int(fd, libc::SOL_IP, libc::IP_RECVERR, 1)?,
                    Family::V6 => setsockopt_int(fd, libc::SOL_IPV6, libc::IPV6_RECVERR, 1)?,
                }
                // Binding to port 0 makes the kernel pick the identifier now.
                let any: SocketAddr = match family {
                    Family::V4 => (Ipv4Addr::UNSPECIFIED, 0).into(),
                    Family::V6 => (Ipv6Addr::UNSPECIFIED, 0).into(),
                };
                sock.bind(&any.into())?;
                sock.local_addr()?
                    .as_socket()
                    .map(|a| a.port())
                    .ok_or_else(|| io::Error::other("ping socket has no local port"))?
            }
            Kind::Raw => {
                // Let only echo replies and errors through: a raw socket otherwise wakes for
                // every ICMP packet of the host (requests, ours and others').
                install_raw_filter(fd, family)?;
                raw_id
            }
        };
        Ok(IcmpSocket {
            sock,
            family,
            kind,
            id,
            rcvbuf,
        })
    }

    /// The file descriptor, for poll.
    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Sends one encoded request to `dst` (non-blocking).
    pub fn send(&self, pkt: &[u8], dst: IpAddr) -> io::Result<()> {
        let addr: SockAddr = SocketAddr::new(dst, 0).into();
        self.sock.send_to(pkt, &addr).map(|_| ())
    }

    /// Reads one message from the normal queue; `Ok(None)` when it is empty.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        let Some(raw) = recvmsg(self.fd(), buf, 0)? else {
            return Ok(None);
        };
        let data = buf.get(..raw.len).unwrap_or(&[]);
        let ip_header = self.kind == Kind::Raw && self.family == Family::V4;
        let msg = packet::decode(self.family, data, ip_header);
        Ok(Some(Received {
            from: raw.name.unwrap_or(unspecified(self.family)),
            at: raw.stamp.unwrap_or_else(now_realtime),
            msg,
        }))
    }

    /// Reads one ICMP error from the error queue of a ping socket; `Ok(None)` when empty.
    pub fn recv_error(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        let Some(raw) = recvmsg(self.fd(), buf, libc::MSG_ERRQUEUE)? else {
            return Ok(None);
        };
        let data = buf.get(..raw.len).unwrap_or(&[]);
        let msg = match (raw.ee, raw.name) {
            (Some(ee), Some(dst)) => {
                let origin = if ee.icmp {
                    packet::ErrOrigin::Icmp {
                        ty: ee.ty,
                        code: ee.code,
                        info: ee.info,
                    }
                } else {
                    packet::ErrOrigin::Local { errno: ee.errno }
                };
                packet::errqueue_message(self.family, dst, origin, data)
            }
            _ => Message::Other,
        };
        let from = raw
            .ee
            .and_then(|e| e.offender)
            .or(raw.name)
            .unwrap_or(unspecified(self.family));
        Ok(Some(Received {
            from,
            at: raw.stamp.unwrap_or_else(now_realtime),
            msg,
        }))
    }
}

fn unspecified(family: Family) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    setsockopt_bytes(fd, level, name, &v.to_ne_bytes())
}

fn setsockopt_bytes(fd: RawFd, level: libc::c_int, name: libc::c_int, v: &[u8]) -> io::Result<()> {
    // SAFETY: `v` is a valid buffer of the given length for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            v.as_ptr().cast(),
            v.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Bit masks of the ICMP types a raw socket should drop (a set bit drops the type).
pub fn raw_filter(family: Family) -> Vec<u8> {
    match family {
        Family::V4 => {
            let pass: u32 = (1 << 0) | (1 << 3) | (1 << 11) | (1 << 12);
            (!pass).to_ne_bytes().to_vec()
        }
        Family::V6 => {
            let mut words = [u32::MAX; 8];
            for ty in [1u8, 2, 3, 4, 129] {
                if let Some(w) = words.get_mut(usize::from(ty >> 5)) {
                    *w &= !(1u32 << (ty & 31));
                }
            }
            words.iter().flat_map(|w| w.to_ne_bytes()).collect()
        }
    }
}

fn install_raw_filter(fd: RawFd, family: Family) -> io::Result<()> {
    let (level, name) = match family {
        Family::V4 => (SOL_RAW, ICMP_FILTER),
        Family::V6 => (libc::IPPROTO_ICMPV6, ICMP6_FILTER),
    };
    setsockopt_bytes(fd, level, name, &raw_filter(family))
}

#[derive(Debug, Clone, Copy)]
struct ExtErr {
    errno: i32,
    icmp: bool,
    ty: u8,
    code: u8,
    info: u32,
    offender: Option<IpAddr>,
}

struct RawMsg {
    len: usize,
    name: Option<IpAddr>,
    stamp: Option<Duration>,
    ee: Option<ExtErr>,
}

/// `recvmsg` with MSG_DONTWAIT; `Ok(None)` on EAGAIN.
fn recvmsg(fd: RawFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<Option<RawMsg>> {
    // SAFETY: every pointer handed to the kernel points into a live local buffer with its true
    // length; control messages are read only within msg_controllen, through the CMSG macros,
    // with unaligned reads.
    unsafe {
        let mut name: libc::sockaddr_storage = zeroed();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 64];
        let mut msg: libc::msghdr = zeroed();
        msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 64]>() as _;
        let n = libc::recvmsg(fd, &mut msg, flags | libc::MSG_DONTWAIT);
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(None);
            }
            return Err(e);
        }
        let mut out = RawMsg {
            len: (n as usize).min(buf.len()),
            name: sockaddr_ip(&name as *const libc::sockaddr_storage as *const u8),
            stamp: None,
            ee: None,
        };
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let c = std::ptr::read_unaligned(cmsg);
            let data = libc::CMSG_DATA(cmsg);
            let (lvl, ty) = (c.cmsg_level, c.cmsg_type);
            if lvl == libc::SOL_SOCKET && ty == SO_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(data as *const libc::timespec);
                if ts.tv_sec > 0 {
                    out.stamp = Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
                }
            } else if lvl == libc::SOL_SOCKET && ty == SO_TIMESTAMP {
                let tv = std::ptr::read_unaligned(data as *const libc::timeval);
                let micros = u64::try_from(tv.tv_usec).ok().filter(|&u| u < 1_000_000);
                if let (Ok(secs @ 1..), Some(micros)) = (u64::try_from(tv.tv_sec), micros) {
                    out.stamp =
                        Duration::from_secs(secs).checked_add(Duration::from_micros(micros));
                }
            } else if (lvl == libc::SOL_IP && ty == libc::IP_RECVERR)
                || (lvl == libc::SOL_IPV6 && ty == libc::IPV6_RECVERR)
            {
                let ee = std::ptr::read_unaligned(data as *const libc::sock_extended_err);
                let offender = data.add(size_of::<libc::sock_extended_err>());
                out.ee = Some(ExtErr {
                    errno: ee.ee_errno as i32,
                    icmp: ee.ee_origin == libc::SO_EE_ORIGIN_ICMP
                        || ee.ee_origin == libc::SO_EE_ORIGIN_ICMP6,
                    ty: ee.ee_type,
                    code: ee.ee_code,
                    info: ee.ee_info,
                    offender: sockaddr_ip(offender),
                });
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        Ok(Some(out))
    }
}

/// Asks for the kernel's receive timestamps: nanoseconds, else microseconds, else none (each
/// message is then timed when read, which adds the agent's own delay to its RTT); says which.
fn enable_timestamps(fd: RawFd) {
    let Err(ns) = setsockopt_int(fd, libc::SOL_SOCKET, SO_TIMESTAMPNS, 1) else {
        return;
    };
    match setsockopt_int(fd, libc::SOL_SOCKET, SO_TIMESTAMP, 1) {
        Ok(()) => log::warn!(
            "icmp: no nanosecond receive timestamps (SO_TIMESTAMPNS: {}); using microsecond ones (SO_TIMESTAMP)",
            short_error(&ns)
        ),
        Err(us) => log::warn!(
            "icmp: no kernel receive timestamps (SO_TIMESTAMPNS: {}; SO_TIMESTAMP: {}); replies are timed when read, RTTs include the agent's own delay",
            short_error(&ns),
            short_error(&us)
        ),
    }
}

/// Reads the IP address of a sockaddr_in/sockaddr_in6 at `p` (unaligned).
///
/// # Safety
/// `p` must point to at least `sizeof(sockaddr_in6)` readable bytes.
unsafe fn sockaddr_ip(p: *const u8) -> Option<IpAddr> {
    let family = std::ptr::read_unaligned(p as *const libc::sa_family_t);
    match libc::c_int::from(family) {
        libc::AF_INET => {
            let sin = std::ptr::read_unaligned(p as *const libc::sockaddr_in);
            Some(IpAddr::V4(Ipv4Addr::from(
                sin.sin_addr.s_addr.to_ne_bytes(),
            )))
        }
        libc::AF_INET6 => {
            let sin6 = std::ptr::read_unaligned(p as *const libc::sockaddr_in6);
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(errno: i32) -> SendError {
        classify_send_error(&io::Error::from_raw_os_error(errno))
    }

    fn failed(reason: Reason, message: &str, maybe_pending: bool) -> SendError {
        SendError::Failed {
            reason,
            message: format!("send failed: {message}"),
            maybe_pending,
        }
    }

    #[test]
    fn send_errors_are_classified_by_errno() {
        assert_eq!(classify(libc::EINTR), SendError::Interrupted);
        assert_eq!(classify(libc::EAGAIN), SendError::BufferFull);
        assert_eq!(classify(libc::ENOBUFS), SendError::BufferFull);
        assert_eq!(
            classify(libc::ENETUNREACH),
            failed(Reason::Unreachable, "network is unreachable", true)
        );
        assert_eq!(
            classify(libc::EHOSTUNREACH),
            failed(Reason::Unreachable, "no route to host", true)
        );
        assert_eq!(
            classify(libc::ECONNREFUSED),
            failed(Reason::Unreachable, "connection refused", true)
        );
        assert_eq!(
            classify(libc::EMSGSIZE),
            failed(Reason::Mtu, "message too long", true)
        );
        // An iptables DROP or REJECT in OUTPUT: never an ICMP report, fails at once.
        assert_eq!(
            classify(libc::EPERM),
            failed(Reason::NotPermitted, NOT_PERMITTED, false)
        );
        // A prohibit route, or an ICMPv6 "administratively prohibited" reported late.
        assert_eq!(
            classify(libc::EACCES),
            failed(Reason::NotPermitted, NOT_PERMITTED, true)
        );
        assert_eq!(
            classify(libc::EINVAL),
            failed(Reason::SendError, "invalid argument", false)
        );
        // Not an OS error at all.
        assert!(matches!(
            classify_send_error(&io::Error::other("x")),
            SendError::Failed {
                maybe_pending: false,
                ..
            }
        ));
    }

    #[test]
    fn raw_filters_pass_only_replies_and_errors() {
        let v4 = u32::from_ne_bytes(raw_filter(Family::V4).try_into().unwrap());
        for ty in [0, 3, 11, 12] {
            assert_eq!(v4 & (1 << ty), 0, "type {ty} must pass");
        }
        assert_ne!(v4 & (1 << 8), 0, "echo requests must be dropped");
        let v6 = raw_filter(Family::V6);
        let word = |i: usize| u32::from_ne_bytes(v6[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!(word(4) & (1 << 1), 0, "129 echo reply passes");
        assert_ne!(word(4), 0, "128 echo request dropped");
        assert_ne!(word(4) & 1, 0, "128 echo request dropped");
        assert_eq!(word(0) & 0b11110, 0, "errors 1-4 pass");
    }
}
