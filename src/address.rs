//! Addresses no router should receive (docs/design.md section 2): the one rule that decides, for every
//! prefix an object would put into the intent, whether it may be announced at all. `compile`
//! applies it to every finding, whichever source the object came from, so the manifest and the
//! live source cannot disagree, and a daemon never sees a prefix it would refuse (FRR refuses
//! `network fe80::5/128`, and one refused line used to block every later change).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Ranges that are never announced, with what they are. A prefix inside one of them, or covering
/// one (`0.0.0.0/1` covers loopback), is refused: announcing it would hijack or black-hole
/// traffic that is not the cluster's.
const V4: &[(Ipv4Addr, u8, &str)] = &[
    (
        Ipv4Addr::new(0, 0, 0, 0),
        8,
        "unspecified (0.0.0.0/8, \"this network\")",
    ),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback (127.0.0.0/8)"),
    (
        Ipv4Addr::new(169, 254, 0, 0),
        16,
        "link-local (169.254.0.0/16)",
    ),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast (224.0.0.0/4)"),
];

const V6: &[(Ipv6Addr, u8, &str)] = &[
    (Ipv6Addr::UNSPECIFIED, 128, "unspecified (::)"),
    (Ipv6Addr::LOCALHOST, 128, "loopback (::1)"),
    (
        Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0),
        96,
        "IPv4-mapped IPv6 (::ffff:0:0/96)",
    ),
    (
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
        10,
        "link-local (fe80::/10)",
    ),
    (
        Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
        8,
        "multicast (ff00::/8)",
    ),
];

/// Why `prefix` must never be announced, or `None` when it may be. Class E (240.0.0.0/4) is
/// allowed (some clusters use it for pods); of it only the limited broadcast address is refused.
pub fn unusable(prefix: IpNet) -> Option<&'static str> {
    if prefix.prefix_len() == 0 {
        return Some("a default route (/0)");
    }
    match prefix {
        IpNet::V4(net) => {
            if net.contains(&Ipv4Addr::BROADCAST) && net.prefix_len() == 32 {
                return Some("the broadcast address (255.255.255.255)");
            }
            V4.iter().find_map(|&(addr, len, what)| {
                // Both are valid networks: the lengths are in range by construction.
                let range = Ipv4Net::new(addr, len).ok()?;
                overlaps_v4(net, range).then_some(what)
            })
        }
        IpNet::V6(net) => V6.iter().find_map(|&(addr, len, what)| {
            let range = Ipv6Net::new(addr, len).ok()?;
            overlaps_v6(net, range).then_some(what)
        }),
    }
}

fn overlaps_v4(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b) || b.contains(&a)
}

fn overlaps_v6(a: Ipv6Net, b: Ipv6Net) -> bool {
    a.contains(&b) || b.contains(&a)
}

/// [`unusable`] for one address (its host prefix).
pub fn unusable_ip(ip: IpAddr) -> Option<&'static str> {
    unusable(IpNet::from(ip))
}

/// Parses one IP address strictly: the notation Go's `netip.ParseAddr` accepts and the daemons
/// write back (no leading zeros, no zone), surrounding whitespace allowed as `kubectl annotate`
/// users add it.
pub fn parse_ip(value: &str) -> Option<IpAddr> {
    let value = value.trim();
    if value.contains('%') {
        return None;
    }
    value.parse().ok()
}

/// Parses a CIDR strictly: a strict address, a prefix length in decimal without sign or leading
/// zeros (`/08` and `010.16.0.0/16` are refused, as Go's `netip.ParsePrefix` refuses them).
pub fn parse_cidr(value: &str) -> Option<IpNet> {
    let value = value.trim();
    let (addr, len) = value.split_once('/')?;
    let addr = parse_ip(addr).filter(|_| addr == addr.trim())?;
    if len.is_empty()
        || len.len() > 3
        || !len.bytes().all(|b| b.is_ascii_digit())
        || (len.len() > 1 && len.starts_with('0'))
    {
        return None;
    }
    let len: u8 = len.parse().ok()?;
    IpNet::new(addr, len).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_no_router_should_receive() {
        for bad in [
            "0.0.0.0/0",
            "::/0",
            "0.0.0.0/32",
            "0.1.2.3/32",
            "127.0.0.0/8",
            "127.0.0.1/32",
            "169.254.1.1/32",
            "224.0.0.0/4",
            "239.1.1.1/32",
            "255.255.255.255/32",
            "::/128",
            "::1/128",
            "fe80::5/128",
            "fe80::/64",
            "febf::1/128",
            "ff02::1/128",
            "::ffff:10.16.0.5/128",
            "::ffff:10.0.0.0/104",
            "0.0.0.0/1",
            "::/64",
        ] {
            assert!(unusable(net(bad)).is_some(), "{bad} accepted");
        }
        for good in [
            "10.16.0.0/16",
            "10.16.0.5/32",
            "192.0.2.0/24",
            "240.0.0.0/4",
            "255.255.255.0/24",
            "100.64.0.0/10",
            "fd00:10:16::/64",
            "fd00:10:16::5/128",
            "2001:db8::/32",
            "64:ff9b::/96",
            "fec0::1/128",
            "1.0.0.0/8",
        ] {
            assert_eq!(unusable(net(good)), None, "{good} refused");
        }
    }

    #[test]
    fn strict_parsing() {
        assert_eq!(parse_cidr("10.16.0.0/16"), Some(net("10.16.0.0/16")));
        assert_eq!(parse_cidr(" fd00::/64 "), Some(net("fd00::/64")));
        // Host bits are kept: the caller decides what to say about them.
        assert_eq!(parse_cidr("10.16.0.5/16"), Some(net("10.16.0.5/16")));
        for bad in [
            "010.16.0.0/16",
            "10.16.0.0/08",
            "10.16.0.0/+8",
            "10.16.0.0/33",
            "10.16.0.0/",
            "10.16.0.0",
            "10.16.0.0 /16",
            "fe80::1%eth0/64",
            "banana",
        ] {
            assert_eq!(parse_cidr(bad), None, "{bad} accepted");
        }
        assert_eq!(parse_ip(" 10.16.0.5 "), Some("10.16.0.5".parse().unwrap()));
        for bad in ["010.16.0.1", "fe80::5%eth0", "10.16.0.300", ""] {
            assert_eq!(parse_ip(bad), None, "{bad} accepted");
        }
    }
}
