//! Storage failures as the log shows them: an outage fails every request, and a line per request
//! buries the log (a PostgreSQL restart once wrote 2,299). The first failure is logged at once
//! (in the span of the request that met it, so with its request id); later ones within
//! [`INTERVAL`] are counted, and the count goes with the next line. Only a failure's first line
//! is logged: a database's error may quote a key on the next (PostgreSQL's `DETAIL`).

use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

const INTERVAL: Duration = Duration::from_secs(10);

/// Logs a failure of the store, from any request of this process, as a burst allows.
pub fn report_storage_failure(detail: &str) {
    static STORAGE_FAILURES: LazyLock<FailureLog> = LazyLock::new(FailureLog::default);
    STORAGE_FAILURES.report(detail);
}

#[derive(Default)]
struct FailureLog {
    state: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    /// When the last line was logged.
    logged: Option<Instant>,
    /// Failures since, not logged.
    unlogged: u64,
}

impl FailureLog {
    fn report(&self, detail: &str) {
        let first_line = detail.lines().next().unwrap_or_default();
        if let Some(line) = self.note(first_line, Instant::now()) {
            tracing::error!("{line}");
        }
    }

    /// The line to log for a failure at `now`, if one is due.
    fn note(&self, detail: &str, now: Instant) -> Option<String> {
        let mut window = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if window.logged.is_some_and(|logged| now.duration_since(logged) < INTERVAL) {
            window.unlogged += 1;
            return None;
        }
        let line = match window.unlogged {
            0 => format!("storage failed: {detail}"),
            more => format!("storage failed: {detail} (and {more} more failures since the last report)"),
        };
        *window = Window { logged: Some(now), unlogged: 0 };
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_failures_is_one_line_then_a_count() {
        let log = FailureLog::default();
        let start = Instant::now();
        assert_eq!(log.note("connection refused", start).as_deref(), Some("storage failed: connection refused"));
        for i in 1..=2_299 {
            assert_eq!(log.note("connection refused", start + Duration::from_millis(i)), None);
        }
        assert_eq!(
            log.note("connection refused", start + INTERVAL).as_deref(),
            Some("storage failed: connection refused (and 2299 more failures since the last report)")
        );
    }
}
