//! The edge towards the routing daemons: their own configuration checkers (and, later, drivers).

pub mod validate;
