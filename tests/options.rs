//! Speaker options (docs/design.md section 3): kube-ovn-speaker compatible flags, defaults, ranges and
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
    // docs/design.md: 1s..4095s; a restart time below one second would be sent as 0.
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
    // kube-ovn: checked only with --enable-bfd, 1 to 4294967 ms.
    for flag in ["bfd-min-tx", "bfd-min-rx"] {
        for v in ["0", "4294968"] {
            let m = missing(
                &with(&["--enable-bfd", &format!("--{flag}={v}")]),
                Env::default(),
            );
            assert!(m.contains(&format!("--{flag}")), "{m}");
        }
        // pflag still parses them as uint32 when BFD is off.
        invalid(&[&format!("--{flag}=fast")], flag);
        invalid(&[&format!("--{flag}=4294967296")], flag);
        invalid(&[&format!("--{flag}=+5")], flag);
    }
    let o = ok(&["--enable-bfd", "--bfd-min-tx=10", "--bfd-min-rx=4294967"]);
    assert!(o.bfd.enabled);
    assert_eq!((o.bfd.min_tx_ms, o.bfd.min_rx_ms), (10, 4294967));
    let o = ok(&["--enable-bfd", "--bfd-min-tx=1", "--bfd-min-rx=60001"]);
    assert_eq!((o.bfd.min_tx_ms, o.bfd.min_rx_ms), (1, 60001));
    // Any uint32 while BFD is off.
    let o = ok(&["--bfd-min-tx=0", "--bfd-min-rx=4294967295"]);
    assert_eq!((o.bfd.min_tx_ms, o.bfd.min_rx_ms), (0, u32::MAX));
}
#[test]
fn bfd_multiplier_range() {
    assert_eq!(
        ok(&["--enable-bfd", "--bfd-detection-multiplier=1"])
            .bfd
            .multiplier,
        1
    );
    assert_eq!(
        ok(&["--enable-bfd", "--bfd-detection-multiplier=255"])
            .bfd
            .multiplier,
        255
    );
    let m = missing(
        &with(&["--enable-bfd", "--bfd-detection-multiplier=0"]),
        Env::default(),
    );
    assert!(m.contains("--bfd-detection-multiplier"), "{m}");
    // 0 is fine while BFD is off; 256 is not a uint8 for pflag either way.
    assert_eq!(ok(&["--bfd-detection-multiplier=0"]).bfd.multiplier, 0);
    invalid(
        &["--bfd-detection-multiplier=256"],
        "bfd-detection-multiplier",
    );
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
fn router_id_pod_ips_garbage_is_ignored_with_warning() {
    // kube-ovn's util.SplitStringIP ignores what it cannot parse; so does bgpgen (issue 12).
    for garbage in [
        "fd00::5,not-an-ip",
        "not-an-ip",
        "10.0.0.1,10.0.0.2",
        "a,b,c",
    ] {
        let env = Env {
            pod_ips: Some(garbage.into()),
            pod_ip: Some("10.0.0.9".into()),
            ..Env::default()
        };
        let r = resolve_args(&without_router_id(), env)
            .unwrap_or_else(|e| panic!("POD_IPS={garbage:?} should be ignored, got {e}"));
        // POD_IPS is set, so POD_IP is not consulted (kube-ovn reads POD_IP only when POD_IPS is empty).
        assert_eq!(r.options.router_id, Ipv4Addr::UNSPECIFIED, "{garbage}");
        assert!(
            r.diagnostics
                .iter()
                .any(|d| d.level == Level::Warning && d.message.contains("POD_IPS")),
            "{garbage}: {:?}",
            r.diagnostics
        );
    }
    let env = Env {
        pod_ips: Some("10.0.0.7/24,fd00::7/64".into()),
        ..Env::default()
    };
    assert_eq!(
        resolve_args(&without_router_id(), env)
            .unwrap()
            .options
            .router_id,
        Ipv4Addr::new(10, 0, 0, 7)
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
fn any_password_kube_ovn_takes_is_compiled() {
    // Only a backend that cannot carry a character refuses it, when rendering (tests/render.rs).
    for p in [
        "a?b",
        "a b",
        "a\"b",
        "a'b",
        "a\\b",
        "p@ss!#$%w0rd",
        "é€",
        &"x".repeat(81),
    ] {
        let o = ok(&[&format!("--auth-password={p}")]);
        assert_eq!(o.password.as_ref().map(|s| s.expose()), Some(p), "{p:?}");
    }
    // Empty is no password, as for kube-ovn-speaker.
    assert!(ok(&["--auth-password="]).password.is_none());
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
    let OptionsError::File { path, message, .. } = &e else {
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
        let OptionsError::File { path, message, .. } = &e else {
            panic!("{text:?}: expected File, got {e:?}")
        };
        assert_eq!(path, "list.yaml");
        assert!(message.contains("mapping"), "{message}");
    }
    let e = SpeakerArgs::from_options_yaml("bad.yaml", "cluster-as: [1\n").unwrap_err();
    assert!(
        matches!(&e, OptionsError::File { path, at: Some((1, 13)), .. } if path == "bad.yaml"),
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
    // One comma-separated value per family, as Kube-OVN's controller passes them.
    assert_eq!(args.neighbor_address, vec!["100.127.4.161,100.127.4.160"]);
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

// ---------------------------------------------------------------------------------------------
// Drop-in parity with kube-ovn-speaker (issue 12) and option checks (issue 11 item 8)

#[test]
fn release_1_13_node_name_env_is_read() {
    // release-1.13's speaker.yaml sets KUBE_NODE_NAME from the downward API; master NODE_NAME.
    let env = Env::from_lookup(|k| (k == "KUBE_NODE_NAME").then(|| "Node-7".to_string()));
    assert_eq!(env.node_name.as_deref(), Some("Node-7"));
    let both = Env::from_lookup(|k| match k {
        "NODE_NAME" => Some("first".into()),
        "KUBE_NODE_NAME" => Some("second".into()),
        _ => None,
    });
    assert_eq!(both.node_name.as_deref(), Some("first"));
    let empty = Env::from_lookup(|k| match k {
        "NODE_NAME" => Some(String::new()),
        "KUBE_NODE_NAME" => Some("second".into()),
        _ => None,
    });
    assert_eq!(empty.node_name.as_deref(), Some("second"));
    let args = [
        "--neighbor-address=10.32.32.1",
        "--neighbor-as=65030",
        "--cluster-as=65000",
    ];
    let r = resolve_args(&args, env).expect("release-1.13's args and env resolve");
    assert_eq!(
        r.options.mode,
        SpeakerMode::Node {
            node: "node-7".into()
        }
    );
}

/// Every flag klog v2 (v2.130 in release-1.13, v2.140 in master) registers, with valid values.
const KLOG_FLAGS: &[&str] = &[
    "--log_dir=/var/log/kube-ovn",
    "--log_file=/var/log/kube-ovn/kube-ovn-speaker.log",
    "--log_file_max_size=200",
    "--logtostderr=false",
    "--alsologtostderr=true",
    "--legacy_stderr_threshold_behavior=false",
    "--v=3",
    "-v",
    "4",
    "-v5",
    "-v=2",
    "--add_dir_header",
    "--skip_headers=true",
    "--one_output",
    "--skip_log_headers",
    "--stderrthreshold=WARNING",
    "--alsologtostderrthreshold=INFO",
    "--vmodule=speaker*=4,bgp=2",
    "--log_backtrace_at=bgp.go:234",
];

#[test]
fn every_klog_flag_is_accepted() {
    let o = ok(KLOG_FLAGS);
    assert_eq!(o, ok(&[]), "klog flags change nothing");
    for flag in KLOG_FLAGS.iter().filter(|f| f.starts_with("--")) {
        ok(&[flag]);
    }
    // kube-ovn-speaker's own flags that do not change the intent.
    ok(&[
        "--pprof-port=10667",
        "--grpc-host=::1",
        "--grpc-port=+50051",
        "--enable-metrics=false",
        "--log-perm=0640",
        "--kubeconfig=/etc/kubeconfig",
    ]);
}

#[test]
fn bad_values_kube_ovn_refuses_are_refused() {
    for (arg, flag) in [
        ("--grpc-host=not-an-ip", "grpc-host"),
        ("--grpc-host=", "grpc-host"),
        ("--grpc-port=fifty", "grpc-port"),
        ("--pprof-port=99999999999", "pprof-port"),
        ("--log-perm=999", "log-perm"),
        ("--log-perm=rw-r-----", "log-perm"),
        ("--v=high", "v"),
        ("--stderrthreshold=LOUD", "stderrthreshold"),
        ("--alsologtostderrthreshold=x", "alsologtostderrthreshold"),
        ("--vmodule=speaker", "vmodule"),
        ("--log_backtrace_at=bgp:1", "log_backtrace_at"),
        ("--log_file_max_size=-1", "log_file_max_size"),
        ("--logtostderr=maybe", "logtostderr"),
        ("--skip_headers=2", "skip_headers"),
        ("--enable-metrics=yes", "enable-metrics"),
        ("--neighbor-address=10.0.0.1,,10.0.0.2", "neighbor-address"),
        ("--neighbor-address=10.0.0.1,", "neighbor-address"),
        (
            "--neighbor-ipv6-address=fd00::1,,fd00::2",
            "neighbor-ipv6-address",
        ),
        ("--node-ips=10.0.0.1,,fd00::1", "node-ips"),
        ("--cluster-as=+65000", "cluster-as"),
        ("--cluster-as= 65000", "cluster-as"),
        ("--neighbor-as=-1", "neighbor-as"),
        ("--ebgp-multihop=+2", "ebgp-multihop"),
    ] {
        invalid(&[arg], flag);
    }
    // --log-perm is read only outside NAT gateways, as kube-ovn-speaker reads it.
    let args = [
        "--nat-gw-mode",
        "--gateway-name=gw",
        "--cluster-as=65000",
        "--neighbor-as=65001",
        "--neighbor-address=10.32.32.254",
        "--router-id=10.0.0.11",
        "--log-perm=999",
    ];
    resolve_args(&args, Env::default()).expect("--log-perm is not read in NAT gateway mode");
}

#[test]
fn go_integer_syntax_as_pflag_reads_it() {
    let r = resolve_args(&with(&["--cluster-as=0x10"]), Env::default()).unwrap();
    assert_eq!(r.options.cluster_as, Asn(16));
    assert!(
        r.diagnostics
            .iter()
            .any(|d| d.message.contains("--cluster-as") && d.message.contains("16")),
        "{:?}",
        r.diagnostics
    );
    // A leading zero is octal to Go: kube-ovn-speaker would run with AS 27136. Same here, said.
    let r = resolve_args(&with(&["--neighbor-as=065000"]), Env::default()).unwrap();
    assert_eq!(r.options.neighbor_as, Asn(27136));
    assert!(r.diagnostics.iter().any(|d| d.message.contains("27136")));
    assert_eq!(ok(&["--cluster-as=65_000"]).cluster_as, Asn(65000));
    assert_eq!(ok(&["--ebgp-multihop=0x10"]).ebgp_multihop_ttl, 16);
}

#[test]
fn node_ips_two_of_one_family_rejected() {
    let m = invalid(&["--node-ips=192.0.2.1,192.0.2.3"], "node-ips");
    assert!(m.contains("192.0.2.1") && m.contains("192.0.2.3"), "{m}");
    invalid(&["--node-ips=fd00::1", "--node-ips=fd00::2"], "node-ips");
    // The same address twice is one address.
    assert_eq!(
        ok(&["--node-ips=192.0.2.1,192.0.2.1"]).node_ip_v4,
        Some(Ipv4Addr::new(192, 0, 2, 1))
    );
}

#[test]
fn unusable_addresses_rejected_at_option_time() {
    for ip in [
        "0.0.0.0",
        "::",
        "224.0.0.5",
        "ff02::1",
        "169.254.0.1",
        "fe80::1",
        "127.0.0.1",
        "::1",
        "255.255.255.255",
    ] {
        let m = invalid(&[&format!("--node-ips={ip}")], "node-ips");
        assert!(m.contains("next hop"), "{ip}: {m}");
    }
    for ip in ["fe80::1", "::", "ff02::2"] {
        invalid(
            &[&format!("--neighbor-ipv6-address={ip}")],
            "neighbor-ipv6-address",
        );
    }
    for ip in ["0.0.0.0", "224.0.0.1", "255.255.255.255"] {
        invalid(&[&format!("--neighbor-address={ip}")], "neighbor-address");
    }
    // An IPv4-mapped IPv6 address is IPv4 to Go's net.ParseIP (To4 != nil), as in kube-ovn.
    let o = ok(&["--neighbor-address=::ffff:192.0.2.9"]);
    assert!(o.neighbors_v4.contains(&Ipv4Addr::new(192, 0, 2, 9)));
    invalid(
        &["--neighbor-ipv6-address=::ffff:192.0.2.9"],
        "neighbor-ipv6-address",
    );
}

#[test]
fn explicit_router_id_zero_rejected() {
    let m = invalid(&["--router-id=0.0.0.0"], "router-id");
    assert!(m.contains("0.0.0.0"), "{m}");
}

#[test]
fn options_file_lists_only_for_list_options() {
    let base = "cluster-as: 65000\nneighbor-as: 65001\nneighbor-address: 10.0.0.1\nnode-name: n\n";
    for (key, value) in [
        ("auth-password", "[ab, cd]"),
        ("ebgp-multihop", "[2]"),
        ("holdtime", "[90s, 60s]"),
        ("router-id", "[10.0.0.1]"),
    ] {
        let text = format!("{base}{key}: {value}\n");
        let e = SpeakerArgs::from_options_yaml("o.yaml", &text).unwrap_err();
        let m = e.to_string();
        assert!(m.contains(key) && m.contains("list"), "{key}: {m}");
        assert!(!m.contains("ab,cd"), "{m}");
    }
    let text = format!("{base}allowed-source-addresses: [10.0.0.5, 10.0.0.6]\n");
    let args = SpeakerArgs::from_options_yaml("o.yaml", &text).unwrap();
    assert_eq!(args.allowed_source_addresses, vec!["10.0.0.5", "10.0.0.6"]);
}

#[test]
fn options_file_quoted_and_plain_scalars_are_the_same_flag_value() {
    // A flag's value is text: `true` and "true", `65000` and "65000" are the same value, in YAML
    // and in JSON alike (JSON is YAML here), as they would be on a command line.
    let base = "cluster-as: 65000\nneighbor-as: 65001\nneighbor-address: 10.0.0.1\nnode-name: n\nrouter-id: 10.0.0.2\n";
    for text in [
        format!("{base}announce-cluster-ip: true\n"),
        format!("{base}announce-cluster-ip: \"true\"\n"),
        r#"{"cluster-as": "65000", "neighbor-as": 65001, "neighbor-address": ["10.0.0.1"], "node-name": "n", "router-id": "10.0.0.2", "announce-cluster-ip": "true"}"#.to_string(),
        r#"{"cluster-as": 65000, "neighbor-as": "65001", "neighbor-address": "10.0.0.1", "node-name": "n", "router-id": "10.0.0.2", "announce-cluster-ip": true}"#.to_string(),
    ] {
        let args = SpeakerArgs::from_options_yaml("o", &text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let o = resolve(&args, &Env::default(), &Snapshot::default(), &reader).unwrap().options;
        assert!(o.announce_cluster_ip, "{text}");
        assert_eq!(o.cluster_as, Asn(65000));
    }
}

#[test]
fn password_file_errors_name_the_file_flag() {
    let m = invalid(&["--auth-password-file=/nope/pw"], "auth-password-file");
    assert!(m.contains("/nope/pw"), "{m}");
}

#[test]
fn allowed_source_addresses_families_checked() {
    invalid(
        &["--allowed-source-addresses=fd00::1"],
        "allowed-source-addresses",
    );
    invalid(
        &["--allowed-source-ipv6-addresses=10.0.0.1"],
        "allowed-source-ipv6-addresses",
    );
    invalid(
        &["--allowed-source-addresses=10.0.0.1,,10.0.0.2"],
        "allowed-source-addresses",
    );
    let o = ok(&["--allowed-source-addresses=10.32.32.2,10.32.32.3"]);
    assert_eq!(o.allowed_source_v4.len(), 2);
    // BASE's neighbor needs a route lookup (done by apply/run), none was done here.
    assert_eq!(
        o.route_lookups_needed(),
        vec!["10.32.32.254".parse::<std::net::IpAddr>().unwrap()]
    );
}

#[test]
fn neighbor_local_address_given_explicitly() {
    let o = ok(&[
        "--allowed-source-addresses=10.32.32.2,10.32.32.3",
        "--neighbor-local-address=10.32.32.254=10.32.32.3",
    ]);
    assert!(o.route_lookups_needed().is_empty());
    assert_eq!(
        o.local_addresses
            .get(&"10.32.32.254".parse().unwrap())
            .copied(),
        Some("10.32.32.3".parse().unwrap())
    );
    for (value, needle) in [
        ("10.32.32.254=10.32.32.9", "not in the allowed"),
        ("10.32.32.254=fd00::1", "IPv4 BGP neighbor"),
        ("10.9.9.9=10.32.32.3", "not one of the neighbors"),
        ("10.32.32.254", "NEIGHBOR=LOCAL"),
    ] {
        let m = invalid(
            &[
                "--allowed-source-addresses=10.32.32.2,10.32.32.3",
                &format!("--neighbor-local-address={value}"),
            ],
            "neighbor-local-address",
        );
        assert!(m.contains(needle), "{value}: {m}");
    }
}

/// kube-ovn's config_test.go cases for selectNeighborLocalAddressFromRoutes, through bgpgen's
/// equivalent (the routes' preferred sources, in the kernel's order).
#[test]
fn route_lookup_selects_the_allowed_preferred_source() {
    use bgpgen::route_lookup::pin_with;
    use std::net::IpAddr;
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let base = |extra: &[&str]| {
        ok(&[&["--allowed-source-addresses=10.32.32.2,10.32.32.3"], extra].concat())
    };

    // The first source that is of the family and allowed.
    let mut o = base(&[]);
    pin_with(&mut o, &|_| {
        Ok(vec![None, Some(ip("10.32.32.9")), Some(ip("10.32.32.3"))])
    })
    .unwrap();
    assert_eq!(o.local_addresses[&ip("10.32.32.254")], ip("10.32.32.3"));

    // No source at all, none allowed, wrong family, lookup error: refused, naming the neighbor.
    for (sources, needle) in [
        (Ok(vec![None]), "no source address"),
        (Ok(vec![]), "no source address"),
        (Ok(vec![Some(ip("10.32.32.9"))]), "not in the allowed"),
        (Ok(vec![Some(ip("fd00::1"))]), "other family"),
        (
            Err("network is unreachable".to_string()),
            "network is unreachable",
        ),
    ] {
        let mut o = base(&[]);
        let e = pin_with(&mut o, &|_| sources.clone()).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("10.32.32.254") && m.contains(needle), "{m}");
        assert!(m.contains("--allowed-source-addresses"), "{m}");
    }

    // Families without an allowed list are not looked up.
    let mut o = ok(&[
        "--neighbor-ipv6-address=fd00::fe",
        "--allowed-source-ipv6-addresses=fd00::2",
    ]);
    assert_eq!(o.route_lookups_needed(), vec![ip("fd00::fe")]);
    pin_with(&mut o, &|n| {
        assert_eq!(n, ip("fd00::fe"));
        Ok(vec![Some(ip("fd00::2"))])
    })
    .unwrap();
    assert_eq!(o.local_addresses.len(), 1);
}

#[test]
fn route_lookup_through_netlink() {
    // The loopback route: the kernel answers with its preferred source, no namespace needed.
    let sources = bgpgen::route_lookup::route_sources("127.0.0.1".parse().unwrap())
        .expect("RTM_GETROUTE for 127.0.0.1");
    assert!(
        sources.contains(&Some("127.0.0.1".parse().unwrap())),
        "{sources:?}"
    );
}

#[test]
fn gateway_spec_fields_are_typed_as_the_crd_schema_in_yaml_and_json() {
    let yaml = |v: &str| {
        format!(
            "apiVersion: kubeovn.io/v1\nkind: VpcNatGateway\nmetadata: {{name: gw}}\nspec:\n  bgpSpeaker:\n    enabled: true\n    asn: 65500\n    remoteAsn: 65000\n    neighbors: [192.0.2.2]\n    enableGracefulRestart: {v}\n"
        )
    };
    assert!(load_texts([("gw.yaml", yaml("true").as_str())]).is_ok());
    for (name, text) in [
        ("gw.yaml", yaml("\"true\"")),
        (
            "gw.json",
            r#"{"apiVersion":"kubeovn.io/v1","kind":"VpcNatGateway","metadata":{"name":"gw"},"spec":{"bgpSpeaker":{"enabled":true,"asn":65500,"remoteAsn":65000,"neighbors":["192.0.2.2"],"enableGracefulRestart":"true"}}}"#.to_string(),
        ),
    ] {
        let e = load_texts([(name, text.as_str())]).unwrap_err().to_string();
        assert!(e.contains("enableGracefulRestart"), "{name}: {e}");
    }
    let quoted_asn = yaml("true").replace("asn: 65500", "asn: \"65500\"");
    assert!(load_texts([("gw.yaml", quoted_asn.as_str())]).is_err());
}
