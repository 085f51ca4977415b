//! Runs each daemon's own parser on rendered files: `gobgpd -d -f`, `bird -p -c`, and for FRR both
//! `vtysh -C -f` (grammar) and `bgpd -C` (semantics; it always exits 0, so its output is read).

use std::path::{Path, PathBuf};
use std::process::Command;

use thiserror::Error;

use crate::render::{Backend, Rendered};
use crate::routes_file;

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

/// Where each backend's checker lives (Debian paths, overridable for other layouts).
pub fn checker(backend: Backend) -> (PathBuf, &'static str) {
    let (var, default, package) = match backend {
        Backend::Gobgp => ("BGPGEN_GOBGPD", "/usr/bin/gobgpd", "gobgpd"),
        Backend::Bird => ("BGPGEN_BIRD", "/usr/sbin/bird", "bird2"),
        Backend::Frr => ("BGPGEN_VTYSH", "/usr/bin/vtysh", "frr"),
    };
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    (path, package)
}

/// True when the backend's checker is installed.
pub fn available(backend: Backend) -> bool {
    checker(backend).0.exists() && (backend != Backend::Frr || frr_bgpd().exists())
}

fn frr_bgpd() -> PathBuf {
    std::env::var_os("BGPGEN_FRR_BGPD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/frr/bgpd"))
}

fn run(program: &Path, args: &[&std::ffi::OsStr]) -> Result<(bool, String, u32), ValidateError> {
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
    let backend = rendered.backend;
    let (program, package) = checker(backend);
    if !program.exists() {
        return Err(ValidateError::Missing {
            program: program.display().to_string(),
            package,
        });
    }
    let dir = tempfile::tempdir()?;
    for f in &rendered.files {
        crate::output::write_atomic(&dir.path().join(&f.name), &f.contents, f.secret)?;
    }
    let rejected = |program: &Path, file: &str, message: String| ValidateError::Rejected {
        program: program.display().to_string(),
        file: file.to_string(),
        message,
    };
    match backend {
        Backend::Gobgp => {
            let path = dir.path().join("gobgpd.toml");
            let (ok, out, _) = run(&program, &["-d".as_ref(), "-f".as_ref(), path.as_os_str()])?;
            if !ok {
                return Err(rejected(&program, "gobgpd.toml", out));
            }
            if let Some(routes) = rendered.file("routes.txt") {
                routes_file::parse(routes)
                    .map_err(|e| rejected(Path::new("bgpgen"), "routes.txt", e.to_string()))?;
            }
        }
        Backend::Bird => {
            // BIRD resolves a relative -c against its start directory: always pass it absolute.
            let path = dir.path().join("bird.conf");
            let (ok, out, _) = run(&program, &["-p".as_ref(), "-c".as_ref(), path.as_os_str()])?;
            if !ok {
                return Err(rejected(&program, "bird.conf", out));
            }
        }
        Backend::Frr => {
            let path = dir.path().join("frr.conf");
            let (ok, out, _) = run(&program, &["-C".as_ref(), "-f".as_ref(), path.as_os_str()])?;
            if !ok {
                return Err(rejected(&program, "frr.conf", out));
            }
            let bgpd = frr_bgpd();
            if !bgpd.exists() {
                return Err(ValidateError::Missing {
                    program: bgpd.display().to_string(),
                    package: "frr",
                });
            }
            let args: [&std::ffi::OsStr; 7] = [
                "-C".as_ref(),
                "-Z".as_ref(),
                "-S".as_ref(),
                "-p".as_ref(),
                "0".as_ref(),
                "-f".as_ref(),
                path.as_os_str(),
            ];
            let (_, out, pid) = run(&bgpd, &args)?;
            // Every bgpd start leaves /var/tmp/frr/bgpd.<pid>/ behind.
            let _ = std::fs::remove_dir_all(format!("/var/tmp/frr/bgpd.{pid}"));
            // `bgp no-rib` is rendered on purpose (frr-reload compares against it), and -Z has
            // already set it: that one notice is not an error.
            let errors: Vec<&str> = out
                .lines()
                .filter(|l| l.contains("[EC ") || l.trim_start().starts_with('%'))
                .filter(|l| !l.contains("No-RIB option is already set"))
                .collect();
            if !errors.is_empty() {
                return Err(rejected(&bgpd, "frr.conf", errors.join("\n")));
            }
        }
    }
    Ok(())
}
