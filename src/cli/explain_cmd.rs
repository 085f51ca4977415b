//! `bgpgen explain`: from manifests, or from a running sidecar (`--from-sidecar`, which asks
//! the sidecar's `/explain` endpoint to answer on the state it has in force).
//!
//! Exit codes: 0 announced (the prefix itself or a prefix covering it; for an object, every one
//! of its addresses; for a Node or VpcNatGateway, this speaker's), 1 not announced or only
//! partly, 2 invalid query or input, 3 the sidecar could not be asked.

use std::time::Duration;

use bgpgen::explain::{Explanation, explanation, parse_query};

use super::output::Format;
use crate::{EXIT_DAEMON, EXIT_DIFFERENT, ExplainArgs, Failure, load_and_compile, runtime};

/// How long a sidecar gets to answer.
const SIDECAR_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(args: ExplainArgs) -> Result<(), Failure> {
    let query = parse_query(&args.query).map_err(Failure::invalid)?;
    let answer = match &args.from_sidecar {
        Some(addr) => from_sidecar(addr, &args.query)?,
        None => {
            let (snapshot, options, intent) = load_and_compile(&args.input)?;
            explanation(&snapshot, &options, &intent, &query).map_err(Failure::invalid)?
        }
    };
    match args.output {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&answer).unwrap_or_default();
            text.push('\n');
            print!("{text}");
        }
        Format::Yaml => print!("{}", bgpgen::source::yaml::to_string(&answer)),
        Format::Text => print!("{}", answer.to_text()),
    }
    if answer.state.is_announced() {
        Ok(())
    } else {
        // The answer is on stdout; the exit code says it for scripts.
        Err(Failure {
            code: EXIT_DIFFERENT,
            message: String::new(),
        })
    }
}

fn from_sidecar(addr: &str, query: &str) -> Result<Explanation, Failure> {
    use bgpgen::sidecar_client::{ClientError, get, with_query};
    let path = with_query("/explain", &[("query", query), ("format", "json")]);
    let body = runtime()?
        .block_on(get(addr, &path, SIDECAR_TIMEOUT))
        .map_err(|e| match &e {
            ClientError::Address { .. } => Failure::invalid(format!("--from-sidecar {e}")),
            // The sidecar understood and refused the query (unknown object, bad query).
            ClientError::Status {
                status: 400, body, ..
            } => Failure::invalid(body),
            ClientError::Status { status: 404, .. } => Failure {
                code: EXIT_DAEMON,
                message: format!("{e} (a bgpgen sidecar older than this one has no /explain)"),
            },
            _ => Failure {
                code: EXIT_DAEMON,
                message: format!("--from-sidecar {e}"),
            },
        })?;
    serde_json::from_str(&body).map_err(|e| Failure {
        code: EXIT_DAEMON,
        message: format!("--from-sidecar {addr}: the answer is not an explanation: {e}"),
    })
}
