//! GoBGP's files: `gobgpd.toml` (sessions only: gobgpd cannot originate routes from its file) and
//! `routes.txt` (the paths bgpgen pushes through the gRPC API).

use crate::diagnostic::Diagnostic;
use crate::render::RenderCtx;

pub const FILES: &[(&str, &str)] = &[
    ("gobgpd.toml", "gobgpd.toml.j2"),
    ("routes.txt", "routes.txt.j2"),
];

pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "gobgpd.toml.j2",
        include_str!("../../../templates/gobgpd.toml.j2"),
    ),
    (
        "routes.txt.j2",
        include_str!("../../../templates/routes.txt.j2"),
    ),
];

/// gobgpd.toml quotes and escapes the password: any character is fine.
pub fn password_problem(_password: &str) -> Option<String> {
    None
}

pub fn adjust(ctx: &mut RenderCtx, notes: &mut Vec<Diagnostic>) {
    ctx.password_toml = ctx.password.as_deref().map(toml_string);
    if ctx.bfd.is_some() {
        notes.push(Diagnostic::warning(
            "render/gobgp",
            "GoBGP does not implement BFD; --enable-bfd is not rendered",
        ));
        ctx.bfd = None;
    }
    if !ctx.router_id_set {
        notes.push(crate::render::router_id_unset_warning("gobgp"));
    }
}

/// A TOML basic string: quoted, with `"`, `\` and every control character escaped.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
