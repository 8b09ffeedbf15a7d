//! The performance budgets (issue 13, docs/performance.md) and how a measurement is judged.
//!
//! Absolute budgets (bytes, counts, dollars) are compared as they are. Time budgets are also
//! expressed as a ratio to a baseline measured in the same run on the same machine, so a slower
//! or busier machine moves both sides: the ratio constants below are the budget divided by the
//! baseline as measured on the reference machine (docs/performance.md names it).

/// Cold start: process start to the first `GET /runtime/invocation/next`.
pub const COLD_START_MS: f64 = 25.0;
pub const ZIP_BYTES: u64 = 8 * 1024 * 1024;
pub const PEAK_RSS_KIB: u64 = 48 * 1024;
pub const WEBHOOK_EVENTS_PER_SECOND: f64 = 20_000.0;
/// One create + healthy + teardown lifecycle.
pub const LIFECYCLE_TRANSITIONS: u64 = 150;
pub const LIFECYCLE_COST_USD: f64 = 0.01;

/// A budget is "broken" (the test and `--check` fail) only beyond this factor; within it, it is
/// "missed" and reported.
pub const TOLERANCE: f64 = 2.0;

/// 25 ms over the `runtime-baseline` process's median time to its first `next` on the reference
/// machine (1.46 ms, docs/performance.md): a function may take this many baseline starts.
pub const COLD_START_OVER_BASELINE: f64 = 25.0 / 1.46;

/// The webhook budget as a ratio: 20,000 events/s is 50 µs per event, and one plain
/// HMAC-SHA256 of the benchmark's 7.6 KB push body took 5.6 µs on the reference machine
/// (criterion `webhook/hmac_sha256_baseline`, docs/performance.md): verify + route + decide may
/// cost this many such HMACs.
pub const WEBHOOK_OVER_HMAC: f64 = 50.0 / 5.6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    /// Over budget by at most [`TOLERANCE`].
    Missed,
    /// Over budget by more than [`TOLERANCE`].
    Broken,
}

impl Verdict {
    /// For "smaller is better" figures.
    pub fn at_most(measured: f64, budget: f64) -> Verdict {
        if measured <= budget {
            Verdict::Met
        } else if measured <= budget * TOLERANCE {
            Verdict::Missed
        } else {
            Verdict::Broken
        }
    }

    /// For "larger is better" figures (throughput).
    pub fn at_least(measured: f64, budget: f64) -> Verdict {
        if measured >= budget {
            Verdict::Met
        } else if measured * TOLERANCE >= budget {
            Verdict::Missed
        } else {
            Verdict::Broken
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Verdict::Met => "ok",
            Verdict::Missed => "MISSED",
            Verdict::Broken => "BROKEN (>2x)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(Verdict::at_most(10.0, 25.0), Verdict::Met);
        assert_eq!(Verdict::at_most(40.0, 25.0), Verdict::Missed);
        assert_eq!(Verdict::at_most(51.0, 25.0), Verdict::Broken);
        assert_eq!(Verdict::at_least(25_000.0, 20_000.0), Verdict::Met);
        assert_eq!(Verdict::at_least(12_000.0, 20_000.0), Verdict::Missed);
        assert_eq!(Verdict::at_least(9_000.0, 20_000.0), Verdict::Broken);
    }
}
