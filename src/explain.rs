//! `bgpgen explain`: for a prefix, an IP or an object, which rule announced it, or why not.
//! It replays the same rule functions as `compile`, so its answer cannot drift from the intent.
//!
//! The answer is a typed [`Explanation`] (what `-o json` prints and a sidecar's `/explain`
//! serves); [`Explanation::to_text`] is the human form. For a prefix the answer covers the
//! prefix itself, the routes inside it (`explain 10.16.0.0/24` lists the pods in it) and the
//! prefixes covering it (the subnet an address belongs to).

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::compile::{Finding, Outcome, Reason, all_findings};
use crate::intent::{Intent, NextHop};
use crate::model::{Family, Kind, ObjectRef, Policy};
use crate::options::{SpeakerMode, SpeakerOptions};
use crate::snapshot::Snapshot;
use crate::text::escape;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Prefix(IpNet),
    Ip(IpAddr),
    Object(ObjectRef),
}

impl std::fmt::Display for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Query::Prefix(p) => write!(f, "{p}"),
            Query::Ip(ip) => write!(f, "{ip}"),
            Query::Object(o) => write!(f, "{o}"),
        }
    }
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
        .ok_or_else(|| QueryError::Unparsable(crate::text::clip(s, crate::text::QUOTE_CHARS)))?;
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
        _ => {
            return Err(QueryError::Unparsable(crate::text::clip(
                s,
                crate::text::QUOTE_CHARS,
            )));
        }
    };
    Ok(Query::Object(object))
}

/// The answer to one query. Its JSON form is documented in docs/explain-diff-json.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub api_version: String,
    pub kind: String,
    /// The query as understood: `10.16.0.0/24`, `10.16.0.5`, `Pod/default/sample`.
    pub query: String,
    pub state: State,
    /// What the answer was computed from: `rules` (the manifests and options, replaying every
    /// rule: why-not answers for every object) or `intent` (a sidecar's intent in force: its
    /// routes and diagnostics only).
    pub basis: Basis,
    /// The hash of the intent the answer is about.
    pub intent_hash: String,
    /// Sentences about the answer as a whole (with `basis: intent`, what it cannot tell).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// For an address or prefix query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<PrefixAnswer>,
    /// For an object query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectAnswer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    Rules,
    Intent,
}

/// The overall answer, which the exit code of `explain` follows (0 for `announced` and
/// `covered`, and for `this-speaker`; 1 for the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// The prefix itself is announced; an object: every one of its addresses is.
    Announced,
    /// An address or prefix that is not announced itself, inside an announced prefix.
    Covered,
    /// Not announced as a whole, but some routes inside the prefix (or some addresses of the
    /// object) are.
    Partial,
    NotAnnounced,
    /// A Node or VpcNatGateway query: it is this speaker's.
    ThisSpeaker,
    /// A Node or VpcNatGateway query: it is another speaker's.
    OtherSpeaker,
}

impl State {
    /// Whether traffic to the query reaches this speaker's routes (exit 0).
    pub fn is_announced(self) -> bool {
        matches!(self, State::Announced | State::Covered | State::ThisSpeaker)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrefixAnswer {
    pub prefix: IpNet,
    pub family: Family,
    /// Set for an address query (the prefix is then its /32 or /128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// The route for exactly this prefix in the intent, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteState>,
    /// The most specific announced route covering the prefix, when the prefix itself is not
    /// announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covered_by: Option<IpNet>,
    /// Announced routes strictly inside the prefix.
    pub announced_inside: usize,
    /// Every object with an address equal to, inside or covering the prefix.
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteState {
    pub next_hop: NextHop,
    /// Kept in the intent but not rendered: no neighbor carries its family.
    pub unreachable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectAnswer {
    pub object: ObjectId,
    /// One entry per address of the object (or one without a prefix when it has none).
    pub evidence: Vec<Evidence>,
    /// Sentences about a Node or a VpcNatGateway.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// An object as the JSON names it; the text form escapes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectId {
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl From<&ObjectRef> for ObjectId {
    fn from(o: &ObjectRef) -> ObjectId {
        ObjectId {
            kind: o.kind,
            namespace: o.namespace.clone(),
            name: o.name.clone(),
        }
    }
}

impl ObjectId {
    /// `Pod default/sample`, escaped.
    fn label(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {}/{}", self.kind, escape(ns), escape(&self.name)),
            None => format!("{} {}", self.kind, escape(&self.name)),
        }
    }
}

/// How an object's prefix relates to the queried prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relation {
    Exact,
    /// The object's prefix is inside the queried one.
    Inside,
    /// The object's prefix contains the queried one.
    Covers,
}

impl Relation {
    /// Whether `found` stands in this relation to the queried `prefix`.
    fn holds(self, found: IpNet, prefix: IpNet) -> bool {
        match self {
            Relation::Exact => found == prefix,
            Relation::Inside => found != prefix && prefix.contains(&found),
            Relation::Covers => found != prefix && found.contains(&prefix),
        }
    }
}

/// The intent's own answer for a prefix (its route, the announced prefix covering it, how many
/// announced prefixes lie inside it), around the evidence gathered by the caller.
fn prefix_answer(
    intent: &Intent,
    prefix: IpNet,
    address: Option<IpAddr>,
    evidence: Vec<Evidence>,
) -> PrefixAnswer {
    let route = intent.routes.iter().find(|r| r.prefix == prefix);
    let covered_by = if route.is_some_and(|r| !r.unreachable) {
        None
    } else {
        intent
            .announced()
            .filter(|r| Relation::Covers.holds(r.prefix, prefix))
            .map(|r| r.prefix)
            .max_by_key(|p| p.prefix_len())
    };
    let announced_inside = intent
        .announced()
        .filter(|r| Relation::Inside.holds(r.prefix, prefix))
        .count();
    PrefixAnswer {
        prefix,
        family: Family::of(prefix.addr()),
        address,
        route: route.map(|r| RouteState {
            next_hop: r.next_hop,
            unreachable: r.unreachable,
        }),
        covered_by,
        announced_inside,
        evidence,
    }
}

/// What one rule says about one prefix of one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    pub object: ObjectId,
    /// None for an object without any address.
    pub prefix: Option<IpNet>,
    /// For a prefix query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<Relation>,
    pub state: EvidenceState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// Which rule selected it (`annotation ovn.kubernetes.io/bgp=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub because: Option<String>,
    /// Why it is not announced (or not rendered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<NextHop>,
    /// The sentence the text form prints.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceState {
    Announced,
    /// Selected by a rule, but its family is carried by no neighbor.
    NotRendered,
    NotAnnounced,
}

/// At most this many objects inside a queried prefix are listed in the text form (a /16 of a
/// large cluster holds thousands); `-o json` lists every one.
const TEXT_INSIDE_LINES: usize = 100;

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

/// What a finding says about one of its prefixes.
fn evidence(
    f: &Finding,
    prefix: Option<IpNet>,
    relation: Option<Relation>,
    intent: &Intent,
) -> Evidence {
    let mut e = Evidence {
        object: ObjectId::from(&f.object),
        prefix,
        relation,
        state: EvidenceState::NotAnnounced,
        policy: None,
        because: None,
        reason: None,
        next_hop: None,
        message: String::new(),
    };
    match &f.outcome {
        Outcome::Announced { policy, because } => {
            e.policy = Some(*policy);
            e.because = Some(because.to_string());
            let route = prefix.and_then(|p| intent.routes.iter().find(|r| r.prefix == p));
            match route {
                Some(r) if r.unreachable => {
                    let reason = Reason::FamilyNotCarried(r.family).to_string();
                    e.message =
                        format!("selected (policy {policy}, {because}) but not rendered: {reason}");
                    e.state = EvidenceState::NotRendered;
                    e.reason = Some(reason);
                }
                Some(r) => {
                    e.message = format!(
                        "announced, policy {policy} ({because}), next hop {}",
                        r.next_hop
                    );
                    e.state = EvidenceState::Announced;
                    e.next_hop = Some(r.next_hop);
                }
                None => {
                    e.message = format!("announced, policy {policy} ({because})");
                    e.state = EvidenceState::Announced;
                }
            }
        }
        Outcome::NotAnnounced(reason) => {
            e.message = format!("not announced: {reason}");
            e.reason = Some(reason.to_string());
        }
    }
    e
}

/// Answers a query in text: [`explanation`] then [`Explanation::to_text`].
pub fn explain(
    snapshot: &Snapshot,
    options: &SpeakerOptions,
    intent: &Intent,
    query: &Query,
) -> Result<String, QueryError> {
    Ok(explanation(snapshot, options, intent, query)?.to_text())
}

/// Answers a query. An error when an object is not in the input.
pub fn explanation(
    snapshot: &Snapshot,
    options: &SpeakerOptions,
    intent: &Intent,
    query: &Query,
) -> Result<Explanation, QueryError> {
    let findings = all_findings(snapshot, options);
    let mut out = Explanation {
        api_version: "bgpgen/v1".to_string(),
        kind: "Explanation".to_string(),
        query: query.to_string(),
        state: State::NotAnnounced,
        basis: Basis::Rules,
        intent_hash: intent.hash.clone(),
        notes: Vec::new(),
        prefix: None,
        object: None,
    };
    match query {
        Query::Object(object) => {
            if !exists(snapshot, object) {
                return Err(QueryError::NotFound(object.clone()));
            }
            let mut answer = ObjectAnswer {
                object: ObjectId::from(object),
                evidence: Vec::new(),
                notes: Vec::new(),
            };
            match object.kind {
                Kind::Node => {
                    let (mine, note) = explain_node(snapshot, options, &object.name);
                    answer.notes.push(note);
                    out.state = speaker_state(mine);
                }
                Kind::VpcNatGateway => {
                    let (mine, note) = explain_gateway(options, &object.name);
                    answer.notes.push(note);
                    out.state = speaker_state(mine);
                }
                _ => {
                    for f in findings.iter().filter(|f| &f.object == object) {
                        if f.prefixes.is_empty() {
                            answer.evidence.push(evidence(f, None, None, intent));
                        }
                        for &p in &f.prefixes {
                            answer.evidence.push(evidence(f, Some(p), None, intent));
                        }
                    }
                    let announced = answer
                        .evidence
                        .iter()
                        .filter(|e| e.state == EvidenceState::Announced)
                        .count();
                    out.state = match announced {
                        0 => State::NotAnnounced,
                        n if n == answer.evidence.len() => State::Announced,
                        _ => State::Partial,
                    };
                }
            }
            out.object = Some(answer);
        }
        Query::Prefix(prefix) => {
            let answer = explain_prefix(&findings, intent, *prefix, None);
            out.state = prefix_state(&answer);
            out.prefix = Some(answer);
        }
        Query::Ip(ip) => {
            let answer = explain_prefix(&findings, intent, IpNet::from(*ip), Some(*ip));
            out.state = prefix_state(&answer);
            out.prefix = Some(answer);
        }
    }
    Ok(out)
}

fn speaker_state(mine: bool) -> State {
    if mine {
        State::ThisSpeaker
    } else {
        State::OtherSpeaker
    }
}

fn prefix_state(a: &PrefixAnswer) -> State {
    match (&a.route, a.covered_by, a.announced_inside) {
        (Some(r), _, _) if !r.unreachable => State::Announced,
        (_, Some(_), _) => State::Covered,
        (_, None, n) if n > 0 => State::Partial,
        _ => State::NotAnnounced,
    }
}

fn explain_prefix(
    findings: &[Finding],
    intent: &Intent,
    prefix: IpNet,
    ip: Option<IpAddr>,
) -> PrefixAnswer {
    let mut evidence_list = Vec::new();
    // Exact first, then what lies inside, then what covers it: from the answer outwards.
    for relation in [Relation::Exact, Relation::Inside, Relation::Covers] {
        let start = evidence_list.len();
        for f in findings {
            for &p in &f.prefixes {
                if relation.holds(p, prefix) {
                    evidence_list.push(evidence(f, Some(p), Some(relation), intent));
                }
            }
        }
        // Stable sorts: the rules' own order stays within one prefix.
        match relation {
            Relation::Exact => {}
            Relation::Inside => evidence_list[start..].sort_by_key(|e| e.prefix),
            // The most specific first: from the answer outwards.
            Relation::Covers => evidence_list[start..]
                .sort_by_key(|e| std::cmp::Reverse(e.prefix.map(|p| p.prefix_len()))),
        }
    }
    prefix_answer(intent, prefix, ip, evidence_list)
}

fn explain_node(snapshot: &Snapshot, options: &SpeakerOptions, node: &str) -> (bool, String) {
    let local_pods = snapshot
        .pods
        .values()
        .filter(|p| p.node.as_deref() == Some(node))
        .count();
    match &options.mode {
        SpeakerMode::Node { node: mine } if mine == node => (
            true,
            format!(
                "this speaker's node; {local_pods} pod(s) run here, and those with policy local are announced by this speaker"
            ),
        ),
        SpeakerMode::Node { node: mine } => (
            false,
            format!(
                "not this speaker's node ({}); pods with policy local on it are announced by the speaker on {}",
                escape(mine),
                escape(node)
            ),
        ),
        SpeakerMode::NatGateway { gateway } => (
            false,
            format!(
                "this speaker runs in NAT-gateway mode for {}; nodes do not matter",
                escape(gateway)
            ),
        ),
    }
}

fn explain_gateway(options: &SpeakerOptions, gateway: &str) -> (bool, String) {
    match &options.mode {
        SpeakerMode::NatGateway { gateway: mine } if mine == gateway => (
            true,
            "this speaker's gateway: its ready EIPs annotated ovn.kubernetes.io/bgp=true are announced"
                .to_string(),
        ),
        _ => (
            false,
            "not this speaker's gateway; its EIPs are announced by its own speaker sidecar"
                .to_string(),
        ),
    }
}

impl Explanation {
    /// The human form. Every text that may come from the input (or from a sidecar's answer)
    /// is escaped here, so no name can forge a line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if let Some(a) = &self.object {
            let _ = writeln!(out, "{}:", a.object.label());
            for note in &a.notes {
                let _ = writeln!(out, "  {}", escape(note));
            }
            for e in &a.evidence {
                match e.prefix {
                    Some(p) => {
                        let _ = writeln!(out, "  {p}: {}", escape(&e.message));
                    }
                    None => {
                        let _ = writeln!(out, "  (no address): {}", escape(&e.message));
                    }
                }
            }
        }
        if let Some(a) = &self.prefix {
            let (prefix, family) = (a.prefix, a.family);
            let headline = match (&a.route, a.covered_by, a.announced_inside) {
                (Some(r), _, _) if r.unreachable => {
                    format!("not announced: {}", Reason::FamilyNotCarried(family))
                }
                (Some(r), _, _) => format!("announced, next hop {}", r.next_hop),
                (None, Some(c), _) => format!("not announced itself; inside announced {c}"),
                (None, None, n) if n > 0 => format!(
                    "not announced itself; {n} announced route{} inside it",
                    if n == 1 { "" } else { "s" }
                ),
                (None, None, _) => "not announced".to_string(),
            };
            let _ = writeln!(out, "{prefix} ({family}): {headline}");
            let shown = match a.address {
                Some(ip) => ip.to_string(),
                None => prefix.to_string(),
            };
            let mut inside = 0;
            for e in &a.evidence {
                if e.relation == Some(Relation::Inside) {
                    inside += 1;
                    if inside > TEXT_INSIDE_LINES {
                        continue;
                    }
                }
                let label = e.object.label();
                let message = escape(&e.message);
                match (e.relation, e.prefix) {
                    (Some(Relation::Inside), Some(p)) => {
                        let _ = writeln!(out, "  {label} ({p} inside {shown}): {message}");
                    }
                    (Some(Relation::Covers), Some(p)) => {
                        let _ = writeln!(out, "  {label} ({p} covers {shown}): {message}");
                    }
                    _ => {
                        let _ = writeln!(out, "  {label}: {message}");
                    }
                }
            }
            if inside > TEXT_INSIDE_LINES {
                let _ = writeln!(
                    out,
                    "  ({} more inside {shown}; -o json lists them all)",
                    inside - TEXT_INSIDE_LINES
                );
            }
            if a.evidence.is_empty() {
                let _ = writeln!(
                    out,
                    "  {}",
                    match self.basis {
                        Basis::Rules =>
                            "no object in the input has this address or prefix, or one inside or covering it",
                        Basis::Intent =>
                            "no route of the intent in force is this prefix, inside it or covering it",
                    }
                );
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {}", escape(note));
        }
        out
    }
}

/// Answers a query from an intent alone (a running sidecar's, read from its `/intent`): which
/// routes are announced for it and from which objects, and the diagnostics about an object. What
/// only the rules can tell (why an object with no route is not announced, whether it exists)
/// is said in a note. `stale`: why the intent in force is not that of the current input.
pub fn from_intent(intent: &Intent, query: &Query, stale: &[String]) -> Explanation {
    let mut out = Explanation {
        api_version: "bgpgen/v1".to_string(),
        kind: "Explanation".to_string(),
        query: query.to_string(),
        state: State::NotAnnounced,
        basis: Basis::Intent,
        intent_hash: intent.hash.clone(),
        notes: Vec::new(),
        prefix: None,
        object: None,
    };
    let route_evidence = |r: &crate::intent::Route, src: &crate::intent::Source, relation| {
        let (state, message, reason) = if r.unreachable {
            let reason = Reason::FamilyNotCarried(r.family).to_string();
            (
                EvidenceState::NotRendered,
                format!(
                    "selected (policy {}) but not rendered: {reason}",
                    src.policy
                ),
                Some(reason),
            )
        } else {
            (
                EvidenceState::Announced,
                format!("announced, policy {}, next hop {}", src.policy, r.next_hop),
                None,
            )
        };
        Evidence {
            object: ObjectId {
                kind: src.kind,
                namespace: src.namespace.as_ref().map(ToString::to_string),
                name: src.name.to_string(),
            },
            prefix: Some(r.prefix),
            relation,
            state,
            policy: Some(src.policy),
            because: None,
            reason,
            next_hop: (!r.unreachable).then_some(r.next_hop),
            message,
        }
    };
    let target = match query {
        Query::Ip(ip) => Some((IpNet::from(*ip), Some(*ip))),
        Query::Prefix(p) => Some((*p, None)),
        Query::Object(_) => None,
    };
    match (query, target) {
        (_, Some((prefix, address))) => {
            let mut evidence_list = Vec::new();
            for relation in [Relation::Exact, Relation::Inside, Relation::Covers] {
                let start = evidence_list.len();
                for r in &intent.routes {
                    if relation.holds(r.prefix, prefix) {
                        for src in &r.sources {
                            evidence_list.push(route_evidence(r, src, Some(relation)));
                        }
                    }
                }
                if relation == Relation::Covers {
                    evidence_list[start..]
                        .sort_by_key(|e| std::cmp::Reverse(e.prefix.map(|p| p.prefix_len())));
                }
            }
            let answer = prefix_answer(intent, prefix, address, evidence_list);
            out.state = prefix_state(&answer);
            out.prefix = Some(answer);
            out.notes.push(
                "answered from the sidecar's intent in force: objects that announce nothing do not appear (explain -f on the same manifests and options says why)".to_string(),
            );
        }
        (Query::Object(object), None) => {
            let id = ObjectId::from(object);
            let mut answer = ObjectAnswer {
                object: id.clone(),
                evidence: Vec::new(),
                notes: Vec::new(),
            };
            match object.kind {
                Kind::Node | Kind::VpcNatGateway => {
                    let (mine, name) = match object.kind {
                        Kind::Node => (intent.speaker.node.as_deref(), "node"),
                        _ => (intent.speaker.gateway.as_deref(), "gateway"),
                    };
                    let is_mine = mine == Some(object.name.as_str());
                    answer.notes.push(match (is_mine, mine) {
                        (true, _) => format!("this speaker's {name}"),
                        (false, Some(m)) => {
                            format!(
                                "not this speaker's {name} (this speaker's is {})",
                                escape(m)
                            )
                        }
                        (false, None) => format!("this speaker is not bound to a {name}"),
                    });
                    out.state = speaker_state(is_mine);
                }
                _ => {
                    for r in &intent.routes {
                        for src in &r.sources {
                            if src.kind == object.kind
                                && src.namespace.as_deref() == object.namespace.as_deref()
                                && src.name == object.name
                            {
                                answer.evidence.push(route_evidence(r, src, None));
                            }
                        }
                    }
                    let label = object.to_string();
                    for d in &intent.diagnostics {
                        if d.object == label {
                            answer.evidence.push(Evidence {
                                object: id.clone(),
                                prefix: None,
                                relation: None,
                                state: EvidenceState::NotAnnounced,
                                policy: None,
                                because: None,
                                reason: Some(d.message.clone()),
                                next_hop: None,
                                message: format!("{}: {}", d.level, d.message),
                            });
                        }
                    }
                    let announced = answer
                        .evidence
                        .iter()
                        .filter(|e| e.state == EvidenceState::Announced)
                        .count();
                    out.state = match announced {
                        0 => State::NotAnnounced,
                        n if n == answer.evidence.len() => State::Announced,
                        _ => State::Partial,
                    };
                    if answer.evidence.is_empty() {
                        out.notes.push(format!(
                            "no route and no diagnostic of the sidecar's intent in force comes from {label} (explain -f on the same manifests and options says why)"
                        ));
                    }
                }
            }
            out.object = Some(answer);
        }
        // A prefix or address query always has a target.
        (_, None) => {}
    }
    for why in stale {
        out.notes
            .push(format!("the sidecar's intent in force is stale: {why}"));
    }
    out
}
