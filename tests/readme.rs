//! The README is followed by newcomers block by block, so it is tested like code:
//! - every `console` block's commands are run and their output (stderr, then stdout) must be what
//!   the block shows (`BGPGEN_BLESS=1 cargo test --test readme` rewrites the blocks; read the diff);
//! - every `bgpgen` command of a `sh` block that needs no daemon runs as pasted;
//! - no pasted line holds a literal `...`;
//! - the test list names every `tests/*.rs`;
//! - the metrics list names exactly what a sidecar's `/metrics` serves.

use std::path::{Path, PathBuf};
use std::process::Command;

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");

fn readme() -> String {
    std::fs::read_to_string(README).unwrap()
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_bgpgen"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs a pasted command line with `bgpgen` on PATH, in `dir`, without the environment
/// variables kube-ovn-speaker reads.
fn sh(command: &str, dir: &Path) -> std::process::Output {
    let path = format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("sh")
        .args(["-c", command])
        .current_dir(dir)
        .env("PATH", path)
        .env("COLUMNS", "100")
        .env_remove("NODE_NAME")
        .env_remove("KUBE_NODE_NAME")
        .env_remove("POD_IPS")
        .env_remove("POD_IP")
        .env_remove("GATEWAY_NAME")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// The fenced blocks of a language: (index of the first content line, lines).
fn blocks<'a>(lines: &[&'a str], lang: &str) -> Vec<(usize, Vec<&'a str>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_start() == format!("```{lang}") {
            let start = i + 1;
            let mut j = start;
            while j < lines.len() && lines[j].trim_start() != "```" {
                j += 1;
            }
            out.push((start, lines[start..j].to_vec()));
            i = j;
        }
        i += 1;
    }
    out
}

/// Command lines with their `\` continuations joined.
fn commands(lines: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in lines {
        let body = line.trim();
        if let Some(head) = body.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(body);
            if !current.trim().is_empty() {
                out.push(std::mem::take(&mut current));
            }
            current.clear();
        }
    }
    out
}

#[test]
fn console_blocks_show_what_the_commands_print() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = readme();
    let lines: Vec<&str> = text.lines().collect();
    let bless = std::env::var("BGPGEN_BLESS").is_ok_and(|v| v == "1");
    let mut rewritten: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    // Replacements from the end, so earlier indices stay valid.
    let mut replacements = Vec::new();
    let mut failures = Vec::new();
    for (start, block) in blocks(&lines, "console") {
        let mut k = 0;
        while k < block.len() {
            let Some(command) = block[k].strip_prefix("$ ") else {
                panic!("README line {}: console block without `$ `", start + k + 1);
            };
            let mut end = k + 1;
            while end < block.len() && !block[end].starts_with("$ ") {
                end += 1;
            }
            let shown = block[k + 1..end].join("\n");
            let out = sh(command, root);
            let actual = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            );
            let actual = actual.trim_end_matches('\n').to_string();
            if actual != shown {
                failures.push(format!(
                    "README line {}: `{command}` prints\n{actual}\n--- but the README shows\n{shown}",
                    start + k + 1
                ));
                replacements.push((start + k + 1, start + end, actual));
            }
            k = end;
        }
    }
    if bless && !failures.is_empty() {
        for (from, to, actual) in replacements.into_iter().rev() {
            rewritten.splice(from..to, actual.lines().map(str::to_string));
        }
        let mut new = rewritten.join("\n");
        new.push('\n');
        std::fs::write(README, new).unwrap();
        return;
    }
    assert!(
        failures.is_empty(),
        "{}\n(BGPGEN_BLESS=1 cargo test --test readme rewrites them)",
        failures.join("\n\n")
    );
}

#[test]
fn no_pasted_line_holds_a_placeholder() {
    let text = readme();
    let lines: Vec<&str> = text.lines().collect();
    for lang in ["sh", "console"] {
        for (start, block) in blocks(&lines, lang) {
            for (k, line) in block.iter().enumerate() {
                let pasted = lang == "sh" || line.starts_with("$ ");
                if !pasted {
                    continue;
                }
                // A comment is not run; everything before it is.
                let code = match line.find('#') {
                    Some(0) => "",
                    Some(i) if line[..i].ends_with(' ') => &line[..i],
                    _ => line,
                };
                assert!(
                    !code.contains("..."),
                    "README line {}: a literal `...` in a pasted line: {line}",
                    start + k + 1
                );
                // `<node-ip>` and the like: the shell reads it as a redirection.
                let placeholder = code.match_indices('<').any(|(i, _)| {
                    let rest = &code[i + 1..];
                    rest.find('>').is_some_and(|end| {
                        end > 0
                            && rest[..end]
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    })
                });
                assert!(
                    !placeholder,
                    "README line {}: a <placeholder> in a pasted line: {line}",
                    start + k + 1
                );
            }
        }
    }
}

#[test]
fn sh_blocks_run_as_pasted() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples"),
        dir.path().join("examples"),
    )
    .unwrap();
    let text = readme();
    let lines: Vec<&str> = text.lines().collect();
    let mut ran = 0;
    for (start, block) in blocks(&lines, "sh") {
        for command in commands(&block) {
            // Only bgpgen's own offline commands: set-up, daemons, clusters and system paths are
            // for the reader's machine (tests/sidecar.rs and the image test run those parts).
            let offline = command.starts_with("bgpgen ")
                && !["bgpgen run", "bgpgen apply", "bgpgen completion", "bgpgen man"]
                    .iter()
                    .any(|c| command.starts_with(c))
                && !command.contains("/etc/")
                && !command.contains("/tmp/big")
                // A block that sets shell variables is a session (the sidecar demo).
                && !command.contains('$');
            if !offline {
                continue;
            }
            let out = sh(&command, dir.path());
            let code = out.status.code().unwrap_or(-1);
            let may_differ = command.starts_with("bgpgen diff")
                || command.starts_with("bgpgen explain")
                || command.contains("--check");
            assert!(
                code == 0 || (code == 1 && may_differ) || command.contains("||"),
                "README block at line {start}: `{command}` exits {code}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
    }
    assert!(ran >= 6, "only {ran} commands found");
}

#[test]
fn the_test_list_names_every_test_file() {
    let text = readme();
    let section = &text[text.find("\n## Tests").expect("a Tests section")..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |i| i + 1)];
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".rs") && !section.contains(&format!("tests/{name}")) {
            missing.push(name);
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "README's Tests section does not mention {missing:?}"
    );
}

/// A free port on loopback (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The metric names (`bgpgen_...`) that a sidecar serves, scraped from a GoBGP sidecar whose
/// daemon is absent (the endpoint serves all the same).
fn served_metrics(backend: &str, extra: &[&str]) -> std::collections::BTreeSet<String> {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let config = dir.path().join("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bgpgen"))
        .args([
            "run",
            "--backend",
            backend,
            "--manifests",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/cluster"),
            "--options",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/speaker-options.yaml"),
            "--config-file",
            config.to_str().unwrap(),
            "--metrics-addr",
            &addr,
            "-q",
        ])
        .args(extra)
        .env_remove("NODE_NAME")
        .env_remove("POD_IPS")
        .env_remove("POD_IP")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let body = loop {
        let got = (|| {
            use std::io::{Read as _, Write as _};
            let mut s = std::net::TcpStream::connect(&addr).ok()?;
            s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
                .ok()?;
            let mut body = String::new();
            s.read_to_string(&mut body).ok()?;
            body.contains("bgpgen_applies_total").then_some(body)
        })();
        if let Some(body) = got {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no /metrics on {addr} within 20 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    body.lines()
        .filter(|l| l.starts_with("bgpgen_"))
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

#[test]
fn the_metrics_list_is_what_metrics_serves() {
    let text = readme();
    let documented: std::collections::BTreeSet<String> = text
        .lines()
        .filter_map(|l| {
            let first = l.split_whitespace().next()?;
            first
                .starts_with("bgpgen_")
                .then(|| first.split('{').next().unwrap().to_string())
        })
        .collect();
    // GoBGP serves its own counter on top of the common ones.
    let mut served = served_metrics(
        "gobgp",
        &["--gobgp-api", &format!("127.0.0.1:{}", free_port())],
    );
    served.extend(served_metrics(
        "bird",
        &["--bird-socket", "/nonexistent/bird.ctl"],
    ));
    assert_eq!(
        documented, served,
        "README's metrics list (lines starting with bgpgen_) against /metrics"
    );
}
