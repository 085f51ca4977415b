//! Sources of cluster state. Each produces a [`crate::snapshot::Snapshot`].

pub mod manifests;
pub mod yaml;
