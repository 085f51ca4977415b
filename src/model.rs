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
