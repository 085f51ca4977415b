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
            // bgpd's run state (vty socket, pid file) goes into the temp dir, never into FRR's
            // /var/run/frr: that is read-only in the DaemonSets (readOnlyRootFilesystem) and may
            // belong to a running FRR on a host.
            let vty_dir = dir.path().join("run");
            std::fs::create_dir(&vty_dir)?;
            let pid_file = vty_dir.join("bgpd.pid");
            let args: [&std::ffi::OsStr; 11] = [
                "-C".as_ref(),
                "-Z".as_ref(),
                "-S".as_ref(),
                "-p".as_ref(),
                "0".as_ref(),
                "--vty_socket".as_ref(),
                vty_dir.as_os_str(),
                "-i".as_ref(),
                pid_file.as_os_str(),
                "-f".as_ref(),
                path.as_os_str(),
            ];
            let crash_dir = Path::new(FRR_CRASH_DIR);
            let crash_dir_existed = crash_dir.exists();
            let (_, out, pid) = run(&bgpd, &args)?;
            // Every bgpd start leaves /var/tmp/frr/bgpd.<pid>/ behind, and the first one creates
            // /var/tmp/frr itself (removed again only while empty: a running bgpd may use it).
            let _ = std::fs::remove_dir_all(crash_dir.join(format!("bgpd.{pid}")));
            if !crash_dir_existed {
                let _ = std::fs::remove_dir(crash_dir);
            }
            let errors = frr_check_errors(&out);
            if !errors.is_empty() {
                return Err(rejected(&bgpd, "frr.conf", errors.join("\n")));
            }
        }
    }
    Ok(())
}

/// Where FRR daemons keep their crash logs (compiled in, not configurable).
const FRR_CRASH_DIR: &str = "/var/tmp/frr";

/// The lines of `bgpd -C` output that report a problem with the configuration.
///
/// bgpd -C exits 0 whatever it finds, so its output is read: `%` lines and `[EC n]` log lines are
/// errors, except these, which say nothing about the file:
/// - `bgp no-rib` is rendered on purpose (frr-reload compares against it), and -Z has already set
///   it, so bgpd notes that it is set twice;
/// - every FRR daemon, -C included, first tries to create its default run directory
///   (/var/run/frr) whatever --vty_socket and -i say (libfrr's frr_init), and warns when it
///   cannot (a read-only root file system, a non-root user): bgpd's run state is in bgpgen's
///   directory, so that warning, and the one about the crash log directory, are not errors.
fn frr_check_errors(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter(|l| l.contains("[EC ") || l.trim_start().starts_with('%'))
        .filter(|l| !l.contains("No-RIB option is already set"))
        .filter(|l| !is_frr_run_dir_warning(l))
        .collect()
}

/// `... BGP: [XXXXX-XXXXX][EC n] failed to mkdir "/var/run/frr": Read-only file system` (or
/// `failed to chown`), for FRR's own run and crash log directories only.
fn is_frr_run_dir_warning(line: &str) -> bool {
    let message = match line.rfind("] ") {
        Some(i) => &line[i + 2..],
        None => return false,
    };
    ["failed to mkdir \"", "failed to chown \""]
        .iter()
        .filter_map(|prefix| message.strip_prefix(prefix))
        .filter_map(|rest| rest.split_once('"'))
        .any(|(path, _)| {
            ["/var/run/frr", "/run/frr", FRR_CRASH_DIR]
                .iter()
                .any(|dir| path == *dir || path.starts_with(&format!("{dir}/")))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_directory_warnings_are_not_configuration_errors() {
        let out = "2026/12/01 11:31:45 BGP: [ZG9QC-QRCJZ] failed to mkdir \"/var/tmp/frr\": Read-only file system\n\
            2026/12/01 11:31:45 BGP: [M1DC0-ZDNYJ] crashlog and per-thread log buffering unavailable!\n\
            2026/12/01 11:31:45 BGP: [QYS7B-8K2EV][EC 100663303] failed to mkdir \"/var/run/frr\": Read-only file system\n\
            2026/12/01 11:31:45 BGP: [QYS7B-8K2EV][EC 100663303] failed to chown \"/var/run/frr\": Operation not permitted\n\
            2026/12/01 11:31:45 BGP: [X][EC 1] No-RIB option is already set\n";
        assert!(
            frr_check_errors(out).is_empty(),
            "{:?}",
            frr_check_errors(out)
        );
    }

    #[test]
    fn configuration_errors_are_kept() {
        let out = "2026/12/01 11:31:46 BGP: [QYS7B-8K2EV][EC 100663303] failed to mkdir \"/var/run/frr\": Read-only file system\n\
            % Specify remote-as or peer-group commands first\n\
            2026/12/01 11:31:46 BGP: [SHWNK-NWT5S][EC 100663304] Command returned Warning Config Failed on config line 2:  neighbor 192.0.2.9 timers 100 10\n\
            2026/12/01 11:31:46 BGP: [QYS7B-8K2EV][EC 100663303] failed to mkdir \"/etc/frr/x\": Permission denied\n";
        let errors = frr_check_errors(out);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with('%'));
        assert!(errors[1].contains("config line 2"));
        assert!(errors[2].contains("/etc/frr/x"));
    }
}
