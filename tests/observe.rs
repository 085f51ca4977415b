//! Read-back tests (issue 13, "See the sessions"): `bgpgen run` next to a real gobgpd, FRR bgpd or
//! BIRD in a network namespace, peering over IPv4 and IPv6 with an upstream gobgpd in a second
//! namespace, watched the way an operator watches it: `bgpgen status -o json` run inside the
//! speaker's namespace (as `kubectl exec` would) and `/metrics`. One lab per backend:
//!
//! 1. both sessions Established in `bgpgen status`, the advertised count of each neighbor and
//!    family equal to the intent's, `kube_ovn_speaker_bgp_peer_up{node,peer,peer_asn} 1`;
//! 2. a route removed behind bgpgen's back with the daemon's own CLI (`gobgp global rib del`,
//!    `vtysh ... no network`, `birdc disable` of the static protocol): the read-back finds the
//!    difference, counts it (`bgpgen_advertisement_drift_total`), repairs it, and the upstream
//!    has every route again;
//! 3. the upstream stopped: `kube_ovn_speaker_bgp_peer_up ... 0`, state not Established,
//!    `bgpgen status` exits 1, `/readyz` still 200 (readiness is not about sessions);
//! 4. the upstream back: `peer_up 1`, Established, advertised = expected again, and the drop is
//!    counted in `kube_ovn_speaker_bgp_peer_flap_count`.
//!
//! With the cluster source (the in-process API double, tests/common/apiserver.rs, through the real
//! kube client; BIRD in the speaker namespace, bgpgen attached to it from the host's, where the
//! double listens): the speaker's BGPSpeaker object (owned by its Node) shows `sessions` 2/2 and
//! the route counts; the object deleted and the upstream stopped: a SessionDown Event per session
//! on that object, which is written again with 0/2; back: SessionUp Events and 2/2.
//!
//! Needs root, `ip`, python3, gobgpd and gobgp, and the backend's daemon and control tools; a
//! missing one fails the test, or skips it visibly with BGPGEN_ALLOW_SKIP=1.

mod common;

use bgpgen::render::Backend;
use common::lab_backend::LabBackend;

use common::apiserver::ApiServer;

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::netns::{
    self, BIRDC, GOBGP, Gobgp, LAB_OPTIONS, LAB_SUBNET, Lab, RibPath, SPEAKER_V4, SPEAKER_V6,
    UPSTREAM_V4, UPSTREAM_V6, VTYSH, http_get, metric_sample, netns_exec, netns_run, path_str,
    run_bgpgen, show_rib,
};
use serde_json::Value;

const SPEAKER_AS: u32 = 65000;
const UPSTREAM_AS: u32 = 65030;
/// Upper bound of every wait (the sidecar checks every second).
const STEP: Duration = Duration::from_secs(40);
const POLL: Duration = Duration::from_millis(250);

fn pod(name: &str, v4: &str, v6: &str) -> String {
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

const PODS: [(&str, &str, &str); 2] = [
    ("a", "10.16.0.5", "fd00:10:16::5"),
    ("c", "10.16.0.7", "fd00:10:16::7"),
];
/// The route the tests remove behind bgpgen's back.
const TAMPERED: &str = "10.16.0.5/32";

/// The upstream's RIB when the speaker announces [`PODS`].
fn expected_rib() -> BTreeSet<RibPath> {
    let mut rib = BTreeSet::new();
    for (_, v4, v6) in PODS {
        for (ip, len, speaker) in [(v4, 32, SPEAKER_V4), (v6, 128, SPEAKER_V6)] {
            rib.insert(RibPath {
                prefix: format!("{ip}/{len}").parse().unwrap(),
                next_hop: Some(speaker.parse().unwrap()),
                neighbor: Some(speaker.parse().unwrap()),
            });
        }
    }
    rib
}

/// (upstream gobgpd API, speaker gobgpd API, bgpgen's endpoint), inside their namespaces.
fn ports(backend: Backend) -> (u16, u16, u16) {
    backend.pick(
        (50351, 50352, 19761),
        (50361, 50362, 19762),
        (50371, 50372, 19763),
    )
}

struct Observed {
    backend: Backend,
    lab: Lab,
    upstream: Gobgp,
    speaker_ns: String,
    /// `--metrics-addr` (inside the speaker namespace).
    addr: String,
    /// How the test reaches the speaker daemon's own CLI: gobgpd's API port, bgpd's vty dir,
    /// BIRD's socket.
    speaker_port: u16,
    control: PathBuf,
    started: Instant,
}

impl Observed {
    fn fail(&mut self, message: String) -> ! {
        let report = self.lab.report();
        panic!("observe::{}: {message}\n{report}", self.backend.name());
    }

    fn step(&self, what: &str) {
        eprintln!(
            "observe::{}: {what} ({:.1?})",
            self.backend.name(),
            self.started.elapsed()
        );
    }

    /// `bgpgen status -o FORMAT` inside the speaker namespace: (exit code, stdout).
    fn status(&self, format: &str) -> Result<(Option<i32>, String), String> {
        let (code, out, err) = netns_run(
            &self.speaker_ns,
            &[
                env!("CARGO_BIN_EXE_bgpgen"),
                "status",
                "--metrics-addr",
                &self.addr,
                "-o",
                format,
            ],
        )?;
        if code == Some(3) || code == Some(2) {
            return Err(format!("bgpgen status exited {code:?}: {err}"));
        }
        Ok((code, out))
    }

    /// The `/status` document as `bgpgen status -o json` prints it.
    fn status_json(&self) -> Result<(Option<i32>, Value), String> {
        let (code, out) = self.status("json")?;
        let doc = serde_json::from_str(&out)
            .map_err(|e| format!("bgpgen status -o json is not JSON ({e}): {out}"))?;
        Ok((code, doc))
    }

    fn get(&self, path: &str) -> Result<(u16, String), String> {
        http_get(&self.speaker_ns, &format!("http://{}{path}", self.addr))
    }

    fn metrics(&self) -> Result<String, String> {
        match self.get("/metrics")? {
            (200, body) => Ok(body),
            (code, body) => Err(format!("/metrics answered {code}: {body}")),
        }
    }

    fn wait<T>(&mut self, what: &str, check: impl Fn(&Observed) -> Result<T, String>) -> T {
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
            std::thread::sleep(POLL);
        }
    }

    fn wait_rib(&mut self, what: &str, want: &BTreeSet<RibPath>) {
        let upstream = self.upstream.clone();
        self.wait(what, |_| {
            let got: BTreeSet<RibPath> = upstream.rib()?.into_iter().collect();
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

    /// Removes [`TAMPERED`] behind bgpgen's back, with the daemon's own CLI.
    fn tamper(&mut self) {
        let control = path_str(&self.control).to_string();
        let port = self.speaker_port.to_string();
        let argv: Vec<&str> = match self.backend {
            Backend::Gobgp => vec![
                GOBGP, "-p", &port, "global", "rib", "del", TAMPERED, "-a", "ipv4",
            ],
            Backend::Frr => vec![
                VTYSH,
                "--vty_socket",
                &control,
                "-d",
                "bgpd",
                "-c",
                "configure terminal",
                "-c",
                "router bgp 65000",
                "-c",
                "address-family ipv4 unicast",
                "-c",
                "no network 10.16.0.5/32",
            ],
            // BIRD cannot delete one static route from the CLI: the operator's way to make it
            // stop announcing is to disable the protocol they come from.
            Backend::Bird => vec![BIRDC, "-s", &control, "disable", "bgpgen_v4"],
        };
        if let Err(e) = netns_exec(&self.speaker_ns.clone(), &argv) {
            self.fail(format!("tampering failed: {e}"));
        }
    }
}

/// The peer of `doc` at `address`.
fn peer<'a>(doc: &'a Value, address: &str) -> Result<&'a Value, String> {
    doc["peers"]
        .as_array()
        .and_then(|peers| peers.iter().find(|p| p["address"] == address))
        .ok_or_else(|| format!("no peer {address} in {doc}"))
}

/// Both peers established, each advertising exactly what the intent expects (2 routes in its
/// family).
fn all_up(doc: &Value) -> Result<(), String> {
    for (address, family) in [(UPSTREAM_V4, "ipv4-unicast"), (UPSTREAM_V6, "ipv6-unicast")] {
        let p = peer(doc, address)?;
        if p["state"] != "established" {
            return Err(format!("{address} is {}: {p}", p["state"]));
        }
        if p["expected"][family] != 2 {
            return Err(format!(
                "{address}: expected {} in {family}: {p}",
                p["expected"]
            ));
        }
        if p["advertised"] != p["expected"] {
            return Err(format!(
                "{address}: advertised {} while the intent expects {}",
                p["advertised"], p["expected"]
            ));
        }
    }
    Ok(())
}

fn peer_series(name: &str, address: &str) -> String {
    format!("{name}{{node=\"node-1\",peer=\"{address}\",peer_asn=\"{UPSTREAM_AS}\"}}")
}

fn start(backend: Backend) -> Observed {
    let name = backend.name();
    let mut lab = Lab::new(&format!("ob-{name}"));
    let dir = lab.dir().to_path_buf();
    let manifests = dir.join("manifests");
    let etc = dir.join("etc");
    fs::create_dir(&manifests).unwrap();
    fs::create_dir(&etc).unwrap();
    fs::write(manifests.join("subnet.yaml"), LAB_SUBNET).unwrap();
    for (pod_name, v4, v6) in PODS {
        fs::write(
            manifests.join(format!("pod-{pod_name}.yaml")),
            pod(pod_name, v4, v6),
        )
        .unwrap();
    }
    let options = dir.join("options.yaml");
    fs::write(&options, LAB_OPTIONS).unwrap();
    let config = etc.join(backend.main_file());
    let (upstream_port, speaker_port, metrics_port) = ports(backend);
    let speaker_ns = lab.speaker_ns().to_string();
    let upstream = lab.start_upstream(upstream_port, UPSTREAM_AS, SPEAKER_AS);
    run_bgpgen(
        env!("CARGO_BIN_EXE_bgpgen"),
        &[
            "render",
            "-f",
            path_str(&manifests),
            "--options",
            path_str(&options),
            "--backend",
            name,
            "--out",
            path_str(&etc),
        ],
    );
    let mut daemon_args: Vec<String> = Vec::new();
    let control = match backend {
        Backend::Gobgp => {
            let gobgpd = lab.start_gobgpd(&speaker_ns, "speaker-gobgpd", &config, speaker_port);
            let pid_file = dir.join("speaker-gobgpd.pid");
            let pid = lab.pid("speaker-gobgpd").expect("speaker gobgpd runs");
            fs::write(&pid_file, format!("{pid}\n")).unwrap();
            daemon_args.extend([
                "--gobgp-api".into(),
                format!("127.0.0.1:{}", gobgpd.port),
                "--gobgpd-pid-file".into(),
                path_str(&pid_file).into(),
            ]);
            pid_file
        }
        Backend::Frr => {
            let vty = lab.start_bgpd(&speaker_ns, "speaker-bgpd", &config);
            daemon_args.extend(["--frr-vty-socket".into(), path_str(&vty).into()]);
            vty
        }
        Backend::Bird => {
            let socket = lab.start_bird(&speaker_ns, "speaker-bird", &config);
            daemon_args.extend(["--bird-socket".into(), path_str(&socket).into()]);
            socket
        }
    };
    let addr = format!("127.0.0.1:{metrics_port}");
    let mut argv: Vec<String> = [
        env!("CARGO_BIN_EXE_bgpgen"),
        "run",
        "--backend",
        name,
        "--manifests",
        path_str(&manifests),
        "--options",
        path_str(&options),
        "--config-file",
        path_str(&config),
        "--metrics-addr",
        &addr,
        "--debounce",
        "100ms",
        "--check-interval",
        "1s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.extend(daemon_args);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    lab.spawn_env(
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
    lab.add_status(
        "bgpgen status",
        &speaker_ns,
        &[
            env!("CARGO_BIN_EXE_bgpgen"),
            "status",
            "--metrics-addr",
            &addr,
        ],
    );
    Observed {
        backend,
        lab,
        upstream,
        speaker_ns,
        addr,
        speaker_port,
        control,
        started: Instant::now(),
    }
}

fn scenario(backend: Backend) {
    let name = backend.name();
    if !netns::prerequisites(&format!("observe::{name}"), &backend.needs()) {
        return;
    }
    let mut t = start(backend);
    let rib = expected_rib();

    // 1. Established in `bgpgen status`, advertised = expected, peer_up 1.
    t.wait_rib("the initial announce", &rib);
    t.wait(
        "both sessions Established in `bgpgen status -o json`",
        |t| match t.status_json()? {
            (Some(0), doc) => all_up(&doc),
            (code, doc) => all_up(&doc).and(Err(format!("exit {code:?}: {doc}"))),
        },
    );
    t.wait("kube_ovn_speaker_bgp_peer_up 1 for both peers", |t| {
        let body = t.metrics()?;
        for address in [UPSTREAM_V4, UPSTREAM_V6] {
            for (series, want) in [
                ("kube_ovn_speaker_bgp_peer_up", 1.0),
                ("kube_ovn_speaker_bgp_peer_session_state", 6.0),
            ] {
                let sample = peer_series(series, address);
                match metric_sample(&body, &sample) {
                    Some(v) if v == want => {}
                    other => return Err(format!("{sample} is {other:?}:\n{body}")),
                }
            }
        }
        for (address, family) in [(UPSTREAM_V4, "ipv4-unicast"), (UPSTREAM_V6, "ipv6-unicast")] {
            for series in [
                "bgpgen_peer_advertised_prefixes",
                "bgpgen_peer_expected_prefixes",
            ] {
                let sample = format!(
                    "{series}{{node=\"node-1\",peer=\"{address}\",peer_asn=\"{UPSTREAM_AS}\",family=\"{family}\"}}"
                );
                match metric_sample(&body, &sample) {
                    Some(2.0) => {}
                    other => return Err(format!("{sample} is {other:?}:\n{body}")),
                }
            }
        }
        Ok(())
    });
    match t.status("table") {
        Ok((Some(0), table))
            if table.lines().any(|l| {
                l.starts_with(UPSTREAM_V4) && l.contains("established") && l.contains(" 2 ")
            }) => {}
        other => t.fail(format!("`bgpgen status` (table): {other:?}")),
    }
    t.step("1. Established in bgpgen status and /metrics, advertised = expected");

    // 2. A route removed behind bgpgen's back: found, counted, repaired.
    let drift = format!(
        "bgpgen_advertisement_drift_total{{peer=\"{UPSTREAM_V4}\",family=\"ipv4-unicast\"}}"
    );
    t.tamper();
    t.wait("the tampering to be found and counted", |t| {
        let body = t.metrics()?;
        match metric_sample(&body, &drift) {
            Some(v) if v >= 1.0 => Ok(()),
            other => Err(format!("{drift} is {other:?}")),
        }
    });
    t.wait_rib("the removed route put back", &rib);
    t.wait("bgpgen status: no drift, advertised = expected", |t| {
        let (_, doc) = t.status_json()?;
        if doc["drift"].as_array().is_some_and(|d| !d.is_empty()) {
            return Err(format!("drift: {}", doc["drift"]));
        }
        all_up(&doc)
    });
    match t
        .metrics()
        .map(|b| metric_sample(&b, "bgpgen_advertisement_repairs_total{result=\"ok\"}"))
    {
        Ok(Some(v)) if v >= 1.0 => {}
        other => t.fail(format!("repairs ok: {other:?}")),
    }
    t.step("2. a route removed with the daemon's CLI was found and put back");

    // 3. The upstream stopped: peer_up 0, not Established, bgpgen status exits 1; still ready.
    t.lab
        .stop("upstream-gobgpd", "TERM", Duration::from_secs(10));
    t.wait("kube_ovn_speaker_bgp_peer_up 0 for both peers", |t| {
        let body = t.metrics()?;
        for address in [UPSTREAM_V4, UPSTREAM_V6] {
            let sample = peer_series("kube_ovn_speaker_bgp_peer_up", address);
            match metric_sample(&body, &sample) {
                Some(0.0) => {}
                other => return Err(format!("{sample} is {other:?}")),
            }
            let state = peer_series("kube_ovn_speaker_bgp_peer_session_state", address);
            match metric_sample(&body, &state) {
                Some(v) if v != 6.0 => {}
                other => return Err(format!("{state} is {other:?}")),
            }
        }
        Ok(())
    });
    t.wait("bgpgen status: not Established, exit 1", |t| {
        match t.status_json()? {
            (Some(1), doc) => {
                for address in [UPSTREAM_V4, UPSTREAM_V6] {
                    let p = peer(&doc, address)?;
                    if p["state"] == "established" {
                        return Err(format!("{address} still established: {p}"));
                    }
                }
                Ok(())
            }
            (code, doc) => Err(format!("exit {code:?}: {doc}")),
        }
    });
    match t.get("/readyz") {
        Ok((200, _)) => {}
        other => t.fail(format!(
            "/readyz must not depend on session state, with the upstream down: {other:?}"
        )),
    }
    t.step("3. upstream down: peer_up 0, not Established, still ready");

    // 4. Back: peer_up 1, Established, advertised = expected, the drop counted.
    t.lab.restart("upstream-gobgpd");
    t.wait_rib("the routes at the restarted upstream", &rib);
    t.wait("Established again, advertised = expected", |t| {
        match t.status_json()? {
            (Some(0), doc) => all_up(&doc),
            (code, doc) => all_up(&doc).and(Err(format!("exit {code:?}: {doc}"))),
        }
    });
    t.wait("peer_up 1 and the drop counted", |t| {
        let body = t.metrics()?;
        for address in [UPSTREAM_V4, UPSTREAM_V6] {
            let up = peer_series("kube_ovn_speaker_bgp_peer_up", address);
            let flaps = peer_series("kube_ovn_speaker_bgp_peer_flap_count", address);
            match (metric_sample(&body, &up), metric_sample(&body, &flaps)) {
                (Some(1.0), Some(f)) if f >= 1.0 => {}
                other => return Err(format!("{up}, {flaps}: {other:?}")),
            }
        }
        Ok(())
    });
    match t.get("/readyz") {
        Ok((200, _)) => {}
        other => t.fail(format!("/readyz after the upstream came back: {other:?}")),
    }
    t.step("4. upstream back: peer_up 1, Established, advertised = expected");
}

#[test]
fn gobgp_sessions_are_read_back() {
    scenario(Backend::Gobgp);
}

#[test]
fn frr_sessions_are_read_back() {
    scenario(Backend::Frr);
}

#[test]
fn bird_sessions_are_read_back() {
    scenario(Backend::Bird);
}

/// `bgpgen run` started from the host's namespace, stopped (TERM, then KILL) when dropped.
struct HostBgpgen {
    child: std::process::Child,
    log: PathBuf,
}

impl HostBgpgen {
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for HostBgpgen {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` until Ok within [`STEP`], else fails with the lab's report and bgpgen's log.
fn wait_kube<T>(
    lab: &mut Lab,
    bgpgen: &HostBgpgen,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + STEP;
    loop {
        let last = match check() {
            Ok(v) => return v,
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            let report = lab.report();
            panic!(
                "observe::kube: timed out after {STEP:?} waiting for {what}\n{last}\n{report}\n===== bgpgen (host) =====\n{}",
                bgpgen.log()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// The speaker's BGPSpeaker object, with `status.sessions` == `sessions`.
fn speaker_with(api: &ApiServer, sessions: &str) -> Result<Value, String> {
    let obj = api
        .get("bgpspeakers", None, "node-1")
        .ok_or("no BGPSpeaker node-1 yet")?;
    if obj["status"]["sessions"] == sessions {
        Ok(obj)
    } else {
        Err(format!("BGPSpeaker node-1: {obj}"))
    }
}

/// The Events on the BGPSpeaker with this reason.
fn session_events(api: &ApiServer, reason: &str) -> Vec<Value> {
    api.recorded_events_about("node-1")
        .into_iter()
        .filter(|e| e["reason"] == reason)
        .collect()
}

#[test]
fn bgpspeaker_object_and_session_events_with_the_cluster_source() {
    let needs = Backend::Bird.needs();
    if !netns::prerequisites("observe::kube", &needs) {
        return;
    }
    let api = ApiServer::start();
    let node = api.apply(&serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node-1"},
        "status": {"addresses": [{"type": "InternalIP", "address": SPEAKER_V4}]},
    }));
    let node_uid = node["metadata"]["uid"].as_str().expect("uid").to_string();
    let subnet: Value = bgpgen::source::yaml::from_str(LAB_SUBNET).unwrap();
    api.apply(&subnet);
    for (name, v4, v6) in PODS {
        let p: Value = bgpgen::source::yaml::from_str(&pod(name, v4, v6)).unwrap();
        api.apply(&p);
    }

    let mut lab = Lab::new("ob-kube");
    let dir = lab.dir().to_path_buf();
    let speaker_ns = lab.speaker_ns().to_string();
    let upstream = lab.start_upstream(50381, UPSTREAM_AS, SPEAKER_AS);
    // The daemon starts from a configuration of the same cluster, rendered from manifests.
    let manifests = dir.join("manifests");
    let etc = dir.join("etc");
    fs::create_dir(&manifests).unwrap();
    fs::create_dir(&etc).unwrap();
    fs::write(manifests.join("subnet.yaml"), LAB_SUBNET).unwrap();
    for (name, v4, v6) in PODS {
        fs::write(
            manifests.join(format!("pod-{name}.yaml")),
            pod(name, v4, v6),
        )
        .unwrap();
    }
    let options = dir.join("options.yaml");
    fs::write(&options, LAB_OPTIONS).unwrap();
    run_bgpgen(
        env!("CARGO_BIN_EXE_bgpgen"),
        &[
            "render",
            "-f",
            path_str(&manifests),
            "--options",
            path_str(&options),
            "--backend",
            "bird",
            "--out",
            path_str(&etc),
        ],
    );
    let config = etc.join("bird.conf");
    let socket = lab.start_bird(&speaker_ns, "speaker-bird", &config);
    let addr = format!("127.0.0.1:{}", free_port());
    let log = dir.join("bgpgen-host.log");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_bgpgen"))
        .args(["run", "--backend", "bird", "--kubeconfig"])
        .arg(api.kubeconfig_path())
        .arg("--options")
        .arg(&options)
        .arg("--config-file")
        .arg(&config)
        .arg("--bird-socket")
        .arg(&socket)
        .args(["--metrics-addr", &addr])
        .args(["--debounce", "100ms", "--check-interval", "1s"])
        .env("RUST_LOG", "info")
        .env_remove("NODE_NAME")
        .env_remove("POD_IP")
        .env_remove("POD_IPS")
        .env_remove("POD_NAME")
        .env_remove("GATEWAY_NAME")
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::null())
        .stdout(fs::File::create(&log).unwrap())
        .stderr(fs::File::create(dir.join("bgpgen-host.err")).unwrap())
        .spawn()
        .expect("start bgpgen");
    // Its log is on stderr.
    let bgpgen = HostBgpgen {
        child,
        log: dir.join("bgpgen-host.err"),
    };
    let rib = expected_rib();
    wait_kube(&mut lab, &bgpgen, "the initial announce", || {
        let got: BTreeSet<RibPath> = upstream.rib()?.into_iter().collect();
        (got == rib)
            .then_some(())
            .ok_or_else(|| format!("upstream RIB: [{}]", show_rib(&got)))
    });

    // 1. The object: owned by the Node, both sessions up, the route counts.
    let obj = wait_kube(
        &mut lab,
        &bgpgen,
        "BGPSpeaker node-1 with 2/2 sessions",
        || speaker_with(&api, "2/2"),
    );
    let owner = &obj["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Node", "{obj}");
    assert_eq!(owner["uid"], node_uid.as_str(), "{obj}");
    let status = &obj["status"];
    assert_eq!(status["advertised"], 4, "{obj}");
    assert_eq!(status["expected"], 4, "{obj}");
    assert_eq!(status["backend"], "bird", "{obj}");
    assert!(
        status["peerStates"]
            .as_str()
            .is_some_and(|s| s.contains("192.0.2.2=established")),
        "{obj}"
    );
    assert!(
        session_events(&api, "SessionDown").is_empty(),
        "no session went down yet: {:?}",
        api.recorded_events()
    );

    // 2. The object deleted behind the sidecar's back, then the upstream stopped: a SessionDown
    // Event per session, and the object is there again, with 0/2.
    assert!(api.delete("bgpspeakers", None, "node-1").is_some());
    lab.stop("upstream-gobgpd", "TERM", Duration::from_secs(10));
    wait_kube(
        &mut lab,
        &bgpgen,
        "SessionDown Events for both sessions",
        || {
            let events = session_events(&api, "SessionDown");
            let about = |peer: &str| {
                events
                    .iter()
                    .any(|e| e["note"].as_str().is_some_and(|n| n.contains(peer)))
            };
            (about(UPSTREAM_V4) && about(UPSTREAM_V6))
                .then_some(())
                .ok_or_else(|| format!("events: {:?}", api.recorded_events()))
        },
    );
    let down = session_events(&api, "SessionDown");
    assert_eq!(down[0]["type"], "Warning", "{down:?}");
    assert_eq!(down[0]["regarding"]["kind"], "BGPSpeaker", "{down:?}");
    let obj = wait_kube(
        &mut lab,
        &bgpgen,
        "BGPSpeaker node-1 written again, with 0/2 sessions",
        || speaker_with(&api, "0/2"),
    );
    assert_eq!(
        obj["metadata"]["ownerReferences"][0]["uid"],
        node_uid.as_str(),
        "{obj}"
    );

    // 3. Back: SessionUp Events, 2/2.
    lab.restart("upstream-gobgpd");
    wait_kube(
        &mut lab,
        &bgpgen,
        "SessionUp Events for both sessions",
        || {
            let events = session_events(&api, "SessionUp");
            (events.len() >= 2)
                .then_some(())
                .ok_or_else(|| format!("events: {:?}", api.recorded_events()))
        },
    );
    wait_kube(
        &mut lab,
        &bgpgen,
        "BGPSpeaker node-1 with 2/2 sessions again",
        || speaker_with(&api, "2/2"),
    );
    drop(bgpgen);
}
