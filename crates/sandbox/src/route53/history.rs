//! What resolvers answer for a name, which is not what `ListResourceRecordSets` shows: a change
//! reaches them once it is `INSYNC`, and a resolver that asked just before keeps the old answer
//! for the old sets' TTL. So weights move traffic only after INSYNC plus the TTL, and a switch
//! back is not instant either — the behaviour a blue/green gate has to live with.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::zones::{RecordSet, Requested};

struct Entry {
    insync_at: Instant,
    /// The longest TTL (seconds) of the sets this change replaced: how long caches hold them.
    cached_ttl: u64,
    sets: Vec<RecordSet>,
}

/// The changes of every name and type a batch touched, in the order applied.
#[derive(Default)]
pub struct History {
    /// The sets of a name and type before its first change.
    initial: BTreeMap<(String, String), Vec<RecordSet>>,
    entries: BTreeMap<(String, String), Vec<Entry>>,
}

fn of(records: &[RecordSet], name: &str, kind: &str) -> Vec<RecordSet> {
    records
        .iter()
        .filter(|r| r.name == name && r.kind == kind)
        .cloned()
        .collect()
}

impl History {
    /// Notes an applied batch: `before` and `after` are the zone's records around it.
    pub fn record(
        &mut self,
        before: &[RecordSet],
        after: &[RecordSet],
        batch: &[Requested],
        insync_at: Instant,
    ) {
        let mut touched: Vec<(String, String)> = batch
            .iter()
            .map(|r| (r.set.name.clone(), r.set.kind.clone()))
            .collect();
        touched.sort();
        touched.dedup();
        for key in touched {
            let old = of(before, &key.0, &key.1);
            let cached_ttl = old.iter().filter_map(|s| s.ttl).max().unwrap_or(0);
            self.initial.entry(key.clone()).or_insert(old);
            self.entries.entry(key.clone()).or_default().push(Entry {
                insync_at,
                cached_ttl,
                sets: of(after, &key.0, &key.1),
            });
        }
    }

    /// The sets resolvers answer now for `name` and `kind`, or `None` when no change touched
    /// them (then the zone's records are the answer). TTLs are emulated seconds, divided by
    /// the sandbox's `speed` as every other emulated duration.
    pub fn visible(&self, name: &str, kind: &str, speed: f64) -> Option<Vec<RecordSet>> {
        let key = (name.to_string(), kind.to_string());
        let entries = self.entries.get(&key)?;
        let now = Instant::now();
        let seen = entries.iter().rev().find(|e| {
            let cached =
                Duration::from_secs_f64(e.cached_ttl as f64 / speed.max(f64::MIN_POSITIVE));
            e.insync_at + cached <= now
        });
        Some(match seen {
            Some(e) => e.sets.clone(),
            None => self.initial.get(&key).cloned().unwrap_or_default(),
        })
    }
}
