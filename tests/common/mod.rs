//! Helpers shared by integration tests. Each test crate uses only part of them.
#![allow(dead_code)]

pub mod apiserver;
pub mod kubeovn;
pub mod netns;
pub mod skip;
