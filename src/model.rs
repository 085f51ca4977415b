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
    /// Any other value, kept verbatim so that diagnostics can quote it.
    Invalid(String),
}

impl BgpAnnotation {
    pub fn parse(value: &str) -> BgpAnnotation {
        match value {
            "true" => BgpAnnotation::True,
            "yes" => BgpAnnotation::Yes,
            "cluster" => BgpAnnotation::Cluster,
            "local" => BgpAnnotation::Local,
            other => BgpAnnotation::Invalid(other.to_string()),
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

    /// `default/sample` or `ovn-default`.
    pub fn key(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
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

/// Parses a CIDR as strictly as an IP address: `ADDRESS/LEN` with an address std (and Go's
/// `net.ParseIP`) accepts, so no leading zeros in IPv4 octets (`010.16.0.0`), and a decimal
/// prefix length without leading zeros (`/08`) within the family's bits. Host bits are not
/// checked here.
pub fn parse_cidr_strict(s: &str) -> Option<ipnet::IpNet> {
    let (addr, len) = s.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    if len.is_empty()
        || !len.bytes().all(|b| b.is_ascii_digit())
        || (len.len() > 1 && len.starts_with('0'))
    {
        return None;
    }
    let len: u8 = len.parse().ok()?;
    ipnet::IpNet::new(addr, len).ok()
}

#[cfg(test)]
mod cidr_tests {
    use super::parse_cidr_strict;

    #[test]
    fn cidrs_as_strict_as_addresses() {
        assert!(parse_cidr_strict("10.16.0.0/16").is_some());
        assert!(parse_cidr_strict("fd00:10:16::/64").is_some());
        assert!(parse_cidr_strict("0.0.0.0/0").is_some());
        for bad in [
            "010.16.0.0/16",
            "10.16.0.0/08",
            "10.16.0.0/",
            "10.16.0.0",
            "10.16.0.0/33",
            "10.16.0.0/+8",
            "fd00::/129",
            "10.16.0.0/ 16",
        ] {
            assert!(parse_cidr_strict(bad).is_none(), "{bad}");
        }
    }
}
