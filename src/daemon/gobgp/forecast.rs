//! gobgpd never applies `[global]` (AS, router ID) on reload: bgpgen restarts it. It has no BFD.

use crate::daemon::forecast::{Quirks, sessions};
use crate::diff::Impact;
use crate::intent::Intent;

const QUIRKS: Quirks = Quirks {
    global_restarts: true,
    bfd: false,
};

pub fn forecast(from: &Intent, to: &Intent) -> Vec<Impact> {
    sessions(from, to, &QUIRKS)
}
