//! The cost of ONE change with ~100,000 routes already announced (docs/design.md section 8: "O(change)
//! daemon work for GoBGP (one path added), not a full resync"), per backend, and FRR's
//! incremental apply against `frr-reload.py`.
//!
//! Per backend (gobgp, frr, bird), in the two-namespace lab of `tests/common/netns.rs` with an
//! upstream gobgpd:
//!
//! 1. a synthetic cluster (`bgpgen::synth`, every pod annotated, single stack, no services) with
//!    at least `--routes` announced routes (counted with `bgpgen compile`);
//! 2. the speaker daemon started from `bgpgen render --out`, then `bgpgen run --manifests DIR`;
//!    the initial sync is the time from the daemon's start until the upstream's RIB holds every
//!    route (GoBGP starts empty and bgpgen pushes all paths; FRR and BIRD start from the file);
//! 3. one pod file added (atomically, by rename), `--reps` times after one warm-up: the time until
//!    bgpgen finished applying it (its `/metrics` timestamp), the apply itself
//!    (`bgpgen_last_apply_duration_seconds`: compile, render, validate, driver), the time until the
//!    new route is in the upstream's RIB (`gobgp monitor global rib` in the upstream namespace:
//!    event-driven, no polling of a 100k table), GoBGP paths sent (`bgpgen_gobgp_paths_sent_total`),
//!    the UPDATE messages the upstream received, and bgpgen's peak RSS;
//! 4. FRR and BIRD, with bgpgen stopped (SIGKILL: the routes stay): the driver's own daemon step
//!    timed alone on the same daemon (`vtysh -f DELTA` as the FRR driver sends it, `birdc configure`),
//!    the validation the driver runs before every apply, and for FRR `frr-reload.py --reload` with
//!    the driver's flags (capped by `--reload-cap`).
//!
//! FRR is also measured at 10,000 routes (part 3 of the brief: incremental apply vs frr-reload.py)
//! unless `--smoke` or `--routes 10000`.
//!
//! Args: `--smoke` (2,000 routes, one repetition), `--routes N` (default 100,000), `--backend B`
//! (repeatable, or comma-separated), `--reps N` (default 10), `--reload-cap SECS` (default 600).
//! Output: a markdown table on stdout, raw numbers in `target/bench-results/change_cost.json`.
//! Needs root, `ip`, gobgpd/gobgp, FRR (bgpd, vtysh, frr-reload.py) and BIRD (bird, birdc).
//! `BGPGEN_BIN` overrides the bgpgen binary (default: the release build cargo made for this bench).

#[path = "../tests/common/lab_backend.rs"]
#[allow(dead_code)]
mod lab_backend;
#[path = "../tests/common/netns.rs"]
#[allow(dead_code)]
mod netns;
// netns.rs reaches its skip policy as `super::skip`.
#[path = "../tests/common/skip.rs"]
#[allow(dead_code)]
mod skip;

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, sleep};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bgpgen::render::Backend;
use bgpgen_bench::synth::{self, Format, Spec};
use ipnet::Ipv4Net;
use lab_backend::{FRR_RELOAD, LabBackend};
use netns::{BGPD, BIRD, BIRDC, GOBGP, Gobgp, IP, Lab, SPEAKER_V4, UPSTREAM_V4, VTYSH};
use serde_json::{Value, json};

const SPEAKER_AS: u32 = 65000;
const UPSTREAM_AS: u32 = 65030;
const UPSTREAM_API: u16 = 50351;
const SPEAKER_API: u16 = 50352;
const METRICS_PORT: u16 = 19761;
/// The speaker's node in the synthetic cluster (the generator's first node).
const NODE: &str = "node-00000";
/// Upper bound for one change to be applied and reach the upstream.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(120);
/// After a change: trailing applies, UPDATE counters.
const SETTLE: Duration = Duration::from_millis(1000);

struct Args {
    smoke: bool,
    routes: usize,
    backends: Vec<Backend>,
    reps: usize,
    reload_cap: Duration,
}

fn usage() -> ! {
    eprintln!(
        "usage: change_cost [--smoke] [--routes N] [--backend gobgp|frr|bird]... [--reps N] [--reload-cap SECS]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        smoke: false,
        routes: 100_000,
        backends: Vec::new(),
        reps: 10,
        reload_cap: Duration::from_secs(600),
    };
    let (mut routes, mut reps) = (None, None);
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .unwrap_or_else(|| usage())
        };
        match flag.as_str() {
            "--smoke" => args.smoke = true,
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            "--routes" => routes = Some(value().parse().unwrap_or_else(|_| usage())),
            "--reps" => reps = Some(value().parse().unwrap_or_else(|_| usage())),
            "--reload-cap" => {
                args.reload_cap = Duration::from_secs(value().parse().unwrap_or_else(|_| usage()))
            }
            "--backend" => {
                for b in value().split(',') {
                    let backend = Backend::ALL
                        .into_iter()
                        .find(|x| x.name() == b)
                        .unwrap_or_else(|| usage());
                    if !args.backends.contains(&backend) {
                        args.backends.push(backend);
                    }
                }
            }
            "-h" | "--help" => usage(),
            other => {
                eprintln!("unknown argument {other:?}");
                usage()
            }
        }
    }
    if args.smoke {
        args.routes = 2_000;
        args.reps = 1;
    }
    args.routes = routes.unwrap_or(args.routes);
    args.reps = reps.unwrap_or(args.reps).max(1);
    if args.backends.is_empty() {
        args.backends = Backend::ALL.to_vec();
    }
    args
}

fn bin() -> String {
    std::env::var("BGPGEN_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_bgpgen").to_string())
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The speaker options, as flags (no options file: the lab's addresses and ASNs).
fn speaker_flags() -> Vec<String> {
    [
        "--neighbor-address",
        UPSTREAM_V4,
        "--neighbor-as",
        &UPSTREAM_AS.to_string(),
        "--cluster-as",
        &SPEAKER_AS.to_string(),
        "--node-name",
        NODE,
        "--router-id",
        SPEAKER_V4,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Runs bgpgen to completion; stdout, or panics with stderr.
fn bgpgen(args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .env_remove("NODE_NAME")
        .env_remove("POD_IPS")
        .env_remove("POD_IP")
        .env_remove("GATEWAY_NAME")
        .stdin(Stdio::null())
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

/// Runs a command, returns (wall time, success, combined output).
fn timed(program: &str, args: &[&str]) -> (Duration, bool, String) {
    let t = Instant::now();
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let elapsed = t.elapsed();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (elapsed, out.status.success(), text)
}

fn stats(values: &[f64]) -> Value {
    if values.is_empty() {
        return Value::Null;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    json!({"median": median, "max": v[n - 1], "min": v[0], "n": n})
}

fn proc_kb(pid: u32, key: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// The cluster

/// A pod added by one change.
#[derive(Clone)]
struct NewPod {
    file: String,
    json: String,
    prefix: String,
}

struct ClusterDir {
    _tmp: tempfile::TempDir,
    /// The manifests (one List per kind).
    dir: PathBuf,
    pods: usize,
    routes: usize,
    new_pods: Vec<NewPod>,
    generate_s: f64,
}

/// The routes `bgpgen compile` announces for `dir`.
fn compile_routes(dir: &Path) -> BTreeSet<String> {
    let flags = speaker_flags();
    let mut args: Vec<&str> = vec!["compile", "-f", path_str(dir), "-o", "json"];
    args.extend(flags.iter().map(String::as_str));
    let out = bgpgen(&args);
    let intent: Value = serde_json::from_str(&out).expect("compile -o json is JSON");
    intent["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .filter_map(|r| r["prefix"].as_str().map(str::to_string))
        .collect()
}

/// Generates a cluster announcing at least `wanted` routes, and `extra` pods (not in it) for the
/// changes: copies of announced pods at free addresses of their subnets.
fn make_cluster(wanted: usize, extra: usize) -> ClusterDir {
    let tmp = tempfile::Builder::new()
        .prefix("bgpgen-change-cost-")
        .tempdir()
        .expect("temp dir");
    let dir = tmp.path().join("cluster");
    let mut pods = wanted * 105 / 100 + 20;
    let started = Instant::now();
    for _ in 0..4 {
        let spec = Spec {
            nodes: (pods / 100).clamp(10, 1_000),
            pods,
            services: 0,
            subnets: (pods / 100).clamp(4, 1_000),
            eips: 0,
            seed: 1,
            dual_stack: false,
            announced: 1.0,
            local_share: 0.0,
        };
        let cluster = synth::generate(&spec).expect("generate the cluster");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("cluster dir");
        for (name, text) in cluster.files(Format::Json) {
            fs::write(dir.join(name), text).expect("write manifests");
        }
        let routes = compile_routes(&dir);
        if routes.len() < wanted {
            eprintln!(
                "{pods} pods give {} routes, fewer than {wanted}: more pods",
                routes.len()
            );
            pods = pods * wanted / routes.len().max(1) + 50;
            continue;
        }
        let new_pods = pick_new_pods(&cluster.pods, &routes, extra);
        return ClusterDir {
            _tmp: tmp,
            dir,
            pods,
            routes: routes.len(),
            new_pods,
            generate_s: started.elapsed().as_secs_f64(),
        };
    }
    panic!("could not generate a cluster with {wanted} routes");
}

fn pick_new_pods(pods: &[Value], routes: &BTreeSet<String>, count: usize) -> Vec<NewPod> {
    let used: BTreeSet<String> = pods
        .iter()
        .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_string))
        .collect();
    let mut out = Vec::new();
    let mut subnets_done = BTreeSet::new();
    for template in pods {
        if out.len() >= count {
            break;
        }
        let Some(ip) = template["status"]["podIP"].as_str() else {
            continue;
        };
        let annotations = &template["metadata"]["annotations"];
        let Some(cidr) = annotations["ovn.kubernetes.io/cidr"].as_str() else {
            continue;
        };
        if !routes.contains(&format!("{ip}/32")) || !subnets_done.insert(cidr.to_string()) {
            continue;
        }
        let Ok(net) = cidr.parse::<Ipv4Net>() else {
            continue;
        };
        // Free hosts from the top of the subnet down (the generator allocates from the bottom).
        let (first, last) = (u32::from(net.network()) + 2, u32::from(net.broadcast()) - 1);
        for host in (first..=last).rev() {
            if out.len() >= count {
                break;
            }
            let addr = Ipv4Addr::from(host).to_string();
            if used.contains(&addr) || routes.contains(&format!("{addr}/32")) {
                continue;
            }
            let i = out.len();
            let name = format!("bench-change-{i:03}");
            let mut pod = template.clone();
            pod["metadata"]["name"] = json!(name);
            pod["metadata"]["uid"] = json!(format!("00000000-0000-4000-a000-{i:012}"));
            pod["metadata"]["annotations"]["ovn.kubernetes.io/ip_address"] = json!(addr);
            pod["metadata"]["annotations"]["ovn.kubernetes.io/bgp"] = json!("true");
            pod["status"]["podIP"] = json!(addr);
            pod["status"]["podIPs"] = json!([{"ip": addr}]);
            out.push(NewPod {
                file: format!("{name}.json"),
                json: serde_json::to_string_pretty(&pod).expect("JSON") + "\n",
                prefix: format!("{addr}/32"),
            });
        }
    }
    assert_eq!(out.len(), count, "not enough free addresses for new pods");
    out
}

// ---------------------------------------------------------------------------------------------
// Helpers inside the namespaces

type Job = Box<dyn FnOnce() + Send>;

/// A thread that entered a network namespace (setns) and runs jobs there: sockets it opens
/// belong to that namespace.
struct NsWorker {
    tx: Option<mpsc::Sender<Job>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl NsWorker {
    fn new(ns: &str) -> NsWorker {
        let path = format!("/var/run/netns/{ns}");
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let handle = thread::spawn(move || {
            let entered = fs::File::open(&path)
                .map_err(|e| format!("{path}: {e}"))
                .and_then(|f| {
                    // SAFETY: setns on an open namespace file; affects only this thread.
                    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
                    if rc == 0 {
                        Ok(())
                    } else {
                        Err(format!("setns {path}: {}", std::io::Error::last_os_error()))
                    }
                });
            let ok = entered.is_ok();
            let _ = ready_tx.send(entered);
            if ok {
                for job in rx {
                    job();
                }
            }
        });
        ready_rx
            .recv()
            .expect("namespace worker started")
            .expect("enter the namespace");
        NsWorker {
            tx: Some(tx),
            handle: Some(handle),
        }
    }

    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        self.tx
            .as_ref()
            .expect("worker")
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .expect("worker alive");
        rx.recv().expect("worker answered")
    }

    /// GET http://127.0.0.1:PORT/PATH inside the namespace: the body, or an error.
    fn http_get(&self, port: u16, path: &str) -> Result<String, String> {
        let path = path.to_string();
        self.run(move || {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                .map_err(|e| format!("connect {addr}: {e}"))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(|e| e.to_string())?;
            write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                .map_err(|e| e.to_string())?;
            let mut text = String::new();
            s.read_to_string(&mut text).map_err(|e| e.to_string())?;
            let (head, body) = text
                .split_once("\r\n\r\n")
                .ok_or_else(|| format!("bad HTTP answer: {text}"))?;
            if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
                return Err(format!("GET {path}: {head}"));
            }
            Ok(body.to_string())
        })
    }

    /// `/metrics` as sample -> value.
    fn metrics(&self) -> Result<HashMap<String, f64>, String> {
        let body = self.http_get(METRICS_PORT, "/metrics")?;
        Ok(body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                Some((name.to_string(), value.parse().ok()?))
            })
            .collect())
    }
}

impl Drop for NsWorker {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// `gobgp monitor global rib -a ipv4 -j` in the upstream namespace: every best-path change, as it
/// happens, with the time its line arrived.
struct Monitor {
    child: Child,
    rx: mpsc::Receiver<(Instant, String)>,
    reader: Option<thread::JoinHandle<()>>,
}

impl Monitor {
    fn start(upstream: &Gobgp) -> Monitor {
        let port = upstream.port.to_string();
        let mut child = Command::new(IP)
            .args(["netns", "exec", &upstream.ns, GOBGP, "-p", &port])
            .args(["monitor", "global", "rib", "-a", "ipv4", "-j"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gobgp monitor");
        let stdout = child.stdout.take().expect("monitor stdout");
        let (tx, rx) = mpsc::channel();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        // Let it subscribe before the first change.
        sleep(Duration::from_millis(500));
        if let Ok(Some(status)) = child.try_wait() {
            panic!("gobgp monitor exited at once: {status}");
        }
        Monitor {
            child,
            rx,
            reader: Some(reader),
        }
    }

    fn drain(&self) {
        while self.rx.try_recv().is_ok() {}
    }

    /// When a line naming `prefix` arrived.
    fn wait_for(&self, prefix: &str, timeout: Duration) -> Result<Instant, String> {
        let needle = format!("\"prefix\":\"{prefix}\"");
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((at, line)) if line.contains(&needle) => return Ok(at),
                Ok(_) => {}
                Err(_) => return Err(format!("{prefix} not seen at the upstream in {timeout:?}")),
            }
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One backend

/// The running lab. Fields drop in order: helpers first, the lab (namespaces, daemons) last.
struct Bench {
    monitor: Option<Monitor>,
    speaker: Option<NsWorker>,
    backend: Backend,
    manifests: PathBuf,
    staging: PathBuf,
    etc: PathBuf,
    config: PathBuf,
    /// FRR's vty socket dir or BIRD's control socket.
    control: PathBuf,
    upstream: Gobgp,
    lab: Lab,
}

impl Bench {
    fn put_pod(&self, pod: &NewPod) {
        let staged = self.staging.join(&pod.file);
        fs::write(&staged, &pod.json).expect("write staged pod");
        fs::rename(&staged, self.manifests.join(&pod.file)).expect("rename pod into place");
    }

    fn upstream_paths(&self) -> Result<usize, String> {
        rib_paths(&self.upstream)
    }

    /// UPDATE messages the upstream received from the speaker.
    fn upstream_updates(&self) -> u64 {
        self.upstream
            .neighbor(SPEAKER_V4)
            .ok()
            .and_then(|p| p["state"]["messages"]["received"]["update"].as_u64())
            .unwrap_or(0)
    }

    fn metrics(&self) -> HashMap<String, f64> {
        let worker = self.speaker.as_ref().expect("speaker worker");
        worker.metrics().unwrap_or_default()
    }

    fn rss(&self, name: &str) -> Value {
        match self.lab.pid(name) {
            Some(pid) => json!({
                "pid": pid,
                "vm_rss_kb": proc_kb(pid, "VmRSS:"),
                "vm_hwm_kb": proc_kb(pid, "VmHWM:"),
            }),
            None => Value::Null,
        }
    }

    /// `how` of bgpgen's last "applied" log line.
    fn last_how(&self) -> String {
        let log = fs::read_to_string(self.lab.dir().join("bgpgen.log")).unwrap_or_default();
        log.lines()
            .rev()
            .find(|l| l.contains(" applied") && l.contains("how="))
            .and_then(|l| {
                // logfmt: `how=word` or `how="several words"`.
                let rest = &l[l.find("how=")? + 4..];
                Some(match rest.strip_prefix('"') {
                    Some(quoted) => quoted[..quoted.find('"').unwrap_or(quoted.len())].to_string(),
                    None => rest[..rest.find(' ').unwrap_or(rest.len())].to_string(),
                })
            })
            .unwrap_or_default()
    }

    fn fail(&mut self, message: String) -> ! {
        let report = self.lab.report();
        panic!("change_cost::{}: {message}\n{report}", self.backend.name());
    }

    /// Waits (polling /metrics) until `done` holds.
    fn wait_metrics(
        &mut self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&HashMap<String, f64>) -> bool,
    ) -> HashMap<String, f64> {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.metrics();
            if done(&m) {
                return m;
            }
            if let Err(dead) = self.lab.check_daemons() {
                self.fail(format!("while waiting for {what}: {dead}"));
            }
            if Instant::now() >= deadline {
                self.fail(format!("timed out after {timeout:?} waiting for {what}"));
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Renders the daemon's files from the manifests (bgpgen not running: the direct phase).
    fn render(&self) {
        let flags = speaker_flags();
        let mut args = vec![
            "render",
            "-f",
            path_str(&self.manifests),
            "--backend",
            self.backend.name(),
            "--out",
            path_str(&self.etc),
        ];
        args.extend(flags.iter().map(String::as_str));
        bgpgen(&args);
    }

    fn monitor(&self) -> &Monitor {
        self.monitor.as_ref().expect("monitor")
    }
}

/// Paths in the upstream's IPv4 table (`gobgp global rib summary`).
fn rib_paths(upstream: &Gobgp) -> Result<usize, String> {
    let out = upstream.cli(&["global", "rib", "summary", "-a", "ipv4"])?;
    out.split("Path:")
        .nth(1)
        .and_then(|s| s.trim().split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("unexpected rib summary: {out}"))
}

fn sum(m: &HashMap<String, f64>, names: &[&str]) -> f64 {
    names
        .iter()
        .map(|n| m.get(*n).copied().unwrap_or(0.0))
        .sum()
}

const APPLIES: [&str; 3] = [
    "bgpgen_applies_total{result=\"ok\"}",
    "bgpgen_applies_total{result=\"unchanged\"}",
    "bgpgen_applies_total{result=\"failed\"}",
];
const SENT_ADD: &str = "bgpgen_gobgp_paths_sent_total{op=\"add\"}";
const SENT_DEL: &str = "bgpgen_gobgp_paths_sent_total{op=\"delete\"}";

/// One pod added while bgpgen runs.
fn change_through_bgpgen(b: &mut Bench, pod: &NewPod) -> Value {
    let before = b.metrics();
    let updates_before = b.upstream_updates();
    b.monitor().drain();
    let (t0, wall0) = (Instant::now(), unix_now());
    b.put_pod(pod);
    let upstream = match b.monitor().wait_for(&pod.prefix, CHANGE_TIMEOUT) {
        Ok(at) => at.duration_since(t0),
        Err(e) => b.fail(e),
    };
    let applies_before = sum(&before, &APPLIES);
    let m = b.wait_metrics("the change's apply", CHANGE_TIMEOUT, |m| {
        sum(m, &APPLIES) > applies_before
    });
    sleep(SETTLE);
    let after = b.metrics();
    let delta = |name: &str| {
        after.get(name).copied().unwrap_or(0.0) - before.get(name).copied().unwrap_or(0.0)
    };
    if delta(APPLIES[2]) > 0.0 {
        b.fail(format!("an apply failed for {}", pod.prefix));
    }
    let applied_at = m
        .get("bgpgen_last_successful_apply_timestamp_seconds")
        .copied()
        .unwrap_or(0.0);
    json!({
        "prefix": pod.prefix,
        "change_to_applied_ms": ((applied_at - wall0) * 1e6).round() / 1e3,
        "apply_ms": m.get("bgpgen_last_apply_duration_seconds").map(|s| (s * 1e6).round() / 1e3),
        "change_to_upstream_ms": ms(upstream),
        "applies_ok": delta(APPLIES[0]),
        "applies_unchanged": delta(APPLIES[1]),
        "gobgp_paths_sent_add": after.get(SENT_ADD).map(|_| delta(SENT_ADD)),
        "gobgp_paths_sent_delete": after.get(SENT_DEL).map(|_| delta(SENT_DEL)),
        "upstream_updates": b.upstream_updates().saturating_sub(updates_before),
        "how": b.last_how(),
    })
}

/// Runs `program args` in its own process group, killing the group after `cap`.
fn timed_capped(program: &str, args: &[&str], cap: Duration) -> (Duration, Option<bool>, String) {
    use std::os::unix::process::CommandExt;
    let log = tempfile::NamedTempFile::new().expect("temp log");
    let t = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.reopen().expect("log"))
        .stderr(log.reopen().expect("log"))
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s.success()),
            Ok(None) if t.elapsed() >= cap => {
                // The group: frr-reload.py runs vtysh children.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
                let _ = child.wait();
                break None;
            }
            Ok(None) => sleep(Duration::from_millis(10)),
            Err(e) => panic!("waiting for {program}: {e}"),
        }
    };
    let elapsed = t.elapsed();
    let text = fs::read_to_string(log.path()).unwrap_or_default();
    (elapsed, status, text)
}

/// Median of `n` runs of a checker (the validation the driver runs before every apply).
fn time_checker(program: &str, args: &[&str], n: usize) -> Value {
    let mut times = Vec::new();
    for _ in 0..n {
        let mut command = Command::new(program);
        let out = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let t = Instant::now();
        let child = out.spawn().expect("run checker");
        let pid = child.id();
        let _ = child.wait_with_output();
        times.push(ms(t.elapsed()));
        // bgpd -C leaves /var/tmp/frr/bgpd.<pid>/ behind.
        let _ = fs::remove_dir_all(format!("/var/tmp/frr/bgpd.{pid}"));
    }
    stats(&times)
}

/// The vtysh script the FRR driver sends for one added network (`route_delta` in
/// src/daemon/frr.rs, next hop self).
fn frr_delta_script(prefix: &str) -> String {
    format!(
        "router bgp {SPEAKER_AS}\n address-family ipv4 unicast\n  network {prefix}\n exit-address-family\nexit\n"
    )
}

struct Plan {
    reps: usize,
    /// frr-reload.py repetitions (FRR only) and the cap of each.
    reload_reps: usize,
    reload_cap: Duration,
}

fn run_backend(backend: Backend, cluster: &ClusterDir, plan: &Plan) -> Value {
    let name = backend.name();
    let started = Instant::now();
    let mut lab = Lab::new(&format!("cc-{name}"));
    let dir = lab.dir().to_path_buf();
    let mkdir = |sub: &str| {
        let p = dir.join(sub);
        fs::create_dir(&p).expect("lab subdir");
        p
    };
    let (manifests, staging, etc) = (mkdir("manifests"), mkdir("staging"), mkdir("etc"));
    for entry in fs::read_dir(&cluster.dir).expect("cluster dir") {
        let entry = entry.expect("entry");
        let to = manifests.join(entry.file_name());
        if fs::hard_link(entry.path(), &to).is_err() {
            fs::copy(entry.path(), &to).expect("copy manifests");
        }
    }
    let upstream = lab.start_upstream(UPSTREAM_API, UPSTREAM_AS, SPEAKER_AS);
    let config = etc.join(backend.main_file());
    let mut b = Bench {
        monitor: None,
        speaker: None,
        backend,
        manifests,
        staging,
        etc: etc.clone(),
        config: config.clone(),
        control: PathBuf::new(),
        upstream,
        lab,
    };
    let t = Instant::now();
    b.render();
    let render_s = t.elapsed().as_secs_f64();
    eprintln!("change_cost::{name}: rendered in {render_s:.1} s, starting the daemon");

    let speaker_ns = b.lab.speaker_ns().to_string();
    let t_start = Instant::now();
    let mut daemon_args: Vec<String> = Vec::new();
    match backend {
        Backend::Gobgp => {
            b.lab
                .start_gobgpd(&speaker_ns, backend.daemon(), &config, SPEAKER_API);
            let pid_file = dir.join("speaker-gobgpd.pid");
            let pid = b.lab.pid(backend.daemon()).expect("gobgpd runs");
            fs::write(&pid_file, format!("{pid}\n")).expect("pid file");
            daemon_args.extend([
                "--gobgp-api".into(),
                format!("127.0.0.1:{SPEAKER_API}"),
                "--gobgpd-pid-file".into(),
                path_str(&pid_file).into(),
            ]);
        }
        Backend::Frr => {
            b.control = b.lab.start_bgpd(&speaker_ns, backend.daemon(), &config);
            daemon_args.extend(["--frr-vty-socket".into(), path_str(&b.control).into()]);
        }
        Backend::Bird => {
            b.control = b.lab.start_bird(&speaker_ns, backend.daemon(), &config);
            daemon_args.extend(["--bird-socket".into(), path_str(&b.control).into()]);
        }
    }
    let bin = bin();
    let mut argv: Vec<String> = [
        bin.as_str(),
        "run",
        "--backend",
        name,
        "--manifests",
        path_str(&b.manifests),
        "--config-file",
        path_str(&config),
        "--metrics-addr",
        &format!("127.0.0.1:{METRICS_PORT}"),
        "--debounce",
        "100ms",
        "--check-interval",
        "2s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.extend(speaker_flags());
    argv.extend(daemon_args);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    b.lab.spawn_env(
        &speaker_ns,
        "bgpgen",
        &argv,
        &[
            ("RUST_LOG", Some("info")),
            ("NODE_NAME", None),
            ("POD_IP", None),
            ("POD_IPS", None),
            ("GATEWAY_NAME", None),
        ],
    );
    b.speaker = Some(NsWorker::new(&speaker_ns));

    // Initial sync: every route at the upstream.
    let want = cluster.routes;
    let sync_timeout = Duration::from_secs(120 + (want / 200) as u64);
    let upstream = b.upstream.clone();
    let first_path = std::cell::Cell::new(None);
    b.lab.wait_for(
        "the initial sync at the upstream",
        sync_timeout,
        Duration::from_millis(250),
        |_| {
            let n = rib_paths(&upstream)?;
            if n > 0 && first_path.get().is_none() {
                first_path.set(Some(t_start.elapsed()));
            }
            if n >= want {
                Ok(())
            } else {
                Err(format!("{n} of {want} paths"))
            }
        },
    );
    let initial_sync = t_start.elapsed();
    // Session set-up (connect retry) is most of a small table's sync.
    let first_path_s = first_path.get().map(|d| d.as_secs_f64());
    let first = b.wait_metrics("bgpgen ready", Duration::from_secs(300), |m| {
        m.get("bgpgen_ready") == Some(&1.0)
    });
    let first_apply_ms = first
        .get("bgpgen_last_apply_duration_seconds")
        .map(|s| ms(Duration::from_secs_f64(*s)));
    let upstream_paths = b.upstream_paths().unwrap_or(0);
    eprintln!(
        "change_cost::{name}: initial sync of {want} routes in {:.1} s (upstream holds {upstream_paths}); first apply {:?} ms",
        initial_sync.as_secs_f64(),
        first_apply_ms
    );
    let rss_initial = json!({"bgpgen": b.rss("bgpgen"), "daemon": b.rss(backend.daemon())});
    b.monitor = Some(Monitor::start(&b.upstream));

    let mut pods = cluster.new_pods.iter();
    let mut next_pod = || pods.next().expect("enough new pods").clone();

    // Through bgpgen: one warm-up, then the measured changes.
    let warmup = change_through_bgpgen(&mut b, &next_pod());
    let mut samples = Vec::new();
    for i in 0..plan.reps {
        let s = change_through_bgpgen(&mut b, &next_pod());
        eprintln!("change_cost::{name}: change {}/{}: {s}", i + 1, plan.reps);
        samples.push(s);
    }
    let rss_after = json!({"bgpgen": b.rss("bgpgen"), "daemon": b.rss(backend.daemon())});
    let column =
        |key: &str| -> Vec<f64> { samples.iter().filter_map(|s| s[key].as_f64()).collect() };
    let mut result = json!({
        "backend": name,
        "routes": want,
        "pods": cluster.pods,
        "render_cli_s": render_s,
        "initial_sync_s": initial_sync.as_secs_f64(),
        "initial_first_path_s": first_path_s,
        "first_apply_ms": first_apply_ms,
        "upstream_paths_after_sync": upstream_paths,
        "warmup": warmup,
        "changes": samples,
        "change_to_applied_ms": stats(&column("change_to_applied_ms")),
        "apply_ms": stats(&column("apply_ms")),
        "change_to_upstream_ms": stats(&column("change_to_upstream_ms")),
        "gobgp_paths_sent_add": stats(&column("gobgp_paths_sent_add")),
        "gobgp_paths_sent_delete": stats(&column("gobgp_paths_sent_delete")),
        "upstream_updates": stats(&column("upstream_updates")),
        "rss_after_initial_sync": rss_initial,
        "rss_after_changes": rss_after,
    });

    // Direct: the driver's daemon step alone, bgpgen stopped (SIGKILL leaves the routes).
    if backend != Backend::Gobgp {
        b.lab.stop("bgpgen", "KILL", Duration::from_secs(10));
        let control = path_str(&b.control).to_string();
        let cfg = path_str(&b.config).to_string();
        let mut direct = Vec::new();
        for _ in 0..plan.reps {
            let pod = next_pod();
            let updates_before = b.upstream_updates();
            b.monitor().drain();
            // The manifests stay in step with the daemon (the reloads below render them).
            b.put_pod(&pod);
            let script = b.lab.dir().join("delta.conf");
            match backend {
                Backend::Frr => {
                    fs::write(&script, frr_delta_script(&pod.prefix)).expect("delta script")
                }
                _ => b.render(),
            }
            let t0 = Instant::now();
            let (took, ok, out) = match backend {
                Backend::Frr => timed(VTYSH, &["--vty_socket", &control, "-f", path_str(&script)]),
                _ => timed(BIRDC, &["-s", &control, "configure"]),
            };
            if !ok || (backend == Backend::Bird && !out.contains("Reconfigured")) {
                b.fail(format!("direct apply failed: {out}"));
            }
            let upstream = match b.monitor().wait_for(&pod.prefix, CHANGE_TIMEOUT) {
                Ok(at) => at.duration_since(t0),
                Err(e) => b.fail(e),
            };
            sleep(SETTLE);
            direct.push(json!({
                "prefix": pod.prefix,
                "daemon_op_ms": ms(took),
                "op_to_upstream_ms": ms(upstream),
                "upstream_updates": b.upstream_updates().saturating_sub(updates_before),
            }));
        }
        let column =
            |key: &str| -> Vec<f64> { direct.iter().filter_map(|s| s[key].as_f64()).collect() };
        result["direct"] = json!({
            "op": if backend == Backend::Frr { "vtysh -f DELTA (one network)" } else { "birdc configure" },
            "samples": direct,
            "daemon_op_ms": stats(&column("daemon_op_ms")),
            "op_to_upstream_ms": stats(&column("op_to_upstream_ms")),
            "upstream_updates": stats(&column("upstream_updates")),
        });
        // The validation the driver runs before every apply, on the current file.
        b.render();
        result["validate_ms"] = match backend {
            Backend::Frr => json!({
                "vtysh -C -f": time_checker(VTYSH, &["-C", "-f", &cfg], 3),
                "bgpd -C": time_checker(BGPD, &["-C", "-Z", "-S", "-p", "0", "-f", &cfg], 3),
            }),
            _ => json!({"bird -p -c": time_checker(BIRD, &["-p", "-c", &cfg], 3)}),
        };
    }

    // FRR: frr-reload.py --reload with the driver's flags, one added pod each.
    if backend == Backend::Frr && plan.reload_reps > 0 {
        let control = path_str(&b.control).to_string();
        let etc = path_str(&b.etc).to_string();
        let cfg = path_str(&b.config).to_string();
        let vtysh_conf = b.etc.join("vtysh.conf");
        if !vtysh_conf.exists() {
            fs::write(&vtysh_conf, "").expect("vtysh.conf");
        }
        let mut reloads = Vec::new();
        let mut timed_out = false;
        for i in 0..plan.reload_reps {
            let pod = next_pod();
            b.put_pod(&pod);
            b.render();
            let updates_before = b.upstream_updates();
            b.monitor().drain();
            let t0 = Instant::now();
            let (took, ok, out) = timed_capped(
                FRR_RELOAD,
                &[
                    "--reload",
                    "--daemon",
                    "bgpd",
                    "--vty_socket",
                    &control,
                    "--confdir",
                    &etc,
                    "--rundir",
                    &etc,
                    &cfg,
                ],
                plan.reload_cap,
            );
            match ok {
                None => {
                    eprintln!(
                        "change_cost::frr: frr-reload.py killed after {:?} (--reload-cap)",
                        plan.reload_cap
                    );
                    reloads.push(
                        json!({"prefix": pod.prefix, "timed_out_after_s": took.as_secs_f64()}),
                    );
                    timed_out = true;
                    break;
                }
                Some(false) => b.fail(format!("frr-reload.py failed: {out}")),
                Some(true) => {}
            }
            let upstream = match b.monitor().wait_for(&pod.prefix, CHANGE_TIMEOUT) {
                Ok(at) => at.duration_since(t0),
                Err(e) => b.fail(e),
            };
            sleep(SETTLE);
            let s = json!({
                "prefix": pod.prefix,
                "frr_reload_ms": ms(took),
                "op_to_upstream_ms": ms(upstream),
                "upstream_updates": b.upstream_updates().saturating_sub(updates_before),
            });
            eprintln!(
                "change_cost::frr: frr-reload.py {}/{}: {s}",
                i + 1,
                plan.reload_reps
            );
            reloads.push(s);
            // At 100k one run can take minutes: stop when the next would exceed the cap.
            if took * 2 > plan.reload_cap {
                break;
            }
        }
        let column =
            |key: &str| -> Vec<f64> { reloads.iter().filter_map(|s| s[key].as_f64()).collect() };
        result["frr_reload"] = json!({
            "command": format!("{FRR_RELOAD} --reload --daemon bgpd --vty_socket VTY --confdir ETC --rundir ETC ETC/frr.conf"),
            "samples": reloads,
            "timed_out": timed_out,
            "cap_s": plan.reload_cap.as_secs(),
            "frr_reload_ms": stats(&column("frr_reload_ms")),
            "op_to_upstream_ms": stats(&column("op_to_upstream_ms")),
            "upstream_updates": stats(&column("upstream_updates")),
        });
    }
    result["rss_end"] = json!({"daemon": b.rss(backend.daemon())});
    result["wall_s"] = json!(started.elapsed().as_secs_f64());
    if let Err(dead) = b.lab.check_daemons() {
        b.fail(format!("a daemon died: {dead}"));
    }
    drop(b);
    result
}

// ---------------------------------------------------------------------------------------------
// Report

fn med_max(v: &Value) -> String {
    match (v["median"].as_f64(), v["max"].as_f64()) {
        (Some(a), Some(b)) => format!("{} / {}", short(a), short(b)),
        _ => "-".into(),
    }
}

fn short(x: f64) -> String {
    if x >= 100.0 || x.fract() == 0.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn mb(v: &Value) -> String {
    v.as_u64()
        .map(|kb| format!("{:.0}", kb as f64 / 1024.0))
        .unwrap_or_else(|| "-".into())
}

fn print_tables(runs: &[Value]) {
    println!(
        "\n| backend | routes | initial sync s (first path) | change→applied ms (med / max) | bgpgen apply ms | change→upstream ms | daemon step ms (direct) | validate ms | GoBGP paths sent / change | upstream UPDATEs / change | bgpgen VmHWM MB | daemon RSS MB | how |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in runs {
        let validate = match r["validate_ms"].as_object() {
            Some(o) => o
                .iter()
                .map(|(k, v)| format!("{k} {}", med_max(v)))
                .collect::<Vec<_>>()
                .join(", "),
            None => "-".into(),
        };
        let sent = if r["gobgp_paths_sent_add"].is_null() {
            "-".to_string()
        } else {
            format!(
                "+{} -{}",
                med_max(&r["gobgp_paths_sent_add"]),
                med_max(&r["gobgp_paths_sent_delete"])
            )
        };
        let direct = if r["direct"].is_null() {
            "-".to_string()
        } else {
            format!(
                "{}: {}",
                r["direct"]["op"].as_str().unwrap_or(""),
                med_max(&r["direct"]["daemon_op_ms"])
            )
        };
        println!(
            "| {} | {} | {:.1} ({:.1}) | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r["backend"].as_str().unwrap_or(""),
            r["routes"],
            r["initial_sync_s"].as_f64().unwrap_or(0.0),
            r["initial_first_path_s"].as_f64().unwrap_or(0.0),
            med_max(&r["change_to_applied_ms"]),
            med_max(&r["apply_ms"]),
            med_max(&r["change_to_upstream_ms"]),
            direct,
            validate,
            sent,
            med_max(&r["upstream_updates"]),
            mb(&r["rss_after_changes"]["bgpgen"]["vm_hwm_kb"]),
            mb(&r["rss_after_changes"]["daemon"]["vm_rss_kb"]),
            r["changes"][0]["how"].as_str().unwrap_or(""),
        );
    }
    let frr: Vec<&Value> = runs.iter().filter(|r| r["backend"] == "frr").collect();
    if !frr.is_empty() {
        println!(
            "\nFRR, one added route: the driver's delta vs frr-reload.py (ms, median / max)\n"
        );
        println!(
            "| routes | bgpgen apply (vtysh delta, incl. compile+render+validate) | vtysh -f DELTA alone | → upstream | frr-reload.py --reload | → upstream | reload / delta |"
        );
        println!("|---|---|---|---|---|---|---|");
        for r in frr {
            let delta = r["direct"]["daemon_op_ms"]["median"].as_f64();
            let reload = &r["frr_reload"];
            let reload_med = reload["frr_reload_ms"]["median"].as_f64();
            let reload_text = if reload["timed_out"] == true {
                format!("> {} s (capped)", reload["cap_s"])
            } else {
                med_max(&reload["frr_reload_ms"])
            };
            println!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                r["routes"],
                med_max(&r["apply_ms"]),
                med_max(&r["direct"]["daemon_op_ms"]),
                med_max(&r["direct"]["op_to_upstream_ms"]),
                reload_text,
                med_max(&reload["op_to_upstream_ms"]),
                match (reload_med, delta) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:.0}x", a / b),
                    _ => "-".into(),
                }
            );
        }
    }
}

fn main() {
    let args = parse_args();
    let argv: Vec<String> = std::env::args().collect();
    println!("# change_cost: {}", argv.join(" "));
    println!(
        "# (cargo bench --bench change_cost -- {})",
        argv[1..]
            .iter()
            .filter(|a| *a != "--bench")
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("# bgpgen: {}", bin());
    let started = Instant::now();
    let mut needed: Vec<&str> = args.backends.iter().flat_map(|b| b.needs()).collect();
    needed.dedup();
    if !netns::prerequisites("change_cost", &needed) {
        return;
    }
    // Scales: the main one for every backend, plus FRR at 10k for the delta vs reload comparison.
    let mut scales: Vec<(usize, Vec<Backend>)> = vec![(args.routes, args.backends.clone())];
    if !args.smoke && args.routes != 10_000 && args.backends.contains(&Backend::Frr) {
        scales.push((10_000, vec![Backend::Frr]));
    }
    let mut runs = Vec::new();
    let mut clusters = Vec::new();
    for (routes, backends) in &scales {
        let extra = backends.len() * (3 * args.reps + 2);
        let cluster = make_cluster(*routes, extra);
        eprintln!(
            "change_cost: cluster of {} pods, {} routes, generated in {:.1} s",
            cluster.pods, cluster.routes, cluster.generate_s
        );
        clusters.push(json!({"routes_wanted": routes, "pods": cluster.pods, "routes": cluster.routes, "generate_s": cluster.generate_s}));
        for backend in backends {
            let reload_reps = match backend {
                Backend::Frr if *routes > 20_000 => args.reps.min(3),
                Backend::Frr => args.reps,
                _ => 0,
            };
            let plan = Plan {
                reps: args.reps,
                reload_reps,
                reload_cap: args.reload_cap,
            };
            runs.push(run_backend(*backend, &cluster, &plan));
        }
    }
    print_tables(&runs);
    let total = started.elapsed();
    println!("\nTotal run time: {:.0} s", total.as_secs_f64());
    let out_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench-results");
    fs::create_dir_all(&out_dir).expect("create target/bench-results");
    let file = out_dir.join("change_cost.json");
    let doc = json!({
        "command": argv.join(" "),
        "bgpgen": bin(),
        "unix_time": unix_now(),
        "args": {"smoke": args.smoke, "routes": args.routes, "reps": args.reps, "backends": args.backends.iter().map(|b| b.name()).collect::<Vec<_>>(), "reload_cap_s": args.reload_cap.as_secs()},
        "clusters": clusters,
        "runs": runs,
        "total_s": total.as_secs_f64(),
    });
    fs::write(
        &file,
        serde_json::to_string_pretty(&doc).expect("JSON") + "\n",
    )
    .expect("write results");
    println!("Raw numbers: {}", file.display());
}
