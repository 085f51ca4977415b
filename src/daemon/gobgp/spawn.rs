//! `run --spawn` for gobgpd: `gobgpd -f FILE -t toml --api-hosts unix:///...`. gobgpd has no pid
//! file option, so bgpgen writes one (for SIGHUP). With graceful restart it is stopped with
//! SIGKILL: its SIGTERM sends every peer a Cease (peer de-configured) and they drop the routes.

use std::path::{Path, PathBuf};

use crate::daemon::driver::DaemonOptions;
use crate::daemon::process::Signal;
use crate::daemon::supervisor::{StopMode, absolute, dir_of};

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

pub fn program() -> String {
    std::env::var("BGPGEN_GOBGPD").unwrap_or_else(|_| "gobgpd".into())
}

pub fn pid_file(options: &DaemonOptions) -> PathBuf {
    options
        .gobgpd_pid_file
        .clone()
        .unwrap_or_else(|| gobgpd_pid_file(options))
}

pub fn command(options: &DaemonOptions, config: String) -> Vec<String> {
    vec![
        "-f".into(),
        config,
        "-t".into(),
        "toml".into(),
        "--api-hosts".into(),
        options.gobgp_api.clone(),
        "--pprof-disable".into(),
    ]
}

pub fn stop_signal(mode: StopMode) -> Signal {
    match mode {
        // SIGKILL closes the TCP sessions only: peers keep the routes, marked stale.
        StopMode::KeepRoutes => Signal::Kill,
        StopMode::Clean => Signal::Term,
    }
}

/// A gobgpd that was killed leaves its API socket, and the next one fails with "address already
/// in use". Only called while no gobgpd of ours runs.
pub fn remove_stale_socket(options: &DaemonOptions) {
    use std::os::unix::fs::FileTypeExt as _;
    let Some(path) = options.gobgp_api.strip_prefix("unix://") else {
        return;
    };
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.file_type().is_socket()
    {
        let _ = std::fs::remove_file(path);
    }
}
