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
