//! When a source sends a snapshot after changes. A change after a quiet spell goes out at once
//! (after `settle`), so one edited object reaches the daemon in milliseconds; changes that follow
//! within `window` of a send are coalesced into one send at the end of the window. A steady
//! stream of changes (pod churn in a large cluster, where every apply costs a full compile) is
//! thus applied at most once per window, and never starved: later changes do not push back a
//! send already due.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct Throttle {
    window: Duration,
    settle: Duration,
    last_sent: Option<Instant>,
    due: Option<Instant>,
}

impl Throttle {
    /// `window`: the least time between two sends. `settle`: how long a first change waits for
    /// the rest of its burst (a file written in several steps, a `git pull`).
    pub fn new(window: Duration, settle: Duration) -> Throttle {
        Throttle {
            window,
            settle: settle.min(window),
            last_sent: None,
            due: None,
        }
    }

    /// Records a change at `now`; returns when the snapshot should be sent.
    pub fn changed(&mut self, now: Instant) -> Instant {
        *self.due.get_or_insert_with(|| {
            let earliest = now + self.settle;
            match self.last_sent {
                Some(last) => earliest.max(last + self.window),
                None => earliest,
            }
        })
    }

    /// When the pending send is due, if one is.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Records that the snapshot was sent at `now`.
    pub fn sent(&mut self, now: Instant) {
        self.last_sent = Some(now);
        self.due = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_change_after_a_quiet_spell_is_sent_after_the_settle_time_only() {
        let t0 = Instant::now();
        let mut t = Throttle::new(100 * MS, 5 * MS);
        assert_eq!(t.changed(t0), t0 + 5 * MS);
        t.sent(t0 + 5 * MS);
        // Long after: at once again.
        let t1 = t0 + 1000 * MS;
        assert_eq!(t.changed(t1), t1 + 5 * MS);
    }

    #[test]
    fn changes_within_the_window_are_coalesced_into_one_send_at_its_end() {
        let t0 = Instant::now();
        let mut t = Throttle::new(100 * MS, Duration::ZERO);
        assert_eq!(t.changed(t0), t0);
        t.sent(t0);
        let due = t.changed(t0 + 10 * MS);
        assert_eq!(due, t0 + 100 * MS);
        assert_eq!(t.changed(t0 + 50 * MS), due);
        assert_eq!(t.changed(t0 + 99 * MS), due);
    }

    #[test]
    fn a_steady_stream_of_changes_is_sent_once_per_window_never_starved() {
        let t0 = Instant::now();
        let mut t = Throttle::new(100 * MS, Duration::ZERO);
        let mut sends = Vec::new();
        let mut now = t0;
        // A change every 5 ms for one second.
        while now < t0 + 1000 * MS {
            t.changed(now);
            if let Some(due) = t.due()
                && due <= now
            {
                t.sent(now);
                sends.push(now);
            }
            now += 5 * MS;
        }
        assert!((10..=11).contains(&sends.len()), "{} sends", sends.len());
        for pair in sends.windows(2) {
            assert!(pair[1] - pair[0] >= 100 * MS);
        }
    }

    #[test]
    fn the_settle_time_is_never_longer_than_the_window() {
        let t0 = Instant::now();
        let mut t = Throttle::new(MS, 50 * MS);
        assert_eq!(t.changed(t0), t0 + MS);
    }
}
