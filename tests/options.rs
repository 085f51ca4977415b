//! Speaker options (DESIGN section 3): kube-ovn-speaker compatible flags, defaults, ranges and
//! validation, the `--options` YAML file and the NAT gateway's `spec.bgpSpeaker`.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bgpgen::diagnostic::Level;
use bgpgen::model::Asn;
use bgpgen::options::{
    Env, OptionsError, Resolved, SpeakerArgs, SpeakerMode, SpeakerOptions, gateway_speaker_args,
    parse_speaker_args, resolve,
};
use bgpgen::snapshot::Snapshot;
use bgpgen::source::manifests::load_texts;

/// Minimal valid node-mode arguments, to which each test adds what it checks.
const BASE: &[&str] = &[
    "--cluster-as=65000",
    "--neighbor-as=65001",
    "--neighbor-address=10.32.32.254",
    "--node-name=node-1",
    "--router-id=10.0.0.11",
];

/// Reads `--auth-password-file`: `/secret/password` holds a password, anything else fails.
fn reader(path: &Path) -> std::io::Result<String> {
    if path == Path::new("/secret/password") {
        Ok("s3cr3t-Pa55\n".to_string())
    } else if path == Path::new("/secret/crlf") {
        Ok("crlf-pass\r\n".to_string())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "No such file or directory",
        ))
    }
}

fn resolve_args(args: &[&str], env: Env) -> Result<Resolved, OptionsError> {
    let args = parse_speaker_args(args).expect("arguments parse");
    resolve(&args, &env, &Snapshot::default(), &reader)
}

fn resolve_in(args: &[&str], env: Env, snapshot: &Snapshot) -> Result<Resolved, OptionsError> {
    let args = parse_speaker_args(args).expect("arguments parse");
    resolve(&args, &env, snapshot, &reader)
}

/// BASE plus `extra` (later flags override BASE's).
fn with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    BASE.iter().chain(extra).copied().collect()
}

fn ok(extra: &[&str]) -> SpeakerOptions {
    match resolve_args(&with(extra), Env::default()) {
        Ok(r) => r.options,
        Err(e) => panic!("{extra:?} should be accepted, got {e:?}"),
    }
}

/// Resolves BASE plus `extra`, expects `OptionsError::Invalid` for `flag`, returns the message.
fn invalid(extra: &[&str], flag: &str) -> String {
    match resolve_args(&with(extra), Env::default()) {
        Err(OptionsError::Invalid { flag: f, message }) => {
            assert_eq!(f, flag, "{extra:?}: wrong flag, message {message:?}");
            message
        }
        other => panic!("{extra:?} should be rejected for --{flag}, got {other:?}"),
    }
}

fn missing(args: &[&str], env: Env) -> String {
    match resolve_args(args, env) {
        Err(OptionsError::Missing(m)) => m,
        other => panic!("{args:?} should fail with Missing, got {other:?}"),
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// ---------------------------------------------------------------------------------------------
// Defaults

#[test]
fn defaults_match_kube_ovn_speaker() {
    let r = resolve_args(BASE, Env::default()).unwrap();
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
    let o = r.options;
    assert_eq!(
        o.mode,
        SpeakerMode::Node {
            node: "node-1".into()
        }
    );
    assert_eq!(o.router_id, Ipv4Addr::new(10, 0, 0, 11));
    assert_eq!(o.cluster_as, Asn(65000));
    assert_eq!(o.neighbor_as, Asn(65001));
    assert_eq!(o.neighbors_v4, vec![Ipv4Addr::new(10, 32, 32, 254)]);
    assert!(o.neighbors_v6.is_empty());
    assert_eq!(o.node_ip_v4, None);
    assert_eq!(o.node_ip_v6, None);
    assert_eq!(o.hold_time, secs(90));
    // Keepalive is implied: a third of the hold time.
    assert_eq!(o.hold_time / 3, secs(30));
    assert!(!o.graceful_restart);
    assert_eq!(o.graceful_restart_time, secs(90));
    assert_eq!(o.graceful_restart_deferral_time, secs(360));
    assert_eq!(o.ebgp_multihop_ttl, 1);
    assert!(!o.passive);
    assert!(!o.extended_nexthop);
    assert!(!o.announce_cluster_ip);
    assert!(!o.bfd.enabled);
    assert_eq!(o.bfd.min_tx_ms, 1000);
    assert_eq!(o.bfd.min_rx_ms, 1000);
    assert_eq!(o.bfd.multiplier, 3);
    assert_eq!(o.password, None);
}

#[test]
fn defaults_constants() {
    use bgpgen::options::*;
    assert_eq!(DEFAULT_HOLD_TIME, secs(90));
    assert_eq!(DEFAULT_GR_TIME, secs(90));
    assert_eq!(DEFAULT_GR_DEFERRAL_TIME, secs(360));
    assert_eq!(DEFAULT_EBGP_MULTIHOP, 1);
    assert_eq!(DEFAULT_BFD_INTERVAL_MS, 1000);
    assert_eq!(DEFAULT_BFD_MULTIPLIER, 3);
}

// ---------------------------------------------------------------------------------------------
// Required options

#[test]
fn missing_cluster_as() {
    let m = missing(
        &[
            "--neighbor-as=65001",
            "--neighbor-address=10.0.0.1",
            "--node-name=n",
        ],
        Env::default(),
    );
    assert!(m.contains("--cluster-as"), "{m}");
    assert!(!m.contains("--neighbor-as"), "{m}");
    assert!(!m.contains("--node-name"), "{m}");
}

#[test]
fn cluster_as_zero_is_missing() {
    let m = missing(
        &[
            "--cluster-as=0",
            "--neighbor-as=65001",
            "--neighbor-address=10.0.0.1",
            "--node-name=n",
        ],
        Env::default(),
    );
    assert!(m.contains("--cluster-as"), "{m}");
}

#[test]
fn missing_neighbor_as() {
    let m = missing(
        &[
            "--cluster-as=65000",
            "--neighbor-address=10.0.0.1",
            "--node-name=n",
        ],
        Env::default(),
    );
    assert!(m.contains("--neighbor-as"), "{m}");
    assert!(!m.contains("--cluster-as"), "{m}");
}

#[test]
fn missing_neighbors() {
    let m = missing(
        &["--cluster-as=65000", "--neighbor-as=65001", "--node-name=n"],
        Env::default(),
    );
    assert!(m.contains("--neighbor-address"), "{m}");
    assert!(m.contains("--neighbor-ipv6-address"), "{m}");
    assert!(!m.contains("--cluster-as"), "{m}");
}

#[test]
fn empty_neighbor_list_is_missing() {
    let m = missing(
        &[
            "--cluster-as=65000",
            "--neighbor-as=65001",
            "--node-name=n",
            "--neighbor-address=",
        ],
        Env::default(),
    );
    assert!(m.contains("--neighbor-address"), "{m}");
}

#[test]
fn ipv6_neighbors_alone_are_enough() {
    let r = resolve_args(
        &[
            "--cluster-as=65000",
            "--neighbor-as=65001",
            "--node-name=n",
            "--router-id=1.1.1.1",
            "--neighbor-ipv6-address=fd00::1",
        ],
        Env::default(),
    )
    .unwrap();
    assert!(r.options.neighbors_v4.is_empty());
    assert_eq!(
        r.options.neighbors_v6,
        vec!["fd00::1".parse::<Ipv6Addr>().unwrap()]
    );
}

#[test]
fn missing_node_name_in_node_mode() {
    let m = missing(
        &[
            "--cluster-as=65000",
            "--neighbor-as=65001",
            "--neighbor-address=10.0.0.1",
        ],
        Env::default(),
    );
    assert!(m.contains("--node-name"), "{m}");
    assert!(m.contains("NODE_NAME"), "{m}");
    assert!(!m.contains("--cluster-as"), "{m}");
}

#[test]
fn node_name_from_env_and_lowercased() {
    let env = Env {
        node_name: Some("Node-A".into()),
        ..Env::default()
    };
    let r = resolve_args(
        &[
            "--cluster-as=65000",
            "--neighbor-as=65001",
            "--neighbor-address=10.0.0.1",
            "--router-id=1.1.1.1",
        ],
        env.clone(),
    )
    .unwrap();
    assert_eq!(
        r.options.mode,
        SpeakerMode::Node {
            node: "node-a".into()
        }
    );

    // The flag wins over the environment, and is lowercased too.
    let r = resolve_args(
        &[
            "--cluster-as=65000",
            "--neighbor-as=65001",
            "--neighbor-address=10.0.0.1",
            "--router-id=1.1.1.1",
            "--node-name=WORKER-2",
        ],
        env,
    )
    .unwrap();
    assert_eq!(
        r.options.mode,
        SpeakerMode::Node {
            node: "worker-2".into()
        }
    );
}

#[test]
fn everything_missing_is_one_error_listing_each() {
    let m = missing(&[], Env::default());
    for needle in [
        "--neighbor-address",
        "--neighbor-ipv6-address",
        "--cluster-as",
        "--neighbor-as",
        "--node-name",
    ] {
        assert!(m.contains(needle), "{needle} not in {m}");
    }
    assert_eq!(m.matches("; ").count(), 3, "four items joined: {m}");
    let shown = OptionsError::Missing(m.clone()).to_string();
    assert!(shown.starts_with("missing required flags: "), "{shown}");
}

// ---------------------------------------------------------------------------------------------
// Ranges

#[test]
fn holdtime_2s_rejected() {
    let m = invalid(&["--holdtime=2s"], "holdtime");
    assert!(m.contains("3s to 65536s"), "{m}");
    assert!(m.contains("2s"), "{m}");
}

#[test]
fn holdtime_3s_accepted() {
    assert_eq!(ok(&["--holdtime=3s"]).hold_time, secs(3));
}

#[test]
fn holdtime_65536s_accepted_and_clamped_to_the_16_bit_wire_field() {
    let r = resolve_args(&[BASE, &["--holdtime=65536s"]].concat(), Env::default()).unwrap();
    assert_eq!(r.options.hold_time, secs(65535));
    assert!(
        r.diagnostics.iter().any(|d| d.message.contains("16-bit")),
        "{:?}",
        r.diagnostics
    );
    assert_eq!(ok(&["--holdtime=65535s"]).hold_time, secs(65535));
}

#[test]
fn holdtime_65537s_rejected() {
    let m = invalid(&["--holdtime=65537s"], "holdtime");
    assert!(m.contains("3s to 65536s"), "{m}");
}

#[test]
fn holdtime_go_syntax() {
    assert_eq!(ok(&["--holdtime=1m30s"]).hold_time, secs(90));
    assert_eq!(ok(&["--holdtime=2m"]).hold_time, secs(120));
    assert_eq!(ok(&["--holdtime", "1h"]).hold_time, secs(3600));
}

#[test]
fn holdtime_fraction_truncated_with_warning() {
    let r = resolve_args(&with(&["--holdtime=3.5s"]), Env::default()).unwrap();
    assert_eq!(r.options.hold_time, secs(3));
    assert_eq!(r.diagnostics.len(), 1, "{:?}", r.diagnostics);
    assert_eq!(r.diagnostics[0].level, Level::Warning);
    assert!(
        r.diagnostics[0].message.contains("--holdtime"),
        "{:?}",
        r.diagnostics
    );
}

#[test]
fn holdtime_garbage_rejected() {
    let m = invalid(&["--holdtime=soon"], "holdtime");
    assert!(m.contains("soon"), "{m}");
    let m = invalid(&["--holdtime=90"], "holdtime");
    assert!(m.contains("missing unit"), "{m}");
    invalid(&["--holdtime=-90s"], "holdtime");
}

#[test]
fn ebgp_multihop_0_rejected() {
    let m = invalid(&["--ebgp-multihop=0"], "ebgp-multihop");
    assert!(m.contains("1 to 255"), "{m}");
}

#[test]
fn ebgp_multihop_255_accepted() {
    assert_eq!(ok(&["--ebgp-multihop=255"]).ebgp_multihop_ttl, 255);
    assert_eq!(ok(&["--ebgp-multihop=1"]).ebgp_multihop_ttl, 1);
}

#[test]
fn ebgp_multihop_256_rejected() {
    let m = invalid(&["--ebgp-multihop=256"], "ebgp-multihop");
    assert!(m.contains("1 to 255") && m.contains("256"), "{m}");
    invalid(&["--ebgp-multihop=two"], "ebgp-multihop");
    invalid(&["--ebgp-multihop=-1"], "ebgp-multihop");
}

#[test]
fn graceful_restart_time_checked_only_when_enabled() {
    // Off: out-of-range values are not checked (kube-ovn-speaker checks them only when on).
    assert_eq!(
        ok(&["--graceful-restart-time=0"]).graceful_restart_time,
        Duration::ZERO
    );
    assert_eq!(
        ok(&["--graceful-restart-time=4096s"]).graceful_restart_time,
        secs(4096)
    );
}

#[test]
fn graceful_restart_time_0_rejected_when_on() {
    let m = invalid(
        &["--graceful-restart", "--graceful-restart-time=0"],
        "graceful-restart-time",
    );
    assert!(m.contains("4095 seconds"), "{m}");
    invalid(
        &["--graceful-restart", "--graceful-restart-time=0s"],
        "graceful-restart-time",
    );
}

#[test]
fn graceful_restart_time_4096s_rejected_when_on() {
    let m = invalid(
        &["--graceful-restart", "--graceful-restart-time=4096s"],
        "graceful-restart-time",
    );
    assert!(m.contains("4095 seconds"), "{m}");
}

#[test]
fn graceful_restart_time_sub_second_rejected_when_on() {
    // DESIGN: 1s..4095s; a restart time below one second would be sent as 0.
    invalid(
        &["--graceful-restart", "--graceful-restart-time=500ms"],
        "graceful-restart-time",
    );
}

#[test]
fn graceful_restart_deferral_time_sub_second_rejected_when_on() {
    invalid(
        &[
            "--graceful-restart",
            "--graceful-restart-deferral-time=999ms",
        ],
        "graceful-restart-deferral-time",
    );
    let o = ok(&["--graceful-restart", "--graceful-restart-deferral-time=1s"]);
    assert_eq!(o.graceful_restart_deferral_time, secs(1));
}

#[test]
fn or_password_and_password_file_are_one_option() {
    let file = parse_speaker_args(["--auth-password=from-file"]).unwrap();
    let cli = parse_speaker_args(["--auth-password-file=/secret/password"]).unwrap();
    let m = cli.or(file);
    assert_eq!(m.auth_password, None);
    assert_eq!(
        m.auth_password_file,
        Some(PathBuf::from("/secret/password"))
    );

    let file = parse_speaker_args(["--auth-password-file=/secret/password"]).unwrap();
    let cli = parse_speaker_args(["--auth-password=cli"]).unwrap();
    let m = cli.or(file);
    assert_eq!(m.auth_password.as_deref(), Some("cli"));
    assert_eq!(m.auth_password_file, None);

    // Nothing above: the lower layer's password is kept.
    let lower = parse_speaker_args(["--auth-password-file=/secret/password"]).unwrap();
    let m = SpeakerArgs::default().or(lower);
    assert_eq!(
        m.auth_password_file,
        Some(PathBuf::from("/secret/password"))
    );

    // Both in one layer still conflict.
    let both =
        parse_speaker_args(["--auth-password=a", "--auth-password-file=/secret/password"]).unwrap();
    let e = resolve(
        &parse_speaker_args(BASE).unwrap().or(both),
        &Env::default(),
        &Snapshot::default(),
        &reader,
    )
    .unwrap_err();
    assert!(matches!(e, OptionsError::Conflict(_)), "{e:?}");
}

#[test]
fn or_keeps_kubeconfig_from_lower_layer() {
    let file = SpeakerArgs::from_options_yaml("o.yaml", "kubeconfig: /etc/kube/config\n").unwrap();
    let m = parse_speaker_args(["--v=2"]).unwrap().or(file.clone());
    assert_eq!(
        m.ignored.kubeconfig,
        Some(PathBuf::from("/etc/kube/config"))
    );
    let m = parse_speaker_args(["--kubeconfig=/cli"]).unwrap().or(file);
    assert_eq!(m.ignored.kubeconfig, Some(PathBuf::from("/cli")));
}

#[test]
fn graceful_restart_time_bounds_accepted_when_on() {
    let o = ok(&["--graceful-restart", "--graceful-restart-time=4095s"]);
    assert!(o.graceful_restart);
    assert_eq!(o.graceful_restart_time, secs(4095));
    assert_eq!(
        ok(&["--graceful-restart", "--graceful-restart-time=1s"]).graceful_restart_time,
        secs(1)
    );
    assert_eq!(
        ok(&["--graceful-restart", "--graceful-restart-time=2m"]).graceful_restart_time,
        secs(120)
    );
}

#[test]
fn graceful_restart_time_garbage_rejected() {
    invalid(&["--graceful-restart-time=later"], "graceful-restart-time");
}

#[test]
fn graceful_restart_deferral_time_over_18h_rejected_when_on() {
    let m = invalid(
        &[
            "--graceful-restart",
            "--graceful-restart-deferral-time=18h0m1s",
        ],
        "graceful-restart-deferral-time",
    );
    assert!(m.contains("18 hours"), "{m}");
    invalid(
        &["--graceful-restart", "--graceful-restart-deferral-time=0"],
        "graceful-restart-deferral-time",
    );
    let o = ok(&["--graceful-restart", "--graceful-restart-deferral-time=18h"]);
    assert_eq!(o.graceful_restart_deferral_time, secs(18 * 3600));
    // Off: not checked.
    let o = ok(&["--graceful-restart-deferral-time=19h"]);
    assert_eq!(o.graceful_restart_deferral_time, secs(19 * 3600));
}

#[test]
fn bfd_intervals_range() {
    for flag in ["bfd-min-tx", "bfd-min-rx"] {
        let m = invalid(&[&format!("--{flag}=49")], flag);
        assert!(m.contains("50 to 60000"), "{m}");
        let m = invalid(&[&format!("--{flag}=60001")], flag);
        assert!(m.contains("50 to 60000") && m.contains("60001"), "{m}");
        invalid(&[&format!("--{flag}=fast")], flag);
    }
    let o = ok(&["--enable-bfd", "--bfd-min-tx=50", "--bfd-min-rx=60000"]);
    assert!(o.bfd.enabled);
    assert_eq!((o.bfd.min_tx_ms, o.bfd.min_rx_ms), (50, 60000));
    let o = ok(&["--bfd-min-tx=60000", "--bfd-min-rx=50"]);
    assert_eq!((o.bfd.min_tx_ms, o.bfd.min_rx_ms), (60000, 50));
}

#[test]
fn bfd_multiplier_range() {
    let m = invalid(
        &["--bfd-detection-multiplier=1"],
        "bfd-detection-multiplier",
    );
    assert!(m.contains("2 to 255"), "{m}");
    invalid(
        &["--bfd-detection-multiplier=256"],
        "bfd-detection-multiplier",
    );
    invalid(
        &["--bfd-detection-multiplier=0"],
        "bfd-detection-multiplier",
    );
    assert_eq!(ok(&["--bfd-detection-multiplier=2"]).bfd.multiplier, 2);
    assert_eq!(ok(&["--bfd-detection-multiplier=255"]).bfd.multiplier, 255);
}

#[test]
fn enable_bfd_boolean() {
    assert!(ok(&["--enable-bfd=true"]).bfd.enabled);
    assert!(!ok(&["--enable-bfd=false"]).bfd.enabled);
    invalid(&["--enable-bfd=on"], "enable-bfd");
}

// ---------------------------------------------------------------------------------------------
// Address families and lists

#[test]
fn ipv6_in_neighbor_address_rejected() {
    let m = invalid(&["--neighbor-address=fd00::1"], "neighbor-address");
    assert!(m.contains("fd00::1") && m.contains("IPv4"), "{m}");
    let e = resolve_args(&with(&["--neighbor-address=fd00::1"]), Env::default()).unwrap_err();
    assert!(e.to_string().starts_with("--neighbor-address: "), "{e}");
}

#[test]
fn ipv4_in_neighbor_ipv6_address_rejected() {
    let m = invalid(
        &["--neighbor-ipv6-address=10.0.0.1"],
        "neighbor-ipv6-address",
    );
    assert!(m.contains("10.0.0.1") && m.contains("IPv6"), "{m}");
}

#[test]
fn neighbor_garbage_rejected() {
    let m = invalid(&["--neighbor-address=router"], "neighbor-address");
    assert!(m.contains("router"), "{m}");
    invalid(
        &["--neighbor-ipv6-address=fd00::zz"],
        "neighbor-ipv6-address",
    );
}

#[test]
fn neighbor_lists_comma_separated_and_repeated() {
    let o = ok(&[
        "--neighbor-address=10.0.0.3,10.0.0.1",
        "--neighbor-address=10.0.0.2",
        "--neighbor-ipv6-address=fd00::2,fd00::1",
        "--neighbor-ipv6-address",
        "fd00::3",
    ]);
    // BASE's 10.32.32.254 is repeated before these, so it accumulates too.
    assert_eq!(
        o.neighbors_v4,
        vec![
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(10, 0, 0, 3),
            Ipv4Addr::new(10, 32, 32, 254),
        ]
    );
    let v6: Vec<Ipv6Addr> = ["fd00::1", "fd00::2", "fd00::3"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(o.neighbors_v6, v6);
}

#[test]
fn neighbor_duplicates_removed_and_sorted() {
    let r = resolve_args(
        &[
            "--cluster-as=65000",
            "--neighbor-as=65001",
            "--node-name=n",
            "--router-id=1.1.1.1",
            "--neighbor-address=10.0.0.9, 10.0.0.1,10.0.0.9",
            "--neighbor-address=10.0.0.1",
            "--neighbor-ipv6-address=FD00::1,fd00::1,fd00:0::1",
        ],
        Env::default(),
    )
    .unwrap();
    assert_eq!(
        r.options.neighbors_v4,
        vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 9)]
    );
    assert_eq!(
        r.options.neighbors_v6,
        vec!["fd00::1".parse::<Ipv6Addr>().unwrap()]
    );
}

// ---------------------------------------------------------------------------------------------
// AS numbers

#[test]
fn asn_non_numeric_rejected() {
    let m = invalid(&["--cluster-as=AS65000"], "cluster-as");
    assert!(m.contains("AS65000") && m.contains("AS number"), "{m}");
    invalid(&["--neighbor-as=sixty"], "neighbor-as");
    invalid(&["--neighbor-as=-1"], "neighbor-as");
    invalid(&["--cluster-as=4294967296"], "cluster-as");
}

#[test]
fn asn_four_byte_accepted() {
    let o = ok(&["--cluster-as=4200000000", "--neighbor-as=4294967295"]);
    assert_eq!(o.cluster_as, Asn(4_200_000_000));
    assert_eq!(o.neighbor_as, Asn(4_294_967_295));
}

// ---------------------------------------------------------------------------------------------
// Router ID

fn without_router_id() -> Vec<&'static str> {
    BASE.iter()
        .copied()
        .filter(|a| !a.starts_with("--router-id"))
        .collect()
}

#[test]
fn router_id_explicit() {
    let env = Env {
        pod_ips: Some("10.9.9.9".into()),
        ..Env::default()
    };
    let r = resolve_args(&with(&["--router-id=192.0.2.7"]), env).unwrap();
    assert_eq!(r.options.router_id, Ipv4Addr::new(192, 0, 2, 7));
}

#[test]
fn router_id_ipv6_rejected() {
    let m = invalid(&["--router-id=fd00::1"], "router-id");
    assert!(m.contains("IPv6") && m.contains("IPv4"), "{m}");
    let m = invalid(&["--router-id=router-1"], "router-id");
    assert!(m.contains("router-1"), "{m}");
}

#[test]
fn router_id_from_pod_ips_first_ipv4() {
    let env = Env {
        pod_ips: Some("fd00::5,10.0.0.5".into()),
        pod_ip: Some("10.0.0.99".into()),
        ..Env::default()
    };
    let r = resolve_args(&without_router_id(), env).unwrap();
    assert_eq!(r.options.router_id, Ipv4Addr::new(10, 0, 0, 5));
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
}

#[test]
fn router_id_from_pod_ip() {
    let env = Env {
        pod_ip: Some("10.0.0.6".into()),
        ..Env::default()
    };
    let r = resolve_args(&without_router_id(), env).unwrap();
    assert_eq!(r.options.router_id, Ipv4Addr::new(10, 0, 0, 6));
}

#[test]
fn router_id_pod_ips_garbage_is_error() {
    let env = Env {
        pod_ips: Some("fd00::5,not-an-ip".into()),
        ..Env::default()
    };
    let e = resolve_args(&without_router_id(), env).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("not-an-ip") && text.contains("POD_IPS"),
        "{text}"
    );
}

#[test]
fn router_id_none_is_unspecified_with_warning() {
    let env = Env {
        pod_ips: Some("fd00::5".into()),
        ..Env::default()
    };
    for env in [Env::default(), env] {
        let r = resolve_args(&without_router_id(), env).unwrap();
        assert_eq!(r.options.router_id, Ipv4Addr::UNSPECIFIED);
        assert_eq!(r.diagnostics.len(), 1, "{:?}", r.diagnostics);
        let d = &r.diagnostics[0];
        assert_eq!(d.level, Level::Warning);
        assert_eq!(d.object, "options");
        assert!(
            d.message.contains("0.0.0.0") && d.message.contains("--router-id"),
            "{}",
            d.message
        );
    }
}

// ---------------------------------------------------------------------------------------------
// --node-ips

#[test]
fn node_ips_per_family() {
    let o = ok(&["--node-ips=10.0.0.11,fd00::11"]);
    assert_eq!(o.node_ip_v4, Some(Ipv4Addr::new(10, 0, 0, 11)));
    assert_eq!(o.node_ip_v6, Some("fd00::11".parse().unwrap()));

    let o = ok(&["--node-ips=fd00::12"]);
    assert_eq!(o.node_ip_v4, None);
    assert_eq!(o.node_ip_v6, Some("fd00::12".parse().unwrap()));

    let o = ok(&["--node-ips=10.0.0.12"]);
    assert_eq!(o.node_ip_v4, Some(Ipv4Addr::new(10, 0, 0, 12)));
    assert_eq!(o.node_ip_v6, None);

    let m = invalid(&["--node-ips=node-1"], "node-ips");
    assert!(m.contains("node-1"), "{m}");
}

// ---------------------------------------------------------------------------------------------
// Booleans, pflag style

#[test]
fn boolean_bare_flag_is_true() {
    assert!(ok(&["--graceful-restart"]).graceful_restart);
    assert!(ok(&["--passivemode"]).passive);
    assert!(ok(&["--extended-nexthop"]).extended_nexthop);
    assert!(ok(&["--announce-cluster-ip"]).announce_cluster_ip);
}

#[test]
fn boolean_explicit_values() {
    assert!(!ok(&["--graceful-restart=false"]).graceful_restart);
    assert!(ok(&["--passivemode=true"]).passive);
    assert!(!ok(&["--passivemode=false"]).passive);
    // Go's strconv.ParseBool spellings.
    for t in ["1", "t", "T", "true", "TRUE", "True"] {
        assert!(
            ok(&[&format!("--extended-nexthop={t}")]).extended_nexthop,
            "{t}"
        );
    }
    for f in ["0", "f", "F", "false", "FALSE", "False"] {
        assert!(
            !ok(&[&format!("--announce-cluster-ip={f}")]).announce_cluster_ip,
            "{f}"
        );
    }
}

#[test]
fn boolean_garbage_rejected() {
    let m = invalid(&["--passivemode=maybe"], "passivemode");
    assert!(m.contains("maybe") && m.contains("boolean"), "{m}");
    invalid(&["--graceful-restart=yes"], "graceful-restart");
    invalid(&["--announce-cluster-ip=on"], "announce-cluster-ip");
    invalid(&["--extended-nexthop=2"], "extended-nexthop");
}

// ---------------------------------------------------------------------------------------------
// Password

#[test]
fn auth_password_flag() {
    let o = ok(&["--auth-password=hunter2"]);
    assert_eq!(o.password.as_ref().map(|p| p.expose()), Some("hunter2"));
}

#[test]
fn auth_password_file_strips_trailing_newline() {
    let o = ok(&["--auth-password-file=/secret/password"]);
    assert_eq!(o.password.as_ref().map(|p| p.expose()), Some("s3cr3t-Pa55"));
    let o = ok(&["--auth-password-file=/secret/crlf"]);
    assert_eq!(o.password.as_ref().map(|p| p.expose()), Some("crlf-pass"));
}

#[test]
fn auth_password_and_file_conflict() {
    let e = resolve_args(
        &with(&[
            "--auth-password=hunter2",
            "--auth-password-file=/secret/password",
        ]),
        Env::default(),
    )
    .unwrap_err();
    let OptionsError::Conflict(m) = e else {
        panic!("expected Conflict, got {e:?}")
    };
    assert!(
        m.contains("--auth-password") && m.contains("--auth-password-file"),
        "{m}"
    );
    assert!(m.contains("mutually exclusive"), "{m}");
    assert!(!m.contains("hunter2"), "{m}");
}

#[test]
fn auth_password_file_unreadable_names_file() {
    let m = invalid(&["--auth-password-file=/nope/pw"], "auth-password-file");
    assert!(m.contains("/nope/pw"), "{m}");
    assert!(m.contains("No such file"), "{m}");
}

#[test]
fn auth_password_too_long_or_control_rejected() {
    let long = format!("--auth-password={}", "x".repeat(81));
    let m = invalid(&[&long], "auth-password");
    assert!(m.contains("80"), "{m}");
    assert!(!m.contains("xxxx"), "{m}");
    let eighty = format!("--auth-password={}", "x".repeat(80));
    assert_eq!(ok(&[&eighty]).password.unwrap().expose().len(), 80);
    invalid(&["--auth-password=a\tb"], "auth-password");
    // Characters that would end or escape a quoted string or a vtysh word in some daemon.
    for bad in ["a b", "a\"b", "a'b", "a\\b", "a?b"] {
        invalid(&[&format!("--auth-password={bad}")], "auth-password");
    }
    assert_eq!(
        ok(&["--auth-password=p@ss!#$%w0rd"])
            .password
            .unwrap()
            .expose(),
        "p@ss!#$%w0rd"
    );
}

#[test]
fn password_not_in_debug() {
    let o = ok(&["--auth-password=TopSecretValue"]);
    let debug = format!("{o:?}");
    assert!(!debug.contains("TopSecretValue"), "{debug}");
    let o = ok(&["--auth-password-file=/secret/password"]);
    let debug = format!("{o:?}");
    assert!(!debug.contains("s3cr3t-Pa55"), "{debug}");
}

// ---------------------------------------------------------------------------------------------
// Ignored kube-ovn flags, unknown flags, overriding

#[test]
fn ignored_kube_ovn_flags_accepted() {
    let extra = [
        "--logtostderr=false",
        "--log_file=/var/log/x.log",
        "--alsologtostderr",
        "--log_file_max_size=200",
        "-v5",
        "--v=3",
        "--pprof-port=10667",
        "--grpc-host=127.0.0.1",
        "--grpc-port=50051",
        "--enable-metrics=false",
        "--kubeconfig=/x",
    ];
    let args = parse_speaker_args(with(&extra)).expect("kube-ovn flags are accepted");
    assert_eq!(args.ignored.kubeconfig, Some(PathBuf::from("/x")));
    assert_eq!(args.ignored.log_file.as_deref(), Some("/var/log/x.log"));
    assert_eq!(args.ignored.verbosity.as_deref(), Some("3"));
    // They change nothing.
    let r = resolve(&args, &Env::default(), &Snapshot::default(), &reader).unwrap();
    assert_eq!(r.options, ok(&[]));
    // Each one on its own too.
    for e in extra {
        parse_speaker_args([e]).unwrap_or_else(|err| panic!("{e}: {err}"));
    }
    assert_eq!(
        parse_speaker_args(["-v5"])
            .unwrap()
            .ignored
            .verbosity
            .as_deref(),
        Some("5")
    );
}

#[test]
fn unknown_flag_rejected() {
    let e = parse_speaker_args(with(&["--bogus"])).unwrap_err();
    assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
    assert!(e.to_string().contains("--bogus"), "{e}");
    assert!(parse_speaker_args(["--bogus=1"]).is_err());
    assert!(parse_speaker_args(["extra-positional"]).is_err());
}

#[test]
fn later_flag_overrides_earlier() {
    let o = ok(&["--holdtime=30s", "--holdtime=45s"]);
    assert_eq!(o.hold_time, secs(45));
    // BASE has --cluster-as=65000.
    assert_eq!(ok(&["--cluster-as=64512"]).cluster_as, Asn(64512));
    assert!(!ok(&["--graceful-restart", "--graceful-restart=false"]).graceful_restart);
    assert!(ok(&["--passivemode=false", "--passivemode"]).passive);
    let args = parse_speaker_args(["--ebgp-multihop=2", "--ebgp-multihop", "7"]).unwrap();
    assert_eq!(args.ebgp_multihop.as_deref(), Some("7"));
}

// ---------------------------------------------------------------------------------------------
// --options file

#[test]
fn options_file_same_names() {
    let yaml = "\
cluster-as: 65000
neighbor-as: \"65030\"
neighbor-address: [10.32.32.253, 10.32.32.252]
neighbor-ipv6-address: 2409:AB00:AB00:2000::AFB:8AFE, fd00::1
node-name: Node-1
router-id: 10.0.0.11
announce-cluster-ip: true
passivemode: false
ebgp-multihop: 3
holdtime: 1m
graceful-restart: true
bfd-detection-multiplier: 5
log_file: /var/log/speaker.log
v: 3
";
    let args = SpeakerArgs::from_options_yaml("opts.yaml", yaml).unwrap();
    assert_eq!(args.cluster_as.as_deref(), Some("65000"));
    assert_eq!(args.neighbor_address, vec!["10.32.32.253", "10.32.32.252"]);
    let o = resolve(&args, &Env::default(), &Snapshot::default(), &reader)
        .unwrap()
        .options;
    assert_eq!(o.cluster_as, Asn(65000));
    assert_eq!(o.neighbor_as, Asn(65030));
    assert_eq!(
        o.neighbors_v4,
        vec![
            Ipv4Addr::new(10, 32, 32, 252),
            Ipv4Addr::new(10, 32, 32, 253)
        ]
    );
    let mut v6: Vec<Ipv6Addr> = ["2409:ab00:ab00:2000::afb:8afe", "fd00::1"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    v6.sort();
    assert_eq!(o.neighbors_v6, v6);
    assert_eq!(
        o.mode,
        SpeakerMode::Node {
            node: "node-1".into()
        }
    );
    assert_eq!(o.router_id, Ipv4Addr::new(10, 0, 0, 11));
    assert!(o.announce_cluster_ip);
    assert!(!o.passive);
    assert_eq!(o.ebgp_multihop_ttl, 3);
    assert_eq!(o.hold_time, secs(60));
    assert!(o.graceful_restart);
    assert_eq!(o.bfd.multiplier, 5);
}

#[test]
fn options_file_empty_and_null() {
    assert_eq!(
        SpeakerArgs::from_options_yaml("e.yaml", "").unwrap(),
        SpeakerArgs::default()
    );
    assert_eq!(
        SpeakerArgs::from_options_yaml("e.yaml", "  \n").unwrap(),
        SpeakerArgs::default()
    );
    let args = SpeakerArgs::from_options_yaml("n.yaml", "router-id:\ncluster-as: 1\n").unwrap();
    assert_eq!(args.router_id, None);
    assert_eq!(args.cluster_as.as_deref(), Some("1"));
}

#[test]
fn options_file_unknown_key() {
    let e =
        SpeakerArgs::from_options_yaml("/etc/bgpgen/opts.yaml", "cluster-as: 1\nbogus-key: 3\n")
            .unwrap_err();
    let OptionsError::File { path, message } = &e else {
        panic!("expected File, got {e:?}")
    };
    assert_eq!(path, "/etc/bgpgen/opts.yaml");
    assert!(message.contains("bogus-key"), "{message}");
    let shown = e.to_string();
    assert!(
        shown.contains("/etc/bgpgen/opts.yaml") && shown.contains("bogus-key"),
        "{shown}"
    );
}

#[test]
fn options_file_not_a_mapping() {
    for text in ["- cluster-as\n- 65000\n", "just text\n", "42\n"] {
        let e = SpeakerArgs::from_options_yaml("list.yaml", text).unwrap_err();
        let OptionsError::File { path, message } = &e else {
            panic!("{text:?}: expected File, got {e:?}")
        };
        assert_eq!(path, "list.yaml");
        assert!(message.contains("mapping"), "{message}");
    }
    let e = SpeakerArgs::from_options_yaml("bad.yaml", "cluster-as: [1\n").unwrap_err();
    assert!(
        matches!(&e, OptionsError::File { path, .. } if path == "bad.yaml"),
        "{e:?}"
    );
    let e = SpeakerArgs::from_options_yaml("nested.yaml", "cluster-as:\n  value: 1\n").unwrap_err();
    assert!(
        matches!(&e, OptionsError::File { message, .. } if message.contains("cluster-as")),
        "{e:?}"
    );
}

#[test]
fn options_file_bad_value_fails_at_resolve() {
    let args = SpeakerArgs::from_options_yaml("o.yaml", "holdtime: 2s\n").unwrap();
    let e = resolve(
        &parse_speaker_args(BASE).unwrap().or(args),
        &Env::default(),
        &Snapshot::default(),
        &reader,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            OptionsError::Invalid {
                flag: "holdtime",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn command_line_wins_over_file() {
    let file = SpeakerArgs::from_options_yaml(
        "o.yaml",
        "cluster-as: 65000\nneighbor-as: 65001\nneighbor-address: [10.0.0.1]\nnode-name: file-node\n\
         router-id: 1.1.1.1\nholdtime: 30s\npassivemode: true\nauth-password-file: /secret/password\n",
    )
    .unwrap();
    let cli = parse_speaker_args([
        "--cluster-as=64999",
        "--neighbor-address=10.0.0.2",
        "--passivemode=false",
        "--auth-password=cli-pass",
    ])
    .unwrap();
    let merged = cli.or(file);
    assert_eq!(merged.cluster_as.as_deref(), Some("64999"));
    assert_eq!(merged.neighbor_as.as_deref(), Some("65001"));
    assert_eq!(merged.neighbor_address, vec!["10.0.0.2"]);
    let o = resolve(&merged, &Env::default(), &Snapshot::default(), &reader)
        .unwrap()
        .options;
    assert_eq!(o.cluster_as, Asn(64999));
    assert_eq!(o.neighbor_as, Asn(65001));
    assert_eq!(o.neighbors_v4, vec![Ipv4Addr::new(10, 0, 0, 2)]);
    assert_eq!(
        o.mode,
        SpeakerMode::Node {
            node: "file-node".into()
        }
    );
    assert_eq!(o.hold_time, secs(30));
    assert!(!o.passive);
    // The command line's password replaces the file's password file rather than conflicting.
    assert_eq!(o.password.as_ref().map(|p| p.expose()), Some("cli-pass"));
}

#[test]
fn or_fills_only_unset() {
    let upper = parse_speaker_args(["--holdtime=10s"]).unwrap();
    let lower =
        parse_speaker_args(["--holdtime=20s", "--ebgp-multihop=4", "--node-ips=10.0.0.1"]).unwrap();
    let m = upper.or(lower);
    assert_eq!(m.holdtime.as_deref(), Some("10s"));
    assert_eq!(m.ebgp_multihop.as_deref(), Some("4"));
    assert_eq!(m.node_ips, vec!["10.0.0.1"]);
    assert_eq!(
        SpeakerArgs::default().or(SpeakerArgs::default()),
        SpeakerArgs::default()
    );
}

// ---------------------------------------------------------------------------------------------
// NAT gateway mode

const GW_YAML: &str = r#"
kind: VpcNatGateway
apiVersion: kubeovn.io/v1
metadata:
  name: vpc-natgw
spec:
  vpc: vpc1
  subnet: net1
  lanIp: 10.0.1.10
  bgpSpeaker:
    enabled: true
    asn: 65500
    remoteAsn: 65000
    neighbors:
      - 100.127.4.161
      - fd:01::1
      - 100.127.4.160
    enableGracefulRestart: true
    routerId: 1.1.1.1
    holdTime: 1m
    password: "password123"
    extraArgs:
      - -v5
      - --ebgp-multihop=3
  selector:
    - "kubernetes.io/os: linux"
  externalSubnets:
  - ovn-vpc-external-network
"#;

fn gw_snapshot(yaml: &str) -> Snapshot {
    load_texts([("gw.yaml", yaml)]).expect("gateway manifest loads")
}

fn gw_env() -> Env {
    Env {
        gateway_name: Some("vpc-natgw".into()),
        ..Env::default()
    }
}

#[test]
fn nat_mode_without_gateway_name() {
    let m = missing(&["--nat-gw-mode"], Env::default());
    assert!(
        m.contains("GATEWAY_NAME") && m.contains("--gateway-name"),
        "{m}"
    );
    // An empty name is no name.
    let m = missing(&["--nat-gw-mode", "--gateway-name="], Env::default());
    assert!(m.contains("GATEWAY_NAME"), "{m}");
}

#[test]
fn nat_mode_options_from_gateway_spec() {
    let snapshot = gw_snapshot(GW_YAML);
    let r = resolve_in(&["--nat-gw-mode"], gw_env(), &snapshot).unwrap();
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
    let o = r.options;
    assert_eq!(
        o.mode,
        SpeakerMode::NatGateway {
            gateway: "vpc-natgw".into()
        }
    );
    assert_eq!(o.cluster_as, Asn(65500));
    assert_eq!(o.neighbor_as, Asn(65000));
    assert_eq!(
        o.neighbors_v4,
        vec![
            Ipv4Addr::new(100, 127, 4, 160),
            Ipv4Addr::new(100, 127, 4, 161)
        ]
    );
    assert_eq!(o.neighbors_v6, vec!["fd:1::1".parse::<Ipv6Addr>().unwrap()]);
    assert_eq!(o.hold_time, secs(60));
    assert_eq!(o.router_id, Ipv4Addr::new(1, 1, 1, 1));
    assert_eq!(o.password.as_ref().map(|p| p.expose()), Some("password123"));
    assert!(o.graceful_restart);
    assert_eq!(o.ebgp_multihop_ttl, 3);
    // The rest keeps the defaults.
    assert!(!o.passive);
    assert_eq!(o.graceful_restart_time, secs(90));
    assert!(!format!("{o:?}").contains("password123"));
}

#[test]
fn nat_mode_gateway_name_flag() {
    let snapshot = gw_snapshot(GW_YAML);
    let r = resolve_in(
        &["--nat-gw-mode", "--gateway-name=vpc-natgw"],
        Env::default(),
        &snapshot,
    )
    .unwrap();
    assert_eq!(
        r.options.mode,
        SpeakerMode::NatGateway {
            gateway: "vpc-natgw".into()
        }
    );
    assert_eq!(r.options.cluster_as, Asn(65500));
    // The flag wins over GATEWAY_NAME.
    let env = Env {
        gateway_name: Some("other".into()),
        ..Env::default()
    };
    let r = resolve_in(
        &["--nat-gw-mode", "--gateway-name=vpc-natgw"],
        env,
        &snapshot,
    )
    .unwrap();
    assert_eq!(
        r.options.mode,
        SpeakerMode::NatGateway {
            gateway: "vpc-natgw".into()
        }
    );
}

#[test]
fn nat_mode_flags_override_spec() {
    let snapshot = gw_snapshot(GW_YAML);
    let r = resolve_in(
        &[
            "--nat-gw-mode",
            "--cluster-as=64512",
            "--holdtime=30s",
            "--router-id=2.2.2.2",
            "--neighbor-address=192.0.2.1",
            "--graceful-restart=false",
            "--ebgp-multihop=9",
            "--auth-password=flag-pass",
        ],
        gw_env(),
        &snapshot,
    )
    .unwrap();
    let o = r.options;
    assert_eq!(o.cluster_as, Asn(64512));
    assert_eq!(o.neighbor_as, Asn(65000));
    assert_eq!(o.hold_time, secs(30));
    assert_eq!(o.router_id, Ipv4Addr::new(2, 2, 2, 2));
    assert_eq!(o.neighbors_v4, vec![Ipv4Addr::new(192, 0, 2, 1)]);
    assert_eq!(o.neighbors_v6, vec!["fd:1::1".parse::<Ipv6Addr>().unwrap()]);
    assert!(!o.graceful_restart);
    assert_eq!(o.ebgp_multihop_ttl, 9);
    assert_eq!(o.password.as_ref().map(|p| p.expose()), Some("flag-pass"));
}

#[test]
fn nat_mode_password_file_flag_overrides_spec_password() {
    let snapshot = gw_snapshot(GW_YAML);
    let r = resolve_in(
        &["--nat-gw-mode", "--auth-password-file=/secret/password"],
        gw_env(),
        &snapshot,
    )
    .unwrap();
    assert_eq!(
        r.options.password.as_ref().map(|p| p.expose()),
        Some("s3cr3t-Pa55")
    );
}

#[test]
fn nat_mode_gateway_not_found() {
    let snapshot = gw_snapshot(GW_YAML);
    let env = Env {
        gateway_name: Some("elsewhere".into()),
        ..Env::default()
    };
    let e = resolve_in(&["--nat-gw-mode"], env.clone(), &snapshot).unwrap_err();
    let OptionsError::Missing(m) = e else {
        panic!("expected Missing, got {e:?}")
    };
    assert!(
        m.contains("VpcNatGateway/elsewhere") && m.contains("not found"),
        "{m}"
    );
    assert!(
        m.contains("--cluster-as") && m.contains("--neighbor-as"),
        "{m}"
    );
    assert!(!m.contains("--node-name"), "{m}");

    // With every option given as flags the gateway is not needed.
    let r = resolve_in(
        &[
            "--nat-gw-mode",
            "--cluster-as=1",
            "--neighbor-as=2",
            "--neighbor-address=10.0.0.1",
            "--router-id=1.2.3.4",
        ],
        env,
        &Snapshot::default(),
    )
    .unwrap();
    assert_eq!(
        r.options.mode,
        SpeakerMode::NatGateway {
            gateway: "elsewhere".into()
        }
    );
}

#[test]
fn nat_mode_does_not_need_node_name() {
    let snapshot = gw_snapshot(GW_YAML);
    let r = resolve_in(&["--nat-gw-mode"], gw_env(), &snapshot).unwrap();
    assert!(matches!(r.options.mode, SpeakerMode::NatGateway { .. }));
    let r = resolve_args(
        &[
            "--nat-gw-mode=true",
            "--gateway-name=g",
            "--cluster-as=1",
            "--neighbor-as=2",
            "--neighbor-address=10.0.0.1",
        ],
        Env::default(),
    )
    .unwrap();
    assert_eq!(
        r.options.mode,
        SpeakerMode::NatGateway {
            gateway: "g".into()
        }
    );
}

#[test]
fn nat_mode_invalid_extra_args() {
    let yaml = GW_YAML.replace("- --ebgp-multihop=3", "- --no-such-flag");
    let snapshot = gw_snapshot(&yaml);
    let e = resolve_in(&["--nat-gw-mode"], gw_env(), &snapshot).unwrap_err();
    let OptionsError::ExtraArgs { gateway, message } = &e else {
        panic!("expected ExtraArgs, got {e:?}")
    };
    assert_eq!(gateway, "vpc-natgw");
    assert!(message.contains("--no-such-flag"), "{message}");
    assert!(
        e.to_string()
            .contains("VpcNatGateway/vpc-natgw spec.bgpSpeaker.extraArgs"),
        "{e}"
    );
}

#[test]
fn nat_mode_disabled_speaker_warns() {
    let yaml = GW_YAML.replace("enabled: true", "enabled: false");
    let snapshot = gw_snapshot(&yaml);
    let r = resolve_in(&["--nat-gw-mode"], gw_env(), &snapshot).unwrap();
    assert_eq!(r.diagnostics.len(), 1, "{:?}", r.diagnostics);
    assert_eq!(r.diagnostics[0].object, "VpcNatGateway/vpc-natgw");
    assert!(
        r.diagnostics[0].message.contains("enabled"),
        "{:?}",
        r.diagnostics
    );
}

#[test]
fn gateway_speaker_args_match_kube_ovn() {
    let snapshot = gw_snapshot(GW_YAML);
    let spec = snapshot.gateways["vpc-natgw"].bgp_speaker.as_ref().unwrap();
    let args = gateway_speaker_args("vpc-natgw", spec).unwrap();
    assert_eq!(args.nat_gw_mode.as_deref(), Some("true"));
    assert_eq!(args.cluster_as.as_deref(), Some("65500"));
    assert_eq!(args.neighbor_as.as_deref(), Some("65000"));
    assert_eq!(
        args.neighbor_address,
        vec!["100.127.4.161", "100.127.4.160"]
    );
    assert_eq!(args.neighbor_ipv6_address, vec!["fd:1::1"]);
    assert_eq!(args.holdtime.as_deref(), Some("60s"));
    assert_eq!(args.router_id.as_deref(), Some("1.1.1.1"));
    assert_eq!(args.auth_password.as_deref(), Some("password123"));
    assert_eq!(args.graceful_restart.as_deref(), Some("true"));
    assert_eq!(args.ebgp_multihop.as_deref(), Some("3"));
    assert_eq!(args.ignored.verbosity.as_deref(), Some("5"));
}

#[test]
fn nat_mode_not_set_ignores_gateway() {
    // Without --nat-gw-mode the gateway spec is not consulted, and node mode rules apply.
    let snapshot = gw_snapshot(GW_YAML);
    let m = match resolve_in(&[], gw_env(), &snapshot) {
        Err(OptionsError::Missing(m)) => m,
        other => panic!("expected Missing, got {other:?}"),
    };
    assert!(
        m.contains("--cluster-as") && m.contains("--node-name"),
        "{m}"
    );
    assert!(!m.contains("VpcNatGateway"), "{m}");
}
