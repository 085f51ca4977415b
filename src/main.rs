//! The `bgpgen` command line. Errors get context here and map to exit codes:
//! 0 success, 1 difference found, 2 invalid input or options, 3 daemon rejected or unreachable.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use bgpgen::compile::compile;
use bgpgen::diagnostic::Diagnostic;
use bgpgen::explain::{explain, parse_query};
use bgpgen::intent::Intent;
use bgpgen::options::{Env, SpeakerArgs, SpeakerOptions, resolve};
use bgpgen::snapshot::Snapshot;
use bgpgen::source::manifests;

const EXIT_INVALID: u8 = 2;

#[derive(Parser)]
#[command(
    name = "bgpgen",
    version,
    about = "Compile Kube-OVN cluster state into BGP configuration for GoBGP, FRR and BIRD",
    long_about = "bgpgen reads Kubernetes objects (Pods, Services, Kube-OVN Subnets, IptablesEIPs and \
VpcNatGateways), applies Kube-OVN's BGP announcement rules (annotation ovn.kubernetes.io/bgp: \
true, yes, cluster, local) and prints one canonical intent: which prefixes this speaker announces \
to which neighbors, and why. It accepts kube-ovn-speaker's flags unchanged.",
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the intent: neighbors, session options and announced routes with their sources.
    #[command(after_help = "EXAMPLES:
  bgpgen compile -f examples/ --options examples/speaker-options.yaml
  kubectl get pods,svc,subnets -A -o yaml | bgpgen compile -f - \\
      --neighbor-address=10.32.32.254 --neighbor-as=65030 --cluster-as=65000 --node-name=node-1
  bgpgen compile -f cluster/ --nat-gw-mode --gateway-name=vpc-natgw -o json")]
    Compile(CompileArgs),
    /// Say why a prefix, an IP or an object is (or is not) announced by this speaker.
    #[command(after_help = "EXAMPLES:
  bgpgen explain -f examples/ --options examples/speaker-options.yaml 10.16.0.12
  bgpgen explain -f examples/ --options examples/speaker-options.yaml 10.16.0.0/16
  bgpgen explain -f examples/ --options examples/speaker-options.yaml pod/default/web-0
  bgpgen explain -f examples/ --options examples/speaker-options.yaml subnet/ovn-default")]
    Explain(ExplainArgs),
}

#[derive(Args)]
struct InputArgs {
    /// Manifest file or directory (recursive: .yaml, .yml, .json); `-` reads stdin. Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    files: Vec<PathBuf>,
    /// YAML file of speaker options, keyed by flag name (`cluster-as: 65000`); flags win.
    #[arg(long, value_name = "FILE")]
    options: Option<PathBuf>,
    #[command(flatten)]
    speaker: SpeakerArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Yaml,
    Json,
}

#[derive(Args)]
struct CompileArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
    output: Format,
    /// Print the BGP password instead of <redacted>.
    #[arg(long)]
    show_secrets: bool,
}

#[derive(Args)]
struct ExplainArgs {
    #[command(flatten)]
    input: InputArgs,
    /// A prefix (10.16.0.0/16), an IP (10.16.0.5) or KIND/[NAMESPACE/]NAME (pod/default/web-0).
    #[arg(value_name = "QUERY")]
    query: String,
}

/// An error for the user, with the exit code it maps to.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn invalid(message: impl ToString) -> Failure {
        Failure {
            code: EXIT_INVALID,
            message: message.to_string(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Compile(args) => run_compile(args),
        Command::Explain(args) => run_explain(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// Loads manifests and options and compiles them: the shared front half of every command.
fn load_and_compile(input: &InputArgs) -> Result<(Snapshot, SpeakerOptions, Intent), Failure> {
    let snapshot = manifests::load(&input.files).map_err(Failure::invalid)?;
    let mut args = input.speaker.clone();
    if let Some(path) = &input.options {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::invalid(format!("options file {}: {e}", path.display())))?;
        let from_file = SpeakerArgs::from_options_yaml(&path.display().to_string(), &text)
            .map_err(Failure::invalid)?;
        args = args.or(from_file);
    }
    let resolved = resolve(&args, &Env::from_process(), &snapshot, &|p| {
        std::fs::read_to_string(p)
    })
    .map_err(Failure::invalid)?;
    let intent = compile(&snapshot, &resolved.options, &resolved.diagnostics);
    print_diagnostics(&intent.diagnostics);
    Ok((snapshot, resolved.options, intent))
}

fn print_diagnostics(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        eprintln!("{d}");
    }
}

fn run_compile(args: CompileArgs) -> Result<(), Failure> {
    let (_, _, intent) = load_and_compile(&args.input)?;
    let text = match args.output {
        Format::Yaml => intent.to_yaml(args.show_secrets),
        Format::Json => intent.to_json(args.show_secrets),
    };
    print!("{text}");
    Ok(())
}

fn run_explain(args: ExplainArgs) -> Result<(), Failure> {
    let query = parse_query(&args.query).map_err(Failure::invalid)?;
    let (snapshot, options, intent) = load_and_compile(&args.input)?;
    let report = explain(&snapshot, &options, &intent, &query).map_err(Failure::invalid)?;
    print!("{report}");
    Ok(())
}
