//! BIRD 2: `bird.conf` and the route files it includes (`bird-routes/`, [`routes`]), re-read
//! with `birdc configure`.

pub mod apply;
pub mod check;
pub mod forecast;
pub mod observe;
pub mod render;
pub mod routes;
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

pub struct Bird;

#[async_trait::async_trait]
impl Daemon for Bird {
    fn backend(&self) -> Backend {
        Backend::Bird
    }
    fn name(&self) -> &'static str {
        "bird"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["bird2"]
    }
    fn files(&self) -> &'static [(&'static str, &'static str)] {
        render::FILES
    }
    fn templates(&self) -> &'static [(&'static str, &'static str)] {
        render::TEMPLATES
    }
    fn generated(&self, intent: &Intent) -> Vec<(String, String)> {
        routes::files(intent)
    }
    fn generated_dir(&self) -> Option<&'static str> {
        Some(routes::DIR)
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
    fn check(&self, dir: &Path, rendered: &Rendered) -> Result<(), ValidateError> {
        check::check(dir, rendered)
    }
    fn driver(&self, options: DaemonOptions) -> Box<dyn Driver> {
        Box::new(apply::BirdDriver::new(options))
    }
    fn program(&self) -> String {
        spawn::program()
    }
    fn process_name(&self) -> &'static str {
        "bird"
    }
    fn pid_file(&self, options: &DaemonOptions) -> PathBuf {
        spawn::pid_file(options)
    }
    fn command(&self, options: &DaemonOptions, config: String, pid_file: String) -> Vec<String> {
        spawn::command(options, config, pid_file)
    }
    async fn stop_signal(&self, mode: StopMode, options: &DaemonOptions) -> Option<Signal> {
        spawn::stop_signal(mode, options).await
    }
    fn forecast(&self, from: &Intent, to: &Intent) -> Vec<crate::diff::Impact> {
        forecast::forecast(from, to)
    }
}
