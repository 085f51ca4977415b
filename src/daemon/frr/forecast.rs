//! A changed router ID or local AS resets every session; BFD changes re-create the BFD sessions.

use crate::daemon::forecast::{Quirks, sessions};
use crate::intent::Intent;

const QUIRKS: Quirks = Quirks {
    global_change: "session reset (all neighbors): router ID or local AS changed",
    bfd: true,
};

pub fn forecast(from: &Intent, to: &Intent) -> Vec<String> {
    sessions(from, to, &QUIRKS)
}
