//! `run --spawn` for FRR: `bgpd -f FILE -Z -S -P 0 --vty_socket DIR -i PIDFILE` without zebra or
//! a TCP vty. Its SIGTERM already skips the NOTIFICATION for peers that negotiated graceful
//! restart (bgp_terminate), so SIGTERM keeps their routes; without graceful restart the driver
//! shuts the sessions down first (`close_sessions`).

use std::path::PathBuf;

use crate::daemon::driver::DaemonOptions;
use crate::daemon::frr::check::FRR_CRASH_DIR;
use crate::daemon::supervisor::{absolute, dir_of};

pub fn program() -> String {
    std::env::var("BGPGEN_FRR_BGPD").unwrap_or_else(|_| "/usr/lib/frr/bgpd".into())
}

pub fn pid_file(options: &DaemonOptions) -> PathBuf {
    dir_of(&options.config_file).join("bgpd.pid")
}

pub fn command(options: &DaemonOptions, config: String, pid_file: String) -> Vec<String> {
    let mut args = vec![
        "-f".into(),
        config,
        // No zebra: bgpd alone, routes only in BGP's table.
        "-Z".into(),
        "-S".into(),
        // No TCP vty (port 2605 on every address of a host-network node): vtysh reaches bgpd
        // through the Unix socket in --vty_socket.
        "-P".into(),
        "0".into(),
        "--vty_socket".into(),
        absolute(&options.frr_vty_socket).display().to_string(),
        "-i".into(),
        pid_file,
        "--log".into(),
        "stdout".into(),
    ];
    // bgpd started by root switches to user frr, which may not be able to read our files; run
    // it as root then. Otherwise it keeps the current user.
    if is_root() {
        args.extend(["-u".into(), "root".into(), "-g".into(), "root".into()]);
    }
    args
}

/// Every bgpd start leaves `/var/tmp/frr/bgpd.<pid>/`; a clean exit removes it, a SIGKILL does
/// not.
pub fn remove_leftovers(pid: u32) {
    let _ = std::fs::remove_dir_all(format!("{FRR_CRASH_DIR}/bgpd.{pid}"));
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
