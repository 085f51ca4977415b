//! The GoBGP driver. `gobgpd.toml` stays the daemon's startup file and the reviewable artefact,
//! but SIGHUP alone is not reliable (docs/design.md: only the first changed neighbor is applied, `[global]`
//! never is), so after every reload the driver compares the daemon's peers with the intent through
//! the gRPC API and fixes the difference, and it pushes routes through the API as a diff against
//! the RIB: one changed pod is one path sent, whatever the size of the table.

use crate::daemon::driver::{
    ApplyError, ApplyOutcome, CHECK_TIMEOUT, DaemonOptions, unchanged_on_disk, validate_and_write,
};
use crate::daemon::gobgp::api::{GobgpApi, GobgpApiError, SyncStats};
use crate::daemon::process::{self, Expect, ProcessError, Signal};
use crate::daemon::validate::ValidateError;
use crate::intent::Intent;
use crate::model::Family;
use crate::render::Rendered;
use crate::routes_file;

const MAIN: &str = "gobgpd.toml";

/// Neighbors present in both configurations whose `[[neighbors]]` block changed: their sessions
/// must be reset for the new settings to be negotiated.
pub fn neighbors_to_reset(old: &str, new: &str) -> Vec<String> {
    fn blocks(text: &str) -> std::collections::BTreeMap<String, String> {
        text.split("[[neighbors]]")
            .skip(1)
            .filter_map(|block| {
                let addr = block
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("neighbor-address = "))?
                    .trim_matches('"')
                    .to_string();
                Some((addr, block.to_string()))
            })
            .collect()
    }
    let (old, new) = (blocks(old), blocks(new));
    new.iter()
        .filter(|(addr, block)| old.get(*addr).is_some_and(|o| o != *block))
        .map(|(addr, _)| addr.clone())
        .collect()
}

pub struct GobgpDriver {
    options: DaemonOptions,
    api: Option<GobgpApi>,
    /// The paths gobgpd holds, as last pushed; `None` when unknown (start, or the daemon was
    /// unreachable and may have restarted), which makes the next push a full diff against the RIB.
    pushed: Option<Vec<routes_file::Path>>,
    /// The paths of the intent in force, for re-pushing them after a restart.
    wanted: Option<Vec<routes_file::Path>>,
    /// Paths sent to gobgpd since start: (added or changed, withdrawn), for `/metrics`.
    sent: (u64, u64),
}

fn unreachable(e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Unreachable {
        daemon: "gobgpd",
        message: e.to_string(),
    }
}

impl GobgpDriver {
    pub fn new(options: DaemonOptions) -> GobgpDriver {
        GobgpDriver {
            options,
            api: None,
            pushed: None,
            wanted: None,
            sent: (0, 0),
        }
    }

    /// Paths sent to gobgpd through the API since start: (added or changed, withdrawn). One
    /// changed pod adds one or two (one per address), whatever the size of the table.
    pub fn paths_sent(&self) -> (u64, u64) {
        self.sent
    }

    fn count_sent(&mut self, stats: SyncStats) {
        self.sent.0 += stats.added as u64;
        self.sent.1 += stats.deleted as u64;
    }

    async fn api(&mut self) -> Result<GobgpApi, ApplyError> {
        if let Some(api) = &self.api {
            return Ok(api.clone());
        }
        let api = GobgpApi::connect(&self.options.gobgp_api)
            .await
            .map_err(unreachable)?;
        // A new connection may be to a restarted daemon: the next push is a full diff.
        self.pushed = None;
        self.api = Some(api.clone());
        Ok(api)
    }

    /// After a failed call: gobgpd may be gone or restarted, so forget what it holds.
    fn lost(&mut self) {
        self.api = None;
        self.pushed = None;
    }

    /// Sends SIGHUP (with kill(2)) to the gobgpd of the pid file, once its command line shows it
    /// is gobgpd, so that it re-reads its file (new neighbors, timers). `Ok(false)` without a pid
    /// file option.
    fn reload_file(&self) -> Result<bool, ProcessError> {
        let Some(pid_file) = &self.options.gobgpd_pid_file else {
            return Ok(false);
        };
        let mut programs = vec!["gobgpd".to_string()];
        if let Ok(p) = std::env::var("BGPGEN_GOBGPD")
            && let Some(name) = std::path::Path::new(&p).file_name()
        {
            programs.push(name.to_string_lossy().into_owned());
        }
        let expect = Expect {
            programs,
            argument: None,
        };
        let pid = match process::verified_pid(pid_file, &expect)? {
            Some(pid) => pid,
            None => {
                return Err(ProcessError::NotRunning {
                    what: format!("gobgpd (from {})", pid_file.display()),
                    pid: process::read_pid_file(pid_file).unwrap_or(0),
                });
            }
        };
        process::send(pid, Signal::Hup, "gobgpd")?;
        Ok(true)
    }

    /// gobgpd was started again (by bgpgen): it holds no paths and a new connection is needed.
    pub fn restarted(&mut self) {
        self.lost();
    }

    /// Before the first snapshot of a spawned gobgpd: the paths of the `routes.txt` on disk (the
    /// last applied ones) are what it should announce, so a gobgpd that bgpgen had to start
    /// before the source answered (API server down) announces the last good routes.
    pub fn seed_from_disk(&mut self) {
        if self.wanted.is_some() {
            return;
        }
        let path = self
            .options
            .config_file
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join("routes.txt");
        match std::fs::read_to_string(&path).map(|t| routes_file::parse(&t)) {
            Ok(Ok(paths)) => {
                tracing::info!(paths = paths.len(), file = %path.display(), "announcing the last applied routes until the source sends its state");
                self.wanted = Some(paths);
            }
            Ok(Err(e)) => {
                tracing::warn!(file = %path.display(), error = %e, "ignoring the routes file on disk")
            }
            Err(_) => {}
        }
    }

    pub async fn apply(
        &mut self,
        intent: &Intent,
        rendered: &Rendered,
    ) -> Result<ApplyOutcome, ApplyError> {
        let mut done = Vec::new();
        let old_toml = std::fs::read_to_string(&self.options.config_file).unwrap_or_default();
        let new_toml = rendered.file(MAIN).unwrap_or_default();
        if !unchanged_on_disk(&self.options, MAIN, rendered) {
            validate_and_write(&self.options, MAIN, rendered)?;
            if old_toml != new_toml {
                // Not fatal: the neighbors are compared with the intent and fixed through the API
                // below anyway; the reload only keeps gobgpd's own view of its file current.
                match self.reload_file() {
                    Ok(true) => done.push("SIGHUP".to_string()),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "gobgpd not reloaded; fixing its neighbors through the API");
                        done.push(format!("no SIGHUP ({e})"));
                    }
                }
            }
        }
        let resets = neighbors_to_reset(&old_toml, new_toml);
        let mut result = self.sync(intent, rendered, &mut done).await;
        if result.is_ok() && !resets.is_empty() {
            // Timers, passwords and the like are only negotiated when a session starts.
            for addr in &resets {
                if let Err(e) = self.api().await?.reset_peer(addr.clone()).await {
                    result = Err(unreachable(e));
                    break;
                }
            }
            if result.is_ok() {
                done.push(format!("sessions reset: {}", resets.join(", ")));
            }
        }
        if matches!(result, Err(ApplyError::Unreachable { .. })) {
            self.lost();
        }
        result?;
        Ok(if done.is_empty() {
            ApplyOutcome::Unchanged
        } else {
            ApplyOutcome::Applied(done.join(", "))
        })
    }

    async fn sync(
        &mut self,
        intent: &Intent,
        rendered: &Rendered,
        done: &mut Vec<String>,
    ) -> Result<(), ApplyError> {
        let routes = rendered
            .file("routes.txt")
            .map(routes_file::parse)
            .transpose()
            .map_err(|e| unreachable(format!("routes.txt: {e}")))?
            .unwrap_or_default();
        let api = self.api().await?;
        let (asn, router_id, _) = api.global().await.map_err(unreachable)?;
        if asn != intent.speaker.local_as.0 || router_id != intent.speaker.router_id {
            return Err(ApplyError::NeedsRestart {
                daemon: "gobgpd",
                message: format!(
                    "running as AS {asn} router-id {router_id}, the intent wants AS {} router-id {}; gobgpd never applies [global] changes on reload: restart it with the new gobgpd.toml",
                    intent.speaker.local_as, intent.speaker.router_id
                ),
            });
        }
        // The file gobgpd starts from is also what its neighbors are repaired to.
        let peers = crate::daemon::gobgp::peers::from_toml(rendered.file(MAIN).unwrap_or_default())
            .map_err(|message| {
                ValidateError::rejected(std::path::Path::new("bgpgen"), MAIN, message)
            })?;
        let fix = api.ensure_peers(&peers).await.map_err(unreachable)?;
        if fix.added + fix.updated + fix.deleted > 0 {
            done.push(format!(
                "peers +{} ~{} -{}",
                fix.added, fix.updated, fix.deleted
            ));
        }
        // One change costs gobgpd only the changed paths; after a start or an outage the wanted
        // set is diffed against the RIB instead (listing 100k paths takes ~2 s).
        let stats = match &self.pushed {
            Some(previous) => api.push_difference(previous, &routes).await,
            None => api.sync_paths(&routes).await,
        }
        .map_err(unreachable)?;
        self.count_sent(stats);
        if stats.added + stats.deleted > 0 {
            done.push(format!("paths +{} -{}", stats.added, stats.deleted));
        }
        self.pushed = Some(routes.clone());
        self.wanted = Some(routes);
        Ok(())
    }

    /// A route delta straight to gobgpd (no file rendered, no RIB listed): `announce` and
    /// `withdraw` are sent as they are, and what the driver knows gobgpd holds follows. `None`
    /// when the driver does not know what gobgpd holds (start, reconnect): then only a full
    /// apply can tell. The files on disk are not touched (the caller writes them later).
    pub async fn push_paths(
        &mut self,
        announce: &[routes_file::Path],
        withdraw: &[routes_file::Path],
    ) -> Option<Result<ApplyOutcome, ApplyError>> {
        self.pushed.as_ref()?;
        let api = self.api.clone()?;
        // As the full sync sends them (host bits cleared).
        let trunc = |paths: &[routes_file::Path]| -> Vec<routes_file::Path> {
            paths
                .iter()
                .map(|p| routes_file::Path {
                    prefix: p.prefix.trunc(),
                    next_hop: p.next_hop,
                })
                .collect()
        };
        let mut result = Ok(());
        if !withdraw.is_empty() {
            result = api.delete_paths(&trunc(withdraw)).await;
        }
        if result.is_ok() && !announce.is_empty() {
            result = api.add_paths(&trunc(announce)).await;
        }
        if let Err(e) = result {
            self.lost();
            return Some(Err(unreachable(e)));
        }
        self.count_sent(SyncStats {
            added: announce.len(),
            deleted: withdraw.len(),
            ..SyncStats::default()
        });
        for list in [&mut self.pushed, &mut self.wanted].into_iter().flatten() {
            update_sorted(list, announce, withdraw);
        }
        Some(Ok(if announce.is_empty() && withdraw.is_empty() {
            ApplyOutcome::Unchanged
        } else {
            ApplyOutcome::Applied(format!("paths +{} -{}", announce.len(), withdraw.len()))
        }))
    }

    /// Checks gobgpd; when it lost paths (it restarted), pushes them again. Restarts show as a
    /// failed call (the client then reconnects by itself) or as fewer paths in the table than
    /// were pushed.
    pub async fn check(&mut self) -> bool {
        // An open connection survives the removal of gobgpd's API socket, but nothing can reach
        // gobgpd any more (not the gobgp CLI, not a restarted bgpgen): that is unreachable.
        if let Some(path) = self.options.gobgp_api.strip_prefix("unix://") {
            use std::os::unix::fs::FileTypeExt as _;
            let socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
            if !socket {
                self.lost();
                return false;
            }
        }
        let Ok(api) = self.api().await else {
            return false;
        };
        let probe = api.clone().with_timeout(CHECK_TIMEOUT);
        let count = async {
            Ok::<u64, GobgpApiError>(
                probe.table_paths(Family::Ipv4Unicast).await?
                    + probe.table_paths(Family::Ipv6Unicast).await?,
            )
        }
        .await;
        let Ok(count) = count else {
            self.lost();
            return false;
        };
        // An empty table where paths were pushed is a gobgpd that restarted behind a connection
        // that survived: everything goes back at once. A partial loss (a path deleted behind
        // bgpgen's back) is the read-back's to find, report and repair (crate::observer).
        let lost_paths = self
            .pushed
            .as_ref()
            .is_some_and(|p| count == 0 && !p.is_empty());
        if self.pushed.is_none() || lost_paths {
            let Some(wanted) = self.wanted.clone() else {
                return true;
            };
            match api.sync_paths(&wanted).await {
                Ok(stats) => {
                    self.count_sent(stats);
                    if stats.added + stats.deleted > 0 {
                        tracing::warn!(
                            added = stats.added,
                            deleted = stats.deleted,
                            "gobgpd's RIB differed from the intent (restarted?); paths pushed again"
                        );
                    }
                    self.pushed = Some(wanted);
                }
                Err(e) => {
                    tracing::error!(error = %e, "re-pushing paths failed");
                    self.lost();
                    return false;
                }
            }
        }
        true
    }
}

#[async_trait::async_trait]
impl crate::daemon::Driver for GobgpDriver {
    async fn apply_routes(
        &mut self,
        _local_as: crate::model::Asn,
        delta: &crate::engine::Delta,
    ) -> Option<Result<ApplyOutcome, ApplyError>> {
        let paths = delta.paths();
        let announce: Vec<_> = paths.announce.iter().map(|r| path_of(r)).collect();
        let withdraw: Vec<_> = paths.withdraw.iter().map(|r| path_of(r)).collect();
        self.push_paths(&announce, &withdraw).await
    }

    async fn apply(
        &mut self,
        intent: &Intent,
        rendered: &Rendered,
    ) -> Result<ApplyOutcome, ApplyError> {
        GobgpDriver::apply(self, intent, rendered).await
    }

    async fn check(&mut self) -> bool {
        GobgpDriver::check(self).await
    }

    fn restarted(&mut self) {
        GobgpDriver::restarted(self)
    }

    fn seed_from_disk(&mut self) {
        GobgpDriver::seed_from_disk(self)
    }

    async fn observe(
        &mut self,
        _intent: &Intent,
        depth: crate::daemon::observe::Depth,
    ) -> Result<crate::daemon::observe::Observation, crate::daemon::observe::ObserveError> {
        let api = self
            .api()
            .await
            .map_err(|e| crate::daemon::observe::ObserveError {
                daemon: "gobgpd",
                message: e.to_string(),
            })?
            .with_timeout(CHECK_TIMEOUT);
        let result = crate::daemon::gobgp::observe::observe(&api, depth).await;
        if result.is_err() {
            self.lost();
        }
        result
    }

    async fn repair(
        &mut self,
        _intent: &Intent,
        drift: &[crate::daemon::observe::Drift],
        attempt: u32,
    ) -> Result<String, ApplyError> {
        if self.wanted.is_none() {
            self.seed_from_disk();
        }
        let Some(wanted) = self.wanted.clone() else {
            return Err(unreachable("no routes applied yet to push again"));
        };
        let api = self.api().await?;
        // The RIB is listed again: whatever was deleted or added behind bgpgen's back is put
        // right, whatever it last pushed.
        let stats = api.sync_paths(&wanted).await.map_err(|e| {
            self.lost();
            unreachable(e)
        })?;
        self.count_sent(stats);
        self.pushed = Some(wanted);
        let mut done = vec![format!("paths +{} -{}", stats.added, stats.deleted)];
        if attempt > 1 {
            // The RIB was right and the neighbor still differs: have gobgpd send it everything
            // again.
            let mut peers: Vec<std::net::IpAddr> = drift.iter().map(|d| d.peer).collect();
            peers.dedup();
            for peer in peers {
                api.soft_reset_out(peer).await.map_err(unreachable)?;
                done.push(format!("soft reset out {peer}"));
            }
        }
        Ok(done.join(", "))
    }

    fn metrics(&self) -> Vec<crate::daemon::DriverMetric> {
        let (added, deleted) = self.sent;
        vec![crate::daemon::DriverMetric {
            name: "bgpgen_gobgp_paths_sent_total",
            help: "Paths sent to gobgpd through its API: add (new or changed next hop), delete (withdrawn).",
            kind: "counter",
            samples: vec![
                ("{op=\"add\"}".into(), added as f64),
                ("{op=\"delete\"}".into(), deleted as f64),
            ],
        }]
    }
}

/// A route as GoBGP's path (what routes.txt lists for it).
fn path_of(route: &crate::intent::Route) -> routes_file::Path {
    routes_file::Path {
        prefix: route.prefix,
        next_hop: match route.next_hop {
            crate::intent::NextHop::SelfAddress => None,
            crate::intent::NextHop::Address(ip) => Some(ip),
        },
    }
}

/// `list` (sorted by prefix, one path per prefix, as routes.txt lists them) without the
/// prefixes of `withdraw` and with the paths of `announce` (a prefix announced again replaces
/// its path).
fn update_sorted(
    list: &mut Vec<routes_file::Path>,
    announce: &[routes_file::Path],
    withdraw: &[routes_file::Path],
) {
    let find = |list: &Vec<routes_file::Path>, p: &routes_file::Path| {
        list.binary_search_by(|x| x.prefix.cmp(&p.prefix))
    };
    for p in withdraw {
        if let Ok(i) = find(list, p) {
            list.remove(i);
        }
    }
    for p in announce {
        match find(list, p) {
            Ok(i) => list[i] = *p,
            Err(i) => list.insert(i, *p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{neighbors_to_reset, update_sorted};
    use crate::routes_file::Path;

    #[test]
    fn a_delta_keeps_the_paths_sorted_one_per_prefix() {
        let p = |s: &str, hop: Option<&str>| Path {
            prefix: s.parse().unwrap(),
            next_hop: hop.map(|h| h.parse().unwrap()),
        };
        let mut list = vec![
            p("10.0.0.1/32", None),
            p("10.0.0.3/32", None),
            p("fd00::1/128", None),
        ];
        update_sorted(
            &mut list,
            &[p("10.0.0.2/32", None), p("10.0.0.3/32", Some("192.0.2.9"))],
            &[p("fd00::1/128", None)],
        );
        assert_eq!(
            list,
            [
                p("10.0.0.1/32", None),
                p("10.0.0.2/32", None),
                p("10.0.0.3/32", Some("192.0.2.9"))
            ]
        );
    }

    #[test]
    fn resets_neighbors_whose_block_changed() {
        let old = "[global.config]\n  as = 1\n\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"192.0.2.2\"\n  [neighbors.timers.config]\n    hold-time = 90\n\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"2001:db8::2\"\n  [neighbors.timers.config]\n    hold-time = 90\n";
        assert!(neighbors_to_reset(old, old).is_empty());
        let one = old.replacen("hold-time = 90", "hold-time = 30", 1);
        assert_eq!(neighbors_to_reset(old, &one), ["192.0.2.2"]);
        let both = old.replace("hold-time = 90", "hold-time = 30");
        assert_eq!(neighbors_to_reset(old, &both), ["192.0.2.2", "2001:db8::2"]);
        assert!(
            neighbors_to_reset("", old).is_empty(),
            "new neighbors need no reset"
        );
    }
}
