//! The pod's MTU, for the `pod-mtu` check: the MTU of the interface its default route goes
//! out of (`/proc/net/route`, else `/proc/net/ipv6_route`, then `/sys/class/net/IF/mtu`).
//! The parsers are pure; [`pod_mtu`] reads the files.

/// IPv4 and ICMP headers: an echo of `mtu - V4_HEADERS` payload bytes fills an IPv4 MTU.
pub const V4_HEADERS: u32 = 20 + 8;
/// IPv6 and ICMPv6 headers.
pub const V6_HEADERS: u32 = 40 + 8;

/// The echo payload that makes an IP packet of `mtu` bytes for the family.
pub fn payload(mtu: u32, ipv6: bool) -> usize {
    let headers = if ipv6 { V6_HEADERS } else { V4_HEADERS };
    usize::try_from(mtu.saturating_sub(headers)).unwrap_or(0)
}

/// The interface of the IPv4 default route (destination and mask 0, up) in the text of
/// `/proc/net/route`.
pub fn ipv4_default_interface(text: &str) -> Option<&str> {
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (iface, dest, flags, mask) = (f.first()?, f.get(1)?, f.get(3)?, f.get(7)?);
        let up = u32::from_str_radix(flags, 16).ok()? & 1 == 1;
        (up && *dest == "00000000" && *mask == "00000000").then_some(*iface)
    })
}

/// The interface of the IPv6 default route (`::/0`, not the loopback's unreachable entry)
/// in the text of `/proc/net/ipv6_route`.
pub fn ipv6_default_interface(text: &str) -> Option<&str> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (dest, len, iface) = (f.first()?, f.get(1)?, f.get(9)?);
        let zero = dest.len() == 32 && dest.bytes().all(|b| b == b'0');
        (zero && *len == "00" && *iface != "lo").then_some(*iface)
    })
}

/// The MTU in the text of `/sys/class/net/IF/mtu`.
pub fn parse_mtu(text: &str) -> Option<u32> {
    text.trim()
        .parse()
        .ok()
        .filter(|m| (68..=65_535).contains(m))
}

/// The pod's default-route interface and its MTU, or why they cannot be known.
pub fn pod_mtu() -> Result<(String, u32), String> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let v4 = read("/proc/net/route");
    let v6 = read("/proc/net/ipv6_route");
    let iface = ipv4_default_interface(&v4)
        .or_else(|| ipv6_default_interface(&v6))
        .ok_or("no default route in /proc/net/route or /proc/net/ipv6_route")?
        .to_string();
    if iface.contains('/') || iface.starts_with('.') {
        return Err(format!("unexpected interface name {iface:?}"));
    }
    let path = format!("/sys/class/net/{iface}/mtu");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mtu = parse_mtu(&text).ok_or_else(|| format!("no MTU in {path}: {text:?}"))?;
    Ok((iface, mtu))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_default_route_interface_of_each_family() {
        let v4 =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t0101FEA9\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n\
            eth0\t00000000\t0101FEA9\t0003\t0\t0\t0\t00000000\t0\t0\t0\n";
        assert_eq!(ipv4_default_interface(v4), Some("eth0"));
        assert_eq!(ipv4_default_interface("Iface\n"), None);
        // A default route that is down does not count.
        let down = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n\
            eth1\t00000000\t0101FEA9\t0002\t0\t0\t0\t00000000\n";
        assert_eq!(ipv4_default_interface(down), None);
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n\
            20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
            00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     net1\n";
        assert_eq!(ipv6_default_interface(v6), Some("net1"));
        assert_eq!(ipv6_default_interface("garbage\n\n1 2"), None);
    }

    #[test]
    fn mtus_and_payloads() {
        assert_eq!(parse_mtu("1450\n"), Some(1450));
        assert_eq!(parse_mtu("12"), None);
        assert_eq!(parse_mtu("x"), None);
        assert_eq!(payload(1500, false), 1472);
        assert_eq!(payload(1500, true), 1452);
        assert_eq!(payload(20, true), 0);
    }
}
