//! Speaker options, compatible with kube-ovn-speaker: the same flag names, defaults, ranges and
//! validation, so that the binary can be swapped in `speaker.yaml`. Raw values are layered (command
//! line, `--options` file, the NAT gateway's `spec.bgpSpeaker`, environment, defaults) and then
//! validated once into the typed [`SpeakerOptions`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgAction, Args, FromArgMatches, Parser};
use thiserror::Error;

use crate::diagnostic::Diagnostic;
use crate::duration::parse_go_duration;
use crate::model::{Asn, Secret};
use crate::snapshot::{GatewaySpeaker, Snapshot};

pub const DEFAULT_HOLD_TIME: Duration = Duration::from_secs(90);
pub const DEFAULT_GR_TIME: Duration = Duration::from_secs(90);
pub const DEFAULT_GR_DEFERRAL_TIME: Duration = Duration::from_secs(360);
pub const DEFAULT_EBGP_MULTIHOP: u8 = 1;
pub const DEFAULT_BFD_INTERVAL_MS: u32 = 1000;
pub const DEFAULT_BFD_MULTIPLIER: u8 = 3;
/// FRR (`neighbor X bfd MULT RX TX`) rejects intervals below 50 ms; BIRD and GoBGP accept them.
pub const BFD_MIN_INTERVAL_MS: u32 = 50;
/// The hold time is a 16-bit field of the BGP OPEN message.
const MAX_WIRE_HOLD_TIME: u64 = 65535;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OptionsError {
    #[error("missing required flags: {0}")]
    Missing(String),
    #[error("--{flag}: {message}")]
    Invalid { flag: &'static str, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error("options file {path}: {message}")]
    File { path: String, message: String },
    #[error("VpcNatGateway/{gateway} spec.bgpSpeaker.extraArgs: {message}")]
    ExtraArgs { gateway: String, message: String },
}

fn invalid(flag: &'static str, message: impl Into<String>) -> OptionsError {
    OptionsError::Invalid {
        flag,
        message: message.into(),
    }
}

/// Raw speaker options exactly as kube-ovn-speaker spells them. Every value is kept as given (and
/// `None` when absent) so that layers can be merged before anything is validated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
#[command(next_help_heading = "Speaker options (kube-ovn-speaker compatible)")]
pub struct SpeakerArgs {
    /// IPv4 addresses of the BGP peers (upstream routers), comma-separated.
    #[arg(long, value_name = "IPV4,...", value_delimiter = ',', action = ArgAction::Append)]
    pub neighbor_address: Vec<String>,
    /// IPv6 addresses of the BGP peers, comma-separated.
    #[arg(long, value_name = "IPV6,...", value_delimiter = ',', action = ArgAction::Append)]
    pub neighbor_ipv6_address: Vec<String>,
    /// AS number of the BGP peers (required).
    #[arg(long, value_name = "ASN")]
    pub neighbor_as: Option<String>,
    /// AS number of the cluster, i.e. of this speaker (required).
    #[arg(long, value_name = "ASN")]
    pub cluster_as: Option<String>,
    /// BGP router ID [default: the IPv4 address in POD_IPS/POD_IP, else 0.0.0.0].
    #[arg(long, value_name = "IPV4")]
    pub router_id: Option<String>,
    /// Name of the node this speaker runs on (for the Local policy) [env: NODE_NAME].
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Node addresses to announce as next hop instead of "self", one per family.
    #[arg(long, value_name = "IP,...", value_delimiter = ',', action = ArgAction::Append)]
    pub node_ips: Vec<String>,
    /// Announce the ClusterIPs of Services annotated ovn.kubernetes.io/bgp=true.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub announce_cluster_ip: Option<String>,
    /// TCP MD5 password for the BGP sessions (prefer --auth-password-file).
    #[arg(long, value_name = "PASSWORD")]
    pub auth_password: Option<String>,
    /// File holding the BGP password (e.g. a mounted Secret); a trailing newline is ignored.
    #[arg(long, value_name = "FILE")]
    pub auth_password_file: Option<PathBuf>,
    /// BGP hold time, 3s to 65536s; keepalive is a third of it [default: 90s].
    #[arg(long, value_name = "DURATION")]
    pub holdtime: Option<String>,
    /// Enable BGP graceful restart (RFC 4724): peers keep routes while the speaker restarts.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub graceful_restart: Option<String>,
    /// Graceful restart time, at most 4095s [default: 90s].
    #[arg(long, value_name = "DURATION")]
    pub graceful_restart_time: Option<String>,
    /// Graceful restart deferral (select-defer) time, at most 18h [default: 360s].
    #[arg(long, value_name = "DURATION")]
    pub graceful_restart_deferral_time: Option<String>,
    /// Do not open connections to peers; wait for them to connect.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub passivemode: Option<String>,
    /// TTL for eBGP sessions, 1 to 255 [default: 1].
    #[arg(long, value_name = "TTL")]
    pub ebgp_multihop: Option<String>,
    /// Announce IPv4 and IPv6 prefixes to every neighbor, whatever its address family.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub extended_nexthop: Option<String>,
    /// Run inside a VPC NAT gateway and announce its EIPs only.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub nat_gw_mode: Option<String>,
    /// Name of the VpcNatGateway in NAT gateway mode [env: GATEWAY_NAME].
    #[arg(long, value_name = "NAME")]
    pub gateway_name: Option<String>,
    /// Enable BFD on the BGP sessions.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub enable_bfd: Option<String>,
    /// BFD minimum transmit interval in milliseconds, 50 to 60000 [default: 1000].
    #[arg(long, value_name = "MS")]
    pub bfd_min_tx: Option<String>,
    /// BFD minimum receive interval in milliseconds, 50 to 60000 [default: 1000].
    #[arg(long, value_name = "MS")]
    pub bfd_min_rx: Option<String>,
    /// BFD detection multiplier, 2 to 255 [default: 3].
    #[arg(long, value_name = "N")]
    pub bfd_detection_multiplier: Option<String>,

    #[command(flatten)]
    pub ignored: IgnoredKubeOvnFlags,
}

/// kube-ovn-speaker flags that do not change the intent. They are accepted so that an existing
/// `speaker.yaml` works unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct IgnoredKubeOvnFlags {
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub logtostderr: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub alsologtostderr: Option<String>,
    #[arg(long = "log_file", hide = true)]
    pub log_file: Option<String>,
    #[arg(long = "log_file_max_size", hide = true)]
    pub log_file_max_size: Option<String>,
    #[arg(short = 'v', long = "v", hide = true)]
    pub verbosity: Option<String>,
    #[arg(long, hide = true)]
    pub pprof_port: Option<String>,
    #[arg(long, hide = true)]
    pub grpc_host: Option<String>,
    #[arg(long, hide = true)]
    pub grpc_port: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub enable_metrics: Option<String>,
    /// Kubeconfig for `run` without --manifests [default: in-cluster configuration]; ignored
    /// when reading manifests.
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Speaker options (kube-ovn-speaker compatible)"
    )]
    pub kubeconfig: Option<PathBuf>,
    #[arg(long, hide = true)]
    pub log_perm: Option<String>,
    #[arg(long, hide = true)]
    pub vpc_nat_gw_namespace: Option<String>,
}

/// Parses kube-ovn-speaker style arguments (without a program name): `--cluster-as=65000`, `-v5`.
/// Later occurrences of a flag override earlier ones, as with Go's pflag.
pub fn parse_speaker_args<I, S>(args: I) -> Result<SpeakerArgs, clap::Error>
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    #[derive(Parser)]
    #[command(name = "bgpgen", no_binary_name = true, args_override_self = true)]
    struct Only {
        #[command(flatten)]
        speaker: SpeakerArgs,
    }
    let matches = <Only as clap::CommandFactory>::command().try_get_matches_from(args)?;
    Ok(Only::from_arg_matches(&matches)?.speaker)
}

impl SpeakerArgs {
    /// Fills every option not set in `self` from `lower`.
    pub fn or(self, lower: SpeakerArgs) -> SpeakerArgs {
        fn list(a: Vec<String>, b: Vec<String>) -> Vec<String> {
            if a.is_empty() { b } else { a }
        }
        let higher_password = self.auth_password.is_some() || self.auth_password_file.is_some();
        SpeakerArgs {
            neighbor_address: list(self.neighbor_address, lower.neighbor_address),
            neighbor_ipv6_address: list(self.neighbor_ipv6_address, lower.neighbor_ipv6_address),
            neighbor_as: self.neighbor_as.or(lower.neighbor_as),
            cluster_as: self.cluster_as.or(lower.cluster_as),
            router_id: self.router_id.or(lower.router_id),
            node_name: self.node_name.or(lower.node_name),
            node_ips: list(self.node_ips, lower.node_ips),
            announce_cluster_ip: self.announce_cluster_ip.or(lower.announce_cluster_ip),
            // One option given two ways: a password of either kind in `self` replaces both of
            // `lower`'s, so that a higher layer overrides rather than conflicts.
            auth_password: if higher_password {
                self.auth_password
            } else {
                lower.auth_password
            },
            auth_password_file: if higher_password {
                self.auth_password_file
            } else {
                lower.auth_password_file
            },
            holdtime: self.holdtime.or(lower.holdtime),
            graceful_restart: self.graceful_restart.or(lower.graceful_restart),
            graceful_restart_time: self.graceful_restart_time.or(lower.graceful_restart_time),
            graceful_restart_deferral_time: self
                .graceful_restart_deferral_time
                .or(lower.graceful_restart_deferral_time),
            passivemode: self.passivemode.or(lower.passivemode),
            ebgp_multihop: self.ebgp_multihop.or(lower.ebgp_multihop),
            extended_nexthop: self.extended_nexthop.or(lower.extended_nexthop),
            nat_gw_mode: self.nat_gw_mode.or(lower.nat_gw_mode),
            gateway_name: self.gateway_name.or(lower.gateway_name),
            enable_bfd: self.enable_bfd.or(lower.enable_bfd),
            bfd_min_tx: self.bfd_min_tx.or(lower.bfd_min_tx),
            bfd_min_rx: self.bfd_min_rx.or(lower.bfd_min_rx),
            bfd_detection_multiplier: self
                .bfd_detection_multiplier
                .or(lower.bfd_detection_multiplier),
            ignored: IgnoredKubeOvnFlags {
                kubeconfig: self.ignored.kubeconfig.or(lower.ignored.kubeconfig),
                ..self.ignored
            },
        }
    }

    /// Reads an `--options` file: a YAML mapping with the flag names as keys (`cluster-as: 65000`,
    /// `neighbor-address: [10.32.32.252, 10.32.32.253]`). It goes through the same parser as the
    /// command line, so names and values mean exactly the same.
    pub fn from_options_yaml(path: &str, text: &str) -> Result<SpeakerArgs, OptionsError> {
        let file_err = |message: String| OptionsError::File {
            path: path.to_string(),
            message,
        };
        let value: serde_json::Value = if text.trim().is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            crate::source::yaml::from_str(text).map_err(|e| file_err(e.to_string()))?
        };
        let serde_json::Value::Object(map) = value else {
            return Err(file_err(
                "expected a mapping of option names to values, e.g. `cluster-as: 65000`".into(),
            ));
        };
        let mut args = Vec::new();
        for (key, value) in map {
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Array(items) => {
                    let mut parts = Vec::new();
                    for item in items {
                        match item {
                            serde_json::Value::String(s) => parts.push(s),
                            serde_json::Value::Number(n) => parts.push(n.to_string()),
                            other => {
                                return Err(file_err(format!(
                                    "{key}: list items must be strings, found {other}"
                                )));
                            }
                        }
                    }
                    parts.join(",")
                }
                serde_json::Value::Null => continue,
                serde_json::Value::Object(_) => {
                    return Err(file_err(format!(
                        "{key}: expected a value, found a mapping"
                    )));
                }
            };
            args.push(format!("--{key}={text}"));
        }
        parse_speaker_args(args).map_err(|e| file_err(clap_message(&e)))
    }
}

/// The first line of a clap error, without its usage block, for embedding in other messages.
pub fn clap_message(e: &clap::Error) -> String {
    let rendered = e.to_string();
    rendered
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string()
}

/// The environment variables kube-ovn-speaker reads, captured at the edge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    pub node_name: Option<String>,
    pub pod_ips: Option<String>,
    pub pod_ip: Option<String>,
    pub gateway_name: Option<String>,
}

impl Env {
    pub fn from_process() -> Env {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Env {
            node_name: get("NODE_NAME"),
            pod_ips: get("POD_IPS"),
            pod_ip: get("POD_IP"),
            gateway_name: get("GATEWAY_NAME"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpeakerMode {
    Node { node: String },
    NatGateway { gateway: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdOptions {
    pub enabled: bool,
    pub min_tx_ms: u32,
    pub min_rx_ms: u32,
    pub multiplier: u8,
}

/// Validated speaker options: the only options type the compiler sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerOptions {
    pub mode: SpeakerMode,
    pub router_id: Ipv4Addr,
    pub cluster_as: Asn,
    pub neighbor_as: Asn,
    pub neighbors_v4: Vec<Ipv4Addr>,
    pub neighbors_v6: Vec<Ipv6Addr>,
    pub node_ip_v4: Option<Ipv4Addr>,
    pub node_ip_v6: Option<Ipv6Addr>,
    pub announce_cluster_ip: bool,
    pub password: Option<Secret>,
    pub hold_time: Duration,
    pub graceful_restart: bool,
    pub graceful_restart_time: Duration,
    pub graceful_restart_deferral_time: Duration,
    pub passive: bool,
    pub ebgp_multihop_ttl: u8,
    pub extended_nexthop: bool,
    pub bfd: BfdOptions,
}

/// The options and what resolving them had to say (e.g. a router ID of 0.0.0.0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub options: SpeakerOptions,
    pub diagnostics: Vec<Diagnostic>,
}

/// Whether a password can be written into gobgpd, FRR and BIRD configuration as it is: a TCP MD5
/// key of at most 80 printable ASCII characters, with none of the characters that would end or
/// escape a quoted string or a vtysh word (quotes, backslash, `?`, whitespace).
pub fn password_is_renderable(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 80
        && p.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !b"\"'\\?".contains(&b))
}

/// Go's `strconv.ParseBool`, which pflag uses for boolean flags.
fn parse_bool(flag: &'static str, value: Option<&str>) -> Result<bool, OptionsError> {
    match value {
        None => Ok(false),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(invalid(
            flag,
            format!("{other:?} is not a boolean (true or false)"),
        )),
    }
}

fn parse_asn(flag: &'static str, value: Option<&str>) -> Result<Option<Asn>, OptionsError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => match v.parse::<u32>() {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(Asn(n))),
            Err(_) => Err(invalid(
                flag,
                format!("{v:?} is not an AS number (1 to 4294967295)"),
            )),
        },
    }
}

fn parse_duration(
    flag: &'static str,
    value: Option<&str>,
    default: Duration,
) -> Result<Duration, OptionsError> {
    match value {
        None => Ok(default),
        Some(v) => parse_go_duration(v).map_err(|e| invalid(flag, e.to_string())),
    }
}

fn parse_number<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    flag: &'static str,
    value: Option<&str>,
    default: T,
    min: T,
    max: T,
    what: &str,
) -> Result<T, OptionsError> {
    let Some(v) = value else { return Ok(default) };
    let out_of_range = || {
        invalid(
            flag,
            format!("{what} must be in the range {min} to {max}, got {v:?}"),
        )
    };
    let n: T = v.trim().parse().map_err(|_| out_of_range())?;
    if n < min || n > max {
        return Err(out_of_range());
    }
    Ok(n)
}

fn parse_ips(flag: &'static str, values: &[String]) -> Result<Vec<IpAddr>, OptionsError> {
    values
        .iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<IpAddr>()
                .map_err(|_| invalid(flag, format!("{v:?} is not an IP address")))
        })
        .collect()
}

/// The NAT gateway this speaker serves (`--nat-gw-mode` with `--gateway-name` or `GATEWAY_NAME`),
/// or `None` in node mode. Needed before any state is read, to choose what to watch.
pub fn nat_gateway(args: &SpeakerArgs, env: &Env) -> Result<Option<String>, OptionsError> {
    if !parse_bool("nat-gw-mode", args.nat_gw_mode.as_deref())? {
        return Ok(None);
    }
    args.gateway_name
        .clone()
        .or_else(|| env.gateway_name.clone())
        .filter(|g| !g.is_empty())
        .map(Some)
        .ok_or_else(|| {
            OptionsError::Missing(
                "--nat-gw-mode needs the gateway name: set --gateway-name or the GATEWAY_NAME environment variable".into(),
            )
        })
}

/// Builds the arguments Kube-OVN's controller passes to the speaker sidecar of a VPC NAT gateway
/// (`GenNatGwBgpSpeakerContainer`), so bgpgen derives exactly the same options from the spec.
pub fn gateway_speaker_args(
    gateway: &str,
    spec: &GatewaySpeaker,
) -> Result<SpeakerArgs, OptionsError> {
    let mut args = vec!["--nat-gw-mode".to_string()];
    if let Some(r) = spec.router_id {
        args.push(format!("--router-id={r}"));
    }
    if let Some(p) = &spec.password {
        args.push(format!("--auth-password={p}"));
    }
    if spec.graceful_restart {
        args.push("--graceful-restart".to_string());
    }
    if let Some(h) = spec.hold_time {
        args.push(format!("--holdtime={}s", h.as_secs_f64()));
    }
    if spec.asn != 0 {
        args.push(format!("--cluster-as={}", spec.asn));
    }
    if spec.remote_asn != 0 {
        args.push(format!("--neighbor-as={}", spec.remote_asn));
    }
    let v4: Vec<String> = spec
        .neighbors
        .iter()
        .filter(|n| n.is_ipv4())
        .map(|n| n.to_string())
        .collect();
    let v6: Vec<String> = spec
        .neighbors
        .iter()
        .filter(|n| n.is_ipv6())
        .map(|n| n.to_string())
        .collect();
    if !v4.is_empty() {
        args.push(format!("--neighbor-address={}", v4.join(",")));
    }
    if !v6.is_empty() {
        args.push(format!("--neighbor-ipv6-address={}", v6.join(",")));
    }
    args.extend(spec.extra_args.iter().cloned());
    parse_speaker_args(args).map_err(|e| OptionsError::ExtraArgs {
        gateway: gateway.to_string(),
        message: clap_message(&e),
    })
}

/// Validates layered options into [`SpeakerOptions`]. `args` is the command line already merged
/// with any `--options` file; the NAT gateway's spec (from `snapshot`) and the environment fill
/// what it leaves unset. `read_file` reads `--auth-password-file` (injected, to keep this pure
/// for tests).
pub fn resolve(
    args: &SpeakerArgs,
    env: &Env,
    snapshot: &Snapshot,
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Resolved, OptionsError> {
    let mut diagnostics = Vec::new();
    let nat_mode = parse_bool("nat-gw-mode", args.nat_gw_mode.as_deref())?;
    let mut gateway_missing = None;
    let args = if nat_mode {
        let gateway = args
            .gateway_name
            .clone()
            .or_else(|| env.gateway_name.clone())
            .filter(|g| !g.is_empty());
        let Some(gateway) = gateway else {
            return Err(OptionsError::Missing(
                "--nat-gw-mode needs the gateway name: set --gateway-name or the GATEWAY_NAME environment variable".into(),
            ));
        };
        let with_gateway = SpeakerArgs {
            gateway_name: Some(gateway.clone()),
            ..args.clone()
        };
        match snapshot
            .gateways
            .get(&gateway)
            .and_then(|g| g.bgp_speaker.as_ref())
        {
            Some(spec) => {
                if !spec.enabled {
                    diagnostics.push(Diagnostic::warning(
                        format!("VpcNatGateway/{gateway}"),
                        "spec.bgpSpeaker.enabled is false: Kube-OVN will not inject a speaker for this gateway",
                    ));
                }
                with_gateway.or(gateway_speaker_args(&gateway, spec)?)
            }
            None => {
                gateway_missing = Some(gateway);
                with_gateway
            }
        }
    } else {
        args.clone()
    };

    // The same checks, in the same order, as kube-ovn-speaker's ParseFlags.
    let hold_time = parse_duration("holdtime", args.holdtime.as_deref(), DEFAULT_HOLD_TIME)?;
    let hold_secs = hold_time.as_secs_f64();
    if !(3.0..=65536.0).contains(&hold_secs) {
        return Err(invalid(
            "holdtime",
            format!(
                "the bgp holdtime must be in the range 3s to 65536s, got {}",
                args.holdtime.as_deref().unwrap_or_default()
            ),
        ));
    }
    if hold_time.subsec_nanos() != 0 {
        diagnostics.push(Diagnostic::warning(
            "options",
            format!(
                "--holdtime {hold_secs}s is not a whole number of seconds; BGP uses {}s",
                hold_time.as_secs()
            ),
        ));
    }
    // kube-ovn-speaker accepts 65536s, which no BGP OPEN message can carry.
    let hold_time = if hold_time.as_secs() > MAX_WIRE_HOLD_TIME {
        diagnostics.push(Diagnostic::warning(
            "options",
            format!(
                "--holdtime {}s does not fit BGP's 16-bit hold time; using {MAX_WIRE_HOLD_TIME}s",
                hold_time.as_secs()
            ),
        ));
        Duration::from_secs(MAX_WIRE_HOLD_TIME)
    } else {
        hold_time
    };
    let ebgp_multihop_ttl = match args.ebgp_multihop.as_deref() {
        None => DEFAULT_EBGP_MULTIHOP,
        Some(v) => match v.trim().parse::<u8>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(invalid(
                    "ebgp-multihop",
                    format!("the bgp MultihopTtl must be in the range 1 to 255, got {v:?}"),
                ));
            }
        },
    };

    let neighbors = parse_ips("neighbor-address", &args.neighbor_address)?;
    let mut neighbors_v4 = Vec::new();
    for n in neighbors {
        match n {
            IpAddr::V4(v4) => neighbors_v4.push(v4),
            IpAddr::V6(v6) => {
                return Err(invalid(
                    "neighbor-address",
                    format!(
                        "{v6} is not an IPv4 address (use --neighbor-ipv6-address for IPv6 peers)"
                    ),
                ));
            }
        }
    }
    let neighbors6 = parse_ips("neighbor-ipv6-address", &args.neighbor_ipv6_address)?;
    let mut neighbors_v6 = Vec::new();
    for n in neighbors6 {
        match n {
            IpAddr::V6(v6) => neighbors_v6.push(v6),
            IpAddr::V4(v4) => {
                return Err(invalid(
                    "neighbor-ipv6-address",
                    format!("{v4} is not an IPv6 address (use --neighbor-address for IPv4 peers)"),
                ));
            }
        }
    }
    neighbors_v4.sort();
    neighbors_v4.dedup();
    neighbors_v6.sort();
    neighbors_v6.dedup();

    let cluster_as = parse_asn("cluster-as", args.cluster_as.as_deref())?;
    let neighbor_as = parse_asn("neighbor-as", args.neighbor_as.as_deref())?;
    let node_name = args
        .node_name
        .clone()
        .or_else(|| env.node_name.clone())
        .map(|n| n.trim().to_lowercase())
        .filter(|n| !n.is_empty());

    let mut missing = Vec::new();
    if neighbors_v4.is_empty() && neighbors_v6.is_empty() {
        missing.push(
            "at least one of --neighbor-address or --neighbor-ipv6-address must be specified",
        );
    }
    if cluster_as.is_none() {
        missing.push("--cluster-as must be specified");
    }
    if neighbor_as.is_none() {
        missing.push("--neighbor-as must be specified");
    }
    if !nat_mode && node_name.is_none() {
        missing.push(
            "--node-name (or the NODE_NAME environment variable) must be specified in node mode",
        );
    }
    if !missing.is_empty() {
        let mut message = missing.join("; ");
        if let Some(gw) = gateway_missing {
            message.push_str(&format!(
                " (VpcNatGateway/{gw} with spec.bgpSpeaker was not found in the input, so it could not supply them)"
            ));
        }
        return Err(OptionsError::Missing(message));
    }
    // Both are Some: checked just above.
    let (Some(cluster_as), Some(neighbor_as)) = (cluster_as, neighbor_as) else {
        unreachable!("checked above")
    };

    let mode = if nat_mode {
        SpeakerMode::NatGateway {
            gateway: args.gateway_name.clone().unwrap_or_default(),
        }
    } else {
        SpeakerMode::Node {
            node: node_name.clone().unwrap_or_default(),
        }
    };

    let router_id = match args.router_id.as_deref().map(str::trim) {
        Some(r) if !r.is_empty() => match r.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => v4,
            Ok(IpAddr::V6(_)) => {
                return Err(invalid(
                    "router-id",
                    format!("{r} is IPv6; a BGP router ID is an IPv4 address"),
                ));
            }
            Err(_) => {
                return Err(invalid(
                    "router-id",
                    format!("{r:?} is not an IPv4 address"),
                ));
            }
        },
        _ => {
            let pod_ips = env
                .pod_ips
                .as_deref()
                .or(env.pod_ip.as_deref())
                .unwrap_or("");
            let mut v4 = None;
            for part in pod_ips.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match part.parse::<IpAddr>() {
                    Ok(IpAddr::V4(ip)) => {
                        v4 = Some(ip);
                        break;
                    }
                    Ok(IpAddr::V6(_)) => {}
                    Err(_) => {
                        return Err(OptionsError::Conflict(format!(
                            "failed to parse pod IP address {part:?} from POD_IPS/POD_IP"
                        )));
                    }
                }
            }
            match v4 {
                Some(ip) => ip,
                None => {
                    diagnostics.push(Diagnostic::warning(
                        "options",
                        "no --router-id and no IPv4 address in POD_IPS/POD_IP: using router ID 0.0.0.0, which BIRD and FRR reject; set --router-id",
                    ));
                    Ipv4Addr::UNSPECIFIED
                }
            }
        }
    };

    let mut node_ip_v4 = None;
    let mut node_ip_v6 = None;
    for ip in parse_ips("node-ips", &args.node_ips)? {
        match ip {
            IpAddr::V4(v4) => node_ip_v4 = Some(v4),
            IpAddr::V6(v6) => node_ip_v6 = Some(v6),
        }
    }

    let password = match (&args.auth_password, &args.auth_password_file) {
        (Some(_), Some(_)) => {
            return Err(OptionsError::Conflict(
                "--auth-password and --auth-password-file are mutually exclusive".into(),
            ));
        }
        (Some(p), None) => Some(p.clone()),
        (None, Some(path)) => {
            let text = read_file(path).map_err(|e| {
                invalid(
                    "auth-password-file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            let p = text.strip_suffix('\n').unwrap_or(&text);
            let p = p.strip_suffix('\r').unwrap_or(p);
            if p.contains('\n') {
                return Err(invalid(
                    "auth-password-file",
                    format!("{} holds more than one line", path.display()),
                ));
            }
            Some(p.to_string())
        }
        (None, None) => None,
    };
    let password = match password {
        Some(p) if p.is_empty() => None,
        Some(p) => {
            if !password_is_renderable(&p) {
                return Err(invalid(
                    "auth-password",
                    "the password must be at most 80 printable ASCII characters (TCP MD5 key), without spaces, quotes, backslash or ? (they cannot be written safely into every daemon's configuration)",
                ));
            }
            Some(Secret::new(p))
        }
        None => None,
    };

    let graceful_restart = parse_bool("graceful-restart", args.graceful_restart.as_deref())?;
    let graceful_restart_time = parse_duration(
        "graceful-restart-time",
        args.graceful_restart_time.as_deref(),
        DEFAULT_GR_TIME,
    )?;
    let graceful_restart_deferral_time = parse_duration(
        "graceful-restart-deferral-time",
        args.graceful_restart_deferral_time.as_deref(),
        DEFAULT_GR_DEFERRAL_TIME,
    )?;
    if graceful_restart {
        // 1s..4095s: the restart time is sent in whole seconds, so 500ms would be 0.
        if graceful_restart_time < Duration::from_secs(1)
            || graceful_restart_time > Duration::from_secs(4095)
        {
            return Err(invalid(
                "graceful-restart-time",
                "GracefulRestartTime should be less than 4095 seconds or more than 0",
            ));
        }
        if graceful_restart_deferral_time < Duration::from_secs(1)
            || graceful_restart_deferral_time > Duration::from_secs(18 * 3600)
        {
            return Err(invalid(
                "graceful-restart-deferral-time",
                "GracefulRestartDeferralTime should be less than 18 hours or more than 0",
            ));
        }
    }

    let bfd = BfdOptions {
        enabled: parse_bool("enable-bfd", args.enable_bfd.as_deref())?,
        min_tx_ms: parse_number(
            "bfd-min-tx",
            args.bfd_min_tx.as_deref(),
            DEFAULT_BFD_INTERVAL_MS,
            BFD_MIN_INTERVAL_MS,
            60000,
            "the BFD transmit interval (ms)",
        )?,
        min_rx_ms: parse_number(
            "bfd-min-rx",
            args.bfd_min_rx.as_deref(),
            DEFAULT_BFD_INTERVAL_MS,
            BFD_MIN_INTERVAL_MS,
            60000,
            "the BFD receive interval (ms)",
        )?,
        multiplier: parse_number(
            "bfd-detection-multiplier",
            args.bfd_detection_multiplier.as_deref(),
            DEFAULT_BFD_MULTIPLIER,
            2,
            255,
            "the BFD detection multiplier",
        )?,
    };

    let options = SpeakerOptions {
        mode,
        router_id,
        cluster_as,
        neighbor_as,
        neighbors_v4,
        neighbors_v6,
        node_ip_v4,
        node_ip_v6,
        announce_cluster_ip: parse_bool(
            "announce-cluster-ip",
            args.announce_cluster_ip.as_deref(),
        )?,
        password,
        hold_time: Duration::from_secs(hold_time.as_secs()),
        graceful_restart,
        graceful_restart_time,
        graceful_restart_deferral_time,
        passive: parse_bool("passivemode", args.passivemode.as_deref())?,
        ebgp_multihop_ttl,
        extended_nexthop: parse_bool("extended-nexthop", args.extended_nexthop.as_deref())?,
        bfd,
    };
    if let SpeakerMode::Node { node } = &options.mode
        && !snapshot.nodes.is_empty()
        && !snapshot.nodes.contains_key(node)
    {
        diagnostics.push(Diagnostic::warning(
            "options",
            format!("--node-name {node} is not among the Nodes in the input; no pod is Local to this speaker"),
        ));
    }
    Ok(Resolved {
        options,
        diagnostics,
    })
}
