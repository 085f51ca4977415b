//! Rendering: the intent becomes daemon configuration through one minijinja template per daemon
//! (`templates/`, embedded, overridable with `--templates DIR`). Templates only ever see values
//! built here from typed fields (addresses, numbers, checked identifiers, sanitized comments), so
//! no object name or annotation can add configuration text.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior, value::Serde};
use serde::Serialize;
use thiserror::Error;

use crate::diagnostic::Diagnostic;
use crate::intent::{Intent, NextHop, Route, Source};
use crate::model::Family;

pub use crate::daemon::Backend;

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
        let builtin = Backend::ALL
            .iter()
            .flat_map(|b| crate::daemon::of(*b).templates().iter());
        for (name, builtin) in builtin {
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
            if c.is_ascii() && comment_byte(c as u8) {
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

/// What every template receives. Built from the intent's typed fields only; each daemon then
/// adjusts it to what its syntax can carry ([`crate::daemon::Daemon::adjust`]).
#[derive(Serialize)]
pub struct RenderCtx {
    pub(crate) hash: String,
    pub(crate) router_id: String,
    /// False for 0.0.0.0 (a defaulted router ID): no `router id` line, so BIRD picks one of the
    /// host's addresses; bgpd without zebra has none to pick and, like GoBGP, keeps 0.0.0.0,
    /// with which no session comes up (the options warning says so).
    pub(crate) router_id_set: bool,
    pub(crate) local_as: u32,
    pub(crate) hold_time: u64,
    pub(crate) keepalive: u64,
    pub(crate) connect_retry: u64,
    pub(crate) passive: bool,
    pub(crate) multihop_ttl: Option<u8>,
    pub(crate) extended_nexthop: bool,
    pub(crate) graceful_restart: Option<GrCtx>,
    pub(crate) bfd: Option<BfdCtx>,
    pub(crate) password: Option<String>,
    /// The password as a quoted TOML string (gobgpd.toml), escaped.
    pub(crate) password_toml: Option<String>,
    pub(crate) neighbors: Vec<NeighborCtx>,
    /// Neighbors with a pinned local address, for GoBGP's export policy.
    pub(crate) pinned: Vec<NeighborCtx>,
    pub(crate) routes_v4: Vec<RouteCtx>,
    pub(crate) routes_v6: Vec<RouteCtx>,
    pub(crate) next_hop_v4: Option<String>,
    pub(crate) next_hop_v6: Option<String>,
    pub(crate) unreachable: usize,
}

#[derive(Serialize)]
pub struct GrCtx {
    pub(crate) restart_time: u64,
    pub(crate) deferral_time: u64,
}

#[derive(Serialize)]
pub struct BfdCtx {
    pub(crate) min_tx_ms: u32,
    pub(crate) min_rx_ms: u32,
    pub(crate) multiplier: u8,
}

#[derive(Serialize, Clone)]
pub struct NeighborCtx {
    pub(crate) address: String,
    pub(crate) id: String,
    pub(crate) remote_as: u32,
    pub(crate) ipv6: bool,
    pub(crate) ebgp: bool,
    pub(crate) families: Vec<&'static str>,
    pub(crate) ipv4_unicast: bool,
    pub(crate) ipv6_unicast: bool,
    /// The session's local address and the next hop of every route sent to it, when pinned
    /// (`--allowed-source-addresses`, `--neighbor-local-address`); else the daemon's choice.
    pub(crate) local_address: Option<String>,
    /// The neighbor's own family, for per-family statements: `ipv4-unicast` or `ipv6-unicast`.
    pub(crate) family: &'static str,
}

#[derive(Serialize)]
pub struct RouteCtx {
    pub(crate) prefix: String,
    pub(crate) next_hop: Option<String>,
    pub(crate) comment: String,
}

pub(crate) fn source_comment(sources: &[Source]) -> String {
    use std::fmt::Write as _;
    // Written once into one buffer: this runs for each of 100,000 routes.
    let mut text = String::with_capacity(64);
    if let Some(first) = sources.first() {
        let _ = write!(text, "{first}");
        // Bounded: a name from a manifest can be any length (the API server allows 253
        // characters). Fewer bytes than 161 are fewer characters too.
        if text.len() > 160
            && let Some((cut, _)) = text.char_indices().nth(160)
        {
            text.truncate(cut);
            text.push_str("...");
        }
    }
    if sources.len() > 1 {
        let _ = write!(text, " +{} more", sources.len() - 1);
    }
    if text.bytes().all(comment_byte) {
        return text;
    }
    comment_safe(&text)
}

/// An ASCII character [`comment_safe`] keeps.
fn comment_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" ._/:()-,+".contains(&b)
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

fn context(
    intent: &Intent,
    backend: Backend,
    reveal_secrets: bool,
    notes: &mut Vec<Diagnostic>,
) -> Result<RenderCtx, RenderError> {
    let daemon = crate::daemon::of(backend);
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
    let graceful_restart = bgp.graceful_restart.enabled.then_some(GrCtx {
        restart_time: bgp.graceful_restart.restart_time,
        deferral_time: bgp.graceful_restart.deferral_time,
    });
    let multihop_ttl = (bgp.ebgp_multihop_ttl > 1).then_some(bgp.ebgp_multihop_ttl);
    let bfd = bgp.bfd.enabled.then_some(BfdCtx {
        min_tx_ms: bgp.bfd.min_tx_ms,
        min_rx_ms: bgp.bfd.min_rx_ms,
        multiplier: bgp.bfd.multiplier,
    });
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
    let router_id_set = !intent.speaker.router_id.is_unspecified();
    let mut ctx = RenderCtx {
        hash: intent.hash.clone(),
        router_id: intent.speaker.router_id.to_string(),
        router_id_set,
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
        password_toml: None,
        neighbors,
        pinned,
        routes_v4: announced(Family::Ipv4Unicast),
        routes_v6: announced(Family::Ipv6Unicast),
        next_hop_v4: next_hop(Family::Ipv4Unicast),
        next_hop_v6: next_hop(Family::Ipv6Unicast),
        unreachable: intent.routes.iter().filter(|r| r.unreachable).count(),
    };
    daemon.adjust(&mut ctx, notes);
    Ok(ctx)
}

/// The Linux kernel's TCP MD5 keys (RFC 2385), which all three daemons use, hold at most 80 bytes.
const TCP_MD5_MAX_KEY_LEN: usize = 80;

/// Why `backend` cannot carry `password` as given, if it cannot. Everything kube-ovn-speaker
/// takes is taken by `compile`; what each syntax can write was found with each daemon's parser
/// (see each daemon's `render.rs`). The message names the character, never the password.
pub fn password_problem(backend: Backend, password: &str) -> Option<String> {
    if password.len() > TCP_MD5_MAX_KEY_LEN {
        return Some(format!(
            "{backend}: the BGP password (--auth-password or --auth-password-file) is {} bytes; TCP MD5 keys (Linux, RFC 2385) hold at most {TCP_MD5_MAX_KEY_LEN}",
            password.len()
        ));
    }
    crate::daemon::of(backend).password_problem(password)
}

/// The warning for a daemon that needs a router ID and got none.
pub(crate) fn router_id_unset_warning(daemon: &str) -> Diagnostic {
    Diagnostic::warning(
        format!("render/{daemon}"),
        format!(
            "router ID 0.0.0.0: {daemon}'s sessions will not come up (peers refuse it); set --router-id"
        ),
    )
}

/// A character of a password in a message: its code point, and itself when printable.
pub(crate) fn describe_char(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("U+{:04X}", u32::from(c))
    } else {
        format!("{c:?} (U+{:04X})", u32::from(c))
    }
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
    let daemon = crate::daemon::of(backend);
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
            secret: has_secret && daemon.holds_secret(file),
        });
    }
    // Files written by code rather than a template (BIRD's route files), never secret.
    files.extend(
        daemon
            .generated(intent)
            .into_iter()
            .map(|(name, contents)| RenderedFile {
                name,
                contents,
                secret: false,
            }),
    );
    Ok(Rendered {
        backend,
        files,
        notes,
    })
}
