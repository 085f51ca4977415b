//! The value syntax of the Go flag packages kube-ovn-speaker parses its command line with
//! (spf13/pflag, Go's `flag` and klog's own flag values), so that bgpgen accepts and refuses
//! exactly the values kube-ovn-speaker does: `--cluster-as=0x10` is 16 there, `+65000` is an
//! error, `--neighbor-address=a,,b` is an error, `-v=x` is an error.

use std::net::{IpAddr, Ipv4Addr};

/// Go's `strconv.ParseUint(s, 0, bits)` (pflag's `Uint8`/`Uint32`, Go's `Uint64`): decimal,
/// `0x` hex, `0o` or a bare leading `0` octal, `0b` binary, `_` between digits; no sign, no
/// whitespace.
pub fn parse_uint(s: &str, bits: u32) -> Result<u64, String> {
    let (base, digits, _) = split_base(s);
    if digits.is_empty() {
        return Err(format!("{s:?} is not an unsigned integer"));
    }
    if !underscores_ok(s) {
        return Err(format!("{s:?} is not an unsigned integer (misplaced _)"));
    }
    let max = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let mut value: u64 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = c
            .to_digit(base)
            .ok_or_else(|| format!("{s:?} is not an unsigned integer"))?;
        value = value
            .checked_mul(u64::from(base))
            .and_then(|v| v.checked_add(u64::from(d)))
            .filter(|&v| v <= max)
            .ok_or_else(|| format!("{s:?} is out of range (at most {max})"))?;
    }
    Ok(value)
}

/// Go's `strconv.ParseInt(s, 0, bits)` (pflag's `Int32`): [`parse_uint`] with an optional sign.
pub fn parse_int(s: &str, bits: u32) -> Result<i64, String> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let magnitude = parse_uint(rest, 64).map_err(|_| format!("{s:?} is not an integer"))?;
    let limit = 1u64 << (bits - 1);
    if negative && magnitude <= limit {
        Ok(0i64.wrapping_sub_unsigned(magnitude))
    } else if !negative && magnitude < limit {
        Ok(magnitude as i64)
    } else {
        Err(format!("{s:?} is out of range for a {bits}-bit integer"))
    }
}

/// Go's `strconv.ParseInt(s, 10, 32)` (klog's `-v`, `-vmodule` levels, thresholds).
pub fn parse_decimal_i32(s: &str) -> Result<i32, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a decimal integer"));
    }
    s.parse::<i32>()
        .map_err(|_| format!("{s:?} is out of range for a 32-bit integer"))
}

/// Whether the value needs a reader to know Go's integer syntax: `065000` is octal (27136) and
/// `0x...`, `0o...`, `0b...`, `1_000` are not plain decimal.
pub fn is_non_decimal(s: &str) -> bool {
    let (base, _, prefixed) = split_base(s);
    (prefixed && s != "0") || base != 10 || s.contains('_')
}

/// `(base, digits, has a base prefix)`.
fn split_base(s: &str) -> (u32, &str, bool) {
    let b = s.as_bytes();
    if b.len() >= 2 && b[0] == b'0' {
        match b[1] {
            b'x' | b'X' => return (16, &s[2..], true),
            b'o' | b'O' => return (8, &s[2..], true),
            b'b' | b'B' => return (2, &s[2..], true),
            _ => return (8, &s[1..], true),
        }
    }
    (10, s, false)
}

/// Go's `underscoreOK`: `_` only between digits, or between a base prefix and a digit.
fn underscores_ok(s: &str) -> bool {
    if !s.contains('_') {
        return true;
    }
    let b = s.as_bytes();
    let (mut i, mut saw) = (0, b'^');
    if b.len() >= 2 && b[0] == b'0' {
        let lower = b[1].to_ascii_lowercase();
        if matches!(lower, b'x' | b'o' | b'b') {
            i = 2;
            saw = b'0';
        }
    }
    let hex = b.len() >= 2 && b[0] == b'0' && b[1].eq_ignore_ascii_case(&b'x');
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// Go's `strconv.ParseBool`, which pflag and `flag` use for boolean flags.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `net.ParseIP` followed by the `To4() != nil` test kube-ovn applies: an IPv4-mapped IPv6
/// address (`::ffff:192.0.2.1`) is that IPv4 address. Leading zeros (`010.0.0.1`) and zones are
/// refused, as by Go.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let ip: IpAddr = s.parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    })
}

/// pflag's `IPSlice`: each occurrence is a CSV list; quotes are removed, each element is trimmed
/// and must be an IP address (so `a,,b` and a trailing comma are errors); an empty occurrence is
/// an empty list; occurrences accumulate.
pub fn parse_ip_slice(occurrences: &[String]) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for occurrence in occurrences {
        let value: String = occurrence
            .chars()
            .filter(|c| !matches!(c, '"' | '\'' | '`'))
            .collect();
        if value.is_empty() {
            continue;
        }
        for element in value.split(',') {
            let element = element.trim();
            match parse_ip(element) {
                Some(ip) => out.push(ip),
                None if element.is_empty() => {
                    return Err(format!(
                        "empty element in {occurrence:?} (a list of IP addresses separated by single commas)"
                    ));
                }
                None => return Err(format!("{element:?} is not an IP address")),
            }
        }
    }
    Ok(out)
}

/// pflag's `IP`: one address, surrounding whitespace ignored.
pub fn parse_single_ip(s: &str) -> Option<IpAddr> {
    parse_ip(s.trim())
}

/// klog's severity flags (`-stderrthreshold`, `-alsologtostderrthreshold`): a severity name in
/// any case, or a decimal number.
pub fn parse_severity(s: &str) -> Result<(), String> {
    if ["INFO", "WARNING", "ERROR", "FATAL"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(s))
    {
        return Ok(());
    }
    parse_decimal_i32(s)
        .map(drop)
        .map_err(|_| format!("{s:?} is not a severity (INFO, WARNING, ERROR, FATAL or a number)"))
}

/// klog's `-vmodule`: comma-separated `pattern=N`, N >= 0; empty items are skipped.
pub fn parse_vmodule(s: &str) -> Result<(), String> {
    for item in s.split(',').filter(|i| !i.is_empty()) {
        let parts: Vec<&str> = item.split('=').collect();
        let [pattern, level] = parts.as_slice() else {
            return Err(format!(
                "{item:?}: expect comma-separated list of filename=N"
            ));
        };
        if pattern.is_empty() || level.is_empty() {
            return Err(format!(
                "{item:?}: expect comma-separated list of filename=N"
            ));
        }
        match parse_decimal_i32(level) {
            Ok(n) if n >= 0 => {}
            Ok(_) => return Err(format!("{item:?}: negative value for vmodule level")),
            Err(_) => {
                return Err(format!(
                    "{item:?}: expect comma-separated list of filename=N"
                ));
            }
        }
    }
    Ok(())
}

/// klog's `-log_backtrace_at`: empty, or `file.go:N` with N > 0.
pub fn parse_backtrace_at(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    let syntax = || format!("{s:?}: syntax error: expect file.go:234");
    let parts: Vec<&str> = s.split(':').collect();
    let [file, line] = parts.as_slice() else {
        return Err(syntax());
    };
    if !file.contains('.') {
        return Err(syntax());
    }
    let digits = line.strip_prefix(['+', '-']).unwrap_or(line);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax());
    }
    match line.parse::<i64>() {
        Ok(n) if n > 0 => Ok(()),
        Ok(_) => Err(format!("{s:?}: negative or zero value for level")),
        Err(_) => Err(syntax()),
    }
}

/// `strconv.ParseUint(s, 8, 32)`, as kube-ovn-speaker reads `--log-perm`.
pub fn parse_octal_u32(s: &str) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(format!("{s:?} is not an octal number (e.g. 640)"));
    }
    u32::from_str_radix(s, 8).map_err(|_| format!("{s:?} is out of range"))
}

/// An address no BGP session or next hop can use: unspecified, multicast, IPv4 broadcast, or an
/// IPv6 link-local address (which needs an interface none of the flags names).
pub fn unusable_peer_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => Some("the unspecified address"),
        IpAddr::V4(v4) if v4.is_multicast() => Some("a multicast address"),
        IpAddr::V4(v4) if v4 == Ipv4Addr::BROADCAST => Some("the broadcast address"),
        IpAddr::V6(v6) if v6.is_unspecified() => Some("the unspecified address"),
        IpAddr::V6(v6) if v6.is_multicast() => Some("a multicast address"),
        IpAddr::V6(v6) if v6.is_unicast_link_local() => {
            Some("an IPv6 link-local address (it needs an interface, which no flag can name)")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint_like_go() {
        assert_eq!(parse_uint("65000", 32), Ok(65000));
        assert_eq!(parse_uint("0x10", 32), Ok(16));
        assert_eq!(parse_uint("0X1f", 32), Ok(31));
        assert_eq!(parse_uint("0o17", 32), Ok(15));
        assert_eq!(parse_uint("017", 32), Ok(15));
        assert_eq!(parse_uint("0b101", 32), Ok(5));
        assert_eq!(parse_uint("65_000", 32), Ok(65000));
        assert_eq!(parse_uint("0x_1F", 32), Ok(31));
        assert_eq!(parse_uint("0", 32), Ok(0));
        assert_eq!(parse_uint("4294967295", 32), Ok(u64::from(u32::MAX)));
        assert_eq!(parse_uint("255", 8), Ok(255));
        for bad in [
            "",
            "+65000",
            "-1",
            " 1",
            "1 ",
            "4294967296",
            "256x",
            "0x",
            "08",
            "1__0",
            "_1",
            "1_",
            "0b2",
            "1e3",
            "1.0",
        ] {
            assert!(parse_uint(bad, 32).is_err(), "{bad:?}");
        }
        assert!(parse_uint("256", 8).is_err());
    }

    #[test]
    fn int_like_go() {
        assert_eq!(parse_int("+50051", 32), Ok(50051));
        assert_eq!(parse_int("-2147483648", 32), Ok(-2147483648));
        assert!(parse_int("2147483648", 32).is_err());
        assert!(parse_int("port", 32).is_err());
        assert!(parse_int("+", 32).is_err());
    }

    #[test]
    fn non_decimal_spellings_are_flagged() {
        assert!(is_non_decimal("065000"));
        assert!(is_non_decimal("0x10"));
        assert!(is_non_decimal("1_000"));
        assert!(!is_non_decimal("65000"));
        assert!(!is_non_decimal("0"));
    }

    #[test]
    fn ip_slice_like_pflag() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_ip_slice(&s(&["192.0.2.1, 192.0.2.2", "\"192.0.2.3\""]))
                .unwrap()
                .len(),
            3
        );
        assert_eq!(parse_ip_slice(&s(&[""])).unwrap(), Vec::<IpAddr>::new());
        for bad in [
            "192.0.2.1,,192.0.2.2",
            "192.0.2.1,",
            ",",
            " ",
            "010.0.0.1",
            "fe80::1%eth0",
        ] {
            assert!(parse_ip_slice(&s(&[bad])).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_ip_slice(&s(&["::ffff:192.0.2.1"])).unwrap(),
            vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))]
        );
    }

    #[test]
    fn klog_values() {
        assert!(parse_severity("warning").is_ok());
        assert!(parse_severity("2").is_ok());
        assert!(parse_severity("loud").is_err());
        assert!(parse_vmodule("gobgp*=4,speaker=2,").is_ok());
        assert!(parse_vmodule("gobgp").is_err());
        assert!(parse_vmodule("a=-1").is_err());
        assert!(parse_vmodule("a=x").is_err());
        assert!(parse_backtrace_at("").is_ok());
        assert!(parse_backtrace_at("bgp.go:234").is_ok());
        assert!(parse_backtrace_at("bgp:234").is_err());
        assert!(parse_backtrace_at("bgp.go:0").is_err());
        assert!(parse_decimal_i32("0x5").is_err());
        assert_eq!(parse_octal_u32("640"), Ok(0o640));
        assert_eq!(parse_octal_u32("0640"), Ok(0o640));
        assert!(parse_octal_u32("999").is_err());
        assert!(parse_octal_u32("0o640").is_err());
    }
}
