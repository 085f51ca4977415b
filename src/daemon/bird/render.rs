//! BIRD's file: `bird.conf`. Its quirks: quoted strings have no escapes (no `"` or line break in
//! a password), no graceful restart deferral time, BFD on multihop sessions only with a fixed
//! source address, and a router ID of 0.0.0.0 left for BIRD to choose.

use crate::diagnostic::Diagnostic;
use crate::render::{RenderCtx, describe_char};

pub const FILES: &[(&str, &str)] = &[("bird.conf", "bird.conf.j2")];

pub const TEMPLATES: &[(&str, &str)] = &[(
    "bird.conf.j2",
    include_str!("../../../templates/bird.conf.j2"),
)];

pub fn password_problem(password: &str) -> Option<String> {
    let bad = password
        .chars()
        .find(|&c| c == '"' || (c.is_control() && c != '\t'))?;
    Some(format!(
        "bird cannot carry the character {} of the BGP password (--auth-password or --auth-password-file): BIRD's quoted strings have no escapes; use another backend or another password",
        describe_char(bad)
    ))
}

pub fn adjust(ctx: &mut RenderCtx, notes: &mut Vec<Diagnostic>) {
    if ctx.graceful_restart.is_some() {
        notes.push(Diagnostic::info(
            "render/bird",
            "BIRD has no graceful restart deferral (select-defer) time; that value is not rendered",
        ));
    }
    // BIRD carries every BFD value kube-ovn-speaker accepts (intervals as 32-bit microseconds,
    // multiplier 1 to 255).
    if ctx.bfd.is_some() && ctx.multihop_ttl.is_some() {
        notes.push(Diagnostic::warning(
            "render/bird",
            "BIRD runs BFD on multihop sessions only with a fixed source address; BFD is not rendered",
        ));
        ctx.bfd = None;
    }
    if !ctx.router_id_set {
        notes.push(Diagnostic::info(
            "render/bird",
            "router ID 0.0.0.0 is not rendered: BIRD picks one of the host's IPv4 addresses",
        ));
    }
}
