//! The part of a manifest the rules read, whatever its kind: one lean record type deserialized
//! straight from the text, so that parsing skips everything else (containers, managedFields,
//! owner references) at scanning speed instead of building a tree of every field and then the
//! full Kubernetes type. Every field is optional and only the fields bgpgen uses are typed, so a
//! malformed field the rules never read is not an error.
//!
//! The fields of different kinds share one record: they do not collide in name with different
//! types among the kinds bgpgen reads, and an unrelated kind whose field of the same name has
//! another type fails the fast path, which then falls back to the object-by-object reader
//! (`manifests.rs`): it costs time, never a wrong result.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeAddress, NodeSpec, NodeStatus, Pod, PodIP, PodSpec, PodStatus, Service, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::kubeovn::{
    self, Condition, IptablesEip, IptablesEipSpec, IptablesEipStatus, Subnet, SubnetSpec,
    SubnetStatus, VpcBgpSpeaker, VpcNatGateway, VpcNatGatewaySpec,
};
use crate::snapshot::{
    self, EipInfo, FieldError, GatewayInfo, NodeInfo, Object, PodInfo, ServiceInfo, SubnetInfo,
};

/// One object: the union of what the rules read of Nodes, Pods, Services, Subnets, IptablesEIPs
/// and VpcNatGateways.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnyObject {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub metadata: Option<AnyMeta>,
    pub spec: Option<AnySpec>,
    pub status: Option<AnyStatus>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnyMeta {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub uid: Option<String>,
    /// Only the annotations the rules read (a Kube-OVN pod carries about ten; two or three
    /// matter): the others are skipped unread.
    #[serde(default, deserialize_with = "read_annotations")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "read_labels")]
    pub labels: Option<BTreeMap<String, String>>,
    pub deletion_timestamp: Option<Time>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnySpec {
    // Pod
    pub node_name: Option<String>,
    pub host_network: Option<bool>,
    pub restart_policy: Option<String>,
    // Service
    #[serde(rename = "type")]
    pub type_: Option<String>,
    #[serde(rename = "clusterIP")]
    pub cluster_ip: Option<String>,
    #[serde(rename = "clusterIPs")]
    pub cluster_ips: Option<Vec<String>>,
    // Subnet
    pub cidr_block: Option<String>,
    pub nat_outgoing: Option<bool>,
    // IptablesEIP
    pub v4ip: Option<String>,
    pub v6ip: Option<String>,
    pub nat_gw_dp: Option<String>,
    // VpcNatGateway
    pub bgp_speaker: Option<VpcBgpSpeaker>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnyStatus {
    // Pod
    pub phase: Option<String>,
    pub reason: Option<String>,
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    #[serde(rename = "podIPs")]
    pub pod_ips: Option<Vec<IpEntry>>,
    // Node
    pub addresses: Option<Vec<Address>>,
    // Subnet (and the conditions of other kinds, same shape)
    pub conditions: Option<Vec<Condition>>,
    // IptablesEIP
    pub ready: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct IpEntry {
    #[serde(default)]
    pub ip: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct Address {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub address: String,
}

fn read_annotations<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    d.deserialize_option(FilteredMap(snapshot::is_read_annotation))
}

fn read_labels<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    d.deserialize_option(FilteredMap(snapshot::is_read_label))
}

/// The keys of one map seen so far, to refuse a repeated one: a list while the map is small (most
/// are), a hash set beyond, so that a map of a million keys costs no quadratic time.
#[derive(Default)]
pub(crate) struct KeySet<'de> {
    few: Vec<Cow<'de, str>>,
    many: std::collections::HashSet<Cow<'de, str>>,
}

impl<'de> KeySet<'de> {
    /// False when `key` was already there.
    pub(crate) fn insert(&mut self, key: Cow<'de, str>) -> bool {
        if !self.many.is_empty() {
            return self.many.insert(key);
        }
        if self.few.contains(&key) {
            return false;
        }
        self.few.push(key);
        if self.few.len() > 16 {
            self.many.extend(self.few.drain(..));
        }
        true
    }
}

/// A string map keeping only the keys `keep` accepts.
struct FilteredMap(fn(&str) -> bool);

impl<'de> Visitor<'de> for FilteredMap {
    type Value = Option<BTreeMap<String, String>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of strings")
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        // Every key is compared, kept or not: a repeated key is an error (the reader that
        // catches it names it), never last-wins.
        let mut seen = KeySet::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate key {}",
                    crate::text::quote(&key)
                )));
            }
            if (self.0)(&key) {
                out.insert(key.into_owned(), map.next_value::<String>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Some(out))
    }
}

impl From<AnyMeta> for ObjectMeta {
    fn from(m: AnyMeta) -> ObjectMeta {
        ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            uid: m.uid,
            annotations: m.annotations,
            labels: m.labels,
            deletion_timestamp: m.deletion_timestamp,
            ..ObjectMeta::default()
        }
    }
}

impl AnyObject {
    /// Whether this is one of the kinds the rules read.
    pub fn is_used(api_version: &str, kind: &str) -> bool {
        matches!(
            (api_version, kind),
            ("v1", "Node" | "Pod" | "Service")
                | (
                    kubeovn::API_VERSION,
                    "Subnet" | "IptablesEIP" | "VpcNatGateway"
                )
        )
    }

    /// `Pod default/web-1`, for messages.
    pub fn describe(&self) -> String {
        let kind = self.kind.as_deref().unwrap_or("object");
        let meta = self.metadata.as_ref();
        let name = meta.and_then(|m| m.name.as_deref()).unwrap_or("<unnamed>");
        match meta.and_then(|m| m.namespace.as_deref()) {
            Some(ns) => format!("{kind} {ns}/{name}"),
            None => format!("{kind} {name}"),
        }
    }

    /// The snapshot record: `None` for kinds the rules do not use and for mappings without `kind`.
    /// The Kubernetes types are built with only the fields the rules read, so that the one
    /// conversion of each kind (shared with the cluster source) applies.
    pub fn into_object(self) -> Option<Result<Object, FieldError>> {
        let (api_version, kind) = (self.api_version.as_deref()?, self.kind.as_deref()?);
        if !Self::is_used(api_version, kind) {
            return None;
        }
        let kind = kind.to_string();
        let metadata: ObjectMeta = self.metadata.map(Into::into).unwrap_or_default();
        let spec = self.spec;
        let status = self.status;
        Some(match kind.as_str() {
            "Node" => NodeInfo::from_k8s(&Node {
                metadata,
                spec: Some(NodeSpec::default()),
                status: status.map(|s| NodeStatus {
                    addresses: s.addresses.map(|a| {
                        a.into_iter()
                            .map(|a| NodeAddress {
                                type_: a.type_,
                                address: a.address,
                            })
                            .collect()
                    }),
                    ..NodeStatus::default()
                }),
            })
            .map(Object::Node),
            "Pod" => PodInfo::from_k8s(&Pod {
                metadata,
                spec: spec.map(|s| PodSpec {
                    node_name: s.node_name,
                    host_network: s.host_network,
                    restart_policy: s.restart_policy,
                    ..PodSpec::default()
                }),
                status: status.map(|s| PodStatus {
                    phase: s.phase,
                    reason: s.reason,
                    pod_ip: s.pod_ip,
                    pod_ips: s
                        .pod_ips
                        .map(|ips| ips.into_iter().map(|e| PodIP { ip: e.ip }).collect()),
                    ..PodStatus::default()
                }),
            })
            .map(Object::Pod),
            "Service" => ServiceInfo::from_k8s(&Service {
                metadata,
                spec: spec.map(|s| ServiceSpec {
                    type_: s.type_,
                    cluster_ip: s.cluster_ip,
                    cluster_ips: s.cluster_ips,
                    ..ServiceSpec::default()
                }),
                status: None,
            })
            .map(Object::Service),
            "Subnet" => SubnetInfo::from_kubeovn(&Subnet {
                metadata,
                spec: spec
                    .map(|s| SubnetSpec {
                        cidr_block: s.cidr_block.unwrap_or_default(),
                        nat_outgoing: s.nat_outgoing.unwrap_or_default(),
                        ..SubnetSpec::default()
                    })
                    .unwrap_or_default(),
                status: status.map(|s| SubnetStatus {
                    conditions: s.conditions.unwrap_or_default(),
                }),
            })
            .map(Object::Subnet),
            "IptablesEIP" => EipInfo::from_kubeovn(&IptablesEip {
                metadata,
                spec: spec
                    .map(|s| IptablesEipSpec {
                        v4ip: s.v4ip.unwrap_or_default(),
                        v6ip: s.v6ip.unwrap_or_default(),
                        nat_gw_dp: s.nat_gw_dp.unwrap_or_default(),
                    })
                    .unwrap_or_default(),
                status: IptablesEipStatus {
                    ready: status.and_then(|s| s.ready).unwrap_or_default(),
                },
            })
            .map(Object::Eip),
            _ => GatewayInfo::from_kubeovn(&VpcNatGateway {
                metadata,
                spec: VpcNatGatewaySpec {
                    bgp_speaker: spec.and_then(|s| s.bgp_speaker),
                },
            })
            .map(Object::Gateway),
        })
    }
}
