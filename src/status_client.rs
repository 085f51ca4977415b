//! `bgpgen status`: what `calicoctl node status` / `cilium bgp peers` print, for any of the three
//! daemons, read from the sidecar's `/status` endpoint (so `kubectl exec POD -- bgpgen status`
//! works in every speaker image: nothing but bgpgen is needed).
//!
//! Exit codes: 0 every neighbor of the intent is established; 1 the sidecar answered and at least
//! one neighbor is not established (or no intent is in force yet, or the daemon does not answer);
//! 3 the sidecar cannot be reached or its answer is not a status document.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::report::Document;
use crate::text::escape;

/// How long the sidecar may take to answer.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read (a status document of thousands of peers stays far below).
const MAX_BYTES: u64 = 16 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StatusFormat {
    Table,
    Json,
    Yaml,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The sidecar's endpoint, as given to `bgpgen run --metrics-addr`.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:10661")]
    pub metrics_addr: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: StatusFormat,
}

/// GETs `path` from `addr` over HTTP/1.0 (the answer ends with the connection): the body of a
/// 200 answer.
pub fn get(addr: &str, path: &str) -> Result<String, String> {
    let target: SocketAddr = addr
        .to_socket_addrs()
        .map_err(|e| format!("--metrics-addr {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("--metrics-addr {addr}: no address"))?;
    let mut stream = TcpStream::connect_timeout(&target, TIMEOUT)
        .map_err(|e| format!("cannot reach the sidecar at {target}: {e}"))?;
    stream.set_read_timeout(Some(TIMEOUT)).ok();
    stream.set_write_timeout(Some(TIMEOUT)).ok();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {target}\r\nAccept: application/json\r\n\r\n"
    )
    .map_err(|e| format!("sidecar at {target}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .take(MAX_BYTES)
        .read_to_end(&mut raw)
        .map_err(|e| format!("sidecar at {target}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("sidecar at {target}: not an HTTP answer"))?;
    let status_line = head.lines().next().unwrap_or_default();
    let code = status_line.split_whitespace().nth(1).unwrap_or_default();
    if code != "200" {
        return Err(format!(
            "sidecar at {target}: GET {path} answered {}",
            escape(status_line)
        ));
    }
    Ok(body.to_string())
}

/// The exit code for a document (see the module documentation).
pub fn exit_code(doc: &Document) -> u8 {
    let wanted: Vec<_> = doc.peers.iter().filter(|p| p.in_intent).collect();
    let all_up = doc.intent_hash.is_some() && wanted.iter().all(|p| p.established());
    if all_up { 0 } else { 1 }
}

fn or_dash(s: Option<&str>) -> String {
    s.map(|s| escape(s).into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".into())
}

/// The table: a summary line, the stale reasons, one row per neighbor and family.
pub fn table(doc: &Document) -> String {
    let mut out = String::new();
    let hash = doc
        .intent_hash
        .as_deref()
        .map(|h| h.chars().take(19).collect::<String>())
        .unwrap_or_else(|| "-".into());
    let apply = match &doc.last_apply {
        None => "-".to_string(),
        Some(a) => {
            let detail = a.how.as_deref().or(a.error.as_deref());
            match detail {
                Some(d) => format!("{} at {} ({})", a.result, a.time, escape(d)),
                None => format!("{} at {}", a.result, a.time),
            }
        }
    };
    let speaker = doc
        .node
        .as_deref()
        .or(doc.gateway.as_deref())
        .map(|n| escape(n).into_owned())
        .unwrap_or_else(|| "-".into());
    out.push_str(&format!(
        "Speaker {speaker} ({}), AS {}, intent {hash}, {}\n",
        doc.backend.as_deref().unwrap_or("-"),
        doc.local_as.map_or("-".to_string(), |a| a.to_string()),
        if doc.ready { "ready" } else { "NOT READY" },
    ));
    out.push_str(&format!("Last apply: {apply}\n"));
    if !doc.daemon_reachable {
        out.push_str("Daemon: does not answer\n");
    }
    for s in &doc.stale {
        out.push_str(&format!("Stale: {}: {}\n", s.reason, escape(&s.detail)));
    }
    if let Some(e) = &doc.observe_error {
        out.push_str(&format!("Read-back: {}\n", escape(e)));
    }
    out.push('\n');
    let mut rows = vec![[
        "PEER".to_string(),
        "AS".into(),
        "FAMILY".into(),
        "STATE".into(),
        "SINCE".into(),
        "ADVERTISED".into(),
        "EXPECTED".into(),
        "LAST ERROR".into(),
    ]];
    for p in &doc.peers {
        let families: Vec<_> = if p.families.is_empty() {
            vec![None]
        } else {
            p.families.iter().map(Some).collect()
        };
        for f in families {
            let count = |m: &std::collections::BTreeMap<crate::model::Family, u64>| {
                f.and_then(|f| m.get(f))
                    .map_or("-".to_string(), |n| n.to_string())
            };
            let state = if p.in_intent {
                p.state.clone()
            } else {
                format!("{} (not in the intent)", p.state)
            };
            rows.push([
                p.address.to_string(),
                p.remote_as.to_string(),
                f.map_or("-".to_string(), |f| f.to_string()),
                state,
                or_dash(p.since.as_deref()),
                if p.established() {
                    count(&p.advertised)
                } else {
                    "-".into()
                },
                count(&p.expected),
                or_dash(p.last_error.as_deref()),
            ]);
        }
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i == r.len() - 1 {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if doc.peers.is_empty() {
        out.push_str("(no neighbors)\n");
    }
    for d in &doc.drift {
        out.push_str(&format!(
            "Drift: {} {}: {} advertised, {} expected{}{}\n",
            d.peer,
            d.family,
            d.advertised,
            d.expected,
            if d.missing.is_empty() {
                String::new()
            } else {
                format!("; missing {}", d.missing.join(" "))
            },
            if d.extra.is_empty() {
                String::new()
            } else {
                format!("; extra {}", d.extra.join(" "))
            },
        ));
    }
    out
}

/// Runs `bgpgen status`.
pub fn run(args: &StatusArgs) -> ExitCode {
    let doc = get(&args.metrics_addr, "/status").and_then(|body| {
        serde_json::from_str::<Document>(&body)
            .map(|d| (d, body))
            .map_err(|e| {
                format!(
                    "the sidecar at {} answered something that is not a status document: {e}",
                    args.metrics_addr
                )
            })
    });
    let (doc, body) = match doc {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {}", escape(&e));
            return ExitCode::from(3);
        }
    };
    match args.output {
        StatusFormat::Json => print!("{}", body.trim_end().to_string() + "\n"),
        StatusFormat::Yaml => print!("{}", crate::source::yaml::to_string(&doc)),
        StatusFormat::Table => print!("{}", table(&doc)),
    }
    ExitCode::from(exit_code(&doc))
}
