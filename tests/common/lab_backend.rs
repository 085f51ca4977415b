//! What the netns tests and benches need to know of each backend beyond
//! `bgpgen::render::Backend`: the daemon's names in the lab, its files and sockets, and the
//! programs it needs. Used by the integration tests (through `common`) and by the benches
//! `latency.rs` and `change_cost.rs` (which include this file and `netns.rs` at their root).

use bgpgen::render::Backend;

use super::netns::{BGPD, BIRD, BIRDC, GOBGP, GOBGPD, IP, VTYSH};

pub const FRR_RELOAD: &str = "/usr/lib/frr/frr-reload.py";
pub const PYTHON: &str = "python3";

pub trait LabBackend: Copy {
    /// The rendered main file the daemon is started with, also the name of its template
    /// (`<file>.j2`).
    fn main_file(self) -> &'static str;
    /// The daemon's name in the lab (its log file, its pid).
    fn daemon(self) -> &'static str;
    /// The daemon's process name (`/proc/PID/comm`).
    fn comm(self) -> &'static str;
    /// The daemon's control socket in the lab's `etc` dir (what bgpgen's checks use).
    fn control_socket(self) -> &'static str;
    /// The daemon's pid file in the lab's `etc` dir.
    fn pid_file(self) -> &'static str;
    /// How the rendered main file says `holdtime: 30s`.
    fn hold_time_30(self) -> &'static str;
    /// Every program the lab needs for this backend (the upstream is a gobgpd; bgpgen's HTTP
    /// endpoints are read with python3).
    fn needs(self) -> Vec<&'static str>;
    /// One value per backend, in the order gobgp, frr, bird (per-test ports and the like).
    fn pick<T>(self, gobgp: T, frr: T, bird: T) -> T;
}

impl LabBackend for Backend {
    fn main_file(self) -> &'static str {
        self.files()[0].0
    }

    fn daemon(self) -> &'static str {
        self.pick("speaker-gobgpd", "speaker-bgpd", "speaker-bird")
    }

    fn comm(self) -> &'static str {
        self.pick("gobgpd", "bgpd", "bird")
    }

    fn control_socket(self) -> &'static str {
        self.pick("gobgpd.sock", "bgpd.vty", "bird.ctl")
    }

    fn pid_file(self) -> &'static str {
        self.pick("gobgpd.pid", "bgpd.pid", "bird.pid")
    }

    fn hold_time_30(self) -> &'static str {
        self.pick("hold-time = 30", "timers 10 30", "hold time 30;")
    }

    fn needs(self) -> Vec<&'static str> {
        let mut needs = vec![IP, PYTHON, GOBGPD, GOBGP];
        match self {
            Backend::Gobgp => {}
            Backend::Frr => needs.extend([BGPD, VTYSH, FRR_RELOAD]),
            Backend::Bird => needs.extend([BIRD, BIRDC]),
        }
        needs
    }

    fn pick<T>(self, gobgp: T, frr: T, bird: T) -> T {
        match self {
            Backend::Gobgp => gobgp,
            Backend::Frr => frr,
            Backend::Bird => bird,
        }
    }
}
