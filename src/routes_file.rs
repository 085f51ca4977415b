//! `routes.txt`, the GoBGP backend's list of announced paths: `PREFIX [nexthop ADDRESS]` per line,
//! `#` starts a comment. The driver parses it back, so the format is checked in both directions.

use std::net::IpAddr;

use ipnet::IpNet;
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Path {
    pub prefix: IpNet,
    /// `None`: the daemon uses the session's local address.
    pub next_hop: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

pub fn parse(text: &str) -> Result<Vec<Path>, ParseError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let err = |message: String| ParseError {
            line: i + 1,
            message,
        };
        let mut words = line.split_whitespace();
        let prefix: IpNet = words
            .next()
            .unwrap_or_default()
            .parse()
            .map_err(|_| err(format!("{line:?} does not start with a prefix")))?;
        let next_hop = match (words.next(), words.next(), words.next()) {
            (None, _, _) => None,
            (Some("nexthop"), Some(ip), None) => Some(
                ip.parse::<IpAddr>()
                    .map_err(|_| err(format!("{ip:?} is not a next-hop address")))?,
            ),
            _ => return Err(err(format!("{line:?}: expected PREFIX [nexthop ADDRESS]"))),
        };
        out.push(Path { prefix, next_hop });
    }
    Ok(out)
}
