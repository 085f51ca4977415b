//! `bgpgen explain`: for a prefix, an IP or an object, which rule announced it, or why not.
//! It replays the same rule functions as `compile`, so its answer cannot drift from the intent.

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use thiserror::Error;

use crate::compile::{Finding, Outcome, Reason, all_findings};
use crate::intent::Intent;
use crate::model::{Family, Kind, ObjectRef};
use crate::options::{SpeakerMode, SpeakerOptions};
use crate::snapshot::Snapshot;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Prefix(IpNet),
    Ip(IpAddr),
    Object(ObjectRef),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QueryError {
    #[error(
        "{0:?} is not a prefix, an IP address or KIND/[NAMESPACE/]NAME (e.g. 10.16.0.0/16, 10.16.0.5, pod/default/sample, subnet/ovn-default)"
    )]
    Unparsable(String),
    #[error("{kind} objects are namespaced: use {kind_lower}/NAMESPACE/NAME")]
    NeedsNamespace { kind: Kind, kind_lower: String },
    #[error("{0} is not in the input")]
    NotFound(ObjectRef),
}

pub fn parse_query(s: &str) -> Result<Query, QueryError> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(Query::Prefix(net));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Query::Ip(ip));
    }
    let parts: Vec<&str> = s.split('/').collect();
    let kind = parts
        .first()
        .and_then(|k| Kind::parse_loose(k))
        .ok_or_else(|| QueryError::Unparsable(s.to_string()))?;
    let object = match (parts.len(), kind.is_namespaced()) {
        (3, true) if !parts[1].is_empty() && !parts[2].is_empty() => {
            ObjectRef::namespaced(kind, parts[1], parts[2])
        }
        (2, true) => {
            return Err(QueryError::NeedsNamespace {
                kind,
                kind_lower: kind.as_str().to_lowercase(),
            });
        }
        (2, false) if !parts[1].is_empty() => ObjectRef::cluster(kind, parts[1]),
        _ => return Err(QueryError::Unparsable(s.to_string())),
    };
    Ok(Query::Object(object))
}

fn exists(snapshot: &Snapshot, o: &ObjectRef) -> bool {
    match o.kind {
        Kind::Node => snapshot.nodes.contains_key(&o.name),
        Kind::Pod => snapshot.pods.contains_key(&o.pair()),
        Kind::Service => snapshot.services.contains_key(&o.pair()),
        Kind::Subnet => snapshot.subnets.contains_key(&o.name),
        Kind::IptablesEip => snapshot.eips.contains_key(&o.name),
        Kind::VpcNatGateway => snapshot.gateways.contains_key(&o.name),
    }
}

/// One line for one finding about one prefix.
fn describe(f: &Finding, prefix: Option<IpNet>, intent: &Intent) -> String {
    match &f.outcome {
        Outcome::Announced { policy, because } => {
            let route = prefix.and_then(|p| intent.routes.iter().find(|r| r.prefix == p));
            match route {
                Some(r) if r.unreachable => format!(
                    "selected (policy {policy}, {because}) but not rendered: {}",
                    Reason::FamilyNotCarried(r.family)
                ),
                Some(r) => format!(
                    "announced, policy {policy} ({because}), next hop {}",
                    r.next_hop
                ),
                None => format!("announced, policy {policy} ({because})"),
            }
        }
        Outcome::NotAnnounced(reason) => format!("not announced: {reason}"),
    }
}

fn object_label(o: &ObjectRef) -> String {
    format!("{} {}", o.kind, o.key())
}

/// Answers a query. Returns the report, or an error when an object is not in the input.
pub fn explain(
    snapshot: &Snapshot,
    options: &SpeakerOptions,
    intent: &Intent,
    query: &Query,
) -> Result<String, QueryError> {
    let findings = all_findings(snapshot, options);
    let mut out = String::new();
    match query {
        Query::Object(object) => {
            if !exists(snapshot, object) {
                return Err(QueryError::NotFound(object.clone()));
            }
            let _ = writeln!(out, "{}:", object_label(object));
            match object.kind {
                Kind::Node => explain_node(&mut out, snapshot, options, &object.name),
                Kind::VpcNatGateway => explain_gateway(&mut out, options, &object.name),
                _ => {
                    let mine: Vec<&Finding> =
                        findings.iter().filter(|f| &f.object == object).collect();
                    for f in mine {
                        if f.prefixes.is_empty() {
                            let _ = writeln!(out, "  (no address): {}", describe(f, None, intent));
                        }
                        for &p in &f.prefixes {
                            let _ = writeln!(out, "  {p}: {}", describe(f, Some(p), intent));
                        }
                    }
                }
            }
        }
        Query::Prefix(prefix) => {
            explain_prefix(&mut out, &findings, intent, *prefix, None);
        }
        Query::Ip(ip) => {
            let host = IpNet::from(*ip);
            explain_prefix(&mut out, &findings, intent, host, Some(*ip));
        }
    }
    Ok(out)
}

fn explain_prefix(
    out: &mut String,
    findings: &[Finding],
    intent: &Intent,
    prefix: IpNet,
    ip: Option<IpAddr>,
) {
    let family = Family::of(prefix.addr());
    match intent.routes.iter().find(|r| r.prefix == prefix) {
        Some(r) if r.unreachable => {
            let _ = writeln!(
                out,
                "{prefix} ({family}): not announced: {}",
                Reason::FamilyNotCarried(family)
            );
        }
        Some(r) => {
            let _ = writeln!(
                out,
                "{prefix} ({family}): announced, next hop {}",
                r.next_hop
            );
        }
        None => {
            let _ = writeln!(out, "{prefix} ({family}): not announced");
        }
    }
    let mut any = false;
    for f in findings {
        for &p in &f.prefixes {
            if p == prefix {
                any = true;
                let _ = writeln!(
                    out,
                    "  {}: {}",
                    object_label(&f.object),
                    describe(f, Some(p), intent)
                );
            }
        }
    }
    // For an address, also the larger prefixes (subnet CIDRs) that cover it.
    if let Some(ip) = ip {
        for f in findings {
            for &p in &f.prefixes {
                if p != prefix && p.contains(&ip) {
                    any = true;
                    let _ = writeln!(
                        out,
                        "  {} ({p} covers {ip}): {}",
                        object_label(&f.object),
                        describe(f, Some(p), intent)
                    );
                }
            }
        }
    }
    if !any {
        let _ = writeln!(out, "  no object in the input has this address or prefix");
    }
}

fn explain_node(out: &mut String, snapshot: &Snapshot, options: &SpeakerOptions, node: &str) {
    let local_pods = snapshot
        .pods
        .values()
        .filter(|p| p.node.as_deref() == Some(node))
        .count();
    match &options.mode {
        SpeakerMode::Node { node: mine } if mine == node => {
            let _ = writeln!(
                out,
                "  this speaker's node; {local_pods} pod(s) run here, and those with policy local are announced by this speaker"
            );
        }
        SpeakerMode::Node { node: mine } => {
            let _ = writeln!(
                out,
                "  not this speaker's node ({mine}); pods with policy local on it are announced by the speaker on {node}"
            );
        }
        SpeakerMode::NatGateway { gateway } => {
            let _ = writeln!(
                out,
                "  this speaker runs in NAT-gateway mode for {gateway}; nodes do not matter"
            );
        }
    }
}

fn explain_gateway(out: &mut String, options: &SpeakerOptions, gateway: &str) {
    match &options.mode {
        SpeakerMode::NatGateway { gateway: mine } if mine == gateway => {
            let _ = writeln!(
                out,
                "  this speaker's gateway: its ready EIPs annotated ovn.kubernetes.io/bgp=true are announced"
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "  not this speaker's gateway; its EIPs are announced by its own speaker sidecar"
            );
        }
    }
}
