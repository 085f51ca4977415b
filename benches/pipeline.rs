//! Criterion benchmarks of the pure stages (BENCHMARKS.md): parse (manifest text -> snapshot),
//! compile (snapshot -> intent) and render (intent -> text, per backend), on synthetic clusters of
//! 1k, 10k and 100k pods (services, subnets, nodes and EIPs scaled with them as in docs/design.md section
//! 8: 100k pods, 10k services, 1k subnets).
//!
//!     cargo bench --bench pipeline                  # everything (about 10 minutes)
//!     cargo bench --bench pipeline -- 'compile/'    # one stage
//!     BGPGEN_BENCH_MAX_PODS=1000 cargo bench --bench pipeline -- --test   # smoke: each once
//!
//! No file or process I/O happens inside a measured closure: the manifests are generated in
//! memory by `bgpgen::synth` (seed 1) before measuring.

use std::hint::black_box;
use std::time::Duration;

use bgpgen::compile::compile;
use bgpgen::options::{Env, SpeakerArgs, SpeakerOptions, resolve};
use bgpgen::render::{Backend, Templates, render};
use bgpgen::snapshot::Snapshot;
use bgpgen::source::manifests::load_texts;
use bgpgen_bench::synth::{self, Format, Spec};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// A cluster with `pods` pods and the rest scaled as in docs/design.md section 8.
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

/// The sizes measured; `BGPGEN_BENCH_MAX_PODS=1000` limits them (smoke runs: the clusters are
/// generated before Criterion's name filter applies).
fn sizes() -> Vec<(usize, &'static str)> {
    let max = std::env::var("BGPGEN_BENCH_MAX_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    [(1_000, "1k"), (10_000, "10k"), (100_000, "100k")]
        .into_iter()
        .filter(|(n, _)| *n <= max)
        .collect()
}

fn texts(spec: &Spec, format: Format) -> Vec<(String, String)> {
    synth::generate(spec)
        .expect("the benchmark specs are valid")
        .files(format)
}

fn load(texts: &[(String, String)]) -> Snapshot {
    load_texts(texts.iter().map(|(n, t)| (n.as_str(), t.as_str())))
        .expect("synthetic manifests parse")
}

fn options(spec: &Spec, snapshot: &Snapshot) -> SpeakerOptions {
    let args =
        SpeakerArgs::from_options_yaml("speaker-options.yaml", &synth::speaker_options(spec))
            .expect("synthetic options parse");
    resolve(&args, &Env::default(), snapshot, &|_| {
        Err(std::io::Error::other("no files in benchmarks"))
    })
    .expect("synthetic options are valid")
    .options
}

fn configure<'a>(
    c: &'a mut Criterion,
    group: &str,
    size: usize,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(group);
    if size >= 100_000 {
        // Ten samples of a second or more each: enough for a stable median on a 2-core machine.
        g.sample_size(10).measurement_time(Duration::from_secs(20));
    } else if size >= 10_000 {
        g.sample_size(20).measurement_time(Duration::from_secs(10));
    }
    g
}

fn parse(c: &mut Criterion) {
    for (size, label) in sizes() {
        let spec = spec(size);
        // YAML at 100k takes ~8 s per run: measured by bench/run instead (once, with RSS).
        let formats: &[Format] = if size >= 100_000 {
            &[Format::Json]
        } else {
            &[Format::Json, Format::Yaml]
        };
        for &format in formats {
            let texts = texts(&spec, format);
            let bytes: usize = texts.iter().map(|(_, t)| t.len()).sum();
            let mut g = configure(c, "parse", size);
            g.throughput(Throughput::Bytes(bytes as u64));
            g.bench_with_input(
                BenchmarkId::new(format.extension(), label),
                &texts,
                |b, texts| b.iter(|| black_box(load(texts))),
            );
            g.finish();
        }
    }
}

fn compile_stage(c: &mut Criterion) {
    for (size, label) in sizes() {
        let spec = spec(size);
        let snapshot = load(&texts(&spec, Format::Json));
        let options = options(&spec, &snapshot);
        let mut g = configure(c, "compile", size);
        g.throughput(Throughput::Elements(size as u64));
        g.bench_function(label, |b| {
            b.iter(|| black_box(compile(&snapshot, &options, &[])))
        });
        g.finish();
    }
}

fn render_stage(c: &mut Criterion) {
    let templates = Templates::load(None).expect("built-in templates load");
    for (size, label) in sizes() {
        let spec = spec(size);
        let snapshot = load(&texts(&spec, Format::Json));
        let intent = compile(&snapshot, &options(&spec, &snapshot), &[]);
        let mut g = configure(c, "render", size);
        g.throughput(Throughput::Elements(intent.routes.len() as u64));
        for backend in Backend::ALL {
            g.bench_function(BenchmarkId::new(backend.to_string(), label), |b| {
                b.iter(|| black_box(render(&intent, backend, &templates, true).expect("renders")))
            });
        }
        g.finish();
    }
}

criterion_group!(benches, parse, compile_stage, render_stage);
criterion_main!(benches);
