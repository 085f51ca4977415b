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
}

impl BirdDriver {
    pub fn new(options: DaemonOptions) -> BirdDriver {
        BirdDriver {
            options,
            birdc: std::env::var("BGPGEN_BIRDC").unwrap_or_else(|_| "birdc".to_string()),
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
