//! `bgpgen status`: what `calicoctl node status` / `cilium bgp peers` print, for any of the three
//! daemons, read from the sidecar's `/status` endpoint (so `kubectl exec POD -- bgpgen status`
//! works in every speaker image: nothing but bgpgen is needed).
//!
//! Exit codes: 0 every neighbor of the intent is established; 1 the sidecar answered and at least
//! one neighbor is not established (or no intent is in force yet); 2 a bad address; 3 the
//! sidecar cannot be reached or its answer is not a status document.

use std::time::Duration;

use bgpgen::report::{Document, all_established, table};
use bgpgen::sidecar_client::{ClientError, get};

use super::output::Format;
use crate::{EXIT_DAEMON, EXIT_DIFFERENT, Failure, StatusArgs, runtime};

/// How long the sidecar gets to answer.
const SIDECAR_TIMEOUT: Duration = Duration::from_secs(5);

pub fn run(args: StatusArgs) -> Result<(), Failure> {
    let addr = &args.metrics_addr;
    let body = runtime()?
        .block_on(get(addr, "/status", SIDECAR_TIMEOUT))
        .map_err(|e| match &e {
            ClientError::Address { .. } => Failure::invalid(format!("--metrics-addr {e}")),
            _ => Failure {
                code: EXIT_DAEMON,
                message: format!("the sidecar at {e}"),
            },
        })?;
    let doc: Document = serde_json::from_str(&body).map_err(|e| Failure {
        code: EXIT_DAEMON,
        message: format!(
            "the sidecar at {addr} answered something that is not a status document: {e}"
        ),
    })?;
    match args.output {
        // The sidecar's own document, as it sent it.
        Format::Json => println!("{}", body.trim_end()),
        Format::Yaml => print!("{}", bgpgen::source::yaml::to_string(&doc)),
        Format::Text | Format::Table => print!("{}", table(&doc)),
    }
    if all_established(&doc) {
        Ok(())
    } else {
        // The answer is on stdout; the exit code says it for scripts.
        Err(Failure {
            code: EXIT_DIFFERENT,
            message: String::new(),
        })
    }
}
