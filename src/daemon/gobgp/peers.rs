//! The neighbors gobgpd should have, read from the rendered `gobgpd.toml` (with the `toml` crate):
//! the one source of truth for both gobgpd's own start (`-f`) and the repairs bgpgen makes through
//! the API after a reload (`ensure_peers`). Reading the file rather than the intent means a user's
//! template override (another hold time, multihop for one neighbor) is what the daemon is kept
//! at, not silently undone by the API, and there is no second renderer to keep in step with the
//! template.

use std::net::IpAddr;

use serde::Deserialize;

use crate::daemon::gobgp::api::PeerSpec;
use crate::model::Family;

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case", default)]
struct File {
    neighbors: Vec<Neighbor>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Wrap<T: Default> {
    config: T,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case", default)]
struct Neighbor {
    config: NeighborConfig,
    timers: Wrap<Timers>,
    transport: Wrap<Transport>,
    ebgp_multihop: Wrap<Multihop>,
    graceful_restart: Wrap<GracefulRestart>,
    afi_safis: Vec<AfiSafi>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case", default)]
struct NeighborConfig {
    neighbor_address: String,
    peer_as: u32,
    auth_password: Option<String>,
}

/// gobgpd reads its timers as floating-point seconds; integers are what templates write.
#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case", default)]
struct Timers {
    hold_time: f64,
    keepalive_interval: f64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case", default)]
struct Transport {
    passive_mode: bool,
    local_address: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case", default)]
struct Multihop {
    enabled: bool,
    multihop_ttl: u8,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case", default)]
struct GracefulRestart {
    enabled: bool,
    restart_time: u32,
    deferral_time: u32,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case", default)]
struct AfiSafi {
    config: AfiSafiConfig,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case", default)]
struct AfiSafiConfig {
    afi_safi_name: String,
}

fn seconds(what: &str, address: &str, value: f64) -> Result<u64, String> {
    if value.is_finite() && (0.0..=f64::from(u32::MAX)).contains(&value) {
        Ok(value.round() as u64)
    } else {
        Err(format!(
            "neighbor {address}: {what} {value} is not a number of seconds"
        ))
    }
}

/// The `[[neighbors]]` of a gobgpd.toml as the specs `ensure_peers` compares gobgpd with.
/// Settings bgpgen does not manage are left to gobgpd (and kept by `ensure_peers`).
pub fn from_toml(text: &str) -> Result<Vec<PeerSpec>, String> {
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    file.neighbors
        .into_iter()
        .map(|n| {
            let raw = n.config.neighbor_address.as_str();
            let address: IpAddr = raw
                .parse()
                .map_err(|_| format!("neighbor-address {raw:?} is not an IP address"))?;
            let families = n
                .afi_safis
                .iter()
                .map(|a| match a.config.afi_safi_name.as_str() {
                    "ipv4-unicast" => Ok(Family::Ipv4Unicast),
                    "ipv6-unicast" => Ok(Family::Ipv6Unicast),
                    other => Err(format!(
                        "neighbor {address}: afi-safi-name {other:?} is not one bgpgen manages (ipv4-unicast, ipv6-unicast)"
                    )),
                })
                .collect::<Result<Vec<Family>, String>>()?;
            let local_address = match n.transport.config.local_address.as_deref() {
                None | Some("") => None,
                Some(text) => Some(text.parse::<IpAddr>().map_err(|_| {
                    format!("neighbor {address}: local-address {text:?} is not an IP address")
                })?),
            }
            .filter(|a| !a.is_unspecified());
            let multihop = n.ebgp_multihop.config;
            let gr = n.graceful_restart.config;
            Ok(PeerSpec {
                address,
                peer_as: n.config.peer_as,
                families,
                hold_time: seconds("hold-time", raw, n.timers.config.hold_time)?,
                keepalive: seconds("keepalive-interval", raw, n.timers.config.keepalive_interval)?,
                password: n.config.auth_password.filter(|p| !p.is_empty()),
                passive: n.transport.config.passive_mode,
                ebgp_multihop_ttl: multihop.enabled.then_some(multihop.multihop_ttl),
                graceful_restart: gr.enabled.then_some((gr.restart_time, gr.deferral_time)),
                local_address,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intent::Intent;
    use crate::render::{Backend, Templates, render};

    fn intent() -> Intent {
        let yaml = r#"
apiVersion: bgpgen/v1
kind: Intent
speaker: {mode: node, node: n1, gateway: null, routerId: 192.0.2.1, localAs: 65000}
bgp:
  holdTime: 90
  keepalive: 30
  passive: false
  ebgpMultihopTtl: 4
  extendedNexthop: false
  gracefulRestart: {enabled: true, restartTime: 120, deferralTime: 300}
  bfd: {enabled: false, minTxMs: 1000, minRxMs: 1000, multiplier: 3}
  password: "p\"w"
neighbors:
  - {address: 192.0.2.10, remoteAs: 65001, families: [ipv4-unicast], localAddress: 192.0.2.1}
  - {address: "2001:db8::10", remoteAs: 65000, families: [ipv6-unicast]}
routes: []
diagnostics: []
hash: ""
"#;
        crate::source::yaml::from_str(yaml).expect("intent")
    }

    #[test]
    fn the_builtin_template_renders_what_the_specs_say() {
        let rendered = render(&intent(), Backend::Gobgp, &Templates::builtin(), true).unwrap();
        let specs = from_toml(rendered.file("gobgpd.toml").unwrap()).expect("parse");
        assert_eq!(specs.len(), 2);
        let (ebgp, ibgp) = (&specs[0], &specs[1]);
        assert_eq!(ebgp.address, "192.0.2.10".parse::<IpAddr>().unwrap());
        assert_eq!(ebgp.peer_as, 65001);
        assert_eq!(ebgp.ebgp_multihop_ttl, Some(4), "eBGP gets multihop");
        assert_eq!(ibgp.ebgp_multihop_ttl, None, "iBGP does not");
        assert_eq!(ebgp.graceful_restart, Some((120, 300)));
        assert_eq!(
            ebgp.password.as_deref(),
            Some("p\"w"),
            "TOML escapes read back"
        );
        assert_eq!((ebgp.hold_time, ebgp.keepalive), (90, 30));
        assert_eq!(ebgp.families, [Family::Ipv4Unicast]);
        assert_eq!(ibgp.families, [Family::Ipv6Unicast]);
        assert_eq!(ebgp.local_address, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(ibgp.local_address, None);
        assert!(!ebgp.passive);
        assert!(
            !format!("{ebgp:?}").contains("p\\\"w"),
            "no password in Debug"
        );
    }

    /// A user's template is what gobgpd runs; the API repairs must keep it, not the intent.
    #[test]
    fn a_user_template_override_is_the_spec() {
        let dir = tempfile::tempdir().unwrap();
        let builtin = crate::daemon::gobgp::render::TEMPLATES[0].1;
        std::fs::write(
            dir.path().join("gobgpd.toml.j2"),
            builtin.replace("hold-time = {{ hold_time }}", "hold-time = 45.0"),
        )
        .unwrap();
        let templates = Templates::load(Some(dir.path())).unwrap();
        let rendered = render(&intent(), Backend::Gobgp, &templates, true).unwrap();
        let specs = from_toml(rendered.file("gobgpd.toml").unwrap()).expect("parse");
        assert!(specs.iter().all(|s| s.hold_time == 45), "{specs:?}");
    }

    #[test]
    fn bad_files_name_the_problem() {
        let bad = |text: &str| from_toml(text).expect_err(text);
        assert!(
            bad("[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"x\"\n")
                .contains("\"x\"")
        );
        assert!(
            bad("[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"192.0.2.2\"\n  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"l2vpn-evpn\"\n")
                .contains("l2vpn-evpn")
        );
        assert!(from_toml("[global.config]\n  as = 1\n").unwrap().is_empty());
        assert!(from_toml("not toml [").is_err());
    }
}
