//! Speaker options, compatible with kube-ovn-speaker: the same flag names, defaults, ranges and
//! validation, so that the binary can be swapped in `speaker.yaml`. Raw values are layered (command
//! line, `--options` file, the NAT gateway's `spec.bgpSpeaker`, environment, defaults) and then
//! validated once into the typed [`SpeakerOptions`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgAction, Args, FromArgMatches, Parser};
use thiserror::Error;

use crate::diagnostic::Diagnostic;
use crate::duration::parse_go_duration;
use crate::goflags;
use crate::model::{Asn, Secret};
use crate::snapshot::{GatewaySpeaker, Snapshot};

pub const DEFAULT_HOLD_TIME: Duration = Duration::from_secs(90);
pub const DEFAULT_GR_TIME: Duration = Duration::from_secs(90);
pub const DEFAULT_GR_DEFERRAL_TIME: Duration = Duration::from_secs(360);
pub const DEFAULT_EBGP_MULTIHOP: u8 = 1;
pub const DEFAULT_BFD_INTERVAL_MS: u32 = 1000;
pub const DEFAULT_BFD_MULTIPLIER: u8 = 3;
/// kube-ovn-speaker's bound for the BFD intervals: milliseconds that still fit a 32-bit count of
/// microseconds (RFC 5880).
pub const BFD_MAX_INTERVAL_MS: u32 = 4_294_967;
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
    #[error("options file {path}{}: {message}", at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    File {
        path: String,
        /// Line and column of a syntax error, when known.
        at: Option<(u64, u64)>,
        message: String,
    },
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
    #[arg(long, value_name = "IPV4,...", action = ArgAction::Append)]
    pub neighbor_address: Vec<String>,
    /// IPv6 addresses of the BGP peers, comma-separated.
    #[arg(long, value_name = "IPV6,...", action = ArgAction::Append)]
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
    /// Name of the node this speaker runs on (for the Local policy) [env: NODE_NAME, else
    /// KUBE_NODE_NAME].
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Node addresses to announce as next hop instead of "self", one per family.
    #[arg(long, value_name = "IP,...", action = ArgAction::Append)]
    pub node_ips: Vec<String>,
    /// IPv4 addresses the sessions may use as local address and next hop: per neighbor, the one
    /// the kernel's route to it uses (looked up by `apply` and `run`), comma-separated.
    #[arg(long, value_name = "IPV4,...", action = ArgAction::Append)]
    pub allowed_source_addresses: Vec<String>,
    /// IPv6 addresses the sessions may use as local address and next hop, comma-separated.
    #[arg(long, value_name = "IPV6,...", action = ArgAction::Append)]
    pub allowed_source_ipv6_addresses: Vec<String>,
    /// A neighbor's local address given instead of looked up: NEIGHBOR=LOCAL (repeatable; for
    /// `compile`/`render` in CI, where the host's routes are not at hand).
    #[arg(long, value_name = "NEIGHBOR=LOCAL", action = ArgAction::Append)]
    pub neighbor_local_address: Vec<String>,
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
    /// BFD minimum transmit interval in milliseconds, 1 to 4294967 [default: 1000].
    #[arg(long, value_name = "MS")]
    pub bfd_min_tx: Option<String>,
    /// BFD minimum receive interval in milliseconds, 1 to 4294967 [default: 1000].
    #[arg(long, value_name = "MS")]
    pub bfd_min_rx: Option<String>,
    /// BFD detection multiplier, 1 to 255 [default: 3].
    #[arg(long, value_name = "N")]
    pub bfd_detection_multiplier: Option<String>,

    #[command(flatten)]
    pub ignored: IgnoredKubeOvnFlags,
}

/// kube-ovn-speaker flags that do not change the intent: its own and every flag klog v2 registers
/// (kube-ovn-speaker adds klog's flag set to its command line). They are accepted, with their
/// values checked as kube-ovn-speaker checks them, so that an existing `speaker.yaml` works
/// unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct IgnoredKubeOvnFlags {
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub logtostderr: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub alsologtostderr: Option<String>,
    #[arg(long = "log_dir", hide = true)]
    pub log_dir: Option<String>,
    #[arg(long = "log_file", hide = true)]
    pub log_file: Option<String>,
    #[arg(long = "log_file_max_size", hide = true)]
    pub log_file_max_size: Option<String>,
    #[arg(short = 'v', long = "v", hide = true, allow_hyphen_values = true)]
    pub verbosity: Option<String>,
    #[arg(long = "vmodule", hide = true)]
    pub vmodule: Option<String>,
    #[arg(long = "stderrthreshold", hide = true)]
    pub stderrthreshold: Option<String>,
    #[arg(long = "alsologtostderrthreshold", hide = true)]
    pub alsologtostderrthreshold: Option<String>,
    #[arg(long = "legacy_stderr_threshold_behavior", hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub legacy_stderr_threshold_behavior: Option<String>,
    #[arg(long = "add_dir_header", hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub add_dir_header: Option<String>,
    #[arg(long = "skip_headers", hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub skip_headers: Option<String>,
    #[arg(long = "one_output", hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub one_output: Option<String>,
    #[arg(long = "skip_log_headers", hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub skip_log_headers: Option<String>,
    #[arg(long = "log_backtrace_at", hide = true)]
    pub log_backtrace_at: Option<String>,
    #[arg(long, hide = true, allow_hyphen_values = true)]
    pub pprof_port: Option<String>,
    #[arg(long, hide = true)]
    pub grpc_host: Option<String>,
    #[arg(long, hide = true, allow_hyphen_values = true)]
    pub grpc_port: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub enable_metrics: Option<String>,
    /// Accepted everywhere (kube-ovn-speaker passes it), shown and used only by `run` (without
    /// --manifests), whose command un-hides it.
    #[arg(long, value_name = "FILE", hide = true)]
    pub kubeconfig: Option<PathBuf>,
    #[arg(long, hide = true)]
    pub log_perm: Option<String>,
    #[arg(long, hide = true)]
    pub vpc_nat_gw_namespace: Option<String>,
}

impl IgnoredKubeOvnFlags {
    fn or(self, lower: IgnoredKubeOvnFlags) -> IgnoredKubeOvnFlags {
        IgnoredKubeOvnFlags {
            logtostderr: self.logtostderr.or(lower.logtostderr),
            alsologtostderr: self.alsologtostderr.or(lower.alsologtostderr),
            log_dir: self.log_dir.or(lower.log_dir),
            log_file: self.log_file.or(lower.log_file),
            log_file_max_size: self.log_file_max_size.or(lower.log_file_max_size),
            verbosity: self.verbosity.or(lower.verbosity),
            vmodule: self.vmodule.or(lower.vmodule),
            stderrthreshold: self.stderrthreshold.or(lower.stderrthreshold),
            alsologtostderrthreshold: self
                .alsologtostderrthreshold
                .or(lower.alsologtostderrthreshold),
            legacy_stderr_threshold_behavior: self
                .legacy_stderr_threshold_behavior
                .or(lower.legacy_stderr_threshold_behavior),
            add_dir_header: self.add_dir_header.or(lower.add_dir_header),
            skip_headers: self.skip_headers.or(lower.skip_headers),
            one_output: self.one_output.or(lower.one_output),
            skip_log_headers: self.skip_log_headers.or(lower.skip_log_headers),
            log_backtrace_at: self.log_backtrace_at.or(lower.log_backtrace_at),
            pprof_port: self.pprof_port.or(lower.pprof_port),
            grpc_host: self.grpc_host.or(lower.grpc_host),
            grpc_port: self.grpc_port.or(lower.grpc_port),
            enable_metrics: self.enable_metrics.or(lower.enable_metrics),
            kubeconfig: self.kubeconfig.or(lower.kubeconfig),
            log_perm: self.log_perm.or(lower.log_perm),
            vpc_nat_gw_namespace: self.vpc_nat_gw_namespace.or(lower.vpc_nat_gw_namespace),
        }
    }

    /// Checks each value as kube-ovn-speaker (pflag, Go's `flag`, klog) would, so that bgpgen
    /// refuses what kube-ovn-speaker refuses. `nat_mode`: kube-ovn-speaker parses `--log-perm`
    /// only outside NAT gateways.
    fn validate(&self, nat_mode: bool) -> Result<(), OptionsError> {
        let check =
            |flag: &'static str, value: &Option<String>, f: &dyn Fn(&str) -> Result<(), String>| {
                match value {
                    Some(v) => f(v).map_err(|m| invalid(flag, m)),
                    None => Ok(()),
                }
            };
        let boolean = |v: &str| -> Result<(), String> {
            goflags::parse_bool(v)
                .map(drop)
                .ok_or_else(|| format!("{v:?} is not a boolean (true or false)"))
        };
        check("logtostderr", &self.logtostderr, &boolean)?;
        check("alsologtostderr", &self.alsologtostderr, &boolean)?;
        check(
            "legacy_stderr_threshold_behavior",
            &self.legacy_stderr_threshold_behavior,
            &boolean,
        )?;
        check("add_dir_header", &self.add_dir_header, &boolean)?;
        check("skip_headers", &self.skip_headers, &boolean)?;
        check("one_output", &self.one_output, &boolean)?;
        check("skip_log_headers", &self.skip_log_headers, &boolean)?;
        check("enable-metrics", &self.enable_metrics, &boolean)?;
        check("log_file_max_size", &self.log_file_max_size, &|v| {
            goflags::parse_uint(v, 64).map(drop)
        })?;
        check("v", &self.verbosity, &|v| {
            goflags::parse_decimal_i32(v).map(drop)
        })?;
        check("vmodule", &self.vmodule, &goflags::parse_vmodule)?;
        check(
            "stderrthreshold",
            &self.stderrthreshold,
            &goflags::parse_severity,
        )?;
        check(
            "alsologtostderrthreshold",
            &self.alsologtostderrthreshold,
            &goflags::parse_severity,
        )?;
        check(
            "log_backtrace_at",
            &self.log_backtrace_at,
            &goflags::parse_backtrace_at,
        )?;
        check("pprof-port", &self.pprof_port, &|v| {
            goflags::parse_int(v, 32).map(drop)
        })?;
        check("grpc-port", &self.grpc_port, &|v| {
            goflags::parse_int(v, 32).map(drop)
        })?;
        check("grpc-host", &self.grpc_host, &|v| {
            goflags::parse_single_ip(v)
                .map(drop)
                .ok_or_else(|| format!("{v:?} is not an IP address"))
        })?;
        if !nat_mode {
            check("log-perm", &self.log_perm, &|v| {
                goflags::parse_octal_u32(v).map(drop)
            })?;
        }
        Ok(())
    }
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
            allowed_source_addresses: list(
                self.allowed_source_addresses,
                lower.allowed_source_addresses,
            ),
            allowed_source_ipv6_addresses: list(
                self.allowed_source_ipv6_addresses,
                lower.allowed_source_ipv6_addresses,
            ),
            neighbor_local_address: list(self.neighbor_local_address, lower.neighbor_local_address),
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
            ignored: self.ignored.or(lower.ignored),
        }
    }

    /// Reads an `--options` file: a YAML mapping with the flag names as keys (`cluster-as: 65000`,
    /// `neighbor-address: [10.32.32.252, 10.32.32.253]`). It goes through the same parser as the
    /// command line, so names and values mean exactly the same.
    pub fn from_options_yaml(path: &str, text: &str) -> Result<SpeakerArgs, OptionsError> {
        let file_err = |message: String| OptionsError::File {
            path: path.to_string(),
            at: None,
            message,
        };
        let value: serde_json::Value = if text.trim().is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            crate::source::yaml::from_str(text).map_err(|e| {
                let (at, message) = crate::source::yaml::describe(&e);
                OptionsError::File {
                    path: path.to_string(),
                    at,
                    message,
                }
            })?
        };
        let serde_json::Value::Object(map) = value else {
            return Err(file_err(
                "expected a mapping of option names to values, e.g. `cluster-as: 65000`".into(),
            ));
        };
        let mut args = Vec::new();
        for (key, value) in map {
            // Every value is the text the flag would be given: `true` and "true" are the same
            // flag value, in YAML and in JSON, as on a command line.
            let scalar = |value: serde_json::Value| -> Result<Option<String>, OptionsError> {
                match value {
                    serde_json::Value::String(s) => Ok(Some(s)),
                    serde_json::Value::Bool(b) => Ok(Some(b.to_string())),
                    serde_json::Value::Number(n) => Ok(Some(n.to_string())),
                    serde_json::Value::Null => Ok(None),
                    serde_json::Value::Array(_) => {
                        Err(file_err(format!("{key}: takes one value, found a list")))
                    }
                    serde_json::Value::Object(_) => Err(file_err(format!(
                        "{key}: expected a value, found a mapping"
                    ))),
                }
            };
            match value {
                serde_json::Value::Array(items) if LIST_FLAGS.contains(&key.as_str()) => {
                    for item in items {
                        match item {
                            serde_json::Value::String(s) => args.push(format!("--{key}={s}")),
                            serde_json::Value::Number(n) => args.push(format!("--{key}={n}")),
                            other => {
                                return Err(file_err(format!(
                                    "{key}: list items must be strings, found {other}"
                                )));
                            }
                        }
                    }
                }
                value => {
                    if let Some(text) = scalar(value)? {
                        args.push(format!("--{key}={text}"));
                    }
                }
            }
        }
        parse_speaker_args(args).map_err(|e| file_err(options_file_message(&e)))
    }
}

/// The options that take a list: in an `--options` file they may be YAML lists; every other
/// option takes one value.
const LIST_FLAGS: &[&str] = &[
    "neighbor-address",
    "neighbor-ipv6-address",
    "node-ips",
    "allowed-source-addresses",
    "allowed-source-ipv6-addresses",
    "neighbor-local-address",
];

/// A clap error about an options file, in the file's terms (keys, not `--flags`), with clap's
/// suggestion for a misspelt key.
fn options_file_message(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let key = |v: &str| {
        let v = v.trim_start_matches('-');
        v.split('=').next().unwrap_or(v).to_string()
    };
    if e.kind() == ErrorKind::UnknownArgument
        && let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg)
    {
        let unknown = crate::text::clip(&key(arg), crate::text::QUOTE_CHARS);
        return match e.get(ContextKind::SuggestedArg) {
            Some(ContextValue::String(s)) => {
                format!("unknown option `{unknown}` (did you mean `{}`?)", key(s))
            }
            _ => format!(
                "unknown option `{unknown}` (keys are the flag names without `--`, see `bgpgen compile --help`)"
            ),
        };
    }
    clap_message(e)
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
    /// `NODE_NAME` (kube-ovn master), else `KUBE_NODE_NAME` (what release-1.13's `speaker.yaml`
    /// sets from the downward API).
    pub node_name: Option<String>,
    pub pod_ips: Option<String>,
    pub pod_ip: Option<String>,
    pub gateway_name: Option<String>,
}

impl Env {
    pub fn from_process() -> Env {
        Env::from_lookup(|k| std::env::var(k).ok())
    }

    /// The environment as `get` gives it (an unset and an empty variable are the same, as for
    /// kube-ovn-speaker's `os.Getenv`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Env {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        Env {
            node_name: get("NODE_NAME").or_else(|| get("KUBE_NODE_NAME")),
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
    /// `--allowed-source-addresses` / `--allowed-source-ipv6-addresses`: when a family's list is
    /// not empty, every neighbor of that family must be given one of them as its local address.
    pub allowed_source_v4: Vec<Ipv4Addr>,
    pub allowed_source_v6: Vec<Ipv6Addr>,
    /// Each neighbor's local address (and next hop), given with `--neighbor-local-address` or
    /// found by a route lookup at the edge ([`SpeakerOptions::pin_from_routes`]).
    pub local_addresses: BTreeMap<IpAddr, IpAddr>,
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

fn parse_asn(
    diagnostics: &mut Vec<Diagnostic>,
    flag: &'static str,
    value: Option<&str>,
) -> Result<Option<Asn>, OptionsError> {
    match value {
        None | Some("") => Ok(None),
        Some(v) => match parse_go_uint(diagnostics, flag, v, 32) {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(Asn(n as u32))),
            Err(_) => Err(invalid(
                flag,
                format!("{v:?} is not an AS number (1 to 4294967295)"),
            )),
        },
    }
}

/// pflag's unsigned integer flags (Go's `ParseUint(v, 0, bits)`). A value that is not plain
/// decimal (`065000` is octal to Go) gets a warning saying what it means.
fn parse_go_uint(
    diagnostics: &mut Vec<Diagnostic>,
    flag: &'static str,
    value: &str,
    bits: u32,
) -> Result<u64, OptionsError> {
    let n = goflags::parse_uint(value, bits).map_err(|m| invalid(flag, m))?;
    if goflags::is_non_decimal(value) {
        diagnostics.push(Diagnostic::warning(
            "options",
            format!("--{flag} {value:?} is read as Go reads it (as kube-ovn-speaker does): {n}"),
        ));
    }
    Ok(n)
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

fn parse_ips(flag: &'static str, values: &[String]) -> Result<Vec<IpAddr>, OptionsError> {
    goflags::parse_ip_slice(values).map_err(|m| invalid(flag, m))
}

/// What makes `ip` unusable as an announced next hop, if anything.
fn unusable_next_hop(ip: IpAddr) -> Option<&'static str> {
    if let Some(what) = goflags::unusable_peer_address(ip) {
        return Some(what);
    }
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Some("a loopback address"),
        IpAddr::V4(v4) if v4.is_link_local() => Some("a link-local address"),
        IpAddr::V6(v6) if v6.is_loopback() => Some("the loopback address"),
        _ => None,
    }
}

/// kube-ovn's `util.SplitStringIP` on `POD_IPS`/`POD_IP`, keeping the IPv4 address: one address,
/// or exactly two of different families; anything else is ignored (`Err` carries it, for a
/// warning), as kube-ovn-speaker ignores it.
fn pod_ipv4(value: &str) -> Result<Option<Ipv4Addr>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let parse = |s: &str| goflags::parse_ip(s.split('/').next().unwrap_or(s));
    let parts: Vec<&str> = value.split(',').collect();
    let ips: Vec<Option<IpAddr>> = match parts.as_slice() {
        [one] => vec![parse(one)],
        [a, b] => vec![parse(a), parse(b)],
        _ => vec![None],
    };
    match ips.as_slice() {
        [Some(IpAddr::V4(v4))] => Ok(Some(*v4)),
        [Some(IpAddr::V6(_))] => Ok(None),
        [Some(a), Some(b)] if a.is_ipv4() != b.is_ipv4() => {
            Ok([a, b].iter().find_map(|ip| match ip {
                IpAddr::V4(v4) => Some(*v4),
                IpAddr::V6(_) => None,
            }))
        }
        _ => Err(value.to_string()),
    }
}

/// `--neighbor-local-address NEIGHBOR=LOCAL`: each NEIGHBOR a configured neighbor, LOCAL of its
/// family, usable, and in the family's allowed list when there is one.
fn parse_local_addresses(
    values: &[String],
    neighbors_v4: &[Ipv4Addr],
    neighbors_v6: &[Ipv6Addr],
    allowed_v4: &[Ipv4Addr],
    allowed_v6: &[Ipv6Addr],
) -> Result<BTreeMap<IpAddr, IpAddr>, OptionsError> {
    const FLAG: &str = "neighbor-local-address";
    let mut out = BTreeMap::new();
    for value in values {
        let Some((n, l)) = value.split_once('=') else {
            return Err(invalid(
                FLAG,
                format!("{value:?} is not NEIGHBOR=LOCAL (e.g. 192.0.2.254=192.0.2.11)"),
            ));
        };
        let (Some(neighbor), Some(local)) =
            (goflags::parse_single_ip(n), goflags::parse_single_ip(l))
        else {
            return Err(invalid(
                FLAG,
                format!("{value:?} is not NEIGHBOR=LOCAL with two IP addresses"),
            ));
        };
        let known = match neighbor {
            IpAddr::V4(v4) => neighbors_v4.contains(&v4),
            IpAddr::V6(v6) => neighbors_v6.contains(&v6),
        };
        if !known {
            return Err(invalid(
                FLAG,
                format!(
                    "{neighbor} is not one of the neighbors (--neighbor-address, --neighbor-ipv6-address)"
                ),
            ));
        }
        check_local_address(neighbor, local, allowed_v4, allowed_v6)
            .map_err(|m| invalid(FLAG, m))?;
        if out.insert(neighbor, local).is_some_and(|old| old != local) {
            return Err(invalid(
                FLAG,
                format!("{neighbor} is given two local addresses"),
            ));
        }
    }
    Ok(out)
}

/// Whether `local` may be the session address for `neighbor`.
fn check_local_address(
    neighbor: IpAddr,
    local: IpAddr,
    allowed_v4: &[Ipv4Addr],
    allowed_v6: &[Ipv6Addr],
) -> Result<(), String> {
    if neighbor.is_ipv4() != local.is_ipv4() {
        return Err(format!(
            "invalid local address {local} for {} BGP neighbor {neighbor}",
            if neighbor.is_ipv4() { "IPv4" } else { "IPv6" }
        ));
    }
    if let Some(what) = unusable_next_hop(local) {
        return Err(format!(
            "local address {local} for neighbor {neighbor} is {what}"
        ));
    }
    let allowed: Vec<IpAddr> = match local {
        IpAddr::V4(_) => allowed_v4.iter().map(|&a| IpAddr::V4(a)).collect(),
        IpAddr::V6(_) => allowed_v6.iter().map(|&a| IpAddr::V6(a)).collect(),
    };
    if !allowed.is_empty() && !allowed.contains(&local) {
        return Err(format!(
            "selected local address {local} for BGP neighbor {neighbor} is not in the allowed source address list [{}]",
            allowed
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

impl SpeakerOptions {
    /// The neighbors whose local address must come from a route lookup: those of a family with
    /// an allowed-source list and no `--neighbor-local-address`.
    pub fn route_lookups_needed(&self) -> Vec<IpAddr> {
        let v4 = (!self.allowed_source_v4.is_empty())
            .then(|| self.neighbors_v4.iter().map(|&a| IpAddr::V4(a)))
            .into_iter()
            .flatten();
        let v6 = (!self.allowed_source_v6.is_empty())
            .then(|| self.neighbors_v6.iter().map(|&a| IpAddr::V6(a)))
            .into_iter()
            .flatten();
        v4.chain(v6)
            .filter(|n| !self.local_addresses.contains_key(n))
            .collect()
    }

    /// Pins `neighbor`'s local address from the kernel's routes to it, as kube-ovn-speaker's
    /// `selectNeighborLocalAddressFromRoutes` does: the first preferred source address of the
    /// neighbor's family that is in the allowed list. `sources` are the preferred source
    /// addresses of the routes the lookup returned, in order (`None` for a route without one);
    /// `Err` is the lookup's own failure. No address fits: an error naming the neighbor.
    pub fn pin_from_routes(
        &mut self,
        neighbor: IpAddr,
        sources: Result<Vec<Option<IpAddr>>, String>,
    ) -> Result<IpAddr, OptionsError> {
        let flag = if neighbor.is_ipv4() {
            "allowed-source-addresses"
        } else {
            "allowed-source-ipv6-addresses"
        };
        let sources = sources.map_err(|e| {
            invalid(
                flag,
                format!("failed to determine local address for BGP neighbor {neighbor} from route lookup: {e}"),
            )
        })?;
        let mut saw_source = false;
        let mut first_error = None;
        let mut family_error = None;
        for src in sources.into_iter().flatten() {
            saw_source = true;
            if src.is_ipv4() != neighbor.is_ipv4() {
                family_error.get_or_insert_with(|| {
                    format!("route lookup gave local address {src} of the other family for BGP neighbor {neighbor}")
                });
                continue;
            }
            match check_local_address(
                neighbor,
                src,
                &self.allowed_source_v4,
                &self.allowed_source_v6,
            ) {
                Ok(()) => {
                    self.local_addresses.insert(neighbor, src);
                    return Ok(src);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let message = if !saw_source {
            format!(
                "failed to determine local address for BGP neighbor {neighbor}: route lookup returned no source address"
            )
        } else {
            first_error
                .or(family_error)
                .unwrap_or_else(|| format!("no usable local address for BGP neighbor {neighbor}"))
        };
        Err(invalid(
            flag,
            format!(
                "{message}; the neighbor is refused until the route to it uses an allowed source address"
            ),
        ))
    }
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
        Some(v) => match parse_go_uint(&mut diagnostics, "ebgp-multihop", v, 8) {
            Ok(n) if n >= 1 => n as u8,
            _ => {
                return Err(invalid(
                    "ebgp-multihop",
                    format!("the bgp MultihopTtl must be in the range 1 to 255, got {v:?}"),
                ));
            }
        },
    };

    let mut neighbors_v4 = Vec::new();
    for n in parse_ips("neighbor-address", &args.neighbor_address)? {
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
    let mut neighbors_v6 = Vec::new();
    for n in parse_ips("neighbor-ipv6-address", &args.neighbor_ipv6_address)? {
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
    for (flag, ip) in neighbors_v4
        .iter()
        .map(|&a| ("neighbor-address", IpAddr::V4(a)))
        .chain(
            neighbors_v6
                .iter()
                .map(|&a| ("neighbor-ipv6-address", IpAddr::V6(a))),
        )
    {
        if let Some(what) = goflags::unusable_peer_address(ip) {
            return Err(invalid(
                flag,
                format!("{ip} is {what}: no BGP session can be opened to it"),
            ));
        }
    }
    neighbors_v4.sort();
    neighbors_v4.dedup();
    neighbors_v6.sort();
    neighbors_v6.dedup();

    let mut allowed_source_v4 = Vec::new();
    for ip in parse_ips("allowed-source-addresses", &args.allowed_source_addresses)? {
        match ip {
            IpAddr::V4(v4) => allowed_source_v4.push(v4),
            IpAddr::V6(v6) => {
                return Err(invalid(
                    "allowed-source-addresses",
                    format!("{v6} is not an IPv4 address (use --allowed-source-ipv6-addresses)"),
                ));
            }
        }
    }
    let mut allowed_source_v6 = Vec::new();
    for ip in parse_ips(
        "allowed-source-ipv6-addresses",
        &args.allowed_source_ipv6_addresses,
    )? {
        match ip {
            IpAddr::V6(v6) => allowed_source_v6.push(v6),
            IpAddr::V4(v4) => {
                return Err(invalid(
                    "allowed-source-ipv6-addresses",
                    format!("{v4} is not an IPv6 address (use --allowed-source-addresses)"),
                ));
            }
        }
    }
    allowed_source_v4.sort();
    allowed_source_v4.dedup();
    allowed_source_v6.sort();
    allowed_source_v6.dedup();

    let cluster_as = parse_asn(&mut diagnostics, "cluster-as", args.cluster_as.as_deref())?;
    let neighbor_as = parse_asn(&mut diagnostics, "neighbor-as", args.neighbor_as.as_deref())?;
    let node_name = args
        .node_name
        .clone()
        .or_else(|| env.node_name.clone())
        .map(|n| n.trim().to_lowercase())
        .filter(|n| !n.is_empty());

    let enable_bfd = parse_bool("enable-bfd", args.enable_bfd.as_deref())?;
    // pflag parses the BFD values whatever --enable-bfd says; kube-ovn-speaker checks their
    // ranges only when BFD is on, among its missing-flag checks.
    let bfd_min_tx = match args.bfd_min_tx.as_deref() {
        None => DEFAULT_BFD_INTERVAL_MS,
        Some(v) => parse_go_uint(&mut diagnostics, "bfd-min-tx", v, 32)? as u32,
    };
    let bfd_min_rx = match args.bfd_min_rx.as_deref() {
        None => DEFAULT_BFD_INTERVAL_MS,
        Some(v) => parse_go_uint(&mut diagnostics, "bfd-min-rx", v, 32)? as u32,
    };
    let bfd_multiplier = match args.bfd_detection_multiplier.as_deref() {
        None => DEFAULT_BFD_MULTIPLIER,
        Some(v) => parse_go_uint(&mut diagnostics, "bfd-detection-multiplier", v, 8)? as u8,
    };

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
            "--node-name (or the NODE_NAME or KUBE_NODE_NAME environment variable) must be specified in node mode",
        );
    }
    if enable_bfd {
        if bfd_multiplier == 0 {
            missing.push("--bfd-detection-multiplier must be between 1 and 255");
        }
        if bfd_min_tx == 0 {
            missing.push("--bfd-min-tx must be > 0");
        } else if bfd_min_tx > BFD_MAX_INTERVAL_MS {
            missing.push("--bfd-min-tx must be <= 4294967 ms");
        }
        if bfd_min_rx == 0 {
            missing.push("--bfd-min-rx must be > 0");
        } else if bfd_min_rx > BFD_MAX_INTERVAL_MS {
            missing.push("--bfd-min-rx must be <= 4294967 ms");
        }
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
    args.ignored.validate(nat_mode)?;

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
        Some(r) if !r.is_empty() => match goflags::parse_ip(r) {
            Some(IpAddr::V4(v4)) if v4.is_unspecified() => {
                return Err(invalid(
                    "router-id",
                    "0.0.0.0 is not a usable BGP router ID (BIRD refuses to start with it, and peers reject an OPEN carrying it); give the speaker's IPv4 address",
                ));
            }
            Some(IpAddr::V4(v4)) => v4,
            Some(IpAddr::V6(_)) => {
                return Err(invalid(
                    "router-id",
                    format!("{r} is IPv6; a BGP router ID is an IPv4 address"),
                ));
            }
            None => {
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
            match pod_ipv4(pod_ips) {
                Ok(Some(ip)) => ip,
                found => {
                    if let Err(bad) = found {
                        diagnostics.push(Diagnostic::warning(
                            "options",
                            format!(
                                "POD_IPS/POD_IP {bad:?} is not one address or one address of each family; ignored, as kube-ovn-speaker does"
                            ),
                        ));
                    }
                    diagnostics.push(Diagnostic::warning(
                        "options",
                        "no --router-id and no IPv4 address in POD_IPS/POD_IP: using router ID 0.0.0.0, with which GoBGP and FRR sessions never come up (BIRD picks one of the host's IPv4 addresses instead); set --router-id",
                    ));
                    Ipv4Addr::UNSPECIFIED
                }
            }
        }
    };

    let mut node_ip_v4 = None;
    let mut node_ip_v6 = None;
    for ip in parse_ips("node-ips", &args.node_ips)? {
        if let Some(what) = unusable_next_hop(ip) {
            return Err(invalid(
                "node-ips",
                format!("{ip} is {what}: no router accepts it as a next hop"),
            ));
        }
        let previous = match ip {
            IpAddr::V4(v4) => node_ip_v4.replace(v4).map(IpAddr::V4),
            IpAddr::V6(v6) => node_ip_v6.replace(v6).map(IpAddr::V6),
        };
        if let Some(previous) = previous
            && previous != ip
        {
            return Err(invalid(
                "node-ips",
                format!(
                    "{previous} and {ip} are of the same family; give at most one IPv4 and one IPv6 address"
                ),
            ));
        }
    }

    let local_addresses = parse_local_addresses(
        &args.neighbor_local_address,
        &neighbors_v4,
        &neighbors_v6,
        &allowed_source_v4,
        &allowed_source_v6,
    )?;

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
    // Any password kube-ovn-speaker takes is taken here; a daemon that cannot write one of its
    // characters refuses it when rendering (render::password_problem).
    let password = password.filter(|p| !p.is_empty()).map(Secret::new);

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
        enabled: enable_bfd,
        min_tx_ms: bfd_min_tx,
        min_rx_ms: bfd_min_rx,
        multiplier: bfd_multiplier,
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
        allowed_source_v4,
        allowed_source_v6,
        local_addresses,
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
