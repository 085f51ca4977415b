//! An in-process fake Kubernetes API server for tests that drive the real `kube` client.
//!
//! [`ApiServer::start`] binds `127.0.0.1:0` and serves, from a dedicated thread with its own tokio
//! runtime (so it works from sync tests, from `#[tokio::test]` of either flavour, and for a spawned
//! `bgpgen` binary through [`ApiServer::kubeconfig_path`]), the parts of the API a controller uses:
//!
//! - **list**: `GET /api/v1/pods`, `/api/v1/namespaces/{ns}/pods`, `/apis/kubeovn.io/v1/subnets`, ...
//!   answer `{"kind":"<Kind>List","apiVersion":..,"metadata":{"resourceVersion":"N"},"items":[..]}`
//!   with every item carrying `metadata.resourceVersion`. `labelSelector` (`k=v`, `k==v`, `k!=v`,
//!   `k`, `!k`, `k in (a,b)`, `k notin (a,b)`) and `fieldSelector` (`path=v`, `path!=v` on any
//!   dotted path, e.g. `metadata.name`, `spec.nodeName`, `spec.hostNetwork`; a missing
//!   `spec.hostNetwork` counts as `false`) are honoured. `limit`/`continue` are ignored (one page,
//!   as kube-apiserver answers a `resourceVersion=0` list from its watch cache) unless
//!   [`ApiServer::set_paginate`] turns pagination on: then a list with `limit=N` returns at most N
//!   items and a `metadata.continue` token while more remain, every page carrying the first
//!   page's resourceVersion (later pages show the current objects after the cursor, not a
//!   snapshot: a watch from that resourceVersion replays any change in between anyway).
//! - **watch**: `?watch=1|true` with `resourceVersion`, `allowWatchBookmarks`, `timeoutSeconds`,
//!   `sendInitialEvents`: a chunked stream of newline-delimited `{"type":..,"object":..}` events
//!   (ADDED/MODIFIED/DELETED/BOOKMARK) filtered by the same selectors. An object that starts or stops
//!   matching a selector arrives as ADDED or DELETED, as from a real API server. A watch from a
//!   resourceVersion replays the retained history after it; from one older than the retained
//!   history it gets one in-band `ERROR` event with a 410 `Expired` Status and the stream ends (an
//!   HTTP-level 410 would make kube 5 retry the same resourceVersion forever). `resourceVersion`
//!   absent or `"0"` starts with synthetic ADDED events for the current objects. BOOKMARKs are sent
//!   every [`ApiServer::set_bookmark_interval`] (default 1 s) when asked for.
//! - **writes**: POST (create), PUT (replace, with resourceVersion precondition), PATCH (merge,
//!   strategic-merge treated as merge, apply = merge-or-create; JSON patch is refused with 415),
//!   DELETE, also on `/status`. Used by kube's event `Recorder` (`events.k8s.io/v1`) and by core v1
//!   `events`; [`ApiServer::recorded_events`] returns both. Resources whose CRD has a status
//!   subresource (`bgpspeakers.bgpgen.io`) behave as on a real server: a create or a patch of
//!   the object leaves `status` alone, a patch of `/status` changes only `status` and does not
//!   create.
//! - **discovery**: `/version`, `/api`, `/apis`, `/api/v1`, `/apis/{group}[/{version}]`.
//!
//! Faults: [`ApiServer::set_down`] makes the server unreachable (connections are accepted and
//! closed at once, existing connections are reset, open watches end; see its docs for how kube
//! reacts), [`ApiServer::drop_watches`] aborts every open watch stream mid-stream (the client
//! sees a truncated chunked body, as with a dropped connection), [`ApiServer::stall_watches`]
//! makes the open watch streams silent while keeping them open (a half-open connection),
//! [`ApiServer::expire_history`]
//! compacts the event history so the next watch resume gets the 410 ERROR event and must relist,
//! [`ApiServer::set_unavailable`] makes one resource answer 404 (a CRD that is not installed).
//!
//! Dropping the handle stops the server: open watches are aborted, the runtime is shut down and
//! every connection closed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures::channel::mpsc::{UnboundedSender, unbounded};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A resource the fake server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceDef {
    /// API group, `""` for core.
    pub group: &'static str,
    pub version: &'static str,
    /// Plural resource name as used in URLs.
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
}

impl ResourceDef {
    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods` for core resources, `plural.group` otherwise (`subnets.kubeovn.io`).
    pub fn key(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

const fn res(
    group: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> ResourceDef {
    ResourceDef {
        group,
        version: "v1",
        plural,
        kind,
        namespaced,
    }
}

/// Every resource served. In test-side calls a resource is named by its plural (`"pods"`,
/// `"subnets"`, `"iptables-eips"`, `"vpc-nat-gateways"`; `"events"` is the core v1 one) or by
/// `plural.group` (`"events.events.k8s.io"`, `"subnets.kubeovn.io"`).
pub const RESOURCES: &[ResourceDef] = &[
    res("", "pods", "Pod", true),
    res("", "services", "Service", true),
    res("", "endpoints", "Endpoints", true),
    res("", "nodes", "Node", false),
    res("", "namespaces", "Namespace", false),
    res("", "configmaps", "ConfigMap", true),
    res("", "events", "Event", true),
    res("events.k8s.io", "events", "Event", true),
    res("discovery.k8s.io", "endpointslices", "EndpointSlice", true),
    res("coordination.k8s.io", "leases", "Lease", true),
    res("kubeovn.io", "subnets", "Subnet", false),
    res("kubeovn.io", "iptables-eips", "IptablesEIP", false),
    res("kubeovn.io", "vpc-nat-gateways", "VpcNatGateway", false),
    res("kubeovn.io", "vpcs", "Vpc", false),
    res("bgpgen.io", "bgpspeakers", "BGPSpeaker", false),
];

/// Resources with a status subresource (as their CRD declares): a write to the object keeps its
/// stored `status`, a write to `/status` changes nothing but `status` (and cannot create).
const WITH_STATUS: &[&str] = &["bgpspeakers.bgpgen.io"];

fn has_status_subresource(res: usize) -> bool {
    WITH_STATUS.contains(&RESOURCES[res].key().as_str())
}

fn resolve(name: &str) -> Option<usize> {
    RESOURCES
        .iter()
        .position(|r| r.key() == name)
        .or_else(|| RESOURCES.iter().position(|r| r.plural == name))
}

fn resolve_or_panic(name: &str) -> usize {
    resolve(name).unwrap_or_else(|| panic!("fake apiserver: unknown resource {name:?}"))
}

fn resolve_path(group: &str, version: &str, plural: &str) -> Option<usize> {
    RESOURCES
        .iter()
        .position(|r| r.group == group && r.version == version && r.plural == plural)
}

fn resolve_kind(api_version: &str, kind: &str) -> Option<usize> {
    RESOURCES
        .iter()
        .position(|r| r.api_version() == api_version && r.kind == kind)
}

// ---------------------------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EvType {
    Added,
    Modified,
    Deleted,
}

impl EvType {
    fn as_str(self) -> &'static str {
        match self {
            EvType::Added => "ADDED",
            EvType::Modified => "MODIFIED",
            EvType::Deleted => "DELETED",
        }
    }
}

struct HistEvent {
    rv: u64,
    res: usize,
    ty: EvType,
    /// The new object (or, for DELETED, the deleted object with the deletion resourceVersion).
    obj: Value,
    /// The object before a MODIFIED.
    prev: Option<Value>,
}

type Line = Result<Bytes, io::Error>;

struct WatchReg {
    res: usize,
    namespace: Option<String>,
    labels: Selector,
    fields: Selector,
    tx: UnboundedSender<Line>,
    bookmarks: bool,
    next_bookmark: Instant,
    deadline: Instant,
}

impl WatchReg {
    fn matches_scope(&self, res: usize, obj: &Value) -> bool {
        res == self.res
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| obj_namespace(obj) == ns)
    }

    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches_labels(obj) && self.fields.matches_fields(obj)
    }

    fn send(&self, line: Bytes) -> bool {
        self.tx.unbounded_send(Ok(line)).is_ok()
    }

    /// Ends the stream with an error: the HTTP body is aborted without its final chunk.
    fn abort(&self) {
        let _ = self.tx.unbounded_send(Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "fake apiserver dropped the watch",
        )));
        self.tx.close_channel();
    }
}

#[derive(Default)]
struct Counters {
    lists: HashMap<usize, u64>,
    watches: HashMap<usize, u64>,
}

struct Store {
    rv: u64,
    objects: BTreeMap<(usize, String, String), Value>,
    history: VecDeque<HistEvent>,
    history_limit: usize,
    /// A watch from resourceVersion N can be served iff N >= compacted_rv.
    compacted_rv: u64,
    watches: Vec<WatchReg>,
    /// Watches made silent by `stall_watches`: open, never written to again.
    stalled: Vec<WatchReg>,
    bookmark_interval: Duration,
    counters: Counters,
    bookmarks_sent: u64,
    gone_sent: u64,
    uid_seq: u64,
    request_log: Vec<String>,
    /// Resources answering 404 as if their CRD were not installed (see `set_unavailable`).
    unavailable: std::collections::HashSet<usize>,
    /// Honour `limit`/`continue` on lists (see `set_paginate`); off by default.
    paginate: bool,
}

#[derive(Debug)]
struct ApiError {
    code: u16,
    reason: &'static str,
    message: String,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
        }
    }

    fn status(&self) -> Value {
        status_json(self.code, self.reason, &self.message)
    }
}

fn status_json(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PutMode {
    Create,
    Update,
    Upsert,
}

fn obj_namespace(obj: &Value) -> &str {
    obj.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn obj_name(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn obj_rv(obj: &Value) -> &str {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let map = obj.as_object_mut().expect("object");
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut().expect("metadata object")
}

fn set_rv(obj: &mut Value, rv: u64) {
    metadata_mut(obj).insert("resourceVersion".into(), Value::String(rv.to_string()));
}

fn event_line(ty: &str, obj: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({ "type": ty, "object": obj })).expect("json");
    v.push(b'\n');
    Bytes::from(v)
}

fn gone_status() -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "reason": "Expired",
        "code": 410,
        "message": "too old resource version",
    })
}

impl Store {
    fn new() -> Self {
        Store {
            rv: 1,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit: 10_000,
            compacted_rv: 0,
            watches: Vec::new(),
            bookmark_interval: Duration::from_secs(1),
            counters: Counters::default(),
            bookmarks_sent: 0,
            stalled: Vec::new(),
            gone_sent: 0,
            uid_seq: 0,
            request_log: Vec::new(),
            unavailable: std::collections::HashSet::new(),
            paginate: false,
        }
    }

    /// Normalises `obj` for resource `res`: apiVersion, kind, namespace.
    fn normalise(
        &self,
        res: usize,
        obj: &mut Value,
        ns_hint: Option<&str>,
    ) -> Result<(), ApiError> {
        let def = RESOURCES[res];
        let map = obj
            .as_object_mut()
            .ok_or_else(|| ApiError::new(400, "BadRequest", "object is not a JSON object"))?;
        map.insert("apiVersion".into(), Value::String(def.api_version()));
        map.insert("kind".into(), Value::String(def.kind.to_string()));
        let meta = metadata_mut(obj);
        if def.namespaced {
            let ns = meta
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .or_else(|| ns_hint.map(str::to_string))
                .unwrap_or_else(|| "default".to_string());
            if let Some(hint) = ns_hint
                && hint != ns
            {
                return Err(ApiError::new(
                    400,
                    "BadRequest",
                    format!(
                        "the namespace of the object ({ns}) does not match the namespace on the request ({hint})"
                    ),
                ));
            }
            meta.insert("namespace".into(), Value::String(ns));
        } else {
            meta.remove("namespace");
        }
        if meta
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            if let Some(prefix) = meta.get("generateName").and_then(Value::as_str) {
                let name = format!("{prefix}{:05x}", self.uid_seq + 1);
                meta.insert("name".into(), Value::String(name));
            } else {
                return Err(ApiError::new(400, "Invalid", "metadata.name is required"));
            }
        }
        Ok(())
    }

    fn put(
        &mut self,
        res: usize,
        mut obj: Value,
        mode: PutMode,
        check_rv: bool,
        ns_hint: Option<&str>,
    ) -> Result<Value, ApiError> {
        self.normalise(res, &mut obj, ns_hint)?;
        let key = (
            res,
            obj_namespace(&obj).to_string(),
            obj_name(&obj).to_string(),
        );
        let prev = self.objects.get(&key).cloned();
        let kind = RESOURCES[res].kind;
        match (&prev, mode) {
            (Some(_), PutMode::Create) => {
                return Err(ApiError::new(
                    409,
                    "AlreadyExists",
                    format!("{kind} {:?} already exists", key.2),
                ));
            }
            (None, PutMode::Update) => {
                return Err(ApiError::new(
                    404,
                    "NotFound",
                    format!("{kind} {:?} not found", key.2),
                ));
            }
            _ => {}
        }
        if check_rv && let Some(prev) = &prev {
            let want = obj_rv(&obj);
            if !want.is_empty() && want != obj_rv(prev) {
                return Err(ApiError::new(
                    409,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on {} {:?}: the object has been modified",
                        RESOURCES[res].plural, key.2
                    ),
                ));
            }
        }
        self.rv += 1;
        let rv = self.rv;
        self.uid_seq += 1;
        let uid_seq = self.uid_seq;
        let meta = metadata_mut(&mut obj);
        let prev_meta = prev.as_ref().and_then(|p| p.get("metadata"));
        let uid = prev_meta
            .and_then(|m| m.get("uid"))
            .cloned()
            .unwrap_or_else(|| Value::String(format!("00000000-0000-4000-8000-{uid_seq:012x}")));
        meta.insert("uid".into(), uid);
        let created = prev_meta
            .and_then(|m| m.get("creationTimestamp"))
            .cloned()
            .or_else(|| {
                meta.get("creationTimestamp")
                    .cloned()
                    .filter(|v| !v.is_null())
            })
            .unwrap_or_else(|| Value::String("2024-01-01T00:00:00Z".into()));
        meta.insert("creationTimestamp".into(), created);
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        self.objects.insert(key, obj.clone());
        let ty = if prev.is_some() {
            EvType::Modified
        } else {
            EvType::Added
        };
        self.record(res, ty, obj.clone(), prev);
        Ok(obj)
    }

    fn remove(&mut self, res: usize, ns: &str, name: &str) -> Option<Value> {
        let key = (res, ns.to_string(), name.to_string());
        let mut obj = self.objects.remove(&key)?;
        self.rv += 1;
        set_rv(&mut obj, self.rv);
        self.record(res, EvType::Deleted, obj.clone(), None);
        Some(obj)
    }

    fn record(&mut self, res: usize, ty: EvType, obj: Value, prev: Option<Value>) {
        let ev = HistEvent {
            rv: self.rv,
            res,
            ty,
            obj,
            prev,
        };
        self.watches.retain(|w| match filtered(w, &ev) {
            Some((ty, obj)) => w.send(event_line(ty, &obj)),
            None => !w.tx.is_closed(),
        });
        self.history.push_back(ev);
        while self.history.len() > self.history_limit {
            let old = self.history.pop_front().expect("non-empty");
            self.compacted_rv = old.rv;
        }
    }

    fn expire_history(&mut self) {
        self.rv += 1;
        self.compacted_rv = self.rv;
        self.history.clear();
    }

    fn drop_watches(&mut self) -> usize {
        let n = self.watches.iter().filter(|w| !w.tx.is_closed()).count();
        for w in self.watches.drain(..) {
            w.abort();
        }
        n
    }

    fn stall_watches(&mut self) -> usize {
        let open: Vec<WatchReg> = self
            .watches
            .drain(..)
            .filter(|w| !w.tx.is_closed())
            .collect();
        let n = open.len();
        self.stalled.extend(open);
        n
    }

    fn tick(&mut self, now: Instant) {
        let rv = self.rv;
        let interval = self.bookmark_interval;
        let mut sent = 0;
        self.watches.retain_mut(|w| {
            if w.tx.is_closed() || now >= w.deadline {
                // Dropping the sender ends the stream cleanly (timeoutSeconds elapsed).
                return false;
            }
            if w.bookmarks && now >= w.next_bookmark {
                w.next_bookmark = now + interval;
                let def = RESOURCES[w.res];
                let bm = json!({
                    "kind": def.kind,
                    "apiVersion": def.api_version(),
                    "metadata": { "resourceVersion": rv.to_string() },
                });
                sent += 1;
                return w.send(event_line("BOOKMARK", &bm));
            }
            true
        });
        self.bookmarks_sent += sent;
    }
}

/// What a watch `w` sees of history event `ev`, if anything.
fn filtered(w: &WatchReg, ev: &HistEvent) -> Option<(&'static str, Value)> {
    if !w.matches_scope(ev.res, &ev.obj) {
        return None;
    }
    let now = w.matches(&ev.obj);
    match ev.ty {
        EvType::Added | EvType::Deleted => now.then(|| (ev.ty.as_str(), ev.obj.clone())),
        EvType::Modified => {
            let before = ev.prev.as_ref().is_some_and(|p| w.matches(p));
            match (before, now) {
                (true, true) => Some(("MODIFIED", ev.obj.clone())),
                (false, true) => Some(("ADDED", ev.obj.clone())),
                (true, false) => {
                    // As kube-apiserver does: the old object with the new resourceVersion.
                    let mut old = ev.prev.clone().expect("prev");
                    set_rv(&mut old, ev.rv);
                    Some(("DELETED", old))
                }
                (false, false) => None,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Selectors
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Selector(Vec<Req>);

fn split_top_level(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn parse_set(s: &str) -> Result<Vec<String>, String> {
    let s = s.trim();
    let inner = s
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("bad set {s:?}"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

impl Selector {
    fn parse(s: &str, set_based: bool) -> Result<Selector, String> {
        let mut reqs = Vec::new();
        for term in split_top_level(s) {
            let req = if set_based && let Some((k, set)) = term.split_once(" notin ") {
                Req::NotIn(k.trim().to_string(), parse_set(set)?)
            } else if set_based && let Some((k, set)) = term.split_once(" in ") {
                Req::In(k.trim().to_string(), parse_set(set)?)
            } else if let Some((k, v)) = term.split_once("!=") {
                Req::Ne(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = term.split_once("==") {
                Req::Eq(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = term.split_once('=') {
                Req::Eq(k.trim().to_string(), v.trim().to_string())
            } else if !set_based {
                return Err(format!("invalid field selector term {term:?}"));
            } else if let Some(k) = term.strip_prefix('!') {
                Req::NotExists(k.trim().to_string())
            } else {
                Req::Exists(term.to_string())
            };
            reqs.push(req);
        }
        Ok(Selector(reqs))
    }

    fn eval(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => get(k).as_deref() == Some(v.as_str()),
            Req::Ne(k, v) => get(k).as_deref() != Some(v.as_str()),
            Req::Exists(k) => get(k).is_some(),
            Req::NotExists(k) => get(k).is_none(),
            Req::In(k, vs) => get(k).is_some_and(|x| vs.contains(&x)),
            Req::NotIn(k, vs) => get(k).is_none_or(|x| !vs.contains(&x)),
        })
    }

    fn matches_labels(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        self.eval(|k| {
            labels
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
    }

    fn matches_fields(&self, obj: &Value) -> bool {
        self.eval(|path| {
            let mut cur = obj;
            for part in path.split('.') {
                match cur.get(part) {
                    Some(v) => cur = v,
                    None => {
                        // Defaults the real API server applies before filtering.
                        return Some(match path {
                            "spec.hostNetwork" => "false".to_string(),
                            _ => String::new(),
                        });
                    }
                }
            }
            Some(match cur {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Connection handling (for `set_down`)
// ---------------------------------------------------------------------------------------------

struct Shared {
    store: Mutex<Store>,
    down: AtomicBool,
    shutting_down: AtomicBool,
    kill: tokio::sync::watch::Sender<u64>,
    connections: AtomicU64,
    refused: AtomicU64,
    /// What happened when, for a failing test's message ([`ApiServer::diag`]).
    timeline: Mutex<Timeline>,
}

/// The last [`Timeline::KEEP`] connection and request events, each with its time since start.
struct Timeline {
    started: Instant,
    events: VecDeque<String>,
}

impl Timeline {
    const KEEP: usize = 200;

    fn push(&mut self, what: String) {
        if self.events.len() == Self::KEEP {
            self.events.pop_front();
        }
        let at = self.started.elapsed();
        self.events.push_back(format!("{at:>9.3?} {what}"));
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn note(&self, what: String) {
        self.timeline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(what);
    }
}

/// A handle on the server's timeline that outlives borrows of the [`ApiServer`], for the
/// message of a test that fails: which connections were refused and which requests were
/// answered how, when.
#[derive(Clone)]
pub struct Diag(Arc<Shared>);

impl Diag {
    pub fn report(&self) -> String {
        let shared = &self.0;
        let timeline = shared.timeline.lock().unwrap_or_else(|e| e.into_inner());
        format!(
            "API double: down={} connections served={} refused={}; last events:\n{}",
            shared.down.load(Ordering::SeqCst),
            shared.connections.load(Ordering::SeqCst),
            shared.refused.load(Ordering::SeqCst),
            timeline
                .events
                .iter()
                .map(|e| format!("    {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }
}

struct DownAwareListener {
    inner: TcpListener,
    shared: Arc<Shared>,
}

impl axum::serve::Listener for DownAwareListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = match self.inner.accept().await {
                Ok(x) => x,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            if self.shared.down.load(Ordering::SeqCst)
                || self.shared.shutting_down.load(Ordering::SeqCst)
            {
                // "Down": the TCP handshake completes (the kernel did it) but the connection is
                // closed at once, so the client's request fails with a connection error.
                self.shared.refused.fetch_add(1, Ordering::SeqCst);
                self.shared
                    .note(format!("connection from {addr} refused (down)"));
                let _ = stream.set_zero_linger();
                drop(stream);
                continue;
            }
            self.shared.connections.fetch_add(1, Ordering::SeqCst);
            self.shared.note(format!("connection from {addr} accepted"));
            let _ = stream.set_nodelay(true);
            let mut rx = self.shared.kill.subscribe();
            let kill = Box::pin(async move {
                // Resolves on the next `kill` broadcast (or never, if the sender is gone).
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            });
            return (
                KillableStream {
                    inner: stream,
                    kill,
                    killed: false,
                },
                addr,
            );
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A TCP stream that fails all I/O once the server has been set down.
struct KillableStream {
    inner: TcpStream,
    kill: Pin<Box<dyn Future<Output = ()> + Send>>,
    killed: bool,
}

impl KillableStream {
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.killed && self.kill.as_mut().poll(cx).is_ready() {
            self.killed = true;
            let _ = self.inner.set_zero_linger();
        }
        if self.killed {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "fake apiserver is down",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP handling
// ---------------------------------------------------------------------------------------------

fn json_response(code: u16, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(serde_json::to_vec(body).expect("json")));
    *resp.status_mut() = StatusCode::from_u16(code).expect("status code");
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_response(e: &ApiError) -> Response {
    json_response(e.code, &e.status())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

fn is_true(v: Option<&String>) -> bool {
    matches!(v.map(String::as_str), Some("1" | "true" | "True"))
}

/// What a URL path addresses.
#[derive(Debug)]
struct Target {
    res: usize,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

enum Route {
    Discovery(Value),
    Resource(Target),
    NotFound,
}

fn api_resource_list(group_version: &str, group: &str, version: &str) -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .map(|r| {
            json!({
                "name": r.plural,
                "singularName": r.kind.to_lowercase(),
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            })
        })
        .collect();
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}

fn api_group(group: &str) -> Value {
    let gv = format!("{group}/v1");
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [{ "groupVersion": gv, "version": "v1" }],
        "preferredVersion": { "groupVersion": gv, "version": "v1" },
    })
}

fn groups() -> Vec<&'static str> {
    let mut gs: Vec<&str> = RESOURCES
        .iter()
        .map(|r| r.group)
        .filter(|g| !g.is_empty())
        .collect();
    gs.dedup();
    gs.sort_unstable();
    gs.dedup();
    gs
}

fn route(path: &str) -> Route {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["version"] => {
            return Route::Discovery(json!({
                "major": "1",
                "minor": "33",
                "gitVersion": "v1.33.0-fake",
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean",
                "buildDate": "2025-01-01T00:00:00Z",
                "goVersion": "go1.24.0",
                "compiler": "gc",
                "platform": "linux/amd64",
            }));
        }
        ["api"] => {
            return Route::Discovery(json!({
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    { "clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1" }
                ],
            }));
        }
        ["apis"] => {
            let list: Vec<Value> = groups().into_iter().map(api_group).collect();
            return Route::Discovery(json!({
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": list,
            }));
        }
        ["api", "v1"] => return Route::Discovery(api_resource_list("v1", "", "v1")),
        ["apis", g] if groups().contains(g) => return Route::Discovery(api_group(g)),
        ["apis", g, "v1"] if groups().contains(g) => {
            return Route::Discovery(api_resource_list(&format!("{g}/v1"), g, "v1"));
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Route::NotFound,
    };
    let lookup = |plural: &str| resolve_path(group, version, plural);
    let target = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if lookup(plural).is_some_and(|r| RESOURCES[r].namespaced) && tail.len() <= 2 =>
        {
            Target {
                res: lookup(plural).expect("checked"),
                namespace: Some(ns.to_string()),
                name: tail.first().map(|s| s.to_string()),
                subresource: tail.get(1).map(|s| s.to_string()),
            }
        }
        [plural, tail @ ..] if lookup(plural).is_some() && tail.len() <= 2 => {
            let res = lookup(plural).expect("checked");
            if RESOURCES[res].namespaced && !tail.is_empty() {
                return Route::NotFound;
            }
            Target {
                res,
                namespace: None,
                name: tail.first().map(|s| s.to_string()),
                subresource: tail.get(1).map(|s| s.to_string()),
            }
        }
        _ => return Route::NotFound,
    };
    Route::Resource(target)
}

fn partial_metadata(obj: &Value) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

async fn handle(shared: Arc<Shared>, req: Request) -> Response {
    let what = format!(
        "{} {}",
        req.method(),
        req.uri().path_and_query().map_or("", |p| p.as_str())
    );
    shared.note(format!("{what}: received"));
    let resp = respond(shared.clone(), req).await;
    shared.note(format!("{what}: answered {}", resp.status().as_u16()));
    resp
}

async fn respond(shared: Arc<Shared>, req: Request) -> Response {
    let method = req.method().clone();
    let uri = req.uri().clone();
    shared.lock().request_log.push(format!(
        "{method} {}",
        uri.path_and_query().map_or("", |p| p.as_str())
    ));
    if shared.down.load(Ordering::SeqCst) || shared.shutting_down.load(Ordering::SeqCst) {
        // A request that raced `set_down` on an existing connection.
        let mut resp = json_response(
            503,
            &status_json(503, "ServiceUnavailable", "fake apiserver is down"),
        );
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return resp;
    }
    let query = parse_query(uri.query());
    let target = match route(uri.path()) {
        Route::Discovery(v) if method == Method::GET => return json_response(200, &v),
        Route::Resource(t) if shared.lock().unavailable.contains(&t.res) => {
            let def = RESOURCES[t.res];
            return json_response(
                404,
                &status_json(
                    404,
                    "NotFound",
                    &format!(
                        "the server could not find the requested resource ({})",
                        def.key()
                    ),
                ),
            );
        }
        Route::Resource(t) => t,
        _ => {
            return json_response(
                404,
                &status_json(
                    404,
                    "NotFound",
                    &format!(
                        "the server could not find the requested resource ({})",
                        uri.path()
                    ),
                ),
            );
        }
    };
    let partial = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("as=PartialObjectMetadata"));
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let body = match axum::body::to_bytes(req.into_body(), 64 << 20).await {
        Ok(b) => b,
        Err(e) => return error_response(&ApiError::new(400, "BadRequest", e.to_string())),
    };
    let result = match (&method, &target.name) {
        (&Method::GET, None) if is_true(query.get("watch")) => {
            return watch(&shared, &target, &query, partial);
        }
        (&Method::GET, None) => list(&shared, &target, &query, partial),
        (&Method::GET, Some(name)) => {
            let store = shared.lock();
            let ns = target.namespace.clone().unwrap_or_default();
            store
                .objects
                .get(&(target.res, ns, name.clone()))
                .map(|o| {
                    if partial {
                        partial_metadata(o)
                    } else {
                        o.clone()
                    }
                })
                .map(|o| (200, o))
                .ok_or_else(|| not_found(&target, name))
        }
        (&Method::POST, None) => parse_body(&body).and_then(|mut obj| {
            if has_status_subresource(target.res)
                && let Some(o) = obj.as_object_mut()
            {
                // A create sets no status where the CRD has a status subresource.
                o.remove("status");
            }
            shared
                .lock()
                .put(
                    target.res,
                    obj,
                    PutMode::Create,
                    false,
                    target.namespace.as_deref(),
                )
                .map(|o| (201, o))
        }),
        (&Method::PUT, Some(name)) => parse_body(&body).and_then(|obj| {
            check_name(&obj, name)?;
            shared
                .lock()
                .put(
                    target.res,
                    obj,
                    PutMode::Update,
                    true,
                    target.namespace.as_deref(),
                )
                .map(|o| (200, o))
        }),
        (&Method::PATCH, Some(name)) => patch(&shared, &target, name, &content_type, &body),
        (&Method::DELETE, Some(name)) => {
            let ns = target.namespace.clone().unwrap_or_default();
            shared
                .lock()
                .remove(target.res, &ns, name)
                .map(|o| (200, o))
                .ok_or_else(|| not_found(&target, name))
        }
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{method} not supported here"),
        )),
    };
    match result {
        Ok((code, v)) => json_response(code, &v),
        Err(e) => error_response(&e),
    }
}

fn not_found(target: &Target, name: &str) -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        format!("{} {name:?} not found", RESOURCES[target.res].plural),
    )
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(400, "BadRequest", format!("invalid JSON body: {e}")))
}

fn check_name(obj: &Value, name: &str) -> Result<(), ApiError> {
    let got = obj_name(obj);
    if !got.is_empty() && got != name {
        return Err(ApiError::new(
            400,
            "BadRequest",
            format!("the name of the object ({got}) does not match the name on the URL ({name})"),
        ));
    }
    Ok(())
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn patch(
    shared: &Shared,
    target: &Target,
    name: &str,
    content_type: &str,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    let apply = content_type.starts_with("application/apply-patch");
    if !(apply
        || content_type.starts_with("application/merge-patch+json")
        || content_type.starts_with("application/strategic-merge-patch+json"))
    {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("fake apiserver: patch type {content_type:?} not supported"),
        ));
    }
    let patch = parse_body(body)?;
    let ns = target.namespace.clone().unwrap_or_default();
    let mut store = shared.lock();
    let key = (target.res, ns, name.to_string());
    let (mut obj, mode) = match store.objects.get(&key) {
        Some(o) => (o.clone(), PutMode::Update),
        None if apply => (
            json!({ "metadata": { "name": name, "namespace": target.namespace } }),
            PutMode::Create,
        ),
        None => return Err(not_found(target, name)),
    };
    let status_only = target.subresource.as_deref() == Some("status");
    if status_only && mode == PutMode::Create {
        return Err(not_found(target, name));
    }
    if has_status_subresource(target.res) {
        let mut patch = patch.clone();
        let kept = obj.get("status").cloned();
        if status_only {
            // Only `status` of the patch counts.
            let status = patch.get("status").cloned().unwrap_or(Value::Null);
            patch = json!({ "status": status });
        } else if let Some(p) = patch.as_object_mut() {
            p.remove("status");
        }
        merge_patch(&mut obj, &patch);
        match kept {
            Some(k) if !status_only => {
                obj.as_object_mut().map(|o| o.insert("status".into(), k));
            }
            _ => {}
        }
    } else {
        merge_patch(&mut obj, &patch);
    }
    metadata_mut(&mut obj).insert("name".into(), Value::String(name.to_string()));
    if let Some(ns) = &target.namespace {
        metadata_mut(&mut obj).insert("namespace".into(), Value::String(ns.clone()));
    }
    let code = if mode == PutMode::Create { 201 } else { 200 };
    store
        .put(target.res, obj, mode, true, target.namespace.as_deref())
        .map(|o| (code, o))
}

fn selectors(query: &HashMap<String, String>) -> Result<(Selector, Selector), ApiError> {
    let labels = Selector::parse(query.get("labelSelector").map_or("", String::as_str), true)
        .map_err(|e| ApiError::new(400, "BadRequest", e))?;
    let fields = Selector::parse(query.get("fieldSelector").map_or("", String::as_str), false)
        .map_err(|e| ApiError::new(400, "BadRequest", e))?;
    Ok((labels, fields))
}

fn list(
    shared: &Shared,
    target: &Target,
    query: &HashMap<String, String>,
    partial: bool,
) -> Result<(u16, Value), ApiError> {
    let (labels, fields) = selectors(query)?;
    let mut store = shared.lock();
    *store.counters.lists.entry(target.res).or_default() += 1;
    let def = RESOURCES[target.res];
    // Pagination (only when turned on): at most `limit` items, from after the continue token's key.
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|&l| store.paginate && l > 0);
    let (list_rv, after) = match query
        .get("continue")
        .filter(|c| !c.is_empty() && store.paginate)
    {
        Some(token) => {
            let (rv, ns, name) = parse_continue(token)?;
            (rv, Some((target.res, ns, name)))
        }
        None => (store.rv, None),
    };
    let range = match &after {
        Some(key) => store.objects.range((
            std::ops::Bound::Excluded(key.clone()),
            std::ops::Bound::Unbounded,
        )),
        None => store.objects.range(..),
    };
    let matching = range.filter(|((r, ns, _), o)| {
        *r == target.res
            && target.namespace.as_ref().is_none_or(|t| t == ns)
            && labels.matches_labels(o)
            && fields.matches_fields(o)
    });
    let mut items: Vec<Value> = Vec::new();
    let mut last_key = None;
    let mut more = false;
    for (key, o) in matching {
        if limit.is_some_and(|l| items.len() == l) {
            more = true;
            break;
        }
        items.push(if partial {
            partial_metadata(o)
        } else {
            o.clone()
        });
        last_key = Some(key);
    }
    let continue_token = match (more, last_key) {
        (true, Some((_, ns, name))) => Some(format!("{list_rv}/{ns}/{name}")),
        _ => None,
    };
    let (kind, api_version) = if partial {
        (
            "PartialObjectMetadataList".to_string(),
            "meta.k8s.io/v1".to_string(),
        )
    } else {
        (format!("{}List", def.kind), def.api_version())
    };
    let mut metadata = json!({ "resourceVersion": list_rv.to_string() });
    if let Some(token) = continue_token {
        metadata["continue"] = Value::String(token);
    }
    Ok((
        200,
        json!({
            "kind": kind,
            "apiVersion": api_version,
            "metadata": metadata,
            "items": items,
        }),
    ))
}

/// `RV/NAMESPACE/NAME` (namespace empty for cluster-scoped resources): the list's
/// resourceVersion and the key of the last item sent.
fn parse_continue(token: &str) -> Result<(u64, String, String), ApiError> {
    let bad = || {
        ApiError::new(
            400,
            "BadRequest",
            format!("invalid continue token {token:?}"),
        )
    };
    let mut parts = token.splitn(3, '/');
    let rv = parts
        .next()
        .and_then(|r| r.parse::<u64>().ok())
        .ok_or_else(bad)?;
    let ns = parts.next().ok_or_else(bad)?.to_string();
    let name = parts.next().ok_or_else(bad)?.to_string();
    Ok((rv, ns, name))
}

fn watch(
    shared: &Shared,
    target: &Target,
    query: &HashMap<String, String>,
    partial: bool,
) -> Response {
    let (labels, fields) = match selectors(query) {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    let rv_param = query.get("resourceVersion").cloned().unwrap_or_default();
    let since = if rv_param.is_empty() || rv_param == "0" {
        None
    } else {
        match rv_param.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return error_response(&ApiError::new(
                    400,
                    "BadRequest",
                    format!("invalid resourceVersion {rv_param:?}"),
                ));
            }
        }
    };
    let send_initial = is_true(query.get("sendInitialEvents"));
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let (tx, rx) = unbounded::<Line>();
    let mut store = shared.lock();
    *store.counters.watches.entry(target.res).or_default() += 1;
    let now = Instant::now();
    let reg = WatchReg {
        res: target.res,
        namespace: target.namespace.clone(),
        labels,
        fields,
        tx,
        bookmarks: is_true(query.get("allowWatchBookmarks")),
        next_bookmark: now + store.bookmark_interval,
        deadline: now + timeout,
    };
    let shape = |v: Value| if partial { partial_metadata(&v) } else { v };
    match since {
        Some(n) if !send_initial && n < store.compacted_rv => {
            store.gone_sent += 1;
            let _ = reg.send(event_line("ERROR", &gone_status()));
            // `reg` (and with it the sender) is dropped: the stream ends after the ERROR event.
        }
        Some(n) if !send_initial => {
            for ev in store.history.iter().filter(|e| e.rv > n) {
                if let Some((ty, obj)) = filtered(&reg, ev) {
                    let _ = reg.send(event_line(ty, &shape(obj)));
                }
            }
            store.watches.push(reg);
        }
        _ => {
            for ((r, _, _), o) in &store.objects {
                if reg.matches_scope(*r, o) && reg.matches(o) {
                    let _ = reg.send(event_line("ADDED", &shape(o.clone())));
                }
            }
            if send_initial {
                let def = RESOURCES[target.res];
                let bm = json!({
                    "kind": def.kind,
                    "apiVersion": def.api_version(),
                    "metadata": {
                        "resourceVersion": store.rv.to_string(),
                        "annotations": { "k8s.io/initial-events-end": "true" },
                    },
                });
                let _ = reg.send(event_line("BOOKMARK", &bm));
            }
            store.watches.push(reg);
        }
    }
    drop(store);
    let mut resp = Response::new(Body::from_stream(rx));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

// ---------------------------------------------------------------------------------------------
// The handle
// ---------------------------------------------------------------------------------------------

/// A running fake API server. Dropping it stops the server.
pub struct ApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    dir: TempDir,
    kubeconfig: PathBuf,
}

impl ApiServer {
    /// Starts a server on `127.0.0.1:<ephemeral>` in a background thread (its own runtime) and
    /// writes a kubeconfig for it. Callable from sync code and from inside a tokio runtime.
    pub fn start() -> ApiServer {
        let (kill, _) = tokio::sync::watch::channel(0u64);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new()),
            down: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            kill,
            connections: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            timeline: Mutex::new(Timeline {
                started: Instant::now(),
                events: Default::default(),
            }),
        });
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake apiserver");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("local addr");
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let server_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-apiserver-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("fake apiserver runtime");
                rt.block_on(async move {
                    let listener = DownAwareListener {
                        inner: TcpListener::from_std(std_listener).expect("tokio listener"),
                        shared: server_shared.clone(),
                    };
                    let handler_shared = server_shared.clone();
                    let app = Router::new().fallback(move |req: Request| {
                        let s = handler_shared.clone();
                        async move { handle(s, req).await }
                    });
                    let ticker_shared = server_shared.clone();
                    tokio::spawn(async move {
                        let mut iv = tokio::time::interval(Duration::from_millis(25));
                        loop {
                            iv.tick().await;
                            ticker_shared.lock().tick(Instant::now());
                        }
                    });
                    tokio::select! {
                        r = axum::serve(listener, app) => {
                            if let Err(e) = r {
                                eprintln!("fake apiserver: {e}");
                            }
                        }
                        _ = shutdown_rx => {}
                    }
                });
                // Cancels every connection task: all sockets are closed.
                rt.shutdown_timeout(Duration::from_secs(2));
            })
            .expect("spawn fake apiserver thread");
        let dir = tempfile::Builder::new()
            .prefix("fake-apiserver")
            .tempdir()
            .expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        let server = ApiServer {
            shared,
            addr,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
            dir,
            kubeconfig,
        };
        std::fs::write(&server.kubeconfig, server.kubeconfig_yaml()).expect("write kubeconfig");
        server
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A private temp dir that lives as long as the server (the kubeconfig is in it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Path of a kubeconfig file for this server (plain http, no credentials, namespace
    /// `default`), for `--kubeconfig` or `KUBECONFIG`.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The kubeconfig text written to [`ApiServer::kubeconfig_path`].
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n\
             current-context: fake\nusers:\n- name: fake\n  user: {{}}\npreferences: {{}}\n",
            self.url()
        )
    }

    /// A `kube::Config` for this server (kube's defaults otherwise, including its retry of
    /// 429/503/504).
    pub fn kube_config(&self) -> kube::Config {
        kube::Config::new(self.url().parse().expect("server url"))
    }

    /// A client for this server. Must be called from within a tokio runtime (kube spawns its
    /// request buffer task there).
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(self.kube_config()).expect("kube client")
    }

    // --- store --------------------------------------------------------------------------------

    fn to_value<T: Serialize>(obj: &T) -> (usize, Value) {
        let v = serde_json::to_value(obj).expect("serialize object");
        let api_version = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
        let res = resolve_kind(api_version, kind).unwrap_or_else(|| {
            panic!("fake apiserver: no resource for apiVersion {api_version:?} kind {kind:?}")
        });
        (res, v)
    }

    /// Creates or replaces an object (must carry `apiVersion` and `kind`; k8s-openapi types
    /// do). Any `metadata.resourceVersion` in it is ignored. Returns the stored object.
    pub fn apply<T: Serialize>(&self, obj: &T) -> Value {
        let (res, v) = Self::to_value(obj);
        self.shared
            .lock()
            .put(res, v, PutMode::Upsert, false, None)
            .unwrap_or_else(|e| panic!("fake apiserver apply: {e:?}"))
    }

    /// Creates or replaces many objects under one lock, as [`ApiServer::apply`] does for each
    /// (one event each), for loading large clusters quickly. Returns how many were stored.
    pub fn apply_all<'a>(&self, objects: impl IntoIterator<Item = &'a Value>) -> usize {
        let mut store = self.shared.lock();
        let mut n = 0;
        for obj in objects {
            let (res, v) = Self::to_value(obj);
            store
                .put(res, v, PutMode::Upsert, false, None)
                .unwrap_or_else(|e| panic!("fake apiserver apply_all: {e:?}"));
            n += 1;
        }
        n
    }

    /// Creates an object; panics if it exists.
    pub fn create<T: Serialize>(&self, obj: &T) -> Value {
        let (res, v) = Self::to_value(obj);
        self.shared
            .lock()
            .put(res, v, PutMode::Create, false, None)
            .unwrap_or_else(|e| panic!("fake apiserver create: {e:?}"))
    }

    /// Replaces an existing object; panics if it does not exist.
    pub fn update<T: Serialize>(&self, obj: &T) -> Value {
        let (res, v) = Self::to_value(obj);
        self.shared
            .lock()
            .put(res, v, PutMode::Update, false, None)
            .unwrap_or_else(|e| panic!("fake apiserver update: {e:?}"))
    }

    /// Edits a stored object in place (one MODIFIED event); panics if it does not exist.
    /// `namespace` is ignored for cluster-scoped resources (pass `None`).
    pub fn modify(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> Value {
        let res = resolve_or_panic(resource);
        let ns = ns_key(res, namespace);
        let mut store = self.shared.lock();
        let mut obj = store
            .objects
            .get(&(res, ns.clone(), name.to_string()))
            .cloned()
            .unwrap_or_else(|| panic!("fake apiserver modify: {resource} {ns}/{name} not found"));
        f(&mut obj);
        store
            .put(res, obj, PutMode::Update, false, None)
            .unwrap_or_else(|e| panic!("fake apiserver modify: {e:?}"))
    }

    /// Deletes an object (one DELETED event). Returns it, or `None` if it did not exist.
    pub fn delete(&self, resource: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let res = resolve_or_panic(resource);
        let ns = ns_key(res, namespace);
        self.shared.lock().remove(res, &ns, name)
    }

    pub fn get(&self, resource: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let res = resolve_or_panic(resource);
        let ns = ns_key(res, namespace);
        self.shared
            .lock()
            .objects
            .get(&(res, ns, name.to_string()))
            .cloned()
    }

    /// All stored objects of a resource, in (namespace, name) order.
    pub fn list(&self, resource: &str) -> Vec<Value> {
        let res = resolve_or_panic(resource);
        self.shared
            .lock()
            .objects
            .iter()
            .filter(|((r, _, _), _)| *r == res)
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// The current (global) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv
    }

    // --- faults -------------------------------------------------------------------------------

    /// Takes the server down (`true`) or brings it back (`false`).
    ///
    /// Down means unreachable at the TCP level, not 503: new connections are accepted and closed
    /// at once, existing keep-alive connections are reset, open watch streams are aborted, and a
    /// request that races this on an existing connection gets a 503 with `Connection: close`.
    /// kube 5's default retry layer only retries 429/503/504 *responses*, so connection errors
    /// are not retried inside the client: every list/watch call fails fast with a hyper
    /// connection error and the runtime `watcher` yields `Err` and backs off (use
    /// `.default_backoff()`: 0.8 s doubling to 30 s with jitter, so after a short outage recovery
    /// takes a few seconds). A 503 answer instead would be retried transparently by kube for
    /// ~15 attempts with 5 ms doubling delays (minutes), hiding the outage from the watcher.
    /// Requests refused while down are not counted by [`ApiServer::list_count`] and
    /// [`ApiServer::watch_count`]; see [`ApiServer::refused_connections`].
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
        if down {
            self.shared.kill.send_modify(|e| *e += 1);
            self.shared.lock().drop_watches();
        }
    }

    /// Makes one resource unavailable (`true`) as when its CRD is not installed: every request
    /// on it (list, watch, get, writes) answers 404 NotFound, which kube does not retry, so the
    /// runtime `watcher` yields `Err` and backs off. Open watches on it are aborted. `false`
    /// serves it again (the watcher recovers at its next backoff attempt).
    pub fn set_unavailable(&self, resource: &str, unavailable: bool) {
        let res = resolve_or_panic(resource);
        let mut store = self.shared.lock();
        if unavailable {
            store.unavailable.insert(res);
            for w in store.watches.iter().filter(|w| w.res == res) {
                w.abort();
            }
        } else {
            store.unavailable.remove(&res);
        }
    }

    pub fn is_down(&self) -> bool {
        self.shared.down.load(Ordering::SeqCst)
    }

    /// Aborts every open watch stream mid-stream (the chunked body is cut without its final
    /// chunk, as with a dropped connection). Returns how many were open. kube treats the
    /// truncated body as a resumable end of stream: the watcher watches again from its last
    /// resourceVersion, without relisting.
    pub fn drop_watches(&self) -> usize {
        self.shared.lock().drop_watches()
    }

    /// Makes every open watch stream silent, as on a half-open connection after a network
    /// fault: the streams stay open but get nothing more (no event, no bookmark, not even their
    /// end at `timeoutSeconds`). Later watches are served normally. Returns how many there were.
    pub fn stall_watches(&self) -> usize {
        self.shared.lock().stall_watches()
    }

    /// Watch streams currently stalled by [`ApiServer::stall_watches`] that the client still
    /// holds open.
    pub fn stalled_watches(&self) -> usize {
        let store = self.shared.lock();
        store.stalled.iter().filter(|w| !w.tx.is_closed()).count()
    }

    /// Forgets the event history (and bumps the resourceVersion): a watch from any earlier
    /// resourceVersion gets one in-band 410 `Expired` ERROR event, after which kube's watcher
    /// relists. Open watches are not affected; combine with [`ApiServer::drop_watches`] to force
    /// a resume now.
    pub fn expire_history(&self) {
        self.shared.lock().expire_history();
    }

    /// Honours `limit` and `continue` on list requests (`true`), as kube-apiserver does for a
    /// list it serves from etcd, or answers every list in one page (`false`, the default, as it
    /// does for `resourceVersion=0` lists served from its watch cache). kube's watcher asks for
    /// pages of 500.
    pub fn set_paginate(&self, paginate: bool) {
        self.shared.lock().paginate = paginate;
    }

    /// How many events the history keeps (default 10 000); older ones are compacted away.
    pub fn set_history_limit(&self, n: usize) {
        let mut store = self.shared.lock();
        store.history_limit = n;
        while store.history.len() > n {
            let old = store.history.pop_front().expect("non-empty");
            store.compacted_rv = old.rv;
        }
    }

    /// How often BOOKMARK events are sent on watches that allow them (default 1 s; checked
    /// every 25 ms).
    pub fn set_bookmark_interval(&self, d: Duration) {
        let mut store = self.shared.lock();
        store.bookmark_interval = d;
        let next = Instant::now() + d;
        for w in &mut store.watches {
            w.next_bookmark = next;
        }
    }

    // --- observation --------------------------------------------------------------------------

    /// Number of list (non-watch collection GET) requests served for `resource`.
    pub fn list_count(&self, resource: &str) -> u64 {
        let res = resolve_or_panic(resource);
        self.shared
            .lock()
            .counters
            .lists
            .get(&res)
            .copied()
            .unwrap_or(0)
    }

    /// Number of watch requests served for `resource` (including ones answered with 410).
    pub fn watch_count(&self, resource: &str) -> u64 {
        let res = resolve_or_panic(resource);
        self.shared
            .lock()
            .counters
            .watches
            .get(&res)
            .copied()
            .unwrap_or(0)
    }

    /// Number of currently open watch streams on `resource`.
    pub fn open_watches(&self, resource: &str) -> usize {
        let res = resolve_or_panic(resource);
        self.shared
            .lock()
            .watches
            .iter()
            .filter(|w| w.res == res && !w.tx.is_closed())
            .count()
    }

    /// BOOKMARK events sent so far (all watches).
    pub fn bookmarks_sent(&self) -> u64 {
        self.shared.lock().bookmarks_sent
    }

    /// In-band 410 ERROR events sent so far.
    pub fn gone_sent(&self) -> u64 {
        self.shared.lock().gone_sent
    }

    /// Connections accepted and served / accepted and closed because the server was down.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    pub fn refused_connections(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Every Event stored (core v1 `events` and `events.k8s.io/v1` `events`), oldest first.
    pub fn recorded_events(&self) -> Vec<Value> {
        let core = resolve_or_panic("events");
        let new = resolve_or_panic("events.events.k8s.io");
        let mut evs: Vec<Value> = self
            .shared
            .lock()
            .objects
            .iter()
            .filter(|((r, _, _), _)| *r == core || *r == new)
            .map(|(_, o)| o.clone())
            .collect();
        evs.sort_by_key(|e| obj_rv(e).parse::<u64>().unwrap_or(0));
        evs
    }

    /// Recorded Events about the object named `name` (`regarding` for events.k8s.io/v1,
    /// `involvedObject` for core v1), oldest first.
    pub fn recorded_events_about(&self, name: &str) -> Vec<Value> {
        self.recorded_events()
            .into_iter()
            .filter(|e| {
                e.pointer("/regarding/name").and_then(Value::as_str) == Some(name)
                    || e.pointer("/involvedObject/name").and_then(Value::as_str) == Some(name)
            })
            .collect()
    }

    /// A handle on the server's timeline, for failure messages.
    pub fn diag(&self) -> Diag {
        Diag(self.shared.clone())
    }

    /// `METHOD /path?query` of every request received, in order.
    pub fn request_log(&self) -> Vec<String> {
        self.shared.lock().request_log.clone()
    }
}

fn ns_key(res: usize, namespace: Option<&str>) -> String {
    if RESOURCES[res].namespaced {
        namespace.unwrap_or("default").to_string()
    } else {
        String::new()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        self.shared.kill.send_modify(|e| *e += 1);
        self.shared.lock().drop_watches();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Polls `cond` every 20 ms until it holds; panics with `what` after `timeout`.
pub async fn wait_for(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond() {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Blocking variant of [`wait_for`] for sync tests.
pub fn wait_for_blocking(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
