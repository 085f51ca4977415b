//! Read-back from BIRD through birdc: `show protocols all` (per BGP protocol its state and since
//! when, neighbor address and AS, channels with their exported route counts, the last error), and
//! for the prefixes themselves `show route export PROTOCOL`. BIRD counts no messages and no
//! flaps; its "Since" column is a full date and zone because the template sets
//! `timeformat protocol` (a user template without it gives no "since").

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::SystemTime;

use ipnet::IpNet;

use crate::daemon::observe::{PeerObservation, SessionState};
use crate::model::Family;

/// One BGP protocol of `show protocols all`.
#[derive(Debug, Clone, PartialEq)]
pub struct Protocol {
    pub name: String,
    pub peer: PeerObservation,
}

/// The time format the template sets (`timeformat protocol "%F %T %z"`).
fn parse_since(tokens: &[&str]) -> Option<SystemTime> {
    let [date, time, zone, ..] = tokens else {
        return None;
    };
    if date.len() != 10 || !zone.starts_with(['+', '-']) {
        return None;
    }
    let text = format!("{date} {time} {zone}");
    let ts = k8s_openapi::jiff::Timestamp::strptime("%Y-%m-%d %H:%M:%S %z", &text).ok()?;
    Some(SystemTime::from(ts))
}

fn channel_family(word: &str) -> Option<Family> {
    match word {
        "ipv4" => Some(Family::Ipv4Unicast),
        "ipv6" => Some(Family::Ipv6Unicast),
        _ => None,
    }
}

/// Parses `birdc show protocols all`: the BGP protocols, in order.
pub fn parse_protocols(text: &str) -> Vec<Protocol> {
    let mut out: Vec<Protocol> = Vec::new();
    let mut current: Option<(String, PeerObservation)> = None;
    let mut channel: Option<Family> = None;
    let finish = |current: &mut Option<(String, PeerObservation)>, out: &mut Vec<Protocol>| {
        if let Some((name, peer)) = current.take()
            && !peer.address.is_unspecified()
        {
            out.push(Protocol { name, peer });
        }
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with([' ', '\t']) {
            finish(&mut current, &mut out);
            channel = None;
            let tokens: Vec<&str> = line.split_whitespace().collect();
            // "NAME PROTO TABLE STATE SINCE... INFO"
            if tokens.len() >= 4 && tokens[1] == "BGP" {
                let mut peer = PeerObservation::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
                peer.since = parse_since(&tokens[4..]);
                current = Some((tokens[0].to_string(), peer));
            }
            continue;
        }
        let Some((_, peer)) = current.as_mut() else {
            continue;
        };
        let t = line.trim();
        if let Some(v) = t.strip_prefix("BGP state:") {
            peer.state = SessionState::parse(v.trim());
        } else if let Some(v) = t.strip_prefix("Neighbor address:") {
            if let Ok(a) = v.trim().split('%').next().unwrap_or_default().parse() {
                peer.address = a;
            }
        } else if let Some(v) = t.strip_prefix("Neighbor AS:") {
            peer.remote_as = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = t.strip_prefix("Last error:") {
            peer.last_error = Some(v.trim().to_string());
        } else if let Some(v) = t.strip_prefix("Channel ") {
            channel = channel_family(v.trim());
            if let Some(f) = channel {
                peer.families.push(f);
            }
        } else if let Some(v) = t.strip_prefix("Routes:")
            && let Some(f) = channel
        {
            // "1 imported, 2 exported, 0 preferred"
            let exported = v
                .split(',')
                .find_map(|part| part.trim().strip_suffix(" exported"))
                .and_then(|n| n.trim().parse::<u64>().ok());
            if let Some(n) = exported {
                peer.advertised_count.insert(f, n);
            }
        }
    }
    finish(&mut current, &mut out);
    for p in &mut out {
        p.peer.families.sort();
        if p.peer.state != SessionState::Established {
            p.peer.advertised_count.clear();
        } else {
            p.peer.last_error = None;
        }
    }
    out
}

/// Parses `birdc show route export PROTOCOL`: the prefixes, per family. A route line starts with
/// its prefix; further paths of the same prefix are indented; "No valid tables" (a protocol whose
/// channels are down) is no route at all.
pub fn parse_routes(text: &str) -> BTreeMap<Family, BTreeSet<IpNet>> {
    let mut out: BTreeMap<Family, BTreeSet<IpNet>> = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some(first) = line.split_whitespace().next() else {
            continue;
        };
        if let Ok(prefix) = first.parse::<IpNet>() {
            out.entry(Family::of(prefix.addr()))
                .or_default()
                .insert(prefix.trunc());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from BIRD 2.0.12 with the template's time format: one session up, one not.
    const PROTOCOLS: &str = "BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     2026-12-01 14:05:57 +0000
bgpgen_v4  Static     master4    up     2026-12-01 14:05:57 +0000
  Channel ipv4
    State:          UP
    Routes:         1 imported, 0 exported, 1 preferred

peer_192_0_2_2 BGP        ---        start  2026-12-01 14:05:57 +0000  Active        Socket: Connection refused
  BGP state:          Active
    Neighbor address: 192.0.2.2
    Neighbor AS:      65030
    Local AS:         65000
    Last error:       Socket: Connection refused
  Channel ipv4
    State:          DOWN
    Table:          master4

peer_2001_db8__2 BGP        ---        up     2026-12-01 14:06:01 +0000  Established
  BGP state:          Established
    Neighbor address: 2001:db8::2
    Neighbor AS:      65030
    Local capabilities
      Multiprotocol
        AF announced: ipv6
  Channel ipv6
    State:          UP
    Table:          master6
    Routes:         0 imported, 1 exported, 0 preferred
    Route change stats:     received   rejected   filtered    ignored   accepted
      Export updates:              1          0          0        ---          1
    BGP Next hop:   2001:db8::1 fe80::dcbb:1dff:fed3:3e69
";

    #[test]
    fn protocols_all() {
        let p = parse_protocols(PROTOCOLS);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].name, "peer_192_0_2_2");
        assert_eq!(p[0].peer.address, "192.0.2.2".parse::<IpAddr>().unwrap());
        assert_eq!(p[0].peer.state, SessionState::Active);
        assert_eq!(
            p[0].peer.last_error.as_deref(),
            Some("Socket: Connection refused")
        );
        assert_eq!(p[0].peer.families, [Family::Ipv4Unicast]);
        assert!(p[0].peer.advertised_count.is_empty());
        let up = &p[1].peer;
        assert_eq!(up.state, SessionState::Established);
        assert_eq!(up.remote_as, 65030);
        assert_eq!(up.advertised_count[&Family::Ipv6Unicast], 1);
        let since = up.since.expect("since");
        let epoch = since
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(epoch, 1_796_133_961);
        // BIRD's default time format has no date: no since then.
        let short = PROTOCOLS.replace("2026-12-01 14:06:01 +0000", "14:06:01.703");
        assert_eq!(parse_protocols(&short)[1].peer.since, None);
    }

    #[test]
    fn exported_routes() {
        let text = "BIRD 2.0.12 ready.
Table master4:
10.16.0.5/32         blackhole [bgpgen_v4 14:05:57.725] * (200)
10.16.0.0/16         blackhole [bgpgen_v4 14:05:57.725] * (200)
                     blackhole [other 14:05:57.725] (100)
";
        let r = parse_routes(text);
        assert_eq!(r[&Family::Ipv4Unicast].len(), 2);
        assert!(parse_routes("BIRD 2.0.12 ready.\nNo valid tables\n").is_empty());
    }
}
