//! Issue 11, classes 2-7, with the exact inputs that showed them, through the `bgpgen` binary:
//! files that are not what they seem (FIFOs, devices, symlink loops, planted `.prev` links),
//! files too large to read, secrets that used to be printed, JSON duplicate keys, and names that
//! forged output lines. Every run has a deadline: a hang is a failure, not a stuck test.
//! (Class 1, addresses, is in tests/rules.rs; the sidecar cases in tests/sidecar_hostile.rs.)

use std::io::Read as _;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A run of the binary: exit code, stdout, stderr. Killed (and the test failed) after 60 s.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn bgpgen_in(dir: &Path, args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bgpgen"))
        .args(args)
        .current_dir(dir)
        .env_remove("NODE_NAME")
        .env_remove("POD_IPS")
        .env_remove("POD_IP")
        .env_remove("GATEWAY_NAME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bgpgen runs");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bgpgen {args:?} did not finish within 60 s (a hang)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap()).into_owned(),
    }
}

fn bgpgen(args: &[&str]) -> Run {
    bgpgen_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

const SPEAKER: &[&str] = &[
    "--neighbor-address=10.32.32.254",
    "--neighbor-as=65030",
    "--cluster-as=65000",
    "--node-name=node-1",
    "--router-id=10.0.0.11",
];

fn args<'a>(head: &[&'a str], tail: &[&'a str]) -> Vec<&'a str> {
    head.iter().chain(SPEAKER).chain(tail).copied().collect()
}

const SUBNET: &str = "apiVersion: kubeovn.io/v1\nkind: Subnet\nmetadata:\n  name: s\n  annotations: {ovn.kubernetes.io/bgp: \"true\"}\nspec: {cidrBlock: 10.16.0.0/16}\nstatus: {conditions: [{type: Ready, status: \"True\"}]}\n";

fn pod(name: &str, ip: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\n  annotations:\n    ovn.kubernetes.io/logical_switch: s\n    ovn.kubernetes.io/ip_address: \"{ip}\"\nspec: {{nodeName: node-1}}\nstatus: {{phase: Running}}\n"
    )
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A directory with one subnet and one pod.
fn cluster() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("subnet.yaml"), SUBNET).unwrap();
    std::fs::write(dir.path().join("pod.yaml"), pod("web", "10.16.0.5")).unwrap();
    dir
}

// ---- 3. Silent stalls ----

#[test]
fn a_fifo_in_a_manifest_directory_is_skipped_with_a_warning_and_never_blocks() {
    let dir = cluster();
    mkfifo(&dir.path().join("stuck.yaml"));
    let run = bgpgen(&args(&["compile", "-f", p(dir.path())], &[]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("10.16.0.5/32"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("stuck.yaml: skipped: a FIFO, not a regular file"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_fifo_or_device_given_by_name_is_an_error_not_a_hang() {
    let dir = cluster();
    let fifo = dir.path().join("f.yaml");
    mkfifo(&fifo);
    for (path, what) in [(p(&fifo), "a FIFO"), ("/dev/zero", "a character device")] {
        let run = bgpgen(&args(&["compile", "-f", path], &[]));
        assert_eq!(run.code, 2, "{path}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("is {what}, not a regular file")),
            "{path}: {}",
            run.stderr
        );
    }
    // As --options and as --auth-password-file.
    let run = bgpgen(&args(
        &["compile", "-f", p(dir.path())],
        &["--options", p(&fifo)],
    ));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is a FIFO"), "{}", run.stderr);
    let run = bgpgen(&args(
        &["compile", "-f", p(dir.path())],
        &["--auth-password-file", p(&fifo)],
    ));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is a FIFO"), "{}", run.stderr);
}

#[test]
fn symlink_loops_are_read_once() {
    // Two `ln -s . loop` links used to take 24 s and 729 MB.
    let dir = cluster();
    symlink(".", dir.path().join("loop")).unwrap();
    symlink(".", dir.path().join("loop2")).unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    symlink("..", sub.join("up")).unwrap();
    let run = bgpgen(&args(&["compile", "-f", p(dir.path())], &[]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("10.16.0.5/32"));
    assert!(
        run.stderr.contains("skipped: a directory already read"),
        "{}",
        run.stderr
    );
}

// ---- 4. Memory follows file size ----

#[test]
fn a_file_above_the_limit_is_refused_before_it_is_read() {
    let dir = cluster();
    for name in ["huge.json", "huge.yaml"] {
        let huge = dir.path().join(name);
        // 2 GiB on paper, nothing on disk: reading it whole would cost 2 GB of RSS.
        std::fs::File::create(&huge)
            .unwrap()
            .set_len(2 << 30)
            .unwrap();
        let run = bgpgen(&args(&["compile", "-f", p(dir.path())], &[]));
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("{name}: is 2147483648 bytes, more than the limit")),
            "{}",
            run.stderr
        );
        std::fs::remove_file(&huge).unwrap();
    }
    // The limit is a flag; YAML is held to 3/8 of it.
    let big = dir.path().join("big.yaml");
    std::fs::write(&big, format!("{SUBNET}# {}\n", "x".repeat(5000))).unwrap();
    let run = bgpgen(&args(
        &["compile", "-f", p(&big)],
        &["--max-input-bytes", "8000"],
    ));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("more than the limit of 3000 bytes"),
        "{}",
        run.stderr
    );
    let run = bgpgen(&args(
        &["compile", "-f", p(&big)],
        &["--max-input-bytes", "80000"],
    ));
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn a_broken_large_json_file_is_reported_without_reading_it_whole() {
    // Above the streaming threshold (16 MiB), a file that is not one JSON object: reported from
    // the stream, no fallback that reads it whole.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("zeros.json");
    std::fs::File::create(&file)
        .unwrap()
        .set_len(100 << 20)
        .unwrap();
    let run = bgpgen(&args(&["compile", "-f", p(&file)], &[]));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("not a single JSON object"),
        "{}",
        run.stderr
    );
}

// ---- 2. Writes through symlinks ----

#[test]
fn render_out_never_writes_through_a_planted_link() {
    let dir = cluster();
    let out = dir.path().join("out");
    let victim = dir.path().join("root-file");
    std::fs::write(&victim, "precious\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    let render = |out: &Path, extra: &[&str]| {
        bgpgen(&args(
            &[
                "render",
                "-f",
                p(&dir.path().join("subnet.yaml")),
                "--backend",
                "bird",
            ],
            &[&["--out", p(out)][..], extra].concat(),
        ))
    };
    let run = render(&out, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o750
    );
    // The old config exists; plant `.prev` pointing at a root-owned file, then change the input
    // (a route, in bird-routes/, and a session option, in bird.conf).
    symlink(&victim, out.join("bird.conf.prev")).unwrap();
    std::fs::write(
        dir.path().join("subnet.yaml"),
        SUBNET.replace("10.16.0.0/16", "10.17.0.0/16"),
    )
    .unwrap();
    let run = render(&out, &["--holdtime", "30s"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(
        std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let prev = std::fs::symlink_metadata(out.join("bird.conf.prev")).unwrap();
    assert!(prev.is_file(), "the planted link was replaced by a file");
    // A link in place of the config itself is refused.
    std::fs::remove_file(out.join("bird.conf")).unwrap();
    symlink(&victim, out.join("bird.conf")).unwrap();
    let run = render(&out, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is a symbolic link"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    // And in place of a route file.
    std::fs::remove_file(out.join("bird.conf")).unwrap();
    std::fs::remove_file(out.join("bird-routes/v4.conf")).unwrap();
    symlink(&victim, out.join("bird-routes/v4.conf")).unwrap();
    let run = render(&out, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is a symbolic link"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

// ---- 5. Secrets ----

#[test]
fn yaml_errors_do_not_quote_the_lines_around_them() {
    let dir = cluster();
    let options = dir.path().join("options.yaml");
    std::fs::write(
        &options,
        "cluster-as: 65000\nauth-password: hunter2secret\nholdtime: [90s\n",
    )
    .unwrap();
    let run = bgpgen(&["compile", "-f", p(dir.path()), "--options", p(&options)]);
    assert_eq!(run.code, 2);
    assert!(!run.stderr.contains("hunter2secret"), "{}", run.stderr);
    // The position is cited instead (FILE:LINE:COLUMN).
    assert!(
        run.stderr.contains(&format!("{}:3:", p(&options))),
        "{}",
        run.stderr
    );

    // A malformed Secret next to the manifests.
    std::fs::write(
        dir.path().join("secret.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata: {name: bgp}\nstringData:\n  password: hunter2secret\n   oops: [\n",
    )
    .unwrap();
    let run = bgpgen(&args(&["compile", "-f", p(dir.path())], &[]));
    assert_eq!(run.code, 2);
    assert!(!run.stderr.contains("hunter2secret"), "{}", run.stderr);
    assert!(run.stderr.contains("secret.yaml"), "{}", run.stderr);
}

#[test]
fn a_type_error_in_a_password_field_does_not_quote_it() {
    let dir = tempfile::tempdir().unwrap();
    let gw = dir.path().join("gw.json");
    std::fs::write(
        &gw,
        r#"{"apiVersion":"kubeovn.io/v1","kind":"VpcNatGateway","metadata":{"name":"gw"},"spec":{"bgpSpeaker":{"enabled":true,"password":["hunter2secret"]}}}"#,
    )
    .unwrap();
    let run = bgpgen(&args(&["compile", "-f", p(&gw)], &[]));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(!run.stderr.contains("hunter2secret"), "{}", run.stderr);
    assert!(
        run.stderr.contains("spec.bgpSpeaker.password"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_password_change_changes_the_hash_and_diff_says_so_without_the_value() {
    let dir = cluster();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::write(&a, "oldsecret-1\n").unwrap();
    std::fs::write(&b, "newsecret-2\n").unwrap();
    let hash = |file: &Path| {
        let run = bgpgen(&args(
            &["compile", "-f", p(dir.path())],
            &["--auth-password-file", p(file)],
        ));
        assert_eq!(run.code, 0, "{}", run.stderr);
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with("hash: "))
            .unwrap()
            .to_string();
        assert!(!run.stdout.contains("secret-"));
        line
    };
    assert_ne!(hash(&a), hash(&b));
    assert_eq!(hash(&a), hash(&a));
    // `diff` between two option sets: same manifests, the password differs.
    let (oa, ob) = (dir.path().join("oa.yaml"), dir.path().join("ob.yaml"));
    std::fs::write(&oa, format!("auth-password-file: {}\n", p(&a))).unwrap();
    std::fs::write(&ob, format!("auth-password-file: {}\n", p(&b))).unwrap();
    let cluster_dir = dir.path().join("c");
    std::fs::create_dir(&cluster_dir).unwrap();
    std::fs::write(cluster_dir.join("subnet.yaml"), SUBNET).unwrap();
    let out = dir.path().join("out");
    let run = bgpgen(&args(
        &[
            "render",
            "-f",
            p(&cluster_dir),
            "--backend",
            "frr",
            "--options",
            p(&oa),
        ],
        &["--out", p(&out)],
    ));
    assert_eq!(run.code, 0, "{}", run.stderr);
    // render --check against the other password: stale, and neither password is printed.
    let run = bgpgen(&args(
        &[
            "render",
            "-f",
            p(&cluster_dir),
            "--backend",
            "frr",
            "--options",
            p(&ob),
        ],
        &["--out", p(&out), "--check"],
    ));
    assert_eq!(run.code, 1, "{}", run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(!all.contains("secret-"), "{all}");
    assert!(run.stdout.contains("--- a/frr.conf"), "{all}");
}

/// A NAT gateway's speaker takes its password from the VpcNatGateway: two revisions of the
/// manifests that differ only in it. `diff` used to say "no changes".
#[test]
fn diff_shows_a_password_change_in_the_forecast() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = |password: &str| {
        format!(
            "apiVersion: kubeovn.io/v1\nkind: VpcNatGateway\nmetadata: {{name: gw}}\nspec:\n  bgpSpeaker:\n    enabled: true\n    asn: 65500\n    remoteAsn: 65000\n    neighbors: [192.0.2.254]\n    routerId: 192.0.2.1\n    password: \"{password}\"\n"
        )
    };
    let (from, to, same) = (
        dir.path().join("from"),
        dir.path().join("to"),
        dir.path().join("same"),
    );
    for (d, password) in [
        (&from, "oldsecret-1"),
        (&to, "newsecret-2"),
        (&same, "oldsecret-1"),
    ] {
        std::fs::create_dir(d).unwrap();
        std::fs::write(d.join("gw.yaml"), gateway(password)).unwrap();
    }
    let diff = |a: &Path, b: &Path| {
        bgpgen(&[
            "diff",
            "--backend",
            "frr",
            "--from",
            p(a),
            "--to",
            p(b),
            "--nat-gw-mode",
            "--gateway-name=gw",
        ])
    };
    let run = diff(&from, &same);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("no changes"), "{}", run.stdout);
    let run = diff(&from, &to);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("session reset: 192.0.2.254 (password changed)"),
        "{}",
        run.stdout
    );
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(!all.contains("secret-"), "{all}");
}

// ---- 6. JSON duplicate keys ----

#[test]
fn json_duplicate_keys_are_refused_small_and_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let subnet = r#"{"apiVersion":"kubeovn.io/v1","kind":"Subnet","metadata":{"name":"s"},"spec":{"cidrBlock":"10.16.0.0/16"},"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#;
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"dup","namespace":"default","annotations":{"ovn.kubernetes.io/bgp":"false","ovn.kubernetes.io/logical_switch":"s","ovn.kubernetes.io/ip_address":"10.16.0.5","ovn.kubernetes.io/bgp":"true"}},"spec":{"nodeName":"node-1"},"status":{"phase":"Running"}}"#;
    let small = format!(r#"{{"apiVersion":"v1","kind":"List","items":[{subnet},{pod}]}}"#);
    // Streamed: the same List padded beyond 16 MiB with harmless objects.
    let filler = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"f"},"data":{"x":"0123456789012345678901234567890123456789012345678901234567890123456789"}}"#;
    let mut big = String::from(r#"{"apiVersion":"v1","kind":"List","items":["#);
    big.push_str(subnet);
    while big.len() < 17 << 20 {
        big.push(',');
        big.push_str(filler);
    }
    big.push(',');
    big.push_str(pod);
    big.push_str("]}");
    for (name, text) in [("small.json", small.as_str()), ("big.json", big.as_str())] {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let run = bgpgen(&args(&["compile", "-f", p(&file)], &[]));
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains(name)
                && run.stderr.contains("Pod default/dup")
                && run.stderr.contains("duplicate key"),
            "{name}: {}",
            run.stderr
        );
        assert!(!run.stdout.contains("10.16.0.5/32"));
    }
    // A single object (not a List) with a repeated top-level key.
    let file = dir.path().join("one.json");
    std::fs::write(&file, format!(r#"{{"kind":"ConfigMap",{}"#, &subnet[1..])).unwrap();
    let run = bgpgen(&args(&["compile", "-f", p(&file)], &[]));
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("kind: duplicate key"), "{}", run.stderr);
}

// ---- 7. Forged output lines ----

#[test]
fn names_cannot_forge_lines_of_diff_explain_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (dir.path().join("from"), dir.path().join("to"));
    std::fs::create_dir(&from).unwrap();
    std::fs::create_dir(&to).unwrap();
    std::fs::write(from.join("subnet.yaml"), SUBNET).unwrap();
    std::fs::write(to.join("subnet.yaml"), SUBNET).unwrap();
    // A pod name that used to forge lines of `diff`, with ESC and a bidi override.
    let evil = "web\\n  no-op\\n\\nroute changes: none\\u001b[2J\\u202e";
    std::fs::write(
        to.join("pod.json"),
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{evil}","namespace":"default","annotations":{{"ovn.kubernetes.io/bgp":"true","ovn.kubernetes.io/logical_switch":"s","ovn.kubernetes.io/ip_address":"10.16.0.5"}}}},"spec":{{"nodeName":"node-1"}},"status":{{"phase":"Running"}}}}"#
        ),
    )
    .unwrap();
    let run = bgpgen(&args(
        &[
            "diff",
            "--backend",
            "frr",
            "--from",
            p(&from),
            "--to",
            p(&to),
        ],
        &[],
    ));
    assert_eq!(run.code, 1, "{}", run.stderr);
    let clean = |s: &str| {
        !s.contains('\u{1b}')
            && !s.contains('\u{202e}')
            && !s
                .lines()
                .any(|l| l.trim() == "no-op" || l.starts_with("route changes"))
    };
    assert!(clean(&run.stdout), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("+ 10.16.0.5/32  Pod default/web\\n  no-op\\n\\nroute changes: none\\u{1b}[2J\\u{202e} (cluster)"),
        "{}",
        run.stdout
    );
    let run = bgpgen(&args(&["explain", "-f", p(&to)], &["10.16.0.5"]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(clean(&run.stdout), "{}", run.stdout);

    // A file name with a newline that used to forge an `error:` line.
    let forged = to.join("x\nerror: everything is fine.yaml");
    std::fs::write(&forged, "kind: Pod\napiVersion: v1\nmetadata: {name: [\n").unwrap();
    let run = bgpgen(&args(&["compile", "-f", p(&to)], &[]));
    assert_eq!(run.code, 2);
    assert!(
        !run.stderr
            .lines()
            .any(|l| l.starts_with("error: everything")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("x\\nerror: everything is fine.yaml"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_huge_annotation_value_gives_a_bounded_warning() {
    let dir = tempfile::tempdir().unwrap();
    let value = "x".repeat(10 << 20);
    std::fs::write(dir.path().join("subnet.yaml"), SUBNET).unwrap();
    std::fs::write(
        dir.path().join("pod.json"),
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"big","namespace":"default","annotations":{{"ovn.kubernetes.io/bgp":"{value}","ovn.kubernetes.io/logical_switch":"s","ovn.kubernetes.io/ip_address":"10.16.0.5"}}}},"spec":{{"nodeName":"node-1"}}}}"#
        ),
    )
    .unwrap();
    let run = bgpgen(&args(&["compile", "-f", p(dir.path())], &[]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("Pod/default/big"))
        .expect("a warning about the pod");
    assert!(line.len() < 400, "{} bytes", line.len());
    assert!(line.contains("(10485760 bytes)"), "{line}");
    assert!(
        run.stdout.len() < 100_000,
        "{} bytes of intent",
        run.stdout.len()
    );
}
