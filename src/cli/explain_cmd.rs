//! `bgpgen explain`: from manifests (every rule replayed), or from a running sidecar
//! (`--from-sidecar`: its intent in force, read from `/intent?format=json`).
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
        Some(addr) => from_sidecar(addr, &query)?,
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

/// Reads the sidecar's intent in force (`/intent?format=json`) and answers from it.
fn from_sidecar(addr: &str, query: &bgpgen::explain::Query) -> Result<Explanation, Failure> {
    use bgpgen::sidecar_client::{ClientError, get, with_query};
    let path = with_query("/intent", &[("format", "json")]);
    let body = runtime()?
        .block_on(get(addr, &path, SIDECAR_TIMEOUT))
        .map_err(|e| match &e {
            ClientError::Address { .. } => Failure::invalid(format!("--from-sidecar {e}")),
            _ => Failure {
                code: EXIT_DAEMON,
                message: format!("--from-sidecar {e}"),
            },
        })?;
    let not_an_intent = |e: String| Failure {
        code: EXIT_DAEMON,
        message: format!("--from-sidecar {addr}: the answer is not an intent: {e}"),
    };
    let value: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| not_an_intent(e.to_string()))?;
    let stale: Vec<String> = value
        .get("stale")
        .and_then(serde_json::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let intent: bgpgen::intent::Intent =
        serde_json::from_value(value).map_err(|e| not_an_intent(e.to_string()))?;
    Ok(bgpgen::explain::from_intent(&intent, query, &stale))
}
