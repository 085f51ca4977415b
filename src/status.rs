//! The sidecar's observable state, shared with the HTTP endpoint: readiness, the current intent,
//! and the counters behind `/metrics` (Prometheus text format, written by hand: a dozen lines do
//! not justify a metrics crate and its registry).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

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
    pub intent: Option<Intent>,
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
    /// GoBGP only: paths sent to gobgpd through its API, (added or changed, withdrawn).
    pub gobgp_paths_sent: Option<(u64, u64)>,
    /// `--spawn`: daemons started, and restarts by reason (`exited`, `unreachable`,
    /// `config`).
    pub daemon_starts: u64,
    pub daemon_restarts: BTreeMap<&'static str, u64>,
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
            gobgp_paths_sent: None,
            daemon_starts: 0,
            daemon_restarts: BTreeMap::new(),
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
        if let Some((added, deleted)) = self.gobgp_paths_sent {
            gauge(
                "bgpgen_gobgp_paths_sent_total",
                "Paths sent to gobgpd through its API: add (new or changed next hop), delete (withdrawn).",
                "counter",
                vec![
                    ("{op=\"add\"}".into(), added.to_string()),
                    ("{op=\"delete\"}".into(), deleted.to_string()),
                ],
            );
        }
        out
    }
}

/// A detail on one line (error messages from daemons can span several).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::{Stale, Status};

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
        let status = Status {
            gobgp_paths_sent: Some((100_001, 2)),
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
}
