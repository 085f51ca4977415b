//! The `run --spawn` lifecycle (docs/design.md section 9) with the real daemons: bgpgen in a speaker
//! network namespace starts gobgpd, BIRD or FRR's bgpd itself, peering with an upstream gobgpd
//! that has graceful restart on, whose RIB is checked. Per daemon, one lab runs:
//!
//! 1. start: routes at the upstream, /readyz 200, exactly one daemon, bgpgen's child;
//! 2. `kill -9` of bgpgen: the daemon dies with it (no orphan), the upstream keeps the routes as
//!    stale; bgpgen started again: one daemon, routes refreshed. A sampler of the upstream's RIB
//!    checks that no route was ever missing (steps 2 and 3);
//! 3. the daemon's control socket removed: bgpgen restarts it after a few failed checks and a
//!    change made afterwards is applied;
//! 4. a pid file naming an unrelated process (a pid reused after a container restart): that
//!    process is left alone;
//! 5. a daemon left running with bgpgen's own command line (as if it had survived bgpgen): the
//!    restarted bgpgen stops it and runs exactly one daemon of its own;
//! 6. SIGTERM with graceful restart on: bgpgen exits 0, the daemon is gone and the upstream keeps
//!    every route, marked stale (no Cease was sent);
//! 7. graceful restart off, SIGTERM: bgpgen withdraws the routes, stops the daemon, exits 0.
//!
//! And for BIRD alone (the mechanism is the same for every daemon): a daemon that fails to start
//! is started again on a timer without any change of the input, with `/readyz` 503 saying why
//! meanwhile; a daemon that hangs (SIGSTOP) is restarted.
//!
//! Needs root, `ip`, python3 (to read bgpgen's endpoint inside the namespace), gobgpd and gobgp,
//! and the backend's daemon and control tools. Missing ones fail the test, or skip
//! it visibly with BGPGEN_ALLOW_SKIP=1 (tests/common/skip.rs).

mod common;

use bgpgen::render::Backend;
use common::lab_backend::{LabBackend, PYTHON};

use std::collections::BTreeSet;
use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use common::netns::{
    self, BIRD, GOBGP, Gobgp, HTTP_GET, IP, LAB_OPTIONS, LAB_SUBNET, Lab, RibPath, SPEAKER_V4,
    SPEAKER_V6, netns_exec, path_str, put_atomic, show_rib,
};

const SPEAKER_AS: u32 = 65000;
const UPSTREAM_AS: u32 = 65030;
/// The upstream keeps stale routes this long (longer than any step).
const UPSTREAM_RESTART_TIME: u32 = 300;
const STEP: Duration = Duration::from_secs(40);
const POLL: Duration = Duration::from_millis(200);

/// (upstream gobgpd API port, bgpgen's HTTP port), inside their namespaces.
fn ports(backend: Backend) -> (u16, u16) {
    backend.pick((50451, 19761), (50461, 19762), (50471, 19763))
}

fn pod_yaml(name: &str, v4: &str, v6: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: default
  annotations:
    ovn.kubernetes.io/allocated: "true"
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
"#
    )
}

const POD_A: (&str, &str, &str) = ("a", "10.16.0.5", "fd00:10:16::5");
const POD_C: (&str, &str, &str) = ("c", "10.16.0.7", "fd00:10:16::7");

/// The upstream's RIB when the speaker announces these pods.
fn expected(pods: &[(&str, &str, &str)]) -> BTreeSet<RibPath> {
    let v4: IpAddr = SPEAKER_V4.parse().unwrap();
    let v6: IpAddr = SPEAKER_V6.parse().unwrap();
    let mut rib = BTreeSet::new();
    for (_, a4, a6) in pods {
        for (ip, len, speaker) in [(a4, 32, v4), (a6, 128, v6)] {
            rib.insert(RibPath {
                prefix: format!("{ip}/{len}").parse().unwrap(),
                next_hop: Some(speaker),
                neighbor: Some(speaker),
            });
        }
    }
    rib
}

fn prefixes(rib: &BTreeSet<RibPath>) -> BTreeSet<IpNet> {
    rib.iter().map(|p| p.prefix).collect()
}

/// A routing daemon process in the speaker's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Proc {
    pid: u32,
    ppid: u32,
    comm: String,
}

/// Samples the upstream's RIB every 100 ms on a thread and remembers every sample that lacked
/// one of the prefixes it must always hold.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<(usize, Vec<String>)>>,
}

impl Sampler {
    fn start(upstream: Gobgp, must_hold: BTreeSet<IpNet>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut samples = 0;
            let mut gaps = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                if let Ok(rib) = upstream.rib() {
                    samples += 1;
                    let have: BTreeSet<IpNet> = rib.iter().map(|p| p.prefix).collect();
                    let missing: Vec<String> =
                        must_hold.difference(&have).map(|p| p.to_string()).collect();
                    if !missing.is_empty() {
                        gaps.push(format!(
                            "{:.1?}: missing {}",
                            started.elapsed(),
                            missing.join(", ")
                        ));
                    }
                }
                sleep(Duration::from_millis(100));
            }
            (samples, gaps)
        });
        Sampler {
            stop,
            thread: Some(thread),
        }
    }

    /// (samples taken, samples with a missing prefix).
    fn finish(mut self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A process the test started itself (in the speaker namespace); killed on drop.
struct Own(Child);

impl Drop for Own {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct T {
    /// Every daemon pid seen, for the cleanup of FRR's `/var/tmp/frr/bgpd.<pid>/` (a bgpd killed
    /// with bgpgen leaves it).
    seen: std::cell::RefCell<BTreeSet<u32>>,
    backend: Backend,
    lab: Lab,
    upstream: Gobgp,
    speaker_ns: String,
    staging: PathBuf,
    manifests: PathBuf,
    options: PathBuf,
    etc: PathBuf,
    endpoint: String,
    started: Instant,
    step_started: Instant,
}

impl T {
    fn step(&mut self, what: &str) {
        eprintln!(
            "lifecycle::{}: {what} ({:.1?}, total {:.1?})",
            self.backend.name(),
            self.step_started.elapsed(),
            self.started.elapsed()
        );
        self.step_started = Instant::now();
    }

    fn fail(&mut self, message: String) -> ! {
        let report = self.lab.report();
        panic!("lifecycle::{}: {message}\n{report}", self.backend.name());
    }

    fn put(&self, dir: &Path, name: &str, contents: &str) {
        put_atomic(&self.staging, dir, name, contents);
    }

    fn put_pod(&self, pod: (&str, &str, &str)) {
        self.put(
            &self.manifests,
            &format!("pod-{}.yaml", pod.0),
            &pod_yaml(pod.0, pod.1, pod.2),
        );
    }

    fn get(&self, path: &str) -> Result<(u16, String), String> {
        let url = format!("{}{path}", self.endpoint);
        let out = netns_exec(&self.speaker_ns, &[PYTHON, "-c", HTTP_GET, &url])?;
        let (code, body) = out.split_once('\n').unwrap_or((&out, ""));
        let code = code
            .trim()
            .parse()
            .map_err(|_| format!("GET {url}: unexpected output {out:?}"))?;
        Ok((code, body.to_string()))
    }

    fn metric(&self, sample: &str) -> Result<f64, String> {
        let (code, body) = self.get("/metrics")?;
        if code != 200 {
            return Err(format!("/metrics answered {code}: {body}"));
        }
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                (name == sample).then(|| value.parse::<f64>().ok())?
            })
            .ok_or_else(|| format!("no sample {sample} in /metrics"))
    }

    fn wait<R>(&mut self, what: &str, mut check: impl FnMut(&T) -> Result<R, String>) -> R {
        let deadline = Instant::now() + STEP;
        loop {
            let last = match check(self) {
                Ok(v) => return v,
                Err(e) => e,
            };
            if let Err(dead) = self.lab.check_daemons() {
                self.fail(format!(
                    "while waiting for {what}: {dead}\nlast check: {last}"
                ));
            }
            if Instant::now() >= deadline {
                self.fail(format!(
                    "timed out after {STEP:?} waiting for {what}\n{last}"
                ));
            }
            sleep(POLL);
        }
    }

    fn wait_rib(&mut self, what: &str, want: &BTreeSet<RibPath>) {
        self.wait(what, |t| {
            let got: BTreeSet<RibPath> = t.upstream.rib()?.into_iter().collect();
            if &got == want {
                Ok(())
            } else {
                Err(format!(
                    "upstream RIB\nexpected: [{}]\ngot:      [{}]",
                    show_rib(want),
                    show_rib(&got)
                ))
            }
        });
    }

    /// Waits until the upstream holds exactly `want`'s prefixes as stale.
    fn wait_stale(&mut self, what: &str, want: &BTreeSet<IpNet>) {
        self.wait(what, |t| {
            let stale = t.upstream.stale()?;
            if &stale == want {
                Ok(())
            } else {
                Err(format!("stale at the upstream: {stale:?}, want {want:?}"))
            }
        });
    }

    fn wait_readyz(&mut self, what: &str, code: u16, needle: &str) {
        self.wait(what, |t| match t.get("/readyz")? {
            (c, body) if c == code && body.contains(needle) => Ok(()),
            (c, body) => Err(format!("/readyz answered {c}: {body}")),
        });
    }

    /// The routing daemons running in the speaker's namespace.
    fn daemons(&self) -> Vec<Proc> {
        let found = self.find_daemons();
        self.seen.borrow_mut().extend(found.iter().map(|d| d.pid));
        found
    }

    fn find_daemons(&self) -> Vec<Proc> {
        let ip = netns::find_program(IP).expect("ip");
        let out = Command::new(ip)
            .args(["netns", "pids", &self.speaker_ns])
            .stderr(Stdio::null())
            .output()
            .expect("ip netns pids");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
            .filter_map(|pid| {
                let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                let (head, rest) = stat.rsplit_once(')')?;
                let comm = head.split_once('(')?.1.to_string();
                let mut fields = rest.split_whitespace();
                let state = fields.next()?;
                let ppid = fields.next()?.parse().ok()?;
                (state != "Z" && comm == self.backend.comm()).then_some(Proc { pid, ppid, comm })
            })
            .collect()
    }

    /// Waits until exactly one daemon runs and it is the child of the running bgpgen.
    fn wait_one_daemon(&mut self, what: &str) -> Proc {
        self.wait(what, |t| {
            let bgpgen = t.lab.pid("bgpgen").ok_or("bgpgen is not running")?;
            match t.daemons().as_slice() {
                [one] if one.ppid == bgpgen => Ok(one.clone()),
                other => Err(format!(
                    "daemons in the speaker namespace: {other:?} (bgpgen is pid {bgpgen})"
                )),
            }
        })
    }

    fn wait_no_daemon(&mut self, what: &str) {
        self.wait(what, |t| match t.daemons().as_slice() {
            [] => Ok(()),
            other => Err(format!("still running: {other:?}")),
        });
    }

    fn set_graceful_restart(&self, on: bool) {
        let dir = self.options.parent().expect("options dir").to_path_buf();
        self.put(
            &dir,
            "options.yaml",
            &format!("{LAB_OPTIONS}graceful-restart: {on}\n"),
        );
    }
}

impl Drop for T {
    fn drop(&mut self) {
        if self.backend == Backend::Frr {
            for pid in self.seen.borrow().iter() {
                if fs::metadata(format!("/proc/{pid}")).is_err() {
                    let _ = fs::remove_dir_all(format!("/var/tmp/frr/bgpd.{pid}"));
                }
            }
        }
    }
}

/// Builds the lab (upstream with graceful restart), the manifests (pod a) and starts
/// `bgpgen run --spawn` with graceful restart on. `env` adds to bgpgen's environment.
fn start(backend: Backend, tag: &str, env: &[(&str, Option<&str>)]) -> T {
    let started = Instant::now();
    let mut lab = Lab::new(tag);
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
    fs::set_permissions(&etc, fs::Permissions::from_mode(0o700)).expect("chmod etc");
    let (upstream_port, metrics_port) = ports(backend);
    let speaker_ns = lab.speaker_ns().to_string();
    let upstream_ns = lab.upstream_ns().to_string();
    let upstream = lab.start_upstream_with(
        upstream_port,
        UPSTREAM_AS,
        SPEAKER_AS,
        Some(UPSTREAM_RESTART_TIME),
    );
    for family in ["ipv4", "ipv6"] {
        lab.add_status(
            &format!("upstream: global rib -a {family}"),
            &upstream_ns,
            &[
                GOBGP,
                "-p",
                &upstream_port.to_string(),
                "global",
                "rib",
                "-a",
                family,
            ],
        );
    }
    let t = T {
        seen: Default::default(),
        backend,
        lab,
        upstream,
        speaker_ns: speaker_ns.clone(),
        staging,
        manifests: manifests.clone(),
        options: options_dir.join("options.yaml"),
        etc: etc.clone(),
        endpoint: format!("http://127.0.0.1:{metrics_port}"),
        started,
        step_started: started,
    };
    t.put(&manifests, "subnet.yaml", LAB_SUBNET);
    t.put_pod(POD_A);
    t.set_graceful_restart(true);
    let bin = env!("CARGO_BIN_EXE_bgpgen");
    let mut argv: Vec<String> = [
        bin,
        "run",
        "--backend",
        backend.name(),
        "--spawn",
        "--manifests",
        path_str(&manifests),
        "--options",
        path_str(&t.options),
        "--config-file",
        path_str(&etc.join(backend.main_file())),
        "--metrics-addr",
        &format!("127.0.0.1:{metrics_port}"),
        "--debounce",
        "100ms",
        "--check-interval",
        "1s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    match backend {
        // gobgpd's API: a Unix socket beside the config by default with --spawn.
        Backend::Gobgp => {}
        Backend::Frr => argv.extend(["--frr-vty-socket".into(), path_str(&etc).into()]),
        Backend::Bird => argv.extend([
            "--bird-socket".into(),
            path_str(&etc.join("bird.ctl")).into(),
        ]),
    }
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut all_env: Vec<(&str, Option<&str>)> = vec![
        ("RUST_LOG", Some("info")),
        ("NODE_NAME", None),
        ("POD_IP", None),
        ("POD_IPS", None),
        ("GATEWAY_NAME", None),
    ];
    all_env.extend_from_slice(env);
    let mut t = t;
    t.lab.spawn_env(&speaker_ns, "bgpgen", &argv, &all_env);
    for path in ["/metrics", "/readyz"] {
        let url = format!("{}{path}", t.endpoint);
        t.lab.add_status(
            &format!("bgpgen {path}"),
            &speaker_ns,
            &[PYTHON, "-c", HTTP_GET, &url],
        );
    }
    t.step("lab, upstream (graceful restart on) and bgpgen --spawn started");
    t
}

fn scenario(backend: Backend) {
    let name = backend.name();
    if !netns::prerequisites(&format!("lifecycle::{name}"), &backend.needs()) {
        return;
    }
    let mut t = start(backend, &format!("lc-{name}"), &[]);
    let a = expected(&[POD_A]);

    // 1. Started: routes announced, ready, one daemon, bgpgen's child.
    t.wait_rib("the initial announce", &a);
    t.wait_readyz("/readyz 200", 200, "ready");
    let first = t.wait_one_daemon("one daemon, bgpgen's child");
    t.step("1. spawned daemon announces, ready");

    // 2. kill -9 of bgpgen: the daemon dies with it, the peers keep the routes (stale).
    let sampler = Sampler::start(t.upstream.clone(), prefixes(&a));
    t.lab.stop("bgpgen", "KILL", Duration::from_secs(5));
    t.wait_no_daemon("the daemon to die with bgpgen (no orphan)");
    t.wait_stale("the upstream to keep the routes as stale", &prefixes(&a));
    t.lab.restart("bgpgen");
    let second = t.wait_one_daemon("one daemon after bgpgen's restart");
    if second.pid == first.pid {
        t.fail(format!("the daemon survived bgpgen's kill -9: {second:?}"));
    }
    t.wait_stale("the routes refreshed (none stale)", &BTreeSet::new());
    t.wait_rib("the routes after bgpgen's restart", &a);
    t.wait_readyz("/readyz 200 after bgpgen's restart", 200, "ready");
    t.step("2. kill -9 of bgpgen: daemon died with it, routes kept stale, restarted");

    // 3. The control socket removed: the daemon does not answer any more; restarted, and a
    // change made afterwards is applied.
    let restarts = "bgpgen_daemon_restarts_total{reason=\"unreachable\"}";
    let before = t.metric(restarts).unwrap_or(0.0);
    fs::remove_file(t.etc.join(backend.control_socket())).expect("remove the control socket");
    t.wait(
        "bgpgen to restart the daemon whose socket is gone",
        |t| match t.metric(restarts)? {
            v if v > before => Ok(()),
            v => Err(format!("{restarts} is {v}")),
        },
    );
    let third = t.wait_one_daemon("one daemon after the restart");
    if third.pid == second.pid {
        t.fail("the daemon without its socket was not replaced".into());
    }
    t.put_pod(POD_C);
    let ac = expected(&[POD_A, POD_C]);
    t.wait_rib("pod c announced by the restarted daemon", &ac);
    t.wait_readyz("/readyz 200 after the restart", 200, "ready");
    let (samples, gaps) = sampler.finish();
    if !gaps.is_empty() || samples < 10 {
        t.fail(format!(
            "the upstream lost routes during steps 2-3 ({samples} samples):\n{}",
            gaps.join("\n")
        ));
    }
    t.step(&format!(
        "3. control socket removed: daemon restarted, change applied; routes never missing in {samples} samples"
    ));

    // 3b. GoBGP: a [global] change (router ID) is never applied by gobgpd's reload; with --spawn
    // bgpgen restarts gobgpd with the new file (keeping the peers' routes meanwhile).
    if backend == Backend::Gobgp {
        let config = "bgpgen_daemon_restarts_total{reason=\"config\"}";
        let before = t.metric(config).unwrap_or(0.0);
        let dir = t.options.parent().expect("options dir").to_path_buf();
        t.put(
            &dir,
            "options.yaml",
            &format!("{LAB_OPTIONS}graceful-restart: true\n")
                .replace("router-id: 192.0.2.1", "router-id: 192.0.2.9"),
        );
        t.wait("gobgpd restarted for the new router ID", |t| {
            match t.metric(config)? {
                v if v > before => Ok(()),
                v => Err(format!("{config} is {v}")),
            }
        });
        t.wait("the upstream to see the new router ID", |t| {
            let peer = t.upstream.neighbor(SPEAKER_V4)?;
            match peer["state"]["router_id"].as_str() {
                Some("192.0.2.9") => Ok(()),
                other => Err(format!("router ID at the upstream: {other:?}")),
            }
        });
        t.wait_stale("the routes refreshed", &BTreeSet::new());
        t.wait_rib("the routes after the router ID change", &ac);
        t.wait_readyz("/readyz 200 after the router ID change", 200, "ready");
        t.step("3b. [global] change: gobgpd restarted with it, routes back");
    }

    // 4. A pid file naming an unrelated process: left alone.
    let ns = t.speaker_ns.clone();
    let ip = netns::find_program(IP).expect("ip");
    let mut unrelated = Own(Command::new(&ip)
        .args(["netns", "exec", &ns, "sleep", "600"])
        .stdin(Stdio::null())
        .spawn()
        .expect("start sleep"));
    t.lab.stop("bgpgen", "KILL", Duration::from_secs(5));
    t.wait_no_daemon("the daemon to die with bgpgen");
    let pid_file = t.etc.join(backend.pid_file());
    fs::write(&pid_file, format!("{}\n", unrelated.0.id())).expect("write pid file");
    t.lab.restart("bgpgen");
    t.wait_one_daemon("one daemon beside the unrelated process");
    t.wait_rib("routes with the new daemon", &ac);
    if !matches!(unrelated.0.try_wait(), Ok(None)) {
        t.fail("bgpgen signalled the unrelated process named by the stale pid file".into());
    }
    drop(unrelated);
    t.step("4. stale pid file naming another program: not signalled");

    // 5. A daemon with bgpgen's own command line still running when bgpgen starts.
    let daemon = t.wait_one_daemon("the daemon");
    let argv: Vec<String> = fs::read(format!("/proc/{}/cmdline", daemon.pid))
        .expect("daemon cmdline")
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    t.lab.stop("bgpgen", "KILL", Duration::from_secs(5));
    t.wait_no_daemon("the daemon to die with bgpgen");
    if backend == Backend::Gobgp {
        // What bgpgen does before starting gobgpd (a killed gobgpd leaves its socket).
        let _ = fs::remove_file(t.etc.join("gobgpd.sock"));
    }
    let log = fs::File::create(t.lab.dir().join("survivor.log")).expect("log");
    let mut survivor = Own(Command::new(&ip)
        .args(["netns", "exec", &ns])
        .args(&argv)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start the surviving daemon"));
    if backend == Backend::Gobgp {
        fs::write(&pid_file, format!("{}\n", survivor.0.id())).expect("write pid file");
    }
    let survivor_pid = survivor.0.id();
    t.wait(
        "the surviving daemon's pid file",
        |_| match fs::read_to_string(&pid_file) {
            Ok(p) if p.trim() == survivor_pid.to_string() => Ok(()),
            other => Err(format!("{}: {other:?}", pid_file.display())),
        },
    );
    t.lab.restart("bgpgen");
    t.wait(
        "bgpgen to stop the daemon it found through the pid file",
        |_| match survivor.0.try_wait() {
            Ok(Some(_)) => Ok(()),
            _ => Err(format!("pid {survivor_pid} still runs")),
        },
    );
    let own = t.wait_one_daemon("exactly one daemon, bgpgen's own");
    if own.pid == survivor_pid {
        t.fail("bgpgen adopted nothing but the survivor still counts as its child?".into());
    }
    t.wait_rib("routes after replacing the survivor", &ac);
    t.wait_readyz("/readyz 200 with its own daemon", 200, "ready");
    drop(survivor);
    t.step("5. a previous daemon found through the pid file: stopped, one daemon");

    // 6. SIGTERM with graceful restart on: no Cease, the peers keep every route as stale.
    let stop = Instant::now();
    let status = t.lab.stop("bgpgen", "TERM", Duration::from_secs(15));
    let took = stop.elapsed();
    if !status.success() {
        t.fail(format!("bgpgen exited with {status} on SIGTERM"));
    }
    t.wait_no_daemon("the daemon stopped with bgpgen");
    t.wait_stale(
        "the upstream to keep every route as stale after SIGTERM",
        &prefixes(&ac),
    );
    sleep(Duration::from_secs(2));
    match t.upstream.rib() {
        Ok(rib) if prefixes(&rib.iter().cloned().collect()) == prefixes(&ac) => {}
        other => t.fail(format!("routes lost after the graceful stop: {other:?}")),
    }
    t.step(&format!(
        "6. SIGTERM, graceful restart on: exit 0 after {took:.1?}, routes kept as stale"
    ));

    // 7. Graceful restart off: SIGTERM withdraws, then stops the daemon.
    t.set_graceful_restart(false);
    t.lab.restart("bgpgen");
    t.wait_one_daemon("the daemon without graceful restart");
    t.wait_stale("the routes refreshed", &BTreeSet::new());
    t.wait_rib("the routes without graceful restart", &ac);
    t.wait_readyz("/readyz 200 without graceful restart", 200, "ready");
    let status = t.lab.stop("bgpgen", "TERM", Duration::from_secs(15));
    if !status.success() {
        t.fail(format!("bgpgen exited with {status} on SIGTERM"));
    }
    t.wait_rib("routes withdrawn on SIGTERM", &BTreeSet::new());
    t.wait_no_daemon("the daemon stopped after the withdrawal");
    t.step("7. SIGTERM, graceful restart off: withdrawn, daemon stopped, exit 0");

    // 8. Graceful restart off and the speaker dies (kill -9 of bgpgen takes the daemon with
    // it): no daemon may leave its peers holding the routes as stale (FRR's default helper mode
    // advertised the capability, and the upstream kept them for 120 s).
    t.lab.restart("bgpgen");
    t.wait_one_daemon("the daemon without graceful restart, again");
    t.wait_rib("the routes before the crash", &ac);
    // gobgpd (the upstream) keeps a peer's graceful-restart state from an earlier session, so
    // what the speaker advertises is checked rather than what the upstream does on the crash.
    for peer in [SPEAKER_V4, SPEAKER_V6] {
        let n = t.upstream.neighbor(peer).unwrap_or_default();
        let caps = n["state"]["remote_cap"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if caps.is_empty() {
            t.fail(format!("no capabilities of {peer} at the upstream: {n}"));
        }
        let graceful = |c: &serde_json::Value| {
            c["type_url"]
                .as_str()
                .is_some_and(|u| u.ends_with(".GracefulRestartCapability"))
        };
        if caps.iter().any(graceful) {
            t.fail(format!(
                "{peer} advertises graceful restart with it off: {caps:?}"
            ));
        }
    }
    t.step("8. graceful restart off: the capability is not advertised (a crash withdraws)");
}

#[test]
fn gobgp_lifecycle() {
    scenario(Backend::Gobgp);
}

#[test]
fn frr_lifecycle() {
    scenario(Backend::Frr);
}

#[test]
fn bird_lifecycle() {
    scenario(Backend::Bird);
}

/// A daemon that fails to start is started again on a timer (no change of the input needed),
/// with /readyz saying why meanwhile; a daemon that hangs (SIGSTOP: its socket still accepts,
/// nothing answers) is restarted.
#[test]
fn bird_start_failure_and_hang() {
    let backend = Backend::Bird;
    if !netns::prerequisites("lifecycle::bird_start_failure_and_hang", &backend.needs()) {
        return;
    }
    // A wrapper that fails to start BIRD while its marker exists (it still lets bgpgen's
    // configuration check, `bird -p`, through), then execs BIRD (exec: the daemon keeps bgpgen's
    // death signal and its pid).
    let scripts = tempfile::tempdir().expect("temp dir");
    let marker = scripts.path().join("fail");
    fs::write(&marker, "").expect("marker");
    let wrapper = scripts.path().join("bird-wrapper");
    let bird = netns::find_program(BIRD).expect("bird");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \" $* \" in *\" -p \"*) exec {b} \"$@\";; esac\n\
             if [ -e {m} ]; then echo 'bird-wrapper: failing on purpose' >&2; exit 1; fi\n\
             exec {b} \"$@\"\n",
            m = marker.display(),
            b = bird.display()
        ),
    )
    .expect("wrapper");
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).expect("chmod wrapper");
    let mut t = start(
        backend,
        "lc-birdfail",
        &[("BGPGEN_BIRD", Some(path_str(&wrapper)))],
    );
    t.wait("two failed starts", |t| {
        match t.metric("bgpgen_daemon_starts_total")? {
            v if v >= 2.0 => Ok(()),
            v => Err(format!("bgpgen_daemon_starts_total {v}")),
        }
    });
    t.wait_readyz(
        "/readyz 503 naming the failed start",
        503,
        "daemon_unreachable:",
    );
    fs::remove_file(&marker).expect("remove marker");
    let a = expected(&[POD_A]);
    t.wait_rib("routes once the daemon could start, no input change", &a);
    t.wait_one_daemon("one daemon after the retries");
    t.wait_readyz("/readyz 200", 200, "ready");
    t.step("start failures retried on a timer");

    let hung = t.wait_one_daemon("the daemon");
    netns::netns_exec(&t.speaker_ns, &["kill", "-STOP", &hung.pid.to_string()])
        .unwrap_or_else(|e| panic!("SIGSTOP: {e}"));
    t.wait_readyz(
        "/readyz 503 while the daemon hangs",
        503,
        "daemon_unreachable:",
    );
    t.wait("the hung daemon replaced", |t| {
        match t.daemons().iter().find(|d| d.pid != hung.pid) {
            Some(d) if !t.daemons().iter().any(|h| h.pid == hung.pid) => Ok(d.clone()),
            _ => Err(format!("daemons: {:?}", t.daemons())),
        }
    });
    t.put_pod(POD_C);
    t.wait_rib(
        "pod c announced by the new daemon",
        &expected(&[POD_A, POD_C]),
    );
    t.wait_readyz("/readyz 200 after the restart", 200, "ready");
    t.step("hung daemon restarted");
}
