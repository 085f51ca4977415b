//! `run --spawn` for BIRD: `bird -f -c FILE -s SOCKET -P PIDFILE` in the foreground. With
//! graceful restart it is stopped with `birdc graceful restart` (BIRD's own way: the peers keep
//! the routes as stale); its SIGTERM sends a Cease (administrative shutdown).

use std::path::PathBuf;
use std::time::Duration;

use crate::daemon::driver::DaemonOptions;
use crate::daemon::process::Signal;
use crate::daemon::supervisor::{StopMode, absolute, dir_of};

pub fn program() -> String {
    std::env::var("BGPGEN_BIRD").unwrap_or_else(|_| "bird".into())
}

pub fn pid_file(options: &DaemonOptions) -> PathBuf {
    dir_of(&options.config_file).join("bird.pid")
}

pub fn command(options: &DaemonOptions, config: String, pid_file: String) -> Vec<String> {
    vec![
        "-f".into(),
        "-c".into(),
        config,
        "-s".into(),
        absolute(&options.bird_socket).display().to_string(),
        "-P".into(),
        pid_file,
    ]
}

pub async fn stop_signal(mode: StopMode, options: &DaemonOptions) -> Option<Signal> {
    if mode == StopMode::Clean {
        return Some(Signal::Term);
    }
    // BIRD's own way; SIGKILL if it does not answer (socket gone, hung).
    let birdc = std::env::var("BGPGEN_BIRDC").unwrap_or_else(|_| "birdc".into());
    let socket = options.bird_socket.display().to_string();
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
