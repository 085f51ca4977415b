//! The BIRD 2 driver: `birdc configure` re-reads the file BIRD was started with; a changed set of
//! static routes is announced and withdrawn without resetting the BGP sessions.

use std::time::Duration;

use crate::daemon::driver::{
    ApplyError, ApplyOutcome, CHECK_TIMEOUT, COMMAND_TIMEOUT, DaemonOptions, restore_previous,
    run_command_timeout, unchanged_on_disk, validate_and_write,
};
use crate::render::Rendered;

const MAIN: &str = "bird.conf";

pub struct BirdDriver {
    options: DaemonOptions,
    birdc: String,
    /// The BGP protocol of each neighbor, from the last read-back (for `reload out`).
    protocols: std::collections::BTreeMap<std::net::IpAddr, String>,
}

impl BirdDriver {
    pub fn new(options: DaemonOptions) -> BirdDriver {
        BirdDriver {
            options,
            birdc: std::env::var("BGPGEN_BIRDC").unwrap_or_else(|_| "birdc".to_string()),
            protocols: std::collections::BTreeMap::new(),
        }
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

    pub async fn apply(&mut self, rendered: &Rendered) -> Result<ApplyOutcome, ApplyError> {
        if unchanged_on_disk(&self.options, MAIN, rendered) {
            // Make sure the daemon is there, so a dead BIRD is reported rather than hidden.
            self.birdc(&["show", "status"]).await?;
            return Ok(ApplyOutcome::Unchanged);
        }
        validate_and_write(&self.options, MAIN, rendered)?;
        match self.birdc(&["configure"]).await {
            Ok(_) => Ok(ApplyOutcome::Applied("birdc configure".into())),
            Err(ApplyError::RolledBack { message, .. }) => {
                let path = &self.options.config_file;
                let rollback = match restore_previous(path) {
                    Ok(()) => self.birdc(&["configure"]).await.map(|_| ()),
                    Err(e) => Err(ApplyError::io(path, e)),
                };
                match rollback {
                    Ok(()) => Err(ApplyError::RolledBack {
                        daemon: "bird",
                        message,
                    }),
                    Err(e) => Err(ApplyError::RollbackFailed {
                        daemon: "bird",
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
impl crate::daemon::Driver for BirdDriver {
    async fn apply(
        &mut self,
        _intent: &crate::intent::Intent,
        rendered: &Rendered,
    ) -> Result<ApplyOutcome, ApplyError> {
        BirdDriver::apply(self, rendered).await
    }

    async fn check(&mut self) -> bool {
        self.reachable().await
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
