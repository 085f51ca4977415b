//! The generative suite of issue 11: arbitrary objects, names, annotation values, addresses and
//! option strings through parse (YAML and JSON), compile, render and the daemons' own checkers,
//! asserting for every case:
//!
//! - no panic, and no hang: every case runs on a thread with a deadline;
//! - every rendered configuration is accepted by its daemon's checker (`gobgpd -d`, `bird -p`,
//!   `vtysh -C` + `bgpd -C`), on the first cases that announce something (the checkers cost a
//!   process each, so the count is bounded: [`CHECKED_CASES`]);
//! - the same input with clean names renders the same lines: a name or annotation can change a
//!   comment, never add, remove or change a configuration line;
//! - no secret in any output: the intent (YAML and JSON, without --show-secrets), the diagnostics,
//!   the rendered files without secrets, every error message and what /readyz would serve;
//! - every message built from the input is escaped (no control or bidi character) and bounded.
//!
//! The number of cases of each property is in README.md ("Reliability and security").

#[path = "common/skip.rs"]
#[allow(dead_code)]
mod skip;

use std::sync::mpsc;
use std::time::Duration;

use bgpgen::compile::compile;
use bgpgen::daemon::validate::{ValidateError, validate};
use bgpgen::options::{Env, SpeakerArgs, parse_speaker_args, resolve};
use bgpgen::render::{Backend, Templates, render};
use bgpgen::source::manifests::load_texts;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Cases of the object property, of the options property and of the raw-text property (the last
/// two share a configuration block, hence one count).
const OBJECT_CASES: u32 = 512;
const OPTION_CASES: u32 = 512;
const RAW_CASES: u32 = OPTION_CASES;
/// How many announcing cases go through the daemons' checkers, per backend.
const CHECKED_CASES: usize = 64;
/// A case that takes longer than this is a hang.
const DEADLINE: Duration = Duration::from_secs(60);

/// The password every case uses: long and unlikely, so that finding it anywhere is a leak.
const PASSWORD: &str = "Zq7-pw-leak-canary";

/// Runs `f` on a thread; a panic is re-raised, a run past [`DEADLINE`] fails the case.
fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(v) => {
            let _ = handle.join();
            v
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => panic!("{what}: no result"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: not done within {DEADLINE:?} (a hang)")
        }
    }
}

/// Text a hostile user would put in a name or a value.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,24}",
        "[a-z0-9\\n\\r\\t\\u{1b}\\u{202e}\\u{2066}\\u{200b}\\u{feff}#!;{}\\[\\]\"'\\\\ /.:-]{0,24}",
        Just("web\n  no-op\n\nroute changes: none".to_string()),
        Just("x\u{1b}[2J\u{202e}evil".to_string()),
        Just("} protocol bgp evil { neighbor 192.0.2.66 as 1;".to_string()),
        Just("\n!\nrouter bgp 1\n neighbor 192.0.2.66 remote-as 1".to_string()),
        Just(
            "\"]\n[[neighbors]]\n[neighbors.config]\nneighbor-address = \"192.0.2.66\"".to_string()
        ),
        (1usize..3).prop_map(|n| "A".repeat(n * 20_000)),
    ]
}

/// An address or list as a user could write it in an annotation or a spec.
fn address() -> impl Strategy<Value = String> {
    let one = prop_oneof![
        4 => (0u8..=255).prop_map(|h| format!("10.16.0.{h}")),
        2 => (0u16..=0xffff).prop_map(|h| format!("fd00:10:16::{h:x}")),
        1 => Just("fe80::5".to_string()),
        1 => Just("0.0.0.0".to_string()),
        1 => Just("::".to_string()),
        1 => Just("::1".to_string()),
        1 => Just("127.0.0.1".to_string()),
        1 => Just("224.0.0.5".to_string()),
        1 => Just("255.255.255.255".to_string()),
        1 => Just("::ffff:10.16.0.5".to_string()),
        1 => Just("010.16.0.1".to_string()),
        1 => Just("10.17.0.5".to_string()),
        1 => hostile(),
    ];
    prop::collection::vec(one, 1..3).prop_map(|v| v.join(","))
}

fn cidr() -> impl Strategy<Value = String> {
    let one = prop_oneof![
        4 => Just("10.16.0.0/16".to_string()),
        3 => Just("fd00:10:16::/64".to_string()),
        1 => Just("0.0.0.0/0".to_string()),
        1 => Just("fe80::/64".to_string()),
        1 => Just("10.16.0.5/16".to_string()),
        1 => Just("10.16.0.0/08".to_string()),
        1 => Just("::ffff:10.0.0.0/104".to_string()),
        1 => hostile(),
    ];
    prop::collection::vec(one, 1..3).prop_map(|v| v.join(","))
}

fn bgp_value() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("true".to_string())),
        Just(Some("yes".to_string())),
        Just(Some("cluster".to_string())),
        Just(Some("local".to_string())),
        hostile().prop_map(Some),
    ]
}

fn phase() -> impl Strategy<Value = (String, String, String)> {
    (
        prop::sample::select(vec![
            "Running",
            "Pending",
            "Succeeded",
            "Failed",
            "",
            "Unknown",
        ]),
        prop::sample::select(vec!["Always", "OnFailure", "Never", ""]),
        prop::sample::select(vec!["", "Evicted", "NodeShutdown"]),
    )
        .prop_map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
}

/// One generated object: its hostile name and the JSON that uses a name given by the caller (so
/// that the same object can be written with its hostile name or a clean one).
#[derive(Debug, Clone)]
enum Gen {
    Subnet {
        bgp: Option<String>,
        cidr: String,
    },
    Pod {
        name: String,
        ns: String,
        bgp: Option<String>,
        subnet: u8,
        ips: String,
        node: bool,
        phase: (String, String, String),
        extra: (String, String),
    },
    Service {
        name: String,
        bgp: Option<String>,
        ips: String,
    },
}

fn gen_object() -> impl Strategy<Value = Gen> {
    prop_oneof![
        1 => (bgp_value(), cidr()).prop_map(|(bgp, cidr)| Gen::Subnet { bgp, cidr }),
        4 => (
            hostile(),
            hostile(),
            bgp_value(),
            0u8..3,
            address(),
            any::<bool>(),
            phase(),
            (hostile(), hostile()),
        )
            .prop_map(|(name, ns, bgp, subnet, ips, node, phase, extra)| Gen::Pod {
                name,
                ns,
                bgp,
                subnet,
                ips,
                node,
                phase,
                extra,
            }),
        1 => (hostile(), bgp_value(), address())
            .prop_map(|(name, bgp, ips)| Gen::Service { name, bgp, ips }),
    ]
}

fn annotations(bgp: &Option<String>) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    if let Some(v) = bgp {
        m.insert("ovn.kubernetes.io/bgp".into(), json!(v));
    }
    m
}

/// The documents of a cluster; `clean` replaces every hostile name (and unread annotation) by a
/// plain one, keeping everything the rules read.
fn documents(objects: &[Gen], clean: bool) -> Vec<Value> {
    let mut docs = Vec::new();
    let mut subnets = 0;
    for (i, o) in objects.iter().enumerate() {
        match o {
            Gen::Subnet { bgp, cidr } => {
                docs.push(json!({
                    "apiVersion": "kubeovn.io/v1", "kind": "Subnet",
                    "metadata": {"name": format!("s{subnets}"), "annotations": annotations(bgp)},
                    "spec": {"cidrBlock": cidr},
                    "status": {"conditions": [{"type": "Ready", "status": "True"}]},
                }));
                subnets += 1;
            }
            Gen::Pod {
                name,
                ns,
                bgp,
                subnet,
                ips,
                node,
                phase,
                extra,
            } => {
                let (name, ns) = if clean {
                    (format!("p{i}"), "ns".to_string())
                } else {
                    (format!("p{i}{name}"), format!("ns{ns}"))
                };
                let mut ann = annotations(bgp);
                ann.insert(
                    "ovn.kubernetes.io/logical_switch".into(),
                    json!(format!("s{subnet}")),
                );
                ann.insert("ovn.kubernetes.io/ip_address".into(), json!(ips));
                if !clean {
                    // Annotations the rules do not read: anything goes.
                    ann.insert(format!("example.com/{}", extra.0), json!(extra.1));
                }
                docs.push(json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "namespace": ns, "annotations": ann},
                    "spec": {"nodeName": if *node { "node-1" } else { "node-2" },
                             "restartPolicy": if phase.1.is_empty() { Value::Null } else { json!(phase.1) }},
                    "status": {"phase": phase.0, "reason": phase.2},
                }));
            }
            Gen::Service { name, bgp, ips } => {
                let name = if clean {
                    format!("svc{i}")
                } else {
                    format!("svc{i}{name}")
                };
                let ips: Vec<&str> = ips.split(',').collect();
                docs.push(json!({
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": name, "namespace": "default", "annotations": annotations(bgp)},
                    "spec": {"type": "ClusterIP", "clusterIP": ips[0], "clusterIPs": ips},
                }));
            }
        }
    }
    docs
}

fn as_json_list(docs: &[Value]) -> String {
    json!({"apiVersion": "v1", "kind": "List", "items": docs}).to_string()
}

fn as_yaml_stream(docs: &[Value]) -> String {
    docs.iter().map(|d| format!("---\n{d}\n")).collect()
}

const ARGS: &[&str] = &[
    "--neighbor-address=192.0.2.2",
    "--neighbor-ipv6-address=2001:db8::2",
    "--neighbor-as=65030",
    "--cluster-as=65000",
    "--node-name=node-1",
    "--router-id=192.0.2.1",
    "--announce-cluster-ip",
];

/// Everything a user or a log could see of one run, and the rendered files per backend.
struct Outcome {
    /// Messages (diagnostics, errors) and rendered files without secrets.
    shown: String,
    /// The intent documents (YAML and JSON, without --show-secrets): data, names as they are,
    /// serialized by YAML/JSON writers (which escape control characters).
    documents: String,
    rendered: Vec<(Backend, bgpgen::render::Rendered)>,
    announced: usize,
}

fn pipeline(name: &str, text: &str) -> Outcome {
    let mut shown = String::new();
    let snapshot = match load_texts([(name, text)]) {
        Ok(s) => s,
        Err(e) => {
            shown.push_str(&e.to_string());
            return Outcome {
                shown,
                documents: String::new(),
                rendered: Vec::new(),
                announced: 0,
            };
        }
    };
    let mut args: Vec<String> = ARGS.iter().map(|s| s.to_string()).collect();
    args.push(format!("--auth-password={PASSWORD}"));
    let parsed = parse_speaker_args(&args).expect("the base flags parse");
    let resolved = resolve(&parsed, &Env::default(), &snapshot, &|_| {
        Err(std::io::Error::other("no files"))
    })
    .expect("the base options resolve");
    let intent = compile(&snapshot, &resolved.options, &resolved.diagnostics);
    let documents = format!("{}{}", intent.to_yaml(false), intent.to_json(false));
    for d in &intent.diagnostics {
        shown.push_str(&format!("{d}\n"));
    }
    let mut rendered = Vec::new();
    for backend in [Backend::Gobgp, Backend::Frr, Backend::Bird] {
        match render(&intent, backend, &Templates::builtin(), false) {
            Ok(r) => {
                for f in &r.files {
                    shown.push_str(&f.contents);
                }
            }
            Err(e) => shown.push_str(&e.to_string()),
        }
        if let Ok(r) = render(&intent, backend, &Templates::builtin(), true) {
            rendered.push((backend, r));
        }
    }
    Outcome {
        shown,
        documents,
        rendered,
        announced: intent.announced().count(),
    }
}

/// A rendered file without its comments and intent hash: the lines a daemon acts on.
fn config_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim_start().starts_with('!'))
        .map(|l| match l.find("  # ") {
            Some(i) => l[..i].to_string(),
            None => l.to_string(),
        })
        .collect()
}

fn assert_inert(shown: &str) -> Result<(), TestCaseError> {
    prop_assert!(!shown.contains(PASSWORD), "the password was shown");
    for line in shown.lines() {
        prop_assert!(
            !line.chars().any(|c| c == '\u{1b}'
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)),
            "an unescaped control or bidi character: {:?}",
            &line[..line.len().min(200)]
        );
        // Diagnostics quote bounded prefixes: no line of the output is huge.
        prop_assert!(line.len() < 20_000, "a line of {} bytes", line.len());
    }
    Ok(())
}

static CHECKED: std::sync::Mutex<[usize; 3]> = std::sync::Mutex::new([0; 3]);

fn check_with_daemons(
    rendered: &[(Backend, bgpgen::render::Rendered)],
) -> Result<(), TestCaseError> {
    for (i, (backend, r)) in rendered.iter().enumerate() {
        {
            let mut checked = CHECKED.lock().unwrap();
            if checked[i] >= CHECKED_CASES {
                continue;
            }
            checked[i] += 1;
            if checked[i] == CHECKED_CASES {
                eprintln!(
                    "generative: {CHECKED_CASES} renderings checked by {}'s own checker",
                    backend.name()
                );
            }
        }
        match validate(r) {
            Ok(()) => {}
            Err(ValidateError::Missing { program, .. }) => {
                skip::allowed(
                    &format!("generative: daemon check of {}", backend.name()),
                    &program,
                )
                .map_err(TestCaseError::fail)?;
            }
            Err(e) => {
                let files: Vec<String> = r
                    .files
                    .iter()
                    .map(|f| format!("# --- {}\n{}", f.name, f.contents))
                    .collect();
                return Err(TestCaseError::fail(format!(
                    "{} refused the rendering: {e}\n{}",
                    backend.name(),
                    files.join("\n")
                )));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: OBJECT_CASES, ..ProptestConfig::default() })]

    /// Arbitrary clusters through parse, compile, render and the daemons' checkers.
    #[test]
    fn arbitrary_objects_render_configs_the_daemons_accept_and_leak_nothing(
        objects in prop::collection::vec(gen_object(), 1..8),
        json in any::<bool>(),
    ) {
        let (hostile_docs, clean_docs) = (documents(&objects, false), documents(&objects, true));
        let (name, text, clean) = if json {
            ("c.json", as_json_list(&hostile_docs), as_json_list(&clean_docs))
        } else {
            ("c.yaml", as_yaml_stream(&hostile_docs), as_yaml_stream(&clean_docs))
        };
        let (a, b) = bounded("pipeline", move || (pipeline(name, &text), pipeline(name, &clean)));
        assert_inert(&a.shown)?;
        assert_inert(&b.shown)?;
        for doc in [&a.documents, &b.documents] {
            prop_assert!(!doc.contains(PASSWORD), "the password is in the intent");
            prop_assert!(!doc.contains('\u{1b}'), "a raw ESC in the intent document");
        }
        // Same lines with clean names: a name changes comments at most. (A hostile text can make
        // a file unparsable, e.g. a raw C1 control character in YAML: refused, nothing rendered.)
        if !a.rendered.is_empty() {
            prop_assert_eq!(a.rendered.len(), b.rendered.len());
        }
        for ((backend, ra), (_, rb)) in a.rendered.iter().zip(&b.rendered) {
            for (fa, fb) in ra.files.iter().zip(&rb.files) {
                prop_assert_eq!(
                    config_lines(&fa.contents),
                    config_lines(&fb.contents),
                    "{} {}: hostile names changed configuration lines", backend.name(), fa.name
                );
                prop_assert_eq!(fa.contents.lines().count(), fb.contents.lines().count());
            }
        }
        if a.announced > 0 {
            check_with_daemons(&a.rendered)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: OPTION_CASES, ..ProptestConfig::default() })]

    /// Option strings (flags and an options file) next to a password: errors never quote it.
    #[test]
    fn arbitrary_option_strings_never_show_the_password(
        flag in prop::sample::select(vec![
            "neighbor-address", "neighbor-ipv6-address", "neighbor-as", "cluster-as", "router-id",
            "node-name", "node-ips", "holdtime", "graceful-restart-time", "ebgp-multihop",
            "bfd-min-tx", "enable-bfd", "gateway-name", "no-such-flag",
        ]),
        value in hostile(),
        garbage in hostile(),
        password_first in any::<bool>(),
    ) {
        let value_yaml = serde_json::to_string(&value).unwrap();
        let password_line = format!("auth-password: {PASSWORD}\n");
        let option_line = format!("{flag}: {value_yaml}\n");
        let text = if password_first {
            format!("cluster-as: 65000\n{password_line}{option_line}{garbage}\n")
        } else {
            format!("cluster-as: 65000\n{option_line}{garbage}\n{password_line}")
        };
        let shown = bounded("options", move || {
            let mut shown = String::new();
            match SpeakerArgs::from_options_yaml("o.yaml", &text) {
                Err(e) => shown.push_str(&e.to_string()),
                Ok(args) => {
                    let base = parse_speaker_args(ARGS).unwrap();
                    let merged = base.or(args);
                    match resolve(&merged, &Env::default(), &bgpgen::snapshot::Snapshot::default(), &|_| {
                        Err(std::io::Error::other("no files"))
                    }) {
                        Err(e) => shown.push_str(&e.to_string()),
                        Ok(r) => {
                            let intent = compile(&bgpgen::snapshot::Snapshot::default(), &r.options, &r.diagnostics);
                            shown.push_str(&intent.to_yaml(false));
                            for d in &intent.diagnostics {
                                shown.push_str(&d.to_string());
                            }
                        }
                    }
                }
            }
            let mut argv: Vec<String> = ARGS.iter().map(|s| s.to_string()).collect();
            argv.push(format!("--auth-password={PASSWORD}"));
            argv.push(format!("--{flag}={value}"));
            if let Err(e) = parse_speaker_args(&argv) {
                shown.push_str(&bgpgen::options::clap_message(&e));
            }
            shown
        });
        prop_assert!(!shown.contains(PASSWORD), "the password was shown: {}", shown);
    }

    /// Raw text as a manifest file: no panic, no hang, every error escaped and bounded.
    #[test]
    fn arbitrary_text_as_a_manifest_is_refused_cleanly(
        text in prop_oneof![
            ".{0,200}",
            "[-:{}\\[\\],\"'#&*!|>%@` \\n a-z0-9]{0,200}",
            hostile(),
        ],
        json in any::<bool>(),
    ) {
        let name = if json { "x\n\u{202e}.json" } else { "x\u{1b}.yaml" };
        let shown = bounded("raw", move || match load_texts([(name, text.as_str())]) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        });
        for line in shown.lines() {
            prop_assert!(!line.chars().any(|c| c == '\u{1b}' || c == '\u{202e}'), "{:?}", line);
        }
        prop_assert!(shown.len() < 4096, "an error of {} bytes", shown.len());
        prop_assert!(shown.is_empty() || !shown.contains("x\n"), "a file name forged a line");
    }
}

#[test]
fn the_case_counts_are_what_the_readme_says() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for (count, what) in [
        (OBJECT_CASES as usize, "arbitrary clusters"),
        (OPTION_CASES as usize, "option strings"),
        (RAW_CASES as usize, "raw texts"),
        (CHECKED_CASES, "daemon checker runs per backend"),
    ] {
        assert!(
            readme.contains(&format!("{count} {what}")),
            "README.md does not say \"{count} {what}\""
        );
    }
}
