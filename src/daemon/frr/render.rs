//! FRR's file: `frr.conf` for bgpd alone (no zebra). Its quirks: `neighbor X password WORD` ends
//! at whitespace, BFD takes a narrower range than kube-ovn-speaker accepts, and
//! `select-defer-time` has a maximum.

use crate::diagnostic::Diagnostic;
use crate::render::{BfdCtx, RenderCtx, describe_char};

pub const FILES: &[(&str, &str)] = &[("frr.conf", "frr.conf.j2")];

pub const TEMPLATES: &[(&str, &str)] = &[(
    "frr.conf.j2",
    include_str!("../../../templates/frr.conf.j2"),
)];

/// FRR's `select-defer-time` and BGP's 16-bit hold time bound what the intent can ask for.
const FRR_MAX_SELECT_DEFER: u64 = 3600;

pub fn password_problem(password: &str) -> Option<String> {
    let bad = password
        .chars()
        .find(|&c| c.is_ascii_whitespace() || c.is_control())?;
    Some(format!(
        "frr cannot carry the character {} of the BGP password (--auth-password or --auth-password-file): FRR's `neighbor X password WORD` ends at whitespace and takes no control characters; use another backend or another password",
        describe_char(bad)
    ))
}

pub fn adjust(ctx: &mut RenderCtx, notes: &mut Vec<Diagnostic>) {
    if let Some(gr) = &mut ctx.graceful_restart
        && gr.deferral_time > FRR_MAX_SELECT_DEFER
    {
        notes.push(Diagnostic::warning(
            "render/frr",
            format!("FRR's select-defer-time is at most {FRR_MAX_SELECT_DEFER}s; using it instead of {}s", gr.deferral_time),
        ));
        gr.deferral_time = FRR_MAX_SELECT_DEFER;
    }
    if let Some(b) = &mut ctx.bfd {
        bfd_limits(b, notes);
    }
    if !ctx.router_id_set {
        notes.push(crate::render::router_id_unset_warning("frr"));
    }
}

/// FRR's `neighbor X bfd MULT RX TX` takes a multiplier of 2 to 255 and intervals of 50 to
/// 60000 ms; other values kube-ovn-speaker accepts are moved to the nearest, with a warning.
fn bfd_limits(b: &mut BfdCtx, notes: &mut Vec<Diagnostic>) {
    let mut clamp = |what: &str, value: &mut u32, min: u32, max: u32| {
        let wanted = *value;
        *value = wanted.clamp(min, max);
        if *value != wanted {
            notes.push(Diagnostic::warning(
                "render/frr",
                format!(
                    "FRR's BFD {what} is {min} to {max}; using {} instead of {wanted}",
                    *value
                ),
            ));
        }
    };
    clamp("transmit interval (ms)", &mut b.min_tx_ms, 50, 60000);
    clamp("receive interval (ms)", &mut b.min_rx_ms, 50, 60000);
    let mut multiplier = u32::from(b.multiplier);
    clamp("detection multiplier", &mut multiplier, 2, 255);
    b.multiplier = u8::try_from(multiplier).unwrap_or(u8::MAX);
}
