//! The FRR driver. A change that only adds or removes announced prefixes is pushed as one small
//! vtysh script (`network` / `no network`: ~50 ms, sessions untouched); anything else goes through
//! `frr-reload.py --reload`, which computes the difference against the running configuration
//! (0.9-3.4 s up to 10k lines). bgpd ignores SIGHUP, so there is no file-only reload.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use ipnet::IpNet;

use crate::daemon::driver::{
    ApplyError, ApplyOutcome, CHECK_TIMEOUT, COMMAND_TIMEOUT, DaemonOptions, restore_previous,
    run_command_timeout, unchanged_on_disk, validate_and_write, write_rendered,
};
use crate::intent::{Intent, NextHop};
use crate::model::Family;
use crate::render::Rendered;

const MAIN: &str = "frr.conf";
/// `frr-reload.py` takes about 8 s at 100k routes, and large deletions far longer (one vtysh
/// call per line).
const RELOAD_TIMEOUT: Duration = Duration::from_secs(600);

pub struct FrrDriver {
    options: DaemonOptions,
    vtysh: String,
    reload: String,
    /// The intent the daemon runs, when bgpgen applied it (the base for a delta).
    applied: Option<Intent>,
}

/// True when two intents differ only in their announced routes.
fn only_routes_differ(a: &Intent, b: &Intent) -> bool {
    a.speaker == b.speaker && a.bgp == b.bgp && a.neighbors == b.neighbors
}

/// True when two rendered frr.conf files differ at most in their `network` lines and comments
/// (so that a route delta turns one into the other).
fn same_but_networks(old: &str, new: &str) -> bool {
    let rest = |text: &str| {
        text.lines()
            .filter(|l| {
                let l = l.trim_start();
                !l.starts_with("network ") && !l.starts_with('!')
            })
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    rest(old) == rest(new)
}

/// The vtysh script turning `from`'s announced routes into `to`'s, or `None` if nothing changes.
pub fn route_delta(from: &Intent, to: &Intent) -> Option<(String, usize, usize)> {
    let key = |i: &Intent| -> BTreeSet<(Family, IpNet, NextHop)> {
        i.announced()
            .map(|r| (r.family, r.prefix, r.next_hop))
            .collect()
    };
    networks_script(to.speaker.local_as, &key(from), &key(to))
}

/// The vtysh script of an engine's route delta (the routes it names, before and after), or
/// `None` if no `network` line changes: the same script [`route_delta`] writes for the whole
/// intents, at the cost of the change.
pub fn delta_script(
    local_as: crate::model::Asn,
    delta: &crate::engine::Delta,
) -> Option<(String, usize, usize)> {
    let mut old = BTreeSet::new();
    let mut new = BTreeSet::new();
    let key = |r: &crate::intent::Route| (r.family, r.prefix, r.next_hop);
    for r in delta.removed.iter().filter(|r| !r.unreachable) {
        old.insert(key(r));
    }
    for r in delta.added.iter().filter(|r| !r.unreachable) {
        new.insert(key(r));
    }
    for c in &delta.changed {
        if !c.before.unreachable {
            old.insert(key(&c.before));
        }
        if !c.after.unreachable {
            new.insert(key(&c.after));
        }
    }
    networks_script(local_as, &old, &new)
}

/// `no network` for what is in `old` only, `network` for what is in `new` only.
fn networks_script(
    local_as: crate::model::Asn,
    old: &BTreeSet<(Family, IpNet, NextHop)>,
    new: &BTreeSet<(Family, IpNet, NextHop)>,
) -> Option<(String, usize, usize)> {
    let removed: Vec<_> = old.difference(new).collect();
    let added: Vec<_> = new.difference(old).collect();
    if removed.is_empty() && added.is_empty() {
        return None;
    }
    let mut script = format!("router bgp {local_as}\n");
    for family in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
        let (afi, map) = match family {
            Family::Ipv4Unicast => ("ipv4", "bgpgen-nexthop-v4"),
            Family::Ipv6Unicast => ("ipv6", "bgpgen-nexthop-v6"),
        };
        let gone: Vec<_> = removed.iter().filter(|r| r.0 == family).collect();
        let new: Vec<_> = added.iter().filter(|r| r.0 == family).collect();
        if gone.is_empty() && new.is_empty() {
            continue;
        }
        let _ = writeln!(script, " address-family {afi} unicast");
        for (_, prefix, _) in gone.iter().map(|r| **r) {
            let _ = writeln!(script, "  no network {prefix}");
        }
        for (_, prefix, hop) in new.iter().map(|r| **r) {
            match hop {
                NextHop::SelfAddress => {
                    let _ = writeln!(script, "  network {prefix}");
                }
                NextHop::Address(_) => {
                    let _ = writeln!(script, "  network {prefix} route-map {map}");
                }
            }
        }
        let _ = writeln!(script, " exit-address-family");
    }
    script.push_str("exit\n");
    Some((script, added.len(), removed.len()))
}

/// The session lines of a rendered frr.conf: per neighbor its `neighbor X ...` lines outside the
/// address families, and the global `bgp ...` lines (router ID, graceful restart).
fn session_lines(text: &str) -> (BTreeSet<String>, BTreeMap<String, BTreeSet<String>>) {
    let mut global = BTreeSet::new();
    let mut neighbors: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut in_af = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("address-family") {
            in_af = true;
        } else if t == "exit-address-family" {
            in_af = false;
        } else if in_af {
            continue;
        } else if let Some(rest) = t.strip_prefix("neighbor ") {
            let addr = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            neighbors.entry(addr).or_default().insert(t.to_string());
        } else if t.starts_with("bgp ") {
            global.insert(t.to_string());
        }
    }
    (global, neighbors)
}

/// Neighbors whose session settings changed between two configurations: FRR applies new timers,
/// passwords or graceful-restart settings only when a session is next established, so these
/// sessions are reset (docs/design.md: a session option change is a session reset, as `diff` forecasts).
pub fn neighbors_to_reset(old: &str, new: &str) -> Vec<String> {
    let (old_global, old_n) = session_lines(old);
    let (new_global, new_n) = session_lines(new);
    let all = old_global != new_global;
    new_n
        .iter()
        .filter(|(addr, lines)| old_n.get(*addr).is_some_and(|o| all || o != *lines))
        .map(|(addr, _)| addr.clone())
        .collect()
}

impl FrrDriver {
    pub fn new(options: DaemonOptions) -> FrrDriver {
        FrrDriver {
            options,
            vtysh: std::env::var("BGPGEN_VTYSH").unwrap_or_else(|_| "vtysh".to_string()),
            reload: std::env::var("BGPGEN_FRR_RELOAD")
                .unwrap_or_else(|_| "/usr/lib/frr/frr-reload.py".to_string()),
            applied: None,
        }
    }

    async fn vtysh(&self, args: &[&str]) -> Result<String, ApplyError> {
        self.vtysh_within(args, COMMAND_TIMEOUT).await
    }

    async fn vtysh_within(&self, args: &[&str], timeout: Duration) -> Result<String, ApplyError> {
        let socket = self.options.frr_vty_socket.display().to_string();
        let mut all = vec!["--vty_socket", socket.as_str()];
        all.extend_from_slice(args);
        let (ok, out) = run_command_timeout(&self.vtysh, &all, timeout)
            .await
            .map_err(|e| ApplyError::Unreachable {
                daemon: "frr",
                message: format!("{}: {e}", self.vtysh),
            })?;
        if !ok {
            if out.contains("failed to connect") || out.contains("Exiting: failed") {
                return Err(ApplyError::Unreachable {
                    daemon: "frr",
                    message: out,
                });
            }
            return Err(ApplyError::RolledBack {
                daemon: "frr",
                message: out,
            });
        }
        Ok(out)
    }

    /// Before bgpgen stops bgpd with graceful restart off: shuts every session down with a
    /// Cease. bgpd's SIGTERM sends none to a peer that negotiated the graceful restart
    /// capability, and FRR advertises it even with graceful restart off (its default helper
    /// mode), so such a peer would keep bgpd's routes as stale; and a withdrawal queued just
    /// before SIGTERM may never be written.
    pub async fn close_sessions(&self, intent: &Intent) -> Result<(), ApplyError> {
        let router = format!("router bgp {}", intent.speaker.local_as);
        let shutdowns: Vec<String> = intent
            .neighbors
            .iter()
            .map(|n| format!("neighbor {} shutdown", n.address))
            .collect();
        let mut args = vec!["-c", "configure terminal", "-c", router.as_str()];
        for s in &shutdowns {
            args.extend(["-c", s.as_str()]);
        }
        self.vtysh_within(&args, CHECK_TIMEOUT).await.map(drop)
    }

    /// The daemon was started again: it runs whatever its file says, so the next change is a
    /// full reload rather than a delta against what bgpgen applied before.
    pub fn restarted(&mut self) {
        self.applied = None;
    }

    pub async fn reachable(&self) -> bool {
        self.vtysh_within(&["-c", "show version"], CHECK_TIMEOUT)
            .await
            .is_ok()
    }

    /// `frr-reload.py --reload` of the file at `--config-file`, run a second time when the
    /// first reports errors: given a bgpd without `router bgp` (attach mode, FRR started with an
    /// empty configuration), frr-reload.py sends the new block in passes that repeat
    /// `bgp graceful-restart-disable`, which bgpd refuses once it has taken it ("The Graceful
    /// Restart command used is not valid at this moment"), so the first run fails although bgpd
    /// runs the file. The second run compares again and sends only what is still missing: a
    /// line bgpd really refuses fails it too.
    async fn full_reload(&self) -> Result<(), ApplyError> {
        match self.reload_once().await {
            Err(ApplyError::RolledBack { message, .. }) => {
                tracing::debug!(first = %message, "frr-reload.py reported errors; running it again");
                self.reload_once().await
            }
            other => other,
        }
    }

    async fn reload_once(&self) -> Result<(), ApplyError> {
        let file = self.options.config_file.display().to_string();
        let dir = self
            .options
            .config_file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        // frr-reload.py reads vtysh.conf from --confdir; an empty one keeps its log quiet.
        let vtysh_conf = dir.join("vtysh.conf");
        if !vtysh_conf.exists() {
            let _ = std::fs::write(&vtysh_conf, "");
        }
        let dir = dir.display().to_string();
        let socket = self.options.frr_vty_socket.display().to_string();
        let args = [
            "--reload",
            "--daemon",
            "bgpd",
            "--vty_socket",
            &socket,
            "--confdir",
            &dir,
            "--rundir",
            &dir,
            &file,
        ];
        let (ok, out) = run_command_timeout(&self.reload, &args, RELOAD_TIMEOUT)
            .await
            .map_err(|e| ApplyError::Unreachable {
                daemon: "frr",
                message: format!("{}: {e}", self.reload),
            })?;
        if ok {
            Ok(())
        } else if out.contains("failed to connect") || out.contains("not running") {
            Err(ApplyError::Unreachable {
                daemon: "frr",
                message: out,
            })
        } else {
            Err(ApplyError::RolledBack {
                daemon: "frr",
                message: out,
            })
        }
    }

    /// A route delta straight to bgpd: the `network` lines of `script` ([`delta_script`])
    /// through vtysh, no file rendered or read. The daemon's state is then no longer that of
    /// the last whole apply, so the next whole apply reloads the file (the caller writes it
    /// later). A script bgpd refused half-way is reported as rolled back; the caller repairs it
    /// with a whole apply.
    pub async fn apply_networks(
        &mut self,
        script: &str,
        added: usize,
        removed: usize,
    ) -> Result<ApplyOutcome, ApplyError> {
        self.applied = None;
        let file = tempfile::Builder::new()
            .prefix("bgpgen-delta-")
            .suffix(".conf")
            .tempfile()
            .map_err(|e| ApplyError::io(std::path::Path::new("delta"), e))?;
        std::fs::write(file.path(), script).map_err(|e| ApplyError::io(file.path(), e))?;
        let path = file.path().display().to_string();
        self.vtysh(&["-f", &path]).await?;
        Ok(ApplyOutcome::Applied(format!(
            "vtysh delta: +{added} -{removed} networks"
        )))
    }

    pub async fn apply(
        &mut self,
        intent: &Intent,
        rendered: &Rendered,
    ) -> Result<ApplyOutcome, ApplyError> {
        if unchanged_on_disk(&self.options, MAIN, rendered) {
            self.vtysh(&["-c", "show version"]).await?;
            self.applied = Some(intent.clone());
            return Ok(ApplyOutcome::Unchanged);
        }
        let old_text = std::fs::read_to_string(&self.options.config_file).unwrap_or_default();
        let new_text = rendered.file(MAIN).unwrap_or_default();
        let resets = neighbors_to_reset(&old_text, new_text);
        let delta = self
            .applied
            .as_ref()
            .filter(|a| only_routes_differ(a, intent) && same_but_networks(&old_text, new_text))
            .and_then(|a| route_delta(a, intent));
        if delta.is_some() {
            // The new file is the running, validated one with other `network` lines, and vtysh
            // parses each of those as the delta is applied: the whole-file checks (0.1 s, and
            // 1.5 s at 100k routes) would only repeat what is already known.
            write_rendered(&self.options, MAIN, rendered)?;
        } else {
            validate_and_write(&self.options, MAIN, rendered)?;
        }
        let result = match &delta {
            Some((script, added, removed)) => {
                let file = tempfile::Builder::new()
                    .prefix("bgpgen-delta-")
                    .suffix(".conf")
                    .tempfile()
                    .map_err(|e| ApplyError::io(std::path::Path::new("delta"), e))?;
                std::fs::write(file.path(), script).map_err(|e| ApplyError::io(file.path(), e))?;
                let path = file.path().display().to_string();
                match self.vtysh(&["-f", &path]).await {
                    Ok(_) => Ok(format!("vtysh delta: +{added} -{removed} networks")),
                    // A delta that failed half-way is repaired by a full reload of the new file.
                    Err(ApplyError::RolledBack { .. }) => self
                        .full_reload()
                        .await
                        .map(|()| "frr-reload.py (delta failed)".to_string()),
                    Err(e) => Err(e),
                }
            }
            None => match self.full_reload().await {
                Ok(()) => {
                    for addr in &resets {
                        // The new settings are in; the session needs a new OPEN to use them.
                        self.vtysh(&["-c", &format!("clear bgp {addr}")]).await?;
                    }
                    Ok(if resets.is_empty() {
                        "frr-reload.py".to_string()
                    } else {
                        format!("frr-reload.py, sessions reset: {}", resets.join(", "))
                    })
                }
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(how) => {
                self.applied = Some(intent.clone());
                Ok(ApplyOutcome::Applied(how))
            }
            Err(ApplyError::RolledBack { message, .. }) => {
                let path = self.options.config_file.clone();
                let rollback = match restore_previous(&path) {
                    Ok(()) => self.full_reload().await,
                    Err(e) => Err(ApplyError::io(&path, e)),
                };
                // The daemon's state is whatever .prev says now; the next apply uses a full reload.
                self.applied = None;
                match rollback {
                    Ok(()) => Err(ApplyError::RolledBack {
                        daemon: "frr",
                        message,
                    }),
                    Err(e) => Err(ApplyError::RollbackFailed {
                        daemon: "frr",
                        message,
                        rollback: e.to_string(),
                    }),
                }
            }
            Err(e) => Err(e),
        }
    }
}

#[async_trait::async_trait]
impl crate::daemon::Driver for FrrDriver {
    async fn apply_routes(
        &mut self,
        local_as: crate::model::Asn,
        delta: &crate::engine::Delta,
    ) -> Option<Result<ApplyOutcome, ApplyError>> {
        Some(match delta_script(local_as, delta) {
            None => Ok(ApplyOutcome::Unchanged),
            Some((script, added, removed)) => self.apply_networks(&script, added, removed).await,
        })
    }

    async fn apply(
        &mut self,
        intent: &Intent,
        rendered: &Rendered,
    ) -> Result<ApplyOutcome, ApplyError> {
        FrrDriver::apply(self, intent, rendered).await
    }

    async fn check(&mut self) -> bool {
        self.reachable().await
    }

    fn restarted(&mut self) {
        FrrDriver::restarted(self)
    }

    async fn close_sessions(&self, intent: &Intent) -> Result<(), ApplyError> {
        FrrDriver::close_sessions(self, intent).await
    }

    async fn observe(
        &mut self,
        _intent: &Intent,
        depth: crate::daemon::observe::Depth,
    ) -> Result<crate::daemon::observe::Observation, crate::daemon::observe::ObserveError> {
        use crate::daemon::frr::observe as obs;
        use crate::daemon::observe::{Depth, ObserveError, SessionState};
        let failed = |message: String| ObserveError {
            daemon: "frr",
            message,
        };
        let now = std::time::SystemTime::now();
        let json = self
            .vtysh_within(&["-c", "show bgp neighbors json"], CHECK_TIMEOUT)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let peers = obs::parse_neighbors(&json, now).map_err(failed)?;
        let mut full = None;
        if depth == Depth::Full {
            let mut sets = BTreeMap::new();
            for p in peers
                .iter()
                .filter(|p| p.state == SessionState::Established)
            {
                let mut per = BTreeMap::new();
                for family in &p.families {
                    let command = format!(
                        "show bgp {} unicast neighbors {} advertised-routes json",
                        obs::afi(*family),
                        p.address
                    );
                    let json = self
                        .vtysh_within(&["-c", &command], CHECK_TIMEOUT)
                        .await
                        .map_err(|e| failed(e.to_string()))?;
                    per.insert(*family, obs::parse_advertised(&json).map_err(failed)?);
                }
                sets.insert(p.address, per);
            }
            full = Some(sets);
        }
        Ok(obs::observation(peers, full, now))
    }

    async fn repair(
        &mut self,
        intent: &Intent,
        drift: &[crate::daemon::observe::Drift],
        attempt: u32,
    ) -> Result<String, ApplyError> {
        if attempt == 1
            && let Some(script) = repair_script(intent, drift)
        {
            let file = tempfile::Builder::new()
                .prefix("bgpgen-repair-")
                .suffix(".conf")
                .tempfile()
                .map_err(|e| ApplyError::io(std::path::Path::new("repair"), e))?;
            std::fs::write(file.path(), &script).map_err(|e| ApplyError::io(file.path(), e))?;
            let path = file.path().display().to_string();
            if self.vtysh(&["-f", &path]).await.is_ok() {
                return Ok("vtysh: networks put back".into());
            }
        }
        // The running configuration differs from the file in more than `network` lines (or the
        // delta did not take): frr-reload.py brings it back to the file, then the neighbors are
        // sent everything again.
        self.full_reload().await?;
        let mut done = vec!["frr-reload.py".to_string()];
        let mut peers: Vec<std::net::IpAddr> = drift.iter().map(|d| d.peer).collect();
        peers.dedup();
        for peer in peers {
            self.vtysh(&["-c", &format!("clear bgp {peer} soft out")])
                .await?;
            done.push(format!("soft reset out {peer}"));
        }
        Ok(done.join(", "))
    }
}

/// The vtysh script that puts back the `network` statements a drift says are missing and takes
/// out the extra ones; `None` when the drift names no prefix (counts only).
fn repair_script(intent: &Intent, drift: &[crate::daemon::observe::Drift]) -> Option<String> {
    let hops: BTreeMap<IpNet, NextHop> =
        intent.announced().map(|r| (r.prefix, r.next_hop)).collect();
    let mut lines: BTreeMap<Family, BTreeSet<String>> = BTreeMap::new();
    for d in drift {
        let (map, entry) = match d.family {
            Family::Ipv4Unicast => ("bgpgen-nexthop-v4", lines.entry(d.family).or_default()),
            Family::Ipv6Unicast => ("bgpgen-nexthop-v6", lines.entry(d.family).or_default()),
        };
        for p in &d.missing {
            entry.insert(match hops.get(p) {
                Some(NextHop::Address(_)) => format!("  network {p} route-map {map}"),
                _ => format!("  network {p}"),
            });
        }
        for p in &d.extra {
            entry.insert(format!("  no network {p}"));
        }
    }
    lines.retain(|_, l| !l.is_empty());
    if lines.is_empty() {
        return None;
    }
    let mut script = format!("router bgp {}\n", intent.speaker.local_as);
    for (family, l) in lines {
        let afi = crate::daemon::frr::observe::afi(family);
        let _ = writeln!(script, " address-family {afi} unicast");
        for line in l {
            let _ = writeln!(script, "{line}");
        }
        let _ = writeln!(script, " exit-address-family");
    }
    script.push_str("exit\n");
    Some(script)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "router bgp 65000\n bgp router-id 10.0.0.1\n neighbor 192.0.2.2 remote-as 65030\n neighbor 192.0.2.2 timers 30 90\n neighbor 2001:db8::2 remote-as 65030\n neighbor 2001:db8::2 timers 30 90\n address-family ipv4 unicast\n  network 10.16.0.5/32\n  neighbor 192.0.2.2 activate\n exit-address-family\nexit\n";

    #[test]
    fn only_network_lines_and_comments_may_differ_for_a_delta() {
        let new = OLD.replace("10.16.0.5/32", "10.16.0.6/32");
        assert!(same_but_networks(OLD, &new));
        assert!(same_but_networks(
            &format!("! hash 1\n{OLD}"),
            &format!("! hash 2\n{new}")
        ));
        assert!(!same_but_networks(
            OLD,
            &OLD.replace("timers 30 90", "timers 10 30")
        ));
        assert!(!same_but_networks(OLD, &format!("{OLD}line vty\n")));
    }

    #[test]
    fn resets_only_neighbors_whose_session_lines_changed() {
        let routes_only = OLD.replace("10.16.0.5/32", "10.16.0.6/32");
        assert!(neighbors_to_reset(OLD, &routes_only).is_empty());
        let one = OLD.replace(
            " neighbor 192.0.2.2 timers 30 90",
            " neighbor 192.0.2.2 timers 10 30",
        );
        assert_eq!(neighbors_to_reset(OLD, &one), ["192.0.2.2"]);
        let global = OLD.replace(
            " bgp router-id 10.0.0.1\n",
            " bgp router-id 10.0.0.1\n bgp graceful-restart\n",
        );
        assert_eq!(
            neighbors_to_reset(OLD, &global),
            ["192.0.2.2", "2001:db8::2"]
        );
        // A new neighbor needs no reset; a removed one is gone.
        let added = OLD.replace("exit\n", "") + " neighbor 192.0.2.3 remote-as 65030\nexit\n";
        assert!(neighbors_to_reset(OLD, &added).is_empty());
        assert!(neighbors_to_reset("", OLD).is_empty());
    }
}
