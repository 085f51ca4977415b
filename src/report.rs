//! The sidecar's `/status` document (README: "bgpgen status"), built from its [`Status`]: per peer
//! the session state, since when, advertised and expected prefixes per family, the last error;
//! the intent hash in force, why the configuration may be stale, the last apply. The same rows
//! feed `/metrics` (kube-ovn-speaker's per-peer series) and the BGPSpeaker object's status.
//! `bgpgen status` reads the document back with the same types.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::daemon::observe::{BfdState, Messages, SessionState};
use crate::model::Family;
use crate::status::Status;
use crate::text::escape;

pub const API_VERSION: &str = "bgpgen/v1";
pub const KIND: &str = "Status";

/// RFC 3339 in UTC, seconds precision (`2026-12-01T14:05:57Z`).
pub fn rfc3339(t: SystemTime) -> String {
    match k8s_openapi::jiff::Timestamp::try_from(t) {
        Ok(ts) => ts
            .round(k8s_openapi::jiff::Unit::Second)
            .map_or_else(|_| ts.to_string(), |r| r.to_string()),
        Err(_) => String::new(),
    }
}

/// One neighbor: what the intent wants of it and what the daemon reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Peer {
    pub address: IpAddr,
    pub remote_as: u32,
    pub families: Vec<Family>,
    /// `established`, `idle`, `connect`, `active`, `opensent`, `openconfirm`, or `unknown`
    /// (the daemon does not answer, or does not have this neighbor).
    pub state: String,
    /// kube-ovn-speaker's number for the state (0 unknown ... 6 established).
    pub state_code: u8,
    /// RFC 3339: since when the session is in this state, when the daemon says.
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub flaps: Option<u64>,
    #[serde(default)]
    pub out_queue: Option<u64>,
    /// Messages by type (open, update, keepalive, notification, refresh, withdraw_update,
    /// withdraw_prefix, discarded, total), where the daemon counts them.
    #[serde(default)]
    pub messages_received: Option<BTreeMap<String, u64>>,
    #[serde(default)]
    pub messages_sent: Option<BTreeMap<String, u64>>,
    /// Prefixes the daemon advertises to the neighbor, per family (established sessions).
    pub advertised: BTreeMap<Family, u64>,
    /// Prefixes the intent wants advertised to it, per family.
    pub expected: BTreeMap<Family, u64>,
    #[serde(default)]
    pub bfd: Option<String>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// True when the intent has this neighbor (false: the daemon has a neighbor bgpgen did not
    /// configure).
    pub in_intent: bool,
}

impl Peer {
    pub fn established(&self) -> bool {
        self.state_code == SessionState::Established.number()
    }

    /// Established and advertising exactly the expected counts.
    pub fn healthy(&self) -> bool {
        self.established() && self.in_intent && self.advertised == self.expected
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaleReason {
    pub reason: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastApply {
    /// `ok`, `unchanged` or `failed`.
    pub result: String,
    /// RFC 3339.
    pub time: String,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// How it was applied (`birdc configure`, `paths +1 -0`, ...).
    #[serde(default)]
    pub how: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    pub peer: IpAddr,
    pub family: Family,
    pub expected: u64,
    pub advertised: u64,
    /// At most 20 of each.
    pub missing: Vec<String>,
    pub extra: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub backend: Option<String>,
    /// `node` or `nat-gateway`, with the node or gateway name, once an intent is in force.
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub local_as: Option<u32>,
    /// The configuration in force is the intent of the current input (`/readyz` 200).
    pub ready: bool,
    pub stale: Vec<StaleReason>,
    /// The hash of the intent in force on the daemon.
    #[serde(default)]
    pub intent_hash: Option<String>,
    /// The hash of an intent that was tried and is not in force.
    #[serde(default)]
    pub wanted_hash: Option<String>,
    /// Routes of the intent in force, per family.
    pub routes: BTreeMap<Family, u64>,
    #[serde(default)]
    pub last_apply: Option<LastApply>,
    pub daemon_reachable: bool,
    /// RFC 3339: when the sessions were last read back.
    #[serde(default)]
    pub observed_at: Option<String>,
    #[serde(default)]
    pub observe_error: Option<String>,
    pub peers: Vec<Peer>,
    /// Differences between what established neighbors are sent and the intent, as last read.
    pub drift: Vec<Drift>,
}

fn messages(m: &Option<Messages>) -> Option<BTreeMap<String, u64>> {
    m.as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.to_string(), *v)).collect())
}

fn bfd_name(b: BfdState) -> String {
    match b {
        BfdState::Unknown => "unknown",
        BfdState::Up => "up",
        BfdState::Down => "down",
        BfdState::AdminDown => "admin_down",
        BfdState::Init => "init",
    }
    .to_string()
}

/// The peers: every neighbor of the intent in force, with what the daemon reports of it, and any
/// neighbor the daemon has beyond them. While the daemon does not answer, every state is
/// `unknown` (its sessions cannot be vouched for).
pub fn peers(status: &Status) -> Vec<Peer> {
    let observed: BTreeMap<IpAddr, &crate::daemon::observe::PeerObservation> = status
        .observation
        .iter()
        .flat_map(|o| o.peers.iter())
        .map(|p| (p.address, p))
        .collect();
    let mut out = Vec::new();
    let wanted = status.intent.iter().flat_map(|i| i.neighbors.iter());
    // What each neighbor should be sent: every announced route of its families (the count of
    // `observe::expected`, without building the sets: this runs on every scrape).
    let mut per_family: BTreeMap<Family, u64> = BTreeMap::new();
    for r in status.intent.iter().flat_map(|i| i.announced()) {
        *per_family.entry(r.family).or_default() += 1;
    }
    let mut seen = std::collections::BTreeSet::new();
    for n in wanted {
        seen.insert(n.address);
        let exp: BTreeMap<Family, u64> = n
            .families
            .iter()
            .map(|f| (*f, per_family.get(f).copied().unwrap_or(0)))
            .collect();
        out.push(row(
            status,
            n.address,
            n.remote_as.0,
            n.families.clone(),
            observed.get(&n.address).copied(),
            exp,
            true,
        ));
    }
    for (addr, p) in &observed {
        if !seen.contains(addr) {
            out.push(row(
                status,
                *addr,
                p.remote_as,
                p.families.clone(),
                Some(p),
                BTreeMap::new(),
                false,
            ));
        }
    }
    out
}

fn row(
    status: &Status,
    address: IpAddr,
    remote_as: u32,
    families: Vec<Family>,
    observed: Option<&crate::daemon::observe::PeerObservation>,
    expected: BTreeMap<Family, u64>,
    in_intent: bool,
) -> Peer {
    let mut peer = Peer {
        address,
        remote_as,
        families,
        state: SessionState::Unknown.as_str().into(),
        state_code: 0,
        since: None,
        flaps: None,
        out_queue: None,
        messages_received: None,
        messages_sent: None,
        advertised: BTreeMap::new(),
        expected,
        bfd: None,
        last_error: None,
        in_intent,
    };
    if !status.daemon_reachable {
        peer.last_error = Some(format!(
            "{} does not answer",
            status.backend.map_or("the daemon", |b| b.name())
        ));
        return peer;
    }
    let Some(o) = observed else {
        if status.observation.is_some() {
            peer.last_error = Some("the daemon has no such neighbor".into());
        }
        return peer;
    };
    peer.state = o.state.as_str().into();
    peer.state_code = o.state.number();
    peer.since = o.since.map(rfc3339);
    // Each count is a lower bound of the drops: the daemon's own (FRR's since it started; BIRD
    // keeps none, and gobgpd 3.10's API always says 0 flops) and the ones bgpgen saw.
    let seen = status.drops_seen.get(&address).copied().unwrap_or(0);
    peer.flaps = Some(o.flaps.unwrap_or(0).max(seen));
    peer.out_queue = o.out_queue;
    peer.messages_received = messages(&o.received);
    peer.messages_sent = messages(&o.sent);
    if o.state == SessionState::Established {
        for f in peer.expected.keys().copied().collect::<Vec<_>>() {
            peer.advertised
                .insert(f, o.advertised_count.get(&f).copied().unwrap_or(0));
        }
        for (f, n) in &o.advertised_count {
            peer.advertised.entry(*f).or_insert(*n);
        }
    }
    peer.bfd = o.bfd.map(bfd_name);
    peer.last_error = o.last_error.clone();
    peer
}

/// The `/status` document.
pub fn document(status: &Status) -> Document {
    let intent = status.intent.as_ref();
    let mut routes = BTreeMap::new();
    if let Some(i) = intent {
        for r in i.announced() {
            *routes.entry(r.family).or_insert(0) += 1;
        }
    }
    Document {
        api_version: API_VERSION.into(),
        kind: KIND.into(),
        backend: status.backend.map(|b| b.name().to_string()),
        mode: intent.map(|i| match i.speaker.mode {
            crate::intent::Mode::Node => "node".to_string(),
            crate::intent::Mode::NatGateway => "nat-gateway".to_string(),
        }),
        node: intent.and_then(|i| i.speaker.node.clone()),
        gateway: intent.and_then(|i| i.speaker.gateway.clone()),
        local_as: intent.map(|i| i.speaker.local_as.0),
        ready: status.ready(),
        stale: status
            .stale
            .iter()
            .map(|(why, detail)| StaleReason {
                reason: why.label().into(),
                detail: detail.clone(),
            })
            .collect(),
        intent_hash: intent.map(|i| i.hash.clone()),
        wanted_hash: status
            .wanted_hash
            .clone()
            .filter(|h| intent.is_none_or(|i| i.hash != *h)),
        routes,
        last_apply: status.last_apply_result.clone(),
        daemon_reachable: status.daemon_reachable,
        observed_at: status.observation.as_ref().map(|o| rfc3339(o.at)),
        observe_error: status.observe_error.clone(),
        peers: peers(status),
        drift: status
            .drift
            .iter()
            .map(|d| Drift {
                peer: d.peer,
                family: d.family,
                expected: d.expected,
                advertised: d.advertised,
                missing: d.missing.iter().take(20).map(ToString::to_string).collect(),
                extra: d.extra.iter().take(20).map(ToString::to_string).collect(),
            })
            .collect(),
    }
}

/// Whether every neighbor of the intent in force is established (`bgpgen status` exits 0);
/// false too while no intent is in force.
pub fn all_established(doc: &Document) -> bool {
    doc.intent_hash.is_some()
        && doc
            .peers
            .iter()
            .filter(|p| p.in_intent)
            .all(Peer::established)
}

fn or_dash(s: Option<&str>) -> String {
    s.map(|s| escape(s).into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".into())
}

/// The table: a summary line, the stale reasons, one row per neighbor and family.
pub fn table(doc: &Document) -> String {
    let mut out = String::new();
    let hash = doc
        .intent_hash
        .as_deref()
        .map(|h| h.chars().take(19).collect::<String>())
        .unwrap_or_else(|| "-".into());
    let apply = match &doc.last_apply {
        None => "-".to_string(),
        Some(a) => {
            let detail = a.how.as_deref().or(a.error.as_deref());
            match detail {
                Some(d) => format!("{} at {} ({})", a.result, a.time, escape(d)),
                None => format!("{} at {}", a.result, a.time),
            }
        }
    };
    let speaker = doc
        .node
        .as_deref()
        .or(doc.gateway.as_deref())
        .map(|n| escape(n).into_owned())
        .unwrap_or_else(|| "-".into());
    out.push_str(&format!(
        "Speaker {speaker} ({}), AS {}, intent {hash}, {}\n",
        doc.backend.as_deref().unwrap_or("-"),
        doc.local_as.map_or("-".to_string(), |a| a.to_string()),
        if doc.ready { "ready" } else { "NOT READY" },
    ));
    out.push_str(&format!("Last apply: {apply}\n"));
    if !doc.daemon_reachable {
        out.push_str("Daemon: does not answer\n");
    }
    for s in &doc.stale {
        out.push_str(&format!("Stale: {}: {}\n", s.reason, escape(&s.detail)));
    }
    if let Some(e) = &doc.observe_error {
        out.push_str(&format!("Read-back: {}\n", escape(e)));
    }
    out.push('\n');
    let mut rows = vec![[
        "PEER".to_string(),
        "AS".into(),
        "FAMILY".into(),
        "STATE".into(),
        "SINCE".into(),
        "ADVERTISED".into(),
        "EXPECTED".into(),
        "LAST ERROR".into(),
    ]];
    for p in &doc.peers {
        let families: Vec<_> = if p.families.is_empty() {
            vec![None]
        } else {
            p.families.iter().map(Some).collect()
        };
        for f in families {
            let count = |m: &std::collections::BTreeMap<crate::model::Family, u64>| {
                f.and_then(|f| m.get(f))
                    .map_or("-".to_string(), |n| n.to_string())
            };
            let state = if p.in_intent {
                p.state.clone()
            } else {
                format!("{} (not in the intent)", p.state)
            };
            rows.push([
                p.address.to_string(),
                p.remote_as.to_string(),
                f.map_or("-".to_string(), |f| f.to_string()),
                state,
                or_dash(p.since.as_deref()),
                if p.established() {
                    count(&p.advertised)
                } else {
                    "-".into()
                },
                count(&p.expected),
                or_dash(p.last_error.as_deref()),
            ]);
        }
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i == r.len() - 1 {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if doc.peers.is_empty() {
        out.push_str("(no neighbors)\n");
    }
    for d in &doc.drift {
        out.push_str(&format!(
            "Drift: {} {}: {} advertised, {} expected{}{}\n",
            d.peer,
            d.family,
            d.advertised,
            d.expected,
            if d.missing.is_empty() {
                String::new()
            } else {
                format!("; missing {}", d.missing.join(" "))
            },
            if d.extra.is_empty() {
                String::new()
            } else {
                format!("; extra {}", d.extra.join(" "))
            },
        ));
    }
    out
}
