//! Every row and bullet of docs/design.md section 2 (announcement rules), asserting the exact routes
//! (prefix, family, sources) and diagnostics the compiler produces.

use bgpgen::compile::compile;
use bgpgen::diagnostic::Level;
use bgpgen::intent::{Intent, NextHop};
use bgpgen::model::Family;
use bgpgen::options::{Env, parse_speaker_args, resolve};
use bgpgen::source::manifests::load_texts;

const BASE: &[&str] = &[
    "--neighbor-address=10.32.32.254",
    "--neighbor-ipv6-address=2001:db8::254",
    "--neighbor-as=65030",
    "--cluster-as=65000",
    "--node-name=node-1",
    "--router-id=10.0.0.11",
];

fn compile_with(yaml: &str, args: &[&str]) -> Intent {
    let snapshot = load_texts([("test.yaml", yaml)]).expect("manifest loads");
    let parsed = parse_speaker_args(args).expect("flags parse");
    let resolved = resolve(&parsed, &Env::default(), &snapshot, &|_| {
        Err(std::io::Error::other("no files in tests"))
    })
    .expect("options resolve");
    compile(&snapshot, &resolved.options, &resolved.diagnostics)
}

fn compile_extra(yaml: &str, extra: &[&str]) -> Intent {
    let args: Vec<&str> = BASE.iter().chain(extra).copied().collect();
    compile_with(yaml, &args)
}

/// `prefix family [source, ...]` per route, announced or not (unreachable ones end in `!`).
fn routes(intent: &Intent) -> Vec<String> {
    intent
        .routes
        .iter()
        .map(|r| {
            let sources: Vec<String> = r.sources.iter().map(ToString::to_string).collect();
            format!(
                "{} {} [{}]{}",
                r.prefix,
                r.family,
                sources.join(", "),
                if r.unreachable { "!" } else { "" }
            )
        })
        .collect()
}

fn diags(intent: &Intent, level: Level) -> Vec<String> {
    intent
        .diagnostics
        .iter()
        .filter(|d| d.level == level)
        .map(|d| format!("{}: {}", d.object, d.message))
        .collect()
}

fn subnet(
    name: &str,
    cidr: &str,
    bgp: Option<&str>,
    ready: Option<bool>,
    nat_outgoing: bool,
) -> String {
    let annotations = bgp
        .map(|v| format!("  annotations:\n    ovn.kubernetes.io/bgp: \"{v}\"\n"))
        .unwrap_or_default();
    let status = match ready {
        None => String::new(),
        Some(r) => format!(
            "status:\n  conditions:\n    - type: Ready\n      status: \"{}\"\n",
            if r { "True" } else { "False" }
        ),
    };
    format!(
        "---\napiVersion: kubeovn.io/v1\nkind: Subnet\nmetadata:\n  name: {name}\n{annotations}spec:\n  cidrBlock: {cidr}\n  natOutgoing: {nat_outgoing}\n{status}"
    )
}

struct PodSpec<'a> {
    ns: &'a str,
    name: &'a str,
    node: &'a str,
    subnet: &'a str,
    ips: &'a str,
    bgp: Option<&'a str>,
    extra_meta: &'a str,
    extra_spec: &'a str,
    status: &'a str,
}

const POD: PodSpec<'static> = PodSpec {
    ns: "default",
    name: "p",
    node: "node-1",
    subnet: "s",
    ips: "10.16.0.5",
    bgp: None,
    extra_meta: "",
    extra_spec: "",
    status: "  phase: Running\n",
};

fn pod(p: PodSpec) -> String {
    let bgp = p
        .bgp
        .map(|v| format!("    ovn.kubernetes.io/bgp: \"{v}\"\n"))
        .unwrap_or_default();
    format!(
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {}\n  namespace: {}\n{}  annotations:\n    ovn.kubernetes.io/logical_switch: {}\n    ovn.kubernetes.io/ip_address: \"{}\"\n{bgp}spec:\n  nodeName: {}\n{}  containers: [{{name: c, image: busybox}}]\nstatus:\n{}",
        p.name, p.ns, p.extra_meta, p.subnet, p.ips, p.node, p.extra_spec, p.status
    )
}

fn ready_subnet() -> String {
    subnet("s", "10.16.0.0/16,fd00:10:16::/64", None, Some(true), false)
}

// ---- Subnet rows ----

#[test]
fn subnet_cluster_values_announce_every_cidr_dual_stack() {
    for value in ["true", "yes", "cluster"] {
        let yaml = subnet(
            "s",
            "10.16.0.0/16,fd00:10:16::/64",
            Some(value),
            Some(true),
            false,
        );
        let intent = compile_extra(&yaml, &[]);
        assert_eq!(
            routes(&intent),
            [
                "10.16.0.0/16 ipv4-unicast [Subnet s (cluster)]",
                "fd00:10:16::/64 ipv6-unicast [Subnet s (cluster)]"
            ],
            "value {value}"
        );
    }
}

#[test]
fn subnet_not_ready_is_not_announced() {
    let yaml = subnet("s", "10.16.0.0/16", Some("true"), Some(false), false);
    assert!(routes(&compile_extra(&yaml, &[])).is_empty());
}

#[test]
fn subnet_without_status_is_ready_in_manifests_with_info() {
    let yaml = subnet("s", "10.16.0.0/16", Some("true"), None, false);
    let intent = compile_extra(&yaml, &[]);
    assert_eq!(
        routes(&intent),
        ["10.16.0.0/16 ipv4-unicast [Subnet s (cluster)]"]
    );
    assert_eq!(
        diags(&intent, Level::Info),
        ["Subnet/s: no status in the manifest: treated as ready"]
    );
}

#[test]
fn subnet_without_annotation_is_not_announced() {
    assert!(routes(&compile_extra(&ready_subnet(), &[])).is_empty());
}

#[test]
fn subnet_local_announces_no_cidr_and_its_pods_by_node() {
    let yaml = [
        subnet("s", "10.16.0.0/16", Some("local"), Some(true), false),
        pod(PodSpec {
            name: "here",
            ips: "10.16.0.5",
            ..POD
        }),
        pod(PodSpec {
            name: "there",
            node: "node-2",
            ips: "10.16.0.6",
            ..POD
        }),
    ]
    .concat();
    let intent = compile_extra(&yaml, &[]);
    assert_eq!(
        routes(&intent),
        ["10.16.0.5/32 ipv4-unicast [Pod default/here (local)]"]
    );
}

#[test]
fn subnet_invalid_value_is_a_warning_and_not_announced() {
    let yaml = [
        subnet("s", "10.16.0.0/16", Some("on"), Some(true), false),
        pod(PodSpec {
            ips: "10.16.0.5",
            ..POD
        }),
    ]
    .concat();
    let intent = compile_extra(&yaml, &[]);
    assert!(routes(&intent).is_empty());
    assert_eq!(
        diags(&intent, Level::Warning),
        [
            "Subnet/s: not announced: invalid ovn.kubernetes.io/bgp value \"on\" (use true, yes, cluster or local)"
        ]
    );
}

#[test]
fn announced_subnet_with_nat_outgoing_warns() {
    for value in ["true", "local"] {
        let yaml = subnet("s", "10.16.0.0/16", Some(value), Some(true), true);
        let intent = compile_extra(&yaml, &[]);
        assert_eq!(
            diags(&intent, Level::Warning),
            [
                "Subnet/s: announced with natOutgoing: true; return traffic will be NATed, set spec.natOutgoing to false"
            ]
        );
    }
    // Not announced (no annotation): no warning.
    let yaml = subnet("s", "10.16.0.0/16", None, Some(true), true);
    assert!(diags(&compile_extra(&yaml, &[]), Level::Warning).is_empty());
}

// ---- Pod rows ----

#[test]
fn pod_own_annotation_values() {
    for (value, policy) in [
        ("true", "cluster"),
        ("yes", "cluster"),
        ("cluster", "cluster"),
        ("local", "local"),
    ] {
        let yaml = [
            ready_subnet(),
            pod(PodSpec {
                bgp: Some(value),
                ips: "10.16.0.5,fd00:10:16::5",
                ..POD
            }),
        ]
        .concat();
        assert_eq!(
            routes(&compile_extra(&yaml, &[])),
            [
                format!("10.16.0.5/32 ipv4-unicast [Pod default/p ({policy})]"),
                format!("fd00:10:16::5/128 ipv6-unicast [Pod default/p ({policy})]"),
            ],
            "value {value}"
        );
    }
}

#[test]
fn pod_invalid_value_warns_and_is_not_announced_even_in_an_announced_subnet() {
    let yaml = [
        subnet("s", "10.16.0.0/16", Some("true"), Some(true), false),
        pod(PodSpec {
            bgp: Some("ture"),
            ..POD
        }),
    ]
    .concat();
    let intent = compile_extra(&yaml, &[]);
    assert_eq!(
        routes(&intent),
        ["10.16.0.0/16 ipv4-unicast [Subnet s (cluster)]"]
    );
    assert_eq!(
        diags(&intent, Level::Warning),
        [
            "Pod/default/p: not announced: invalid ovn.kubernetes.io/bgp value \"ture\" (use true, yes, cluster or local)"
        ]
    );
}

#[test]
fn pod_inherits_subnet_policy() {
    let yaml = [
        subnet("c", "10.17.0.0/16", Some("true"), Some(true), false),
        subnet("l", "10.18.0.0/16", Some("local"), Some(true), false),
        pod(PodSpec {
            name: "in-c-elsewhere",
            node: "node-2",
            subnet: "c",
            ips: "10.17.0.5",
            ..POD
        }),
        pod(PodSpec {
            name: "in-l-here",
            subnet: "l",
            ips: "10.18.0.5",
            ..POD
        }),
        pod(PodSpec {
            name: "in-l-elsewhere",
            node: "node-3",
            subnet: "l",
            ips: "10.18.0.6",
            ..POD
        }),
    ]
    .concat();
    assert_eq!(
        routes(&compile_extra(&yaml, &[])),
        [
            "10.17.0.0/16 ipv4-unicast [Subnet c (cluster)]",
            "10.17.0.5/32 ipv4-unicast [Pod default/in-c-elsewhere (cluster)]",
            "10.18.0.5/32 ipv4-unicast [Pod default/in-l-here (local)]",
        ]
    );
}

#[test]
fn pod_annotation_overrides_subnet_policy() {
    let yaml = [
        subnet("l", "10.18.0.0/16", Some("local"), Some(true), false),
        subnet("c", "10.17.0.0/16", Some("cluster"), Some(true), false),
        // cluster in a Local subnet: announced though on another node.
        pod(PodSpec {
            name: "a",
            node: "node-2",
            subnet: "l",
            ips: "10.18.0.5",
            bgp: Some("cluster"),
            ..POD
        }),
        // local in a Cluster subnet, on another node: not announced here.
        pod(PodSpec {
            name: "b",
            node: "node-2",
            subnet: "c",
            ips: "10.17.0.6",
            bgp: Some("local"),
            ..POD
        }),
    ]
    .concat();
    assert_eq!(
        routes(&compile_extra(&yaml, &[])),
        [
            "10.17.0.0/16 ipv4-unicast [Subnet c (cluster)]",
            "10.18.0.5/32 ipv4-unicast [Pod default/a (cluster)]",
        ]
    );
}

#[test]
fn pod_local_announced_only_by_the_speaker_on_its_node() {
    let yaml = [
        ready_subnet(),
        pod(PodSpec {
            node: "node-2",
            bgp: Some("local"),
            ..POD
        }),
    ]
    .concat();
    assert!(routes(&compile_extra(&yaml, &[])).is_empty());
    let intent = compile_with(
        &yaml,
        &BASE
            .iter()
            .map(|a| {
                if *a == "--node-name=node-1" {
                    "--node-name=node-2"
                } else {
                    a
                }
            })
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        routes(&intent),
        ["10.16.0.5/32 ipv4-unicast [Pod default/p (local)]"]
    );
}

#[test]
fn pod_in_subnet_that_is_not_ready_is_not_announced() {
    let yaml = [
        subnet("s", "10.16.0.0/16", None, Some(false), false),
        pod(PodSpec {
            bgp: Some("true"),
            ..POD
        }),
    ]
    .concat();
    assert!(routes(&compile_extra(&yaml, &[])).is_empty());
}

#[test]
fn pod_in_unknown_subnet_is_not_announced_and_warns_when_annotated() {
    let yaml = pod(PodSpec {
        subnet: "ghost",
        bgp: Some("true"),
        ..POD
    });
    let intent = compile_extra(&yaml, &[]);
    assert!(routes(&intent).is_empty());
    assert_eq!(
        diags(&intent, Level::Warning),
        ["Pod/default/p: not announced: subnet ghost is not in the input"]
    );
}

#[test]
fn pod_ips_of_every_provider_with_their_own_subnet() {
    let yaml = [
        ready_subnet(),
        subnet("attach", "172.30.0.0/24", None, Some(true), false),
        subnet("down", "172.31.0.0/24", None, Some(false), false),
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: multi\n  namespace: default\n  annotations:\n    ovn.kubernetes.io/bgp: \"true\"\n    ovn.kubernetes.io/logical_switch: s\n    ovn.kubernetes.io/ip_address: 10.16.0.7,fd00:10:16::7\n    net1.default.ovn.kubernetes.io/logical_switch: attach\n    net1.default.ovn.kubernetes.io/ip_address: 172.30.0.7\n    net2.default.ovn.kubernetes.io/logical_switch: down\n    net2.default.ovn.kubernetes.io/ip_address: 172.31.0.7\nspec:\n  nodeName: node-1\nstatus:\n  phase: Running\n".to_string(),
    ]
    .concat();
    assert_eq!(
        routes(&compile_extra(&yaml, &[])),
        [
            "10.16.0.7/32 ipv4-unicast [Pod default/multi (cluster)]",
            "172.30.0.7/32 ipv4-unicast [Pod default/multi (cluster)]",
            "fd00:10:16::7/128 ipv6-unicast [Pod default/multi (cluster)]",
        ]
    );
}

/// kube-ovn's isPodAlive (`pkg/speaker/utils.go`) case by case, with the cases of its
/// `TestCollectPodExpectedPrefixes` ("dead pod is skipped": Failed + Never): a pod is not alive
/// only when Succeeded with a restartPolicy other than Always, Failed with Never, or Failed with
/// reason Evicted. Everything else is announced, a pod being deleted included.
#[test]
fn pods_are_announced_exactly_while_kube_ovn_considers_them_alive() {
    // (case, phase, restartPolicy, reason, deletionTimestamp, announced)
    let cases = [
        ("running", "Running", Some("Always"), None, false, true),
        ("pending", "Pending", Some("Always"), None, false, true),
        ("no phase", "", None, None, false, true),
        ("unknown", "Unknown", Some("Always"), None, false, true),
        (
            "succeeded, Never",
            "Succeeded",
            Some("Never"),
            None,
            false,
            false,
        ),
        (
            "succeeded, OnFailure",
            "Succeeded",
            Some("OnFailure"),
            None,
            false,
            false,
        ),
        (
            "succeeded, no policy",
            "Succeeded",
            None,
            None,
            false,
            false,
        ),
        (
            "succeeded, Always",
            "Succeeded",
            Some("Always"),
            None,
            false,
            true,
        ),
        (
            "failed, Never (kube-ovn's dead pod)",
            "Failed",
            Some("Never"),
            None,
            false,
            false,
        ),
        (
            "failed, OnFailure",
            "Failed",
            Some("OnFailure"),
            None,
            false,
            true,
        ),
        (
            "failed, Always, NodeShutdown",
            "Failed",
            Some("Always"),
            Some("NodeShutdown"),
            false,
            true,
        ),
        (
            "failed, Always, Terminated",
            "Failed",
            Some("Always"),
            Some("Terminated"),
            false,
            true,
        ),
        ("failed, no policy", "Failed", None, None, false, true),
        (
            "evicted, Always",
            "Failed",
            Some("Always"),
            Some("Evicted"),
            false,
            false,
        ),
        (
            "evicted, OnFailure",
            "Failed",
            Some("OnFailure"),
            Some("Evicted"),
            false,
            false,
        ),
        (
            "evicted while running is not evicted",
            "Running",
            Some("Always"),
            Some("Evicted"),
            false,
            true,
        ),
        (
            "terminating, running",
            "Running",
            Some("Always"),
            None,
            true,
            true,
        ),
        (
            "terminating, succeeded",
            "Succeeded",
            Some("Never"),
            None,
            true,
            false,
        ),
    ];
    for (case, phase, restart, reason, deleting, announced) in cases {
        let mut status = String::new();
        if !phase.is_empty() {
            status.push_str(&format!("  phase: {phase}\n"));
        }
        if let Some(r) = reason {
            status.push_str(&format!("  reason: {r}\n"));
        }
        if status.is_empty() {
            status.push_str("  hostIP: 192.0.2.1\n");
        }
        let spec = restart
            .map(|r| format!("  restartPolicy: {r}\n"))
            .unwrap_or_default();
        let meta = if deleting {
            "  deletionTimestamp: \"2026-01-01T00:00:00Z\"\n  deletionGracePeriodSeconds: 30\n"
        } else {
            ""
        };
        let yaml = [
            ready_subnet(),
            pod(PodSpec {
                bgp: Some("true"),
                extra_meta: meta,
                extra_spec: &spec,
                status: &status,
                ..POD
            }),
        ]
        .concat();
        let want: &[&str] = if announced {
            &["10.16.0.5/32 ipv4-unicast [Pod default/p (cluster)]"]
        } else {
            &[]
        };
        assert_eq!(routes(&compile_extra(&yaml, &[])), want, "{case}");
    }
    // Host-network pods are never announced, whatever they say.
    let yaml = [
        ready_subnet(),
        pod(PodSpec {
            bgp: Some("true"),
            extra_spec: "  hostNetwork: true\n",
            ..POD
        }),
    ]
    .concat();
    assert!(routes(&compile_extra(&yaml, &[])).is_empty());
}

// ---- Addresses no router should receive (docs/design.md section 2) ----

/// The routes and the warnings of a manifest.
fn routes_and_warnings(yaml: &str, extra: &[&str]) -> (Vec<String>, Vec<String>) {
    let intent = compile_extra(yaml, extra);
    (routes(&intent), diags(&intent, Level::Warning))
}

const ANN: &str = "metadata.annotations[ovn.kubernetes.io/ip_address]";

#[test]
fn pod_addresses_no_router_should_receive_are_skipped_with_a_warning_and_the_rest_announced() {
    // Issue 11's inputs: each in an announced subnet next to a good pod.
    let subnet = subnet(
        "s",
        "10.16.0.0/16,fd00:10:16::/64",
        Some("true"),
        Some(true),
        false,
    );
    let cases = [
        ("fe80::5", "link-local (fe80::/10)"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified (::)"),
        ("::1", "loopback (::1)"),
        ("127.0.0.1", "loopback (127.0.0.0/8)"),
        ("169.254.3.4", "link-local (169.254.0.0/16)"),
        ("224.0.0.5", "multicast (224.0.0.0/4)"),
        ("ff02::1", "multicast (ff00::/8)"),
        ("255.255.255.255", "the broadcast address"),
        ("::ffff:10.16.0.5", "IPv4-mapped IPv6"),
    ];
    for (ip, what) in cases {
        let yaml = [
            subnet.clone(),
            pod(PodSpec {
                name: "bad",
                ips: ip,
                ..POD
            }),
            pod(PodSpec {
                name: "good",
                ips: "10.16.0.6",
                ..POD
            }),
        ]
        .concat();
        let (routes, warnings) = routes_and_warnings(&yaml, &[]);
        assert_eq!(
            routes,
            [
                "10.16.0.0/16 ipv4-unicast [Subnet s (cluster)]",
                "10.16.0.6/32 ipv4-unicast [Pod default/good (cluster)]",
                "fd00:10:16::/64 ipv6-unicast [Subnet s (cluster)]",
            ],
            "{ip}"
        );
        assert_eq!(warnings.len(), 1, "{ip}: {warnings:?}");
        let w = &warnings[0];
        assert!(
            w.starts_with(&format!(
                "Pod/default/bad: not announced: {ANN}: the address is "
            )) && w.contains(what)
                && w.ends_with("which no router should receive"),
            "{ip}: {w}"
        );
    }
}

#[test]
fn an_unparsable_pod_address_is_skipped_with_a_warning_not_an_error_for_the_cluster() {
    // One pod with a garbage ip_address used to make `compile` exit 2 for everyone.
    let yaml = [
        ready_subnet(),
        pod(PodSpec {
            name: "bad",
            bgp: Some("true"),
            ips: "10.16.0.300",
            ..POD
        }),
        pod(PodSpec {
            name: "half",
            bgp: Some("true"),
            ips: "10.16.0.7,not-an-ip",
            ..POD
        }),
        pod(PodSpec {
            name: "leading-zero",
            bgp: Some("true"),
            ips: "010.16.0.8",
            ..POD
        }),
        pod(PodSpec {
            name: "good",
            bgp: Some("true"),
            ips: "10.16.0.6",
            ..POD
        }),
    ]
    .concat();
    let (routes, warnings) = routes_and_warnings(&yaml, &[]);
    assert_eq!(
        routes,
        [
            "10.16.0.6/32 ipv4-unicast [Pod default/good (cluster)]",
            "10.16.0.7/32 ipv4-unicast [Pod default/half (cluster)]",
        ]
    );
    assert_eq!(
        warnings,
        [
            format!(
                "Pod/default/bad: not announced: {ANN}: \"10.16.0.300\" is not an IP address or CIDR"
            ),
            format!(
                "Pod/default/half: not announced: {ANN}: \"not-an-ip\" is not an IP address or CIDR"
            ),
            format!(
                "Pod/default/leading-zero: not announced: {ANN}: \"010.16.0.8\" is not an IP address or CIDR"
            ),
        ]
    );
    // Not announced anyway (no policy): nothing to warn about.
    let quiet = [
        ready_subnet(),
        pod(PodSpec {
            ips: "garbage",
            ..POD
        }),
    ]
    .concat();
    assert_eq!(routes_and_warnings(&quiet, &[]), (vec![], vec![]));
}

#[test]
fn every_provider_and_the_status_fallback_go_through_the_same_rule() {
    let attachment = "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: multi\n  namespace: default\n  annotations:\n    ovn.kubernetes.io/bgp: \"true\"\n    ovn.kubernetes.io/logical_switch: s\n    ovn.kubernetes.io/ip_address: 10.16.0.7\n    net1.default.ovn.kubernetes.io/logical_switch: att\n    net1.default.ovn.kubernetes.io/ip_address: \"fe80::7,172.30.0.7\"\nspec:\n  nodeName: node-1\nstatus:\n  phase: Running\n";
    let fallback = "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: fb\n  namespace: default\n  annotations:\n    ovn.kubernetes.io/bgp: \"true\"\n    ovn.kubernetes.io/logical_switch: s\nspec:\n  nodeName: node-1\nstatus:\n  phase: Running\n  podIPs: [{ip: 127.0.0.1}, {ip: \"fd00:10:16::9\"}, {ip: nope}]\n";
    let yaml = [
        ready_subnet(),
        subnet("att", "172.30.0.0/16", None, Some(true), false),
        attachment.to_string(),
        fallback.to_string(),
    ]
    .concat();
    let (routes, warnings) = routes_and_warnings(&yaml, &[]);
    assert_eq!(
        routes,
        [
            "10.16.0.7/32 ipv4-unicast [Pod default/multi (cluster)]",
            "172.30.0.7/32 ipv4-unicast [Pod default/multi (cluster)]",
            "fd00:10:16::9/128 ipv6-unicast [Pod default/fb (cluster)]",
        ]
    );
    assert_eq!(
        warnings,
        [
            "Pod/default/fb: not announced: status.podIPs: \"nope\" is not an IP address or CIDR",
            "Pod/default/fb: not announced: status.podIPs: the address is loopback (127.0.0.0/8), which no router should receive",
            "Pod/default/multi: not announced: metadata.annotations[net1.default.ovn.kubernetes.io/ip_address]: the address is link-local (fe80::/10), which no router should receive",
        ]
    );
}

#[test]
fn a_pod_ip_outside_its_subnet_is_skipped_with_a_warning() {
    let yaml = [
        ready_subnet(),
        pod(PodSpec {
            name: "outside",
            bgp: Some("true"),
            ips: "10.17.0.5,fd00:10:16::5",
            ..POD
        }),
    ]
    .concat();
    let (routes, warnings) = routes_and_warnings(&yaml, &[]);
    assert_eq!(
        routes,
        ["fd00:10:16::5/128 ipv6-unicast [Pod default/outside (cluster)]"]
    );
    assert_eq!(
        warnings,
        [format!(
            "Pod/default/outside: not announced: {ANN}: the address is outside subnet s (10.16.0.0/16, fd00:10:16::/64)"
        )]
    );
}

#[test]
fn subnet_cidrs_no_router_should_receive_are_skipped_with_a_warning() {
    for (cidr, what) in [
        ("fe80::/64", "link-local (fe80::/10)"),
        ("0.0.0.0/0", "a default route (/0)"),
        ("::/0", "a default route (/0)"),
        ("127.0.0.0/8", "loopback (127.0.0.0/8)"),
        ("224.0.0.0/4", "multicast (224.0.0.0/4)"),
        ("::ffff:10.0.0.0/104", "IPv4-mapped IPv6 (::ffff:0:0/96)"),
    ] {
        let yaml = [
            subnet(
                "bad",
                &format!("10.16.0.0/16,{cidr}"),
                Some("true"),
                Some(true),
                false,
            ),
            subnet("good", "10.20.0.0/16", Some("true"), Some(true), false),
        ]
        .concat();
        let (routes, warnings) = routes_and_warnings(&yaml, &[]);
        assert_eq!(
            routes,
            [
                "10.16.0.0/16 ipv4-unicast [Subnet bad (cluster)]",
                "10.20.0.0/16 ipv4-unicast [Subnet good (cluster)]",
            ],
            "{cidr}"
        );
        assert_eq!(
            warnings,
            [format!(
                "Subnet/bad: not announced: spec.cidrBlock: the address is {what}, which no router should receive"
            )],
            "{cidr}"
        );
    }
    // Unparsable parts and host bits: the other parts still count.
    let yaml = subnet(
        "s",
        "10.16.0.0/16,banana,10.17.0.5/16,010.18.0.0/16,10.19.0.0/08",
        Some("true"),
        Some(true),
        false,
    );
    let (routes, warnings) = routes_and_warnings(&yaml, &[]);
    assert_eq!(routes, ["10.16.0.0/16 ipv4-unicast [Subnet s (cluster)]"]);
    assert_eq!(
        warnings,
        [
            "Subnet/s: not announced: spec.cidrBlock: \"010.18.0.0/16\" is not an IP address or CIDR",
            "Subnet/s: not announced: spec.cidrBlock: \"10.19.0.0/08\" is not an IP address or CIDR",
            "Subnet/s: not announced: spec.cidrBlock: \"banana\" is not an IP address or CIDR",
            "Subnet/s: not announced: spec.cidrBlock: host bits are set (the network is 10.17.0.0/16); write the network address",
        ]
    );
}

#[test]
fn service_and_eip_addresses_go_through_the_same_rule() {
    let yaml = [
        service(
            "bad",
            Some("true"),
            "ClusterIP",
            "0.0.0.0",
            Some("\"0.0.0.0\", \"::1\""),
        ),
        service("garbage", Some("true"), "ClusterIP", "10.96.0.999", None),
        service("good", Some("true"), "ClusterIP", "10.96.0.10", None),
    ]
    .concat();
    let (announced, warnings) = routes_and_warnings(&yaml, &["--announce-cluster-ip"]);
    assert_eq!(
        announced,
        ["10.96.0.10/32 ipv4-unicast [Service default/good (cluster)]"]
    );
    assert_eq!(
        warnings,
        [
            "Service/default/bad: not announced: spec.clusterIPs: the address is loopback (::1), which no router should receive",
            "Service/default/bad: not announced: spec.clusterIPs: the address is unspecified (0.0.0.0/8, \"this network\"), which no router should receive",
            "Service/default/garbage: not announced: spec.clusterIP: \"10.96.0.999\" is not an IP address or CIDR",
        ]
    );

    let yaml = [
        eip(
            "bcast",
            Some("gw1"),
            Some("true"),
            true,
            "255.255.255.255",
            "::ffff:10.0.0.1",
        ),
        eip(
            "wrong-family",
            Some("gw1"),
            Some("true"),
            true,
            "fd00::1",
            "172.20.0.9",
        ),
        eip(
            "good",
            Some("gw1"),
            Some("true"),
            true,
            "172.20.0.10",
            "ff05::1",
        ),
    ]
    .concat();
    let intent = compile_with(&yaml, NAT);
    assert_eq!(
        routes(&intent),
        ["172.20.0.10/32 ipv4-unicast [IptablesEIP good (cluster)]"]
    );
    assert_eq!(
        diags(&intent, Level::Warning),
        [
            "IptablesEIP/bcast: not announced: spec.v4ip: the address is the broadcast address (255.255.255.255), which no router should receive",
            "IptablesEIP/bcast: not announced: spec.v6ip: the address is IPv4-mapped IPv6 (::ffff:0:0/96), which no router should receive",
            "IptablesEIP/good: not announced: spec.v6ip: the address is multicast (ff00::/8), which no router should receive",
            "IptablesEIP/wrong-family: not announced: spec.v4ip: \"fd00::1\" is not an IP address or CIDR",
            "IptablesEIP/wrong-family: not announced: spec.v6ip: \"172.20.0.9\" is not an IP address or CIDR",
        ]
    );
}

#[test]
fn explain_names_the_address_rule() {
    let yaml = [
        ready_subnet(),
        pod(PodSpec {
            name: "ll",
            bgp: Some("true"),
            ips: "fe80::5",
            ..POD
        }),
    ]
    .concat();
    assert_eq!(
        explain_text(&yaml, &[], "fe80::5"),
        format!(
            "fe80::5/128 (ipv6-unicast): not announced\n  Pod default/ll: not announced: {ANN}: the address is link-local (fe80::/10), which no router should receive\n"
        )
    );
}

#[test]
fn pod_without_ip_annotation_falls_back_to_status_pod_ips_only_with_known_subnet() {
    let with_switch = "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: fb\n  namespace: default\n  annotations:\n    ovn.kubernetes.io/bgp: \"true\"\n    ovn.kubernetes.io/logical_switch: s\nspec:\n  nodeName: node-1\nstatus:\n  phase: Running\n  podIP: 10.16.0.9\n  podIPs: [{ip: 10.16.0.9}, {ip: \"fd00:10:16::9\"}]\n";
    let yaml = [ready_subnet(), with_switch.to_string()].concat();
    assert_eq!(
        routes(&compile_extra(&yaml, &[])),
        [
            "10.16.0.9/32 ipv4-unicast [Pod default/fb (cluster)]",
            "fd00:10:16::9/128 ipv6-unicast [Pod default/fb (cluster)]",
        ]
    );
    let without_switch = with_switch.replace("    ovn.kubernetes.io/logical_switch: s\n", "");
    let yaml = [ready_subnet(), without_switch].concat();
    assert!(routes(&compile_extra(&yaml, &[])).is_empty());
}

// ---- Service rows ----

fn service(
    name: &str,
    bgp: Option<&str>,
    type_: &str,
    cluster_ip: &str,
    cluster_ips: Option<&str>,
) -> String {
    let annotations = bgp
        .map(|v| format!("  annotations:\n    ovn.kubernetes.io/bgp: \"{v}\"\n"))
        .unwrap_or_default();
    let ips = cluster_ips
        .map(|l| format!("  clusterIPs: [{l}]\n"))
        .unwrap_or_default();
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: default\n{annotations}spec:\n  type: {type_}\n  clusterIP: \"{cluster_ip}\"\n{ips}"
    )
}

#[test]
fn service_cluster_ips_announced_with_option_and_true_or_yes() {
    let yaml = [
        service(
            "a",
            Some("true"),
            "ClusterIP",
            "10.96.0.10",
            Some("\"10.96.0.10\", \"fd00:96::a\""),
        ),
        service("b", Some("yes"), "ClusterIP", "10.96.0.11", None),
    ]
    .concat();
    assert_eq!(
        routes(&compile_extra(&yaml, &["--announce-cluster-ip"])),
        [
            "10.96.0.10/32 ipv4-unicast [Service default/a (cluster)]",
            "10.96.0.11/32 ipv4-unicast [Service default/b (cluster)]",
            "fd00:96::a/128 ipv6-unicast [Service default/a (cluster)]",
        ]
    );
}

#[test]
fn service_annotation_without_option_is_info() {
    let yaml = service("a", Some("true"), "ClusterIP", "10.96.0.10", None);
    let intent = compile_extra(&yaml, &[]);
    assert!(routes(&intent).is_empty());
    assert_eq!(
        diags(&intent, Level::Info),
        [
            "Service/default/a: annotated ovn.kubernetes.io/bgp but --announce-cluster-ip is off; not announced"
        ]
    );
}

#[test]
fn service_cluster_and_local_values_are_unsupported_warnings() {
    for value in ["cluster", "local", "bogus"] {
        let yaml = service("a", Some(value), "ClusterIP", "10.96.0.10", None);
        let intent = compile_extra(&yaml, &["--announce-cluster-ip"]);
        assert!(routes(&intent).is_empty());
        assert_eq!(
            diags(&intent, Level::Warning),
            [format!(
                "Service/default/a: not announced: ovn.kubernetes.io/bgp=\"{value}\" is not supported on a Service; only \"true\" or \"yes\" are"
            )]
        );
    }
}

#[test]
fn service_must_be_cluster_ip_type_and_not_headless() {
    let yaml = [
        service("np", Some("true"), "NodePort", "10.96.0.20", None),
        service("lb", Some("true"), "LoadBalancer", "10.96.0.21", None),
        service("headless", Some("true"), "ClusterIP", "None", Some("None")),
        service("unannotated", None, "ClusterIP", "10.96.0.22", None),
    ]
    .concat();
    assert!(routes(&compile_extra(&yaml, &["--announce-cluster-ip"])).is_empty());
}

// ---- EIP rows and modes ----

fn eip(name: &str, gw: Option<&str>, bgp: Option<&str>, ready: bool, v4: &str, v6: &str) -> String {
    let labels = gw
        .map(|g| format!("  labels:\n    ovn.kubernetes.io/vpc-nat-gw-name: {g}\n"))
        .unwrap_or_default();
    let annotations = bgp
        .map(|v| format!("  annotations:\n    ovn.kubernetes.io/bgp: \"{v}\"\n"))
        .unwrap_or_default();
    format!(
        "---\napiVersion: kubeovn.io/v1\nkind: IptablesEIP\nmetadata:\n  name: {name}\n{labels}{annotations}spec:\n  v4ip: \"{v4}\"\n  v6ip: \"{v6}\"\nstatus:\n  ready: {ready}\n"
    )
}

const NAT: &[&str] = &[
    "--nat-gw-mode",
    "--gateway-name=gw1",
    "--neighbor-address=10.32.32.254",
    "--neighbor-ipv6-address=2001:db8::254",
    "--neighbor-as=65030",
    "--cluster-as=65500",
    "--router-id=1.1.1.1",
];

fn eips_and_others() -> String {
    [
        eip("ok", Some("gw1"), Some("true"), true, "172.20.0.10", ""),
        eip(
            "dual",
            Some("gw1"),
            Some("yes"),
            true,
            "172.20.0.11",
            "fd00:172:20::11",
        ),
        eip(
            "v6only",
            Some("gw1"),
            Some("true"),
            true,
            "",
            "fd00:172:20::12",
        ),
        eip(
            "pending",
            Some("gw1"),
            Some("true"),
            false,
            "172.20.0.12",
            "",
        ),
        eip("other", Some("gw2"), Some("true"), true, "172.20.0.13", ""),
        eip("unlabelled", None, Some("true"), true, "172.20.0.14", ""),
        eip("plain", Some("gw1"), None, true, "172.20.0.15", ""),
        eip("weird", Some("gw1"), Some("local"), true, "172.20.0.16", ""),
        subnet("s", "10.16.0.0/16", Some("true"), Some(true), false),
        pod(PodSpec {
            bgp: Some("true"),
            ..POD
        }),
        service("svc", Some("true"), "ClusterIP", "10.96.0.10", None),
    ]
    .concat()
}

#[test]
fn nat_gateway_mode_announces_only_this_gateways_ready_annotated_eips() {
    let intent = compile_with(&eips_and_others(), NAT);
    assert_eq!(
        routes(&intent),
        [
            "172.20.0.10/32 ipv4-unicast [IptablesEIP ok (cluster)]",
            "172.20.0.11/32 ipv4-unicast [IptablesEIP dual (cluster)]",
            "fd00:172:20::11/128 ipv6-unicast [IptablesEIP dual (cluster)]",
            "fd00:172:20::12/128 ipv6-unicast [IptablesEIP v6only (cluster)]",
        ]
    );
    assert_eq!(
        diags(&intent, Level::Warning),
        [
            "IptablesEIP/weird: not announced: ovn.kubernetes.io/bgp=\"local\" is not supported on a IptablesEIP; only \"true\" or \"yes\" are"
        ]
    );
    assert_eq!(intent.speaker.gateway.as_deref(), Some("gw1"));
    assert_eq!(intent.speaker.node, None);
}

#[test]
fn node_mode_ignores_eips() {
    let intent = compile_extra(&eips_and_others(), &["--announce-cluster-ip"]);
    assert_eq!(
        routes(&intent),
        [
            "10.16.0.0/16 ipv4-unicast [Subnet s (cluster)]",
            "10.16.0.5/32 ipv4-unicast [Pod default/p (cluster)]",
            "10.96.0.10/32 ipv4-unicast [Service default/svc (cluster)]",
        ]
    );
}

// ---- Cross-cutting bullets ----

#[test]
fn family_no_neighbor_carries_stays_unreachable_with_one_warning() {
    let yaml = [
        ready_subnet(),
        pod(PodSpec {
            bgp: Some("true"),
            ips: "10.16.0.5,fd00:10:16::5",
            ..POD
        }),
    ]
    .concat();
    let v4_only = [
        "--neighbor-address=10.32.32.254",
        "--neighbor-as=65030",
        "--cluster-as=65000",
        "--node-name=node-1",
        "--router-id=10.0.0.11",
    ];
    let intent = compile_with(&yaml, &v4_only);
    assert_eq!(
        routes(&intent),
        [
            "10.16.0.5/32 ipv4-unicast [Pod default/p (cluster)]",
            "fd00:10:16::5/128 ipv6-unicast [Pod default/p (cluster)]!",
        ]
    );
    assert_eq!(intent.announced().count(), 1);
    assert_eq!(
        diags(&intent, Level::Warning),
        [
            "options: 1 ipv6-unicast route(s) not announced because no neighbor carries ipv6-unicast (add a neighbor of that family or --extended-nexthop) (fd00:10:16::5/128)"
        ]
    );

    // With extended next hop, the IPv4 neighbor carries both families.
    let mut ext = v4_only.to_vec();
    ext.push("--extended-nexthop");
    let intent = compile_with(&yaml, &ext);
    assert_eq!(intent.announced().count(), 2);
    assert_eq!(
        intent.neighbors[0].families,
        [Family::Ipv4Unicast, Family::Ipv6Unicast]
    );
    assert!(diags(&intent, Level::Warning).is_empty());
}

#[test]
fn neighbors_carry_their_own_family() {
    let intent = compile_extra("", &[]);
    let n: Vec<String> = intent
        .neighbors
        .iter()
        .map(|n| format!("{} {} {:?}", n.address, n.remote_as, n.families))
        .collect();
    assert_eq!(
        n,
        [
            "10.32.32.254 65030 [Ipv4Unicast]",
            "2001:db8::254 65030 [Ipv6Unicast]"
        ]
    );
}

#[test]
fn duplicate_prefixes_merge_into_one_route_with_every_source() {
    // Overlapping IPs across VPCs, and a pod inside an announced subnet's CIDR /32 twice.
    let yaml = [
        subnet("a", "10.16.0.0/16", None, Some(true), false),
        subnet("b", "10.16.0.0/16", Some("true"), Some(true), false),
        pod(PodSpec {
            ns: "one",
            name: "x",
            subnet: "a",
            bgp: Some("true"),
            ..POD
        }),
        pod(PodSpec {
            ns: "two",
            name: "why",
            subnet: "b",
            bgp: Some("local"),
            ..POD
        }),
    ]
    .concat();
    assert_eq!(
        routes(&compile_extra(&yaml, &[])),
        [
            "10.16.0.0/16 ipv4-unicast [Subnet b (cluster)]",
            "10.16.0.5/32 ipv4-unicast [Pod one/x (cluster), Pod two/why (local)]",
        ]
    );
}

#[test]
fn next_hop_is_self_unless_node_ips_given() {
    let yaml = [
        ready_subnet(),
        pod(PodSpec {
            bgp: Some("true"),
            ips: "10.16.0.5,fd00:10:16::5",
            ..POD
        }),
    ]
    .concat();
    let intent = compile_extra(&yaml, &[]);
    assert!(
        intent
            .routes
            .iter()
            .all(|r| r.next_hop == NextHop::SelfAddress)
    );
    let intent = compile_extra(&yaml, &["--node-ips=192.0.2.11"]);
    let hops: Vec<String> = intent
        .routes
        .iter()
        .map(|r| r.next_hop.to_string())
        .collect();
    assert_eq!(hops, ["192.0.2.11", "self"]);
}

#[test]
fn intent_redacts_password_and_hash_is_stable_and_content_sensitive() {
    let yaml = [
        ready_subnet(),
        pod(PodSpec {
            bgp: Some("true"),
            ..POD
        }),
    ]
    .concat();
    let a = compile_extra(&yaml, &["--auth-password=s3cret"]);
    let b = compile_extra(&yaml, &["--auth-password=s3cret"]);
    assert_eq!(a.to_yaml(false), b.to_yaml(false));
    assert!(a.hash.starts_with("sha256:") && a.hash.len() == 71);
    assert!(!a.to_yaml(false).contains("s3cret"));
    assert!(!a.to_json(false).contains("s3cret"));
    assert!(a.to_yaml(false).contains("password: <redacted>"));
    assert!(a.to_json(true).contains("\"password\": \"s3cret\""));
    assert!(!format!("{a:?}").contains("s3cret"));
    let c = compile_extra(&yaml, &["--holdtime=30s", "--auth-password=s3cret"]);
    assert_ne!(a.hash, c.hash);
    let no_password = compile_extra(&yaml, &[]);
    assert_ne!(a.hash, no_password.hash);
}

#[test]
fn routes_are_sorted_by_family_then_prefix() {
    let yaml = [
        subnet("s", "10.16.0.0/16,fd00:10:16::/64", None, Some(true), false),
        pod(PodSpec {
            name: "c",
            ips: "10.16.0.30,fd00:10:16::1",
            bgp: Some("true"),
            ..POD
        }),
        pod(PodSpec {
            name: "a",
            ips: "10.16.0.4",
            bgp: Some("true"),
            ..POD
        }),
        pod(PodSpec {
            name: "b",
            ips: "10.16.0.100",
            bgp: Some("true"),
            ..POD
        }),
    ]
    .concat();
    let prefixes: Vec<String> = compile_extra(&yaml, &[])
        .routes
        .iter()
        .map(|r| r.prefix.to_string())
        .collect();
    assert_eq!(
        prefixes,
        [
            "10.16.0.4/32",
            "10.16.0.30/32",
            "10.16.0.100/32",
            "fd00:10:16::1/128"
        ]
    );
}

// ---- explain: the "why not" cases of docs/design.md section 5 ----

fn explain_text(yaml: &str, args: &[&str], query: &str) -> String {
    let snapshot = load_texts([("test.yaml", yaml)]).unwrap();
    let all: Vec<&str> = BASE.iter().chain(args).copied().collect();
    let resolved = resolve(
        &parse_speaker_args(all).unwrap(),
        &Env::default(),
        &snapshot,
        &|_| Err(std::io::Error::other("none")),
    )
    .unwrap();
    let intent = compile(&snapshot, &resolved.options, &resolved.diagnostics);
    let q = bgpgen::explain::parse_query(query).unwrap();
    bgpgen::explain::explain(&snapshot, &resolved.options, &intent, &q).unwrap()
}

#[test]
fn explain_says_why_not() {
    let yaml = [
        subnet("s", "10.16.0.0/16,fd00:10:16::/64", None, Some(true), false),
        subnet("down", "10.20.0.0/16", Some("true"), Some(false), false),
        pod(PodSpec {
            name: "none",
            ips: "10.16.0.1",
            ..POD
        }),
        pod(PodSpec {
            name: "far",
            node: "node-2",
            ips: "10.16.0.2",
            bgp: Some("local"),
            ..POD
        }),
        pod(PodSpec {
            name: "notready",
            subnet: "down",
            ips: "10.20.0.3",
            bgp: Some("true"),
            ..POD
        }),
        pod(PodSpec {
            name: "done",
            ips: "10.16.0.4",
            bgp: Some("true"),
            status: "  phase: Succeeded\n",
            ..POD
        }),
        pod(PodSpec {
            name: "bad",
            ips: "10.16.0.5",
            bgp: Some("maybe"),
            ..POD
        }),
        pod(PodSpec {
            name: "v6",
            ips: "fd00:10:16::6",
            bgp: Some("true"),
            ..POD
        }),
        service("svc", Some("true"), "ClusterIP", "10.96.0.10", None),
    ]
    .concat();
    let cases = [
        (
            "pod/default/none",
            "Pod default/none:\n  10.16.0.1/32: not announced: no ovn.kubernetes.io/bgp annotation\n",
        ),
        (
            "10.16.0.2",
            "10.16.0.2/32 (ipv4-unicast): not announced\n  Pod default/far: not announced: policy local and the pod runs on node node-2, not on this speaker's node node-1\n  Subnet s (10.16.0.0/16 covers 10.16.0.2): not announced: no ovn.kubernetes.io/bgp annotation\n",
        ),
        (
            "pod/default/notready",
            "Pod default/notready:\n  10.20.0.3/32: not announced: subnet down is not ready\n",
        ),
        (
            "pod/default/done",
            "Pod default/done:\n  10.16.0.4/32: not announced: the pod is not alive (phase Succeeded, restartPolicy not Always)\n",
        ),
        (
            "pod/default/bad",
            "Pod default/bad:\n  10.16.0.5/32: not announced: invalid ovn.kubernetes.io/bgp value \"maybe\" (use true, yes, cluster or local)\n",
        ),
        (
            "service/default/svc",
            "Service default/svc:\n  10.96.0.10/32: not announced: --announce-cluster-ip is off\n",
        ),
        (
            "subnet/down",
            "Subnet down:\n  10.20.0.0/16: not announced: subnet down is not ready\n",
        ),
        (
            "10.99.0.1",
            "10.99.0.1/32 (ipv4-unicast): not announced\n  no object in the input has this address or prefix, or one inside or covering it\n",
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(explain_text(&yaml, &[], query), expected, "query {query}");
    }
    // Family not carried: only IPv4 neighbors.
    let v4_only: Vec<&str> = BASE
        .iter()
        .copied()
        .filter(|a| !a.starts_with("--neighbor-ipv6"))
        .collect();
    let snapshot = load_texts([("t.yaml", yaml.as_str())]).unwrap();
    let resolved = resolve(
        &parse_speaker_args(v4_only).unwrap(),
        &Env::default(),
        &snapshot,
        &|_| Err(std::io::Error::other("none")),
    )
    .unwrap();
    let intent = compile(&snapshot, &resolved.options, &[]);
    let q = bgpgen::explain::parse_query("fd00:10:16::6").unwrap();
    assert_eq!(
        bgpgen::explain::explain(&snapshot, &resolved.options, &intent, &q).unwrap(),
        "fd00:10:16::6/128 (ipv6-unicast): not announced: no neighbor carries ipv6-unicast (add a neighbor of that family or --extended-nexthop)\n  Pod default/v6: selected (policy cluster, annotation ovn.kubernetes.io/bgp=true) but not rendered: no neighbor carries ipv6-unicast (add a neighbor of that family or --extended-nexthop)\n  Subnet s (fd00:10:16::/64 covers fd00:10:16::6): not announced: no ovn.kubernetes.io/bgp annotation\n"
    );
}

/// The live source converts each object with the same function the manifest reader ends in
/// (`PodInfo::from_k8s` and the like), and no address makes that conversion fail any more: the
/// live source ignored a pod with an unparsable `ip_address` (keeping its previous version) while
/// `compile` exited 2 for the whole cluster. Now both hold the same record, and compile decides.
#[test]
fn the_live_and_the_manifest_source_read_a_bad_address_the_same_way() {
    use bgpgen::snapshot::{Object, PodInfo, ServiceInfo, SubnetInfo};
    let pod_yaml = pod(PodSpec {
        name: "bad",
        bgp: Some("true"),
        ips: "10.16.0.300,fe80::5,10.16.0.9",
        ..POD
    });
    let from_manifest = load_texts([("p.yaml", pod_yaml.as_str())]).unwrap();
    let k8s: k8s_openapi::api::core::v1::Pod =
        serde_saphyr::from_str(pod_yaml.trim_start_matches("---\n")).unwrap();
    let live = PodInfo::from_k8s(&k8s).expect("the live conversion does not refuse the pod");
    assert_eq!(
        Object::Pod(live),
        Object::Pod(from_manifest.pods.values().next().unwrap().clone())
    );

    let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"type": "ClusterIP", "clusterIP": "banana", "clusterIPs": ["banana", "::1"]}
    }))
    .unwrap();
    let live = ServiceInfo::from_k8s(&svc).unwrap();
    assert_eq!(&*live.unparsable, [Box::from("banana")]);
    let subnet: bgpgen::kubeovn::Subnet = serde_json::from_value(serde_json::json!({
        "apiVersion": "kubeovn.io/v1", "kind": "Subnet",
        "metadata": {"name": "s"}, "spec": {"cidrBlock": "10.16.0.0/16,010.1.0.0/16"}
    }))
    .unwrap();
    let live = SubnetInfo::from_kubeovn(&subnet).unwrap();
    assert_eq!(&*live.unparsable, [Box::from("010.1.0.0/16")]);

    // The same intent from either origin (a ready subnet reads the same in both).
    let yaml = [ready_subnet(), pod_yaml].concat();
    let mut snapshot = load_texts([("t.yaml", yaml.as_str())]).unwrap();
    let manifest = compile_extra(&yaml, &[]);
    snapshot.origin = bgpgen::snapshot::Origin::Cluster;
    let parsed = parse_speaker_args(BASE).unwrap();
    let resolved = resolve(&parsed, &Env::default(), &snapshot, &|_| {
        Err(std::io::Error::other("none"))
    })
    .unwrap();
    let cluster = compile(&snapshot, &resolved.options, &resolved.diagnostics);
    assert_eq!(routes(&manifest), routes(&cluster));
    assert_eq!(
        routes(&cluster),
        ["10.16.0.9/32 ipv4-unicast [Pod default/bad (cluster)]"]
    );
    assert_eq!(manifest.diagnostics, cluster.diagnostics);
}
