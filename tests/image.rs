//! The shipped image, run the way `yamls/` runs it (docs/design.md section 9: the shipped artefacts are
//! tested as shipped).
//!
//! `scripts/image-test` starts a Docker engine if none runs, makes the base image with debootstrap,
//! builds the Dockerfile around the binary the tests just built, and then runs these tests with
//! `cargo test --test image -- --ignored` and `BGPGEN_IMAGE` naming that image. A plain
//! `cargo test` lists them as ignored.
//!
//! Each test starts one container of the image exactly as its manifest specifies it, read from the
//! manifest itself so that the test cannot drift from it: the command and args, the environment
//! (downward-API values filled in as the kubelet would), the user and groups (runAsUser,
//! runAsGroup, fsGroup), the capabilities (drop and add), allowPrivilegeEscalation (Docker's
//! no-new-privileges), readOnlyRootFilesystem, the seccomp profile, the memory limit, every volume
//! (emptyDirs as tmpfs or fresh host directories, the Secret as files of its mode and group,
//! mounted read-only) and the HTTP probes. A field the translation does not know fails the test.
//! - `speaker_{gobgp,frr,bird}`: the DaemonSet of `yamls/speaker-<backend>.yaml`.
//! - `nat_gateway_sidecar`: the container Kube-OVN's controller injects into a NAT gateway's pod
//!   for the example VpcNatGateway of `yamls/vpc-nat-gateway.yaml` (the image of its ConfigMap's
//!   `bgpSpeakerImage`, the command /kube-ovn/kube-ovn-speaker, the controller's arguments, no
//!   securityContext and no volumes).
//!
//! What stands in for the cluster: no API server runs here, so the manifests' source (the
//! cluster, in-cluster config) is replaced by `--manifests /manifests`, a host directory of
//! manifests mounted read-only; the image is the one just built, not the manifests' registry
//! name; the neighbor addresses are the lab's upstream (192.0.2.2, 2001:db8::2) instead of the
//! example routers'. The node's network namespace (hostNetwork) is the namespace of a sandbox
//! container (`--network none`, as Kubernetes' pause container) that the lab attaches with
//! `ip netns attach` and wires to an upstream gobgpd with a veth pair (tests/common/netns.rs).
//!
//! Checked for each container: the IPv4 and IPv6 sessions with the upstream come up (with the
//! Secret's password as TCP MD5 key), the upstream receives exactly the expected routes with the
//! speaker's addresses as next hops, the readiness and liveness probes answer 200, nothing but
//! BGP and bgpgen's endpoint listens on TCP (no daemon control channel), a manifest change reaches
//! the upstream, `docker stop --time 2` ends the container by itself with exit code 0 (Docker
//! kills it after 2 s otherwise: exit 137), and then the routes are gone from the upstream
//! (graceful restart off: withdrawn) or kept there as stale (graceful restart on); the
//! container's log has no "Read-only file system", "Permission denied" or "Operation not
//! permitted" in it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use bgpgen::kubeovn::VpcNatGateway;
use common::kubeovn::{controller_args, shim_command};
use common::netns::{
    GOBGP, GOBGPD, Gobgp, IP, LAB_SUBNET, Lab, RibPath, SPEAKER_V4, SPEAKER_V6, UPSTREAM_V4,
    UPSTREAM_V6, netns_exec, prerequisites, show_rib,
};
use ipnet::IpNet;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec, Secret, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tempfile::TempDir;

const IMAGE_ENV: &str = "BGPGEN_IMAGE";
const DOCKER: &str = "docker";
/// Every container and the sandbox carry it, so that scripts/image-test can remove what an
/// interrupted run left.
const LABEL: &str = "org.bgpgen.image-test";
const MANIFESTS_IN_CONTAINER: &str = "/manifests";
const NODE_NAME: &str = "node-1";
const UPSTREAM_API_PORT: u16 = 50061;
/// The grace `docker stop` gives (the issue's bound: bgpgen stops within 2 s of SIGTERM).
const STOP_GRACE_SECONDS: u32 = 2;

const SESSION_TIMEOUT: Duration = Duration::from_secs(90);
const ROUTE_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(250);

// ---- manifests ----

fn yamls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("yamls")
}

/// The documents of `yamls/NAME`, untyped.
fn documents(name: &str) -> Vec<Value> {
    let path = yamls_dir().join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The only document of `kind` in `yamls/NAME`, typed.
fn only<T: DeserializeOwned>(name: &str, kind: &str) -> T {
    let docs: Vec<Value> = documents(name)
        .into_iter()
        .filter(|d| d["kind"] == kind)
        .collect();
    assert_eq!(docs.len(), 1, "{name}: one {kind}");
    serde_path_to_error::deserialize(docs[0].clone())
        .unwrap_or_else(|e| panic!("{name}: {kind}: {e}"))
}

fn all<T: DeserializeOwned>(name: &str, kind: &str) -> Vec<T> {
    documents(name)
        .into_iter()
        .filter(|d| d["kind"] == kind)
        .map(|d| {
            serde_path_to_error::deserialize(d).unwrap_or_else(|e| panic!("{name}: {kind}: {e}"))
        })
        .collect()
}

/// `--NAME=VALUE` or `--NAME VALUE` in `args`.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let long = format!("--{name}");
    let inline = format!("{long}=");
    args.iter().enumerate().find_map(|(i, a)| {
        if let Some(v) = a.strip_prefix(&inline) {
            Some(v)
        } else if *a == long {
            args.get(i + 1).map(String::as_str)
        } else {
            None
        }
    })
}

fn has_switch(args: &[String], name: &str) -> bool {
    let long = format!("--{name}");
    args.iter()
        .any(|a| *a == long || a.starts_with(&format!("{long}=")))
}

/// Sets `--NAME`'s value (both forms), which must be there exactly once.
fn replace_flag(what: &str, args: &mut [String], name: &str, value: &str) {
    let long = format!("--{name}");
    let inline = format!("{long}=");
    let mut found = 0;
    let mut i = 0;
    while i < args.len() {
        if args[i].starts_with(&inline) {
            args[i] = format!("{inline}{value}");
            found += 1;
        } else if args[i] == long {
            args[i + 1] = value.to_string();
            found += 1;
            i += 1;
        }
        i += 1;
    }
    assert_eq!(found, 1, "{what}: {long} once in {args:?}");
}

/// Bytes of a Kubernetes quantity (`64Mi`, `512Mi`, `1Gi`, `100M`, plain bytes).
fn bytes(q: &Quantity) -> u64 {
    let s = q.0.as_str();
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number.parse().unwrap_or_else(|_| panic!("quantity {s:?}"));
    let factor: u64 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        other => panic!("quantity {s:?}: unit {other:?} not handled by the image test"),
    };
    n * factor
}

// ---- docker ----

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new(DOCKER)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "`docker {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A container removed (with its anonymous volumes) when dropped, also on panic.
struct Running {
    name: String,
}

impl Running {
    fn pid(&self) -> u32 {
        let pid = docker(&["inspect", "--format", "{{.State.Pid}}", &self.name])
            .unwrap_or_else(|e| panic!("{e}"));
        pid.parse()
            .unwrap_or_else(|_| panic!("{}: pid {pid:?}", self.name))
    }

    /// Its whole log, stdout and stderr.
    fn logs(&self) -> String {
        let out = Command::new(DOCKER).args(["logs", &self.name]).output();
        match out {
            Ok(o) => format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => format!("docker logs: {e}"),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = docker(&["rm", "--force", "--volumes", &self.name]);
    }
}

/// The image under test, or None (with the loud skip or the failure of `prerequisites`).
fn image(test: &str) -> Option<String> {
    if !prerequisites(test, &[DOCKER, GOBGPD, GOBGP, IP, "ss", "bash", "timeout"]) {
        return None;
    }
    let image = std::env::var(IMAGE_ENV).unwrap_or_else(|_| {
        panic!("{test}: {IMAGE_ENV} is not set: run scripts/image-test, which builds the image")
    });
    docker(&["image", "inspect", "--format", "{{.Id}}", &image])
        .unwrap_or_else(|e| panic!("{test}: the image {image}: {e}"));
    Some(image)
}

// ---- a pod spec as `docker run` options ----

/// What the kubelet would put into the downward-API environment, here.
fn field_value(what: &str, field: &ObjectFieldSelector, pod_name: &str) -> String {
    match field.field_path.as_str() {
        "spec.nodeName" => NODE_NAME.to_string(),
        // hostNetwork (and the lab's pod namespace alike): the pod's addresses are the node's.
        "status.podIP" | "status.hostIP" => SPEAKER_V4.to_string(),
        "status.podIPs" | "status.hostIPs" => format!("{SPEAKER_V4},{SPEAKER_V6}"),
        "metadata.name" => pod_name.to_string(),
        "metadata.namespace" => "kube-system".to_string(),
        other => panic!("{what}: fieldRef {other} is not translated by the image test"),
    }
}

fn env_value(what: &str, var: &EnvVar, pod_name: &str) -> String {
    match (&var.value, &var.value_from) {
        (Some(v), None) => v.clone(),
        (
            None,
            Some(EnvVarSource {
                field_ref: Some(field),
                config_map_key_ref: None,
                resource_field_ref: None,
                secret_key_ref: None,
                ..
            }),
        ) => field_value(what, field, pod_name),
        (None, None) => String::new(),
        _ => panic!(
            "{what}: env {}: only values and fieldRefs are translated by the image test",
            var.name
        ),
    }
}

/// Host directories backing the pod's volumes (unmounted and removed with it).
struct PodFiles {
    dir: TempDir,
    tmpfs: std::cell::RefCell<Vec<PathBuf>>,
}

impl Drop for PodFiles {
    fn drop(&mut self) {
        for dir in self.tmpfs.borrow().iter() {
            let _ = Command::new("umount").arg("--lazy").arg(dir).status();
        }
    }
}

/// A container spec of `pod` as `docker run` options (everything before the image) and the
/// command line after the image. `secrets` are the Secrets the pod may mount, `extra_args` are
/// appended to the container's args.
fn docker_run(
    what: &str,
    pod: &PodSpec,
    c: &Container,
    secrets: &[Secret],
    files: &PodFiles,
) -> (Vec<String>, Option<String>, Vec<String>) {
    let mut opts: Vec<String> = Vec::new();
    let not_translated = |field: &str| {
        panic!("{what}: {field} is set, and the image test does not translate it: teach it")
    };
    // Pod fields that would change how the container runs.
    if pod.host_pid == Some(true) {
        not_translated("hostPID");
    }
    if pod.host_ipc == Some(true) {
        not_translated("hostIPC");
    }
    if pod.share_process_namespace == Some(true) {
        not_translated("shareProcessNamespace");
    }
    if pod.init_containers.is_some() {
        not_translated("initContainers");
    }
    if c.working_dir.is_some() {
        not_translated("workingDir");
    }
    if c.env_from.is_some() {
        not_translated("envFrom");
    }
    if c.lifecycle.is_some() {
        not_translated("lifecycle");
    }
    if c.volume_devices.is_some() {
        not_translated("volumeDevices");
    }
    if c.startup_probe.is_some() {
        not_translated("startupProbe");
    }

    // Users, groups and privileges. The container's securityContext overrides the pod's.
    let pod_sc = pod.security_context.clone().unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    if pod_sc.sysctls.is_some() {
        not_translated("securityContext.sysctls");
    }
    if pod_sc.se_linux_options.is_some() || sc.se_linux_options.is_some() {
        not_translated("seLinuxOptions");
    }
    if pod_sc.app_armor_profile.is_some() || sc.app_armor_profile.is_some() {
        not_translated("appArmorProfile");
    }
    if sc.privileged == Some(true) {
        not_translated("privileged");
    }
    if sc.proc_mount.is_some() {
        not_translated("procMount");
    }
    let user = sc.run_as_user.or(pod_sc.run_as_user);
    let group = sc.run_as_group.or(pod_sc.run_as_group);
    if sc.run_as_non_root.or(pod_sc.run_as_non_root) == Some(true) {
        // The kubelet refuses to start a container that would run as root.
        assert!(
            user.is_some_and(|u| u != 0),
            "{what}: runAsNonRoot needs a non-zero runAsUser (the image's USER is not checked)"
        );
    }
    match (user, group) {
        (Some(u), Some(g)) => opts.push(format!("--user={u}:{g}")),
        (Some(u), None) => opts.push(format!("--user={u}")),
        (None, Some(_)) => not_translated("runAsGroup without runAsUser"),
        (None, None) => {} // the image's USER
    }
    let fs_group = pod_sc.fs_group;
    for g in fs_group
        .iter()
        .chain(pod_sc.supplemental_groups.iter().flatten())
    {
        opts.push(format!("--group-add={g}"));
    }
    if let Some(caps) = &sc.capabilities {
        for cap in caps.drop.iter().flatten() {
            opts.push(format!("--cap-drop={cap}"));
        }
        for cap in caps.add.iter().flatten() {
            opts.push(format!("--cap-add={cap}"));
        }
    }
    if sc.allow_privilege_escalation == Some(false) {
        opts.push("--security-opt=no-new-privileges".into());
    }
    if sc.read_only_root_filesystem == Some(true) {
        opts.push("--read-only".into());
    }
    let seccomp = sc
        .seccomp_profile
        .clone()
        .or(pod_sc.seccomp_profile.clone());
    match seccomp.as_ref().map(|s| s.type_.as_str()) {
        Some("RuntimeDefault") => {} // Docker's default profile
        // The kubelet's default without the SeccompDefault feature.
        Some("Unconfined") | None => opts.push("--security-opt=seccomp=unconfined".into()),
        Some(other) => not_translated(&format!("seccompProfile {other}")),
    }

    // Resources: limits are enforced by the runtime; requests only schedule.
    if let Some(limits) = c.resources.as_ref().and_then(|r| r.limits.as_ref()) {
        for (name, q) in limits {
            match name.as_str() {
                "memory" => opts.push(format!("--memory={}", bytes(q))),
                "cpu" => opts.push(format!("--cpus={}", q.0)),
                other => not_translated(&format!("limits.{other}")),
            }
        }
    }

    // Environment.
    for var in c.env.iter().flatten() {
        opts.push(format!(
            "--env={}={}",
            var.name,
            env_value(what, var, &c.name)
        ));
    }

    // Volumes.
    let volumes = pod.volumes.clone().unwrap_or_default();
    for m in c.volume_mounts.iter().flatten() {
        opts.push(mount(what, m, &volumes, secrets, fs_group, files));
    }

    // The command: `command` replaces the image's ENTRYPOINT, `args` its CMD.
    let (entrypoint, mut argv) = match &c.command {
        Some(command) => {
            let (first, rest) = command.split_first().expect("a command");
            (Some(first.clone()), rest.to_vec())
        }
        None => (None, Vec::new()),
    };
    argv.extend(c.args.clone().unwrap_or_default());
    (opts, entrypoint, argv)
}

fn mount(
    what: &str,
    m: &VolumeMount,
    volumes: &[Volume],
    secrets: &[Secret],
    fs_group: Option<i64>,
    files: &PodFiles,
) -> String {
    assert!(
        m.sub_path.is_none() && m.sub_path_expr.is_none() && m.mount_propagation.is_none(),
        "{what}: volumeMount {}: subPath and mountPropagation are not translated",
        m.name
    );
    let v = volumes
        .iter()
        .find(|v| v.name == m.name)
        .unwrap_or_else(|| panic!("{what}: volumeMount {} has no volume", m.name));
    let read_only = if m.read_only == Some(true) {
        ",readonly"
    } else {
        ""
    };
    let host = files.dir.path().join(&v.name);
    if let Some(empty) = &v.empty_dir {
        // As the kubelet makes them: a directory of the node (on a tmpfs of the node for
        // `medium: Memory`, of sizeLimit), world-writable, of group fsGroup (setgid) when set,
        // bind-mounted into the container. (Docker's own tmpfs mounts take the mode of the
        // image's directory instead, which no kubelet does.)
        fs::create_dir(&host).unwrap();
        match empty.medium.as_deref() {
            Some("Memory") => {
                let size = empty
                    .size_limit
                    .as_ref()
                    .map(|q| format!(",size={}", bytes(q)))
                    .unwrap_or_default();
                let status = Command::new("mount")
                    .args(["-t", "tmpfs", "-o", &format!("mode=0777{size}"), "tmpfs"])
                    .arg(&host)
                    .status()
                    .expect("run mount");
                assert!(
                    status.success(),
                    "{what}: mount a tmpfs on {}",
                    host.display()
                );
                files.tmpfs.borrow_mut().push(host.clone());
            }
            None | Some("") => {}
            Some(other) => panic!("{what}: emptyDir medium {other} is not translated"),
        }
        let mode = match fs_group {
            Some(g) => {
                std::os::unix::fs::chown(&host, Some(0), Some(g as u32)).unwrap();
                0o2777
            }
            None => 0o777,
        };
        fs::set_permissions(&host, fs::Permissions::from_mode(mode)).unwrap();
        format!(
            "--mount=type=bind,source={},destination={}{read_only}",
            host.display(),
            m.mount_path
        )
    } else if let Some(source) = &v.secret {
        let name = source.secret_name.as_deref().expect("secretName");
        let secret = secrets
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{what}: Secret {name} is not in the manifest"));
        let data = secret_data(secret);
        fs::create_dir(&host).unwrap();
        let default_mode = source.default_mode.unwrap_or(0o644);
        let items: Vec<(String, String, i32)> = match &source.items {
            Some(items) => items
                .iter()
                .map(|i| {
                    (
                        i.key.clone(),
                        i.path.clone(),
                        i.mode.unwrap_or(default_mode),
                    )
                })
                .collect(),
            None => data
                .keys()
                .map(|k| (k.clone(), k.clone(), default_mode))
                .collect(),
        };
        for (key, path, mode) in items {
            let value = data
                .get(&key)
                .unwrap_or_else(|| panic!("{what}: Secret {name} has no key {key}"));
            let file = host.join(&path);
            fs::write(&file, value).unwrap();
            // As the kubelet writes Secret files: owned by root, group fsGroup when set.
            let gid = fs_group.map(|g| g as u32);
            std::os::unix::fs::chown(&file, Some(0), gid).unwrap();
            fs::set_permissions(&file, fs::Permissions::from_mode(mode as u32)).unwrap();
        }
        // Secret volumes are always mounted read-only.
        format!(
            "--mount=type=bind,source={},destination={},readonly",
            host.display(),
            m.mount_path
        )
    } else {
        panic!(
            "{what}: volume {}: only emptyDir and secret volumes are translated",
            v.name
        )
    }
}

/// A Secret's keys and values (`stringData` as the API server merges it into `data`).
fn secret_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        data.insert(k.clone(), v.clone().into_bytes());
    }
    data
}

/// The contents of the file `path` inside the container, when it is a Secret item.
fn secret_file(
    what: &str,
    pod: &PodSpec,
    c: &Container,
    secrets: &[Secret],
    path: &Path,
) -> Vec<u8> {
    let dir = path.parent().unwrap();
    let file = path.file_name().unwrap().to_str().unwrap();
    let m = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| Path::new(&m.mount_path) == dir)
        .unwrap_or_else(|| panic!("{what}: {} is not mounted", dir.display()));
    let v = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == m.name)
        .unwrap();
    let source = v
        .secret
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: {} is not a Secret", dir.display()));
    let key = match &source.items {
        Some(items) => items
            .iter()
            .find(|i| i.path == file)
            .map(|i| i.key.clone())
            .unwrap_or_else(|| panic!("{what}: no Secret item {file}")),
        None => file.to_string(),
    };
    let secret = secrets
        .iter()
        .find(|s| s.metadata.name == source.secret_name)
        .unwrap();
    secret_data(secret)
        .remove(&key)
        .unwrap_or_else(|| panic!("{what}: no key {key}"))
}

// ---- the lab ----

/// How the upstream router is set up for a speaker: its AS, the speaker's, the password and
/// whether it keeps a restarting speaker's routes (graceful restart).
struct Upstream {
    local_as: u32,
    peer_as: u32,
    password: Option<String>,
    graceful_restart: bool,
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Starts the upstream gobgpd: listening on 179, passive towards the speaker's two addresses.
fn start_upstream(lab: &mut Lab, u: &Upstream) -> Gobgp {
    let mut toml = format!(
        "[global.config]\n  as = {}\n  router-id = \"{UPSTREAM_V4}\"\n  port = 179\n",
        u.local_as
    );
    for (address, family) in [(SPEAKER_V4, "ipv4-unicast"), (SPEAKER_V6, "ipv6-unicast")] {
        toml.push_str(&format!(
            "\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{address}\"\n    \
             peer-as = {}\n",
            u.peer_as
        ));
        if let Some(p) = &u.password {
            toml.push_str(&format!("    auth-password = {}\n", toml_string(p)));
        }
        toml.push_str("  [neighbors.transport.config]\n    passive-mode = true\n");
        if u.graceful_restart {
            toml.push_str(
                "  [neighbors.graceful-restart.config]\n    enabled = true\n    \
                 restart-time = 120\n",
            );
        }
        toml.push_str(&format!(
            "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      \
             afi-safi-name = \"{family}\"\n"
        ));
        if u.graceful_restart {
            toml.push_str(
                "    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n",
            );
        }
    }
    let config = lab.dir().join("upstream-gobgpd.toml");
    fs::write(&config, toml).expect("write upstream config");
    let ns = lab.upstream_ns().to_string();
    lab.start_gobgpd(&ns, "upstream-gobgpd", &config, UPSTREAM_API_PORT)
}

fn session_state(upstream: &Gobgp, address: &str) -> Result<String, String> {
    let peer = upstream.neighbor(address)?;
    let state = &peer["state"]["session_state"];
    Ok(match state.as_i64() {
        Some(6) => "established".to_string(),
        Some(s) => format!("state {s}"),
        None => state.as_str().unwrap_or("unknown").to_string(),
    })
}

fn both_established(upstream: &Gobgp) -> Result<(), String> {
    let v4 = session_state(upstream, SPEAKER_V4)?;
    let v6 = session_state(upstream, SPEAKER_V6)?;
    if v4 == "established" && v6 == "established" {
        Ok(())
    } else {
        Err(format!("IPv4 session: {v4}, IPv6 session: {v6}"))
    }
}

/// The upstream's RIB as expected: each prefix once, from and via the speaker's address of its
/// family.
fn expected_rib(prefixes: &[&str]) -> BTreeSet<RibPath> {
    prefixes
        .iter()
        .map(|p| {
            let prefix: IpNet = p.parse().unwrap();
            let hop = match prefix {
                IpNet::V4(_) => SPEAKER_V4,
                IpNet::V6(_) => SPEAKER_V6,
            };
            RibPath {
                prefix,
                next_hop: Some(hop.parse().unwrap()),
                neighbor: Some(hop.parse().unwrap()),
            }
        })
        .collect()
}

fn rib_is(upstream: &Gobgp, want: &BTreeSet<RibPath>) -> Result<(), String> {
    let got: BTreeSet<RibPath> = upstream.rib()?.into_iter().collect();
    if &got == want {
        Ok(())
    } else {
        Err(format!(
            "upstream RIB [{}], expected [{}]",
            show_rib(&got),
            show_rib(want)
        ))
    }
}

/// `GET PATH` on `host:port` from inside the network namespace `ns` (the kubelet probes a
/// hostNetwork pod on the node's address): the status code and body.
fn http_get(ns: &str, host: &str, port: u16, path: &str) -> Result<(u16, String), String> {
    let script = format!(
        "exec 3<>/dev/tcp/{host}/{port} && \
         printf 'GET {path} HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n' >&3 && cat <&3"
    );
    let response = netns_exec(ns, &["timeout", "5", "bash", "-c", &script])?;
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("GET {path}: no status line in {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// The TCP ports listening in `ns`.
fn listening_ports(ns: &str) -> Result<BTreeSet<u16>, String> {
    let out = netns_exec(ns, &["ss", "-Hltn"])?;
    out.lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .map(|local| {
            local
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse().ok())
                .ok_or_else(|| format!("ss: {local:?}"))
        })
        .collect()
}

/// The port a probe names (a number, or a container port's name).
fn probe_port(what: &str, c: &Container, port: &IntOrString) -> u16 {
    match port {
        IntOrString::Int(p) => *p as u16,
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port as u16)
            .unwrap_or_else(|| panic!("{what}: no container port named {name}")),
    }
}

fn write_manifest(dir: &Path, name: &str, text: &str) {
    // Atomically, as a GitOps checkout or a ConfigMap update would.
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, text).unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).unwrap();
    fs::rename(&tmp, dir.join(name)).unwrap();
}

fn pod_manifest(name: &str, v4: &str, v6: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: default
  annotations:
    ovn.kubernetes.io/logical_switch: ovn-default
    ovn.kubernetes.io/ip_address: {v4},{v6}
    ovn.kubernetes.io/bgp: "true"
spec:
  nodeName: {NODE_NAME}
  containers:
    - name: main
      image: nginx:1.27
status:
  phase: Running
  podIP: {v4}
  podIPs:
    - ip: {v4}
    - ip: {v6}
"#
    )
}

fn eip_manifest(name: &str, gateway: &str, v4: &str, v6: &str) -> String {
    format!(
        r#"apiVersion: kubeovn.io/v1
kind: IptablesEIP
metadata:
  name: {name}
  labels:
    ovn.kubernetes.io/vpc-nat-gw-name: {gateway}
  annotations:
    ovn.kubernetes.io/bgp: "true"
spec:
  natGwDp: {gateway}
  v4ip: {v4}
  v6ip: {v6}
status:
  ready: true
"#
    )
}

/// One container of the image, its manifests and the expected routes before and after a change.
struct Case {
    name: String,
    pod: PodSpec,
    container: Container,
    secrets: Vec<Secret>,
    /// Manifests written before the start, and the change written once routes are in.
    manifests: Vec<(String, String)>,
    change: (String, String),
    before: Vec<&'static str>,
    after: Vec<&'static str>,
    /// Whether the daemon listens on BGP's port 179.
    bgp_listens: bool,
    /// The words the container's command puts before its args (the NAT gateway's shim adds
    /// bgpgen's `run` flags): the flags bgpgen sees are these, then the args.
    command_flags: Vec<String>,
}

impl Case {
    fn args_mut(&mut self) -> &mut Vec<String> {
        self.container.args.get_or_insert_with(Vec::new)
    }
}

fn run_case(test: &str, image: &str, mut case: Case) {
    let what = case.name.clone();
    let tag = format!("img-{}", std::process::id());
    let prefix = format!("bgpgen-image-test-{}-{}", std::process::id(), case.name);

    // The cluster stands replaced by a manifest directory, mounted read-only.
    let files = PodFiles {
        dir: tempfile::Builder::new()
            .prefix(&format!("{prefix}-"))
            .tempdir()
            .unwrap(),
        tmpfs: Default::default(),
    };
    fs::set_permissions(files.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let manifests = files.dir.path().join("manifests");
    fs::create_dir(&manifests).unwrap();
    fs::set_permissions(&manifests, fs::Permissions::from_mode(0o755)).unwrap();
    for (name, text) in &case.manifests {
        write_manifest(&manifests, name, text);
    }
    case.args_mut()
        .push(format!("--manifests={MANIFESTS_IN_CONTAINER}"));

    // The flags bgpgen runs with.
    let args: Vec<String> = case
        .command_flags
        .iter()
        .cloned()
        .chain(case.container.args.clone().unwrap_or_default())
        .collect();
    let upstream_setup = Upstream {
        local_as: flag(&args, "neighbor-as")
            .expect("--neighbor-as")
            .parse()
            .unwrap(),
        peer_as: flag(&args, "cluster-as")
            .expect("--cluster-as")
            .parse()
            .unwrap(),
        password: match (
            flag(&args, "auth-password"),
            flag(&args, "auth-password-file"),
        ) {
            (Some(p), _) => Some(p.to_string()),
            (None, Some(file)) => {
                let bytes = secret_file(
                    &what,
                    &case.pod,
                    &case.container,
                    &case.secrets,
                    Path::new(file),
                );
                Some(String::from_utf8(bytes).unwrap().trim_end().to_string())
            }
            (None, None) => None,
        },
        graceful_restart: has_switch(&args, "graceful-restart"),
    };

    let (mut opts, entrypoint, argv) =
        docker_run(&what, &case.pod, &case.container, &case.secrets, &files);
    opts.push(format!(
        "--mount=type=bind,source={},destination={MANIFESTS_IN_CONTAINER},readonly",
        manifests.display()
    ));

    // The pod's network namespace (the node's, for hostNetwork), held by a sandbox container.
    let sandbox = Running {
        name: format!("{prefix}-sandbox"),
    };
    let _ = docker(&["rm", "--force", &sandbox.name]);
    docker(&[
        "run",
        "--detach",
        "--name",
        &sandbox.name,
        "--label",
        &format!("{LABEL}={}", std::process::id()),
        "--network=none",
        // Docker turns IPv6 off in a container's namespace unless told otherwise; a dual-stack
        // cluster's pods (and nodes) have it.
        "--sysctl=net.ipv6.conf.all.disable_ipv6=0",
        "--sysctl=net.ipv6.conf.default.disable_ipv6=0",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        "--read-only",
        "--user=65534:65534",
        "--entrypoint=sleep",
        image,
        "infinity",
    ])
    .unwrap_or_else(|e| panic!("{what}: sandbox: {e}"));
    let mut lab = Lab::attached(&tag, sandbox.pid());
    let upstream = start_upstream(&mut lab, &upstream_setup);
    let speaker_ns = lab.speaker_ns().to_string();
    let upstream_ns = lab.upstream_ns().to_string();

    // The container itself.
    let container = Running {
        name: format!("{prefix}-speaker"),
    };
    let _ = docker(&["rm", "--force", &container.name]);
    let mut run: Vec<String> = vec![
        "run".into(),
        "--detach".into(),
        format!("--name={}", container.name),
        format!("--label={LABEL}={}", std::process::id()),
        format!("--network=container:{}", sandbox.name),
        format!("--stop-timeout={STOP_GRACE_SECONDS}"),
    ];
    run.extend(opts.iter().cloned());
    if let Some(e) = &entrypoint {
        run.push(format!("--entrypoint={e}"));
    }
    run.push(image.to_string());
    run.extend(argv.iter().cloned());
    eprintln!("{what}: docker {}", run.join(" "));
    let run_refs: Vec<&str> = run.iter().map(String::as_str).collect();
    docker(&run_refs).unwrap_or_else(|e| panic!("{what}: {e}"));
    // Failure reports carry the container's log and what listens in its namespace.
    // (bgpgen logs to stderr, which `docker logs` replays on its own stderr.)
    let logs = format!("docker logs --tail 200 {} 2>&1", container.name);
    lab.add_status(
        &format!("{what}: docker logs"),
        &upstream_ns,
        &["sh", "-c", &logs],
    );
    lab.add_status(
        &format!("{what}: docker inspect state"),
        &upstream_ns,
        &[
            DOCKER,
            "inspect",
            "--format",
            "{{json .State}}",
            &container.name,
        ],
    );
    lab.add_status(
        &format!("{what}: listening"),
        &speaker_ns,
        &["ss", "-ltnpx"],
    );

    lab.wait_for(
        &format!("{what}: IPv4 and IPv6 sessions established"),
        SESSION_TIMEOUT,
        POLL,
        |_| {
            let running = docker(&["inspect", "--format", "{{.State.Running}}", &container.name])?;
            assert_eq!(
                running,
                "true",
                "{what}: the container stopped:\n{}",
                container.logs()
            );
            both_established(&upstream)
        },
    );
    let before = expected_rib(&case.before);
    lab.wait_for(&format!("{what}: the routes"), ROUTE_TIMEOUT, POLL, |_| {
        rib_is(&upstream, &before)
    });

    // The probes of the manifest, as the kubelet sends them.
    for (kind, probe) in [
        ("readiness", case.container.readiness_probe.as_ref()),
        ("liveness", case.container.liveness_probe.as_ref()),
    ] {
        let Some(get) = probe.and_then(|p| p.http_get.as_ref()) else {
            continue;
        };
        let port = probe_port(&what, &case.container, &get.port);
        let path = get.path.clone().unwrap_or_else(|| "/".into());
        lab.wait_for(
            &format!("{what}: {kind} probe GET {path} 200"),
            ROUTE_TIMEOUT,
            POLL,
            |_| match http_get(&speaker_ns, SPEAKER_V4, port, &path)? {
                (200, _) => Ok(()),
                (code, body) => Err(format!("{code}: {body}")),
            },
        );
    }
    // bgpgen's endpoint itself (the NAT-gateway sidecar has no probes): ready.
    let metrics: std::net::SocketAddr = flag(&args, "metrics-addr")
        .unwrap_or_else(|| panic!("{what}: --metrics-addr"))
        .parse()
        .unwrap();
    let metrics_host = if metrics.ip().is_unspecified() {
        SPEAKER_V4.to_string()
    } else {
        metrics.ip().to_string()
    };
    lab.wait_for(
        &format!("{what}: GET /readyz 200 on {metrics}"),
        ROUTE_TIMEOUT,
        POLL,
        |_| match http_get(&speaker_ns, &metrics_host, metrics.port(), "/readyz")? {
            (200, _) => Ok(()),
            (code, body) => Err(format!("{code}: {body}")),
        },
    );

    // No daemon control channel on TCP: only BGP (where the daemon listens) and the probes'
    // endpoint.
    let mut allowed: BTreeSet<u16> = case
        .container
        .readiness_probe
        .iter()
        .chain(case.container.liveness_probe.iter())
        .filter_map(|p| p.http_get.as_ref())
        .map(|g| probe_port(&what, &case.container, &g.port))
        .collect();
    allowed.insert(metrics.port());
    if case.bgp_listens {
        allowed.insert(179);
    }
    let ports = listening_ports(&speaker_ns).unwrap_or_else(|e| panic!("{what}: {e}"));
    let extra: Vec<&u16> = ports.difference(&allowed).collect();
    assert!(
        extra.is_empty(),
        "{what}: TCP ports {extra:?} listen besides {allowed:?} (a daemon's control channel?)\n{}",
        lab.report()
    );

    // A manifest change reaches the upstream.
    write_manifest(&manifests, &case.change.0, &case.change.1);
    let after = expected_rib(&case.after);
    lab.wait_for(
        &format!("{what}: the manifest change at the upstream"),
        ROUTE_TIMEOUT,
        POLL,
        |_| rib_is(&upstream, &after),
    );

    // What an operator runs (`kubectl exec ... -- bgpgen status`): inside the container, with
    // nothing but bgpgen, every neighbor established and sent what the intent announces.
    let status_addr = if metrics.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], metrics.port()))
    } else {
        metrics
    };
    let status_addr = status_addr.to_string();
    lab.wait_for(
        &format!("{what}: `bgpgen status -o json` in the container: established, all sent"),
        ROUTE_TIMEOUT,
        POLL,
        |_| {
            let out = docker(&[
                "exec",
                &container.name,
                "/usr/local/bin/bgpgen",
                "status",
                "-o",
                "json",
                "--metrics-addr",
                &status_addr,
            ])?;
            let doc: Value = serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))?;
            let peers = doc["peers"].as_array().cloned().unwrap_or_default();
            if peers.is_empty() {
                return Err(format!("no peers: {out}"));
            }
            for p in &peers {
                if p["state"] != "established" || p["advertised"] != p["expected"] {
                    return Err(format!("peer {}: {p}", p["address"]));
                }
            }
            Ok(())
        },
    );

    // docker stop: SIGTERM, SIGKILL after the grace. Exit code 0 means bgpgen stopped by itself.
    let stop_timeout = STOP_GRACE_SECONDS.to_string();
    let stopping = std::time::Instant::now();
    docker(&["stop", "--time", &stop_timeout, &container.name])
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    // Reported, not asserted: the exit code below says whether the grace was enough.
    eprintln!("{what}: docker stop took {:?}", stopping.elapsed());
    let state = docker(&[
        "inspect",
        "--format",
        "{{.State.ExitCode}} {{.State.OOMKilled}}",
        &container.name,
    ])
    .unwrap();
    assert_eq!(
        state,
        "0 false",
        "{what}: `docker stop --time {STOP_GRACE_SECONDS}`: exit code and OOM-killed (137 = \
         killed after the grace)\n{}",
        container.logs()
    );
    lab.wait_for(
        &format!("{what}: the sessions down after the stop"),
        ROUTE_TIMEOUT,
        POLL,
        |_| match both_established(&upstream) {
            Ok(()) => Err("still established".into()),
            Err(_) => Ok(()),
        },
    );
    if upstream_setup.graceful_restart {
        // Stopped without a Cease: the upstream keeps the routes as stale for the restart time.
        rib_is(&upstream, &after).unwrap_or_else(|e| {
            panic!(
                "{what}: graceful restart on: the upstream keeps the routes as stale: {e}\n{}",
                lab.report()
            )
        });
    } else {
        lab.wait_for(
            &format!("{what}: the routes withdrawn after the stop"),
            ROUTE_TIMEOUT,
            POLL,
            |_| rib_is(&upstream, &BTreeSet::new()),
        );
    }
    // Nothing tried to write where the manifest gives no volume, or failed for want of a
    // permission (FRR's `failed to mkdir "/var/run/frr": Read-only file system` was one).
    let logs = container.logs();
    assert!(
        logs.contains("bgpgen sidecar started"),
        "{what}: the container's log is bgpgen's:\n{logs}"
    );
    for complaint in [
        "Read-only file system",
        "Permission denied",
        "Operation not permitted",
    ] {
        assert!(
            !logs.contains(complaint),
            "{what}: {complaint:?} in the container's log:\n{logs}"
        );
    }
    eprintln!("{test}: ok");
    drop(container);
    drop(lab);
    drop(sandbox);
}

// ---- the cases ----

/// The DaemonSet of `yamls/speaker-<backend>.yaml`, with the lab's neighbors.
fn speaker_case(backend: &str) -> Case {
    let file = format!("speaker-{backend}.yaml");
    let ds: DaemonSet = only(&file, "DaemonSet");
    let secrets: Vec<Secret> = all(&file, "Secret");
    let pod = ds
        .spec
        .template
        .spec
        .unwrap_or_else(|| panic!("{file}: a pod template"));
    assert_eq!(pod.containers.len(), 1, "{file}: one container");
    let mut container = pod.containers[0].clone();
    let args = container.args.get_or_insert_with(Vec::new);
    replace_flag(&file, args, "neighbor-address", UPSTREAM_V4);
    replace_flag(&file, args, "neighbor-ipv6-address", UPSTREAM_V6);
    Case {
        name: backend.to_string(),
        pod,
        container,
        secrets,
        manifests: vec![
            ("subnet.yaml".into(), LAB_SUBNET.into()),
            (
                "pod-a.yaml".into(),
                pod_manifest("a", "10.16.0.5", "fd00:10:16::5"),
            ),
        ],
        change: (
            "pod-b.yaml".into(),
            pod_manifest("b", "10.16.0.6", "fd00:10:16::6"),
        ),
        before: vec!["10.16.0.5/32", "fd00:10:16::5/128"],
        after: vec![
            "10.16.0.5/32",
            "10.16.0.6/32",
            "fd00:10:16::5/128",
            "fd00:10:16::6/128",
        ],
        // BIRD and bgpd always listen on 179; gobgpd in active mode does not.
        bgp_listens: backend != "gobgp",
        command_flags: Vec::new(),
    }
}

fn speaker(backend: &str) {
    let test = format!("speaker_{backend}");
    let Some(image) = image(&test) else {
        return;
    };
    run_case(&test, &image, speaker_case(backend));
}

#[test]
#[ignore = "needs Docker and the image: run scripts/image-test"]
fn speaker_gobgp() {
    speaker("gobgp");
}

#[test]
#[ignore = "needs Docker and the image: run scripts/image-test"]
fn speaker_frr() {
    speaker("frr");
}

#[test]
#[ignore = "needs Docker and the image: run scripts/image-test"]
fn speaker_bird() {
    speaker("bird");
}

/// The sidecar Kube-OVN's controller injects into the pod of the example VpcNatGateway of
/// `yamls/vpc-nat-gateway.yaml`, with the lab's neighbors in its spec.bgpSpeaker.
#[test]
#[ignore = "needs Docker and the image: run scripts/image-test"]
fn nat_gateway_sidecar() {
    let test = "nat_gateway_sidecar";
    let Some(image) = image(test) else {
        return;
    };
    let file = "vpc-nat-gateway.yaml";
    let config: ConfigMap = only(file, "ConfigMap");
    assert!(
        config
            .data
            .as_ref()
            .is_some_and(|d| d.contains_key("bgpSpeakerImage")),
        "{file}: bgpSpeakerImage (the image the controller gives the sidecar)"
    );
    let mut gw: VpcNatGateway = only(file, "VpcNatGateway");
    let gateway = gw.metadata.name.clone().expect("the gateway's name");
    let speaker = gw.spec.bgp_speaker.as_mut().expect("spec.bgpSpeaker");
    assert!(speaker.enabled, "{file}: spec.bgpSpeaker.enabled");
    speaker.neighbors = vec![UPSTREAM_V4.into(), UPSTREAM_V6.into()];
    let mut gw_value = documents(file)
        .into_iter()
        .find(|d| d["kind"] == "VpcNatGateway")
        .unwrap();
    gw_value["spec"]["bgpSpeaker"]["neighbors"] = serde_json::json!([UPSTREAM_V4, UPSTREAM_V6]);

    // As GenNatGwBgpSpeakerContainer builds it: the command of the image's shim, the arguments
    // from spec.bgpSpeaker, the gateway's name and the pod's addresses; no securityContext, no
    // volumes (the image's user and its /run/bgpgen).
    let field = |path: &str| EnvVar {
        name: String::new(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: path.into(),
            }),
            ..Default::default()
        }),
    };
    let container = Container {
        name: "vpc-nat-gw-speaker".into(),
        command: Some(vec!["/kube-ovn/kube-ovn-speaker".into()]),
        args: Some(controller_args(&gw)),
        env: Some(vec![
            EnvVar {
                name: "GATEWAY_NAME".into(),
                value: Some(gateway.clone()),
                value_from: None,
            },
            EnvVar {
                name: "POD_IP".into(),
                ..field("status.podIP")
            },
            EnvVar {
                name: "POD_IPS".into(),
                ..field("status.podIPs")
            },
        ]),
        ..Default::default()
    };
    let pod = PodSpec {
        containers: vec![container.clone()],
        ..Default::default()
    };
    let gw_yaml = serde_json::to_string(&gw_value).unwrap();
    let case = Case {
        name: "nat-gateway".into(),
        pod,
        container,
        secrets: Vec::new(),
        manifests: vec![
            ("gateway.json".into(), gw_yaml),
            (
                "eip-1.yaml".into(),
                eip_manifest("eip-1", &gateway, "10.16.100.10", "fd00:10:16::100"),
            ),
        ],
        change: (
            "eip-2.yaml".into(),
            eip_manifest("eip-2", &gateway, "10.16.100.11", "fd00:10:16::101"),
        ),
        before: vec!["10.16.100.10/32", "fd00:10:16::100/128"],
        after: vec![
            "10.16.100.10/32",
            "10.16.100.11/32",
            "fd00:10:16::100/128",
            "fd00:10:16::101/128",
        ],
        bgp_listens: false,
        // The shim's `exec bgpgen run FLAGS "$@"`.
        command_flags: shim_command()[2..].to_vec(),
    };
    run_case(test, &image, case);
}
