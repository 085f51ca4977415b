//! What the netns benches need to know of each backend beyond `bgpgen::render::Backend`: the
//! name of its daemon in the lab and the programs it needs. Included by `latency.rs` and
//! `change_cost.rs` (each has `mod netns` at its root).

use bgpgen::render::Backend;

use crate::netns::{BGPD, BIRD, BIRDC, GOBGP, GOBGPD, IP, VTYSH};

pub const FRR_RELOAD: &str = "/usr/lib/frr/frr-reload.py";

pub trait LabBackend {
    /// The configuration file the daemon is started with.
    fn main_file(self) -> &'static str;
    /// The daemon's name in the lab (its log file, its pid).
    fn daemon(self) -> &'static str;
    /// Every program the lab needs for this backend (the upstream is a gobgpd).
    fn needs(self) -> Vec<&'static str>;
}

impl LabBackend for Backend {
    fn main_file(self) -> &'static str {
        self.files()[0].0
    }

    fn daemon(self) -> &'static str {
        match self {
            Backend::Gobgp => "speaker-gobgpd",
            Backend::Frr => "speaker-bgpd",
            Backend::Bird => "speaker-bird",
        }
    }

    fn needs(self) -> Vec<&'static str> {
        let mut needs = vec![IP, GOBGPD, GOBGP];
        match self {
            Backend::Gobgp => {}
            Backend::Frr => needs.extend([BGPD, VTYSH, FRR_RELOAD]),
            Backend::Bird => needs.extend([BIRD, BIRDC]),
        }
        needs
    }
}
