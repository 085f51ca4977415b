//! The BIRD 2 driver: `birdc configure` re-reads the file BIRD was started with and the route
//! files it includes; a changed set of static routes is announced and withdrawn without
//! resetting the BGP sessions.
//!
//! A route-only change of the engine ([`crate::daemon::Driver::apply_routes`]) rewrites only the
//! route files it touches ([`super::routes`]: one file of at most 256 lines, or a split or merge
//! of one), then `birdc configure`. It is not run through `bird -p` first: the lines are typed
//! (a prefix, a sanitized comment) and the rest of the configuration is the one BIRD runs, and
//! `configure` parses everything anyway and keeps the running configuration when it refuses
//! (the files are then put back as they were). Whole applies are checked with `bird -p`.

use std::path::PathBuf;
use std::time::Duration;

use crate::daemon::bird::routes::{self, Change, Layout};
use crate::daemon::driver::{
    ApplyError, ApplyOutcome, CHECK_TIMEOUT, COMMAND_TIMEOUT, DaemonOptions, config_dir,
    is_generated, restore_previous, run_command_timeout, stale_generated, unchanged_on_disk,
    validate_and_write,
};
use crate::intent::Intent;
use crate::output::{read_own, remove_own, write_atomic_unsynced};
use crate::render::Rendered;

const MAIN: &str = "bird.conf";

pub struct BirdDriver {
    options: DaemonOptions,
    birdc: String,
    /// The BGP protocol of each neighbor, from the last read-back (for `reload out`).
    protocols: std::collections::BTreeMap<std::net::IpAddr, String>,
    /// Where the route files BIRD runs put each route, when bgpgen wrote them (the base of a
    /// route delta); `None` after a start or a failure: the next change is a whole apply.
    layout: Option<Layout>,
}

/// The route files as they were before a change, to put back when BIRD refuses it.
type Saved = Vec<(PathBuf, Option<String>)>;

fn put_back(saved: &Saved) -> Result<(), ApplyError> {
    for (path, before) in saved {
        match before {
            Some(text) => write_atomic_unsynced(path, text, false),
            None => remove_own(path),
        }
        .map_err(|e| ApplyError::io(path, e))?;
    }
    Ok(())
}

impl BirdDriver {
    pub fn new(options: DaemonOptions) -> BirdDriver {
        BirdDriver {
            options,
            birdc: std::env::var("BGPGEN_BIRDC").unwrap_or_else(|_| "birdc".to_string()),
            protocols: std::collections::BTreeMap::new(),
            layout: None,
        }
    }

    /// The route files a whole apply of `rendered` changes or removes, as they are now.
    fn save_route_files(&self, rendered: &Rendered) -> Result<Saved, ApplyError> {
        let base = config_dir(&self.options);
        let mut saved = Vec::new();
        for f in rendered.files.iter().filter(|f| is_generated(rendered, f)) {
            let path = base.join(&f.name);
            let now = read_own(&path).map_err(|e| ApplyError::io(&path, e))?;
            if now.as_deref() != Some(f.contents.as_str()) {
                saved.push((path, now));
            }
        }
        for (_, path) in stale_generated(base, rendered).map_err(|e| ApplyError::io(base, e))? {
            if let Ok(Some(text)) = read_own(&path) {
                saved.push((path, Some(text)));
            }
        }
        Ok(saved)
    }

    /// A route delta of the engine: the route files it touches rewritten, then `birdc
    /// configure`. `None` when only a whole apply can do it (no layout known, bird.conf would
    /// change, the files on disk are not what bgpgen wrote).
    pub async fn apply_delta(
        &mut self,
        delta: &crate::engine::Delta,
    ) -> Option<Result<ApplyOutcome, ApplyError>> {
        let mut layout = self.layout.take()?;
        let base = config_dir(&self.options).to_path_buf();
        let changes = match write_route_delta(&base, &mut layout, delta)? {
            Ok(changes) => changes,
            Err(e) => return Some(Err(e)),
        };
        if changes.is_empty() {
            self.layout = Some(layout);
            return Some(Ok(ApplyOutcome::Unchanged));
        }
        let saved: Saved = changes
            .iter()
            .map(|c| (base.join(&c.name), c.before.clone()))
            .collect();
        let paths = delta.paths();
        let how = format!(
            "birdc configure: +{} -{} routes in {} route file(s)",
            paths.announce.len(),
            paths.withdraw.len(),
            changes.len()
        );
        Some(match self.birdc(&["configure"]).await {
            Ok(_) => {
                self.layout = Some(layout);
                Ok(ApplyOutcome::Applied(how))
            }
            Err(ApplyError::RolledBack { message, .. }) => {
                let rollback = match put_back(&saved) {
                    Ok(()) => self.birdc(&["configure"]).await.map(|_| ()),
                    Err(e) => Err(e),
                };
                Err(rolled_back(message, rollback))
            }
            // The daemon did not answer: the files are ahead of it; the next whole apply
            // (there is no layout now) brings it along.
            Err(e) => Err(e),
        })
    }

    async fn birdc(&self, args: &[&str]) -> Result<String, ApplyError> {
        self.birdc_within(args, COMMAND_TIMEOUT).await
    }

    async fn birdc_within(&self, args: &[&str], timeout: Duration) -> Result<String, ApplyError> {
        let socket = self.options.bird_socket.display().to_string();
        let mut all = vec!["-s", socket.as_str()];
        all.extend_from_slice(args);
        let (ok, out) = run_command_timeout(&self.birdc, &all, timeout)
            .await
            .map_err(|e| ApplyError::Unreachable {
                daemon: "bird",
                message: format!("{}: {e}", self.birdc),
            })?;
        if !ok {
            if out.contains("Unable to connect") || out.contains("No such file") {
                return Err(ApplyError::Unreachable {
                    daemon: "bird",
                    message: out,
                });
            }
            return Err(ApplyError::RolledBack {
                daemon: "bird",
                message: out,
            });
        }
        Ok(out)
    }

    /// Whether the control socket answers.
    pub async fn reachable(&self) -> bool {
        self.birdc_within(&["show", "status"], CHECK_TIMEOUT)
            .await
            .is_ok()
    }

    pub async fn apply(
        &mut self,
        intent: &Intent,
        rendered: &Rendered,
    ) -> Result<ApplyOutcome, ApplyError> {
        self.layout = None;
        if unchanged_on_disk(&self.options, MAIN, rendered) {
            // Make sure the daemon is there, so a dead BIRD is reported rather than hidden.
            self.birdc(&["show", "status"]).await?;
            self.layout = Some(routes::layout(intent));
            return Ok(ApplyOutcome::Unchanged);
        }
        let saved = self.save_route_files(rendered)?;
        validate_and_write(&self.options, MAIN, rendered)?;
        match self.birdc(&["configure"]).await {
            Ok(_) => {
                self.layout = Some(routes::layout(intent));
                Ok(ApplyOutcome::Applied("birdc configure".into()))
            }
            Err(ApplyError::RolledBack { message, .. }) => {
                let path = &self.options.config_file;
                let rollback = match restore_previous(path)
                    .map_err(|e| ApplyError::io(path, e))
                    .and_then(|()| put_back(&saved))
                {
                    Ok(()) => self.birdc(&["configure"]).await.map(|_| ()),
                    Err(e) => Err(e),
                };
                Err(rolled_back(message, rollback))
            }
            Err(e) => Err(e),
        }
    }
}

/// bgpgen's share of a route delta for BIRD: `layout` (of the route files under `base`)
/// brought along `delta`, and the files it touches written (put back as they were if a write
/// fails). Returns the files changed; `None` when only a whole apply can do it (bird.conf would
/// change, or the files on disk are not what the layout says: then drop `layout`). Public for
/// the bench tools, which measure exactly this step.
pub fn write_route_delta(
    base: &std::path::Path,
    layout: &mut Layout,
    delta: &crate::engine::Delta,
) -> Option<Result<Vec<Change>, ApplyError>> {
    let mut read = |name: &str| read_own(&base.join(name));
    let changes = match layout.update(delta, &mut read) {
        Ok(Some(changes)) => changes,
        Ok(None) => return None,
        Err(routes::Inconsistent(why)) => {
            tracing::warn!(%why, "the route files are not what bgpgen wrote; applying the whole intent");
            return None;
        }
    };
    if changes.is_empty() {
        return Some(Ok(changes));
    }
    let dir = base.join(routes::DIR);
    if let Err(e) = crate::output::own_dir(&dir) {
        return Some(Err(ApplyError::io(&dir, e)));
    }
    for (i, c) in changes.iter().enumerate() {
        let path = base.join(&c.name);
        let written = match &c.after {
            Some(text) => write_atomic_unsynced(&path, text, false),
            None => remove_own(&path),
        };
        if let Err(e) = written {
            let saved: Saved = changes[..i]
                .iter()
                .map(|c| (base.join(&c.name), c.before.clone()))
                .collect();
            let _ = put_back(&saved);
            return Some(Err(ApplyError::io(&path, e)));
        }
    }
    Some(Ok(changes))
}

/// BIRD refused a configuration (`message`); the previous one was put back (`rollback`).
fn rolled_back(message: String, rollback: Result<(), ApplyError>) -> ApplyError {
    match rollback {
        Ok(()) => ApplyError::RolledBack {
            daemon: "bird",
            message,
        },
        Err(e) => ApplyError::RollbackFailed {
            daemon: "bird",
            message,
            rollback: e.to_string(),
        },
    }
}

#[async_trait::async_trait]
impl crate::daemon::Driver for BirdDriver {
    async fn apply(
        &mut self,
        intent: &crate::intent::Intent,
        rendered: &Rendered,
    ) -> Result<ApplyOutcome, ApplyError> {
        BirdDriver::apply(self, intent, rendered).await
    }

    async fn apply_routes(
        &mut self,
        _local_as: crate::model::Asn,
        delta: &crate::engine::Delta,
    ) -> Option<Result<ApplyOutcome, ApplyError>> {
        self.apply_delta(delta).await
    }

    fn deltas_write_files(&self) -> bool {
        true
    }

    async fn check(&mut self) -> bool {
        self.reachable().await
    }

    fn restarted(&mut self) {
        self.layout = None;
    }

    async fn observe(
        &mut self,
        _intent: &crate::intent::Intent,
        depth: crate::daemon::observe::Depth,
    ) -> Result<crate::daemon::observe::Observation, crate::daemon::observe::ObserveError> {
        use crate::daemon::bird::observe as obs;
        use crate::daemon::observe::{Depth, Observation, ObserveError, SessionState};
        let failed = |e: ApplyError| ObserveError {
            daemon: "bird",
            message: e.to_string(),
        };
        let text = self
            .birdc_within(&["show", "protocols", "all"], CHECK_TIMEOUT)
            .await
            .map_err(failed)?;
        let mut protocols = obs::parse_protocols(&text);
        self.protocols = protocols
            .iter()
            .map(|p| (p.peer.address, p.name.clone()))
            .collect();
        if depth == Depth::Full {
            for p in &mut protocols {
                if p.peer.state != SessionState::Established {
                    continue;
                }
                let text = self
                    .birdc_within(&["show", "route", "export", &p.name], CHECK_TIMEOUT)
                    .await
                    .map_err(failed)?;
                let mut routes = obs::parse_routes(&text);
                routes.retain(|f, _| p.peer.families.contains(f));
                for f in &p.peer.families {
                    let set = routes.entry(*f).or_default();
                    p.peer.advertised_count.insert(*f, set.len() as u64);
                }
                p.peer.advertised = Some(routes);
            }
        }
        let mut peers: Vec<_> = protocols.into_iter().map(|p| p.peer).collect();
        peers.sort_by_key(|p| p.address);
        Ok(Observation {
            at: std::time::SystemTime::now(),
            peers,
        })
    }

    async fn repair(
        &mut self,
        _intent: &crate::intent::Intent,
        drift: &[crate::daemon::observe::Drift],
        attempt: u32,
    ) -> Result<String, ApplyError> {
        // The static protocols the template announces from may have been disabled, and another
        // file may have been loaded (`birdc configure "other.conf"`): enable them and load ours.
        // The route files may have been edited too: the next change renders them whole.
        self.layout = None;
        let mut done = Vec::new();
        for proto in STATIC_PROTOCOLS {
            // Best effort: a user's template may name them otherwise.
            if let Ok(out) = self.birdc(&["enable", proto]).await
                && out.contains(": enabled")
            {
                done.push(format!("enable {proto}"));
            }
        }
        let file = std::path::absolute(&self.options.config_file)
            .unwrap_or_else(|_| self.options.config_file.clone());
        self.birdc(&["configure", &format!("\"{}\"", file.display())])
            .await?;
        done.push("birdc configure".into());
        if attempt > 1 {
            let mut peers: Vec<std::net::IpAddr> = drift.iter().map(|d| d.peer).collect();
            peers.dedup();
            for peer in peers {
                if let Some(proto) = self.protocols.get(&peer).cloned() {
                    self.birdc(&["reload", "out", &proto]).await?;
                    done.push(format!("reload out {proto}"));
                }
            }
        }
        Ok(done.join(", "))
    }
}

/// The static protocols `templates/bird.conf.j2` announces the routes from.
const STATIC_PROTOCOLS: [&str; 2] = ["bgpgen_v4", "bgpgen_v6"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::bird::routes::tests::route;
    use crate::engine::Delta;
    use crate::intent::NextHop;
    use std::os::unix::fs::PermissionsExt;

    fn driver(dir: &std::path::Path, birdc: &str) -> BirdDriver {
        let script = dir.join("birdc");
        std::fs::write(&script, format!("#!/bin/sh\n{birdc}\n")).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut d = BirdDriver::new(DaemonOptions {
            config_file: dir.join("etc/bird.conf"),
            gobgp_api: String::new(),
            gobgpd_pid_file: None,
            bird_socket: dir.join("bird.ctl"),
            frr_vty_socket: dir.join("vty"),
        });
        d.birdc = script.display().to_string();
        d
    }

    fn on_disk(dir: &std::path::Path) -> Vec<(String, String)> {
        let mut files: Vec<_> = std::fs::read_dir(dir.join("etc/bird-routes"))
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                (
                    format!("bird-routes/{}", e.file_name().to_string_lossy()),
                    std::fs::read_to_string(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    }

    /// A driver whose route files on disk hold `routes`, as a whole apply left them.
    fn applied(dir: &std::path::Path, birdc: &str, routes: &[crate::intent::Route]) -> BirdDriver {
        let mut d = driver(dir, birdc);
        std::fs::create_dir_all(dir.join("etc/bird-routes")).unwrap();
        for (name, text) in routes::files_of(routes) {
            std::fs::write(dir.join("etc").join(name), text).unwrap();
        }
        d.layout = Some(routes::layout_of(routes));
        d
    }

    fn growing(n: u32) -> (Vec<crate::intent::Route>, Vec<crate::intent::Route>, Delta) {
        let before: Vec<_> = (0..n)
            .map(|i| route(i, 0, false, NextHop::SelfAddress))
            .collect();
        let added: Vec<_> = (n..n + 40)
            .map(|i| route(i, 0, false, NextHop::SelfAddress))
            .collect();
        let after = [before.clone(), added.clone()].concat();
        let delta = Delta {
            added,
            ..Delta::default()
        };
        (before, after, delta)
    }

    #[tokio::test]
    async fn a_route_delta_rewrites_the_route_files_and_configures() {
        let dir = tempfile::tempdir().unwrap();
        let (before, after, delta) = growing(300);
        let mut d = applied(dir.path(), "exit 0", &before);
        let outcome = d.apply_delta(&delta).await.unwrap().unwrap();
        assert!(
            matches!(&outcome, ApplyOutcome::Applied(how) if how.contains("+40 -0 routes")),
            "{outcome:?}"
        );
        let mut want = routes::files_of(&after);
        want.sort();
        // 240 IPv4 routes and 32 more: v4.conf split in two.
        assert!(
            !want.iter().any(|(n, _)| n == "bird-routes/v4.conf"),
            "{want:?}"
        );
        assert_eq!(on_disk(dir.path()), want);
        assert!(d.layout.is_some());
    }

    #[tokio::test]
    async fn a_refused_route_delta_puts_the_files_back() {
        let dir = tempfile::tempdir().unwrap();
        let (before, _, delta) = growing(300);
        // `configure` fails the first time only (the second is the rollback's).
        let birdc = format!(
            "if [ -e {m} ]; then exit 0; fi; touch {m}; echo 'bird: syntax error' ; exit 1",
            m = dir.path().join("refused").display()
        );
        let mut d = applied(dir.path(), &birdc, &before);
        let mut want = routes::files_of(&before);
        want.sort();
        let e = d.apply_delta(&delta).await.unwrap().unwrap_err();
        assert!(matches!(e, ApplyError::RolledBack { .. }), "{e}");
        assert_eq!(on_disk(dir.path()), want, "the route files as before");
        // The next change is a whole apply.
        assert!(d.layout.is_none());
        assert!(d.apply_delta(&delta).await.is_none());
    }
}
