//! What bgpgen reads back from a daemon (DESIGN section 10): per neighbor the session state, since
//! when, flaps, message counters, out queue and the prefixes actually advertised to it, in one
//! typed [`Observation`] whatever the daemon. Each daemon's `observe.rs` fills it from its own
//! tools (gobgpd's gRPC API, `birdc`, `vtysh ... json`); [`drift`] compares it with the intent.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::time::SystemTime;

use ipnet::IpNet;
use serde::Serialize;

use crate::intent::Intent;
use crate::model::Family;

/// A BGP session's FSM state (RFC 4271), numbered as kube-ovn-speaker's
/// `kube_ovn_speaker_bgp_peer_session_state` (GoBGP's enum): 0 unknown, 1 idle, 2 connect,
/// 3 active, 4 opensent, 5 openconfirm, 6 established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionState {
    Unknown,
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl SessionState {
    pub fn number(self) -> u8 {
        match self {
            SessionState::Unknown => 0,
            SessionState::Idle => 1,
            SessionState::Connect => 2,
            SessionState::Active => 3,
            SessionState::OpenSent => 4,
            SessionState::OpenConfirm => 5,
            SessionState::Established => 6,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Unknown => "unknown",
            SessionState::Idle => "idle",
            SessionState::Connect => "connect",
            SessionState::Active => "active",
            SessionState::OpenSent => "opensent",
            SessionState::OpenConfirm => "openconfirm",
            SessionState::Established => "established",
        }
    }

    /// FRR's `bgpState` and BIRD's `BGP state:` words, any case.
    pub fn parse(word: &str) -> SessionState {
        match word.to_ascii_lowercase().as_str() {
            "idle" => SessionState::Idle,
            "connect" => SessionState::Connect,
            "active" => SessionState::Active,
            "opensent" => SessionState::OpenSent,
            "openconfirm" => SessionState::OpenConfirm,
            "established" => SessionState::Established,
            _ => SessionState::Unknown,
        }
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The message types of kube-ovn-speaker's `..._received_messages{type}` and
/// `..._sent_messages{type}`, in its order.
pub const MESSAGE_TYPES: [&str; 9] = [
    "open",
    "update",
    "keepalive",
    "notification",
    "refresh",
    "withdraw_update",
    "withdraw_prefix",
    "discarded",
    "total",
];

/// Message counters by type (one of [`MESSAGE_TYPES`]); a type the daemon does not count is
/// absent, not zero.
pub type Messages = BTreeMap<&'static str, u64>;

/// A BFD session's state, numbered as kube-ovn-speaker's `kube_ovn_speaker_bfd_peer_session_state`
/// (0 unknown, 1 up, 2 down, 3 admin_down, 4 init).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BfdState {
    Unknown,
    Up,
    Down,
    AdminDown,
    Init,
}

impl BfdState {
    pub fn number(self) -> u8 {
        match self {
            BfdState::Unknown => 0,
            BfdState::Up => 1,
            BfdState::Down => 2,
            BfdState::AdminDown => 3,
            BfdState::Init => 4,
        }
    }

    pub fn parse(word: &str) -> BfdState {
        match word.to_ascii_lowercase().replace(['-', ' '], "_").as_str() {
            "up" => BfdState::Up,
            "down" => BfdState::Down,
            "admin_down" | "admindown" => BfdState::AdminDown,
            "init" => BfdState::Init,
            _ => BfdState::Unknown,
        }
    }
}

/// One neighbor as the daemon reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerObservation {
    pub address: IpAddr,
    pub remote_as: u32,
    /// The families configured on the session.
    pub families: Vec<Family>,
    pub state: SessionState,
    /// Since when the session is in this state (established: since it came up), when the daemon
    /// says.
    pub since: Option<SystemTime>,
    /// How often the session went down after being established, as the daemon counts (GoBGP
    /// `flops`, always 0 through gobgpd 3.10's API; FRR `connectionsDropped`; BIRD none). The
    /// report takes the larger of this and the drops bgpgen saw.
    pub flaps: Option<u64>,
    /// Messages queued to be sent.
    pub out_queue: Option<u64>,
    pub received: Option<Messages>,
    pub sent: Option<Messages>,
    /// How many prefixes each family advertises to the neighbor (the daemon's own count: cheap).
    pub advertised_count: BTreeMap<Family, u64>,
    /// The prefixes advertised per family, when read in full this time ([`Depth::Full`]).
    pub advertised: Option<BTreeMap<Family, BTreeSet<IpNet>>>,
    /// The last error the daemon reports for the session (a NOTIFICATION, a socket error).
    pub last_error: Option<String>,
    pub bfd: Option<BfdState>,
}

impl PeerObservation {
    pub fn new(address: IpAddr) -> PeerObservation {
        PeerObservation {
            address,
            remote_as: 0,
            families: Vec::new(),
            state: SessionState::Unknown,
            since: None,
            flaps: None,
            out_queue: None,
            received: None,
            sent: None,
            advertised_count: BTreeMap::new(),
            advertised: None,
            last_error: None,
            bfd: None,
        }
    }
}

/// What one read-back found.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub at: SystemTime,
    /// Sorted by address.
    pub peers: Vec<PeerObservation>,
}

/// How much to read: counts only (every check interval, cheap at any table size), or every
/// advertised prefix too (after an apply, when a count differs from the intent, and now and
/// then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    Counts,
    Full,
}

/// A read-back failed (the daemon does not answer, or answered something unreadable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{daemon}: reading the sessions back failed: {message}")]
pub struct ObserveError {
    pub daemon: &'static str,
    pub message: String,
}

/// What the intent expects one neighbor to be sent: its families' announced prefixes.
pub fn expected(intent: &Intent, peer: IpAddr) -> BTreeMap<Family, BTreeSet<IpNet>> {
    let Some(n) = intent.neighbors.iter().find(|n| n.address == peer) else {
        return BTreeMap::new();
    };
    n.families
        .iter()
        .map(|f| {
            let prefixes = intent
                .announced()
                .filter(|r| r.family == *f)
                .map(|r| r.prefix)
                .collect();
            (*f, prefixes)
        })
        .collect()
}

/// A difference between what one established neighbor is sent and the intent, in one family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    pub peer: IpAddr,
    pub family: Family,
    pub expected: u64,
    pub advertised: u64,
    /// Known when the prefixes were read in full (every one: the repair uses them; displays
    /// show at most [`DRIFT_SAMPLE`]).
    pub missing: Vec<IpNet>,
    pub extra: Vec<IpNet>,
}

/// How many missing or extra prefixes a drift lists (logs and `/status` stay bounded).
pub const DRIFT_SAMPLE: usize = 20;

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {} advertised, {} expected",
            self.peer, self.family, self.advertised, self.expected
        )?;
        let list = |v: &[IpNet]| {
            let mut text = v
                .iter()
                .take(DRIFT_SAMPLE)
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ");
            if v.len() > DRIFT_SAMPLE {
                text.push_str(&format!(" (+{} more)", v.len() - DRIFT_SAMPLE));
            }
            text
        };
        if !self.missing.is_empty() {
            write!(f, "; missing {}", list(&self.missing))?;
        }
        if !self.extra.is_empty() {
            write!(f, "; extra {}", list(&self.extra))?;
        }
        Ok(())
    }
}

/// The differences between what each established neighbor of `observation` is sent and what
/// `intent` says it should be sent. Neighbors that are not established are not compared: they
/// are sent nothing by nature, and their state is reported on its own.
pub fn drift(intent: &Intent, observation: &Observation) -> Vec<Drift> {
    let mut out = Vec::new();
    for peer in &observation.peers {
        if peer.state != SessionState::Established {
            continue;
        }
        for (family, want) in expected(intent, peer.address) {
            let count = peer.advertised_count.get(&family).copied();
            let full = peer.advertised.as_ref().map(|a| a.get(&family));
            let (advertised, missing, extra) = match full {
                Some(got) => {
                    let empty = BTreeSet::new();
                    let got = got.unwrap_or(&empty);
                    let missing: Vec<IpNet> = want.difference(got).copied().collect();
                    let extra: Vec<IpNet> = got.difference(&want).copied().collect();
                    (got.len() as u64, missing, extra)
                }
                None => (count.unwrap_or(0), Vec::new(), Vec::new()),
            };
            let differs = match full {
                Some(_) => !missing.is_empty() || !extra.is_empty(),
                None => count.is_some_and(|c| c != want.len() as u64),
            };
            if differs {
                out.push(Drift {
                    peer: peer.address,
                    family,
                    expected: want.len() as u64,
                    advertised,
                    missing,
                    extra,
                });
            }
        }
    }
    out
}

/// Seconds since the Unix epoch as a time (FRR reports epochs).
pub fn from_epoch(seconds: i64) -> Option<SystemTime> {
    let s = u64::try_from(seconds).ok().filter(|s| *s > 0)?;
    SystemTime::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent() -> Intent {
        let yaml = r#"
apiVersion: bgpgen/v1
kind: Intent
speaker: {mode: node, node: n1, gateway: null, routerId: 192.0.2.1, localAs: 65000}
bgp:
  holdTime: 90
  keepalive: 30
  passive: false
  ebgpMultihopTtl: 1
  extendedNexthop: false
  gracefulRestart: {enabled: false, restartTime: 90, deferralTime: 360}
  bfd: {enabled: false, minTxMs: 1000, minRxMs: 1000, multiplier: 3}
  password: null
neighbors:
  - {address: 192.0.2.2, remoteAs: 65030, families: [ipv4-unicast]}
  - {address: "2001:db8::2", remoteAs: 65030, families: [ipv6-unicast]}
routes:
  - {prefix: 10.16.0.5/32, family: ipv4-unicast, nextHop: self, sources: []}
  - {prefix: 10.16.0.6/32, family: ipv4-unicast, nextHop: self, sources: []}
  - {prefix: "fd00:10:16::5/128", family: ipv6-unicast, nextHop: self, sources: []}
diagnostics: []
hash: ""
"#;
        crate::source::yaml::from_str(yaml).expect("intent")
    }

    fn peer(addr: &str, state: SessionState) -> PeerObservation {
        PeerObservation {
            state,
            ..PeerObservation::new(addr.parse().unwrap())
        }
    }

    #[test]
    fn counts_and_full_sets_are_compared_per_family() {
        let intent = intent();
        let mut v4 = peer("192.0.2.2", SessionState::Established);
        v4.advertised_count.insert(Family::Ipv4Unicast, 2);
        let mut v6 = peer("2001:db8::2", SessionState::Established);
        v6.advertised_count.insert(Family::Ipv6Unicast, 0);
        let obs = Observation {
            at: SystemTime::now(),
            peers: vec![v4.clone(), v6.clone()],
        };
        let d = drift(&intent, &obs);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            (d[0].family, d[0].expected, d[0].advertised),
            (Family::Ipv6Unicast, 1, 0)
        );

        // Read in full: the names of what is missing and extra.
        v4.advertised = Some(BTreeMap::from([(
            Family::Ipv4Unicast,
            BTreeSet::from([
                "10.16.0.5/32".parse().unwrap(),
                "10.99.0.0/24".parse().unwrap(),
            ]),
        )]));
        let obs = Observation {
            at: SystemTime::now(),
            peers: vec![v4],
        };
        let d = drift(&intent, &obs);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].missing, ["10.16.0.6/32".parse::<IpNet>().unwrap()]);
        assert_eq!(d[0].extra, ["10.99.0.0/24".parse::<IpNet>().unwrap()]);
        assert!(
            d[0].to_string().contains("missing 10.16.0.6/32"),
            "{}",
            d[0]
        );
    }

    #[test]
    fn sessions_that_are_down_are_not_drift() {
        let obs = Observation {
            at: SystemTime::now(),
            peers: vec![peer("192.0.2.2", SessionState::Active)],
        };
        assert!(drift(&intent(), &obs).is_empty());
    }

    #[test]
    fn states_parse_and_number_as_kube_ovn() {
        assert_eq!(SessionState::parse("Established").number(), 6);
        assert_eq!(SessionState::parse("OpenSent"), SessionState::OpenSent);
        assert_eq!(SessionState::parse("Clearing"), SessionState::Unknown);
        assert_eq!(BfdState::parse("AdminDown").number(), 3);
        assert_eq!(BfdState::parse("up"), BfdState::Up);
    }
}
