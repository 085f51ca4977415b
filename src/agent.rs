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
use crate::daemon::supervisor::Supervisor;
use crate::intent::Intent;
use crate::options::{Env, OptionsError, SpeakerArgs, resolve};
use crate::render::{Backend, RenderError, Templates, render};
use crate::snapshot::Snapshot;
use crate::source::SourceEvent;
use crate::status::Status;

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
    /// The CLI exit code (DESIGN section 5): 2 for invalid input or options, 3 when the daemon
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

    /// Checks the daemon; a GoBGP that restarted gets its paths back here.
    pub async fn check(&mut self) -> bool {
        match self {
            Driver::Gobgp(d) => d.check().await,
            Driver::Bird(d) => d.reachable().await,
            Driver::Frr(d) => d.reachable().await,
        }
    }
}

/// Compiles and renders a snapshot (pure, apart from reading the `--options` file and looking up
/// the routes to neighbors under `--allowed-source-addresses`).
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
    for n in &rendered.notes {
        tracing::warn!(note = %n, "render");
    }
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
    let outcome = driver.apply(&intent, &rendered).await?;
    Ok((intent, outcome))
}

/// With `--spawn`: makes sure the daemon runs, starting it from the snapshot's configuration
/// (written first, as the daemon reads it at start), and waits until it answers.
async fn supervise(
    supervisor: &mut Supervisor,
    config: &AgentConfig,
    templates: &Templates,
    driver: &mut Driver,
    snapshot: Option<&Snapshot>,
) -> Result<(), PipelineError> {
    if supervisor.running() {
        return Ok(());
    }
    let main = config.backend.files()[0].0;
    if !config.daemon.config_file.exists() {
        // First start: the daemon needs a configuration file before it can start at all.
        let Some(snapshot) = snapshot else {
            return Ok(());
        };
        let (_, rendered) = prepare(config, templates, snapshot)?;
        crate::daemon::driver::validate_and_write(&config.daemon, main, &rendered)?;
    }
    supervisor
        .start()
        .map_err(|e| ApplyError::io(&config.daemon.config_file, e))?;
    for _ in 0..100 {
        if driver.check().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(ApplyError::Unreachable {
        daemon: config.backend.name(),
        message: "started, but it does not answer on its control socket or API".into(),
    }
    .into())
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

/// Runs the sidecar until SIGTERM/SIGINT.
pub async fn run(
    config: AgentConfig,
    mut source: mpsc::Receiver<SourceEvent>,
    status: Arc<Mutex<Status>>,
) -> Result<(), PipelineError> {
    let templates = Templates::load(config.templates.as_deref())?;
    let mut driver = Driver::new(config.backend, config.daemon.clone());
    let mut supervisor = config
        .spawn
        .then(|| Supervisor::new(config.backend, config.daemon.clone()));
    // Shared with the source (cheap clones of an Arc, no copy of the cluster state).
    let mut pending: Option<Arc<Snapshot>> = None;
    let mut last: Option<Arc<Snapshot>> = None;
    // A refused snapshot is tried again after a while (a template or the daemon may be fixed in
    // the meantime), not on every check, so a persistent error does not flood the logs.
    let mut retry: Option<(Arc<Snapshot>, Instant)> = None;
    // A rotated password file is re-applied from the snapshot in force, if the source has not
    // replaced it since (then its next snapshot carries the new password anyway). Held weakly
    // when the source shares it (holding it would make the source copy it on its next change),
    // strongly when the source keeps none (the manifest watch) and a password file is used.
    let mut secret_file =
        crate::source::watch::SecretFile::new(&config.args, config.options_file.as_deref());
    let mut applied: Option<std::sync::Weak<Snapshot>> = None;
    let mut applied_held: Option<Arc<Snapshot>> = None;
    let mut ticker = tokio::time::interval(config.check_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| ApplyError::io(std::path::Path::new("SIGTERM handler"), e))?;
    let update = |f: &mut dyn FnMut(&mut Status)| {
        if let Ok(mut s) = status.lock() {
            f(&mut s);
        }
    };
    update(&mut |s| s.source_up = true);
    loop {
        tokio::select! {
            event = source.recv() => match event {
                None => break,
                Some(SourceEvent::Up(up)) => update(&mut |s| s.source_up = up),
                Some(SourceEvent::Invalid(message)) => {
                    tracing::error!(%message, "input rejected; the last good configuration stays in force");
                    update(&mut |s| { s.input_errors += 1; s.last_error = Some(message.clone()); });
                }
                Some(SourceEvent::Snapshot(snapshot)) => {
                    update(&mut |s| s.source_up = true);
                    pending = Some(snapshot);
                }
            },
            _ = ticker.tick() => {
                if secret_file.changed() && pending.is_none() {
                    tracing::info!("the password file changed; applying it");
                    pending = applied.as_ref().and_then(std::sync::Weak::upgrade);
                    if pending.is_none() {
                        pending = applied_held.clone();
                    }
                }
                if pending.is_none()
                    && let Some((snapshot, at)) = &retry
                    && at.elapsed() >= RETRY_AFTER
                {
                    pending = Some(snapshot.clone());
                    retry = None;
                }
                if let Some(sup) = &mut supervisor
                    && !sup.running()
                    && last.is_some()
                {
                    // The daemon died: start it again from the current file, then re-apply.
                    if let Err(e) = supervise(sup, &config, &templates, &mut driver, last.as_deref()).await {
                        tracing::error!(error = %e, "restarting the daemon failed");
                    }
                    pending = pending.or_else(|| last.clone());
                }
                let reachable = driver.check().await;
                let sent = driver.gobgp_paths_sent();
                update(&mut |s| {
                    s.daemon_reachable = reachable;
                    s.gobgp_paths_sent = sent;
                });
                if !reachable {
                    continue;
                }
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
        let Some(snapshot) = pending.take() else {
            continue;
        };
        let started = Instant::now();
        if let Some(sup) = &mut supervisor
            && let Err(e) = supervise(sup, &config, &templates, &mut driver, Some(&*snapshot)).await
        {
            tracing::error!(error = %e, "starting the daemon failed; retrying on the next check");
            let message = e.to_string();
            update(&mut |s| {
                s.daemon_reachable = false;
                s.last_error = Some(message.clone());
            });
            pending = Some(snapshot);
            continue;
        }
        // User templates are read again on every apply, so an edit takes effect (or is refused)
        // without a restart.
        let current = match &config.templates {
            Some(dir) => Templates::load(Some(dir)),
            None => Ok(Templates::builtin()),
        };
        let result = match current {
            Ok(t) => apply_snapshot(&config, &t, &mut driver, &snapshot).await,
            Err(e) => Err(PipelineError::Render(e)),
        };
        // A GoBGP [global] change needs a restart; with --spawn bgpgen does it and re-applies.
        let result = match (result, &mut supervisor) {
            (Err(PipelineError::Apply(ApplyError::NeedsRestart { message, .. })), Some(sup)) => {
                tracing::warn!(%message, "restarting the daemon to apply it");
                match sup.restart().await {
                    Ok(()) => {
                        for _ in 0..100 {
                            if driver.check().await {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        match Templates::load(config.templates.as_deref()) {
                            Ok(t) => apply_snapshot(&config, &t, &mut driver, &snapshot).await,
                            Err(e) => Err(PipelineError::Render(e)),
                        }
                    }
                    Err(e) => Err(ApplyError::io(&config.daemon.config_file, e).into()),
                }
            }
            (r, _) => r,
        };
        // Kept only for --spawn (to restart the daemon from it). Holding it otherwise would make
        // the source copy the whole snapshot on its next change (copy-on-write), ~90 MB at 100k
        // pods.
        if supervisor.is_some() {
            last = Some(snapshot.clone());
        }
        let sent = driver.gobgp_paths_sent();
        update(&mut |s| s.gobgp_paths_sent = sent);
        match result {
            Ok((intent, outcome)) => {
                retry = None;
                applied = Some(Arc::downgrade(&snapshot));
                applied_held.take();
                applied_held = (Arc::strong_count(&snapshot) == 1 && secret_file.configured())
                    .then(|| snapshot.clone());
                let elapsed = started.elapsed();
                if let Some(events) = &config.events {
                    let _ = events.try_send(crate::events::events_for(&intent, &snapshot));
                }
                match &outcome {
                    ApplyOutcome::Unchanged => tracing::debug!("unchanged"),
                    ApplyOutcome::Applied(how) => {
                        tracing::info!(%how, routes = intent.announced().count(), hash = %intent.hash, ms = elapsed.as_millis() as u64, "applied")
                    }
                }
                update(&mut |s| {
                    match outcome {
                        ApplyOutcome::Unchanged => s.applies_unchanged += 1,
                        ApplyOutcome::Applied(_) => s.applies_ok += 1,
                    }
                    s.ready = true;
                    s.daemon_reachable = true;
                    s.last_apply = Some(elapsed);
                    s.last_success = Some(SystemTime::now());
                    s.last_error = None;
                    s.intent = Some(intent.clone());
                });
            }
            Err(e) => {
                let message = e.to_string();
                tracing::error!(error = %message, "apply failed; the last good configuration stays in force");
                let unreachable = matches!(e, PipelineError::Apply(ApplyError::Unreachable { .. }));
                update(&mut |s| {
                    if e.is_input() {
                        s.input_errors += 1
                    } else {
                        s.applies_failed += 1
                    }
                    if unreachable {
                        s.daemon_reachable = false
                    }
                    s.last_apply = Some(started.elapsed());
                    s.last_error = Some(message.clone());
                });
                // A daemon that is not up yet gets the same snapshot again on the next check.
                if unreachable {
                    pending = Some(snapshot);
                } else {
                    retry = Some((snapshot, Instant::now()));
                }
            }
        }
        release_freed_memory();
    }
    shutdown(&config, &templates, &mut driver, &status).await;
    if let Some(sup) = &mut supervisor {
        sup.stop(Duration::from_secs(10)).await;
    }
    Ok(())
}

/// On SIGTERM: with graceful restart the routes stay (peers keep them while bgpgen or the daemon
/// restarts); without it they are withdrawn, so traffic stops flowing to a speaker that is going.
async fn shutdown(
    config: &AgentConfig,
    templates: &Templates,
    driver: &mut Driver,
    status: &Arc<Mutex<Status>>,
) {
    let intent = status.lock().ok().and_then(|s| s.intent.clone());
    let Some(intent) = intent else { return };
    if intent.bgp.graceful_restart.enabled {
        tracing::info!("shutting down; graceful restart is on, routes stay announced");
        return;
    }
    let empty = withdrawn(&intent);
    match render(&empty, config.backend, templates, true) {
        Ok(rendered) => match driver.apply(&empty, &rendered).await {
            Ok(_) => tracing::info!(
                routes = intent.announced().count(),
                "shutting down; routes withdrawn"
            ),
            Err(e) => tracing::error!(error = %e, "shutting down; withdrawing routes failed"),
        },
        Err(e) => tracing::error!(error = %e, "shutting down; rendering the withdrawal failed"),
    }
}

/// Serves `/healthz`, `/readyz`, `/metrics` and `/intent` (redacted) until the process exits.
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
                    if s.ready && s.source_up {
                        (StatusCode::OK, "ready\n".to_string())
                    } else {
                        let why = s
                            .last_error
                            .unwrap_or_else(|| "waiting for the first successful apply".into());
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready: {why}\n"),
                        )
                    }
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
            get(move || {
                let text = intent
                    .lock()
                    .ok()
                    .and_then(|s| s.intent.as_ref().map(|i| i.to_yaml(false)));
                async move {
                    match text {
                        Some(t) => (StatusCode::OK, t),
                        None => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "no intent applied yet\n".to_string(),
                        ),
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await
}
