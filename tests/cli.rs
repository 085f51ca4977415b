//! The `bgpgen` binary end to end on the shipped examples: output, exit codes, messages.

use std::process::{Command, Output};

fn bgpgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bgpgen"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NODE_NAME")
        .env_remove("POD_IPS")
        .env_remove("POD_IP")
        .env_remove("GATEWAY_NAME")
        .output()
        .expect("bgpgen runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const EXAMPLE: &[&str] = &[
    "-f",
    "examples/cluster",
    "--options",
    "examples/speaker-options.yaml",
];

#[test]
fn compile_prints_the_intent_for_the_examples() {
    let out = bgpgen(&[&["compile"][..], EXAMPLE].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("apiVersion: bgpgen/v1\nkind: Intent\n"),
        "{stdout}"
    );
    assert!(stdout.contains("prefix: 10.17.0.0/16"));
    assert!(stdout.contains("hash: sha256:"));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("warning: Pod/default/typo-0: not announced: invalid ovn.kubernetes.io/bgp value \"ture\""), "{stderr}");
}

#[test]
fn compile_json_is_the_same_document() {
    let yaml = bgpgen(&[&["compile"][..], EXAMPLE].concat());
    let json = bgpgen(&[&["compile", "-o", "json"][..], EXAMPLE].concat());
    assert_eq!(json.status.code(), Some(0));
    let from_json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let from_yaml: serde_json::Value = serde_saphyr::from_str(&text(&yaml.stdout)).unwrap();
    assert_eq!(from_json["hash"], from_yaml["hash"]);
    assert_eq!(
        from_json["routes"].as_array().unwrap().len(),
        from_yaml["routes"].as_array().unwrap().len()
    );
}

#[test]
fn flags_override_the_options_file_and_nat_gateway_mode_uses_the_gateway_spec() {
    let out = bgpgen(&[
        "compile",
        "-f",
        "examples/cluster",
        "--options",
        "examples/nat-gateway-options.yaml",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("mode: nat-gateway"));
    assert!(stdout.contains("localAs: 65500"));
    assert!(stdout.contains("holdTime: 60"));
    assert!(stdout.contains("password: <redacted>"));
    assert!(!stdout.contains("password123"));
    assert!(stdout.contains("prefix: 172.20.0.10/32"));
    assert!(
        !stdout.contains("172.20.0.12/32"),
        "not-ready EIP must not be announced"
    );
    let shown = bgpgen(&[
        "compile",
        "-f",
        "examples/cluster",
        "--options",
        "examples/nat-gateway-options.yaml",
        "--show-secrets",
    ]);
    assert!(text(&shown.stdout).contains("password: password123"));
}

#[test]
fn kube_ovn_speaker_arguments_are_accepted_unchanged() {
    let out = bgpgen(&[
        "compile",
        "-f",
        "examples/cluster",
        "--neighbor-address=10.32.32.252,10.32.32.253",
        "--neighbor-ipv6-address=2409:AB00:AB00:2000::AFB:8AFC,2409:AB00:AB00:2000::AFB:8AFD",
        "--neighbor-as=65030",
        "--cluster-as=65000",
        "--node-name=node-1",
        "--router-id=10.0.0.11",
        "--logtostderr=false",
        "--alsologtostderr=true",
        "--log_file=/var/log/kube-ovn/kube-ovn-speaker.log",
        "--log_file_max_size=0",
        "-v5",
        "--enable-metrics=true",
        "--graceful-restart",
        "--holdtime=1m30s",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).matches("remoteAs: 65030").count(), 4);
}

#[test]
fn explain_answers_for_prefix_ip_and_object() {
    let out = bgpgen(&[&["explain"][..], EXAMPLE, &["10.17.0.0/16"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "10.17.0.0/16 (ipv4-unicast): announced, next hop self\n  Subnet bgp-cluster: announced, policy cluster (annotation ovn.kubernetes.io/bgp=true), next hop self\n  Pod shop/shop-0 (10.17.0.2/32 inside 10.17.0.0/16): announced, policy cluster (inherited from Subnet/bgp-cluster annotation ovn.kubernetes.io/bgp=true), next hop self\n  Pod shop/shop-1 (10.17.0.3/32 inside 10.17.0.0/16): announced, policy cluster (inherited from Subnet/bgp-cluster annotation ovn.kubernetes.io/bgp=true), next hop self\n"
    );
    let out = bgpgen(&[&["explain"][..], EXAMPLE, &["10.16.0.11"]].concat());
    assert_eq!(out.status.code(), Some(1), "not announced");
    assert_eq!(
        text(&out.stdout),
        "10.16.0.11/32 (ipv4-unicast): not announced\n  Pod default/cache-0: not announced: policy local and the pod runs on node node-3, not on this speaker's node node-1\n  Subnet ovn-default (10.16.0.0/16 covers 10.16.0.11): not announced: no ovn.kubernetes.io/bgp annotation\n"
    );
    let out = bgpgen(&[&["explain"][..], EXAMPLE, &["svc/default/frontend"]].concat());
    assert_eq!(
        text(&out.stdout),
        "Service default/frontend:\n  10.96.10.10/32: announced, policy cluster (annotation ovn.kubernetes.io/bgp=true), next hop self\n  fd00:10:96::a/128: announced, policy cluster (annotation ovn.kubernetes.io/bgp=true), next hop self\n"
    );
}

#[test]
fn explain_unknown_object_and_bad_query_exit_2() {
    let out = bgpgen(&[&["explain"][..], EXAMPLE, &["pod/default/nope"]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("error: Pod/default/nope is not in the input"));
    let out = bgpgen(&[&["explain"][..], EXAMPLE, &["pod/nope"]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("use pod/NAMESPACE/NAME"),
        "{}",
        text(&out.stderr)
    );
    let out = bgpgen(&[&["explain"][..], EXAMPLE, &["what?"]].concat());
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_input_exits_2_with_a_message_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.yaml");
    std::fs::write(&bad, "kind: Pod\nmetadata:\n  name: [\n").unwrap();
    let bad = bad.to_str().unwrap();
    let out = bgpgen(&[
        "compile",
        "-f",
        bad,
        "--options",
        "examples/speaker-options.yaml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with(&format!("error: {bad}:3:9: not valid YAML:")),
        "{}",
        text(&out.stderr)
    );

    let cases: &[(&[&str], &str)] = &[
        (
            &["--holdtime=1s"],
            "the bgp holdtime must be in the range 3s to 65536s",
        ),
        (
            &["--ebgp-multihop=0"],
            "the bgp MultihopTtl must be in the range 1 to 255",
        ),
        (
            &["--neighbor-address=2001:db8::1"],
            "is not an IPv4 address",
        ),
        (
            &["--auth-password=x", "--auth-password-file=/nonexistent"],
            "mutually exclusive",
        ),
        (&["--cluster-as=banana"], "is not an AS number"),
        (&["--no-such-flag"], "unexpected argument '--no-such-flag'"),
    ];
    for (extra, message) in cases {
        let out = bgpgen(&[&["compile"][..], EXAMPLE, extra].concat());
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        assert!(
            text(&out.stderr).contains(message),
            "{extra:?}: {}",
            text(&out.stderr)
        );
    }
    let out = bgpgen(&["compile", "-f", "examples/cluster"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("missing required flags: at least one of --neighbor-address")
    );
}

#[test]
fn stdin_is_read_with_dash() {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_bgpgen"))
        .args([
            "compile",
            "-f",
            "-",
            "--neighbor-address=10.0.0.1",
            "--neighbor-as=1",
            "--cluster-as=2",
            "--node-name=n",
            "--router-id=1.1.1.1",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"apiVersion: kubeovn.io/v1\nkind: Subnet\nmetadata:\n  name: s\n  annotations: {ovn.kubernetes.io/bgp: \"true\"}\nspec: {cidrBlock: 10.16.0.0/16}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("prefix: 10.16.0.0/16"));
}

#[test]
fn help_explains_the_commands() {
    let out = bgpgen(&["compile", "--help"]);
    let help = text(&out.stdout);
    assert!(help.contains("--neighbor-address"));
    assert!(help.contains("EXAMPLES:"));
    assert!(
        !help.contains("--log_file"),
        "ignored kube-ovn flags stay hidden"
    );
}

#[test]
fn readme_shows_the_current_rendering_of_the_example() {
    // The README's "The example, rendered" section is reviewed documentation: it must match what
    // the binary prints today (regenerate it when templates change).
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for backend in ["gobgp", "frr", "bird"] {
        let out = bgpgen(&[&["render", "--backend", backend, "--dry-run"][..], EXAMPLE].concat());
        assert_eq!(out.status.code(), Some(0));
        let rendered = text(&out.stdout);
        assert!(
            readme.contains(&rendered),
            "README.md does not show the current `render --backend {backend} --dry-run` output of the example"
        );
    }
}

// ---- issue 14: operator experience ----

fn json(b: &[u8]) -> serde_json::Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(b)))
}

#[test]
fn explain_answers_for_covered_and_covering_prefixes_with_exit_codes() {
    // A /24 with announced pods inside and a Subnet covering it.
    let out = bgpgen(&[&["explain"][..], EXAMPLE, &["10.16.0.0/24"]].concat());
    assert_eq!(out.status.code(), Some(1), "not announced as a whole");
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(
            "10.16.0.0/24 (ipv4-unicast): not announced itself; 3 announced routes inside it\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "  Pod default/sample (10.16.0.5/32 inside 10.16.0.0/24): announced, policy cluster"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("  Subnet ovn-default (10.16.0.0/16 covers 10.16.0.0/24): not announced: no ovn.kubernetes.io/bgp annotation\n"), "{stdout}");
    // An address inside an announced subnet: covered, exit 0.
    let out = bgpgen(&[&["explain"][..], EXAMPLE, &["10.17.0.9"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).starts_with(
        "10.17.0.9/32 (ipv4-unicast): not announced itself; inside announced 10.17.0.0/16\n"
    ));
    // Announced exactly: 0; an object with every address announced: 0; not: 1.
    for (query, code) in [
        ("10.16.0.5", 0),
        ("pod/default/sample", 0),
        ("pod/default/plain-0", 1),
        ("node/node-1", 0),
        ("node/node-2", 1),
        ("10.99.0.0/16", 1),
    ] {
        let out = bgpgen(&[&["explain"][..], EXAMPLE, &[query]].concat());
        assert_eq!(
            out.status.code(),
            Some(code),
            "{query}: {}",
            text(&out.stdout)
        );
        assert!(
            text(&out.stderr).lines().all(|l| !l.starts_with("error")),
            "{query}"
        );
    }
    let out = bgpgen(&[&["explain"][..], EXAMPLE, &["nonsense"]].concat());
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn explain_json_is_the_documented_document() {
    let out = bgpgen(&[&["explain", "-o", "json"][..], EXAMPLE, &["10.16.0.0/24"]].concat());
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out.stdout);
    assert_eq!(v["apiVersion"], "bgpgen/v1");
    assert_eq!(v["kind"], "Explanation");
    assert_eq!(v["query"], "10.16.0.0/24");
    assert_eq!(v["state"], "partial");
    assert!(v["intentHash"].as_str().unwrap().starts_with("sha256:"));
    let p = &v["prefix"];
    assert_eq!(p["prefix"], "10.16.0.0/24");
    assert_eq!(p["family"], "ipv4-unicast");
    assert_eq!(p["announcedInside"], 3);
    assert!(p.get("route").is_none());
    let evidence = p["evidence"].as_array().unwrap();
    let sample = evidence
        .iter()
        .find(|e| e["object"]["name"] == "sample")
        .unwrap();
    assert_eq!(sample["object"]["kind"], "Pod");
    assert_eq!(sample["object"]["namespace"], "default");
    assert_eq!(sample["prefix"], "10.16.0.5/32");
    assert_eq!(sample["relation"], "inside");
    assert_eq!(sample["state"], "announced");
    assert_eq!(sample["policy"], "cluster");
    assert_eq!(sample["nextHop"], "self");
    let subnet = evidence.last().unwrap();
    assert_eq!(subnet["relation"], "covers");
    assert_eq!(subnet["state"], "not-announced");
    assert_eq!(subnet["reason"], "no ovn.kubernetes.io/bgp annotation");

    let out = bgpgen(
        &[
            &["explain", "-o", "json"][..],
            EXAMPLE,
            &["pod/default/sample"],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out.stdout);
    assert_eq!(v["state"], "announced");
    assert_eq!(v["object"]["object"]["name"], "sample");
    assert_eq!(v["object"]["evidence"].as_array().unwrap().len(), 2);

    // kubectl's table formats are refused, saying which formats there are.
    let out = bgpgen(&[&["explain", "-o", "wide"][..], EXAMPLE, &["10.16.0.5"]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not a table; its formats are text, json, yaml"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn explain_from_an_unreachable_sidecar_exits_3() {
    // A port nothing listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let out = bgpgen(&["explain", "--from-sidecar", &addr, "10.16.0.5"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&addr), "{}", text(&out.stderr));
    let out = bgpgen(&["explain", "--from-sidecar", "nowhere", "10.16.0.5"]);
    assert_eq!(out.status.code(), Some(2));
    // Manifests and a sidecar are two answers to choose from, not to mix.
    let out = bgpgen(
        &[
            &["explain", "--from-sidecar", &addr][..],
            EXAMPLE,
            &["10.16.0.5"],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(2));
}

const CHANGE: &[&str] = &[
    "--from",
    "examples/cluster",
    "--to",
    "examples/cluster",
    "--to",
    "examples/change/pods.yaml",
    "--options",
    "examples/speaker-options.yaml",
];

#[test]
fn diff_takes_options_per_side_and_lists_every_kind_of_change() {
    let out = bgpgen(
        &[
            &["diff", "--backend", "bird"][..],
            CHANGE,
            &["--to-options", "examples/change/speaker-options.yaml"],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("Route changes:\n  + 10.16.0.30/32  Pod default/web-0 (cluster)\n  + fd00:10:16::1e/128  Pod default/web-0 (cluster)\n\nSetting changes:\n  bgp.holdTime: 90 -> 30\n  bgp.keepalive: 30 -> 10\n\nDiagnostic changes:\n  + warning: Pod/default/web-1: not announced: invalid ovn.kubernetes.io/bgp value \"yes please\""),
        "{stdout}"
    );
    assert!(stdout.contains("\nForecast for bird:\n  session reset: 10.32.32.254, 2409:ab00:ab00:2000::afb:8afe (timers changed)\n  route add/withdraw: 2 change(s), no session impact\n"), "{stdout}");
    // Each warning once, with the side(s) that have it.
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("Pod/default/typo-0").count(), 1, "{stderr}");
    assert!(
        stderr.contains("warning [from, to]: Pod/default/typo-0:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning [to]: Pod/default/web-1:"),
        "{stderr}"
    );
    // --from-options alone: the same options change seen the other way round.
    let out = bgpgen(&[
        "diff",
        "--backend",
        "frr",
        "--from",
        "examples/cluster",
        "--to",
        "examples/cluster",
        "--from-options",
        "examples/change/speaker-options.yaml",
        "--to-options",
        "examples/speaker-options.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("  bgp.holdTime: 30 -> 90\n"));
    assert!(text(&out.stdout).contains("Route changes:\n  (none)\n"));
}

#[test]
fn a_change_that_only_adds_a_warning_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let only_typo = dir.path().join("typo.yaml");
    let pods = std::fs::read_to_string("examples/change/pods.yaml").unwrap();
    let web1 = &pods[pods.rfind("---").unwrap()..];
    std::fs::write(&only_typo, web1).unwrap();
    let out = bgpgen(&[
        "diff",
        "--backend",
        "gobgp",
        "--from",
        "examples/cluster",
        "--to",
        "examples/cluster",
        "--to",
        only_typo.to_str().unwrap(),
        "--options",
        "examples/speaker-options.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout,
        "Route changes:\n  (none)\n\nDiagnostic changes:\n  + warning: Pod/default/web-1: not announced: invalid ovn.kubernetes.io/bgp value \"yes please\" (use true, yes, cluster or local)\n\nForecast for gobgp:\n  no-op\n\n--- a/routes.txt\n+++ b/routes.txt\n@@ -1,4 +1,4 @@\n-# Paths bgpgen announces through gobgpd's API (intent sha256:d1f3ca685936e58586b0f6c73fc25d17c01e7435468372f9c66ae71a05fa7629).\n".to_string() + &stdout[stdout.find("+# Paths").unwrap_or(0)..]
    );
}

#[test]
fn diff_json_is_the_documented_document() {
    let out = bgpgen(
        &[
            &["diff", "--backend", "frr", "-o", "json"][..],
            CHANGE,
            &["--to-options", "examples/change/speaker-options.yaml"],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out.stdout);
    assert_eq!(v["apiVersion"], "bgpgen/v1");
    assert_eq!(v["kind"], "Diff");
    assert_eq!(v["backend"], "frr");
    assert_eq!(v["changed"], true);
    assert_eq!(v["from"]["announced"], 17);
    assert_eq!(v["to"]["announced"], 19);
    let r = &v["routes"][0];
    assert_eq!(r["change"], "add");
    assert_eq!(r["prefix"], "10.16.0.30/32");
    assert_eq!(r["family"], "ipv4-unicast");
    assert!(r["from"].is_null());
    assert_eq!(r["to"]["nextHop"], "self");
    assert_eq!(r["to"]["sources"][0]["name"], "web-0");
    assert_eq!(v["settings"][0]["path"], "bgp.holdTime");
    assert_eq!(v["settings"][0]["from"], 90);
    assert_eq!(v["settings"][0]["to"], 30);
    let d = &v["diagnostics"][0];
    assert_eq!(d["change"], "added");
    assert_eq!(d["level"], "warning");
    assert_eq!(d["object"], "Pod/default/web-1");
    let kinds: Vec<&str> = v["forecast"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["impact"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["session-reset", "route-change"]);
    assert_eq!(v["forecast"][0]["neighbors"].as_array().unwrap().len(), 2);
    assert_eq!(v["files"][0]["name"], "frr.conf");
    assert!(
        v["files"][0]["diff"]
            .as_str()
            .unwrap()
            .starts_with("--- a/frr.conf\n")
    );
    // The same inputs: changed false, exit 0.
    let out = bgpgen(&[
        "diff",
        "--backend",
        "frr",
        "-o",
        "json",
        "--from",
        "examples/cluster",
        "--to",
        "examples/cluster",
        "--options",
        "examples/speaker-options.yaml",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out.stdout)["changed"], false);
}

#[test]
fn quiet_leaves_only_errors_on_stderr() {
    let out = bgpgen(&[&["compile", "-q"][..], EXAMPLE].concat());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stderr), "");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = bgpgen(
        &[
            &["-q", "render", "--backend", "bird", "--out", d][..],
            EXAMPLE,
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stderr), "");
    let out = bgpgen(&["compile", "-q", "-f", "examples/cluster"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("error: "));
}

#[test]
fn render_says_what_it_did_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("out");
    let d = d.to_str().unwrap();
    let run =
        |extra: &[&str]| bgpgen(&[&["render", "--backend", "gobgp"][..], EXAMPLE, extra].concat());
    let out = run(&["--out", d]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty(), "stdout is for documents");
    assert!(
        text(&out.stderr).ends_with(&format!("{d}: wrote gobgpd.toml, routes.txt\n")),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["--out", d]);
    assert!(
        text(&out.stderr).ends_with(&format!(
            "{d}: gobgpd.toml, routes.txt unchanged, nothing written\n"
        )),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["--out", d, "--check"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).ends_with(&format!("{d}: up to date (gobgpd.toml, routes.txt)\n")),
        "{}",
        text(&out.stderr)
    );
    // --validate with --dry-run: the summary stays off stdout, which holds the files.
    let out = run(&["--dry-run", "--validate"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("# --- gobgpd.toml\n"));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("gobgpd.toml, routes.txt: accepted by gobgpd -d\n")
            || stderr.contains("--validate skipped: "),
        "{stderr}"
    );
}

#[test]
fn completions_and_man_pages_come_from_the_clap_definitions() {
    for (shell, marker) in [
        ("bash", "_bgpgen()"),
        ("zsh", "#compdef bgpgen"),
        ("fish", "complete -c bgpgen"),
    ] {
        let out = bgpgen(&["completion", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        for word in ["compile", "explain", "from-options", "log-format"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = bgpgen(&["completion", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    let dir = tempfile::tempdir().unwrap();
    let out = bgpgen(&["man", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for page in [
        "bgpgen.1",
        "bgpgen-compile.1",
        "bgpgen-diff.1",
        "bgpgen-explain.1",
        "bgpgen-run.1",
    ] {
        let roff = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(roff.starts_with(".ie \\n(.g .ds Aq"), "{page} is roff");
    }
    let diff = std::fs::read_to_string(dir.path().join("bgpgen-diff.1")).unwrap();
    assert!(diff.contains("to\\-options"), "{diff}");
    // Hidden commands get no page.
    assert!(!dir.path().join("bgpgen-synth.1").exists());
}

#[test]
fn kubeconfig_is_shown_where_it_applies_and_accepted_everywhere() {
    for command in ["compile", "explain", "render", "diff", "apply"] {
        let help = text(&bgpgen(&[command, "--help"]).stdout);
        assert!(
            !help.contains("--kubeconfig"),
            "{command} --help lists --kubeconfig"
        );
    }
    let help = text(&bgpgen(&["run", "--help"]).stdout);
    assert!(help.contains("--kubeconfig <FILE>"), "{help}");
    // kube-ovn-speaker passes it: compile still accepts it.
    let out = bgpgen(&[&["compile", "--kubeconfig", "/nonexistent"][..], EXAMPLE].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn input_errors_cite_file_line_and_column_in_the_right_language() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.to_str().unwrap().to_string()
    };
    let cases = [
        (
            write("a.json", "{\"kind\": \"Pod\",, }"),
            ":1:16: not valid JSON: key must be a string",
        ),
        (
            write("b.yaml", "kind: Pod\nkind: Service\n"),
            ":2:1: not valid YAML: key \"kind\" appears twice in one mapping",
        ),
    ];
    for (file, expected) in &cases {
        let out = bgpgen(&[
            "compile",
            "-f",
            file,
            "--options",
            "examples/speaker-options.yaml",
        ]);
        assert_eq!(out.status.code(), Some(2));
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with(&format!("error: {file}{expected}")),
            "{stderr}"
        );
        for leak in [
            "DuplicateKeyPolicy",
            "<input>",
            "not valid YAML: invalid JSON",
        ] {
            assert!(!stderr.contains(leak), "{stderr}");
        }
    }
    let typo = write("o.yaml", "neighbour-address: 10.0.0.1\ncluster-as: 65000\n");
    let out = bgpgen(&["compile", "-f", "examples/cluster", "--options", &typo]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "error: options file {typo}: unknown option `neighbour-address` (did you mean `neighbor-address`?)\n"
        )
    );
    let dup = write("d.yaml", "cluster-as: 65000\ncluster-as: 1\n");
    let out = bgpgen(&["compile", "-f", "examples/cluster", "--options", &dup]);
    assert!(
        text(&out.stderr).starts_with(&format!(
            "error: options file {dup}:2:1: key \"cluster-as\" appears twice"
        )),
        "{}",
        text(&out.stderr)
    );
}

/// The EXAMPLES of every `--help`: not wrapped at 80 columns, no line continued into nothing,
/// and every one that uses examples/ (and needs no daemon) runs.
#[test]
fn help_examples_fit_80_columns_and_run() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples"),
        dir.path().join("examples"),
    )
    .unwrap();
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_bgpgen"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for command in [
        "compile",
        "explain",
        "render",
        "diff",
        "apply",
        "run",
        "completion",
    ] {
        let help = |columns: &str| {
            let out = Command::new(env!("CARGO_BIN_EXE_bgpgen"))
                .args([command, "--help"])
                .env("COLUMNS", columns)
                .output()
                .unwrap();
            let help = text(&out.stdout);
            help[help
                .find("EXAMPLES:")
                .unwrap_or_else(|| panic!("{command}: no EXAMPLES"))..]
                .to_string()
        };
        let (narrow, wide) = (help("80"), help("1000"));
        assert_eq!(narrow, wide, "{command}: EXAMPLES wrap at 80 columns");
        let lines: Vec<&str> = narrow.lines().skip(1).collect();
        let mut joined = Vec::new();
        let mut current = String::new();
        for (i, line) in lines.iter().enumerate() {
            assert!(line.len() <= 80, "{command}: {line}");
            let body = line.trim();
            if let Some(head) = body.strip_suffix('\\') {
                assert!(
                    lines
                        .get(i + 1)
                        .is_some_and(|next| next.starts_with("      ")),
                    "{command}: dangling \\ in {line:?}"
                );
                current.push_str(head);
            } else {
                current.push_str(body);
                joined.push(std::mem::take(&mut current));
            }
        }
        for example in joined {
            if !example.starts_with("bgpgen ") || !example.contains("examples/") {
                continue;
            }
            if example.starts_with("bgpgen apply") || example.starts_with("bgpgen run") {
                continue; // need a running daemon (tests/apply.rs, tests/sidecar.rs)
            }
            let out = Command::new("sh")
                .args(["-c", &example])
                .current_dir(dir.path())
                .env("PATH", &path)
                .env_remove("NODE_NAME")
                .env_remove("POD_IPS")
                .env_remove("POD_IP")
                .output()
                .unwrap();
            // diff and explain say "different" / "not announced" with 1, by design.
            let allowed: &[i32] = if example.starts_with("bgpgen diff")
                || example.starts_with("bgpgen explain")
                || example.contains("--check")
            {
                &[0, 1]
            } else {
                &[0]
            };
            let code = out.status.code().unwrap_or(-1);
            assert!(
                allowed.contains(&code),
                "{command} example failed ({code}): {example}\n{}",
                text(&out.stderr)
            );
            assert!(
                !out.stdout.is_empty() || example.contains("--out"),
                "{example}"
            );
        }
    }
}

#[path = "common/skip.rs"]
#[allow(dead_code)]
mod skip;

/// A GET on loopback, the body of a 200 answer.
fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    (head.split_whitespace().nth(1) == Some("200")).then(|| body.to_string())
}

/// `explain --from-sidecar` against a real sidecar spawning gobgpd (active mode: it listens on
/// no BGP port; its only neighbor is on loopback, where nothing answers), and `/intent?format=json`.
#[test]
fn explain_asks_a_running_sidecar() {
    if Command::new("gobgpd").arg("--version").output().is_err() {
        skip::skip("cli::explain_asks_a_running_sidecar", "gobgpd");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let config = dir.path().join("gobgpd.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bgpgen"))
        .args([
            "run",
            "--backend",
            "gobgp",
            "--spawn",
            "--manifests",
            "examples/cluster",
            "--neighbor-address=127.0.0.2",
            "--neighbor-as=65030",
            "--cluster-as=65000",
            "--node-name=node-1",
            "--router-id=10.0.0.11",
            "--announce-cluster-ip",
            // The IPv6 routes too, over the one IPv4 session.
            "--extended-nexthop",
            "--config-file",
            config.to_str().unwrap(),
            "--metrics-addr",
            &addr,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NODE_NAME")
        .env_remove("POD_IPS")
        .env_remove("POD_IP")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while http_get(&addr, "/readyz").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the sidecar was not ready within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let intent = http_get(&addr, "/intent?format=json").unwrap();
    let v: serde_json::Value = serde_json::from_str(&intent).unwrap();
    assert_eq!(v["kind"], "Intent");
    assert!(v.get("stale").is_none(), "ready: not stale");
    let ask = |query: &str, extra: &[&str]| {
        bgpgen(&[&["explain", "--from-sidecar", &addr, query][..], extra].concat())
    };
    let out = ask("pod/default/sample", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "Pod default/sample:\n  10.16.0.5/32: announced, policy cluster, next hop self\n  fd00:10:16::5/128: announced, policy cluster, next hop self\n"
    );
    let out = ask("10.16.0.0/24", &["-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out.stdout);
    assert_eq!(v["basis"], "intent");
    assert_eq!(v["state"], "partial");
    assert_eq!(v["prefix"]["announcedInside"], 3);
    // What only the rules know is said, not guessed: a typo'd pod has its diagnostic.
    let out = ask("pod/default/typo-0", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("invalid ovn.kubernetes.io/bgp value \"ture\""),
        "{}",
        text(&out.stdout)
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// The sidecar's log lines for `args` (a GoBGP sidecar whose daemon never answers, checked
/// every 100 ms), after about two seconds.
fn sidecar_log(args: &[&str]) -> String {
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gobgpd.toml");
    let child = Command::new(env!("CARGO_BIN_EXE_bgpgen"))
        .args([
            "run",
            "--backend",
            "gobgp",
            "--manifests",
            "examples/cluster",
        ])
        .args(&EXAMPLE[2..])
        .args([
            "--config-file",
            config.to_str().unwrap(),
            "--gobgp-api",
            &format!("127.0.0.1:{}", free()),
            "--metrics-addr",
            &format!("127.0.0.1:{}", free()),
            "--check-interval",
            "100ms",
        ])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    // SIGTERM: bgpgen exits (attach mode: nothing to withdraw) and its stderr ends.
    // SAFETY: kill(2) on the pid of our own child, which has not been waited for yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    text(&out.stderr)
}

#[test]
fn sidecar_logs_are_one_line_per_event_in_text_and_json() {
    let log = sidecar_log(&["--log-format", "json"]);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|v| v["message"] == "bgpgen sidecar started"),
        "{log}"
    );
    let failures: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| {
            v["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("apply failed")
        })
        .collect();
    // Retried on every check, logged at error once; nothing applied yet, so no "last good".
    assert_eq!(failures.len(), 1, "{log}");
    assert_eq!(failures[0]["level"], "ERROR");
    assert!(
        failures[0]["message"]
            .as_str()
            .unwrap()
            .contains("nothing has been applied yet")
    );
    assert!(
        failures[0]["error"]
            .as_str()
            .unwrap()
            .contains("gobgpd is not reachable")
    );

    // Text: logfmt, a value with spaces quoted; kube-ovn's -v 3 is debug, so the repeats show.
    let log = sidecar_log(&["-v", "3"]);
    let error = log
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("apply failed"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        error.contains(" error=\"gobgpd is not reachable: "),
        "{error}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("DEBUG") && l.contains("(again)")),
        "{log}"
    );
    // --log-level wins over -v; -q leaves errors only.
    let log = sidecar_log(&["-v", "3", "--log-level", "warn"]);
    assert!(!log.contains(" INFO ") && !log.contains("DEBUG"), "{log}");
    assert!(log.contains("ERROR"), "{log}");
    let log = sidecar_log(&["-q"]);
    assert!(log.lines().all(|l| l.contains("ERROR")), "{log}");
    // A bad level is refused at start.
    let out = bgpgen(
        &[
            &[
                "run",
                "--backend",
                "bird",
                "--manifests",
                "examples/cluster",
            ][..],
            &EXAMPLE[2..],
            &["-v", "x"],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// `bgpgen status` against a sidecar whose daemon never answers (nothing applied: every format
/// says so, exit 1), against no sidecar (exit 3), and with a format it does not have (exit 2).
#[test]
fn status_reads_the_sidecar_and_says_when_nothing_is_in_force() {
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let nobody = format!("127.0.0.1:{}", free());
    let out = bgpgen(&["status", "--metrics-addr", &nobody]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&nobody), "{}", text(&out.stderr));
    let out = bgpgen(&["status", "--metrics-addr", "nowhere"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = bgpgen(&["status", "-o", "wide"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("table, json, yaml"),
        "{}",
        text(&out.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gobgpd.toml");
    let addr = format!("127.0.0.1:{}", free());
    let mut child = Command::new(env!("CARGO_BIN_EXE_bgpgen"))
        .args([
            "run",
            "--backend",
            "gobgp",
            "--manifests",
            "examples/cluster",
        ])
        .args(&EXAMPLE[2..])
        .args([
            "--config-file",
            config.to_str().unwrap(),
            "--gobgp-api",
            &format!("127.0.0.1:{}", free()),
            "--metrics-addr",
            &addr,
            "--check-interval",
            "100ms",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NODE_NAME")
        .env_remove("POD_IPS")
        .env_remove("POD_IP")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let doc = loop {
        let out = bgpgen(&["status", "--metrics-addr", &addr, "-o", "json"]);
        if out.status.code() == Some(1) {
            let v = json(&out.stdout);
            if v["lastApply"]["result"] == "failed" {
                break v;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no failed apply in bgpgen status within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let table = bgpgen(&["status", "--metrics-addr", &addr]);
    let yaml = bgpgen(&["status", "--metrics-addr", &addr, "-o", "yaml"]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(table.status.code(), Some(1));
    let table = text(&table.stdout);
    assert!(
        table.starts_with("Speaker - (gobgp), AS -, intent -, NOT READY\nLast apply: failed at "),
        "{table}"
    );
    assert!(table.contains("Stale: first_apply: "), "{table}");
    assert!(table.contains("(no neighbors)"), "{table}");
    assert_eq!(yaml.status.code(), Some(1));
    assert!(
        text(&yaml.stdout).contains("kind: Status"),
        "{}",
        text(&yaml.stdout)
    );
    assert_eq!(doc["apiVersion"], "bgpgen/v1");
    assert_eq!(doc["kind"], "Status");
    assert_eq!(doc["backend"], "gobgp");
    assert_eq!(doc["ready"], false);
    assert_eq!(
        doc["intentHash"],
        serde_json::Value::Null,
        "nothing in force"
    );
    assert!(doc["wantedHash"].is_string(), "{doc}");
    assert!(
        doc["stale"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r["reason"] == "first_apply")),
        "{doc}"
    );
    assert!(doc["peers"].as_array().is_some_and(Vec::is_empty), "{doc}");
}

#[test]
fn bird_route_files_are_written_checked_and_stale_ones_removed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("out");
    let ds = d.to_str().unwrap();
    let run = |extra: &[&str]| {
        bgpgen(
            &[
                &["render", "--backend", "bird", "--auth-password", "s3cret"][..],
                EXAMPLE,
                extra,
            ]
            .concat(),
        )
    };
    let out = run(&["--out", ds]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mode = |p: &str| std::fs::metadata(d.join(p)).unwrap().permissions().mode() & 0o777;
    // The password is in bird.conf only; the route files are public.
    assert_eq!(mode("bird.conf"), 0o600);
    assert_eq!(mode("bird-routes/v4.conf"), 0o644);
    assert_eq!(mode("bird-routes"), 0o750);
    let v4 = std::fs::read_to_string(d.join("bird-routes/v4.conf")).unwrap();
    assert!(v4.contains("  route 10.16.0.5/32 blackhole;  # Pod default/sample (cluster)\n"));
    let conf = std::fs::read_to_string(d.join("bird.conf")).unwrap();
    assert!(conf.contains("include \"bird-routes/v4*.conf\";"), "{conf}");
    assert!(!conf.contains("route 10.16.0.5/32"), "{conf}");

    // A route file the render does not produce would be included by BIRD's glob: `--check`
    // reports it, `--out` removes it.
    std::fs::write(
        d.join("bird-routes/v4-1.conf"),
        "  route 10.99.0.1/32 blackhole;\n",
    )
    .unwrap();
    let out = run(&["--out", ds, "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("-  route 10.99.0.1/32 blackhole;"),
        "{}",
        text(&out.stdout)
    );
    let out = run(&["--out", ds]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("removed stale bird-routes/v4-1.conf"),
        "{}",
        text(&out.stderr)
    );
    assert!(!d.join("bird-routes/v4-1.conf").exists());
    let out = run(&["--out", ds, "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // BIRD's own parser reads the directory as written (includes relative to bird.conf, from
    // any working directory).
    let bird = std::path::Path::new("/usr/sbin/bird");
    if bird.exists() {
        let out = std::process::Command::new(bird)
            .args(["-p", "-c"])
            .arg(d.join("bird.conf"))
            .current_dir("/")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    } else {
        assert!(
            std::env::var("BGPGEN_REQUIRE_DAEMONS").as_deref() != Ok("1"),
            "bird is not installed"
        );
        eprintln!("SKIP: bird not installed, the rendered directory is not parsed");
    }

    // A link in place of the directory is never written through.
    let victim = dir.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::remove_dir_all(d.join("bird-routes")).unwrap();
    std::os::unix::fs::symlink(&victim, d.join("bird-routes")).unwrap();
    let out = run(&["--out", ds]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("symbolic link")
            || text(&out.stderr).contains("not a directory"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
}
