//! The users: requests to each `spec.traffic` name, sent at the scenario's rate in emulated
//! time. Each request resolves the name as resolvers see it now (`Zones::effective`) and picks
//! one of its weighted record sets by smooth weighted round-robin — deterministic, so at
//! weights 90/10 exactly one request in ten goes to the second set, where real resolvers only
//! come close on average. The request is answered by whichever cluster owns the value's load
//! balancer, and counted per host, cluster and status as an ingress controller counts them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::promql::Labels;
use super::series::{Series, unix_now};
use crate::route53::zones::RecordSet;
use crate::scenario::{TrafficSpec, fqdn};

/// The counter's name: a well-known exporter's, so queries read as they would against a real
/// cluster's ingress metrics.
pub const METRIC: &str = "nginx_ingress_controller_requests";

/// How often the generator sends the requests due and samples its counters (real time).
const TICK: Duration = Duration::from_millis(50);

/// What a request to a value (a load balancer's DNS name) meets.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Answer {
    /// The cluster that served it; `None` when no cluster owns the name.
    pub cluster: Option<String>,
    pub status: u16,
}

/// The clusters of the sandbox, as requests meet them.
pub trait Backends: Send + Sync {
    fn answer(&self, host: &str) -> Answer;
}

/// The record sets resolvers answer now for a name (see `Zones::effective`).
pub type Resolve = Arc<dyn Fn(&str, &str) -> Vec<RecordSet> + Send + Sync>;

/// Smooth weighted round-robin over the sets of one name, as nginx balances upstreams: each
/// pick adds every set's weight to its score and takes the highest, which then pays the total.
#[derive(Default)]
pub struct RoundRobin {
    weights: Vec<(String, u64)>,
    scores: Vec<i64>,
}

impl RoundRobin {
    /// The value of the set picked, or `None` for a name without sets.
    pub fn pick(&mut self, sets: &[RecordSet]) -> Option<String> {
        // Route 53 answers every set of a group with equal chance when all weights are 0.
        let all_zero = sets.iter().all(|s| s.weight.unwrap_or(1) == 0);
        let weights: Vec<(String, u64)> = sets
            .iter()
            .map(|s| {
                let w = if all_zero { 1 } else { s.weight.unwrap_or(1) };
                (s.values.first().cloned().unwrap_or_default(), w)
            })
            .collect();
        if weights != self.weights {
            self.scores = vec![0; weights.len()];
            self.weights = weights;
        }
        let total: i64 = self.weights.iter().map(|(_, w)| *w as i64).sum();
        if total == 0 {
            return None;
        }
        for (score, (_, w)) in self.scores.iter_mut().zip(&self.weights) {
            *score += *w as i64;
        }
        let best =
            (0..self.scores.len()).max_by_key(|&i| (self.scores[i], std::cmp::Reverse(i)))?;
        self.scores[best] -= total;
        Some(self.weights[best].0.clone())
    }
}

/// Counts by host, cluster and status, written to `series` at every tick.
struct Counters {
    counts: BTreeMap<(String, Answer), u64>,
    last_sample: Option<f64>,
}

impl Counters {
    fn labels(host: &str, answer: &Answer) -> Labels {
        let mut l = Labels::new();
        l.insert("__name__".into(), METRIC.into());
        l.insert("host".into(), host.into());
        if let Some(c) = &answer.cluster {
            l.insert("cluster".into(), c.clone());
        }
        l.insert("status".into(), answer.status.to_string());
        l
    }

    fn count(&mut self, series: &Series, host: &str, answer: Answer) {
        let key = (host.to_string(), answer);
        if !self.counts.contains_key(&key) {
            // A new series starts from zero at the previous sample, as an exporter's counter
            // exists at 0 before its first request: no request is lost to `increase`.
            if let Some(t) = self.last_sample {
                series.sample(&Self::labels(&key.0, &key.1), t, 0.0);
            }
        }
        *self.counts.entry(key).or_default() += 1;
    }

    fn sample(&mut self, series: &Series, at: f64) {
        for ((host, answer), n) in &self.counts {
            series.sample(&Self::labels(host, answer), at, *n as f64);
        }
        self.last_sample = Some(at);
    }
}

/// Sends `spec`'s requests until the task is aborted. `speed` is emulated seconds per real
/// second.
pub fn start(
    spec: Vec<TrafficSpec>,
    speed: f64,
    resolve: Resolve,
    backends: Arc<dyn Backends>,
    series: Arc<Series>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut balancers: Vec<RoundRobin> = spec.iter().map(|_| RoundRobin::default()).collect();
        let mut due: Vec<f64> = vec![0.0; spec.len()];
        let mut counters = Counters {
            counts: BTreeMap::new(),
            last_sample: None,
        };
        let mut last = Instant::now();
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let elapsed = last.elapsed().as_secs_f64();
            last = Instant::now();
            for (i, t) in spec.iter().enumerate() {
                due[i] += t.rate * speed * elapsed;
                let host = fqdn(&t.record);
                let mut sets = resolve(&host, "CNAME");
                if sets.is_empty() {
                    sets = resolve(&host, "A");
                }
                // One answer per value per tick: the clusters change far slower than this.
                let mut answers: BTreeMap<String, Answer> = BTreeMap::new();
                let shown = host.trim_end_matches('.').to_string();
                while due[i] >= 1.0 {
                    due[i] -= 1.0;
                    let answer = match balancers[i].pick(&sets) {
                        Some(value) => answers
                            .entry(value.clone())
                            .or_insert_with(|| backends.answer(value.trim_end_matches('.')))
                            .clone(),
                        None => Answer {
                            cluster: None,
                            status: 502,
                        },
                    };
                    counters.count(&series, &shown, answer);
                }
            }
            counters.sample(&series, unix_now());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(id: &str, weight: u64) -> RecordSet {
        RecordSet {
            name: "app.example.com.".into(),
            kind: "CNAME".into(),
            set_identifier: Some(id.into()),
            weight: Some(weight),
            ttl: Some(60),
            values: vec![format!("{id}.elb")],
        }
    }

    fn picks(sets: &[RecordSet], n: usize) -> BTreeMap<String, usize> {
        let mut rr = RoundRobin::default();
        let mut out = BTreeMap::new();
        for _ in 0..n {
            *out.entry(rr.pick(sets).unwrap_or_default()).or_default() += 1;
        }
        out
    }

    #[test]
    fn weights_split_requests_exactly_in_every_whole_round() {
        let got = picks(&[set("blue", 90), set("green", 10)], 100);
        assert_eq!(got["blue.elb"], 90);
        assert_eq!(got["green.elb"], 10);
        // Within each run of ten, green gets exactly one.
        let mut rr = RoundRobin::default();
        let sets = [set("blue", 9), set("green", 1)];
        for _ in 0..5 {
            let round: Vec<String> = (0..10).filter_map(|_| rr.pick(&sets)).collect();
            assert_eq!(round.iter().filter(|v| *v == "green.elb").count(), 1);
        }
    }

    #[test]
    fn weight_zero_gets_nothing_unless_every_weight_is_zero() {
        let got = picks(&[set("blue", 100), set("green", 0)], 50);
        assert_eq!(got.get("green.elb"), None);
        let got = picks(&[set("blue", 0), set("green", 0)], 50);
        assert_eq!((got["blue.elb"], got["green.elb"]), (25, 25));
        assert_eq!(picks(&[], 3).get(""), Some(&3));
    }
}
