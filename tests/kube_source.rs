//! The Kubernetes source (`bgpgen::source::kube::watch_cluster`) driven through the real `kube`
//! client by the in-process fake API server (`tests/common/apiserver.rs`).
//!
//! Every snapshot the source sends is compiled with fixed speaker options (node-1, neighbors
//! 192.0.2.2 and 2001:db8::2, AS 65030/65000, `--announce-cluster-ip`) and the test asserts the
//! exact announced prefixes after each step; during a disruption (dropped watch, 410 Gone, API
//! outage) it also asserts that every snapshot received still announces what exists, i.e. that
//! nothing is withdrawn by the disruption itself.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bgpgen::engine::Event;
use bgpgen::events::{PendingEvent, events_for, spawn_recorder};
use bgpgen::intent::Intent;
use bgpgen::options::{Env, SpeakerArgs, parse_speaker_args};
use bgpgen::relist::Relists;
use bgpgen::snapshot::Snapshot;
use bgpgen::source::SourceEvent;
use bgpgen::source::kube::{Scope, client as source_client, watch_cluster};
use common::apiserver::{ApiServer, Diag, wait_for};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Bound for each wait (the watcher's backoff starts at 0.8 s and doubles).
const T: Duration = Duration::from_secs(20);
const DEBOUNCE: Duration = Duration::from_millis(50);
/// The source's watch silence bound (`run --watch-timeout`), as deployed.
const SILENCE: Duration = Duration::from_secs(60);

/// Runs a test body with an overall time limit.
async fn bounded<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(80), f)
        .await
        .expect("test exceeded its time limit");
}

// ---------------------------------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------------------------------

const BGP: &str = "ovn.kubernetes.io/bgp";

fn node(name: &str, ip: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": { "name": name },
        "status": { "addresses": [{ "type": "InternalIP", "address": ip }] },
    })
}

fn subnet(name: &str, cidr: &str, bgp: Option<&str>, ready: bool, nat_outgoing: bool) -> Value {
    let mut v = json!({
        "apiVersion": "kubeovn.io/v1",
        "kind": "Subnet",
        "metadata": { "name": name, "annotations": {} },
        "spec": { "cidrBlock": cidr, "protocol": "Dual", "provider": "ovn", "natOutgoing": nat_outgoing },
        "status": { "conditions": [
            { "type": "Ready", "status": if ready { "True" } else { "False" }, "reason": if ready { "Init" } else { "Pending" } },
        ] },
    });
    annotate(&mut v, BGP, bgp);
    v
}

/// A running pod in namespace `default` with Kube-OVN's IP annotations.
fn pod(name: &str, node: &str, subnet: &str, ips: &str, bgp: Option<&str>) -> Value {
    let first = ips.split(',').next().unwrap_or_default();
    let mut v = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "namespace": "default",
            "name": name,
            "annotations": {
                "ovn.kubernetes.io/allocated": "true",
                "ovn.kubernetes.io/routed": "true",
                "ovn.kubernetes.io/logical_switch": subnet,
                "ovn.kubernetes.io/ip_address": ips,
            },
        },
        "spec": { "nodeName": node, "containers": [{ "name": "main", "image": "nginx:1.27" }] },
        "status": {
            "phase": "Running",
            "podIP": first,
            "podIPs": ips.split(',').map(|ip| json!({ "ip": ip })).collect::<Vec<_>>(),
        },
    });
    annotate(&mut v, BGP, bgp);
    v
}

fn service(name: &str, ip: &str, bgp: Option<&str>) -> Value {
    let mut v = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "namespace": "default", "name": name, "annotations": {} },
        "spec": { "type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip], "ports": [{ "port": 53 }] },
    });
    annotate(&mut v, BGP, bgp);
    v
}

fn eip(name: &str, gateway: &str, v4: &str, bgp: Option<&str>, ready: bool) -> Value {
    let mut v = json!({
        "apiVersion": "kubeovn.io/v1",
        "kind": "IptablesEIP",
        "metadata": {
            "name": name,
            "labels": { "ovn.kubernetes.io/vpc-nat-gw-name": gateway },
            "annotations": {},
        },
        "spec": { "v4ip": v4, "natGwDp": gateway },
        "status": { "ready": ready },
    });
    annotate(&mut v, BGP, bgp);
    v
}

fn gateway(name: &str) -> Value {
    json!({
        "apiVersion": "kubeovn.io/v1",
        "kind": "VpcNatGateway",
        "metadata": { "name": name },
        "spec": {},
    })
}

/// Sets (`Some`) or removes (`None`) an annotation.
fn annotate(v: &mut Value, key: &str, value: Option<&str>) {
    let meta = v["metadata"].as_object_mut().expect("metadata");
    let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
    if !annotations.is_object() {
        *annotations = json!({});
    }
    let map = annotations.as_object_mut().expect("annotations object");
    match value {
        Some(val) => {
            map.insert(key.to_string(), Value::String(val.to_string()));
        }
        None => {
            map.remove(key);
        }
    }
}

fn set_subnet_ready(v: &mut Value, ready: bool) {
    v["status"]["conditions"] = json!([{
        "type": "Ready",
        "status": if ready { "True" } else { "False" },
        "reason": if ready { "Init" } else { "Pending" },
    }]);
}

// ---------------------------------------------------------------------------------------------
// Speaker options and compiling
// ---------------------------------------------------------------------------------------------

const NODE_ARGS: &[&str] = &[
    "--neighbor-address=192.0.2.2",
    "--neighbor-ipv6-address=2001:db8::2",
    "--neighbor-as=65030",
    "--cluster-as=65000",
    "--node-name=node-1",
    "--router-id=192.0.2.1",
    "--announce-cluster-ip",
];

const GATEWAY: &str = "gw-a";

fn gateway_args() -> Vec<String> {
    NODE_ARGS
        .iter()
        .filter(|a| !a.starts_with("--node-name"))
        .map(|a| a.to_string())
        .chain(["--nat-gw-mode".into(), format!("--gateway-name={GATEWAY}")])
        .collect()
}

fn args_for(scope: &Scope) -> SpeakerArgs {
    let args: Vec<String> = match scope {
        Scope::Node => NODE_ARGS.iter().map(|a| a.to_string()).collect(),
        Scope::NatGateway { .. } => gateway_args(),
    };
    parse_speaker_args(args).expect("speaker arguments parse")
}

fn intent_of(snapshot: &Snapshot, args: &SpeakerArgs) -> Intent {
    bgpgen::front::compiled(snapshot, args, None, &Env::default())
        .expect("speaker options resolve")
        .1
}

type Routes = BTreeSet<String>;

fn routes_of(snapshot: &Snapshot, args: &SpeakerArgs) -> Routes {
    intent_of(snapshot, args)
        .announced()
        .map(|r| r.prefix.to_string())
        .collect()
}

fn set(prefixes: &[&str]) -> Routes {
    prefixes.iter().map(|p| p.to_string()).collect()
}

fn kinds(s: &Snapshot) -> String {
    format!(
        "nodes {}, pods {}, services {}, subnets {}, eips {}, gateways {}",
        s.nodes.len(),
        s.pods.len(),
        s.services.len(),
        s.subnets.len(),
        s.eips.len(),
        s.gateways.len()
    )
}

// ---------------------------------------------------------------------------------------------
// The source under test
// ---------------------------------------------------------------------------------------------

/// What the source sent, in order (the payloads are shown in failure messages).
#[derive(Debug)]
#[allow(dead_code)]
enum Seen {
    Snapshot(Routes),
    Up(bool),
    Invalid(String),
}

struct Source {
    rx: mpsc::Receiver<SourceEvent>,
    args: SpeakerArgs,
    started: Instant,
    log: Vec<(Duration, Seen)>,
    last: Option<Snapshot>,
    server: Diag,
    /// Relists streamed in and not complete yet, carried from one batch of changes to the next.
    relists: Relists,
    /// Batches received with listed objects and no list's end: a relist in progress, streamed.
    streamed: usize,
}

impl Source {
    fn start(api: &ApiServer, scope: Scope) -> Source {
        Source::start_with(api, scope, SILENCE)
    }

    /// With the watch silence bound `silence` (`run --watch-timeout`).
    fn start_with(api: &ApiServer, scope: Scope, silence: Duration) -> Source {
        let args = args_for(&scope);
        let rx = watch_cluster(
            source_client(api.kube_config(), silence).expect("kube client"),
            scope,
            DEBOUNCE,
            silence,
        );
        Source {
            rx,
            args,
            started: Instant::now(),
            log: Vec::new(),
            last: None,
            server: api.diag(),
            relists: Relists::default(),
            streamed: 0,
        }
    }

    /// What the source sent, then what the API double saw, for a failure message.
    fn history(&self) -> String {
        let sent = self
            .log
            .iter()
            .map(|(t, s)| format!("  {t:>9.3?} {s:?}"))
            .collect::<Vec<_>>()
            .join("\n");
        format!("{sent}\n{}", self.server.report())
    }

    /// The next event within `timeout` (recorded in the log), or `None`.
    async fn next(&mut self, timeout: Duration) -> Option<SourceEvent> {
        let event = match tokio::time::timeout(timeout, self.rx.recv()).await {
            Err(_) => return None,
            Ok(None) => panic!("the source's channel closed\nhistory:\n{}", self.history()),
            Ok(Some(e)) => e,
        };
        // The source sends what changed; the tests look at the state it describes.
        let event = match event {
            SourceEvent::Changes(changes) => {
                // Streamed: objects of a kind's list without that list's end (another kind's
                // list may end in the same batch: the kinds list side by side).
                let mut listed = std::collections::BTreeSet::new();
                let mut ended = std::collections::BTreeSet::new();
                for e in &changes.events {
                    match e {
                        Event::Listed(o) => {
                            listed.insert(o.object_ref().kind);
                        }
                        Event::RelistEnd(kind) => {
                            ended.insert(*kind);
                        }
                        _ => {}
                    }
                }
                if listed.difference(&ended).next().is_some() {
                    self.streamed += 1;
                }
                let mut state = self
                    .last
                    .clone()
                    .unwrap_or_else(|| Snapshot::new(bgpgen::snapshot::Origin::Cluster));
                changes.apply_to(&mut state, &mut self.relists);
                SourceEvent::Snapshot(std::sync::Arc::new(state))
            }
            e => e,
        };
        let seen = match &event {
            SourceEvent::Snapshot(s) => Seen::Snapshot(routes_of(s, &self.args)),
            SourceEvent::Up(up) => Seen::Up(*up),
            SourceEvent::Invalid(m) => Seen::Invalid(m.clone()),
            SourceEvent::Changes(_) => unreachable!("folded into a snapshot above"),
        };
        self.log.push((self.started.elapsed(), seen));
        if let SourceEvent::Snapshot(s) = &event {
            self.last = Some((**s).clone());
        }
        Some(event)
    }

    /// Receives until a snapshot announces exactly `want`. Every snapshot received on the way
    /// must announce `want` or one of `allowed`; anything else (a partial state) fails the test.
    async fn expect_routes(&mut self, what: &str, want: &Routes, allowed: &[&Routes]) -> Snapshot {
        let deadline = Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(event) = self.next(left).await else {
                panic!(
                    "{what}: no snapshot announcing {want:?} within {T:?}\nhistory:\n{}",
                    self.history()
                );
            };
            if let SourceEvent::Snapshot(s) = event {
                let got = routes_of(&s, &self.args);
                if &got == want {
                    return (*s).clone();
                }
                assert!(
                    allowed.contains(&&got),
                    "{what}: a snapshot announced {got:?} ({}), expected {want:?} or one of {allowed:?}\nhistory:\n{}",
                    kinds(&s),
                    self.history()
                );
            }
        }
    }

    /// For `d`, no snapshot may announce anything but `allowed` (none at all when empty).
    async fn expect_steady(&mut self, what: &str, d: Duration, allowed: &[&Routes]) {
        let deadline = Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let Some(event) = self.next(left).await else {
                return;
            };
            if let SourceEvent::Snapshot(s) = event {
                let got = routes_of(&s, &self.args);
                assert!(
                    allowed.contains(&&got),
                    "{what}: a snapshot announced {got:?} ({}), allowed: {allowed:?}\nhistory:\n{}",
                    kinds(&s),
                    self.history()
                );
            }
        }
    }

    /// A position in the log, for [`Source::expect_up`].
    fn mark(&self) -> usize {
        self.log.len()
    }

    /// Returns once `Up(up)` has been received after log position `since` (receiving more as
    /// needed); snapshots received meanwhile must announce one of `allowed`.
    async fn expect_up(
        &mut self,
        what: &str,
        up: bool,
        since: usize,
        timeout: Duration,
        allowed: &[&Routes],
    ) {
        if self.log[since..]
            .iter()
            .any(|(_, s)| matches!(s, Seen::Up(u) if *u == up))
        {
            return;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(event) = self.next(left).await else {
                panic!(
                    "{what}: no SourceEvent::Up({up}) within {timeout:?}\nhistory:\n{}",
                    self.history()
                );
            };
            match event {
                SourceEvent::Up(u) if u == up => return,
                SourceEvent::Snapshot(s) => {
                    let got = routes_of(&s, &self.args);
                    assert!(
                        allowed.contains(&&got),
                        "{what}: a snapshot announced {got:?} ({}), allowed: {allowed:?}\nhistory:\n{}",
                        kinds(&s),
                        self.history()
                    );
                }
                _ => {}
            }
        }
    }

    fn snapshots_received(&self) -> usize {
        self.log
            .iter()
            .filter(|(_, s)| matches!(s, Seen::Snapshot(_)))
            .count()
    }
}

// ---------------------------------------------------------------------------------------------
// A cluster
// ---------------------------------------------------------------------------------------------

/// An announced ready dual-stack subnet, two nodes, an announced ClusterIP service, pod `a`
/// (Cluster, on node-2) and pod `b` (not annotated, on node-1).
fn base_cluster(api: &ApiServer) {
    api.apply(&node("node-1", "172.18.0.2"));
    api.apply(&node("node-2", "172.18.0.3"));
    api.apply(&subnet(
        "bgp-subnet",
        "10.16.0.0/16,fd00:10:16::/64",
        Some("true"),
        true,
        false,
    ));
    api.apply(&subnet("plain", "10.17.0.0/16", None, true, false));
    api.apply(&service("dns", "10.96.0.10", Some("true")));
    api.apply(&pod(
        "a",
        "node-2",
        "bgp-subnet",
        "10.16.0.5,fd00:10:16::5",
        Some("true"),
    ));
    api.apply(&pod("b", "node-1", "plain", "10.17.0.6", None));
}

/// What [`base_cluster`] announces.
const BASE: &[&str] = &[
    "10.16.0.0/16",
    "fd00:10:16::/64",
    "10.16.0.5/32",
    "fd00:10:16::5/128",
    "10.96.0.10/32",
];

fn base() -> Routes {
    set(BASE)
}

/// `routes` plus `more`.
fn with(routes: &Routes, more: &[&str]) -> Routes {
    let mut r = routes.clone();
    r.extend(more.iter().map(|p| p.to_string()));
    r
}

/// `routes` without `less`.
fn without(routes: &Routes, less: &[&str]) -> Routes {
    let mut r = routes.clone();
    for p in less {
        r.remove(*p);
    }
    r
}

// Initial sync
// ---------------------------------------------------------------------------------------------

const NODE_RESOURCES: [&str; 4] = ["pods", "services", "nodes", "subnets"];

fn list_counts(api: &ApiServer) -> Vec<u64> {
    NODE_RESOURCES.iter().map(|r| api.list_count(r)).collect()
}

async fn wait_watching(api: &ApiServer, what: &str) {
    wait_for(T, what, || {
        NODE_RESOURCES.iter().all(|r| api.open_watches(r) == 1)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_snapshot_holds_every_kind() {
    bounded(async {
        let api = ApiServer::start();
        base_cluster(&api);
        let mut src = Source::start(&api, Scope::Node);
        let s = src.expect_routes("initial sync", &base(), &[]).await;
        assert_eq!(
            src.snapshots_received(),
            1,
            "the first snapshot is complete"
        );
        assert_eq!(
            (
                s.nodes.len(),
                s.pods.len(),
                s.services.len(),
                s.subnets.len()
            ),
            (2, 2, 1, 2),
            "the first snapshot holds every watched kind: {}",
            kinds(&s)
        );
        assert!(
            s.eips.is_empty() && s.gateways.is_empty(),
            "node scope reads no EIPs"
        );
        for res in NODE_RESOURCES {
            assert!(api.list_count(res) >= 1, "{res} listed");
        }
        for res in ["iptables-eips", "vpc-nat-gateways"] {
            assert_eq!(api.list_count(res), 0, "{res} is not watched in node scope");
        }
        // Nothing changes: nothing more is sent.
        src.expect_steady("no change", Duration::from_millis(500), &[&base()])
            .await;
        assert_eq!(src.snapshots_received(), 1, "{}", src.history());
    })
    .await;
}

/// One kind that cannot be listed (Kube-OVN's Subnet CRD missing: 404) holds back everything: no
/// snapshot at all, so no partial state (pods without their subnets) reaches a router.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_sent_until_every_kind_has_listed() {
    bounded(async {
        let api = ApiServer::start();
        base_cluster(&api);
        api.set_unavailable("subnets", true);
        let mut src = Source::start(&api, Scope::Node);
        wait_for(T, "pods, services and nodes listed", || {
            ["pods", "services", "nodes"]
                .iter()
                .all(|r| api.list_count(r) >= 1)
        })
        .await;
        src.expect_steady("subnets cannot be listed", Duration::from_millis(2500), &[])
            .await;
        // A change to a listed kind meanwhile is not sent either.
        api.apply(&pod("c", "node-1", "bgp-subnet", "10.16.0.7", Some("true")));
        src.expect_steady("still no subnets", Duration::from_millis(1000), &[])
            .await;
        assert_eq!(
            src.snapshots_received(),
            0,
            "a snapshot was sent before Subnets were listed\nhistory:\n{}",
            src.history()
        );
        api.set_unavailable("subnets", false);
        let s = src
            .expect_routes("subnets listed", &with(&base(), &["10.16.0.7/32"]), &[])
            .await;
        assert_eq!(src.snapshots_received(), 1, "{}", src.history());
        assert_eq!(s.subnets.len(), 2, "{}", kinds(&s));
    })
    .await;
}

/// The API server down at start: nothing announced (no snapshot), the outage reported; once it
/// is back, the complete state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_down_at_start_sends_nothing_until_it_is_up() {
    bounded(async {
        let api = ApiServer::start();
        base_cluster(&api);
        api.set_down(true);
        let mut src = Source::start(&api, Scope::Node);
        src.expect_steady("API down", Duration::from_secs(3), &[])
            .await;
        assert_eq!(
            src.snapshots_received(),
            0,
            "a snapshot was sent while the API server was down\nhistory:\n{}",
            src.history()
        );
        src.expect_up(
            "API down at start",
            false,
            0,
            Duration::from_millis(10),
            &[],
        )
        .await;
        let mark = src.mark();
        api.set_down(false);
        src.expect_routes("API back", &base(), &[]).await;
        src.expect_up("API back", true, mark, T, &[&base()]).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Rules driven by events
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotating_and_unannotating_a_pod() {
    bounded(async {
        let api = ApiServer::start();
        base_cluster(&api);
        let mut src = Source::start(&api, Scope::Node);
        let base = base();
        src.expect_routes("initial sync", &base, &[]).await;

        // Pod b (subnet `plain`, not announced) annotated cluster: its /32 appears.
        api.modify("pods", Some("default"), "b", |p| {
            annotate(p, BGP, Some("cluster"))
        });
        let annotated = with(&base, &["10.17.0.6/32"]);
        src.expect_routes("pod b annotated", &annotated, &[&base])
            .await;

        // Local, and this speaker's node: still announced.
        api.modify("pods", Some("default"), "b", |p| {
            annotate(p, BGP, Some("local"))
        });
        src.expect_steady(
            "pod b local on this node",
            Duration::from_millis(500),
            &[&annotated],
        )
        .await;

        // Annotation removed: withdrawn.
        api.modify("pods", Some("default"), "b", |p| annotate(p, BGP, None));
        src.expect_routes("pod b un-annotated", &base, &[&annotated])
            .await;

        // Pod a un-annotated: its subnet's annotation (Cluster) still covers it.
        api.modify("pods", Some("default"), "a", |p| annotate(p, BGP, None));
        src.expect_steady(
            "pod a inherits its subnet's policy",
            Duration::from_millis(500),
            &[&base],
        )
        .await;

        // An invalid value: a warning, and the pod is not announced.
        api.modify("pods", Some("default"), "a", |p| {
            annotate(p, BGP, Some("maybe"))
        });
        let no_a = without(&base, &["10.16.0.5/32", "fd00:10:16::5/128"]);
        src.expect_routes("pod a with an invalid annotation", &no_a, &[&base])
            .await;
        api.modify("pods", Some("default"), "a", |p| {
            annotate(p, BGP, Some("yes"))
        });
        src.expect_routes("pod a valid again", &base, &[&no_a])
            .await;

        // Pod deleted and service un-annotated: withdrawn.
        api.delete("pods", Some("default"), "a");
        api.modify("services", Some("default"), "dns", |s| {
            annotate(s, BGP, None)
        });
        let neither = without(&no_a, &["10.96.0.10/32"]);
        let no_svc = without(&base, &["10.96.0.10/32"]);
        src.expect_routes(
            "pod a deleted, service un-annotated",
            &neither,
            &[&base, &no_a, &no_svc],
        )
        .await;
    })
    .await;
}

/// A Local pod is announced only by the speaker of its node: recreated on another node (as a
/// StatefulSet pod moves) it is withdrawn here, and announced again when it comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_pod_moving_between_nodes() {
    bounded(async {
        let api = ApiServer::start();
        base_cluster(&api);
        api.apply(&pod("web-0", "node-1", "plain", "10.17.0.9", Some("local")));
        let mut src = Source::start(&api, Scope::Node);
        let base = base();
        let here = with(&base, &["10.17.0.9/32"]);
        src.expect_routes("web-0 on node-1", &here, &[]).await;

        // Moves to node-2: deleted, recreated there with a new IP.
        api.delete("pods", Some("default"), "web-0");
        api.apply(&pod(
            "web-0",
            "node-2",
            "plain",
            "10.17.0.10",
            Some("local"),
        ));
        src.expect_routes("web-0 moved to node-2", &base, &[&here])
            .await;
        src.expect_steady("web-0 on node-2", Duration::from_millis(500), &[&base])
            .await;

        // And back (same name, same IP as before).
        api.delete("pods", Some("default"), "web-0");
        api.apply(&pod("web-0", "node-1", "plain", "10.17.0.9", Some("local")));
        src.expect_routes("web-0 back on node-1", &here, &[&base])
            .await;

        // nodeName changed in place (what a watch would show if it were mutable): withdrawn.
        api.modify("pods", Some("default"), "web-0", |p| {
            p["spec"]["nodeName"] = json!("node-2")
        });
        src.expect_routes("web-0's nodeName changed", &base, &[&here])
            .await;

        // A Local subnet: its pods on this node only, no CIDR.
        api.apply(&subnet(
            "local-subnet",
            "10.18.0.0/16",
            Some("local"),
            true,
            false,
        ));
        api.apply(&pod("p-here", "node-1", "local-subnet", "10.18.0.2", None));
        api.apply(&pod("p-there", "node-2", "local-subnet", "10.18.0.3", None));
        src.expect_routes(
            "Local subnet's pods",
            &with(&base, &["10.18.0.2/32"]),
            &[&base],
        )
        .await;
    })
    .await;
}

/// A subnet that becomes Ready: its CIDR and its pods are announced only then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subnet_becoming_ready() {
    bounded(async {
        let api = ApiServer::start();
        base_cluster(&api);
        api.apply(&subnet(
            "new-subnet",
            "10.19.0.0/16",
            Some("true"),
            false,
            false,
        ));
        api.apply(&pod("n1", "node-2", "new-subnet", "10.19.0.2", None));
        api.apply(&pod(
            "n2",
            "node-1",
            "new-subnet",
            "10.19.0.3",
            Some("local"),
        ));
        let mut src = Source::start(&api, Scope::Node);
        let base = base();
        src.expect_routes("new-subnet not ready", &base, &[]).await;

        api.modify("subnets", None, "new-subnet", |s| set_subnet_ready(s, true));
        let ready = with(&base, &["10.19.0.0/16", "10.19.0.2/32", "10.19.0.3/32"]);
        src.expect_routes("new-subnet ready", &ready, &[&base])
            .await;

        // Not ready again: withdrawn.
        api.modify("subnets", None, "new-subnet", |s| {
            set_subnet_ready(s, false)
        });
        src.expect_routes("new-subnet not ready again", &base, &[&ready])
            .await;

        // An un-annotated subnet's Ready condition gates its annotated pods too.
        api.apply(&subnet("quiet", "10.20.0.0/16", None, false, false));
        api.apply(&pod("q1", "node-2", "quiet", "10.20.0.2", Some("true")));
        src.expect_steady("quiet not ready", Duration::from_millis(500), &[&base])
            .await;
        api.modify("subnets", None, "quiet", |s| set_subnet_ready(s, true));
        src.expect_routes("quiet ready", &with(&base, &["10.20.0.2/32"]), &[&base])
            .await;
    })
    .await;
}

/// Host-network pods are filtered by the API server (field selector): they never reach the
/// snapshot, whatever their annotations say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_network_pods_are_filtered_by_the_field_selector() {
    bounded(async {
        let api = ApiServer::start();
        base_cluster(&api);
        let mut host = pod("host-1", "node-1", "bgp-subnet", "10.16.0.50", Some("true"));
        host["spec"]["hostNetwork"] = json!(true);
        api.apply(&host);
        let mut src = Source::start(&api, Scope::Node);
        let base = base();
        let s = src.expect_routes("initial sync", &base, &[]).await;
        assert!(
            !s.pods.contains_key(&("default".into(), "host-1".into())),
            "a host-network pod reached the snapshot"
        );
        let log = api.request_log();
        assert!(
            log.iter().any(|l| l.starts_with("GET /api/v1/pods?")
                && l.contains("fieldSelector=spec.hostNetwork%3Dfalse")),
            "pods are not listed with the hostNetwork field selector:\n{}",
            log.join("\n")
        );
        // Added while watching: not delivered either.
        let mut host2 = pod("host-2", "node-1", "bgp-subnet", "10.16.0.51", Some("true"));
        host2["spec"]["hostNetwork"] = json!(true);
        api.apply(&host2);
        api.apply(&pod("real", "node-1", "bgp-subnet", "10.16.0.52", None));
        let s = src
            .expect_routes(
                "a real pod added",
                &with(&base, &["10.16.0.52/32"]),
                &[&base],
            )
            .await;
        assert_eq!(
            s.pods.keys().map(|(_, n)| n.as_str()).collect::<Vec<_>>(),
            ["a", "b", "real"],
            "pods in the snapshot"
        );
    })
    .await;
}

/// NAT gateway scope: only this gateway's EIPs (label selector) and only once ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_gateway_eips() {
    bounded(async {
        let api = ApiServer::start();
        base_cluster(&api);
        api.apply(&gateway(GATEWAY));
        api.apply(&gateway("gw-b"));
        api.apply(&eip(
            "eip-a1",
            GATEWAY,
            "198.51.100.10",
            Some("true"),
            false,
        ));
        api.apply(&eip("eip-a2", GATEWAY, "198.51.100.11", None, true));
        api.apply(&eip("eip-b1", "gw-b", "198.51.100.20", Some("true"), true));
        let scope = Scope::NatGateway {
            gateway: GATEWAY.to_string(),
        };
        let mut src = Source::start(&api, scope);
        let none = Routes::new();
        let s = src
            .expect_routes("no EIP both ready and annotated", &none, &[])
            .await;
        assert_eq!(
            s.eips.keys().collect::<Vec<_>>(),
            ["eip-a1", "eip-a2"],
            "only this gateway's EIPs are watched"
        );
        assert_eq!(s.gateways.keys().collect::<Vec<_>>(), [GATEWAY]);
        assert!(s.pods.is_empty() && s.subnets.is_empty(), "{}", kinds(&s));

        // eip-a1 becomes ready.
        api.modify("iptables-eips", None, "eip-a1", |e| {
            e["status"]["ready"] = json!(true)
        });
        let a1 = set(&["198.51.100.10/32"]);
        src.expect_routes("eip-a1 ready", &a1, &[&none]).await;
        // eip-a2 annotated.
        api.modify("iptables-eips", None, "eip-a2", |e| {
            annotate(e, BGP, Some("yes"))
        });
        let both = with(&a1, &["198.51.100.11/32"]);
        src.expect_routes("eip-a2 annotated", &both, &[&a1]).await;
        // Changes to the other gateway's EIPs never show.
        api.modify("iptables-eips", None, "eip-b1", |e| {
            e["spec"]["v4ip"] = json!("198.51.100.21")
        });
        api.apply(&eip("eip-b2", "gw-b", "198.51.100.22", Some("true"), true));
        src.expect_steady("gw-b's EIPs change", Duration::from_millis(700), &[&both])
            .await;
        assert!(
            src.last
                .as_ref()
                .is_some_and(|s| s.eips.keys().all(|k| k.starts_with("eip-a"))),
            "another gateway's EIP reached the snapshot"
        );
        // An EIP relabelled to this gateway appears; relabelled away, it goes.
        api.modify("iptables-eips", None, "eip-b2", |e| {
            e["metadata"]["labels"]["ovn.kubernetes.io/vpc-nat-gw-name"] = json!(GATEWAY)
        });
        let three = with(&both, &["198.51.100.22/32"]);
        src.expect_routes("eip-b2 moved to gw-a", &three, &[&both])
            .await;
        api.modify("iptables-eips", None, "eip-a1", |e| {
            e["metadata"]["labels"]["ovn.kubernetes.io/vpc-nat-gw-name"] = json!("gw-b")
        });
        let two = without(&three, &["198.51.100.10/32"]);
        src.expect_routes("eip-a1 moved to gw-b", &two, &[&three])
            .await;
        // Not ready: withdrawn.
        api.modify("iptables-eips", None, "eip-a2", |e| {
            e["status"]["ready"] = json!(false)
        });
        src.expect_routes("eip-a2 not ready", &set(&["198.51.100.22/32"]), &[&two])
            .await;
        let log = api.request_log();
        let eip_requests: Vec<&String> = log
            .iter()
            .filter(|l| l.starts_with("GET /apis/kubeovn.io/v1/iptables-eips"))
            .collect();
        assert!(!eip_requests.is_empty(), "EIPs are watched");
        assert!(
            eip_requests
                .iter()
                .all(|l| l.contains("labelSelector=ovn.kubernetes.io%2Fvpc-nat-gw-name%3Dgw-a")),
            "EIPs requested without the gateway's label selector:\n{}",
            log.join("\n")
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Disruptions: nothing is withdrawn by them
// ---------------------------------------------------------------------------------------------

/// Watches cut mid-stream resume from their resourceVersion: no relist, nothing withdrawn,
/// changes made around the cut arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_watches_keep_routes() {
    bounded(async {
        let api = ApiServer::start();
        base_cluster(&api);
        let mut src = Source::start(&api, Scope::Node);
        let base = base();
        let before = src.expect_routes("initial sync", &base, &[]).await;
        wait_watching(&api, "every watch open").await;
        let lists = list_counts(&api);

        assert!(api.drop_watches() >= 4, "watches were open");
        src.expect_steady("watches dropped", Duration::from_millis(1500), &[&base])
            .await;
        wait_watching(&api, "every watch open again").await;
        if let Some(last) = &src.last {
            assert_eq!(last, &before, "a snapshot after the drop differs");
        }

        // A change right after another cut.
        api.drop_watches();
        api.modify("pods", Some("default"), "b", |p| {
            annotate(p, BGP, Some("true"))
        });
        src.expect_routes(
            "change after the cut",
            &with(&base, &["10.17.0.6/32"]),
            &[&base],
        )
        .await;
        assert_eq!(
            lists,
            list_counts(&api),
            "a dropped watch resumes without a relist"
        );
    })
    .await;
}

/// Watch streams that stay open but deliver nothing (a half-open connection after a network
/// fault: no event, no bookmark, no end) are restarted once they have been silent for the bound:
/// a change made meanwhile arrives within it (kube's default would be 295 s), without a relist,
/// without anything withdrawn, and without being reported as an outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_watches_are_restarted_after_the_bound() {
    bounded(async {
        let api = ApiServer::start();
        base_cluster(&api);
        let silence = Duration::from_secs(8);
        let mut src = Source::start_with(&api, Scope::Node, silence);
        let base = base();
        src.expect_routes("initial sync", &base, &[]).await;
        wait_watching(&api, "every watch open").await;
        let lists = list_counts(&api);
        let mark = src.mark();

        assert!(api.stall_watches() >= 4, "watches were open");
        api.modify("pods", Some("default"), "b", |p| {
            annotate(p, BGP, Some("true"))
        });
        let changed = with(&base, &["10.17.0.6/32"]);
        src.expect_routes(
            "a change made while every watch is silent",
            &changed,
            &[&base],
        )
        .await;
        wait_for(T, "the silent streams to be abandoned", || {
            api.stalled_watches() == 0
        })
        .await;
        assert_eq!(
            lists,
            list_counts(&api),
            "a silent watch resumes without a relist"
        );
        assert!(
            !src.log[mark..]
                .iter()
                .any(|(_, s)| matches!(s, Seen::Up(false))),
            "a silent watch restarted in time is not an outage\nhistory:\n{}",
            src.history()
        );
    })
    .await;
}

/// Adds `n` announced pods `many-I` on node-2 to the base cluster; returns the routes of it all.
fn with_many_pods(api: &ApiServer, n: u32) -> Routes {
    let mut full = base();
    for i in 0..n {
        let ip = format!("10.16.{}.{}", 1 + i / 250, i % 250);
        api.apply(&pod(
            &format!("many-{i}"),
            "node-2",
            "bgp-subnet",
            &ip,
            None,
        ));
        full.insert(format!("{ip}/32"));
    }
    full
}

/// A 410 Gone forces a relist: nothing is withdrawn while it runs (every snapshot still
/// announces every route), an unchanged relist sends the same state, and a change made around
/// the relist is reflected once it completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_and_relist_keep_routes() {
    bounded(async {
        let api = ApiServer::start();
        base_cluster(&api);
        // Enough pods that a relist takes a moment.
        let full = with_many_pods(&api, 200);
        let mut src = Source::start(&api, Scope::Node);
        let before = src.expect_routes("initial sync", &full, &[]).await;
        wait_watching(&api, "every watch open").await;

        // 1. 410 without any change.
        let lists = list_counts(&api);
        let mark = src.mark();
        api.expire_history();
        api.drop_watches();
        wait_for(T, "every kind relisted after 410", || {
            list_counts(&api)
                .iter()
                .zip(&lists)
                .all(|(now, then)| now > then)
        })
        .await;
        assert!(api.gone_sent() >= 4, "410 sent to every watch");
        // A 410 is routine (the watcher relists): it is not reported as an outage, so /readyz
        // does not flap on every expired resourceVersion.
        src.expect_steady("after the relist", Duration::from_millis(500), &[&full])
            .await;
        assert!(
            !src.log[mark..]
                .iter()
                .any(|(_, s)| matches!(s, Seen::Up(false))),
            "a 410 was reported as an outage:\n{}",
            src.history()
        );
        if let Some(last) = &src.last {
            assert_eq!(last, &before, "an unchanged relist changed the snapshot");
        }

        // 2. 410 with changes around it: pod a deleted, pod b annotated.
        let lists = list_counts(&api);
        api.expire_history();
        api.drop_watches();
        api.delete("pods", Some("default"), "a");
        api.modify("pods", Some("default"), "b", |p| {
            annotate(p, BGP, Some("true"))
        });
        let a_gone = without(&full, &["10.16.0.5/32", "fd00:10:16::5/128"]);
        let b_added = with(&full, &["10.17.0.6/32"]);
        let want = with(&a_gone, &["10.17.0.6/32"]);
        src.expect_routes("changes around a 410", &want, &[&full, &a_gone, &b_added])
            .await;
        wait_for(T, "every kind relisted after the second 410", || {
            list_counts(&api)
                .iter()
                .zip(&lists)
                .all(|(now, then)| now > then)
        })
        .await;
        src.expect_steady(
            "after the second relist",
            Duration::from_millis(500),
            &[&want],
        )
        .await;
    })
    .await;
}

/// A relist larger than the source's chunks is streamed to the receiver in several batches, and
/// none of them shows a partial state: a pod deleted and a pod annotated while the watches were
/// down appear together, once the pods' list is complete. (An object the rules cannot read
/// during a relist keeps its previous version: `Event::Kept`, in tests/engine.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_relist_is_applied_whole_once_complete() {
    bounded(async {
        let api = ApiServer::start();
        api.set_paginate(true);
        base_cluster(&api);
        // More than one chunk of the source (1,000 events).
        let full = with_many_pods(&api, 1200);
        let mut src = Source::start(&api, Scope::Node);
        src.expect_routes("initial sync", &full, &[]).await;
        wait_watching(&api, "every watch open").await;

        let mark = src.mark();
        api.set_down(true);
        src.expect_up("API down", false, mark, T, &[&full]).await;
        api.delete("pods", Some("default"), "many-7");
        api.modify("pods", Some("default"), "b", |p| {
            annotate(p, BGP, Some("true"))
        });
        api.expire_history();
        api.set_down(false);
        let want = with(&without(&full, &["10.16.1.7/32"]), &["10.17.0.6/32"]);
        // Only the state before or the state after: never one change without the other.
        src.expect_routes("relisted after the outage", &want, &[&full])
            .await;
        assert!(
            src.streamed >= 1,
            "the pods' relist (1,200 objects) was not streamed in batches\nhistory:\n{}",
            src.history()
        );
        src.expect_steady("after the relist", Duration::from_millis(500), &[&want])
            .await;
    })
    .await;
}

/// An API server outage: reported (`Up(false)`), nothing withdrawn; changes made during the
/// outage (with the history compacted, so the watches relist) are reflected after the resync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_keeps_routes_and_resyncs() {
    bounded(async {
        let api = ApiServer::start();
        base_cluster(&api);
        let mut src = Source::start(&api, Scope::Node);
        let base = base();
        src.expect_routes("initial sync", &base, &[]).await;

        let mark = src.mark();
        api.set_down(true);
        src.expect_up("API down", false, mark, T, &[&base]).await;
        src.expect_steady("API down", Duration::from_secs(2), &[&base])
            .await;
        api.delete("pods", Some("default"), "a");
        api.apply(&pod(
            "c",
            "node-1",
            "bgp-subnet",
            "10.16.0.7",
            Some("local"),
        ));
        api.expire_history();
        src.expect_steady("API still down", Duration::from_secs(1), &[&base])
            .await;
        let mark = src.mark();
        api.set_down(false);
        let a_gone = without(&base, &["10.16.0.5/32", "fd00:10:16::5/128"]);
        let want = with(&a_gone, &["10.16.0.7/32"]);
        src.expect_routes(
            "resynced after the outage",
            &want,
            &[&base, &a_gone, &with(&base, &["10.16.0.7/32"])],
        )
        .await;
        src.expect_up("API back", true, mark, T, &[&want]).await;
    })
    .await;
}

/// After an outage during which nothing changed (watches resume, nothing to relist), the
/// source still reports that it is back (`Up(true)`); otherwise the sidecar's /readyz stays
/// failed until the next change in the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_without_changes_reports_recovery() {
    bounded(async {
        let api = ApiServer::start();
        base_cluster(&api);
        let mut src = Source::start(&api, Scope::Node);
        let base = base();
        src.expect_routes("initial sync", &base, &[]).await;
        wait_watching(&api, "every watch open").await;
        let mark = src.mark();
        api.set_down(true);
        src.expect_up("API down", false, mark, T, &[&base]).await;
        src.expect_steady("API down", Duration::from_secs(2), &[&base])
            .await;
        let mark = src.mark();
        api.set_down(false);
        wait_watching(&api, "every watch open again").await;
        src.expect_up(
            "API back, nothing changed",
            true,
            mark,
            Duration::from_secs(10),
            &[&base],
        )
        .await;
    })
    .await;
}

/// Every outage is reported, not only the first: after an outage that ended with a change to
/// one kind (watches resumed, no relist), a second outage must again send `Up(false)`, or the
/// sidecar's /readyz and `bgpgen_source_up` keep saying all is well while the API is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outage_is_reported() {
    bounded(async {
        let api = ApiServer::start();
        base_cluster(&api);
        let mut src = Source::start(&api, Scope::Node);
        let base = base();
        src.expect_routes("initial sync", &base, &[]).await;
        wait_watching(&api, "every watch open").await;

        // First outage; pod b annotated meanwhile.
        let mark = src.mark();
        api.set_down(true);
        src.expect_up("first outage", false, mark, T, &[&base])
            .await;
        api.modify("pods", Some("default"), "b", |p| {
            annotate(p, BGP, Some("true"))
        });
        api.set_down(false);
        let with_b = with(&base, &["10.17.0.6/32"]);
        src.expect_routes("after the first outage", &with_b, &[&base])
            .await;
        wait_watching(&api, "every watch open again").await;

        // Second outage.
        let mark = src.mark();
        api.set_down(true);
        src.expect_up(
            "second outage",
            false,
            mark,
            Duration::from_secs(10),
            &[&with_b],
        )
        .await;
        api.set_down(false);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Diagnostics as Events
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_become_deduplicated_events() {
    bounded(async {
        let api = ApiServer::start();
        base_cluster(&api);
        api.apply(&pod("bad", "node-1", "plain", "10.17.0.8", Some("perhaps")));
        api.apply(&subnet("natted", "10.21.0.0/16", Some("true"), true, true));
        let mut src = Source::start(&api, Scope::Node);
        let s = src
            .expect_routes("initial sync", &with(&base(), &["10.21.0.0/16"]), &[])
            .await;
        let intent = intent_of(&s, &src.args);
        let pending = events_for(&intent, &s);
        let find = |name: &str| -> PendingEvent {
            pending
                .iter()
                .find(|e| e.name == name)
                .cloned()
                .unwrap_or_else(|| panic!("no pending event about {name}: {pending:?}"))
        };
        let bad = find("bad");
        assert_eq!(bad.reason, "InvalidBGPAnnotation");
        assert_eq!(bad.namespace.as_deref(), Some("default"));
        assert!(bad.uid.is_some(), "the pod's uid is carried: {bad:?}");
        let natted = find("natted");
        assert_eq!(natted.reason, "NatOutgoingAnnounced");
        assert_eq!(natted.namespace, None);
        assert!(
            natted.uid.is_some(),
            "the subnet's uid is carried: {natted:?}"
        );

        let tx = spawn_recorder(api.client(), Some("node-1".into()));
        tx.send(pending.clone()).await.expect("recorder runs");
        wait_for(T, "an Event about each object", || {
            !api.recorded_events_about("bad").is_empty()
                && !api.recorded_events_about("natted").is_empty()
        })
        .await;
        // The same warnings again (every compile sends them): nothing new is recorded.
        tx.send(pending.clone()).await.expect("recorder runs");
        tx.send(pending).await.expect("recorder runs");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for (name, kind, reason, uid) in [
            ("bad", "Pod", "InvalidBGPAnnotation", bad.uid.clone()),
            (
                "natted",
                "Subnet",
                "NatOutgoingAnnounced",
                natted.uid.clone(),
            ),
        ] {
            let events = api.recorded_events_about(name);
            assert_eq!(
                events.len(),
                1,
                "exactly one Event about {name}: {events:#?}"
            );
            let e = &events[0];
            let field = |p: &str| e.pointer(p).and_then(Value::as_str).map(str::to_string);
            assert_eq!(field("/reason").as_deref(), Some(reason), "{e:#}");
            assert_eq!(field("/type").as_deref(), Some("Warning"), "{e:#}");
            let regarding = if e.get("regarding").is_some() {
                "/regarding"
            } else {
                "/involvedObject"
            };
            assert_eq!(
                field(&format!("{regarding}/kind")).as_deref(),
                Some(kind),
                "{e:#}"
            );
            assert_eq!(field(&format!("{regarding}/uid")), uid, "{e:#}");
            let note = field("/note")
                .or_else(|| field("/message"))
                .unwrap_or_default();
            assert!(!note.is_empty(), "the Event says why: {e:#}");
        }
        // Only these two objects got Events.
        let about: BTreeSet<String> = api
            .recorded_events()
            .iter()
            .filter_map(|e| {
                e.pointer("/regarding/name")
                    .or_else(|| e.pointer("/involvedObject/name"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect();
        assert_eq!(about, set(&["bad", "natted"]));
    })
    .await;
}
