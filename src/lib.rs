//! bgpgen compiles Kubernetes (Kube-OVN) cluster state into BGP router configuration.
//!
//! Data flows one way: source -> [`snapshot::Snapshot`] -> [`compile::compile`] ->
//! [`intent::Intent`] -> render -> apply. The compile stage is pure.

pub mod address;
pub mod agent;
pub mod compile;
pub mod daemon;
pub mod diagnostic;
pub mod diff;
pub mod duration;
pub mod engine;
pub mod events;
pub mod explain;
pub mod front;
pub mod goflags;
pub mod intent;
pub mod kubeovn;
pub mod model;
pub mod observer;
pub mod options;
pub mod output;
pub mod relist;
pub mod render;
pub mod report;
pub mod route_lookup;
pub mod routes_file;
pub mod sidecar_client;
pub mod snapshot;
pub mod source;
pub mod speaker_object;
pub mod status;
pub mod text;
