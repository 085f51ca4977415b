//! Read-back from bgpd through vtysh's JSON output: `show bgp neighbors json` (state, uptime,
//! connections dropped, message statistics, out queue, prefixes sent per family, the last
//! NOTIFICATION), and for the prefixes themselves `show bgp ipv4|ipv6 unicast neighbors X
//! advertised-routes json`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use serde_json::Value;

use crate::daemon::observe::{BfdState, Messages, Observation, PeerObservation, SessionState};
use crate::model::Family;

/// FRR's names of the address families bgpgen uses, in `addressFamilyInfo`.
fn family_of(key: &str) -> Option<Family> {
    match key {
        "ipv4Unicast" => Some(Family::Ipv4Unicast),
        "ipv6Unicast" => Some(Family::Ipv6Unicast),
        _ => None,
    }
}

/// `vtysh -c 'show bgp <afi> unicast neighbors X advertised-routes json'`'s `<afi>`.
pub fn afi(family: Family) -> &'static str {
    match family {
        Family::Ipv4Unicast => "ipv4",
        Family::Ipv6Unicast => "ipv6",
    }
}

fn msecs_ago(now: SystemTime, value: &Value) -> Option<SystemTime> {
    now.checked_sub(Duration::from_millis(value.as_u64()?))
}

fn messages(stats: &Value, direction: &str) -> Option<Messages> {
    let obj = stats.as_object()?;
    let mut out = Messages::new();
    for (ty, frr) in [
        ("open", "opens"),
        ("update", "updates"),
        ("keepalive", "keepalives"),
        ("notification", "notifications"),
        ("refresh", "routeRefresh"),
        ("total", "total"),
    ] {
        if let Some(v) = obj
            .get(&format!("{frr}{direction}"))
            .and_then(Value::as_u64)
        {
            out.insert(ty, v);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Parses `show bgp neighbors json`.
pub fn parse_neighbors(json: &str, now: SystemTime) -> Result<Vec<PeerObservation>, String> {
    let value: Value =
        serde_json::from_str(json).map_err(|e| format!("show bgp neighbors json: {e}"))?;
    let table = value
        .as_object()
        .ok_or("show bgp neighbors json: not an object")?;
    let mut out = Vec::new();
    for (key, n) in table {
        let Ok(address) = key.parse::<IpAddr>() else {
            continue;
        };
        let mut peer = PeerObservation::new(address);
        peer.remote_as = n["remoteAs"]
            .as_u64()
            .and_then(|a| u32::try_from(a).ok())
            .unwrap_or(0);
        peer.state = SessionState::parse(n["bgpState"].as_str().unwrap_or_default());
        peer.since = if peer.state == SessionState::Established {
            msecs_ago(now, &n["bgpTimerUpMsec"])
        } else {
            msecs_ago(now, &n["lastResetTimerMsecs"])
        };
        peer.flaps = n["connectionsDropped"].as_u64();
        let stats = &n["messageStats"];
        peer.out_queue = stats["depthOutq"].as_u64();
        peer.received = messages(stats, "Recv");
        peer.sent = messages(stats, "Sent");
        if let Some(afs) = n["addressFamilyInfo"].as_object() {
            for (name, af) in afs {
                let Some(family) = family_of(name) else {
                    continue;
                };
                peer.families.push(family);
                if peer.state == SessionState::Established
                    && let Some(sent) = af["sentPrefixCounter"].as_u64()
                {
                    peer.advertised_count.insert(family, sent);
                }
            }
        }
        peer.families.sort();
        if peer.state != SessionState::Established {
            peer.last_error = n["lastNotificationReason"]
                .as_str()
                .or_else(|| n["lastResetDueTo"].as_str())
                .map(str::to_string);
        }
        if let Some(status) = n["peerBfdInfo"]["status"].as_str() {
            peer.bfd = Some(BfdState::parse(status));
        }
        out.push(peer);
    }
    out.sort_by_key(|p| p.address);
    Ok(out)
}

/// Parses `show bgp <afi> unicast neighbors X advertised-routes json`: the prefixes (keys of
/// `advertisedRoutes`). FRR answers `{"warning": ...}` for a neighbor without that family.
pub fn parse_advertised(json: &str) -> Result<BTreeSet<IpNet>, String> {
    let value: Value =
        serde_json::from_str(json).map_err(|e| format!("advertised-routes json: {e}"))?;
    let Some(routes) = value["advertisedRoutes"].as_object() else {
        return Ok(BTreeSet::new());
    };
    routes
        .keys()
        .map(|k| {
            k.parse::<IpNet>()
                .map(|p| p.trunc())
                .map_err(|_| format!("advertised-routes json: bad prefix {k:?}"))
        })
        .collect()
}

/// A whole observation from the neighbors' JSON and, per established neighbor and family, the
/// advertised-routes JSON when read in full (`full` is keyed by neighbor and family).
pub fn observation(
    mut peers: Vec<PeerObservation>,
    full: Option<BTreeMap<IpAddr, BTreeMap<Family, BTreeSet<IpNet>>>>,
    now: SystemTime,
) -> Observation {
    if let Some(mut full) = full {
        for p in &mut peers {
            if let Some(sets) = full.remove(&p.address) {
                for (family, set) in &sets {
                    p.advertised_count.insert(*family, set.len() as u64);
                }
                p.advertised = Some(sets);
            }
        }
    }
    Observation { at: now, peers }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from FRR 8.4's answer (bgpd -Z, one IPv4 neighbor up, one IPv6 neighbor down).
    const NEIGHBORS: &str = r#"{
 "192.0.2.2":{"remoteAs":65030,"localAs":65000,"bgpState":"Established","bgpTimerUpMsec":3000,
   "bgpTimerUpEstablishedEpoch":1796133985,"connectionsEstablished":1,"connectionsDropped":2,
   "lastResetTimerMsecs":8000,"lastResetDueTo":"No AFI/SAFI activated for peer",
   "messageStats":{"depthInq":0,"depthOutq":0,"opensSent":2,"opensRecv":1,"notificationsSent":0,
     "notificationsRecv":0,"updatesSent":1,"updatesRecv":0,"keepalivesSent":1,"keepalivesRecv":1,
     "routeRefreshSent":0,"routeRefreshRecv":0,"capabilitySent":0,"capabilityRecv":0,
     "totalSent":4,"totalRecv":2},
   "addressFamilyInfo":{"ipv4Unicast":{"acceptedPrefixCounter":0,"sentPrefixCounter":1}}},
 "2001:db8::2":{"remoteAs":65030,"bgpState":"Idle","connectionsDropped":1,
   "lastResetTimerMsecs":1000,"lastResetDueTo":"BGP Notification received",
   "lastNotificationReason":"Cease/Administrative Shutdown",
   "messageStats":{"depthOutq":0},
   "addressFamilyInfo":{"ipv6Unicast":{"sentPrefixCounter":0}},
   "peerBfdInfo":{"status":"Down"}}
}"#;

    #[test]
    fn neighbors_json() {
        let now = SystemTime::now();
        let peers = parse_neighbors(NEIGHBORS, now).unwrap();
        assert_eq!(peers.len(), 2);
        let (v4, v6) = (&peers[0], &peers[1]);
        assert_eq!(v4.state, SessionState::Established);
        assert_eq!(v4.remote_as, 65030);
        assert_eq!(v4.since, now.checked_sub(Duration::from_secs(3)));
        assert_eq!(v4.flaps, Some(2));
        assert_eq!(v4.out_queue, Some(0));
        assert_eq!(v4.received.as_ref().unwrap()["open"], 1);
        assert_eq!(v4.sent.as_ref().unwrap()["total"], 4);
        assert_eq!(v4.advertised_count[&Family::Ipv4Unicast], 1);
        assert_eq!(v4.last_error, None);
        assert_eq!(v6.state, SessionState::Idle);
        assert_eq!(v6.families, [Family::Ipv6Unicast]);
        assert!(v6.advertised_count.is_empty(), "not counted while down");
        assert_eq!(
            v6.last_error.as_deref(),
            Some("Cease/Administrative Shutdown")
        );
        assert_eq!(v6.bfd, Some(BfdState::Down));
    }

    #[test]
    fn advertised_routes_json() {
        let json = r#"{"bgpTableVersion":1,"advertisedRoutes":{"10.16.0.5/32":{"network":"10.16.0.5/32"},
            "10.16.0.0/16":{}},"totalPrefixCounter":2}"#;
        let got = parse_advertised(json).unwrap();
        assert_eq!(got.len(), 2);
        assert!(got.contains(&"10.16.0.5/32".parse().unwrap()));
        assert!(
            parse_advertised(r#"{ "warning": "No such neighbor or address family" }"#)
                .unwrap()
                .is_empty()
        );
        assert!(parse_advertised("{\"advertisedRoutes\":{\"x\":{}}}").is_err());
    }
}
