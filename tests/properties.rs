//! Properties: compile is deterministic under any order of objects and files, and nothing panics
//! on arbitrary annotation, IP, CIDR and option strings.

use bgpgen::compile::compile;
use bgpgen::options::{Env, parse_speaker_args, resolve};
use bgpgen::snapshot::Snapshot;
use bgpgen::source::manifests::load_texts;
use proptest::prelude::*;
use serde_json::json;

const ARGS: &[&str] = &[
    "--neighbor-address=10.32.32.254",
    "--neighbor-ipv6-address=2001:db8::254",
    "--neighbor-as=65030",
    "--cluster-as=65000",
    "--node-name=node-1",
    "--router-id=10.0.0.11",
    "--announce-cluster-ip",
];

fn no_files(_: &std::path::Path) -> std::io::Result<String> {
    Err(std::io::Error::other("no files"))
}

fn compile_docs(files: &[(String, String)]) -> Result<String, String> {
    let snapshot = load_texts(files.iter().map(|(n, t)| (n.as_str(), t.as_str())))
        .map_err(|e| e.to_string())?;
    let args = parse_speaker_args(ARGS).map_err(|e| e.to_string())?;
    let resolved =
        resolve(&args, &Env::default(), &snapshot, &no_files).map_err(|e| e.to_string())?;
    Ok(compile(&snapshot, &resolved.options, &resolved.diagnostics).to_yaml(false))
}

fn annotation() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("true".to_string())),
        Just(Some("yes".to_string())),
        Just(Some("cluster".to_string())),
        Just(Some("local".to_string())),
        Just(Some("nope".to_string())),
    ]
}

fn annotations(bgp: &Option<String>) -> serde_json::Value {
    match bgp {
        Some(v) => json!({"ovn.kubernetes.io/bgp": v}),
        None => json!({}),
    }
}

/// A small random cluster: subnets, pods (possibly sharing IPs), services, EIPs.
fn cluster() -> impl Strategy<Value = Vec<serde_json::Value>> {
    let subnets = prop::collection::vec((annotation(), any::<bool>(), any::<bool>()), 1..4);
    let pods = prop::collection::vec(
        (annotation(), 0u8..3, 0u8..4, 0u8..20, any::<bool>()),
        0..12,
    );
    let services = prop::collection::vec((annotation(), 0u8..20, any::<bool>()), 0..4);
    (subnets, pods, services).prop_map(|(subnets, pods, services)| {
        let mut docs = Vec::new();
        for (i, (bgp, ready, nat)) in subnets.iter().enumerate() {
            docs.push(json!({
                "apiVersion": "kubeovn.io/v1", "kind": "Subnet",
                "metadata": {"name": format!("s{i}"), "annotations": annotations(bgp)},
                "spec": {"cidrBlock": format!("10.{}.0.0/16,fd00:{}::/64", 16 + i, 16 + i), "natOutgoing": nat},
                "status": {"conditions": [{"type": "Ready", "status": if *ready { "True" } else { "False" }}]},
            }));
        }
        for (i, (bgp, node, subnet, host, dual)) in pods.iter().enumerate() {
            let subnet_index = usize::from(*subnet) % (subnets.len() + 1);
            let ips = if *dual {
                format!("10.{}.0.{host},fd00:{}::{host}", 16 + subnet_index, 16 + subnet_index)
            } else {
                format!("10.{}.0.{host}", 16 + subnet_index)
            };
            let mut ann = annotations(bgp);
            ann["ovn.kubernetes.io/logical_switch"] = json!(format!("s{subnet_index}"));
            ann["ovn.kubernetes.io/ip_address"] = json!(ips);
            docs.push(json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("p{i}"), "namespace": format!("ns{}", i % 2), "annotations": ann},
                "spec": {"nodeName": format!("node-{node}")},
                "status": {"phase": "Running"},
            }));
        }
        for (i, (bgp, host, headless)) in services.iter().enumerate() {
            docs.push(json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": format!("svc{i}"), "namespace": "default", "annotations": annotations(bgp)},
                "spec": {"type": "ClusterIP", "clusterIP": if *headless { "None".to_string() } else { format!("10.96.0.{host}") }},
            }));
        }
        docs
    })
}

/// Splits documents over files, as YAML streams or JSON Lists.
fn into_files(docs: &[serde_json::Value], files: usize, as_list: bool) -> Vec<(String, String)> {
    let mut buckets: Vec<Vec<serde_json::Value>> = vec![Vec::new(); files.max(1)];
    let n = buckets.len();
    for (i, d) in docs.iter().enumerate() {
        buckets[i % n].push(d.clone());
    }
    buckets
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            if as_list {
                (
                    format!("f{i}.json"),
                    json!({"apiVersion": "v1", "kind": "List", "items": b}).to_string(),
                )
            } else {
                // JSON is valid YAML: this exercises the YAML path with flow style.
                let text: Vec<String> = b.iter().map(|d| format!("---\n{d}\n")).collect();
                (format!("f{i}.yaml"), text.concat())
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn compile_is_deterministic_under_permutation(
        docs in cluster(),
        seed in any::<u64>(),
        files_a in 1usize..4,
        files_b in 1usize..4,
        list_a in any::<bool>(),
        list_b in any::<bool>(),
    ) {
        let mut shuffled = docs.clone();
        // A cheap deterministic shuffle from the seed (Fisher-Yates with an LCG).
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let j = (state >> 33) as usize % (i + 1);
            shuffled.swap(i, j);
        }
        let a = compile_docs(&into_files(&docs, files_a, list_a));
        let mut b_files = into_files(&shuffled, files_b, list_b);
        b_files.reverse();
        let b = compile_docs(&b_files);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn arbitrary_strings_in_objects_never_panic(
        bgp in ".*",
        ip in ".*",
        cidr in ".*",
        switch in ".*",
        name in "[a-z0-9.-]{0,20}",
        eip in ".*",
    ) {
        let docs = vec![
            json!({"apiVersion": "kubeovn.io/v1", "kind": "Subnet",
                   "metadata": {"name": switch, "annotations": {"ovn.kubernetes.io/bgp": bgp}},
                   "spec": {"cidrBlock": cidr}}),
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": name, "namespace": "d", "annotations": {
                       "ovn.kubernetes.io/bgp": bgp, "ovn.kubernetes.io/ip_address": ip,
                       "ovn.kubernetes.io/logical_switch": switch}},
                   "status": {"podIPs": [{"ip": ip}]}}),
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": name, "namespace": "d", "annotations": {"ovn.kubernetes.io/bgp": bgp}},
                   "spec": {"clusterIP": ip, "clusterIPs": [ip, cidr]}}),
            json!({"apiVersion": "kubeovn.io/v1", "kind": "IptablesEIP",
                   "metadata": {"name": name, "labels": {"ovn.kubernetes.io/vpc-nat-gw-name": switch},
                                "annotations": {"ovn.kubernetes.io/bgp": bgp}},
                   "spec": {"v4ip": eip, "v6ip": ip}, "status": {"ready": true}}),
            json!({"apiVersion": "kubeovn.io/v1", "kind": "VpcNatGateway",
                   "metadata": {"name": switch},
                   "spec": {"bgpSpeaker": {"neighbors": [ip], "holdTime": eip, "routerId": cidr,
                                           "extraArgs": [bgp]}}}),
        ];
        // Both the JSON and the YAML path; errors are fine, panics are not.
        let _ = compile_docs(&into_files(&docs, 1, true));
        let _ = compile_docs(&into_files(&docs, 2, false));
        // Raw text straight into the YAML parser.
        let _ = load_texts([("raw.yaml", bgp.as_str())]);
    }

    #[test]
    fn arbitrary_option_values_never_panic(
        flag in prop::sample::select(vec![
            "neighbor-address", "neighbor-ipv6-address", "neighbor-as", "cluster-as", "router-id",
            "node-name", "node-ips", "announce-cluster-ip", "auth-password", "holdtime",
            "graceful-restart", "graceful-restart-time", "graceful-restart-deferral-time",
            "passivemode", "ebgp-multihop", "extended-nexthop", "nat-gw-mode", "gateway-name",
            "enable-bfd", "bfd-min-tx", "bfd-min-rx", "bfd-detection-multiplier",
        ]),
        value in ".*",
        env_ips in ".*",
    ) {
        let mut args: Vec<String> = ARGS.iter().map(|s| s.to_string()).collect();
        args.push("--graceful-restart".into());
        args.push(format!("--{flag}={value}"));
        if let Ok(parsed) = parse_speaker_args(&args) {
            let env = Env { pod_ips: Some(env_ips), ..Env::default() };
            let _ = resolve(&parsed, &env, &Snapshot::default(), &no_files);
        }
        let _ = bgpgen::options::SpeakerArgs::from_options_yaml("o.yaml", &format!("{flag}: {value}"));
    }
}
