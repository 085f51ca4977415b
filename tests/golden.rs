//! Golden cases (`golden/<case>/`): inputs (`input/`, `options.yaml`) and the expected intent and
//! rendered files for every daemon. `BGPGEN_BLESS=1 cargo test --test golden` rewrites the expected
//! files; read the diff before committing. Every expected config also goes through the daemon's own
//! parser, and a matrix test fails when a combination of the policy matrix has no case.

#[path = "common/skip.rs"]
#[allow(dead_code)]
mod skip;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use bgpgen::daemon::validate::{available, validate};
use bgpgen::intent::Intent;
use bgpgen::model::BgpAnnotation;
use bgpgen::options::{Env, SpeakerArgs, SpeakerMode, SpeakerOptions};
use bgpgen::render::{Backend, Rendered, Templates, render};
use bgpgen::snapshot::Snapshot;
use bgpgen::source::manifests;

struct Case {
    name: String,
    dir: PathBuf,
    snapshot: Snapshot,
    options: SpeakerOptions,
    intent: Intent,
}

fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("golden/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            let snapshot =
                manifests::load(&[dir.join("input")]).unwrap_or_else(|e| panic!("{name}: {e}"));
            let (options, intent) = bgpgen::front::compiled(
                &snapshot,
                &SpeakerArgs::default(),
                Some(&dir.join("options.yaml")),
                &Env::default(),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            Case {
                name,
                dir,
                snapshot,
                options,
                intent,
            }
        })
        .collect()
}

fn renders(case: &Case) -> Vec<Rendered> {
    let templates = Templates::builtin();
    Backend::ALL
        .iter()
        .map(|&b| {
            render(&case.intent, b, &templates, true)
                .unwrap_or_else(|e| panic!("{}: {b}: {e}", case.name))
        })
        .collect()
}

/// The expected files of a case: name -> contents.
fn actual_files(case: &Case) -> Vec<(String, String)> {
    let mut files = vec![("intent.yaml".to_string(), case.intent.to_yaml(false))];
    let mut notes = String::new();
    for r in renders(case) {
        for n in &r.notes {
            notes.push_str(&format!("{}: {n}\n", r.backend));
        }
        files.extend(r.files.into_iter().map(|f| (f.name, f.contents)));
    }
    files.push(("render-notes.txt".to_string(), notes));
    files
}

#[test]
fn golden_outputs_match() {
    let bless = std::env::var_os("BGPGEN_BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for case in cases() {
        for (name, contents) in actual_files(&case) {
            let path = case.dir.join(&name);
            if bless {
                // BIRD's route files are in a directory of their own.
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &contents).unwrap();
                continue;
            }
            let expected = std::fs::read_to_string(&path).unwrap_or_default();
            if expected != contents {
                failures.push(format!(
                    "{}/{name} differs (BGPGEN_BLESS=1 cargo test --test golden to accept):\n{}",
                    case.name,
                    bgpgen::diff::unified_text(&name, &expected, &contents)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn golden_rendering_is_idempotent_and_file_order_independent() {
    for case in cases() {
        assert_eq!(actual_files(&case), actual_files(&case), "{}", case.name);
        // The same inputs read file by file in reverse order give the same intent.
        let mut files: Vec<PathBuf> = std::fs::read_dir(case.dir.join("input"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files.reverse();
        let snapshot = manifests::load(&files).unwrap();
        assert_eq!(snapshot, case.snapshot, "{}", case.name);
    }
}

#[test]
fn golden_configs_pass_the_daemons_own_parsers() {
    let mut checked = 0;
    let mut skipped = std::collections::BTreeSet::new();
    for case in cases() {
        for r in renders(&case) {
            if !available(r.backend) {
                if skipped.insert(r.backend.name()) {
                    skip::skip(
                        "golden::golden_configs_pass_the_daemons_own_parsers",
                        &format!(
                            "the {} checker (its golden configs are not validated)",
                            r.backend
                        ),
                    );
                }
                continue;
            }
            validate(&r).unwrap_or_else(|e| panic!("{}: {}: {e}", case.name, r.backend));
            checked += 1;
        }
    }
    eprintln!("{checked} golden configs validated by their daemons");
}

// ---- The matrix ----

const VALUES: [&str; 6] = ["absent", "true", "yes", "cluster", "local", "invalid"];
const FAMILIES: [&str; 3] = ["ipv4", "ipv6", "dual"];

fn value_name(v: &Option<BgpAnnotation>) -> &'static str {
    match v {
        None => "absent",
        Some(BgpAnnotation::True) => "true",
        Some(BgpAnnotation::Yes) => "yes",
        Some(BgpAnnotation::Cluster) => "cluster",
        Some(BgpAnnotation::Local) => "local",
        Some(BgpAnnotation::Invalid(_)) => "invalid",
    }
}

fn family_name(ips: impl IntoIterator<Item = IpAddr>) -> Option<&'static str> {
    let (mut v4, mut v6) = (false, false);
    for ip in ips {
        if ip.is_ipv4() { v4 = true } else { v6 = true }
    }
    match (v4, v6) {
        (true, false) => Some("ipv4"),
        (false, true) => Some("ipv6"),
        (true, true) => Some("dual"),
        (false, false) => None,
    }
}

/// The cells one case exercises, derived from its objects and options.
fn covered(case: &Case) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let o = &case.options;
    match &o.mode {
        SpeakerMode::Node { node } => {
            for p in case.snapshot.pods.values() {
                let place = if p.node.as_deref() == Some(node.as_str()) {
                    "this-node"
                } else {
                    "other-node"
                };
                if let Some(f) =
                    family_name(p.attachments.iter().flat_map(|a| a.ips.iter().copied()))
                {
                    out.insert(format!("pod/{}/{place}/{f}", value_name(&p.bgp)));
                }
            }
            for s in case.snapshot.subnets.values() {
                if let Some(f) = family_name(s.cidrs.iter().map(|c| c.addr())) {
                    out.insert(format!("subnet/{}/{f}", value_name(&s.bgp)));
                }
            }
            for s in case.snapshot.services.values() {
                if let Some(f) = family_name(s.cluster_ips.iter().copied()) {
                    out.insert(format!("service/{}/{f}", value_name(&s.bgp)));
                }
            }
            out.insert(format!(
                "session/announce-cluster-ip-{}",
                if o.announce_cluster_ip { "on" } else { "off" }
            ));
        }
        SpeakerMode::NatGateway { .. } => {
            for e in case.snapshot.eips.values() {
                let ips = e.v4.map(IpAddr::V4).into_iter().chain(e.v6.map(IpAddr::V6));
                if let Some(f) = family_name(ips) {
                    out.insert(format!("eip/{}/{f}", value_name(&e.bgp)));
                }
            }
            out.insert("session/nat-gateway".into());
        }
    }
    let flags = [
        (o.password.is_some(), "password"),
        (
            o.graceful_restart
                && (o.graceful_restart_time.as_secs() != 90
                    || o.graceful_restart_deferral_time.as_secs() != 360),
            "graceful-restart-custom-times",
        ),
        (o.passive, "passive"),
        (o.ebgp_multihop_ttl > 1, "multihop"),
        (o.hold_time.as_secs() != 90, "custom-hold-time"),
        (o.bfd.enabled, "bfd"),
        (o.extended_nexthop, "extended-nexthop"),
        (
            !o.neighbors_v4.is_empty() && o.neighbors_v6.is_empty(),
            "neighbors-ipv4-only",
        ),
        (
            o.neighbors_v4.is_empty() && !o.neighbors_v6.is_empty(),
            "neighbors-ipv6-only",
        ),
        (
            !o.neighbors_v4.is_empty() && !o.neighbors_v6.is_empty(),
            "neighbors-both",
        ),
    ];
    for (on, name) in flags {
        if on {
            out.insert(format!("session/{name}"));
        }
    }
    out
}

/// Every combination that must have a case. Placement is a pod property only: a Subnet is
/// cluster-scoped, a Service's ClusterIP is routed by kube-proxy on every node, and an EIP is
/// announced by its gateway's speaker, so placement is excluded for those kinds.
fn matrix() -> BTreeSet<String> {
    let mut cells = BTreeSet::new();
    for v in VALUES {
        for f in FAMILIES {
            for place in ["this-node", "other-node"] {
                cells.insert(format!("pod/{v}/{place}/{f}"));
            }
            cells.insert(format!("subnet/{v}/{f}"));
            cells.insert(format!("service/{v}/{f}"));
            cells.insert(format!("eip/{v}/{f}"));
        }
    }
    for s in [
        "password",
        "graceful-restart-custom-times",
        "passive",
        "multihop",
        "custom-hold-time",
        "bfd",
        "extended-nexthop",
        "neighbors-ipv4-only",
        "neighbors-ipv6-only",
        "neighbors-both",
        "nat-gateway",
        "announce-cluster-ip-on",
        "announce-cluster-ip-off",
    ] {
        cells.insert(format!("session/{s}"));
    }
    cells
}

#[test]
fn every_matrix_combination_has_a_golden_case() {
    let all = cases();
    let covered: BTreeSet<String> = all.iter().flat_map(covered).collect();
    let missing: Vec<String> = matrix()
        .into_iter()
        .filter(|c| !covered.contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "combinations without a golden case:\n{}",
        missing
            .iter()
            .map(|c| format!("  {c}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
