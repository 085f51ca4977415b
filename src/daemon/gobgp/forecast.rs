//! gobgpd never applies `[global]` (AS, router ID) on reload: bgpgen restarts it. It has no BFD.

use crate::daemon::forecast::{Quirks, sessions};
use crate::intent::Intent;

const QUIRKS: Quirks = Quirks {
    global_change: "daemon restart: router ID or local AS changed ([global] is not applied on reload)",
    bfd: false,
};

pub fn forecast(from: &Intent, to: &Intent) -> Vec<String> {
    sessions(from, to, &QUIRKS)
}
