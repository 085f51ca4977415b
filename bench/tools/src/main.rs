//! `bgpgen-bench`: the benchmark tools of BENCHMARKS.md, not part of the `bgpgen` binary.
//!
//!     bgpgen-bench synth --out DIR [--pods N ...]          a seeded synthetic cluster as manifests
//!     bgpgen-bench parse -f PATH [--syntax-only | --tree]  bgpgen's parse, or the floors below it

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
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Synth(args) => run_synth(args),
        Command::Parse(args) => run_parse(args),
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
        (true, _) => Some(Floor::Syntax),
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
