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
use crate::relist::Relists;
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

/// Object changes, in the order they happened. A relist may span several of them (it is
/// streamed: [`crate::relist`]); nothing of it applies before its end.
#[derive(Debug, Default)]
pub struct Changes {
    pub events: Vec<Event>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Applies the changes to `snapshot` (what the engine does with them, without compiling),
    /// `relists` carrying the relists in progress from one batch to the next: for the sidecar
    /// before its engine exists, and for tests and tools that look at the state a source
    /// describes.
    pub fn apply_to(self, snapshot: &mut Snapshot, relists: &mut Relists) {
        for event in self.events {
            let ready = relists.stage(snapshot, event);
            for event in ready {
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
                    // Staged: a relist in progress hands out only upserts and deletes.
                    Event::RelistBegin(_)
                    | Event::Listed(_)
                    | Event::Kept(_)
                    | Event::RelistEnd(_) => {}
                }
            }
        }
    }
}
