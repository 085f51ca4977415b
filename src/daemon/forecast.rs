//! The disruption forecast shared by every daemon (`bgpgen diff`): which sessions a change adds,
//! removes or resets. Each daemon's `forecast.rs` gives its [`Quirks`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::diff::{Impact, ImpactKind};
use crate::intent::Intent;

/// How one daemon takes changes.
pub struct Quirks {
    /// What a changed router ID or local AS does: a daemon restart (GoBGP never applies
    /// `[global]` on reload) or a reset of every session.
    pub global_restarts: bool,
    /// Whether the daemon runs BFD (a BFD change re-creates its sessions).
    pub bfd: bool,
}

/// The forecast of a change for a daemon with these quirks, per change: `no-op`, `route
/// add/withdraw`, `session add/remove/reset` (which neighbors), `daemon restart`.
pub fn sessions(from: &Intent, to: &Intent, quirks: &Quirks) -> Vec<Impact> {
    let mut out = Vec::new();
    let old: BTreeMap<_, _> = from.neighbors.iter().map(|n| (n.address, n)).collect();
    let new: BTreeMap<_, _> = to.neighbors.iter().map(|n| (n.address, n)).collect();
    if from.speaker.router_id != to.speaker.router_id
        || from.speaker.local_as != to.speaker.local_as
    {
        out.push(if quirks.global_restarts {
            Impact::new(
                ImpactKind::DaemonRestart,
                Vec::new(),
                "daemon restart: router ID or local AS changed ([global] is not applied on reload)"
                    .to_string(),
            )
        } else {
            Impact::new(
                ImpactKind::SessionReset,
                new.keys().copied().collect(),
                "session reset (all neighbors): router ID or local AS changed".to_string(),
            )
        });
    }
    for (addr, n) in &new {
        match old.get(addr) {
            None => out.push(Impact::new(
                ImpactKind::SessionAdd,
                vec![*addr],
                format!("session add: {addr}"),
            )),
            Some(o) => {
                let mut what = Vec::new();
                if o.remote_as != n.remote_as {
                    what.push("remote AS");
                }
                if o.families != n.families {
                    what.push("families");
                }
                if o.local_address != n.local_address {
                    what.push("local address");
                }
                if !what.is_empty() {
                    out.push(Impact::new(
                        ImpactKind::SessionReset,
                        vec![*addr],
                        format!("session reset: {addr} ({} changed)", what.join(", ")),
                    ));
                }
            }
        }
    }
    for addr in old.keys().filter(|a| !new.contains_key(a)) {
        out.push(Impact::new(
            ImpactKind::SessionRemove,
            vec![*addr],
            format!("session remove: {addr}"),
        ));
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
        let kept: Vec<IpAddr> = new
            .keys()
            .filter(|a| old.contains_key(a))
            .copied()
            .collect();
        if !kept.is_empty() {
            let list: Vec<String> = kept.iter().map(ToString::to_string).collect();
            out.push(Impact::new(
                ImpactKind::SessionReset,
                kept,
                format!(
                    "session reset: {} ({} changed)",
                    list.join(", "),
                    changed.join(", ")
                ),
            ));
        } else if a.password != b.password {
            // Shown even with no session to reset: the value never is.
            out.push(Impact::new(
                ImpactKind::PasswordChanged,
                Vec::new(),
                "password changed (no established neighbor is kept)".to_string(),
            ));
        }
    }
    if a.bfd != b.bfd && quirks.bfd {
        out.push(Impact::new(
            ImpactKind::BfdReset,
            new.keys().copied().collect(),
            "BFD sessions re-created (BGP sessions stay up)".to_string(),
        ));
    }
    let routes = crate::diff::route_changes(from, to).len();
    if routes > 0 {
        out.push(Impact::new(
            ImpactKind::RouteChange,
            Vec::new(),
            format!("route add/withdraw: {routes} change(s), no session impact"),
        ));
    }
    if out.is_empty() {
        out.push(Impact::new(
            ImpactKind::NoOp,
            Vec::new(),
            "no-op".to_string(),
        ));
    }
    out
}
