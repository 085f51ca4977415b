//! The incremental engine: the cluster state, the options, and the intent they compile to, kept
//! current one object event at a time. Pure: no I/O, no clock; the sources feed it events, the
//! sidecar keeps it, the drivers take its route deltas.
//!
//! [`compile::compile`] computes the intent as the sum of every object's [`Contribution`] (its
//! routes and diagnostics), given the options. The engine keeps that sum: the objects (the
//! [`Snapshot`] it owns, never copied), a route table of each prefix's sources (counted, since
//! two attachments of one pod may name the same address), the diagnostics (counted, the intent
//! shows each once), and the intent's hash as an order-independent sum of per-route and
//! per-diagnostic digests ([`crate::intent::HashParts`]). When an object changes, its old
//! contribution is taken out and its new one put in; what an event touches is:
//!
//! | event | recomputed |
//! |---|---|
//! | Pod, Service, IptablesEIP added, changed, deleted | that object |
//! | Subnet added, changed, deleted | that subnet and the pods whose attachments name it (indexed by subnet) |
//! | Node, VpcNatGateway | nothing; [`Delta::resolve_again`] when option resolution reads what changed |
//! | an object equal to the one held (a status heartbeat) | nothing |
//! | relist of a kind (whole, or streamed: [`crate::relist`]) | the objects that differ from those held |
//! | options: mode or `--announce-cluster-ip` | everything (rare) |
//! | options: next hops (`--node-ips`), families carried | every route's attributes, no rule |
//! | options: anything else | the header (speaker, bgp, neighbors) |
//!
//! The full compile stays the oracle: after any sequence of events, [`Engine::intent`] is equal,
//! byte for byte in YAML and JSON and in its hash, to `compile(engine.snapshot(), options,
//! prior)` (property test in tests/engine.rs).
//!
//! # API
//!
//! ```text
//! let resolved = resolve(&args, &env, &snapshot, &read_file)?;      // at the edge (I/O)
//! let mut engine = Engine::new(snapshot, resolved.options, resolved.diagnostics);
//! let delta = engine.apply(Event::Upsert(Object::Pod(pod)));         // or apply_all(events)
//! if delta.resolve_again {                                           // a Node / the gateway changed
//!     let r = resolve(&args, &env, engine.snapshot(), &read_file)?;
//!     delta.merge(engine.set_options(r.options, r.diagnostics));
//! }
//! delta.added / removed / changed        // routes, before and after (drivers: Delta::paths)
//! delta.session                          // speaker, bgp settings or neighbors changed
//! engine.hash()                          // the intent's hash, O(1)
//! engine.intent()                        // the whole document, O(routes): /intent, render
//! engine.explain(&query)                 // `bgpgen explain` on the live state
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv6Addr;

use ipnet::{IpNet, Ipv6Net};

use crate::compile::{
    self, Contribution, RouteAttributes, eip_contribution, pod_contribution, service_contribution,
    subnet_contribution,
};
use crate::diagnostic::Diagnostic;
use crate::explain::{Query, QueryError};
use crate::intent::{
    self, Bgp, DigestSum, HashParts, Intent, Neighbor, Route, Source, Speaker, diagnostic_digest,
    route_digest,
};
use crate::model::{Family, Kind, Name, ObjectRef};
use crate::options::{SpeakerMode, SpeakerOptions};
use crate::relist::Relists;
use crate::snapshot::{Object, Origin, PodInfo, Snapshot};

/// One change of the cluster state, as a source sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An object added or changed (a watch's ADDED or MODIFIED; a manifest that holds it now).
    Upsert(Object),
    /// An object gone (nothing happens when it was not held).
    Delete(ObjectRef),
    /// Every object of a kind, replacing those held: a completed relist, a reloaded directory.
    Relist(Kind, Vec<Object>),
    /// A relist of a kind streamed in ([`crate::relist`]): it begins; nothing of it is applied
    /// before its [`Event::RelistEnd`].
    RelistBegin(Kind),
    /// An object of the relist in progress of its kind (outside one: an upsert).
    Listed(Object),
    /// An object of the relist in progress that the rules cannot read: its held version (if
    /// any) stays.
    Kept(ObjectRef),
    /// The relist of a kind is complete: what it changes is applied now, the objects of the
    /// kind it did not list are deleted.
    RelistEnd(Kind),
    /// What the source skipped and why (already escaped), replacing the previous notes.
    InputWarnings(Vec<String>),
}

/// A route in the intent before and after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteChange {
    pub before: Route,
    pub after: Route,
}

/// What one event (or batch of events, or options change) changed in the intent. Routes are in
/// the intent's order (family, prefix); a route that was changed and changed back is not in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// Routes that are in the intent now and were not.
    pub added: Vec<Route>,
    /// Routes that were in the intent and are not any more (as they were).
    pub removed: Vec<Route>,
    /// Routes in both whose sources, next hop or reachability changed.
    pub changed: Vec<RouteChange>,
    /// Diagnostics that appeared, and that went away.
    pub diagnostics_added: Vec<Diagnostic>,
    pub diagnostics_removed: Vec<Diagnostic>,
    /// Something beyond routes and diagnostics changed: the speaker, BGP settings or neighbors
    /// (sessions: the daemon files are rendered whole).
    pub session: bool,
    /// A Node appeared or went (node mode: the warning about `--node-name`), or this speaker's
    /// VpcNatGateway changed (NAT-gateway mode: options come from its spec). Option resolution
    /// reads these: resolve again against [`Engine::snapshot`] and call [`Engine::set_options`].
    pub resolve_again: bool,
}

/// What a daemon has to be told about routes: announce (a new route, a route that became
/// reachable, a changed next hop) and withdraw (a route gone or no longer reachable). Sources are
/// provenance only; a change of sources alone is in neither.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Paths<'a> {
    pub announce: Vec<&'a Route>,
    pub withdraw: Vec<&'a Route>,
}

impl Delta {
    /// Nothing changed at all.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.diagnostics_added.is_empty()
            && self.diagnostics_removed.is_empty()
            && !self.session
            && !self.resolve_again
    }

    /// The route changes as a daemon sees them ([`Paths`]).
    pub fn paths(&self) -> Paths<'_> {
        let mut paths = Paths::default();
        for r in &self.added {
            if !r.unreachable {
                paths.announce.push(r);
            }
        }
        for r in &self.removed {
            if !r.unreachable {
                paths.withdraw.push(r);
            }
        }
        for RouteChange { before, after } in &self.changed {
            match (before.unreachable, after.unreachable) {
                (true, false) => paths.announce.push(after),
                (false, true) => paths.withdraw.push(before),
                (false, false) if before.next_hop != after.next_hop => paths.announce.push(after),
                _ => {}
            }
        }
        paths
    }

    /// Brings `intent` (the intent this delta starts from) to the one it ends at, whose hash is
    /// `hash`: the routes and diagnostics it names are replaced in place (binary search; no copy
    /// of the other routes), so the intent in force follows the engine at the cost of the change.
    /// A [`Delta::session`] change (speaker, BGP settings, neighbors) is not in it: take the
    /// whole [`Engine::intent`] then.
    pub fn apply_to(&self, intent: &mut Intent, hash: &str) {
        let find = |routes: &Vec<Route>, r: &Route| {
            routes.binary_search_by(|x| (x.family, x.prefix).cmp(&(r.family, r.prefix)))
        };
        for r in &self.removed {
            if let Ok(i) = find(&intent.routes, r) {
                intent.routes.remove(i);
            }
        }
        for RouteChange { after, .. } in &self.changed {
            match find(&intent.routes, after) {
                Ok(i) => intent.routes[i] = after.clone(),
                Err(i) => intent.routes.insert(i, after.clone()),
            }
        }
        for r in &self.added {
            match find(&intent.routes, r) {
                Ok(i) => intent.routes[i] = r.clone(),
                Err(i) => intent.routes.insert(i, r.clone()),
            }
        }
        let find = |diagnostics: &Vec<Diagnostic>, d: &Diagnostic| {
            diagnostics.binary_search_by(|x| intent::diagnostic_order(x, d))
        };
        for d in &self.diagnostics_removed {
            if let Ok(i) = find(&intent.diagnostics, d) {
                intent.diagnostics.remove(i);
            }
        }
        for d in &self.diagnostics_added {
            if let Err(i) = find(&intent.diagnostics, d) {
                intent.diagnostics.insert(i, d.clone());
            }
        }
        intent.hash = hash.to_string();
    }

    /// This delta followed by `later`, as one delta (a route added then removed is in neither).
    pub fn merge(&mut self, later: Delta) {
        let mut routes: BTreeMap<(Family, IpNet), (Option<Route>, Option<Route>)> = BTreeMap::new();
        let mut earlier = std::mem::take(self);
        let mut later = later;
        let diagnostics_added = [
            std::mem::take(&mut earlier.diagnostics_added),
            std::mem::take(&mut later.diagnostics_added),
        ];
        let diagnostics_removed = [
            std::mem::take(&mut earlier.diagnostics_removed),
            std::mem::take(&mut later.diagnostics_removed),
        ];
        self.session = earlier.session || later.session;
        self.resolve_again = earlier.resolve_again || later.resolve_again;
        for (before, after) in earlier.pairs_owned().chain(later.pairs_owned()) {
            let key = before
                .as_ref()
                .or(after.as_ref())
                .map(|r| (r.family, r.prefix));
            let Some(key) = key else { continue };
            routes
                .entry(key)
                .and_modify(|e| e.1 = after.clone())
                .or_insert((before, after));
        }
        for (_, pair) in routes {
            self.push(pair);
        }
        let mut net: BTreeMap<DiagKey, i32> = BTreeMap::new();
        for d in diagnostics_added.into_iter().flatten() {
            *net.entry(DiagKey(d)).or_default() += 1;
        }
        for d in diagnostics_removed.into_iter().flatten() {
            *net.entry(DiagKey(d)).or_default() -= 1;
        }
        for (DiagKey(d), n) in net {
            match n.cmp(&0) {
                std::cmp::Ordering::Greater => self.diagnostics_added.push(d),
                std::cmp::Ordering::Less => self.diagnostics_removed.push(d),
                std::cmp::Ordering::Equal => {}
            }
        }
    }

    fn pairs_owned(self) -> impl Iterator<Item = (Option<Route>, Option<Route>)> {
        self.added
            .into_iter()
            .map(|r| (None, Some(r)))
            .chain(self.removed.into_iter().map(|r| (Some(r), None)))
            .chain(
                self.changed
                    .into_iter()
                    .map(|c| (Some(c.before), Some(c.after))),
            )
    }

    fn push(&mut self, (before, after): (Option<Route>, Option<Route>)) {
        match (before, after) {
            (None, Some(a)) => self.added.push(a),
            (Some(b), None) => self.removed.push(b),
            (Some(b), Some(a)) if b != a => self.changed.push(RouteChange {
                before: b,
                after: a,
            }),
            _ => {}
        }
    }
}

/// A diagnostic ordered as the intent orders them (object, level, message).
#[derive(Debug, Clone, PartialEq, Eq)]
struct DiagKey(Diagnostic);

impl Ord for DiagKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        intent::diagnostic_order(&self.0, &other.0)
    }
}

impl PartialOrd for DiagKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// One prefix of the route table: its sources in order, each with how many times it is one
/// (nearly always one source: a vector, not a map, which would allocate a node of eleven).
/// The route's digest is not kept: it is computed again from the route when the prefix is
/// touched, which the change pays anyway to produce its delta.
#[derive(Debug, Clone, Default)]
struct Entry {
    sources: Vec<(Source, u32)>,
}

/// The sum of the contributions, and what the current batch changed in it.
#[derive(Debug, Default)]
struct Table {
    routes: BTreeMap<IpNet, Entry>,
    diagnostics: BTreeMap<DiagKey, u32>,
    route_sum: DigestSum,
    diagnostic_sum: DigestSum,
    /// Routes per family (index 0: IPv4).
    family_routes: [usize; 2],
    /// Each prefix touched in this batch, with its route before the batch. Its digest is out
    /// of `route_sum` (and it out of `family_routes`) until the batch is finalized.
    touched: HashMap<IpNet, Option<Route>>,
    /// Diagnostics that appeared (+1) or went (-1) in this batch.
    diagnostic_net: HashMap<Diagnostic, i32>,
}

fn family_index(family: Family) -> usize {
    match family {
        Family::Ipv4Unicast => 0,
        Family::Ipv6Unicast => 1,
    }
}

/// The smallest IPv6 prefix: every IPv4 prefix sorts before it.
fn first_v6() -> IpNet {
    IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::UNSPECIFIED, 0))
}

impl Table {
    fn materialize(attributes: &RouteAttributes, prefix: IpNet, entry: &Entry) -> Route {
        attributes.route(
            prefix,
            entry.sources.iter().map(|(s, _)| s.clone()).collect(),
        )
    }

    fn touch(&mut self, attributes: &RouteAttributes, prefix: IpNet) {
        if self.touched.contains_key(&prefix) {
            return;
        }
        let before = self.routes.get(&prefix).map(|entry| {
            let route = Self::materialize(attributes, prefix, entry);
            self.route_sum.sub(&route_digest(&route));
            route
        });
        self.touched.insert(prefix, before);
    }

    fn touch_all(&mut self, attributes: &RouteAttributes) {
        let prefixes: Vec<IpNet> = self.routes.keys().copied().collect();
        for p in prefixes {
            self.touch(attributes, p);
        }
    }

    fn add(&mut self, attributes: &RouteAttributes, c: Contribution) {
        for (prefix, source) in c.routes {
            self.touch(attributes, prefix);
            let family_routes = &mut self.family_routes;
            let entry = self.routes.entry(prefix).or_insert_with(|| {
                family_routes[family_index(Family::of(prefix.addr()))] += 1;
                Entry::default()
            });
            match entry.sources.binary_search_by(|(s, _)| s.cmp(&source)) {
                Ok(i) => entry.sources[i].1 += 1,
                Err(i) => {
                    entry.sources.reserve_exact(1);
                    entry.sources.insert(i, (source, 1));
                }
            }
        }
        for d in c.diagnostics {
            self.add_diagnostic(d);
        }
    }

    fn sub(&mut self, attributes: &RouteAttributes, c: Contribution) {
        for (prefix, source) in c.routes {
            self.touch(attributes, prefix);
            let Some(entry) = self.routes.get_mut(&prefix) else {
                debug_assert!(false, "{prefix} taken out but not in the table");
                continue;
            };
            match entry.sources.binary_search_by(|(s, _)| s.cmp(&source)) {
                Ok(i) if entry.sources[i].1 > 1 => entry.sources[i].1 -= 1,
                Ok(i) => {
                    entry.sources.remove(i);
                    entry.sources.shrink_to_fit();
                }
                Err(_) => debug_assert!(false, "{source} taken out of {prefix} but not in it"),
            }
            if entry.sources.is_empty() {
                self.routes.remove(&prefix);
                self.family_routes[family_index(Family::of(prefix.addr()))] -= 1;
            }
        }
        for d in c.diagnostics {
            self.sub_diagnostic(d);
        }
    }

    fn add_diagnostic(&mut self, d: Diagnostic) {
        let key = DiagKey(d);
        match self.diagnostics.get_mut(&key) {
            Some(n) => *n += 1,
            None => {
                self.diagnostic_sum.add(&diagnostic_digest(&key.0));
                *self.diagnostic_net.entry(key.0.clone()).or_default() += 1;
                self.diagnostics.insert(key, 1);
            }
        }
    }

    fn sub_diagnostic(&mut self, d: Diagnostic) {
        let key = DiagKey(d);
        match self.diagnostics.get_mut(&key) {
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                self.diagnostics.remove(&key);
                self.diagnostic_sum.sub(&diagnostic_digest(&key.0));
                *self.diagnostic_net.entry(key.0).or_default() -= 1;
            }
            None => debug_assert!(false, "diagnostic {} taken out but not held", key.0),
        }
    }

    /// Settles the batch: the touched routes' digests back into the sum, and what changed.
    fn finalize(&mut self, attributes: &RouteAttributes, delta: &mut Delta) {
        let mut touched: Vec<(IpNet, Option<Route>)> = self.touched.drain().collect();
        touched.sort_by_key(|(p, _)| (Family::of(p.addr()), *p));
        for (prefix, before) in touched {
            let after = self.routes.get(&prefix).map(|entry| {
                let route = Self::materialize(attributes, prefix, entry);
                self.route_sum.add(&route_digest(&route));
                route
            });
            delta.push((before, after));
        }
        let mut net: Vec<(Diagnostic, i32)> = self.diagnostic_net.drain().collect();
        net.sort_by(|a, b| intent::diagnostic_order(&a.0, &b.0));
        for (d, n) in net {
            match n.cmp(&0) {
                std::cmp::Ordering::Greater => delta.diagnostics_added.push(d),
                std::cmp::Ordering::Less => delta.diagnostics_removed.push(d),
                std::cmp::Ordering::Equal => {}
            }
        }
    }

    /// The first (at most three) prefixes of a family, in order.
    fn first_of(&self, family: Family) -> Vec<IpNet> {
        let range = match family {
            Family::Ipv4Unicast => self.routes.range(..first_v6()),
            Family::Ipv6Unicast => self.routes.range(first_v6()..),
        };
        range.take(3).map(|(p, _)| *p).collect()
    }
}

/// The options-derived header of the intent, with its digest.
#[derive(Debug, Clone)]
struct Header {
    speaker: Speaker,
    bgp: Bgp,
    neighbors: Vec<Neighbor>,
    digest: [u8; 32],
}

impl Header {
    fn of(options: &SpeakerOptions) -> Header {
        let (speaker, bgp, neighbors) = compile::header(options);
        let digest = intent::header_digest(
            intent::API_VERSION,
            intent::KIND,
            &speaker,
            &bgp,
            &neighbors,
        );
        Header {
            speaker,
            bgp,
            neighbors,
            digest,
        }
    }
}

/// The cluster state and the intent it compiles to, kept current per event (module docs).
#[derive(Debug)]
pub struct Engine {
    snapshot: Snapshot,
    options: SpeakerOptions,
    prior: Vec<Diagnostic>,
    attributes: RouteAttributes,
    header: Header,
    /// Pods by the subnet (logical switch) an attachment of theirs names, known or not: the
    /// pods a Subnet event touches.
    pods_by_subnet: HashMap<Name, BTreeSet<(Name, Name)>>,
    table: Table,
    /// Relists streamed in and not complete yet: not in the state held.
    relists: Relists,
    /// The diagnostics that belong to no object, as counted in the table.
    global: Vec<Diagnostic>,
    hash: String,
}

impl Engine {
    /// The engine holding `snapshot` (a source's first complete list) under `options`, with
    /// `prior` the diagnostics of option resolution.
    pub fn new(snapshot: Snapshot, options: SpeakerOptions, prior: Vec<Diagnostic>) -> Engine {
        let attributes = RouteAttributes::of(&options);
        let header = Header::of(&options);
        let mut engine = Engine {
            snapshot,
            options,
            prior,
            attributes,
            header,
            pods_by_subnet: HashMap::new(),
            table: Table::default(),
            relists: Relists::default(),
            global: Vec::new(),
            hash: String::new(),
        };
        let pods: Vec<(Name, Name)> = engine.snapshot.pods.keys().cloned().collect();
        for key in pods {
            if let Some(pod) = engine.snapshot.pods.get(&key) {
                index_pod(&mut engine.pods_by_subnet, pod, true);
            }
        }
        engine.contribute_all(true);
        let mut delta = Delta::default();
        engine.finalize(&mut delta);
        engine
    }

    /// The engine carrying on the relists in progress on the state it was built from (the
    /// sidecar keeps the source's changes in a plain snapshot until options resolve).
    pub fn with_relists(mut self, relists: Relists) -> Engine {
        self.relists = relists;
        self
    }

    /// True while a relist streamed in is not complete (its objects are not held yet).
    pub fn relisting(&self) -> bool {
        self.relists.in_progress()
    }

    /// An engine with no objects yet (`origin` says how a Subnet without status counts).
    pub fn empty(origin: Origin, options: SpeakerOptions, prior: Vec<Diagnostic>) -> Engine {
        Engine::new(Snapshot::new(origin), options, prior)
    }

    /// The objects held: what option resolution, `explain` and Events read.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    pub fn options(&self) -> &SpeakerOptions {
        &self.options
    }

    /// The diagnostics of option resolution given with the options.
    pub fn prior(&self) -> &[Diagnostic] {
        &self.prior
    }

    /// The intent's hash, as [`Engine::intent`] carries it. O(1).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Number of routes in the intent (reachable or not).
    pub fn route_count(&self) -> usize {
        self.table.routes.len()
    }

    /// One route of the intent.
    pub fn route(&self, prefix: IpNet) -> Option<Route> {
        let entry = self.table.routes.get(&prefix)?;
        Some(Table::materialize(&self.attributes, prefix, entry))
    }

    /// Every route of the intent, in its order.
    pub fn routes(&self) -> impl Iterator<Item = Route> + '_ {
        self.table
            .routes
            .iter()
            .map(|(p, e)| Table::materialize(&self.attributes, *p, e))
    }

    /// The whole intent, equal to `compile(self.snapshot(), self.options(), self.prior())`.
    /// O(routes): for `/intent`, `explain` and rendering the daemon files.
    pub fn intent(&self) -> Intent {
        Intent {
            api_version: intent::API_VERSION.to_string(),
            kind: intent::KIND.to_string(),
            speaker: self.header.speaker.clone(),
            bgp: self.header.bgp.clone(),
            neighbors: self.header.neighbors.clone(),
            routes: self.routes().collect(),
            diagnostics: self.table.diagnostics.keys().map(|k| k.0.clone()).collect(),
            hash: self.hash.clone(),
        }
    }

    /// `bgpgen explain` against the state held.
    pub fn explain(&self, query: &Query) -> Result<String, QueryError> {
        crate::explain::explain(&self.snapshot, &self.options, &self.intent(), query)
    }

    /// Applies one event.
    pub fn apply(&mut self, event: Event) -> Delta {
        self.apply_all([event])
    }

    /// Applies events in order, as one batch: one delta for all of them.
    pub fn apply_all(&mut self, events: impl IntoIterator<Item = Event>) -> Delta {
        let mut delta = Delta::default();
        for event in events {
            let ready = self.relists.stage(&self.snapshot, event);
            for event in ready {
                match event {
                    Event::Upsert(object) => self.upsert(object, &mut delta),
                    Event::Delete(object) => self.delete(&object, &mut delta),
                    Event::Relist(kind, objects) => self.relist(kind, objects, &mut delta),
                    Event::InputWarnings(notes) => self.snapshot.input_warnings = notes,
                    // Staged: a relist in progress hands out only upserts and deletes.
                    Event::RelistBegin(_)
                    | Event::Listed(_)
                    | Event::Kept(_)
                    | Event::RelistEnd(_) => {}
                }
            }
        }
        self.finalize(&mut delta);
        delta
    }

    /// New options (and the diagnostics of their resolution). Only what they change is
    /// recomputed (module docs); equal options change nothing.
    pub fn set_options(&mut self, options: SpeakerOptions, prior: Vec<Diagnostic>) -> Delta {
        let mut delta = Delta::default();
        let rules_change = options.mode != self.options.mode
            || options.announce_cluster_ip != self.options.announce_cluster_ip;
        let attributes = RouteAttributes::of(&options);
        if rules_change {
            self.contribute_all(false);
        } else if attributes != self.attributes {
            self.table.touch_all(&self.attributes);
        }
        self.options = options;
        self.attributes = attributes;
        self.prior = prior;
        if rules_change {
            self.contribute_all(true);
        }
        let header = Header::of(&self.options);
        delta.session = header.digest != self.header.digest;
        self.header = header;
        self.finalize(&mut delta);
        delta
    }

    /// Every object's contribution in (`true`) or out, under the current options.
    fn contribute_all(&mut self, add: bool) {
        let manifest = self.snapshot.origin == Origin::Manifests;
        let options = &self.options;
        let mut contributions = Vec::new();
        for subnet in self.snapshot.subnets.values() {
            contributions.push(subnet_contribution(subnet, options, manifest));
        }
        for pod in self.snapshot.pods.values() {
            contributions.push(pod_contribution(
                pod,
                &self.snapshot.subnets,
                manifest,
                options,
            ));
        }
        for svc in self.snapshot.services.values() {
            contributions.push(service_contribution(svc, options));
        }
        for eip in self.snapshot.eips.values() {
            contributions.push(eip_contribution(eip, options));
        }
        for c in contributions {
            if add {
                self.table.add(&self.attributes, c);
            } else {
                self.table.sub(&self.attributes, c);
            }
        }
    }

    fn manifest(&self) -> bool {
        self.snapshot.origin == Origin::Manifests
    }

    fn pod(&self, pod: &PodInfo) -> Contribution {
        pod_contribution(pod, &self.snapshot.subnets, self.manifest(), &self.options)
    }

    /// What option resolution reads of the Nodes: whether there are any, and whether this
    /// speaker's is among them (node mode only).
    fn node_view(&self) -> Option<(bool, bool)> {
        match &self.options.mode {
            SpeakerMode::Node { node } => Some((
                self.snapshot.nodes.is_empty(),
                self.snapshot.nodes.contains_key(node),
            )),
            SpeakerMode::NatGateway { .. } => None,
        }
    }

    fn is_own_gateway(&self, name: &str) -> bool {
        matches!(&self.options.mode, SpeakerMode::NatGateway { gateway } if gateway == name)
    }

    /// The pods whose attachments name `subnet`, each's contribution taken out (`add` false) or
    /// put back in.
    fn subnet_pods(&mut self, keys: &[(Name, Name)], add: bool) {
        for key in keys {
            let Some(pod) = self.snapshot.pods.get(key) else {
                continue;
            };
            let c = self.pod(pod);
            if add {
                self.table.add(&self.attributes, c);
            } else {
                self.table.sub(&self.attributes, c);
            }
        }
    }

    fn pods_of_subnet(&self, subnet: &str) -> Vec<(Name, Name)> {
        self.pods_by_subnet
            .get(subnet)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn upsert(&mut self, object: Object, delta: &mut Delta) {
        let manifest = self.manifest();
        match object {
            Object::Pod(pod) => {
                let key = pod.key();
                if self.snapshot.pods.get(&key) == Some(&pod) {
                    return;
                }
                if let Some(old) = self.snapshot.pods.remove(&key) {
                    let c = self.pod(&old);
                    self.table.sub(&self.attributes, c);
                    index_pod(&mut self.pods_by_subnet, &old, false);
                }
                let c = self.pod(&pod);
                self.table.add(&self.attributes, c);
                index_pod(&mut self.pods_by_subnet, &pod, true);
                self.snapshot.pods.insert(key, pod);
            }
            Object::Service(svc) => {
                let key = svc.key();
                if self.snapshot.services.get(&key) == Some(&svc) {
                    return;
                }
                if let Some(old) = self.snapshot.services.get(&key) {
                    let c = service_contribution(old, &self.options);
                    self.table.sub(&self.attributes, c);
                }
                let c = service_contribution(&svc, &self.options);
                self.table.add(&self.attributes, c);
                self.snapshot.services.insert(key, svc);
            }
            Object::Eip(eip) => {
                if self.snapshot.eips.get(&eip.name) == Some(&eip) {
                    return;
                }
                if let Some(old) = self.snapshot.eips.get(&eip.name) {
                    let c = eip_contribution(old, &self.options);
                    self.table.sub(&self.attributes, c);
                }
                let c = eip_contribution(&eip, &self.options);
                self.table.add(&self.attributes, c);
                self.snapshot.eips.insert(eip.name.clone(), eip);
            }
            Object::Subnet(subnet) => {
                if self.snapshot.subnets.get(&subnet.name) == Some(&subnet) {
                    return;
                }
                let pods = self.pods_of_subnet(&subnet.name);
                self.subnet_pods(&pods, false);
                if let Some(old) = self.snapshot.subnets.get(&subnet.name) {
                    let c = subnet_contribution(old, &self.options, manifest);
                    self.table.sub(&self.attributes, c);
                }
                let c = subnet_contribution(&subnet, &self.options, manifest);
                self.table.add(&self.attributes, c);
                self.snapshot.subnets.insert(subnet.name.clone(), subnet);
                self.subnet_pods(&pods, true);
            }
            Object::Node(node) => {
                let before = self.node_view();
                self.snapshot.nodes.insert(node.name.clone(), node);
                delta.resolve_again |= self.node_view() != before;
            }
            Object::Gateway(gateway) => {
                if self.snapshot.gateways.get(&gateway.name) == Some(&gateway) {
                    return;
                }
                delta.resolve_again |= self.is_own_gateway(&gateway.name);
                self.snapshot.gateways.insert(gateway.name.clone(), gateway);
            }
        }
    }

    fn delete(&mut self, object: &ObjectRef, delta: &mut Delta) {
        let manifest = self.manifest();
        let name = &object.name;
        match object.kind {
            Kind::Pod => {
                let key = (
                    Name::new(object.namespace.as_deref().unwrap_or_default()),
                    Name::new(name),
                );
                if let Some(old) = self.snapshot.pods.remove(&key) {
                    let c = self.pod(&old);
                    self.table.sub(&self.attributes, c);
                    index_pod(&mut self.pods_by_subnet, &old, false);
                }
            }
            Kind::Service => {
                let key = (
                    Name::new(object.namespace.as_deref().unwrap_or_default()),
                    Name::new(name),
                );
                if let Some(old) = self.snapshot.services.remove(&key) {
                    let c = service_contribution(&old, &self.options);
                    self.table.sub(&self.attributes, c);
                }
            }
            Kind::IptablesEip => {
                if let Some(old) = self.snapshot.eips.remove(name) {
                    let c = eip_contribution(&old, &self.options);
                    self.table.sub(&self.attributes, c);
                }
            }
            Kind::Subnet => {
                if !self.snapshot.subnets.contains_key(name) {
                    return;
                }
                let pods = self.pods_of_subnet(name);
                self.subnet_pods(&pods, false);
                if let Some(old) = self.snapshot.subnets.remove(name) {
                    let c = subnet_contribution(&old, &self.options, manifest);
                    self.table.sub(&self.attributes, c);
                }
                self.subnet_pods(&pods, true);
            }
            Kind::Node => {
                let before = self.node_view();
                self.snapshot.nodes.remove(name);
                delta.resolve_again |= self.node_view() != before;
            }
            Kind::VpcNatGateway => {
                if self.snapshot.gateways.remove(name).is_some() {
                    delta.resolve_again |= self.is_own_gateway(name);
                }
            }
        }
    }

    fn relist(&mut self, kind: Kind, objects: Vec<Object>, delta: &mut Delta) {
        let mut listed: BTreeSet<ObjectRef> = BTreeSet::new();
        for object in objects {
            let reference = object.object_ref();
            if reference.kind != kind {
                // Not of the kind relisted: an ordinary upsert.
                self.upsert(object, delta);
                continue;
            }
            listed.insert(reference);
            self.upsert(object, delta);
        }
        let held: Vec<ObjectRef> = match kind {
            Kind::Node => keys(&self.snapshot.nodes, |n| ObjectRef::cluster(kind, n)),
            Kind::Pod => keys(&self.snapshot.pods, |(ns, n)| {
                ObjectRef::namespaced(kind, ns, n)
            }),
            Kind::Service => keys(&self.snapshot.services, |(ns, n)| {
                ObjectRef::namespaced(kind, ns, n)
            }),
            Kind::Subnet => keys(&self.snapshot.subnets, |n| ObjectRef::cluster(kind, n)),
            Kind::IptablesEip => keys(&self.snapshot.eips, |n| ObjectRef::cluster(kind, n)),
            Kind::VpcNatGateway => keys(&self.snapshot.gateways, |n| ObjectRef::cluster(kind, n)),
        };
        for reference in held {
            if !listed.contains(&reference) {
                self.delete(&reference, delta);
            }
        }
    }

    /// Settles a batch: routes' digests, the diagnostics of no object, the hash.
    fn finalize(&mut self, delta: &mut Delta) {
        let mut global =
            compile::global_diagnostics(&self.options, &self.prior, &self.snapshot.input_warnings);
        for family in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
            let count = self.table.family_routes[family_index(family)];
            if !self.attributes.carried(family) && count > 0 {
                let first = self.table.first_of(family);
                global.push(compile::unreachable_diagnostic(family, count, &first));
            }
        }
        if global != self.global {
            for d in std::mem::take(&mut self.global) {
                self.table.sub_diagnostic(d);
            }
            for d in &global {
                self.table.add_diagnostic(d.clone());
            }
            self.global = global;
        }
        self.table.finalize(&self.attributes, delta);
        self.hash = HashParts {
            header: self.header.digest,
            routes: self.table.route_sum,
            diagnostics: self.table.diagnostic_sum,
        }
        .hash(&self.header.speaker, self.header.bgp.password.as_ref());
    }
}

fn keys<K, V>(map: &BTreeMap<K, V>, reference: impl Fn(&K) -> ObjectRef) -> Vec<ObjectRef> {
    map.keys().map(reference).collect()
}

/// A whole snapshot as engine events: every kind relisted (the engine recomputes only the
/// objects that differ from those it holds).
pub fn relist_all(snapshot: Snapshot) -> Vec<Event> {
    use crate::model::Kind;
    use crate::snapshot::Object;
    let Snapshot {
        nodes,
        pods,
        services,
        subnets,
        eips,
        gateways,
        input_warnings,
        ..
    } = snapshot;
    vec![
        Event::Relist(Kind::Node, nodes.into_values().map(Object::Node).collect()),
        Event::Relist(
            Kind::Subnet,
            subnets.into_values().map(Object::Subnet).collect(),
        ),
        Event::Relist(Kind::Pod, pods.into_values().map(Object::Pod).collect()),
        Event::Relist(
            Kind::Service,
            services.into_values().map(Object::Service).collect(),
        ),
        Event::Relist(
            Kind::IptablesEip,
            eips.into_values().map(Object::Eip).collect(),
        ),
        Event::Relist(
            Kind::VpcNatGateway,
            gateways.into_values().map(Object::Gateway).collect(),
        ),
        Event::InputWarnings(input_warnings),
    ]
}

/// Adds (or removes) `pod` under each subnet its attachments name.
fn index_pod(index: &mut HashMap<Name, BTreeSet<(Name, Name)>>, pod: &PodInfo, add: bool) {
    for subnet in pod.attachments.iter().filter_map(|a| a.subnet.as_ref()) {
        let key = pod.key();
        if add {
            index.entry(subnet.clone()).or_default().insert(key);
        } else if let Some(set) = index.get_mut(subnet) {
            set.remove(&key);
            if set.is_empty() {
                index.remove(subnet);
            }
        }
    }
}
