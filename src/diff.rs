//! `bgpgen diff`: what changes between two intents, for review: announce/withdraw lines with
//! provenance, a forecast of what the change does to the daemon's sessions, and the unified diff of
//! the rendered files.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ipnet::IpNet;
use similar::TextDiff;

use crate::intent::{Intent, Route};
use crate::render::{Backend, Rendered};

/// One line per announced route that appears, disappears or changes sources/next hop.
pub fn route_changes(from: &Intent, to: &Intent) -> Vec<String> {
    let old: BTreeMap<IpNet, &Route> = from.announced().map(|r| (r.prefix, r)).collect();
    let new: BTreeMap<IpNet, &Route> = to.announced().map(|r| (r.prefix, r)).collect();
    let sources = |r: &Route| {
        r.sources
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::new();
    // Routes sort by family then prefix in the intent; keep that order.
    let mut prefixes: Vec<(crate::model::Family, IpNet)> = old
        .values()
        .chain(new.values())
        .map(|r| (r.family, r.prefix))
        .collect();
    prefixes.sort();
    prefixes.dedup();
    for (_, p) in prefixes {
        match (old.get(&p), new.get(&p)) {
            (None, Some(r)) => out.push(format!("+ {p}  {}", sources(r))),
            (Some(r), None) => out.push(format!("- {p}  {}", sources(r))),
            (Some(a), Some(b)) if a.next_hop != b.next_hop => out.push(format!(
                "~ {p}  next hop {} -> {}  {}",
                a.next_hop,
                b.next_hop,
                sources(b)
            )),
            (Some(a), Some(b)) if a.sources != b.sources => {
                out.push(format!("~ {p}  sources {} -> {}", sources(a), sources(b)))
            }
            _ => {}
        }
    }
    out
}

/// What applying `to` over `from` does to a running daemon of this backend, per change (each
/// daemon's `forecast.rs` knows its resets).
pub fn forecast(from: &Intent, to: &Intent, backend: Backend) -> Vec<String> {
    crate::daemon::of(backend).forecast(from, to)
}

/// Unified diff of two renderings, file by file (`--- a/NAME`, `+++ b/NAME`).
pub fn unified(from: &Rendered, to: &Rendered) -> String {
    let mut out = String::new();
    for (a, b) in from.files.iter().zip(&to.files) {
        if a.contents != b.contents {
            let diff = TextDiff::from_lines(&a.contents, &b.contents);
            let _ = write!(
                out,
                "{}",
                diff.unified_diff()
                    .context_radius(3)
                    .header(&format!("a/{}", a.name), &format!("b/{}", b.name))
            );
        }
    }
    out
}

/// Unified diff of a file on disk against what it should be (for `render --check`).
pub fn unified_text(name: &str, old: &str, new: &str) -> String {
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

/// The lines of a rendered configuration that carry the BGP password, in each backend's syntax
/// (GoBGP `auth-password = "..."`, FRR `neighbor X password ...`, BIRD `password "...";`), with
/// the value replaced: `render --check` shows a diff of the file on disk, which may hold an old
/// password the intent does not know.
pub fn redact_secret_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let indent = &body[..body.len() - body.trim_start().len()];
        let trimmed = body.trim_start();
        let redacted = if trimmed.starts_with("auth-password") {
            Some(format!("{indent}auth-password = \"<redacted>\""))
        } else if trimmed.starts_with("password ") || trimmed.starts_with("password\t") {
            Some(format!("{indent}password \"<redacted>\";"))
        } else if trimmed.starts_with("neighbor ") {
            trimmed
                .find(" password ")
                .map(|i| format!("{indent}{} password <redacted>", &trimmed[..i]))
        } else {
            None
        };
        match redacted {
            Some(r) => {
                out.push_str(&r);
                if line.ends_with('\n') {
                    out.push('\n');
                }
            }
            None => out.push_str(line),
        }
    }
    out
}

/// What `render --check` prints for a stale file: the unified diff with the password lines of
/// both sides redacted (unless `show_secrets`), and a note when the password is all that differs.
pub fn check_text(name: &str, old: &str, new: &str, show_secrets: bool) -> String {
    if show_secrets {
        return unified_text(name, old, new);
    }
    let (old, new) = (redact_secret_lines(old), redact_secret_lines(new));
    if old == new {
        return format!(
            "--- a/{name}\n+++ b/{name}\n# the password differs (not shown; --show-secrets shows it)\n"
        );
    }
    unified_text(name, &old, &new)
}
