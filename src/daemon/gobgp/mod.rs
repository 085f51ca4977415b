//! GoBGP (gobgpd 3.x): sessions from `gobgpd.toml`, routes pushed through the gRPC API.

pub mod api;
pub mod apply;
pub mod check;
pub mod forecast;
pub mod observe;
pub mod peers;
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

pub struct Gobgp;

#[async_trait::async_trait]
impl Daemon for Gobgp {
    fn backend(&self) -> Backend {
        Backend::Gobgp
    }
    fn name(&self) -> &'static str {
        "gobgp"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["gobgpd"]
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
    fn holds_secret(&self, file: &str) -> bool {
        file != "routes.txt"
    }
    fn checker(&self) -> (PathBuf, &'static str) {
        check::checker()
    }
    fn check(&self, dir: &Path, rendered: &Rendered) -> Result<(), ValidateError> {
        check::check(dir, rendered)
    }
    fn driver(&self, options: DaemonOptions) -> Box<dyn Driver> {
        Box::new(apply::GobgpDriver::new(options))
    }
    fn program(&self) -> String {
        spawn::program()
    }
    fn process_name(&self) -> &'static str {
        "gobgpd"
    }
    fn pid_file(&self, options: &DaemonOptions) -> PathBuf {
        spawn::pid_file(options)
    }
    fn bgpgen_writes_pid_file(&self) -> bool {
        true
    }
    fn command(&self, options: &DaemonOptions, config: String, _pid_file: String) -> Vec<String> {
        spawn::command(options, config)
    }
    async fn stop_signal(&self, mode: StopMode, _options: &DaemonOptions) -> Option<Signal> {
        Some(spawn::stop_signal(mode))
    }
    fn remove_leftovers(&self, options: &DaemonOptions, _pid: Option<u32>, killed: bool) {
        if killed {
            spawn::remove_stale_socket(options);
        }
    }
    fn forecast(&self, from: &Intent, to: &Intent) -> Vec<crate::diff::Impact> {
        forecast::forecast(from, to)
    }
}
