//! `run --spawn`: bgpgen starts the routing daemon itself, in the foreground as its child, with the
//! flags of docs/design.md section 6, and owns its lifecycle (docs/design.md section 9):
//!
//! - the daemon dies with bgpgen, however bgpgen exits ([`process::spawn_tied`]: SIGKILL, which
//!   closes the sessions without a NOTIFICATION, so peers with graceful restart keep the routes
//!   until the restarted bgpgen has started a new daemon);
//! - a daemon left by a previous bgpgen (its pid file in bgpgen's directory, its command line
//!   naming our configuration file) is stopped before ours starts, never run twice;
//! - a daemon that fails to start, or exits, is started again on a timer with a bounded backoff;
//! - stopping keeps the peers' routes when graceful restart is on ([`StopMode::KeepRoutes`]:
//!   what each daemon needs for that was measured against an upstream gobgpd with graceful
//!   restart, see [`StopMode`]).
//!
//! The caller (the sidecar loop) decides when: it counts failed checks and asks for a restart.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use crate::daemon::driver::DaemonOptions;
use crate::daemon::process::{self, Expect, ProcessError, Signal, Spawn};
use crate::render::Backend;

/// First delay before a failed start is tried again; doubled per failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two start attempts: a daemon that cannot start is tried forever,
/// twice a minute.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A daemon that stayed up this long starts with a clean slate (its next failure is retried
/// after [`FIRST_BACKOFF`] again).
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// How long a started daemon may take to answer on its control socket before the start counts
/// as failed.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How to stop the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// The peers keep the routes as stale until the daemon is back (graceful restart), which
    /// needs the sessions closed without a Cease NOTIFICATION. Measured with an upstream gobgpd
    /// 3.10 with graceful restart:
    /// - gobgpd 3.10: SIGTERM sends Cease (peer de-configured) to every peer and the upstream
    ///   drops the routes; SIGKILL closes the TCP sessions only: routes kept, marked stale.
    /// - BIRD 2.0.12: SIGTERM sends Cease (administrative shutdown); `birdc graceful restart`
    ///   shuts down for graceful restart and exits: routes kept as stale (SIGKILL too).
    /// - FRR 8.4 bgpd: SIGTERM already skips the NOTIFICATION for peers that negotiated
    ///   graceful restart (bgp_terminate): routes kept as stale, and bgpd exits cleanly.
    KeepRoutes,
    /// SIGTERM (each daemon closes its sessions with a Cease), SIGKILL after the grace time.
    Clean,
}

/// What the daemon is doing, as far as the supervisor knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not running; `next_start` says when to try again (`None`: nothing to start from yet).
    Stopped,
    /// Started at `since`; not answering yet.
    Starting { since: Instant },
    /// Answered a check since it started.
    Running { since: Instant },
}

pub struct Supervisor {
    backend: Backend,
    options: DaemonOptions,
    child: Option<Child>,
    phase: Phase,
    next_start: Option<Instant>,
    /// Consecutive failed starts (exits before answering, spawn errors, start timeouts).
    failures: u32,
    /// Why the last start failed or the daemon last exited, for readiness and logs.
    pub last_failure: Option<String>,
    /// Daemons started by this bgpgen.
    pub starts: u64,
    /// Left-over daemons of a previous bgpgen were looked for (once, before the first start).
    cleared: bool,
}

fn dir_of(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The pid file bgpgen keeps for a spawned gobgpd (used for SIGHUP), beside its configuration.
pub fn gobgpd_pid_file(options: &DaemonOptions) -> PathBuf {
    dir_of(&options.config_file).join("gobgpd.pid")
}

/// Where a spawned gobgpd serves its gRPC API: a Unix socket in bgpgen's own directory (beside
/// the configuration), not TCP loopback, which every process of a host-network node can reach
/// (the API returns the neighbors' passwords and accepts paths).
pub fn gobgpd_api_socket(config_file: &Path) -> String {
    format!(
        "unix://{}",
        absolute(&dir_of(config_file)).join("gobgpd.sock").display()
    )
}

impl Supervisor {
    pub fn new(backend: Backend, options: DaemonOptions) -> Supervisor {
        Supervisor {
            backend,
            options,
            child: None,
            phase: Phase::Stopped,
            next_start: None,
            failures: 0,
            last_failure: None,
            starts: 0,
            cleared: false,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// When the next start is due, if one is scheduled.
    pub fn next_start(&self) -> Option<Instant> {
        self.next_start
    }

    /// Asks for a start at once (e.g. the first configuration just became available), unless
    /// failed starts are backing off.
    pub fn start_soon(&mut self) {
        self.start_at(Instant::now());
    }

    /// Asks for a start at `at` at the latest (an earlier scheduled start stays), unless failed
    /// starts are backing off.
    pub fn start_at(&mut self, at: Instant) {
        if self.phase != Phase::Stopped || self.child.is_some() {
            return;
        }
        self.next_start = match self.next_start {
            Some(next) if self.failures > 0 || next <= at => Some(next),
            _ => Some(at),
        };
    }

    /// The daemon's pid file: written by BIRD (`-P`) and bgpd (`-i`) themselves, by bgpgen for
    /// gobgpd (which has no such option).
    pub fn pid_file(&self) -> PathBuf {
        let dir = dir_of(&self.options.config_file);
        match self.backend {
            Backend::Gobgp => self
                .options
                .gobgpd_pid_file
                .clone()
                .unwrap_or_else(|| gobgpd_pid_file(&self.options)),
            Backend::Bird => dir.join("bird.pid"),
            Backend::Frr => dir.join("bgpd.pid"),
        }
    }

    fn program(&self) -> String {
        let (var, default) = match self.backend {
            Backend::Gobgp => ("BGPGEN_GOBGPD", "gobgpd"),
            Backend::Bird => ("BGPGEN_BIRD", "bird"),
            Backend::Frr => ("BGPGEN_FRR_BGPD", "/usr/lib/frr/bgpd"),
        };
        std::env::var(var).unwrap_or_else(|_| default.into())
    }

    /// The daemon's command line; paths absolute (BIRD resolves `-c` against its start directory).
    pub fn command(&self) -> (String, Vec<String>) {
        let abs = |p: &Path| absolute(p).display().to_string();
        let config = abs(&self.options.config_file);
        let pid_file = abs(&self.pid_file());
        let args = match self.backend {
            Backend::Gobgp => vec![
                "-f".into(),
                config,
                "-t".into(),
                "toml".into(),
                "--api-hosts".into(),
                self.options.gobgp_api.clone(),
                "--pprof-disable".into(),
            ],
            Backend::Bird => vec![
                "-f".into(),
                "-c".into(),
                config,
                "-s".into(),
                abs(&self.options.bird_socket),
                "-P".into(),
                pid_file,
            ],
            Backend::Frr => {
                let mut args = vec![
                    "-f".into(),
                    config,
                    // No zebra: bgpd alone, routes only in BGP's table.
                    "-Z".into(),
                    "-S".into(),
                    // No TCP vty (port 2605 on every address of a host-network node): vtysh
                    // reaches bgpd through the Unix socket in --vty_socket.
                    "-P".into(),
                    "0".into(),
                    "--vty_socket".into(),
                    abs(&self.options.frr_vty_socket),
                    "-i".into(),
                    pid_file,
                    "--log".into(),
                    "stdout".into(),
                ];
                // bgpd started by root switches to user frr, which may not be able to read our
                // files; run it as root then. Otherwise it keeps the current user.
                if is_root() {
                    args.extend(["-u".into(), "root".into(), "-g".into(), "root".into()]);
                }
                args
            }
        };
        (self.program(), args)
    }

    /// What a daemon of ours looks like in `/proc/PID/cmdline`.
    fn expect(&self) -> Expect {
        let daemon = match self.backend {
            Backend::Gobgp => "gobgpd",
            Backend::Bird => "bird",
            Backend::Frr => "bgpd",
        };
        let mut programs = vec![daemon.to_string()];
        if let Some(name) = Path::new(&self.program()).file_name() {
            programs.push(name.to_string_lossy().into_owned());
        }
        Expect {
            programs,
            argument: Some(absolute(&self.options.config_file)),
        }
    }

    /// Before the first start: a daemon of a previous bgpgen (found through the pid file and
    /// verified) is stopped with SIGKILL (no NOTIFICATION: peers with graceful restart keep the
    /// routes until ours is up), and the files it left that would stop ours from starting are
    /// removed. It is not adopted: it is not our child, so it would neither die with bgpgen nor
    /// be seen exiting.
    fn clear_leftovers(&mut self) {
        if self.cleared {
            return;
        }
        self.cleared = true;
        let pid_file = self.pid_file();
        match process::verified_pid(&pid_file, &self.expect()) {
            Ok(None) => {
                // A bgpd that was killed (with the previous bgpgen) left its run directory.
                if let Ok(pid) = process::read_pid_file(&pid_file)
                    && !process::alive(pid)
                {
                    self.remove_frr_leftovers(pid);
                }
            }
            Ok(Some(pid)) => {
                tracing::warn!(daemon = %self.backend, pid, pid_file = %pid_file.display(),
                    "a daemon of a previous bgpgen is still running; stopping it (SIGKILL: peers with graceful restart keep the routes) before starting ours");
                match process::send(pid, Signal::Kill, self.backend.name()) {
                    Ok(()) | Err(ProcessError::NotRunning { .. }) => {
                        let deadline = Instant::now() + Duration::from_secs(5);
                        while process::alive(pid) && Instant::now() < deadline {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        if process::alive(pid) {
                            tracing::error!(pid, "the previous daemon did not exit after SIGKILL");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "stopping the previous daemon failed"),
                }
                self.remove_frr_leftovers(pid);
            }
            Err(e) => {
                // A pid file naming another program (a new container reuses pids): not ours.
                tracing::warn!(error = %e, "ignoring the stale pid file");
            }
        }
        if self.backend == Backend::Gobgp {
            self.remove_stale_gobgpd_socket();
        }
    }

    /// A gobgpd that was killed leaves its API socket, and the next one fails with "address
    /// already in use". Only called while no gobgpd of ours runs.
    fn remove_stale_gobgpd_socket(&self) {
        use std::os::unix::fs::FileTypeExt as _;
        let Some(path) = self.options.gobgp_api.strip_prefix("unix://") else {
            return;
        };
        if let Ok(meta) = std::fs::symlink_metadata(path)
            && meta.file_type().is_socket()
        {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Every bgpd start leaves `/var/tmp/frr/bgpd.<pid>/`; a clean exit removes it, a SIGKILL
    /// does not.
    fn remove_frr_leftovers(&self, pid: u32) {
        if self.backend == Backend::Frr {
            let _ = std::fs::remove_dir_all(format!("/var/tmp/frr/bgpd.{pid}"));
        }
    }

    /// Starts the daemon (its configuration file must exist). A failure schedules the next
    /// attempt with backoff.
    pub fn start(&mut self) -> std::io::Result<()> {
        self.next_start = None;
        if self.child.is_some() {
            return Ok(());
        }
        self.clear_leftovers();
        let (program, args) = self.command();
        let result = process::spawn_tied(Spawn {
            program: program.clone(),
            args,
        });
        let mut child = match result {
            Ok(child) => child,
            Err(e) => {
                let message = format!("cannot start {program}: {e}");
                self.start_failed(message);
                return Err(e);
            }
        };
        process::relay_output(&mut child, self.backend.name());
        let pid = child.id();
        if self.backend == Backend::Gobgp
            && let Err(e) = std::fs::write(self.pid_file(), format!("{pid}\n"))
        {
            tracing::error!(error = %e, pid_file = %self.pid_file().display(), "cannot write gobgpd's pid file; reloads will not reach it");
        }
        self.starts += 1;
        tracing::info!(daemon = %self.backend, pid, %program, "daemon started");
        self.child = Some(child);
        self.phase = Phase::Starting {
            since: Instant::now(),
        };
        Ok(())
    }

    /// A start failed (or the daemon exited before it answered): the next attempt is scheduled
    /// with backoff.
    pub fn start_failed(&mut self, message: String) {
        self.failures += 1;
        let delay = backoff(self.failures);
        tracing::error!(daemon = %self.backend, error = %message, retry_in = ?delay, "the daemon is not running");
        self.last_failure = Some(message);
        self.phase = Phase::Stopped;
        self.next_start = Some(Instant::now() + delay);
    }

    /// The pid of the running child.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Reaps the child if it exited: returns its status and schedules the next start.
    pub fn reap(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let status = match child.try_wait() {
            Ok(Some(status)) => status,
            Ok(None) => return None,
            Err(e) => {
                tracing::error!(error = %e, "waiting for the daemon");
                return None;
            }
        };
        let pid = child.id();
        self.child = None;
        self.remove_frr_leftovers(pid);
        let stable =
            matches!(self.phase, Phase::Running { since } if since.elapsed() >= STABLE_AFTER);
        if stable {
            self.failures = 0;
        }
        let message = format!("{} (pid {pid}) exited: {status}", self.backend.name());
        tracing::error!(daemon = %self.backend, %status, "the daemon exited");
        self.retry_after_failure(message);
        Some(status)
    }

    /// The daemon answered its first check since it started.
    pub fn answered(&mut self) {
        if let Phase::Starting { .. } = self.phase {
            self.phase = Phase::Running {
                since: Instant::now(),
            };
            self.last_failure = None;
        }
    }

    /// The started daemon has not answered within [`START_TIMEOUT`].
    pub fn start_timed_out(&self) -> bool {
        matches!(self.phase, Phase::Starting { since } if since.elapsed() >= START_TIMEOUT)
    }

    /// Stops the daemon in `mode`, SIGKILL after `grace` at the latest.
    pub async fn stop(&mut self, mode: StopMode, grace: Duration) {
        self.next_start = None;
        self.phase = Phase::Stopped;
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        let name = self.backend.name();
        let first = match (mode, self.backend) {
            (StopMode::KeepRoutes, Backend::Gobgp) => Some(Signal::Kill),
            (StopMode::KeepRoutes, Backend::Bird) => {
                // BIRD's own way; SIGKILL below if it does not answer (socket gone, hung).
                let birdc = std::env::var("BGPGEN_BIRDC").unwrap_or_else(|_| "birdc".into());
                let socket = self.options.bird_socket.display().to_string();
                let asked = crate::daemon::driver::run_command_timeout(
                    &birdc,
                    &["-s", &socket, "graceful", "restart"],
                    Duration::from_secs(2),
                )
                .await;
                match asked {
                    Ok((true, _)) => None,
                    Ok((false, out)) => {
                        tracing::warn!(output = %out, "birdc graceful restart failed; SIGKILL instead");
                        Some(Signal::Kill)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "birdc graceful restart failed; SIGKILL instead");
                        Some(Signal::Kill)
                    }
                }
            }
            (StopMode::KeepRoutes, Backend::Frr) | (StopMode::Clean, _) => Some(Signal::Term),
        };
        if let Some(signal) = first
            && let Err(e) = process::send(pid, signal, name)
        {
            tracing::warn!(error = %e, "stopping the daemon");
        }
        let deadline = Instant::now() + grace;
        let mut killed = first == Some(Signal::Kill);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    tracing::info!(daemon = %self.backend, pid, %status, ?mode, "daemon stopped");
                    break;
                }
                Ok(None) if Instant::now() >= deadline && !killed => {
                    tracing::warn!(daemon = %self.backend, pid, ?grace, "the daemon did not stop in time; SIGKILL");
                    let _ = process::send(pid, Signal::Kill, name);
                    killed = true;
                }
                Ok(None) if Instant::now() >= deadline + Duration::from_secs(5) => {
                    tracing::error!(daemon = %self.backend, pid, "the daemon survived SIGKILL");
                    break;
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(e) => {
                    tracing::error!(error = %e, "waiting for the daemon");
                    break;
                }
            }
        }
        if killed {
            self.remove_frr_leftovers(pid);
            if self.backend == Backend::Gobgp {
                self.remove_stale_gobgpd_socket();
            }
        }
    }

    /// Stops a daemon that is alive but useless (it stopped answering) in `mode`, and schedules
    /// a new one: at once after a good run, with backoff when it keeps failing soon after its
    /// starts.
    pub async fn replace(&mut self, mode: StopMode, reason: String) {
        let stable =
            matches!(self.phase, Phase::Running { since } if since.elapsed() >= STABLE_AFTER);
        self.stop(mode, Duration::from_secs(3)).await;
        if stable {
            self.failures = 0;
        }
        self.retry_after_failure(reason);
    }

    /// After the daemon died or was replaced: the first time after a good run it starts again
    /// at once, then with backoff.
    fn retry_after_failure(&mut self, reason: String) {
        if self.failures == 0 {
            self.failures = 1;
            self.last_failure = Some(reason);
            self.phase = Phase::Stopped;
            self.next_start = Some(Instant::now());
        } else {
            self.start_failed(reason);
        }
    }
}

/// The delay before start attempt `failures + 1`: 1 s, 2 s, 4 s, ... up to [`MAX_BACKOFF`].
fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    (FIRST_BACKOFF * 2u32.pow(exp)).min(MAX_BACKOFF)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(dir: &Path) -> DaemonOptions {
        DaemonOptions {
            config_file: dir.join("bird.conf"),
            gobgp_api: gobgpd_api_socket(&dir.join("gobgpd.toml")),
            gobgpd_pid_file: None,
            bird_socket: dir.join("bird.ctl"),
            frr_vty_socket: dir.to_path_buf(),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_bound() {
        let delays: Vec<u64> = (1..=8).map(|f| backoff(f).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn command_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = options(dir.path());
        let frr = Supervisor::new(Backend::Frr, o.clone()).command().1;
        let p = frr.iter().position(|a| a == "-P").expect("-P");
        assert_eq!(frr[p + 1], "0", "bgpd without its TCP vty: {frr:?}");
        o.config_file = dir.path().join("gobgpd.toml");
        let (_, gobgp) = Supervisor::new(Backend::Gobgp, o).command();
        let api = gobgp.iter().position(|a| a == "--api-hosts").expect("api");
        assert_eq!(
            gobgp[api + 1],
            format!("unix://{}/gobgpd.sock", dir.path().display())
        );
    }

    /// A failed start is scheduled again after a delay that grows with each failure.
    #[test]
    fn failed_starts_are_retried_on_a_timer() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Supervisor::new(Backend::Bird, options(dir.path()));
        s.start_failed("cannot start gobgpd: No such file or directory".into());
        let first = s.next_start().expect("scheduled");
        assert!(first > Instant::now() + Duration::from_millis(500));
        assert!(first <= Instant::now() + FIRST_BACKOFF);
        s.start_failed("again".into());
        let second = s.next_start().expect("scheduled");
        assert!(second > Instant::now() + Duration::from_millis(1500));
        assert_eq!(s.phase(), Phase::Stopped);
        assert_eq!(s.last_failure.as_deref(), Some("again"));
    }
}
