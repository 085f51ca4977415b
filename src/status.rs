//! The sidecar's observable state, shared with the HTTP endpoint: readiness, the current intent,
//! the sessions as last read back from the daemon, and the counters behind `/metrics`.
//!
//! `/metrics` is the Prometheus text format written by hand from this snapshot on every scrape.
//! A metrics crate (prometheus-client) was considered and not taken: its registry model keeps
//! live metric handles updated in place, so series of a peer that disappeared (a neighbor
//! removed, an AS changed) would have to be deleted by hand, as kube-ovn-speaker does; rendering
//! from one snapshot under one lock gives consistent series with nothing stale, and the format is
//! a few lines of code.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use std::net::IpAddr;

use crate::daemon::Backend;
use crate::daemon::observe::{Drift, Observation};
use crate::intent::Intent;
use crate::model::Family;

/// Why the configuration in force may differ from the intent (docs/design.md section 9: `/readyz` is 503
/// while any holds). Session state is not one: it is reported by metrics and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stale {
    /// Nothing has been applied yet.
    FirstApply,
    /// The last apply failed or was refused (by the daemon's checker, its reload, or because
    /// the options or templates are invalid): the previous configuration is in force.
    ApplyFailed,
    /// The daemon needs a restart to take the configuration (GoBGP `[global]` without
    /// `--spawn`): it runs the previous one.
    RestartNeeded,
    /// The input was rejected (a broken manifest): the configuration in force is that of the
    /// last good input, not of the current one.
    InputRejected,
    /// The daemon does not answer (or, with `--spawn`, is not running).
    DaemonUnreachable,
    /// The source is not in sync (API server unreachable, watch failing).
    SourceDown,
}

impl Stale {
    pub const ALL: [Stale; 6] = [
        Stale::FirstApply,
        Stale::ApplyFailed,
        Stale::RestartNeeded,
        Stale::InputRejected,
        Stale::DaemonUnreachable,
        Stale::SourceDown,
    ];

    /// The `reason` label of `bgpgen_config_stale_reason`.
    pub fn label(self) -> &'static str {
        match self {
            Stale::FirstApply => "first_apply",
            Stale::ApplyFailed => "apply_failed",
            Stale::RestartNeeded => "restart_needed",
            Stale::InputRejected => "input_rejected",
            Stale::DaemonUnreachable => "daemon_unreachable",
            Stale::SourceDown => "source_down",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Status {
    /// Why the configuration in force may differ from the intent, with the details; empty when
    /// the configuration in force is the intent of the current input (ready).
    pub stale: BTreeMap<Stale, String>,
    /// The intent in force on the daemon.
    pub intent: Option<std::sync::Arc<Intent>>,
    /// The hash of the last intent that was tried and not applied (shown by `/intent` while it
    /// is not in force).
    pub wanted_hash: Option<String>,
    pub applies_ok: u64,
    pub applies_unchanged: u64,
    pub applies_failed: u64,
    pub input_errors: u64,
    pub last_apply: Option<Duration>,
    pub last_success: Option<SystemTime>,
    pub daemon_reachable: bool,
    /// False while the source (e.g. the Kubernetes API) is unreachable or resyncing.
    pub source_up: bool,
    pub last_error: Option<String>,
    /// What the driver counts of its own work (GoBGP: paths sent through its API).
    pub driver_metrics: Vec<crate::daemon::DriverMetric>,
    /// `--spawn`: daemons started, and restarts by reason (`exited`, `unreachable`,
    /// `config`).
    pub daemon_starts: u64,
    pub daemon_restarts: BTreeMap<&'static str, u64>,
    /// The daemon, once the sidecar runs.
    pub backend: Option<Backend>,
    /// The sessions as last read back from the daemon.
    pub observation: Option<Observation>,
    /// Why the last read-back failed, if it did.
    pub observe_error: Option<String>,
    /// Drops of each session bgpgen saw (Established, then not): the flap count of daemons that
    /// count none (BIRD).
    pub drops_seen: BTreeMap<IpAddr, u64>,
    /// Differences between what established neighbors are sent and the intent, as last read.
    pub drift: Vec<Drift>,
    /// Differences confirmed (seen on two read-backs in a row), per neighbor and family.
    pub drift_detected: BTreeMap<(IpAddr, Family), u64>,
    /// Repairs of a confirmed difference, by result (`ok`, `failed`).
    pub repairs: BTreeMap<&'static str, u64>,
    /// The last apply, for `/status`.
    pub last_apply_result: Option<crate::report::LastApply>,
}

impl Default for Status {
    fn default() -> Status {
        Status {
            stale: BTreeMap::from([(
                Stale::FirstApply,
                "waiting for the first successful apply".to_string(),
            )]),
            intent: None,
            wanted_hash: None,
            applies_ok: 0,
            applies_unchanged: 0,
            applies_failed: 0,
            input_errors: 0,
            last_apply: None,
            last_success: None,
            daemon_reachable: false,
            source_up: false,
            last_error: None,
            driver_metrics: Vec::new(),
            daemon_starts: 0,
            daemon_restarts: BTreeMap::new(),
            backend: None,
            observation: None,
            observe_error: None,
            drops_seen: BTreeMap::new(),
            drift: Vec::new(),
            drift_detected: BTreeMap::new(),
            repairs: BTreeMap::new(),
            last_apply_result: None,
        }
    }
}

impl Status {
    /// True when the configuration in force is the intent of the current input.
    pub fn ready(&self) -> bool {
        self.stale.is_empty()
    }

    pub fn set_stale(&mut self, why: Stale, detail: impl Into<String>) {
        self.stale.insert(why, detail.into());
    }

    pub fn clear_stale(&mut self, why: Stale) {
        self.stale.remove(&why);
    }

    /// The body of `/readyz`: `ready`, or `not ready:` and one line per reason.
    pub fn readiness(&self) -> String {
        if self.ready() {
            return "ready\n".to_string();
        }
        let mut out = String::from("not ready: the configuration in force is not the intent\n");
        for (why, detail) in &self.stale {
            let _ = writeln!(out, "{}: {}", why.label(), one_line(detail));
        }
        out
    }

    /// The body of `/intent`: the intent in force (password redacted), preceded, while it is
    /// not the intent of the current input, by comment lines saying why (still valid YAML).
    pub fn intent_text(&self) -> Option<String> {
        let intent = self.intent.as_ref()?;
        let mut out = String::new();
        if !self.ready() {
            let _ = writeln!(
                out,
                "# STALE: this is the intent in force on the daemon, not that of the current input"
            );
            if let Some(hash) = &self.wanted_hash
                && *hash != intent.hash
            {
                let _ = writeln!(out, "# wanted and not in force: {hash}");
            }
            for (why, detail) in &self.stale {
                let _ = writeln!(out, "# {}: {}", why.label(), one_line(detail));
            }
        }
        out.push_str(&intent.to_yaml(false));
        Some(out)
    }

    /// `/intent?format=json`: the intent in force as `compile -o json` prints it (password
    /// redacted), with a top-level `stale` list (`reason: detail`) while it is not the intent of
    /// the current input.
    pub fn intent_json(&self) -> Option<String> {
        let intent = self.intent.as_ref()?;
        let mut value = intent.to_json_value(false);
        if !self.ready()
            && let serde_json::Value::Object(map) = &mut value
        {
            let mut stale: Vec<serde_json::Value> = self
                .stale
                .iter()
                .map(|(why, detail)| format!("{}: {}", why.label(), one_line(detail)).into())
                .collect();
            if let Some(hash) = &self.wanted_hash
                && *hash != intent.hash
            {
                stale.push(format!("wanted and not in force: {hash}").into());
            }
            map.insert("stale".to_string(), serde_json::Value::Array(stale));
        }
        let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
        text.push('\n');
        Some(text)
    }

    pub fn metrics(&self) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, kind: &str, lines: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in lines {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let routes = |family: Family| {
            self.intent
                .as_ref()
                .map(|i| i.announced().filter(|r| r.family == family).count())
                .unwrap_or(0)
        };
        gauge(
            "bgpgen_routes_announced",
            "Routes in the applied intent, per address family.",
            "gauge",
            vec![
                (
                    "{family=\"ipv4-unicast\"}".into(),
                    routes(Family::Ipv4Unicast).to_string(),
                ),
                (
                    "{family=\"ipv6-unicast\"}".into(),
                    routes(Family::Ipv6Unicast).to_string(),
                ),
            ],
        );
        gauge(
            "bgpgen_applies_total",
            "Apply attempts by result.",
            "counter",
            vec![
                ("{result=\"ok\"}".into(), self.applies_ok.to_string()),
                (
                    "{result=\"unchanged\"}".into(),
                    self.applies_unchanged.to_string(),
                ),
                (
                    "{result=\"failed\"}".into(),
                    self.applies_failed.to_string(),
                ),
            ],
        );
        gauge(
            "bgpgen_input_errors_total",
            "Inputs (manifests, options) rejected; the last good configuration stayed in force.",
            "counter",
            vec![(String::new(), self.input_errors.to_string())],
        );
        gauge(
            "bgpgen_last_apply_duration_seconds",
            "Duration of the last apply.",
            "gauge",
            vec![(
                String::new(),
                format!(
                    "{:.6}",
                    self.last_apply.map(|d| d.as_secs_f64()).unwrap_or(0.0)
                ),
            )],
        );
        gauge(
            "bgpgen_last_successful_apply_timestamp_seconds",
            "Unix time of the last successful apply.",
            "gauge",
            vec![(
                String::new(),
                format!(
                    "{:.3}",
                    self.last_success
                        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                        .map(|d| d.as_secs_f64())
                        .unwrap_or(0.0)
                ),
            )],
        );
        let flag = |b: bool| if b { "1" } else { "0" }.to_string();
        gauge(
            "bgpgen_daemon_reachable",
            "Whether the routing daemon answered.",
            "gauge",
            vec![(String::new(), flag(self.daemon_reachable))],
        );
        gauge(
            "bgpgen_source_up",
            "Whether the source of cluster state is in sync.",
            "gauge",
            vec![(String::new(), flag(self.source_up))],
        );
        gauge(
            "bgpgen_ready",
            "Whether the configuration in force is the intent of the current input (/readyz 200).",
            "gauge",
            vec![(String::new(), flag(self.ready()))],
        );
        gauge(
            "bgpgen_config_stale",
            "1 while the configuration in force differs from the intent (the reasons are in bgpgen_config_stale_reason and /readyz).",
            "gauge",
            vec![(String::new(), flag(!self.ready()))],
        );
        gauge(
            "bgpgen_config_stale_reason",
            "Why the configuration in force differs from the intent, one series per reason.",
            "gauge",
            Stale::ALL
                .iter()
                .map(|why| {
                    (
                        format!("{{reason=\"{}\"}}", why.label()),
                        flag(self.stale.contains_key(why)),
                    )
                })
                .collect(),
        );
        gauge(
            "bgpgen_daemon_starts_total",
            "Daemons started by bgpgen (--spawn).",
            "counter",
            vec![(String::new(), self.daemon_starts.to_string())],
        );
        gauge(
            "bgpgen_daemon_restarts_total",
            "Daemons restarted by bgpgen (--spawn), by reason.",
            "counter",
            ["exited", "unreachable", "config"]
                .iter()
                .map(|reason| {
                    (
                        format!("{{reason=\"{reason}\"}}"),
                        self.daemon_restarts
                            .get(reason)
                            .copied()
                            .unwrap_or(0)
                            .to_string(),
                    )
                })
                .collect(),
        );
        self.session_metrics(&mut gauge);
        self.skipped_metrics(&mut gauge);
        for m in &self.driver_metrics {
            gauge(
                m.name,
                m.help,
                m.kind,
                m.samples
                    .iter()
                    .map(|(labels, value)| (labels.clone(), value.to_string()))
                    .collect(),
            );
        }
        out
    }
}

impl Status {
    /// The node label of kube-ovn-speaker's series: the node (node mode) or the gateway.
    fn node_label(&self) -> String {
        self.intent
            .as_ref()
            .and_then(|i| i.speaker.node.clone().or_else(|| i.speaker.gateway.clone()))
            .unwrap_or_default()
    }

    /// kube-ovn-speaker's per-peer series (same names, labels and encodings as its
    /// `pkg/speaker/metrics.go`, all gauges), and bgpgen's advertised/expected prefixes.
    fn session_metrics(&self, gauge: &mut impl FnMut(&str, &str, &str, Vec<(String, String)>)) {
        let peers = crate::report::peers(self);
        let node = label_value(&self.node_label());
        let base = |p: &crate::report::Peer| {
            format!(
                "node=\"{node}\",peer=\"{}\",peer_asn=\"{}\"",
                p.address, p.remote_as
            )
        };
        let per_peer = |f: &dyn Fn(&crate::report::Peer) -> Option<u64>| -> Vec<(String, String)> {
            peers
                .iter()
                .filter_map(|p| Some((format!("{{{}}}", base(p)), f(p)?.to_string())))
                .collect()
        };
        gauge(
            "kube_ovn_speaker_bgp_peer_up",
            "Whether the BGP session with the peer is established (1) or not (0).",
            "gauge",
            per_peer(&|p| Some(u64::from(p.established()))),
        );
        gauge(
            "kube_ovn_speaker_bgp_peer_session_state",
            "BGP session FSM state of the peer (0=unspecified,1=idle,2=connect,3=active,4=opensent,5=openconfirm,6=established).",
            "gauge",
            per_peer(&|p| Some(u64::from(p.state_code))),
        );
        gauge(
            "kube_ovn_speaker_bgp_peer_flap_count",
            "Number of times the BGP session with the peer has flapped.",
            "gauge",
            per_peer(&|p| p.flaps),
        );
        gauge(
            "kube_ovn_speaker_bgp_peer_out_queue",
            "Number of BGP messages queued to be sent to the peer.",
            "gauge",
            per_peer(&|p| p.out_queue),
        );
        for (name, help, pick) in [
            (
                "kube_ovn_speaker_bgp_peer_received_messages",
                "Cumulative number of BGP messages received from the peer, by message type.",
                true,
            ),
            (
                "kube_ovn_speaker_bgp_peer_sent_messages",
                "Cumulative number of BGP messages sent to the peer, by message type.",
                false,
            ),
        ] {
            let mut lines = Vec::new();
            for p in &peers {
                let counts = if pick {
                    &p.messages_received
                } else {
                    &p.messages_sent
                };
                for ty in crate::daemon::observe::MESSAGE_TYPES {
                    if let Some(v) = counts.as_ref().and_then(|m| m.get(ty)) {
                        lines.push((
                            format!("{{node=\"{node}\",peer=\"{}\",type=\"{ty}\"}}", p.address),
                            v.to_string(),
                        ));
                    }
                }
            }
            gauge(name, help, "gauge", lines);
        }
        let bfd: Vec<(&crate::report::Peer, crate::daemon::observe::BfdState)> = peers
            .iter()
            .filter_map(|p| {
                let b = p.bfd.as_deref()?;
                Some((p, crate::daemon::observe::BfdState::parse(b)))
            })
            .collect();
        // Families always listed; samples only for peers whose daemon reports BFD.
        let lines = |f: &dyn Fn(crate::daemon::observe::BfdState) -> u8| {
            bfd.iter()
                .map(|(p, b)| {
                    (
                        format!("{{node=\"{node}\",peer=\"{}\"}}", p.address),
                        f(*b).to_string(),
                    )
                })
                .collect()
        };
        gauge(
            "kube_ovn_speaker_bfd_peer_up",
            "Whether the BFD session with the peer is UP (1) or not (0).",
            "gauge",
            lines(&|b| u8::from(b == crate::daemon::observe::BfdState::Up)),
        );
        gauge(
            "kube_ovn_speaker_bfd_peer_session_state",
            "Local BFD session state of the peer (0=unspecified,1=up,2=down,3=admin_down,4=init).",
            "gauge",
            lines(&|b| b.number()),
        );
        for (name, help, advertised) in [
            (
                "bgpgen_peer_advertised_prefixes",
                "Prefixes the daemon advertises to the peer, per address family (established sessions).",
                true,
            ),
            (
                "bgpgen_peer_expected_prefixes",
                "Prefixes the intent wants advertised to the peer, per address family.",
                false,
            ),
        ] {
            let mut lines = Vec::new();
            for p in &peers {
                let counts = if advertised {
                    &p.advertised
                } else {
                    &p.expected
                };
                let families: std::collections::BTreeSet<Family> = p
                    .expected
                    .keys()
                    .chain(p.advertised.keys())
                    .copied()
                    .collect();
                for f in families {
                    lines.push((
                        format!("{{{},family=\"{f}\"}}", base(p)),
                        counts.get(&f).copied().unwrap_or(0).to_string(),
                    ));
                }
            }
            gauge(name, help, "gauge", lines);
        }
        gauge(
            "bgpgen_advertisement_drift_total",
            "Differences between what a neighbor is sent and the intent, confirmed on two read-backs in a row (then repaired), per peer and family.",
            "counter",
            self.drift_detected
                .iter()
                .map(|((peer, family), n)| {
                    (
                        format!("{{peer=\"{peer}\",family=\"{family}\"}}"),
                        n.to_string(),
                    )
                })
                .collect(),
        );
        gauge(
            "bgpgen_advertisement_repairs_total",
            "Repairs of a difference between what a neighbor is sent and the intent, by result.",
            "counter",
            ["ok", "failed"]
                .iter()
                .map(|r| {
                    (
                        format!("{{result=\"{r}\"}}"),
                        self.repairs.get(r).copied().unwrap_or(0).to_string(),
                    )
                })
                .collect(),
        );
        gauge(
            "bgpgen_observe_ok",
            "Whether the last read-back of the sessions from the daemon succeeded.",
            "gauge",
            vec![(
                String::new(),
                u8::from(self.observation.is_some() && self.observe_error.is_none()).to_string(),
            )],
        );
    }

    /// Objects the intent in force skips (its warning diagnostics), by kind and reason.
    fn skipped_metrics(&self, gauge: &mut impl FnMut(&str, &str, &str, Vec<(String, String)>)) {
        let mut counts: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
        for d in self.intent.iter().flat_map(|i| i.diagnostics.iter()) {
            if d.level != crate::diagnostic::Level::Warning {
                continue;
            }
            let Some((kind, _)) = d.object.split_once('/') else {
                continue;
            };
            if crate::model::Kind::parse_loose(kind).is_none() {
                continue;
            }
            *counts
                .entry((kind.to_string(), skip_reason(&d.message)))
                .or_default() += 1;
        }
        gauge(
            "bgpgen_objects_skipped",
            "Objects of the intent in force with a warning (most not announced), by kind and reason.",
            "gauge",
            counts
                .into_iter()
                .map(|((kind, reason), n)| {
                    (
                        format!("{{kind=\"{}\",reason=\"{reason}\"}}", label_value(&kind)),
                        n.to_string(),
                    )
                })
                .collect(),
        );
    }
}

/// The `reason` label of `bgpgen_objects_skipped`, from the diagnostic's message (compile's
/// reasons, DESIGN section 2).
pub fn skip_reason(message: &str) -> &'static str {
    let m = message;
    if m.contains("invalid ovn.kubernetes.io/bgp value") {
        "invalid_annotation"
    } else if m.contains("is not supported on a") {
        "unsupported_value"
    } else if m.contains("is not an IP address or CIDR") {
        "unparsable_address"
    } else if m.contains("which no router should receive") {
        "unusable_address"
    } else if m.contains("host bits are set") {
        "host_bits"
    } else if m.contains("natOutgoing") {
        "nat_outgoing"
    } else if m.contains("no neighbor carries") {
        "family_not_carried"
    } else if m.contains("is outside subnet") || m.contains("has no CIDR this address") {
        "outside_subnet"
    } else {
        "other"
    }
}

/// A Prometheus label value: `\`, `"` and line breaks escaped.
fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A detail on one line (error messages from daemons can span several).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_names_every_reason() {
        let mut s = Status::default();
        assert!(!s.ready());
        assert!(
            s.readiness().contains("first_apply: waiting"),
            "{}",
            s.readiness()
        );
        s.clear_stale(Stale::FirstApply);
        assert!(s.ready());
        assert_eq!(s.readiness(), "ready\n");
        s.set_stale(Stale::ApplyFailed, "bird: syntax error\n  line 3");
        s.set_stale(Stale::SourceDown, "API server unreachable");
        let body = s.readiness();
        assert!(
            body.contains("apply_failed: bird: syntax error line 3\n"),
            "{body}"
        );
        assert!(
            body.contains("source_down: API server unreachable\n"),
            "{body}"
        );
        let metrics = s.metrics();
        assert!(metrics.contains("bgpgen_config_stale 1\n"), "{metrics}");
        assert!(
            metrics.contains("bgpgen_config_stale_reason{reason=\"apply_failed\"} 1\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("bgpgen_config_stale_reason{reason=\"first_apply\"} 0\n"),
            "{metrics}"
        );
        assert!(metrics.contains("bgpgen_ready 0\n"), "{metrics}");
    }

    #[test]
    fn gobgp_paths_sent_only_for_gobgp() {
        let none = Status::default().metrics();
        assert!(!none.contains("bgpgen_gobgp_paths_sent_total"), "{none}");
        let driver = crate::daemon::of(crate::daemon::Backend::Gobgp).driver(
            crate::daemon::driver::DaemonOptions {
                config_file: "/nonexistent/gobgpd.toml".into(),
                gobgp_api: "127.0.0.1:1".into(),
                gobgpd_pid_file: None,
                bird_socket: "/nonexistent/bird.ctl".into(),
                frr_vty_socket: "/nonexistent".into(),
            },
        );
        let mut metrics = driver.metrics();
        metrics[0].samples = vec![
            ("{op=\"add\"}".into(), 100_001.0),
            ("{op=\"delete\"}".into(), 2.0),
        ];
        let status = Status {
            driver_metrics: metrics,
            ..Status::default()
        };
        let text = status.metrics();
        assert!(
            text.contains("# TYPE bgpgen_gobgp_paths_sent_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("bgpgen_gobgp_paths_sent_total{op=\"add\"} 100001\n"),
            "{text}"
        );
        assert!(
            text.contains("bgpgen_gobgp_paths_sent_total{op=\"delete\"} 2\n"),
            "{text}"
        );
    }

    fn observed() -> Status {
        use crate::daemon::observe::{Observation, PeerObservation, SessionState};
        let yaml = r#"
apiVersion: bgpgen/v1
kind: Intent
speaker: {mode: node, node: node-1, gateway: null, routerId: 192.0.2.1, localAs: 65000}
bgp:
  holdTime: 90
  keepalive: 30
  passive: false
  ebgpMultihopTtl: 1
  extendedNexthop: false
  gracefulRestart: {enabled: false, restartTime: 90, deferralTime: 360}
  bfd: {enabled: false, minTxMs: 1000, minRxMs: 1000, multiplier: 3}
  password: null
neighbors:
  - {address: 192.0.2.2, remoteAs: 65030, families: [ipv4-unicast]}
  - {address: "2001:db8::2", remoteAs: 65030, families: [ipv6-unicast]}
routes:
  - {prefix: 10.16.0.5/32, family: ipv4-unicast, nextHop: self, sources: []}
  - {prefix: "fd00:10:16::5/128", family: ipv6-unicast, nextHop: self, sources: []}
diagnostics:
  - {level: warning, object: Pod/default/x, message: "not announced: invalid ovn.kubernetes.io/bgp value \"nope\" (use true, yes, cluster or local)"}
  - {level: warning, object: Pod/default/y, message: "not announced: invalid ovn.kubernetes.io/bgp value \"no\" (use true, yes, cluster or local)"}
  - {level: warning, object: Service/default/s, message: "not announced: ovn.kubernetes.io/bgp=\"local\" is not supported on a Service; only \"true\" or \"yes\" are"}
hash: "sha256:0"
"#;
        let intent: Intent = crate::source::yaml::from_str(yaml).expect("intent");
        let mut up = PeerObservation::new("192.0.2.2".parse().unwrap());
        up.remote_as = 65030;
        up.families = vec![Family::Ipv4Unicast];
        up.state = SessionState::Established;
        up.flaps = Some(2);
        up.out_queue = Some(0);
        up.received = Some(BTreeMap::from([("open", 1), ("update", 3)]));
        up.sent = Some(BTreeMap::from([("open", 2)]));
        up.advertised_count.insert(Family::Ipv4Unicast, 1);
        let mut down = PeerObservation::new("2001:db8::2".parse().unwrap());
        down.remote_as = 65030;
        down.families = vec![Family::Ipv6Unicast];
        down.state = SessionState::Active;
        Status {
            backend: Some(Backend::Frr),
            daemon_reachable: true,
            intent: Some(std::sync::Arc::new(intent)),
            observation: Some(Observation {
                at: SystemTime::now(),
                peers: vec![up, down],
            }),
            ..Status::default()
        }
    }

    #[test]
    fn kube_ovn_speaker_metrics_per_peer() {
        let text = observed().metrics();
        for line in [
            "kube_ovn_speaker_bgp_peer_up{node=\"node-1\",peer=\"192.0.2.2\",peer_asn=\"65030\"} 1\n",
            "kube_ovn_speaker_bgp_peer_up{node=\"node-1\",peer=\"2001:db8::2\",peer_asn=\"65030\"} 0\n",
            "kube_ovn_speaker_bgp_peer_session_state{node=\"node-1\",peer=\"192.0.2.2\",peer_asn=\"65030\"} 6\n",
            "kube_ovn_speaker_bgp_peer_session_state{node=\"node-1\",peer=\"2001:db8::2\",peer_asn=\"65030\"} 3\n",
            "kube_ovn_speaker_bgp_peer_flap_count{node=\"node-1\",peer=\"192.0.2.2\",peer_asn=\"65030\"} 2\n",
            "kube_ovn_speaker_bgp_peer_out_queue{node=\"node-1\",peer=\"192.0.2.2\",peer_asn=\"65030\"} 0\n",
            "kube_ovn_speaker_bgp_peer_received_messages{node=\"node-1\",peer=\"192.0.2.2\",type=\"update\"} 3\n",
            "kube_ovn_speaker_bgp_peer_sent_messages{node=\"node-1\",peer=\"192.0.2.2\",type=\"open\"} 2\n",
            "# TYPE kube_ovn_speaker_bgp_peer_up gauge\n",
            "bgpgen_peer_advertised_prefixes{node=\"node-1\",peer=\"192.0.2.2\",peer_asn=\"65030\",family=\"ipv4-unicast\"} 1\n",
            "bgpgen_peer_advertised_prefixes{node=\"node-1\",peer=\"2001:db8::2\",peer_asn=\"65030\",family=\"ipv6-unicast\"} 0\n",
            "bgpgen_peer_expected_prefixes{node=\"node-1\",peer=\"2001:db8::2\",peer_asn=\"65030\",family=\"ipv6-unicast\"} 1\n",
            "bgpgen_objects_skipped{kind=\"Pod\",reason=\"invalid_annotation\"} 2\n",
            "bgpgen_objects_skipped{kind=\"Service\",reason=\"unsupported_value\"} 1\n",
            "bgpgen_advertisement_repairs_total{result=\"ok\"} 0\n",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
        // The sent-message types the daemon does not count are absent, not zero.
        assert!(!text.contains("type=\"withdraw_prefix\""), "{text}");
    }

    #[test]
    fn an_unreachable_daemon_vouches_for_no_session() {
        let mut s = observed();
        s.daemon_reachable = false;
        let text = s.metrics();
        assert!(
            text.contains("kube_ovn_speaker_bgp_peer_up{node=\"node-1\",peer=\"192.0.2.2\",peer_asn=\"65030\"} 0\n"),
            "{text}"
        );
        let doc = crate::report::document(&s);
        assert!(doc.peers.iter().all(|p| p.state == "unknown"));
        assert!(
            doc.peers[0]
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("frr does not answer"))
        );
    }

    #[test]
    fn status_document_round_trips() {
        let doc = crate::report::document(&observed());
        let text = serde_json::to_string(&doc).unwrap();
        let back: crate::report::Document = serde_json::from_str(&text).unwrap();
        assert_eq!(back, doc);
        assert_eq!(doc.peers.len(), 2);
        assert!(doc.peers[0].healthy());
        assert!(!doc.peers[1].established());
        assert!(!crate::report::all_established(&doc));
        let table = crate::report::table(&doc);
        assert!(table.contains("192.0.2.2"), "{table}");
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("2001:db8::2") && l.contains("active")),
            "{table}"
        );
    }
}
