//! Rendering: the intent becomes daemon configuration through one minijinja template per daemon
//! (`templates/`, embedded, overridable with `--templates DIR`). Templates only ever see values
//! built here from typed fields (addresses, numbers, checked identifiers, sanitized comments), so
//! no object name or annotation can add configuration text.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior, value::Serde};
use serde::Serialize;
use thiserror::Error;

use crate::diagnostic::Diagnostic;
use crate::intent::{Intent, NextHop, Route, Source};
use crate::model::Family;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    Gobgp,
    Frr,
    Bird,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Gobgp, Backend::Frr, Backend::Bird];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Gobgp => "gobgp",
            Backend::Frr => "frr",
            Backend::Bird => "bird",
        }
    }

    /// The files this backend renders, each with its template.
    pub fn files(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Backend::Gobgp => &[
                ("gobgpd.toml", "gobgpd.toml.j2"),
                ("routes.txt", "routes.txt.j2"),
            ],
            Backend::Frr => &[("frr.conf", "frr.conf.j2")],
            Backend::Bird => &[("bird.conf", "bird.conf.j2")],
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gobgp" | "gobgpd" => Ok(Backend::Gobgp),
            "frr" | "bgpd" => Ok(Backend::Frr),
            "bird" | "bird2" => Ok(Backend::Bird),
            other => Err(format!(
                "unknown backend {other:?} (use gobgp, frr or bird)"
            )),
        }
    }
}

/// The built-in templates, compiled into the binary.
const BUILTIN: &[(&str, &str)] = &[
    (
        "gobgpd.toml.j2",
        include_str!("../templates/gobgpd.toml.j2"),
    ),
    ("routes.txt.j2", include_str!("../templates/routes.txt.j2")),
    ("frr.conf.j2", include_str!("../templates/frr.conf.j2")),
    ("bird.conf.j2", include_str!("../templates/bird.conf.j2")),
];

#[derive(Debug, Error)]
pub enum RenderError {
    #[error("template {name}: cannot read {path}: {source}")]
    Read {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("template {name}{}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Template {
        name: String,
        line: Option<usize>,
        message: String,
    },
    #[error("{0}")]
    Unsupported(String),
}

fn template_error(name: &str, e: minijinja::Error) -> RenderError {
    let mut message = e.kind().to_string();
    if let Some(detail) = e.detail() {
        message.push_str(": ");
        message.push_str(detail);
    }
    RenderError::Template {
        name: e.name().unwrap_or(name).to_string(),
        line: e.line(),
        message,
    }
}

/// The template set: built-in, with any file of the same name in `dir` taking precedence.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn builtin() -> Templates {
        Templates::load(None)
            .unwrap_or_else(|_| unreachable!("built-in templates always parse (tested)"))
    }

    pub fn load(dir: Option<&Path>) -> Result<Templates, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Default delimiters with these switches always build; the error case is unreachable.
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        for (name, builtin) in BUILTIN {
            let source = match dir.map(|d| d.join(name)) {
                Some(path) if path.exists() => {
                    std::fs::read_to_string(&path).map_err(|source| RenderError::Read {
                        name: name.to_string(),
                        path,
                        source,
                    })?
                }
                _ => builtin.to_string(),
            };
            env.add_template_owned(*name, source)
                .map_err(|e| template_error(name, e))?;
        }
        Ok(Templates { env })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub name: String,
    pub contents: String,
    /// Holds the BGP password: written 0600, never printed unless asked.
    pub secret: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub backend: Backend,
    pub files: Vec<RenderedFile>,
    /// What the daemon cannot express from the intent (e.g. BFD on GoBGP).
    pub notes: Vec<Diagnostic>,
}

impl Rendered {
    /// The contents of one rendered file, by name (`frr.conf`, `routes.txt`).
    pub fn file(&self, name: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.contents.as_str())
    }
}

/// Characters a comment may carry: enough for object names, never a line break, quote, brace or
/// statement separator of any of the three syntaxes.
fn comment_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " ._/:()-,+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// An identifier for a neighbor's BIRD protocol name: `peer_10_32_32_254`.
fn peer_id(ip: IpAddr) -> String {
    let mut id = String::from("peer_");
    id.extend(
        ip.to_string()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
    );
    id
}

#[derive(Serialize)]
struct Ctx {
    hash: String,
    router_id: String,
    /// False for 0.0.0.0 (a defaulted router ID): no `router id` line, so BIRD picks one of the
    /// host's addresses; bgpd without zebra has none to pick and, like GoBGP, keeps 0.0.0.0,
    /// with which no session comes up (the options warning says so).
    router_id_set: bool,
    local_as: u32,
    hold_time: u64,
    keepalive: u64,
    connect_retry: u64,
    passive: bool,
    multihop_ttl: Option<u8>,
    extended_nexthop: bool,
    graceful_restart: Option<GrCtx>,
    bfd: Option<BfdCtx>,
    password: Option<String>,
    /// The password as a quoted TOML string (gobgpd.toml), escaped.
    password_toml: Option<String>,
    neighbors: Vec<NeighborCtx>,
    /// Neighbors with a pinned local address, for GoBGP's export policy.
    pinned: Vec<NeighborCtx>,
    routes_v4: Vec<RouteCtx>,
    routes_v6: Vec<RouteCtx>,
    next_hop_v4: Option<String>,
    next_hop_v6: Option<String>,
    unreachable: usize,
}

#[derive(Serialize)]
struct GrCtx {
    restart_time: u64,
    deferral_time: u64,
}

#[derive(Serialize)]
struct BfdCtx {
    min_tx_ms: u32,
    min_rx_ms: u32,
    multiplier: u8,
}

#[derive(Serialize, Clone)]
struct NeighborCtx {
    address: String,
    id: String,
    remote_as: u32,
    ipv6: bool,
    ebgp: bool,
    families: Vec<&'static str>,
    ipv4_unicast: bool,
    ipv6_unicast: bool,
    /// The session's local address and the next hop of every route sent to it, when pinned
    /// (`--allowed-source-addresses`, `--neighbor-local-address`); else the daemon's choice.
    local_address: Option<String>,
    /// The neighbor's own family, for per-family statements: `ipv4-unicast` or `ipv6-unicast`.
    family: &'static str,
}

#[derive(Serialize)]
struct RouteCtx {
    prefix: String,
    next_hop: Option<String>,
    comment: String,
}

fn source_comment(sources: &[Source]) -> String {
    let first = sources.first().map(ToString::to_string).unwrap_or_default();
    // Bounded: a name from a manifest can be any length (the API server allows 253 characters).
    let first: String = if first.chars().count() > 160 {
        first.chars().take(160).chain("...".chars()).collect()
    } else {
        first
    };
    let text = match sources.len() {
        0 | 1 => first,
        n => format!("{first} +{} more", n - 1),
    };
    comment_safe(&text)
}

fn route_ctx(r: &Route) -> RouteCtx {
    RouteCtx {
        prefix: r.prefix.to_string(),
        next_hop: match r.next_hop {
            NextHop::SelfAddress => None,
            NextHop::Address(ip) => Some(ip.to_string()),
        },
        comment: source_comment(&r.sources),
    }
}

/// Seconds between connection attempts to a peer that did not answer. The daemons' defaults
/// (120 s in FRR and BIRD) leave a session down for two minutes after a peer restart.
const CONNECT_RETRY_SECS: u64 = 5;

/// FRR's `select-defer-time` and BGP's 16-bit hold time bound what the intent can ask for.
const FRR_MAX_SELECT_DEFER: u64 = 3600;

fn context(
    intent: &Intent,
    backend: Backend,
    reveal_secrets: bool,
    notes: &mut Vec<Diagnostic>,
) -> Result<Ctx, RenderError> {
    let bgp = &intent.bgp;
    let password = match &bgp.password {
        None => None,
        Some(p) => {
            if let Some(problem) = password_problem(backend, p.expose()) {
                return Err(RenderError::Unsupported(problem));
            }
            Some(if reveal_secrets {
                p.expose().to_string()
            } else {
                "<redacted>".to_string()
            })
        }
    };
    let password_toml = password.as_deref().map(toml_string);
    let mut graceful_restart = bgp.graceful_restart.enabled.then_some(GrCtx {
        restart_time: bgp.graceful_restart.restart_time,
        deferral_time: bgp.graceful_restart.deferral_time,
    });
    if backend == Backend::Frr
        && let Some(gr) = &mut graceful_restart
        && gr.deferral_time > FRR_MAX_SELECT_DEFER
    {
        notes.push(Diagnostic::warning(
            "render/frr",
            format!("FRR's select-defer-time is at most {FRR_MAX_SELECT_DEFER}s; using it instead of {}s", gr.deferral_time),
        ));
        gr.deferral_time = FRR_MAX_SELECT_DEFER;
    }
    if backend == Backend::Bird && graceful_restart.is_some() {
        notes.push(Diagnostic::info(
            "render/bird",
            "BIRD has no graceful restart deferral (select-defer) time; that value is not rendered",
        ));
    }
    let multihop_ttl = (bgp.ebgp_multihop_ttl > 1).then_some(bgp.ebgp_multihop_ttl);
    let mut bfd = bgp.bfd.enabled.then_some(BfdCtx {
        min_tx_ms: bgp.bfd.min_tx_ms,
        min_rx_ms: bgp.bfd.min_rx_ms,
        multiplier: bgp.bfd.multiplier,
    });
    if let Some(b) = &mut bfd {
        match backend {
            Backend::Frr => frr_bfd_limits(b, notes),
            // BIRD carries every value kube-ovn-speaker accepts (intervals as 32-bit
            // microseconds, multiplier 1 to 255).
            Backend::Bird | Backend::Gobgp => {}
        }
    }
    if bfd.is_some() {
        match backend {
            Backend::Gobgp => {
                notes.push(Diagnostic::warning(
                    "render/gobgp",
                    "GoBGP does not implement BFD; --enable-bfd is not rendered",
                ));
                bfd = None;
            }
            Backend::Bird if multihop_ttl.is_some() => {
                notes.push(Diagnostic::warning(
                    "render/bird",
                    "BIRD runs BFD on multihop sessions only with a fixed source address; BFD is not rendered",
                ));
                bfd = None;
            }
            _ => {}
        }
    }
    let local_as = intent.speaker.local_as.0;
    let neighbors: Vec<NeighborCtx> = intent
        .neighbors
        .iter()
        .map(|n| NeighborCtx {
            local_address: n.local_address.map(|a| a.to_string()),
            family: Family::of(n.address).as_str(),
            address: n.address.to_string(),
            id: peer_id(n.address),
            remote_as: n.remote_as.0,
            ipv6: n.address.is_ipv6(),
            ebgp: n.remote_as.0 != local_as,
            families: n.families.iter().map(|f| f.as_str()).collect(),
            ipv4_unicast: n.families.contains(&Family::Ipv4Unicast),
            ipv6_unicast: n.families.contains(&Family::Ipv6Unicast),
        })
        .collect();
    let announced = |family| {
        intent
            .announced()
            .filter(move |r| r.family == family)
            .map(route_ctx)
            .collect()
    };
    let next_hop = |family| {
        intent
            .announced()
            .find(|r| r.family == family)
            .and_then(|r| match r.next_hop {
                NextHop::Address(ip) => Some(ip.to_string()),
                NextHop::SelfAddress => None,
            })
    };
    let pinned = neighbors
        .iter()
        .filter(|n| n.local_address.is_some())
        .cloned()
        .collect();
    let router_id = if intent.speaker.router_id.is_unspecified() {
        match backend {
            Backend::Bird => notes.push(Diagnostic::info(
                "render/bird",
                "router ID 0.0.0.0 is not rendered: BIRD picks one of the host's IPv4 addresses",
            )),
            Backend::Frr | Backend::Gobgp => notes.push(Diagnostic::warning(
                format!("render/{backend}"),
                format!("router ID 0.0.0.0: {backend}'s sessions will not come up (peers refuse it); set --router-id"),
            )),
        }
        None
    } else {
        Some(intent.speaker.router_id.to_string())
    };
    Ok(Ctx {
        hash: intent.hash.clone(),
        router_id: router_id.unwrap_or_else(|| "0.0.0.0".to_string()),
        router_id_set: !intent.speaker.router_id.is_unspecified(),
        local_as,
        hold_time: bgp.hold_time,
        keepalive: bgp.keepalive,
        connect_retry: CONNECT_RETRY_SECS,
        passive: bgp.passive,
        multihop_ttl,
        extended_nexthop: bgp.extended_nexthop,
        graceful_restart,
        bfd,
        password,
        password_toml,
        neighbors,
        pinned,
        routes_v4: announced(Family::Ipv4Unicast),
        routes_v6: announced(Family::Ipv6Unicast),
        next_hop_v4: next_hop(Family::Ipv4Unicast),
        next_hop_v6: next_hop(Family::Ipv6Unicast),
        unreachable: intent.routes.iter().filter(|r| r.unreachable).count(),
    })
}

/// The Linux kernel's TCP MD5 keys (RFC 2385), which all three daemons use, hold at most 80 bytes.
const TCP_MD5_MAX_KEY_LEN: usize = 80;

/// Why `backend` cannot carry `password` as given, if it cannot. Everything kube-ovn-speaker
/// takes is taken by `compile`; what each syntax can write (found with each daemon's parser):
/// gobgpd.toml quotes and escapes it (any character); FRR's `neighbor X password WORD` ends at
/// whitespace; BIRD's `password "..."` has no escapes, so no `"` and no line break. The message
/// names the character, never the password.
pub fn password_problem(backend: Backend, password: &str) -> Option<String> {
    if password.len() > TCP_MD5_MAX_KEY_LEN {
        return Some(format!(
            "{backend}: the BGP password (--auth-password or --auth-password-file) is {} bytes; TCP MD5 keys (Linux, RFC 2385) hold at most {TCP_MD5_MAX_KEY_LEN}",
            password.len()
        ));
    }
    let bad = password.chars().find(|&c| match backend {
        Backend::Gobgp => false,
        Backend::Frr => c.is_ascii_whitespace() || c.is_control(),
        Backend::Bird => c == '"' || (c.is_control() && c != '\t'),
    })?;
    let why = match backend {
        Backend::Gobgp => "",
        Backend::Frr => {
            "FRR's `neighbor X password WORD` ends at whitespace and takes no control characters"
        }
        Backend::Bird => "BIRD's quoted strings have no escapes",
    };
    Some(format!(
        "{backend} cannot carry the character {} of the BGP password (--auth-password or --auth-password-file): {why}; use another backend or another password",
        describe_char(bad)
    ))
}

fn describe_char(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("U+{:04X}", u32::from(c))
    } else {
        format!("{c:?} (U+{:04X})", u32::from(c))
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

/// FRR's `neighbor X bfd MULT RX TX` takes a multiplier of 2 to 255 and intervals of 50 to
/// 60000 ms; other values kube-ovn-speaker accepts are moved to the nearest, with a warning.
fn frr_bfd_limits(b: &mut BfdCtx, notes: &mut Vec<Diagnostic>) {
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

/// Renders the intent for one backend. With `reveal_secrets` false the password is written as
/// `<redacted>` (for display); files meant for a daemon need it true.
pub fn render(
    intent: &Intent,
    backend: Backend,
    templates: &Templates,
    reveal_secrets: bool,
) -> Result<Rendered, RenderError> {
    let mut notes = Vec::new();
    let ctx = context(intent, backend, reveal_secrets, &mut notes)?;
    let has_secret = ctx.password.is_some();
    let value = minijinja::Value::from(Serde(&ctx));
    let mut files = Vec::new();
    for (file, template) in backend.files() {
        let tmpl = templates
            .env
            .get_template(template)
            .map_err(|e| template_error(template, e))?;
        let contents = tmpl
            .render(&value)
            .map_err(|e| template_error(template, e))?;
        files.push(RenderedFile {
            name: file.to_string(),
            contents,
            secret: has_secret && *file != "routes.txt",
        });
    }
    Ok(Rendered {
        backend,
        files,
        notes,
    })
}
