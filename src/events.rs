//! Diagnostics about cluster objects become Kubernetes Events on those objects (an invalid
//! `ovn.kubernetes.io/bgp` value, an announced subnet with `natOutgoing: true`), so the people who
//! own a Pod or Subnet see them in `kubectl describe` without reading speaker logs. Each distinct
//! (object, message) is published once per hour at most, and at most 30 events a minute in all.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::mpsc;

use crate::diagnostic::{Diagnostic, Level};
use crate::intent::Intent;
use crate::model::Kind;
use crate::snapshot::Snapshot;

const REPEAT_AFTER: Duration = Duration::from_secs(3600);
const PER_MINUTE: usize = 30;

/// An Event to publish: the object and what to say.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PendingEvent {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: Option<String>,
    pub reason: &'static str,
    pub message: String,
}

/// Splits `Kind/[namespace/]name` back into its parts.
fn parse_object(object: &str) -> Option<(Kind, Option<String>, String)> {
    let mut parts = object.splitn(3, '/');
    let kind = Kind::parse_loose(parts.next()?)?;
    let second = parts.next()?.to_string();
    match parts.next() {
        Some(name) if kind.is_namespaced() => Some((kind, Some(second), name.to_string())),
        None if !kind.is_namespaced() => Some((kind, None, second)),
        _ => None,
    }
}

/// The Events the intent's warnings call for (pure: which diagnostics, which reason).
pub fn events_for(intent: &Intent, snapshot: &Snapshot) -> Vec<PendingEvent> {
    events_for_diagnostics(&intent.diagnostics, snapshot)
}

/// The Events that `diagnostics` call for (an apply of a route delta: the diagnostics that
/// appeared).
pub fn events_for_diagnostics(
    diagnostics: &[Diagnostic],
    snapshot: &Snapshot,
) -> Vec<PendingEvent> {
    diagnostics
        .iter()
        .filter(|d: &&Diagnostic| d.level == Level::Warning)
        .filter_map(|d| {
            let (kind, namespace, name) = parse_object(&d.object)?;
            let reason = if d.message.contains("natOutgoing") {
                "NatOutgoingAnnounced"
            } else if d.message.contains("ovn.kubernetes.io/bgp") {
                "InvalidBGPAnnotation"
            } else {
                "BGPAnnouncement"
            };
            let ns = namespace.as_deref().unwrap_or_default();
            let uid = match kind {
                Kind::Pod => snapshot.pod(ns, &name).and_then(|p| p.uid.as_ref()),
                Kind::Service => snapshot.service(ns, &name).and_then(|p| p.uid.as_ref()),
                Kind::Subnet => snapshot.subnets.get(&name).and_then(|p| p.uid.as_ref()),
                Kind::IptablesEip => snapshot.eips.get(&name).and_then(|p| p.uid.as_ref()),
                Kind::Node | Kind::VpcNatGateway => None,
            }
            .map(ToString::to_string);
            Some(PendingEvent {
                kind,
                namespace,
                name,
                uid,
                reason,
                message: d.message.clone(),
            })
        })
        .collect()
}

/// Decides which pending events go out now: new ones, or ones not repeated for an hour, within
/// the per-minute budget.
#[derive(Debug, Default)]
pub struct Limiter {
    last: HashMap<PendingEvent, Instant>,
    window: Vec<Instant>,
}

impl Limiter {
    pub fn admit(&mut self, events: Vec<PendingEvent>, now: Instant) -> Vec<PendingEvent> {
        self.window
            .retain(|t| now.duration_since(*t) < Duration::from_secs(60));
        self.last
            .retain(|_, t| now.duration_since(*t) < REPEAT_AFTER);
        let mut out = Vec::new();
        for e in events {
            if self.last.contains_key(&e) || self.window.len() >= PER_MINUTE {
                continue;
            }
            self.window.push(now);
            self.last.insert(e.clone(), now);
            out.push(e);
        }
        out
    }
}

fn api_version(kind: Kind) -> &'static str {
    match kind {
        Kind::Node | Kind::Pod | Kind::Service => "v1",
        Kind::Subnet | Kind::IptablesEip | Kind::VpcNatGateway => "kubeovn.io/v1",
    }
}

/// Starts the publisher; send it `events_for` after every compile.
pub fn spawn_recorder(client: Client, instance: Option<String>) -> mpsc::Sender<Vec<PendingEvent>> {
    let (tx, mut rx) = mpsc::channel::<Vec<PendingEvent>>(4);
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: "bgpgen".into(),
            instance,
        },
    );
    tokio::spawn(async move {
        let mut limiter = Limiter::default();
        while let Some(events) = rx.recv().await {
            for e in limiter.admit(events, Instant::now()) {
                let reference = ObjectReference {
                    api_version: Some(api_version(e.kind).into()),
                    kind: Some(e.kind.as_str().into()),
                    name: Some(e.name.clone()),
                    namespace: e.namespace.clone(),
                    uid: e.uid.clone(),
                    ..Default::default()
                };
                let event = Event {
                    type_: EventType::Warning,
                    reason: e.reason.into(),
                    note: Some(e.message.chars().take(1000).collect()),
                    action: "Announce".into(),
                    secondary: None,
                };
                if let Err(err) = recorder.publish(&event, &reference).await {
                    tracing::warn!(error = %err, object = %e.name, "could not record an Event");
                }
            }
        }
    });
    tx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &str) -> PendingEvent {
        PendingEvent {
            kind: Kind::Pod,
            namespace: Some("d".into()),
            name: name.into(),
            uid: None,
            reason: "InvalidBGPAnnotation",
            message: "m".into(),
        }
    }

    #[test]
    fn parses_object_strings() {
        assert_eq!(
            parse_object("Pod/default/web"),
            Some((Kind::Pod, Some("default".into()), "web".into()))
        );
        assert_eq!(
            parse_object("Subnet/ovn-default"),
            Some((Kind::Subnet, None, "ovn-default".into()))
        );
        assert_eq!(parse_object("options"), None);
        assert_eq!(parse_object("Pod/web"), None);
    }

    #[test]
    fn limiter_deduplicates_and_rate_limits() {
        let mut l = Limiter::default();
        let t0 = Instant::now();
        assert_eq!(l.admit(vec![ev("a"), ev("a"), ev("b")], t0).len(), 2);
        assert!(
            l.admit(vec![ev("a")], t0 + Duration::from_secs(10))
                .is_empty(),
            "deduplicated"
        );
        let many: Vec<_> = (0..100).map(|i| ev(&format!("p{i}"))).collect();
        assert_eq!(
            l.admit(many.clone(), t0 + Duration::from_secs(20)).len(),
            PER_MINUTE - 2
        );
        assert_eq!(
            l.admit(many, t0 + Duration::from_secs(90)).len(),
            PER_MINUTE,
            "a new minute"
        );
        assert_eq!(
            l.admit(vec![ev("a")], t0 + REPEAT_AFTER + Duration::from_secs(1))
                .len(),
            1,
            "repeated after an hour"
        );
    }
}
