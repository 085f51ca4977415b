//! Reading a running sidecar's HTTP endpoint (`--metrics-addr`): `explain --from-sidecar`.
//! Plain HTTP/1.1 GETs with a deadline and a bounded body; the endpoint is bgpgen's own.

use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use thiserror::Error;

/// The largest answer read (an intent of 100,000 routes is about 30 MB of JSON).
pub const MAX_BODY_BYTES: usize = 256 << 20;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("{addr}: not an address of a bgpgen endpoint (HOST:PORT or http://HOST:PORT)")]
    Address { addr: String },
    #[error("{url}: {message}")]
    Request { url: String, message: String },
    #[error("{url}: no answer within {secs} s")]
    Timeout { url: String, secs: u64 },
    #[error("{url}: HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
}

/// `http://HOST:PORT` from `HOST:PORT`, `http://HOST:PORT` or `http://HOST:PORT/`.
pub fn base_url(addr: &str) -> Result<String, ClientError> {
    let bad = || ClientError::Address {
        addr: crate::text::clip(addr, crate::text::QUOTE_CHARS),
    };
    let rest = addr.strip_prefix("http://").unwrap_or(addr);
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) || !rest.contains(':') {
        return Err(bad());
    }
    let url = format!("http://{rest}");
    url.parse::<hyper::Uri>().map_err(|_| bad())?;
    Ok(url)
}

/// `path?key=value&...`, the values percent-encoded.
pub fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return path.to_string();
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{path}?{query}")
}

/// GETs `path` (with its query) from the endpoint at `addr`: the body of a 200 answer, else an
/// error with the status and the (bounded) body.
pub async fn get(addr: &str, path: &str, timeout: Duration) -> Result<String, ClientError> {
    let url = format!("{}{path}", base_url(addr)?);
    let request = async {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Empty<Bytes>>();
        let uri: hyper::Uri = url.parse().map_err(|e| ClientError::Request {
            url: url.clone(),
            message: format!("{e}"),
        })?;
        let response = client.get(uri).await.map_err(|e| ClientError::Request {
            url: url.clone(),
            message: error_chain(&e),
        })?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| ClientError::Request {
                url: url.clone(),
                message: format!("reading the answer: {e}"),
            })?
            .to_bytes();
        let body = String::from_utf8_lossy(&body).into_owned();
        if status != 200 {
            return Err(ClientError::Status {
                url: url.clone(),
                status,
                body: crate::text::clip(body.trim(), crate::text::MESSAGE_CHARS),
            });
        }
        Ok(body)
    };
    match tokio::time::timeout(timeout, request).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::Timeout {
            url: url.clone(),
            secs: timeout.as_secs(),
        }),
    }
}

/// An error and its causes on one line (hyper's own message is only "client error (Connect)").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_queries() {
        assert_eq!(
            base_url("127.0.0.1:10661").unwrap(),
            "http://127.0.0.1:10661"
        );
        assert_eq!(
            base_url("http://[::1]:10661/").unwrap(),
            "http://[::1]:10661"
        );
        assert!(base_url("127.0.0.1").is_err());
        assert!(base_url("http://a:1/x").is_err());
        assert_eq!(
            with_query("/explain", &[("query", "pod/default/web 0")]),
            "/explain?query=pod%2Fdefault%2Fweb+0"
        );
    }
}
