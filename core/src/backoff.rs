//! Container restart back-off (`CrashLoopBackOff`), as the kubelet's `flowcontrol.Backoff`
//! computes it for crashed containers: 10 s, doubling per restart, capped at 5 min, and
//! forgotten once a container has gone twice the cap (10 min) without needing a restart.
//!
//! No clock is read here: callers pass "now" as a [`Duration`] since any fixed origin they
//! choose (a `tokio::time::Instant` taken at start, say), so the sequence is testable with
//! plain numbers.

use std::time::Duration;

/// The first delay after a container exits.
pub const INITIAL: Duration = Duration::from_secs(10);
/// The largest delay.
pub const MAX: Duration = Duration::from_secs(300);
/// How long without a restart before the back-off starts over (the kubelet's `2 × MAX`).
pub const RESET_AFTER: Duration = Duration::from_secs(600);

/// The delay before the restart numbered `restart_count_since_reset` (0 for the first):
/// 10 s, 20 s, 40 s, 80 s, 160 s, then 300 s for ever.
pub fn delay_for(restart_count_since_reset: u32) -> Duration {
    INITIAL
        .checked_mul(2u32.saturating_pow(restart_count_since_reset))
        .map_or(MAX, |d| d.min(MAX))
}

/// True when a gap this long since the last back-off update means starting over at
/// [`INITIAL`]; the kubelet's test is strictly longer than [`RESET_AFTER`].
pub fn should_reset(since_last_update: Duration) -> bool {
    since_last_update > RESET_AFTER
}

/// Back-off state for one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backoff {
    /// The delay last handed out and when (`None` before the first restart).
    last: Option<(Duration, Duration)>,
}

impl Backoff {
    /// A back-off with no history.
    pub const fn new() -> Self {
        Self { last: None }
    }

    /// The delay to wait before restarting a container that has just exited at `now`
    /// (the kubelet's `Backoff.Next`): [`INITIAL`] the first time or after a quiet
    /// [`RESET_AFTER`], otherwise double the previous delay up to [`MAX`].
    pub fn next_delay(&mut self, now: Duration) -> Duration {
        let delay = match self.last {
            Some((delay, at)) if !should_reset(now.saturating_sub(at)) => delay.saturating_mul(2).min(MAX),
            _ => INITIAL,
        };
        self.last = Some((delay, now));
        delay
    }

    /// The delay last handed out, if any.
    pub fn current(&self) -> Option<Duration> {
        self.last.map(|(delay, _)| delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let delays: Vec<u64> = (0..8).map(|n| delay_for(n).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(delay_for(u32::MAX), MAX);
    }

    #[test]
    fn resets_after_a_quiet_period() {
        let cases = [(s(0), false), (s(599), false), (s(600), false), (s(601), true)];
        for (gap, reset) in cases {
            assert_eq!(should_reset(gap), reset, "{gap:?}");
        }
    }

    #[test]
    fn tracks_one_container() {
        // (exit time, expected delay): crash-looping, then stable for > 10 min, then again.
        let timeline = [
            (s(0), 10),
            (s(11), 20),
            (s(32), 40),
            (s(73), 80),
            (s(154), 160),
            (s(315), 300),
            (s(616), 300),
            (s(916), 300),
            (s(1517), 10),
            (s(1528), 20),
        ];
        let mut backoff = Backoff::new();
        for (now, want) in timeline {
            assert_eq!(backoff.next_delay(now), s(want), "at {now:?}");
        }
        assert_eq!(backoff.current(), Some(s(20)));
    }
}
