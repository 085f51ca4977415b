//! Sources of cluster state. Each produces a [`crate::snapshot::Snapshot`]; live sources send
//! [`SourceEvent`]s so that the sidecar loop does not care where the state comes from.

use std::sync::Arc;

pub mod input;
pub mod json_stream;
pub mod kube;
pub mod manifests;
pub mod throttle;
pub mod watch;
pub mod wire;
pub mod yaml;

use crate::snapshot::Snapshot;

/// What a live source reports.
#[derive(Debug)]
pub enum SourceEvent {
    /// The complete, consistent state (never a partial initial list). Shared: the source and the
    /// apply loop hold the same copy until the source changes its own (100k pods are ~90 MB).
    Snapshot(Arc<Snapshot>),
    /// The input is invalid (e.g. a broken manifest): keep the last good configuration.
    Invalid(String),
    /// The source lost or regained its connection (e.g. API server outage); nothing is withdrawn.
    Up(bool),
}
