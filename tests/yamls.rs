//! The deployment manifests in `yamls/` and the NAT-gateway shim `yamls/kube-ovn-speaker.sh`:
//!
//! - every YAML document deserializes into its k8s-openapi type (or bgpgen's `VpcNatGateway`), and
//!   for k8s-openapi types serializes back to the same document, so a misspelt field fails too;
//! - every container's `args` parse with bgpgen's own parsers: speaker flags through
//!   `parse_speaker_args` and then `resolve` (with the environment the downward API gives), the
//!   other flags against the list of `run` flags below, and the whole list through the real
//!   binary's clap definition (`bgpgen run ARGS --help` exits 0 only when every flag before
//!   `--help` exists and its value parses);
//! - the NAT gateway: the example's `spec.bgpSpeaker` gives arguments (through
//!   `gateway_speaker_args`, and as Kube-OVN's controller builds them, appended to the shim's)
//!   that resolve to the expected options;
//! - RBAC: each ClusterRole grants exactly list+watch on the kinds bgpgen watches in its scope
//!   (`source::kube::watched_kinds`) and create+patch on events.k8s.io Events, nothing else.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bgpgen::kubeovn::{IptablesEip, Subnet, VpcNatGateway};
use bgpgen::model::Kind;
use bgpgen::options::{
    Env, SpeakerArgs, SpeakerMode, SpeakerOptions, gateway_speaker_args, parse_speaker_args,
    resolve,
};
use bgpgen::snapshot::{GatewayInfo, Object, Origin, Snapshot};
use bgpgen::source::kube::{Scope, watched_kinds};
use common::kubeovn::{SHIM, controller_args, shim_command};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Node, Pod, PodSpec, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

const IMAGE: &str = "ghcr.io/example/bgpgen:0.1.0";
const BINARY_IN_IMAGE: &str = "/usr/local/bin/bgpgen";
const NAMESPACE: &str = "kube-system";

/// The flags of `bgpgen run` that are not speaker flags, and whether they take a value. Speaker
/// flags (`SpeakerArgs`, which includes `--kubeconfig`) go through `parse_speaker_args` instead.
const RUN_FLAGS: &[(&str, bool)] = &[
    ("backend", true),
    ("spawn", false),
    ("manifests", true),
    ("options", true),
    ("templates", true),
    ("config-file", true),
    ("gobgp-api", true),
    ("gobgpd-pid-file", true),
    ("bird-socket", true),
    ("frr-vty-socket", true),
    ("debounce", true),
    ("check-interval", true),
    ("withdraw-on-exit", false),
    ("restart-after-failed-checks", true),
    ("watch-timeout", true),
    ("metrics-addr", true),
];

/// One YAML document of `yamls/`, typed.
#[derive(Debug)]
enum Doc {
    DaemonSet(Box<DaemonSet>),
    ClusterRole(ClusterRole),
    ClusterRoleBinding(ClusterRoleBinding),
    ServiceAccount(ServiceAccount),
    ConfigMap(ConfigMap),
    Secret(Secret),
    VpcNatGateway(Box<VpcNatGateway>),
}

struct File {
    name: String,
    docs: Vec<Doc>,
}

impl File {
    fn daemonsets(&self) -> impl Iterator<Item = &DaemonSet> {
        self.docs.iter().filter_map(|d| match d {
            Doc::DaemonSet(x) => Some(x.as_ref()),
            _ => None,
        })
    }
    fn cluster_roles(&self) -> impl Iterator<Item = &ClusterRole> {
        self.docs.iter().filter_map(|d| match d {
            Doc::ClusterRole(x) => Some(x),
            _ => None,
        })
    }
    fn bindings(&self) -> impl Iterator<Item = &ClusterRoleBinding> {
        self.docs.iter().filter_map(|d| match d {
            Doc::ClusterRoleBinding(x) => Some(x),
            _ => None,
        })
    }
    fn service_accounts(&self) -> impl Iterator<Item = &ServiceAccount> {
        self.docs.iter().filter_map(|d| match d {
            Doc::ServiceAccount(x) => Some(x),
            _ => None,
        })
    }
    fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.docs.iter().filter_map(|d| match d {
            Doc::Secret(x) => Some(x),
            _ => None,
        })
    }
    fn config_maps(&self) -> impl Iterator<Item = &ConfigMap> {
        self.docs.iter().filter_map(|d| match d {
            Doc::ConfigMap(x) => Some(x),
            _ => None,
        })
    }
    fn gateways(&self) -> impl Iterator<Item = &VpcNatGateway> {
        self.docs.iter().filter_map(|d| match d {
            Doc::VpcNatGateway(x) => Some(x.as_ref()),
            _ => None,
        })
    }
}

fn yamls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("yamls")
}

/// Deserializes a k8s-openapi object (which checks apiVersion and kind) and serializes it back:
/// the result must be the document itself, so that no field was unknown (k8s-openapi ignores
/// unknown fields) or mistyped.
fn typed<T: DeserializeOwned + Serialize>(file: &str, index: usize, value: &Value) -> T {
    let object: T = serde_path_to_error::deserialize(value.clone()).unwrap_or_else(|e| {
        panic!("{file} document {index}: {e}");
    });
    let back = serde_json::to_value(&object).expect("serializes");
    let mut lost = Vec::new();
    differences(value, &back, String::new(), &mut lost);
    assert!(
        lost.is_empty(),
        "{file} document {index}: {} does not keep these fields (misspelt, misplaced or \
         mistyped?): {lost:?}",
        std::any::type_name::<T>()
    );
    object
}

/// The paths at which `original` and `round_trip` differ.
fn differences(original: &Value, round_trip: &Value, path: String, out: &mut Vec<String>) {
    match (original, round_trip) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                let at = format!("{path}.{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => differences(x, y, at, out),
                    _ => out.push(at),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(x, y, format!("{path}[{i}]"), out);
            }
        }
        (a, b) if a == b => {}
        _ => out.push(path),
    }
}

fn load_file(path: &Path) -> File {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    let values: Vec<Value> = serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|e| panic!("{name}: not valid YAML: {e}"));
    let mut docs = Vec::new();
    for (i, value) in values.iter().enumerate() {
        assert!(
            !value.is_null(),
            "{name}: document {i} is empty (a stray `---`?)"
        );
        let api_version = value["apiVersion"].as_str().unwrap_or_default();
        let kind = value["kind"].as_str().unwrap_or_default();
        let doc = match (api_version, kind) {
            ("apps/v1", "DaemonSet") => Doc::DaemonSet(Box::new(typed(&name, i, value))),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                Doc::ClusterRole(typed(&name, i, value))
            }
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                Doc::ClusterRoleBinding(typed(&name, i, value))
            }
            ("v1", "ServiceAccount") => Doc::ServiceAccount(typed(&name, i, value)),
            ("v1", "ConfigMap") => Doc::ConfigMap(typed(&name, i, value)),
            ("v1", "Secret") => Doc::Secret(typed(&name, i, value)),
            (bgpgen::kubeovn::API_VERSION, "VpcNatGateway") => Doc::VpcNatGateway(Box::new(
                serde_path_to_error::deserialize(value.clone())
                    .unwrap_or_else(|e| panic!("{name} document {i}: {e}")),
            )),
            other => panic!("{name} document {i}: unexpected apiVersion/kind {other:?}"),
        };
        docs.push(doc);
    }
    File { name, docs }
}

/// Every `yamls/*.yaml` file, by name.
fn load_all() -> BTreeMap<String, File> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(yamls_dir()).unwrap() {
        let path = entry.unwrap().path();
        let ext = path.extension().and_then(|e| e.to_str());
        assert_ne!(ext, Some("yml"), "{}: use .yaml", path.display());
        if ext == Some("yaml") {
            let file = load_file(&path);
            files.insert(file.name.clone(), file);
        }
    }
    files
}

fn rbac_file(files: &BTreeMap<String, File>) -> &File {
    &files["rbac.yaml"]
}

fn nat_file(files: &BTreeMap<String, File>) -> &File {
    &files["vpc-nat-gateway.yaml"]
}

/// `--name=value`, `--name value` or `--flag` arguments of `run`, split into the `run` flags
/// (name, value) and the speaker arguments (kept as given).
fn split_run_args(what: &str, args: &[String]) -> (Vec<(String, Option<String>)>, Vec<String>) {
    let mut run = Vec::new();
    let mut speaker = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let (name, inline) = match arg.strip_prefix("--") {
            Some(rest) => match rest.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (rest, None),
            },
            None => {
                speaker.push(arg.clone());
                continue;
            }
        };
        match RUN_FLAGS.iter().find(|(n, _)| *n == name) {
            Some((_, takes_value)) => {
                let value = match (takes_value, inline) {
                    (true, Some(v)) => Some(v),
                    (true, None) => Some(
                        iter.next()
                            .unwrap_or_else(|| panic!("{what}: --{name} needs a value"))
                            .clone(),
                    ),
                    (false, None) => None,
                    (false, Some(v)) => panic!("{what}: --{name} takes no value, got {v:?}"),
                };
                run.push((name.to_string(), value));
            }
            None => speaker.push(arg.clone()),
        }
    }
    (run, speaker)
}

/// The directory of gobgpd's API socket: `--gobgp-api` must be `unix:///ABSOLUTE/PATH` (docs/design.md
/// section 9: no daemon control channel on TCP, where every process of a host-network node could
/// reach it).
fn gobgp_api_socket_dir<'a>(what: &str, api: &'a str) -> &'a Path {
    let path = api.strip_prefix("unix://").unwrap_or_else(|| {
        panic!("{what}: --gobgp-api={api}: gobgpd's API must be a Unix socket (unix:///PATH)")
    });
    let path = Path::new(path);
    assert!(
        path.is_absolute(),
        "{what}: --gobgp-api={api}: an absolute path"
    );
    path.parent().unwrap()
}

fn run_flag<'a>(run: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    run.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_deref().unwrap_or(""))
}

/// Runs the real `bgpgen run ARGS --help`: clap reports any unknown flag or unparsable value that
/// comes before `--help`, and prints the help (exit 0) only when there is none.
fn check_with_binary(what: &str, run_args: &[String]) {
    let output = Command::new(env!("CARGO_BIN_EXE_bgpgen"))
        .arg("run")
        .args(run_args)
        .arg("--help")
        .env_remove("NODE_NAME")
        .env_remove("GATEWAY_NAME")
        .output()
        .expect("runs bgpgen");
    assert!(
        output.status.success(),
        "{what}: `bgpgen run` rejects these arguments:\n{run_args:?}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The speaker options of `args` with the environment a pod gets and a password file.
fn resolve_speaker(
    what: &str,
    args: &SpeakerArgs,
    env: &Env,
    snapshot: &Snapshot,
) -> SpeakerOptions {
    let read_file = |p: &Path| -> std::io::Result<String> {
        assert_eq!(p, Path::new("/etc/bgpgen/secret/password"), "{what}");
        Ok("s3cret-Passw0rd\n".to_string())
    };
    resolve(args, env, snapshot, &read_file)
        .unwrap_or_else(|e| panic!("{what}: the speaker options do not resolve: {e}"))
        .options
}

fn only_container(what: &str, spec: &PodSpec) -> Container {
    assert_eq!(
        spec.containers.len(),
        1,
        "{what}: one container (bgpgen --spawn runs the daemon)"
    );
    assert!(spec.init_containers.is_none(), "{what}: no init containers");
    spec.containers[0].clone()
}

/// The value of a downward-API environment variable's fieldRef.
fn field_ref(container: &Container, name: &str) -> Option<String> {
    container
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == name)?
        .value_from
        .as_ref()?
        .field_ref
        .as_ref()
        .map(|f| f.field_path.clone())
}

#[test]
fn every_manifest_is_expected_and_typed() {
    let files = load_all();
    let names: BTreeSet<&str> = files.keys().map(String::as_str).collect();
    for expected in [
        "speaker-gobgp.yaml",
        "speaker-frr.yaml",
        "speaker-bird.yaml",
        "rbac.yaml",
        "vpc-nat-gateway.yaml",
    ] {
        assert!(names.contains(expected), "yamls/{expected} is missing");
    }
    for file in files.values() {
        assert!(!file.docs.is_empty(), "{}: no documents", file.name);
    }
    assert!(
        yamls_dir().join(SHIM).is_file(),
        "yamls/{SHIM} (the NAT gateway's /kube-ovn/kube-ovn-speaker) is missing"
    );
}

#[test]
fn speaker_daemonsets_run_bgpgen_with_valid_arguments() {
    let files = load_all();
    let service_account = rbac_file(&files)
        .service_accounts()
        .next()
        .expect("rbac.yaml has a ServiceAccount");
    for backend in ["gobgp", "frr", "bird"] {
        let file = &files[&format!("speaker-{backend}.yaml")];
        let what = file.name.as_str();
        let daemonsets: Vec<&DaemonSet> = file.daemonsets().collect();
        assert_eq!(daemonsets.len(), 1, "{what}: one DaemonSet");
        let ds = daemonsets[0];
        assert_eq!(ds.metadata.namespace.as_deref(), Some(NAMESPACE), "{what}");
        let spec = &ds.spec;
        let template_labels = spec.template.metadata.as_ref().unwrap().labels.clone();
        for (k, v) in spec.selector.match_labels.clone().unwrap_or_default() {
            assert_eq!(
                template_labels.as_ref().and_then(|l| l.get(&k)),
                Some(&v),
                "{what}: the selector must match the pod template's labels"
            );
        }
        let pod = spec.template.spec.as_ref().expect("pod spec");
        assert_eq!(pod.host_network, Some(true), "{what}: hostNetwork");
        assert_eq!(
            pod.dns_policy.as_deref(),
            Some("ClusterFirstWithHostNet"),
            "{what}"
        );
        assert_eq!(
            pod.node_selector
                .as_ref()
                .and_then(|s| s.get("ovn.kubernetes.io/bgp"))
                .map(String::as_str),
            Some("true"),
            "{what}: runs on nodes labelled ovn.kubernetes.io/bgp=true"
        );
        assert_eq!(
            pod.service_account_name, service_account.metadata.name,
            "{what}: the service account of rbac.yaml"
        );
        assert_eq!(
            service_account.metadata.namespace, ds.metadata.namespace,
            "{what}"
        );
        let c = only_container(what, pod);
        assert_eq!(c.image.as_deref(), Some(IMAGE), "{what}");
        assert_eq!(
            c.command.as_deref(),
            Some(&[BINARY_IN_IMAGE.to_string()][..]),
            "{what}"
        );
        let args = c.args.clone().unwrap_or_default();
        assert_eq!(
            args.first().map(String::as_str),
            Some("run"),
            "{what}: bgpgen run"
        );
        let (run, speaker) = split_run_args(what, &args[1..]);

        // The `run` flags: a spawned daemon of the file's backend, files in an emptyDir, the
        // endpoint on the node's addresses, the cluster (not a manifest directory) as the source.
        assert_eq!(run_flag(&run, "backend"), Some(backend), "{what}");
        assert!(run_flag(&run, "spawn").is_some(), "{what}: --spawn");
        assert!(
            run_flag(&run, "manifests").is_none(),
            "{what}: no --manifests in a cluster"
        );
        let config_file = run_flag(&run, "config-file").expect("--config-file");
        let main_file = match backend {
            "gobgp" => "gobgpd.toml",
            "frr" => "frr.conf",
            _ => "bird.conf",
        };
        assert_eq!(
            Path::new(config_file).file_name().unwrap(),
            main_file,
            "{what}"
        );
        let mut writable = vec![Path::new(config_file).parent().unwrap()];
        match backend {
            "gobgp" => writable.push(gobgp_api_socket_dir(
                what,
                run_flag(&run, "gobgp-api").expect("--gobgp-api"),
            )),
            "frr" => writable.push(Path::new(
                run_flag(&run, "frr-vty-socket").expect("--frr-vty-socket"),
            )),
            _ => writable.push(
                Path::new(run_flag(&run, "bird-socket").expect("--bird-socket"))
                    .parent()
                    .unwrap(),
            ),
        }
        let volumes = pod.volumes.clone().unwrap_or_default();
        let mounts = c.volume_mounts.clone().unwrap_or_default();
        for dir in writable {
            let mount = mounts
                .iter()
                .find(|m| Path::new(&m.mount_path) == dir)
                .unwrap_or_else(|| panic!("{what}: {} is not a mounted volume", dir.display()));
            let volume = volumes.iter().find(|v| v.name == mount.name).unwrap();
            assert!(
                volume.empty_dir.is_some() && mount.read_only != Some(true),
                "{what}: {} must be a writable emptyDir",
                dir.display()
            );
        }

        let metrics_addr: std::net::SocketAddr = run_flag(&run, "metrics-addr")
            .expect("--metrics-addr")
            .parse()
            .unwrap();
        assert!(
            metrics_addr.ip().is_unspecified(),
            "{what}: the probes reach the endpoint on the node's address"
        );
        let ports = c.ports.clone().unwrap_or_default();
        let metrics = ports
            .iter()
            .find(|p| p.name.as_deref() == Some("metrics"))
            .unwrap_or_else(|| panic!("{what}: a port named metrics"));
        assert_eq!(
            metrics.container_port,
            i32::from(metrics_addr.port()),
            "{what}"
        );
        for (probe, path) in [
            (c.liveness_probe.as_ref(), "/healthz"),
            (c.readiness_probe.as_ref(), "/readyz"),
        ] {
            let get = probe
                .and_then(|p| p.http_get.as_ref())
                .unwrap_or_else(|| panic!("{what}: an HTTP probe on {path}"));
            assert_eq!(get.path.as_deref(), Some(path), "{what}");
            assert_eq!(
                get.port,
                IntOrString::String("metrics".into()),
                "{what}: {path}"
            );
        }
        let requests = c
            .resources
            .as_ref()
            .and_then(|r| r.requests.clone())
            .unwrap_or_default();
        assert!(
            requests.contains_key("cpu") && requests.contains_key("memory"),
            "{what}: cpu and memory requests"
        );

        // bird and bgpd listen on port 179 with a file capability (Dockerfile): the kernel runs
        // them only if the container keeps NET_BIND_SERVICE, and grants it only without
        // no_new_privs. gobgpd (active mode) needs nothing.
        if backend != "gobgp" {
            let security = c.security_context.clone().unwrap_or_default();
            let added = security
                .capabilities
                .and_then(|caps| caps.add)
                .unwrap_or_default();
            assert!(
                added.iter().any(|c| c == "NET_BIND_SERVICE"),
                "{what}: NET_BIND_SERVICE"
            );
            assert_ne!(
                security.allow_privilege_escalation,
                Some(false),
                "{what}: file capabilities need allowPrivilegeEscalation"
            );
        }

        // The environment kube-ovn-speaker reads, from the downward API.
        for (name, path) in [
            ("NODE_NAME", "spec.nodeName"),
            ("POD_IP", "status.podIP"),
            ("POD_IPS", "status.podIPs"),
        ] {
            assert_eq!(field_ref(&c, name).as_deref(), Some(path), "{what}: {name}");
        }

        // The password: a file of a Secret mounted read-only, the Secret in the same file.
        let parsed = parse_speaker_args(&speaker)
            .unwrap_or_else(|e| panic!("{what}: speaker flags {speaker:?}: {e}"));
        assert!(
            parsed.auth_password.is_none(),
            "{what}: no password on the command line"
        );
        let password_file = parsed
            .auth_password_file
            .clone()
            .expect("--auth-password-file");
        let mount = mounts
            .iter()
            .find(|m| Path::new(&m.mount_path) == password_file.parent().unwrap())
            .unwrap_or_else(|| panic!("{what}: the password file's directory is not mounted"));
        assert_eq!(
            mount.read_only,
            Some(true),
            "{what}: Secret mounted read-only"
        );
        let secret_volume = volumes
            .iter()
            .find(|v| v.name == mount.name)
            .and_then(|v| v.secret.clone())
            .unwrap_or_else(|| panic!("{what}: the password comes from a Secret volume"));
        let file_name = password_file.file_name().unwrap().to_str().unwrap();
        let key = match &secret_volume.items {
            Some(items) => items
                .iter()
                .find(|i| i.path == file_name)
                .unwrap_or_else(|| panic!("{what}: no Secret item for {file_name}"))
                .key
                .clone(),
            None => file_name.to_string(),
        };
        let secret = file
            .secrets()
            .find(|s| s.metadata.name == secret_volume.secret_name)
            .unwrap_or_else(|| panic!("{what}: the Secret {:?}", secret_volume.secret_name));
        assert_eq!(secret.metadata.namespace, ds.metadata.namespace, "{what}");
        let has_key = secret
            .string_data
            .as_ref()
            .is_some_and(|d| d.contains_key(&key))
            || secret.data.as_ref().is_some_and(|d| d.contains_key(&key));
        assert!(has_key, "{what}: the Secret has no key {key:?}");

        // The speaker options resolve with what the pod's environment gives.
        let env = Env {
            node_name: Some("node-1".into()),
            pod_ips: Some("10.0.0.11,fd00::11".into()),
            pod_ip: Some("10.0.0.11".into()),
            gateway_name: None,
        };
        let options = resolve_speaker(what, &parsed, &env, &Snapshot::new(Origin::Cluster));
        assert_eq!(
            options.mode,
            SpeakerMode::Node {
                node: "node-1".into()
            },
            "{what}"
        );
        assert_eq!(options.router_id, Ipv4Addr::new(10, 0, 0, 11), "{what}");
        assert!(
            !options.neighbors_v4.is_empty() || !options.neighbors_v6.is_empty(),
            "{what}: neighbors"
        );
        assert_eq!(
            options.password.as_ref().map(|p| p.expose()),
            Some("s3cret-Passw0rd"),
            "{what}"
        );

        check_with_binary(what, &args[1..]);
    }
}

#[test]
fn nat_gateway_speaker_runs_bgpgen_with_the_controllers_arguments() {
    let files = load_all();
    let file = nat_file(&files);

    // The controller takes the image from ovn-vpc-nat-config and runs /kube-ovn/kube-ovn-speaker.
    let config = file
        .config_maps()
        .find(|c| c.metadata.name.as_deref() == Some("ovn-vpc-nat-config"))
        .expect("ConfigMap ovn-vpc-nat-config");
    assert_eq!(config.metadata.namespace.as_deref(), Some(NAMESPACE));
    let data = config.data.clone().unwrap_or_default();
    assert_eq!(data.get("bgpSpeakerImage").map(String::as_str), Some(IMAGE));
    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(&format!("yamls/{SHIM} /kube-ovn/kube-ovn-speaker")),
        "the Dockerfile installs yamls/{SHIM} as /kube-ovn/kube-ovn-speaker"
    );
    assert!(
        dockerfile.contains(&format!("/out/bgpgen {BINARY_IN_IMAGE}")),
        "the Dockerfile installs bgpgen as {BINARY_IN_IMAGE}"
    );

    let shim = shim_command();
    assert_eq!(shim[0], BINARY_IN_IMAGE, "{SHIM}");
    assert_eq!(shim[1], "run", "{SHIM}");
    let (shim_run, shim_speaker) = split_run_args(SHIM, &shim[2..]);
    assert!(
        shim_speaker.is_empty(),
        "{SHIM}: speaker flags come from the controller only, found {shim_speaker:?}"
    );
    assert_eq!(run_flag(&shim_run, "backend"), Some("gobgp"), "{SHIM}");
    assert!(run_flag(&shim_run, "spawn").is_some(), "{SHIM}: --spawn");
    assert!(run_flag(&shim_run, "manifests").is_none(), "{SHIM}");
    assert!(run_flag(&shim_run, "config-file").is_some(), "{SHIM}");
    // The sidecar gets no volume: its files live in the image's /run/bgpgen (owned by the image's
    // user), the API socket included; its endpoint stays on the pod's loopback.
    let run_dir = Path::new("/run/bgpgen");
    let config_file = Path::new(run_flag(&shim_run, "config-file").unwrap());
    assert_eq!(config_file.parent(), Some(run_dir), "{SHIM}: --config-file");
    let api = run_flag(&shim_run, "gobgp-api").expect("--gobgp-api");
    assert_eq!(
        gobgp_api_socket_dir(SHIM, api),
        run_dir,
        "{SHIM}: --gobgp-api"
    );
    let metrics: std::net::SocketAddr = run_flag(&shim_run, "metrics-addr")
        .expect("--metrics-addr")
        .parse()
        .unwrap();
    assert!(
        metrics.ip().is_loopback(),
        "{SHIM}: --metrics-addr on loopback"
    );
    assert!(
        dockerfile.contains("install -d -o bgpgen -g bgpgen -m 0750 /run/bgpgen"),
        "the Dockerfile makes /run/bgpgen, owned by the image's user"
    );

    let gateways: Vec<&VpcNatGateway> = file.gateways().collect();
    assert_eq!(gateways.len(), 1, "one example VpcNatGateway");
    let gw = gateways[0];
    let name = gw.metadata.name.clone().expect("name");
    let info = GatewayInfo::from_kubeovn(gw).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let spec = info.bgp_speaker.clone().expect("spec.bgpSpeaker");
    assert!(spec.enabled, "spec.bgpSpeaker.enabled");
    gateway_speaker_args(&name, &spec).unwrap_or_else(|e| panic!("{name}: {e}"));

    // What the sidecar runs: the shim's words, then the controller's arguments.
    let controller = controller_args(gw);
    let argv: Vec<String> = shim[2..].iter().cloned().chain(controller).collect();
    let (run, speaker) = split_run_args("NAT gateway sidecar", &argv);
    assert_eq!(
        run, shim_run,
        "the controller's arguments are speaker flags"
    );
    let parsed = parse_speaker_args(&speaker).unwrap_or_else(|e| panic!("{speaker:?}: {e}"));
    let mut snapshot = Snapshot::new(Origin::Cluster);
    snapshot.upsert(Object::Gateway(info));
    let env = Env {
        node_name: None,
        pod_ips: Some("10.0.1.10".into()),
        pod_ip: Some("10.0.1.10".into()),
        gateway_name: Some(name.clone()),
    };
    let options = resolve_speaker("NAT gateway sidecar", &parsed, &env, &snapshot);
    assert_eq!(options.mode, SpeakerMode::NatGateway { gateway: name });
    assert_eq!(options.cluster_as.0, 65500);
    assert_eq!(options.neighbor_as.0, 65000);
    assert_eq!(options.router_id, Ipv4Addr::new(1, 1, 1, 1));
    assert_eq!(options.neighbors_v4, vec![Ipv4Addr::new(100, 127, 4, 161)]);
    assert_eq!(
        options.neighbors_v6,
        vec!["fd:1::1".parse::<Ipv6Addr>().unwrap()]
    );
    assert_eq!(options.hold_time, Duration::from_secs(60));
    assert!(options.graceful_restart);
    assert_eq!(
        options.password.as_ref().map(|p| p.expose()),
        Some("password123")
    );

    check_with_binary("NAT gateway sidecar", &argv);
}

/// (API group, resource) of a kind bgpgen watches.
fn resource_of(kind: Kind) -> (String, String) {
    fn core<K: k8s_openapi::Resource>() -> (String, String) {
        (K::GROUP.to_string(), K::URL_PATH_SEGMENT.to_string())
    }
    fn kubeovn<K: kube::Resource<DynamicType = ()>>() -> (String, String) {
        (K::group(&()).into_owned(), K::plural(&()).into_owned())
    }
    match kind {
        Kind::Node => core::<Node>(),
        Kind::Pod => core::<Pod>(),
        Kind::Service => core::<Service>(),
        Kind::Subnet => kubeovn::<Subnet>(),
        Kind::IptablesEip => kubeovn::<IptablesEip>(),
        Kind::VpcNatGateway => kubeovn::<VpcNatGateway>(),
    }
}

type Grants = BTreeMap<(String, String), BTreeSet<String>>;

/// What bgpgen needs in a scope: list+watch on what it watches, create+patch on Events (kube-rs's
/// `Recorder` posts events.k8s.io/v1 Events, patching them when they repeat).
fn needed(scope: &Scope) -> Grants {
    let mut grants = Grants::new();
    for kind in watched_kinds(scope) {
        grants
            .entry(resource_of(kind))
            .or_default()
            .extend(["list".to_string(), "watch".to_string()]);
    }
    grants.insert(
        ("events.k8s.io".into(), "events".into()),
        ["create".to_string(), "patch".to_string()].into(),
    );
    grants
}

fn granted(what: &str, role: &ClusterRole) -> Grants {
    assert!(
        role.aggregation_rule.is_none(),
        "{what}: no aggregation rule"
    );
    let mut grants = Grants::new();
    for rule in role.rules.clone().unwrap_or_default() {
        assert!(
            rule.resource_names.is_none() && rule.non_resource_urls.is_none(),
            "{what}: plain resource rules only"
        );
        let groups = rule.api_groups.clone().unwrap_or_default();
        let resources = rule.resources.clone().unwrap_or_default();
        assert!(
            !groups.is_empty() && !resources.is_empty() && !rule.verbs.is_empty(),
            "{what}: incomplete rule {rule:?}"
        );
        for word in groups.iter().chain(&resources).chain(&rule.verbs) {
            assert!(!word.contains('*'), "{what}: no wildcards ({rule:?})");
        }
        for group in &groups {
            for resource in &resources {
                assert!(
                    !(group.is_empty() && resource.starts_with("secrets")),
                    "{what}: no access to Secrets (the password is a mounted file)"
                );
                grants
                    .entry((group.clone(), resource.clone()))
                    .or_default()
                    .extend(rule.verbs.iter().cloned());
            }
        }
    }
    grants
}

/// The ClusterRole bound to `service_account` in `file`, and that account's namespace/name check.
fn role_bound_to<'a>(file: &'a File, service_account: &str) -> &'a ClusterRole {
    let what = &file.name;
    let accounts: Vec<&ServiceAccount> = file
        .service_accounts()
        .filter(|s| s.metadata.name.as_deref() == Some(service_account))
        .collect();
    assert_eq!(
        accounts.len(),
        1,
        "{what}: ServiceAccount {service_account}"
    );
    let namespace = accounts[0].metadata.namespace.clone();
    assert_eq!(namespace.as_deref(), Some(NAMESPACE), "{what}");
    let bindings: Vec<&ClusterRoleBinding> = file
        .bindings()
        .filter(|b| {
            b.subjects.iter().flatten().any(|s| {
                s.kind == "ServiceAccount" && s.name == service_account && s.namespace == namespace
            })
        })
        .collect();
    assert_eq!(
        bindings.len(),
        1,
        "{what}: one ClusterRoleBinding for {service_account}"
    );
    let role_ref = &bindings[0].role_ref;
    assert_eq!(role_ref.kind, "ClusterRole", "{what}");
    assert_eq!(
        role_ref.api_group.as_deref(),
        Some("rbac.authorization.k8s.io"),
        "{what}"
    );
    file.cluster_roles()
        .find(|r| r.metadata.name.as_deref() == Some(role_ref.name.as_str()))
        .unwrap_or_else(|| panic!("{what}: ClusterRole {} is not in the file", role_ref.name))
}

#[test]
fn cluster_roles_grant_exactly_what_bgpgen_uses() {
    let files = load_all();
    for (file, account, scope) in [
        (rbac_file(&files), "bgpgen", Scope::Node),
        (
            nat_file(&files),
            "vpc-nat-gw",
            Scope::NatGateway {
                gateway: "vpc-natgw".into(),
            },
        ),
    ] {
        let role = role_bound_to(file, account);
        let what = format!("{} ClusterRole {:?}", file.name, role.metadata.name);
        assert_eq!(
            granted(&what, role),
            needed(&scope),
            "{what}: list+watch on every watched kind, create+patch on events.k8s.io events, \
             nothing else"
        );
    }
    // Together the two roles cover every kind bgpgen can watch.
    let all: BTreeSet<Kind> = watched_kinds(&Scope::Node)
        .into_iter()
        .chain(watched_kinds(&Scope::NatGateway {
            gateway: String::new(),
        }))
        .collect();
    for kind in [
        Kind::Node,
        Kind::Pod,
        Kind::Service,
        Kind::Subnet,
        Kind::IptablesEip,
        Kind::VpcNatGateway,
    ] {
        assert!(all.contains(&kind), "{kind:?} is watched in no scope");
    }
    // No other file grants anything.
    for file in files.values() {
        if !["rbac.yaml", "vpc-nat-gateway.yaml"].contains(&file.name.as_str()) {
            assert_eq!(file.cluster_roles().count(), 0, "{}", file.name);
            assert_eq!(file.bindings().count(), 0, "{}", file.name);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// kube-ovn's own speaker containers (issue 12): a `speaker.yaml` written for kube-ovn-speaker
// runs bgpgen unchanged. The args and env lists are copied from kube-ovn.

/// release-1.13 `yamls/speaker.yaml` (the one the seed document tells users to download).
const KUBE_OVN_1_13_ARGS: &[&str] = &[
    "--neighbor-address=10.32.32.1",
    "--neighbor-as=65030",
    "--cluster-as=65000",
];
/// Its `env`, as the downward API fills it (`spec.nodeName`, `status.podIP`, `status.podIPs`).
const KUBE_OVN_1_13_ENV: &[(&str, &str)] = &[
    ("KUBE_NODE_NAME", "node-1"),
    ("POD_IP", "10.32.32.11"),
    ("POD_IPS", "10.32.32.11"),
];

/// master `charts/kube-ovn-v2/templates/speaker/speaker.yaml` with the values.yaml example args
/// (`bgpSpeaker.args`, including `--allowed-source-addresses`).
const KUBE_OVN_MASTER_CHART_ARGS: &[&str] = &[
    "--logtostderr=false",
    "--alsologtostderr=true",
    "--log_file=/var/log/kube-ovn/kube-ovn-speaker.log",
    "--log_file_max_size=200",
    "--neighbor-address=10.32.32.1",
    "--neighbor-as=65030",
    "--cluster-as=65000",
    "--allowed-source-addresses=10.32.32.2,10.32.32.3,10.32.32.4,10.32.32.5",
];
const KUBE_OVN_MASTER_ENV: &[(&str, &str)] = &[
    ("NODE_NAME", "node-1"),
    ("POD_IP", "10.32.32.2"),
    ("POD_IPS", "10.32.32.2,fd00:10:32::2"),
];

fn env_of(vars: &[(&str, &str)]) -> Env {
    Env::from_lookup(|k| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.to_string())
    })
}

#[test]
fn kube_ovn_release_1_13_speaker_container_compiles() {
    let args = parse_speaker_args(KUBE_OVN_1_13_ARGS).expect("release-1.13 args parse");
    let env = env_of(KUBE_OVN_1_13_ENV);
    let options = resolve_speaker(
        "release-1.13 speaker.yaml",
        &args,
        &env,
        &Snapshot::default(),
    );
    assert_eq!(
        options.mode,
        SpeakerMode::Node {
            node: "node-1".into()
        }
    );
    assert_eq!(options.router_id, Ipv4Addr::new(10, 32, 32, 11));
    assert_eq!(options.neighbors_v4, vec![Ipv4Addr::new(10, 32, 32, 1)]);
    let intent = bgpgen::compile::compile(&Snapshot::default(), &options, &[]);
    assert_eq!(intent.neighbors.len(), 1);
}

#[test]
fn kube_ovn_master_chart_speaker_container_compiles() {
    let args = parse_speaker_args(KUBE_OVN_MASTER_CHART_ARGS).expect("master chart args parse");
    let env = env_of(KUBE_OVN_MASTER_ENV);
    let mut options = resolve_speaker("master chart speaker", &args, &env, &Snapshot::default());
    assert_eq!(options.router_id, Ipv4Addr::new(10, 32, 32, 2));
    assert_eq!(options.allowed_source_v4.len(), 4);
    // The neighbor's local address comes from the route lookup `apply`/`run` do; here the route
    // prefers one of the allowed addresses.
    bgpgen::route_lookup::pin_with(&mut options, &|_| {
        Ok(vec![Some("10.32.32.3".parse().unwrap())])
    })
    .expect("an allowed preferred source");
    let intent = bgpgen::compile::compile(&Snapshot::default(), &options, &[]);
    assert_eq!(
        intent.neighbors[0].local_address,
        Some("10.32.32.3".parse().unwrap())
    );
    // Without the lookup (compile/render in CI) it still compiles, unpinned, and says so.
    let unpinned = resolve_speaker("master chart speaker", &args, &env, &Snapshot::default());
    let intent = bgpgen::compile::compile(&Snapshot::default(), &unpinned, &[]);
    assert_eq!(intent.neighbors[0].local_address, None);
    assert!(
        intent
            .diagnostics
            .iter()
            .any(|d| d.message.contains("--neighbor-local-address"))
    );
}

/// The Dockerfile builds with no container registry (docs/design.md section 9): no `# syntax=` line (it
/// makes BuildKit fetch a frontend image), and every `FROM` is a build argument or an earlier
/// stage, the arguments defaulting to the image `scripts/image-base` makes.
#[test]
fn dockerfile_needs_no_registry() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let image_base = std::fs::read_to_string(root.join("scripts/image-base")).unwrap();
    let base_tag = image_base
        .lines()
        .find_map(|l| l.strip_prefix("tag=${1:-")?.strip_suffix('}'))
        .expect("scripts/image-base: tag=${1:-DEFAULT}");
    let mut args = BTreeMap::new();
    let mut stages = BTreeSet::new();
    for line in dockerfile.lines() {
        let lower = line.trim_start().to_ascii_lowercase();
        assert!(
            !lower.starts_with("# syntax") && !lower.starts_with("#syntax"),
            "Dockerfile: {line:?} makes BuildKit pull a frontend from a registry"
        );
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["ARG", decl] if stages.is_empty() => {
                let (name, default) = decl.split_once('=').expect("ARG NAME=DEFAULT");
                args.insert(name.to_string(), default.to_string());
            }
            ["FROM", image, rest @ ..] => {
                let known = match image.strip_prefix("${").and_then(|i| i.strip_suffix('}')) {
                    Some(arg) => {
                        let default = args
                            .get(arg)
                            .unwrap_or_else(|| panic!("Dockerfile: FROM ${{{arg}}}: no ARG"));
                        assert_eq!(
                            default, base_tag,
                            "Dockerfile: {arg} defaults to scripts/image-base's image"
                        );
                        true
                    }
                    None => stages.contains(*image),
                };
                assert!(known, "Dockerfile: {line:?}: an image from a registry");
                if let ["AS", name] = rest {
                    stages.insert(name.to_string());
                } else {
                    assert!(rest.is_empty(), "Dockerfile: {line:?}");
                }
            }
            _ => {}
        }
    }
    assert!(
        args.contains_key("BASE_IMAGE") && args.contains_key("BUILD_IMAGE"),
        "Dockerfile: the base images are build arguments"
    );
    assert!(
        dockerfile.contains("ARG BGPGEN_BIN"),
        "Dockerfile: BGPGEN_BIN builds the image around a prebuilt binary (scripts/image-test)"
    );
}
