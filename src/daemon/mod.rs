//! The edge towards the routing daemons: their configuration checkers and the drivers that apply
//! rendered configuration to a running daemon.

pub mod bird;
pub mod driver;
pub mod frr;
pub mod gobgp;
pub mod gobgp_api;
pub mod process;
pub mod supervisor;
pub mod validate;
