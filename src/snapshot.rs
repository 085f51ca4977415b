//! The cluster state the announcement rules need, and nothing more: a compact record per object
//! (a full `Pod` costs ~36 KB in memory, this record a few hundred bytes). Both sources (manifest
//! files and the Kubernetes API) build it through the conversions here, so every field is parsed
//! and validated once, at the edge.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use thiserror::Error;

use crate::address;
use crate::duration::parse_go_duration;
use crate::kubeovn::{IptablesEip, Subnet, VpcNatGateway};
use crate::model::{BGP_ANNOTATION, BgpAnnotation, Kind, Name, ObjectRef, Uid};
use crate::text;

/// Label Kube-OVN puts on an IptablesEIP to name the NAT gateway it is attached to.
pub const NAT_GW_NAME_LABEL: &str = "ovn.kubernetes.io/vpc-nat-gw-name";
/// Suffixes of the per-provider pod annotations (`<provider>.kubernetes.io/ip_address`).
const IP_ADDRESS_SUFFIX: &str = ".kubernetes.io/ip_address";
const LOGICAL_SWITCH_SUFFIX: &str = ".kubernetes.io/logical_switch";
/// The default provider's logical switch annotation.
pub const LOGICAL_SWITCH_ANNOTATION: &str = "ovn.kubernetes.io/logical_switch";

/// Whether the conversions below read this annotation: readers may drop the others.
pub fn is_read_annotation(key: &str) -> bool {
    key == BGP_ANNOTATION
        || key.ends_with(IP_ADDRESS_SUFFIX)
        || key.ends_with(LOGICAL_SWITCH_SUFFIX)
}

/// Whether the conversions below read this label.
pub fn is_read_label(key: &str) -> bool {
    key == NAT_GW_NAME_LABEL
}

/// A field of an object that does not hold what it must. Shown escaped and bounded: the field
/// name can hold an annotation key, the message a parser's quote of the value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}: {}", text::escape(field), text::message(message))]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn field_error(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Where the snapshot came from; a few rules differ (a Subnet without status is ready in a
/// manifest written by hand, but not yet reconciled in a live cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    #[default]
    Manifests,
    Cluster,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub origin: Origin,
    pub nodes: BTreeMap<String, NodeInfo>,
    /// Keyed by (namespace, name); the key shares its strings with the record.
    pub pods: BTreeMap<(Name, Name), PodInfo>,
    pub services: BTreeMap<(Name, Name), ServiceInfo>,
    pub subnets: BTreeMap<String, SubnetInfo>,
    pub eips: BTreeMap<String, EipInfo>,
    pub gateways: BTreeMap<String, GatewayInfo>,
    /// What the source skipped and why (a FIFO in a watched directory, a symlink loop), already
    /// escaped: compile turns each into a warning.
    pub input_warnings: Vec<String>,
}

/// One object of any kind, as the sources hand it to the snapshot.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Node(NodeInfo),
    Pod(PodInfo),
    Service(ServiceInfo),
    Subnet(SubnetInfo),
    Eip(EipInfo),
    Gateway(GatewayInfo),
}

impl Object {
    pub fn object_ref(&self) -> ObjectRef {
        match self {
            Object::Node(n) => ObjectRef::cluster(Kind::Node, &n.name),
            Object::Pod(p) => ObjectRef::namespaced(Kind::Pod, &p.namespace, &p.name),
            Object::Service(s) => ObjectRef::namespaced(Kind::Service, &s.namespace, &s.name),
            Object::Subnet(s) => ObjectRef::cluster(Kind::Subnet, &s.name),
            Object::Eip(e) => ObjectRef::cluster(Kind::IptablesEip, &e.name),
            Object::Gateway(g) => ObjectRef::cluster(Kind::VpcNatGateway, &g.name),
        }
    }
}

/// Two different definitions of the same object.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{object} is defined twice with different contents")]
pub struct Conflict {
    pub object: ObjectRef,
}

impl Snapshot {
    /// The pod `namespace/name`, if held.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<&PodInfo> {
        self.pods.get(&(Name::new(namespace), Name::new(name)))
    }

    /// The service `namespace/name`, if held.
    pub fn service(&self, namespace: &str, name: &str) -> Option<&ServiceInfo> {
        self.services.get(&(Name::new(namespace), Name::new(name)))
    }

    pub fn new(origin: Origin) -> Snapshot {
        Snapshot {
            origin,
            ..Snapshot::default()
        }
    }

    /// Adds or replaces an object (watch events replace; use [`Snapshot::insert_new`] for
    /// manifests, where a second different definition is a mistake).
    pub fn upsert(&mut self, object: Object) {
        match object {
            Object::Node(n) => {
                self.nodes.insert(n.name.clone(), n);
            }
            Object::Pod(p) => {
                self.pods.insert(p.key(), p);
            }
            Object::Service(s) => {
                self.services.insert(s.key(), s);
            }
            Object::Subnet(s) => {
                self.subnets.insert(s.name.clone(), s);
            }
            Object::Eip(e) => {
                self.eips.insert(e.name.clone(), e);
            }
            Object::Gateway(g) => {
                self.gateways.insert(g.name.clone(), g);
            }
        }
    }

    /// Adds an object; an identical duplicate is accepted, a different one is a conflict, so the
    /// result never depends on the order the files were read in.
    pub fn insert_new(&mut self, object: Object) -> Result<(), Conflict> {
        let kept = match object {
            Object::Node(n) => put_new(&mut self.nodes, n.name.clone(), n).map_err(Object::Node),
            Object::Pod(p) => put_new(&mut self.pods, p.key(), p).map_err(Object::Pod),
            Object::Service(s) => put_new(&mut self.services, s.key(), s).map_err(Object::Service),
            Object::Subnet(s) => {
                put_new(&mut self.subnets, s.name.clone(), s).map_err(Object::Subnet)
            }
            Object::Eip(e) => put_new(&mut self.eips, e.name.clone(), e).map_err(Object::Eip),
            Object::Gateway(g) => {
                put_new(&mut self.gateways, g.name.clone(), g).map_err(Object::Gateway)
            }
        };
        kept.map_err(|object| Conflict {
            object: object.object_ref(),
        })
    }
}

/// Inserts `value` unless `key` is held: an equal value held is kept, a different one is handed
/// back. One search of the map (a lookup then an insert searched 100,000 pod keys twice).
fn put_new<K: Ord, V: PartialEq>(map: &mut BTreeMap<K, V>, key: K, value: V) -> Result<(), V> {
    use std::collections::btree_map::Entry;
    match map.entry(key) {
        Entry::Vacant(e) => {
            e.insert(value);
            Ok(())
        }
        Entry::Occupied(e) if *e.get() == value => Ok(()),
        Entry::Occupied(_) => Err(value),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub internal_ips: Vec<IpAddr>,
}

/// Whether Kube-OVN considers a pod alive (its IP stays allocated), as kube-ovn's `isPodAlive`
/// (`pkg/speaker/utils.go`) decides: only these three cases are not. A pod being deleted is still
/// alive: it may serve during its grace period, and its IP is released when it is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    /// Phase Succeeded and restartPolicy other than Always.
    Succeeded,
    /// Phase Failed and restartPolicy Never.
    Failed,
    /// Phase Failed with reason Evicted.
    Evicted,
}

impl Liveness {
    /// kube-ovn's isPodAlive. An absent restartPolicy compares as the empty string, as in Go: the
    /// API server always sets it, so only hand-written manifests lack it.
    pub fn of(phase: &str, reason: &str, restart_policy: &str) -> Liveness {
        if phase == "Succeeded" && restart_policy != "Always" {
            Liveness::Succeeded
        } else if phase == "Failed" && restart_policy == "Never" {
            Liveness::Failed
        } else if phase == "Failed" && reason == "Evicted" {
            Liveness::Evicted
        } else {
            Liveness::Alive
        }
    }
}

/// One network attachment of a pod: the provider's IPs and the subnet (logical switch) they are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// `ovn` for the default network, `<nad>.<namespace>.ovn` for attachments.
    pub provider: Name,
    pub subnet: Option<Name>,
    pub ips: Box<[IpAddr]>,
    /// True when the IPs came from `status.podIPs` rather than the Kube-OVN annotation.
    pub from_status: bool,
    /// Values that are not IP addresses (at most [`text::QUOTE_CHARS`] characters each), kept
    /// for the warning: the object is not refused for them, its other addresses still count.
    pub unparsable: Box<[Box<str>]>,
}

impl Attachment {
    /// The field the IPs came from, for messages.
    pub fn field(&self) -> String {
        if self.from_status {
            "status.podIPs".to_string()
        } else {
            format!("metadata.annotations[{}{IP_ADDRESS_SUFFIX}]", self.provider)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    /// `metadata.uid`, so that Events attach to the object (`kubectl describe` matches on it).
    pub uid: Option<Uid>,
    /// Interned, as are the node, subnet and provider names: ~100 namespaces, ~1,000 nodes and
    /// subnets over 100,000 pods.
    pub namespace: Name,
    pub name: Name,
    pub node: Option<Name>,
    pub bgp: Option<BgpAnnotation>,
    pub liveness: Liveness,
    pub host_network: bool,
    pub attachments: Box<[Attachment]>,
}

impl PodInfo {
    /// The key of [`Snapshot::pods`].
    pub fn key(&self) -> (Name, Name) {
        (self.namespace.clone(), self.name.clone())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// `metadata.uid`, so that Events attach to the object (`kubectl describe` matches on it).
    pub uid: Option<Uid>,
    pub namespace: Name,
    pub name: Name,
    pub bgp: Option<BgpAnnotation>,
    /// `spec.type`, `ClusterIP` when absent.
    pub service_type: String,
    /// True when `spec.clusterIP` is `None` (headless).
    pub headless: bool,
    pub cluster_ips: Vec<IpAddr>,
    /// The field `cluster_ips` came from: `spec.clusterIPs`, or `spec.clusterIP` without it.
    pub ips_field: &'static str,
    /// Values that are not IP addresses, kept (bounded) for the warning.
    pub unparsable: Box<[Box<str>]>,
}

impl ServiceInfo {
    /// The key of [`Snapshot::services`].
    pub fn key(&self) -> (Name, Name) {
        (self.namespace.clone(), self.name.clone())
    }
}

/// The `Ready` condition of a Subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotReady {
        reason: Option<String>,
    },
    /// No status at all: written by hand, or not yet reconciled by kube-ovn-controller.
    NoStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetInfo {
    /// `metadata.uid`, so that Events attach to the object (`kubectl describe` matches on it).
    pub uid: Option<Uid>,
    pub name: String,
    pub bgp: Option<BgpAnnotation>,
    /// Every CIDR of `spec.cidrBlock` that parses, host bits as written (compile says what is
    /// wrong with one); pods' IPs are checked against them.
    pub cidrs: Vec<IpNet>,
    /// Parts of `spec.cidrBlock` that are not CIDRs, kept (bounded) for the warning.
    pub unparsable: Box<[Box<str>]>,
    pub nat_outgoing: bool,
    pub readiness: Readiness,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EipInfo {
    /// `metadata.uid`, so that Events attach to the object (`kubectl describe` matches on it).
    pub uid: Option<Uid>,
    pub name: String,
    pub bgp: Option<BgpAnnotation>,
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
    /// `(field, value)` of `spec.v4ip`/`spec.v6ip` values that are not addresses of their family.
    pub unparsable: Box<[(&'static str, Box<str>)]>,
    pub ready: bool,
    /// The `ovn.kubernetes.io/vpc-nat-gw-name` label.
    pub gateway: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayInfo {
    pub name: String,
    pub bgp_speaker: Option<GatewaySpeaker>,
}

/// `VpcNatGateway.spec.bgpSpeaker`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySpeaker {
    pub enabled: bool,
    pub asn: u32,
    pub remote_asn: u32,
    pub neighbors: Vec<IpAddr>,
    pub hold_time: Option<Duration>,
    pub router_id: Option<Ipv4Addr>,
    pub password: Option<String>,
    pub graceful_restart: bool,
    pub extra_args: Vec<String>,
}

fn name_of(meta: &ObjectMeta) -> Result<String, FieldError> {
    match meta.name.as_deref() {
        Some(n) if !n.is_empty() => Ok(n.to_string()),
        _ => Err(field_error("metadata.name", "missing")),
    }
}

fn namespace_of(meta: &ObjectMeta) -> Name {
    // Manifests written by hand often omit the namespace; kubectl would apply them to `default`.
    Name::interned(
        meta.namespace
            .as_deref()
            .filter(|ns| !ns.is_empty())
            .unwrap_or("default"),
    )
}

fn uid_of(meta: &ObjectMeta) -> Option<Uid> {
    meta.uid.as_deref().map(Uid::new)
}

fn bgp_annotation(meta: &ObjectMeta) -> Option<BgpAnnotation> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(BGP_ANNOTATION))
        .map(|v| BgpAnnotation::parse(v))
}

/// Parses one IP address (strictly, see [`address::parse_ip`]), accepting the surrounding
/// whitespace `kubectl annotate` users add.
pub fn parse_ip(field: &str, value: &str) -> Result<IpAddr, FieldError> {
    address::parse_ip(value).ok_or_else(|| {
        field_error(
            field,
            format!("{} is not an IP address", text::quote(value)),
        )
    })
}

/// A comma-separated list of IP addresses (Kube-OVN's dual-stack notation), split into the
/// addresses and the parts that are not addresses. An unparsable part is not an error: the rules
/// skip it with a warning (kube-ovn skips it too), so one bad value never refuses the object, the
/// file or the cluster, whichever source read it.
pub fn split_ip_list<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> (Vec<IpAddr>, Box<[Box<str>]>) {
    let mut ips = Vec::new();
    let mut bad = Vec::new();
    for part in values.into_iter().filter(|s| !s.trim().is_empty()) {
        match address::parse_ip(part) {
            Some(ip) => ips.push(ip),
            None => bad.push(text::keep(part)),
        }
    }
    (ips, bad.into_boxed_slice())
}

/// Parses a CIDR (strictly, see [`address::parse_cidr`]); host bits are kept as written.
pub fn parse_cidr(field: &str, value: &str) -> Result<IpNet, FieldError> {
    address::parse_cidr(value).ok_or_else(|| {
        field_error(
            field,
            format!("{} is not a CIDR (e.g. 10.16.0.0/16)", text::quote(value)),
        )
    })
}

impl NodeInfo {
    pub fn from_k8s(node: &Node) -> Result<NodeInfo, FieldError> {
        let mut internal_ips = Vec::new();
        let addresses = node
            .status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .map(Vec::as_slice)
            .unwrap_or_default();
        // No rule announces a node's address; one that does not parse is left out rather than
        // refusing the node.
        for addr in addresses {
            if addr.type_ == "InternalIP"
                && let Some(ip) = address::parse_ip(&addr.address)
            {
                internal_ips.push(ip);
            }
        }
        Ok(NodeInfo {
            name: name_of(&node.metadata)?,
            internal_ips,
        })
    }
}

impl PodInfo {
    pub fn from_k8s(pod: &Pod) -> Result<PodInfo, FieldError> {
        let meta = &pod.metadata;
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
        let reason = status.and_then(|s| s.reason.as_deref()).unwrap_or("");
        let restart_policy = spec.and_then(|s| s.restart_policy.as_deref()).unwrap_or("");
        let liveness = Liveness::of(phase, reason, restart_policy);

        let empty = Default::default();
        let annotations = meta.annotations.as_ref().unwrap_or(&empty);
        let mut attachments = Vec::new();
        for (key, value) in annotations {
            let Some(provider) = key.strip_suffix(IP_ADDRESS_SUFFIX) else {
                continue;
            };
            if provider.is_empty() || provider.contains('/') {
                continue;
            }
            let (ips, unparsable) = split_ip_list(value.split(','));
            let subnet = annotations
                .get(&format!("{provider}{LOGICAL_SWITCH_SUFFIX}"))
                .filter(|s| !s.is_empty())
                .map(|s| Name::interned(s));
            attachments.push(Attachment {
                provider: Name::interned(provider),
                subnet,
                ips: ips.into_boxed_slice(),
                from_status: false,
                unparsable,
            });
        }
        if attachments.is_empty() {
            // No Kube-OVN IP annotation: fall back to status.podIPs, but only when the default
            // network's subnet is known, or the IP could not be tied to a subnet's policy.
            if let Some(subnet) = annotations
                .get(LOGICAL_SWITCH_ANNOTATION)
                .filter(|s| !s.is_empty())
            {
                let (ips, unparsable) = match status.and_then(|s| s.pod_ips.as_ref()) {
                    Some(pod_ips) => split_ip_list(pod_ips.iter().map(|ip| ip.ip.as_str())),
                    None => split_ip_list(status.and_then(|s| s.pod_ip.as_deref())),
                };
                if !ips.is_empty() || !unparsable.is_empty() {
                    attachments.push(Attachment {
                        provider: Name::interned("ovn"),
                        subnet: Some(Name::interned(subnet)),
                        ips: ips.into_boxed_slice(),
                        from_status: true,
                        unparsable,
                    });
                }
            }
        }

        // Boxed slices: a pod has one or two attachments of one or two addresses, and the spare
        // capacity of growing vectors was 30 MB over 100,000 pods held for the sidecar's lifetime.
        Ok(PodInfo {
            uid: uid_of(meta),
            namespace: namespace_of(meta),
            name: Name::from(name_of(meta)?),
            node: spec
                .and_then(|s| s.node_name.as_deref())
                .filter(|n| !n.is_empty())
                .map(Name::interned),
            bgp: bgp_annotation(meta),
            liveness,
            host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
            attachments: attachments.into_boxed_slice(),
        })
    }
}

impl ServiceInfo {
    pub fn from_k8s(svc: &Service) -> Result<ServiceInfo, FieldError> {
        let spec = svc.spec.as_ref();
        let service_type = spec
            .and_then(|s| s.type_.clone())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "ClusterIP".to_string());
        let cluster_ip = spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
        let headless = cluster_ip == "None";
        let (cluster_ips, unparsable, ips_field) = match spec.and_then(|s| s.cluster_ips.as_ref()) {
            _ if headless => (Vec::new(), Box::default(), "spec.clusterIP"),
            Some(ips) if !ips.is_empty() => {
                let (ips, bad) =
                    split_ip_list(ips.iter().map(String::as_str).filter(|ip| *ip != "None"));
                (ips, bad, "spec.clusterIPs")
            }
            _ => {
                let (ips, bad) = split_ip_list([cluster_ip]);
                (ips, bad, "spec.clusterIP")
            }
        };
        Ok(ServiceInfo {
            uid: uid_of(&svc.metadata),
            namespace: namespace_of(&svc.metadata),
            name: Name::from(name_of(&svc.metadata)?),
            bgp: bgp_annotation(&svc.metadata),
            service_type,
            headless,
            cluster_ips,
            ips_field,
            unparsable,
        })
    }
}

impl SubnetInfo {
    pub fn from_kubeovn(subnet: &Subnet) -> Result<SubnetInfo, FieldError> {
        let mut cidrs = Vec::new();
        let mut unparsable = Vec::new();
        for part in subnet
            .spec
            .cidr_block
            .split(',')
            .filter(|s| !s.trim().is_empty())
        {
            match address::parse_cidr(part) {
                Some(net) => cidrs.push(net),
                None => unparsable.push(text::keep(part)),
            }
        }
        let readiness = match &subnet.status {
            None => Readiness::NoStatus,
            Some(status) => match status.conditions.iter().find(|c| c.type_ == "Ready") {
                Some(c) if c.status == "True" => Readiness::Ready,
                Some(c) => Readiness::NotReady {
                    reason: c.reason.clone().or_else(|| c.message.clone()),
                },
                None => Readiness::NotReady { reason: None },
            },
        };
        Ok(SubnetInfo {
            uid: uid_of(&subnet.metadata),
            name: name_of(&subnet.metadata)?,
            bgp: bgp_annotation(&subnet.metadata),
            cidrs,
            unparsable: unparsable.into_boxed_slice(),
            nat_outgoing: subnet.spec.nat_outgoing,
            readiness,
        })
    }
}

impl EipInfo {
    pub fn from_kubeovn(eip: &IptablesEip) -> Result<EipInfo, FieldError> {
        let mut unparsable = Vec::new();
        let v4 = match eip.spec.v4ip.trim() {
            "" => None,
            s => match address::parse_ip(s) {
                Some(IpAddr::V4(v4)) => Some(v4),
                _ => {
                    unparsable.push(("spec.v4ip", text::keep(s)));
                    None
                }
            },
        };
        let v6 = match eip.spec.v6ip.trim() {
            "" => None,
            s => match address::parse_ip(s) {
                Some(IpAddr::V6(v6)) => Some(v6),
                _ => {
                    unparsable.push(("spec.v6ip", text::keep(s)));
                    None
                }
            },
        };
        Ok(EipInfo {
            uid: uid_of(&eip.metadata),
            name: name_of(&eip.metadata)?,
            bgp: bgp_annotation(&eip.metadata),
            v4,
            v6,
            unparsable: unparsable.into_boxed_slice(),
            ready: eip.status.ready,
            gateway: eip
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(NAT_GW_NAME_LABEL))
                .cloned(),
        })
    }
}

impl GatewayInfo {
    pub fn from_kubeovn(gw: &VpcNatGateway) -> Result<GatewayInfo, FieldError> {
        let bgp_speaker = match &gw.spec.bgp_speaker {
            None => None,
            Some(s) => {
                let mut neighbors = Vec::new();
                for (i, n) in s.neighbors.iter().enumerate() {
                    neighbors.push(parse_ip(&format!("spec.bgpSpeaker.neighbors[{i}]"), n)?);
                }
                let hold_time = match s.hold_time.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some(h) => Some(
                        parse_go_duration(h)
                            .map_err(|e| field_error("spec.bgpSpeaker.holdTime", e.to_string()))?,
                    ),
                };
                let router_id = match s.router_id.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some(r) => Some(r.parse::<Ipv4Addr>().map_err(|_| {
                        field_error(
                            "spec.bgpSpeaker.routerId",
                            format!("{r:?} is not an IPv4 address"),
                        )
                    })?),
                };
                Some(GatewaySpeaker {
                    enabled: s.enabled,
                    asn: s.asn,
                    remote_asn: s.remote_asn,
                    neighbors,
                    hold_time,
                    router_id,
                    password: s.password.clone().filter(|p| !p.is_empty()),
                    graceful_restart: s.enable_graceful_restart,
                    extra_args: s.extra_args.clone(),
                })
            }
        };
        Ok(GatewayInfo {
            name: name_of(&gw.metadata)?,
            bgp_speaker,
        })
    }
}
