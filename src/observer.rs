//! The sidecar's read-back loop (DESIGN section 10): after every apply and on every check
//! interval the sessions are read back from the daemon ([`crate::daemon::Driver::observe`]) into
//! the shared [`Status`], and what each established neighbor is sent is compared with the intent
//! in force. A difference seen on two read-backs in a row (the first may be an update still on its
//! way) is logged, counted and repaired, then checked again on the next interval; a repair that
//! does not help is followed by a heavier one, and repeated repairs back off.
//!
//! Bounded: one read-back has a time limit, the daemon's own counts are read after every apply and
//! every interval, and the advertised prefixes themselves only when a count is off, while a
//! difference is being confirmed or repaired, and every [`FULL_EVERY`] (less often for large
//! tables, [`full_every`]); a daemon that is down is not read at all, and a failing read-back is
//! logged once when it starts failing and once when it recovers.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::daemon::Driver;
use crate::daemon::observe::{Depth, Drift, Observation, SessionState, drift};
use crate::status::Status;

/// The longest one read-back may take (each command within has its own, shorter, limit).
pub const OBSERVE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the advertised prefixes are read in full even when every count matches (a prefix
/// swapped for another behind bgpgen's back keeps the count).
pub const FULL_EVERY: Duration = Duration::from_secs(60);
/// Every [`FULL_EVERY`] per [`FULL_UNIT`] routes (at least once a minute): a full read-back of a
/// large table takes the daemon seconds, and the sidecar applies nothing meanwhile.
const FULL_UNIT: usize = 10_000;

fn full_every(routes: usize) -> Duration {
    FULL_EVERY * u32::try_from(routes / FULL_UNIT).unwrap_or(u32::MAX).max(1)
}

/// Repairs after this many in a row wait [`REPAIR_BACKOFF`] between attempts.
const QUICK_REPAIRS: u32 = 3;
const REPAIR_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct Observer {
    last_full: Option<Instant>,
    /// The previous read-back found a difference (not yet confirmed).
    pending: bool,
    /// Repairs of the current difference so far.
    attempts: u32,
    last_repair: Option<Instant>,
    /// Each session's state at the previous read-back.
    states: BTreeMap<IpAddr, SessionState>,
    failing: bool,
}

fn update(status: &Mutex<Status>, f: impl FnOnce(&mut Status)) {
    if let Ok(mut s) = status.lock() {
        f(&mut s);
    }
}

impl Observer {
    /// Forgets what the previous read-backs found (the daemon was restarted).
    pub fn reset(&mut self) {
        self.pending = false;
        self.attempts = 0;
        self.last_full = None;
    }

    /// One read-back. `after_apply`: right after an apply (read in full).
    pub async fn observe(
        &mut self,
        driver: &mut dyn Driver,
        status: &Mutex<Status>,
        after_apply: bool,
    ) {
        let intent = status.lock().ok().and_then(|s| s.intent.clone());
        let Some(intent) = intent else {
            return;
        };
        let full_due = self
            .last_full
            .is_none_or(|t| t.elapsed() >= full_every(intent.routes.len()));
        // Right after an apply the counts are enough: updates may still be on their way, so no
        // difference found then is acted on, and reading every prefix would only delay the next
        // apply (the read-back runs between applies).
        let mut depth = if full_due || self.pending {
            Depth::Full
        } else {
            Depth::Counts
        };
        let mut result = read(driver, &intent, depth).await;
        if let Ok(obs) = &result
            && depth == Depth::Counts
            && !after_apply
            && !drift(&intent, obs).is_empty()
        {
            // A count is off: read the prefixes to say which.
            depth = Depth::Full;
            result = read(driver, &intent, depth).await;
        }
        let obs = match result {
            Ok(obs) => obs,
            Err(message) => {
                if !self.failing {
                    tracing::warn!(error = %message, "reading the sessions back from the daemon failed");
                }
                self.failing = true;
                update(status, |s| s.observe_error = Some(message));
                return;
            }
        };
        if self.failing {
            tracing::info!("reading the sessions back works again");
            self.failing = false;
        }
        if depth == Depth::Full {
            self.last_full = Some(Instant::now());
        }
        self.sessions(&obs, status);
        let found = drift(&intent, &obs);
        update(status, |s| {
            s.observation = Some(obs);
            s.observe_error = None;
            s.drift = found.clone();
        });
        if found.is_empty() {
            if self.attempts > 0 {
                tracing::info!(
                    repairs = self.attempts,
                    "every neighbor is sent what the intent says again"
                );
            }
            self.pending = false;
            self.attempts = 0;
            return;
        }
        if after_apply {
            // Right after an apply updates are still on their way: not even a first sight.
            return;
        }
        if !self.pending {
            // First sight: an update may still be on its way; confirmed on the next read-back.
            for d in &found {
                tracing::debug!(drift = %d, "a neighbor is not sent what the intent says; checking again");
            }
            self.pending = true;
            return;
        }
        self.confirmed(driver, status, &intent, &found).await;
    }

    /// Logs session changes and counts the drops of daemons that count none.
    fn sessions(&mut self, obs: &Observation, status: &Mutex<Status>) {
        let mut drops = Vec::new();
        for p in &obs.peers {
            let before = self.states.insert(p.address, p.state);
            match before {
                Some(SessionState::Established) if p.state != SessionState::Established => {
                    tracing::warn!(peer = %p.address, state = %p.state, error = p.last_error.as_deref().unwrap_or(""), "BGP session down");
                    drops.push(p.address);
                }
                Some(b)
                    if b != SessionState::Established && p.state == SessionState::Established =>
                {
                    tracing::info!(peer = %p.address, "BGP session established");
                }
                None if p.state == SessionState::Established => {
                    tracing::info!(peer = %p.address, "BGP session established");
                }
                _ => {}
            }
        }
        self.states
            .retain(|a, _| obs.peers.iter().any(|p| p.address == *a));
        if !drops.is_empty() {
            update(status, |s| {
                for a in drops {
                    *s.drops_seen.entry(a).or_default() += 1;
                }
            });
        }
    }

    async fn confirmed(
        &mut self,
        driver: &mut dyn Driver,
        status: &Mutex<Status>,
        intent: &crate::intent::Intent,
        found: &[Drift],
    ) {
        if self.attempts >= QUICK_REPAIRS
            && self
                .last_repair
                .is_some_and(|t| t.elapsed() < REPAIR_BACKOFF)
        {
            return;
        }
        self.attempts += 1;
        self.last_repair = Some(Instant::now());
        for d in found {
            tracing::warn!(drift = %d, attempt = self.attempts, "a neighbor is not sent what the intent says; repairing");
        }
        update(status, |s| {
            for d in found {
                *s.drift_detected.entry((d.peer, d.family)).or_default() += 1;
            }
        });
        let result = tokio::time::timeout(
            crate::daemon::driver::COMMAND_TIMEOUT,
            driver.repair(intent, found, self.attempts),
        )
        .await;
        let outcome = match result {
            Ok(Ok(how)) => {
                tracing::info!(%how, attempt = self.attempts, "repaired; checking again on the next interval");
                "ok"
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, attempt = self.attempts, "the repair failed");
                "failed"
            }
            Err(_) => {
                tracing::error!(attempt = self.attempts, "the repair did not finish in time");
                "failed"
            }
        };
        update(status, |s| *s.repairs.entry(outcome).or_default() += 1);
        // The next read-back reads in full: it checks the repair.
        self.pending = true;
    }
}

async fn read(
    driver: &mut dyn Driver,
    intent: &crate::intent::Intent,
    depth: Depth,
) -> Result<Observation, String> {
    match tokio::time::timeout(OBSERVE_TIMEOUT, driver.observe(intent, depth)).await {
        Ok(Ok(obs)) => Ok(obs),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {OBSERVE_TIMEOUT:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_tables_are_read_in_full_less_often() {
        assert_eq!(full_every(0), FULL_EVERY);
        assert_eq!(full_every(9_999), FULL_EVERY);
        assert_eq!(full_every(100_000), FULL_EVERY * 10);
    }
}
