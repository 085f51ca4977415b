//! The manifest source's object changes against their oracle, a fresh whole load of the
//! directory: random sequences of file writes (multi-document YAML, `kind: List`, JSON streams
//! and Lists, subdirectories), edits, deletes, renames, symlinks (an object defined in two files),
//! objects moving between files or defined twice, broken syntax, fields of the wrong type,
//! oversized files, FIFOs and dangling links. After every step, `ManifestCache::load_changes`
//! applied to the state it gave before must be byte for byte the snapshot `load` gives of the
//! directory now (or the same error, the state in force unchanged), and the engine fed those
//! events must hold the intent a full compile of that snapshot makes (YAML and hash).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bgpgen::compile::compile;
use bgpgen::engine::{Engine, Event, relist_all};
use bgpgen::options::{Env, Resolved, SpeakerArgs, parse_speaker_args, resolve};
use bgpgen::relist::Relists;
use bgpgen::snapshot::Snapshot;
use bgpgen::source::Changes;
use bgpgen::source::input::Limits;
use bgpgen::source::manifests::{Loaded, ManifestCache, load_with};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Files the steps write (by index); `.json` ones hold JSON, the others YAML.
const FILES: [&str; 6] = [
    "a.yaml",
    "b.yml",
    "c.json",
    "sub/d.yaml",
    "sub/e.json",
    "sub/deeper/f.yaml",
];
/// Objects the files define (by index), each in a few versions; file `f` mostly holds objects
/// `3f..3f+3`, sometimes any other (defined twice, moving).
const OBJECTS: usize = 3 * FILES.len();
const VERSIONS: u8 = 3;
/// The password of the gateways: never in an error message.
const SECRET: &str = "s3cr3t-pw";
/// Limits small enough for a test to write a file above them.
const LIMITS: Limits = Limits {
    max_bytes: 64 << 10,
};
/// Loads pretend to happen this long after the files were written (past the cache's racy
/// window), so that unchanged files are taken from the cache.
const LATER: Duration = Duration::from_secs(60);

/// Loads whose changes were applied (not a whole snapshot), over every case.
static DELTAS: AtomicUsize = AtomicUsize::new(0);
static WHOLES: AtomicUsize = AtomicUsize::new(0);
static ERRORS: AtomicUsize = AtomicUsize::new(0);
static EMPTY: AtomicUsize = AtomicUsize::new(0);

/// Object `slot` in version `version`, as JSON: pods, subnets (`s3` is the pods' subnet),
/// nodes, services, a NAT gateway holding a password.
fn object(slot: usize, version: u8) -> serde_json::Value {
    use serde_json::json;
    let v = version % VERSIONS;
    match slot % 6 {
        0..=2 => json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": format!("p{slot}"), "namespace": "d",
                "annotations": {
                    "ovn.kubernetes.io/ip_address": format!("10.16.{v}.{}", slot + 1),
                    "ovn.kubernetes.io/logical_switch": "s3",
                    "ovn.kubernetes.io/bgp": if v == 2 { "local" } else { "true" },
                },
            },
            "spec": {"nodeName": if v == 1 { "n4" } else { "n10" }},
            "status": {"phase": "Running"},
        }),
        3 => {
            let mut s = json!({
                "apiVersion": "kubeovn.io/v1", "kind": "Subnet",
                "metadata": {"name": format!("s{slot}"), "annotations": {"ovn.kubernetes.io/bgp": "true"}},
                "spec": {"cidrBlock": if slot == 3 { "10.16.0.0/16".to_string() } else { format!("10.{}.{v}.0/24", 20 + slot) }},
            });
            if v == 1 {
                s["status"] = json!({"conditions": [{"type": "Ready", "status": "False"}]});
            }
            s
        }
        4 => json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": format!("n{slot}"), "labels": {"v": format!("{v}")}},
        }),
        _ if slot == 11 => gateway(v),
        _ => json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": format!("svc{slot}"), "namespace": "d", "annotations": {"ovn.kubernetes.io/bgp": "true"}},
            "spec": {"type": "ClusterIP", "clusterIP": format!("10.96.{slot}.{}", v + 1)},
        }),
    }
}

fn gateway(v: u8) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "kubeovn.io/v1", "kind": "VpcNatGateway",
        "metadata": {"name": "gw"},
        "spec": {"bgpSpeaker": {
            "enabled": true, "asn": 65000 + u32::from(v), "remoteAsn": 65030,
            "neighbors": ["10.32.32.254"], "password": SECRET,
        }},
    })
}

/// What a step writes into a file.
#[derive(Debug, Clone)]
enum Content {
    /// Objects `(slot, version)`, as documents (YAML) or a stream of objects (JSON).
    Documents(Vec<(usize, u8)>),
    /// The same in a `kind: List`.
    List(Vec<(usize, u8)>),
    /// A syntax error after a valid object.
    Broken((usize, u8)),
    /// A used object with a field of the wrong type (the gateway's: its password).
    WrongType,
    /// Not a Kubernetes object.
    NotAnObject,
    /// Above the limit, whatever it holds.
    Oversized,
    /// Kinds and files bgpgen ignores: an options-like mapping, a ConfigMap.
    Ignored,
}

fn render(content: &Content, json: bool) -> String {
    let objects = |list: &[(usize, u8)]| -> Vec<serde_json::Value> {
        list.iter().map(|&(s, v)| object(s, v)).collect()
    };
    let docs = |values: Vec<serde_json::Value>| -> String {
        if json {
            values
                .iter()
                .map(|v| serde_json::to_string_pretty(v).unwrap())
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            values
                .iter()
                .map(|v| format!("---\n{}", serde_json::to_string(v).unwrap()))
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    match content {
        Content::Documents(list) => docs(objects(list)),
        Content::List(list) => docs(vec![
            serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects(list)}),
        ]),
        Content::Broken(one) => {
            let good = docs(objects(std::slice::from_ref(one)));
            if json {
                format!("{good}\n{{\"kind\": \"Pod\",")
            } else {
                format!("{good}\n---\nkind: Pod\nmetadata: {{name: [b\n")
            }
        }
        Content::WrongType => {
            let mut gw = gateway(0);
            gw["spec"]["bgpSpeaker"]["password"] = serde_json::json!({"value": SECRET});
            docs(vec![gw])
        }
        Content::NotAnObject => {
            if json {
                "[1, 2]".into()
            } else {
                "- 1\n- 2\n".into()
            }
        }
        Content::Oversized => {
            let body = docs(objects(&[(0, 0)]));
            if json {
                let pad = " ".repeat(LIMITS.max_bytes as usize);
                format!("{body}{pad}")
            } else {
                let pad = "# padding\n".repeat(LIMITS.max_bytes as usize / 10 + 1);
                format!("{body}\n{pad}")
            }
        }
        Content::Ignored => docs(vec![
            serde_json::json!({"clusterAs": 65000}),
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        ]),
    }
}

#[derive(Debug, Clone)]
enum Step {
    Write(usize, Content),
    /// The same content written again (new timestamps, nothing changed).
    Touch(usize),
    Delete(usize),
    /// `mv`, over whatever is at the target.
    Rename(usize, usize),
    /// The file replaced by a symlink to another (its objects defined twice, identically).
    Link(usize, usize),
    /// A symlink to nothing.
    Dangling(usize),
    Fifo(usize),
    /// Written under a name the walk skips (hidden, not a manifest extension).
    Skipped(usize, Content),
}

fn objects_strategy(file: usize) -> impl Strategy<Value = Vec<(usize, u8)>> {
    let slot = prop_oneof![
        9 => (0..3usize).prop_map(move |k| 3 * file + k),
        1 => 0..OBJECTS,
    ];
    // Mostly each object once; sometimes one twice in the file (identical or not).
    (prop::collection::vec((slot, 0..VERSIONS), 0..5), 0..8u8).prop_map(|(mut list, twice)| {
        if twice != 0 {
            let mut seen = std::collections::HashSet::new();
            list.retain(|(slot, _)| seen.insert(*slot));
        }
        list
    })
}

fn content(file: usize) -> impl Strategy<Value = Content> {
    prop_oneof![
        30 => objects_strategy(file).prop_map(Content::Documents),
        10 => objects_strategy(file).prop_map(Content::List),
        1 => (0..OBJECTS, 0..VERSIONS).prop_map(Content::Broken),
        1 => Just(Content::WrongType),
        1 => Just(Content::NotAnObject),
        1 => Just(Content::Oversized),
        1 => Just(Content::Ignored),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let file = 0..FILES.len();
    prop_oneof![
        12 => file
            .clone()
            .prop_flat_map(|f| content(f).prop_map(move |c| Step::Write(f, c))),
        2 => file.clone().prop_map(Step::Touch),
        5 => file.clone().prop_map(Step::Delete),
        2 => (file.clone(), file.clone()).prop_map(|(a, b)| Step::Rename(a, b)),
        1 => (file.clone(), file.clone()).prop_map(|(a, b)| Step::Link(a, b)),
        1 => file.clone().prop_map(Step::Dangling),
        1 => file.clone().prop_map(Step::Fifo),
        1 => file.prop_flat_map(|f| content(f).prop_map(move |c| Step::Skipped(f, c))),
    ]
}

fn path(dir: &Path, file: usize) -> PathBuf {
    dir.join(FILES[file])
}

fn remove(p: &Path) {
    if std::fs::symlink_metadata(p).is_ok() {
        std::fs::remove_file(p).unwrap();
    }
}

fn write(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    // A FIFO or a link there is replaced, not written through.
    remove(p);
    std::fs::write(p, text).unwrap();
}

fn perform(dir: &Path, step: &Step) {
    // Past the file system's clock tick, so that every write shows in the timestamps (the loads
    // pretend to happen long after, where the cache trusts them).
    std::thread::sleep(Duration::from_millis(11));
    match step {
        Step::Write(f, c) => write(&path(dir, *f), &render(c, FILES[*f].ends_with(".json"))),
        Step::Touch(f) => {
            let p = path(dir, *f);
            // Never opened when not a regular file: a FIFO would block.
            if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file())
                && let Ok(text) = std::fs::read_to_string(&p)
            {
                std::fs::write(&p, text).unwrap();
            }
        }
        Step::Delete(f) => remove(&path(dir, *f)),
        Step::Rename(a, b) => {
            let (from, to) = (path(dir, *a), path(dir, *b));
            if a != b && std::fs::symlink_metadata(&from).is_ok() {
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::rename(&from, &to).unwrap();
            }
        }
        Step::Link(a, b) => {
            let (link, target) = (path(dir, *a), path(dir, *b));
            if a != b && target.exists() {
                std::fs::create_dir_all(link.parent().unwrap()).unwrap();
                remove(&link);
                std::os::unix::fs::symlink(&target, &link).unwrap();
            }
        }
        Step::Dangling(f) => {
            let link = path(dir, *f);
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            remove(&link);
            std::os::unix::fs::symlink(dir.join("nowhere.yaml"), &link).unwrap();
        }
        Step::Fifo(f) => {
            let p = path(dir, *f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            remove(&p);
            let status = std::process::Command::new("mkfifo")
                .arg(&p)
                .status()
                .expect("mkfifo runs");
            assert!(status.success(), "mkfifo {}", p.display());
        }
        Step::Skipped(f, c) => {
            let p = path(dir, *f);
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let json = name.ends_with(".json");
            write(&p.with_file_name(format!(".{name}")), &render(c, json));
            write(&p.with_file_name(format!("{name}.txt")), &render(c, json));
        }
    }
}

fn speaker() -> SpeakerArgs {
    let a: Vec<String> = [
        "--cluster-as=65000",
        "--neighbor-as=65030",
        "--neighbor-address=10.32.32.254",
        "--node-name=n0",
        "--router-id=10.0.0.1",
        "--announce-cluster-ip",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    parse_speaker_args(&a).expect("valid flags")
}

fn resolved(args: &SpeakerArgs, snapshot: &Snapshot) -> Resolved {
    resolve(args, &Env::default(), snapshot, &|_| {
        Err(std::io::Error::other("no files"))
    })
    .expect("node mode resolves")
}

/// The consumer of the source: the state it was given, and the engine fed the same events.
struct Consumer {
    state: Option<Snapshot>,
    engine: Option<Engine>,
}

impl Consumer {
    fn take(&mut self, loaded: Loaded, args: &SpeakerArgs) {
        match loaded {
            Loaded::Whole(snapshot) => {
                WHOLES.fetch_add(1, Ordering::Relaxed);
                match &mut self.engine {
                    Some(engine) => {
                        engine.apply_all(relist_all(snapshot.clone()));
                    }
                    None => {
                        let r = resolved(args, &snapshot);
                        self.engine = Some(Engine::new(snapshot.clone(), r.options, r.diagnostics));
                    }
                }
                self.state = Some(snapshot);
            }
            Loaded::Changes(events) => {
                if events.is_empty() {
                    EMPTY.fetch_add(1, Ordering::Relaxed);
                } else {
                    DELTAS.fetch_add(1, Ordering::Relaxed);
                }
                let state = self.state.as_mut().expect("changes only after a state");
                // Manifest changes hold no streamed relist: nothing carries over between loads.
                Changes {
                    events: events.clone(),
                }
                .apply_to(state, &mut Relists::default());
                let engine = self.engine.as_mut().expect("an engine with the state");
                let delta = engine.apply_all(events);
                if delta.resolve_again {
                    let r = resolved(args, engine.snapshot());
                    engine.set_options(r.options, r.diagnostics);
                }
            }
        }
    }
}

fn run(steps: Vec<(Step, bool)>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("manifests");
    std::fs::create_dir(&root).unwrap();
    let paths = vec![root.clone()];
    let args = speaker();
    let mut cache = ManifestCache::with_limits(LIMITS);
    let mut consumer = Consumer {
        state: None,
        engine: None,
    };
    let first = cache.load_changes_at(&paths, SystemTime::now() + LATER);
    prop_assert!(matches!(first, Ok(Loaded::Whole(_))), "{first:?}");
    consumer.take(first.unwrap(), &args);
    for (i, (step, later)) in steps.iter().enumerate() {
        perform(&root, step);
        // Half the loads at the real time (every file just written is read again), half as if
        // long after (unchanged files from the cache).
        let now = SystemTime::now() + if *later { LATER } else { Duration::ZERO };
        let got = cache.load_changes_at(&paths, now);
        let expected = load_with(&paths, LIMITS);
        let before = consumer.state.clone();
        match (got, expected) {
            (Ok(loaded), Ok(truth)) => {
                consumer.take(loaded, &args);
                prop_assert_eq!(
                    consumer.state.as_ref(),
                    Some(&truth),
                    "step {}: {:?}",
                    i,
                    step
                );
                let engine = consumer.engine.as_ref().unwrap();
                let oracle = compile(&truth, engine.options(), engine.prior());
                let intent = engine.intent();
                prop_assert_eq!(
                    intent.to_yaml(true),
                    oracle.to_yaml(true),
                    "step {}: {:?}",
                    i,
                    step
                );
                prop_assert_eq!(engine.hash(), oracle.hash.as_str(), "step {}", i);
            }
            (Err(got), Err(truth)) => {
                ERRORS.fetch_add(1, Ordering::Relaxed);
                prop_assert_eq!(got.to_string(), truth.to_string(), "step {}: {:?}", i, step);
                prop_assert!(!got.to_string().contains(SECRET), "{}", got);
                // The last good state stays in force.
                prop_assert_eq!(&consumer.state, &before);
            }
            (got, truth) => {
                return Err(TestCaseError::fail(format!(
                    "step {i}: {step:?}\ncache: {got:?}\nload: {truth:?}"
                )));
            }
        }
    }
    Ok(())
}

#[test]
fn manifest_changes_give_what_a_whole_load_gives() {
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    let strategy = prop::collection::vec((step(), any::<bool>()), 1..24);
    if let Err(e) = runner.run(&strategy, run) {
        panic!("{e}");
    }
    // The changes path was taken, not only the whole assembly.
    let (deltas, wholes) = (
        DELTAS.load(Ordering::Relaxed),
        WHOLES.load(Ordering::Relaxed),
    );
    eprintln!(
        "loads that gave changes: {deltas}, no change: {}, whole snapshots: {wholes}, errors: {}",
        EMPTY.load(Ordering::Relaxed),
        ERRORS.load(Ordering::Relaxed)
    );
    assert!(
        deltas > 100 && wholes > 64,
        "deltas {deltas}, wholes {wholes}"
    );
}

fn put(dir: &Path, name: &str, objects: &[(usize, u8)]) {
    std::thread::sleep(Duration::from_millis(11));
    write(
        &dir.join(name),
        &render(
            &Content::Documents(objects.to_vec()),
            name.ends_with(".json"),
        ),
    );
}

fn changes(cache: &mut ManifestCache, dir: &Path) -> Loaded {
    cache
        .load_changes_at(&[dir.to_path_buf()], SystemTime::now() + LATER)
        .unwrap()
}

fn refs(loaded: &Loaded) -> Vec<String> {
    let Loaded::Changes(events) = loaded else {
        return vec!["whole".into()];
    };
    let mut out: Vec<String> = events
        .iter()
        .map(|e| match e {
            Event::Upsert(o) => format!("upsert {}", o.object_ref()),
            Event::Delete(r) => format!("delete {r}"),
            Event::Relist(k, _) => format!("relist {k:?}"),
            Event::InputWarnings(w) => format!("warnings {}", w.len()),
            // Only the cluster source streams relists.
            e => format!("{e:?}"),
        })
        .collect();
    out.sort();
    out
}

#[test]
fn one_changed_file_gives_its_changed_objects_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, "a.yaml", &[(0, 0), (1, 0), (3, 0)]);
    put(d, "b.yaml", &[(2, 0), (4, 0)]);
    let mut cache = ManifestCache::new();
    assert_eq!(refs(&changes(&mut cache, d)), ["whole"]);
    // Nothing changed: nothing to do.
    assert!(refs(&changes(&mut cache, d)).is_empty());

    // One pod changed, one added, one removed, the subnet untouched.
    put(d, "a.yaml", &[(0, 1), (6, 0), (3, 0)]);
    assert_eq!(
        refs(&changes(&mut cache, d)),
        ["delete Pod/d/p1", "upsert Pod/d/p0", "upsert Pod/d/p6"]
    );
    // A file removed: its objects deleted.
    std::fs::remove_file(d.join("b.yaml")).unwrap();
    assert_eq!(
        refs(&changes(&mut cache, d)),
        ["delete Node/n4", "delete Pod/d/p2"]
    );
    // An object moving to another file in two steps: copied (defined twice, identically), then
    // removed from the first. Another file holds it each time: the whole assembly decides.
    put(d, "b.yaml", &[(0, 1)]);
    assert_eq!(refs(&changes(&mut cache, d)), ["whole"]);
    put(d, "a.yaml", &[(6, 0), (3, 0)]);
    assert_eq!(refs(&changes(&mut cache, d)), ["whole"]);
    // Moving back, changed, in one step: both files changed, so they decide it alone.
    put(d, "b.yaml", &[]);
    put(d, "a.yaml", &[(0, 2), (6, 0), (3, 0)]);
    assert_eq!(refs(&changes(&mut cache, d)), ["upsert Pod/d/p0"]);
    put(d, "b.yaml", &[(0, 1)]);
    put(d, "a.yaml", &[(6, 0), (3, 0)]);
    assert_eq!(refs(&changes(&mut cache, d)), ["upsert Pod/d/p0"]);
    // The same object in two files (identical): a change to it is decided by the assembly, a
    // change to another object of those files is not.
    put(d, "b.yaml", &[(0, 1), (3, 0)]);
    assert_eq!(refs(&changes(&mut cache, d)), ["whole"]);
    put(d, "b.yaml", &[(0, 2), (3, 0)]);
    assert_eq!(refs(&changes(&mut cache, d)), ["upsert Pod/d/p0"]);
    put(d, "b.yaml", &[(0, 2), (3, 1)]);
    let e = cache
        .load_changes_at(&[d.to_path_buf()], SystemTime::now() + LATER)
        .unwrap_err();
    assert!(e.to_string().contains("defined twice"), "{e}");
    // After an error, the whole state again.
    put(d, "b.yaml", &[(0, 2)]);
    assert_eq!(refs(&changes(&mut cache, d)), ["whole"]);
    // A FIFO appearing: skipped with a note, which is a change of its own.
    let status = std::process::Command::new("mkfifo")
        .arg(d.join("f.yaml"))
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(refs(&changes(&mut cache, d)), ["warnings 1"]);
}
