//! `bgpgen diff`: what changes between two intents, for review: announce/withdraw lines with
//! provenance, the settings and diagnostics that change, a forecast of what the change does to
//! the daemon's sessions, and the unified diff of the rendered files.
//!
//! [`diff`] builds a typed [`Diff`] (what `-o json` prints; docs/explain-diff-json.md describes
//! it); [`Diff::to_text`] is the review form. A change of any part of the intent is listed, so
//! `diff` never says "differ" without saying what.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;
use serde_json::Value;
use similar::TextDiff;

use crate::diagnostic::Diagnostic;
use crate::intent::{Intent, NextHop, Route, Source};
use crate::model::Family;
use crate::render::{Backend, Rendered};
use crate::text::escape;

/// The difference between two intents and their renderings for one backend.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diff {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub backend: String,
    /// False only when the two intents (hash included) and the rendered files are the same.
    pub changed: bool,
    pub from: Side,
    pub to: Side,
    pub routes: Vec<RouteChange>,
    pub settings: Vec<SettingChange>,
    pub diagnostics: Vec<DiagnosticChange>,
    pub forecast: Vec<Impact>,
    pub files: Vec<FileDiff>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Side {
    pub hash: String,
    /// Routes rendered for the daemon.
    pub announced: usize,
    /// Routes kept in the intent but not rendered (family carried by no neighbor).
    pub unreachable: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Announced in `to`, not in `from`.
    Add,
    /// Announced in `from`, not in `to`.
    Withdraw,
    /// Announced in both, with another next hop or other sources.
    Change,
    /// Rendered in neither (no neighbor carries its family), but its presence or sources
    /// change: no daemon sees it.
    Unrendered,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteChange {
    pub change: Change,
    pub prefix: IpNet,
    pub family: Family,
    /// The route in `from` (absent: null).
    pub from: Option<RouteSide>,
    pub to: Option<RouteSide>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteSide {
    pub next_hop: NextHop,
    pub sources: Vec<Source>,
    pub unreachable: bool,
}

impl From<&Route> for RouteSide {
    fn from(r: &Route) -> RouteSide {
        RouteSide {
            next_hop: r.next_hop,
            sources: r.sources.clone(),
            unreachable: r.unreachable,
        }
    }
}

/// One setting of the intent (`speaker`, `bgp`, `neighbors`) that differs, by its path in the
/// intent document: `bgp.holdTime`, `neighbors[10.32.32.254].remoteAs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingChange {
    pub path: String,
    /// The value in `from` (null: absent).
    pub from: Value,
    pub to: Value,
    /// The values are a secret and not shown (`<redacted>`): only the fact that it changed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiagnosticDelta {
    /// Only in `to`: a new warning.
    Added,
    /// Only in `from`: gone.
    Removed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosticChange {
    pub change: DiagnosticDelta,
    #[serde(flatten)]
    pub diagnostic: Diagnostic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImpactKind {
    /// Nothing changes in the daemon.
    NoOp,
    /// Routes announced or withdrawn, sessions untouched.
    RouteChange,
    SessionAdd,
    SessionRemove,
    SessionReset,
    /// BFD sessions re-created; the BGP sessions stay up.
    BfdReset,
    /// The daemon is restarted (GoBGP `[global]`).
    DaemonRestart,
    /// The password changes while no session is kept.
    PasswordChanged,
}

/// What applying the change does to a running daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Impact {
    pub impact: ImpactKind,
    /// The neighbors whose sessions it concerns (empty: none, or every one for a restart).
    pub neighbors: Vec<IpAddr>,
    /// The forecast line of the text form.
    pub message: String,
}

impl Impact {
    pub fn new(impact: ImpactKind, neighbors: Vec<IpAddr>, message: String) -> Impact {
        Impact {
            impact,
            neighbors,
            message,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileDiff {
    pub name: String,
    /// Unified diff (`--- a/NAME`, `+++ b/NAME`).
    pub diff: String,
}

/// Compares two intents and their renderings (rendered for display: with the password
/// redacted unless `show_secrets`). `notes_*` are each side's render notes, compared with the
/// diagnostics.
pub fn diff(
    from: &Intent,
    to: &Intent,
    rendered_from: &Rendered,
    rendered_to: &Rendered,
    show_secrets: bool,
) -> Diff {
    let backend = rendered_to.backend;
    let routes = route_change_list(from, to);
    let settings = setting_changes(from, to, show_secrets);
    let diagnostics = diagnostic_changes(
        from.diagnostics.iter().chain(&rendered_from.notes),
        to.diagnostics.iter().chain(&rendered_to.notes),
    );
    let files = file_diffs(rendered_from, rendered_to);
    let changed = from.hash != to.hash
        || !files.is_empty()
        || !routes.is_empty()
        || !settings.is_empty()
        || !diagnostics.is_empty();
    let side = |i: &Intent| Side {
        hash: i.hash.clone(),
        announced: i.announced().count(),
        unreachable: i.routes.iter().filter(|r| r.unreachable).count(),
    };
    Diff {
        api_version: "bgpgen/v1",
        kind: "Diff",
        backend: backend.name().to_string(),
        changed,
        from: side(from),
        to: side(to),
        forecast: if changed {
            impacts(from, to, backend)
        } else {
            Vec::new()
        },
        routes,
        settings,
        diagnostics,
        files,
    }
}

fn sources_text(sources: &[Source]) -> String {
    sources
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl RouteChange {
    /// Whether the daemon sees this change.
    pub fn is_rendered(&self) -> bool {
        self.change != Change::Unrendered
    }
}

impl std::fmt::Display for RouteChange {
    /// `+ 10.16.0.5/32  Pod default/sample (cluster)`; names escaped by [`Source`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = self.prefix;
        let srcs = |s: &Option<RouteSide>| {
            s.as_ref()
                .map(|s| sources_text(&s.sources))
                .unwrap_or_else(|| "(none)".to_string())
        };
        match (self.change, &self.from, &self.to) {
            (Change::Add, _, to) => write!(f, "+ {p}  {}", srcs(to)),
            (Change::Withdraw, from, _) => write!(f, "- {p}  {}", srcs(from)),
            (Change::Change, Some(a), Some(b)) if a.next_hop != b.next_hop => write!(
                f,
                "~ {p}  next hop {} -> {}  {}",
                a.next_hop,
                b.next_hop,
                sources_text(&b.sources)
            ),
            (Change::Change, from, to) => {
                write!(f, "~ {p}  sources {} -> {}", srcs(from), srcs(to))
            }
            (Change::Unrendered, from, to) => write!(
                f,
                "~ {p}  not rendered (no neighbor carries {}): sources {} -> {}",
                self.family,
                srcs(from),
                srcs(to)
            ),
        }
    }
}

/// Every route whose announcement, next hop or sources differ, in the intent's order (family,
/// then prefix).
pub fn route_change_list(from: &Intent, to: &Intent) -> Vec<RouteChange> {
    let old: BTreeMap<IpNet, &Route> = from.routes.iter().map(|r| (r.prefix, r)).collect();
    let new: BTreeMap<IpNet, &Route> = to.routes.iter().map(|r| (r.prefix, r)).collect();
    let mut prefixes: Vec<(Family, IpNet)> = old
        .values()
        .chain(new.values())
        .map(|r| (r.family, r.prefix))
        .collect();
    prefixes.sort();
    prefixes.dedup();
    let mut out = Vec::new();
    for (family, p) in prefixes {
        let (a, b) = (old.get(&p).copied(), new.get(&p).copied());
        let on = |r: Option<&Route>| r.is_some_and(|r| !r.unreachable);
        let change = match (on(a), on(b)) {
            (false, true) => Change::Add,
            (true, false) => Change::Withdraw,
            (true, true) => match (a, b) {
                (Some(a), Some(b)) if a.next_hop != b.next_hop || a.sources != b.sources => {
                    Change::Change
                }
                _ => continue,
            },
            (false, false) => {
                let same = match (a, b) {
                    (Some(a), Some(b)) => a.sources == b.sources,
                    (None, None) => true,
                    _ => false,
                };
                if same {
                    continue;
                }
                Change::Unrendered
            }
        };
        out.push(RouteChange {
            change,
            prefix: p,
            family,
            from: a.map(RouteSide::from),
            to: b.map(RouteSide::from),
        });
    }
    out
}

/// One line per route whose announcement changes (the daemon's view), as `diff` prints them.
pub fn route_changes(from: &Intent, to: &Intent) -> Vec<String> {
    route_change_list(from, to)
        .iter()
        .filter(|c| c.is_rendered())
        .map(ToString::to_string)
        .collect()
}

/// The leaves of a JSON document as `path -> value`, objects recursed (lists are leaves).
fn flatten(path: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                flatten(&p, v, out);
            }
        }
        v => out.push((path.to_string(), v.clone())),
    }
}

/// The settings of an intent (`speaker`, `bgp` without the password, each neighbor by address)
/// as leaves; an absent neighbor is one null leaf.
fn settings_of(intent: &Intent, show_secrets: bool) -> Vec<(String, Value)> {
    let doc = intent.to_json_value(show_secrets);
    let mut out = Vec::new();
    flatten("speaker", &doc["speaker"], &mut out);
    let mut bgp = doc["bgp"].clone();
    if let Value::Object(m) = &mut bgp {
        m.remove("password");
    }
    flatten("bgp", &bgp, &mut out);
    out
}

fn neighbors_of(intent: &Intent) -> BTreeMap<IpAddr, Value> {
    intent
        .neighbors
        .iter()
        .map(|n| (n.address, serde_json::to_value(n).unwrap_or(Value::Null)))
        .collect()
}

fn setting_changes(from: &Intent, to: &Intent, show_secrets: bool) -> Vec<SettingChange> {
    let mut out = Vec::new();
    let (a, b) = (
        settings_of(from, show_secrets),
        settings_of(to, show_secrets),
    );
    let b_map: BTreeMap<&str, &Value> = b.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let a_map: BTreeMap<&str, &Value> = a.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut push = |path: String, x: Value, y: Value| {
        out.push(SettingChange {
            path,
            from: x,
            to: y,
            secret: false,
        })
    };
    for (k, v) in &a {
        let other = b_map
            .get(k.as_str())
            .copied()
            .cloned()
            .unwrap_or(Value::Null);
        if &other != v {
            push(k.clone(), v.clone(), other);
        }
    }
    for (k, v) in &b {
        if !a_map.contains_key(k.as_str()) {
            push(k.clone(), Value::Null, v.clone());
        }
    }
    if from.bgp.password != to.bgp.password {
        let shown = |i: &Intent| match &i.bgp.password {
            Some(p) if show_secrets => Value::String(p.expose().to_string()),
            Some(_) => Value::String(crate::intent::REDACTED.to_string()),
            None => Value::Null,
        };
        out.push(SettingChange {
            path: "bgp.password".to_string(),
            from: shown(from),
            to: shown(to),
            secret: !show_secrets,
        });
    }
    let (na, nb) = (neighbors_of(from), neighbors_of(to));
    let addresses: BTreeSet<&IpAddr> = na.keys().chain(nb.keys()).collect();
    for addr in addresses {
        let base = format!("neighbors[{addr}]");
        match (na.get(addr), nb.get(addr)) {
            (Some(x), Some(y)) if x != y => {
                let (mut fx, mut fy) = (Vec::new(), Vec::new());
                flatten(&base, x, &mut fx);
                flatten(&base, y, &mut fy);
                let my: BTreeMap<String, Value> = fy.into_iter().collect();
                let mx: BTreeMap<String, Value> = fx.into_iter().collect();
                let keys: BTreeSet<&String> = mx.keys().chain(my.keys()).collect();
                for k in keys {
                    let (vx, vy) = (
                        mx.get(k).cloned().unwrap_or(Value::Null),
                        my.get(k).cloned().unwrap_or(Value::Null),
                    );
                    if vx != vy {
                        out.push(SettingChange {
                            path: k.clone(),
                            from: vx,
                            to: vy,
                            secret: false,
                        });
                    }
                }
            }
            (Some(x), None) => out.push(SettingChange {
                path: base,
                from: x.clone(),
                to: Value::Null,
                secret: false,
            }),
            (None, Some(y)) => out.push(SettingChange {
                path: base,
                from: Value::Null,
                to: y.clone(),
                secret: false,
            }),
            _ => {}
        }
    }
    out
}

/// A setting's value for the text form: strings as they are (escaped), `(none)` for null,
/// anything else as compact JSON.
fn value_text(v: &Value) -> String {
    match v {
        Value::Null => "(none)".to_string(),
        Value::String(s) => escape(s).into_owned(),
        v => escape(&v.to_string()).into_owned(),
    }
}

impl std::fmt::Display for SettingChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.secret && !self.from.is_null() && !self.to.is_null() {
            return write!(
                f,
                "{}: changed (not shown; --show-secrets shows it)",
                self.path
            );
        }
        write!(
            f,
            "{}: {} -> {}",
            self.path,
            value_text(&self.from),
            value_text(&self.to)
        )
    }
}

fn diagnostic_changes<'a>(
    from: impl Iterator<Item = &'a Diagnostic>,
    to: impl Iterator<Item = &'a Diagnostic>,
) -> Vec<DiagnosticChange> {
    let a: BTreeSet<&Diagnostic> = from.collect();
    let b: BTreeSet<&Diagnostic> = to.collect();
    let mut out: Vec<DiagnosticChange> = b
        .difference(&a)
        .map(|d| DiagnosticChange {
            change: DiagnosticDelta::Added,
            diagnostic: (*d).clone(),
        })
        .collect();
    out.extend(a.difference(&b).map(|d| DiagnosticChange {
        change: DiagnosticDelta::Removed,
        diagnostic: (*d).clone(),
    }));
    out
}

impl std::fmt::Display for DiagnosticChange {
    /// `+ warning: Pod/default/web: ...` (new in `to`) or `- ...` (gone); escaped by
    /// [`Diagnostic`]'s own Display.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = match self.change {
            DiagnosticDelta::Added => '+',
            DiagnosticDelta::Removed => '-',
        };
        write!(f, "{sign} {}", self.diagnostic)
    }
}

/// What applying `to` over `from` does to a running daemon of this backend, per change.
pub fn forecast(from: &Intent, to: &Intent, backend: Backend) -> Vec<String> {
    impacts(from, to, backend)
        .into_iter()
        .map(|i| i.message)
        .collect()
}

/// [`forecast`], typed (each daemon's `forecast.rs` knows its resets).
pub fn impacts(from: &Intent, to: &Intent, backend: Backend) -> Vec<Impact> {
    crate::daemon::of(backend).forecast(from, to)
}

/// The files of two renderings paired by name, (name, old, new); a file only one has (BIRD's
/// route files split and merge) is empty on the other side. In `from`'s order, then `to`'s.
fn file_pairs<'a>(from: &'a Rendered, to: &'a Rendered) -> Vec<(&'a str, &'a str, &'a str)> {
    let find = |r: &'a Rendered, name: &str| {
        r.files
            .iter()
            .find(|f| f.name == name)
            .map_or("", |f| f.contents.as_str())
    };
    let mut pairs: Vec<_> = from
        .files
        .iter()
        .map(|a| (a.name.as_str(), a.contents.as_str(), find(to, &a.name)))
        .collect();
    let names: std::collections::HashSet<&str> =
        from.files.iter().map(|f| f.name.as_str()).collect();
    pairs.extend(
        to.files
            .iter()
            .filter(|b| !names.contains(b.name.as_str()))
            .map(|b| (b.name.as_str(), "", b.contents.as_str())),
    );
    pairs
}

fn file_diffs(from: &Rendered, to: &Rendered) -> Vec<FileDiff> {
    file_pairs(from, to)
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .map(|(name, a, b)| FileDiff {
            name: name.to_string(),
            diff: unified_text(name, a, b),
        })
        .collect()
}

impl Diff {
    /// The review form: route changes, setting and diagnostic changes (when any), the
    /// forecast, then the unified diff of the files; `no changes` when there are none.
    pub fn to_text(&self) -> String {
        if !self.changed {
            return "no changes\n".to_string();
        }
        let mut out = String::from("Route changes:\n");
        let mut any_route = false;
        for c in &self.routes {
            any_route = true;
            let _ = writeln!(out, "  {c}");
        }
        if !any_route {
            out.push_str("  (none)\n");
        }
        if !self.settings.is_empty() {
            out.push_str("\nSetting changes:\n");
            for s in &self.settings {
                let _ = writeln!(out, "  {s}");
            }
        }
        if !self.diagnostics.is_empty() {
            out.push_str("\nDiagnostic changes:\n");
            for d in &self.diagnostics {
                let _ = writeln!(out, "  {d}");
            }
        }
        if self.routes.is_empty() && self.settings.is_empty() && self.diagnostics.is_empty() {
            // The hash covers more than what is listed only if a field was added to the intent
            // and not to this comparison: say so rather than "differ" with nothing shown.
            let _ = writeln!(out, "\nIntent hash: {} -> {}", self.from.hash, self.to.hash);
        }
        let _ = writeln!(out, "\nForecast for {}:", self.backend);
        for i in &self.forecast {
            let _ = writeln!(out, "  {}", i.message);
        }
        if !self.files.is_empty() {
            out.push('\n');
            for f in &self.files {
                out.push_str(&f.diff);
            }
        }
        out
    }
}

/// Unified diff of two renderings, file by file (`--- a/NAME`, `+++ b/NAME`).
pub fn unified(from: &Rendered, to: &Rendered) -> String {
    let mut out = String::new();
    for (name, a, b) in file_pairs(from, to) {
        if a != b {
            let diff = TextDiff::from_lines(a, b);
            let _ = write!(
                out,
                "{}",
                diff.unified_diff()
                    .context_radius(3)
                    .header(&format!("a/{name}"), &format!("b/{name}"))
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

/// What one apply changes, for the sidecar's log: counts of every route announced, withdrawn or
/// changed, the first `list` of them, and the diagnostics that appear and disappear (at most
/// `list` each). A merge of the two sorted intents (routes by family and prefix, diagnostics by
/// object, level and message): O(routes) with no copy of either, cheap enough for every apply.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ApplySummary {
    pub added: usize,
    pub withdrawn: usize,
    pub changed: usize,
    pub routes: Vec<RouteChange>,
    pub new_diagnostics: Vec<Diagnostic>,
    pub gone_diagnostics: Vec<Diagnostic>,
    /// Diagnostics that appeared or disappeared beyond the ones listed.
    pub more_diagnostics: usize,
}

pub fn summarize(from: Option<&Intent>, to: &Intent, list: usize) -> ApplySummary {
    use std::cmp::Ordering;
    let mut out = ApplySummary::default();
    let empty: [Route; 0] = [];
    let old: Vec<&Route> = from
        .map(|i| i.announced().collect())
        .unwrap_or_else(|| empty.iter().collect());
    let new: Vec<&Route> = to.announced().collect();
    let (mut i, mut j) = (0, 0);
    let push = |out: &mut ApplySummary, change: Change, a: Option<&Route>, b: Option<&Route>| {
        match change {
            Change::Add => out.added += 1,
            Change::Withdraw => out.withdrawn += 1,
            _ => out.changed += 1,
        }
        if out.routes.len() < list {
            // Every call passes the route of at least one side.
            let Some(r) = b.or(a) else { return };
            out.routes.push(RouteChange {
                change,
                prefix: r.prefix,
                family: r.family,
                from: a.map(RouteSide::from),
                to: b.map(RouteSide::from),
            });
        }
    };
    while i < old.len() || j < new.len() {
        let order = match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) => (a.family, a.prefix).cmp(&(b.family, b.prefix)),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match order {
            Ordering::Less => {
                push(&mut out, Change::Withdraw, Some(old[i]), None);
                i += 1;
            }
            Ordering::Greater => {
                push(&mut out, Change::Add, None, Some(new[j]));
                j += 1;
            }
            Ordering::Equal => {
                let (a, b) = (old[i], new[j]);
                if a.next_hop != b.next_hop || a.sources != b.sources {
                    push(&mut out, Change::Change, Some(a), Some(b));
                }
                i += 1;
                j += 1;
            }
        }
    }
    fn key(d: &Diagnostic) -> (&str, crate::diagnostic::Level, &str) {
        (d.object.as_str(), d.level, d.message.as_str())
    }
    let old_d: &[Diagnostic] = from.map(|i| i.diagnostics.as_slice()).unwrap_or(&[]);
    let new_d = to.diagnostics.as_slice();
    let (mut i, mut j) = (0, 0);
    while i < old_d.len() || j < new_d.len() {
        let order = match (old_d.get(i), new_d.get(j)) {
            (Some(a), Some(b)) => key(a).cmp(&key(b)),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match order {
            Ordering::Less => {
                if out.gone_diagnostics.len() < list {
                    out.gone_diagnostics.push(old_d[i].clone());
                } else {
                    out.more_diagnostics += 1;
                }
                i += 1;
            }
            Ordering::Greater => {
                if out.new_diagnostics.len() < list {
                    out.new_diagnostics.push(new_d[j].clone());
                } else {
                    out.more_diagnostics += 1;
                }
                j += 1;
            }
            Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod file_tests {
    use super::*;
    use crate::render::RenderedFile;

    fn rendered(files: &[(&str, &str)]) -> Rendered {
        Rendered {
            backend: Backend::Bird,
            files: files
                .iter()
                .map(|(name, contents)| RenderedFile {
                    name: name.to_string(),
                    contents: contents.to_string(),
                    secret: false,
                })
                .collect(),
            notes: Vec::new(),
        }
    }

    #[test]
    fn files_are_compared_by_name_when_the_lists_differ() {
        // A route file split in two: v4.conf goes, v4-0.conf and v4-1.conf come.
        let from = rendered(&[("bird.conf", "same\n"), ("bird-routes/v4.conf", "a\nb\n")]);
        let to = rendered(&[
            ("bird.conf", "same\n"),
            ("bird-routes/v4-0.conf", "a\n"),
            ("bird-routes/v4-1.conf", "b\n"),
        ]);
        let names: Vec<String> = file_diffs(&from, &to).into_iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "bird-routes/v4.conf",
                "bird-routes/v4-0.conf",
                "bird-routes/v4-1.conf"
            ]
        );
        let text = unified(&from, &to);
        assert!(!text.contains("bird.conf"), "{text}");
        assert!(
            text.contains(
                "--- a/bird-routes/v4.conf\n+++ b/bird-routes/v4.conf\n@@ -1,2 +0,0 @@\n-a\n-b\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("+++ b/bird-routes/v4-1.conf\n@@ -0,0 +1 @@\n+b\n"),
            "{text}"
        );
    }
}
