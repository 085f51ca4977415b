//! Session tests: the rendered configuration of each backend, run by the real daemon in a network
//! namespace, establishes IPv4 and IPv6 sessions with an upstream gobgpd in a second namespace,
//! which then holds exactly the intent's announced prefixes, each with the speaker's session
//! address as next hop.
//!
//! Needs root, `ip`, gobgpd and gobgp (the upstream), plus the backend's daemon. Missing ones fail
//! the test, or skip it visibly with BGPGEN_ALLOW_SKIP=1 (tests/common/skip.rs).

mod common;

use std::collections::{BTreeMap, BTreeSet};
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

/// Prefixes the upstream announces to the speaker: none may enter the speaker's RIB, and none
/// may come back (BIRD `import none`, FRR's deny-all route-map in, GoBGP's import policy).
const UPSTREAM_PREFIXES: &[&str] = &["192.0.2.128/26", "2001:db8::8000:0/112"];

/// What the upstream received for one path, attribute by attribute, as `gobgp -j` reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Attrs {
    origin: Option<u64>,
    as_path: Vec<u64>,
    next_hop: Option<IpAddr>,
    med: Option<u64>,
    local_pref: Option<u64>,
    communities: Vec<String>,
    /// Any other attribute type, by code.
    other: Vec<u64>,
}

/// `gobgp neighbor ADDRESS adj-in -a FAMILY -j`: every path the upstream received from the
/// speaker (also those it then dropped, e.g. for an AS-path loop), with its attributes.
fn adj_in(upstream: &netns::Gobgp, speaker: &str) -> Result<BTreeMap<IpNet, Vec<Attrs>>, String> {
    let mut out: BTreeMap<IpNet, Vec<Attrs>> = BTreeMap::new();
    for family in ["ipv4", "ipv6"] {
        let json = upstream.cli(&["neighbor", speaker, "adj-in", "-a", family, "-j"])?;
        let value: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| format!("adj-in is not JSON ({e}): {json}"))?;
        for (key, paths) in value.as_object().into_iter().flatten() {
            for path in paths.as_array().into_iter().flatten() {
                let prefix: IpNet = path["nlri"]["prefix"]
                    .as_str()
                    .unwrap_or(key)
                    .parse()
                    .map_err(|_| format!("bad prefix in {json}"))?;
                let mut a = Attrs {
                    origin: None,
                    as_path: Vec::new(),
                    next_hop: None,
                    med: None,
                    local_pref: None,
                    communities: Vec::new(),
                    other: Vec::new(),
                };
                for attr in path["attrs"].as_array().into_iter().flatten() {
                    match attr["type"].as_u64() {
                        Some(1) => a.origin = attr["value"].as_u64(),
                        Some(2) => {
                            for seg in attr["as_paths"].as_array().into_iter().flatten() {
                                a.as_path.extend(
                                    seg["asns"]
                                        .as_array()
                                        .into_iter()
                                        .flatten()
                                        .filter_map(|n| n.as_u64()),
                                );
                            }
                        }
                        Some(3 | 14) => {
                            a.next_hop = attr["nexthop"].as_str().and_then(|n| n.parse().ok())
                        }
                        Some(4) => a.med = attr["metric"].as_u64(),
                        Some(5) => a.local_pref = attr["value"].as_u64(),
                        Some(8) => {
                            a.communities = attr["communities"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .map(|c| c.to_string())
                                .collect()
                        }
                        Some(t) => a.other.push(t),
                        None => {}
                    }
                }
                out.entry(prefix).or_default().push(a);
            }
        }
    }
    Ok(out)
}

/// The attributes every daemon must send for the lab's eBGP sessions (docs/design.md section 2):
/// ORIGIN IGP, AS path of the speaker's AS alone, the session's address as next hop, MED 0 (FRR's
/// `network` always sets it, so the others send it too), no LOCAL_PREF (eBGP), no communities.
fn expected_attrs(prefix: &IpNet) -> Attrs {
    Attrs {
        origin: Some(0),
        as_path: vec![u64::from(SPEAKER_AS)],
        next_hop: Some(if prefix.addr().is_ipv4() {
            SPEAKER_V4.parse().unwrap()
        } else {
            SPEAKER_V6.parse().unwrap()
        }),
        med: Some(0),
        local_pref: None,
        communities: Vec::new(),
        other: Vec::new(),
    }
}

/// The routes the speaker daemon holds that it learned from the upstream (none expected).
fn speaker_learned(
    backend: Backend,
    lab: &Lab,
    speaker_api: Option<&netns::Gobgp>,
    control: &Path,
) -> Result<Vec<String>, String> {
    let ns = lab.speaker_ns();
    match backend {
        Backend::Gobgp => {
            let api = speaker_api.ok_or("no speaker API")?;
            let rib = api.rib()?;
            Ok(rib
                .iter()
                .filter(|p| p.neighbor.is_some())
                .map(|p| format!("{p:?}"))
                .collect())
        }
        Backend::Frr => {
            let vty = path_str(control);
            let mut learned = Vec::new();
            for afi in ["ipv4", "ipv6"] {
                let json = netns::netns_exec(
                    ns,
                    &[
                        netns::VTYSH,
                        "--vty_socket",
                        vty,
                        "-d",
                        "bgpd",
                        "-c",
                        &format!("show bgp {afi} unicast json"),
                    ],
                )?;
                let value: serde_json::Value = serde_json::from_str(&json)
                    .map_err(|e| format!("show bgp is not JSON ({e}): {json}"))?;
                for (prefix, paths) in value["routes"].as_object().into_iter().flatten() {
                    for path in paths.as_array().into_iter().flatten() {
                        // A `network` has the unspecified next hop and no peer.
                        let peer = path["peerId"].as_str().unwrap_or("");
                        if !peer.is_empty()
                            && peer != "(unspec)"
                            && peer != "0.0.0.0"
                            && peer != "::"
                        {
                            learned.push(format!("{prefix} from {peer}"));
                        }
                    }
                }
            }
            Ok(learned)
        }
        Backend::Bird => {
            let out = netns::netns_exec(
                ns,
                &[
                    netns::BIRDC,
                    "-s",
                    path_str(control),
                    "show",
                    "route",
                    "where",
                    "source = RTS_BGP",
                ],
            )?;
            Ok(out
                .lines()
                .filter(|l| l.contains('/') && !l.starts_with("BIRD"))
                .map(str::to_string)
                .collect())
        }
    }
}

/// Runs one backend against the upstream and returns what the upstream received from it.
fn session_test(backend: Backend) -> Option<BTreeMap<IpNet, Vec<Attrs>>> {
    let name = backend.name();
    let test = format!("sessions::{name}");
    if !netns::prerequisites(&test, &backend.needs()) {
        return None;
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
    for p in UPSTREAM_PREFIXES {
        upstream
            .add_path(net(p), None)
            .unwrap_or_else(|e| panic!("upstream cannot announce {p}: {e}"));
    }
    let speaker_ns = lab.speaker_ns().to_string();
    let mut speaker_api = None;
    let control = match backend {
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
                // As bgpgen's GoBGP driver sends them: ORIGIN IGP (the CLI's default is
                // INCOMPLETE), the next hop only when the intent has one.
                let prefix = path.prefix.to_string();
                let next_hop = path.next_hop.map(|n| n.to_string());
                let family = if path.prefix.addr().is_ipv4() {
                    "ipv4"
                } else {
                    "ipv6"
                };
                let mut args = vec!["global", "rib", "add", &prefix, "origin", "igp"];
                if let Some(n) = &next_hop {
                    args.extend(["nexthop", n]);
                }
                args.extend(["-a", family]);
                if let Err(e) = speaker.cli(&args) {
                    let report = lab.report();
                    panic!("cannot inject {}: {e}\n{report}", path.prefix);
                }
            }
            speaker_api = Some(speaker);
            dir.clone()
        }
        Backend::Frr => lab.start_bgpd(&speaker_ns, "speaker-bgpd", &out.join("frr.conf")),
        Backend::Bird => lab.start_bird(&speaker_ns, "speaker-bird", &out.join("bird.conf")),
    };

    let rib = lab.wait_for(
        "the upstream RIB to hold exactly the announced prefixes",
        Duration::from_secs(45),
        Duration::from_millis(500),
        |_| {
            let rib: Vec<netns::RibPath> = upstream
                .rib()?
                .into_iter()
                .filter(|p| p.neighbor.is_some())
                .collect();
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

    // Exactly the intent's routes came from the speaker (the upstream's own were not sent back:
    // adj-in also holds what AS-path loop detection then dropped), each with the same attributes.
    let received = adj_in(&upstream, SPEAKER_V4).and_then(|mut v4| {
        v4.extend(adj_in(&upstream, SPEAKER_V6)?);
        Ok(v4)
    });
    let received = match received {
        Ok(r) => r,
        Err(e) => {
            let report = lab.report();
            panic!("reading the upstream's adj-in: {e}\n{report}");
        }
    };
    let got: BTreeSet<IpNet> = received.keys().copied().collect();
    assert_eq!(
        got,
        expected,
        "sessions::{name}: the upstream received other prefixes than the intent's (re-advertised: {:?})",
        got.difference(&expected).collect::<Vec<_>>()
    );
    for (prefix, paths) in &received {
        let want = expected_attrs(prefix);
        for a in paths {
            assert_eq!(
                a, &want,
                "sessions::{name}: attributes of {prefix} at the upstream"
            );
        }
    }
    // And nothing the upstream announced entered the speaker's RIB.
    let learned = speaker_learned(backend, &lab, speaker_api.as_ref(), &control);
    match learned {
        Ok(l) if l.is_empty() => {}
        Ok(l) => {
            let report = lab.report();
            panic!(
                "sessions::{name}: the speaker accepted routes from the upstream: {l:?}\n{report}"
            );
        }
        Err(e) => {
            let report = lab.report();
            panic!("sessions::{name}: reading the speaker's RIB: {e}\n{report}");
        }
    }
    Some(received)
}

#[test]
fn every_daemon_announces_identical_attributes() {
    // The same intent through each daemon reaches the upstream with the same paths, attribute by
    // attribute (a mixed fleet is one ECMP group, whatever `bestpath med missing-as-worst` says).
    let mut seen: Vec<(&str, BTreeMap<IpNet, Vec<Attrs>>)> = Vec::new();
    for backend in [Backend::Gobgp, Backend::Frr, Backend::Bird] {
        if let Some(received) = session_test(backend) {
            seen.push((backend.name(), received));
        }
    }
    for pair in seen.windows(2) {
        assert_eq!(
            pair[0].1, pair[1].1,
            "{} and {} announce differently",
            pair[0].0, pair[1].0
        );
    }
}

#[test]
fn gobgp_speaker_announces_the_intent_to_an_upstream_router() {
    let _ = session_test(Backend::Gobgp);
}

#[test]
fn frr_speaker_announces_the_intent_to_an_upstream_router() {
    let _ = session_test(Backend::Frr);
}

#[test]
fn bird_speaker_announces_the_intent_to_an_upstream_router() {
    let _ = session_test(Backend::Bird);
}

/// `--allowed-source-addresses` (kube-ovn master): `bgpgen apply`, run in the speaker's namespace,
/// looks up the kernel's route to each neighbor (its preferred source is the second of the
/// speaker's two addresses), pins the session's local address to it, and announces it as next
/// hop, over `--node-ips` (as kube-ovn-speaker does). An allowed list the route does not use is
/// refused, naming the neighbor.
#[test]
fn allowed_source_addresses_pin_the_session_and_the_next_hop() {
    const PINNED_V4: &str = "192.0.2.5";
    const PINNED_V6: &str = "2001:db8::5";
    let test = "sessions::allowed_source_addresses";
    if !netns::prerequisites(test, &Backend::Bird.needs()) {
        return;
    }
    let mut lab = Lab::new("pin");
    let dir = lab.dir().to_path_buf();
    let speaker_ns = lab.speaker_ns().to_string();
    // A second address of each family, and routes to the upstream that prefer it as source.
    lab.ip(&[
        "-n",
        &speaker_ns,
        "addr",
        "add",
        &format!("{PINNED_V4}/24"),
        "dev",
        netns::SPEAKER_IF,
    ]);
    lab.ip(&[
        "-n",
        &speaker_ns,
        "addr",
        "add",
        &format!("{PINNED_V6}/64"),
        "dev",
        netns::SPEAKER_IF,
        "nodad",
    ]);
    lab.ip(&[
        "-n",
        &speaker_ns,
        "route",
        "replace",
        &format!("{UPSTREAM_V4}/32"),
        "dev",
        netns::SPEAKER_IF,
        "src",
        PINNED_V4,
    ]);
    lab.ip(&[
        "-n",
        &speaker_ns,
        "-6",
        "route",
        "replace",
        &format!("{UPSTREAM_V6}/128"),
        "dev",
        netns::SPEAKER_IF,
        "src",
        PINNED_V6,
    ]);

    // The upstream peers with the pinned addresses only.
    let mut toml = format!(
        "[global.config]\n  as = {UPSTREAM_AS}\n  router-id = \"{UPSTREAM_V4}\"\n  port = 179\n"
    );
    for (address, family) in [(PINNED_V4, "ipv4-unicast"), (PINNED_V6, "ipv6-unicast")] {
        toml.push_str(&format!(
            "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{address}\"\n    \
             peer-as = {SPEAKER_AS}\n  [neighbors.transport.config]\n    passive-mode = true\n  \
             [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      \
             afi-safi-name = \"{family}\"\n"
        ));
    }
    let upstream_conf = dir.join("upstream.toml");
    fs::write(&upstream_conf, toml).unwrap();
    let upstream_ns = lab.upstream_ns().to_string();
    let upstream = lab.start_gobgpd(&upstream_ns, "upstream-gobgpd", &upstream_conf, 50181);

    let manifests = dir.join("manifests");
    fs::create_dir(&manifests).unwrap();
    fs::write(manifests.join("objects.yaml"), MANIFESTS).unwrap();
    let options = dir.join("options.yaml");
    let allowed = format!(
        "{OPTIONS}allowed-source-addresses: [{PINNED_V4}, 192.0.2.9]\nallowed-source-ipv6-addresses: [{PINNED_V6}]\nnode-ips: [192.0.2.1, 2001:db8::1]\n"
    );
    fs::write(&options, &allowed).unwrap();
    let (manifests, options) = (path_str(&manifests), path_str(&options));
    let expected = announced_prefixes(manifests, options);

    // BIRD starts from the configuration rendered without the host's routes (unpinned), then
    // `apply` in the speaker's namespace pins it.
    let out = dir.join("rendered");
    bgpgen(&[
        "render",
        "-f",
        manifests,
        "--options",
        options,
        "--backend",
        "bird",
        "--out",
        path_str(&out),
    ]);
    let conf = out.join("bird.conf");
    assert!(
        !fs::read_to_string(&conf)
            .unwrap()
            .contains("source address")
    );
    let socket = lab.start_bird(&speaker_ns, "speaker-bird", &conf);
    let bin = env!("CARGO_BIN_EXE_bgpgen");
    let daemon = [
        "--backend",
        "bird",
        "--config-file",
        path_str(&conf),
        "--bird-socket",
        path_str(&socket),
    ];
    let apply = |extra: &[&str]| {
        let argv: Vec<&str> = [
            &[bin, "apply", "-f", manifests, "--options", options][..],
            &daemon,
            extra,
        ]
        .concat();
        netns::netns_exec(&speaker_ns, &argv)
    };
    // BIRD needs a moment before its control socket answers.
    let mut applied = Err(String::new());
    for _ in 0..50 {
        applied = apply(&[]);
        if applied.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Err(e) = applied {
        let report = lab.report();
        panic!("bgpgen apply failed: {e}\n{report}");
    }
    let text = fs::read_to_string(&conf).unwrap();
    assert!(
        text.contains(&format!("source address {PINNED_V4};")),
        "{text}"
    );
    assert!(
        text.contains(&format!("source address {PINNED_V6};")),
        "{text}"
    );

    let v4: IpAddr = PINNED_V4.parse().unwrap();
    let v6: IpAddr = PINNED_V6.parse().unwrap();
    lab.wait_for(
        "the upstream to learn every route from the pinned addresses, next hop pinned",
        Duration::from_secs(45),
        Duration::from_millis(500),
        |_| {
            let rib: Vec<netns::RibPath> = upstream
                .rib()?
                .into_iter()
                .filter(|p| p.neighbor.is_some())
                .collect();
            let got: BTreeSet<IpNet> = rib.iter().map(|p| p.prefix).collect();
            if got != expected {
                return Err(format!("expected {expected:?}, got {got:?}"));
            }
            let wrong: Vec<String> = rib
                .iter()
                .filter(|p| {
                    let want = if p.prefix.addr().is_ipv4() { v4 } else { v6 };
                    p.neighbor != Some(want) || p.next_hop != Some(want)
                })
                .map(|p| format!("{p:?}"))
                .collect();
            if wrong.is_empty() {
                Ok(())
            } else {
                Err(wrong.join("\n"))
            }
        },
    );

    // The route to the upstream does not use an allowed address: refused, naming the neighbor.
    let narrow = dir.join("narrow.yaml");
    fs::write(
        &narrow,
        format!("{OPTIONS}allowed-source-addresses: 192.0.2.9\n"),
    )
    .unwrap();
    let argv: Vec<&str> = [
        &[
            bin,
            "apply",
            "-f",
            manifests,
            "--options",
            path_str(&narrow),
        ][..],
        &daemon,
    ]
    .concat();
    let e =
        netns::netns_exec(&speaker_ns, &argv).expect_err("an allowed list the route does not use");
    assert!(
        e.contains("exit status: 2") && e.contains(UPSTREAM_V4) && e.contains("192.0.2.9"),
        "{e}"
    );
}
