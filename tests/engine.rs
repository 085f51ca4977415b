//! The incremental engine against its oracle, the full compile: random sequences of object
//! events (adds, changes, deletes, relists, readiness and annotation flips, pods moving node or
//! subnet, addresses shared between objects) and option changes (mode, node name, gateway,
//! neighbors, families, next hops, --announce-cluster-ip, password), and after every step the
//! engine's intent must be byte for byte the one `compile` makes of the same snapshot (YAML, JSON
//! and hash), its delta must turn the previous intent into the new one, and it must have asked
//! for option resolution whenever resolution's result changed. Relists come whole or streamed
//! (begun, object by object, unreadable objects kept, other events in between, begun again,
//! ended; `bgpgen::relist`), against a model that collects the streamed list and replaces the
//! kind's objects at its end.

use std::collections::{BTreeMap, BTreeSet};

use bgpgen::compile::compile;
use bgpgen::engine::{Delta, Engine, Event};
use bgpgen::intent::Intent;
use bgpgen::model::{Kind, ObjectRef};
use bgpgen::options::{Env, Resolved, SpeakerArgs, parse_speaker_args, resolve};
use bgpgen::relist::Relists;
use bgpgen::snapshot::{Object, Origin, Snapshot};
use bgpgen::source::Changes;
use bgpgen::source::wire::AnyObject;
use proptest::prelude::*;
use serde_json::{Value, json};

const SUBNETS: usize = 4;
const PODS: usize = 8;
const SERVICES: usize = 3;
const EIPS: usize = 3;
const NODES: usize = 3;
const GATEWAYS: usize = 2;

fn no_files(_: &std::path::Path) -> std::io::Result<String> {
    Err(std::io::Error::other("no files"))
}

fn object(v: Value) -> Object {
    let any: AnyObject = serde_json::from_value(v).expect("a wire object");
    any.into_object()
        .expect("a kind the rules read")
        .expect("a valid object")
}

fn bgp(choice: u8) -> Value {
    match choice % 7 {
        0 | 1 => json!({}),
        2 => json!({"ovn.kubernetes.io/bgp": "true"}),
        3 => json!({"ovn.kubernetes.io/bgp": "cluster"}),
        4 => json!({"ovn.kubernetes.io/bgp": "local"}),
        5 => json!({"ovn.kubernetes.io/bgp": "yes"}),
        _ => json!({"ovn.kubernetes.io/bgp": "nope"}),
    }
}

#[derive(Debug, Clone)]
struct SubnetSpec {
    bgp: u8,
    ready: u8,
    nat: bool,
    cidr: u8,
}

fn subnet(i: usize, s: &SubnetSpec) -> Object {
    let n = 16 + i;
    let cidr = match s.cidr % 6 {
        0..=2 => format!("10.{n}.0.0/16,fd00:{n}::/64"),
        3 => format!("10.{n}.0.0/16"),
        // Host bits set and an unparsable part.
        4 => format!("10.{n}.0.1/16,bogus"),
        _ => String::new(),
    };
    let status = match s.ready % 3 {
        0 => json!({"conditions": [{"type": "Ready", "status": "True"}]}),
        1 => json!({"conditions": [{"type": "Ready", "status": "False", "reason": "Pending"}]}),
        _ => Value::Null,
    };
    let mut v = json!({
        "apiVersion": "kubeovn.io/v1", "kind": "Subnet",
        "metadata": {"name": format!("s{i}"), "annotations": bgp(s.bgp), "uid": format!("uid-s{i}")},
        "spec": {"cidrBlock": cidr, "natOutgoing": s.nat},
    });
    if !status.is_null() {
        v["status"] = status;
    }
    object(v)
}

#[derive(Debug, Clone)]
struct PodSpec {
    bgp: u8,
    node: u8,
    subnet: u8,
    host: u8,
    dual: bool,
    phase: u8,
    second: bool,
}

fn pod(i: usize, p: &PodSpec) -> Object {
    // Subnet 4 is one that never exists; 5: no logical switch annotation at all.
    let s = usize::from(p.subnet) % (SUBNETS + 2);
    let n = 16 + s;
    let host = p.host % 6;
    let mut ann = bgp(p.bgp);
    if s <= SUBNETS {
        ann["ovn.kubernetes.io/logical_switch"] = json!(format!("s{s}"));
    }
    let ips = if p.dual {
        format!("10.{n}.0.{host},fd00:{n}::{host}")
    } else {
        format!("10.{n}.0.{host}")
    };
    ann["ovn.kubernetes.io/ip_address"] = json!(ips);
    if p.second {
        // A secondary network on subnet s1, sometimes the same address as another pod's.
        ann["net1.ns.ovn.kubernetes.io/logical_switch"] = json!("s1");
        ann["net1.ns.ovn.kubernetes.io/ip_address"] = json!(format!("10.17.1.{}", host % 3));
    }
    let (phase, restart) = match p.phase % 6 {
        3 => ("Succeeded", "Never"),
        4 => ("Failed", "Never"),
        _ => ("Running", "Always"),
    };
    let node = match p.node % 4 {
        3 => Value::Null,
        n => json!(format!("node-{n}")),
    };
    object(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("p{i}"), "namespace": format!("ns{}", i % 2),
                     "annotations": ann, "uid": format!("uid-p{i}")},
        "spec": {"nodeName": node, "restartPolicy": restart, "hostNetwork": p.phase % 6 == 5},
        "status": {"phase": phase},
    }))
}

#[derive(Debug, Clone)]
struct ServiceSpec {
    bgp: u8,
    host: u8,
    kind: u8,
}

fn service(i: usize, s: &ServiceSpec) -> Object {
    let (ty, ip) = match s.kind % 4 {
        0 | 1 => ("ClusterIP", json!(format!("10.96.0.{}", s.host % 4))),
        2 => ("ClusterIP", json!("None")),
        _ => ("NodePort", json!(format!("10.96.0.{}", s.host % 4))),
    };
    object(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("svc{i}"), "namespace": "ns0", "annotations": bgp(s.bgp)},
        "spec": {"type": ty, "clusterIP": ip},
    }))
}

#[derive(Debug, Clone)]
struct EipSpec {
    bgp: u8,
    gateway: u8,
    ready: bool,
    host: u8,
}

fn eip(i: usize, e: &EipSpec) -> Object {
    let labels = match e.gateway % 3 {
        2 => json!({}),
        g => json!({"ovn.kubernetes.io/vpc-nat-gw-name": format!("gw{g}")}),
    };
    object(json!({
        "apiVersion": "kubeovn.io/v1", "kind": "IptablesEIP",
        "metadata": {"name": format!("e{i}"), "labels": labels, "annotations": bgp(e.bgp)},
        "spec": {"v4ip": format!("172.18.0.{}", e.host % 4), "v6ip": if e.host.is_multiple_of(2) { "fd01::1" } else { "" }},
        "status": {"ready": e.ready},
    }))
}

fn node(i: usize) -> Object {
    object(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": format!("node-{i}")},
        "status": {"addresses": [{"type": "InternalIP", "address": format!("192.0.2.{}", 10 + i)}]},
    }))
}

fn gateway(i: usize, asn: u8) -> Object {
    let neighbors = if asn.is_multiple_of(2) {
        json!(["10.32.32.254"])
    } else {
        json!(["10.32.32.254", "2001:db8::254"])
    };
    object(json!({
        "apiVersion": "kubeovn.io/v1", "kind": "VpcNatGateway",
        "metadata": {"name": format!("gw{i}")},
        "spec": {"bgpSpeaker": {"enabled": true, "asn": 65000 + u32::from(asn % 3),
                                "remoteAsn": 65030, "neighbors": neighbors}},
    }))
}

/// The speaker options as a kube-ovn-speaker command line.
#[derive(Debug, Clone)]
struct OptSpec {
    mode: u8,
    announce_cluster_ip: bool,
    neighbors: u8,
    extended_nexthop: bool,
    node_ips: u8,
    hold: bool,
    password: bool,
}

fn args(o: &OptSpec) -> SpeakerArgs {
    let mut a = vec![
        "--cluster-as=65000".to_string(),
        "--neighbor-as=65030".to_string(),
    ];
    match o.mode % 5 {
        0 | 1 => a.push("--node-name=node-0".into()),
        2 => a.push("--node-name=node-1".into()),
        3 => a.push("--node-name=node-9".into()),
        _ => {
            a.push("--nat-gw-mode".into());
            a.push("--gateway-name=gw0".into());
        }
    }
    if o.mode % 5 != 4 {
        a.push("--router-id=10.0.0.11".into());
    }
    match o.neighbors % 3 {
        0 => a.push("--neighbor-address=10.32.32.254".into()),
        1 => a.push("--neighbor-ipv6-address=2001:db8::254".into()),
        _ => {
            a.push("--neighbor-address=10.32.32.254".into());
            a.push("--neighbor-ipv6-address=2001:db8::254".into());
        }
    }
    if o.announce_cluster_ip {
        a.push("--announce-cluster-ip".into());
    }
    if o.extended_nexthop {
        a.push("--extended-nexthop".into());
    }
    match o.node_ips % 3 {
        0 => {}
        1 => a.push("--node-ips=10.0.0.5".into()),
        _ => a.push("--node-ips=10.0.0.5,fd00::5".into()),
    }
    if o.hold {
        a.push("--holdtime=30s".into());
    }
    if o.password {
        a.push("--auth-password=s3cret".into());
    }
    parse_speaker_args(&a).expect("valid flags")
}

#[derive(Debug, Clone)]
enum Step {
    Subnet(usize, Option<SubnetSpec>),
    Pod(usize, Option<PodSpec>),
    Service(usize, Option<ServiceSpec>),
    Eip(usize, Option<EipSpec>),
    Node(usize, bool),
    Gateway(usize, Option<u8>),
    RelistPods(Vec<(usize, PodSpec)>),
    RelistSubnets(Vec<(usize, SubnetSpec)>),
    /// A streamed relist of pods (true) or subnets begins.
    BeginRelist(bool),
    /// A pod of a streamed relist: listed, or unreadable (kept).
    ListedPod(usize, Option<PodSpec>),
    ListedSubnet(usize, Option<SubnetSpec>),
    EndRelist(bool),
    /// A whole streamed relist of pods in one step.
    StreamedPods(Vec<(usize, Option<PodSpec>)>),
    Warnings(u8),
    Options(OptSpec),
    /// Several events applied as one batch.
    Batch(Vec<Step>),
}

fn subnet_spec() -> impl Strategy<Value = SubnetSpec> {
    (any::<u8>(), any::<u8>(), any::<bool>(), any::<u8>()).prop_map(|(bgp, ready, nat, cidr)| {
        SubnetSpec {
            bgp,
            ready,
            nat,
            cidr,
        }
    })
}

fn pod_spec() -> impl Strategy<Value = PodSpec> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<bool>(),
        any::<u8>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(bgp, node, subnet, host, dual, phase, second)| PodSpec {
            bgp,
            node,
            subnet,
            host,
            dual,
            phase,
            second,
        })
}

fn opt_spec() -> impl Strategy<Value = OptSpec> {
    (
        any::<u8>(),
        any::<bool>(),
        any::<u8>(),
        prop::bool::weighted(0.3),
        any::<u8>(),
        any::<bool>(),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(mode, announce_cluster_ip, neighbors, extended_nexthop, node_ips, hold, password)| {
                OptSpec {
                    mode,
                    announce_cluster_ip,
                    neighbors,
                    extended_nexthop,
                    node_ips,
                    hold,
                    password,
                }
            },
        )
}

fn simple_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..SUBNETS, prop::option::weighted(0.8, subnet_spec())).prop_map(|(i, s)| Step::Subnet(i, s)),
        8 => (0..PODS, prop::option::weighted(0.8, pod_spec())).prop_map(|(i, p)| Step::Pod(i, p)),
        2 => (0..SERVICES, prop::option::weighted(0.8, (any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(bgp, host, kind)| ServiceSpec { bgp, host, kind })))
            .prop_map(|(i, s)| Step::Service(i, s)),
        2 => (0..EIPS, prop::option::weighted(0.8, (any::<u8>(), any::<u8>(), any::<bool>(), any::<u8>())
            .prop_map(|(bgp, gateway, ready, host)| EipSpec { bgp, gateway, ready, host })))
            .prop_map(|(i, e)| Step::Eip(i, e)),
        1 => (0..NODES, any::<bool>()).prop_map(|(i, present)| Step::Node(i, present)),
        1 => (0..GATEWAYS, prop::option::weighted(0.8, any::<u8>())).prop_map(|(i, g)| Step::Gateway(i, g)),
        1 => prop::collection::vec((0..PODS, pod_spec()), 0..6).prop_map(Step::RelistPods),
        1 => prop::collection::vec((0..SUBNETS, subnet_spec()), 0..4).prop_map(Step::RelistSubnets),
        1 => any::<u8>().prop_map(Step::Warnings),
        2 => opt_spec().prop_map(Step::Options),
        2 => any::<bool>().prop_map(Step::BeginRelist),
        4 => (0..PODS, prop::option::weighted(0.8, pod_spec())).prop_map(|(i, p)| Step::ListedPod(i, p)),
        2 => (0..SUBNETS, prop::option::weighted(0.8, subnet_spec())).prop_map(|(i, s)| Step::ListedSubnet(i, s)),
        2 => any::<bool>().prop_map(Step::EndRelist),
        1 => prop::collection::vec((0..PODS, prop::option::weighted(0.8, pod_spec())), 0..8)
            .prop_map(Step::StreamedPods),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        9 => simple_step(),
        1 => prop::collection::vec(simple_step(), 1..5).prop_map(Step::Batch),
    ]
}

/// The events a step is, and the options it sets (the last, for a batch).
fn events(step: &Step, out: &mut Vec<Event>, options: &mut Option<OptSpec>) {
    let delete =
        |kind, ns: Option<&str>, name: String| Event::Delete(ObjectRef::new(kind, ns, &name));
    match step {
        Step::Subnet(i, Some(s)) => out.push(Event::Upsert(subnet(*i, s))),
        Step::Subnet(i, None) => out.push(delete(Kind::Subnet, None, format!("s{i}"))),
        Step::Pod(i, Some(p)) => out.push(Event::Upsert(pod(*i, p))),
        Step::Pod(i, None) => {
            let ns = format!("ns{}", i % 2);
            out.push(delete(Kind::Pod, Some(&ns), format!("p{i}")));
        }
        Step::Service(i, Some(s)) => out.push(Event::Upsert(service(*i, s))),
        Step::Service(i, None) => out.push(delete(Kind::Service, Some("ns0"), format!("svc{i}"))),
        Step::Eip(i, Some(e)) => out.push(Event::Upsert(eip(*i, e))),
        Step::Eip(i, None) => out.push(delete(Kind::IptablesEip, None, format!("e{i}"))),
        Step::Node(i, true) => out.push(Event::Upsert(node(*i))),
        Step::Node(i, false) => out.push(delete(Kind::Node, None, format!("node-{i}"))),
        Step::Gateway(i, Some(asn)) => out.push(Event::Upsert(gateway(*i, *asn))),
        Step::Gateway(i, None) => out.push(delete(Kind::VpcNatGateway, None, format!("gw{i}"))),
        Step::RelistPods(pods) => out.push(Event::Relist(
            Kind::Pod,
            pods.iter().map(|(i, p)| pod(*i, p)).collect(),
        )),
        Step::RelistSubnets(subnets) => out.push(Event::Relist(
            Kind::Subnet,
            subnets.iter().map(|(i, s)| subnet(*i, s)).collect(),
        )),
        Step::Warnings(n) => out.push(Event::InputWarnings(
            (0..n % 3)
                .map(|k| format!("dir/f{k}.yaml: skipped: a FIFO"))
                .collect(),
        )),
        Step::BeginRelist(pods) => out.push(Event::RelistBegin(relisted(*pods))),
        Step::EndRelist(pods) => out.push(Event::RelistEnd(relisted(*pods))),
        Step::ListedPod(i, Some(p)) => out.push(Event::Listed(pod(*i, p))),
        Step::ListedPod(i, None) => out.push(Event::Kept(pod_ref(*i))),
        Step::ListedSubnet(i, Some(s)) => out.push(Event::Listed(subnet(*i, s))),
        Step::ListedSubnet(i, None) => out.push(Event::Kept(ObjectRef::new(
            Kind::Subnet,
            None,
            &format!("s{i}"),
        ))),
        Step::StreamedPods(pods) => {
            out.push(Event::RelistBegin(Kind::Pod));
            for (i, p) in pods {
                out.push(match p {
                    Some(p) => Event::Listed(pod(*i, p)),
                    None => Event::Kept(pod_ref(*i)),
                });
            }
            out.push(Event::RelistEnd(Kind::Pod));
        }
        Step::Options(o) => *options = Some(o.clone()),
        Step::Batch(steps) => {
            for s in steps {
                events(s, out, options);
            }
        }
    }
}

fn relisted(pods: bool) -> Kind {
    if pods { Kind::Pod } else { Kind::Subnet }
}

fn pod_ref(i: usize) -> ObjectRef {
    ObjectRef::new(Kind::Pod, Some(&format!("ns{}", i % 2)), &format!("p{i}"))
}

/// The oracle's streamed relists in progress: per kind, the objects listed (the last version of
/// each) and those kept (unreadable), collected until the end.
#[derive(Debug, Default)]
struct Model {
    relists: BTreeMap<Kind, (BTreeMap<ObjectRef, Object>, BTreeSet<ObjectRef>)>,
}

fn remove(model: &mut Snapshot, r: &ObjectRef) {
    match r.kind {
        Kind::Node => drop(model.nodes.remove(&r.name)),
        Kind::Pod => drop(model.pods.remove(&r.pair())),
        Kind::Service => drop(model.services.remove(&r.pair())),
        Kind::Subnet => drop(model.subnets.remove(&r.name)),
        Kind::IptablesEip => drop(model.eips.remove(&r.name)),
        Kind::VpcNatGateway => drop(model.gateways.remove(&r.name)),
    }
}

fn replace_kind(model: &mut Snapshot, kind: Kind, objects: Vec<Object>) {
    match kind {
        Kind::Pod => model.pods.clear(),
        Kind::Subnet => model.subnets.clear(),
        _ => unreachable!("the test relists pods and subnets"),
    }
    for o in objects {
        model.upsert(o);
    }
}

/// The oracle's copy of the cluster: the same events applied to a plain snapshot, a streamed
/// relist collected whole and swapped in at its end (time order: an upsert or delete of the
/// kind during its relist is the later word on that object).
fn apply_to_model(model: &mut Snapshot, staged: &mut Model, event: &Event) {
    match event {
        Event::Upsert(o) => {
            if let Some((listed, _)) = staged.relists.get_mut(&o.object_ref().kind) {
                listed.insert(o.object_ref(), o.clone());
            }
            model.upsert(o.clone());
        }
        Event::Delete(r) => {
            if let Some((listed, kept)) = staged.relists.get_mut(&r.kind) {
                listed.remove(r);
                kept.remove(r);
            }
            remove(model, r);
        }
        Event::Relist(kind, objects) => {
            staged.relists.remove(kind);
            replace_kind(model, *kind, objects.clone());
        }
        Event::RelistBegin(kind) => {
            staged.relists.insert(*kind, Default::default());
        }
        Event::Listed(o) => match staged.relists.get_mut(&o.object_ref().kind) {
            Some((listed, _)) => drop(listed.insert(o.object_ref(), o.clone())),
            None => model.upsert(o.clone()),
        },
        Event::Kept(r) => {
            if let Some((_, kept)) = staged.relists.get_mut(&r.kind) {
                kept.insert(r.clone());
            }
        }
        Event::RelistEnd(kind) => {
            if let Some((listed, kept)) = staged.relists.remove(kind) {
                let mut objects: Vec<Object> = Vec::new();
                for r in kept.iter().filter(|r| !listed.contains_key(r)) {
                    let held = match kind {
                        Kind::Pod => model.pods.get(&r.pair()).cloned().map(Object::Pod),
                        Kind::Subnet => model.subnets.get(&r.name).cloned().map(Object::Subnet),
                        _ => unreachable!("the test relists pods and subnets"),
                    };
                    objects.extend(held);
                }
                objects.extend(listed.into_values());
                replace_kind(model, *kind, objects);
            }
        }
        Event::InputWarnings(w) => model.input_warnings = w.clone(),
    }
}

fn resolved(args: &SpeakerArgs, snapshot: &Snapshot) -> Option<Resolved> {
    resolve(args, &Env::default(), snapshot, &no_files).ok()
}

/// The previous intent with the delta applied must be the new intent (routes and diagnostics),
/// and `session` must say whether anything else changed.
fn check_delta(before: &Intent, delta: &Delta, after: &Intent) -> Result<(), TestCaseError> {
    let mut routes: BTreeMap<_, _> = before
        .routes
        .iter()
        .map(|r| (r.prefix, r.clone()))
        .collect();
    for r in &delta.removed {
        let gone = routes.remove(&r.prefix);
        prop_assert_eq!(gone.as_ref(), Some(r), "removed");
    }
    for c in &delta.changed {
        prop_assert_ne!(&c.before, &c.after);
        prop_assert_eq!(
            routes.insert(c.after.prefix, c.after.clone()),
            Some(c.before.clone())
        );
    }
    for r in &delta.added {
        prop_assert!(
            routes.insert(r.prefix, r.clone()).is_none(),
            "added twice: {}",
            r.prefix
        );
    }
    let expected: Vec<_> = routes.into_values().collect();
    prop_assert_eq!(&expected, &after.routes);
    let mut diagnostics: Vec<_> = before.diagnostics.clone();
    diagnostics.retain(|d| !delta.diagnostics_removed.contains(d));
    diagnostics.extend(delta.diagnostics_added.iter().cloned());
    diagnostics.sort_by(bgpgen::intent::diagnostic_order);
    prop_assert_eq!(&diagnostics, &after.diagnostics);
    let session = before.speaker != after.speaker
        || before.bgp != after.bgp
        || before.neighbors != after.neighbors;
    prop_assert_eq!(delta.session, session, "session flag");
    Ok(())
}

fn run(
    origin: Origin,
    initial: Vec<Step>,
    steps: Vec<Step>,
    first: OptSpec,
) -> Result<(), TestCaseError> {
    // A starting cluster, built by Engine::new from the snapshot the sidecar keeps before its
    // engine exists (relists in progress carried into the engine).
    let mut model = Snapshot::new(origin);
    let mut staged = Model::default();
    let mut start = Vec::new();
    let mut ignored = None;
    for s in &initial {
        events(s, &mut start, &mut ignored);
    }
    for e in &start {
        apply_to_model(&mut model, &mut staged, e);
    }
    let mut waiting = Snapshot::new(origin);
    let mut relists = Relists::default();
    Changes { events: start }.apply_to(&mut waiting, &mut relists);
    prop_assert_eq!(&waiting, &model, "the state before the engine");
    let mut current = args(&first);
    let first_resolved = resolved(&current, &model)
        .or_else(|| {
            current = args(&OptSpec {
                mode: 0,
                ..first.clone()
            });
            resolved(&current, &model)
        })
        .expect("node mode resolves");
    let mut engine = Engine::new(
        waiting,
        first_resolved.options.clone(),
        first_resolved.diagnostics.clone(),
    )
    .with_relists(relists);
    let mut previous = compile(&model, engine.options(), engine.prior());
    prop_assert_eq!(engine.intent(), previous.clone());

    for step in steps {
        let mut evs = Vec::new();
        let mut new_options = None;
        events(&step, &mut evs, &mut new_options);
        for e in &evs {
            apply_to_model(&mut model, &mut staged, e);
        }
        let mut delta = engine.apply_all(evs);
        if let Some(o) = new_options {
            current = args(&o);
        }
        // What the sidecar does: resolve again when the options changed or the engine says
        // resolution read something that changed; a failed resolution keeps the last options.
        if (step_sets_options(&step) || delta.resolve_again)
            && let Some(r) = resolved(&current, engine.snapshot())
        {
            delta.merge(engine.set_options(r.options, r.diagnostics));
        }
        // The engine asked whenever it mattered: resolution of the model now gives what it holds.
        if let Some(truth) = resolved(&current, &model) {
            prop_assert_eq!(
                &truth.options,
                engine.options(),
                "options not resolved again"
            );
            prop_assert_eq!(&truth.diagnostics[..], engine.prior());
        }
        prop_assert_eq!(engine.snapshot(), &model);
        prop_assert_eq!(engine.relisting(), !staged.relists.is_empty());
        let oracle = compile(&model, engine.options(), engine.prior());
        let intent = engine.intent();
        prop_assert_eq!(engine.hash(), oracle.hash.as_str());
        prop_assert_eq!(intent.to_yaml(false), oracle.to_yaml(false));
        prop_assert_eq!(intent.to_json(true), oracle.to_json(true));
        prop_assert_eq!(&intent, &oracle);
        check_delta(&previous, &delta, &oracle)?;
        // The sidecar's intent in force follows the deltas in place (a session change is
        // applied whole instead).
        if !delta.session {
            let mut followed = previous.clone();
            delta.apply_to(&mut followed, engine.hash());
            prop_assert_eq!(&followed, &oracle, "intent in force after the delta");
        }
        previous = oracle;
    }
    Ok(())
}

fn step_sets_options(step: &Step) -> bool {
    match step {
        Step::Options(_) => true,
        Step::Batch(steps) => steps.iter().any(step_sets_options),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_engine_equals_a_full_compile_after_every_event(
        manifests in any::<bool>(),
        initial in prop::collection::vec(simple_step(), 0..12),
        steps in prop::collection::vec(step(), 1..40),
        first in opt_spec(),
    ) {
        let origin = if manifests { Origin::Manifests } else { Origin::Cluster };
        run(origin, initial, steps, first)?;
    }
}

/// An event that changes nothing (an equal object: a status heartbeat) yields an empty delta
/// and leaves the hash alone.
#[test]
fn an_unchanged_object_is_no_change() {
    let spec = PodSpec {
        bgp: 2,
        node: 0,
        subnet: 0,
        host: 3,
        dual: true,
        phase: 0,
        second: false,
    };
    let ready = SubnetSpec {
        bgp: 0,
        ready: 0,
        nat: false,
        cidr: 0,
    };
    let args = args(&OptSpec {
        mode: 0,
        announce_cluster_ip: false,
        neighbors: 2,
        extended_nexthop: false,
        node_ips: 0,
        hold: false,
        password: false,
    });
    let snapshot = Snapshot::new(Origin::Cluster);
    let r = resolved(&args, &snapshot).unwrap();
    let mut engine = Engine::empty(Origin::Cluster, r.options, r.diagnostics);
    let delta = engine.apply_all([
        Event::Upsert(subnet(0, &ready)),
        Event::Upsert(pod(0, &spec)),
    ]);
    assert_eq!(delta.added.len(), 2, "{delta:?}");
    assert_eq!(delta.paths().announce.len(), 2);
    let hash = engine.hash().to_string();
    let again = engine.apply(Event::Upsert(pod(0, &spec)));
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(engine.hash(), hash);
    // The pod gone: both routes withdrawn, the hash back to that of the empty cluster's subnet.
    let gone = engine.apply(Event::Delete(ObjectRef::namespaced(Kind::Pod, "ns0", "p0")));
    assert_eq!(gone.paths().withdraw.len(), 2);
    assert_ne!(engine.hash(), hash);
}
