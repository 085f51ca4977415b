//! The sidecar loop (`bgpgen run`) and the one-shot pipeline (`bgpgen apply`): every consistent
//! snapshot from the source is compiled, rendered and handed to the daemon driver; an invalid input
//! or a refused configuration leaves the last good configuration in force and is reported (log,
//! metrics, `/readyz`). A health endpoint serves `/healthz`, `/readyz`, `/metrics` and `/intent`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use thiserror::Error;
use tokio::sync::mpsc;

use crate::compile::compile;
use crate::daemon::driver::{ApplyError, ApplyOutcome, DaemonOptions};
use crate::daemon::supervisor::{Phase, StopMode, Supervisor};
use crate::engine::{Delta, Engine};
use crate::intent::Intent;
use crate::options::{Env, OptionsError, SpeakerArgs};
use crate::render::{Backend, RenderError, Templates, render};
use crate::snapshot::Snapshot;
use crate::source::SourceEvent;
use crate::status::{Stale, Status};

pub struct AgentConfig {
    pub backend: Backend,
    /// The speaker options given on the command line.
    pub args: SpeakerArgs,
    /// The `--options` file, read again before every apply (options kept in Git change live).
    pub options_file: Option<PathBuf>,
    pub env: Env,
    pub templates: Option<PathBuf>,
    pub daemon: DaemonOptions,
    /// How often the daemon is checked (reachability, a restarted GoBGP's lost paths).
    pub check_interval: Duration,
    /// Where to send Events about objects (cluster source only).
    pub events: Option<mpsc::Sender<Vec<crate::events::PendingEvent>>>,
    /// Start and supervise the daemon as a child process (`--spawn`).
    pub spawn: bool,
    /// Withdraw every route when bgpgen exits (`--withdraw-on-exit`). Off, bgpgen's exit leaves
    /// the announcements alone in attach mode; with `--spawn` the routes are withdrawn on exit
    /// anyway when graceful restart is off.
    pub withdraw_on_exit: bool,
    /// `--spawn`: a running daemon that failed this many consecutive checks in a row is
    /// restarted (`--restart-after-failed-checks`).
    pub restart_after_failed_checks: u32,
}

/// Why one pipeline run did not apply.
#[derive(Debug, Error)]
pub enum PipelineError {
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error("options file {path}: {message}")]
    OptionsFile { path: String, message: String },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

impl From<crate::front::FrontError> for PipelineError {
    fn from(e: crate::front::FrontError) -> Self {
        match e {
            crate::front::FrontError::Options(e) => PipelineError::Options(e),
            crate::front::FrontError::OptionsFile { path, message } => {
                PipelineError::OptionsFile { path, message }
            }
        }
    }
}

impl PipelineError {
    /// The CLI exit code (docs/design.md section 5): 2 for invalid input or options, 3 when the daemon
    /// rejected the configuration or could not be reached.
    pub fn exit_code(&self) -> u8 {
        match self {
            PipelineError::Options(_)
            | PipelineError::OptionsFile { .. }
            | PipelineError::Render(_) => 2,
            PipelineError::Apply(_) => 3,
        }
    }

    /// Invalid input (exit 2) rather than a daemon problem (exit 3).
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            PipelineError::Options(_)
                | PipelineError::OptionsFile { .. }
                | PipelineError::Render(_)
        ) || matches!(self, PipelineError::Apply(ApplyError::Rejected(_)))
    }
}

/// The driver of the configured daemon (see [`crate::daemon::Driver`]).
pub struct Driver(Box<dyn crate::daemon::Driver>);

impl Driver {
    pub fn new(backend: Backend, options: DaemonOptions) -> Driver {
        Driver(crate::daemon::of(backend).driver(options))
    }
}

impl std::ops::Deref for Driver {
    type Target = dyn crate::daemon::Driver;
    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

impl std::ops::DerefMut for Driver {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0.as_mut()
    }
}

/// The speaker options of the command line layered over the `--options` file (read again on
/// every call: options kept in Git change live).
fn speaker_args(config: &AgentConfig) -> Result<SpeakerArgs, PipelineError> {
    Ok(crate::front::layered(
        &config.args,
        config.options_file.as_deref(),
    )?)
}

/// A state from the source, as the agent takes it.
enum State {
    Snapshot(Arc<Snapshot>),
    Changes(crate::source::Changes),
}

/// The snapshot itself when nobody else holds it (the manifest source keeps none), else a copy.
fn owned(snapshot: Arc<Snapshot>) -> Snapshot {
    Arc::try_unwrap(snapshot).unwrap_or_else(|shared| (*shared).clone())
}

/// Compiles and renders a snapshot (pure, apart from reading the `--options` file).
pub fn prepare(
    config: &AgentConfig,
    templates: &Templates,
    snapshot: &Snapshot,
) -> Result<(Intent, crate::render::Rendered), PipelineError> {
    let args = speaker_args(config)?;
    let mut resolved = crate::front::resolved(&args, &config.env, snapshot)?;
    // --allowed-source-addresses: each neighbor's local address from the kernel's route to it.
    crate::route_lookup::pin_local_addresses(&mut resolved.options)?;
    let intent = compile(snapshot, &resolved.options, &resolved.diagnostics);
    let rendered = render(&intent, config.backend, templates, true)?;
    Ok((intent, rendered))
}

/// Compiles and renders a snapshot and applies it with the driver.
pub async fn apply_snapshot(
    config: &AgentConfig,
    templates: &Templates,
    driver: &mut Driver,
    snapshot: &Snapshot,
) -> Result<(Intent, ApplyOutcome), PipelineError> {
    let (intent, rendered) = prepare(config, templates, snapshot)?;
    for n in &rendered.notes {
        tracing::warn!(note = %n, "render");
    }
    let outcome = driver.apply(&intent, &rendered).await?;
    Ok((intent, outcome))
}

/// The same intent without routes: what "withdraw everything" means for every driver.
fn withdrawn(intent: &Intent) -> Intent {
    let mut empty = intent.clone();
    empty.routes.clear();
    empty.seal();
    empty
}

/// How long a refused snapshot waits before it is tried again (a new snapshot is tried at once).
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// After route deltas the daemon files are written whole (for the daemon's next start, a crash
/// of bgpgen included, and for review; the daemon already runs the deltas), right after the
/// delta when the last write is long enough ago, else later: writing them costs O(routes) where
/// a delta costs O(change), so under steady change they are written at most once per this many
/// times the last write took (at most 1/50 of the time spent writing files), and at most
/// [`FILE_SYNC`] apart.
const FILE_COST_SHARE: u32 = 50;
const FILE_SYNC: Duration = Duration::from_secs(5);
/// `--spawn` with a configuration on disk: how long the daemon waits for the source's first
/// snapshot before it starts from the file (the start is then redone at once if the snapshot
/// changes `[global]`, so waiting a little avoids a restart).
const FIRST_SNAPSHOT_GRACE: Duration = Duration::from_secs(1);
/// How often a daemon that was just started is asked whether it answers.
const START_POLL: Duration = Duration::from_millis(100);
/// The longest bgpgen waits for a spawned daemon to stop on SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// The bound of the withdrawal on exit: SIGTERM never hangs on a daemon that does not answer.
const WITHDRAW_TIMEOUT: Duration = Duration::from_secs(5);

/// Hands the memory freed by an apply (the previous intent, rendered files, parse buffers: tens of
/// MB at 100k pods) back to the system. glibc keeps freed blocks in per-thread arenas, so without
/// this the sidecar's RSS climbed from 150 to 390 MB over 50 changes with a flat heap
/// (BENCHMARKS.md, sidecar memory).
fn release_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free pages of the allocator's arenas to the kernel; it
    // takes the arena locks itself and touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The sidecar's state between events.
struct Agent {
    config: AgentConfig,
    templates: Templates,
    driver: Driver,
    /// `--spawn` only.
    supervisor: Option<Supervisor>,
    status: Arc<Mutex<Status>>,
    /// The cluster state and the intent it compiles to, kept current per object change
    /// ([`Engine`]); `None` until option resolution succeeded once (the state waits in
    /// `waiting` until then).
    engine: Option<Engine>,
    /// The source's state while no engine exists yet.
    waiting: Option<Snapshot>,
    /// The relists streamed into `waiting` and not complete yet (handed to the engine).
    waiting_relists: crate::relist::Relists,
    /// What changed in the engine since the intent in force (`Status::intent`) was applied.
    unapplied: Delta,
    /// Something may have changed since the last apply: apply (or try) again.
    pending: bool,
    /// The daemon runs exactly the intent in force, so a route delta can be sent on its own;
    /// false after a start, a failure or anything else that leaves its state unknown.
    in_sync: bool,
    /// The daemon files on disk are behind the intent in force (route deltas were applied
    /// without rendering them), and when they are written.
    files_due: Option<tokio::time::Instant>,
    /// The last write of the files after deltas, and how long it took ([`FILE_COST_SHARE`]).
    files_written: Option<(tokio::time::Instant, Duration)>,
    /// A refused apply is tried again after a while (a template or the daemon may be fixed in
    /// the meantime), not on every check, so a persistent error does not flood the logs.
    retry: Option<Instant>,
    /// Consecutive checks the daemon did not answer.
    failed_checks: u32,
    /// `--spawn`: the intent hash gobgpd was last restarted for (a `[global]` change), so that a
    /// restart that did not help is reported instead of repeated.
    restarted_for: Option<String>,
    /// The `--auth-password-file`, watched for rotation (a Secret volume swaps it).
    secret_file: crate::source::watch::SecretFile,
    /// Reads the sessions back after every apply and on every check (DESIGN section 10).
    observer: crate::observer::Observer,
    /// The render notes of the configuration in force (what the daemon cannot express), so
    /// that each is logged once, when it appears.
    notes: Vec<crate::diagnostic::Diagnostic>,
    /// The last apply failure logged, so that a failure repeated on every retry (a daemon that
    /// does not answer) is logged at error once, then at debug until something changes.
    last_failure: Option<String>,
}

fn update(status: &Mutex<Status>, f: impl FnOnce(&mut Status)) {
    if let Ok(mut s) = status.lock() {
        f(&mut s);
    }
}

impl Agent {
    fn daemon(&self) -> &'static str {
        self.config.backend.name()
    }

    /// Graceful restart as the intent in force says; unknown (nothing applied yet) counts as on,
    /// so that bgpgen never drops routes it is not sure the peers should drop.
    fn graceful(&self) -> bool {
        self.status
            .lock()
            .ok()
            .and_then(|s| s.intent.as_ref().map(|i| i.bgp.graceful_restart.enabled))
            .unwrap_or(true)
    }

    fn stop_mode(&self) -> StopMode {
        if self.graceful() {
            StopMode::KeepRoutes
        } else {
            StopMode::Clean
        }
    }

    /// True when the daemon can take an apply now: with `--spawn`, once it answered since its
    /// start.
    fn daemon_ready(&self) -> bool {
        self.supervisor
            .as_ref()
            .is_none_or(|s| matches!(s.phase(), Phase::Running { .. }))
    }

    /// A new state from the source: a whole snapshot or object changes.
    fn on_state(&mut self, state: State) {
        update(&self.status, |s| {
            s.source_up = true;
            // A valid input again: whatever was rejected before is no longer the input.
            s.clear_stale(Stale::InputRejected);
        });
        match (&mut self.engine, state) {
            (Some(engine), State::Snapshot(snapshot)) => {
                let delta = engine.apply_all(crate::engine::relist_all(owned(snapshot)));
                self.unapplied.merge(delta);
            }
            (Some(engine), State::Changes(changes)) => {
                let relisting = engine.relisting();
                let delta = engine.apply_all(changes.events);
                // The manifest source also sends when only the options file or a user template
                // changed (no object event: the apply reads them again), so only the cluster's
                // empty deltas are skipped.
                let cluster = engine.snapshot().origin == crate::snapshot::Origin::Cluster;
                if cluster && delta.is_empty() && self.in_sync {
                    // Nothing to apply: an equal object (a status heartbeat), or a relist
                    // streamed on and not complete yet. A relist that ended without a change
                    // freed its pages and list buffers: no apply will hand them back.
                    if relisting && !engine.relisting() {
                        release_freed_memory();
                    }
                    return;
                }
                self.unapplied.merge(delta);
            }
            (None, State::Snapshot(snapshot)) => {
                self.waiting = Some(owned(snapshot));
                self.waiting_relists = Default::default();
            }
            (None, State::Changes(changes)) => {
                let waiting = self
                    .waiting
                    .get_or_insert_with(|| Snapshot::new(crate::snapshot::Origin::Cluster));
                changes.apply_to(waiting, &mut self.waiting_relists);
            }
        }
        if let Some(sup) = &mut self.supervisor {
            // The first configuration to start the daemon from.
            sup.start_soon();
        }
        self.pending = true;
    }

    /// Reads the options (the `--options` file again: options kept in Git change live) and
    /// resolves them against the state held; the engine is created on the first success, and
    /// takes new options when they differ. The intent is then the engine's.
    fn resolve(&mut self) -> Result<&Engine, PipelineError> {
        let args = speaker_args(&self.config)?;
        let snapshot = match (&self.engine, &self.waiting) {
            (Some(engine), _) => engine.snapshot(),
            (None, Some(waiting)) => waiting,
            (None, None) => {
                return Err(PipelineError::OptionsFile {
                    path: "(source)".into(),
                    message: "no cluster state received yet".into(),
                });
            }
        };
        let mut resolved = crate::front::resolved(&args, &self.config.env, snapshot)?;
        // --allowed-source-addresses: each neighbor's local address from the kernel's route to it.
        crate::route_lookup::pin_local_addresses(&mut resolved.options)?;
        match &mut self.engine {
            Some(engine) => {
                if *engine.options() != resolved.options || engine.prior() != resolved.diagnostics {
                    let mut delta = engine.set_options(resolved.options, resolved.diagnostics);
                    // Options are rare to change and some (the password) are not in the
                    // header's digest: the daemon files are rendered and applied whole.
                    delta.session = true;
                    self.unapplied.merge(delta);
                }
            }
            None => {
                let snapshot = self
                    .waiting
                    .take()
                    .unwrap_or_else(|| Snapshot::new(crate::snapshot::Origin::Cluster));
                self.engine = Some(
                    Engine::new(snapshot, resolved.options, resolved.diagnostics)
                        .with_relists(std::mem::take(&mut self.waiting_relists)),
                );
                // Nothing of it is in force yet: the first apply is a whole one.
                self.in_sync = false;
            }
        }
        // Just set when it was not.
        self.engine
            .as_ref()
            .ok_or_else(|| PipelineError::OptionsFile {
                path: "(source)".into(),
                message: "no cluster state received yet".into(),
            })
    }

    /// `--spawn`: starts the daemon from the latest snapshot's configuration (written first,
    /// as the daemon reads it at start), else from the file on disk (the last applied one: a
    /// restarted bgpgen whose source does not answer yet still brings the last good routes
    /// back).
    async fn start_daemon(&mut self) {
        if self
            .supervisor
            .as_ref()
            .is_none_or(|sup| sup.pid().is_some())
        {
            return;
        }
        let main = self.config.backend.files()[0].0;
        let on_disk = self.config.daemon.config_file.exists();
        if self.engine.is_some() || self.waiting.is_some() {
            let written = self.render_whole().and_then(|(_, rendered)| {
                if crate::daemon::driver::unchanged_on_disk(&self.config.daemon, main, &rendered) {
                    Ok(())
                } else {
                    crate::daemon::driver::validate_and_write(&self.config.daemon, main, &rendered)
                        .map_err(PipelineError::from)
                }
            });
            if let Err(e) = written {
                if on_disk {
                    tracing::error!(error = %e, "the current intent cannot be rendered; starting the daemon from the configuration on disk");
                } else {
                    let message = format!(
                        "no configuration to start {} from: {e}",
                        self.config.backend.name()
                    );
                    if let Some(sup) = &mut self.supervisor {
                        sup.start_failed(message.clone());
                    }
                    update(&self.status, |s| s.set_stale(Stale::ApplyFailed, message));
                    return;
                }
            }
        } else if !on_disk {
            // Nothing to start from until the source sends its first snapshot.
            return;
        }
        let Some(sup) = &mut self.supervisor else {
            return;
        };
        let started = sup.start();
        let starts = sup.starts;
        let failure = sup.last_failure.clone();
        match started {
            Ok(()) => {
                self.driver.restarted();
                self.observer.reset();
                self.in_sync = false;
                if self.engine.is_none() && self.waiting.is_none() {
                    self.driver.seed_from_disk();
                }
                update(&self.status, |s| s.daemon_starts = starts);
            }
            Err(_) => {
                let detail = failure.unwrap_or_else(|| "start failed".into());
                update(&self.status, |s| {
                    s.daemon_reachable = false;
                    s.set_stale(Stale::DaemonUnreachable, detail);
                });
            }
        }
    }

    /// `--spawn`, while a started daemon has not answered yet.
    async fn poll_starting(&mut self) {
        let Some(sup) = &mut self.supervisor else {
            return;
        };
        if sup.reap().is_some() {
            let detail = sup.last_failure.clone().unwrap_or_default();
            update(&self.status, |s| {
                s.daemon_reachable = false;
                s.set_stale(Stale::DaemonUnreachable, detail);
            });
            return;
        }
        if self.driver.check().await {
            sup.answered();
            tracing::info!(daemon = %self.config.backend, pid = sup.pid(), "daemon answers");
            self.failed_checks = 0;
            update(&self.status, |s| {
                s.daemon_reachable = true;
                s.clear_stale(Stale::DaemonUnreachable);
            });
            // Whatever it was started from, bring it to the latest intent.
            self.in_sync = false;
            self.pending = true;
            return;
        }
        if sup.start_timed_out() {
            let message = format!(
                "{} started but did not answer on its control socket within {:?}",
                self.config.backend.name(),
                crate::daemon::supervisor::START_TIMEOUT
            );
            sup.stop(StopMode::KeepRoutes, Duration::from_secs(2)).await;
            sup.start_failed(message.clone());
            update(&self.status, |s| {
                s.set_stale(Stale::DaemonUnreachable, message)
            });
        }
    }

    /// Every `--check-interval`: the daemon checked (a restarted GoBGP gets its paths back),
    /// a spawned daemon that exited or stopped answering started again, refused snapshots
    /// retried.
    async fn on_tick(&mut self) {
        if self.secret_file.changed() {
            tracing::info!("the password file changed; applying it");
            self.pending = true;
        }
        if let Some(at) = self.retry
            && at.elapsed() >= RETRY_AFTER
        {
            self.pending = true;
            self.retry = None;
        }
        if self
            .files_due
            .is_some_and(|due| tokio::time::Instant::now() >= due)
            && !self.pending
        {
            self.write_files();
        }
        if let Some(sup) = &mut self.supervisor {
            if sup.reap().is_some() {
                let detail = sup.last_failure.clone().unwrap_or_default();
                update(&self.status, |s| {
                    *s.daemon_restarts.entry("exited").or_default() += 1;
                    s.daemon_reachable = false;
                    s.set_stale(Stale::DaemonUnreachable, detail);
                });
            }
            if !matches!(sup.phase(), Phase::Running { .. }) {
                // Starting: polled faster elsewhere; stopped: the start timer runs.
                return;
            }
        }
        let reachable = self.driver.check().await;
        let driver_metrics = self.driver.metrics();
        update(&self.status, |s| {
            s.daemon_reachable = reachable;
            s.driver_metrics = driver_metrics;
        });
        if reachable {
            self.failed_checks = 0;
            update(&self.status, |s| s.clear_stale(Stale::DaemonUnreachable));
            self.observer
                .observe(&mut *self.driver, &self.status, false)
                .await;
            return;
        }
        self.failed_checks += 1;
        let limit = self.config.restart_after_failed_checks.max(1);
        let detail = format!(
            "{} does not answer ({} consecutive failed checks)",
            self.daemon(),
            self.failed_checks
        );
        tracing::warn!(daemon = %self.config.backend, failed = self.failed_checks, "the daemon does not answer");
        update(&self.status, |s| {
            s.set_stale(Stale::DaemonUnreachable, detail)
        });
        if self.supervisor.is_some() && self.failed_checks >= limit {
            let mode = self.stop_mode();
            let failed = self.failed_checks;
            if let Some(sup) = &mut self.supervisor {
                tracing::error!(daemon = %self.config.backend, pid = sup.pid(), failed, ?mode,
                    "the daemon is alive but does not answer; restarting it");
                let reason = format!(
                    "{} did not answer {failed} consecutive checks; replaced",
                    self.config.backend.name()
                );
                sup.replace(mode, reason).await;
            }
            self.failed_checks = 0;
            update(&self.status, |s| {
                *s.daemon_restarts.entry("unreachable").or_default() += 1
            });
            // The changes it missed are applied again once the new one answers.
            self.in_sync = false;
            self.pending = true;
        }
    }

    /// The whole intent of the state held, rendered (user templates are read again on every
    /// whole apply, so an edit takes effect, or is refused, without a restart).
    fn render_whole(&mut self) -> Result<(Intent, crate::render::Rendered), PipelineError> {
        let templates = match &self.config.templates {
            Some(dir) => Templates::load(Some(dir))?,
            None => Templates::builtin(),
        };
        let intent = self.resolve()?.intent();
        let rendered = render(&intent, self.config.backend, &templates, true)?;
        Ok((intent, rendered))
    }

    /// Writes the daemon files of the intent in force after route deltas were applied without
    /// them (for a restart of the daemon, and for review); the daemon already runs what they
    /// say, so they are not checked or reloaded again. Waits while changes are not applied yet.
    fn write_files(&mut self) {
        if self.pending || !self.in_sync || !self.unapplied.is_empty() {
            return;
        }
        self.files_due = None;
        let Some(engine) = &self.engine else {
            return;
        };
        let started = tokio::time::Instant::now();
        let intent = engine.intent();
        let written = render(&intent, self.config.backend, &self.templates, true)
            .map_err(PipelineError::from)
            .and_then(|rendered| {
                crate::daemon::driver::write_rendered(
                    &self.config.daemon,
                    self.config.backend.files()[0].0,
                    &rendered,
                )
                .map_err(PipelineError::from)
            });
        match written {
            Ok(()) => {
                self.files_written = Some((started, started.elapsed()));
                tracing::debug!(hash = %intent.hash, "daemon files written");
            }
            Err(e) => {
                tracing::warn!(error = %e, "writing the daemon files failed; retrying");
                self.files_due = Some(tokio::time::Instant::now() + FILE_SYNC);
            }
        }
        release_freed_memory();
    }

    /// Applies what changed, if the daemon can take it: the route delta alone when the daemon
    /// runs the intent in force and only routes changed (GoBGP paths, FRR `network` lines,
    /// BIRD route files), else the whole intent rendered (first apply, session changes, user
    /// templates, after a failure).
    async fn apply_pending(&mut self) {
        if !self.daemon_ready() || !self.pending {
            return;
        }
        self.pending = false;
        if self.engine.is_none() && self.waiting.is_none() {
            // Nothing received from the source yet.
            return;
        }
        let started = Instant::now();
        if let Err(e) = self.resolve() {
            self.apply_failed(e, None, started).await;
            release_freed_memory();
            return;
        }
        let local_as = self
            .status
            .lock()
            .ok()
            .and_then(|s| s.intent.as_ref().map(|i| i.speaker.local_as));
        let whole = !self.in_sync || self.unapplied.session || self.config.templates.is_some();
        if let (false, Some(local_as)) = (whole, local_as) {
            let delta = std::mem::take(&mut self.unapplied);
            let result = self.driver.apply_routes(local_as, &delta).await;
            match result {
                Some(Ok(outcome)) => {
                    self.delta_applied(delta, outcome, started);
                    if self
                        .files_due
                        .is_some_and(|due| due <= tokio::time::Instant::now())
                    {
                        // After a quiet spell: the daemon has the change, now the files.
                        self.write_files();
                    }
                    release_freed_memory();
                    return;
                }
                Some(Err(e)) => {
                    // Repaired at once by a whole apply (which reports its own failure).
                    tracing::warn!(error = %e, "route delta not applied; applying the whole intent");
                }
                None => {}
            }
            let mut back = delta;
            back.merge(std::mem::take(&mut self.unapplied));
            self.unapplied = back;
            self.in_sync = false;
        }
        self.apply_whole(started).await;
        release_freed_memory();
    }

    /// A route delta applied: the intent in force follows it, the files are written later.
    fn delta_applied(&mut self, delta: Delta, outcome: ApplyOutcome, started: Instant) {
        let Some(engine) = &self.engine else {
            return;
        };
        let hash = engine.hash().to_string();
        let routes = engine.route_count();
        if let Some(events) = &self.config.events
            && !delta.diagnostics_added.is_empty()
        {
            let _ = events.try_send(crate::events::events_for_diagnostics(
                &delta.diagnostics_added,
                engine.snapshot(),
            ));
        }
        self.retry = None;
        self.restarted_for = None;
        self.last_failure = None;
        self.failed_checks = 0;
        if !delta.is_empty() && !self.driver.deltas_write_files() {
            let now = tokio::time::Instant::now();
            let due = match self.files_written {
                Some((at, took)) => (at + (took * FILE_COST_SHARE).min(FILE_SYNC)).max(now),
                None => now,
            };
            self.files_due = Some(self.files_due.map_or(due, |d| d.min(due)));
        }
        let elapsed = started.elapsed();
        log_delta(&delta, &outcome, elapsed, routes, &hash);
        update(&self.status, |s| {
            if let Some(intent) = &mut s.intent {
                // Not copied: the read-back's share of it is dropped before the next apply.
                delta.apply_to(Arc::make_mut(intent), &hash);
            }
            record_success(s, &outcome, elapsed);
        });
        let driver_metrics = self.driver.metrics();
        update(&self.status, |s| s.driver_metrics = driver_metrics);
    }

    /// The whole intent rendered and handed to the driver.
    async fn apply_whole(&mut self, started: Instant) {
        let prepared = self.render_whole();
        let mut notes = Vec::new();
        let (result, wanted) = match prepared {
            Ok((intent, rendered)) => {
                let hash = intent.hash.clone();
                notes.clone_from(&rendered.notes);
                let r = self.driver.apply(&intent, &rendered).await;
                (
                    r.map(|o| (intent, o)).map_err(PipelineError::from),
                    Some(hash),
                )
            }
            Err(e) => (Err(e), None),
        };
        let driver_metrics = self.driver.metrics();
        update(&self.status, |s| s.driver_metrics = driver_metrics);
        let (intent, outcome) = match result {
            Ok(applied) => applied,
            Err(e) => {
                self.apply_failed(e, wanted, started).await;
                return;
            }
        };
        self.retry = None;
        self.restarted_for = None;
        self.in_sync = true;
        self.files_due = None;
        self.unapplied = Delta::default();
        let elapsed = started.elapsed();
        if let Some(events) = &self.config.events
            && let Some(engine) = &self.engine
        {
            let _ = events.try_send(crate::events::events_for(&intent, engine.snapshot()));
        }
        for n in notes.iter().filter(|n| !self.notes.contains(n)) {
            log_diagnostic(n, "render");
        }
        self.notes = notes;
        self.last_failure = None;
        self.failed_checks = 0;
        update(&self.status, |s| {
            // What changed against the intent in force, while it is still at hand.
            log_apply(s.intent.as_deref(), &intent, &outcome, elapsed);
            s.intent = Some(Arc::new(intent));
            record_success(s, &outcome, elapsed);
        });
        self.observer
            .observe(&mut *self.driver, &self.status, true)
            .await;
    }

    /// An apply that failed: reported, the last good configuration stays in force, and it is
    /// tried again (at once when the daemon answers again, else after [`RETRY_AFTER`]).
    async fn apply_failed(&mut self, e: PipelineError, wanted: Option<String>, started: Instant) {
        self.in_sync = false;
        if let PipelineError::Apply(ApplyError::NeedsRestart { message, .. }) = &e
            && self.supervisor.is_some()
            && self.restarted_for != wanted
        {
            // A GoBGP [global] change: the new file is on disk; a new gobgpd starts with it,
            // then the intent is applied again.
            let message = message.clone();
            tracing::warn!(%message, "restarting the daemon to apply it");
            let mode = self.stop_mode();
            self.restarted_for = wanted.clone();
            if let Some(sup) = &mut self.supervisor {
                sup.stop(mode, Duration::from_secs(3)).await;
                sup.start_soon();
            }
            update(&self.status, |s| {
                *s.daemon_restarts.entry("config").or_default() += 1;
                s.set_stale(Stale::RestartNeeded, message);
                s.wanted_hash = wanted;
            });
            self.pending = true;
            return;
        }
        let message = e.to_string();
        let applied = self.status.lock().is_ok_and(|s| s.intent.is_some());
        let what = if applied {
            "apply failed; the last good configuration stays in force"
        } else {
            "apply failed; nothing has been applied yet (the daemon keeps what it was started with)"
        };
        if self.last_failure.as_deref() == Some(message.as_str()) {
            tracing::debug!(error = %message, "{what} (again)");
        } else {
            tracing::error!(error = %message, "{what}");
            self.last_failure = Some(message.clone());
        }
        let unreachable = matches!(e, PipelineError::Apply(ApplyError::Unreachable { .. }));
        let restart = matches!(e, PipelineError::Apply(ApplyError::NeedsRestart { .. }));
        update(&self.status, |s| {
            if e.is_input() {
                s.input_errors += 1
            } else {
                s.applies_failed += 1
            }
            if unreachable {
                s.daemon_reachable = false;
                s.set_stale(Stale::DaemonUnreachable, message.clone());
            } else if restart {
                s.set_stale(Stale::RestartNeeded, message.clone());
            } else {
                s.set_stale(Stale::ApplyFailed, message.clone());
            }
            s.last_apply = Some(started.elapsed());
            s.last_apply_result = Some(crate::report::LastApply {
                result: "failed".into(),
                time: crate::report::rfc3339(SystemTime::now()),
                duration_ms: Some(started.elapsed().as_millis() as u64),
                how: None,
                error: Some(crate::text::clip(&message, 2000)),
            });
            s.last_error = Some(message);
            s.wanted_hash = wanted;
        });
        // A daemon that is not up yet gets the intent once it answers; anything else is tried
        // again after a while.
        if unreachable {
            self.pending = true;
        } else {
            self.retry = Some(Instant::now());
        }
    }

    /// Withdraws every route of `intent` (the intent in force) before the exit: as one route
    /// delta when the daemon takes one (GoBGP paths, FRR `no network` lines in one vtysh call),
    /// then the empty configuration written so that a restart does not announce the routes from
    /// disk; else the empty configuration applied whole. A whole FRR apply runs `bgpd -C` and
    /// frr-reload.py, seconds on a loaded node, more than `docker stop`'s or a pod's grace.
    async fn withdraw_all(&mut self, intent: &Intent) -> Result<(), String> {
        let empty = withdrawn(intent);
        let rendered = render(&empty, self.config.backend, &self.templates, true)
            .map_err(|e| e.to_string())?;
        let timed_out = || format!("no answer within {WITHDRAW_TIMEOUT:?}");
        if self.in_sync && self.config.templates.is_none() {
            let delta = Delta {
                removed: intent.routes.clone(),
                ..Delta::default()
            };
            let local_as = intent.speaker.local_as;
            match tokio::time::timeout(WITHDRAW_TIMEOUT, self.driver.apply_routes(local_as, &delta))
                .await
            {
                Ok(Some(Ok(_))) => {
                    return crate::daemon::driver::write_rendered(
                        &self.config.daemon,
                        self.config.backend.files()[0].0,
                        &rendered,
                    )
                    .map_err(|e| e.to_string());
                }
                Ok(Some(Err(e))) => tracing::warn!(
                    error = %e,
                    "withdrawing as a route delta failed; applying the empty configuration whole"
                ),
                Ok(None) => {}
                Err(_) => return Err(timed_out()),
            }
        }
        match tokio::time::timeout(WITHDRAW_TIMEOUT, self.driver.apply(&empty, &rendered)).await {
            Ok(r) => r.map(drop).map_err(|e| e.to_string()),
            Err(_) => Err(timed_out()),
        }
    }

    /// On SIGTERM/SIGINT (docs/design.md section 9). Attach mode: nothing changes at the daemon, which
    /// keeps the last good configuration (a bgpgen restart or upgrade is no outage), unless
    /// `--withdraw-on-exit`. `--spawn`: with graceful restart off, the routes are withdrawn and
    /// the daemon stopped; with it on, the daemon is stopped the way that keeps the peers' routes
    /// (no Cease) while the speaker restarts.
    async fn shutdown(&mut self) {
        if self.files_due.is_some() {
            self.write_files();
        }
        let intent = self.status.lock().ok().and_then(|s| s.intent.clone());
        let graceful = self.graceful();
        let spawn = self.supervisor.is_some();
        let withdraw = self.config.withdraw_on_exit || (spawn && !graceful);
        if withdraw && let Some(intent) = &intent {
            match self.withdraw_all(intent).await {
                Ok(()) => tracing::info!(
                    routes = intent.announced().count(),
                    "shutting down; routes withdrawn"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "shutting down; withdrawing the routes failed")
                }
            }
            if spawn && let Err(e) = self.driver.close_sessions(intent).await {
                tracing::error!(error = %e, "shutting down; closing the sessions failed");
            }
        } else if !spawn && intent.is_some() {
            tracing::info!(
                "shutting down; the daemon keeps announcing the last applied routes (--withdraw-on-exit withdraws them)"
            );
        } else if !spawn {
            tracing::info!("shutting down; nothing was applied, the daemon is left as it is");
        }
        if let Some(sup) = &mut self.supervisor {
            let mode = if withdraw {
                StopMode::Clean
            } else {
                tracing::info!(
                    "shutting down; graceful restart is on: stopping the daemon without a Cease, the peers keep the routes"
                );
                StopMode::KeepRoutes
            };
            sup.stop(mode, STOP_GRACE).await;
        }
    }
}

/// A successful apply (whole or a route delta) in the status: counted, every stale reason an
/// apply clears cleared, and its result for `/status`.
fn record_success(s: &mut Status, outcome: &ApplyOutcome, elapsed: Duration) {
    match outcome {
        ApplyOutcome::Unchanged => s.applies_unchanged += 1,
        ApplyOutcome::Applied(_) => s.applies_ok += 1,
    }
    for why in [
        Stale::FirstApply,
        Stale::ApplyFailed,
        Stale::RestartNeeded,
        Stale::DaemonUnreachable,
    ] {
        s.clear_stale(why);
    }
    s.daemon_reachable = true;
    s.last_apply = Some(elapsed);
    s.last_success = Some(SystemTime::now());
    s.last_error = None;
    s.wanted_hash = None;
    record_last_apply(s, outcome, elapsed);
}

/// The last apply's result for `/status`. An apply that changed nothing leaves the last one that
/// did in the report: that is the configuration in force.
fn record_last_apply(s: &mut Status, outcome: &ApplyOutcome, elapsed: Duration) {
    let keep = matches!(outcome, ApplyOutcome::Unchanged)
        && s.last_apply_result
            .as_ref()
            .is_some_and(|l| l.result == "ok");
    if !keep {
        s.last_apply_result = Some(crate::report::LastApply {
            result: match outcome {
                ApplyOutcome::Unchanged => "unchanged",
                ApplyOutcome::Applied(_) => "ok",
            }
            .into(),
            time: crate::report::rfc3339(SystemTime::now()),
            duration_ms: Some(elapsed.as_millis() as u64),
            how: match outcome {
                ApplyOutcome::Unchanged => None,
                ApplyOutcome::Applied(how) => Some(how.clone()),
            },
            error: None,
        });
    }
}

/// At most this many route changes (and new diagnostics) are logged one by one per apply; the
/// rest are counted (the first apply of a large cluster announces 100,000 routes).
const LOGGED_CHANGES: usize = 50;

/// Logs an apply: one line with what it did and the counts of routes announced, withdrawn and
/// changed, one line per changed route with its objects (at most [`LOGGED_CHANGES`]), and each
/// diagnostic that appeared (at its level) or went away (info), once.
fn log_apply(previous: Option<&Intent>, intent: &Intent, outcome: &ApplyOutcome, took: Duration) {
    let summary = crate::diff::summarize(previous, intent, LOGGED_CHANGES);
    let ms = took.as_millis() as u64;
    let routes = intent.announced().count();
    let all = summary.added + summary.withdrawn + summary.changed;
    match outcome {
        // The daemon already runs it (a spawned daemon started from this configuration), but it
        // is news for the log: the first intent in force.
        ApplyOutcome::Unchanged if all > 0 => tracing::info!(
            added = summary.added,
            withdrawn = summary.withdrawn,
            changed = summary.changed,
            routes,
            hash = %intent.hash,
            "in force (the daemon already runs this configuration)"
        ),
        ApplyOutcome::Unchanged => tracing::debug!(routes, hash = %intent.hash, "unchanged"),
        ApplyOutcome::Applied(how) => tracing::info!(
            %how,
            added = summary.added,
            withdrawn = summary.withdrawn,
            changed = summary.changed,
            routes,
            hash = %intent.hash,
            ms,
            "applied"
        ),
    }
    for c in &summary.routes {
        let sources = |side: &Option<crate::diff::RouteSide>| {
            side.as_ref()
                .map(|s| {
                    s.sources
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        match c.change {
            crate::diff::Change::Add => {
                tracing::info!(prefix = %c.prefix, sources = %sources(&c.to), "route announced")
            }
            crate::diff::Change::Withdraw => {
                tracing::info!(prefix = %c.prefix, sources = %sources(&c.from), "route withdrawn")
            }
            _ => tracing::info!(
                prefix = %c.prefix,
                from = %sources(&c.from),
                to = %sources(&c.to),
                next_hop = %c.to.as_ref().map(|s| s.next_hop.to_string()).unwrap_or_default(),
                "route changed"
            ),
        }
    }
    if all > summary.routes.len() {
        tracing::info!(
            more = all - summary.routes.len(),
            "further route changes not listed (/intent has every route)"
        );
    }
    for d in &summary.new_diagnostics {
        log_diagnostic(d, "intent");
    }
    for d in &summary.gone_diagnostics {
        tracing::info!(object = %d.object, was = %d.message, "resolved");
    }
    if summary.more_diagnostics > 0 {
        tracing::warn!(
            more = summary.more_diagnostics,
            "further diagnostics changed, not listed (/intent has them all)"
        );
    }
}

/// Logs an apply of a route delta as [`log_apply`] logs a whole one, from the delta itself.
fn log_delta(delta: &Delta, outcome: &ApplyOutcome, took: Duration, routes: usize, hash: &str) {
    let ms = took.as_millis() as u64;
    let (added, withdrawn, changed) = (delta.added.len(), delta.removed.len(), delta.changed.len());
    match outcome {
        ApplyOutcome::Unchanged => {
            tracing::debug!(added, withdrawn, changed, routes, %hash, "unchanged at the daemon")
        }
        ApplyOutcome::Applied(how) => tracing::info!(
            %how,
            added,
            withdrawn,
            changed,
            routes,
            %hash,
            ms,
            "applied"
        ),
    }
    let sources = |r: &crate::intent::Route| {
        r.sources
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut logged = 0;
    for r in &delta.added {
        if logged < LOGGED_CHANGES {
            tracing::info!(prefix = %r.prefix, sources = %sources(r), "route announced");
        }
        logged += 1;
    }
    for r in &delta.removed {
        if logged < LOGGED_CHANGES {
            tracing::info!(prefix = %r.prefix, sources = %sources(r), "route withdrawn");
        }
        logged += 1;
    }
    for c in &delta.changed {
        if logged < LOGGED_CHANGES {
            tracing::info!(
                prefix = %c.after.prefix,
                from = %sources(&c.before),
                to = %sources(&c.after),
                next_hop = %c.after.next_hop,
                "route changed"
            );
        }
        logged += 1;
    }
    if logged > LOGGED_CHANGES {
        tracing::info!(
            more = logged - LOGGED_CHANGES,
            "further route changes not listed (/intent has every route)"
        );
    }
    for d in delta.diagnostics_added.iter().take(LOGGED_CHANGES) {
        log_diagnostic(d, "intent");
    }
    for d in delta.diagnostics_removed.iter().take(LOGGED_CHANGES) {
        tracing::info!(object = %d.object, was = %d.message, "resolved");
    }
}

/// A diagnostic as a log event at its own level; `source` says where it comes from (`intent`:
/// compile; `render`: what the daemon cannot express).
fn log_diagnostic(d: &crate::diagnostic::Diagnostic, source: &str) {
    use crate::diagnostic::Level;
    match d.level {
        Level::Error => tracing::error!(object = %d.object, source, "{}", d.message),
        Level::Warning => tracing::warn!(object = %d.object, source, "{}", d.message),
        Level::Info => tracing::info!(object = %d.object, source, "{}", d.message),
    }
}

/// Runs the sidecar until SIGTERM/SIGINT.
pub async fn run(
    config: AgentConfig,
    mut source: mpsc::Receiver<SourceEvent>,
    status: Arc<Mutex<Status>>,
) -> Result<(), PipelineError> {
    use tokio::signal::unix::{SignalKind, signal};
    let templates = Templates::load(config.templates.as_deref())?;
    let driver = Driver::new(config.backend, config.daemon.clone());
    let supervisor = config
        .spawn
        .then(|| Supervisor::new(config.backend, config.daemon.clone()));
    let mut ticker = tokio::time::interval(config.check_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| ApplyError::io(std::path::Path::new("SIGTERM handler"), e))?;
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|e| ApplyError::io(std::path::Path::new("SIGINT handler"), e))?;
    let secret_file =
        crate::source::watch::SecretFile::new(&config.args, config.options_file.as_deref());
    let mut agent = Agent {
        config,
        templates,
        driver,
        supervisor,
        status,
        engine: None,
        waiting: None,
        waiting_relists: Default::default(),
        unapplied: Delta::default(),
        pending: false,
        in_sync: false,
        files_due: None,
        files_written: None,
        retry: None,
        failed_checks: 0,
        restarted_for: None,
        secret_file,
        observer: crate::observer::Observer::default(),
        notes: Vec::new(),
        last_failure: None,
    };
    let backend = agent.config.backend;
    update(&agent.status, |s| {
        s.source_up = true;
        s.backend = Some(backend);
    });
    if let Some(sup) = &mut agent.supervisor
        && agent.config.daemon.config_file.exists()
    {
        // The last applied configuration is on disk: the daemon starts from it if the source
        // has not sent its state by then (an API server that does not answer must not keep the
        // routes down), else from the source's.
        sup.start_at(Instant::now() + FIRST_SNAPSHOT_GRACE);
    }
    loop {
        let start_due = agent.supervisor.as_ref().and_then(Supervisor::next_start);
        let files_due = agent.files_due.filter(|_| !agent.pending);
        let starting = agent
            .supervisor
            .as_ref()
            .is_some_and(|s| matches!(s.phase(), Phase::Starting { .. }));
        tokio::select! {
            event = source.recv() => match event {
                None => break,
                Some(SourceEvent::Up(up)) => update(&agent.status, |s| {
                    s.source_up = up;
                    if up {
                        s.clear_stale(Stale::SourceDown);
                    } else {
                        s.set_stale(Stale::SourceDown, "the source of cluster state is not in sync (API server unreachable or a watch failing); the last snapshot stays in force");
                    }
                }),
                Some(SourceEvent::Invalid(message)) => {
                    if agent.status.lock().is_ok_and(|s| s.intent.is_some()) {
                        tracing::error!(%message, "input rejected; the last good configuration stays in force");
                    } else {
                        tracing::error!(%message, "input rejected; nothing has been applied yet (the daemon keeps what it was started with)");
                    }
                    update(&agent.status, |s| {
                        s.input_errors += 1;
                        s.last_error = Some(message.clone());
                        s.set_stale(Stale::InputRejected, format!("input rejected, the configuration in force is that of the last good input: {message}"));
                    });
                }
                Some(SourceEvent::Snapshot(snapshot)) => agent.on_state(State::Snapshot(snapshot)),
                Some(SourceEvent::Changes(changes)) => agent.on_state(State::Changes(changes)),
            },
            _ = tokio::time::sleep_until(files_due.unwrap_or_else(tokio::time::Instant::now)), if files_due.is_some() => {
                agent.write_files();
            }
            _ = ticker.tick() => agent.on_tick().await,
            _ = tokio::time::sleep_until(start_due.map(tokio::time::Instant::from_std).unwrap_or_else(tokio::time::Instant::now)), if start_due.is_some() => {
                agent.start_daemon().await;
            }
            _ = tokio::time::sleep(START_POLL), if starting => agent.poll_starting().await,
            _ = term.recv() => break,
            _ = interrupt.recv() => break,
        }
        agent.apply_pending().await;
    }
    agent.shutdown().await;
    Ok(())
}

/// Serves `/healthz`, `/readyz`, `/metrics`, `/intent` (redacted; `?format=json` for JSON) and
/// `/status` until the process exits.
pub async fn serve_status(addr: SocketAddr, status: Arc<Mutex<Status>>) -> std::io::Result<()> {
    use axum::{Router, http::StatusCode, routing::get};
    let ready = status.clone();
    let metrics = status.clone();
    let report = status.clone();
    let intent = status;
    let app = Router::new()
        .route(
            "/status",
            get(move || {
                let text = report
                    .lock()
                    .ok()
                    .and_then(|s| serde_json::to_string_pretty(&crate::report::document(&s)).ok())
                    .unwrap_or_default();
                async move { ([("content-type", "application/json")], text + "\n") }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let s = ready.lock().map(|s| s.clone()).unwrap_or_default();
                async move {
                    let code = if s.ready() {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    (code, s.readiness())
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let text = metrics.lock().map(|s| s.metrics()).unwrap_or_default();
                async move { ([("content-type", "text/plain; version=0.0.4")], text) }
            }),
        )
        .route(
            "/intent",
            get(move |uri: axum::http::Uri| {
                // `?format=json`: the same document as JSON (what `explain --from-sidecar` reads).
                let json = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
                    .any(|(k, v)| k == "format" && v == "json");
                let text = intent.lock().ok().and_then(|s| {
                    if json {
                        s.intent_json()
                    } else {
                        s.intent_text()
                    }
                });
                let kind = if json {
                    "application/json"
                } else {
                    "text/plain; charset=utf-8"
                };
                async move {
                    match text {
                        Some(t) => (StatusCode::OK, [("content-type", kind)], t),
                        None => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            [("content-type", "text/plain")],
                            "no intent applied yet\n".to_string(),
                        ),
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}
