//! The intent: the canonical, versioned document of what a speaker announces and how it peers.
//! It is what `compile` prints, what `explain` and `diff` reason about, and the only input of
//! rendering. Sorted and hashed so that equal intents are byte-identical.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::diagnostic::Diagnostic;
use crate::model::{Asn, Family, Kind, Name, Policy, Secret};

pub const API_VERSION: &str = "bgpgen/v1";
pub const KIND: &str = "Intent";
pub const REDACTED: &str = "<redacted>";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    pub api_version: String,
    pub kind: String,
    pub speaker: Speaker,
    pub bgp: Bgp,
    pub neighbors: Vec<Neighbor>,
    pub routes: Vec<Route>,
    pub diagnostics: Vec<Diagnostic>,
    pub hash: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Node,
    NatGateway,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Speaker {
    pub mode: Mode,
    pub node: Option<String>,
    pub gateway: Option<String>,
    pub router_id: Ipv4Addr,
    pub local_as: Asn,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bgp {
    /// Seconds.
    pub hold_time: u64,
    /// Seconds.
    pub keepalive: u64,
    pub passive: bool,
    pub ebgp_multihop_ttl: u8,
    pub extended_nexthop: bool,
    pub graceful_restart: GracefulRestart,
    pub bfd: Bfd,
    /// Serialized as `<redacted>`; see [`Intent::to_json_value`] for `--show-secrets`.
    #[serde(serialize_with = "redact", deserialize_with = "unredact")]
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GracefulRestart {
    pub enabled: bool,
    /// Seconds.
    pub restart_time: u64,
    /// Seconds.
    pub deferral_time: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bfd {
    pub enabled: bool,
    pub min_tx_ms: u32,
    pub min_rx_ms: u32,
    pub multiplier: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Neighbor {
    pub address: IpAddr,
    pub remote_as: Asn,
    pub families: Vec<Family>,
    /// The session's local address, pinned (`--allowed-source-addresses` with a route lookup,
    /// or `--neighbor-local-address`); every route sent to this neighbor carries it as next
    /// hop. Absent: the daemon chooses, and the routes' own next hops apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_address: Option<IpAddr>,
}

/// Where a route's next hop comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NextHop {
    /// The session's local address, chosen by the daemon at send time.
    SelfAddress,
    Address(IpAddr),
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextHop::SelfAddress => f.write_str("self"),
            NextHop::Address(ip) => write!(f, "{ip}"),
        }
    }
}

impl Serialize for NextHop {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NextHop {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "self" {
            return Ok(NextHop::SelfAddress);
        }
        s.parse().map(NextHop::Address).map_err(|_| {
            serde::de::Error::custom(format!("next hop {s:?} is neither self nor an IP"))
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub prefix: IpNet,
    pub family: Family,
    pub next_hop: NextHop,
    pub sources: Vec<Source>,
    /// No neighbor carries this family: kept for review, not rendered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unreachable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Source {
    pub kind: Kind,
    /// Shared with the object's record: 100k routes do not copy 100k names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Name>,
    pub name: Name,
    pub policy: Policy,
}

impl fmt::Display for Source {
    /// `Pod default/sample (cluster)`, the form `diff` and `explain` print.
    /// Names are escaped: no object name can forge a line of `diff` or `explain`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::text::escape;
        match &self.namespace {
            Some(ns) => write!(
                f,
                "{} {}/{} ({})",
                self.kind,
                escape(ns),
                escape(&self.name),
                self.policy
            ),
            None => write!(f, "{} {} ({})", self.kind, escape(&self.name), self.policy),
        }
    }
}

fn redact<S: Serializer>(p: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(_) => s.serialize_str(REDACTED),
        None => s.serialize_none(),
    }
}

fn unredact<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(Secret::new))
}

impl Intent {
    /// Routes that are rendered: every route of a family some neighbor carries.
    pub fn announced(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter().filter(|r| !r.unreachable)
    }

    /// Sorts every list and recomputes the hash ([`Intent::compute_hash`]).
    pub fn seal(&mut self) {
        self.neighbors.sort_by_key(|n| n.address);
        self.routes.sort_by_key(|r| (r.family, r.prefix));
        for r in &mut self.routes {
            r.sources.sort();
            r.sources.dedup();
        }
        self.diagnostics.sort_by(diagnostic_order);
        self.diagnostics.dedup();
        self.hash = self.compute_hash();
    }

    /// The hash of this (sealed) intent, from its parts as [`HashParts`] defines it.
    pub fn compute_hash(&self) -> String {
        let mut routes = DigestSum::default();
        for r in &self.routes {
            routes.add(&route_digest(r));
        }
        let mut diagnostics = DigestSum::default();
        for d in &self.diagnostics {
            diagnostics.add(&diagnostic_digest(d));
        }
        HashParts {
            header: header_digest(
                &self.api_version,
                &self.kind,
                &self.speaker,
                &self.bgp,
                &self.neighbors,
            ),
            routes,
            diagnostics,
        }
        .hash(&self.speaker, self.bgp.password.as_ref())
    }

    /// The document as JSON, with the password in clear only when `show_secrets` is set.
    pub fn to_json_value(&self, show_secrets: bool) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if show_secrets && let Some(p) = &self.bgp.password {
            value["bgp"]["password"] = serde_json::Value::String(p.expose().to_string());
        }
        value
    }

    pub fn to_json(&self, show_secrets: bool) -> String {
        let mut s =
            serde_json::to_string_pretty(&self.to_json_value(show_secrets)).unwrap_or_default();
        s.push('\n');
        s
    }

    pub fn to_yaml(&self, show_secrets: bool) -> String {
        crate::source::yaml::to_string(&self.to_json_value(show_secrets))
    }
}

/// The order of diagnostics in an intent: by object, then level, then message.
pub fn diagnostic_order(a: &Diagnostic, b: &Diagnostic) -> std::cmp::Ordering {
    (&a.object, a.level, &a.message).cmp(&(&b.object, b.level, &b.message))
}

/// An order-independent combination of 256-bit digests: their count and their sum modulo 2^256
/// (an additive multiset hash). Adding and removing one element is O(1), which is what lets the
/// incremental engine (`crate::engine`) keep the intent's hash current per change instead of
/// hashing 100k routes again; the elements of an intent are distinct (routes by prefix,
/// diagnostics deduplicated), so the sum stands for the set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DigestSum {
    count: u64,
    limbs: [u64; 4],
}

impl DigestSum {
    pub fn add(&mut self, digest: &[u8; 32]) {
        self.count = self.count.wrapping_add(1);
        let mut carry = false;
        for (i, limb) in self.limbs.iter_mut().enumerate() {
            let d = u64::from_le_bytes(limb_bytes(digest, i));
            let (s1, c1) = limb.overflowing_add(d);
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            *limb = s2;
            carry = c1 || c2;
        }
    }

    pub fn sub(&mut self, digest: &[u8; 32]) {
        self.count = self.count.wrapping_sub(1);
        let mut borrow = false;
        for (i, limb) in self.limbs.iter_mut().enumerate() {
            let d = u64::from_le_bytes(limb_bytes(digest, i));
            let (s1, b1) = limb.overflowing_sub(d);
            let (s2, b2) = s1.overflowing_sub(u64::from(borrow));
            *limb = s2;
            borrow = b1 || b2;
        }
    }

    fn bytes(&self) -> [u8; 40] {
        let mut out = [0u8; 40];
        out[..8].copy_from_slice(&self.count.to_le_bytes());
        for (i, limb) in self.limbs.iter().enumerate() {
            out[8 + i * 8..16 + i * 8].copy_from_slice(&limb.to_le_bytes());
        }
        out
    }
}

fn limb_bytes(digest: &[u8; 32], i: usize) -> [u8; 8] {
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[i * 8..i * 8 + 8]);
    b
}

/// What the intent's `hash` is computed from (DESIGN section 4: "of everything above, for change
/// detection"): the SHA-256 of the header (apiVersion, kind, speaker, bgp with the password
/// redacted, neighbors) as canonical JSON, the [`DigestSum`] of each route's SHA-256 (its JSON:
/// prefix, family, next hop, sources, reachability), the same of each diagnostic's, and a slow
/// digest of the password ([`password_digest`]). The final hash is the SHA-256 of these, so any
/// change to any part changes it, and the full compile and the incremental engine compute the
/// same value from the same document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HashParts {
    pub header: [u8; 32],
    pub routes: DigestSum,
    pub diagnostics: DigestSum,
}

impl HashParts {
    /// The `sha256:` hash. The password digest is salted with the speaker's router ID and AS, so
    /// that a password change changes the hash (the daemons reset sessions for it; `diff` must
    /// not call it "no changes") while the printed hash reveals nothing a guesser could test
    /// cheaply.
    pub fn hash(&self, speaker: &Speaker, password: Option<&Secret>) -> String {
        let mut h = Sha256::new();
        h.update(b"bgpgen/v1 intent hash\nheader:");
        h.update(self.header);
        h.update(b"\nroutes:");
        h.update(self.routes.bytes());
        h.update(b"\ndiagnostics:");
        h.update(self.diagnostics.bytes());
        if let Some(p) = password {
            let salt = format!(
                "bgpgen/v1 intent password {} {}",
                speaker.router_id, speaker.local_as
            );
            h.update(b"\npassword:");
            h.update(password_digest(p, &salt));
        }
        let digest = h.finalize();
        let mut hex = String::with_capacity(7 + 64);
        hex.push_str("sha256:");
        for byte in digest.iter() {
            use std::fmt::Write as _;
            let _ = write!(hex, "{byte:02x}");
        }
        hex
    }
}

/// The header of the intent as the hash sees it (the same field names as the document).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Header<'a> {
    api_version: &'a str,
    kind: &'a str,
    speaker: &'a Speaker,
    bgp: &'a Bgp,
    neighbors: &'a [Neighbor],
}

/// SHA-256 of the header's canonical JSON (the password redacted; it enters the hash as
/// [`password_digest`]).
pub fn header_digest(
    api_version: &str,
    kind: &str,
    speaker: &Speaker,
    bgp: &Bgp,
    neighbors: &[Neighbor],
) -> [u8; 32] {
    digest_json(&Header {
        api_version,
        kind,
        speaker,
        bgp,
        neighbors,
    })
}

/// SHA-256 of one route's canonical JSON (sources sorted, as in a sealed intent).
pub fn route_digest(route: &Route) -> [u8; 32] {
    digest_json(route)
}

/// SHA-256 of one diagnostic's canonical JSON.
pub fn diagnostic_digest(diagnostic: &Diagnostic) -> [u8; 32] {
    digest_json(diagnostic)
}

fn digest_json<T: Serialize + ?Sized>(value: &T) -> [u8; 32] {
    // Serializing plain structs of strings, numbers and addresses cannot fail.
    let mut hasher = HashWriter(Sha256::new());
    let _ = serde_json::to_writer(&mut hasher, value);
    hasher.0.finalize().into()
}

/// PBKDF2-HMAC-SHA256 rounds of [`password_digest`]: tens of milliseconds per guess (computed
/// once per password and speaker, then memoized), where a bare SHA-256 would let a GPU test
/// billions of guesses a second against the printed hash. It cannot make a weak password strong
/// (and TCP MD5 signatures on the wire allow fast guessing anyway), but the hash, printed by
/// `compile`, served on /intent and logged, is not the weakest place.
const PASSWORD_ROUNDS: u32 = 100_000;

/// The digest of a password that goes into the hash instead of the password: a slow, salted key
/// derivation (not a keyed MAC with a key of bgpgen's own: any constant key is public, and a
/// random one would make `compile` non-deterministic). The salt (router ID and AS) makes a
/// precomputed table useless across speakers. Memoized: the sidecar seals an intent per change.
fn password_digest(password: &Secret, salt: &str) -> [u8; 32] {
    use std::sync::Mutex;
    static LAST: Mutex<Option<(String, Secret, [u8; 32])>> = Mutex::new(None);
    if let Ok(last) = LAST.lock()
        && let Some((s, p, d)) = last.as_ref()
        && s == salt
        && p == password
    {
        return *d;
    }
    let digest = pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(
        password.expose().as_bytes(),
        salt.as_bytes(),
        PASSWORD_ROUNDS,
    );
    if let Ok(mut last) = LAST.lock() {
        *last = Some((salt.to_string(), password.clone(), digest));
    }
    digest
}

/// Feeds what is written into a SHA-256.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
