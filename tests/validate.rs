//! FRR's checkers where the DaemonSet runs them: a read-only root (yamls/speaker-frr.yaml), so
//! FRR's default run directory /var/run/frr cannot be created. `render --validate` still accepts a
//! good configuration, still rejects a bad one, and leaves nothing behind in /var/tmp (bgpd's
//! crash log directory) or elsewhere.
//!
//! Each case runs the real binary in a private mount namespace (`unshare --mount`) with /run
//! mounted read-only and an empty tmpfs on /var/tmp; the host's directories are not touched.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::netns::{BGPD, VTYSH, prerequisites};

const UNSHARE: &str = "unshare";
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");

/// Runs `bgpgen render --backend frr --dry-run --validate ARGS` inside the namespace described
/// above, then lists what is left in /var/tmp (after a line `--- /var/tmp:`).
fn render_on_read_only_root(args: &[&str]) -> Output {
    let script = r#"set -e
mount --make-rprivate /
mount -t tmpfs -o ro,mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
set +e
"$@"
rc=$?
echo "--- /var/tmp:"
ls -A /var/tmp
exit $rc
"#;
    let cluster = format!("{EXAMPLES}/cluster");
    let options = format!("{EXAMPLES}/speaker-options.yaml");
    Command::new(UNSHARE)
        .args(["--mount", "sh", "-c", script, "sh"])
        .arg(env!("CARGO_BIN_EXE_bgpgen"))
        .args([
            "render",
            "-f",
            &cluster,
            "--options",
            &options,
            "--backend",
            "frr",
            "--dry-run",
            "--validate",
        ])
        .args(args)
        .output()
        .expect("run unshare")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What the script listed in /var/tmp.
fn leftovers(out: &Output) -> Vec<String> {
    let stdout = text(&out.stdout);
    let (_, listed) = stdout
        .split_once("--- /var/tmp:\n")
        .unwrap_or_else(|| panic!("no listing in the output:\n{stdout}\n{}", text(&out.stderr)));
    listed.lines().map(str::to_string).collect()
}

#[test]
fn frr_check_passes_on_a_read_only_root_and_leaves_nothing_behind() {
    if !prerequisites(
        "frr_check_passes_on_a_read_only_root_and_leaves_nothing_behind",
        &[UNSHARE, BGPD, VTYSH],
    ) {
        return;
    }
    let out = render_on_read_only_root(&[]);
    assert!(
        out.status.success(),
        "render --validate failed on a read-only root ({}):\n{}",
        out.status,
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("router bgp"),
        "the rendered frr.conf is printed:\n{}",
        text(&out.stdout)
    );
    assert_eq!(
        leftovers(&out),
        Vec::<String>::new(),
        "nothing left in /var/tmp"
    );
    assert!(
        !text(&out.stderr).contains("/var/run/frr"),
        "no complaint about FRR's run directory:\n{}",
        text(&out.stderr)
    );
}

#[test]
fn frr_check_still_rejects_a_bad_file_on_a_read_only_root() {
    if !prerequisites(
        "frr_check_still_rejects_a_bad_file_on_a_read_only_root",
        &[UNSHARE, BGPD, VTYSH],
    ) {
        return;
    }
    // Grammatically fine (vtysh accepts it), semantically wrong (a neighbor that was never
    // defined): only bgpd -C finds it, and only in its output.
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(
        templates.path().join("frr.conf.j2"),
        "frr defaults traditional\nrouter bgp 65000\n neighbor 192.0.2.9 timers 100 10\n!\n",
    )
    .unwrap();
    let dir = templates.path().to_str().unwrap();
    assert!(Path::new(dir).is_absolute());
    let out = render_on_read_only_root(&["--templates", dir]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a configuration bgpd rejects exits 3:\n{}",
        text(&out.stderr)
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("rejected") && stderr.contains("192.0.2.9"),
        "the error names bgpd's complaint:\n{stderr}"
    );
    assert!(
        !stderr.contains("failed to mkdir"),
        "the run directory warning is not reported as the error:\n{stderr}"
    );
    assert_eq!(
        leftovers(&out),
        Vec::<String>::new(),
        "nothing left in /var/tmp"
    );
}
