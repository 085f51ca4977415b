//! Rendering: injection attempts stay inert, user templates, and the `render`/`diff` commands
//! (dry run, atomic writes with 0600 for secrets, drift check, daemon validation, exit codes).

#[path = "common/skip.rs"]
#[allow(dead_code)]
mod skip;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use bgpgen::compile::compile;
use bgpgen::daemon::validate::{available, validate};
use bgpgen::options::{Env, parse_speaker_args, resolve};
use bgpgen::render::{Backend, RenderError, Templates, render};
use bgpgen::source::manifests::load_texts;

const ARGS: &[&str] = &[
    "--neighbor-address=192.0.2.254",
    "--neighbor-ipv6-address=2001:db8::254",
    "--neighbor-as=65030",
    "--cluster-as=65000",
    "--node-name=node-1",
    "--router-id=10.0.0.11",
    "--announce-cluster-ip",
    "--auth-password=s3cr3t-Pw",
];

/// Announced objects of every kind whose names (and annotation values) carry `payload`.
fn manifests(payload: &str, nat: bool) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap();
    let name = |base: &str| q(&format!("{base}{payload}"));
    let mut docs = vec![
        format!(
            "{{\"apiVersion\":\"kubeovn.io/v1\",\"kind\":\"Subnet\",\"metadata\":{{\"name\":{},\"annotations\":{{\"ovn.kubernetes.io/bgp\":\"true\"}}}},\"spec\":{{\"cidrBlock\":\"10.16.0.0/16,fd00:10:16::/64\"}}}}",
            name("sub")
        ),
        format!(
            "{{\"apiVersion\":\"kubeovn.io/v1\",\"kind\":\"Subnet\",\"metadata\":{{\"name\":\"odd\",\"annotations\":{{\"ovn.kubernetes.io/bgp\":{}}}}},\"spec\":{{\"cidrBlock\":\"10.17.0.0/16\"}}}}",
            name("v")
        ),
        format!(
            "{{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{{\"name\":{},\"namespace\":{},\"annotations\":{{\"ovn.kubernetes.io/bgp\":\"true\",\"ovn.kubernetes.io/logical_switch\":{},\"ovn.kubernetes.io/ip_address\":\"10.16.0.5,fd00:10:16::5\"}}}},\"spec\":{{\"nodeName\":\"node-1\"}}}}",
            name("pod"),
            name("ns"),
            name("sub")
        ),
        format!(
            "{{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{{\"name\":{},\"namespace\":{},\"annotations\":{{\"ovn.kubernetes.io/bgp\":\"yes\"}}}},\"spec\":{{\"clusterIP\":\"10.96.0.10\"}}}}",
            name("svc"),
            name("ns")
        ),
    ];
    if nat {
        docs.push(format!("{{\"apiVersion\":\"kubeovn.io/v1\",\"kind\":\"IptablesEIP\",\"metadata\":{{\"name\":{},\"labels\":{{\"ovn.kubernetes.io/vpc-nat-gw-name\":\"gw1\"}},\"annotations\":{{\"ovn.kubernetes.io/bgp\":\"true\"}}}},\"spec\":{{\"v4ip\":\"172.20.0.10\"}},\"status\":{{\"ready\":true}}}}", name("eip")));
        docs.push(format!("{{\"apiVersion\":\"kubeovn.io/v1\",\"kind\":\"VpcNatGateway\",\"metadata\":{{\"name\":\"gw1\"}},\"spec\":{{\"bgpSpeaker\":{{\"enabled\":true,\"asn\":65500,\"remoteAsn\":65000,\"neighbors\":[\"192.0.2.254\"],\"extraArgs\":[{}]}}}}}}", q(&format!("-v5{payload}"))));
    }
    docs.join("\n")
}

/// The rendered files of every backend, with comment lines and the hash dropped.
fn rendered_code(payload: &str, nat: bool) -> Vec<(Backend, String, String)> {
    let text = manifests(payload, nat);
    let snapshot = load_texts([("m.json", text.as_str())]).unwrap();
    let args: Vec<String> = if nat {
        vec!["--nat-gw-mode".into(), "--gateway-name=gw1".into()]
    } else {
        ARGS.iter().map(|s| s.to_string()).collect()
    };
    let resolved = resolve(
        &parse_speaker_args(&args).unwrap(),
        &Env::default(),
        &snapshot,
        &|_| Err(std::io::Error::other("none")),
    );
    let Ok(resolved) = resolved else {
        // An extraArgs payload that is not a valid flag is rejected: also inert.
        return Vec::new();
    };
    let intent = compile(&snapshot, &resolved.options, &resolved.diagnostics);
    let mut out = Vec::new();
    for backend in Backend::ALL {
        let r = render(&intent, backend, &Templates::builtin(), true).unwrap();
        if available(backend) {
            validate(&r).unwrap_or_else(|e| panic!("payload {payload:?}: {backend}: {e}"));
        }
        for f in r.files {
            let code: Vec<&str> = f
                .contents
                .lines()
                .map(|l| l.split('#').next().unwrap_or(""))
                .filter(|l| !l.trim_start().starts_with('!'))
                .collect();
            out.push((backend, f.name, code.join("\n")));
        }
    }
    out
}

#[test]
fn names_and_annotations_cannot_inject_configuration() {
    let payloads = [
        "\n}\nprotocol bgp hijack { neighbor 203.0.113.1 as 666; }\n",
        "\"; password \"x",
        "\nrouter bgp 666\n neighbor 203.0.113.1 remote-as 666\n",
        "\n[[neighbors]]\n[neighbors.config]\nneighbor-address = \"203.0.113.1\"\n",
        "'; }; { ",
        "\r\n10.0.0.0/8\n",
        "\\\n!",
    ];
    for nat in [false, true] {
        let clean = rendered_code("", nat);
        for payload in payloads {
            let evil = rendered_code(payload, nat);
            if evil.is_empty() {
                continue;
            }
            assert_eq!(
                clean, evil,
                "payload {payload:?} changed configuration (nat={nat})"
            );
            for (_, _, code) in &evil {
                assert!(
                    !code.contains("203.0.113") && !code.contains("666"),
                    "payload {payload:?} leaked: {code}"
                );
            }
        }
    }
}

#[test]
fn user_template_errors_name_the_template_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bird.conf.j2"), "router id {{ router_id }};\n{% for x in neighbors %}\n{{ x.no_such_field }}\n{% endfor %}\n").unwrap();
    let templates = Templates::load(Some(dir.path())).unwrap();
    let snapshot = load_texts([]).unwrap();
    let resolved = resolve(
        &parse_speaker_args(ARGS).unwrap(),
        &Env::default(),
        &snapshot,
        &|_| Err(std::io::Error::other("none")),
    )
    .unwrap();
    let intent = compile(&snapshot, &resolved.options, &[]);
    let err = render(&intent, Backend::Bird, &templates, true).unwrap_err();
    let RenderError::Template { name, line, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!((name.as_str(), *line), ("bird.conf.j2", Some(3)), "{err}");
    // Built-in templates for the other daemons are unaffected.
    assert!(render(&intent, Backend::Frr, &templates, true).is_ok());

    std::fs::write(dir.path().join("frr.conf.j2"), "{% if %}\n").unwrap();
    let err = Templates::load(Some(dir.path())).err().unwrap().to_string();
    assert!(err.starts_with("template frr.conf.j2, line 1:"), "{err}");
}

// ---- The commands ----

fn bgpgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bgpgen"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const EX: &[&str] = &[
    "-f",
    "examples/cluster",
    "--options",
    "examples/speaker-options.yaml",
];

#[test]
fn dry_run_prints_files_with_headers_and_redacts_the_password() {
    let out = bgpgen(
        &[
            &[
                "render",
                "--backend",
                "gobgp",
                "--dry-run",
                "--auth-password=s3cr3t-Pw",
            ][..],
            EX,
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("# --- gobgpd.toml\n"), "{stdout}");
    assert!(stdout.contains("\n# --- routes.txt\n"));
    assert!(stdout.contains("auth-password = \"<redacted>\""));
    assert!(!stdout.contains("s3cr3t-Pw"));
    let shown = bgpgen(
        &[
            &[
                "render",
                "--backend",
                "gobgp",
                "--dry-run",
                "--auth-password=s3cr3t-Pw",
                "--show-secrets",
            ][..],
            EX,
        ]
        .concat(),
    );
    assert!(text(&shown.stdout).contains("auth-password = \"s3cr3t-Pw\""));
    // One file: no header.
    let out = bgpgen(&[&["render", "--backend", "frr", "--dry-run"][..], EX].concat());
    assert!(text(&out.stdout).starts_with("! FRR bgpd configuration generated by bgpgen"));
    // BIRD: bird.conf, then its route files.
    let out = bgpgen(&[&["render", "--backend", "bird", "--dry-run"][..], EX].concat());
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("# --- bird.conf\n# BIRD 2 configuration generated by bgpgen"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n# --- bird-routes/v4.conf\n  route "),
        "{stdout}"
    );
}

#[test]
fn out_writes_atomically_with_0600_for_secrets_and_check_detects_drift() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let run = |extra: &[&str]| {
        bgpgen(&[&["render", "--backend", "frr", "--out", d][..], EX, extra].concat())
    };
    assert_eq!(run(&["--auth-password=s3cr3t-Pw"]).status.code(), Some(0));
    let conf = dir.path().join("frr.conf");
    assert_eq!(
        std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&conf)
            .unwrap()
            .contains("password s3cr3t-Pw")
    );

    // Up to date: --check exits 0 and writes nothing.
    let out = run(&["--auth-password=s3cr3t-Pw", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Stale: exit 1, a unified diff, password masked.
    let out = run(&["--auth-password=s3cr3t-Pw", "--holdtime=30s", "--check"]);
    assert_eq!(out.status.code(), Some(1));
    let diff = text(&out.stdout);
    assert!(
        diff.contains("--- a/frr.conf") && diff.contains("+ neighbor 10.32.32.254 timers 10 30"),
        "{diff}"
    );
    assert!(!diff.contains("s3cr3t-Pw"), "{diff}");
    assert!(
        !std::fs::read_to_string(&conf)
            .unwrap()
            .contains("timers 10 30"),
        "--check must not write"
    );

    // A change is written and the previous file kept as .prev; no password: 0644.
    assert_eq!(run(&["--holdtime=30s"]).status.code(), Some(0));
    assert!(
        std::fs::read_to_string(&conf)
            .unwrap()
            .contains("timers 10 30")
    );
    assert!(
        std::fs::read_to_string(dir.path().join("frr.conf.prev"))
            .unwrap()
            .contains("password s3cr3t-Pw")
    );
    assert_eq!(
        std::fs::metadata(dir.path().join("frr.conf.prev"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // Idempotent: the same input again leaves the file untouched (same inode, no new .prev).
    let before = std::fs::metadata(&conf).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(run(&["--holdtime=30s"]).status.code(), Some(0));
    assert_eq!(
        std::fs::metadata(&conf).unwrap().modified().unwrap(),
        before
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "no temp files left: {leftovers:?}");
}

#[test]
fn validate_rejects_garbage_from_a_user_template_with_exit_3() {
    for backend in Backend::ALL {
        if !available(backend) {
            skip::skip(
                "render::validate_rejects_garbage_from_a_user_template_with_exit_3",
                &format!("the {backend} checker"),
            );
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let template = match backend {
            Backend::Gobgp => "gobgpd.toml.j2",
            Backend::Frr => "frr.conf.j2",
            Backend::Bird => "bird.conf.j2",
        };
        std::fs::write(dir.path().join(template), "this is { not a config ;\n").unwrap();
        let out = bgpgen(
            &[
                &[
                    "render",
                    "--backend",
                    backend.name(),
                    "--dry-run",
                    "--validate",
                    "--templates",
                    dir.path().to_str().unwrap(),
                ][..],
                EX,
            ]
            .concat(),
        );
        assert_eq!(
            out.status.code(),
            Some(3),
            "{backend}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("rejected"),
            "{backend}: {}",
            text(&out.stderr)
        );
        let ok = bgpgen(
            &[
                &[
                    "render",
                    "--backend",
                    backend.name(),
                    "--dry-run",
                    "--validate",
                ][..],
                EX,
            ]
            .concat(),
        );
        assert_eq!(ok.status.code(), Some(0), "{backend}: {}", text(&ok.stderr));
    }
}

#[test]
fn diff_prints_route_changes_with_provenance_forecast_and_file_diff() {
    let dir = tempfile::tempdir().unwrap();
    let from = dir.path().join("from");
    let to = dir.path().join("to");
    std::fs::create_dir_all(&from).unwrap();
    std::fs::create_dir_all(&to).unwrap();
    for f in ["subnets.yaml", "pods.yaml", "services.yaml", "nodes.json"] {
        std::fs::copy(format!("examples/cluster/{f}"), from.join(f)).unwrap();
    }
    let pods = std::fs::read_to_string("examples/cluster/pods.yaml").unwrap();
    // web: sample loses its annotation, plain-0 gains one.
    let changed = pods
        .replacen("    ovn.kubernetes.io/bgp: \"true\"\nspec:\n  nodeName: node-1\n  containers:\n    - name: main\n      image: nginx:1.27\n      ports:\n        - containerPort: 80\n          protocol: TCP\nstatus:\n  phase: Running\n  podIP: 10.16.0.5", "spec:\n  nodeName: node-1\n  containers:\n    - name: main\n      image: nginx:1.27\n      ports:\n        - containerPort: 80\n          protocol: TCP\nstatus:\n  phase: Running\n  podIP: 10.16.0.5", 1);
    assert_ne!(changed, pods);
    for f in ["subnets.yaml", "services.yaml", "nodes.json"] {
        std::fs::copy(format!("examples/cluster/{f}"), to.join(f)).unwrap();
    }
    std::fs::write(to.join("pods.yaml"), changed).unwrap();
    let args = |a: &std::path::Path, b: &std::path::Path| {
        bgpgen(&[
            "diff",
            "--backend",
            "bird",
            "--from",
            a.to_str().unwrap(),
            "--to",
            b.to_str().unwrap(),
            "--options",
            "examples/speaker-options.yaml",
        ])
    };
    let same = args(&from, &from);
    assert_eq!(same.status.code(), Some(0));
    assert_eq!(text(&same.stdout), "no changes\n");
    let out = args(&from, &to);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("  - 10.16.0.5/32  Pod default/sample (cluster)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  - fd00:10:16::5/128  Pod default/sample (cluster)\n"),
        "{stdout}"
    );
    assert!(
        stdout
            .contains("Forecast for bird:\n  route add/withdraw: 2 change(s), no session impact\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-  route 10.16.0.5/32 blackhole;"),
        "{stdout}"
    );
}

// ---------------------------------------------------------------------------------------------
// What each daemon can carry (issue 12): every value kube-ovn-speaker accepts compiles; a daemon
// that cannot write it refuses at render time naming itself (password), or is adjusted with a
// warning naming it (BFD). Every rendered file goes through the daemon's own parser.

fn render_with(extra: &[&str], backend: Backend) -> Result<bgpgen::render::Rendered, RenderError> {
    let base = [
        "--neighbor-address=192.0.2.254",
        "--neighbor-ipv6-address=2001:db8::254",
        "--neighbor-as=65030",
        "--cluster-as=65000",
        "--node-name=node-1",
        "--router-id=10.0.0.11",
    ];
    let args = parse_speaker_args(base.iter().chain(extra)).unwrap();
    let snapshot = load_texts([("m.json", manifests("", false).as_str())]).unwrap();
    let (_, intent) = bgpgen::front::compiled(&snapshot, &args, None, &Env::default())
        .unwrap_or_else(|e| panic!("{extra:?} should resolve: {e}"));
    render(&intent, backend, &Templates::builtin(), true)
}

fn parses(rendered: &bgpgen::render::Rendered, what: &str) {
    if !available(rendered.backend) {
        skip::skip(
            &format!("render: {what}"),
            &format!("the {} parser", rendered.backend),
        );
        return;
    }
    if let Err(e) = validate(rendered) {
        panic!(
            "{what}: {} rejects the rendered file: {e}",
            rendered.backend
        );
    }
}

#[test]
fn passwords_are_refused_only_by_the_daemon_that_cannot_write_them() {
    // (password, carried by gobgp, frr, bird)
    let cases: &[(&str, [bool; 3])] = &[
        ("a?b", [true, true, true]),
        ("p@ss!#$%w0rd", [true, true, true]),
        ("!lead#ing", [true, true, true]),
        ("back\\slash", [true, true, true]),
        ("single'quote", [true, true, true]),
        ("double\"quote", [true, true, false]),
        ("with space", [true, false, true]),
        ("with\ttab", [true, false, true]),
        ("ünïcödé€", [true, true, true]),
    ];
    for (password, carried) in cases {
        let flag = format!("--auth-password={password}");
        for (backend, ok) in Backend::ALL.iter().zip(carried) {
            match render_with(&[&flag], *backend) {
                Ok(r) => {
                    assert!(ok, "{backend} should refuse {password:?}");
                    parses(&r, &format!("password {password:?}"));
                }
                Err(RenderError::Unsupported(m)) => {
                    assert!(!ok, "{backend} should carry {password:?}: {m}");
                    assert!(m.contains(backend.name()), "{m}");
                    assert!(m.contains("U+"), "names the character: {m}");
                    assert!(!m.contains(password), "never the password: {m}");
                }
                Err(e) => panic!("{backend}: {e}"),
            }
        }
    }
    // The kernel's TCP MD5 key limit holds for every daemon.
    let long = format!("--auth-password={}", "x".repeat(81));
    for backend in Backend::ALL {
        let e = render_with(&[&long], backend).unwrap_err().to_string();
        assert!(e.contains("80") && e.contains(backend.name()), "{e}");
    }
    // gobgpd.toml escapes what TOML needs escaped.
    let r = render_with(&["--auth-password=a\"b\\c"], Backend::Gobgp).unwrap();
    assert!(
        r.file("gobgpd.toml")
            .unwrap()
            .contains(r#"auth-password = "a\"b\\c""#),
        "{}",
        r.file("gobgpd.toml").unwrap()
    );
}

#[test]
fn bfd_values_a_daemon_cannot_carry_are_adjusted_with_a_warning_naming_it() {
    let extra = [
        "--enable-bfd",
        "--bfd-min-tx=10",
        "--bfd-min-rx=4294967",
        "--bfd-detection-multiplier=1",
    ];
    let frr = render_with(&extra, Backend::Frr).unwrap();
    let conf = frr.file("frr.conf").unwrap();
    assert!(conf.contains("bfd 2 60000 50"), "{conf}");
    let warnings: Vec<String> = frr.notes.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .all(|w| w.contains("render/frr") && w.contains("FRR"))
    );
    parses(&frr, "FRR BFD limits");
    // BIRD carries them as given.
    let bird = render_with(&extra, Backend::Bird).unwrap();
    let conf = bird.file("bird.conf").unwrap();
    assert!(
        conf.contains("min tx interval 10 ms") && conf.contains("multiplier 1;"),
        "{conf}"
    );
    assert!(bird.notes.is_empty(), "{:?}", bird.notes);
    parses(&bird, "BIRD BFD values");
}

#[test]
fn pinned_local_addresses_render_for_every_daemon() {
    let extra = [
        "--allowed-source-addresses=192.0.2.5",
        "--allowed-source-ipv6-addresses=2001:db8::5",
        "--neighbor-local-address=192.0.2.254=192.0.2.5",
        "--neighbor-local-address=2001:db8::254=2001:db8::5",
        "--node-ips=192.0.2.1,2001:db8::1",
    ];
    let expect: [(Backend, &str, &[&str]); 3] = [
        (
            Backend::Gobgp,
            "gobgpd.toml",
            &[
                "local-address = \"192.0.2.5\"",
                "local-address = \"2001:db8::5\"",
                "set-next-hop = \"192.0.2.5\"",
                "set-next-hop = \"2001:db8::5\"",
            ],
        ),
        (
            Backend::Frr,
            "frr.conf",
            &[
                "neighbor 192.0.2.254 update-source 192.0.2.5",
                "neighbor 2001:db8::254 update-source 2001:db8::5",
                " set ip next-hop 192.0.2.5",
                " set ipv6 next-hop global 2001:db8::5",
            ],
        ),
        (
            Backend::Bird,
            "bird.conf",
            &["source address 192.0.2.5;", "source address 2001:db8::5;"],
        ),
    ];
    for (backend, file, needles) in expect {
        let r = render_with(&extra, backend).unwrap();
        let text = r.file(file).unwrap();
        for n in needles {
            assert!(text.contains(n), "{backend}: {n:?} missing:\n{text}");
        }
        parses(&r, "pinned local addresses");
    }
    // Without a lookup and without --neighbor-local-address: unpinned, and said so.
    let r = render_with(&["--allowed-source-addresses=192.0.2.5"], Backend::Bird).unwrap();
    assert!(!r.file("bird.conf").unwrap().contains("source address"));
}

#[test]
fn defaulted_router_id_is_left_to_bird_and_warned_for_the_others() {
    let args = parse_speaker_args([
        "--neighbor-address=192.0.2.254",
        "--neighbor-as=65030",
        "--cluster-as=65000",
        "--node-name=node-1",
    ])
    .unwrap();
    let snapshot = load_texts([("m.json", manifests("", false).as_str())]).unwrap();
    let (_, intent) = bgpgen::front::compiled(&snapshot, &args, None, &Env::default()).unwrap();
    let bird = render(&intent, Backend::Bird, &Templates::builtin(), true).unwrap();
    assert!(
        !bird
            .file("bird.conf")
            .unwrap()
            .contains("router id 0.0.0.0")
    );
    parses(&bird, "no router id");
    let frr = render(&intent, Backend::Frr, &Templates::builtin(), true).unwrap();
    assert!(!frr.file("frr.conf").unwrap().contains("bgp router-id"));
    assert!(
        frr.notes
            .iter()
            .any(|n| n.to_string().contains("router ID 0.0.0.0"))
    );
    parses(&frr, "no router id");
}
