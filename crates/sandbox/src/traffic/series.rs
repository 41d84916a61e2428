//! Counters as a scrape would store them: each series' samples over wall-clock time, the last
//! few minutes only. The traffic generator samples its request counters here every tick; the
//! Prometheus stand-in reads them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::promql::{Labels, Samples, Selector};

pub struct Series {
    inner: Mutex<BTreeMap<Labels, VecDeque<(f64, f64)>>>,
    /// How long samples are kept: longer than any window a gate asks for in real time.
    keep: Duration,
}

/// Now, as Prometheus timestamps: seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Series {
    pub fn new(keep: Duration) -> Self {
        Series {
            inner: Mutex::new(BTreeMap::new()),
            keep,
        }
    }

    /// Appends a sample of the series `labels` (which include `__name__`) and forgets the
    /// series' samples older than `keep`.
    pub fn sample(&self, labels: &Labels, at: f64, value: f64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let samples = inner.entry(labels.clone()).or_default();
        samples.push_back((at, value));
        let oldest = at - self.keep.as_secs_f64();
        while samples.front().is_some_and(|(t, _)| *t < oldest) {
            samples.pop_front();
        }
    }
}

impl Samples for Series {
    fn select(&self, selector: &Selector) -> Vec<(Labels, Vec<(f64, f64)>)> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .iter()
            .filter(|(labels, _)| selector.matches(labels))
            .map(|(labels, samples)| (labels.clone(), samples.iter().copied().collect()))
            .collect()
    }
}
