//! Change-to-route latency of the sidecar, per backend (docs/design.md section 8: "one object change to
//! route visible at the upstream router in under 100 ms plus the daemon's own propagation time").
//!
//! For each backend (gobgp, frr, bird) one two-namespace lab (`tests/common/netns.rs`): the
//! speaker daemon and `bgpgen run --manifests DIR` in the speaker namespace, an upstream gobgpd in
//! the other. Each change writes one new pod manifest (annotated `ovn.kubernetes.io/bgp: "true"`,
//! a fresh IP of the lab's subnet) atomically into DIR (temp file, then rename; t0 is taken just
//! before the rename) and measures the time until its /32 is in the upstream's global RIB; then
//! the file is deleted (t0 just before the unlink) and the time until the /32 is gone is the
//! withdraw latency. Measured twice: with the default `--debounce` (100ms) and with
//! `--debounce 0s`.
//!
//! The daemon's own floor is measured in the same lab, bgpgen stopped, over the same number of
//! changes: the same kind of route added and removed directly with the daemon's own interface
//! (GoBGP: the gRPC AddPathStream bgpgen uses, and the `gobgp` CLI; FRR: `vtysh ... network P`;
//! BIRD, which has no runtime route command: the configuration file with one more static route
//! and `birdc configure`).
//!
//! Detection: a thread inside the upstream namespace (`setns`) polls gobgpd's API (`ListPath` of
//! exactly that prefix, a few hundred microseconds per call) every millisecond; the detection time
//! is when the first positive answer came back, so a latency is exact to one poll interval plus
//! one call (the "resolution" the output gives).
//!
//! `cargo bench --bench latency [-- --changes N] [--smoke] [--backend gobgp,frr,bird]`. Needs
//! root and the daemons; uses `target/release/bgpgen` (built with `cargo build --release` first
//! unless `BGPGEN_BIN` names a binary). Prints a markdown table and writes the raw samples and the
//! summary to `target/bench-results/latency.json` (`latency-smoke.json` for `--smoke`).

#[path = "common/lab_backend.rs"]
mod lab_backend;
#[path = "../tests/common/netns.rs"]
#[allow(dead_code)]
mod netns;
// netns.rs reaches its skip policy as `super::skip`.
#[path = "../tests/common/skip.rs"]
#[allow(dead_code)]
mod skip;

use std::fmt::Write as _;
use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle, sleep};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bgpgen::daemon::gobgp_api::GobgpApi;
use bgpgen::render::Backend;
use bgpgen::routes_file::Path as RoutePath;
use ipnet::IpNet;
use lab_backend::LabBackend;
use netns::{BIRDC, GOBGP, LAB_OPTIONS, LAB_SUBNET, Lab, VTYSH, run_bgpgen};
use serde_json::{Value, json};

const SPEAKER_AS: u32 = 65000;
const UPSTREAM_AS: u32 = 65030;
const UPSTREAM_API: u16 = 50351;
const SPEAKER_API: u16 = 50352;
/// Per change: after this the change counts as failed.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Sessions up and the first announce.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// Poll period of the upstream RIB.
const POLL: Duration = Duration::from_millis(1);
/// Pause after each detected change (plus a small deterministic jitter, so that changes do not
/// stay in phase with bgpgen's 2 s daemon check).
const GAP: Duration = Duration::from_millis(150);
/// kube-ovn-speaker's poll interval, for the analytic comparison.
const KUBE_OVN_POLL_MS: f64 = 5000.0;
const DEFAULT_CHANGES: usize = 60;
const SMOKE_CHANGES: usize = 5;
/// A phase stops after this many failed changes in a row.
const MAX_CONSECUTIVE_FAILURES: usize = 5;

/// The pod announced from the start (proves the sessions are up before measuring).
const BASE_V4: &str = "10.16.0.5";
const BASE_V6: &str = "fd00:10:16::5";

fn pod_yaml(name: &str, v4: &str, v6: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: default
  annotations:
    ovn.kubernetes.io/allocated: "true"
    ovn.kubernetes.io/routed: "true"
    ovn.kubernetes.io/logical_switch: ovn-default
    ovn.kubernetes.io/ip_address: {v4},{v6}
    ovn.kubernetes.io/bgp: "true"
spec:
  nodeName: node-1
  containers:
    - name: main
      image: nginx:1.27
status:
  phase: Running
  podIP: {v4}
  podIPs:
    - ip: {v4}
    - ip: {v6}
"#
    )
}

/// The fresh addresses of change `i` of phase `phase` (never reused within a run).
fn change_addresses(phase: usize, i: usize) -> (String, String) {
    let v4 = format!("10.16.{}.{}", 10 * (phase + 1) + i / 200, 10 + i % 200);
    let v6 = format!("fd00:10:16::{:x}:{:x}", phase + 1, i + 10);
    (v4, v6)
}

fn host_prefix(ip: &str) -> IpNet {
    let len = if ip.contains(':') { 128 } else { 32 };
    format!("{ip}/{len}").parse().expect("prefix")
}

// ---------------------------------------------------------------------------------------------
// Command line

struct Args {
    changes: usize,
    smoke: bool,
    backends: Vec<Backend>,
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo bench --bench latency [-- [--changes N] [--smoke] [--backend gobgp,frr,bird]]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut changes = None;
    let mut smoke = false;
    let mut backends: Vec<Backend> = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            "--smoke" => smoke = true,
            "--changes" => {
                changes = Some(
                    it.next()
                        .and_then(|n| n.parse::<usize>().ok())
                        .filter(|n| *n > 0)
                        .unwrap_or_else(|| usage()),
                );
            }
            "--backend" => {
                let list = it.next().unwrap_or_else(|| usage());
                for name in list.split(',') {
                    match Backend::ALL.iter().find(|b| b.name() == name) {
                        Some(b) => backends.push(*b),
                        None => usage(),
                    }
                }
            }
            _ => usage(),
        }
    }
    if backends.is_empty() {
        backends = if smoke {
            vec![Backend::Gobgp]
        } else {
            Backend::ALL.to_vec()
        };
    }
    let changes = changes.unwrap_or(if smoke {
        SMOKE_CHANGES
    } else {
        DEFAULT_CHANGES
    });
    Args {
        changes,
        smoke,
        backends,
    }
}

// ---------------------------------------------------------------------------------------------
// Threads inside a network namespace

/// What a job running on an [`NsThread`] gets: a current-thread runtime and, when asked for, a
/// gobgpd API client (both inside the thread's namespace).
struct Worker {
    rt: tokio::runtime::Runtime,
    api: Option<GobgpApi>,
}

impl Worker {
    fn api(&self) -> &GobgpApi {
        self.api
            .as_ref()
            .expect("this thread has no gobgpd API client")
    }
}

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// A thread that entered a network namespace (namespaces are per thread) and runs jobs there.
/// Processes it spawns start in its namespace too.
struct NsThread {
    tx: Option<mpsc::Sender<Job>>,
    handle: Option<JoinHandle<()>>,
}

fn enter_netns(ns: &str) -> Result<(), String> {
    let path = format!("/var/run/netns/{ns}");
    let file = fs::File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
    // SAFETY: a valid namespace file descriptor; only this thread changes namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(format!(
            "setns({path}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

impl NsThread {
    /// Starts the thread in `ns`; with `api_port`, connects to gobgpd's API on
    /// 127.0.0.1:`api_port` there (retrying for 15 s).
    fn start(ns: &str, name: &str, api_port: Option<u16>) -> NsThread {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let ns = ns.to_string();
        let handle = thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let setup = || -> Result<Worker, String> {
                    enter_netns(&ns)?;
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| format!("tokio runtime: {e}"))?;
                    let api = match api_port {
                        None => None,
                        Some(port) => {
                            let deadline = Instant::now() + Duration::from_secs(15);
                            loop {
                                let attempt = rt.block_on(async {
                                    let api = GobgpApi::connect(format!("127.0.0.1:{port}"))
                                        .await?
                                        .with_timeout(Duration::from_secs(5));
                                    api.global().await.map(|_| api)
                                });
                                match attempt {
                                    Ok(api) => break Some(api),
                                    Err(e) if Instant::now() >= deadline => {
                                        return Err(format!("gobgpd API in {ns}: {e}"));
                                    }
                                    Err(_) => sleep(Duration::from_millis(100)),
                                }
                            }
                        }
                    };
                    Ok(Worker { rt, api })
                };
                let mut worker = match setup() {
                    Ok(w) => {
                        let _ = ready_tx.send(Ok(()));
                        w
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = rx.recv() {
                    job(&mut worker);
                }
            })
            .expect("spawn namespace thread");
        let thread = NsThread {
            tx: Some(tx),
            handle: Some(handle),
        };
        match ready_rx.recv() {
            Ok(Ok(())) => thread,
            Ok(Err(e)) => panic!("{name}: {e}"),
            Err(_) => panic!("{name}: the thread died while starting"),
        }
    }

    /// Runs `f` on the thread; returns a receiver for its result.
    fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Worker) -> T + Send + 'static,
    ) -> mpsc::Receiver<T> {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move |w| {
            let _ = tx.send(f(w));
        });
        self.tx
            .as_ref()
            .expect("thread running")
            .send(job)
            .expect("namespace thread is gone");
        rx
    }

    /// Runs `f` on the thread and waits for its result.
    fn run<T: Send + 'static>(&self, f: impl FnOnce(&mut Worker) -> T + Send + 'static) -> T {
        self.submit(f)
            .recv()
            .expect("namespace thread died (panicked?)")
    }
}

impl Drop for NsThread {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A detected change at the upstream.
struct Detection {
    at: Instant,
    /// From the start of the last poll that did not see the change to `at`: the latency is
    /// exact to within this.
    resolution: Duration,
}

/// Arms a watch of `prefix` in the upstream's RIB until it is `present` (or absent). The returned
/// receiver first gets the state seen by the first poll (the change must not have happened yet),
/// then the result receiver gets the detection.
fn watch(
    upstream: &NsThread,
    prefix: IpNet,
    present: bool,
    timeout: Duration,
) -> (
    mpsc::Receiver<bool>,
    mpsc::Receiver<Result<Detection, String>>,
) {
    let (armed_tx, armed_rx) = mpsc::channel();
    let result = upstream.submit(move |w| {
        let api = w.api().clone();
        let poll = |w: &Worker| -> Result<bool, String> {
            w.rt.block_on(api.prefix_paths(prefix))
                .map(|n| n > 0)
                .map_err(|e| e.to_string())
        };
        let first = poll(w)?;
        let _ = armed_tx.send(first);
        if first == present {
            return Err(format!(
                "{prefix} was already {} before the change",
                if present { "present" } else { "absent" }
            ));
        }
        let deadline = Instant::now() + timeout;
        let mut last_negative = Instant::now();
        loop {
            let started = Instant::now();
            let seen = poll(w)?;
            let at = Instant::now();
            if seen == present {
                return Ok(Detection {
                    at,
                    resolution: at - last_negative,
                });
            }
            last_negative = started;
            if at >= deadline {
                return Err(format!(
                    "{prefix} not {} within {timeout:?}",
                    if present { "announced" } else { "withdrawn" }
                ));
            }
            let next = started + POLL;
            let now = Instant::now();
            if next > now {
                sleep(next - now);
            }
        }
    });
    (armed_rx, result)
}

/// Polls (every 100 ms) until every prefix of `prefixes` is `present` at the upstream.
fn wait_state(
    upstream: &NsThread,
    prefixes: &[IpNet],
    present: bool,
    timeout: Duration,
) -> Result<(), String> {
    let prefixes = prefixes.to_vec();
    upstream.run(move |w| {
        let api = w.api().clone();
        let deadline = Instant::now() + timeout;
        loop {
            let mut last = String::new();
            let mut all = true;
            for p in &prefixes {
                match w.rt.block_on(api.prefix_paths(*p)) {
                    Ok(n) if (n > 0) == present => {}
                    Ok(n) => {
                        all = false;
                        last = format!("{p}: {n} paths");
                    }
                    Err(e) => {
                        all = false;
                        last = e.to_string();
                    }
                }
            }
            if all {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "after {timeout:?} the upstream still does not have {prefixes:?} {}: {last}",
                    if present { "present" } else { "absent" }
                ));
            }
            sleep(Duration::from_millis(100));
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Measurements

#[derive(Clone, Copy, PartialEq, Eq)]
enum Event {
    Add,
    Withdraw,
}

impl Event {
    fn name(self) -> &'static str {
        match self {
            Event::Add => "add",
            Event::Withdraw => "withdraw",
        }
    }
}

#[derive(Default)]
struct Series {
    samples: Vec<f64>,
    resolution: Vec<f64>,
    /// From t0 to the end of the action (the daemon command's own run time, for floors).
    act: Vec<f64>,
    failures: Vec<String>,
}

/// One measured configuration of one backend (a `bgpgen run` or a floor).
struct Phase {
    backend: Backend,
    /// Short id: `bgpgen-100ms`, `bgpgen-0s`, `floor`, `floor-cli`.
    id: String,
    label: String,
    how: String,
    add: Series,
    withdraw: Series,
    /// `ms=` of bgpgen's "applied" log lines (compile + render + validate + apply), if bgpgen.
    apply_ms: Vec<f64>,
}

impl Phase {
    /// The applies of `event`'s changes: every other one when there is exactly one per change
    /// (add, withdraw, add, ...), else all of them.
    fn apply_ms(&self, event: Event) -> Vec<f64> {
        let changes = self.add.samples.len() + self.add.failures.len();
        if self.apply_ms.len() != 2 * changes {
            return self.apply_ms.clone();
        }
        let first = usize::from(event == Event::Withdraw);
        self.apply_ms
            .iter()
            .skip(first)
            .step_by(2)
            .copied()
            .collect()
    }

    fn series(&mut self, event: Event) -> &mut Series {
        match event {
            Event::Add => &mut self.add,
            Event::Withdraw => &mut self.withdraw,
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One change: arm the watch, take t0 and act, wait for the upstream. `act` returns the time
/// it took t0 (just before the effective step) or an error.
fn measure(
    upstream: &NsThread,
    prefix: IpNet,
    event: Event,
    act: impl FnOnce() -> Result<Instant, String>,
) -> Result<(f64, f64, f64), String> {
    let (armed, result) = watch(upstream, prefix, event == Event::Add, CHANGE_TIMEOUT);
    match armed.recv() {
        Ok(_) => {}
        Err(_) => {
            return Err(result
                .recv()
                .unwrap_or_else(|_| Err("watcher died".into()))
                .err()
                .unwrap_or_default());
        }
    }
    let t0 = act();
    let acted = Instant::now();
    let detection = result
        .recv()
        .map_err(|_| "the watcher thread died".to_string())?;
    let t0 = t0?;
    let d = detection?;
    Ok((
        ms(d.at.saturating_duration_since(t0)),
        ms(d.resolution),
        ms(acted.saturating_duration_since(t0)),
    ))
}

/// Runs `changes` add + withdraw pairs; `act(event, i, v4, v6)` makes change `i`.
fn run_changes(
    upstream: &NsThread,
    phase: &mut Phase,
    phase_no: usize,
    changes: usize,
    mut act: impl FnMut(Event, usize, &str, &str) -> Result<Instant, String>,
) {
    let mut consecutive = 0;
    for i in 0..changes {
        let (v4, v6) = change_addresses(phase_no, i);
        let prefix = host_prefix(&v4);
        for event in [Event::Add, Event::Withdraw] {
            let outcome = measure(upstream, prefix, event, || act(event, i, &v4, &v6));
            let tag = format!("{} {}", phase.backend.name(), phase.id);
            let series = phase.series(event);
            match outcome {
                Ok((latency, resolution, acted)) => {
                    series.samples.push(latency);
                    series.resolution.push(resolution);
                    series.act.push(acted);
                    consecutive = 0;
                }
                Err(e) => {
                    eprintln!("  {tag}: change {i} ({}) failed: {e}", event.name());
                    series
                        .failures
                        .push(format!("change {i} {}: {e}", event.name()));
                    consecutive += 1;
                    // Let a late change land before the next one.
                    sleep(Duration::from_secs(1));
                }
            }
            sleep(GAP + Duration::from_millis(((i * 37 + 11) % 50) as u64));
        }
        if consecutive >= MAX_CONSECUTIVE_FAILURES {
            eprintln!(
                "  {} {}: {consecutive} failures in a row, phase stopped",
                phase.backend.name(),
                phase.id
            );
            phase.add.failures.push(format!(
                "stopped after change {i}: too many failures in a row"
            ));
            break;
        }
        if (i + 1) % 10 == 0 {
            eprintln!(
                "  {} {}: {}/{changes} changes",
                phase.backend.name(),
                phase.id,
                i + 1
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The lab

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Fields are dropped in order: the namespace threads leave before the lab deletes the
/// namespaces (also on panic).
struct Bench {
    upstream: NsThread,
    speaker: NsThread,
    backend: Backend,
    bin: String,
    staging: PathBuf,
    manifests: PathBuf,
    options: PathBuf,
    config: PathBuf,
    daemon_args: Vec<String>,
    /// FRR's vty socket dir or BIRD's control socket.
    control: PathBuf,
    /// The rendered main file before bgpgen ran (the BIRD floor edits a copy of it).
    initial_config: String,
    lab: Lab,
}

impl Bench {
    fn start(backend: Backend, bin: &str) -> Bench {
        let mut lab = Lab::new(&format!("lat-{}", backend.name()));
        let dir = lab.dir().to_path_buf();
        let mkdir = |sub: &str| {
            let path = dir.join(sub);
            fs::create_dir(&path).expect("create lab subdir");
            path
        };
        let (staging, manifests, options_dir, etc) = (
            mkdir("staging"),
            mkdir("manifests"),
            mkdir("options"),
            mkdir("etc"),
        );
        let options = options_dir.join("options.yaml");
        let config = etc.join(backend.main_file());
        let speaker_ns = lab.speaker_ns().to_string();
        let upstream_ns = lab.upstream_ns().to_string();

        lab.start_upstream(UPSTREAM_API, UPSTREAM_AS, SPEAKER_AS);
        let put = |dir: &Path, name: &str, contents: &str| {
            let staged = staging.join(name);
            fs::write(&staged, contents).expect("write staged file");
            fs::rename(&staged, dir.join(name)).expect("rename into place");
        };
        put(&manifests, "subnet.yaml", LAB_SUBNET);
        put(
            &manifests,
            "pod-base.yaml",
            &pod_yaml("base", BASE_V4, BASE_V6),
        );
        put(&options_dir, "options.yaml", LAB_OPTIONS);
        run_bgpgen(
            bin,
            &[
                "render",
                "-f",
                path_str(&manifests),
                "--options",
                path_str(&options),
                "--backend",
                backend.name(),
                "--out",
                path_str(&etc),
            ],
        );
        let initial_config = fs::read_to_string(&config).expect("rendered config");

        let mut daemon_args: Vec<String> = Vec::new();
        let mut control = PathBuf::new();
        let daemon = backend.daemon();
        match backend {
            Backend::Gobgp => {
                lab.start_gobgpd(&speaker_ns, daemon, &config, SPEAKER_API);
                let file = dir.join("speaker-gobgpd.pid");
                let pid = lab.pid(daemon).expect("speaker gobgpd runs");
                fs::write(&file, format!("{pid}\n")).expect("write gobgpd pid file");
                daemon_args.extend([
                    "--gobgp-api".into(),
                    format!("127.0.0.1:{SPEAKER_API}"),
                    "--gobgpd-pid-file".into(),
                    path_str(&file).into(),
                ]);
            }
            Backend::Frr => {
                control = lab.start_bgpd(&speaker_ns, daemon, &config);
                daemon_args.extend(["--frr-vty-socket".into(), path_str(&control).into()]);
            }
            Backend::Bird => {
                control = lab.start_bird(&speaker_ns, daemon, &config);
                daemon_args.extend(["--bird-socket".into(), path_str(&control).into()]);
            }
        }
        let upstream = NsThread::start(&upstream_ns, "upstream-watch", Some(UPSTREAM_API));
        let speaker = NsThread::start(
            &speaker_ns,
            "speaker-actor",
            (backend == Backend::Gobgp).then_some(SPEAKER_API),
        );
        Bench {
            upstream,
            speaker,
            backend,
            bin: bin.to_string(),
            staging,
            manifests,
            options,
            config,
            daemon_args,
            control,
            initial_config,
            lab,
        }
    }

    fn fail(&mut self, message: String) -> ! {
        let report = self.lab.report();
        panic!("latency::{}: {message}\n{report}", self.backend.name());
    }

    fn base_prefixes() -> [IpNet; 2] {
        [host_prefix(BASE_V4), host_prefix(BASE_V6)]
    }

    /// Starts `bgpgen run` as daemon `name` with `extra` flags; returns the command line.
    fn start_bgpgen(&mut self, name: &str, extra: &[&str]) -> String {
        let mut argv: Vec<String> = [
            self.bin.as_str(),
            "run",
            "--backend",
            self.backend.name(),
            "--manifests",
            path_str(&self.manifests),
            "--options",
            path_str(&self.options),
            "--config-file",
            path_str(&self.config),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        argv.extend(extra.iter().map(|s| s.to_string()));
        argv.extend(self.daemon_args.iter().cloned());
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let speaker_ns = self.lab.speaker_ns().to_string();
        self.lab.spawn_env(
            &speaker_ns,
            name,
            &argv,
            &[
                ("RUST_LOG", Some("info")),
                ("NODE_NAME", None),
                ("POD_IP", None),
                ("POD_IPS", None),
                ("GATEWAY_NAME", None),
            ],
        );
        // Sessions up and the first apply; a bgpgen that died stops the wait at once.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let last = match wait_state(
                &self.upstream,
                &Self::base_prefixes(),
                true,
                Duration::from_secs(1),
            ) {
                Ok(()) => break,
                Err(e) => e,
            };
            if let Err(dead) = self.lab.check_daemons() {
                self.fail(format!("{name} started: {dead}"));
            }
            if Instant::now() >= deadline {
                self.fail(format!(
                    "{name}: the base pod was not announced within {START_TIMEOUT:?}: {last}"
                ));
            }
        }
        argv.join(" ")
    }

    fn stop_bgpgen(&mut self, name: &str) {
        let status = self.lab.stop(name, "TERM", Duration::from_secs(15));
        if !status.success() {
            self.fail(format!("{name} exited with {status} on SIGTERM"));
        }
        // Graceful restart is off: bgpgen withdraws its routes on SIGTERM.
        if let Err(e) = wait_state(&self.upstream, &Self::base_prefixes(), false, START_TIMEOUT) {
            self.fail(format!("{name}: routes not withdrawn after SIGTERM: {e}"));
        }
    }

    fn put_manifest(&self, name: &str, contents: &str) -> Result<Instant, String> {
        let staged = self.staging.join(name);
        fs::write(&staged, contents).map_err(|e| format!("write {}: {e}", staged.display()))?;
        let t0 = Instant::now();
        fs::rename(&staged, self.manifests.join(name)).map_err(|e| format!("rename: {e}"))?;
        Ok(t0)
    }

    fn remove_manifest(&self, name: &str) -> Result<Instant, String> {
        let t0 = Instant::now();
        fs::remove_file(self.manifests.join(name)).map_err(|e| format!("remove {name}: {e}"))?;
        Ok(t0)
    }

    /// One `bgpgen run` phase: warm-up change, then `changes` measured ones.
    fn bgpgen_phase(
        &mut self,
        phase_no: usize,
        id: &str,
        label: &str,
        extra: &[&str],
        changes: usize,
    ) -> Phase {
        let name = format!("bgpgen-{id}");
        let how = self.start_bgpgen(&name, extra);
        eprintln!("latency::{}: {label}: {how}", self.backend.name());
        let mut phase = Phase {
            backend: self.backend,
            id: id.to_string(),
            label: label.to_string(),
            how,
            add: Series::default(),
            withdraw: Series::default(),
            apply_ms: Vec::new(),
        };
        // Warm-up (not recorded): the first change after the start may take a slower path.
        let mut warm = Phase {
            add: Series::default(),
            withdraw: Series::default(),
            apply_ms: Vec::new(),
            id: format!("{id} warm-up"),
            label: String::new(),
            how: String::new(),
            backend: self.backend,
        };
        let file = |i: usize| format!("pod-p{phase_no}-{i}.yaml");
        let this = &*self;
        run_changes(
            &self.upstream,
            &mut warm,
            phase_no + 10,
            1,
            |event, i, v4, v6| match event {
                Event::Add => this.put_manifest(&file(1000 + i), &pod_yaml("warm", v4, v6)),
                Event::Withdraw => this.remove_manifest(&file(1000 + i)),
            },
        );
        let log_before = applied_ms(&self.lab.dir().join(format!("{name}.log"))).len();
        run_changes(
            &self.upstream,
            &mut phase,
            phase_no,
            changes,
            |event, i, v4, v6| match event {
                Event::Add => {
                    this.put_manifest(&file(i), &pod_yaml(&format!("p{phase_no}-{i}"), v4, v6))
                }
                Event::Withdraw => this.remove_manifest(&file(i)),
            },
        );
        if let Err(dead) = self.lab.check_daemons() {
            self.fail(format!("during {label}: {dead}"));
        }
        self.stop_bgpgen(&name);
        let all = applied_ms(&self.lab.dir().join(format!("{name}.log")));
        // The withdrawal on SIGTERM is logged differently ("shutting down"), so these are the
        // measured changes' applies.
        phase.apply_ms = all.get(log_before..).unwrap_or_default().to_vec();
        phase
    }

    /// The daemon's own floor, bgpgen stopped: `changes` add + withdraw pairs straight through
    /// the daemon's interface.
    fn floor_phase(&mut self, phase_no: usize, cli: bool, changes: usize) -> Phase {
        let backend = self.backend;
        let (id, label, how) = match (backend, cli) {
            (Backend::Gobgp, false) => (
                "floor",
                "GoBGP floor (gRPC AddPathStream, as bgpgen)",
                "GobgpApi::add_paths / delete_paths (gRPC AddPathStream) from a thread in the \
                 speaker namespace",
            ),
            (Backend::Gobgp, true) => (
                "floor-cli",
                "GoBGP floor (gobgp CLI)",
                "gobgp -p PORT global rib add|del PREFIX -a ipv4 (spawned in the speaker \
                 namespace)",
            ),
            (Backend::Frr, _) => (
                "floor",
                "FRR floor (vtysh network)",
                "vtysh --vty_socket DIR -c 'configure terminal' -c 'router bgp 65000' -c \
                 'address-family ipv4 unicast' -c '[no ]network PREFIX'",
            ),
            (Backend::Bird, _) => (
                "floor",
                "BIRD floor (config + birdc configure)",
                "BIRD has no runtime route command: bird.conf rewritten (atomically) with one \
                 more static route, then birdc -s SOCK configure",
            ),
        };
        eprintln!("latency::{}: {label}: {how}", backend.name());
        let mut phase = Phase {
            backend,
            id: id.to_string(),
            label: label.to_string(),
            how: how.to_string(),
            add: Series::default(),
            withdraw: Series::default(),
            apply_ms: Vec::new(),
        };
        let speaker = &self.speaker;
        let control = path_str(&self.control).to_string();
        let config = self.config.clone();
        let staged_config = self.staging.join(backend.main_file());
        let base = self.initial_config.clone();
        let act = move |event: Event, _i: usize, v4: &str, _v6: &str| -> Result<Instant, String> {
            let prefix = host_prefix(v4);
            let add = event == Event::Add;
            match (backend, cli) {
                (Backend::Gobgp, false) => speaker.run(move |w| {
                    let api = w.api().clone();
                    let path = RoutePath {
                        prefix,
                        next_hop: None,
                    };
                    let t0 = Instant::now();
                    let result = if add {
                        w.rt.block_on(api.add_paths(&[path]))
                    } else {
                        w.rt.block_on(api.delete_paths(&[path]))
                    };
                    result.map(|()| t0).map_err(|e| e.to_string())
                }),
                (Backend::Gobgp, true) => {
                    let p = prefix.to_string();
                    let verb = if add { "add" } else { "del" };
                    let port = SPEAKER_API.to_string();
                    speaker.run(move |_| {
                        timed_command(
                            GOBGP,
                            &["-p", &port, "global", "rib", verb, &p, "-a", "ipv4"],
                        )
                    })
                }
                (Backend::Frr, _) => {
                    let line = format!("{}network {prefix}", if add { "" } else { "no " });
                    let control = control.clone();
                    let asn = format!("router bgp {SPEAKER_AS}");
                    speaker.run(move |_| {
                        timed_command(
                            VTYSH,
                            &[
                                "--vty_socket",
                                &control,
                                "-c",
                                "configure terminal",
                                "-c",
                                &asn,
                                "-c",
                                "address-family ipv4 unicast",
                                "-c",
                                &line,
                            ],
                        )
                    })
                }
                (Backend::Bird, _) => {
                    let text = if add {
                        bird_with_route(&base, prefix)?
                    } else {
                        base.clone()
                    };
                    fs::write(&staged_config, text).map_err(|e| format!("write config: {e}"))?;
                    let (staged, config, control) =
                        (staged_config.clone(), config.clone(), control.clone());
                    speaker.run(move |_| {
                        let t0 = Instant::now();
                        fs::rename(&staged, &config).map_err(|e| format!("rename: {e}"))?;
                        let out = run_command(BIRDC, &["-s", &control, "configure"])?;
                        if out.contains("Reconfigured") || out.contains("Reconfiguration") {
                            Ok(t0)
                        } else {
                            Err(format!("birdc configure: {out}"))
                        }
                    })
                }
            }
        };
        run_changes(&self.upstream, &mut phase, phase_no, changes, act);
        if let Err(dead) = self.lab.check_daemons() {
            self.fail(format!("during {label}: {dead}"));
        }
        phase
    }

    /// Facts about the speaker daemon's timers, for the report.
    fn timer_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.backend == Backend::Frr {
            let control = path_str(&self.control).to_string();
            let out = self.speaker.run(move |_| {
                run_command(
                    VTYSH,
                    &[
                        "--vty_socket",
                        &control,
                        "-c",
                        "show bgp neighbors 192.0.2.2",
                    ],
                )
            });
            match out {
                Ok(text) => notes.extend(
                    text.lines()
                        .filter(|l| l.contains("Minimum time between advertisement"))
                        .map(|l| format!("FRR `show bgp neighbors 192.0.2.2`: {}", l.trim())),
                ),
                Err(e) => notes.push(format!("FRR show bgp neighbors failed: {e}")),
            }
        }
        notes
    }
}

/// `program args...`: its combined output, or an error when it fails.
fn run_command(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "{program} {} ({}): {text}",
            args.join(" "),
            out.status
        ))
    }
}

/// t0 just before the command starts, once it succeeded.
fn timed_command(program: &str, args: &[&str]) -> Result<Instant, String> {
    let t0 = Instant::now();
    run_command(program, args).map(|_| t0)
}

/// `base` (a rendered bird.conf) with one more route in `protocol static bgpgen_v4`.
fn bird_with_route(base: &str, prefix: IpNet) -> Result<String, String> {
    let start = base
        .find("protocol static bgpgen_v4 {")
        .ok_or("no `protocol static bgpgen_v4` in bird.conf")?;
    let ipv4 = start
        + base[start..]
            .find("ipv4;")
            .ok_or("no `ipv4;` in bgpgen_v4")?;
    let eol = ipv4 + base[ipv4..].find('\n').ok_or("truncated bird.conf")? + 1;
    Ok(format!(
        "{}  route {prefix} blackhole;  # latency floor\n{}",
        &base[..eol],
        &base[eol..]
    ))
}

/// The `ms=` values of the "applied" lines of a bgpgen log.
fn applied_ms(log: &Path) -> Vec<f64> {
    let text = fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .map(strip_ansi)
        .filter(|l| l.contains(" applied"))
        .filter_map(|l| {
            let at = l.find(" ms=")?;
            let rest = &l[at + 4..];
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            rest[..end].parse::<f64>().ok()
        })
        .collect()
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Statistics and output

#[derive(Clone, Copy, Default)]
struct Summary {
    n: usize,
    min: f64,
    median: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

/// Nearest-rank percentiles.
fn summarize(samples: &[f64]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = |p: f64| s[((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
    Some(Summary {
        n: s.len(),
        min: s[0],
        median: rank(0.5),
        p90: rank(0.9),
        p99: rank(0.99),
        max: s[s.len() - 1],
        mean: s.iter().sum::<f64>() / s.len() as f64,
    })
}

fn summary_json(s: Option<Summary>) -> Value {
    match s {
        None => Value::Null,
        Some(s) => json!({
            "n": s.n, "min": s.min, "median": s.median, "p90": s.p90, "p99": s.p99,
            "max": s.max, "mean": s.mean,
        }),
    }
}

fn f(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn median_p99(s: Option<Summary>) -> String {
    s.map_or("-".into(), |s| format!("{} / {}", f(s.median), f(s.p99)))
}

struct BackendResult {
    backend: Backend,
    phases: Vec<Phase>,
    notes: Vec<String>,
    seconds: f64,
}

fn bench_backend(backend: Backend, bin: &str, zero: &str, changes: usize) -> Option<BackendResult> {
    if !netns::prerequisites(&format!("latency::{}", backend.name()), &backend.needs()) {
        return None;
    }
    let started = Instant::now();
    let mut b = Bench::start(backend, bin);
    let mut phases = Vec::new();
    phases.push(b.bgpgen_phase(
        0,
        "100ms",
        "bgpgen run, --debounce default (100ms)",
        &[],
        changes,
    ));
    phases.push(b.bgpgen_phase(
        1,
        "0s",
        &format!("bgpgen run --debounce {zero}"),
        &["--debounce", zero],
        changes,
    ));
    phases.push(b.floor_phase(2, false, changes));
    if backend == Backend::Gobgp {
        phases.push(b.floor_phase(3, true, changes));
    }
    let notes = b.timer_notes();
    drop(b);
    Some(BackendResult {
        backend,
        phases,
        notes,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// `0s` when `bgpgen run` accepts `--debounce 0s`, else `1ms`. Checked with a run that fails
/// right after parsing its flags (the manifests directory does not exist).
fn zero_debounce(bin: &str) -> &'static str {
    let mut child = Command::new(bin)
        .args([
            "run",
            "--debounce",
            "0s",
            "--manifests",
            "/nonexistent/bgpgen-latency-bench",
            "--backend",
            "bird",
            "--config-file",
            "/nonexistent/bgpgen-latency-bench/bird.conf",
            "--bird-socket",
            "/nonexistent/bgpgen-latency-bench/bird.ctl",
            "--metrics-addr",
            "127.0.0.1:0",
            "--neighbor-address",
            "192.0.2.2",
            "--neighbor-as",
            "65030",
            "--cluster-as",
            "65000",
            "--node-name",
            "node-1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bgpgen");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("bgpgen output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("--debounce") {
        eprintln!(
            "latency: --debounce 0s refused ({}), using 1ms",
            stderr.trim()
        );
        "1ms"
    } else {
        "0s"
    }
}

/// The bgpgen binary: `BGPGEN_BIN`, else `target/release/bgpgen` after `cargo build --release`.
fn bgpgen_binary() -> String {
    if let Ok(bin) = std::env::var("BGPGEN_BIN") {
        return bin;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("latency: cargo build --release --bin bgpgen");
    let status = Command::new(&cargo)
        .args(["build", "--release", "--bin", "bgpgen"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build --release");
    assert!(status.success(), "cargo build --release failed");
    let bin = target_dir().join("release").join("bgpgen");
    assert!(bin.is_file(), "{} is missing", bin.display());
    bin.to_string_lossy().into_owned()
}

fn main() {
    let args = parse_args();
    let argv: Vec<String> = std::env::args().collect();
    let user_args: Vec<&str> = argv
        .iter()
        .skip(1)
        .map(String::as_str)
        .filter(|a| *a != "--bench")
        .collect();
    let command = if user_args.is_empty() {
        "cargo bench --bench latency".to_string()
    } else {
        format!("cargo bench --bench latency -- {}", user_args.join(" "))
    };
    let bin = bgpgen_binary();
    let zero = zero_debounce(&bin);
    println!("# Change-to-route latency (benches/latency.rs)\n");
    println!("Command: `{command}` (binary: `{}`)\n", argv.join(" "));
    println!("bgpgen: `{bin}`");
    let backends: Vec<&str> = args.backends.iter().map(|b| b.name()).collect();
    println!(
        "Changes per measurement: {} adds + {} withdraws ({}), backends: {}\n",
        args.changes,
        args.changes,
        if args.smoke { "smoke" } else { "full" },
        backends.join(", ")
    );

    let started = Instant::now();
    let mut results = Vec::new();
    for backend in &args.backends {
        eprintln!("latency::{}: starting", backend.name());
        if let Some(r) = bench_backend(*backend, &bin, zero, args.changes) {
            eprintln!("latency::{}: done in {:.0} s", backend.name(), r.seconds);
            results.push(r);
        }
    }
    let total = started.elapsed().as_secs_f64();

    // --- tables
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Latency (ms), file event -> /32 in the upstream gobgpd's RIB\n"
    );
    let _ = writeln!(
        out,
        "| backend | measured | event | n | failed | median | p90 | p99 | max | inside: bgpgen apply (log) / daemon command, median / max |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for r in &results {
        for p in &r.phases {
            for (event, series) in [(Event::Add, &p.add), (Event::Withdraw, &p.withdraw)] {
                let s = summarize(&series.samples);
                let cells = s.map_or(["-".to_string(), "-".into(), "-".into(), "-".into()], |s| {
                    [f(s.median), f(s.p90), f(s.p99), f(s.max)]
                });
                // bgpgen: its apply (from its log); floor: the daemon command's run time.
                let inside = if p.id.starts_with("floor") {
                    series.act.clone()
                } else {
                    p.apply_ms(event)
                };
                let apply = summarize(&inside)
                    .map_or(String::new(), |a| format!("{} / {}", f(a.median), f(a.max)));
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {apply} |",
                    r.backend.name(),
                    p.label,
                    event.name(),
                    series.samples.len(),
                    series.failures.len(),
                    cells[0],
                    cells[1],
                    cells[2],
                    cells[3],
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "\n## bgpgen overhead over the daemon's floor, and kube-ovn-speaker's 5 s poll (model)\n"
    );
    let _ = writeln!(
        out,
        "Median / p99 in ms. Overhead = bgpgen minus floor (same percentile). The 5 s poll model \
         is U(0, 5 s) + the same floor: median 2500 + floor median, p99 4950 + floor p99.\n"
    );
    let _ = writeln!(
        out,
        "| backend | event | floor | bgpgen 100ms | overhead 100ms | bgpgen {zero} | overhead {zero} | 5 s poll (model) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    let mut comparison = Vec::new();
    for r in &results {
        let find = |id: &str| r.phases.iter().find(|p| p.id == id);
        for event in [Event::Add, Event::Withdraw] {
            let get = |id: &str| {
                find(id).and_then(|p| {
                    summarize(match event {
                        Event::Add => &p.add.samples,
                        Event::Withdraw => &p.withdraw.samples,
                    })
                })
            };
            let floor = get("floor");
            let (d100, d0) = (get("100ms"), get("0s"));
            let overhead = |b: Option<Summary>| match (b, floor) {
                (Some(b), Some(fl)) => Some((b.median - fl.median, b.p99 - fl.p99)),
                _ => None,
            };
            let show = |o: Option<(f64, f64)>| {
                o.map_or("-".into(), |(m, p)| format!("{} / {}", f(m), f(p)))
            };
            let model = floor.map(|fl| (2500.0 + fl.median, 4950.0 + fl.p99));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                r.backend.name(),
                event.name(),
                median_p99(floor),
                median_p99(d100),
                show(overhead(d100)),
                median_p99(d0),
                show(overhead(d0)),
                show(model),
            );
            comparison.push(json!({
                "backend": r.backend.name(),
                "event": event.name(),
                "floor": summary_json(floor),
                "bgpgen_debounce_100ms": summary_json(d100),
                "bgpgen_debounce_0s": summary_json(d0),
                "overhead_100ms_ms": overhead(d100).map(|(m, p)| json!({"median": m, "p99": p})),
                "overhead_0s_ms": overhead(d0).map(|(m, p)| json!({"median": m, "p99": p})),
                "poll_5s_model_ms": model.map(|(m, p)| json!({"median": m, "p99": p})),
            }));
        }
    }
    let resolution: Vec<f64> = results
        .iter()
        .flat_map(|r| &r.phases)
        .flat_map(|p| p.add.resolution.iter().chain(&p.withdraw.resolution))
        .copied()
        .collect();
    let res = summarize(&resolution);
    let _ = writeln!(out, "\nNotes:");
    if let Some(res) = res {
        let _ = writeln!(
            out,
            "- Detection resolution (last negative poll start -> positive answer): median {} ms, \
             max {} ms; the upstream is polled every {} ms with ListPath of the one prefix.",
            f(res.median),
            f(res.max),
            POLL.as_millis()
        );
    }
    let _ = writeln!(
        out,
        "- p99 of {} samples is their maximum or close to it (nearest rank).",
        args.changes
    );
    let _ = writeln!(
        out,
        "- bgpgen apply (log): `ms=` of bgpgen's `applied` log lines (snapshot received -> daemon \
         applied: compile, render, validate, write, apply); the rest of bgpgen's latency is the \
         file event and the debounce. For floors the same column is the daemon command's own run \
         time (t0 to its exit)."
    );
    for r in &results {
        for p in &r.phases {
            let _ = writeln!(out, "- {} {}: `{}`", r.backend.name(), p.label, p.how);
        }
        for n in &r.notes {
            let _ = writeln!(out, "- {}: {n}", r.backend.name());
        }
        let _ = writeln!(
            out,
            "- {}: lab run time {:.0} s",
            r.backend.name(),
            r.seconds
        );
    }
    let _ = writeln!(out, "- total run time {total:.0} s");
    print!("{out}");

    // --- JSON
    let json_results: Vec<Value> = results
        .iter()
        .map(|r| {
            json!({
                "backend": r.backend.name(),
                "seconds": r.seconds,
                "notes": r.notes,
                "phases": r.phases.iter().map(|p| json!({
                    "id": p.id,
                    "label": p.label,
                    "how": p.how,
                    "apply_log_ms": p.apply_ms,
                    "apply_log_add_summary": summary_json(summarize(&p.apply_ms(Event::Add))),
                    "apply_log_withdraw_summary": summary_json(summarize(&p.apply_ms(Event::Withdraw))),
                    "add": series_json(&p.add),
                    "withdraw": series_json(&p.withdraw),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let report = json!({
        "bench": "latency",
        "command": command,
        "argv": argv,
        "bgpgen": bin,
        "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "cpus": thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "smoke": args.smoke,
        "debounce_zero_flag": zero,
        "changes": args.changes,
        "units": "ms",
        "measure": "t0 just before the manifest rename (add) or unlink (withdraw), or before the \
                    daemon command (floor); end when the upstream gobgpd's ListPath of the /32 \
                    first answered the new state (polled every 1 ms)",
        "percentiles": "nearest rank",
        "poll_5s_model": {
            "interval_ms": KUBE_OVN_POLL_MS,
            "median": "interval/2 + floor median",
            "p99": "0.99*interval + floor p99",
        },
        "detection_resolution_ms": summary_json(res),
        "results": json_results,
        "comparison": comparison,
        "total_seconds": total,
    });
    let dir = target_dir().join("bench-results");
    fs::create_dir_all(&dir).expect("create target/bench-results");
    let file = dir.join(if args.smoke {
        "latency-smoke.json"
    } else {
        "latency.json"
    });
    fs::write(
        &file,
        serde_json::to_string_pretty(&report).expect("JSON") + "\n",
    )
    .expect("write the JSON report");
    println!("\nRaw samples and summary: {}", file.display());
    let failed: usize = results
        .iter()
        .flat_map(|r| &r.phases)
        .map(|p| p.add.failures.len() + p.withdraw.failures.len())
        .sum();
    if failed > 0 {
        eprintln!("latency: {failed} changes failed (see the JSON)");
    }
}

fn series_json(s: &Series) -> Value {
    json!({
        "samples_ms": s.samples,
        "resolution_ms": s.resolution,
        "action_ms": s.act,
        "action_summary": summary_json(summarize(&s.act)),
        "failures": s.failures,
        "summary": summary_json(summarize(&s.samples)),
    })
}
