//! `bgpgen-bench`: the benchmark tools of BENCHMARKS.md, not part of the `bgpgen` binary.
//!
//!     bgpgen-bench synth --out DIR [--pods N ...]          a seeded synthetic cluster as manifests
//!     bgpgen-bench parse -f PATH [--syntax-only [--scanner S] | --tree]  bgpgen's parse, or the floors
//!     bgpgen-bench memory -f PATH [--options FILE]         heap held by the snapshot (and engine)
//!     bgpgen-bench change [--sizes 1000,10000,100000]     bgpgen's own share of one change

mod change;

use std::path::PathBuf;
use std::process::ExitCode;

use bgpgen_bench::floor::{self, Floor};
use bgpgen_bench::synth;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "bgpgen-bench", version, about = "bgpgen's benchmark tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a synthetic Kube-OVN cluster (seeded, reproducible) as manifests.
    Synth(SynthArgs),
    /// Parse manifests and print what they hold, nothing else: the floor `compile` is compared to.
    Parse(ParseArgs),
    /// The heap a snapshot of the manifests holds (per pod when only pods are given), and with
    /// --options the incremental engine built on it.
    Memory(MemoryArgs),
    /// bgpgen's own share of one object change per backend, at several sizes side by side.
    Change(ChangeCmd),
}

#[derive(Args)]
struct ChangeCmd {
    /// Cluster sizes (pods; the rest scaled as in benches/pipeline.rs), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    sizes: Vec<usize>,
    /// Changes per size (alternately un-annotating and re-annotating an announced pod).
    #[arg(long, default_value_t = 100)]
    changes: usize,
    /// How many of the changes also time the whole compile + render (the model before the engine).
    #[arg(long, default_value_t = 5)]
    full_reps: usize,
}

#[derive(Args)]
struct MemoryArgs {
    /// Manifest file or directory, as for `bgpgen compile`.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    files: Vec<PathBuf>,
    /// Speaker options (YAML, as `bgpgen --options`): also build the engine and measure it.
    #[arg(long, value_name = "FILE")]
    options: Option<PathBuf>,
}

#[derive(Args)]
struct SynthArgs {
    /// Directory for the manifests (one List per kind) and speaker-options.yaml.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "json")]
    format: SynthFormat,
    #[arg(long, default_value_t = 1_000)]
    nodes: usize,
    #[arg(long, default_value_t = 100_000)]
    pods: usize,
    #[arg(long, default_value_t = 10_000)]
    services: usize,
    #[arg(long, default_value_t = 1_000)]
    subnets: usize,
    #[arg(long, default_value_t = 1_000)]
    eips: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// IPv4 only (default: dual-stack).
    #[arg(long)]
    single_stack: bool,
    /// Share of pods annotated ovn.kubernetes.io/bgp.
    #[arg(long, default_value_t = 0.2)]
    announced: f64,
    /// Share of the annotated pods with policy local.
    #[arg(long, default_value_t = 0.15)]
    local_share: f64,
}

#[derive(Clone, Copy, ValueEnum)]
enum SynthFormat {
    Json,
    Yaml,
}

#[derive(Args)]
struct ParseArgs {
    /// Manifest file or directory, as for `bgpgen compile`.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    files: Vec<PathBuf>,
    /// Only check the syntax (every document read and thrown away): the YAML/JSON library's floor.
    #[arg(long)]
    syntax_only: bool,
    /// Only build each document as a generic tree (serde_json::Value) and drop it.
    #[arg(long, conflicts_with = "syntax_only")]
    tree: bool,
    /// With --syntax-only: the JSON scanner (serde_json, or the SIMD readers sonic-rs and
    /// simd-json, measured against it).
    #[arg(
        long,
        value_enum,
        default_value = "serde-json",
        requires = "syntax_only"
    )]
    scanner: Scanner,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Scanner {
    SerdeJson,
    SonicRs,
    SimdJson,
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Synth(args) => run_synth(args),
        Command::Parse(args) => run_parse(args),
        Command::Memory(args) => {
            count_allocations();
            run_memory(args)
        }
        Command::Change(args) => {
            count_allocations();
            change::run(change::ChangeArgs {
                sizes: args.sizes,
                changes: args.changes,
                full_reps: args.full_reps,
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run_synth(args: SynthArgs) -> Result<(), String> {
    let spec = synth::Spec {
        nodes: args.nodes,
        pods: args.pods,
        services: args.services,
        subnets: args.subnets,
        eips: args.eips,
        seed: args.seed,
        dual_stack: !args.single_stack,
        announced: args.announced,
        local_share: args.local_share,
    };
    let format = match args.format {
        SynthFormat::Json => synth::Format::Json,
        SynthFormat::Yaml => synth::Format::Yaml,
    };
    let cluster = synth::generate(&spec).map_err(|e| e.to_string())?;
    let dir = args.out.join("cluster");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for (name, text) in cluster.files(format) {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    let options = args.out.join("speaker-options.yaml");
    std::fs::write(&options, synth::speaker_options(&spec))
        .map_err(|e| format!("{}: {e}", options.display()))?;
    for path in written.iter().chain([&options]) {
        println!("{}", path.display());
    }
    Ok(())
}

fn run_parse(args: ParseArgs) -> Result<(), String> {
    let floor = match (args.syntax_only, args.tree) {
        (true, _) => Some(match args.scanner {
            Scanner::SerdeJson => Floor::Syntax,
            Scanner::SonicRs => Floor::SonicSyntax,
            Scanner::SimdJson => Floor::SimdJsonSyntax,
        }),
        (_, true) => Some(Floor::Tree),
        _ => None,
    };
    if let Some(floor) = floor {
        let documents = floor::check(&args.files, floor).map_err(|e| e.to_string())?;
        println!("{documents} documents");
        return Ok(());
    }
    let snapshot = bgpgen::source::manifests::load(&args.files).map_err(|e| e.to_string())?;
    println!(
        "{} nodes, {} pods, {} services, {} subnets, {} EIPs, {} NAT gateways",
        snapshot.nodes.len(),
        snapshot.pods.len(),
        snapshot.services.len(),
        snapshot.subnets.len(),
        snapshot.eips.len(),
        snapshot.gateways.len()
    );
    Ok(())
}

/// Counts the heap in use: bytes requested, allocations, and what glibc's malloc takes for them
/// (a chunk of at least 32 bytes, 8 of header, in 16-byte steps).
struct Counting;

static LIVE_BYTES: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);
static LIVE_CHUNKS: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);
static LIVE_ALLOCS: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);
static TOTAL_ALLOCS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Counting is on for `memory` and `change` only: shared counters updated from two threads
/// slowed `parse` (the scanner and the parser allocate concurrently) by a third.
static COUNTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn count_allocations() {
    COUNTING.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Allocations made since start (every `alloc`, freed or not).
fn total_allocs() -> u64 {
    TOTAL_ALLOCS.load(std::sync::atomic::Ordering::Relaxed)
}

fn chunk(size: usize) -> isize {
    ((size + 8 + 15) & !15).max(32) as isize
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are updated.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        use std::sync::atomic::Ordering::Relaxed;
        if COUNTING.load(Relaxed) {
            LIVE_BYTES.fetch_add(layout.size() as isize, Relaxed);
            LIVE_CHUNKS.fetch_add(chunk(layout.size()), Relaxed);
            LIVE_ALLOCS.fetch_add(1, Relaxed);
            TOTAL_ALLOCS.fetch_add(1, Relaxed);
        }
        // SAFETY: the caller's layout is passed on as it is.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        use std::sync::atomic::Ordering::Relaxed;
        if COUNTING.load(Relaxed) {
            LIVE_BYTES.fetch_sub(layout.size() as isize, Relaxed);
            LIVE_CHUNKS.fetch_sub(chunk(layout.size()), Relaxed);
            LIVE_ALLOCS.fetch_sub(1, Relaxed);
        }
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// (bytes requested, malloc chunks in bytes, allocations) live now.
fn live() -> (isize, isize, isize) {
    use std::sync::atomic::Ordering::Relaxed;
    (
        LIVE_BYTES.load(Relaxed),
        LIVE_CHUNKS.load(Relaxed),
        LIVE_ALLOCS.load(Relaxed),
    )
}

fn run_memory(args: MemoryArgs) -> Result<(), String> {
    let print = |what: &str, before: (isize, isize, isize), n: usize| {
        let now = live();
        let (bytes, chunks, allocs) = (now.0 - before.0, now.1 - before.1, now.2 - before.2);
        let per = |v: isize| v as f64 / n.max(1) as f64;
        println!(
            "{what}: {:.1} MB requested, {:.1} MB in malloc chunks, {allocs} allocations; per pod: {:.0} B requested, {:.0} B in chunks, {:.1} allocations",
            bytes as f64 / 1e6,
            chunks as f64 / 1e6,
            per(bytes),
            per(chunks),
            per(allocs)
        );
    };
    let before = live();
    let snapshot = bgpgen::source::manifests::load(&args.files).map_err(|e| e.to_string())?;
    let pods = snapshot.pods.len();
    println!(
        "{} nodes, {pods} pods, {} services, {} subnets, {} EIPs",
        snapshot.nodes.len(),
        snapshot.services.len(),
        snapshot.subnets.len(),
        snapshot.eips.len()
    );
    print("snapshot", before, pods);
    let Some(options) = args.options else {
        return Ok(());
    };
    let speaker = bgpgen::front::layered(&bgpgen::options::SpeakerArgs::default(), Some(&options))
        .map_err(|e| e.to_string())?;
    let resolved = bgpgen::front::resolved(&speaker, &bgpgen::options::Env::default(), &snapshot)
        .map_err(|e| e.to_string())?;
    let engine = bgpgen::engine::Engine::new(snapshot, resolved.options, resolved.diagnostics);
    println!("{} routes", engine.route_count());
    print("snapshot + engine", before, pods);
    // What the sidecar holds besides: the intent in force (`/intent`), materialized.
    let intent = engine.intent();
    print("snapshot + engine + intent in force", before, pods);
    drop(intent);
    drop(engine);
    Ok(())
}
