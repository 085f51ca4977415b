//! Cluster-wide status (README "kubectl get bgpspeakers"): with the cluster source, each sidecar
//! keeps one cluster-scoped `BGPSpeaker` object (`bgpgen.io/v1`, CRD in
//! `yamls/bgpspeaker-crd.yaml`) current with what its `/status` says: the sessions, their route
//! counts, the intent in force and the last apply. A session going down or coming up is an Event
//! on that object. The object is owned by the speaker's Node (node mode) or by its VpcNatGateway
//! (NAT-gateway mode), so it goes when they go.
//!
//! Writes are bounded: the status is written when it changed, at most every [`MIN_GAP`] (sooner,
//! [`CHANGE_GAP`], when a session changed state) and at least every [`HEARTBEAT`]; server-side
//! apply, so nothing is read back first. A cluster without the CRD (404) or a speaker without the
//! rights (403) is said once, then retried every [`RETRY`], never blocking the sidecar.
//!
//! [`object`] and [`transitions`] are pure; [`run`] is the edge.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, ObjectReference};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::{Value, json};

use crate::report::{Document, Peer};
use crate::status::Status;

pub const GROUP: &str = "bgpgen.io";
pub const VERSION: &str = "v1";
pub const KIND: &str = "BGPSpeaker";
pub const PLURAL: &str = "bgpspeakers";
const MANAGER: &str = "bgpgen";

/// The shortest time between two status writes, and between two when a session changed state.
pub const MIN_GAP: Duration = Duration::from_secs(10);
pub const CHANGE_GAP: Duration = Duration::from_secs(1);
/// The longest time between two writes (the object says when it was last current).
pub const HEARTBEAT: Duration = Duration::from_secs(60);
/// How long after a refused write (no CRD, no rights) the next is tried.
pub const RETRY: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_secs(1);

fn api_resource() -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: VERSION.into(),
        api_version: format!("{GROUP}/{VERSION}"),
        kind: KIND.into(),
        plural: PLURAL.into(),
    }
}

/// Who the speaker is: its object's name and owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Node(String),
    VpcNatGateway(String),
}

impl Owner {
    /// From the status document, once an intent is in force.
    pub fn of(doc: &Document) -> Option<Owner> {
        match doc.mode.as_deref() {
            Some("nat-gateway") => doc.gateway.clone().map(Owner::VpcNatGateway),
            Some(_) => doc.node.clone().map(Owner::Node),
            None => None,
        }
    }

    /// The object's name: the node's, or `natgw-<gateway>` (a node and a gateway may share a
    /// name).
    pub fn object_name(&self) -> String {
        match self {
            Owner::Node(n) => n.clone(),
            Owner::VpcNatGateway(g) => format!("natgw-{g}"),
        }
    }

    fn reference(&self, uid: &str) -> Value {
        let (api_version, kind, name) = match self {
            Owner::Node(n) => ("v1", "Node", n),
            Owner::VpcNatGateway(g) => ("kubeovn.io/v1", "VpcNatGateway", g),
        };
        json!({"apiVersion": api_version, "kind": kind, "name": name, "uid": uid})
    }
}

fn total(m: &BTreeMap<crate::model::Family, u64>) -> u64 {
    m.values().sum()
}

fn peer_status(p: &Peer) -> Value {
    json!({
        "address": p.address.to_string(),
        "remoteAs": p.remote_as,
        "families": p.families,
        "state": p.state,
        "since": p.since,
        "advertised": p.advertised,
        "expected": p.expected,
        "flaps": p.flaps,
        "lastError": p.last_error,
        "inIntent": p.in_intent,
    })
}

/// The object's `status`: a summary the printer columns show (`sessions` "1/2", advertised and
/// expected route counts, `peers` as one line for `-o wide`) and one entry per neighbor.
pub fn status(doc: &Document) -> Value {
    let wanted: Vec<&Peer> = doc.peers.iter().filter(|p| p.in_intent).collect();
    let established = wanted.iter().filter(|p| p.established()).count();
    let line = doc
        .peers
        .iter()
        .map(|p| format!("{}={}", p.address, p.state))
        .collect::<Vec<_>>()
        .join(",");
    json!({
        "backend": doc.backend,
        "ready": doc.ready,
        "stale": doc.stale.iter().map(|s| s.reason.clone()).collect::<Vec<_>>(),
        "intentHash": doc.intent_hash,
        "lastApply": doc.last_apply.as_ref().map(|a| json!({"result": a.result, "time": a.time})),
        "daemonReachable": doc.daemon_reachable,
        "sessions": format!("{established}/{}", wanted.len()),
        "established": established,
        "advertised": doc.peers.iter().map(|p| total(&p.advertised)).sum::<u64>(),
        "expected": wanted.iter().map(|p| total(&p.expected)).sum::<u64>(),
        "routes": total(&doc.routes),
        "peerStates": line,
        "peers": doc.peers.iter().map(peer_status).collect::<Vec<_>>(),
        "drift": doc.drift.len(),
    })
}

/// A session that went down or came up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub peer: IpAddr,
    pub remote_as: u32,
    pub up: bool,
    pub state: String,
    pub last_error: Option<String>,
}

impl Transition {
    fn event(&self) -> Event {
        let note = if self.up {
            format!(
                "BGP session with {} (AS {}) established",
                self.peer, self.remote_as
            )
        } else {
            let why = self
                .last_error
                .as_deref()
                .map(|e| format!(": {}", crate::text::clip(e, 300)))
                .unwrap_or_default();
            format!(
                "BGP session with {} (AS {}) is {} (was established){why}",
                self.peer, self.remote_as, self.state
            )
        };
        Event {
            type_: if self.up {
                EventType::Normal
            } else {
                EventType::Warning
            },
            reason: if self.up { "SessionUp" } else { "SessionDown" }.into(),
            note: Some(note),
            action: "Observe".into(),
            // The peer as the related object: kube's Recorder folds Events with the same
            // regarding, related, reason and action into one series, and each session's changes
            // are their own.
            secondary: Some(ObjectReference {
                kind: Some("BGPPeer".into()),
                name: Some(self.peer.to_string()),
                ..Default::default()
            }),
        }
    }
}

/// The sessions of the intent whose established-ness changed since `seen`, which is updated. A
/// neighbor seen for the first time is no transition (a sidecar restart is no session event).
pub fn transitions(seen: &mut BTreeMap<IpAddr, bool>, doc: &Document) -> Vec<Transition> {
    let mut out = Vec::new();
    let mut now = BTreeMap::new();
    for p in doc.peers.iter().filter(|p| p.in_intent) {
        let up = p.established();
        now.insert(p.address, up);
        if let Some(before) = seen.get(&p.address)
            && *before != up
        {
            out.push(Transition {
                peer: p.address,
                remote_as: p.remote_as,
                up,
                state: p.state.clone(),
                last_error: p.last_error.clone(),
            });
        }
    }
    *seen = now;
    out
}

/// The object as applied (without status: the status subresource is written separately).
pub fn object(owner: &Owner, owner_uid: Option<&str>, doc: &Document) -> Value {
    let mut meta = json!({
        "name": owner.object_name(),
        "labels": {"app.kubernetes.io/name": "bgpgen"},
    });
    if let Some(uid) = owner_uid {
        meta["ownerReferences"] = json!([owner.reference(uid)]);
    }
    let (node, gateway) = match owner {
        Owner::Node(n) => (Some(n.as_str()), None),
        Owner::VpcNatGateway(g) => (None, Some(g.as_str())),
    };
    json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": KIND,
        "metadata": meta,
        "spec": {"node": node, "gateway": gateway, "backend": doc.backend, "localAs": doc.local_as},
    })
}

/// What is compared to decide whether the status changed (not the timestamps of the read-back).
fn content(status: &Value) -> Value {
    let mut v = status.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("observedAt");
    }
    v
}

struct Publisher {
    api: Api<DynamicObject>,
    client: Client,
    recorder: Recorder,
    owner: Option<Owner>,
    owner_uid: Option<String>,
    /// The object's uid, once applied (Events refer to it).
    uid: Option<String>,
    last_write: Option<Instant>,
    last_content: Option<Value>,
    refused_until: Option<Instant>,
    seen: BTreeMap<IpAddr, bool>,
    failing: bool,
}

impl Publisher {
    async fn owner_uid(&self, owner: &Owner) -> Option<String> {
        let result = match owner {
            Owner::Node(n) => Api::<Node>::all(self.client.clone())
                .get(n)
                .await
                .map(|o| o.metadata.uid),
            Owner::VpcNatGateway(g) => {
                Api::<crate::kubeovn::VpcNatGateway>::all(self.client.clone())
                    .get(g)
                    .await
                    .map(|o| o.metadata.uid)
            }
        };
        match result {
            Ok(uid) => uid,
            Err(e) => {
                tracing::warn!(error = %e, owner = ?owner, "cannot read the BGPSpeaker's owner; the object is written without an owner reference");
                None
            }
        }
    }

    /// Writes the object (first time, or after it went) and its status. `Err((message, again))`:
    /// `again` when the next tick should try at once (the object was deleted behind our back:
    /// it is applied again), else the write is refused for [`RETRY`].
    async fn apply(
        &mut self,
        owner: &Owner,
        doc: &Document,
        status: Value,
    ) -> Result<(), (String, bool)> {
        let name = owner.object_name();
        let params = PatchParams::apply(MANAGER).force();
        let existed = self.uid.is_some() && self.owner.as_ref() == Some(owner);
        if !existed {
            if self.owner.as_ref() != Some(owner) || self.owner_uid.is_none() {
                self.owner_uid = self.owner_uid(owner).await;
            }
            let obj = object(owner, self.owner_uid.as_deref(), doc);
            let applied = self
                .api
                .patch(&name, &params, &Patch::Apply(&obj))
                .await
                .map_err(|e| (e.to_string(), false))?;
            self.uid = applied.metadata.uid;
            self.owner = Some(owner.clone());
        }
        let body = json!({
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "kind": KIND,
            "status": status,
        });
        match self
            .api
            .patch_status(&name, &params, &Patch::Apply(&body))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                // Deleted behind our back, most likely: applied again on the next tick.
                self.uid = None;
                Err((e.to_string(), existed))
            }
        }
    }

    async fn publish_events(&self, owner: &Owner, found: &[Transition]) {
        let reference = ObjectReference {
            api_version: Some(format!("{GROUP}/{VERSION}")),
            kind: Some(KIND.into()),
            name: Some(owner.object_name()),
            uid: self.uid.clone(),
            ..Default::default()
        };
        for t in found {
            if let Err(e) = self.recorder.publish(&t.event(), &reference).await {
                tracing::warn!(error = %e, peer = %t.peer, "could not record the session Event");
            }
        }
    }

    async fn tick(&mut self, shared: &Mutex<Status>) {
        let doc = match shared.lock() {
            Ok(s) => crate::report::document(&s),
            Err(_) => return,
        };
        let Some(owner) = Owner::of(&doc) else {
            return;
        };
        let found = if doc.observed_at.is_some() {
            transitions(&mut self.seen, &doc)
        } else {
            Vec::new()
        };
        let status = status(&doc);
        let changed = self.last_content.as_ref() != Some(&content(&status));
        let since = self.last_write.map(|t| t.elapsed());
        let due = match since {
            None => true,
            Some(s) if !found.is_empty() => s >= CHANGE_GAP,
            Some(s) => (changed && s >= MIN_GAP) || s >= HEARTBEAT,
        };
        let refused = self.refused_until.is_some_and(|t| Instant::now() < t);
        if due && !refused {
            self.last_write = Some(Instant::now());
            match self.apply(&owner, &doc, status.clone()).await {
                Ok(()) => {
                    if self.failing {
                        tracing::info!(name = %owner.object_name(), "the BGPSpeaker object is written again");
                    }
                    self.failing = false;
                    self.refused_until = None;
                    self.last_content = Some(content(&status));
                }
                Err((e, true)) => {
                    tracing::info!(error = %e, name = %owner.object_name(), "the BGPSpeaker object's status could not be written; writing the object again");
                    self.last_write = None;
                }
                Err((e, false)) => {
                    if !self.failing {
                        tracing::warn!(error = %e, name = %owner.object_name(), "cannot write the BGPSpeaker object (is yamls/bgpspeaker-crd.yaml installed, and its RBAC?); retrying every {}s", RETRY.as_secs());
                    }
                    self.failing = true;
                    self.refused_until = Some(Instant::now() + RETRY);
                }
            }
        }
        if !found.is_empty() {
            self.publish_events(&owner, &found).await;
        }
    }
}

/// Keeps the speaker's BGPSpeaker object current from the shared status, until the process
/// exits.
pub async fn run(client: Client, shared: Arc<Mutex<Status>>, instance: Option<String>) {
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "bgpgen".into(),
            instance,
        },
    );
    let mut publisher = Publisher {
        api: Api::all_with(client.clone(), &api_resource()),
        client,
        recorder,
        owner: None,
        owner_uid: None,
        uid: None,
        last_write: None,
        last_content: None,
        refused_until: None,
        seen: BTreeMap::new(),
        failing: false,
    };
    let mut ticker = tokio::time::interval(POLL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        publisher.tick(&shared).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Document, Peer};

    fn peer(addr: &str, state: &str, code: u8) -> Peer {
        Peer {
            address: addr.parse().unwrap(),
            remote_as: 65030,
            families: vec![crate::model::Family::Ipv4Unicast],
            state: state.into(),
            state_code: code,
            since: None,
            flaps: Some(0),
            out_queue: None,
            messages_received: None,
            messages_sent: None,
            advertised: BTreeMap::from([(crate::model::Family::Ipv4Unicast, 2)]),
            expected: BTreeMap::from([(crate::model::Family::Ipv4Unicast, 2)]),
            bfd: None,
            last_error: (code != 6).then(|| "Cease".to_string()),
            in_intent: true,
        }
    }

    fn doc(peers: Vec<Peer>) -> Document {
        Document {
            api_version: "bgpgen/v1".into(),
            kind: "Status".into(),
            backend: Some("bird".into()),
            mode: Some("node".into()),
            node: Some("node-1".into()),
            gateway: None,
            local_as: Some(65000),
            ready: true,
            stale: vec![],
            intent_hash: Some("sha256:0".into()),
            wanted_hash: None,
            routes: BTreeMap::from([(crate::model::Family::Ipv4Unicast, 2)]),
            last_apply: Some(crate::report::LastApply {
                result: "ok".into(),
                time: "2026-12-01T00:00:00Z".into(),
                duration_ms: Some(3),
                how: None,
                error: None,
            }),
            daemon_reachable: true,
            observed_at: Some("2026-12-01T00:00:00Z".into()),
            observe_error: None,
            peers,
            drift: vec![],
        }
    }

    #[test]
    fn transitions_only_after_a_first_sight() {
        let mut seen = BTreeMap::new();
        let up = doc(vec![peer("192.0.2.2", "established", 6)]);
        assert!(transitions(&mut seen, &up).is_empty(), "first sight");
        assert!(transitions(&mut seen, &up).is_empty(), "no change");
        let down = doc(vec![peer("192.0.2.2", "idle", 1)]);
        let t = transitions(&mut seen, &down);
        assert_eq!(t.len(), 1);
        assert!(!t[0].up);
        let e = t[0].event();
        assert_eq!(e.reason, "SessionDown");
        assert!(e.note.unwrap().contains("is idle (was established): Cease"));
        let t = transitions(&mut seen, &up);
        assert!(t[0].up && t[0].event().reason == "SessionUp");
    }

    /// Every field written is in the CRD's schema, every printer column shows a written field.
    #[test]
    fn the_crd_describes_what_is_written() {
        let crd: Value =
            crate::source::yaml::from_str(include_str!("../yamls/bgpspeaker-crd.yaml")).unwrap();
        let version = &crd["spec"]["versions"][0];
        let schema = &version["schema"]["openAPIV3Schema"]["properties"];
        let d = doc(vec![peer("192.0.2.2", "established", 6)]);
        let mut written = object(&Owner::Node("n".into()), Some("u"), &d);
        written["status"] = status(&d);
        for part in ["spec", "status"] {
            let props = &schema[part]["properties"];
            for key in written[part].as_object().unwrap().keys() {
                assert!(props.get(key).is_some(), "{part}.{key} is not in the CRD");
            }
        }
        let peer_props = &schema["status"]["properties"]["peers"]["items"]["properties"];
        for key in written["status"]["peers"][0].as_object().unwrap().keys() {
            assert!(peer_props.get(key).is_some(), "status.peers[].{key}");
        }
        for c in version["additionalPrinterColumns"].as_array().unwrap() {
            let path = c["jsonPath"].as_str().unwrap();
            if path.starts_with(".metadata") {
                continue;
            }
            let mut v = &written;
            for seg in path.trim_start_matches('.').split('.') {
                v = &v[seg];
            }
            assert!(!v.is_null(), "column {} ({path}) shows nothing", c["name"]);
        }
    }

    #[test]
    fn status_and_object() {
        let d = doc(vec![
            peer("192.0.2.2", "established", 6),
            peer("2001:db8::2", "active", 3),
        ]);
        let s = status(&d);
        assert_eq!(s["sessions"], "1/2");
        assert_eq!(s["advertised"], 4);
        assert_eq!(s["expected"], 4);
        assert_eq!(s["peerStates"], "192.0.2.2=established,2001:db8::2=active");
        let owner = Owner::of(&d).unwrap();
        assert_eq!(owner, Owner::Node("node-1".into()));
        let o = object(&owner, Some("u-1"), &d);
        assert_eq!(o["metadata"]["name"], "node-1");
        assert_eq!(o["metadata"]["ownerReferences"][0]["kind"], "Node");
        assert_eq!(o["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert!(o.get("status").is_none());
        assert_eq!(
            Owner::VpcNatGateway("gw1".into()).object_name(),
            "natgw-gw1"
        );
    }
}
