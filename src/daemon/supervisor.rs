//! `run --spawn`: bgpgen starts the routing daemon itself, in the foreground as its child, with the
//! flags of DESIGN section 6, and starts it again if it dies. One container image then serves as
//! Kube-OVN's `bgpSpeakerImage` or as a speaker DaemonSet with no second container.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::daemon::driver::DaemonOptions;
use crate::render::Backend;

pub struct Supervisor {
    backend: Backend,
    options: DaemonOptions,
    child: Option<Child>,
    pub starts: u64,
}

fn dir_of(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// The pid file bgpgen keeps for a spawned gobgpd (used for SIGHUP), beside its configuration.
pub fn gobgpd_pid_file(options: &DaemonOptions) -> PathBuf {
    dir_of(&options.config_file).join("gobgpd.pid")
}

impl Supervisor {
    pub fn new(backend: Backend, options: DaemonOptions) -> Supervisor {
        Supervisor {
            backend,
            options,
            child: None,
            starts: 0,
        }
    }

    /// The daemon's command line; paths absolute (BIRD resolves `-c` against its start directory).
    pub fn command(&self) -> (String, Vec<String>) {
        let abs = |p: &Path| {
            std::path::absolute(p)
                .unwrap_or_else(|_| p.to_path_buf())
                .display()
                .to_string()
        };
        let config = abs(&self.options.config_file);
        let dir = dir_of(&self.options.config_file);
        match self.backend {
            Backend::Gobgp => (
                std::env::var("BGPGEN_GOBGPD").unwrap_or_else(|_| "gobgpd".into()),
                vec![
                    "-f".into(),
                    config,
                    "-t".into(),
                    "toml".into(),
                    "--api-hosts".into(),
                    self.options.gobgp_api.clone(),
                    "--pprof-disable".into(),
                ],
            ),
            Backend::Bird => (
                std::env::var("BGPGEN_BIRD").unwrap_or_else(|_| "bird".into()),
                vec![
                    "-f".into(),
                    "-c".into(),
                    config,
                    "-s".into(),
                    abs(&self.options.bird_socket),
                    "-P".into(),
                    abs(&dir.join("bird.pid")),
                ],
            ),
            Backend::Frr => {
                let mut args = vec![
                    "-f".into(),
                    config,
                    // No zebra: bgpd alone, routes only in BGP's table.
                    "-Z".into(),
                    "-S".into(),
                    "--vty_socket".into(),
                    abs(&self.options.frr_vty_socket),
                    "-i".into(),
                    abs(&dir.join("bgpd.pid")),
                    "--log".into(),
                    "stdout".into(),
                ];
                // bgpd started by root switches to user frr, which may not be able to read our
                // files; run it as root then. Otherwise it keeps the current user.
                if is_root() {
                    args.extend(["-u".into(), "root".into(), "-g".into(), "root".into()]);
                }
                (
                    std::env::var("BGPGEN_FRR_BGPD").unwrap_or_else(|_| "/usr/lib/frr/bgpd".into()),
                    args,
                )
            }
        }
    }

    /// True while the child runs.
    pub fn running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => match child.try_wait() {
                Ok(None) => true,
                Ok(Some(status)) => {
                    tracing::error!(%status, daemon = %self.backend, "the daemon exited");
                    self.child = None;
                    false
                }
                Err(_) => false,
            },
            None => false,
        }
    }

    /// Starts the daemon (its configuration file must exist).
    pub fn start(&mut self) -> std::io::Result<()> {
        let (program, args) = self.command();
        let child = Command::new(&program)
            .args(&args)
            .stdin(Stdio::null())
            // Its own process group: a terminal's Ctrl-C reaches bgpgen only, which withdraws
            // the routes through the daemon before stopping it.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        if self.backend == Backend::Gobgp
            && let Some(pid) = child.id()
        {
            std::fs::write(gobgpd_pid_file(&self.options), format!("{pid}\n"))?;
        }
        self.starts += 1;
        tracing::info!(daemon = %self.backend, pid = child.id(), %program, "daemon started");
        self.child = Some(child);
        Ok(())
    }

    /// Stops the daemon: SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }

    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.stop(Duration::from_secs(5)).await;
        self.start()
    }
}

fn is_root() -> bool {
    // /proc/self/status says "Uid: real effective saved fs"; no libc call needed.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
