//! What Kube-OVN's controller does that the tests need to repeat.

use std::path::Path;
use std::time::Duration;

use bgpgen::kubeovn::VpcNatGateway;

/// The NAT-gateway shim in yamls/, installed as /kube-ovn/kube-ovn-speaker in the image.
pub const SHIM: &str = "kube-ovn-speaker.sh";

/// Go's `time.Duration.String()` for whole seconds (what the controller prints for holdTime).
pub fn go_duration(d: Duration) -> String {
    assert_eq!(d.subsec_nanos(), 0, "whole seconds only");
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

/// The arguments Kube-OVN's controller gives the speaker sidecar of a NAT gateway
/// (GenNatGwBgpSpeakerContainer), built from `spec.bgpSpeaker`.
pub fn controller_args(gw: &VpcNatGateway) -> Vec<String> {
    let s = gw.spec.bgp_speaker.as_ref().expect("spec.bgpSpeaker");
    let mut args = vec!["--nat-gw-mode".to_string()];
    if let Some(r) = s.router_id.as_deref().filter(|r| !r.is_empty()) {
        args.push(format!("--router-id={r}"));
    }
    if let Some(p) = s.password.as_deref().filter(|p| !p.is_empty()) {
        args.push(format!("--auth-password={p}"));
    }
    if s.enable_graceful_restart {
        args.push("--graceful-restart".into());
    }
    if let Some(h) = s.hold_time.as_deref().filter(|h| !h.is_empty()) {
        let d = bgpgen::duration::parse_go_duration(h).expect("holdTime");
        args.push(format!("--holdtime={}", go_duration(d)));
    }
    assert_ne!(s.asn, 0, "the controller refuses asn 0");
    assert_ne!(s.remote_asn, 0, "the controller refuses remoteAsn 0");
    args.push(format!("--cluster-as={}", s.asn));
    args.push(format!("--neighbor-as={}", s.remote_asn));
    let (v4, v6): (Vec<&String>, Vec<&String>) = s.neighbors.iter().partition(|n| !n.contains(':'));
    let join = |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
    if !v4.is_empty() {
        args.push(format!("--neighbor-address={}", join(&v4)));
    }
    if !v6.is_empty() {
        args.push(format!("--neighbor-ipv6-address={}", join(&v6)));
    }
    args.extend(s.extra_args.iter().cloned());
    args
}

/// The command line of the shim's `exec`: the words from `exec` up to `"$@"`, which must be last.
pub fn shim_command() -> Vec<String> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("yamls")
            .join(SHIM),
    )
    .unwrap();
    assert!(text.starts_with("#!/bin/sh\n"), "{SHIM}: a /bin/sh script");
    let joined = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let exec_line = joined
        .lines()
        .find(|l| l.trim_start().starts_with("exec "))
        .unwrap_or_else(|| panic!("{SHIM}: no exec line"));
    let words: Vec<String> = exec_line.split_whitespace().map(String::from).collect();
    assert_eq!(
        words.last().map(String::as_str),
        Some("\"$@\""),
        "{SHIM}: passes the controller's arguments through, last"
    );
    for w in &words[..words.len() - 1] {
        assert!(
            !w.contains(['$', '"', '\'', '`', '*', '?']),
            "{SHIM}: {w:?}: keep the words literal (this test splits on spaces)"
        );
    }
    words[1..words.len() - 1].to_vec()
}
