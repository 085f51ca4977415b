//! A changed router ID or local AS resets every session; BFD changes re-create the BFD sessions.

use crate::daemon::forecast::{Quirks, sessions};
use crate::diff::Impact;
use crate::intent::Intent;

const QUIRKS: Quirks = Quirks {
    global_restarts: false,
    bfd: true,
};

pub fn forecast(from: &Intent, to: &Intent) -> Vec<Impact> {
    sessions(from, to, &QUIRKS)
}
