//! End to end from the Kubernetes API: the fake API server (in this process, on the host's
//! 127.0.0.1) -> `bgpgen run --kubeconfig --spawn` -> the real routing daemon in the speaker's
//! network namespace -> an upstream gobgpd in a second namespace, whose RIB is checked.
//!
//! bgpgen runs in the host's namespace (it must reach the fake API server on 127.0.0.1) and
//! spawns the daemon through a wrapper script, `exec ip netns exec <speaker> <daemon> "$@"`
//! (bgpgen takes the daemon's program from `BGPGEN_GOBGPD` / `BGPGEN_BIRD` /
//! `BGPGEN_FRR_BGPD`). gobgpd's API (with `--spawn` a Unix socket beside its configuration),
//! BIRD's control socket and FRR's vty sockets are Unix sockets in the lab's temp dir,
//! reachable from both namespaces.
//!
//! The last step kills bgpgen (-9) while the API server is down and starts it again: with
//! `--spawn` it starts the daemon from the configuration it last applied, so the routes come back
//! although the source has nothing to say yet (not ready meanwhile).
//!
//! Needs root, `ip`, gobgpd and gobgp (the upstream), plus the backend's daemon. Missing ones fail
//! the test, or skip it visibly with BGPGEN_ALLOW_SKIP=1 (tests/common/skip.rs).

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::apiserver::ApiServer;
use common::netns::{
    self, BGPD, BIRD, BIRDC, GOBGP, GOBGPD, IP, Lab, RibPath, SPEAKER_V4, SPEAKER_V6, VTYSH,
    show_rib,
};

const SPEAKER_AS: u32 = 65000;
const UPSTREAM_AS: u32 = 65030;
/// Bound for each step.
const STEP: Duration = Duration::from_secs(25);
const POLL: Duration = Duration::from_millis(250);
const BGP: &str = "ovn.kubernetes.io/bgp";

const OPTIONS: &str = "neighbor-address: 192.0.2.2
neighbor-ipv6-address: 2001:db8::2
neighbor-as: 65030
cluster-as: 65000
node-name: node-1
router-id: 192.0.2.1
announce-cluster-ip: true
";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Gobgp,
    Frr,
    Bird,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Gobgp => "gobgp",
            Backend::Frr => "frr",
            Backend::Bird => "bird",
        }
    }

    fn needs(self) -> Vec<&'static str> {
        let mut needs = vec![IP, GOBGPD, GOBGP];
        match self {
            Backend::Gobgp => {}
            Backend::Frr => needs.extend([BGPD, VTYSH, "/usr/lib/frr/frr-reload.py"]),
            Backend::Bird => needs.extend([BIRD, BIRDC]),
        }
        needs
    }

    /// The upstream gobgpd's API port (inside its namespace).
    fn upstream_port(self) -> u16 {
        match self {
            Backend::Gobgp => 50351,
            Backend::Frr => 50361,
            Backend::Bird => 50371,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------------------------------

fn subnet() -> Value {
    json!({
        "apiVersion": "kubeovn.io/v1",
        "kind": "Subnet",
        "metadata": { "name": "bgp-subnet", "annotations": { BGP: "true" } },
        "spec": { "cidrBlock": "10.16.0.0/16,fd00:10:16::/64", "protocol": "Dual", "provider": "ovn" },
        "status": { "conditions": [{ "type": "Ready", "status": "True" }] },
    })
}

fn plain_subnet() -> Value {
    json!({
        "apiVersion": "kubeovn.io/v1",
        "kind": "Subnet",
        "metadata": { "name": "plain" },
        "spec": { "cidrBlock": "10.17.0.0/16,fd00:10:17::/64", "protocol": "Dual", "provider": "ovn" },
        "status": { "conditions": [{ "type": "Ready", "status": "True" }] },
    })
}

fn pod(name: &str, node: &str, subnet: &str, ips: &str, bgp: Option<&str>) -> Value {
    let mut annotations = json!({
        "ovn.kubernetes.io/allocated": "true",
        "ovn.kubernetes.io/logical_switch": subnet,
        "ovn.kubernetes.io/ip_address": ips,
    });
    if let Some(b) = bgp {
        annotations[BGP] = json!(b);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "namespace": "default", "name": name, "annotations": annotations },
        "spec": { "nodeName": node, "containers": [{ "name": "main", "image": "nginx:1.27" }] },
        "status": { "phase": "Running" },
    })
}

fn service() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "namespace": "default", "name": "dns", "annotations": { BGP: "true" } },
        "spec": { "type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ports": [{ "port": 53 }] },
    })
}

fn set_bgp(v: &mut Value, value: Option<&str>) {
    let annotations = v["metadata"]["annotations"]
        .as_object_mut()
        .expect("annotations");
    match value {
        Some(b) => {
            annotations.insert(BGP.into(), json!(b));
        }
        None => {
            annotations.remove(BGP);
        }
    }
}

/// The upstream's expected RIB: `prefixes`, each learned from and next-hopped to the speaker's
/// session address of its family.
fn expected(prefixes: &[&str]) -> BTreeSet<RibPath> {
    let v4: IpAddr = SPEAKER_V4.parse().unwrap();
    let v6: IpAddr = SPEAKER_V6.parse().unwrap();
    prefixes
        .iter()
        .map(|p| {
            let prefix: ipnet::IpNet = p.parse().unwrap();
            let speaker = if prefix.addr().is_ipv4() { v4 } else { v6 };
            RibPath {
                prefix,
                next_hop: Some(speaker),
                neighbor: Some(speaker),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// bgpgen in the host's namespace
// ---------------------------------------------------------------------------------------------

/// `bgpgen run`, started by the test. Dropped before the lab (declared after it): stops bgpgen
/// (SIGTERM, which withdraws and stops the daemon it spawned), then kills whatever it left in
/// the speaker namespace, by pid, so that no daemon outlives the namespace.
struct Bgpgen {
    child: Child,
    log: PathBuf,
    speaker_ns: String,
    /// FRR leaves `/var/tmp/frr/bgpd.<pid>/` behind; its pid file is read before stopping it.
    bgpd_pid_file: Option<PathBuf>,
}

impl Bgpgen {
    fn log(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(120)..].join("\n")
    }

    fn running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("bgpgen exited ({status})")),
            Err(e) => Err(format!("bgpgen: {e}")),
        }
    }

    fn namespace_pids(&self) -> Vec<u32> {
        let ip = netns::find_program(IP).unwrap_or_else(|| PathBuf::from(IP));
        Command::new(ip)
            .args(["netns", "pids", &self.speaker_ns])
            .stderr(Stdio::null())
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn kill(signal: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

impl Drop for Bgpgen {
    fn drop(&mut self) {
        let bgpd_pid = self
            .bgpd_pid_file
            .as_ref()
            .and_then(|f| fs::read_to_string(f).ok())
            .and_then(|p| p.trim().parse::<u32>().ok());
        if matches!(self.child.try_wait(), Ok(None)) {
            kill("TERM", self.child.id());
            let deadline = Instant::now() + Duration::from_secs(12);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Whatever still runs in the speaker's namespace was started by bgpgen for this test.
        let leftover = self.namespace_pids();
        for pid in &leftover {
            kill("TERM", *pid);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while !self.namespace_pids().is_empty() && Instant::now() < deadline {
            sleep(Duration::from_millis(50));
        }
        for pid in self.namespace_pids() {
            kill("KILL", pid);
        }
        if let Some(pid) = bgpd_pid {
            let _ = fs::remove_dir_all(format!("/var/tmp/frr/bgpd.{pid}"));
        }
    }
}

/// A wrapper that runs `program` inside `ns` with the arguments bgpgen gives it.
fn netns_wrapper(dir: &Path, name: &str, ns: &str, program: &str) -> PathBuf {
    let ip = netns::find_program(IP).expect("ip");
    let program = netns::find_program(program).expect("daemon");
    let path = dir.join(name);
    fs::write(
        &path,
        format!(
            "#!/bin/sh\nexec {} netns exec {ns} {} \"$@\"\n",
            ip.display(),
            program.display()
        ),
    )
    .expect("write wrapper");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod wrapper");
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// GET `path` from bgpgen's endpoint: (status code, body).
fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP header in {response:?}"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status code in {head:?}"))?;
    Ok((code, body.to_string()))
}

fn metric(port: u16, sample: &str) -> Result<f64, String> {
    let (code, body) = http_get(port, "/metrics")?;
    if code != 200 {
        return Err(format!("/metrics answered {code}: {body}"));
    }
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == sample).then(|| value.parse::<f64>().ok())?
        })
        .ok_or_else(|| format!("no sample {sample} in /metrics:\n{body}"))
}

// ---------------------------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------------------------

struct Test {
    /// First: struct fields drop in order, and bgpgen (with the daemon it spawned inside the
    /// speaker namespace) must stop before the lab deletes the namespaces.
    bgpgen: Option<Bgpgen>,
    name: &'static str,
    /// How bgpgen was started, to start it again.
    command: Command,
    lab: Lab,
    upstream: netns::Gobgp,
    metrics_port: u16,
    started: Instant,
    step_started: Instant,
}

impl Test {
    fn step(&mut self, what: &str) {
        eprintln!(
            "kube_e2e::{}: {what} ({:.1?}, total {:.1?})",
            self.name,
            self.step_started.elapsed(),
            self.started.elapsed()
        );
        self.step_started = Instant::now();
    }

    fn fail(&mut self, message: String) -> ! {
        let report = self.lab.report();
        let log = self.bgpgen.as_ref().map(Bgpgen::log).unwrap_or_default();
        panic!(
            "kube_e2e::{}: {message}\n{report}\n===== bgpgen log =====\n{log}",
            self.name
        );
    }

    fn wait<T>(&mut self, what: &str, check: impl Fn(&Test) -> Result<T, String>) -> T {
        let deadline = Instant::now() + STEP;
        loop {
            let last = match check(self) {
                Ok(v) => return v,
                Err(e) => e,
            };
            let dead = self
                .lab
                .check_daemons()
                .err()
                .or_else(|| self.bgpgen.as_mut().and_then(|b| b.running().err()));
            if let Some(dead) = dead {
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

    fn rib(&self) -> Result<BTreeSet<RibPath>, String> {
        Ok(self.upstream.rib()?.into_iter().collect())
    }

    fn wait_rib(&mut self, what: &str, want: &BTreeSet<RibPath>) {
        self.wait(what, |t| {
            let got = t.rib()?;
            if &got == want {
                Ok(())
            } else {
                Err(format!(
                    "upstream RIB is not the intent\nexpected: [{}]\ngot:      [{}]",
                    show_rib(want),
                    show_rib(&got)
                ))
            }
        });
    }

    /// For `d`, the upstream's RIB stays exactly `want`.
    fn hold_rib(&mut self, what: &str, want: &BTreeSet<RibPath>, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            match self.rib() {
                Ok(got) if &got == want => {}
                Ok(got) => self.fail(format!(
                    "{what}: the upstream's RIB changed\nexpected: [{}]\ngot:      [{}]",
                    show_rib(want),
                    show_rib(&got)
                )),
                Err(e) => self.fail(format!("{what}: {e}")),
            }
            sleep(POLL);
        }
    }

    fn wait_ready(&mut self, what: &str, ready: bool) {
        let port = self.metrics_port;
        self.wait(what, |_| {
            let (code, body) = http_get(port, "/readyz")?;
            let up = metric(port, "bgpgen_source_up")?;
            let want = if ready { (200, 1.0) } else { (503, 0.0) };
            if (code, up) == want {
                Ok(())
            } else {
                Err(format!(
                    "/readyz {code} {body:?}, bgpgen_source_up {up}; want {want:?}"
                ))
            }
        });
    }
}

fn scenario(backend: Backend) {
    let name = backend.name();
    if !netns::prerequisites(&format!("kube_e2e::{name}"), &backend.needs()) {
        return;
    }
    let started = Instant::now();
    let api = ApiServer::start();
    api.apply(&subnet());
    api.apply(&plain_subnet());
    api.apply(&service());
    api.apply(&pod(
        "a",
        "node-2",
        "bgp-subnet",
        "10.16.0.5,fd00:10:16::5",
        None,
    ));
    api.apply(&pod(
        "b",
        "node-1",
        "plain",
        "10.17.0.6,fd00:10:17::6",
        None,
    ));
    api.apply(&pod(
        "c",
        "node-2",
        "plain",
        "10.17.0.7,fd00:10:17::7",
        None,
    ));

    let mut lab = Lab::new(&format!("ke-{name}"));
    let dir = lab.dir().to_path_buf();
    let speaker_ns = lab.speaker_ns().to_string();
    let upstream_ns = lab.upstream_ns().to_string();
    let upstream_port = backend.upstream_port();
    // The upstream first: FRR and BIRD retry a failed connection only after a while.
    let upstream = lab.start_upstream(upstream_port, UPSTREAM_AS, SPEAKER_AS);
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
    let etc = dir.join("etc");
    fs::create_dir(&etc).expect("create etc");
    let options = dir.join("options.yaml");
    fs::write(&options, OPTIONS).expect("write options");
    let metrics_port = free_port();
    let bin = env!("CARGO_BIN_EXE_bgpgen");
    let mut command = Command::new(bin);
    command
        .args(["run", "--backend", name, "--spawn", "--kubeconfig"])
        .arg(api.kubeconfig_path())
        .arg("--options")
        .arg(&options)
        .args(["--debounce", "100ms", "--check-interval", "1s"])
        .arg("--metrics-addr")
        .arg(format!("127.0.0.1:{metrics_port}"))
        .env("RUST_LOG", "info")
        .env_remove("NODE_NAME")
        .env_remove("POD_IP")
        .env_remove("POD_IPS")
        .env_remove("POD_NAME")
        .env_remove("GATEWAY_NAME")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null());
    let mut bgpd_pid_file = None;
    match backend {
        Backend::Gobgp => {
            let wrapper = netns_wrapper(&dir, "gobgpd-in-netns", &speaker_ns, GOBGPD);
            command
                .arg("--config-file")
                .arg(etc.join("gobgpd.toml"))
                .env("BGPGEN_GOBGPD", &wrapper);
            let target = format!("unix://{}", etc.join("gobgpd.sock").display());
            lab.add_status(
                "speaker gobgpd: neighbor",
                &speaker_ns,
                &[GOBGP, "--target", &target, "neighbor"],
            );
        }
        Backend::Bird => {
            let wrapper = netns_wrapper(&dir, "bird-in-netns", &speaker_ns, BIRD);
            let socket = etc.join("bird.ctl");
            command
                .arg("--config-file")
                .arg(etc.join("bird.conf"))
                .arg("--bird-socket")
                .arg(&socket)
                .env("BGPGEN_BIRD", &wrapper);
            lab.add_status(
                "speaker bird: show protocols",
                &speaker_ns,
                &[BIRDC, "-s", socket.to_str().unwrap(), "show", "protocols"],
            );
        }
        Backend::Frr => {
            let wrapper = netns_wrapper(&dir, "bgpd-in-netns", &speaker_ns, BGPD);
            let vty = etc.join("run");
            fs::create_dir(&vty).expect("create vty dir");
            command
                .arg("--config-file")
                .arg(etc.join("frr.conf"))
                .arg("--frr-vty-socket")
                .arg(&vty)
                .env("BGPGEN_FRR_BGPD", &wrapper);
            bgpd_pid_file = Some(etc.join("bgpd.pid"));
            lab.add_status(
                "speaker bgpd: show bgp summary",
                &speaker_ns,
                &[
                    VTYSH,
                    "--vty_socket",
                    vty.to_str().unwrap(),
                    "-d",
                    "bgpd",
                    "-c",
                    "show bgp summary",
                ],
            );
        }
    }
    let log = dir.join("bgpgen.log");
    let file = fs::File::create(&log).expect("create bgpgen log");
    command
        .stdout(file.try_clone().expect("clone log"))
        .stderr(file);
    let child = command.spawn().expect("start bgpgen");
    let mut t = Test {
        name,
        command,
        lab,
        upstream,
        metrics_port,
        started,
        step_started: Instant::now(),
        bgpgen: Some(Bgpgen {
            child,
            log,
            speaker_ns,
            bgpd_pid_file,
        }),
    };
    t.step("fake API, lab, upstream and bgpgen started");

    // 1. The initial state, next hop self (the speaker's session address per family).
    let initial = [
        "10.16.0.0/16",
        "fd00:10:16::/64",
        "10.16.0.5/32",
        "fd00:10:16::5/128",
        "10.96.0.10/32",
    ];
    t.wait_rib("the initial announce", &expected(&initial));
    t.wait_ready("/readyz 200 after the first apply", true);
    t.step("initial routes at the upstream, ready");

    // 2. A pod annotated in the API: its routes appear.
    api.modify("pods", Some("default"), "b", |p| set_bgp(p, Some("true")));
    let with_b: Vec<&str> = initial
        .iter()
        .copied()
        .chain(["10.17.0.6/32", "fd00:10:17::6/128"])
        .collect();
    t.wait_rib("pod b announced", &expected(&with_b));
    t.step("pod b annotated: announced");

    // 3. The API server goes away: nothing is withdrawn, not ready, source down.
    api.set_down(true);
    t.wait_ready(
        "/readyz 503 and bgpgen_source_up 0 during the outage",
        false,
    );
    t.hold_rib("API down", &expected(&with_b), Duration::from_secs(3));
    // Changes while it is down: pod c annotated, pod b un-annotated.
    api.modify("pods", Some("default"), "c", |p| set_bgp(p, Some("yes")));
    api.modify("pods", Some("default"), "b", |p| set_bgp(p, None));
    t.hold_rib(
        "API down, changes pending",
        &expected(&with_b),
        Duration::from_secs(2),
    );
    t.step("API down: routes kept, not ready");

    // 4. Back: the changes are applied, ready again.
    api.set_down(false);
    let with_c: Vec<&str> = initial
        .iter()
        .copied()
        .chain(["10.17.0.7/32", "fd00:10:17::7/128"])
        .collect();
    t.wait_rib("the changes made during the outage", &expected(&with_c));
    t.wait_ready("/readyz 200 after the outage", true);
    t.step("API back: changes applied, ready");

    // 5. An outage during which nothing changes: ready again once it ends.
    api.set_down(true);
    t.wait_ready("/readyz 503 during the second outage", false);
    api.set_down(false);
    t.wait_ready("/readyz 200 after an outage without changes", true);
    t.hold_rib(
        "after the second outage",
        &expected(&with_c),
        Duration::from_secs(1),
    );
    t.step("second outage (no changes): ready again");

    // 6. kill -9 of bgpgen while the API server is down: the daemon dies with it (graceful
    // restart is off here, so the upstream drops the routes), and bgpgen started again brings
    // them back from the configuration it last applied, before the source answers.
    api.set_down(true);
    t.wait_ready("/readyz 503 with the API server down", false);
    {
        let b = t.bgpgen.as_mut().expect("bgpgen");
        kill("KILL", b.child.id());
        let _ = b.child.wait();
    }
    t.wait("the daemon to die with bgpgen", |t| {
        match t.bgpgen.as_ref().map(Bgpgen::namespace_pids) {
            Some(p) if p.is_empty() => Ok(()),
            other => Err(format!("still in the speaker namespace: {other:?}")),
        }
    });
    t.wait_rib(
        "the upstream to drop the routes of the dead daemon",
        &BTreeSet::new(),
    );
    let log = t.bgpgen.as_ref().expect("bgpgen").log.clone();
    let file = fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("open bgpgen log");
    t.command
        .stdout(file.try_clone().expect("clone log"))
        .stderr(file);
    let child = t.command.spawn().expect("start bgpgen again");
    t.bgpgen.as_mut().expect("bgpgen").child = child;
    t.wait_rib(
        "the last applied routes back while the API server is still down",
        &expected(&with_c),
    );
    t.wait_ready("/readyz 503: nothing from the source yet", false);
    api.set_down(false);
    t.wait_ready("/readyz 200 once the API server answers", true);
    t.hold_rib(
        "after the API server came back",
        &expected(&with_c),
        Duration::from_secs(1),
    );
    t.step("kill -9 while the API is down: restarted from the last applied config, ready once it is up");
    eprintln!("kube_e2e::{name}: passed in {:.1?}", started.elapsed());
}

#[test]
fn gobgp_follows_the_kubernetes_api() {
    scenario(Backend::Gobgp);
}

#[test]
fn bird_follows_the_kubernetes_api() {
    scenario(Backend::Bird);
}

#[test]
fn frr_follows_the_kubernetes_api() {
    scenario(Backend::Frr);
}
