//! Standalone benchmark: serde_yaml 0.9 vs serde_norway 0.9 vs serde-saphyr 2.1
//! on large Kubernetes manifests (Kube-OVN style Pods).
//!
//! Subcommands:
//!   gen DIR [N]                               write DIR/pods-stream.yaml and DIR/pods-list.yaml
//!   parse LIB SHAPE TARGET FILE [OPTIONS]     LIB = yaml|norway|saphyr|saphyr-read
//!                                             SHAPE = stream|list, TARGET = value|typed
//!         --budget default|none|large          (saphyr only; default = library defaults)
//!         --drop                               count documents and drop them instead of
//!                                              collecting them in a Vec (stream shape only)
//!   errors                                    print each library's error for broken inputs

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use serde::de::DeserializeOwned;
use serde::Deserialize;

type BoxErr = Box<dyn std::error::Error>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let res = match args.first().map(String::as_str) {
        Some("gen") => cmd_gen(&args[1..]),
        Some("parse") => cmd_parse(&args[1..]),
        Some("errors") => {
            cmd_errors();
            Ok(())
        }
        _ => Err("usage: yaml-libs-bench gen DIR [N] | parse LIB SHAPE TARGET FILE [--budget default|none|large] [--drop] | errors".into()),
    };
    if let Err(e) = res {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------
// gen
// ---------------------------------------------------------------------------

/// Tiny deterministic PRNG (splitmix64), so output is identical on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            let _ = write!(s, "{:016x}", self.next());
        }
        s.truncate(n);
        s
    }
    fn alnum(&mut self, n: usize) -> String {
        const A: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        (0..n)
            .map(|_| A[(self.next() % A.len() as u64) as usize] as char)
            .collect()
    }
}

fn uuid(r: &mut Rng) -> String {
    let h = r.hex(32);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn ts(base: u64) -> String {
    // 2024-05-01T00:00:00Z + base seconds, within ~30 days.
    let s = base % (30 * 86400);
    let day = 1 + s / 86400;
    let h = (s % 86400) / 3600;
    let m = (s % 3600) / 60;
    let sec = s % 60;
    format!("2024-05-{day:02}T{h:02}:{m:02}:{sec:02}Z")
}

/// Write one Pod, kubectl style (keys sorted alphabetically). Every line is
/// prefixed with `ind`; the first line is prefixed with `first` instead
/// (used for the `- ` of a list item).
fn write_pod(out: &mut String, i: u64, r: &mut Rng, first: &str, ind: &str) {
    let ns = format!("tenant-{:03}", i % 200);
    let app = ["web", "api", "worker", "cache", "ingest", "billing", "auth", "search"][(i % 8) as usize];
    let rs_hash = r.alnum(10);
    let pod_sfx = r.alnum(5);
    let name = format!("{app}-{rs_hash}-{pod_sfx}");
    let ip = format!("10.16.{}.{}", (i / 250) % 256, 2 + i % 250);
    let mac = format!(
        "00:00:00:{:02x}:{:02x}:{:02x}",
        ((i + 1) >> 16) & 0xff,
        ((i + 1) >> 8) & 0xff,
        (i + 1) & 0xff
    );
    let node = i % 50;
    let host_ip = format!("172.18.0.{}", 2 + node);
    let t0 = i * 7 + (r.next() % 600);
    let created = ts(t0);
    let started = ts(t0 + 3);
    let ready = ts(t0 + 9);
    let bgp = i % 10 == 0;
    let tok = r.alnum(5);
    let uid = uuid(r);
    let owner_uid = uuid(r);
    let cid = r.hex(64);
    let digest = r.hex(64);
    let rv = 1_000_000 + i * 3 + r.next() % 3;
    let port = 8000 + (i % 8) * 10;
    let ver = format!("1.{}.{}", i % 7, i % 13);

    let _ = write!(
        out,
        "{first}apiVersion: v1
{ind}kind: Pod
{ind}metadata:
{ind}  annotations:
{ind}    ovn.kubernetes.io/allocated: \"true\"
"
    );
    if bgp {
        let _ = writeln!(out, "{ind}    ovn.kubernetes.io/bgp: \"true\"");
    }
    let _ = write!(
        out,
        "{ind}    ovn.kubernetes.io/cidr: 10.16.0.0/16
{ind}    ovn.kubernetes.io/gateway: 10.16.0.1
{ind}    ovn.kubernetes.io/ip_address: {ip}
{ind}    ovn.kubernetes.io/logical_router: ovn-cluster
{ind}    ovn.kubernetes.io/logical_switch: ovn-default
{ind}    ovn.kubernetes.io/mac_address: {mac}
{ind}    ovn.kubernetes.io/pod_nic_type: veth-pair
{ind}    ovn.kubernetes.io/routed: \"true\"
{ind}  creationTimestamp: \"{created}\"
{ind}  generateName: {app}-{rs_hash}-
{ind}  labels:
{ind}    app: {app}
{ind}    pod-template-hash: {rs_hash}
{ind}    tier: backend
{ind}  name: {name}
{ind}  namespace: {ns}
{ind}  ownerReferences:
{ind}  - apiVersion: apps/v1
{ind}    blockOwnerDeletion: true
{ind}    controller: true
{ind}    kind: ReplicaSet
{ind}    name: {app}-{rs_hash}
{ind}    uid: {owner_uid}
{ind}  resourceVersion: \"{rv}\"
{ind}  uid: {uid}
{ind}spec:
{ind}  containers:
{ind}  - env:
{ind}    - name: POD_IP
{ind}      valueFrom:
{ind}        fieldRef:
{ind}          apiVersion: v1
{ind}          fieldPath: status.podIP
{ind}    - name: LOG_LEVEL
{ind}      value: info
{ind}    image: registry.example.com/{ns}/{app}:{ver}
{ind}    imagePullPolicy: IfNotPresent
{ind}    name: {app}
{ind}    ports:
{ind}    - containerPort: {port}
{ind}      name: http
{ind}      protocol: TCP
{ind}    resources:
{ind}      limits:
{ind}        cpu: 500m
{ind}        memory: 256Mi
{ind}      requests:
{ind}        cpu: 100m
{ind}        memory: 128Mi
{ind}    terminationMessagePath: /dev/termination-log
{ind}    terminationMessagePolicy: File
{ind}    volumeMounts:
{ind}    - mountPath: /var/run/secrets/kubernetes.io/serviceaccount
{ind}      name: kube-api-access-{tok}
{ind}      readOnly: true
{ind}  dnsPolicy: ClusterFirst
{ind}  enableServiceLinks: true
{ind}  nodeName: node-{node:02}
{ind}  preemptionPolicy: PreemptLowerPriority
{ind}  priority: 0
{ind}  restartPolicy: Always
{ind}  schedulerName: default-scheduler
{ind}  securityContext: {{}}
{ind}  serviceAccount: default
{ind}  serviceAccountName: default
{ind}  terminationGracePeriodSeconds: 30
{ind}  tolerations:
{ind}  - effect: NoExecute
{ind}    key: node.kubernetes.io/not-ready
{ind}    operator: Exists
{ind}    tolerationSeconds: 300
{ind}  - effect: NoExecute
{ind}    key: node.kubernetes.io/unreachable
{ind}    operator: Exists
{ind}    tolerationSeconds: 300
{ind}  volumes:
{ind}  - name: kube-api-access-{tok}
{ind}    projected:
{ind}      defaultMode: 420
{ind}      sources:
{ind}      - serviceAccountToken:
{ind}          expirationSeconds: 3607
{ind}          path: token
{ind}      - configMap:
{ind}          items:
{ind}          - key: ca.crt
{ind}            path: ca.crt
{ind}          name: kube-root-ca.crt
{ind}status:
{ind}  conditions:
{ind}  - lastProbeTime: null
{ind}    lastTransitionTime: \"{started}\"
{ind}    status: \"True\"
{ind}    type: Initialized
{ind}  - lastProbeTime: null
{ind}    lastTransitionTime: \"{ready}\"
{ind}    status: \"True\"
{ind}    type: Ready
{ind}  - lastProbeTime: null
{ind}    lastTransitionTime: \"{ready}\"
{ind}    status: \"True\"
{ind}    type: ContainersReady
{ind}  - lastProbeTime: null
{ind}    lastTransitionTime: \"{created}\"
{ind}    status: \"True\"
{ind}    type: PodScheduled
{ind}  containerStatuses:
{ind}  - containerID: containerd://{cid}
{ind}    image: registry.example.com/{ns}/{app}:{ver}
{ind}    imageID: registry.example.com/{ns}/{app}@sha256:{digest}
{ind}    lastState: {{}}
{ind}    name: {app}
{ind}    ready: true
{ind}    restartCount: 0
{ind}    started: true
{ind}    state:
{ind}      running:
{ind}        startedAt: \"{started}\"
{ind}  hostIP: {host_ip}
{ind}  hostIPs:
{ind}  - ip: {host_ip}
{ind}  phase: Running
{ind}  podIP: {ip}
{ind}  podIPs:
{ind}  - ip: {ip}
{ind}  qosClass: Burstable
{ind}  startTime: \"{created}\"
"
    );
}

fn cmd_gen(args: &[String]) -> Result<(), BoxErr> {
    let dir = args.first().ok_or("gen DIR [N]")?;
    let n: u64 = match args.get(1) {
        Some(s) => s.parse()?,
        None => 100_000,
    };
    std::fs::create_dir_all(dir)?;
    let stream_path = format!("{dir}/pods-stream.yaml");
    let list_path = format!("{dir}/pods-list.yaml");

    // (a) multi-document stream
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&stream_path)?);
        let mut r = Rng(42);
        let mut buf = String::with_capacity(8192);
        for i in 0..n {
            buf.clear();
            if i > 0 {
                buf.push_str("---\n");
            }
            write_pod(&mut buf, i, &mut r, "", "");
            f.write_all(buf.as_bytes())?;
        }
        f.flush()?;
    }
    // (b) kind: List (kubectl get -o yaml style: alphabetical keys, items before kind)
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&list_path)?);
        let mut r = Rng(42);
        let mut buf = String::with_capacity(8192);
        f.write_all(b"apiVersion: v1\nitems:\n")?;
        for i in 0..n {
            buf.clear();
            write_pod(&mut buf, i, &mut r, "- ", "  ");
            f.write_all(buf.as_bytes())?;
        }
        f.write_all(b"kind: List\nmetadata:\n  resourceVersion: \"\"\n")?;
        f.flush()?;
    }
    for p in [&stream_path, &list_path] {
        let len = std::fs::metadata(p)?.len();
        println!("{p}: {len} bytes ({:.1} MiB), {n} pods", len as f64 / 1048576.0);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// parse
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct PodList {
    items: Vec<Pod>,
}

#[derive(Clone, Copy, PartialEq)]
enum Budget {
    Default,
    None,
    Large,
}

fn saphyr_options(b: Budget) -> serde_saphyr::Options {
    match b {
        Budget::Default => serde_saphyr::Options::default(),
        Budget::None => serde_saphyr::options! { budget: None },
        Budget::Large => serde_saphyr::options! {
            budget: serde_saphyr::budget! {
                max_reader_input_bytes: Some(4 << 30),
                max_events: 1 << 32,
                max_nodes: 1 << 32,
                max_documents: 1 << 24,
                max_total_scalar_bytes: 4 << 30,
            },
        },
    }
}

/// A collection that only counts: lets `from_str_multiple` consume documents
/// one by one without keeping them (streaming consumption).
#[derive(Default)]
struct Counter(usize);
impl<T> Extend<T> for Counter {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for v in iter {
            drop(v);
            self.0 += 1;
        }
    }
}

fn value_list_len(v: &serde_json::Value) -> Result<usize, BoxErr> {
    Ok(v.get("items")
        .and_then(|i| i.as_array())
        .ok_or("no items array")?
        .len())
}

macro_rules! libyaml_stream {
    ($krate:ident, $s:expr, $T:ty, $drop:expr) => {{
        let mut n = 0usize;
        let mut keep: Vec<$T> = Vec::new();
        for doc in $krate::Deserializer::from_str($s) {
            let v = <$T>::deserialize(doc)?;
            n += 1;
            if !$drop {
                keep.push(v);
            }
        }
        let r: Result<usize, BoxErr> = Ok(n.max(keep.len()));
        r
    }};
}

fn saphyr_stream<T: DeserializeOwned>(s: &str, b: Budget, drop: bool) -> Result<usize, BoxErr> {
    let opts = saphyr_options(b);
    if drop {
        let c: Counter = serde_saphyr::from_str_multiple_with_options::<T, Counter>(s, opts)?;
        Ok(c.0)
    } else {
        let v: Vec<T> = serde_saphyr::from_multiple_with_options(s, opts)?;
        Ok(v.len())
    }
}

fn saphyr_read_stream<T: DeserializeOwned>(file: &str, b: Budget, drop: bool) -> Result<usize, BoxErr> {
    let mut opts = saphyr_options(b);
    if b == Budget::Default {
        // Same as serde_saphyr::read(): no cap on total reader bytes.
        opts = serde_saphyr::options! { budget: serde_saphyr::budget! { max_reader_input_bytes: None } };
    }
    let mut rd = std::io::BufReader::new(std::fs::File::open(file)?);
    let mut n = 0usize;
    let mut keep: Vec<T> = Vec::new();
    for item in serde_saphyr::read_with_options::<_, T>(&mut rd, opts) {
        let v = item?;
        n += 1;
        if !drop {
            keep.push(v);
        }
    }
    Ok(n)
}

fn cmd_parse(args: &[String]) -> Result<(), BoxErr> {
    if args.len() < 4 {
        return Err("parse LIB SHAPE TARGET FILE [--budget default|none|large] [--drop]".into());
    }
    let (lib, shape, target, file) = (&*args[0], &*args[1], &*args[2], &*args[3]);
    let mut budget = Budget::Default;
    let mut drop = false;
    let mut it = args[4..].iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--drop" => drop = true,
            "--budget" => {
                budget = match it.next().map(String::as_str) {
                    Some("default") => Budget::Default,
                    Some("none") => Budget::None,
                    Some("large") => Budget::Large,
                    _ => return Err("--budget default|none|large".into()),
                }
            }
            o => return Err(format!("unknown option {o}").into()),
        }
    }

    let t_read = Instant::now();
    // saphyr-read streams from the file; everything else reads the file into a String.
    let s = if lib == "saphyr-read" { String::new() } else { std::fs::read_to_string(file)? };
    let read_secs = t_read.elapsed().as_secs_f64();

    let t = Instant::now();
    let n: usize = match (lib, shape, target) {
        ("yaml", "stream", "value") => libyaml_stream!(serde_yaml, &s, serde_json::Value, drop)?,
        ("yaml", "stream", "typed") => libyaml_stream!(serde_yaml, &s, Pod, drop)?,
        ("yaml", "list", "value") => value_list_len(&serde_yaml::from_str::<serde_json::Value>(&s)?)?,
        ("yaml", "list", "typed") => serde_yaml::from_str::<PodList>(&s)?.items.len(),

        ("norway", "stream", "value") => libyaml_stream!(serde_norway, &s, serde_json::Value, drop)?,
        ("norway", "stream", "typed") => libyaml_stream!(serde_norway, &s, Pod, drop)?,
        ("norway", "list", "value") => value_list_len(&serde_norway::from_str::<serde_json::Value>(&s)?)?,
        ("norway", "list", "typed") => serde_norway::from_str::<PodList>(&s)?.items.len(),

        ("saphyr", "stream", "value") => saphyr_stream::<serde_json::Value>(&s, budget, drop)?,
        ("saphyr", "stream", "typed") => saphyr_stream::<Pod>(&s, budget, drop)?,
        ("saphyr", "list", "value") => value_list_len(&serde_saphyr::from_str_with_options::<serde_json::Value>(
            &s,
            saphyr_options(budget),
        )?)?,
        ("saphyr", "list", "typed") => {
            serde_saphyr::from_str_with_options::<PodList>(&s, saphyr_options(budget))?.items.len()
        }

        ("saphyr-read", "stream", "value") => saphyr_read_stream::<serde_json::Value>(file, budget, drop)?,
        ("saphyr-read", "stream", "typed") => saphyr_read_stream::<Pod>(file, budget, drop)?,

        _ => return Err(format!("unsupported combination {lib} {shape} {target}").into()),
    };
    let secs = t.elapsed().as_secs_f64();
    println!(
        "lib={lib} shape={shape} target={target} budget={} drop={drop} pods={n} read_secs={read_secs:.3} parse_secs={secs:.3}",
        match budget {
            Budget::Default => "default",
            Budget::None => "none",
            Budget::Large => "large",
        }
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------

fn pod_doc(name: &str, extra_meta: &str, port: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: default{extra_meta}
spec:
  containers:
  - image: nginx:1.27
    name: web
    ports:
    - containerPort: {port}
      protocol: TCP
"
    )
}

fn stream_of(docs: &[String]) -> String {
    docs.join("---\n")
}

struct Case {
    id: &'static str,
    title: &'static str,
    input: String,
}

fn cases() -> Vec<Case> {
    let ok = |n: usize| pod_doc(&format!("pod-{n}"), "", "80");
    let mut v = Vec::new();

    // (a) bad indentation in document 3 of a 5-document stream.
    let bad_indent = "apiVersion: v1
kind: Pod
metadata:
  name: pod-3
   namespace: default
spec:
  containers:
  - image: nginx:1.27
    name: web
"
    .to_string();
    v.push(Case {
        id: "a",
        title: "syntax error (over-indented key `namespace`) in document 3 of a 5-document stream (doc 3 starts at line 27)",
        input: stream_of(&[ok(1), ok(2), bad_indent, ok(4), ok(5)]),
    });
    let bad_dedent = "apiVersion: v1
kind: Pod
metadata:
  name: pod-3
 namespace: default
spec:
  containers:
  - image: nginx:1.27
    name: web
"
    .to_string();
    v.push(Case {
        id: "a2",
        title: "syntax error (under-indented key `namespace`) in document 3 of a 5-document stream (doc 3 starts at line 27)",
        input: stream_of(&[ok(1), ok(2), bad_dedent, ok(4), ok(5)]),
    });

    // (b) containerPort is a string.
    v.push(Case {
        id: "b",
        title: "spec.containers[0].ports[0].containerPort is the string \"http\" (single document)",
        input: pod_doc("pod-b", "", "http"),
    });
    v.push(Case {
        id: "b-stream",
        title: "same as (b) but as document 3 of a 5-document stream (doc 3 starts at line 27; bad line = 37)",
        input: stream_of(&[ok(1), ok(2), pod_doc("pod-3", "", "http"), ok(4), ok(5)]),
    });

    // (c) tab used for indentation.
    v.push(Case {
        id: "c",
        title: "tab used for indentation (line 5 starts with a TAB)",
        input: "apiVersion: v1
kind: Pod
metadata:
  name: pod-c
\tnamespace: default
spec:
  containers:
  - image: nginx:1.27
    name: web
"
        .to_string(),
    });

    // (d) duplicate key.
    v.push(Case {
        id: "d",
        title: "duplicate key `name` in metadata (lines 4 and 6)",
        input: "apiVersion: v1
kind: Pod
metadata:
  name: pod-d
  namespace: default
  name: pod-d-again
spec:
  containers:
  - image: nginx:1.27
    name: web
"
        .to_string(),
    });

    // (e) unterminated quoted string.
    v.push(Case {
        id: "e",
        title: "unterminated double-quoted string (line 4)",
        input: "apiVersion: v1
kind: Pod
metadata:
  name: \"pod-e
  namespace: default
spec:
  containers:
  - image: nginx:1.27
    name: web
"
        .to_string(),
    });

    // (f) annotation value is a map.
    v.push(Case {
        id: "f",
        title: "metadata.annotations value is a nested map instead of a string (annotations: line 6, key: line 7, map starts line 8)",
        input: pod_doc(
            "pod-f",
            "\n  annotations:\n    ovn.kubernetes.io/ip_address:\n      v4: 10.16.0.5\n      v6: fd00::5",
            "80",
        ),
    });
    v
}

fn loc_note_yaml(e: &serde_yaml::Error) -> String {
    match e.location() {
        Some(l) => format!("location(): line {} column {} (index {})", l.line(), l.column(), l.index()),
        None => "location(): None".into(),
    }
}
fn loc_note_norway(e: &serde_norway::Error) -> String {
    match e.location() {
        Some(l) => format!("location(): line {} column {} (index {})", l.line(), l.column(), l.index()),
        None => "location(): None".into(),
    }
}
fn loc_note_saphyr(e: &serde_saphyr::Error) -> String {
    match e.location() {
        Some(l) => format!("location(): line {} column {}", l.line(), l.column()),
        None => "location(): None".into(),
    }
}

fn run_yaml<T: DeserializeOwned>(input: &str) -> String {
    let mut out = String::new();
    let mut ok = 0;
    for (i, doc) in serde_yaml::Deserializer::from_str(input).enumerate() {
        match T::deserialize(doc) {
            Ok(_) => ok += 1,
            Err(e) => {
                let _ = write!(out, "ERR in document #{} (after {ok} ok docs): {e}\n    [{}]", i + 1, loc_note_yaml(&e));
                return out;
            }
        }
    }
    format!("OK: {ok} document(s) parsed, no error")
}
fn run_norway<T: DeserializeOwned>(input: &str) -> String {
    let mut out = String::new();
    let mut ok = 0;
    for (i, doc) in serde_norway::Deserializer::from_str(input).enumerate() {
        match T::deserialize(doc) {
            Ok(_) => ok += 1,
            Err(e) => {
                let _ = write!(out, "ERR in document #{} (after {ok} ok docs): {e}\n    [{}]", i + 1, loc_note_norway(&e));
                return out;
            }
        }
    }
    format!("OK: {ok} document(s) parsed, no error")
}
fn run_saphyr<T: DeserializeOwned>(input: &str) -> String {
    match serde_saphyr::from_multiple::<T>(input) {
        Ok(v) => format!("OK: {} document(s) parsed, no error", v.len()),
        Err(e) => format!("ERR: {e}\n    [{}]", loc_note_saphyr(&e)),
    }
}

/// serde-saphyr streaming reader iterator (per-document recovery after deserialization errors).
fn run_saphyr_read<T: DeserializeOwned>(input: &str) -> String {
    let mut rd = std::io::Cursor::new(input.as_bytes());
    let mut out = String::new();
    let mut ok = 0;
    for (i, item) in serde_saphyr::read::<_, T>(&mut rd).enumerate() {
        match item {
            Ok(_) => ok += 1,
            Err(e) => {
                let _ = write!(out, "\n    item #{}: ERR: {e}    [{}]", i + 1, loc_note_saphyr(&e));
            }
        }
    }
    format!("{ok} ok item(s){out}")
}

/// serde-saphyr single document wrapped with serde_path_to_error to recover the field path.
fn run_saphyr_path<T: DeserializeOwned>(input: &str) -> String {
    let mut path = None;
    let r = serde_saphyr::with_deserializer_from_str(input, |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            path = Some(e.path().to_string());
            e.into_inner()
        })
    });
    match r {
        Ok(_) => "OK".into(),
        Err(e) => format!("path = {:?}; ERR: {e}", path),
    }
}

fn cmd_errors() {
    for c in cases() {
        println!("==================================================================");
        println!("CASE ({}) {}", c.id, c.title);
        println!("------------------------------------------------------------------ input (numbered)");
        for (i, l) in c.input.lines().enumerate() {
            println!("{:>3}| {}", i + 1, l.replace('\t', "<TAB>"));
        }
        for (tname, typed) in [("value", false), ("typed Pod", true)] {
            println!("------------------------------------------------------------------ target: {tname}");
            let (a, b, s) = if typed {
                (run_yaml::<Pod>(&c.input), run_norway::<Pod>(&c.input), run_saphyr::<Pod>(&c.input))
            } else {
                (
                    run_yaml::<serde_json::Value>(&c.input),
                    run_norway::<serde_json::Value>(&c.input),
                    run_saphyr::<serde_json::Value>(&c.input),
                )
            };
            println!("[serde_yaml]   {a}");
            println!("[serde_norway] {b}");
            println!("[serde-saphyr] {s}");
            if c.input.contains("\n---\n") {
                let r = if typed { run_saphyr_read::<Pod>(&c.input) } else { run_saphyr_read::<serde_json::Value>(&c.input) };
                println!("[serde-saphyr read() iterator] {r}");
            } else if typed {
                println!("[serde-saphyr + serde_path_to_error] {}", run_saphyr_path::<Pod>(&c.input));
            }
        }
    }
}
