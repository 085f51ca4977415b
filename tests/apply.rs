//! `bgpgen apply`, the one-shot pipeline, against a real BIRD on a private control socket (no
//! sessions needed): applied, unchanged, a refused template rolled back, exit codes 0 / 2 / 3.

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
