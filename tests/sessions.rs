//! Session tests: the rendered configuration of each backend, run by the real daemon in a network
//! namespace, establishes IPv4 and IPv6 sessions with an upstream gobgpd in a second namespace,
//! which then holds exactly the intent's announced prefixes, each with the speaker's session
//! address as next hop.
//!
//! Needs root, `ip`, gobgpd and gobgp (the upstream), plus the backend's daemon. Missing ones skip
//! the test with a SKIPPED message, or fail it when BGPGEN_REQUIRE_DAEMONS=1.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use common::netns::{
    self, BGPD, BIRD, GOBGP, GOBGPD, IP, Lab, SPEAKER_V4, SPEAKER_V6, UPSTREAM_V4, UPSTREAM_V6,
    run_bgpgen,
};

const SPEAKER_AS: u32 = 65000;
const UPSTREAM_AS: u32 = 65030;

/// A ready dual-stack subnet announced by every speaker, a Local pod on this node and one on
/// another node (not announced here), and a ClusterIP service.
const MANIFESTS: &str = r#"apiVersion: kubeovn.io/v1
kind: Subnet
metadata:
  name: bgp-subnet
  annotations:
    ovn.kubernetes.io/bgp: "true"
spec:
  protocol: Dual
  cidrBlock: 10.16.0.0/16,fd00:10:16::/64
  gateway: 10.16.0.1,fd00:10:16::1
  provider: ovn
status:
  conditions:
    - type: Ready
      status: "True"
---
apiVersion: v1
kind: Pod
metadata:
  name: local-here
  namespace: default
  annotations:
    ovn.kubernetes.io/allocated: "true"
    ovn.kubernetes.io/routed: "true"
    ovn.kubernetes.io/logical_switch: bgp-subnet
    ovn.kubernetes.io/ip_address: 10.16.0.5,fd00:10:16::5
    ovn.kubernetes.io/bgp: local
spec:
  nodeName: node-1
  containers:
    - name: main
      image: nginx:1.27
status:
  phase: Running
  podIP: 10.16.0.5
  podIPs:
    - ip: 10.16.0.5
    - ip: fd00:10:16::5
---
apiVersion: v1
kind: Pod
metadata:
  name: local-elsewhere
  namespace: default
  annotations:
    ovn.kubernetes.io/allocated: "true"
    ovn.kubernetes.io/routed: "true"
    ovn.kubernetes.io/logical_switch: bgp-subnet
    ovn.kubernetes.io/ip_address: 10.16.0.6,fd00:10:16::6
    ovn.kubernetes.io/bgp: local
spec:
  nodeName: node-2
  containers:
    - name: main
      image: nginx:1.27
status:
  phase: Running
  podIP: 10.16.0.6
  podIPs:
    - ip: 10.16.0.6
    - ip: fd00:10:16::6
---
apiVersion: v1
kind: Service
metadata:
  name: dns
  namespace: default
  annotations:
    ovn.kubernetes.io/bgp: "true"
spec:
  type: ClusterIP
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  ports:
    - port: 53
"#;

const OPTIONS: &str = "neighbor-address: 192.0.2.2
neighbor-ipv6-address: 2001:db8::2
neighbor-as: 65030
cluster-as: 65000
node-name: node-1
router-id: 192.0.2.1
announce-cluster-ip: true
";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Gobgp,
    Frr,
    Bird,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Gobgp => "gobgp",
            Backend::Frr => "frr",
            Backend::Bird => "bird",
        }
    }

    /// Programs the test needs: the lab's, the upstream's and the speaker's.
    fn needs(self) -> Vec<&'static str> {
        let mut needs = vec![IP, GOBGPD, GOBGP];
        match self {
            Backend::Gobgp => {}
            Backend::Frr => needs.push(BGPD),
            Backend::Bird => needs.push(BIRD),
        }
        needs
    }

    /// gobgpd API ports (upstream, speaker). Each gobgpd listens inside its own namespace, so
    /// these could not collide anyway; distinct values keep logs unambiguous.
    fn api_ports(self) -> (u16, u16) {
        match self {
            Backend::Gobgp => (50151, 50152),
            Backend::Frr => (50161, 50162),
            Backend::Bird => (50171, 50172),
        }
    }
}

fn bgpgen(args: &[&str]) -> String {
    run_bgpgen(env!("CARGO_BIN_EXE_bgpgen"), args)
}

/// The intent's announced prefixes (routes not marked unreachable).
fn announced_prefixes(manifests: &str, options: &str) -> BTreeSet<IpNet> {
    let json = bgpgen(&[
        "compile",
        "-f",
        manifests,
        "--options",
        options,
        "-o",
        "json",
    ]);
    let intent: serde_json::Value = serde_json::from_str(&json).expect("intent JSON");
    intent["routes"]
        .as_array()
        .expect("intent routes")
        .iter()
        .filter(|r| r["unreachable"] != serde_json::Value::Bool(true))
        .map(|r| {
            let prefix = r["prefix"].as_str().expect("route prefix");
            prefix.parse().expect("route prefix parses")
        })
        .collect()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn session_test(backend: Backend) {
    let name = backend.name();
    let test = format!("sessions::{name}");
    if !netns::prerequisites(&test, &backend.needs()) {
        return;
    }
    let started = Instant::now();
    let mut lab = Lab::new(name);
    let dir = lab.dir().to_path_buf();

    // Inputs, intent and rendered configuration.
    let manifests = dir.join("manifests");
    fs::create_dir(&manifests).unwrap();
    fs::write(manifests.join("objects.yaml"), MANIFESTS).unwrap();
    let options = dir.join("options.yaml");
    fs::write(&options, OPTIONS).unwrap();
    let (manifests, options) = (path_str(&manifests), path_str(&options));
    let expected = announced_prefixes(manifests, options);
    // Guard against a vacuous test: the cases this manifest set is made of.
    for p in [
        "10.16.0.0/16",
        "fd00:10:16::/64",
        "10.16.0.5/32",
        "fd00:10:16::5/128",
        "10.96.0.10/32",
    ] {
        assert!(expected.contains(&net(p)), "intent lacks {p}: {expected:?}");
    }
    for p in ["10.16.0.6/32", "fd00:10:16::6/128"] {
        assert!(
            !expected.contains(&net(p)),
            "intent announces the other node's {p}"
        );
    }
    let out = dir.join("rendered");
    let out_str = path_str(&out);
    bgpgen(&[
        "render",
        "-f",
        manifests,
        "--options",
        options,
        "--backend",
        name,
        "--out",
        out_str,
    ]);

    // The upstream first, so that the speaker's first connection attempt finds it listening
    // (FRR and BIRD retry only after 120 s by default).
    let (upstream_port, speaker_port) = backend.api_ports();
    let upstream = lab.start_upstream(upstream_port, UPSTREAM_AS, SPEAKER_AS);
    let speaker_ns = lab.speaker_ns().to_string();
    match backend {
        Backend::Gobgp => {
            let speaker = lab.start_gobgpd(
                &speaker_ns,
                "speaker-gobgpd",
                &out.join("gobgpd.toml"),
                speaker_port,
            );
            let routes = fs::read_to_string(out.join("routes.txt")).expect("routes.txt");
            let paths = bgpgen::routes_file::parse(&routes).expect("routes.txt parses");
            assert!(!paths.is_empty(), "routes.txt is empty:\n{routes}");
            for path in paths {
                if let Err(e) = speaker.add_path(path.prefix, path.next_hop) {
                    let report = lab.report();
                    panic!("cannot inject {}: {e}\n{report}", path.prefix);
                }
            }
        }
        Backend::Frr => {
            lab.start_bgpd(&speaker_ns, "speaker-bgpd", &out.join("frr.conf"));
        }
        Backend::Bird => {
            lab.start_bird(&speaker_ns, "speaker-bird", &out.join("bird.conf"));
        }
    }

    let rib = lab.wait_for(
        "the upstream RIB to hold exactly the announced prefixes",
        Duration::from_secs(45),
        Duration::from_millis(500),
        |_| {
            let rib = upstream.rib()?;
            let got: BTreeSet<IpNet> = rib.iter().map(|p| p.prefix).collect();
            if got == expected {
                Ok(rib)
            } else {
                Err(format!(
                    "expected: {expected:?}\ngot:      {got:?}\nmissing:  {:?}\nextra:    {:?}",
                    expected.difference(&got).collect::<Vec<_>>(),
                    got.difference(&expected).collect::<Vec<_>>()
                ))
            }
        },
    );
    let established = started.elapsed();

    let v4: IpAddr = SPEAKER_V4.parse().unwrap();
    let v6: IpAddr = SPEAKER_V6.parse().unwrap();
    let wrong: Vec<String> = rib
        .iter()
        .filter(|p| {
            let want = if p.prefix.addr().is_ipv4() { v4 } else { v6 };
            p.next_hop != Some(want) || p.neighbor != Some(want)
        })
        .map(|p| format!("{p:?}"))
        .collect();
    if !wrong.is_empty() {
        let report = lab.report();
        panic!(
            "paths at the upstream ({UPSTREAM_V4}, {UPSTREAM_V6}) not learned from and next-hopped \
             to the speaker's session address ({SPEAKER_V4} for IPv4, {SPEAKER_V6} for IPv6):\n{}\n{report}",
            wrong.join("\n")
        );
    }
    eprintln!(
        "sessions::{name}: upstream holds the {} announced prefixes {:.1?} after start",
        expected.len(),
        established
    );
}

#[test]
fn gobgp_speaker_announces_the_intent_to_an_upstream_router() {
    session_test(Backend::Gobgp);
}

#[test]
fn frr_speaker_announces_the_intent_to_an_upstream_router() {
    session_test(Backend::Frr);
}

#[test]
fn bird_speaker_announces_the_intent_to_an_upstream_router() {
    session_test(Backend::Bird);
}
