//! Typed values shared by every stage: AS numbers, address families, announcement policies and
//! object references. Parsed once at the edge; nothing downstream handles raw strings for these.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// A BGP autonomous system number (4-octet, RFC 6793).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Asn(pub u32);

impl fmt::Display for Asn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The BGP address families bgpgen announces (AFI/SAFI unicast only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Family {
    #[serde(rename = "ipv4-unicast")]
    Ipv4Unicast,
    #[serde(rename = "ipv6-unicast")]
    Ipv6Unicast,
}

impl Family {
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::Ipv4Unicast,
            IpAddr::V6(_) => Family::Ipv6Unicast,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Family::Ipv4Unicast => "ipv4-unicast",
            Family::Ipv6Unicast => "ipv6-unicast",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The announcement policy of Kube-OVN's speaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Announced by every speaker.
    Cluster,
    /// Announced only by the speaker on the node hosting the pod.
    Local,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::Cluster => "cluster",
            Policy::Local => "local",
        })
    }
}

/// The annotation key Kube-OVN uses on every object kind.
pub const BGP_ANNOTATION: &str = "ovn.kubernetes.io/bgp";

/// The value of the `ovn.kubernetes.io/bgp` annotation, parsed at the edge. The spelling is kept
/// because Services accept only `true`/`yes` while Pods and Subnets also accept `cluster`/`local`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BgpAnnotation {
    True,
    Yes,
    Cluster,
    Local,
    /// Any other value, kept so that diagnostics can quote it (at most
    /// [`crate::text::QUOTE_CHARS`] characters: a huge value costs nothing while it waits).
    Invalid(String),
}

impl BgpAnnotation {
    pub fn parse(value: &str) -> BgpAnnotation {
        match value {
            "true" => BgpAnnotation::True,
            "yes" => BgpAnnotation::Yes,
            "cluster" => BgpAnnotation::Cluster,
            "local" => BgpAnnotation::Local,
            other => BgpAnnotation::Invalid(crate::text::keep(other).into()),
        }
    }

    /// The policy for Pods and Subnets, or `None` for an invalid value.
    pub fn policy(&self) -> Option<Policy> {
        match self {
            BgpAnnotation::True | BgpAnnotation::Yes | BgpAnnotation::Cluster => {
                Some(Policy::Cluster)
            }
            BgpAnnotation::Local => Some(Policy::Local),
            BgpAnnotation::Invalid(_) => None,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            BgpAnnotation::True => "true",
            BgpAnnotation::Yes => "yes",
            BgpAnnotation::Cluster => "cluster",
            BgpAnnotation::Local => "local",
            BgpAnnotation::Invalid(s) => s,
        }
    }
}

/// The object kinds bgpgen reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    Node,
    Pod,
    Service,
    Subnet,
    #[serde(rename = "IptablesEIP")]
    IptablesEip,
    VpcNatGateway,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Node => "Node",
            Kind::Pod => "Pod",
            Kind::Service => "Service",
            Kind::Subnet => "Subnet",
            Kind::IptablesEip => "IptablesEIP",
            Kind::VpcNatGateway => "VpcNatGateway",
        }
    }

    pub fn is_namespaced(self) -> bool {
        matches!(self, Kind::Pod | Kind::Service)
    }

    /// Parses the kind names and short names a `kubectl` user would type.
    pub fn parse_loose(s: &str) -> Option<Kind> {
        match s.to_ascii_lowercase().as_str() {
            "node" | "nodes" | "no" => Some(Kind::Node),
            "pod" | "pods" | "po" => Some(Kind::Pod),
            "service" | "services" | "svc" => Some(Kind::Service),
            "subnet" | "subnets" => Some(Kind::Subnet),
            "iptableseip" | "iptables-eip" | "iptables-eips" | "eip" | "eips" => {
                Some(Kind::IptablesEip)
            }
            "vpcnatgateway" | "vpc-nat-gateway" | "vpc-nat-gateways" | "natgw" => {
                Some(Kind::VpcNatGateway)
            }
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reference to one Kubernetes object: `Pod/default/sample`, `Subnet/ovn-default`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn new(kind: Kind, namespace: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            kind,
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }

    pub fn cluster(kind: Kind, name: &str) -> ObjectRef {
        ObjectRef::new(kind, None, name)
    }

    pub fn namespaced(kind: Kind, namespace: &str, name: &str) -> ObjectRef {
        ObjectRef::new(kind, Some(namespace), name)
    }

    /// `(namespace, name)` as a key of [`crate::snapshot::Snapshot::pods`] and `services`.
    pub fn pair(&self) -> (Name, Name) {
        (
            Name::new(self.namespace.as_deref().unwrap_or_default()),
            Name::new(&self.name),
        )
    }

    /// `default/sample` or `ovn-default`, escaped for printing.
    pub fn key(&self) -> String {
        use crate::text::escape;
        match &self.namespace {
            Some(ns) => format!("{}/{}", escape(ns), escape(&self.name)),
            None => escape(&self.name).into_owned(),
        }
    }
}

impl fmt::Display for ObjectRef {
    /// Names are escaped (`crate::text::escape`): a name is text from the input.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::text::escape;
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, escape(ns), escape(&self.name)),
            None => write!(f, "{}/{}", self.kind, escape(&self.name)),
        }
    }
}

/// A BGP password. Its `Debug` never shows the value, so it cannot leak into logs by accident;
/// code that needs the value calls [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A name held by many records (a namespace, node, subnet, provider) or by a record and the
/// maps and routes that refer to it: one shared allocation instead of a copy per holder. At
/// 100,000 pods there are about 100 namespaces, 1,000 nodes and 1,000 subnets; [`Name::interned`]
/// makes each of them one string. Compares, orders and hashes as the string it holds, so maps
/// keyed by `Name` are looked up with a `&str` and iterate in the same order as with `String`.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Name(std::sync::Arc<str>);

/// The string's order, with one shortcut: two holders of the same allocation (an interned
/// namespace in the keys of 100,000 pods) are equal without comparing bytes. (`Arc`'s own
/// equality already takes it; its order does not.)
impl Ord for Name {
    fn cmp(&self, other: &Name) -> std::cmp::Ordering {
        if std::sync::Arc::ptr_eq(&self.0, &other.0) {
            return std::cmp::Ordering::Equal;
        }
        self.0.as_ref().cmp(other.0.as_ref())
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Name {
    /// A name of its own (a pod's name: unique, nothing to share it with but its own holders).
    pub fn new(s: &str) -> Name {
        Name(std::sync::Arc::from(s))
    }

    /// The one shared copy of `s` ([`intern`]).
    pub fn interned(s: &str) -> Name {
        Name(intern(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name::new(s)
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        Name(std::sync::Arc::from(s))
    }
}

impl From<&String> for Name {
    fn from(s: &String) -> Name {
        Name::new(s)
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        String::deserialize(d).map(Name::from)
    }
}

/// The process-wide set of interned strings. A string nothing else holds any more is dropped
/// from it when the set has doubled since the last sweep (amortized O(1) per call), so names of
/// namespaces and nodes long gone do not accumulate in a sidecar that runs for months.
struct Interner {
    set: std::collections::HashSet<std::sync::Arc<str>>,
    sweep_at: usize,
}

static INTERNER: std::sync::LazyLock<std::sync::Mutex<Interner>> = std::sync::LazyLock::new(|| {
    std::sync::Mutex::new(Interner {
        set: std::collections::HashSet::new(),
        sweep_at: 1024,
    })
});

/// The shared copy of `s`: equal strings interned anywhere in the process are one allocation.
pub fn intern(s: &str) -> std::sync::Arc<str> {
    // A panic while the lock was held cannot leave the set inconsistent (each operation on it is
    // one call), so a poisoned lock is used as it is.
    let mut interner = INTERNER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(shared) = interner.set.get(s) {
        return shared.clone();
    }
    if interner.set.len() >= interner.sweep_at {
        // Under the lock nobody can take a new holder of an entry whose only holder is the set.
        interner.set.retain(|a| std::sync::Arc::strong_count(a) > 1);
        interner.sweep_at = (interner.set.len() * 2).max(1024);
    }
    let shared: std::sync::Arc<str> = std::sync::Arc::from(s);
    interner.set.insert(shared.clone());
    shared
}

/// A Kubernetes `metadata.uid`: 16 bytes for the UUID the API server assigns (instead of its
/// 36-character text), the text itself for anything else a hand-written manifest may hold.
/// Shown exactly as it was written.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Uid {
    /// A UUID written in the canonical form (lowercase hex, `8-4-4-4-12`).
    Uuid([u8; 16]),
    Other(Box<str>),
}

impl Uid {
    pub fn new(s: &str) -> Uid {
        Uid::parse_uuid(s).map_or_else(|| Uid::Other(s.into()), Uid::Uuid)
    }

    fn parse_uuid(s: &str) -> Option<[u8; 16]> {
        let b = s.as_bytes();
        if b.len() != 36 {
            return None;
        }
        let mut out = [0u8; 16];
        let mut n = 0;
        let mut i = 0;
        while i < 36 {
            if matches!(i, 8 | 13 | 18 | 23) {
                if b[i] != b'-' {
                    return None;
                }
                i += 1;
                continue;
            }
            // Lowercase only: the text must come back exactly as written.
            let hex = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            };
            out[n] = (hex(b[i])? << 4) | hex(b[i + 1])?;
            n += 1;
            i += 2;
        }
        Some(out)
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uid::Uuid(b) => {
                for (i, byte) in b.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
            Uid::Other(s) => f.write_str(s),
        }
    }
}

impl fmt::Debug for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uid({self})")
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn uids_come_back_as_written() {
        for s in [
            "3f1a6c2e-9b7d-4e21-8c5a-0d2f4b6a8e10",
            "3F1A6C2E-9B7D-4E21-8C5A-0D2F4B6A8E10",
            "uid-p1",
            "",
            "3f1a6c2e-9b7d-4e21-8c5a-0d2f4b6a8e1",
            "3f1a6c2e+9b7d-4e21-8c5a-0d2f4b6a8e10",
        ] {
            assert_eq!(Uid::new(s).to_string(), s);
        }
        assert!(matches!(
            Uid::new("3f1a6c2e-9b7d-4e21-8c5a-0d2f4b6a8e10"),
            Uid::Uuid(_)
        ));
        assert!(matches!(
            Uid::new("3F1A6C2E-9B7D-4E21-8C5A-0D2F4B6A8E10"),
            Uid::Other(_)
        ));
    }

    #[test]
    fn interned_names_share_one_string_and_compare_as_strings() {
        let a = Name::interned("kube-system");
        let b = Name::interned(&String::from("kube-system"));
        assert!(std::sync::Arc::ptr_eq(&a.0, &b.0));
        assert_eq!(a, "kube-system");
        assert!(Name::new("a") < Name::new("b"));
        let map: std::collections::BTreeMap<Name, u8> = [(a.clone(), 1)].into();
        assert_eq!(map.get("kube-system"), Some(&1));
    }
}
