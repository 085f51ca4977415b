//! The disruption forecast shared by every daemon (`bgpgen diff`): which sessions a change adds,
//! removes or resets. Each daemon's `forecast.rs` gives its [`Quirks`].

use std::collections::BTreeMap;

use crate::intent::Intent;

/// How one daemon takes changes.
pub struct Quirks {
    /// What a changed router ID or local AS does.
    pub global_change: &'static str,
    /// Whether the daemon runs BFD (a BFD change re-creates its sessions).
    pub bfd: bool,
}

/// The forecast of a change for a daemon with these quirks, per change: `no-op`, `route
/// add/withdraw`, `session add/remove/reset` (which neighbors), `daemon restart`.
pub fn sessions(from: &Intent, to: &Intent, quirks: &Quirks) -> Vec<String> {
    let mut out = Vec::new();
    if from.speaker.router_id != to.speaker.router_id
        || from.speaker.local_as != to.speaker.local_as
    {
        out.push(quirks.global_change.to_string());
    }
    let old: BTreeMap<_, _> = from.neighbors.iter().map(|n| (n.address, n)).collect();
    let new: BTreeMap<_, _> = to.neighbors.iter().map(|n| (n.address, n)).collect();
    for (addr, n) in &new {
        match old.get(addr) {
            None => out.push(format!("session add: {addr}")),
            Some(o) if o.remote_as != n.remote_as || o.families != n.families => out.push(format!(
                "session reset: {addr} (remote AS or families changed)"
            )),
            _ => {}
        }
    }
    for addr in old.keys().filter(|a| !new.contains_key(a)) {
        out.push(format!("session remove: {addr}"));
    }
    let (a, b) = (&from.bgp, &to.bgp);
    let mut changed = Vec::new();
    if a.hold_time != b.hold_time || a.keepalive != b.keepalive {
        changed.push("timers");
    }
    if a.password != b.password {
        changed.push("password");
    }
    if a.passive != b.passive {
        changed.push("passive mode");
    }
    if a.ebgp_multihop_ttl != b.ebgp_multihop_ttl {
        changed.push("eBGP multihop");
    }
    if a.graceful_restart != b.graceful_restart {
        changed.push("graceful restart");
    }
    if a.extended_nexthop != b.extended_nexthop {
        changed.push("extended next hop");
    }
    if !changed.is_empty() {
        let kept: Vec<String> = new
            .keys()
            .filter(|a| old.contains_key(a))
            .map(ToString::to_string)
            .collect();
        if !kept.is_empty() {
            out.push(format!(
                "session reset: {} ({} changed)",
                kept.join(", "),
                changed.join(", ")
            ));
        } else if a.password != b.password {
            // Shown even with no session to reset: the value never is.
            out.push("password changed (no established neighbor is kept)".to_string());
        }
    }
    if a.bfd != b.bfd && quirks.bfd {
        out.push("BFD sessions re-created (BGP sessions stay up)".to_string());
    }
    let routes = crate::diff::route_changes(from, to);
    if !routes.is_empty() {
        out.push(format!(
            "route add/withdraw: {} change(s), no session impact",
            routes.len()
        ));
    }
    if out.is_empty() {
        out.push("no-op".to_string());
    }
    out
}
