//! The live cluster as a source: kube-rs watchers on the kinds the rules read, each object turned
//! into its compact snapshot record as it arrives (no reflector of whole Pods). Nothing is sent
//! until every watched kind has completed its initial list, so no partial state reaches a router;
//! a broken watch, an outage, a 410 Gone or a relist never withdraws anything by itself: the last
//! snapshot stays in force, the outage is reported (`SourceEvent::Up(false)`), and a relist
//! replaces a kind's objects only once it is complete.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::engine::Event as EngineEvent;
use crate::kubeovn::{IptablesEip, Subnet, VpcNatGateway};
use crate::model::{Kind, ObjectRef};
use crate::snapshot::{
    EipInfo, FieldError, GatewayInfo, NAT_GW_NAME_LABEL, NodeInfo, Object, PodInfo, ServiceInfo,
    Snapshot, SubnetInfo,
};
use crate::source::throttle::Throttle;
use crate::source::{Changes, SourceEvent};

/// What to watch: a node speaker reads pods, services, subnets and nodes; a NAT gateway speaker
/// only its gateway and the EIPs labelled with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Node,
    NatGateway { gateway: String },
}

/// One change from one kind's watcher, already converted.
enum Change {
    /// The watcher (re)started a list of `kind`.
    Init(Kind),
    /// An object of an ongoing list.
    InitObject(Object),
    /// The list of `kind` is complete.
    InitDone(Kind),
    Apply(Object),
    Delete(ObjectRef),
    /// An object the rules cannot read; its previous version (if any) stays.
    Invalid(ObjectRef, FieldError),
    /// The watch failed; it backs off and retries by itself.
    Error(Kind, String),
}

/// The kinds a scope watches.
pub fn watched_kinds(scope: &Scope) -> Vec<Kind> {
    match scope {
        Scope::Node => vec![Kind::Node, Kind::Pod, Kind::Service, Kind::Subnet],
        Scope::NatGateway { .. } => vec![Kind::IptablesEip, Kind::VpcNatGateway],
    }
}

fn reference<K: Resource<DynamicType = ()>>(kind: Kind, obj: &K) -> ObjectRef {
    let meta = obj.meta();
    ObjectRef::new(
        kind,
        meta.namespace.as_deref().filter(|_| kind.is_namespaced()),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// Runs one watcher, converting objects with `convert` and forwarding changes.
fn spawn_watch<K>(
    api: Api<K>,
    config: watcher::Config,
    kind: Kind,
    convert: fn(&K) -> Result<Object, FieldError>,
    tx: mpsc::Sender<Change>,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = watcher::watcher(api, config).default_backoff().boxed();
        while let Some(item) = stream.next().await {
            let change = match item {
                Ok(Event::Init) => Change::Init(kind),
                Ok(Event::InitDone) => Change::InitDone(kind),
                Ok(Event::InitApply(obj)) => match convert(&obj) {
                    Ok(o) => Change::InitObject(o),
                    Err(e) => Change::Invalid(reference(kind, &obj), e),
                },
                Ok(Event::Apply(obj)) => match convert(&obj) {
                    Ok(o) => Change::Apply(o),
                    Err(e) => Change::Invalid(reference(kind, &obj), e),
                },
                Ok(Event::Delete(obj)) => Change::Delete(reference(kind, &obj)),
                // A 410 Gone is routine (the watcher relists); it is not an outage.
                Err(watcher::Error::WatchError(status)) if status.code == 410 => {
                    tracing::debug!(kind = %kind, "watch expired (410); relisting");
                    continue;
                }
                Err(e) => Change::Error(kind, e.to_string()),
            };
            if tx.send(change).await.is_err() {
                return;
            }
        }
    });
}

/// The shortest `--watch-timeout`: kube's watcher notices a silent watch `timeoutSeconds` + 5 s
/// after its last event, and the API server needs a timeout of at least one second.
pub const MIN_WATCH_TIMEOUT: Duration = Duration::from_secs(6);
/// kube's watcher treats a watch as dead when nothing (event or bookmark) arrived for its
/// `timeoutSeconds` plus this margin (kube-runtime 5, `WATCH_IDLE_TIMEOUT_MARGIN`).
const KUBE_IDLE_MARGIN: Duration = Duration::from_secs(5);

/// The watch parameters for a silence bound: the API server is asked to end each watch
/// (`timeoutSeconds`) 5 s before the bound, so a healthy watch always delivers something within
/// it (an event, a bookmark or its end), and kube's watcher restarts, from the last resource
/// version, a watch that stayed silent for the whole bound: a half-open connection after a
/// network fault costs the bound, not the default 295 s. Bookmarks are requested (the default).
fn watch_config(silence: Duration) -> watcher::Config {
    let server = silence
        .saturating_sub(KUBE_IDLE_MARGIN)
        .as_secs()
        .clamp(1, u64::from(u32::MAX));
    watcher::Config::default().timeout(server as u32)
}

/// A client for the cluster source: every response must deliver bytes at least every
/// `silence` + 5 s (`read_timeout`, counted from each request: `reset_reader_on_write`), so a
/// list stuck on a half-open connection fails and is retried instead of hanging forever. Watches
/// end earlier (see [`watch_config`]).
pub fn client(mut config: kube::Config, silence: Duration) -> Result<Client, kube::Error> {
    config.read_timeout = Some(silence + KUBE_IDLE_MARGIN);
    config.reset_reader_on_write = true;
    Client::try_from(config)
}

/// Starts the watchers for `scope` and returns the stream of source events. Snapshots are sent
/// after every change: at once after a quiet spell, at most once per `debounce` during a stream of
/// changes ([`Throttle`]). A watch that delivers neither events nor bookmarks for `silence` is
/// restarted ([`watch_config`]).
pub fn watch_cluster(
    client: Client,
    scope: Scope,
    debounce: Duration,
    silence: Duration,
) -> mpsc::Receiver<SourceEvent> {
    let (tx, rx) = mpsc::channel(1024);
    let probe_client = client.clone();
    // Lists are paged (500 objects a page) and read from etcd: `any_semantic` (resourceVersion=0,
    // from the watch cache) makes the API server ignore the page size and send 100,000 pods in one
    // response, ~1 GB decoded at once (BENCHMARKS.md, sidecar memory).
    let base = || watch_config(silence);
    match &scope {
        Scope::Node => {
            spawn_watch(
                Api::<Node>::all(client.clone()),
                base(),
                Kind::Node,
                |o| NodeInfo::from_k8s(o).map(Object::Node),
                tx.clone(),
            );
            // Host-network pods are never announced: let the API server filter them out.
            spawn_watch(
                Api::<Pod>::all(client.clone()),
                base().fields("spec.hostNetwork=false"),
                Kind::Pod,
                |o| PodInfo::from_k8s(o).map(Object::Pod),
                tx.clone(),
            );
            spawn_watch(
                Api::<Service>::all(client.clone()),
                base(),
                Kind::Service,
                |o| ServiceInfo::from_k8s(o).map(Object::Service),
                tx.clone(),
            );
            spawn_watch(
                Api::<Subnet>::all(client),
                base(),
                Kind::Subnet,
                |o| SubnetInfo::from_kubeovn(o).map(Object::Subnet),
                tx,
            );
        }
        Scope::NatGateway { gateway } => {
            spawn_watch(
                Api::<IptablesEip>::all(client.clone()),
                base().labels(&format!("{NAT_GW_NAME_LABEL}={gateway}")),
                Kind::IptablesEip,
                |o| EipInfo::from_kubeovn(o).map(Object::Eip),
                tx.clone(),
            );
            spawn_watch(
                Api::<VpcNatGateway>::all(client),
                base().fields(&format!("metadata.name={gateway}")),
                Kind::VpcNatGateway,
                |o| GatewayInfo::from_kubeovn(o).map(Object::Gateway),
                tx,
            );
        }
    }
    let (out_tx, out_rx) = mpsc::channel(4);
    tokio::spawn(state_task(
        probe_client,
        watched_kinds(&scope),
        rx,
        out_tx,
        debounce,
    ));
    out_rx
}

pub(crate) fn remove(snapshot: &mut Snapshot, o: &ObjectRef) {
    match o.kind {
        Kind::Node => {
            snapshot.nodes.remove(&o.name);
        }
        Kind::Pod => {
            snapshot.pods.remove(&o.pair());
        }
        Kind::Service => {
            snapshot.services.remove(&o.pair());
        }
        Kind::Subnet => {
            snapshot.subnets.remove(&o.name);
        }
        Kind::IptablesEip => {
            snapshot.eips.remove(&o.name);
        }
        Kind::VpcNatGateway => {
            snapshot.gateways.remove(&o.name);
        }
    }
}

pub(crate) fn clear_kind(snapshot: &mut Snapshot, kind: Kind) {
    match kind {
        Kind::Node => snapshot.nodes.clear(),
        Kind::Pod => snapshot.pods.clear(),
        Kind::Service => snapshot.services.clear(),
        Kind::Subnet => snapshot.subnets.clear(),
        Kind::IptablesEip => snapshot.eips.clear(),
        Kind::VpcNatGateway => snapshot.gateways.clear(),
    }
}

/// How many events of a relist in progress are sent at once, whatever the debounce: the list
/// is streamed to the engine, which keeps only what it changes ([`crate::relist`]), so the new
/// list of 100k pods is never held next to the old one.
const RELIST_CHUNK: usize = 1000;

/// Drops the events of the list of `kind` in progress (from its [`EngineEvent::RelistBegin`] on)
/// still in `pending`: the watcher starts that list again.
fn drop_partial_list(pending: &mut Changes, kind: Kind) {
    let Some(begin) = pending
        .events
        .iter()
        .rposition(|e| matches!(e, EngineEvent::RelistBegin(k) if *k == kind))
    else {
        return;
    };
    let mut index = 0;
    pending.events.retain(|e| {
        let keep = index < begin
            || match e {
                EngineEvent::Listed(o) => o.object_ref().kind != kind,
                EngineEvent::Kept(r) => r.kind != kind,
                EngineEvent::RelistBegin(k) => *k != kind,
                _ => true,
            };
        index += 1;
        keep
    });
}

/// Collects changes: holds back everything until each kind has listed once, streams a
/// (re)list as [`EngineEvent::RelistBegin`], its objects and [`EngineEvent::RelistEnd`] (the
/// engine applies nothing of it before its end, so no partial state reaches a router), and
/// sends what changed since the last send, coalesced ([`Throttle`]). It keeps no copy of the
/// cluster state: the sidecar's engine holds the only one.
async fn state_task(
    client: Client,
    kinds: Vec<Kind>,
    mut changes: mpsc::Receiver<Change>,
    out: mpsc::Sender<SourceEvent>,
    debounce: Duration,
) {
    let mut pending = Changes::default();
    let mut synced: BTreeSet<Kind> = BTreeSet::new();
    // Kinds whose list is in progress (between Init and InitDone).
    let mut listing: BTreeSet<Kind> = BTreeSet::new();
    // Kinds whose watch failed. A watch that resumes without news emits nothing, so recovery is
    // also detected by probing the API server while anything is failing.
    let mut failing: BTreeSet<Kind> = BTreeSet::new();
    // Watch events are whole objects: nothing to wait for before the first send.
    let mut throttle = Throttle::new(debounce, Duration::ZERO);
    let mut probe = tokio::time::interval(Duration::from_secs(1));
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let ready = synced.len() == kinds.len();
        tokio::select! {
            change = changes.recv() => {
                let Some(change) = change else { return };
                let was_failing = !failing.is_empty();
                match change {
                    Change::Init(kind) => {
                        if !listing.insert(kind) {
                            // Listed again after an error mid-list: what of the broken list
                            // is not sent yet is not sent at all.
                            drop_partial_list(&mut pending, kind);
                        }
                        pending.events.push(EngineEvent::RelistBegin(kind));
                    }
                    Change::InitObject(object) => pending.events.push(EngineEvent::Listed(object)),
                    Change::InitDone(kind) => {
                        // The relist is complete: only now are this kind's objects replaced.
                        listing.remove(&kind);
                        pending.events.push(EngineEvent::RelistEnd(kind));
                        synced.insert(kind);
                        failing.remove(&kind);
                        tracing::debug!(kind = %kind, "list complete");
                    }
                    Change::Apply(object) => {
                        failing.remove(&object.object_ref().kind);
                        pending.events.push(EngineEvent::Upsert(object));
                    }
                    Change::Delete(reference) => {
                        failing.remove(&reference.kind);
                        pending.events.push(EngineEvent::Delete(reference));
                    }
                    Change::Invalid(reference, error) => {
                        tracing::warn!(object = %reference, %error, "object ignored; its previous version (if any) stays in force");
                        // During a relist, the previous version is carried over, or the end of
                        // the relist would delete it.
                        if listing.contains(&reference.kind) {
                            pending.events.push(EngineEvent::Kept(reference));
                        }
                    }
                    Change::Error(kind, message) => {
                        tracing::warn!(kind = %kind, error = %message, "watch failed; retrying with backoff, routes stay as they are");
                        failing.insert(kind);
                    }
                }
                let event = match (was_failing, failing.is_empty()) {
                    (false, false) => Some(SourceEvent::Up(false)),
                    (true, true) => Some(SourceEvent::Up(true)),
                    _ => None,
                };
                if let Some(e) = event
                    && out.send(e).await.is_err()
                {
                    return;
                }
                let ready = synced.len() == kinds.len();
                if ready && !listing.is_empty() && pending.events.len() >= RELIST_CHUNK {
                    // A relist streamed on: the engine holds back all of it until its end.
                    let changes = std::mem::take(&mut pending);
                    if out.send(SourceEvent::Changes(changes)).await.is_err() {
                        return;
                    }
                } else if !pending.is_empty() && ready {
                    throttle.changed(tokio::time::Instant::now());
                }
            }
            _ = probe.tick(), if !failing.is_empty() => {
                if client.apiserver_version().await.is_ok() {
                    tracing::info!("the API server answers again");
                    failing.clear();
                    if out.send(SourceEvent::Up(true)).await.is_err() {
                        return;
                    }
                }
            }
            _ = tokio::time::sleep_until(throttle.due().unwrap_or_else(tokio::time::Instant::now)), if throttle.due().is_some() && ready => {
                throttle.sent(tokio::time::Instant::now());
                let changes = std::mem::take(&mut pending);
                if !changes.is_empty() && out.send(SourceEvent::Changes(changes)).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_ends_watches_before_the_silence_bound() {
        let c = watch_config(Duration::from_secs(60));
        assert_eq!(c.timeout, Some(55));
        assert!(c.bookmarks, "bookmarks requested");
        assert_eq!(watch_config(MIN_WATCH_TIMEOUT).timeout, Some(1));
        assert_eq!(watch_config(Duration::from_secs(2)).timeout, Some(1));
    }
}
