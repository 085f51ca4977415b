//! `bgpgen-bench change`: bgpgen's own share of one object change, in process, at several
//! cluster sizes side by side: the work from the event to the daemon command being issued, per
//! backend, without the daemon (its floor is measured by `cargo bench --bench change_cost` and
//! `--bench latency`) and without the tokio glue between the steps.
//!
//! Per size: the synthetic cluster of `synth` (pods scaled as in `benches/pipeline.rs`), an
//! engine built on it, then `--changes` changes one at a time, alternating: an announced pod
//! loses its `ovn.kubernetes.io/bgp` annotation (one route withdrawn), then gets it back (one
//! route announced). For each change:
//!
//! - **engine**: the watch event in, the route delta out (`Engine::apply`: contributions,
//!   counted route table, diagnostics, intent hash);
//! - **gobgp**: engine + the paths sent (`Delta::paths` as GoBGP paths);
//! - **frr**: engine + the vtysh `network` script (`frr::delta_script`);
//! - **in force**: the sidecar's intent in force (`/intent`, `explain --from-sidecar`) brought
//!   along (`Delta::apply_to`: routes replaced in a sorted vector, a memmove of the routes after
//!   them), which the GoBGP and FRR applies do after the daemon command;
//! - **bird**: engine + the route files the delta touches rewritten (read back, patched and
//!   written atomically, `bird::apply::write_route_delta`, the driver's own step
//!   (in `/dev/shm` like the shipped speaker's Memory emptyDir, or `$BGPGEN_BENCH_BIRD_DIR`)
//!   before `birdc configure`; BIRD has no runtime route command and its re-read is the daemon's
//!   floor);
//! - **bird whole**: engine + the whole intent rendered for BIRD (bird.conf and every route
//!   file): what every BIRD change cost before the route files, and what a whole apply costs;
//! - **manifests**: the `run --manifests` source instead of a watch: one small file rewritten,
//!   `ManifestCache::load_changes` of the directory (only that file read, its objects compared
//!   with their previous versions) and the object changes applied by the engine, as the sidecar
//!   does;
//! - **manifests (before)**: the same change the way the sidecar took it before:
//!   `ManifestCache::load` (only that file read, the whole snapshot assembled again) and the
//!   snapshot relisted into the engine (every object compared), on a second cache and engine;
//! - **full (before)**: what every change cost before the engine: compile + render of the whole
//!   cluster (GoBGP's files).
//!
//! Allocations are counted by the tool's allocator (every `alloc` call).

use std::time::{Duration, Instant};

use bgpgen::engine::{Engine, Event};
use bgpgen::model::BgpAnnotation;
use bgpgen::options::{Env, SpeakerArgs, resolve};
use bgpgen::render::{Backend, Templates, render};
use bgpgen::snapshot::{Object, PodInfo, Snapshot};
use bgpgen::source::manifests::{Loaded, ManifestCache, load_texts};
use bgpgen_bench::synth::{self, Format, Spec};

pub struct ChangeArgs {
    pub sizes: Vec<usize>,
    pub changes: usize,
    /// Also time the whole compile + render per change (slow at 100k: measured `full_reps` times).
    pub full_reps: usize,
}

fn spec(pods: usize) -> Spec {
    Spec {
        nodes: (pods / 100).max(3),
        pods,
        services: pods / 10,
        subnets: (pods / 100).max(2),
        eips: (pods / 100).max(1),
        ..Spec::default()
    }
}

#[derive(Default)]
struct Samples {
    times: Vec<Duration>,
    allocs: Vec<u64>,
}

impl Samples {
    fn push(&mut self, t: Duration, allocs: u64) {
        self.times.push(t);
        self.allocs.push(allocs);
    }

    fn median(&self) -> Duration {
        let mut v = self.times.clone();
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    }

    fn p99(&self) -> Duration {
        let mut v = self.times.clone();
        v.sort();
        v.get(((v.len() as f64 - 1.0) * 0.99).round() as usize)
            .copied()
            .unwrap_or_default()
    }

    fn allocs(&self) -> u64 {
        let mut v = self.allocs.clone();
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    }
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 1.0 {
        format!("{:.3}", ms)
    } else if ms < 100.0 {
        format!("{:.2}", ms)
    } else {
        format!("{:.0}", ms)
    }
}

struct Row {
    pods: usize,
    routes: usize,
    engine: Samples,
    gobgp: Samples,
    frr: Samples,
    in_force: Samples,
    bird: Samples,
    bird_whole: Samples,
    /// Changes that announced or withdrew a route (the others change provenance only).
    moved: usize,
    manifests: Samples,
    manifests_before: Samples,
    full: Samples,
}

/// Times `f`, counting its allocations.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration, u64) {
    let a = crate::total_allocs();
    let t = Instant::now();
    let out = f();
    let d = t.elapsed();
    (out, d, crate::total_allocs() - a)
}

fn path_of(r: &bgpgen::intent::Route) -> bgpgen::routes_file::Path {
    bgpgen::routes_file::Path {
        prefix: r.prefix,
        next_hop: match r.next_hop {
            bgpgen::intent::NextHop::SelfAddress => None,
            bgpgen::intent::NextHop::Address(ip) => Some(ip),
        },
    }
}

fn measure(pods: usize, args: &ChangeArgs) -> Result<Row, String> {
    let spec = spec(pods);
    let cluster = synth::generate(&spec).map_err(|e| e.to_string())?;
    let texts = cluster.files(Format::Json);
    let snapshot: Snapshot = load_texts(texts.iter().map(|(n, t)| (n.as_str(), t.as_str())))
        .map_err(|e| e.to_string())?;
    let speaker =
        SpeakerArgs::from_options_yaml("speaker-options.yaml", &synth::speaker_options(&spec))
            .map_err(|e| e.to_string())?;
    let resolved = resolve(&speaker, &Env::default(), &snapshot, &|_| {
        Err(std::io::Error::other("no files"))
    })
    .map_err(|e| e.to_string())?;
    let templates = Templates::builtin();
    let mut engine = Engine::new(
        snapshot,
        resolved.options.clone(),
        resolved.diagnostics.clone(),
    );
    let routes = engine.route_count();
    let mut in_force = engine.intent();

    // Announced pods: the pod sources of routes, in order.
    let mut targets: Vec<PodInfo> = Vec::new();
    for r in engine.routes() {
        for s in &r.sources {
            if s.kind == bgpgen::model::Kind::Pod
                && let Some(ns) = &s.namespace
                && let Some(p) = engine.snapshot().pod(ns, &s.name)
                && p.bgp.is_some()
                && !targets.iter().any(|t| t.key() == p.key())
            {
                targets.push(p.clone());
            }
        }
        if targets.len() * 2 >= args.changes {
            break;
        }
    }
    if targets.is_empty() {
        return Err("no announced pod to change".into());
    }

    let mut row = Row {
        pods,
        routes,
        engine: Samples::default(),
        gobgp: Samples::default(),
        frr: Samples::default(),
        in_force: Samples::default(),
        bird: Samples::default(),
        bird_whole: Samples::default(),
        moved: 0,
        manifests: Samples::default(),
        manifests_before: Samples::default(),
        full: Samples::default(),
    };
    let local_as = in_force.speaker.local_as;
    // BIRD's route files as the last whole apply wrote them, in a directory of their own.
    let bird_dir = bird_dir()?;
    for (name, text) in bgpgen::daemon::bird::routes::files(&in_force) {
        let path = bird_dir.join(name);
        bgpgen::output::own_dir(path.parent().expect("a route file is in bird-routes/"))
            .map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| e.to_string())?;
    }
    let mut bird_layout = bgpgen::daemon::bird::routes::layout(&in_force);
    for i in 0..args.changes {
        let original = &targets[(i / 2) % targets.len()];
        let mut pod = original.clone();
        if i % 2 == 0 {
            pod.bgp = None;
        } else {
            pod.bgp = original.bgp.clone().or(Some(BgpAnnotation::parse("true")));
        }
        let event = Event::Upsert(Object::Pod(pod));
        // The backend decides what is done with the delta; the engine step is the same for all
        // three, so each is measured on its own copy of the step: engine, then the backend's
        // part, in turn (gobgp, frr, bird), on the same delta.
        let (delta, t_engine, a_engine) = timed(|| engine.apply(event));
        row.engine.push(t_engine, a_engine);
        let (_, t, a) = timed(|| {
            let paths = delta.paths();
            let announce: Vec<_> = paths.announce.iter().map(|r| path_of(r)).collect();
            let withdraw: Vec<_> = paths.withdraw.iter().map(|r| path_of(r)).collect();
            std::hint::black_box((announce, withdraw));
        });
        let (_, t_follow, a_follow) = timed(|| delta.apply_to(&mut in_force, engine.hash()));
        row.gobgp.push(t_engine + t, a_engine + a);
        row.in_force.push(t_follow, a_follow);
        let (_, t, a) = timed(|| {
            std::hint::black_box(bgpgen::daemon::frr::apply::delta_script(local_as, &delta));
        });
        row.frr.push(t_engine + t, a_engine + a);
        let (written, t, a) = timed(|| {
            bgpgen::daemon::bird::apply::write_route_delta(&bird_dir, &mut bird_layout, &delta)
        });
        let paths = delta.paths();
        let moved = !paths.announce.is_empty() || !paths.withdraw.is_empty();
        row.moved += usize::from(moved);
        match written {
            Some(Ok(changes)) if changes.is_empty() != moved => {}
            other => return Err(format!("the BIRD route delta was not written: {other:?}")),
        }
        row.bird.push(t_engine + t, a_engine + a);
        let (_, t, a) = timed(|| {
            let intent = engine.intent();
            std::hint::black_box(
                render(&intent, Backend::Bird, &templates, true).map(|r| r.files.len()),
            )
        });
        row.bird_whole.push(t_engine + t, a_engine + a);
        if i < args.full_reps {
            let (_, t, a) = timed(|| {
                let intent =
                    bgpgen::compile::compile(engine.snapshot(), engine.options(), engine.prior());
                std::hint::black_box(
                    render(&intent, Backend::Gobgp, &templates, true).map(|r| r.files.len()),
                )
            });
            row.full.push(t, a);
        }
    }

    // The manifest source: the cluster as files, one small file changed per step.
    let _ = std::fs::remove_dir_all(&bird_dir);
    let dir = tempfile_dir("manifests")?;
    for (name, text) in &texts {
        std::fs::write(dir.join(name), text).map_err(|e| e.to_string())?;
    }
    let small = dir.join("zz-change.json");
    let pod_json = |annotated: bool| {
        let ann = if annotated {
            r#","ovn.kubernetes.io/bgp":"true""#
        } else {
            ""
        };
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"bench-change","namespace":"default","annotations":{{"ovn.kubernetes.io/ip_address":"10.250.0.9","ovn.kubernetes.io/logical_switch":"ovn-default"{ann}}}}},"spec":{{"nodeName":"node-00000"}},"status":{{"phase":"Running"}}}}"#
        )
    };
    std::fs::write(&small, pod_json(false)).map_err(|e| e.to_string())?;
    let paths = vec![dir.clone()];
    let mut cache = ManifestCache::new();
    let mut before_cache = ManifestCache::new();
    let first = match cache.load_changes(&paths).map_err(|e| e.to_string())? {
        Loaded::Whole(snapshot) => snapshot,
        Loaded::Changes(_) => return Err("the first load gave changes".into()),
    };
    let before_first = before_cache.load(&paths).map_err(|e| e.to_string())?;
    let mut files_engine = Engine::new(
        first,
        resolved.options.clone(),
        resolved.diagnostics.clone(),
    );
    let mut before_engine = Engine::new(before_first, resolved.options, resolved.diagnostics);
    // The cache distrusts files changed within its racy window (2 s): wait it out once.
    std::thread::sleep(Duration::from_millis(2100));
    let _ = cache.load_changes(&paths);
    let _ = before_cache.load(&paths);
    let mut whole = 0;
    for i in 0..args.changes.min(20) {
        std::fs::write(&small, pod_json(i % 2 == 0)).map_err(|e| e.to_string())?;
        let (loaded, t, a) = timed(|| {
            let events = match cache.load_changes(&paths).expect("manifests load") {
                Loaded::Changes(events) => events,
                Loaded::Whole(snapshot) => {
                    whole += 1;
                    bgpgen::engine::relist_all(snapshot)
                }
            };
            std::hint::black_box(files_engine.apply_all(events))
        });
        row.manifests.push(t, a);
        let (_, t, a) = timed(|| {
            let snapshot = before_cache.load(&paths).expect("manifests load");
            std::hint::black_box(before_engine.apply_all(bgpgen::engine::relist_all(snapshot)))
        });
        row.manifests_before.push(t, a);
        // Both ways end in the same state.
        if files_engine.hash() != before_engine.hash() {
            return Err(format!(
                "change {i}: the manifest source's changes and its reload disagree"
            ));
        }
        std::hint::black_box(loaded);
    }
    if whole > 0 {
        return Err(format!("{whole} changes of one file took the whole reload"));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(row)
}

/// Where the BIRD route files are written: `$BGPGEN_BENCH_BIRD_DIR`, else `/dev/shm` like the
/// shipped speaker's config directory (`yamls/speaker-bird.yaml`: an emptyDir of medium Memory,
/// where fsync costs nothing), else the temp dir.
fn bird_dir() -> Result<std::path::PathBuf, String> {
    let base = std::env::var_os("BGPGEN_BENCH_BIRD_DIR")
        .map(std::path::PathBuf::from)
        .or_else(|| Some(std::path::PathBuf::from("/dev/shm")).filter(|p| p.is_dir()))
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("bgpgen-bench-change-bird-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    eprintln!("BIRD route files in {}", dir.display());
    Ok(dir)
}

fn tempfile_dir(what: &str) -> Result<std::path::PathBuf, String> {
    let dir =
        std::env::temp_dir().join(format!("bgpgen-bench-change-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

pub fn run(args: ChangeArgs) -> Result<(), String> {
    let mut rows = Vec::new();
    for &pods in &args.sizes {
        eprintln!("== {pods} pods");
        rows.push(measure(pods, &args)?);
    }
    println!(
        "bgpgen's own share of one pod change (event in -> daemon command ready), ms, median / p99 over {} changes (manifests: {}), allocations per change (median)",
        args.changes,
        args.changes.min(20)
    );
    println!();
    println!(
        "| pods | routes | engine (event -> delta) | gobgp (-> paths) | frr (-> vtysh script) | bird (-> route files written) | bird whole render (before) | then: intent in force kept | manifests source + engine | manifests (before: reload + relist) | full compile + render (before) |"
    );
    println!("|---:|---:|---|---|---|---|---|---|---|---|---|");
    let cell = |s: &Samples| {
        if s.times.is_empty() {
            "-".to_string()
        } else {
            format!(
                "{} / {} ms, {} allocs",
                ms(s.median()),
                ms(s.p99()),
                s.allocs()
            )
        }
    };
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.pods,
            r.routes,
            cell(&r.engine),
            cell(&r.gobgp),
            cell(&r.frr),
            cell(&r.bird),
            cell(&r.bird_whole),
            cell(&r.in_force),
            cell(&r.manifests),
            cell(&r.manifests_before),
            cell(&r.full)
        );
    }
    for r in &rows {
        eprintln!(
            "{} pods: {} of {} changes announced or withdrew a route",
            r.pods, r.moved, args.changes
        );
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last())
        && rows.len() > 1
    {
        let ratio = |a: &Samples, b: &Samples| {
            if a.times.is_empty() || b.times.is_empty() {
                "-".to_string()
            } else {
                format!(
                    "{:.1}x time, {:.1}x allocs",
                    b.median().as_secs_f64() / a.median().as_secs_f64().max(1e-9),
                    b.allocs() as f64 / (a.allocs() as f64).max(1.0)
                )
            }
        };
        println!(
            "| ratio {}/{} | {:.0}x | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            last.pods,
            first.pods,
            last.routes as f64 / first.routes.max(1) as f64,
            ratio(&first.engine, &last.engine),
            ratio(&first.gobgp, &last.gobgp),
            ratio(&first.frr, &last.frr),
            ratio(&first.bird, &last.bird),
            ratio(&first.bird_whole, &last.bird_whole),
            ratio(&first.in_force, &last.in_force),
            ratio(&first.manifests, &last.manifests),
            ratio(&first.manifests_before, &last.manifests_before),
            ratio(&first.full, &last.full)
        );
    }
    Ok(())
}
