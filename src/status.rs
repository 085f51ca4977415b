//! The sidecar's observable state, shared with the HTTP endpoint: readiness, the current intent,
//! and the counters behind `/metrics` (Prometheus text format, written by hand: a dozen lines do
//! not justify a metrics crate and its registry).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use crate::intent::Intent;
use crate::model::Family;

#[derive(Debug, Default, Clone)]
pub struct Status {
    /// The first apply succeeded (and the source had completed its initial sync).
    pub ready: bool,
    /// The intent in force on the daemon.
    pub intent: Option<Intent>,
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
}

impl Status {
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
            "Whether the first apply succeeded.",
            "gauge",
            vec![(String::new(), flag(self.ready))],
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

#[cfg(test)]
mod tests {
    use super::Status;

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
