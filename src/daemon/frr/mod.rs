//! FRR 8 (bgpd without zebra): `frr.conf`, route deltas through vtysh, other changes through
//! `frr-reload.py`.

pub mod apply;
pub mod check;
pub mod forecast;
pub mod observe;
pub mod render;
pub mod spawn;

use std::path::{Path, PathBuf};

use crate::daemon::driver::DaemonOptions;
use crate::daemon::process::Signal;
use crate::daemon::supervisor::StopMode;
use crate::daemon::validate::ValidateError;
use crate::daemon::{Backend, Daemon, Driver};
use crate::diagnostic::Diagnostic;
use crate::intent::Intent;
use crate::render::{RenderCtx, Rendered};

pub struct Frr;

#[async_trait::async_trait]
impl Daemon for Frr {
    fn backend(&self) -> Backend {
        Backend::Frr
    }
    fn name(&self) -> &'static str {
        "frr"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["bgpd"]
    }
    fn files(&self) -> &'static [(&'static str, &'static str)] {
        render::FILES
    }
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        render::TEMPLATES
    }
    fn password_problem(&self, password: &str) -> Option<String> {
        render::password_problem(password)
    }
    fn adjust(&self, ctx: &mut RenderCtx, notes: &mut Vec<Diagnostic>) {
        render::adjust(ctx, notes)
    }
    fn checker(&self) -> (PathBuf, &'static str) {
        check::checker()
    }
    fn checker_available(&self) -> bool {
        check::available()
    }
    fn check(&self, dir: &Path, rendered: &Rendered) -> Result<(), ValidateError> {
        check::check(dir, rendered)
    }
    fn driver(&self, options: DaemonOptions) -> Box<dyn Driver> {
        Box::new(apply::FrrDriver::new(options))
    }
    fn program(&self) -> String {
        spawn::program()
    }
    fn process_name(&self) -> &'static str {
        "bgpd"
    }
    fn pid_file(&self, options: &DaemonOptions) -> PathBuf {
        spawn::pid_file(options)
    }
    fn command(&self, options: &DaemonOptions, config: String, pid_file: String) -> Vec<String> {
        spawn::command(options, config, pid_file)
    }
    async fn stop_signal(&self, _mode: StopMode, _options: &DaemonOptions) -> Option<Signal> {
        // KeepRoutes and Clean alike: see spawn.rs.
        Some(Signal::Term)
    }
    fn remove_leftovers(&self, _options: &DaemonOptions, pid: Option<u32>, _killed: bool) {
        if let Some(pid) = pid {
            spawn::remove_leftovers(pid);
        }
    }
    fn forecast(&self, from: &Intent, to: &Intent) -> Vec<crate::diff::Impact> {
        forecast::forecast(from, to)
    }
}
