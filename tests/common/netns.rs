//! A two-namespace BGP lab for session tests.
//!
//! [`Lab::new`] creates a speaker namespace and an upstream namespace joined by a veth pair
//! (speaker 192.0.2.1/24 and 2001:db8::1/64, upstream 192.0.2.2/24 and 2001:db8::2/64; documentation
//! addresses only, plus each namespace's loopback) and a private temp dir. Daemons started through
//! the lab run inside a namespace with their stdout and stderr in `<dir>/<name>.log`. Dropping the
//! lab (also on panic) stops those daemons, deletes the namespaces (and with them the veth pair),
//! removes the `/var/tmp/frr/<daemon>.<pid>` directories FRR daemons leave behind and the temp dir
//! (kept when `BGPGEN_KEEP_LAB=1`, for debugging).
//!
//! [`Lab::stop`] signals a daemon and waits for it (its exit is then expected, not a failure);
//! [`Lab::restart`] starts it again with the same command.
//!
//! [`Lab::start_upstream`] runs a gobgpd in the upstream namespace peering with the speaker's two
//! addresses; [`Gobgp::rib`] reads its RIB through the `gobgp` CLI.

use std::collections::BTreeSet;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde_json::Value;
use tempfile::TempDir;

pub const SPEAKER_V4: &str = "192.0.2.1";
pub const SPEAKER_V6: &str = "2001:db8::1";
pub const UPSTREAM_V4: &str = "192.0.2.2";
pub const UPSTREAM_V6: &str = "2001:db8::2";
pub const SPEAKER_IF: &str = "veth-speaker";
pub const UPSTREAM_IF: &str = "veth-upstream";

pub const IP: &str = "ip";
pub const GOBGPD: &str = "gobgpd";
pub const GOBGP: &str = "gobgp";
pub const BGPD: &str = "/usr/lib/frr/bgpd";
pub const VTYSH: &str = "vtysh";
pub const BIRD: &str = "bird";
pub const BIRDC: &str = "birdc";

/// A ready dual-stack subnet without BGP annotation (so only pods are announced).
pub const LAB_SUBNET: &str = r#"apiVersion: kubeovn.io/v1
kind: Subnet
metadata:
  name: ovn-default
spec:
  protocol: Dual
  cidrBlock: 10.16.0.0/16,fd00:10:16::/64
  gateway: 10.16.0.1,fd00:10:16::1
  provider: ovn
status:
  conditions:
    - type: Ready
      status: "True"
"#;

/// The speaker's options (graceful restart off, the default).
pub const LAB_OPTIONS: &str = "neighbor-address: 192.0.2.2
neighbor-ipv6-address: 2001:db8::2
neighbor-as: 65030
cluster-as: 65000
node-name: node-1
router-id: 192.0.2.1
";

/// Runs `bin` (a bgpgen binary) with `args`, without the environment variables kube-ovn-speaker
/// reads (the host's must not leak into a lab), and returns its stdout; panics with its stderr.
pub fn run_bgpgen(bin: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(bin)
        .args(args)
        .env_remove("NODE_NAME")
        .env_remove("POD_IPS")
        .env_remove("POD_IP")
        .env_remove("GATEWAY_NAME")
        .output()
        .expect("run bgpgen");
    assert!(
        out.status.success(),
        "bgpgen {} failed ({}):\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Set to 1 to keep the lab's temp dir (configs, logs) after the test.
pub const KEEP_ENV: &str = "BGPGEN_KEEP_LAB";

/// Whether `test` can run: we are root and every program in `needed` exists (absolute path, or
/// found on PATH). Otherwise [`super::skip::skip`] decides: a failure, or (with
/// `BGPGEN_ALLOW_SKIP=1`) a SKIPPED line on the terminal and false.
pub fn prerequisites(test: &str, needed: &[&str]) -> bool {
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root privileges (network namespaces need them)".to_string());
    }
    for program in needed {
        if find_program(program).is_none() {
            missing.push(format!("program `{program}`"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    super::skip::skip(test, &missing.join(", "));
    false
}

fn is_root() -> bool {
    // "Uid:\treal\teffective\tsaved\tfilesystem"
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            Some(line.split_whitespace().nth(2)? == "0")
        })
        .unwrap_or(false)
}

/// The program's path: `name` itself when it contains a slash, else the first match on PATH.
pub fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn program(name: &str) -> String {
    find_program(name)
        .unwrap_or_else(|| panic!("program `{name}` not found"))
        .to_string_lossy()
        .into_owned()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `ip netns exec NS ARGV...` and returns its stdout, or an error with the exit status and
/// stderr.
pub fn netns_exec(ns: &str, argv: &[&str]) -> Result<String, String> {
    let out = netns_output(ns, argv)?;
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(format!(
            "`ip netns exec {ns} {}` failed ({}): {}{}",
            argv.join(" "),
            out.status,
            text(&out.stderr),
            text(&out.stdout)
        ))
    }
}

/// A path as the `&str` a command line takes (the lab's paths are UTF-8: they are made of
/// `std::env::temp_dir()`, the test's name and ASCII).
pub fn path_str(p: &std::path::Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Writes `dir/name` atomically, as a watcher must see it: staged in `staging` (same file
/// system), then renamed into place.
pub fn put_atomic(staging: &std::path::Path, dir: &std::path::Path, name: &str, contents: &str) {
    let staged = staging.join(name);
    std::fs::write(&staged, contents).expect("write staged file");
    std::fs::rename(&staged, dir.join(name)).expect("rename into place");
}

/// Runs `ip netns exec NS ARGV...`: (exit code, stdout, stderr), whatever the exit code (for
/// commands whose exit code is part of the answer, like `bgpgen status`).
pub fn netns_run(ns: &str, argv: &[&str]) -> Result<(Option<i32>, String, String), String> {
    let out = netns_output(ns, argv)?;
    Ok((out.status.code(), text(&out.stdout), text(&out.stderr)))
}

/// Prints an HTTP response's status code, then its body; HTTP errors are responses too. No proxy.
/// Run as `python3 -c HTTP_GET URL` inside a namespace (bgpgen's endpoints listen there).
pub const HTTP_GET: &str = "import sys, urllib.request, urllib.error
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    r = opener.open(sys.argv[1], timeout=5)
    code, body = r.status, r.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
sys.stdout.write('%d\\n%s' % (code, body.decode('utf-8', 'replace')))
";

/// GETs `url` inside `ns` (with python3): (status code, body).
pub fn http_get(ns: &str, url: &str) -> Result<(u16, String), String> {
    let out = netns_exec(ns, &["python3", "-c", HTTP_GET, url])?;
    let (code, body) = out.split_once('\n').unwrap_or((&out, ""));
    let code = code
        .trim()
        .parse()
        .map_err(|_| format!("GET {url}: unexpected output {out:?}"))?;
    Ok((code, body.to_string()))
}

/// One sample of a Prometheus text body, e.g. `bgpgen_applies_total{result="failed"}`.
pub fn metric_sample(body: &str, sample: &str) -> Option<f64> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == sample).then(|| value.parse::<f64>().ok())?
    })
}

fn netns_output(ns: &str, argv: &[&str]) -> Result<Output, String> {
    let (first, rest) = argv.split_first().expect("a command");
    Command::new(program(IP))
        .args(["netns", "exec", ns])
        .arg(program(first))
        .args(rest)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip netns exec {ns} {}`: {e}", argv.join(" ")))
}

struct Daemon {
    name: String,
    program: String,
    child: Child,
    log: PathBuf,
    exited: Option<ExitStatus>,
    /// How it was started, for [`Lab::restart`].
    ns: String,
    argv: Vec<String>,
    env: Vec<(String, Option<String>)>,
    /// Stopped on purpose by [`Lab::stop`]: its exit is not a failure.
    stopped: bool,
}

/// Status command run for [`Lab::report`].
struct Status {
    label: String,
    ns: String,
    argv: Vec<String>,
}

static NEXT_LAB: AtomicUsize = AtomicUsize::new(0);

pub struct Lab {
    speaker: String,
    upstream: String,
    dir: Option<TempDir>,
    namespaces: Vec<String>,
    daemons: Vec<Daemon>,
    status: Vec<Status>,
}

impl Lab {
    /// Creates the two namespaces, the veth pair and the addresses. `tag` goes into the names
    /// (`bgpgen-<pid>-<n>-<tag>-speaker`), so keep it short and unique per test.
    pub fn new(tag: &str) -> Lab {
        Lab::build(tag, None)
    }

    /// [`Lab::new`] with the speaker side in the network namespace of process `pid` (e.g. a
    /// container's, which Docker creates), named with `ip netns attach` instead of created: the
    /// veth and addresses go into it, and dropping the lab removes only the name (the namespace
    /// lives as long as its processes).
    pub fn attached(tag: &str, pid: u32) -> Lab {
        Lab::build(tag, Some(pid))
    }

    fn build(tag: &str, speaker_pid: Option<u32>) -> Lab {
        let n = NEXT_LAB.fetch_add(1, Ordering::SeqCst);
        let base = format!("bgpgen-{}-{n}-{tag}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix(&format!("{base}-"))
            .tempdir()
            .expect("create the lab's temp dir");
        let mut lab = Lab {
            speaker: format!("{base}-speaker"),
            upstream: format!("{base}-upstream"),
            dir: Some(dir),
            namespaces: Vec::new(),
            daemons: Vec::new(),
            status: Vec::new(),
        };
        for ns in [lab.speaker.clone(), lab.upstream.clone()] {
            match speaker_pid {
                Some(pid) if ns == lab.speaker => {
                    lab.ip(&["netns", "attach", &ns, &pid.to_string()])
                }
                _ => lab.ip(&["netns", "add", &ns]),
            }
            lab.namespaces.push(ns);
        }
        let (a, b) = (lab.speaker.clone(), lab.upstream.clone());
        // Created inside the speaker namespace, the peer moved straight into the upstream one: no
        // interface ever appears in the host's namespace.
        lab.ip(&[
            "-n",
            &a,
            "link",
            "add",
            SPEAKER_IF,
            "type",
            "veth",
            "peer",
            "name",
            UPSTREAM_IF,
            "netns",
            &b,
        ]);
        for (ns, dev, v4, v6) in [
            (&a, SPEAKER_IF, SPEAKER_V4, SPEAKER_V6),
            (&b, UPSTREAM_IF, UPSTREAM_V4, UPSTREAM_V6),
        ] {
            lab.ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", dev]);
            lab.ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                dev,
                "nodad",
            ]);
            lab.ip(&["-n", ns, "link", "set", "lo", "up"]);
            lab.ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        lab
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("lab dir").path()
    }

    pub fn speaker_ns(&self) -> &str {
        &self.speaker
    }

    pub fn upstream_ns(&self) -> &str {
        &self.upstream
    }

    /// Runs `ip ARGS`, panicking (with stderr) when it fails.
    pub fn ip(&self, args: &[&str]) {
        let out = Command::new(program(IP))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ip");
        assert!(
            out.status.success(),
            "`ip {}` failed ({}): {}",
            args.join(" "),
            out.status,
            text(&out.stderr)
        );
    }

    /// Starts `argv` inside `ns` as a daemon of this lab, output in `<dir>/<name>.log`. Returns its
    /// pid (`ip netns exec` execs the program, so it is the daemon's own pid).
    pub fn spawn(&mut self, ns: &str, name: &str, argv: &[&str]) -> u32 {
        self.spawn_env(ns, name, argv, &[])
    }

    /// [`Lab::spawn`] with environment changes: `(VAR, Some(value))` sets, `(VAR, None)` removes.
    pub fn spawn_env(
        &mut self,
        ns: &str,
        name: &str,
        argv: &[&str],
        env: &[(&str, Option<&str>)],
    ) -> u32 {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, Option<String>)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect();
        self.launch(ns, name, argv, env, false)
    }

    fn launch(
        &mut self,
        ns: &str,
        name: &str,
        argv: Vec<String>,
        env: Vec<(String, Option<String>)>,
        append: bool,
    ) -> u32 {
        let log = self.dir().join(format!("{name}.log"));
        let file = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&log)
            .expect("create log file");
        let (first, rest) = argv.split_first().expect("a command");
        let mut command = Command::new(program(IP));
        command
            .args(["netns", "exec", ns])
            .arg(program(first))
            .args(rest)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log file"))
            .stderr(file);
        for (key, value) in &env {
            match value {
                Some(v) => command.env(key, v),
                None => command.env_remove(key),
            };
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({}): {e}", argv.join(" ")));
        let pid = child.id();
        let program = Path::new(first)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.daemons.push(Daemon {
            name: name.to_string(),
            program,
            child,
            log,
            exited: None,
            ns: ns.to_string(),
            argv,
            env,
            stopped: false,
        });
        pid
    }

    /// The pid of the running daemon called `name` (its latest start).
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.daemons
            .iter()
            .rev()
            .find(|d| d.name == name && d.exited.is_none() && !d.stopped)
            .map(|d| d.child.id())
    }

    /// Sends `signal` (e.g. `KILL`, `TERM`) to the running daemon called `name` and waits up to
    /// `timeout` for it to exit (then kills it and fails the test). Its exit is expected: it no
    /// longer counts as a dead daemon. Returns its exit status.
    pub fn stop(&mut self, name: &str, signal: &str, timeout: Duration) -> ExitStatus {
        let index = self
            .daemons
            .iter()
            .rposition(|d| d.name == name && d.exited.is_none() && !d.stopped)
            .unwrap_or_else(|| panic!("no running daemon called {name}"));
        let pid = self.daemons[index].child.id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(sent, "kill -{signal} {pid} ({name}) failed");
        self.daemons[index].stopped = true;
        let deadline = Instant::now() + timeout;
        loop {
            let d = &mut self.daemons[index];
            match d.child.try_wait() {
                Ok(Some(status)) => {
                    d.exited = Some(status);
                    return status;
                }
                Ok(None) if Instant::now() >= deadline => {
                    let _ = d.child.kill();
                    let status = d.child.wait().ok();
                    d.exited = status;
                    let report = self.report();
                    panic!(
                        "{name} (pid {pid}) did not exit within {timeout:?} of SIG{signal}\n{report}"
                    );
                }
                Ok(None) => sleep(Duration::from_millis(20)),
                Err(e) => panic!("waiting for {name}: {e}"),
            }
        }
    }

    /// Starts the daemon called `name` again, exactly as it was last started (same namespace,
    /// command and environment; its log is appended to). Returns the new pid.
    pub fn restart(&mut self, name: &str) -> u32 {
        let d = self
            .daemons
            .iter()
            .rev()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("no daemon called {name}"));
        assert!(
            d.stopped || d.exited.is_some(),
            "{name} is still running; stop it first"
        );
        let (ns, argv, env) = (d.ns.clone(), d.argv.clone(), d.env.clone());
        self.launch(&ns, name, argv, env, true)
    }

    /// Adds a command whose output [`Lab::report`] includes (e.g. a daemon's session summary).
    pub fn add_status(&mut self, label: &str, ns: &str, argv: &[&str]) {
        self.status.push(Status {
            label: label.to_string(),
            ns: ns.to_string(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
        });
    }

    /// An error naming every daemon that has exited.
    pub fn check_daemons(&mut self) -> Result<(), String> {
        let mut dead = Vec::new();
        for d in &mut self.daemons {
            if d.exited.is_none() {
                d.exited = d.child.try_wait().ok().flatten();
            }
            if d.stopped {
                continue;
            }
            if let Some(status) = d.exited {
                dead.push(format!("{} exited ({status})", d.name));
            }
        }
        if dead.is_empty() {
            Ok(())
        } else {
            Err(dead.join(", "))
        }
    }

    /// Status commands' output and the daemons' logs (last 200 lines each), for failure messages.
    pub fn report(&mut self) -> String {
        let _ = self.check_daemons();
        let mut out = String::new();
        for s in &self.status {
            let argv: Vec<&str> = s.argv.iter().map(String::as_str).collect();
            let result = netns_exec(&s.ns, &argv).unwrap_or_else(|e| e);
            out.push_str(&format!("\n===== {} =====\n{result}", s.label));
        }
        for (i, d) in self.daemons.iter().enumerate() {
            let state = match (d.exited, d.stopped) {
                (Some(status), true) => format!("stopped by the test: {status}"),
                (Some(status), false) => format!("exited: {status}"),
                (None, _) => "running".to_string(),
            };
            // A restarted daemon appends to the same log: print it once, after its last start.
            if self.daemons[i + 1..].iter().any(|later| later.log == d.log) {
                out.push_str(&format!(
                    "\n===== {} (pid {}, {state}): log below, with its restart =====\n",
                    d.name,
                    d.child.id()
                ));
                continue;
            }
            let log = fs::read(&d.log).map(|b| text(&b)).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(200)..].join("\n");
            out.push_str(&format!(
                "\n===== {} (pid {}, {state}) log {} =====\n{tail}\n",
                d.name,
                d.child.id(),
                d.log.display()
            ));
        }
        out
    }

    /// Polls `check` every `every` until it returns Ok, failing the test (with [`Lab::report`])
    /// when `timeout` passes or a daemon dies first.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        every: Duration,
        mut check: impl FnMut(&Lab) -> Result<T, String>,
    ) -> T {
        let start = Instant::now();
        loop {
            let result = check(self);
            let last = match result {
                Ok(value) => return value,
                Err(e) => e,
            };
            if let Err(dead) = self.check_daemons() {
                let report = self.report();
                panic!("while waiting for {what}: {dead}\nlast check: {last}\n{report}");
            }
            if start.elapsed() >= timeout {
                let report = self.report();
                panic!("timed out after {timeout:?} waiting for {what}\n{last}\n{report}");
            }
            sleep(every);
        }
    }

    /// Starts gobgpd in `ns` with `config` and its API on 127.0.0.1:`api_port` (inside `ns`), and
    /// waits until the API answers.
    pub fn start_gobgpd(&mut self, ns: &str, name: &str, config: &Path, api_port: u16) -> Gobgp {
        let api = format!("127.0.0.1:{api_port}");
        let config = config.to_str().expect("UTF-8 path");
        self.spawn(ns, name, &[GOBGPD, "-f", config, "--api-hosts", &api]);
        let gobgp = Gobgp {
            ns: ns.to_string(),
            port: api_port,
        };
        self.add_status(
            &format!("{name}: gobgp neighbor"),
            ns,
            &[GOBGP, "-p", &api_port.to_string(), "neighbor"],
        );
        self.wait_for(
            &format!("{name}'s API"),
            Duration::from_secs(15),
            Duration::from_millis(100),
            |_| gobgp.cli(&["global"]),
        );
        gobgp
    }

    /// Starts gobgpd in the upstream namespace as AS `local_as`, listening on port 179 and
    /// peering (passively: the speaker must connect) with the speaker's IPv4 address for
    /// ipv4-unicast and its IPv6 address for ipv6-unicast, both as AS `peer_as`. Returns once both
    /// neighbors are configured.
    pub fn start_upstream(&mut self, api_port: u16, local_as: u32, peer_as: u32) -> Gobgp {
        self.start_upstream_with(api_port, local_as, peer_as, None)
    }

    /// [`Lab::start_upstream`] with graceful restart (RFC 4724) on both neighbors when
    /// `graceful_restart` is `Some(restart_time)`: routes of a speaker whose session ends without
    /// a NOTIFICATION are kept, marked stale ([`Gobgp::stale`]), for up to that many seconds.
    pub fn start_upstream_with(
        &mut self,
        api_port: u16,
        local_as: u32,
        peer_as: u32,
        graceful_restart: Option<u32>,
    ) -> Gobgp {
        let mut toml = format!(
            "[global.config]\n  as = {local_as}\n  router-id = \"{UPSTREAM_V4}\"\n  port = 179\n"
        );
        for (address, family) in [(SPEAKER_V4, "ipv4-unicast"), (SPEAKER_V6, "ipv6-unicast")] {
            toml.push_str(&format!(
                "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{address}\"\n    \
                 peer-as = {peer_as}\n  [neighbors.transport.config]\n    passive-mode = true\n  \
                 [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      \
                 afi-safi-name = \"{family}\"\n"
            ));
            if let Some(time) = graceful_restart {
                toml.push_str(&format!(
                    "    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n  \
                     [neighbors.graceful-restart.config]\n    enabled = true\n    \
                     restart-time = {time}\n"
                ));
            }
        }
        let config = self.dir().join("upstream-gobgpd.toml");
        fs::write(&config, toml).expect("write upstream config");
        let ns = self.upstream.clone();
        let gobgp = self.start_gobgpd(&ns, "upstream-gobgpd", &config, api_port);
        self.wait_for(
            "the upstream's neighbors",
            Duration::from_secs(15),
            Duration::from_millis(100),
            |_| {
                let peers = gobgp.neighbor_count()?;
                if peers == 2 {
                    Ok(())
                } else {
                    Err(format!("{peers} neighbors configured"))
                }
            },
        );
        gobgp
    }

    /// Starts FRR's bgpd in `ns` in the foreground, without zebra, with its vty socket and pid file
    /// in `<dir>/<name>/`. Returns the vty socket dir.
    pub fn start_bgpd(&mut self, ns: &str, name: &str, config: &Path) -> PathBuf {
        let run = self.dir().join(name);
        fs::create_dir_all(&run).expect("create bgpd run dir");
        let vty = run.to_string_lossy().into_owned();
        let pid_file = run.join("bgpd.pid").to_string_lossy().into_owned();
        let config = config.to_str().expect("UTF-8 path");
        self.spawn(
            ns,
            name,
            &[
                BGPD,
                "-f",
                config,
                "-Z",
                "-S",
                "--vty_socket",
                &vty,
                "-i",
                &pid_file,
                "--log",
                "stdout",
            ],
        );
        if find_program(VTYSH).is_some() {
            self.add_status(
                &format!("{name}: show bgp summary"),
                ns,
                &[
                    VTYSH,
                    "--vty_socket",
                    &vty,
                    "-d",
                    "bgpd",
                    "-c",
                    "show bgp summary",
                ],
            );
        }
        run
    }

    /// Starts BIRD in `ns` in the foreground with `config` (made absolute), its control socket and
    /// pid file in `<dir>/<name>/`. Returns the control socket's path.
    pub fn start_bird(&mut self, ns: &str, name: &str, config: &Path) -> PathBuf {
        let run = self.dir().join(name);
        fs::create_dir_all(&run).expect("create bird run dir");
        let socket = run.join("bird.ctl");
        let socket_str = socket.to_string_lossy().into_owned();
        let pid_file = run.join("bird.pid").to_string_lossy().into_owned();
        let config = std::path::absolute(config).expect("absolute config path");
        let config = config.to_str().expect("UTF-8 path");
        self.spawn(
            ns,
            name,
            &[BIRD, "-f", "-c", config, "-s", &socket_str, "-P", &pid_file],
        );
        if find_program(BIRDC).is_some() {
            self.add_status(
                &format!("{name}: show protocols all"),
                ns,
                &[BIRDC, "-s", &socket_str, "show", "protocols", "all"],
            );
        }
        socket
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Stop the daemons: SIGTERM, then SIGKILL after 3 s.
        for d in &mut self.daemons {
            if d.exited.is_none() && matches!(d.child.try_wait(), Ok(None)) {
                let pid = d.child.id().to_string();
                let termed = Command::new("kill")
                    .args(["-TERM", &pid])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !termed {
                    let _ = d.child.kill();
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for d in &mut self.daemons {
            loop {
                match d.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = d.child.kill();
                        let _ = d.child.wait();
                        break;
                    }
                    Ok(None) => sleep(Duration::from_millis(20)),
                }
            }
            // Every FRR daemon start leaves /var/tmp/frr/<daemon>.<pid>/ behind.
            let frr = PathBuf::from(format!("/var/tmp/frr/{}.{}", d.program, d.child.id()));
            if frr.is_dir() {
                let _ = fs::remove_dir_all(&frr);
            }
        }
        for ns in self.namespaces.iter().rev() {
            let deleted = Command::new(program(IP))
                .args(["netns", "del", ns])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !deleted {
                eprintln!("warning: could not delete network namespace {ns}");
            }
        }
        if let Some(dir) = self.dir.take()
            && std::env::var(KEEP_ENV).is_ok_and(|v| v == "1")
        {
            eprintln!("{KEEP_ENV}=1: lab files kept in {}", dir.keep().display());
        }
    }
}

/// One path in a gobgpd RIB.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RibPath {
    pub prefix: IpNet,
    pub next_hop: Option<IpAddr>,
    /// The peer it was learned from (None for local paths).
    pub neighbor: Option<IpAddr>,
}

/// A gobgpd reached with the `gobgp` CLI inside its namespace.
#[derive(Debug, Clone)]
pub struct Gobgp {
    pub ns: String,
    pub port: u16,
}

impl Gobgp {
    /// `gobgp -p PORT ARGS...` inside the namespace: stdout, or the error.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let port = self.port.to_string();
        let argv: Vec<&str> = [GOBGP, "-p", &port]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        netns_exec(&self.ns, &argv)
    }

    pub fn neighbor_count(&self) -> Result<usize, String> {
        let json = self.cli(&["neighbor", "-j"])?;
        let value: Value = serde_json::from_str(&json).map_err(|e| format!("{e}: {json}"))?;
        Ok(value.as_array().map_or(0, Vec::len))
    }

    /// `gobgp neighbor ADDRESS -j`: the peer as gobgpd reports it (state, timers, messages).
    pub fn neighbor(&self, address: &str) -> Result<Value, String> {
        let json = self.cli(&["neighbor", address, "-j"])?;
        serde_json::from_str(&json)
            .map_err(|e| format!("neighbor {address} is not JSON ({e}): {json}"))
    }

    /// Both families of the global RIB.
    pub fn rib(&self) -> Result<Vec<RibPath>, String> {
        let mut paths = self.rib_family("ipv4")?;
        paths.extend(self.rib_family("ipv6")?);
        paths.sort();
        Ok(paths)
    }

    /// `family`: ipv4 or ipv6.
    pub fn rib_family(&self, family: &str) -> Result<Vec<RibPath>, String> {
        let json = self.cli(&["global", "rib", "-a", family, "-j"])?;
        parse_rib(&json)
    }

    /// The prefixes of both families whose paths gobgpd keeps as stale (graceful restart: their
    /// speaker's session ended without a NOTIFICATION and has not sent them again yet).
    pub fn stale(&self) -> Result<BTreeSet<IpNet>, String> {
        let mut stale = BTreeSet::new();
        for family in ["ipv4", "ipv6"] {
            let json = self.cli(&["global", "rib", "-a", family, "-j"])?;
            let value: Value = serde_json::from_str(&json)
                .map_err(|e| format!("RIB is not JSON ({e}): {json}"))?;
            for (key, list) in value.as_object().into_iter().flatten() {
                for path in list.as_array().into_iter().flatten() {
                    if path["stale"].as_bool() == Some(true) {
                        let prefix = path["nlri"]["prefix"].as_str().unwrap_or(key);
                        stale.insert(
                            prefix
                                .parse()
                                .map_err(|_| format!("bad prefix {prefix:?}"))?,
                        );
                    }
                }
            }
        }
        Ok(stale)
    }

    /// The set of prefixes in both families of the global RIB.
    pub fn prefixes(&self) -> Result<BTreeSet<IpNet>, String> {
        Ok(self.rib()?.into_iter().map(|p| p.prefix).collect())
    }

    /// Adds a local path; without a next hop gobgpd uses the session's local address.
    pub fn add_path(&self, prefix: IpNet, next_hop: Option<IpAddr>) -> Result<(), String> {
        let prefix = prefix.to_string();
        let next_hop = next_hop.map(|n| n.to_string());
        let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let mut args = vec!["global", "rib", "add", &prefix];
        if let Some(n) = &next_hop {
            args.extend(["nexthop", n]);
        }
        args.extend(["-a", family]);
        self.cli(&args).map(drop)
    }
}

/// Parses `gobgp global rib -a FAMILY -j`: an object from prefix to paths, each with `nlri.prefix`,
/// `neighbor-ip` and `attrs`, where the next hop is attribute 3 (`nexthop`, IPv4) or 14
/// (MP_REACH_NLRI `nexthop`, IPv6).
/// A RIB as one line for failure reports: `10.16.0.5/32 via 192.0.2.1 from 192.0.2.1, ...`.
pub fn show_rib(rib: &std::collections::BTreeSet<RibPath>) -> String {
    rib.iter()
        .map(|p| {
            let hop = p.next_hop.map_or("-".to_string(), |h| h.to_string());
            let from = p.neighbor.map_or("local".to_string(), |n| n.to_string());
            format!("{} via {hop} from {from}", p.prefix)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn parse_rib(json: &str) -> Result<Vec<RibPath>, String> {
    let value: Value =
        serde_json::from_str(json).map_err(|e| format!("RIB is not JSON ({e}): {json}"))?;
    let table = value
        .as_object()
        .ok_or_else(|| format!("RIB is not an object: {json}"))?;
    let mut paths = Vec::new();
    for (key, list) in table {
        for path in list.as_array().into_iter().flatten() {
            let prefix = path["nlri"]["prefix"].as_str().unwrap_or(key);
            let prefix: IpNet = prefix
                .parse()
                .map_err(|_| format!("bad prefix {prefix:?} in {json}"))?;
            let next_hop = path["attrs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| matches!(a["type"].as_u64(), Some(3 | 14)))
                .find_map(|a| a["nexthop"].as_str()?.parse().ok());
            let neighbor = path["neighbor-ip"].as_str().and_then(|n| n.parse().ok());
            paths.push(RibPath {
                prefix,
                next_hop,
                neighbor,
            });
        }
    }
    Ok(paths)
}
