//! What every daemon driver shares: the outcome of an apply, its errors, and the file steps
//! (skip when unchanged, validate with the daemon's parser, write atomically keeping `.prev`,
//! restore `.prev` on a failed reload).

use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use crate::daemon::validate::{ValidateError, validate};
use crate::output::write_atomic;
use crate::render::{Rendered, RenderedFile};

/// Where the daemon's files and control sockets are (`--config-file`, `--bird-socket`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonOptions {
    /// The rendered main configuration file (gobgpd.toml, bird.conf or frr.conf); other rendered
    /// files (routes.txt) go next to it.
    pub config_file: PathBuf,
    pub gobgp_api: String,
    pub gobgpd_pid_file: Option<PathBuf>,
    pub bird_socket: PathBuf,
    pub frr_vty_socket: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Nothing to do: the daemon already runs exactly this.
    Unchanged,
    /// Applied; says how (e.g. `birdc configure`, `vtysh delta: +3 -1 networks`).
    Applied(String),
}

#[derive(Debug, Error)]
pub enum ApplyError {
    #[error(transparent)]
    Rejected(#[from] ValidateError),
    #[error("{daemon} is not reachable: {message}")]
    Unreachable {
        daemon: &'static str,
        message: String,
    },
    #[error(
        "{daemon} did not take the new configuration ({message}); the previous one was restored"
    )]
    RolledBack {
        daemon: &'static str,
        message: String,
    },
    #[error(
        "{daemon} did not take the new configuration ({message}) and restoring the previous one failed too ({rollback})"
    )]
    RollbackFailed {
        daemon: &'static str,
        message: String,
        rollback: String,
    },
    #[error("{daemon}: {message}")]
    NeedsRestart {
        daemon: &'static str,
        message: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl ApplyError {
    pub fn io(path: &Path, source: std::io::Error) -> ApplyError {
        ApplyError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// The path a rendered file is written to: the main file at `config_file`, others beside it.
fn file_path(options: &DaemonOptions, main: &str, file: &RenderedFile) -> PathBuf {
    if file.name == main {
        options.config_file.clone()
    } else {
        options
            .config_file
            .parent()
            .unwrap_or(Path::new("."))
            .join(&file.name)
    }
}

/// The directory of the main file, where the other files go.
pub fn config_dir(options: &DaemonOptions) -> &Path {
    options
        .config_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// True when every rendered file already has exactly this content on disk, and no stale
/// generated file is left beside them.
pub fn unchanged_on_disk(options: &DaemonOptions, main: &str, rendered: &Rendered) -> bool {
    rendered.files.iter().all(|f| {
        crate::output::read_own(&file_path(options, main, f))
            .is_ok_and(|c| c.as_deref() == Some(f.contents.as_str()))
    }) && stale_generated(config_dir(options), rendered).is_ok_and(|s| s.is_empty())
}

/// True for a file of the daemon's generated directory ([`crate::daemon::Daemon::generated`]).
pub fn is_generated(rendered: &Rendered, file: &RenderedFile) -> bool {
    crate::daemon::of(rendered.backend)
        .generated_dir()
        .and_then(|dir| file.name.strip_prefix(dir))
        .is_some_and(|rest| rest.starts_with('/'))
}

/// The files in the daemon's generated directory under `base` that `rendered` does not
/// produce: `*.conf` (which the daemon may include by a glob) and `*.conf.prev`, as (name
/// relative to `base`, path). Absent directory: none; a link or non-directory in its place is
/// refused.
pub fn stale_generated(
    base: &Path,
    rendered: &Rendered,
) -> std::io::Result<Vec<(String, PathBuf)>> {
    let Some(sub) = crate::daemon::of(rendered.backend).generated_dir() else {
        return Ok(Vec::new());
    };
    let dir = base.join(sub);
    match std::fs::symlink_metadata(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
        Ok(m) if !m.is_dir() => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "{}: not a directory; bgpgen writes only regular files and never through a link",
                    crate::text::escape(&dir.display().to_string())
                ),
            ));
        }
        Ok(_) => {}
    }
    let keep: std::collections::HashSet<&str> =
        rendered.files.iter().map(|f| f.name.as_str()).collect();
    let mut stale = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = format!("{sub}/{}", entry.file_name().to_string_lossy());
        let ours = name.ends_with(".conf") || name.ends_with(".conf.prev");
        if ours && !keep.contains(name.as_str()) {
            stale.push((name, entry.path()));
        }
    }
    stale.sort();
    Ok(stale)
}

/// Validates with the daemon's own parser, then writes every file atomically (keeping `.prev`).
/// A missing checker is not fatal: the daemon's reload still rejects a bad file, and rollback
/// covers that.
pub fn validate_and_write(
    options: &DaemonOptions,
    main: &str,
    rendered: &Rendered,
) -> Result<(), ApplyError> {
    match validate(rendered) {
        Ok(()) => {}
        Err(ValidateError::Missing { program, .. }) => {
            tracing::warn!(%program, "daemon checker not installed; relying on the reload to reject bad files");
        }
        Err(e) => return Err(e.into()),
    }
    write_rendered(options, main, rendered)
}

/// Writes the rendered files (atomically, keeping `.prev`) without validating them: for callers
/// that know the daemon's parser has seen every line that changed.
pub fn write_rendered(
    options: &DaemonOptions,
    main: &str,
    rendered: &Rendered,
) -> Result<(), ApplyError> {
    let base = config_dir(options);
    if let Some(sub) = crate::daemon::of(rendered.backend).generated_dir() {
        let dir = base.join(sub);
        crate::output::own_dir(&dir).map_err(|e| ApplyError::io(&dir, e))?;
    }
    for f in &rendered.files {
        let path = file_path(options, main, f);
        let written = if is_generated(rendered, f) {
            // Many small files, most unchanged after a route change: only those that differ
            // (no `.prev`: a rollback puts back what the driver read; no fsync: rendered again
            // at every start).
            if crate::output::read_own(&path).is_ok_and(|c| c.as_deref() == Some(&f.contents)) {
                continue;
            }
            crate::output::write_atomic_unsynced(&path, &f.contents, f.secret)
        } else {
            write_atomic(&path, &f.contents, f.secret)
        };
        written.map_err(|e| ApplyError::io(&path, e))?;
    }
    let stale = stale_generated(base, rendered).map_err(|e| ApplyError::io(base, e))?;
    for (_, path) in stale {
        crate::output::remove_own(&path).map_err(|e| ApplyError::io(&path, e))?;
    }
    Ok(())
}

/// Puts `<file>.prev` back in place of `file` (after a reload the daemon refused).
pub fn restore_previous(path: &Path) -> std::io::Result<()> {
    let mut prev = path.as_os_str().to_owned();
    prev.push(".prev");
    let prev = PathBuf::from(prev);
    // Not through a link planted in place of `.prev`, never a FIFO.
    let contents = crate::output::read_own(&prev)?.ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no previous version kept")
    })?;
    let secret = std::fs::metadata(&prev)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o077 == 0)
        .unwrap_or(true);
    write_atomic(path, &contents, secret)
}

/// How long a check of the daemon (`birdc show status`, `vtysh -c 'show version'`, a gRPC probe)
/// may take: a hung daemon (stopped, deadlocked) still accepts connections on its socket and then
/// answers nothing.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one control command of an apply may take (`birdc configure`, `vtysh -f`).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a control command under [`COMMAND_TIMEOUT`] and returns (success, combined output).
pub async fn run_command(program: &str, args: &[&str]) -> Result<(bool, String), std::io::Error> {
    run_command_timeout(program, args, COMMAND_TIMEOUT).await
}

/// Runs a control command and returns (success, combined output); a command still running after
/// `timeout` is killed and reported as timed out.
pub async fn run_command_timeout(
    program: &str,
    args: &[&str],
    timeout: Duration,
) -> Result<(bool, String), std::io::Error> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(timeout, out).await {
        Ok(out) => out?,
        Err(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "`{program} {}` did not finish within {timeout:?}",
                    args.join(" ")
                ),
            ));
        }
    };
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text.trim().to_string()))
}
