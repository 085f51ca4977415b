//! Sidecar tests: `bgpgen run` next to a real gobgpd, FRR bgpd or BIRD in a network namespace,
//! peering over IPv4 and IPv6 with an upstream gobgpd in a second namespace. One lab per backend
//! runs the whole scenario, each step checking that the upstream's RIB holds exactly the intent
//! (with the speaker's session address as next hop):
//!
//! 1. initial announce, /readyz 200 after the first apply;
//! 2. a pod file added: its routes appear, and the sessions are not reset;
//! 3. its policy changed cluster -> local while it is on another node: withdrawn;
//! 4. a pod file deleted: withdrawn (sessions still not reset by steps 2-4);
//! 5. a pod added back, then a session option (hold time) changed in the watched options file:
//!    the upstream negotiates the new hold time and the routes come back;
//! 6. a user template producing garbage: the daemon's checker refuses it, the previous
//!    configuration keeps running (file on disk unchanged, routes and sessions untouched), the
//!    error is counted in /metrics, and /readyz is 503 saying why (the configuration in force is
//!    not the intent) until the template is fixed; a broken manifest likewise (503,
//!    `input_rejected`); GoBGP only: a changed AS (`[global]`), which gobgpd cannot take without
//!    a restart, is refused: 503 `restart_needed`, and `/intent` says it is stale;
//! 7. the speaker daemon SIGKILLed: /readyz 503 `daemon_unreachable`; started again with the same
//!    command: routes come back, 200;
//! 8. SIGTERM to bgpgen (attach mode): it exits 0 and nothing is withdrawn, sessions kept;
//! 9. bgpgen started again: its first apply changes nothing at the upstream (no withdraw and
//!    re-announce of what the daemon already has), ready again;
//! 10. bgpgen with `--withdraw-on-exit`, SIGTERM: routes withdrawn, sessions kept.
//!
//! Needs root, `ip`, python3 (to read the HTTP endpoint inside the namespace), gobgpd and gobgp,
//! and the backend's daemon and control tools. Missing ones fail the test, or skip
//! it visibly with BGPGEN_ALLOW_SKIP=1 (tests/common/skip.rs).

mod common;

use bgpgen::render::Backend;
use common::lab_backend::{LabBackend, PYTHON};

use std::collections::BTreeSet;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::netns::{
    self, GOBGP, Gobgp, HTTP_GET, LAB_OPTIONS as OPTIONS, LAB_SUBNET as SUBNET, Lab, RibPath,
    SPEAKER_V4, SPEAKER_V6, netns_exec, path_str, put_atomic, run_bgpgen, show_rib,
};

const SPEAKER_AS: u32 = 65000;
const UPSTREAM_AS: u32 = 65030;
/// Upper bound of every wait for a step to converge.
const STEP: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(250);

/// What a user template that does not produce a configuration looks like.
const GARBAGE: &str = "this is { not a config ;\n";

/// A running pod of the subnet with its `ovn.kubernetes.io/bgp` annotation.
struct Pod {
    name: &'static str,
    bgp: &'static str,
    node: &'static str,
    v4: &'static str,
    v6: &'static str,
}

impl Pod {
    fn file(&self) -> String {
        format!("pod-{}.yaml", self.name)
    }

    fn yaml(&self) -> String {
        let Pod {
            name,
            bgp,
            node,
            v4,
            v6,
        } = self;
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
    ovn.kubernetes.io/bgp: "{bgp}"
spec:
  nodeName: {node}
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
}

const POD_A: Pod = Pod {
    name: "a",
    bgp: "true",
    node: "node-1",
    v4: "10.16.0.5",
    v6: "fd00:10:16::5",
};
const POD_B_CLUSTER: Pod = Pod {
    name: "b",
    bgp: "cluster",
    node: "node-2",
    v4: "10.16.0.6",
    v6: "fd00:10:16::6",
};
const POD_B_LOCAL: Pod = Pod {
    bgp: "local",
    ..POD_B_CLUSTER
};
const POD_C: Pod = Pod {
    name: "c",
    bgp: "cluster",
    node: "node-1",
    v4: "10.16.0.7",
    v6: "fd00:10:16::7",
};

/// The upstream's RIB when the speaker announces these pods: each pod's /32 learned from and
/// next-hopped to the speaker's IPv4 session address, its /128 to the IPv6 one.
fn expected(pods: &[&Pod]) -> BTreeSet<RibPath> {
    let v4: IpAddr = SPEAKER_V4.parse().unwrap();
    let v6: IpAddr = SPEAKER_V6.parse().unwrap();
    let mut rib = BTreeSet::new();
    for pod in pods {
        for (ip, len, speaker) in [(pod.v4, 32, v4), (pod.v6, 128, v6)] {
            rib.insert(RibPath {
                prefix: format!("{ip}/{len}").parse().unwrap(),
                next_hop: Some(speaker),
                neighbor: Some(speaker),
            });
        }
    }
    rib
}

/// (upstream gobgpd API, speaker gobgpd API, bgpgen's HTTP endpoint), all on 127.0.0.1 inside
/// their namespace (so they could not collide anyway; distinct values keep logs unambiguous).
fn ports(backend: Backend) -> (u16, u16, u16) {
    backend.pick(
        (50251, 50252, 19661),
        (50261, 50262, 19662),
        (50271, 50272, 19663),
    )
}

/// One BGP session as the upstream sees it.
#[derive(Debug, Clone, PartialEq)]
struct Session {
    address: &'static str,
    state: String,
    /// Unix time the session was established (gobgpd keeps seconds).
    uptime: i64,
    /// OPEN messages received: one more per session established.
    opens: u64,
    negotiated_hold_time: u64,
}

/// The lab, bgpgen's inputs and outputs, and the upstream.
struct Sidecar {
    backend: Backend,
    lab: Lab,
    upstream: Gobgp,
    speaker_ns: String,
    /// Files are written here and renamed into place, as `git` or `kubectl` would.
    staging: PathBuf,
    manifests: PathBuf,
    options: PathBuf,
    templates: PathBuf,
    /// The daemon's configuration file (`--config-file`), rendered by `bgpgen render --out`.
    config: PathBuf,
    /// gobgpd's pid file, which the test writes (gobgpd has no pid-file option).
    pid_file: Option<PathBuf>,
    endpoint: String,
    /// `bgpgen run`'s command line, to start another one with an extra flag.
    bgpgen_argv: Vec<String>,
    started: Instant,
    step_started: Instant,
}

impl Sidecar {
    fn step(&mut self, what: &str) {
        eprintln!(
            "sidecar::{}: {what} ({:.1?}, total {:.1?})",
            self.backend.name(),
            self.step_started.elapsed(),
            self.started.elapsed()
        );
        self.step_started = Instant::now();
    }

    fn fail(&mut self, message: String) -> ! {
        let report = self.lab.report();
        panic!("sidecar::{}: {message}\n{report}", self.backend.name());
    }

    /// Writes `dir/name` atomically (staged, then renamed into place).
    fn put(&self, dir: &Path, name: &str, contents: &str) {
        put_atomic(&self.staging, dir, name, contents);
    }

    fn put_manifest(&self, pod: &Pod) {
        self.put(&self.manifests, &pod.file(), &pod.yaml());
    }

    fn remove_manifest(&self, pod: &Pod) {
        fs::remove_file(self.manifests.join(pod.file())).expect("remove manifest");
    }

    /// GET `path` from bgpgen's endpoint, inside the speaker namespace: (status code, body).
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

    /// One sample of /metrics, e.g. `bgpgen_applies_total{result="failed"}`.
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
            .ok_or_else(|| format!("no sample {sample} in /metrics:\n{body}"))
    }

    /// The upstream's RIB, both families.
    fn rib(&self) -> Result<BTreeSet<RibPath>, String> {
        Ok(self.upstream.rib()?.into_iter().collect())
    }

    /// Waits until the upstream's RIB is exactly `want`.
    fn wait_rib(&mut self, what: &str, want: &BTreeSet<RibPath>) {
        let upstream = self.upstream.clone();
        self.lab.wait_for(what, STEP, POLL, |_| {
            let got: BTreeSet<RibPath> = upstream.rib()?.into_iter().collect();
            if &got == want {
                Ok(())
            } else {
                Err(format!(
                    "upstream RIB is not the intent\nexpected: [{}]\ngot:      [{}]\nmissing:  [{}]\nextra:    [{}]",
                    show_rib(want),
                    show_rib(&got),
                    show_rib(&want.difference(&got).cloned().collect()),
                    show_rib(&got.difference(want).cloned().collect()),
                ))
            }
        });
    }

    /// For `d`, the upstream's RIB stays exactly `want` (polled).
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

    /// Waits until `/readyz` answers `code` with `needle` in its body.
    fn wait_readyz(&mut self, what: &str, code: u16, needle: &str) {
        self.wait(what, |t| match t.get("/readyz")? {
            (c, body) if c == code && body.contains(needle) => Ok(()),
            (c, body) => Err(format!("/readyz answered {c}: {body}")),
        });
    }

    /// UPDATE messages the upstream received from the speaker, per session.
    fn upstream_updates(&self) -> Vec<u64> {
        [SPEAKER_V4, SPEAKER_V6]
            .iter()
            .map(|a| {
                self.upstream
                    .neighbor(a)
                    .ok()
                    .and_then(|p| p["state"]["messages"]["received"]["update"].as_u64())
                    .unwrap_or(0)
            })
            .collect()
    }

    /// The upstream's two sessions with the speaker.
    fn sessions(&self) -> Result<[Session; 2], String> {
        let one = |address: &'static str| -> Result<Session, String> {
            let peer = self.upstream.neighbor(address)?;
            let state = &peer["state"];
            let timers = &peer["timers"]["state"];
            let text = || peer.to_string();
            Ok(Session {
                address,
                state: state["session_state"]
                    .as_i64()
                    .map(|s| {
                        if s == 6 {
                            "established".to_string()
                        } else {
                            format!("state {s}")
                        }
                    })
                    .or_else(|| state["session_state"].as_str().map(str::to_string))
                    .ok_or_else(|| format!("no state.session_state in {}", text()))?,
                uptime: timers["uptime"]["seconds"].as_i64().unwrap_or(0),
                opens: state["messages"]["received"]["open"].as_u64().unwrap_or(0),
                negotiated_hold_time: timers["negotiated_hold_time"].as_u64().unwrap_or(0),
            })
        };
        Ok([one(SPEAKER_V4)?, one(SPEAKER_V6)?])
    }

    /// Polls `check` until it returns Ok (within [`STEP`]), failing with the lab's report.
    fn wait<T>(&mut self, what: &str, check: impl Fn(&Sidecar) -> Result<T, String>) -> T {
        let deadline = Instant::now() + STEP;
        loop {
            let last = match check(self) {
                Ok(value) => return value,
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

    /// Waits until both sessions are established and returns them.
    fn wait_established(&mut self, what: &str) -> [Session; 2] {
        self.wait(what, |t| match t.sessions()? {
            s if s.iter().all(|s| s.state == "established") => Ok(s),
            s => Err(format!("not established: {s:?}")),
        })
    }

    fn config_on_disk(&self) -> String {
        fs::read_to_string(&self.config).expect("read the daemon's config file")
    }

    /// Writes gobgpd's pid file for bgpgen's SIGHUP (gobgpd cannot write one itself).
    fn write_pid_file(&self) {
        if let Some(pid_file) = &self.pid_file {
            let pid = self
                .lab
                .pid(self.backend.daemon())
                .expect("speaker gobgpd runs");
            fs::write(pid_file, format!("{pid}\n")).expect("write gobgpd pid file");
        }
    }
}

/// bgpgen's environment in the lab: logs on, none of the host's kube-ovn-speaker variables.
fn bgpgen_env() -> [(&'static str, Option<&'static str>); 5] {
    [
        ("RUST_LOG", Some("info")),
        ("NODE_NAME", None),
        ("POD_IP", None),
        ("POD_IPS", None),
        ("GATEWAY_NAME", None),
    ]
}

fn bgpgen(args: &[&str]) -> String {
    run_bgpgen(env!("CARGO_BIN_EXE_bgpgen"), args)
}

/// Builds the lab, starts the upstream, the speaker daemon (from `bgpgen render --out` of the
/// initial manifests) and `bgpgen run`.
fn start(backend: Backend) -> Sidecar {
    start_with(backend, true)
}

/// `user_templates`: run with `--templates DIR` (user templates: every apply is whole).
fn start_with(backend: Backend, user_templates: bool) -> Sidecar {
    let name = backend.name();
    let started = Instant::now();
    let mut lab = Lab::new(&format!("sc-{name}"));
    let dir = lab.dir().to_path_buf();
    let mkdir = |sub: &str| {
        let path = dir.join(sub);
        fs::create_dir(&path).expect("create lab subdir");
        path
    };
    let (staging, manifests, options_dir, templates, etc) = (
        mkdir("staging"),
        mkdir("manifests"),
        mkdir("options"),
        mkdir("templates"),
        mkdir("etc"),
    );
    let options = options_dir.join("options.yaml");
    let config = etc.join(backend.main_file());
    let (upstream_port, speaker_port, metrics_port) = ports(backend);
    let speaker_ns = lab.speaker_ns().to_string();
    let upstream_ns = lab.upstream_ns().to_string();
    let endpoint = format!("http://127.0.0.1:{metrics_port}");

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
    let mut sidecar = Sidecar {
        backend,
        lab,
        upstream,
        speaker_ns: speaker_ns.clone(),
        staging,
        manifests,
        options,
        templates,
        config,
        pid_file: None,
        endpoint,
        bgpgen_argv: Vec::new(),
        started,
        step_started: started,
    };
    sidecar.put(&sidecar.manifests.clone(), "subnet.yaml", SUBNET);
    sidecar.put_manifest(&POD_A);
    sidecar.put(&options_dir, "options.yaml", OPTIONS);
    bgpgen(&[
        "render",
        "-f",
        path_str(&sidecar.manifests),
        "--options",
        path_str(&sidecar.options),
        "--backend",
        name,
        "--out",
        path_str(&etc),
    ]);

    let lab = &mut sidecar.lab;
    let mut daemon_args: Vec<String> = Vec::new();
    match backend {
        Backend::Gobgp => {
            lab.start_gobgpd(&speaker_ns, backend.daemon(), &sidecar.config, speaker_port);
            let pid_file = dir.join("speaker-gobgpd.pid");
            daemon_args.extend([
                "--gobgp-api".into(),
                format!("127.0.0.1:{speaker_port}"),
                "--gobgpd-pid-file".into(),
                path_str(&pid_file).into(),
            ]);
            sidecar.pid_file = Some(pid_file);
            sidecar.write_pid_file();
        }
        Backend::Frr => {
            let vty = lab.start_bgpd(&speaker_ns, backend.daemon(), &sidecar.config);
            daemon_args.extend(["--frr-vty-socket".into(), path_str(&vty).into()]);
        }
        Backend::Bird => {
            let socket = lab.start_bird(&speaker_ns, backend.daemon(), &sidecar.config);
            daemon_args.extend(["--bird-socket".into(), path_str(&socket).into()]);
        }
    }

    let bin = env!("CARGO_BIN_EXE_bgpgen");
    let mut argv: Vec<String> = [
        bin,
        "run",
        "--backend",
        name,
        "--manifests",
        path_str(&sidecar.manifests),
        "--options",
        path_str(&sidecar.options),
        "--config-file",
        path_str(&sidecar.config),
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
    if user_templates {
        argv.extend([
            "--templates".to_string(),
            path_str(&sidecar.templates).to_string(),
        ]);
    }
    argv.extend(daemon_args);
    sidecar.bgpgen_argv = argv.clone();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let lab = &mut sidecar.lab;
    lab.spawn_env(&speaker_ns, "bgpgen", &argv, &bgpgen_env());
    for path in ["/metrics", "/readyz"] {
        let url = format!("{}{path}", sidecar.endpoint);
        lab.add_status(
            &format!("bgpgen {path}"),
            &speaker_ns,
            &[PYTHON, "-c", HTTP_GET, &url],
        );
    }
    sidecar.step("lab, upstream, speaker daemon and bgpgen started");
    sidecar
}

fn scenario(backend: Backend) {
    let name = backend.name();
    if !netns::prerequisites(&format!("sidecar::{name}"), &backend.needs()) {
        return;
    }
    let mut t = start(backend);

    // 1. Initial announce; ready once the first apply went through.
    t.wait_rib("the initial announce of pod a", &expected(&[&POD_A]));
    t.wait("/readyz 200 after the first apply", |t| {
        match t.get("/readyz")? {
            (200, _) => Ok(()),
            (code, body) => Err(format!("/readyz answered {code}: {body}")),
        }
    });
    match t.get("/intent") {
        Ok((200, body)) if body.contains("10.16.0.5/32") && body.contains("fd00:10:16::5/128") => {}
        other => t.fail(format!("/intent does not show pod a's routes: {other:?}")),
    }
    let before = t.wait_established("both sessions established");
    t.step("1. initial announce (IPv4 and IPv6), /readyz 200");

    // 2. A pod file added: both of its addresses appear, the sessions stay up.
    t.put_manifest(&POD_B_CLUSTER);
    t.wait_rib(
        "pod b (cluster, node-2) announced",
        &expected(&[&POD_A, &POD_B_CLUSTER]),
    );
    let after = t.wait_established("sessions after adding pod b");
    if after != before {
        t.fail(format!(
            "a route-only change reset the sessions\nbefore: {before:?}\nafter:  {after:?}"
        ));
    }
    t.step("2. pod b added, sessions untouched");

    // 3. Policy cluster -> local for a pod on another node: withdrawn here.
    t.put_manifest(&POD_B_LOCAL);
    t.wait_rib("pod b (local, node-2) withdrawn", &expected(&[&POD_A]));
    t.step("3. pod b cluster -> local on another node, withdrawn");

    // 4. An object deleted: withdrawn.
    t.remove_manifest(&POD_A);
    t.wait_rib("pod a withdrawn", &expected(&[]));
    let after = t.wait_established("sessions after withdrawing everything");
    if after != before {
        t.fail(format!(
            "route-only changes (steps 2-4) reset the sessions\nbefore: {before:?}\nafter:  {after:?}"
        ));
    }
    t.step("4. pod a deleted, withdrawn; sessions untouched by steps 2-4");

    // 5. A pod back, then a session option changed in the watched options file: applied (the
    // upstream negotiates the new hold time; a session reset is expected), routes back.
    t.put_manifest(&POD_A);
    t.wait_rib("pod a announced again", &expected(&[&POD_A]));
    let options_dir = t.options.parent().unwrap().to_path_buf();
    t.put(
        &options_dir,
        "options.yaml",
        &format!("{OPTIONS}holdtime: 30s\n"),
    );
    // First the file (bgpgen applied the options), then the sessions (the daemon applied them).
    let line = backend.hold_time_30();
    t.wait(
        &format!("the rendered {} to carry `{line}`", backend.main_file()),
        |t| match t.config_on_disk() {
            c if c.contains(line) => Ok(()),
            c => Err(format!("config file:\n{c}")),
        },
    );
    let sessions = t.wait(
        &format!(
            "holdtime 30s to be in force: the config file has `{line}`, so the upstream should \
             negotiate a hold time of 30 once the daemon applied it (which needs a session reset)"
        ),
        |t| match t.sessions()? {
            s if s
                .iter()
                .all(|s| s.state == "established" && s.negotiated_hold_time == 30) =>
            {
                Ok(s)
            }
            s => Err(format!("sessions at the upstream: {s:?}")),
        },
    );
    t.wait_rib(
        "pod a announced after the hold time change",
        &expected(&[&POD_A]),
    );
    t.step("5. holdtime 30s applied (negotiated at the upstream), routes back");

    // 6. A user template producing garbage: refused by the daemon's checker, the previous
    // configuration stays in force and the error is reported.
    let on_disk = t.config_on_disk();
    let errors_before = t.metric("bgpgen_input_errors_total").unwrap_or(0.0);
    let failed_before = t
        .metric("bgpgen_applies_total{result=\"failed\"}")
        .unwrap_or(0.0);
    let template = format!("{}.j2", backend.main_file());
    let templates = t.templates.clone();
    t.put(&templates, &template, GARBAGE);
    t.put_manifest(&POD_C);
    // A daemon checker's refusal is counted as an input error (ApplyError::Rejected is input).
    t.wait(
        &format!("the garbage {template} to be reported in bgpgen_input_errors_total"),
        |t| match t.metric("bgpgen_input_errors_total")? {
            v if v >= errors_before + 1.0 => Ok(()),
            v => Err(format!("bgpgen_input_errors_total is {v}")),
        },
    );
    // Give a wrongly applied config time to reach the upstream before looking.
    sleep(Duration::from_secs(1));
    let mut problems = Vec::new();
    if t.config_on_disk() != on_disk {
        problems.push(format!(
            "the config file changed on disk:\n{}",
            t.config_on_disk()
        ));
    }
    match t.rib() {
        Ok(rib) if rib == expected(&[&POD_A]) => {}
        Ok(rib) => problems.push(format!(
            "upstream RIB is not the previous intent's (pod a): [{}]",
            show_rib(&rib)
        )),
        Err(e) => problems.push(e),
    }
    match t.sessions() {
        Ok(s) if s == sessions => {}
        other => problems.push(format!(
            "sessions changed\nbefore: {sessions:?}\nafter:  {other:?}"
        )),
    }
    match t.get("/readyz") {
        Ok((503, body)) if body.contains("apply_failed:") && body.contains(backend.main_file()) => {
        }
        other => problems.push(format!(
            "/readyz after the refusal should be 503 naming the failed apply: {other:?}"
        )),
    }
    match t.metric("bgpgen_config_stale_reason{reason=\"apply_failed\"}") {
        Ok(1.0) => {}
        other => problems.push(format!(
            "bgpgen_config_stale_reason apply_failed: {other:?}"
        )),
    }
    match t.get("/intent") {
        Ok((200, body))
            if !body.contains("10.16.0.7/32")
                && body.contains("10.16.0.5/32")
                && body.starts_with("# STALE") => {}
        other => problems.push(format!(
            "/intent is not the previous intent marked stale: {other:?}"
        )),
    }
    let log = fs::read_to_string(t.lab.dir().join("bgpgen.log")).unwrap_or_default();
    let refusal = format!("rejected {}", backend.main_file());
    if !log.contains(&refusal) {
        problems.push(format!("bgpgen's log does not say `{refusal}`"));
    }
    let failed_after = t
        .metric("bgpgen_applies_total{result=\"failed\"}")
        .unwrap_or(-1.0);
    if !problems.is_empty() {
        t.fail(format!(
            "after the garbage {template}:\n{}",
            problems.join("\n")
        ));
    }
    eprintln!(
        "sidecar::{name}: garbage template refused: input errors {errors_before} -> >= {}, failed applies {failed_before} -> {failed_after}",
        errors_before + 1.0
    );
    // The template fixed. That alone applies nothing (the templates dir is not watched and a
    // refused snapshot is not retried): the next change of the manifests does, and pod c comes in.
    fs::remove_file(t.templates.join(&template)).expect("remove the garbage template");
    t.put_manifest(&POD_C);
    t.wait_rib(
        "pod c announced once the template is fixed",
        &expected(&[&POD_A, &POD_C]),
    );
    t.wait_readyz("/readyz 200 once the template is fixed", 200, "");
    t.step("6. garbage template refused, previous config kept, /readyz 503 until fixed");

    // 6b. A broken manifest: the whole input is refused, so the configuration in force is that
    // of the last good input, not of the current one.
    let manifests = t.manifests.clone();
    t.put(
        &manifests,
        "broken.yaml",
        "kind: Pod\nmetadata: [unclosed\n",
    );
    t.wait_readyz(
        "/readyz 503 input_rejected for the broken manifest",
        503,
        "input_rejected:",
    );
    match t.rib() {
        Ok(rib) if rib == expected(&[&POD_A, &POD_C]) => {}
        other => t.fail(format!("a broken manifest changed the routes: {other:?}")),
    }
    fs::remove_file(manifests.join("broken.yaml")).expect("remove the broken manifest");
    t.wait_readyz("/readyz 200 once the manifest is fixed", 200, "");
    t.step("6b. broken manifest: /readyz 503 input_rejected, routes kept; fixed: 200");

    // 6c. GoBGP: a changed AS needs a gobgpd restart, which only --spawn does; refused here.
    if backend == Backend::Gobgp {
        t.put(
            &options_dir,
            "options.yaml",
            &format!("{OPTIONS}holdtime: 30s\n").replace("cluster-as: 65000", "cluster-as: 65001"),
        );
        t.wait_readyz(
            "/readyz 503 restart_needed for the refused AS change",
            503,
            "restart_needed:",
        );
        match t.get("/intent") {
            Ok((200, body))
                if body.starts_with("# STALE")
                    && body.contains("# wanted and not in force: sha256:")
                    && body.contains("localAs: 65000") => {}
            other => t.fail(format!(
                "/intent does not say the AS change is not in force: {other:?}"
            )),
        }
        t.put(
            &options_dir,
            "options.yaml",
            &format!("{OPTIONS}holdtime: 30s\n"),
        );
        t.wait_readyz("/readyz 200 once the AS is back", 200, "");
        t.wait_rib(
            "routes unchanged after the refused AS change",
            &expected(&[&POD_A, &POD_C]),
        );
        t.step("6c. gobgp [global] change refused: /readyz 503 restart_needed, /intent stale");
    }

    // 7. The speaker daemon killed and started again with the same command and config file.
    let daemon = backend.daemon();
    t.lab.stop(daemon, "KILL", Duration::from_secs(5));
    t.wait_rib("routes gone with the killed daemon", &expected(&[]));
    t.wait_readyz(
        "/readyz 503 daemon_unreachable while the daemon is down",
        503,
        "daemon_unreachable:",
    );
    t.lab.restart(daemon);
    t.write_pid_file();
    t.wait_rib(
        "routes back after the daemon's restart",
        &expected(&[&POD_A, &POD_C]),
    );
    t.wait_established("sessions after the daemon's restart");
    t.wait("bgpgen to see the daemon again", |t| {
        let v = t.metric("bgpgen_daemon_reachable")?;
        if v == 1.0 {
            Ok(())
        } else {
            Err(format!("bgpgen_daemon_reachable is {v}"))
        }
    });
    t.step("7. daemon killed and restarted, routes back");

    t.wait_readyz("/readyz 200 with the daemon back", 200, "");

    // 8. SIGTERM to bgpgen in attach mode: bgpgen's exit changes nothing the daemon announces.
    let all = expected(&[&POD_A, &POD_C]);
    let sessions = t.wait_established("sessions before bgpgen's exit");
    let status = t.lab.stop("bgpgen", "TERM", Duration::from_secs(15));
    if !status.success() {
        t.fail(format!("bgpgen exited with {status} on SIGTERM"));
    }
    t.hold_rib("after bgpgen's SIGTERM", &all, Duration::from_secs(3));
    let after = t.wait_established("sessions after bgpgen's exit");
    if after != sessions {
        t.fail(format!(
            "bgpgen's exit reset the sessions\nbefore: {sessions:?}\nafter:  {after:?}"
        ));
    }
    t.step("8. SIGTERM in attach mode: exit 0, routes and sessions kept");

    // 9. bgpgen again: its first apply must not withdraw or re-push what the daemon has.
    let updates = t.upstream_updates();
    t.lab.restart("bgpgen");
    t.wait_readyz("/readyz 200 after bgpgen's restart", 200, "");
    t.hold_rib("after bgpgen's restart", &all, Duration::from_secs(2));
    let after = t.wait_established("sessions after bgpgen's restart");
    if after != sessions {
        t.fail(format!(
            "bgpgen's restart reset the sessions\nbefore: {sessions:?}\nafter:  {after:?}"
        ));
    }
    if t.upstream_updates() != updates {
        t.fail(format!(
            "bgpgen's restart sent UPDATEs to the upstream ({updates:?} -> {:?}): it withdrew or re-announced routes the daemon already had",
            t.upstream_updates()
        ));
    }
    t.step("9. bgpgen restarted: no UPDATE at the upstream, ready");

    // 10. --withdraw-on-exit: SIGTERM withdraws, the daemon keeps its sessions.
    t.lab.stop("bgpgen", "TERM", Duration::from_secs(15));
    let argv: Vec<String> = t
        .bgpgen_argv
        .iter()
        .cloned()
        .chain(["--withdraw-on-exit".to_string()])
        .collect();
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let ns = t.speaker_ns.clone();
    t.lab
        .spawn_env(&ns, "bgpgen-withdraw", &argv, &bgpgen_env());
    t.wait_readyz("/readyz 200 with --withdraw-on-exit", 200, "");
    let status = t
        .lab
        .stop("bgpgen-withdraw", "TERM", Duration::from_secs(15));
    if !status.success() {
        t.fail(format!("bgpgen exited with {status} on SIGTERM"));
    }
    t.wait_rib(
        "routes withdrawn on exit with --withdraw-on-exit",
        &expected(&[]),
    );
    t.wait_established("sessions after the withdrawal");
    if let Err(dead) = t.lab.check_daemons() {
        t.fail(format!("after bgpgen's exit: {dead}"));
    }
    t.step("10. --withdraw-on-exit: SIGTERM withdraws, sessions kept");
    eprintln!(
        "sidecar::{name}: all steps passed in {:.1?}",
        t.started.elapsed()
    );
}

#[test]
fn gobgp_sidecar_follows_the_manifests() {
    scenario(Backend::Gobgp);
}

#[test]
fn frr_sidecar_follows_the_manifests() {
    scenario(Backend::Frr);
}

#[test]
fn bird_sidecar_follows_the_manifests() {
    scenario(Backend::Bird);
}

/// BIRD with the built-in templates: route-only changes rewrite only the route files that hold
/// the changed prefixes (never bird.conf), BIRD announces and withdraws them without a session
/// reset, and the files the sidecar wrote change by change are byte for byte what a whole
/// `render --out` of the same manifests writes.
#[test]
fn bird_route_changes_rewrite_route_files_only() {
    let backend = Backend::Bird;
    if !netns::prerequisites("sidecar::bird_route_files", &backend.needs()) {
        return;
    }
    let mut t = start_with(backend, false);
    t.wait_rib("the initial announce of pod a", &expected(&[&POD_A]));
    let before = t.wait_established("both sessions established");
    let conf = t.config_on_disk();
    t.put_manifest(&POD_B_CLUSTER);
    t.wait_rib("pod b announced", &expected(&[&POD_A, &POD_B_CLUSTER]));
    t.put_manifest(&POD_C);
    t.wait_rib(
        "pod c announced",
        &expected(&[&POD_A, &POD_B_CLUSTER, &POD_C]),
    );
    t.remove_manifest(&POD_A);
    t.wait_rib("pod a withdrawn", &expected(&[&POD_B_CLUSTER, &POD_C]));
    let after = t.wait_established("sessions after the route changes");
    if after != before {
        t.fail(format!(
            "route-only changes reset the sessions\nbefore: {before:?}\nafter:  {after:?}"
        ));
    }
    if t.config_on_disk() != conf {
        t.fail(format!(
            "bird.conf changed for route-only changes:\n{}",
            t.config_on_disk()
        ));
    }
    let log = fs::read_to_string(t.lab.dir().join("bgpgen.log")).unwrap_or_default();
    let deltas = log.matches("route file(s)").count();
    if deltas < 3 {
        t.fail(format!(
            "bgpgen's log shows {deltas} route-file deltas (`birdc configure: +N -M routes in K route file(s)`), 3 expected"
        ));
    }
    // The whole render of the same input, into a directory of its own.
    let whole = t.lab.dir().join("whole");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bgpgen"))
        .args(["render", "-f"])
        .arg(&t.manifests)
        .arg("--options")
        .arg(&t.options)
        .args(["--backend", "bird", "--out"])
        .arg(&whole)
        .output()
        .expect("run bgpgen render");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |dir: &std::path::Path| -> BTreeSet<(String, String)> {
        fs::read_dir(dir.join("bird-routes"))
            .expect("bird-routes/")
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".conf"))
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read_to_string(e.path()).unwrap(),
                )
            })
            .collect()
    };
    let sidecar = read(t.config.parent().unwrap());
    let rendered = read(&whole);
    if sidecar != rendered {
        t.fail(format!(
            "the route files the sidecar wrote differ from a whole render:\nsidecar: {sidecar:?}\nrender:  {rendered:?}"
        ));
    }
    if fs::read_to_string(whole.join("bird.conf")).unwrap() != conf {
        t.fail("bird.conf of a whole render differs from the sidecar's".to_string());
    }
    t.step("route-only changes: route files only, as a whole render writes them");
}
