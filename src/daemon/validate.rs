//! Runs each daemon's own parser on rendered files (each daemon's `check.rs` says how): the
//! files are written into a private temp dir first, with the real password (the daemons parse it).

use std::path::{Path, PathBuf};
use std::process::Command;

use thiserror::Error;

use crate::render::{Backend, Rendered};

#[derive(Debug, Error)]
pub enum ValidateError {
    #[error("{program} is not installed (package {package})")]
    Missing {
        program: String,
        package: &'static str,
    },
    #[error("{program} rejected {file}:\n{message}")]
    Rejected {
        program: String,
        file: String,
        message: String,
    },
    #[error("cannot run the checker: {0}")]
    Io(#[from] std::io::Error),
}

impl ValidateError {
    pub(crate) fn rejected(program: &Path, file: &str, message: String) -> ValidateError {
        ValidateError::Rejected {
            program: program.display().to_string(),
            file: file.to_string(),
            message,
        }
    }
}

/// Where each backend's checker lives (Debian paths, overridable for other layouts).
pub fn checker(backend: Backend) -> (PathBuf, &'static str) {
    crate::daemon::of(backend).checker()
}

/// True when the backend's checker is installed.
pub fn available(backend: Backend) -> bool {
    crate::daemon::of(backend).checker_available()
}

/// A path from the environment variable `var`, else `default`.
pub(crate) fn program_path(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// Runs a checker to completion: (success, stdout and stderr, pid).
pub(crate) fn run(
    program: &Path,
    args: &[&std::ffi::OsStr],
) -> Result<(bool, String, u32), ValidateError> {
    let child = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let out = child.wait_with_output()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text.trim().to_string(), pid))
}

/// Checks rendered files (with the real password: the daemons parse it) with the daemon's parser.
pub fn validate(rendered: &Rendered) -> Result<(), ValidateError> {
    let daemon = crate::daemon::of(rendered.backend);
    let (program, package) = daemon.checker();
    if !program.exists() {
        return Err(ValidateError::Missing {
            program: program.display().to_string(),
            package,
        });
    }
    let dir = tempfile::tempdir()?;
    for f in &rendered.files {
        let path = dir.path().join(&f.name);
        if let Some(parent) = path.parent() {
            crate::output::own_dir(parent)?;
        }
        // A fresh private directory: new files, no link to fear, nothing to keep durable (the
        // checker reads them now), so no rename or fsync per file (BIRD's hundreds of route
        // files at 100k routes).
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if f.secret { 0o600 } else { 0o644 })
            .open(&path)?
            .write_all(f.contents.as_bytes())?;
    }
    daemon.check(dir.path(), rendered)
}
