//! Latency summaries: the nearest-rank percentiles of every sample, nothing sampled away.

use serde::Serialize;

/// p50, p99 and max of a set of durations, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl Summary {
    /// Summarises `samples` (microseconds); sorts them in place.
    pub fn of(samples: &mut [u64]) -> Summary {
        if samples.is_empty() {
            return Summary::default();
        }
        samples.sort_unstable();
        let rank = |q: f64| {
            // Nearest rank: the smallest sample with at least q of the samples at or below it.
            let index = (q * samples.len() as f64).ceil() as usize;
            samples[index.clamp(1, samples.len()) - 1]
        };
        let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
        Summary {
            count: samples.len(),
            p50_us: rank(0.50),
            p99_us: rank(0.99),
            max_us: samples[samples.len() - 1],
            mean_us: sum as f64 / samples.len() as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<u64> = (1..=100).rev().collect();
        let summary = Summary::of(&mut samples);
        assert_eq!(
            (summary.p50_us, summary.p99_us, summary.max_us),
            (50, 99, 100)
        );
        assert_eq!(Summary::of(&mut []).count, 0);
        assert_eq!(Summary::of(&mut [7]).p99_us, 7);
    }
}
