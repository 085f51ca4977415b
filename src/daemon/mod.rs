//! The edge towards the routing daemons. Everything bgpgen knows about one daemon lives in its own
//! folder (`gobgp/`, `bird/`, `frr/`), each with the same inner shape:
//!
//! - `render.rs`: the files it renders, its templates and their quirks (what the daemon's syntax
//!   cannot carry, values it clamps);
//! - `check.rs`: its own configuration checker;
//! - `apply.rs`: how a change reaches the running daemon (its [`Driver`]);
//! - `spawn.rs`: how `run --spawn` starts and stops it;
//! - `forecast.rs`: what a change does to its sessions (`bgpgen diff`).
//!
//! The daemon is described by one [`Daemon`] value (static knowledge) and driven through one
//! [`Driver`] (a connection to a running daemon). The agent, `render`, `diff` and `status` use
//! only these two traits; [`of`] is the registry. Mechanisms every daemon shares stay here:
//! [`driver`] (apply outcomes and errors, file steps, control commands), [`process`] (signals,
//! pid files, tied children), [`supervisor`] (the `--spawn` lifecycle), [`validate`] (running a
//! checker) and [`forecast`] (the session-level forecast).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;
use crate::intent::Intent;
use crate::render::{RenderCtx, Rendered};

pub mod bird;
pub mod driver;
pub mod forecast;
pub mod frr;
pub mod gobgp;
pub mod observe;
pub mod process;
pub mod supervisor;
pub mod validate;

use driver::{ApplyError, ApplyOutcome, DaemonOptions};
use process::Signal;
use supervisor::StopMode;
use validate::ValidateError;

/// Which daemon: the identity used on the command line, in file names and in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    Gobgp,
    Frr,
    Bird,
}

/// The registry: the description of each backend. A new daemon is a new folder, a variant of
/// [`Backend`] and one line here.
pub fn of(backend: Backend) -> &'static dyn Daemon {
    match backend {
        Backend::Gobgp => &gobgp::Gobgp,
        Backend::Frr => &frr::Frr,
        Backend::Bird => &bird::Bird,
    }
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Gobgp, Backend::Frr, Backend::Bird];

    pub fn name(self) -> &'static str {
        of(self).name()
    }

    /// The files this backend renders, each with its template.
    pub fn files(self) -> &'static [(&'static str, &'static str)] {
        of(self).files()
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Backend::ALL
            .into_iter()
            .find(|b| b.name() == s || of(*b).aliases().contains(&s))
            .ok_or_else(|| {
                let names: Vec<&str> = Backend::ALL.iter().map(|b| b.name()).collect();
                let (last, rest) = names.split_last().unwrap_or((&"", &[]));
                format!("unknown backend {s:?} (use {} or {last})", rest.join(", "))
            })
    }
}

/// What bgpgen knows about one routing daemon, whether or not one is running.
#[async_trait::async_trait]
pub trait Daemon: Sync {
    fn backend(&self) -> Backend;

    /// The name on the command line (`--backend gobgp`) and in messages.
    fn name(&self) -> &'static str;

    /// Other names accepted on the command line (`gobgpd`, `bird2`).
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }

    // ---- render ----

    /// The files this daemon's configuration consists of, each with its template; the first is
    /// the main file (`--config-file`), the others go beside it.
    fn files(&self) -> &'static [(&'static str, &'static str)];

    /// Files this daemon's configuration also consists of that code writes rather than a
    /// template (BIRD's route files): (name relative to the main file's directory, contents).
    /// They hold no secret and live in [`Daemon::generated_dir`].
    fn generated(&self, intent: &Intent) -> Vec<(String, String)> {
        let _ = intent;
        Vec::new()
    }

    /// The directory (beside the main file) of [`Daemon::generated`]'s files. It is bgpgen's:
    /// a `*.conf` in it that a render did not produce is stale (the daemon may include it by a
    /// glob) and is removed by every writer, and it is never written through a symlink.
    fn generated_dir(&self) -> Option<&'static str> {
        None
    }

    /// The built-in templates: (template name, source).
    fn templates(&self) -> &'static [(&'static str, &'static str)];

    /// Why this daemon's syntax cannot carry `password`, naming the character, never the
    /// password. The key length limit shared by all is checked by `render`.
    fn password_problem(&self, password: &str) -> Option<String>;

    /// Adjusts the template context to what this daemon can carry, with a note for every value
    /// changed or dropped (FRR's BFD limits, GoBGP's missing BFD, BIRD's router ID).
    fn adjust(&self, ctx: &mut RenderCtx, notes: &mut Vec<Diagnostic>);

    /// Whether `file` (one of [`Daemon::files`]) holds the password when the intent has one.
    fn holds_secret(&self, file: &str) -> bool {
        let _ = file;
        true
    }

    // ---- check ----

    /// The checker program and the Debian package that ships it.
    fn checker(&self) -> (PathBuf, &'static str);

    /// True when the checker (and whatever else [`Daemon::check`] runs) is installed.
    fn checker_available(&self) -> bool {
        self.checker().0.exists()
    }

    /// Runs the daemon's own parser on `rendered`, whose files are written in `dir`.
    fn check(&self, dir: &Path, rendered: &Rendered) -> Result<(), ValidateError>;

    // ---- apply ----

    /// A driver for a daemon running with these options.
    fn driver(&self, options: DaemonOptions) -> Box<dyn Driver>;

    // ---- spawn ----

    /// The program `run --spawn` starts (overridable through the environment for tests and
    /// other layouts).
    fn program(&self) -> String;

    /// The daemon's process name, as `/proc/PID/cmdline` shows its `argv[0]`.
    fn process_name(&self) -> &'static str;

    /// The pid file of a spawned daemon.
    fn pid_file(&self, options: &DaemonOptions) -> PathBuf;

    /// True when bgpgen writes the pid file itself (the daemon has no option for it).
    fn bgpgen_writes_pid_file(&self) -> bool {
        false
    }

    /// The spawned daemon's arguments; `config` and `pid_file` are absolute.
    fn command(&self, options: &DaemonOptions, config: String, pid_file: String) -> Vec<String>;

    /// The first step of stopping in `mode`: a signal to send, or `None` when the daemon was
    /// asked to stop another way (BIRD's `birdc graceful restart`).
    async fn stop_signal(&self, mode: StopMode, options: &DaemonOptions) -> Option<Signal>;

    /// What a daemon that died leaves behind and would stop the next one from starting, removed
    /// once it is gone (`killed`: it got no chance to clean up itself).
    fn remove_leftovers(&self, options: &DaemonOptions, pid: Option<u32>, killed: bool) {
        let _ = (options, pid, killed);
    }

    // ---- forecast ----

    /// What applying `to` over `from` does to a running daemon, per change (`bgpgen diff`).
    fn forecast(&self, from: &Intent, to: &Intent) -> Vec<crate::diff::Impact>;
}

/// A connection to one running daemon: applies configuration and checks it.
#[async_trait::async_trait]
pub trait Driver: Send + Sync {
    /// Brings the daemon to `rendered` (of `intent`): validate, write, reload, verify, roll back
    /// on refusal.
    async fn apply(
        &mut self,
        intent: &Intent,
        rendered: &Rendered,
    ) -> Result<ApplyOutcome, ApplyError>;

    /// Whether the daemon answers; a daemon that lost state it should have (a restarted gobgpd's
    /// paths) gets it back here.
    async fn check(&mut self) -> bool;

    /// bgpgen started the daemon again: what the driver knew of its state is gone.
    fn restarted(&mut self) {}

    /// A spawned daemon started before the source sent anything: what the files on disk say it
    /// should announce (GoBGP; the others have it in their file).
    fn seed_from_disk(&mut self) {}

    /// Before a spawned daemon is stopped without graceful restart: closes its sessions with a
    /// Cease where its SIGTERM would not.
    async fn close_sessions(&self, intent: &Intent) -> Result<(), ApplyError> {
        let _ = intent;
        Ok(())
    }

    /// Reads the sessions back (DESIGN section 10): state, since, flaps, messages and the
    /// prefixes advertised to each neighbor, counted or in full (`depth`). Every command it runs
    /// is bounded by a timeout.
    async fn observe(
        &mut self,
        intent: &Intent,
        depth: observe::Depth,
    ) -> Result<observe::Observation, observe::ObserveError>;

    /// Puts back what `drift` says a neighbor is sent in excess or lacks (a route removed behind
    /// bgpgen's back). `attempt` counts the repairs of a drift that persists, from 1: the first
    /// is the lightest (re-push, re-configure), later ones go further (soft reset out, full
    /// reload). Returns what was done.
    async fn repair(
        &mut self,
        intent: &Intent,
        drift: &[observe::Drift],
        attempt: u32,
    ) -> Result<String, ApplyError>;

    /// A route delta of the engine straight to the daemon, no whole file rendered (O(change)).
    /// `None` when this daemon takes none or the driver does not know what the daemon holds
    /// (start, reconnect): then only a whole apply can tell. The files on disk are not touched
    /// (the agent writes them later) unless [`Driver::deltas_write_files`] (BIRD: the route
    /// files it changes, then `birdc configure`).
    async fn apply_routes(
        &mut self,
        local_as: crate::model::Asn,
        delta: &crate::engine::Delta,
    ) -> Option<Result<ApplyOutcome, ApplyError>> {
        let _ = (local_as, delta);
        None
    }

    /// True when [`Driver::apply_routes`] brings the daemon's files along itself (BIRD reads its
    /// routes from them), so the agent does not render and write them after deltas.
    fn deltas_write_files(&self) -> bool {
        false
    }

    /// Counters of this driver's own work, for `/metrics`.
    fn metrics(&self) -> Vec<DriverMetric> {
        Vec::new()
    }
}

/// One metric family a driver reports (e.g. `bgpgen_gobgp_paths_sent_total`).
#[derive(Debug, Clone, PartialEq)]
pub struct DriverMetric {
    pub name: &'static str,
    pub help: &'static str,
    /// `counter` or `gauge`.
    pub kind: &'static str,
    /// (labels as `{a="b"}` or empty, value).
    pub samples: Vec<(String, f64)>,
}
