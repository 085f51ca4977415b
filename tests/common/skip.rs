//! What a test does when something it needs is missing (a routing daemon, root for network
//! namespaces, Docker):
//! - `BGPGEN_REQUIRE_DAEMONS=1` (CI, `.ci/run`): the test fails;
//! - `BGPGEN_ALLOW_SKIP=1`: the test returns early and says so on the terminal, outside the
//!   output the test harness captures (so the line shows between the `ok` lines);
//! - neither: the test fails, saying what is missing and how to skip on purpose. A test that
//!   could not run never passes silently.

use std::io::Write as _;

/// Set to 1 to turn a missing prerequisite into a failure even when skipping is allowed.
pub const REQUIRE_ENV: &str = "BGPGEN_REQUIRE_DAEMONS";
/// Set to 1 to let tests whose prerequisites are missing skip (visibly).
pub const ALLOW_ENV: &str = "BGPGEN_ALLOW_SKIP";

fn set(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1")
}

/// Whether `BGPGEN_REQUIRE_DAEMONS=1`.
pub fn required() -> bool {
    set(REQUIRE_ENV)
}

/// Called when `test` cannot run because `missing` is missing. Returns (the caller then
/// returns or skips that part) only when skipping is allowed; panics otherwise.
pub fn skip(test: &str, missing: &str) {
    if let Err(message) = allowed(test, missing) {
        panic!("{message}");
    }
}

/// [`skip`] without the panic (for property tests, which report failures as values): Ok after
/// printing the SKIPPED line, or the failure message.
pub fn allowed(test: &str, missing: &str) -> Result<(), String> {
    if required() {
        return Err(format!("{test}: missing {missing} and {REQUIRE_ENV}=1"));
    }
    if !set(ALLOW_ENV) {
        return Err(format!(
            "{test}: missing {missing}. Install it (scripts/test installs the daemons) and run as root, or set {ALLOW_ENV}=1 to skip such tests on purpose"
        ));
    }
    // Not eprintln!: the harness captures that and shows it only for failing tests.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: missing {missing} ({ALLOW_ENV}=1)"
    );
    Ok(())
}
