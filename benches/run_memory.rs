//! The sidecar's memory with a large cluster watched (docs/design.md section 8: "Sidecar memory with
//! 100,000 pods watched: under 150 MB RSS").
//!
//! The synthetic cluster of `bgpgen::synth` (default: 1,000 nodes, 100,000 pods, 10,000 services,
//! 1,000 subnets, 1,000 EIPs, dual-stack) is loaded into the in-process Kubernetes API double
//! (`tests/common/apiserver.rs`); the release binary runs as `bgpgen run --kubeconfig ...
//! --backend B` against a real daemon started here in the root namespace without a BGP listener
//! (`--backend bird|gobgp|frr|all`, default bird: BIRD with passive sessions to loopback
//! neighbours that never answer; gobgpd with `port = -1` and its API on a Unix socket; bgpd with
//! `-p 0 -P 0` and its vty socket in the run's directory): only bgpgen is measured. Once `/readyz` is ready and
//! routes are announced, bgpgen's VmRSS and VmHWM (peak) are read from `/proc/PID/status`; then
//! pods are annotated, un-annotated, added and deleted one at a time through the double (each
//! waited for until bgpgen applied it) and RSS is read again, to catch growth.
//!
//! Only bgpgen's PID is measured: the API double lives in this bench process and is not counted.
//!
//! Two list behaviours are measured (`--paging`): `on`, where `limit=500` pages are honoured, as
//! kube-apiserver does for the lists bgpgen sends (served from etcd); and `off`, where every list
//! is answered in one page, as kube-apiserver does for `resourceVersion=0` lists (served from the
//! watch cache, `limit` ignored). bgpgen sent those until the first run of this bench showed 1 GB
//! for them; `off` is kept to show what such a list costs.
//!
//! ```sh
//! cargo build --release
//! cargo bench --bench run_memory                  # full size, both paging modes
//! cargo bench --bench run_memory -- --smoke       # 2,000 pods
//! cargo bench --bench run_memory -- --pods 50000 --paging on --changes 20
//! ```
//!
//! `BGPGEN_BIN` overrides `target/release/bgpgen`. `BGPGEN_WRAPPER` (e.g. `heaptrack -o
//! /tmp/bgpgen`) runs bgpgen under a profiler; the bgpgen process below it is the one measured.
//! Results: a markdown table on stdout and `target/bench-results/run_memory.json`
//! (`run_memory-smoke.json` with `--smoke`). Needs the daemons of the backends run (`bird` and
//! `birdc`; `gobgpd` and `gobgp`; FRR's `bgpd`, `vtysh` and `frr-reload.py`) and root (BIRD's
//! BGP listener).
//!
//! The peak during the relist and during the churn are each measured from a reset of the
//! process's peak RSS (`echo 5 > /proc/PID/clear_refs`), so they are those phases' own.

#[allow(dead_code)]
#[path = "../tests/common/apiserver.rs"]
mod apiserver;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bgpgen_bench::synth::{Cluster, Format, Spec, generate};
use serde_json::{Value, json};

use apiserver::ApiServer;

/// docs/design.md section 8, read as decimal megabytes (the stricter reading: 143.05 MiB).
const BUDGET_BYTES: f64 = 150e6;
const BGP: &str = "ovn.kubernetes.io/bgp";
const OPTIONS: &str =
    "# Speaker options of the run_memory bench: loopback neighbours, passive sessions.
neighbor-address: 127.0.0.2
neighbor-ipv6-address: \"::1\"
neighbor-as: 65001
cluster-as: 65000
node-name: node-00000
router-id: 172.16.0.10
announce-cluster-ip: true
passivemode: true
";

// ---------------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Paging {
    Off,
    On,
}

impl Paging {
    fn name(self) -> &'static str {
        match self {
            Paging::Off => "one page",
            Paging::On => "limit=500 pages",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Paging::Off => "unpaged",
            Paging::On => "paged",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Bird,
    Gobgp,
    Frr,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Bird => "bird",
            Backend::Gobgp => "gobgp",
            Backend::Frr => "frr",
        }
    }
}

struct Args {
    smoke: bool,
    backends: Vec<Backend>,
    pods: Option<usize>,
    paging: Vec<Paging>,
    changes: usize,
    /// Steady churn after the changes and the relist: changes per second, for this long.
    churn_rate: u32,
    churn_secs: u64,
}

const USAGE: &str = "usage: run_memory [--smoke] [--backend bird|gobgp|frr|all[,...]] [--pods N] [--paging off|on|both] [--changes N] [--churn-rate N] [--churn-secs S]";

fn parse_args() -> Args {
    let mut args = Args {
        smoke: false,
        backends: vec![Backend::Bird],
        pods: None,
        paging: vec![Paging::Off, Paging::On],
        changes: 50,
        churn_rate: 100,
        churn_secs: 60,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .unwrap_or_else(|| panic!("{name} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            "--smoke" => args.smoke = true,
            "--backend" => {
                args.backends = Vec::new();
                for b in value("--backend").split(',') {
                    match b {
                        "bird" => args.backends.push(Backend::Bird),
                        "gobgp" => args.backends.push(Backend::Gobgp),
                        "frr" => args.backends.push(Backend::Frr),
                        "all" => {
                            args.backends
                                .extend([Backend::Gobgp, Backend::Frr, Backend::Bird]);
                        }
                        other => panic!("--backend {other:?}: bird, gobgp, frr or all\n{USAGE}"),
                    }
                }
            }
            "--pods" => {
                args.pods = Some(value("--pods").parse().expect("--pods: a number"));
            }
            "--changes" => {
                args.changes = value("--changes").parse().expect("--changes: a number");
            }
            "--churn-rate" => {
                args.churn_rate = value("--churn-rate")
                    .parse()
                    .expect("--churn-rate: a number");
            }
            "--churn-secs" => {
                args.churn_secs = value("--churn-secs")
                    .parse()
                    .expect("--churn-secs: a number");
            }
            "--paging" => {
                args.paging = match value("--paging").as_str() {
                    "off" => vec![Paging::Off],
                    "on" => vec![Paging::On],
                    "both" => vec![Paging::Off, Paging::On],
                    other => panic!("--paging {other:?}: off, on or both\n{USAGE}"),
                }
            }
            other => panic!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    args
}

fn spec(args: &Args) -> Spec {
    let mut spec = if args.smoke {
        Spec {
            nodes: 100,
            pods: 2_000,
            services: 200,
            subnets: 50,
            eips: 50,
            ..Spec::default()
        }
    } else {
        Spec::default()
    };
    if let Some(p) = args.pods {
        spec.pods = p;
    }
    spec
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// A child process stopped on drop (also when unwinding from a panic): SIGTERM to `term_pid`
/// (the process itself, or the measured process below a wrapper), then SIGKILL after `grace`.
struct Guard {
    name: &'static str,
    child: Child,
    term_pid: u32,
    grace: Duration,
}

impl Guard {
    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(status)) => Some(format!("{} exited ({status})", self.name)),
            Err(e) => Some(format!("{}: {e}", self.name)),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        // SAFETY: kill(2) on a pid this bench started (the child, or the process it exec'd
        // below a wrapper); no memory is touched.
        unsafe {
            libc::kill(self.term_pid as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{} did not stop after SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.term_pid != self.child.id() {
            // SAFETY: as above.
            unsafe {
                libc::kill(self.term_pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }
}

/// VmRSS, VmHWM, RssAnon and RssFile of `pid`, in KiB.
#[derive(Debug, Clone, Copy, Default)]
struct Mem {
    rss: u64,
    hwm: u64,
    anon: u64,
    file: u64,
}

fn mem(pid: u32) -> Option<Mem> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some(Mem {
        rss: field("VmRSS:"),
        hwm: field("VmHWM:"),
        anon: field("RssAnon:"),
        file: field("RssFile:"),
    })
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn budget_share(kib: u64) -> f64 {
    kib as f64 * 1024.0 / BUDGET_BYTES
}

fn parent(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields start after the last ')'.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The process running `exe`: `root` itself, or (below a wrapper) a descendant of it.
fn find_exe(root: u32, exe: &Path) -> Option<u32> {
    let is_exe = |pid: u32| {
        fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe)
            // Valgrind and friends keep their own exe: match the command line instead.
            || fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                c.split(|&b| b == 0).next().is_some_and(|a0| Path::new(std::str::from_utf8(a0).unwrap_or("")) == exe)
            })
    };
    if is_exe(root) {
        return Some(root);
    }
    fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| is_exe(pid))
        .find(|&pid| {
            let mut p = pid;
            for _ in 0..16 {
                match parent(p) {
                    Some(pp) if pp == root => return true,
                    Some(pp) if pp > 1 => p = pp,
                    _ => return false,
                }
            }
            false
        })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A plain HTTP/1.1 GET: (status, body).
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Some((code, body))
}

/// The numbers of `/metrics` the bench follows.
#[derive(Debug, Default, Clone, Copy)]
struct Metrics {
    routes: u64,
    applies: u64,
    applies_failed: u64,
    last_apply_s: f64,
    last_success_unix: f64,
}

fn metrics(addr: SocketAddr) -> Option<Metrics> {
    let (code, body) = http_get(addr, "/metrics")?;
    if code != 200 {
        return None;
    }
    let mut m = Metrics::default();
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let v: f64 = value.parse().unwrap_or(0.0);
        if name.starts_with("bgpgen_routes_announced") {
            m.routes += v as u64;
        } else if name.starts_with("bgpgen_applies_total") {
            m.applies += v as u64;
            if name.contains("failed") {
                m.applies_failed += v as u64;
            }
        } else if name == "bgpgen_last_apply_duration_seconds" {
            m.last_apply_s = v;
        } else if name == "bgpgen_last_successful_apply_timestamp_seconds" {
            m.last_success_unix = v;
        }
    }
    Some(m)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn bgpgen_bin() -> PathBuf {
    let bin = std::env::var_os("BGPGEN_BIN").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/bgpgen"),
        PathBuf::from,
    );
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --release` first (or set BGPGEN_BIN)",
        bin.display()
    );
    fs::canonicalize(&bin).expect("canonical bgpgen path")
}

/// Starts a daemon with its stdout and stderr in `log`, stopped (SIGTERM, 5 s grace) when the
/// guard drops; `package` is the Debian package to name when it cannot start.
fn spawn_logged(name: &'static str, mut command: Command, log: &Path, package: &str) -> Guard {
    let file = fs::File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let child = command
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log"))
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("start {name} (is {package} installed?): {e}"));
    let term_pid = child.id();
    Guard {
        name,
        child,
        term_pid,
        grace: Duration::from_secs(5),
    }
}

fn start_bird(dir: &Path) -> (Guard, PathBuf) {
    let conf = dir.join("bird.conf");
    // bgpgen's first apply replaces this file and reconfigures BIRD.
    fs::write(&conf, "router id 127.0.0.1;\nprotocol device {\n}\n").expect("write bird.conf");
    let socket = dir.join("bird.ctl");
    let mut bird = Command::new("bird");
    bird.arg("-f")
        .arg("-c")
        .arg(&conf)
        .arg("-s")
        .arg(&socket)
        .arg("-P")
        .arg(dir.join("bird.pid"));
    let mut guard = spawn_logged("bird", bird, &dir.join("bird.log"), "bird2");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(e) = guard.exited() {
            panic!("{e}: {}", tail(&dir.join("bird.log"), 20));
        }
        let ok = Command::new("birdc")
            .arg("-s")
            .arg(&socket)
            .args(["show", "status"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return (guard, socket);
        }
        assert!(
            Instant::now() < deadline,
            "bird does not answer on {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `probe` succeeds (the daemon answers on its control socket).
fn wait_answers(guard: &mut Guard, log: &Path, what: &str, probe: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(e) = guard.exited() {
            panic!("{e}: {}", tail(log, 20));
        }
        if probe() {
            return;
        }
        assert!(Instant::now() < deadline, "{what} does not answer");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn quiet(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// gobgpd without a BGP listener (`port = -1`) and without pprof, its API on a Unix socket in
/// `dir`; its `[global]` is the intent's (bgpgen attaches and checks it). Returns the guard and
/// bgpgen's daemon flags.
fn start_gobgpd(dir: &Path) -> (Guard, Vec<String>) {
    let conf = dir.join("gobgpd-start.toml");
    fs::write(
        &conf,
        "[global.config]\n  as = 65000\n  router-id = \"172.16.0.10\"\n  port = -1\n",
    )
    .expect("write gobgpd config");
    let api = format!("unix://{}", dir.join("gobgpd.sock").display());
    let log_path = dir.join("gobgpd.log");
    let mut gobgpd = Command::new("gobgpd");
    gobgpd
        .arg("-f")
        .arg(&conf)
        .args(["-t", "toml", "--pprof-disable", "--api-hosts", &api]);
    let mut guard = spawn_logged("gobgpd", gobgpd, &log_path, "gobgpd");
    wait_answers(&mut guard, &log_path, "gobgpd", || {
        quiet(Command::new("gobgp").args(["--target", &api, "global"]))
    });
    let flags = vec![
        "--config-file".into(),
        dir.join("gobgpd.toml").display().to_string(),
        "--gobgp-api".into(),
        api,
    ];
    (guard, flags)
}

/// bgpd alone (no zebra), without a BGP listener (`-p 0`) or TCP vty (`-P 0`), its vty socket in
/// `dir/frr`, holding the speaker's header (`router bgp`, neighbors, graceful restart: `bgpgen
/// render` of an empty cluster with `options`, loaded through `vtysh -f`) as a bgpd started from
/// a rendered file has it: `frr-reload.py` cannot add `bgp graceful-restart-disable` to a running
/// instance, so bgpgen's first whole apply to a bgpd without `router bgp` fails. Returns the
/// guard and bgpgen's daemon flags.
fn start_bgpd(dir: &Path, options: &Path) -> (Guard, Vec<String>) {
    let run = dir.join("frr");
    fs::create_dir_all(&run).expect("frr dir");
    let conf = run.join("frr.conf");
    fs::write(&conf, "frr defaults traditional\n").expect("write frr.conf");
    let vty = run.display().to_string();
    let log_path = dir.join("bgpd.log");
    let mut bgpd = Command::new("/usr/lib/frr/bgpd");
    bgpd.arg("-f")
        .arg(&conf)
        .args(["-Z", "-S", "-p", "0", "-P", "0", "--vty_socket", &vty, "-i"])
        .arg(run.join("bgpd.pid"))
        .args(["--log", "stdout"]);
    let mut guard = spawn_logged("bgpd", bgpd, &log_path, "frr");
    wait_answers(&mut guard, &log_path, "bgpd", || {
        quiet(Command::new("vtysh").args([
            "--vty_socket",
            &vty,
            "-d",
            "bgpd",
            "-c",
            "show version",
        ]))
    });
    let empty = dir.join("empty.json");
    fs::write(
        &empty,
        r#"{"apiVersion": "v1", "kind": "List", "items": []}"#,
    )
    .expect("empty list");
    let header = Command::new(bgpgen_bin())
        .args(["render", "--backend", "frr", "--dry-run", "-f"])
        .arg(&empty)
        .arg("--options")
        .arg(options)
        .stderr(Stdio::null())
        .output()
        .expect("bgpgen render");
    assert!(
        header.status.success(),
        "bgpgen render of the FRR header failed"
    );
    let header_file = dir.join("frr-header.conf");
    fs::write(&header_file, &header.stdout).expect("write the FRR header");
    // vtysh reports the warnings of the commands (graceful restart, no RIB) but applies them.
    let _ = Command::new("vtysh")
        .args(["--vty_socket", &vty, "-f"])
        .arg(&header_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let flags = vec![
        "--config-file".into(),
        conf.display().to_string(),
        "--frr-vty-socket".into(),
        vty,
    ];
    (guard, flags)
}

/// Resets the peak RSS (VmHWM) of `pid` to its current RSS, so the next read is the peak of
/// what follows.
fn reset_peak(pid: u32) {
    if let Err(e) = fs::write(format!("/proc/{pid}/clear_refs"), "5") {
        eprintln!("   could not reset the peak RSS of {pid}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster and the changes
// ---------------------------------------------------------------------------------------------

fn s<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// Ready subnets without a `bgp` annotation (so a pod's own annotation alone decides), with their
/// IPv4 and IPv6 networks.
fn plain_ready_subnets(cluster: &Cluster) -> HashMap<String, (Ipv4Addr, Ipv6Addr)> {
    cluster
        .subnets
        .iter()
        .filter(|sub| {
            sub.pointer("/metadata/annotations")
                .and_then(|a| a.get(BGP))
                .is_none()
                && sub
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
        })
        .filter_map(|sub| {
            let mut v4 = None;
            let mut v6 = None;
            for cidr in s(sub, "/spec/cidrBlock")?.split(',') {
                match cidr.parse::<ipnet::IpNet>().ok()? {
                    ipnet::IpNet::V4(n) => v4 = Some(n.network()),
                    ipnet::IpNet::V6(n) => v6 = Some(n.network()),
                }
            }
            Some((s(sub, "/metadata/name")?.to_string(), (v4?, v6?)))
        })
        .collect()
}

/// A pod whose own annotation alone decides whether its two addresses (IPv4 and IPv6) are
/// announced: running, not terminating, not on the host network, no secondary network, in a
/// ready subnet without annotation.
fn simple_pod(pod: &Value, subnets: &HashMap<String, (Ipv4Addr, Ipv6Addr)>) -> bool {
    let ann = &pod["metadata"]["annotations"];
    pod["spec"]["hostNetwork"] != true
        && pod["status"]["phase"] == "Running"
        && pod["metadata"].get("deletionTimestamp").is_none()
        && ann.get("k8s.v1.cni.cncf.io/networks").is_none()
        && s(ann, "/ovn.kubernetes.io~1ip_address").is_some_and(|ips| ips.contains(','))
        && s(ann, "/ovn.kubernetes.io~1logical_switch").is_some_and(|l| subnets.contains_key(l))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Annotate,
    Unannotate,
    Add,
    Delete,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Annotate => "annotate",
            Op::Unannotate => "unannotate",
            Op::Add => "add",
            Op::Delete => "delete",
        }
    }

    /// Routes announced after it minus before.
    fn delta(self) -> i64 {
        match self {
            Op::Annotate | Op::Add => 2,
            Op::Unannotate | Op::Delete => -2,
        }
    }
}

/// One change to make through the API double.
enum Change {
    /// Set (`Some`) or remove (`None`) the `bgp` annotation of a pod.
    Annotate {
        ns: String,
        name: String,
        value: Option<&'static str>,
    },
    Add(Value),
    Delete {
        ns: String,
        name: String,
    },
}

/// `n` changes, cycling annotate, unannotate, add, delete; each moves the route count by 2.
fn plan_changes(cluster: &Cluster, n: usize) -> Vec<(Op, Change)> {
    let subnets = plain_ready_subnets(cluster);
    let key = |p: &Value| {
        (
            s(p, "/metadata/namespace").unwrap_or("").to_string(),
            s(p, "/metadata/name").unwrap_or("").to_string(),
        )
    };
    let simple: Vec<&Value> = cluster
        .pods
        .iter()
        .filter(|p| simple_pod(p, &subnets))
        .collect();
    let announced = |p: &&&Value| {
        matches!(
            p["metadata"]["annotations"][BGP].as_str(),
            Some("true" | "cluster")
        )
    };
    let mut unannotated = simple
        .iter()
        .filter(|p| p["metadata"]["annotations"].get(BGP).is_none());
    let mut annotated = simple.iter().filter(announced);
    let template = *simple
        .iter()
        .find(|p| p["metadata"]["annotations"].get(BGP).is_none())
        .expect("an unannotated pod to copy");
    let used: HashSet<IpAddr> = cluster
        .pods
        .iter()
        .filter_map(|p| s(p, "/metadata/annotations/ovn.kubernetes.io~1ip_address"))
        .flat_map(|ips| ips.split(','))
        .filter_map(|ip| ip.parse().ok())
        .collect();
    let mut subnet_names: Vec<&String> = subnets.keys().collect();
    subnet_names.sort();
    let mut next_host = 200u32;
    let mut changes = Vec::with_capacity(n);
    for i in 0..n {
        let op = [Op::Annotate, Op::Unannotate, Op::Add, Op::Delete][i % 4];
        let change = match op {
            Op::Annotate => {
                let (ns, name) = key(unannotated.next().expect("enough unannotated pods"));
                Change::Annotate {
                    ns,
                    name,
                    value: Some("true"),
                }
            }
            Op::Unannotate => {
                let (ns, name) = key(annotated.next().expect("enough announced pods"));
                Change::Annotate {
                    ns,
                    name,
                    value: None,
                }
            }
            Op::Delete => {
                let (ns, name) = key(annotated.next().expect("enough announced pods"));
                Change::Delete { ns, name }
            }
            Op::Add => {
                // A copy of a real pod, in a plain ready subnet, on addresses nobody holds.
                let subnet = subnet_names[i % subnet_names.len()];
                let (net4, net6) = subnets[subnet];
                let (v4, v6) = loop {
                    let v4 = Ipv4Addr::from(u32::from(net4) + next_host);
                    let v6 = Ipv6Addr::from(u128::from(net6) + u128::from(next_host));
                    next_host += 1;
                    if !used.contains(&IpAddr::V4(v4)) && !used.contains(&IpAddr::V6(v6)) {
                        break (v4, v6);
                    }
                };
                let mut pod = template.clone();
                let meta = &mut pod["metadata"];
                meta["name"] = json!(format!("bench-added-{i}"));
                meta["uid"] = json!(format!("00000000-0000-4000-9000-{i:012}"));
                meta["annotations"][BGP] = json!("true");
                meta["annotations"]["ovn.kubernetes.io/ip_address"] = json!(format!("{v4},{v6}"));
                meta["annotations"]["ovn.kubernetes.io/logical_switch"] = json!(subnet);
                pod["status"]["podIP"] = json!(v4.to_string());
                pod["status"]["podIPs"] = json!([{"ip": v4.to_string()}, {"ip": v6.to_string()}]);
                Change::Add(pod)
            }
        };
        changes.push((op, change));
    }
    changes
}

fn make_change(api: &ApiServer, change: &Change) {
    match change {
        Change::Annotate { ns, name, value } => {
            api.modify("pods", Some(ns), name, |p| {
                let ann = p["metadata"]["annotations"]
                    .as_object_mut()
                    .expect("annotations");
                match value {
                    Some(v) => {
                        ann.insert(BGP.into(), json!(v));
                    }
                    None => {
                        ann.remove(BGP);
                    }
                }
            });
        }
        Change::Add(pod) => {
            api.create(pod);
        }
        Change::Delete { ns, name } => {
            api.delete("pods", Some(ns), name)
                .expect("the pod to delete exists");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One measurement
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Run {
    backend: Option<Backend>,
    paging: Option<Paging>,
    /// The highest VmHWM read over the run (it is reset before the relist and the churn).
    peak: u64,
    load_s: f64,
    first_apply_s: f64,
    ready_s: f64,
    first_pipeline_s: f64,
    routes: u64,
    at_ready: Mem,
    settled: Mem,
    after_changes: Mem,
    /// RSS (KiB) after each change.
    rss_per_change: Vec<u64>,
    change_ms: Vec<f64>,
    /// After a relist of every kind (watch history expired, watches dropped: 410, list again).
    after_relist: Mem,
    relist_s: f64,
    /// Steady churn: changes made, applies seen, CPU seconds of bgpgen, wall seconds, and
    /// memory after.
    churn_changes: u64,
    churn_applies: u64,
    churn_cpu_s: f64,
    churn_wall_s: f64,
    after_churn: Mem,
    /// (seconds since start, VmRSS KiB), every 100 ms until ready.
    startup: Vec<(f64, u64)>,
    list_requests: u64,
    bgpgen_command: String,
}

fn measure(args: &Args, cluster: &Cluster, backend: Backend, paging: Paging) -> Run {
    let mut run = Run {
        backend: Some(backend),
        paging: Some(paging),
        ..Run::default()
    };
    let objects = cluster.all().count();
    eprintln!(
        "== {}, {}: loading {objects} objects into the API double",
        backend.name(),
        paging.name()
    );
    let api = ApiServer::start();
    api.set_paginate(paging == Paging::On);
    let t = Instant::now();
    api.apply_all(cluster.all());
    run.load_s = t.elapsed().as_secs_f64();

    let dir = tempfile::Builder::new()
        .prefix("bgpgen-run-memory")
        .tempdir()
        .expect("tempdir");
    let options = dir.path().join("speaker-options.yaml");
    fs::write(&options, OPTIONS).expect("write options");
    let (_daemon, daemon_flags) = match backend {
        Backend::Bird => {
            let (guard, socket) = start_bird(dir.path());
            let flags = vec![
                "--config-file".into(),
                dir.path().join("bird.conf").display().to_string(),
                "--bird-socket".into(),
                socket.display().to_string(),
            ];
            (guard, flags)
        }
        Backend::Gobgp => start_gobgpd(dir.path()),
        Backend::Frr => start_bgpd(dir.path(), &options),
    };

    let bin = bgpgen_bin();
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut bgpgen_args: Vec<String> = vec![
        "run".into(),
        "--kubeconfig".into(),
        api.kubeconfig_path().display().to_string(),
        "--options".into(),
        options.display().to_string(),
        "--backend".into(),
        backend.name().into(),
        "--metrics-addr".into(),
        addr.to_string(),
    ];
    bgpgen_args.extend(daemon_flags);
    let wrapper: Vec<String> = std::env::var("BGPGEN_WRAPPER")
        .map(|w| w.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let mut argv: Vec<String> = wrapper.clone();
    argv.push(bin.display().to_string());
    argv.extend(bgpgen_args);
    run.bgpgen_command = argv.join(" ");
    eprintln!("   $ {}", run.bgpgen_command);
    let log_path = dir.path().join("bgpgen.log");
    let log = fs::File::create(&log_path).expect("bgpgen log");
    let start_unix = unix_now();
    let started = Instant::now();
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start bgpgen");
    let child_pid = child.id();
    let mut bgpgen = Guard {
        name: "bgpgen",
        child,
        term_pid: child_pid,
        grace: Duration::from_secs(20),
    };
    let pid = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(pid) = find_exe(child_pid, &bin) {
                break pid;
            }
            if let Some(e) = bgpgen.exited() {
                panic!("{e}:\n{}", tail(&log_path, 40));
            }
            assert!(
                Instant::now() < deadline,
                "no process runs {} below pid {child_pid}",
                bin.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    bgpgen.term_pid = pid;

    // Until ready: /readyz 200 and routes announced. Sample RSS on the way.
    let wrapped = if wrapper.is_empty() { 1 } else { 20 };
    let ready_timeout = Duration::from_secs((60 + objects as u64 / 500) * wrapped);
    let mut next_sample = Instant::now();
    let ready_metrics = loop {
        if let Some(e) = bgpgen.exited() {
            panic!("{e}:\n{}", tail(&log_path, 40));
        }
        if Instant::now() >= next_sample {
            if let Some(m) = mem(pid) {
                run.startup.push((started.elapsed().as_secs_f64(), m.rss));
            }
            next_sample += Duration::from_millis(100);
        }
        if http_get(addr, "/readyz").is_some_and(|(c, _)| c == 200)
            && let Some(m) = metrics(addr).filter(|m| m.routes > 0)
        {
            break m;
        }
        assert!(
            started.elapsed() < ready_timeout,
            "bgpgen not ready after {ready_timeout:?}:\n{}",
            tail(&log_path, 40)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    run.ready_s = started.elapsed().as_secs_f64();
    run.at_ready = mem(pid).expect("bgpgen status");
    run.first_apply_s = ready_metrics.last_success_unix - start_unix;
    run.first_pipeline_s = ready_metrics.last_apply_s;
    run.routes = ready_metrics.routes;
    run.list_requests = api.list_count("pods");
    eprintln!(
        "   ready after {:.1} s: {} routes, VmRSS {:.1} MiB, VmHWM {:.1} MiB ({} pod list requests)",
        run.ready_s,
        run.routes,
        mib(run.at_ready.rss),
        mib(run.at_ready.hwm),
        run.list_requests
    );
    std::thread::sleep(Duration::from_secs(2));
    run.settled = mem(pid).expect("bgpgen status");

    // Changes, one at a time, each waited for.
    let mut expected = run.routes as i64;
    let mut last = metrics(addr).expect("metrics");
    let change_timeout = Duration::from_secs(30 * wrapped);
    for (i, (op, change)) in plan_changes(cluster, args.changes).iter().enumerate() {
        let t = Instant::now();
        make_change(&api, change);
        expected += op.delta();
        let m = loop {
            if let Some(e) = bgpgen.exited() {
                panic!("{e}:\n{}", tail(&log_path, 40));
            }
            if let Some(m) = metrics(addr)
                && m.applies > last.applies
                && m.routes as i64 == expected
            {
                break m;
            }
            assert!(
                t.elapsed() < change_timeout,
                "change {i} ({}) not applied after {change_timeout:?} (expected {expected} routes, metrics {:?}):\n{}",
                op.name(),
                metrics(addr),
                tail(&log_path, 20)
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(
            m.applies_failed,
            last.applies_failed,
            "an apply failed:\n{}",
            tail(&log_path, 20)
        );
        run.change_ms.push(t.elapsed().as_secs_f64() * 1e3);
        run.rss_per_change.push(mem(pid).map_or(0, |m| m.rss));
        last = m;
    }
    std::thread::sleep(Duration::from_secs(2));
    run.after_changes = mem(pid).expect("bgpgen status");
    eprintln!(
        "   after {} changes: VmRSS {:.1} MiB, VmHWM {:.1} MiB",
        args.changes,
        mib(run.after_changes.rss),
        mib(run.after_changes.hwm)
    );

    // A relist of every kind: the watch history expires and the watches drop, so each watcher
    // gets 410 Gone and lists again; bgpgen takes the new lists as they complete.
    let lists_before = api.list_count("pods");
    run.peak = run.after_changes.hwm;
    reset_peak(pid);
    let t = Instant::now();
    api.expire_history();
    api.drop_watches();
    loop {
        if let Some(e) = bgpgen.exited() {
            panic!("{e}:\n{}", tail(&log_path, 40));
        }
        if api.list_count("pods") > lists_before
            && api.open_watches("pods") > 0
            && http_get(addr, "/readyz").is_some_and(|(c, _)| c == 200)
        {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120 * wrapped),
            "no relist within 120 s:\n{}",
            tail(&log_path, 20)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    run.relist_s = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(3));
    run.after_relist = mem(pid).expect("bgpgen status");
    run.peak = run.peak.max(run.after_relist.hwm);
    eprintln!(
        "   after a relist ({:.1} s): VmRSS {:.1} MiB, VmHWM {:.1} MiB",
        run.relist_s,
        mib(run.after_relist.rss),
        mib(run.after_relist.hwm)
    );

    // Steady churn: announced pods lose and regain their annotation, `churn_rate` changes a
    // second, for `churn_secs`; bgpgen's CPU time (utime + stime) over that wall time.
    if args.churn_secs > 0 && args.churn_rate > 0 {
        let toggled = churn_pods(cluster, 200);
        let before = metrics(addr).expect("metrics");
        reset_peak(pid);
        let cpu0 = cpu_seconds(pid).expect("bgpgen stat");
        let t = Instant::now();
        let interval = Duration::from_secs_f64(1.0 / f64::from(args.churn_rate));
        let mut n: u64 = 0;
        while t.elapsed() < Duration::from_secs(args.churn_secs) {
            let (ns, name) = &toggled[n as usize % toggled.len()];
            let value = if (n as usize / toggled.len()).is_multiple_of(2) {
                None
            } else {
                Some("true")
            };
            make_change(
                &api,
                &Change::Annotate {
                    ns: ns.clone(),
                    name: name.clone(),
                    value,
                },
            );
            n += 1;
            let next = interval * n as u32;
            if let Some(wait) = next.checked_sub(t.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        run.churn_wall_s = t.elapsed().as_secs_f64();
        run.churn_cpu_s = cpu_seconds(pid).expect("bgpgen stat") - cpu0;
        run.churn_changes = n;
        std::thread::sleep(Duration::from_secs(2));
        run.churn_applies = metrics(addr).map_or(0, |m| m.applies) - before.applies;
        run.after_churn = mem(pid).expect("bgpgen status");
        run.peak = run.peak.max(run.after_churn.hwm);
        eprintln!(
            "   churn: {n} changes in {:.1} s, bgpgen CPU {:.2} s ({:.1}% of one core), {} applies; VmRSS {:.1} MiB, VmHWM {:.1} MiB",
            run.churn_wall_s,
            run.churn_cpu_s,
            100.0 * run.churn_cpu_s / run.churn_wall_s,
            run.churn_applies,
            mib(run.after_churn.rss),
            mib(run.after_churn.hwm)
        );
    }
    drop(bgpgen);
    run
}

/// Up to `n` announced simple pods, to toggle.
fn churn_pods(cluster: &Cluster, n: usize) -> Vec<(String, String)> {
    let subnets = plain_ready_subnets(cluster);
    cluster
        .pods
        .iter()
        .filter(|p| simple_pod(p, &subnets))
        .filter(|p| {
            matches!(
                p["metadata"]["annotations"][BGP].as_str(),
                Some("true" | "cluster")
            )
        })
        .rev()
        .take(n)
        .map(|p| {
            (
                s(p, "/metadata/namespace").unwrap_or("").to_string(),
                s(p, "/metadata/name").unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// CPU seconds (user + system) of `pid` so far, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are space-separated.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) / ticks)
}

/// `bgpgen compile` of the same cluster from files: its peak RSS (KiB) and wall time.
fn compile_reference(cluster: &Cluster) -> (u64, f64) {
    let dir = tempfile::Builder::new()
        .prefix("bgpgen-run-memory-compile")
        .tempdir()
        .expect("tempdir");
    let manifests = dir.path().join("cluster");
    fs::create_dir(&manifests).expect("mkdir");
    for (name, text) in cluster.files(Format::Json) {
        fs::write(manifests.join(name), text).expect("write manifests");
    }
    let options = dir.path().join("speaker-options.yaml");
    fs::write(&options, OPTIONS).expect("write options");
    let t = Instant::now();
    let mut child = Command::new(bgpgen_bin())
        .arg("compile")
        .arg("-f")
        .arg(&manifests)
        .arg("--options")
        .arg(&options)
        .args(["-o", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bgpgen compile");
    // VmHWM, polled until exit. (wait4's ru_maxrss would not do: exec records the high-water
    // mark of the memory the child shared with this process, the API double included.)
    let mut hwm = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    while matches!(child.try_wait(), Ok(None)) {
        if let Some(m) = mem(child.id()) {
            hwm = hwm.max(m.hwm);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    (hwm, t.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args = parse_args();
    let spec = spec(&args);
    let shown: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    println!(
        "$ cargo bench --bench run_memory{}{}",
        if shown.is_empty() { "" } else { " -- " },
        shown.join(" ")
    );
    let bench_started = Instant::now();
    let t = Instant::now();
    let cluster = generate(&spec).expect("synthetic cluster");
    let generate_s = t.elapsed().as_secs_f64();
    eprintln!(
        "generated {} nodes, {} pods, {} services, {} subnets, {} EIPs in {generate_s:.1} s",
        cluster.nodes.len(),
        cluster.pods.len(),
        cluster.services.len(),
        cluster.subnets.len(),
        cluster.eips.len()
    );
    let mut runs: Vec<Run> = Vec::new();
    for &b in &args.backends {
        for &p in &args.paging {
            runs.push(measure(&args, &cluster, b, p));
        }
    }
    let (compile_hwm, compile_s) = compile_reference(&cluster);
    let host_network = cluster
        .pods
        .iter()
        .filter(|p| p["spec"]["hostNetwork"] == true)
        .count();

    for r in &runs {
        println!("$ {}", r.bgpgen_command);
    }
    println!();
    println!(
        "bgpgen run ({} backend) watching {} pods ({} watched: hostNetwork=false), {} services, {} subnets, {} nodes through the API double; budget 150 MB = {:.1} MiB RSS",
        args.backends
            .iter()
            .map(|b| b.name())
            .collect::<Vec<_>>()
            .join(", "),
        spec.pods,
        spec.pods - host_network,
        spec.services,
        spec.subnets,
        spec.nodes,
        BUDGET_BYTES / 1048576.0
    );
    println!();
    let mut header = String::from("| bgpgen process |");
    let mut rule = String::from("|---|");
    for r in &runs {
        let p = r.paging.expect("paging");
        let b = r.backend.expect("backend");
        header.push_str(&format!(" {}, {} (`{}`) |", b.name(), p.name(), p.key()));
        rule.push_str("---:|");
    }
    println!("{header}\n{rule}");
    let row = |label: &str, f: &dyn Fn(&Run) -> String| {
        let mut line = format!("| {label} |");
        for r in &runs {
            line.push_str(&format!(" {} |", f(r)));
        }
        println!("{line}");
    };
    let mem_cell = |kib: u64| format!("{:.1} MiB ({:.0}%)", mib(kib), budget_share(kib) * 100.0);
    row("pod list requests (pages)", &|r| {
        r.list_requests.to_string()
    });
    row("routes announced", &|r| r.routes.to_string());
    row("start to first apply", &|r| {
        format!("{:.2} s", r.first_apply_s)
    });
    row("first apply (compile, render, validate, configure)", &|r| {
        format!("{:.2} s", r.first_pipeline_s)
    });
    row("**VmHWM (peak) at first apply** (% of budget)", &|r| {
        mem_cell(r.at_ready.hwm)
    });
    row("VmRSS at first apply", &|r| mem_cell(r.at_ready.rss));
    row("VmRSS 2 s later (RssAnon)", &|r| {
        format!(
            "{} ({:.1} MiB)",
            mem_cell(r.settled.rss),
            mib(r.settled.anon)
        )
    });
    row(
        &format!("**VmRSS after {} changes** (steady state)", args.changes),
        &|r| mem_cell(r.after_changes.rss),
    );
    row(&format!("VmHWM after {} changes", args.changes), &|r| {
        mem_cell(r.after_changes.hwm)
    });
    row("VmRSS min / max over the changes", &|r| {
        let min = r.rss_per_change.iter().min().copied().unwrap_or(0);
        let max = r.rss_per_change.iter().max().copied().unwrap_or(0);
        format!("{:.1} / {:.1} MiB", mib(min), mib(max))
    });
    row("**within the 150 MB budget** (peak / steady)", &|r| {
        let ok = |kib: u64| {
            if budget_share(kib) <= 1.0 {
                "yes"
            } else {
                "NO"
            }
        };
        format!("{} / {}", ok(r.after_changes.hwm), ok(r.after_changes.rss))
    });
    row(
        "VmRSS / VmHWM (peak of the relist) 3 s after a relist of every kind",
        &|r| {
            format!(
                "{} / {} (relist {:.1} s)",
                mem_cell(r.after_relist.rss),
                mem_cell(r.after_relist.hwm),
                r.relist_s
            )
        },
    );
    row("steady churn: changes / applies / wall", &|r| {
        format!(
            "{} / {} / {:.1} s",
            r.churn_changes, r.churn_applies, r.churn_wall_s
        )
    });
    row("**steady churn: bgpgen CPU** (% of one core)", &|r| {
        if r.churn_wall_s > 0.0 {
            format!(
                "{:.2} s ({:.1}%)",
                r.churn_cpu_s,
                100.0 * r.churn_cpu_s / r.churn_wall_s
            )
        } else {
            "-".into()
        }
    });
    row("VmRSS / VmHWM (peak of the churn) after the churn", &|r| {
        format!(
            "{} / {}",
            mem_cell(r.after_churn.rss),
            mem_cell(r.after_churn.hwm)
        )
    });
    row("**peak over the whole run**", &|r| mem_cell(r.peak));
    row("change applied, median / max", &|r| {
        format!(
            "{:.0} / {:.0} ms",
            percentile(&r.change_ms, 0.5),
            percentile(&r.change_ms, 1.0)
        )
    });
    row("API double load (bench process, not measured)", &|r| {
        format!("{:.1} s", r.load_s)
    });
    println!();
    println!(
        "`unpaged`: every list in one page, as kube-apiserver answers the `resourceVersion=0` lists of kube's watcher with `any_semantic()` (the watch cache ignores `limit`): what bgpgen gets from a real cluster today. `paged`: `limit=500` honoured, as for lists served from etcd."
    );
    println!(
        "Reference: `bgpgen compile` of the same cluster from JSON files: peak RSS {:.1} MiB ({:.0}% of budget), {compile_s:.1} s.",
        mib(compile_hwm),
        budget_share(compile_hwm) * 100.0
    );
    println!(
        "The API double's own memory is in the bench process and is not counted; only bgpgen's PID is read."
    );
    let total_s = bench_started.elapsed().as_secs_f64();
    println!("Bench run time: {total_s:.0} s.");

    let results: Vec<Value> = runs
        .iter()
        .map(|r| {
            let m = |x: Mem| json!({"vm_rss_kib": x.rss, "vm_hwm_kib": x.hwm, "rss_anon_kib": x.anon, "rss_file_kib": x.file});
            json!({
                "backend": r.backend.map(Backend::name),
                "lists": r.paging.map(Paging::key),
                "peak_kib": r.peak,
                "pod_list_requests": r.list_requests,
                "routes_announced": r.routes,
                "api_double_load_s": r.load_s,
                "start_to_first_apply_s": r.first_apply_s,
                "start_to_ready_observed_s": r.ready_s,
                "first_apply_pipeline_s": r.first_pipeline_s,
                "at_first_apply": m(r.at_ready),
                "settled_2s": m(r.settled),
                "after_changes": m(r.after_changes),
                "after_relist": m(r.after_relist),
                "relist_s": r.relist_s,
                "churn": {"changes": r.churn_changes, "applies": r.churn_applies, "cpu_s": r.churn_cpu_s, "wall_s": r.churn_wall_s},
                "after_churn": m(r.after_churn),
                "peak_budget_ratio": budget_share(r.after_changes.hwm),
                "steady_budget_ratio": budget_share(r.after_changes.rss),
                "changes": r.change_ms.len(),
                "change_applied_ms": r.change_ms,
                "rss_kib_after_each_change": r.rss_per_change,
                "startup_rss_kib_every_100ms": r.startup.iter().map(|(t, k)| json!([(t * 1000.0).round() / 1000.0, k])).collect::<Vec<_>>(),
                "bgpgen_command": r.bgpgen_command,
            })
        })
        .collect();
    let doc = json!({
        "bench": "run_memory",
        "command": format!("cargo bench --bench run_memory -- {}", shown.join(" ")).trim_end_matches(" -- ").to_string(),
        "budget_bytes": BUDGET_BYTES,
        "spec": {
            "nodes": spec.nodes, "pods": spec.pods, "services": spec.services,
            "subnets": spec.subnets, "eips": spec.eips, "seed": spec.seed,
            "dual_stack": spec.dual_stack, "announced": spec.announced,
            "host_network_pods": host_network,
        },
        "backends": args.backends.iter().map(|b| b.name()).collect::<Vec<_>>(),
        "wrapper": std::env::var("BGPGEN_WRAPPER").ok(),
        "runs": results,
        "compile_reference": {"peak_rss_kib": compile_hwm, "wall_s": compile_s},
        "bench_wall_s": total_s,
    });
    let out_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
            PathBuf::from,
        )
        .join("bench-results");
    fs::create_dir_all(&out_dir).expect("create target/bench-results");
    let name = if args.smoke {
        "run_memory-smoke.json"
    } else {
        "run_memory.json"
    };
    let path = out_dir.join(name);
    fs::write(
        &path,
        serde_json::to_string_pretty(&doc).expect("json") + "\n",
    )
    .expect("write results");
    println!("Results: {}", path.display());
}
