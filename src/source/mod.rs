//! Sources of cluster state. Each produces a [`crate::snapshot::Snapshot`]; live sources send
//! [`SourceEvent`]s so that the sidecar loop does not care where the state comes from: whole
//! snapshots (a source's first state, the manifest directory after an error or a change its
//! changed files alone cannot decide) or object changes (the cluster's watches, the manifest
//! directory's changed files: only what changed, [`Changes`]).

use std::sync::Arc;

pub mod input;
pub mod json_stream;
pub mod kube;
pub mod manifests;
pub mod throttle;
pub mod watch;
pub mod wire;
pub mod yaml;

use crate::engine::Event;
use crate::model::ObjectRef;
use crate::snapshot::Snapshot;

/// What a live source reports.
#[derive(Debug)]
pub enum SourceEvent {
    /// The complete, consistent state (never a partial initial list). Shared: the source and the
    /// apply loop hold the same copy until the source changes its own (100k pods are ~90 MB).
    Snapshot(Arc<Snapshot>),
    /// What changed since the last send, in order. The first send of a source holds a complete
    /// list of every kind it watches (never a partial state).
    Changes(Changes),
    /// The input is invalid (e.g. a broken manifest): keep the last good configuration.
    Invalid(String),
    /// The source lost or regained its connection (e.g. API server outage); nothing is withdrawn.
    Up(bool),
}

/// Object changes, in the order they happened.
#[derive(Debug, Default)]
pub struct Changes {
    pub events: Vec<Event>,
    /// Objects a relist of theirs found unreadable: their previous version (if any) stays, so
    /// a [`Event::Relist`] of their kind must keep them rather than delete them.
    pub keep: Vec<ObjectRef>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The events, each relist completed with the held version of the objects it keeps
    /// (`held` looks them up where the state is kept).
    pub fn into_events(
        self,
        held: impl Fn(&ObjectRef) -> Option<crate::snapshot::Object>,
    ) -> Vec<Event> {
        let Changes { mut events, keep } = self;
        if keep.is_empty() {
            return events;
        }
        for event in &mut events {
            if let Event::Relist(kind, objects) = event {
                for reference in keep.iter().filter(|r| r.kind == *kind) {
                    let listed = objects.iter().any(|o| &o.object_ref() == reference);
                    if !listed && let Some(previous) = held(reference) {
                        objects.push(previous);
                    }
                }
            }
        }
        events
    }

    /// Applies the changes to `snapshot` (what the engine does with them, without compiling):
    /// for tests and tools that look at the state a source describes.
    pub fn apply_to(self, snapshot: &mut Snapshot) {
        let events = self.into_events(|r| kube::get(snapshot, r));
        for event in events {
            match event {
                Event::Upsert(object) => snapshot.upsert(object),
                Event::Delete(reference) => kube::remove(snapshot, &reference),
                Event::Relist(kind, objects) => {
                    kube::clear_kind(snapshot, kind);
                    for object in objects {
                        snapshot.upsert(object);
                    }
                }
                Event::InputWarnings(notes) => snapshot.input_warnings = notes,
            }
        }
    }
}
