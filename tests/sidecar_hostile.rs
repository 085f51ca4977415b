//! Issue 11's sidecar cases next to real daemons: `bgpgen run --manifests` beside gobgpd, FRR
//! bgpd or BIRD in a network namespace, peering with an upstream gobgpd, fed what used to stall
//! or poison it:
//!
//! 1. a pod whose `ovn.kubernetes.io/ip_address` is `fe80::5` (FRR refuses `network fe80::5/128`
//!    and used to refuse every later change; GoBGP announced it upstream) and a pod with an
//!    unparsable address, next to a good pod: the good pod is announced, neither bad address is;
//! 2. a FIFO named `stuck.yaml` dropped into the watched directory (it used to stop the sidecar
//!    for good), then a valid change: still applied, /readyz 200;
//! 3. `--auth-password-file` as a Kubernetes Secret volume lays it out (`password ->
//!    ..data/password`, `..data -> ..v1`), then rotated by swapping `..data`, with no other
//!    change: the new password reaches the rendered configuration within seconds;
//! 4. SIGTERM: bgpgen exits (it used to hang with the FIFO present).
//!
//! Needs root, `ip`, python3, gobgpd/gobgp and the backend's daemon; missing ones fail the
//! test, or skip it visibly with BGPGEN_ALLOW_SKIP=1 (tests/common/skip.rs).

mod common;

use bgpgen::render::Backend;
use common::lab_backend::{LabBackend, PYTHON};

use std::collections::BTreeSet;
use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::time::Duration;

use common::netns::{
    self, Gobgp, HTTP_GET, LAB_OPTIONS, LAB_SUBNET, Lab, RibPath, SPEAKER_V4, SPEAKER_V6,
    netns_exec, path_str, put_atomic, run_bgpgen, show_rib,
};

const STEP: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(250);

fn pod(name: &str, ips: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\n  annotations:\n    ovn.kubernetes.io/logical_switch: ovn-default\n    ovn.kubernetes.io/ip_address: \"{ips}\"\n    ovn.kubernetes.io/bgp: \"true\"\nspec:\n  nodeName: node-1\nstatus:\n  phase: Running\n"
    )
}

/// The upstream's RIB when the speaker announces these addresses.
fn expected(ips: &[&str]) -> BTreeSet<RibPath> {
    let v4: IpAddr = SPEAKER_V4.parse().unwrap();
    let v6: IpAddr = SPEAKER_V6.parse().unwrap();
    ips.iter()
        .map(|ip| {
            let ip: IpAddr = ip.parse().unwrap();
            let speaker = if ip.is_ipv4() { v4 } else { v6 };
            RibPath {
                prefix: ipnet::IpNet::from(ip),
                next_hop: Some(speaker),
                neighbor: Some(speaker),
            }
        })
        .collect()
}

/// (upstream gobgpd API, speaker gobgpd API, bgpgen's endpoint), inside their namespaces.
fn ports(backend: Backend) -> (u16, u16, u16) {
    backend.pick(
        (50351, 50352, 19761),
        (50361, 50362, 19762),
        (50371, 50372, 19763),
    )
}

fn wait_rib(lab: &mut Lab, upstream: &Gobgp, what: &str, want: &BTreeSet<RibPath>) {
    let upstream = upstream.clone();
    lab.wait_for(what, STEP, POLL, |_| {
        let got: BTreeSet<RibPath> = upstream.rib()?.into_iter().collect();
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

fn scenario(backend: Backend) {
    let name = backend.name();
    if !netns::prerequisites(&format!("sidecar_hostile::{name}"), &backend.needs()) {
        return;
    }
    let mut lab = Lab::new(&format!("sh-{name}"));
    let dir = lab.dir().to_path_buf();
    let mkdir = |sub: &str| {
        let path = dir.join(sub);
        fs::create_dir(&path).unwrap();
        path
    };
    let (staging, manifests, options_dir, etc, secret) = (
        mkdir("staging"),
        mkdir("manifests"),
        mkdir("options"),
        mkdir("etc"),
        mkdir("secret"),
    );
    let options = options_dir.join("options.yaml");
    let config = etc.join(backend.main_file());
    let (upstream_port, speaker_port, metrics_port) = ports(backend);
    let speaker_ns = lab.speaker_ns().to_string();
    let endpoint = format!("http://127.0.0.1:{metrics_port}");
    let upstream = lab.start_upstream(upstream_port, 65030, 65000);

    // 1. A good pod, a link-local one and an unparsable one, from the start.
    put_atomic(&staging, &manifests, "subnet.yaml", LAB_SUBNET);
    put_atomic(
        &staging,
        &manifests,
        "pod-a.yaml",
        &pod("a", "10.16.0.5,fd00:10:16::5"),
    );
    put_atomic(&staging, &manifests, "pod-ll.yaml", &pod("ll", "fe80::5"));
    put_atomic(
        &staging,
        &manifests,
        "pod-bad.yaml",
        &pod("bad", "10.16.0.300"),
    );
    put_atomic(&staging, &options_dir, "options.yaml", LAB_OPTIONS);
    let bin = env!("CARGO_BIN_EXE_bgpgen");
    run_bgpgen(
        bin,
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
    let rendered = fs::read_to_string(&config).unwrap();
    assert!(!rendered.contains("fe80::5"), "{rendered}");
    let mut daemon_args: Vec<String> = Vec::new();
    match backend {
        Backend::Gobgp => {
            lab.start_gobgpd(&speaker_ns, "speaker-gobgpd", &config, speaker_port);
            let pid_file = dir.join("speaker-gobgpd.pid");
            let pid = lab.pid("speaker-gobgpd").unwrap();
            fs::write(&pid_file, format!("{pid}\n")).unwrap();
            daemon_args.extend([
                "--gobgp-api".into(),
                format!("127.0.0.1:{speaker_port}"),
                "--gobgpd-pid-file".into(),
                path_str(&pid_file).into(),
            ]);
        }
        Backend::Frr => {
            let vty = lab.start_bgpd(&speaker_ns, "speaker-bgpd", &config);
            daemon_args.extend(["--frr-vty-socket".into(), path_str(&vty).into()]);
        }
        Backend::Bird => {
            let socket = lab.start_bird(&speaker_ns, "speaker-bird", &config);
            daemon_args.extend(["--bird-socket".into(), path_str(&socket).into()]);
        }
    }
    let mut argv: Vec<String> = [
        bin,
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
        &format!("127.0.0.1:{metrics_port}"),
        "--debounce",
        "100ms",
        "--check-interval",
        "1s",
    ]
    .iter()
    .map(|a| a.to_string())
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
    let get = |path: &str| -> Result<(u16, String), String> {
        let url = format!("{endpoint}{path}");
        let out = netns_exec(&speaker_ns, &[PYTHON, "-c", HTTP_GET, &url])?;
        let (code, body) = out.split_once('\n').unwrap_or((&out, ""));
        Ok((
            code.trim().parse().map_err(|_| out.clone())?,
            body.to_string(),
        ))
    };
    wait_rib(
        &mut lab,
        &upstream,
        "pod a announced, fe80::5 and the unparsable address not",
        &expected(&["10.16.0.5", "fd00:10:16::5"]),
    );
    lab.wait_for("/readyz 200", STEP, POLL, |_| match get("/readyz")? {
        (200, _) => Ok(()),
        other => Err(format!("{other:?}")),
    });
    match get("/intent") {
        Ok((200, body)) if body.contains("link-local") && !body.contains("fe80::5/128") => {}
        other => panic!("/intent does not warn about fe80::5: {other:?}"),
    }

    // 2. A FIFO in the watched directory, then a valid change.
    let fifo = manifests.join("stuck.yaml");
    let c = std::ffi::CString::new(path_str(&fifo)).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    put_atomic(&staging, &manifests, "pod-c.yaml", &pod("c", "10.16.0.7"));
    wait_rib(
        &mut lab,
        &upstream,
        "pod c announced with the FIFO present (and the bad pods still there)",
        &expected(&["10.16.0.5", "fd00:10:16::5", "10.16.0.7"]),
    );
    match get("/readyz") {
        Ok((200, _)) => {}
        other => panic!("/readyz with the FIFO present: {other:?}"),
    }

    // 3. The password file as a Secret volume, then rotated by swapping `..data` only.
    let version = |v: &str, password: &str| {
        let d = secret.join(format!("..{v}"));
        fs::create_dir(&d).unwrap();
        fs::write(d.join("password"), format!("{password}\n")).unwrap();
        let link = secret.join("..data_tmp");
        symlink(format!("..{v}"), &link).unwrap();
        fs::rename(&link, secret.join("..data")).unwrap();
    };
    version("v1", "rotate-one");
    symlink("..data/password", secret.join("password")).unwrap();
    put_atomic(
        &staging,
        &options_dir,
        "options.yaml",
        &format!(
            "{LAB_OPTIONS}auth-password-file: {}\n",
            path_str(&secret.join("password"))
        ),
    );
    let config_has = |lab: &mut Lab, what: &str, needle: &str| {
        let config = config.clone();
        let needle = needle.to_string();
        lab.wait_for(what, STEP, POLL, move |_| {
            let text = fs::read_to_string(&config).map_err(|e| e.to_string())?;
            if text.contains(&needle) {
                Ok(())
            } else {
                Err(format!("{} has no {needle}", config.display()))
            }
        });
    };
    config_has(&mut lab, "the first password in the config", "rotate-one");
    version("v2", "rotate-two");
    config_has(
        &mut lab,
        "the rotated password applied without another change",
        "rotate-two",
    );
    let log = fs::read_to_string(dir.join("bgpgen.log")).unwrap_or_default();
    assert!(!log.contains("rotate-"), "a password in bgpgen's log");
    match get("/readyz") {
        Ok((_, body)) => assert!(!body.contains("rotate-"), "{body}"),
        Err(e) => panic!("{e}"),
    }

    // 4. SIGTERM with the FIFO still there: bgpgen exits.
    let status = lab.stop("bgpgen", "TERM", Duration::from_secs(15));
    assert!(status.success(), "bgpgen exited with {status}");
    let _: PathBuf = fifo;
}

#[test]
fn gobgp_sidecar_survives_hostile_input() {
    scenario(Backend::Gobgp);
}

#[test]
fn frr_sidecar_survives_hostile_input() {
    scenario(Backend::Frr);
}

#[test]
fn bird_sidecar_survives_hostile_input() {
    scenario(Backend::Bird);
}
