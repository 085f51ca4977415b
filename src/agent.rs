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
use crate::daemon::bird::BirdDriver;
use crate::daemon::driver::{ApplyError, ApplyOutcome, DaemonOptions};
use crate::daemon::frr::FrrDriver;
use crate::daemon::gobgp::GobgpDriver;
use crate::daemon::supervisor::{Phase, StopMode, Supervisor};
use crate::intent::Intent;
use crate::options::{Env, OptionsError, SpeakerArgs, resolve};
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

/// One daemon driver.
pub enum Driver {
    Gobgp(GobgpDriver),
    Bird(BirdDriver),
    Frr(FrrDriver),
}

impl Driver {
    pub fn new(backend: Backend, options: DaemonOptions) -> Driver {
        match backend {
            Backend::Gobgp => Driver::Gobgp(GobgpDriver::new(options)),
            Backend::Bird => Driver::Bird(BirdDriver::new(options)),
            Backend::Frr => Driver::Frr(FrrDriver::new(options)),
        }
    }

    pub async fn apply(
        &mut self,
        intent: &Intent,
        rendered: &crate::render::Rendered,
    ) -> Result<ApplyOutcome, ApplyError> {
        match self {
            Driver::Gobgp(d) => d.apply(intent, rendered).await,
            Driver::Bird(d) => d.apply(rendered).await,
            Driver::Frr(d) => d.apply(intent, rendered).await,
        }
    }

    /// GoBGP only: paths sent through its API since start, (added or changed, withdrawn).
    pub fn gobgp_paths_sent(&self) -> Option<(u64, u64)> {
        match self {
            Driver::Gobgp(d) => Some(d.paths_sent()),
            _ => None,
        }
    }

    /// bgpgen started the daemon again: what the driver knew of its state is gone.
    pub fn restarted(&mut self) {
        match self {
            Driver::Gobgp(d) => d.restarted(),
            Driver::Frr(d) => d.restarted(),
            Driver::Bird(_) => {}
        }
    }

    /// A spawned daemon started before the source sent anything: GoBGP announces the paths of
    /// the `routes.txt` on disk (BIRD and FRR have them in their file).
    pub fn seed_from_disk(&mut self) {
        if let Driver::Gobgp(d) = self {
            d.seed_from_disk();
        }
    }

    /// Before a spawned daemon is stopped without graceful restart: closes its sessions with a
    /// Cease where its SIGTERM would not (FRR; gobgpd and BIRD send one on SIGTERM).
    pub async fn close_sessions(&self, intent: &Intent) -> Result<(), ApplyError> {
        match self {
            Driver::Frr(d) => d.close_sessions(intent).await,
            Driver::Gobgp(_) | Driver::Bird(_) => Ok(()),
        }
    }

    /// Checks the daemon; a GoBGP that restarted gets its paths back here.
    pub async fn check(&mut self) -> bool {
        match self {
            Driver::Gobgp(d) => d.check().await,
            Driver::Bird(d) => d.reachable().await,
            Driver::Frr(d) => d.reachable().await,
        }
    }
}

/// Compiles and renders a snapshot (pure, apart from reading the `--options` file).
pub fn prepare(
    config: &AgentConfig,
    templates: &Templates,
    snapshot: &Snapshot,
) -> Result<(Intent, crate::render::Rendered), PipelineError> {
    let args = match &config.options_file {
        None => config.args.clone(),
        Some(path) => {
            let text = crate::source::input::read_options_file(path).map_err(|e| {
                PipelineError::OptionsFile {
                    path: path.display().to_string(),
                    message: e.to_string(),
                }
            })?;
            config.args.clone().or(SpeakerArgs::from_options_yaml(
                &path.display().to_string(),
                &text,
            )?)
        }
    };
    let mut resolved = resolve(
        &args,
        &config.env,
        snapshot,
        &crate::source::input::read_password_file,
    )?;
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
    /// The snapshot waiting to be applied. Shared with the source (cheap clones of an Arc, no
    /// copy of the cluster state).
    pending: Option<Arc<Snapshot>>,
    /// `--spawn` only: the latest snapshot, to start the daemon from. Holding it otherwise would
    /// make the source copy the whole snapshot on its next change (copy-on-write), ~90 MB at 100k
    /// pods.
    last: Option<Arc<Snapshot>>,
    /// A refused snapshot is tried again after a while (a template or the daemon may be fixed in
    /// the meantime), not on every check, so a persistent error does not flood the logs.
    retry: Option<(Arc<Snapshot>, Instant)>,
    /// Consecutive checks the daemon did not answer.
    failed_checks: u32,
    /// `--spawn`: the intent hash gobgpd was last restarted for (a `[global]` change), so that a
    /// restart that did not help is reported instead of repeated.
    restarted_for: Option<String>,
    /// The `--auth-password-file`, watched for rotation (a Secret volume swaps it).
    secret_file: crate::source::watch::SecretFile,
    /// The snapshot in force, to re-apply when the password file rotates, if the source has not
    /// replaced it since (then its next snapshot carries the new password anyway). Held weakly
    /// when the source shares it (holding it would make the source copy it on its next change),
    /// strongly when the source keeps none (the manifest watch) and a password file is used.
    applied: Option<std::sync::Weak<Snapshot>>,
    applied_held: Option<Arc<Snapshot>>,
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

    fn on_snapshot(&mut self, snapshot: Arc<Snapshot>) {
        update(&self.status, |s| {
            s.source_up = true;
            // A valid input again: whatever was rejected before is no longer the input.
            s.clear_stale(Stale::InputRejected);
        });
        if let Some(sup) = &mut self.supervisor {
            self.last = Some(snapshot.clone());
            // The first configuration to start the daemon from.
            sup.start_soon();
        }
        self.pending = Some(snapshot);
    }

    /// `--spawn`: starts the daemon from the latest snapshot's configuration (written first,
    /// as the daemon reads it at start), else from the file on disk (the last applied one: a
    /// restarted bgpgen whose source does not answer yet still brings the last good routes
    /// back).
    async fn start_daemon(&mut self) {
        let Some(sup) = &mut self.supervisor else {
            return;
        };
        if sup.pid().is_some() {
            return;
        }
        let main = self.config.backend.files()[0].0;
        let on_disk = self.config.daemon.config_file.exists();
        if let Some(snapshot) = &self.last {
            let templates = match &self.config.templates {
                Some(dir) => Templates::load(Some(dir)),
                None => Ok(Templates::builtin()),
            };
            let written = templates
                .map_err(PipelineError::from)
                .and_then(|t| prepare(&self.config, &t, snapshot))
                .and_then(|(_, rendered)| {
                    if crate::daemon::driver::unchanged_on_disk(
                        &self.config.daemon,
                        main,
                        &rendered,
                    ) {
                        Ok(())
                    } else {
                        crate::daemon::driver::validate_and_write(
                            &self.config.daemon,
                            main,
                            &rendered,
                        )
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
                    sup.start_failed(message.clone());
                    update(&self.status, |s| s.set_stale(Stale::ApplyFailed, message));
                    return;
                }
            }
        } else if !on_disk {
            // Nothing to start from until the source sends its first snapshot.
            return;
        }
        let started = sup.start();
        let starts = sup.starts;
        let failure = sup.last_failure.clone();
        match started {
            Ok(()) => {
                self.driver.restarted();
                if self.last.is_none() {
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
            if self.pending.is_none() {
                self.pending = self.last.clone();
            }
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
        if self.secret_file.changed() && self.pending.is_none() {
            tracing::info!("the password file changed; applying it");
            self.pending = self
                .applied
                .as_ref()
                .and_then(std::sync::Weak::upgrade)
                .or_else(|| self.applied_held.clone());
        }
        if self.pending.is_none()
            && let Some((snapshot, at)) = &self.retry
            && at.elapsed() >= RETRY_AFTER
        {
            self.pending = Some(snapshot.clone());
            self.retry = None;
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
        let sent = self.driver.gobgp_paths_sent();
        update(&self.status, |s| {
            s.daemon_reachable = reachable;
            s.gobgp_paths_sent = sent;
        });
        if reachable {
            self.failed_checks = 0;
            update(&self.status, |s| s.clear_stale(Stale::DaemonUnreachable));
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
            if self.pending.is_none() {
                self.pending = self.last.clone();
            }
        }
    }

    /// Applies the pending snapshot, if the daemon can take it.
    async fn apply_pending(&mut self) {
        if !self.daemon_ready() {
            return;
        }
        let Some(snapshot) = self.pending.take() else {
            return;
        };
        let started = Instant::now();
        // User templates are read again on every apply, so an edit takes effect (or is refused)
        // without a restart.
        let current = match &self.config.templates {
            Some(dir) => Templates::load(Some(dir)),
            None => Ok(Templates::builtin()),
        };
        let prepared = current
            .map_err(PipelineError::from)
            .and_then(|t| prepare(&self.config, &t, &snapshot));
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
        let sent = self.driver.gobgp_paths_sent();
        update(&self.status, |s| s.gobgp_paths_sent = sent);
        match result {
            Ok((intent, outcome)) => {
                self.retry = None;
                self.restarted_for = None;
                self.applied = Some(Arc::downgrade(&snapshot));
                // Held strongly only when nothing else holds it; our own hold (a re-apply of
                // the held snapshot, after a password rotation) does not count, or the second
                // rotation would find nothing to re-apply.
                let ours = self
                    .applied_held
                    .as_ref()
                    .is_some_and(|held| Arc::ptr_eq(held, &snapshot));
                let others = Arc::strong_count(&snapshot) - 1 - usize::from(ours);
                self.applied_held =
                    (others == 0 && self.secret_file.configured()).then(|| snapshot.clone());
                let elapsed = started.elapsed();
                if let Some(events) = &self.config.events {
                    let _ = events.try_send(crate::events::events_for(&intent, &snapshot));
                }
                for n in notes.iter().filter(|n| !self.notes.contains(n)) {
                    log_diagnostic(n, "render");
                }
                self.notes = notes;
                self.last_failure = None;
                self.failed_checks = 0;
                update(&self.status, |s| {
                    // What changed against the intent in force, while it is still at hand.
                    log_apply(s.intent.as_ref(), &intent, &outcome, elapsed);
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
                    s.intent = Some(intent);
                });
            }
            Err(PipelineError::Apply(ApplyError::NeedsRestart { message, .. }))
                if self.supervisor.is_some() && self.restarted_for != wanted =>
            {
                // A GoBGP [global] change: the new file is on disk; a new gobgpd starts with it,
                // then the intent is applied again.
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
                self.pending = Some(snapshot);
            }
            Err(e) => {
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
                    s.last_error = Some(message);
                    s.wanted_hash = wanted;
                });
                // A daemon that is not up yet gets the same snapshot again once it answers.
                if unreachable {
                    self.pending = Some(snapshot);
                } else {
                    self.retry = Some((snapshot, Instant::now()));
                }
            }
        }
        release_freed_memory();
    }

    /// On SIGTERM/SIGINT (docs/design.md section 9). Attach mode: nothing changes at the daemon, which
    /// keeps the last good configuration (a bgpgen restart or upgrade is no outage), unless
    /// `--withdraw-on-exit`. `--spawn`: with graceful restart off, the routes are withdrawn and
    /// the daemon stopped; with it on, the daemon is stopped the way that keeps the peers' routes
    /// (no Cease) while the speaker restarts.
    async fn shutdown(&mut self) {
        let intent = self.status.lock().ok().and_then(|s| s.intent.clone());
        let graceful = self.graceful();
        let spawn = self.supervisor.is_some();
        let withdraw = self.config.withdraw_on_exit || (spawn && !graceful);
        if withdraw && let Some(intent) = &intent {
            let empty = withdrawn(intent);
            let result = match render(&empty, self.config.backend, &self.templates, true) {
                Ok(rendered) => {
                    match tokio::time::timeout(
                        WITHDRAW_TIMEOUT,
                        self.driver.apply(&empty, &rendered),
                    )
                    .await
                    {
                        Ok(r) => r.map(drop).map_err(|e| e.to_string()),
                        Err(_) => Err(format!("no answer within {WITHDRAW_TIMEOUT:?}")),
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            match result {
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
        pending: None,
        last: None,
        retry: None,
        failed_checks: 0,
        restarted_for: None,
        secret_file,
        applied: None,
        applied_held: None,
        notes: Vec::new(),
        last_failure: None,
    };
    update(&agent.status, |s| s.source_up = true);
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
                Some(SourceEvent::Snapshot(snapshot)) => agent.on_snapshot(snapshot),
            },
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

/// Serves `/healthz`, `/readyz`, `/metrics` and `/intent` (redacted; `?format=json` for JSON)
/// until the process exits.
pub async fn serve_status(addr: SocketAddr, status: Arc<Mutex<Status>>) -> std::io::Result<()> {
    use axum::{Router, http::StatusCode, routing::get};
    let ready = status.clone();
    let metrics = status.clone();
    let intent = status;
    let app = Router::new()
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
