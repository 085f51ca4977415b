//! `bgpgen apply`, the one-shot pipeline, against a real BIRD on a private control socket (no
//! sessions needed): applied, unchanged, a refused template rolled back, exit codes 0 / 2 / 3;
//! and against a real bgpd started with an empty configuration, in a namespace with only `lo`.

#[path = "common/skip.rs"]
#[allow(dead_code)]
mod skip;

use std::process::{Child, Command, Output};

struct Bird(Child);

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bgpgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bgpgen"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NODE_NAME")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn routes(socket: &str) -> String {
    let out = Command::new("birdc")
        .args(["-s", socket, "show", "route", "count"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn apply_once_against_a_running_bird() {
    let have = Command::new("bird").arg("--version").output().is_ok()
        && Command::new("birdc").arg("--version").output().is_ok();
    if !have {
        skip::skip("apply::apply_once_against_a_running_bird", "bird and birdc");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf = d.join("bird.conf");
    let socket = d.join("bird.ctl").display().to_string();
    let ex = [
        "-f",
        "examples/cluster",
        "--options",
        "examples/speaker-options.yaml",
    ];
    // Start BIRD from the rendered examples, then change the input and apply once.
    let out = bgpgen(
        &[
            &["render", "--backend", "bird", "--out", d.to_str().unwrap()][..],
            &ex,
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let _bird = Bird(
        Command::new("bird")
            .args([
                "-f",
                "-c",
                conf.to_str().unwrap(),
                "-s",
                &socket,
                "-P",
                d.join("bird.pid").to_str().unwrap(),
            ])
            .spawn()
            .unwrap(),
    );
    let mut up = false;
    for _ in 0..50 {
        if routes(&socket).contains("routes") {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(up, "bird did not start");
    assert!(routes(&socket).contains("17 of 17"), "{}", routes(&socket));
    let daemon = [
        "--backend",
        "bird",
        "--config-file",
        conf.to_str().unwrap(),
        "--bird-socket",
        &socket,
    ];

    // Unchanged input: nothing to do.
    let out = bgpgen(&[&["apply"][..], &ex, &daemon].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("unchanged"),
        "{}",
        text(&out)
    );

    // A changed option: applied with birdc configure.
    let out = bgpgen(
        &[
            &["apply"][..],
            &ex,
            &daemon,
            &["--announce-cluster-ip=false"],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("birdc configure"),
        "{}",
        text(&out)
    );
    assert!(routes(&socket).contains("14 of 14"), "{}", routes(&socket));

    // A template that produces garbage: refused by BIRD's parser, exit 3, nothing changed.
    let templates = d.join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(
        templates.join("bird.conf.j2"),
        "router id {{ router_id }};\nprotocol nonsense {\n",
    )
    .unwrap();
    let before = std::fs::read_to_string(&conf).unwrap();
    let out = bgpgen(
        &[
            &["apply", "--templates", templates.to_str().unwrap()][..],
            &ex,
            &daemon,
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("rejected bird.conf"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        before,
        "a refused file must not be written"
    );
    assert!(routes(&socket).contains("14 of 14"));

    // Invalid input: exit 2. Daemon unreachable: exit 3.
    let out = bgpgen(&[&["apply"][..], &ex, &daemon, &["--holdtime=1s"]].concat());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let gone = d.join("nobody.ctl").display().to_string();
    let out = bgpgen(
        &[
            &["apply"][..],
            &ex,
            &[
                "--backend",
                "bird",
                "--config-file",
                conf.to_str().unwrap(),
                "--bird-socket",
                &gone,
            ],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("not reachable"), "{}", text(&out));
}

/// A network namespace with only `lo`, deleted when dropped: the examples' neighbors are not
/// local, so bgpd's outgoing connections must have nowhere to go.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// A process killed when dropped, also on panic.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Attach mode against FRR as users start it: bgpd running an empty configuration (no
/// `router bgp` yet). frr-reload.py's first run over such a bgpd reports a refused
/// `bgp graceful-restart-disable` although bgpd took the block; bgpgen must report the apply
/// as applied (exit 0), bgpd must run the rendered file, and a second apply must find nothing
/// to do.
#[test]
fn apply_once_against_a_frr_started_empty() {
    let bgpd = std::path::Path::new("/usr/lib/frr/bgpd");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let have = bgpd.exists()
        && std::path::Path::new("/usr/lib/frr/frr-reload.py").exists()
        && Command::new("vtysh").arg("--version").output().is_ok()
        && Command::new("ip").arg("-V").output().is_ok();
    if !(have && root) {
        skip::skip(
            "apply::apply_once_against_a_frr_started_empty",
            "FRR (bgpd, vtysh, frr-reload.py: packages frr, frr-pythontools), iproute2 and root",
        );
        return;
    }
    let ns = Netns(format!("bgpgen-{}-0-apply-frr", std::process::id()));
    let out = Command::new("ip")
        .args(["netns", "add", &ns.0])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let _ = Command::new("ip")
        .args(["-n", &ns.0, "link", "set", "lo", "up"])
        .output();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // bgpd runs as root here (-S keeps it from switching users): the sockets stay ours.
    let empty = d.join("empty.conf");
    std::fs::write(&empty, "").unwrap();
    let conf = d.join("frr.conf");
    let _bgpd = Killed(
        Command::new("ip")
            .args(["netns", "exec", &ns.0])
            .arg(bgpd)
            .args(["-Z", "-S", "-p", "0", "-P", "0", "--vty_socket"])
            .arg(d)
            .arg("-i")
            .arg(d.join("bgpd.pid"))
            .arg("-f")
            .arg(&empty)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let vtysh = |command: &str| {
        Command::new("ip")
            .args(["netns", "exec", &ns.0, "vtysh", "--vty_socket"])
            .arg(d)
            .args(["-c", command])
            .output()
            .unwrap()
    };
    let mut up = false;
    for _ in 0..100 {
        if vtysh("show version").status.success() {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(up, "bgpd did not answer on its vty socket");
    let apply = || {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.0,
                env!("CARGO_BIN_EXE_bgpgen"),
                "apply",
            ])
            .args(["--backend", "frr", "--config-file"])
            .arg(&conf)
            .arg("--frr-vty-socket")
            .arg(d)
            .args([
                "-f",
                "examples/cluster",
                "--options",
                "examples/speaker-options.yaml",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("NODE_NAME")
            .output()
            .unwrap()
    };

    let out = apply();
    assert_eq!(out.status.code(), Some(0), "first apply: {}", text(&out));
    let running = String::from_utf8_lossy(&vtysh("show running-config").stdout).to_string();
    for line in [
        "router bgp 65000",
        " bgp graceful-restart-disable",
        " neighbor 10.32.32.254 remote-as 65030",
        "  network 10.16.0.5/32",
    ] {
        assert!(
            running.lines().any(|l| l == line),
            "bgpd does not run {line:?} after the apply:\n{running}"
        );
    }
    let out = apply();
    assert_eq!(out.status.code(), Some(0), "second apply: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("unchanged"),
        "second apply: {}",
        text(&out)
    );
}
