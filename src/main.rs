//! The `bgpgen` command line. Errors get context here and map to exit codes:
//! 0 success, 1 difference found, 2 invalid input or options, 3 daemon rejected or unreachable.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod cli;

use bgpgen::intent::Intent;
use bgpgen::options::{Env, SpeakerArgs, SpeakerOptions};
use bgpgen::render::{Backend, Rendered, Templates, render};
use bgpgen::snapshot::Snapshot;
use bgpgen::source::manifests;
use bgpgen::{daemon, diff, output};
use cli::output::{Format, format_parser, print_diagnostics, summary};

const EXIT_DIFFERENT: u8 = 1;
const EXIT_INVALID: u8 = 2;
const EXIT_DAEMON: u8 = 3;

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
    #[command(flatten)]
    log: cli::logging::LogArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Print the intent: neighbors, session options and announced routes with their sources.
    #[command(after_help = "EXAMPLES:
  bgpgen compile -f examples/cluster --options examples/speaker-options.yaml
  bgpgen compile -f examples/cluster \\
      --options examples/nat-gateway-options.yaml -o json
  kubectl get pods,services,subnets -A -o yaml | bgpgen compile -f - \\
      --neighbor-address=10.32.32.254 --neighbor-as=65030 \\
      --cluster-as=65000 --node-name=node-1 --router-id=10.0.0.11")]
    Compile(CompileArgs),
    /// Say why a prefix, an IP or an object is (or is not) announced by this speaker. For a
    /// prefix: the route itself, the routes inside it and the prefixes covering it. Exit 0 when
    /// announced (or inside an announced prefix), 1 when not or only partly, 2 when invalid.
    #[command(after_help = "EXAMPLES:
  bgpgen explain -f examples/cluster \\
      --options examples/speaker-options.yaml 10.16.0.5
  bgpgen explain -f examples/cluster \\
      --options examples/speaker-options.yaml 10.16.0.0/24
  bgpgen explain -f examples/cluster \\
      --options examples/speaker-options.yaml pod/edge/edge-0 -o json
  bgpgen explain --from-sidecar 127.0.0.1:10661 subnet/ovn-default")]
    Explain(ExplainArgs),
    /// Render the daemon configuration: print it (--dry-run), write it (--out DIR), or check that
    /// DIR is up to date (--out DIR --check, exit 1 and a diff when stale).
    #[command(after_help = "EXAMPLES:
  bgpgen render -f examples/cluster --options examples/speaker-options.yaml \\
      --backend frr --dry-run
  bgpgen render -f examples/cluster --options examples/speaker-options.yaml \\
      --backend bird --out rendered/ --validate
  bgpgen render -f examples/cluster --options examples/speaker-options.yaml \\
      --backend bird --out rendered/ --check    # CI: exit 1 and a diff if stale")]
    Render(RenderArgs),
    /// Compare two inputs, each with its own options: route, setting and diagnostic changes, the
    /// disruption forecast for the daemon, and the unified diff of the rendered files. Exit 1
    /// when they differ.
    #[command(after_help = "EXAMPLES:
  bgpgen diff --backend frr --from examples/cluster \\
      --to examples/cluster --to examples/change/pods.yaml \\
      --options examples/speaker-options.yaml \\
      --to-options examples/change/speaker-options.yaml
  bgpgen diff --backend gobgp --from examples/cluster \\
      --to examples/cluster --to examples/change/pods.yaml \\
      --options examples/speaker-options.yaml -o json")]
    Diff(DiffArgs),
    /// Run the pipeline once against a running daemon: compile, render, validate, write, reload,
    /// verify, roll back on refusal. Exit 3 when the daemon refuses or cannot be reached.
    #[command(after_help = "EXAMPLES:
  bgpgen apply --backend bird -f examples/cluster \\
      --options examples/speaker-options.yaml \\
      --config-file /etc/bird/bird.conf --bird-socket /run/bird/bird.ctl")]
    Apply(ApplyArgs),
    /// The sidecar: watch the manifests or the cluster, keep the daemon announcing exactly the
    /// intent, serve /healthz, /readyz, /metrics and /intent. On SIGTERM the daemon keeps its
    /// routes (attach mode, unless --withdraw-on-exit); with --spawn bgpgen stops it, keeping
    /// the peers' routes under graceful restart and withdrawing them first without.
    #[command(after_help = "EXAMPLES:
  bgpgen run --backend frr --manifests /srv/cluster --options speaker.yaml \\
      --config-file /etc/frr/frr.conf --frr-vty-socket /var/run/frr
  bgpgen run --backend gobgp --manifests /srv/cluster --options speaker.yaml \\
      --config-file /etc/gobgp/gobgpd.toml --gobgpd-pid-file /run/gobgpd.pid \\
      --gobgp-api unix:///run/gobgp/api.sock
  bgpgen run --backend bird --spawn --kubeconfig ~/.kube/config \\
      --options speaker.yaml --config-file /run/bgpgen/bird.conf \\
      --bird-socket /run/bgpgen/bird.ctl    # one container")]
    #[command(mut_arg("kubeconfig", |a| a
        .hide(false)
        .help_heading("Sidecar options")
        .help("Kubeconfig of the cluster to watch (without --manifests) [default: the in-cluster configuration]")))]
    Run(RunArgs),
    /// Print the sessions of a running sidecar (peer, AS, family, state, since, advertised and
    /// expected prefixes, last error), the intent hash in force and the last apply, from its
    /// /status endpoint. Exit 0 when every neighbor is established, 1 when one is not, 3 when
    /// the sidecar cannot be reached.
    #[command(after_help = "EXAMPLES:
  kubectl -n kube-system exec ds/bgpgen-speaker-bird -c bgpgen -- bgpgen status
  bgpgen status --metrics-addr 127.0.0.1:10661 -o json")]
    Status(StatusArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    #[command(after_help = "EXAMPLES:
  bgpgen completion bash > /etc/bash_completion.d/bgpgen
  bgpgen completion zsh > \"${fpath[1]}/_bgpgen\"
  bgpgen completion fish > ~/.config/fish/completions/bgpgen.fish")]
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (bgpgen.1, bgpgen-SUBCOMMAND.1) into DIR, for packaging.
    #[command(hide = true)]
    Man {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Args, Clone)]
#[command(next_help_heading = "Daemon options")]
struct DaemonArgs {
    /// Where the rendered configuration lives (the file the daemon was started with); other
    /// rendered files (routes.txt) go beside it [default: /etc/gobgp/gobgpd.toml,
    /// /etc/bird/bird.conf or /etc/frr/frr.conf].
    #[arg(long, value_name = "PATH")]
    config_file: Option<PathBuf>,
    /// gobgpd's gRPC API: HOST:PORT or unix:///PATH [default: 127.0.0.1:50051; with --spawn a
    /// Unix socket beside --config-file, gobgpd.sock, which other processes of the node cannot
    /// reach].
    #[arg(long, value_name = "HOST:PORT|unix:///PATH")]
    gobgp_api: Option<String>,
    /// gobgpd's pid file, to send SIGHUP when the session configuration changes.
    #[arg(long, value_name = "PATH")]
    gobgpd_pid_file: Option<PathBuf>,
    /// BIRD's control socket.
    #[arg(long, value_name = "PATH", default_value = "/run/bird/bird.ctl")]
    bird_socket: PathBuf,
    /// Directory of FRR's vty sockets.
    #[arg(long, value_name = "DIR", default_value = "/var/run/frr")]
    frr_vty_socket: PathBuf,
}

impl DaemonArgs {
    fn options(&self, backend: Backend, spawn: bool) -> bgpgen::daemon::driver::DaemonOptions {
        let default = match backend {
            Backend::Gobgp => "/etc/gobgp/gobgpd.toml",
            Backend::Bird => "/etc/bird/bird.conf",
            Backend::Frr => "/etc/frr/frr.conf",
        };
        let config_file = self
            .config_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(default));
        let gobgp_api = match (&self.gobgp_api, spawn) {
            (Some(api), _) => api.clone(),
            (None, true) => bgpgen::daemon::supervisor::gobgpd_api_socket(&config_file),
            (None, false) => "127.0.0.1:50051".to_string(),
        };
        bgpgen::daemon::driver::DaemonOptions {
            config_file,
            gobgp_api,
            gobgpd_pid_file: self.gobgpd_pid_file.clone(),
            bird_socket: self.bird_socket.clone(),
            frr_vty_socket: self.frr_vty_socket.clone(),
        }
    }
}

/// The daemon a pipeline drives: shared by `apply` and `run`.
#[derive(Args)]
#[command(next_help_heading = "Daemon options")]
struct DriveArgs {
    /// The routing daemon.
    #[arg(long, value_name = "gobgp|frr|bird", value_parser = parse_backend)]
    backend: Backend,
    /// Directory of templates overriding the built-in ones (read again before every apply).
    #[arg(long, value_name = "DIR")]
    templates: Option<PathBuf>,
    #[command(flatten)]
    daemon: DaemonArgs,
}

impl DriveArgs {
    fn agent_config(
        &self,
        args: &SpeakerArgs,
        options_file: Option<PathBuf>,
        check_interval: std::time::Duration,
        spawn: bool,
    ) -> bgpgen::agent::AgentConfig {
        bgpgen::agent::AgentConfig {
            backend: self.backend,
            args: args.clone(),
            options_file,
            env: Env::from_process(),
            templates: self.templates.clone(),
            daemon: self.daemon.options(self.backend, spawn),
            check_interval,
            events: None,
            spawn,
            withdraw_on_exit: false,
            restart_after_failed_checks: 3,
        }
    }
}

#[derive(Args)]
struct ApplyArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    drive: DriveArgs,
}

#[derive(Args)]
struct RunArgs {
    /// Directory of manifests to watch (GitOps pull mode, tests) instead of the cluster.
    #[arg(long, value_name = "DIR")]
    manifests: Option<PathBuf>,
    /// YAML file of speaker options, keyed by flag name; flags win.
    #[arg(long, value_name = "FILE")]
    options: Option<PathBuf>,
    #[command(flatten)]
    speaker: SpeakerArgs,
    #[command(flatten)]
    drive: DriveArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// At most one apply per DURATION (Go syntax: 100ms, 1s): a change after a quiet spell is
    /// applied at once; changes arriving within DURATION of the last apply are coalesced into one.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "100ms",
        help_heading = "Sidecar options"
    )]
    debounce: String,
    /// How often the daemon is checked (reachability; a restarted gobgpd gets its paths back).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "2s",
        help_heading = "Sidecar options"
    )]
    check_interval: String,
    /// Start the daemon as a child process (with the flags bgpgen knows work) and own its
    /// lifecycle: it dies with bgpgen, is started again when it exits or stops answering, and
    /// on SIGTERM is stopped the way graceful restart needs (peers keep the routes) or, with
    /// graceful restart off, after its routes were withdrawn. For one-container deployments.
    #[arg(long, help_heading = "Sidecar options")]
    spawn: bool,
    /// Withdraw every route when bgpgen exits. Without it, bgpgen's exit (SIGTERM, crash,
    /// upgrade) changes nothing the daemon announces in attach mode; with --spawn and graceful
    /// restart off the routes are withdrawn anyway (the daemon stops with bgpgen).
    #[arg(long, help_heading = "Sidecar options")]
    withdraw_on_exit: bool,
    /// With --spawn: restart a daemon that is alive but failed this many consecutive checks
    /// (control socket gone, hung), one every --check-interval.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 3,
        value_parser = clap::value_parser!(u32).range(1..=1000),
        help_heading = "Sidecar options"
    )]
    restart_after_failed_checks: u32,
    /// Cluster source: restart a watch stream that delivered neither an event nor a bookmark
    /// for this long (a half-open connection after a network fault). The API server is also
    /// asked to end each watch a little before, so a healthy quiet watch never trips it.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1m",
        help_heading = "Sidecar options"
    )]
    watch_timeout: String,
    /// Address of the /healthz, /readyz, /metrics and /intent endpoint.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:10661",
        help_heading = "Sidecar options"
    )]
    metrics_addr: std::net::SocketAddr,
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
    #[command(flatten)]
    limits: LimitArgs,
}

/// How much input is read (docs/design.md section 9, "input is bounded").
#[derive(Args, Clone, Copy)]
struct LimitArgs {
    /// Largest manifest file read, in bytes; a larger one is refused before it is read. JSON
    /// above 16 MiB is streamed and may be this large; YAML (and smaller JSON) is parsed from
    /// memory and is held to 3/8 of it (192 MiB at the default).
    #[arg(long, value_name = "BYTES", default_value_t = bgpgen::source::input::DEFAULT_MAX_INPUT_BYTES)]
    max_input_bytes: u64,
}

impl LimitArgs {
    fn limits(self) -> bgpgen::source::input::Limits {
        bgpgen::source::input::Limits {
            max_bytes: self.max_input_bytes,
        }
    }
}

#[derive(Args)]
struct CompileArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Output format: yaml or json (the same document).
    #[arg(short = 'o', long = "output", value_name = "FORMAT", default_value = "yaml",
          value_parser = format_parser(&[Format::Yaml, Format::Json], "the intent document"))]
    output: Format,
    /// Print the BGP password instead of <redacted>.
    #[arg(long)]
    show_secrets: bool,
}

#[derive(Args)]
struct StatusArgs {
    /// The sidecar's endpoint, as given to `bgpgen run --metrics-addr` (HOST:PORT).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:10661")]
    metrics_addr: String,
    /// Output format: table, or json/yaml (the `/status` document, README "bgpgen status").
    #[arg(short = 'o', long = "output", value_name = "FORMAT", default_value = "table",
          value_parser = format_parser(&[Format::Table, Format::Json, Format::Yaml], "the sessions"))]
    output: Format,
}

#[derive(Args)]
struct ExplainArgs {
    #[command(flatten)]
    input: InputArgs,
    /// A prefix (10.16.0.0/16), an IP (10.16.0.5) or KIND/[NAMESPACE/]NAME (pod/default/sample).
    #[arg(value_name = "QUERY")]
    query: String,
    /// Output format: text, or json/yaml (docs/json-output.md describes the document).
    #[arg(short = 'o', long = "output", value_name = "FORMAT", default_value = "text",
          value_parser = format_parser(&[Format::Text, Format::Json, Format::Yaml], "an explanation"))]
    output: Format,
    /// Ask a running sidecar instead of reading manifests: its endpoint (--metrics-addr). The
    /// answer comes from its intent in force: routes, their objects, its diagnostics.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["files", "options"])]
    from_sidecar: Option<String>,
}

#[derive(Args)]
struct BackendArgs {
    /// The routing daemon to render for.
    #[arg(long, value_name = "gobgp|frr|bird", value_parser = parse_backend)]
    backend: Backend,
    /// Directory of templates overriding the built-in ones (gobgpd.toml.j2, routes.txt.j2,
    /// frr.conf.j2, bird.conf.j2).
    #[arg(long, value_name = "DIR")]
    templates: Option<PathBuf>,
    /// Print the BGP password instead of <redacted>.
    #[arg(long)]
    show_secrets: bool,
}

fn parse_backend(s: &str) -> Result<Backend, String> {
    s.parse()
}

#[derive(Args)]
#[group(id = "mode", required = true, multiple = false, args = ["dry_run", "out"])]
struct RenderArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    backend: BackendArgs,
    /// Print the rendered file(s) on stdout and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write the rendered files into DIR (atomically; 0600 when they hold the password).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// With --out: write nothing, exit 1 and print a diff if DIR is not up to date.
    #[arg(long, requires = "out")]
    check: bool,
    /// Also run the daemon's own checker on the result (when the daemon is installed).
    #[arg(long)]
    validate: bool,
}

#[derive(Args)]
struct DiffArgs {
    /// The current manifests (file, directory or -; repeatable).
    #[arg(long, value_name = "PATH", required = true)]
    from: Vec<PathBuf>,
    /// The proposed manifests (repeatable).
    #[arg(long, value_name = "PATH", required = true)]
    to: Vec<PathBuf>,
    /// YAML file of speaker options for both sides, keyed by flag name; flags win.
    #[arg(long, value_name = "FILE")]
    options: Option<PathBuf>,
    /// Speaker options of the --from side (instead of --options).
    #[arg(long, value_name = "FILE")]
    from_options: Option<PathBuf>,
    /// Speaker options of the --to side (instead of --options): preview an options change.
    #[arg(long, value_name = "FILE")]
    to_options: Option<PathBuf>,
    /// Output format: text, or json/yaml (docs/json-output.md describes the document).
    #[arg(short = 'o', long = "output", value_name = "FORMAT", default_value = "text",
          value_parser = format_parser(&[Format::Text, Format::Json, Format::Yaml], "a diff"))]
    output: Format,
    #[command(flatten)]
    speaker: SpeakerArgs,
    #[command(flatten)]
    backend: BackendArgs,
    #[command(flatten)]
    limits: LimitArgs,
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
    cli::output::set_quiet(cli.log.quiet);
    let log = cli.log;
    let result = match cli.command {
        Command::Compile(args) => run_compile(args),
        Command::Explain(args) => cli::explain_cmd::run(args),
        Command::Render(args) => run_render(args),
        Command::Diff(args) => cli::diff_cmd::run(args),
        Command::Apply(args) => run_apply(args, &log),
        Command::Run(args) => run_sidecar(args, &log),
        Command::Status(args) => cli::status_cmd::run(args),
        Command::Completion { shell } => cli::completion::completion(shell),
        Command::Man { dir } => cli::completion::man(&dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            // Each line escaped: a message can quote a file name or an object from the input.
            for (i, line) in f.message.lines().enumerate() {
                let line = bgpgen::text::escape(line);
                if i == 0 {
                    eprintln!("error: {line}");
                } else {
                    eprintln!("{line}");
                }
            }
            ExitCode::from(f.code)
        }
    }
}

/// Loads manifests and options and compiles them: the shared front half of every command.
/// The intent's diagnostics are printed on stderr.
fn load_and_compile(input: &InputArgs) -> Result<(Snapshot, SpeakerOptions, Intent), Failure> {
    let compiled = compile_from(
        &input.files,
        input.options.as_deref(),
        &input.speaker,
        input.limits,
    )?;
    print_diagnostics(&compiled.2.diagnostics);
    Ok(compiled)
}

fn compile_from(
    files: &[PathBuf],
    options: Option<&std::path::Path>,
    speaker: &SpeakerArgs,
    limits: LimitArgs,
) -> Result<(Snapshot, SpeakerOptions, Intent), Failure> {
    let snapshot = manifests::load_with(files, limits.limits()).map_err(Failure::invalid)?;
    let (options, intent) =
        bgpgen::front::compiled(&snapshot, speaker, options, &Env::from_process())
            .map_err(Failure::invalid)?;
    Ok((snapshot, options, intent))
}

/// A path for a message (it can hold any byte, newlines included).
fn escape_path(path: &std::path::Path) -> String {
    bgpgen::text::escape(&path.display().to_string()).into_owned()
}

/// Frees the cluster state on a thread of its own: 100,000 records take tens of milliseconds
/// to free, time the command's output need not wait for (the process may exit first).
fn release<T: Send + 'static>(value: T) {
    // If no thread can be started, the closure (and `value` with it) is dropped here.
    let _ = std::thread::Builder::new()
        .name("release".into())
        .spawn(move || drop(value));
}

fn run_compile(args: CompileArgs) -> Result<(), Failure> {
    let (snapshot, _, intent) = load_and_compile(&args.input)?;
    release(snapshot);
    let text = match args.output {
        Format::Json => intent.to_json(args.show_secrets),
        _ => intent.to_yaml(args.show_secrets),
    };
    print!("{text}");
    Ok(())
}

fn render_with(intent: &Intent, b: &BackendArgs, reveal: bool) -> Result<Rendered, Failure> {
    let templates = Templates::load(b.templates.as_deref()).map_err(Failure::invalid)?;
    let rendered = render(intent, b.backend, &templates, reveal).map_err(Failure::invalid)?;
    Ok(rendered)
}

/// Replaces the password in text shown to the user, unless they asked to see it.
fn mask(text: &str, intent: &Intent, show: bool) -> String {
    match &intent.bgp.password {
        Some(p) if !show && !p.expose().is_empty() => text.replace(p.expose(), "<redacted>"),
        _ => text.to_string(),
    }
}

fn run_render(args: RenderArgs) -> Result<(), Failure> {
    let (snapshot, _, intent) = load_and_compile(&args.input)?;
    release(snapshot);
    let real = render_with(&intent, &args.backend, true)?;
    print_diagnostics(&real.notes);
    if args.validate {
        match daemon::validate::validate(&real) {
            Ok(()) => summary(format_args!(
                "{}: accepted by {}",
                file_names(&real),
                checker_name(real.backend)
            )),
            Err(daemon::validate::ValidateError::Missing { program, package }) => {
                if !cli::output::quiet() {
                    eprintln!(
                        "warning: --validate skipped: {program} is not installed (package {package})"
                    );
                }
            }
            Err(e) => {
                return Err(Failure {
                    code: EXIT_DAEMON,
                    message: mask(&e.to_string(), &intent, args.backend.show_secrets),
                });
            }
        }
    }
    if args.dry_run {
        // Without a password (or with --show-secrets) what is shown is what was rendered.
        let shown = if intent.bgp.password.is_none() || args.backend.show_secrets {
            real
        } else {
            render_with(&intent, &args.backend, false)?
        };
        let many = shown.files.len() > 1;
        for f in &shown.files {
            if many {
                println!("# --- {}", f.name);
            }
            print!("{}", f.contents);
        }
        return Ok(());
    }
    let Some(dir) = &args.out else {
        return Err(Failure::invalid(
            "one of --dry-run or --out DIR is required",
        ));
    };
    // Route files a previous render wrote that this one does not (BIRD includes them by a
    // glob): stale, removed by `--out`.
    let leftovers =
        daemon::driver::stale_generated(dir, &real).map_err(|e| Failure::invalid(e.to_string()))?;
    if args.check {
        let mut stale = String::new();
        for (name, path) in &leftovers {
            let current = output::read_own(path)
                .map_err(|e| Failure::invalid(e.to_string()))?
                .unwrap_or_default();
            stale.push_str(&diff::check_text(
                name,
                &current,
                "",
                args.backend.show_secrets,
            ));
        }
        for f in &real.files {
            let path = dir.join(&f.name);
            // A missing file is stale; a link, FIFO or device in its place is refused.
            let current = output::read_own(&path)
                .map_err(|e| Failure::invalid(e.to_string()))?
                .unwrap_or_default();
            if current != f.contents {
                stale.push_str(&diff::check_text(
                    &f.name,
                    &current,
                    &f.contents,
                    args.backend.show_secrets,
                ));
            }
        }
        if stale.is_empty() {
            summary(format_args!(
                "{}: up to date ({})",
                escape_path(dir),
                file_names(&real)
            ));
            return Ok(());
        }
        print!("{}", mask(&stale, &intent, args.backend.show_secrets));
        return Err(Failure {
            code: EXIT_DIFFERENT,
            message: format!("{} is not up to date with the input", dir.display()),
        });
    }
    output::create_dir(dir)
        .map_err(|e| Failure::invalid(format!("cannot create {}: {e}", escape_path(dir))))?;
    if let Some(sub) = daemon::of(real.backend).generated_dir() {
        let sub = dir.join(sub);
        output::own_dir(&sub)
            .map_err(|e| Failure::invalid(format!("cannot create {}: {e}", escape_path(&sub))))?;
    }
    let (mut wrote, mut kept) = (Vec::new(), Vec::new());
    for f in &real.files {
        let path = dir.join(&f.name);
        if output::read_own(&path).ok().flatten().as_deref() == Some(f.contents.as_str()) {
            kept.push(f.name.as_str());
            continue;
        }
        let written = if daemon::driver::is_generated(&real, f) {
            output::write_atomic_unsynced(&path, &f.contents, f.secret)
        } else {
            output::write_atomic(&path, &f.contents, f.secret)
        };
        written
            .map_err(|e| Failure::invalid(format!("cannot write {}: {e}", escape_path(&path))))?;
        wrote.push(f.name.as_str());
    }
    let mut removed = Vec::new();
    for (name, path) in &leftovers {
        output::remove_own(path)
            .map_err(|e| Failure::invalid(format!("cannot remove {}: {e}", escape_path(path))))?;
        removed.push(name.as_str());
    }
    if !removed.is_empty() {
        summary(format_args!(
            "{}: removed stale {}",
            escape_path(dir),
            removed.join(", ")
        ));
    }
    summary(match (wrote.is_empty(), kept.is_empty()) {
        (false, true) => format!("{}: wrote {}", escape_path(dir), wrote.join(", ")),
        (false, false) => format!(
            "{}: wrote {}; {} unchanged",
            escape_path(dir),
            wrote.join(", "),
            kept.join(", ")
        ),
        _ => format!(
            "{}: {} unchanged, nothing written",
            escape_path(dir),
            kept.join(", ")
        ),
    });
    Ok(())
}

/// `gobgpd.toml, routes.txt`.
fn file_names(rendered: &Rendered) -> String {
    rendered
        .files
        .iter()
        .map(|f| f.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The daemon's own checker that `--validate` runs.
fn checker_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Gobgp => "gobgpd -d",
        Backend::Bird => "bird -p",
        Backend::Frr => "vtysh -C and bgpd -C",
    }
}

fn merged_args(
    options: Option<&std::path::Path>,
    speaker: &SpeakerArgs,
) -> Result<SpeakerArgs, Failure> {
    bgpgen::front::layered(speaker, options).map_err(Failure::invalid)
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure {
            code: EXIT_DAEMON,
            message: format!("cannot start the async runtime: {e}"),
        })
}

/// Logging for `run` and `apply`: the level from `--log-level`, `-q`, kube-ovn's `-v N` (on
/// the command line or in the options file) or `RUST_LOG`.
fn init_logging(
    log: &cli::logging::LogArgs,
    options: Option<&std::path::Path>,
    speaker: &SpeakerArgs,
) -> Result<(), Failure> {
    let merged = merged_args(options, speaker)?;
    cli::logging::init(log, merged.ignored.verbosity.as_deref()).map_err(Failure::invalid)
}

fn parse_duration_flag(flag: &str, value: &str) -> Result<std::time::Duration, Failure> {
    bgpgen::duration::parse_go_duration(value)
        .map_err(|e| Failure::invalid(format!("--{flag}: {e}")))
}

fn run_apply(args: ApplyArgs, log: &cli::logging::LogArgs) -> Result<(), Failure> {
    init_logging(log, args.input.options.as_deref(), &args.input.speaker)?;
    let snapshot = manifests::load_with(&args.input.files, args.input.limits.limits())
        .map_err(Failure::invalid)?;
    let config = args.drive.agent_config(
        &args.input.speaker,
        args.input.options.clone(),
        std::time::Duration::from_secs(2),
        false,
    );
    let templates = Templates::load(args.drive.templates.as_deref()).map_err(Failure::invalid)?;
    let mut driver = bgpgen::agent::Driver::new(config.backend, config.daemon.clone());
    let result = runtime()?.block_on(bgpgen::agent::apply_snapshot(
        &config,
        &templates,
        &mut driver,
        &snapshot,
    ));
    match result {
        Ok((intent, outcome)) => {
            print_diagnostics(&intent.diagnostics);
            match outcome {
                bgpgen::daemon::driver::ApplyOutcome::Unchanged => {
                    println!("unchanged ({})", intent.hash)
                }
                bgpgen::daemon::driver::ApplyOutcome::Applied(how) => {
                    println!(
                        "applied {} route(s) with {how} ({})",
                        intent.announced().count(),
                        intent.hash
                    )
                }
            }
            Ok(())
        }
        Err(e) => Err(Failure {
            code: e.exit_code(),
            message: e.to_string(),
        }),
    }
}

fn run_sidecar(args: RunArgs, log: &cli::logging::LogArgs) -> Result<(), Failure> {
    init_logging(log, args.options.as_deref(), &args.speaker)?;
    let debounce = parse_duration_flag("debounce", &args.debounce)?;
    let check_interval = parse_duration_flag("check-interval", &args.check_interval)?;
    if check_interval.is_zero() {
        return Err(Failure::invalid("--check-interval must be more than 0"));
    }
    let watch_timeout = parse_duration_flag("watch-timeout", &args.watch_timeout)?;
    if watch_timeout < bgpgen::source::kube::MIN_WATCH_TIMEOUT {
        return Err(Failure::invalid(format!(
            "--watch-timeout must be at least {:?}",
            bgpgen::source::kube::MIN_WATCH_TIMEOUT
        )));
    }
    // Check the options file now, so that a typo fails at start rather than at the first apply.
    merged_args(args.options.as_deref(), &args.speaker)?;
    let mut config = args.drive.agent_config(
        &args.speaker,
        args.options.clone(),
        check_interval,
        args.spawn,
    );
    config.withdraw_on_exit = args.withdraw_on_exit;
    config.restart_after_failed_checks = args.restart_after_failed_checks;
    if args.spawn && config.backend == Backend::Gobgp && config.daemon.gobgpd_pid_file.is_none() {
        config.daemon.gobgpd_pid_file =
            Some(bgpgen::daemon::supervisor::gobgpd_pid_file(&config.daemon));
    }
    // Fail fast on templates that are wrong whatever the manifests say.
    Templates::load(args.drive.templates.as_deref()).map_err(Failure::invalid)?;
    let rt = runtime()?;
    rt.block_on(async move {
        let status = std::sync::Arc::new(std::sync::Mutex::new(bgpgen::status::Status::default()));
        let listener = tokio::net::TcpListener::bind(args.metrics_addr)
            .await
            .map_err(|e| Failure::invalid(format!("--metrics-addr {}: {e}", args.metrics_addr)))?;
        drop(listener);
        let server = tokio::spawn(bgpgen::agent::serve_status(args.metrics_addr, status.clone()));
        // Options and user templates are read again on every apply: a change to them is a change.
        let also: Vec<PathBuf> = args.options.iter().chain(&args.drive.templates).cloned().collect();
        let source = match &args.manifests {
            Some(dir) => {
                tracing::info!(backend = %args.drive.backend, manifests = %dir.display(), metrics = %args.metrics_addr, "bgpgen sidecar started");
                bgpgen::source::watch::watch_dir(dir.clone(), &also, debounce, args.limits.limits())
                    .map_err(|e| Failure::invalid(format!("--manifests {}: {e}", dir.display())))?
            }
            None => {
                let merged = merged_args(args.options.as_deref(), &args.speaker)?;
                let scope = match bgpgen::options::nat_gateway(&merged, &Env::from_process()).map_err(Failure::invalid)? {
                    Some(gateway) => bgpgen::source::kube::Scope::NatGateway { gateway },
                    None => bgpgen::source::kube::Scope::Node,
                };
                let client = kube_client(merged.ignored.kubeconfig.as_deref(), watch_timeout).await?;
                let instance = std::env::var("POD_NAME").ok().or_else(|| Env::from_process().node_name);
                config.events = Some(bgpgen::events::spawn_recorder(client.clone(), instance.clone()));
                // The cluster-wide view: this speaker's BGPSpeaker object and its session Events.
                tokio::spawn(bgpgen::speaker_object::run(client.clone(), status.clone(), instance));
                tracing::info!(backend = %args.drive.backend, scope = ?scope, metrics = %args.metrics_addr, "bgpgen sidecar started, watching the cluster");
                bgpgen::source::kube::watch_cluster(client, scope, debounce, watch_timeout)
            }
        };
        let result = bgpgen::agent::run(config, source, status).await;
        server.abort();
        result.map_err(|e| Failure { code: e.exit_code(), message: e.to_string() })
    })
}

/// A Kubernetes client from `--kubeconfig`, else the in-cluster configuration; no response may
/// stay silent for longer than `silence` (see `source::kube::client`).
async fn kube_client(
    kubeconfig: Option<&std::path::Path>,
    silence: std::time::Duration,
) -> Result<kube::Client, Failure> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| Failure::invalid(format!("--kubeconfig {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| Failure::invalid(format!("--kubeconfig {}: {e}", path.display())))?
        }
        None => kube::Config::incluster().map_err(|e| {
            Failure::invalid(format!(
                "no --manifests and no --kubeconfig, and not running in a cluster: {e}"
            ))
        })?,
    };
    bgpgen::source::kube::client(config, silence).map_err(|e| Failure {
        code: EXIT_DAEMON,
        message: format!("Kubernetes client: {e}"),
    })
}
