//! Processes bgpgen signals or starts: signals go through `kill(2)` (a container image need not
//! have `/bin/kill`), a pid read from a pid file is checked against `/proc/PID/cmdline` before it
//! is signalled (the pid of a daemon from a previous container may belong to anything now), and
//! spawned daemons die with bgpgen (`PR_SET_PDEATHSIG`).
//!
//! The death signal is tied to the *thread* that forked, not to the process: Linux sends it when
//! that thread exits, and tokio's blocking-pool threads exit after 10 s idle. So every daemon is
//! forked by one dedicated thread that lives as long as the process ([`spawn_tied`]).

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use thiserror::Error;

/// The signals bgpgen sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Hup,
    Term,
    Kill,
    Stop,
    Cont,
}

impl Signal {
    fn number(self) -> libc::c_int {
        match self {
            Signal::Hup => libc::SIGHUP,
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
            Signal::Stop => libc::SIGSTOP,
            Signal::Cont => libc::SIGCONT,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Signal::Hup => "SIGHUP",
            Signal::Term => "SIGTERM",
            Signal::Kill => "SIGKILL",
            Signal::Stop => "SIGSTOP",
            Signal::Cont => "SIGCONT",
        }
    }
}

#[derive(Debug, Error)]
pub enum ProcessError {
    #[error("{what} (pid {pid}) is not running")]
    NotRunning { what: String, pid: u32 },
    #[error("not permitted to send {signal} to {what} (pid {pid})")]
    NotPermitted {
        what: String,
        pid: u32,
        signal: &'static str,
    },
    #[error("sending {signal} to {what} (pid {pid}): {source}")]
    Signal {
        what: String,
        pid: u32,
        signal: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("pid file {path}: {source}")]
    PidFile {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("pid file {path}: {content:?} is not a process id")]
    NotAPid { path: String, content: String },
    #[error("pid {pid} (from {path}) is not {expected}: it runs {found}; not signalling it")]
    Mismatch {
        pid: u32,
        path: String,
        expected: String,
        found: String,
    },
}

/// Sends `signal` to `pid` with `kill(2)`; `what` names the process in errors.
pub fn send(pid: u32, signal: Signal, what: &str) -> Result<(), ProcessError> {
    let Ok(raw) = libc::pid_t::try_from(pid) else {
        return Err(ProcessError::NotRunning {
            what: what.to_string(),
            pid,
        });
    };
    // kill(2) with pid 0 or negative pids signals process groups: never do that by accident.
    if raw <= 0 {
        return Err(ProcessError::NotRunning {
            what: what.to_string(),
            pid,
        });
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(raw, signal.number()) } == 0 {
        return Ok(());
    }
    let source = io::Error::last_os_error();
    Err(match source.raw_os_error() {
        Some(libc::ESRCH) => ProcessError::NotRunning {
            what: what.to_string(),
            pid,
        },
        Some(libc::EPERM) => ProcessError::NotPermitted {
            what: what.to_string(),
            pid,
            signal: signal.name(),
        },
        _ => ProcessError::Signal {
            what: what.to_string(),
            pid,
            signal: signal.name(),
            source,
        },
    })
}

/// The command line of `pid` (`/proc/PID/cmdline`), or `None` when it does not exist or is a
/// zombie (whose cmdline is empty).
pub fn cmdline(pid: u32) -> Option<Vec<OsString>> {
    use std::os::unix::ffi::OsStringExt as _;
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    if raw.is_empty() {
        return None;
    }
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| OsString::from_vec(a.to_vec()))
            .collect(),
    )
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "PID (COMM) STATE ...": COMM may hold spaces and parentheses, so look after the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Reads a pid file: one decimal number, surrounding whitespace allowed.
pub fn read_pid_file(path: &Path) -> Result<u32, ProcessError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProcessError::PidFile {
        path: path.display().to_string(),
        source,
    })?;
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ProcessError::NotAPid {
            path: path.display().to_string(),
            content: text.trim().chars().take(32).collect(),
        })
}

/// What a process found through a pid file must look like before bgpgen signals it.
#[derive(Debug, Clone)]
pub struct Expect {
    /// Accepted program names (the file name of `argv[0]`): the daemon's (`gobgpd`, `bird`,
    /// `bgpd`) and that of the program bgpgen was told to run (a wrapper that execs the daemon).
    pub programs: Vec<String>,
    /// An argument the command line must contain (the daemon's configuration file), so that
    /// another instance of the same daemon on the host is never taken for ours.
    pub argument: Option<PathBuf>,
}

impl Expect {
    fn describe(&self) -> String {
        let programs = self.programs.join(" or ");
        match &self.argument {
            Some(a) => format!("{programs} with {}", a.display()),
            None => programs,
        }
    }

    fn matches(&self, argv: &[OsString]) -> bool {
        let Some(first) = argv.first() else {
            return false;
        };
        let name = Path::new(first)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !self.programs.contains(&name) {
            return false;
        }
        match &self.argument {
            Some(arg) => argv[1..].iter().any(|a| Path::new(a) == arg.as_path()),
            None => true,
        }
    }
}

/// The pid in `path` when it is a live process matching `expect`; `Ok(None)` when the file is
/// missing or its process is gone; an error when the file is unreadable or the pid now belongs to
/// another program.
pub fn verified_pid(path: &Path, expect: &Expect) -> Result<Option<u32>, ProcessError> {
    let pid = match read_pid_file(path) {
        Ok(pid) => pid,
        Err(ProcessError::PidFile { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    if !alive(pid) {
        return Ok(None);
    }
    let Some(argv) = cmdline(pid) else {
        return Ok(None);
    };
    if expect.matches(&argv) {
        Ok(Some(pid))
    } else {
        let found: Vec<String> = argv
            .iter()
            .take(4)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        Err(ProcessError::Mismatch {
            pid,
            path: path.display().to_string(),
            expected: expect.describe(),
            found: found.join(" "),
        })
    }
}

/// A daemon command to start.
#[derive(Debug, Clone)]
pub struct Spawn {
    pub program: String,
    pub args: Vec<String>,
}

struct Request {
    spawn: Spawn,
    reply: mpsc::Sender<io::Result<Child>>,
}

/// The thread that forks every daemon; it never exits (see the module docs).
fn spawner() -> io::Result<&'static Mutex<mpsc::Sender<Request>>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    if let Some(s) = SPAWNER.get() {
        return Ok(s);
    }
    let (tx, rx) = mpsc::channel::<Request>();
    std::thread::Builder::new()
        .name("bgpgen-spawner".into())
        .spawn(move || {
            // The sender lives in a static, so this loop ends only with the process.
            for request in rx {
                let _ = request.reply.send(spawn_here(&request.spawn));
            }
        })?;
    // Two callers racing here start two threads; the loser's thread simply waits forever.
    Ok(SPAWNER.get_or_init(|| Mutex::new(tx)))
}

fn spawn_here(spawn: &Spawn) -> io::Result<Child> {
    let parent = std::process::id();
    let mut command = Command::new(&spawn.program);
    command
        .args(&spawn.args)
        .stdin(Stdio::null())
        // Piped, so that bgpgen relays each line marked with the daemon's name
        // ([`relay_output`]) instead of mixing unmarked lines into its own log.
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a terminal's Ctrl-C reaches bgpgen only, which then stops the
        // daemon the way the configuration asks (withdraw first, or keep the peers' routes).
        .process_group(0);
    // SAFETY: the closure runs in the forked child before exec and calls only async-signal-safe
    // functions (prctl, getppid) and builds errors without allocating.
    unsafe {
        command.pre_exec(move || {
            // SIGKILL closes the daemon's sessions without a NOTIFICATION, as a crash would: with
            // graceful restart the peers keep the routes until the restarted bgpgen starts it again.
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // bgpgen died between fork and prctl: the death signal will never come.
            if libc::getppid() as u32 != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    command.spawn()
}

/// At most this many characters of one line of a daemon's output are logged.
const OUTPUT_LINE_CHARS: usize = 2000;

/// Relays the child's stdout and stderr line by line into bgpgen's log, each line one event
/// marked `daemon=NAME stream=stdout|stderr` (so `--log-format json` keeps them structured and
/// a reader can tell them from bgpgen's own lines). One thread per stream, ending at EOF (the
/// daemon exited); reading continuously, so the daemon never blocks on a full pipe.
pub fn relay_output(child: &mut Child, daemon: &'static str) {
    fn relay(
        stream: impl std::io::Read + Send + 'static,
        daemon: &'static str,
        name: &'static str,
    ) {
        let spawned = std::thread::Builder::new()
            .name(format!("{daemon}-{name}"))
            .spawn(move || {
                use std::io::BufRead as _;
                let mut reader = std::io::BufReader::new(stream);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let text = String::from_utf8_lossy(&line);
                            let text = text.trim_end();
                            if !text.is_empty() {
                                let text = crate::text::clip(text, OUTPUT_LINE_CHARS);
                                tracing::info!(target: "bgpgen::daemon::output", daemon, stream = name, "{text}");
                            }
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(daemon, stream = name, error = %e, "cannot relay the daemon's output");
        }
    }
    if let Some(out) = child.stdout.take() {
        relay(out, daemon, "stdout");
    }
    if let Some(err) = child.stderr.take() {
        relay(err, daemon, "stderr");
    }
}

/// Starts `spawn` as a child that receives SIGKILL when bgpgen exits, however it exits (the
/// fork happens on a thread that lives as long as the process). Safe to call from any thread,
/// including short-lived ones.
pub fn spawn_tied(spawn: Spawn) -> io::Result<Child> {
    let (reply, answer) = mpsc::channel();
    {
        let sender = spawner()?
            .lock()
            .map_err(|_| io::Error::other("the spawner thread's lock is poisoned"))?;
        sender
            .send(Request { spawn, reply })
            .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    }
    answer
        .recv()
        .map_err(|_| io::Error::other("the spawner thread did not answer"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn sleeper() -> Spawn {
        Spawn {
            program: "sleep".into(),
            args: vec!["30".into()],
        }
    }

    fn wait_gone(child: &mut Child) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn signals_go_through_kill_2() {
        let mut child = spawn_tied(sleeper()).expect("spawn sleep");
        let pid = child.id();
        assert!(alive(pid));
        send(pid, Signal::Term, "sleep").expect("SIGTERM");
        assert!(wait_gone(&mut child), "sleep survived SIGTERM");
        assert!(!alive(pid));
        match send(pid, Signal::Term, "sleep") {
            Err(ProcessError::NotRunning { pid: p, .. }) => assert_eq!(p, pid),
            other => panic!("signalling a reaped pid: {other:?}"),
        }
        assert!(
            send(0, Signal::Kill, "nothing").is_err(),
            "pid 0 is a group"
        );
        assert!(send(u32::MAX, Signal::Kill, "nothing").is_err());
    }

    /// The death signal belongs to the forking thread: a child requested from a thread that then
    /// exits must keep running (it would get SIGKILL at once if that thread had forked it).
    #[test]
    fn a_child_outlives_the_thread_that_asked_for_it() {
        let child = std::thread::spawn(|| spawn_tied(sleeper()).expect("spawn sleep"))
            .join()
            .expect("requesting thread");
        let mut child = child;
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            matches!(child.try_wait(), Ok(None)),
            "the child died with the thread that requested it"
        );
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(status.contains("sleep"), "{status}");
    }

    /// The pre-exec hook leaves a normal start alone; the death signal itself is proved end to end
    /// by the lifecycle tests (kill -9 of bgpgen, then no daemon left).
    #[test]
    fn spawn_reports_exit_codes_and_missing_programs() {
        let mut child = spawn_tied(Spawn {
            program: "sh".into(),
            args: vec!["-c".into(), "exit 7".into()],
        })
        .expect("spawn sh");
        assert_eq!(child.wait().expect("wait").code(), Some(7));
        let missing = spawn_tied(Spawn {
            program: "/nonexistent/bgpgen-test-daemon".into(),
            args: vec![],
        });
        assert_eq!(
            missing.expect_err("missing program").kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn pid_files_are_verified_before_use() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("d.pid");
        let expect = Expect {
            programs: vec!["sleep".into()],
            argument: Some(PathBuf::from("31")),
        };
        assert!(matches!(verified_pid(&file, &expect), Ok(None)), "missing");
        std::fs::write(&file, "garbage\n").unwrap();
        assert!(matches!(
            verified_pid(&file, &expect),
            Err(ProcessError::NotAPid { .. })
        ));
        let mut other = spawn_tied(sleeper()).unwrap();
        std::fs::write(&file, format!("{}\n", other.id())).unwrap();
        // A `sleep 30` is not a `sleep 31`: the argument decides.
        match verified_pid(&file, &expect) {
            Err(e @ ProcessError::Mismatch { .. }) => {
                let text = e.to_string();
                assert!(text.contains("sleep 30"), "{text}");
                assert!(text.contains("not signalling"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        let mut ours = spawn_tied(Spawn {
            program: "sleep".into(),
            args: vec!["31".into()],
        })
        .unwrap();
        std::fs::write(&file, format!(" {} \n", ours.id())).unwrap();
        assert_eq!(verified_pid(&file, &expect).unwrap(), Some(ours.id()));
        let wrong_program = Expect {
            programs: vec!["bird".into()],
            argument: None,
        };
        assert!(verified_pid(&file, &wrong_program).is_err());
        let _ = ours.kill();
        let _ = ours.wait();
        assert!(matches!(verified_pid(&file, &expect), Ok(None)), "gone");
        let _ = other.kill();
        let _ = other.wait();
    }
}
