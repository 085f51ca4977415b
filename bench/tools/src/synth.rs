//! A synthetic Kube-OVN cluster, for benchmarks and scale tests: nodes, subnets, pods, services,
//! VPC NAT gateways and their EIPs, with the annotation mix a real cluster shows (most pods not
//! announced, a mix of policies, a few invalid values, finished and terminating pods, secondary
//! networks, host-network pods). Seeded: the same [`Spec`] gives byte-identical manifests on
//! every machine (ChaCha8 is a portable generator; `StdRng` may change between `rand` versions).
//!
//! Pure: [`generate`] returns JSON values; [`Cluster::files`] lays them out as `kubectl get -o json`
//! (or `-o yaml`) Lists. Writing them is the caller's job.

use std::net::{Ipv4Addr, Ipv6Addr};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub nodes: usize,
    pub pods: usize,
    pub services: usize,
    pub subnets: usize,
    pub eips: usize,
    pub seed: u64,
    /// IPv6 next to IPv4 for subnets, pods, services and a share of the EIPs.
    pub dual_stack: bool,
    /// Share of pods carrying an `ovn.kubernetes.io/bgp` annotation (0..=1).
    pub announced: f64,
    /// Share of the annotated pods whose policy is `local` (the rest: `true` or `cluster`).
    pub local_share: f64,
}

impl Default for Spec {
    /// The size docs/design.md section 8 budgets for.
    fn default() -> Spec {
        Spec {
            nodes: 1_000,
            pods: 100_000,
            services: 10_000,
            subnets: 1_000,
            eips: 1_000,
            seed: 1,
            dual_stack: true,
            announced: 0.2,
            local_share: 0.15,
        }
    }
}

/// Why a [`Spec`] cannot be generated.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    #[error("--{0} must be between 0 and 1, not {1}")]
    Share(&'static str, f64),
    #[error("--{0} must be at least 1 when there are {1}")]
    Zero(&'static str, &'static str),
    #[error(
        "{pods} pods in {subnets} subnets do not fit the synthetic IPv4 plan (10.0.0.0/8); use more subnets or fewer pods"
    )]
    AddressSpace { pods: usize, subnets: usize },
    #[error("{0} {1} do not fit the synthetic address plan (at most {2})")]
    TooMany(usize, &'static str, usize),
}

/// The generated objects, by kind, as the API server would return them.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub nodes: Vec<Value>,
    pub subnets: Vec<Value>,
    pub pods: Vec<Value>,
    pub services: Vec<Value>,
    pub gateways: Vec<Value>,
    pub eips: Vec<Value>,
}

/// The manifest layout of [`Cluster::files`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `kubectl get -o json`: one List per kind, pretty-printed.
    Json,
    /// `kubectl get -o yaml`: one List per kind.
    Yaml,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Yaml => "yaml",
        }
    }
}

impl Cluster {
    /// Every object, for loading into an API server.
    pub fn all(&self) -> impl Iterator<Item = &Value> {
        self.nodes
            .iter()
            .chain(&self.subnets)
            .chain(&self.gateways)
            .chain(&self.eips)
            .chain(&self.services)
            .chain(&self.pods)
    }

    /// `(file name, text)` per kind, as `kubectl get KIND -A -o FORMAT` prints them.
    pub fn files(&self, format: Format) -> Vec<(String, String)> {
        let kinds: [(&str, &[Value]); 6] = [
            ("nodes", &self.nodes),
            ("subnets", &self.subnets),
            ("vpc-nat-gateways", &self.gateways),
            ("iptables-eips", &self.eips),
            ("services", &self.services),
            ("pods", &self.pods),
        ];
        kinds
            .into_iter()
            .filter(|(_, items)| !items.is_empty())
            .map(|(name, items)| {
                let list = json!({
                    "apiVersion": "v1",
                    "kind": "List",
                    "items": items,
                    "metadata": {"resourceVersion": ""},
                });
                let text = match format {
                    // Serializing a tree of JSON values cannot fail.
                    Format::Json => {
                        let mut text = serde_json::to_string_pretty(&list).unwrap_or_default();
                        text.push('\n');
                        text
                    }
                    Format::Yaml => bgpgen::source::yaml::to_string(&list),
                };
                (format!("{name}.{}", format.extension()), text)
            })
            .collect()
    }
}

/// Speaker options for the generated cluster, as a `--options` file: the speaker of the first
/// node, announcing ClusterIPs, with an IPv4 and an IPv6 neighbor.
pub fn speaker_options(spec: &Spec) -> String {
    let mut text = String::from(
        "# Speaker options for the synthetic cluster (bgpgen synth).\n\
         neighbor-address: 10.255.0.1\n",
    );
    if spec.dual_stack {
        text.push_str("neighbor-ipv6-address: fd00:ffff::1\n");
    }
    text.push_str(&format!(
        "neighbor-as: 65001\ncluster-as: 65000\nnode-name: {}\nrouter-id: {}\nannounce-cluster-ip: true\n",
        node_name(0),
        node_ip(0)
    ));
    text
}

const NAMESPACES: usize = 100;
const APPS: &[&str] = &[
    "web", "api", "worker", "cache", "db", "queue", "auth", "search", "ingest", "report",
];
const IMAGES: &[&str] = &[
    "nginx:1.27",
    "redis:7.4",
    "postgres:16",
    "ghcr.io/acme/api:2.14.3",
    "ghcr.io/acme/worker:2.14.3",
    "busybox:1.36",
];

fn node_name(i: usize) -> String {
    format!("node-{i:05}")
}

fn node_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 0, 10)) + i as u32)
}

fn node_ip6(i: usize) -> Ipv6Addr {
    Ipv6Addr::from((0xfd00_0172_0016u128 << 80) + 10 + i as u128)
}

fn namespace(i: usize) -> String {
    format!("ns-{:03}", i % NAMESPACES)
}

fn uid(rng: &mut ChaCha8Rng) -> String {
    let v: u128 = rng.random();
    let h = format!("{v:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn mac(rng: &mut ChaCha8Rng) -> String {
    let b: [u8; 3] = rng.random();
    format!("00:00:00:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// The address plan of one subnet: IPv4 and IPv6 networks, and the next free host.
struct SubnetPlan {
    name: String,
    v4: Ipv4Addr,
    v4_len: u8,
    v6: Ipv6Addr,
    next_host: u32,
}

impl SubnetPlan {
    fn cidr_block(&self, dual: bool) -> String {
        if dual {
            format!("{}/{},{}/64", self.v4, self.v4_len, self.v6)
        } else {
            format!("{}/{}", self.v4, self.v4_len)
        }
    }

    fn gateway(&self, dual: bool) -> String {
        let v4 = Ipv4Addr::from(u32::from(self.v4) + 1);
        if dual {
            format!("{v4},{}", Ipv6Addr::from(u128::from(self.v6) + 1))
        } else {
            v4.to_string()
        }
    }

    /// The next pod addresses; hosts start after the gateway.
    fn allocate(&mut self) -> (Ipv4Addr, Ipv6Addr) {
        let host = self.next_host;
        self.next_host += 1;
        (
            Ipv4Addr::from(u32::from(self.v4) + 2 + host),
            Ipv6Addr::from(u128::from(self.v6) + 2 + u128::from(host)),
        )
    }
}

/// Generates the cluster `spec` describes.
pub fn generate(spec: &Spec) -> Result<Cluster, SpecError> {
    for (name, v) in [
        ("announced", spec.announced),
        ("local-share", spec.local_share),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(SpecError::Share(name, v));
        }
    }
    if spec.pods > 0 && spec.nodes == 0 {
        return Err(SpecError::Zero("nodes", "pods"));
    }
    if spec.pods > 0 && spec.subnets == 0 {
        return Err(SpecError::Zero("subnets", "pods"));
    }
    if spec.services > 1_000_000 {
        return Err(SpecError::TooMany(spec.services, "services", 1_000_000));
    }
    if spec.eips > 65_000 {
        return Err(SpecError::TooMany(spec.eips, "EIPs", 65_000));
    }
    if spec.nodes > 1_000_000 {
        return Err(SpecError::TooMany(spec.nodes, "nodes", 1_000_000));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let dual = spec.dual_stack;

    // Subnets are sized for twice their share of pods (uniform placement leaves some fuller).
    let per_subnet = if spec.subnets == 0 {
        0
    } else {
        spec.pods.div_ceil(spec.subnets)
    };
    let size = (2 * per_subnet as u64 + 16).next_power_of_two().max(256);
    if size * spec.subnets as u64 > 1 << 24 {
        return Err(SpecError::AddressSpace {
            pods: spec.pods,
            subnets: spec.subnets,
        });
    }
    let v4_len = 32 - size.trailing_zeros() as u8;
    let mut plans: Vec<SubnetPlan> = (0..spec.subnets)
        .map(|i| SubnetPlan {
            name: if i == 0 {
                "ovn-default".to_string()
            } else {
                format!("subnet-{i:04}")
            },
            v4: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + (i as u64 * size) as u32),
            v4_len,
            v6: Ipv6Addr::from((0xfd00_0010u128 << 96) | ((i as u128) << 64)),
            next_host: 0,
        })
        .collect();

    let nodes = (0..spec.nodes)
        .map(|i| {
            let mut addresses = vec![
                json!({"type": "InternalIP", "address": node_ip(i).to_string()}),
                json!({"type": "Hostname", "address": node_name(i)}),
            ];
            if dual {
                addresses.insert(
                    1,
                    json!({"type": "InternalIP", "address": node_ip6(i).to_string()}),
                );
            }
            json!({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": node_name(i),
                    "uid": uid(&mut rng),
                    "labels": {
                        "kubernetes.io/hostname": node_name(i),
                        "kubernetes.io/os": "linux",
                        "node-role.kubernetes.io/worker": "",
                    },
                    "annotations": {
                        "ovn.kubernetes.io/allocated": "true",
                        "ovn.kubernetes.io/ip_address": format!("100.64.{}.{}", (i >> 8) & 255, i & 255),
                        "ovn.kubernetes.io/logical_switch": "join",
                    },
                },
                "spec": {"podCIDR": format!("10.244.{}.0/24", i % 256)},
                "status": {
                    "addresses": addresses,
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                },
            })
        })
        .collect();

    let subnets = plans
        .iter()
        .enumerate()
        .map(|(i, plan)| {
            let mut annotations = serde_json::Map::new();
            // 5% announced from every speaker, 2% local, 0.5% a value the rules reject.
            let roll: f64 = rng.random();
            let bgp = if roll < 0.05 {
                Some("true")
            } else if roll < 0.07 {
                Some("local")
            } else if roll < 0.075 {
                Some("enabled")
            } else {
                None
            };
            if let Some(v) = bgp {
                annotations.insert("ovn.kubernetes.io/bgp".into(), v.into());
            }
            let ready = rng.random_bool(0.99);
            json!({
                "apiVersion": "kubeovn.io/v1",
                "kind": "Subnet",
                "metadata": {"name": plan.name, "uid": uid(&mut rng), "annotations": annotations},
                "spec": {
                    "protocol": if dual { "Dual" } else { "IPv4" },
                    "cidrBlock": plan.cidr_block(dual),
                    "gateway": plan.gateway(dual),
                    "excludeIps": [plan.gateway(dual)],
                    "natOutgoing": i == 0 || rng.random_bool(0.3),
                    "provider": "ovn",
                    "vpc": "ovn-cluster",
                    "namespaces": [namespace(i)],
                },
                "status": {
                    "conditions": [
                        {"type": "Validated", "status": "True", "reason": "ValidatedSuccessfully"},
                        if ready {
                            json!({"type": "Ready", "status": "True", "reason": "ResourceReady"})
                        } else {
                            json!({"type": "Ready", "status": "False", "reason": "ResourceNotReady", "message": "logical switch not found"})
                        },
                    ],
                    "v4usingIPs": 0,
                },
            })
        })
        .collect();

    let mut pods = Vec::with_capacity(spec.pods);
    for i in 0..spec.pods {
        let node = rng.random_range(0..spec.nodes);
        let ns = namespace(rng.random_range(0..NAMESPACES));
        let app = *pick(&mut rng, APPS);
        let hash: u32 = rng.random();
        let name = format!("{app}-{:08x}-{i}", hash);
        let mut annotations = serde_json::Map::new();
        let host_network = rng.random_bool(0.03);
        let (pod_ip, pod_ips) = if host_network {
            let ip = node_ip(node).to_string();
            (ip.clone(), vec![json!({"ip": ip})])
        } else {
            let s = rng.random_range(0..spec.subnets);
            let plan = &mut plans[s];
            let (v4, v6) = plan.allocate();
            let ips = if dual {
                format!("{v4},{v6}")
            } else {
                v4.to_string()
            };
            for (k, v) in [
                ("ovn.kubernetes.io/allocated", "true".to_string()),
                ("ovn.kubernetes.io/routed", "true".to_string()),
                ("ovn.kubernetes.io/cidr", plan.cidr_block(dual)),
                ("ovn.kubernetes.io/gateway", plan.gateway(dual)),
                ("ovn.kubernetes.io/ip_address", ips),
                ("ovn.kubernetes.io/logical_switch", plan.name.clone()),
                ("ovn.kubernetes.io/mac_address", mac(&mut rng)),
                ("ovn.kubernetes.io/pod_nic_type", "veth-pair".to_string()),
            ] {
                annotations.insert(k.into(), v.into());
            }
            // 2% have a secondary Kube-OVN network (Multus attachment with its own subnet).
            if rng.random_bool(0.02) {
                let s2 = rng.random_range(0..spec.subnets);
                let plan2 = &mut plans[s2];
                let (a4, _) = plan2.allocate();
                let provider = format!("attachnet.{ns}.ovn");
                annotations.insert(
                    format!("{provider}.kubernetes.io/ip_address"),
                    a4.to_string().into(),
                );
                annotations.insert(
                    format!("{provider}.kubernetes.io/logical_switch"),
                    plan2.name.clone().into(),
                );
                annotations.insert(
                    "k8s.v1.cni.cncf.io/networks".into(),
                    format!("{ns}/attachnet").into(),
                );
            }
            let mut ips = vec![json!({"ip": v4.to_string()})];
            if dual {
                ips.push(json!({"ip": v6.to_string()}));
            }
            (v4.to_string(), ips)
        };
        if rng.random_bool(spec.announced) {
            let policy = if rng.random_bool(spec.local_share) {
                "local"
            } else if rng.random_bool(0.001) {
                // The odd typo a real cluster has: reported, never announced.
                "ture"
            } else if rng.random_bool(0.3) {
                "cluster"
            } else {
                "true"
            };
            annotations.insert("ovn.kubernetes.io/bgp".into(), policy.into());
        }
        let roll: f64 = rng.random();
        let (phase, reason, terminating) = if roll < 0.01 {
            ("Succeeded", None, false)
        } else if roll < 0.015 {
            ("Failed", None, false)
        } else if roll < 0.02 {
            ("Failed", Some("Evicted"), false)
        } else if roll < 0.025 {
            ("Running", None, true)
        } else {
            ("Running", None, false)
        };
        let image = *pick(&mut rng, IMAGES);
        let mut metadata = json!({
            "name": name,
            "namespace": ns,
            "uid": uid(&mut rng),
            "resourceVersion": (1000 + i).to_string(),
            "creationTimestamp": "2026-11-01T08:00:00Z",
            "labels": {"app": app, "pod-template-hash": format!("{:08x}", hash)},
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": format!("{app}-{:08x}", hash),
                "uid": uid(&mut rng),
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        });
        if terminating {
            metadata["deletionTimestamp"] = "2026-11-23T10:00:00Z".into();
            metadata["deletionGracePeriodSeconds"] = 30.into();
        }
        let mut status = json!({
            "phase": phase,
            "hostIP": node_ip(node).to_string(),
            "podIP": pod_ip,
            "podIPs": pod_ips,
            "startTime": "2026-11-01T08:00:02Z",
            "qosClass": "Burstable",
            "conditions": [
                {"type": "Ready", "status": if phase == "Running" { "True" } else { "False" }},
                {"type": "PodScheduled", "status": "True"},
            ],
        });
        if let Some(reason) = reason {
            status["reason"] = reason.into();
        }
        pods.push(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": {
                "nodeName": node_name(node),
                "hostNetwork": host_network,
                "containers": [{
                    "name": app,
                    "image": image,
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                }],
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "serviceAccountName": "default",
                "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst",
            },
            "status": status,
        }));
    }

    let services = (0..spec.services)
        .map(|i| {
            let ns = namespace(i);
            let app = APPS[i % APPS.len()];
            let roll: f64 = rng.random();
            let (service_type, headless) = if roll < 0.05 {
                ("ClusterIP", true)
            } else if roll < 0.1 {
                ("NodePort", false)
            } else if roll < 0.13 {
                ("LoadBalancer", false)
            } else {
                ("ClusterIP", false)
            };
            let v4 = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 10)) + i as u32);
            let v6 = Ipv6Addr::from((0xfd00_0010_0096u128 << 80) + 10 + i as u128);
            let (cluster_ip, cluster_ips, families) = if headless {
                (json!("None"), json!(["None"]), json!(["IPv4"]))
            } else if dual {
                (
                    json!(v4.to_string()),
                    json!([v4.to_string(), v6.to_string()]),
                    json!(["IPv4", "IPv6"]),
                )
            } else {
                (
                    json!(v4.to_string()),
                    json!([v4.to_string()]),
                    json!(["IPv4"]),
                )
            };
            let mut annotations = serde_json::Map::new();
            if rng.random_bool(0.1) {
                annotations.insert("ovn.kubernetes.io/bgp".into(), "true".into());
            }
            json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": format!("{app}-{i:05}"),
                    "namespace": ns,
                    "uid": uid(&mut rng),
                    "annotations": annotations,
                    "labels": {"app": app},
                },
                "spec": {
                    "type": service_type,
                    "clusterIP": cluster_ip,
                    "clusterIPs": cluster_ips,
                    "ipFamilies": families,
                    "ipFamilyPolicy": if dual && !headless { "PreferDualStack" } else { "SingleStack" },
                    "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
                    "selector": {"app": app},
                    "sessionAffinity": "None",
                },
                "status": {"loadBalancer": {}},
            })
        })
        .collect();

    let gateway_count = if spec.eips == 0 {
        0
    } else {
        spec.eips.div_ceil(100)
    };
    let gateways = (0..gateway_count)
        .map(|g| {
            json!({
                "apiVersion": "kubeovn.io/v1",
                "kind": "VpcNatGateway",
                "metadata": {"name": format!("gw-{g:03}"), "uid": uid(&mut rng)},
                "spec": {
                    "vpc": format!("vpc-{g:03}"),
                    "subnet": format!("vpc-{g:03}-net"),
                    "lanIp": format!("10.250.{}.{}", g / 250, 2 + g % 250),
                    "selector": ["kubernetes.io/os: linux"],
                    "externalSubnets": ["ovn-vpc-external-network"],
                    "bgpSpeaker": {
                        "enabled": true,
                        "asn": 65500,
                        "remoteAsn": 65000,
                        "neighbors": ["100.127.4.161"],
                        "holdTime": "1m",
                        "enableGracefulRestart": true,
                    },
                },
            })
        })
        .collect();

    let eips = (0..spec.eips)
        .map(|i| {
            let gateway = format!("gw-{:03}", i % gateway_count.max(1));
            let v4 = Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 20, 0, 10)) + i as u32);
            let v6 = if dual && rng.random_bool(0.2) {
                Ipv6Addr::from((0xfd00_0172_0020u128 << 80) + 10 + i as u128).to_string()
            } else {
                String::new()
            };
            let mut annotations = serde_json::Map::new();
            if rng.random_bool(0.5) {
                annotations.insert("ovn.kubernetes.io/bgp".into(), "true".into());
            }
            let ready = rng.random_bool(0.95);
            json!({
                "apiVersion": "kubeovn.io/v1",
                "kind": "IptablesEIP",
                "metadata": {
                    "name": format!("eip-{i:05}"),
                    "uid": uid(&mut rng),
                    "labels": {"ovn.kubernetes.io/vpc-nat-gw-name": gateway},
                    "annotations": annotations,
                },
                "spec": {"natGwDp": gateway, "v4ip": v4.to_string(), "v6ip": v6},
                "status": {"ready": ready, "ip": v4.to_string(), "nat": ""},
            })
        })
        .collect();

    Ok(Cluster {
        nodes,
        subnets,
        pods,
        services,
        gateways,
        eips,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Spec {
        Spec {
            nodes: 10,
            pods: 500,
            services: 50,
            subnets: 8,
            eips: 20,
            ..Spec::default()
        }
    }

    #[test]
    fn same_seed_same_manifests_other_seed_other_manifests() {
        let a = generate(&small()).unwrap().files(Format::Json);
        let b = generate(&small()).unwrap().files(Format::Json);
        assert_eq!(a, b);
        let c = generate(&Spec { seed: 2, ..small() })
            .unwrap()
            .files(Format::Json);
        assert_ne!(a, c);
    }

    #[test]
    fn counts_match_the_spec() {
        let c = generate(&small()).unwrap();
        assert_eq!(
            (
                c.nodes.len(),
                c.pods.len(),
                c.services.len(),
                c.subnets.len(),
                c.eips.len()
            ),
            (10, 500, 50, 8, 20)
        );
        assert_eq!(c.gateways.len(), 1);
    }

    #[test]
    fn pod_addresses_are_unique_and_inside_their_subnet() {
        let c = generate(&small()).unwrap();
        let mut cidrs = std::collections::HashMap::new();
        for s in &c.subnets {
            let name = s["metadata"]["name"].as_str().unwrap().to_string();
            let nets: Vec<ipnet::IpNet> = s["spec"]["cidrBlock"]
                .as_str()
                .unwrap()
                .split(',')
                .map(|n| n.parse().unwrap())
                .collect();
            cidrs.insert(name, nets);
        }
        let mut seen = std::collections::HashSet::new();
        for p in &c.pods {
            let ann = &p["metadata"]["annotations"];
            let Some(ips) = ann["ovn.kubernetes.io/ip_address"].as_str() else {
                assert_eq!(p["spec"]["hostNetwork"], true);
                continue;
            };
            let subnet = ann["ovn.kubernetes.io/logical_switch"].as_str().unwrap();
            for ip in ips.split(',') {
                let ip: std::net::IpAddr = ip.parse().unwrap();
                assert!(seen.insert(ip), "{ip} allocated twice");
                assert!(cidrs[subnet].iter().any(|n| n.contains(&ip)));
            }
        }
    }

    #[test]
    fn shares_out_of_range_are_refused() {
        let err = generate(&Spec {
            announced: 1.5,
            ..small()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--announced must be between 0 and 1, not 1.5"
        );
    }
}
