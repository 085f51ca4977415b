//! The announcement rules of Kube-OVN's speaker, as a pure function from cluster state and speaker
//! options to the intent. No I/O, no clock, no randomness: the same input in any order gives the
//! same bytes.
//!
//! Each object kind has a rule function returning [`Finding`]s: the prefixes an object concerns and
//! whether (and under which policy) this speaker announces them, or why not. `compile` folds them
//! into routes and diagnostics; `explain` shows them to a human.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::address;
use crate::diagnostic::Diagnostic;
use crate::intent::{self, Intent, NextHop, Route, Source};
use crate::model::{BgpAnnotation, Family, Kind, Name, ObjectRef, Policy};
use crate::options::{SpeakerMode, SpeakerOptions};
use crate::snapshot::{
    EipInfo, Liveness, Origin, PodInfo, Readiness, ServiceInfo, Snapshot, SubnetInfo,
};
use crate::text;

/// What the rules decided for some prefixes of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub object: ObjectRef,
    /// The prefixes concerned: announced ones, or those that would be.
    pub prefixes: Vec<IpNet>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Announced { policy: Policy, because: Because },
    NotAnnounced(Reason),
}

/// Which rule announced a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Because {
    OwnAnnotation(BgpAnnotation),
    InheritedFromSubnet {
        subnet: String,
        value: BgpAnnotation,
    },
    GatewayEip {
        gateway: String,
    },
}

/// Why a prefix is not announced by this speaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    NoAnnotation,
    InvalidAnnotation(String),
    /// `cluster`/`local` (or anything but true/yes) on a Service or IptablesEIP.
    UnsupportedValue {
        kind: Kind,
        value: String,
    },
    OtherNode {
        pod_node: Option<String>,
        speaker_node: String,
    },
    NotAlive(Liveness),
    HostNetwork,
    SubnetNotReady {
        subnet: String,
        reason: Option<String>,
    },
    SubnetUnknown {
        subnet: String,
    },
    NoSubnet {
        provider: String,
    },
    NoAddresses,
    /// A Local subnet: its CIDR is not announced, its pods are, by the speaker on their node.
    LocalSubnetCidr,
    AnnounceClusterIpOff,
    NotClusterIp {
        service_type: String,
    },
    Headless,
    EipNotReady,
    EipOtherGateway {
        label: Option<String>,
        gateway: String,
    },
    IgnoredInMode {
        mode: &'static str,
    },
    FamilyNotCarried(Family),
    /// A value that is not an IP address or CIDR (kept bounded).
    Unparsable {
        field: String,
        value: String,
    },
    /// An address no router should receive (docs/design.md section 2).
    Unusable {
        field: String,
        what: &'static str,
    },
    /// A pod IP that is not in any CIDR of its subnet.
    OutsideSubnet {
        field: String,
        subnet: String,
        cidrs: Vec<IpNet>,
    },
    /// A CIDR with host bits set: the daemons disagree about what it means.
    HostBits {
        field: String,
        network: IpNet,
    },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::NoAnnotation => write!(f, "no ovn.kubernetes.io/bgp annotation"),
            Reason::InvalidAnnotation(v) => write!(
                f,
                "invalid ovn.kubernetes.io/bgp value {} (use true, yes, cluster or local)",
                text::quote(v)
            ),
            Reason::UnsupportedValue { kind, value } => write!(
                f,
                "ovn.kubernetes.io/bgp={} is not supported on a {kind}; only \"true\" or \"yes\" are",
                text::quote(value)
            ),
            Reason::OtherNode {
                pod_node,
                speaker_node,
            } => match pod_node {
                Some(n) => write!(
                    f,
                    "policy local and the pod runs on node {n}, not on this speaker's node {speaker_node}"
                ),
                None => write!(
                    f,
                    "policy local and the pod is not scheduled on a node (this speaker's node is {speaker_node})"
                ),
            },
            Reason::NotAlive(l) => write!(
                f,
                "the pod is not alive ({})",
                match l {
                    Liveness::Succeeded => "phase Succeeded, restartPolicy not Always",
                    Liveness::Failed => "phase Failed, restartPolicy Never",
                    Liveness::Evicted => "phase Failed, evicted",
                    Liveness::Alive => "alive",
                }
            ),
            Reason::HostNetwork => write!(f, "the pod uses the host network"),
            Reason::SubnetNotReady { subnet, reason } => match reason {
                Some(r) => write!(f, "subnet {subnet} is not ready ({r})"),
                None => write!(f, "subnet {subnet} is not ready"),
            },
            Reason::SubnetUnknown { subnet } => write!(f, "subnet {subnet} is not in the input"),
            Reason::NoSubnet { provider } => write!(
                f,
                "no {provider}.kubernetes.io/logical_switch annotation names the subnet of these IPs"
            ),
            Reason::NoAddresses => write!(f, "the object has no IP address to announce"),
            Reason::LocalSubnetCidr => write!(
                f,
                "policy local: the subnet CIDR is not announced; its pods are announced by the speaker on their node"
            ),
            Reason::AnnounceClusterIpOff => {
                write!(f, "--announce-cluster-ip is off")
            }
            Reason::NotClusterIp { service_type } => {
                write!(f, "the service is of type {service_type}, not ClusterIP")
            }
            Reason::Headless => write!(f, "the service is headless (clusterIP: None)"),
            Reason::EipNotReady => write!(f, "the EIP is not ready (status.ready is false)"),
            Reason::EipOtherGateway { label, gateway } => match label {
                Some(l) => write!(f, "the EIP belongs to NAT gateway {l}, not to {gateway}"),
                None => write!(
                    f,
                    "the EIP has no ovn.kubernetes.io/vpc-nat-gw-name label (this speaker serves {gateway})"
                ),
            },
            Reason::IgnoredInMode { mode } => write!(f, "not announced in {mode} mode"),
            Reason::FamilyNotCarried(family) => write!(
                f,
                "no neighbor carries {family} (add a neighbor of that family or --extended-nexthop)"
            ),
            Reason::Unparsable { field, value } => {
                write!(
                    f,
                    "{field}: {} is not an IP address or CIDR",
                    text::quote(value)
                )
            }
            Reason::Unusable { field, what } => write!(
                f,
                "{field}: the address is {what}, which no router should receive"
            ),
            Reason::OutsideSubnet {
                field,
                subnet,
                cidrs,
            } => {
                let cidrs: Vec<String> = cidrs.iter().map(ToString::to_string).collect();
                if cidrs.is_empty() {
                    write!(
                        f,
                        "{field}: subnet {subnet} has no CIDR this address could be in"
                    )
                } else {
                    write!(
                        f,
                        "{field}: the address is outside subnet {subnet} ({})",
                        cidrs.join(", ")
                    )
                }
            }
            Reason::HostBits { field, network } => write!(
                f,
                "{field}: host bits are set (the network is {network}); write the network address"
            ),
        }
    }
}

impl std::fmt::Display for Because {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Because::OwnAnnotation(v) => {
                write!(f, "annotation ovn.kubernetes.io/bgp={}", v.as_str())
            }
            Because::InheritedFromSubnet { subnet, value } => write!(
                f,
                "inherited from Subnet/{subnet} annotation ovn.kubernetes.io/bgp={}",
                value.as_str()
            ),
            Because::GatewayEip { gateway } => write!(
                f,
                "annotation ovn.kubernetes.io/bgp on an EIP of NAT gateway {gateway}"
            ),
        }
    }
}

fn host_prefix(ip: IpAddr) -> IpNet {
    // A host prefix length (32 or 128) is always valid for its own family.
    IpNet::from(ip)
}

fn finding(object: &ObjectRef, prefixes: Vec<IpNet>, outcome: Outcome) -> Finding {
    Finding {
        object: object.clone(),
        prefixes,
        outcome,
    }
}

fn not(object: &ObjectRef, prefixes: Vec<IpNet>, reason: Reason) -> Finding {
    finding(object, prefixes, Outcome::NotAnnounced(reason))
}

/// The prefixes of `field` that may be announced; the others (and the values that did not
/// parse) become findings saying why not. This is where docs/design.md section 2's "addresses no router
/// should receive" is enforced, for every kind and whichever source read the object. With
/// `subnet`, each address must also be inside one of the subnet's CIDRs (a pod IP outside its
/// subnet is a wrong annotation, and announcing it would steal another network's traffic).
fn screen(
    object: &ObjectRef,
    field: &str,
    prefixes: Vec<IpNet>,
    unparsable: &[Box<str>],
    subnet: Option<&SubnetInfo>,
    skipped: &mut Vec<Finding>,
) -> Vec<IpNet> {
    for value in unparsable {
        skipped.push(not(
            object,
            Vec::new(),
            Reason::Unparsable {
                field: field.to_string(),
                value: value.to_string(),
            },
        ));
    }
    let mut ok = Vec::with_capacity(prefixes.len());
    for p in prefixes {
        let reason = if let Some(what) = address::unusable(p) {
            Some(Reason::Unusable {
                field: field.to_string(),
                what,
            })
        } else if p.trunc() != p {
            Some(Reason::HostBits {
                field: field.to_string(),
                network: p.trunc(),
            })
        } else {
            subnet
                .filter(|s| !s.cidrs.iter().any(|c| c.contains(&p)))
                .map(|s| Reason::OutsideSubnet {
                    field: field.to_string(),
                    subnet: s.name.clone(),
                    cidrs: s.cidrs.clone(),
                })
        };
        match reason {
            Some(r) => skipped.push(not(object, vec![p], r)),
            None => ok.push(p),
        }
    }
    ok
}

/// The announced finding for the prefixes that passed [`screen`], after the skipped ones.
fn announced(
    object: &ObjectRef,
    mut skipped: Vec<Finding>,
    ok: Vec<IpNet>,
    policy: Policy,
    because: Because,
) -> Vec<Finding> {
    if !ok.is_empty() {
        skipped.push(finding(object, ok, Outcome::Announced { policy, because }));
    }
    skipped
}

/// The mode name used in reasons and diagnostics.
fn mode_name(options: &SpeakerOptions) -> &'static str {
    match options.mode {
        SpeakerMode::Node { .. } => "node",
        SpeakerMode::NatGateway { .. } => "NAT-gateway",
    }
}

/// Subnet rule: Cluster announces every CIDR of a ready subnet.
pub fn subnet_findings(
    subnet: &SubnetInfo,
    options: &SpeakerOptions,
    origin_is_manifest: bool,
) -> Vec<Finding> {
    let object = ObjectRef::cluster(Kind::Subnet, &subnet.name);
    let prefixes = subnet.cidrs.clone();
    if matches!(options.mode, SpeakerMode::NatGateway { .. }) {
        return vec![not(
            &object,
            prefixes,
            Reason::IgnoredInMode {
                mode: mode_name(options),
            },
        )];
    }
    let Some(value) = &subnet.bgp else {
        return vec![not(&object, prefixes, Reason::NoAnnotation)];
    };
    let Some(policy) = value.policy() else {
        return vec![not(
            &object,
            prefixes,
            Reason::InvalidAnnotation(value.as_str().to_string()),
        )];
    };
    if !subnet_ready(subnet, origin_is_manifest) {
        return vec![not(&object, prefixes, subnet_not_ready(subnet))];
    }
    if prefixes.is_empty() && subnet.unparsable.is_empty() {
        return vec![not(&object, prefixes, Reason::NoAddresses)];
    }
    match policy {
        Policy::Cluster => {
            let mut skipped = Vec::new();
            let ok = screen(
                &object,
                "spec.cidrBlock",
                prefixes,
                &subnet.unparsable,
                None,
                &mut skipped,
            );
            announced(
                &object,
                skipped,
                ok,
                policy,
                Because::OwnAnnotation(value.clone()),
            )
        }
        Policy::Local => vec![not(&object, prefixes, Reason::LocalSubnetCidr)],
    }
}

fn subnet_ready(subnet: &SubnetInfo, origin_is_manifest: bool) -> bool {
    match subnet.readiness {
        Readiness::Ready => true,
        Readiness::NoStatus => origin_is_manifest,
        Readiness::NotReady { .. } => false,
    }
}

fn subnet_not_ready(subnet: &SubnetInfo) -> Reason {
    Reason::SubnetNotReady {
        subnet: subnet.name.clone(),
        reason: match &subnet.readiness {
            Readiness::NotReady { reason } => reason.clone(),
            Readiness::NoStatus => Some("no status yet".to_string()),
            Readiness::Ready => None,
        },
    }
}

/// Pod rule: each attachment's IPs, under the pod's policy or else its subnet's.
pub fn pod_findings(pod: &PodInfo, snapshot: &Snapshot, options: &SpeakerOptions) -> Vec<Finding> {
    pod_findings_in(
        pod,
        &snapshot.subnets,
        snapshot.origin == Origin::Manifests,
        options,
    )
}

/// [`pod_findings`] given only what it reads of the snapshot: the subnets (the pod's are looked up
/// by name) and whether the state comes from manifests.
pub fn pod_findings_in(
    pod: &PodInfo,
    subnets: &BTreeMap<String, SubnetInfo>,
    origin_is_manifest: bool,
    options: &SpeakerOptions,
) -> Vec<Finding> {
    let object = ObjectRef::namespaced(Kind::Pod, &pod.namespace, &pod.name);
    let all: Vec<IpNet> = pod
        .attachments
        .iter()
        .flat_map(|a| a.ips.iter().copied().map(host_prefix))
        .collect();
    let speaker_node = match &options.mode {
        SpeakerMode::Node { node } => node,
        SpeakerMode::NatGateway { .. } => {
            return vec![not(
                &object,
                all,
                Reason::IgnoredInMode {
                    mode: mode_name(options),
                },
            )];
        }
    };
    if pod.host_network {
        return vec![not(&object, all, Reason::HostNetwork)];
    }
    if pod.liveness != Liveness::Alive {
        return vec![not(&object, all, Reason::NotAlive(pod.liveness))];
    }
    if let Some(BgpAnnotation::Invalid(v)) = &pod.bgp {
        return vec![not(&object, all, Reason::InvalidAnnotation(v.clone()))];
    }
    if pod.attachments.is_empty() {
        let reason = if pod.bgp.is_some() {
            Reason::NoAddresses
        } else {
            Reason::NoAnnotation
        };
        return vec![not(&object, all, reason)];
    }
    let mut out = Vec::with_capacity(pod.attachments.len());
    for attachment in &pod.attachments {
        let prefixes: Vec<IpNet> = attachment.ips.iter().copied().map(host_prefix).collect();
        let Some(subnet_name) = &attachment.subnet else {
            out.push(not(
                &object,
                prefixes,
                Reason::NoSubnet {
                    provider: attachment.provider.to_string(),
                },
            ));
            continue;
        };
        let Some(subnet) = subnets.get(subnet_name.as_str()) else {
            out.push(not(
                &object,
                prefixes,
                Reason::SubnetUnknown {
                    subnet: subnet_name.to_string(),
                },
            ));
            continue;
        };
        let (policy, because) = match (&pod.bgp, &subnet.bgp) {
            (Some(own), _) => match own.policy() {
                Some(p) => (p, Because::OwnAnnotation(own.clone())),
                None => unreachable!("invalid pod annotation returned above"),
            },
            (None, Some(inherited)) => match inherited.policy() {
                Some(p) => (
                    p,
                    Because::InheritedFromSubnet {
                        subnet: subnet.name.clone(),
                        value: inherited.clone(),
                    },
                ),
                // The subnet's own finding reports its invalid value.
                None => {
                    out.push(not(&object, prefixes, Reason::NoAnnotation));
                    continue;
                }
            },
            (None, None) => {
                out.push(not(&object, prefixes, Reason::NoAnnotation));
                continue;
            }
        };
        if !subnet_ready(subnet, origin_is_manifest) {
            out.push(not(&object, prefixes, subnet_not_ready(subnet)));
            continue;
        }
        if policy == Policy::Local && pod.node.as_deref() != Some(speaker_node.as_str()) {
            out.push(not(
                &object,
                prefixes,
                Reason::OtherNode {
                    pod_node: pod.node.as_ref().map(ToString::to_string),
                    speaker_node: speaker_node.clone(),
                },
            ));
            continue;
        }
        let mut skipped = Vec::new();
        let ok = screen(
            &object,
            &attachment.field(),
            prefixes,
            &attachment.unparsable,
            Some(subnet),
            &mut skipped,
        );
        out.extend(announced(&object, skipped, ok, policy, because));
    }
    out
}

/// Service rule: ClusterIPs of annotated ClusterIP services, with `--announce-cluster-ip`.
pub fn service_findings(svc: &ServiceInfo, options: &SpeakerOptions) -> Vec<Finding> {
    let object = ObjectRef::namespaced(Kind::Service, &svc.namespace, &svc.name);
    let prefixes: Vec<IpNet> = svc.cluster_ips.iter().copied().map(host_prefix).collect();
    let reason = if matches!(options.mode, SpeakerMode::NatGateway { .. }) {
        Reason::IgnoredInMode {
            mode: mode_name(options),
        }
    } else {
        match &svc.bgp {
            None => Reason::NoAnnotation,
            Some(v @ (BgpAnnotation::True | BgpAnnotation::Yes)) => {
                if !options.announce_cluster_ip {
                    Reason::AnnounceClusterIpOff
                } else if svc.service_type != "ClusterIP" {
                    Reason::NotClusterIp {
                        service_type: svc.service_type.clone(),
                    }
                } else if svc.headless {
                    Reason::Headless
                } else if prefixes.is_empty() && svc.unparsable.is_empty() {
                    Reason::NoAddresses
                } else {
                    let mut skipped = Vec::new();
                    let ok = screen(
                        &object,
                        svc.ips_field,
                        prefixes,
                        &svc.unparsable,
                        None,
                        &mut skipped,
                    );
                    return announced(
                        &object,
                        skipped,
                        ok,
                        Policy::Cluster,
                        Because::OwnAnnotation(v.clone()),
                    );
                }
            }
            Some(other) => Reason::UnsupportedValue {
                kind: Kind::Service,
                value: other.as_str().to_string(),
            },
        }
    };
    vec![not(&object, prefixes, reason)]
}

/// EIP rule (NAT-gateway mode): ready, annotated EIPs labelled with this gateway's name.
pub fn eip_findings(eip: &EipInfo, options: &SpeakerOptions) -> Vec<Finding> {
    let object = ObjectRef::cluster(Kind::IptablesEip, &eip.name);
    let mut prefixes = Vec::new();
    if let Some(v4) = eip.v4 {
        prefixes.push(host_prefix(IpAddr::V4(v4)));
    }
    if let Some(v6) = eip.v6 {
        prefixes.push(host_prefix(IpAddr::V6(v6)));
    }
    let gateway = match &options.mode {
        SpeakerMode::NatGateway { gateway } => gateway,
        SpeakerMode::Node { .. } => {
            return vec![not(
                &object,
                prefixes,
                Reason::IgnoredInMode {
                    mode: mode_name(options),
                },
            )];
        }
    };
    let reason = if eip.gateway.as_deref() != Some(gateway.as_str()) {
        Reason::EipOtherGateway {
            label: eip.gateway.clone(),
            gateway: gateway.clone(),
        }
    } else {
        match &eip.bgp {
            None => Reason::NoAnnotation,
            Some(BgpAnnotation::True | BgpAnnotation::Yes) => {
                if !eip.ready {
                    Reason::EipNotReady
                } else if prefixes.is_empty() && eip.unparsable.is_empty() {
                    Reason::NoAddresses
                } else {
                    let mut skipped = Vec::new();
                    let mut ok = Vec::new();
                    for (field, value) in &eip.unparsable {
                        ok.extend(screen(
                            &object,
                            field,
                            Vec::new(),
                            std::slice::from_ref(value),
                            None,
                            &mut skipped,
                        ));
                    }
                    for p in prefixes {
                        let field = match p {
                            IpNet::V4(_) => "spec.v4ip",
                            IpNet::V6(_) => "spec.v6ip",
                        };
                        ok.extend(screen(&object, field, vec![p], &[], None, &mut skipped));
                    }
                    return announced(
                        &object,
                        skipped,
                        ok,
                        Policy::Cluster,
                        Because::GatewayEip {
                            gateway: gateway.clone(),
                        },
                    );
                }
            }
            Some(other) => Reason::UnsupportedValue {
                kind: Kind::IptablesEip,
                value: other.as_str().to_string(),
            },
        }
    };
    vec![not(&object, prefixes, reason)]
}

/// Every finding for every object, in a stable order.
pub fn all_findings(snapshot: &Snapshot, options: &SpeakerOptions) -> Vec<Finding> {
    let manifest = snapshot.origin == crate::snapshot::Origin::Manifests;
    let mut out = Vec::new();
    for subnet in snapshot.subnets.values() {
        out.extend(subnet_findings(subnet, options, manifest));
    }
    for pod in snapshot.pods.values() {
        out.extend(pod_findings(pod, snapshot, options));
    }
    for svc in snapshot.services.values() {
        out.extend(service_findings(svc, options));
    }
    for eip in snapshot.eips.values() {
        out.extend(eip_findings(eip, options));
    }
    out
}

/// Families some neighbor carries.
pub fn carried_families(options: &SpeakerOptions) -> (bool, bool) {
    let any = !options.neighbors_v4.is_empty() || !options.neighbors_v6.is_empty();
    if options.extended_nexthop {
        (any, any)
    } else {
        (
            !options.neighbors_v4.is_empty(),
            !options.neighbors_v6.is_empty(),
        )
    }
}

/// Diagnostics the findings call for: invalid values and unsupported policies are warnings, an
/// annotation that an option switches off is an info.
fn finding_diagnostic(f: &Finding) -> Option<Diagnostic> {
    let Outcome::NotAnnounced(reason) = &f.outcome else {
        return None;
    };
    match reason {
        Reason::InvalidAnnotation(_)
        | Reason::UnsupportedValue { .. }
        | Reason::Unparsable { .. }
        | Reason::Unusable { .. }
        | Reason::OutsideSubnet { .. }
        | Reason::HostBits { .. } => Some(Diagnostic::warning(
            &f.object,
            format!("not announced: {reason}"),
        )),
        Reason::AnnounceClusterIpOff => Some(Diagnostic::info(
            &f.object,
            "annotated ovn.kubernetes.io/bgp but --announce-cluster-ip is off; not announced",
        )),
        _ => None,
    }
}

/// What one object puts into the intent: the routes it is a source of and the diagnostics it
/// calls for. `compile` adds up every object's; the incremental engine (`crate::engine`) keeps
/// the sum and, when an object changes, takes its old contribution out and puts its new one in.
/// An object's contribution depends only on the object, the options, the origin and (for a pod)
/// the subnets its attachments name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contribution {
    pub routes: Vec<(IpNet, Source)>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Contribution {
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.diagnostics.is_empty()
    }

    /// The findings of the object named `namespace`/`name` (shared with the routes' sources).
    fn absorb(&mut self, findings: Vec<Finding>, namespace: Option<&Name>, name: &Name) {
        for f in findings {
            if let Some(d) = finding_diagnostic(&f) {
                self.diagnostics.push(d);
            }
            if let Outcome::Announced { policy, .. } = f.outcome {
                for prefix in f.prefixes {
                    self.routes.push((
                        prefix,
                        Source {
                            kind: f.object.kind,
                            namespace: namespace.cloned(),
                            name: name.clone(),
                            policy,
                        },
                    ));
                }
            }
        }
    }
}

/// A Subnet's contribution: its CIDRs when announced, and the notes about its status and
/// natOutgoing.
pub fn subnet_contribution(
    subnet: &SubnetInfo,
    options: &SpeakerOptions,
    origin_is_manifest: bool,
) -> Contribution {
    let mut c = Contribution::default();
    let node_mode = matches!(options.mode, SpeakerMode::Node { .. });
    let policy_set = subnet
        .bgp
        .as_ref()
        .and_then(BgpAnnotation::policy)
        .is_some();
    if policy_set && subnet.readiness == Readiness::NoStatus && origin_is_manifest && node_mode {
        c.diagnostics.push(Diagnostic::info(
            ObjectRef::cluster(Kind::Subnet, &subnet.name),
            "no status in the manifest: treated as ready",
        ));
    }
    if policy_set && subnet.nat_outgoing && subnet_ready(subnet, origin_is_manifest) && node_mode {
        c.diagnostics.push(Diagnostic::warning(
            ObjectRef::cluster(Kind::Subnet, &subnet.name),
            "announced with natOutgoing: true; return traffic will be NATed, set spec.natOutgoing to false",
        ));
    }
    c.absorb(
        subnet_findings(subnet, options, origin_is_manifest),
        None,
        &Name::new(&subnet.name),
    );
    c
}

/// A Pod's contribution: its addresses when announced, and warnings about what is wrong with it.
pub fn pod_contribution(
    pod: &PodInfo,
    subnets: &BTreeMap<String, SubnetInfo>,
    origin_is_manifest: bool,
    options: &SpeakerOptions,
) -> Contribution {
    let mut c = Contribution::default();
    if pod.bgp.is_none() && !inherits_policy(pod, subnets) {
        // No annotation of its own and none to inherit: every finding is "not announced"
        // without a diagnostic (most pods of a cluster), so none is built.
        return c;
    }
    let findings = pod_findings_in(pod, subnets, origin_is_manifest, options);
    if pod.bgp.as_ref().is_some_and(|v| v.policy().is_some()) {
        for f in &findings {
            if let Outcome::NotAnnounced(
                r @ (Reason::SubnetUnknown { .. } | Reason::NoSubnet { .. }),
            ) = &f.outcome
            {
                c.diagnostics.push(Diagnostic::warning(
                    &f.object,
                    format!("not announced: {r}"),
                ));
            }
        }
    }
    c.absorb(findings, Some(&pod.namespace), &pod.name);
    c
}

/// A Service's contribution.
/// Whether a subnet of one of the pod's attachments has a valid `ovn.kubernetes.io/bgp`
/// annotation, which a pod without its own inherits.
fn inherits_policy(pod: &PodInfo, subnets: &BTreeMap<String, SubnetInfo>) -> bool {
    pod.attachments.iter().any(|a| {
        a.subnet
            .as_ref()
            .and_then(|name| subnets.get(name.as_str()))
            .and_then(|s| s.bgp.as_ref())
            .is_some_and(|v| v.policy().is_some())
    })
}

pub fn service_contribution(svc: &ServiceInfo, options: &SpeakerOptions) -> Contribution {
    let mut c = Contribution::default();
    if svc.bgp.is_none() {
        // Not announced in any mode, and nothing to warn about.
        return c;
    }
    c.absorb(
        service_findings(svc, options),
        Some(&svc.namespace),
        &svc.name,
    );
    c
}

/// An IptablesEIP's contribution.
pub fn eip_contribution(eip: &EipInfo, options: &SpeakerOptions) -> Contribution {
    let mut c = Contribution::default();
    c.absorb(eip_findings(eip, options), None, &Name::new(&eip.name));
    c
}

/// Diagnostics that belong to no object: option resolution's (`prior`), the source's notes, and
/// the neighbors whose local address a route lookup decides.
pub fn global_diagnostics(
    options: &SpeakerOptions,
    prior: &[Diagnostic],
    input_warnings: &[String],
) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = prior.to_vec();
    for note in input_warnings {
        out.push(Diagnostic::warning("input", note.as_str()));
    }
    for neighbor in options.route_lookups_needed() {
        out.push(Diagnostic::info(
            "options",
            format!(
                "neighbor {neighbor}: its local address (and next hop) is the allowed source address the kernel's route to it uses, looked up by `apply` and `run`; rendered unpinned here (give --neighbor-local-address {neighbor}=ADDRESS to pin it)"
            ),
        ));
    }
    out
}

/// The one warning for the routes of a family no neighbor carries (one per family rather than per
/// route: 100k unreachable pod routes are one problem). `first` are the family's first prefixes
/// in order (at most three are shown), `count` how many there are.
pub fn unreachable_diagnostic(family: Family, count: usize, first: &[IpNet]) -> Diagnostic {
    let examples: Vec<String> = first.iter().take(3).map(ToString::to_string).collect();
    let more = if count > 3 { ", ..." } else { "" };
    Diagnostic::warning(
        "options",
        format!(
            "{count} {family} route(s) not announced because {} ({}{more})",
            Reason::FamilyNotCarried(family),
            examples.join(", ")
        ),
    )
}

/// What the options say about every route of a family: its next hop and whether a neighbor
/// carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteAttributes {
    pub next_hop_v4: NextHop,
    pub next_hop_v6: NextHop,
    pub v4_carried: bool,
    pub v6_carried: bool,
}

impl RouteAttributes {
    pub fn of(options: &SpeakerOptions) -> RouteAttributes {
        let (v4_carried, v6_carried) = carried_families(options);
        RouteAttributes {
            next_hop_v4: options
                .node_ip_v4
                .map_or(NextHop::SelfAddress, |ip| NextHop::Address(ip.into())),
            next_hop_v6: options
                .node_ip_v6
                .map_or(NextHop::SelfAddress, |ip| NextHop::Address(ip.into())),
            v4_carried,
            v6_carried,
        }
    }

    pub fn carried(&self, family: Family) -> bool {
        match family {
            Family::Ipv4Unicast => self.v4_carried,
            Family::Ipv6Unicast => self.v6_carried,
        }
    }

    /// The route of `prefix` with these sources (sorted and deduplicated by the caller).
    pub fn route(&self, prefix: IpNet, sources: Vec<Source>) -> Route {
        let family = Family::of(prefix.addr());
        Route {
            prefix,
            family,
            next_hop: match family {
                Family::Ipv4Unicast => self.next_hop_v4,
                Family::Ipv6Unicast => self.next_hop_v6,
            },
            sources,
            unreachable: !self.carried(family),
        }
    }
}

/// The parts of the intent that depend on the options alone: speaker, BGP settings, neighbors.
pub fn header(options: &SpeakerOptions) -> (intent::Speaker, intent::Bgp, Vec<intent::Neighbor>) {
    let families_for = |ip: IpAddr| -> Vec<Family> {
        if options.extended_nexthop {
            vec![Family::Ipv4Unicast, Family::Ipv6Unicast]
        } else {
            vec![Family::of(ip)]
        }
    };
    let mut neighbors: Vec<intent::Neighbor> = options
        .neighbors_v4
        .iter()
        .map(|&a| IpAddr::V4(a))
        .chain(options.neighbors_v6.iter().map(|&a| IpAddr::V6(a)))
        .map(|address| intent::Neighbor {
            address,
            remote_as: options.neighbor_as,
            families: families_for(address),
            local_address: options.local_addresses.get(&address).copied(),
        })
        .collect();
    neighbors.sort_by_key(|n| n.address);
    let (mode, node, gateway) = match &options.mode {
        SpeakerMode::Node { node } => (intent::Mode::Node, Some(node.clone()), None),
        SpeakerMode::NatGateway { gateway } => {
            (intent::Mode::NatGateway, None, Some(gateway.clone()))
        }
    };
    let hold = options.hold_time.as_secs();
    let speaker = intent::Speaker {
        mode,
        node,
        gateway,
        router_id: options.router_id,
        local_as: options.cluster_as,
    };
    let bgp = intent::Bgp {
        hold_time: hold,
        keepalive: hold / 3,
        passive: options.passive,
        ebgp_multihop_ttl: options.ebgp_multihop_ttl,
        extended_nexthop: options.extended_nexthop,
        graceful_restart: intent::GracefulRestart {
            enabled: options.graceful_restart,
            restart_time: options.graceful_restart_time.as_secs(),
            deferral_time: options.graceful_restart_deferral_time.as_secs(),
        },
        bfd: intent::Bfd {
            enabled: options.bfd.enabled,
            min_tx_ms: options.bfd.min_tx_ms,
            min_rx_ms: options.bfd.min_rx_ms,
            multiplier: options.bfd.multiplier,
        },
        password: options.password.clone(),
    };
    (speaker, bgp, neighbors)
}

/// Compiles cluster state and validated options into the intent. `prior` holds diagnostics from
/// earlier stages (option resolution) so that the intent shows them all. This is the whole
/// computation at once; `crate::engine::Engine` keeps the same result current object by object,
/// and is checked against this function (tests/engine.rs).
pub fn compile(snapshot: &Snapshot, options: &SpeakerOptions, prior: &[Diagnostic]) -> Intent {
    let mut diagnostics = global_diagnostics(options, prior, &snapshot.input_warnings);
    let mut routes: BTreeMap<IpNet, Vec<Source>> = BTreeMap::new();
    let manifest = snapshot.origin == Origin::Manifests;
    let mut add = |c: Contribution| {
        for (prefix, source) in c.routes {
            routes.entry(prefix).or_default().push(source);
        }
        diagnostics.extend(c.diagnostics);
    };
    for subnet in snapshot.subnets.values() {
        add(subnet_contribution(subnet, options, manifest));
    }
    for pod in snapshot.pods.values() {
        add(pod_contribution(pod, &snapshot.subnets, manifest, options));
    }
    for svc in snapshot.services.values() {
        add(service_contribution(svc, options));
    }
    for eip in snapshot.eips.values() {
        add(eip_contribution(eip, options));
    }

    let attributes = RouteAttributes::of(options);
    let routes: Vec<Route> = routes
        .into_iter()
        .map(|(prefix, sources)| attributes.route(prefix, sources))
        .collect();
    for family in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
        if attributes.carried(family) {
            continue;
        }
        let mut of_family = routes.iter().filter(|r| r.family == family);
        let first: Vec<IpNet> = of_family.by_ref().take(3).map(|r| r.prefix).collect();
        if first.is_empty() {
            continue;
        }
        let count = first.len() + of_family.count();
        diagnostics.push(unreachable_diagnostic(family, count, &first));
    }

    let (speaker, bgp, neighbors) = header(options);
    let mut intent = Intent {
        api_version: intent::API_VERSION.to_string(),
        kind: intent::KIND.to_string(),
        speaker,
        bgp,
        neighbors,
        routes,
        diagnostics,
        hash: String::new(),
    };
    intent.seal();
    intent
}
